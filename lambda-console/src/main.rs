//! `lambda-console`: the console, locally (`serve`) or on AWS Lambda (when
//! `AWS_LAMBDA_RUNTIME_API` is set).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use lambda_console::Settings;

const ENVIRONMENT: &str = "\
Environment:
  CONSOLE_ADMIN_USER, CONSOLE_ADMIN_PASSWORD   first admin, created on an empty store
  CONSOLE_ADMIN_PASSWORD_SECRET_ARN            Lambda: the first admin's password secret
  CONSOLE_TABLE                                Lambda: the DynamoDB table
  CONSOLE_DEFENDER_IMAGE                       default defender image of the transform
  CONSOLE_TRANSFORM_SECRETS                    where the transform keeps credentials it
                                               creates: secretsmanager (default on Lambda) or
                                               plain (default locally)
  CONSOLE_DEFENDER_EXECUTION_ROLE_ARN          execution role the transform gives tasks that
                                               have none (with secretsmanager)
  CONSOLE_AUDIT_RETENTION_DAYS                 audits kept (default 30; 1-3650)
  CONSOLE_TOKEN_TTL_SECONDS                    session token lifetime (default 3600; 60-86400)
  CONSOLE_DEFENDER_CONNECTED_SECONDS           defenders heard from within this are `connected`
                                               (default 60; 1-86400)
  CONSOLE_DEFENDER_STALE_SECONDS               ... within this `stale`, beyond `disconnected`
                                               (default 600; 1-2592000)
  CONSOLE_LOGIN_FAILURES_PER_USER              failed logins per user per window before 429
                                               (default 5; 1-1000)
  CONSOLE_LOGIN_FAILURES_PER_ADDRESS           ... per source address (default 20; 1-100000)
  CONSOLE_LOGIN_WINDOW_SECONDS                 that window (default 60; 1-86400)
  CONSOLE_PASSWORD_CHECKS                      Argon2 checks at once (default: CPUs, >= 2)
  CONSOLE_HEADER_TIMEOUT_SECONDS               serve: request head / idle timeout (default 10)
  CONSOLE_BODY_TIMEOUT_SECONDS                 serve: stalled body timeout (default 30)
  CONSOLE_MAX_CONNECTIONS                      serve: open connections (default 1024)
  CONSOLE_LOG                                  log filter (default info)";

#[derive(Parser)]
#[command(
    name = "lambda-console",
    version,
    about = "The runtime-defense console API",
    after_help = ENVIRONMENT
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the console locally, storing in SQLite under --data-dir.
    #[command(after_help = ENVIRONMENT)]
    Serve {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:8083")]
        listen: SocketAddr,
        /// Directory of the embedded store (created if missing).
        #[arg(long, default_value = "console-data")]
        data_dir: PathBuf,
    },
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("CONSOLE_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let on_lambda = std::env::var_os("AWS_LAMBDA_RUNTIME_API").is_some();
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) if on_lambda => {
            tracing::debug!("ignoring arguments on Lambda: {e}");
            Cli { command: None }
        }
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(2)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    let settings = match Settings::from_env() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("lambda-console: {e}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("lambda-console: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let result = runtime.block_on(async move {
        match (on_lambda, cli.command) {
            (true, _) => lambda_console::server::run_lambda(settings).await,
            (false, Some(Command::Serve { listen, data_dir })) => {
                lambda_console::server::serve_local(listen, data_dir, settings).await
            }
            (false, None) => Err(anyhow::anyhow!(
                "no command: run `lambda-console serve [--listen ADDR] [--data-dir DIR]`, or \
                 run on AWS Lambda"
            )),
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("lambda-console: {e:#}");
            ExitCode::from(1)
        }
    }
}
