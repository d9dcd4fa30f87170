//! The two ways to run the console: a local server on SQLite, or AWS Lambda on DynamoDB.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;

use crate::bootstrap::{ensure_admin, Bootstrap};
use crate::state::{AppState, Settings, TransformSecrets};
use crate::store::dynamo::DynamoStore;
use crate::store::sqlite::SqliteStore;
use crate::vault::SecretsVault;

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
    let vault = match settings.transform_secrets {
        Some(TransformSecrets::SecretsManager) => {
            let config = aws_config::load_from_env().await;
            Some(SecretsVault::new(
                &config,
                settings.defender_execution_role.clone(),
            ))
        }
        _ => None,
    };
    let limits = crate::serve::Limits::of(&settings);
    let state = AppState::with_vault(Arc::new(store), settings, vault);
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
    crate::serve::serve(listener, crate::app(state), limits, shutdown()).await;
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

/// Where the first admin's password comes from on Lambda.
#[derive(Clone, Debug, Default)]
pub struct AdminSource {
    pub username: String,
    /// `CONSOLE_ADMIN_PASSWORD`.
    pub password: Option<String>,
    /// `CONSOLE_ADMIN_PASSWORD_SECRET_ARN`: a Secrets Manager secret whose string is the
    /// password (read only when the store has no user yet).
    pub secret_arn: Option<String>,
}

impl AdminSource {
    /// Reads `CONSOLE_ADMIN_USER` (default `admin`), `CONSOLE_ADMIN_PASSWORD` and
    /// `CONSOLE_ADMIN_PASSWORD_SECRET_ARN`.
    pub fn from_env() -> AdminSource {
        let (username, password) = admin_from_env();
        AdminSource {
            username,
            password,
            secret_arn: std::env::var("CONSOLE_ADMIN_PASSWORD_SECRET_ARN")
                .ok()
                .filter(|s| !s.is_empty()),
        }
    }
}

/// The console state on DynamoDB table `table`, with the first admin created from `admin` when
/// the table has no user.
pub async fn lambda_state(
    config: &aws_config::SdkConfig,
    table: &str,
    admin: AdminSource,
    settings: Settings,
) -> anyhow::Result<AppState> {
    let store = DynamoStore::new(aws_sdk_dynamodb::Client::new(config), table);
    // On Lambda the transform keeps the credentials it creates in Secrets Manager unless told
    // `CONSOLE_TRANSFORM_SECRETS=plain`.
    let vault = (settings.transform_secrets != Some(TransformSecrets::Plain))
        .then(|| SecretsVault::new(config, settings.defender_execution_role.clone()));
    let state = AppState::with_vault(Arc::new(store), settings, vault);
    if state
        .store()
        .has_users()
        .await
        .context("reading the console table")?
    {
        return Ok(state);
    }
    let password = match (admin.password, admin.secret_arn) {
        (Some(p), _) => Some(p),
        (None, Some(arn)) => {
            let out = aws_sdk_secretsmanager::Client::new(config)
                .get_secret_value()
                .secret_id(&arn)
                .send()
                .await
                .map_err(|e| {
                    anyhow::anyhow!(
                        "CONSOLE_ADMIN_PASSWORD_SECRET_ARN: cannot read the secret: {}",
                        aws_sdk_secretsmanager::error::DisplayErrorContext(e)
                    )
                })?;
            Some(out.secret_string().map(str::to_string).context(
                "CONSOLE_ADMIN_PASSWORD_SECRET_ARN: the secret has no string value; store the \
                 password as SecretString",
            )?)
        }
        (None, None) => None,
    };
    if ensure_admin(&state, &admin.username, password, false).await? == Bootstrap::NoPassword {
        tracing::warn!(
            "the console has no users: set CONSOLE_ADMIN_PASSWORD or \
             CONSOLE_ADMIN_PASSWORD_SECRET_ARN to create the first admin"
        );
    }
    Ok(state)
}

/// Runs under the Lambda runtime (`AWS_LAMBDA_RUNTIME_API` set), storing in the DynamoDB
/// table `CONSOLE_TABLE`.
pub async fn run_lambda(settings: Settings) -> anyhow::Result<()> {
    let table = std::env::var("CONSOLE_TABLE")
        .ok()
        .filter(|s| !s.is_empty())
        .context("CONSOLE_TABLE: not set; name the console's DynamoDB table")?;
    let config = aws_config::load_from_env().await;
    let state = lambda_state(&config, &table, AdminSource::from_env(), settings).await?;
    lambda_http::run(crate::app(state))
        .await
        .map_err(|e| anyhow::anyhow!("lambda runtime: {e}"))
}
