//! The two ways to run the console: a local server on SQLite, or AWS Lambda on DynamoDB.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;

use crate::bootstrap::{ensure_admin, Bootstrap};
use crate::state::{AppState, Settings};
use crate::store::dynamo::DynamoStore;
use crate::store::sqlite::SqliteStore;

/// How often the local server deletes audits past retention.
pub const PRUNE_INTERVAL: Duration = Duration::from_secs(3600);

fn admin_from_env() -> (String, Option<String>) {
    let user = std::env::var("CONSOLE_ADMIN_USER")
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "admin".to_string());
    let password = std::env::var("CONSOLE_ADMIN_PASSWORD")
        .ok()
        .filter(|s| !s.is_empty());
    (user, password)
}

/// Runs the local server until Ctrl-C or SIGTERM.
pub async fn serve_local(
    listen: SocketAddr,
    data_dir: PathBuf,
    settings: Settings,
) -> anyhow::Result<()> {
    let store = SqliteStore::open(&data_dir)
        .with_context(|| format!("opening the store in {}", data_dir.display()))?;
    let state = AppState::new(Arc::new(store), settings);
    let (user, password) = admin_from_env();
    match ensure_admin(&state, &user, password, true).await? {
        Bootstrap::Generated { username, password } => {
            // Shown once, on the terminal only (stdout), never through the log.
            println!(
                "created the first admin user {username:?} with password {password} \
                 (shown only now; set CONSOLE_ADMIN_PASSWORD to choose it)"
            );
        }
        Bootstrap::Created { username } => {
            tracing::info!(user = %username, "created the first admin user");
        }
        Bootstrap::UsersExist | Bootstrap::NoPassword => {}
    }
    let retention = state.settings().audit_retention;
    let pruner = state.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(PRUNE_INTERVAL);
        loop {
            tick.tick().await;
            match pruner.store().prune(chrono::Utc::now() - retention).await {
                Ok(n) if n > 0 => tracing::info!(deleted = n, "pruned audits past retention"),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "pruning audits failed"),
            }
        }
    });
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("--listen {listen}: cannot bind"))?;
    let local = listener.local_addr().context("reading the bound address")?;
    eprintln!(
        "lambda-console listening on http://{local} (data in {})",
        data_dir.display()
    );
    axum::serve(listener, crate::app(state))
        .with_graceful_shutdown(shutdown())
        .await
        .context("serving HTTP")?;
    Ok(())
}

async fn shutdown() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(t) => t,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}

/// Runs under the Lambda runtime (`AWS_LAMBDA_RUNTIME_API` set), storing in the DynamoDB
/// table `CONSOLE_TABLE`.
pub async fn run_lambda(settings: Settings) -> anyhow::Result<()> {
    let table = std::env::var("CONSOLE_TABLE")
        .ok()
        .filter(|s| !s.is_empty())
        .context("CONSOLE_TABLE: not set; name the console's DynamoDB table")?;
    let config = aws_config::load_from_env().await;
    let store = DynamoStore::new(aws_sdk_dynamodb::Client::new(&config), table);
    let state = AppState::new(Arc::new(store), settings);
    let (user, password) = admin_from_env();
    if ensure_admin(&state, &user, password, false).await? == Bootstrap::NoPassword {
        tracing::warn!(
            "the console has no users: set CONSOLE_ADMIN_USER and CONSOLE_ADMIN_PASSWORD to \
             create the first admin"
        );
    }
    lambda_http::run(crate::app(state))
        .await
        .map_err(|e| anyhow::anyhow!("lambda runtime: {e}"))
}
