//! Where the transform keeps a defender credential it creates.
//!
//! On Lambda (and locally with `CONSOLE_TRANSFORM_SECRETS=secretsmanager`) the credential goes
//! into the task family's own Secrets Manager secret,
//! [`protect::embed::credential_secret_name`] — the same secret `deploy-protected` keeps —
//! and the protected task reads it through `secrets`/`valueFrom`. A later transform of the
//! family reuses the secret while the console still accepts the credential in it, and puts a
//! fresh one in otherwise. The task's execution role is allowed to read the secret by the
//! secret's resource policy; a task with no role gets `CONSOLE_DEFENDER_EXECUTION_ROLE_ARN`
//! (the role infra/template.yaml makes for that).
//!
//! A local console without it returns the credential in plain `environment`, with a warning.

use aws_sdk_secretsmanager::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_secretsmanager::types::Tag;
use chrono::Utc;
use protect::embed::{credential_secret_name, SECRET_TAG_CREDENTIAL, SECRET_TAG_FAMILY};
use serde_json::json;

use crate::auth::token_hash;
use crate::error::ApiError;
use crate::store::{Store, TokenSubject};

/// Why the credential could not be kept.
#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    /// The console's role lacks a permission.
    #[error(
        "the console may not call {action} on {secret}: {message}; its role needs it (the \
         template in infra/template.yaml grants it on fargate-defender/* secrets)"
    )]
    AccessDenied {
        action: &'static str,
        secret: String,
        message: String,
    },
    /// Secrets Manager failed otherwise.
    #[error("{action} on {secret} failed: {detail}")]
    Failed {
        action: &'static str,
        secret: String,
        detail: String,
    },
}

/// What became of the family's secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kept {
    /// A new secret with a new credential.
    Created { arn: String, credential: String },
    /// The secret and the credential in it, still valid.
    Reused { arn: String },
    /// The secret existed but its credential is no longer accepted: a new one replaced it.
    Renewed { arn: String, credential: String },
}

impl Kept {
    /// The secret's ARN.
    pub fn arn(&self) -> &str {
        match self {
            Kept::Created { arn, .. } | Kept::Reused { arn } | Kept::Renewed { arn, .. } => arn,
        }
    }
}

/// A minted credential: its id and the token (shown once).
pub struct Minted {
    pub id: String,
    pub token: String,
}

/// Secrets Manager, for the transform's credentials.
#[derive(Clone, Debug)]
pub struct SecretsVault {
    client: aws_sdk_secretsmanager::Client,
    /// Given to tasks that have no execution role (`CONSOLE_DEFENDER_EXECUTION_ROLE_ARN`).
    pub default_execution_role: Option<String>,
}

fn classify<E, R>(action: &'static str, secret: &str, err: SdkError<E, R>) -> VaultError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug,
{
    if let SdkError::ServiceError(e) = &err {
        let code = e.err().code().unwrap_or_default();
        let message = e.err().message().unwrap_or_default().to_string();
        if code.starts_with("AccessDenied") || message.contains("not authorized to perform") {
            return VaultError::AccessDenied {
                action,
                secret: secret.to_string(),
                message,
            };
        }
    }
    VaultError::Failed {
        action,
        secret: secret.to_string(),
        detail: DisplayErrorContext(&err).to_string(),
    }
}

fn is_not_found<E: ProvideErrorMetadata, R>(err: &SdkError<E, R>) -> bool {
    matches!(err, SdkError::ServiceError(e) if e.err().code() == Some("ResourceNotFoundException"))
}

impl SecretsVault {
    pub fn new(config: &aws_config::SdkConfig, default_execution_role: Option<String>) -> Self {
        SecretsVault {
            client: aws_sdk_secretsmanager::Client::new(config),
            default_execution_role,
        }
    }

    /// The family's secret holding a credential the console accepts; `mint` makes a new
    /// credential when one is needed.
    pub async fn keep<F, Fut>(
        &self,
        store: &dyn Store,
        family: &str,
        mint: F,
    ) -> Result<Kept, ApiError>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<Minted, ApiError>>,
    {
        let name = credential_secret_name(family);
        let found = match self.client.get_secret_value().secret_id(&name).send().await {
            Ok(out) => Some((
                out.arn.unwrap_or_default(),
                out.secret_string.unwrap_or_default(),
            )),
            Err(e) if is_not_found(&e) => None,
            Err(e) => return Err(classify("secretsmanager:GetSecretValue", &name, e).into()),
        };
        if let Some((arn, token)) = &found {
            if still_accepted(store, token, family).await {
                return Ok(Kept::Reused { arn: arn.clone() });
            }
        }
        let minted = mint().await?;
        if let Some((arn, _)) = found {
            self.client
                .put_secret_value()
                .secret_id(&arn)
                .secret_string(&minted.token)
                .send()
                .await
                .map_err(|e| classify("secretsmanager:PutSecretValue", &name, e))?;
            // The tag names the credential inside (deploy-protected reads it to tell whether
            // the secret still works).
            self.client
                .tag_resource()
                .secret_id(&arn)
                .tags(
                    Tag::builder()
                        .key(SECRET_TAG_CREDENTIAL)
                        .value(&minted.id)
                        .build(),
                )
                .send()
                .await
                .map_err(|e| classify("secretsmanager:TagResource", &name, e))?;
            return Ok(Kept::Renewed {
                arn,
                credential: minted.id,
            });
        }
        let tag = |k: &str, v: &str| Tag::builder().key(k).value(v).build();
        let out = self
            .client
            .create_secret()
            .name(&name)
            .description(format!(
                "Defender credential of ECS task family {family} (console credential {}); read \
                 by the task execution role, injected as DEFENDER_TOKEN",
                minted.id
            ))
            .secret_string(&minted.token)
            .tags(tag(SECRET_TAG_FAMILY, family))
            .tags(tag(SECRET_TAG_CREDENTIAL, &minted.id))
            .send()
            .await
            .map_err(|e| classify("secretsmanager:CreateSecret", &name, e))?;
        Ok(Kept::Created {
            arn: out.arn.unwrap_or_default(),
            credential: minted.id,
        })
    }

    /// Lets `role` read the secret (its resource policy; same account, so this alone grants).
    pub async fn grant(&self, secret_arn: &str, role: &str) -> Result<(), VaultError> {
        let policy = json!({
            "Version": "2012-10-17",
            "Statement": [{
                "Sid": "DefenderReadsItsCredential",
                "Effect": "Allow",
                "Principal": {"AWS": role},
                "Action": "secretsmanager:GetSecretValue",
                "Resource": "*",
            }],
        });
        self.client
            .put_resource_policy()
            .secret_id(secret_arn)
            .resource_policy(policy.to_string())
            .send()
            .await
            .map_err(|e| classify("secretsmanager:PutResourcePolicy", secret_arn, e))?;
        Ok(())
    }
}

impl From<VaultError> for ApiError {
    fn from(e: VaultError) -> ApiError {
        ApiError::Upstream(e.to_string())
    }
}

/// Whether `token` is a defender credential this console still accepts for task family
/// `family` (not revoked, not expired, its scope covers the family).
async fn still_accepted(store: &dyn Store, token: &str, family: &str) -> bool {
    if token.is_empty() {
        return false;
    }
    match store.get_token(&token_hash(token)).await {
        Ok(Some(record)) => {
            matches!(&record.subject, TokenSubject::Defender(d)
                if d.revoked_at.is_none() && d.scope.allows_task(family))
                && record.expires_at.is_none_or(|at| at > Utc::now())
        }
        _ => false,
    }
}
