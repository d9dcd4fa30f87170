//! The deployment's defender credential when no flag names one: a token from the console's
//! install bundle, kept in a Secrets Manager secret of the task family's own
//! ([`secret_name`]), created once and reused by every later deployment of the family.

use super::aws::AwsClients;
use super::DeployError;
use crate::console::Console;

pub use protect::embed::{
    credential_secret_name as secret_name, SECRET_TAG_CREDENTIAL as TAG_CREDENTIAL,
    SECRET_TAG_FAMILY as TAG_FAMILY,
};

/// Where the credential came from, for the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CredentialSecret {
    /// The family's secret exists from an earlier deployment.
    Reused { name: String, arn: String },
    /// The secret's credential was revoked (or is unknown to the console, or no longer covers
    /// the family): a new one replaced it in the same secret.
    Renewed {
        name: String,
        arn: String,
        id: String,
        old: String,
    },
    /// A new credential, stored in a new secret.
    Created {
        name: String,
        arn: String,
        id: String,
    },
    /// `--dry-run` and no secret yet: it would be created; `arn` is a stand-in.
    WouldCreate { name: String, arn: String },
}

impl CredentialSecret {
    /// The ARN the task definition references.
    pub fn arn(&self) -> &str {
        match self {
            CredentialSecret::Reused { arn, .. }
            | CredentialSecret::Renewed { arn, .. }
            | CredentialSecret::Created { arn, .. }
            | CredentialSecret::WouldCreate { arn, .. } => arn,
        }
    }

    /// One line for the user.
    pub fn describe(&self) -> String {
        match self {
            CredentialSecret::Reused { name, .. } => {
                format!("defender credential: reusing secret {name}")
            }
            CredentialSecret::Renewed { name, id, old, .. } => format!(
                "defender credential: {old} in secret {name} is revoked or unknown to the \
                 console; created {id} in its place"
            ),
            CredentialSecret::Created { name, id, .. } => format!(
                "defender credential: created {id} in the console and stored it in secret {name}"
            ),
            CredentialSecret::WouldCreate { name, .. } => format!(
                "defender credential: would create one in the console and store it in secret \
                 {name} (dry run: the ARN shown is a stand-in)"
            ),
        }
    }
}

/// The family's secret, created (with a fresh console credential) when it does not exist.
pub async fn ensure_secret(
    clients: &AwsClients,
    family: &str,
    console: &Console,
    dry_run: bool,
) -> Result<CredentialSecret, DeployError> {
    let name = secret_name(family);
    if let Some((arn, tags)) = clients.secret_arn_and_tags(&name).await? {
        // The tag names the console credential inside; the console says whether it still
        // works for this family (the secret's value itself is never read here).
        let Some(old) = tags
            .into_iter()
            .find(|(k, _)| k == TAG_CREDENTIAL)
            .map(|(_, v)| v)
        else {
            return Ok(CredentialSecret::Reused { name, arn });
        };
        let usable = console
            .credential(&old)?
            .is_some_and(|c| c.revoked_at.is_none() && c.scope.allows_task(family));
        if usable || dry_run {
            return Ok(CredentialSecret::Reused { name, arn });
        }
        let bundle = console.install_bundle(&format!("deploy: {family}"), family)?;
        clients.put_secret_value(&arn, &bundle.token).await?;
        clients
            .tag_secret(&arn, &[(TAG_CREDENTIAL, &bundle.id)])
            .await?;
        return Ok(CredentialSecret::Renewed {
            name,
            arn,
            id: bundle.id,
            old,
        });
    }
    if dry_run {
        let arn = format!(
            "arn:aws:secretsmanager:{}:000000000000:secret:{name}",
            clients.region()
        );
        return Ok(CredentialSecret::WouldCreate { name, arn });
    }
    let bundle = console.install_bundle(&format!("deploy: {family}"), family)?;
    let description = format!(
        "Defender credential of ECS task family {family} (console credential {}); read by the \
         task execution role, injected as DEFENDER_TOKEN",
        bundle.id
    );
    let arn = clients
        .create_secret(
            &name,
            &description,
            &bundle.token,
            &[(TAG_FAMILY, family), (TAG_CREDENTIAL, &bundle.id)],
        )
        .await?;
    Ok(CredentialSecret::Created {
        name,
        arn,
        id: bundle.id,
    })
}
