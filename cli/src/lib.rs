//! The `deploy-protected` command: embed (transform) and deploy.
//!
//! - [`args`]: the raw command line (clap derive): the root [`args::Cli`], the `embed`
//!   subcommand and [`args::EmbedFlags`], the transform flags shared with the deploy mode.
//! - [`embed_cmd`]: `deploy-protected embed`: read a task definition, run
//!   [`protect::embed::embed`], print the protected definition.
//! - [`images`]: reading the images a task definition needs (ENTRYPOINT, CMD, digest) from
//!   their registries before the transform, unless `--offline`.
//! - [`local`]: `deploy-protected local`: run a task definition on the local Docker Engine.
//! - [`Failure`]: a failed command and its exit code (2 bad usage or input, 1 runtime failure).
//!
//! `main.rs` only calls [`main`].

pub mod args;
pub mod console;
pub mod deploy;
pub mod embed_cmd;
pub mod images;
pub mod local;

use args::{Cli, Command};
use clap::Parser;
use std::ffi::OsString;
use std::io::Write;
use std::process::ExitCode;

/// A failed command: what went wrong, classified by exit code.
#[derive(Debug)]
pub enum Failure {
    /// Bad usage or bad input: exit 2.
    BadInput(anyhow::Error),
    /// A runtime failure (I/O, AWS): exit 1.
    Runtime(anyhow::Error),
}

impl Failure {
    /// The process exit code for this failure.
    pub fn exit_code(&self) -> u8 {
        match self {
            Failure::BadInput(_) => 2,
            Failure::Runtime(_) => 1,
        }
    }

    /// The error, for printing with `{:#}` (the whole chain on one line).
    pub fn error(&self) -> &anyhow::Error {
        match self {
            Failure::BadInput(e) | Failure::Runtime(e) => e,
        }
    }
}

/// Runs a parsed command line.
pub fn run(cli: Cli) -> Result<(), Failure> {
    match cli.command {
        Some(Command::Local(args)) => match local::run(&args) {
            Ok(0) => Ok(()),
            // The essential container's exit code becomes ours.
            Ok(code) => std::process::exit(i32::from(code)),
            Err(e) if e.exit_code() == 2 => Err(Failure::BadInput(e.into())),
            Err(e) => Err(Failure::Runtime(e.into())),
        },
        Some(Command::Embed(args)) => embed_cmd::run(
            &args,
            &mut std::io::stdin().lock(),
            &mut std::io::stdout().lock(),
            &mut std::io::stderr().lock(),
        ),
        None => deploy::cmd::run(&cli.deploy, &cli.embed).map_err(|e| match e.exit_code() {
            2 => Failure::BadInput(e.into()),
            _ => Failure::Runtime(e.into()),
        }),
    }
}

/// The whole program: parses `args`, runs, prints the error chain once, returns the exit code.
pub fn main_with<I, T>(args: I) -> ExitCode
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            // Help and version go to stdout with code 0; usage errors to stderr with code 2.
            let _ = e.print();
            return ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(2));
        }
    };
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            let _ = writeln!(
                std::io::stderr(),
                "deploy-protected: error: {:#}",
                failure.error()
            );
            ExitCode::from(failure.exit_code())
        }
    }
}

/// [`main_with`] on the process's arguments.
pub fn main() -> ExitCode {
    main_with(std::env::args_os())
}
