//! Before any change: can the task's execution role read the credential that
//! `--token-secret-arn` names? ECS reads the secret with that role when it starts the task; a
//! role that cannot leaves every task stuck in `ResourceInitializationError`, long after the
//! deployment reported success.
//!
//! The role's inline, attached and boundary policies and the secret's resource policy are read
//! from IAM and Secrets Manager and evaluated by [`super::iam_eval`].

use serde_json::{json, Value};

use super::aws::{classify, AwsCallError, AwsClients};
use super::iam_eval::{self, Decision, NamedPolicy};
use super::DeployError;

/// The read ECS performs for a `valueFrom`, and the resource ARN it is checked on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretRead {
    /// `secretsmanager:GetSecretValue` or `ssm:GetParameters`.
    pub action: &'static str,
    /// The secret's or parameter's ARN.
    pub resource: String,
    /// Secrets Manager (which has resource policies) or SSM.
    pub secrets_manager: bool,
}

impl SecretRead {
    /// What ECS does for `value_from` (a Secrets Manager ARN, an SSM parameter ARN, or an SSM
    /// parameter name in the task's region, resolved in `account`).
    pub fn of(value_from: &str, region: &str, account: &str) -> SecretRead {
        if value_from.starts_with("arn:") {
            let service = value_from.split(':').nth(2).unwrap_or_default();
            if service == "secretsmanager" {
                // `valueFrom` may add `:json-key:version-stage:version-id`; the secret is the
                // first seven fields.
                let resource = value_from
                    .splitn(8, ':')
                    .take(7)
                    .collect::<Vec<_>>()
                    .join(":");
                return SecretRead {
                    action: "secretsmanager:GetSecretValue",
                    resource,
                    secrets_manager: true,
                };
            }
            return SecretRead {
                action: "ssm:GetParameters",
                resource: value_from.to_string(),
                secrets_manager: false,
            };
        }
        SecretRead {
            action: "ssm:GetParameters",
            resource: format!(
                "arn:aws:ssm:{region}:{account}:parameter/{}",
                value_from.trim_start_matches('/')
            ),
            secrets_manager: false,
        }
    }

    /// The statement that would grant the read.
    pub fn statement(&self) -> Value {
        json!({"Effect": "Allow", "Action": self.action, "Resource": self.resource})
    }
}

/// The role's name in its ARN (`arn:aws:iam::ACCOUNT:role/PATH/NAME`).
pub fn role_name_of(arn: &str) -> Option<&str> {
    let rest = arn.split_once(":role/")?.1;
    rest.rsplit('/').next().filter(|n| !n.is_empty())
}

/// Checks that `role_arn` may read `value_from`; on success, one line for the user.
pub async fn check(
    clients: &AwsClients,
    role_arn: &str,
    value_from: &str,
) -> Result<String, DeployError> {
    let role = role_name_of(role_arn).ok_or_else(|| {
        DeployError::InvalidSettings(format!(
            "execution role {role_arn:?} is not an IAM role ARN \
             (arn:aws:iam::ACCOUNT:role/NAME); fix --execution-role or the task's \
             executionRoleArn"
        ))
    })?;
    let account = iam_eval::account_of(role_arn).unwrap_or_default();
    let read = SecretRead::of(value_from, clients.region(), account);
    let Some(found) = clients.get_role(role).await? else {
        return Err(DeployError::InvalidSettings(format!(
            "execution role {role_arn} does not exist: create it, or pass --execution-role ARN \
             of one that does (or none, and deploy-protected makes one)"
        )));
    };
    let mut identity = Vec::new();
    for (name, document) in clients.inline_policies(role).await? {
        identity.push(NamedPolicy {
            source: format!("inline policy {name}"),
            document,
        });
    }
    for arn in clients.attached_policies(role).await? {
        let document = clients.managed_policy_document(&arn).await?;
        identity.push(NamedPolicy {
            source: format!("managed policy {arn}"),
            document,
        });
    }
    let boundary_arn = found
        .permissions_boundary
        .and_then(|b| b.permissions_boundary_arn);
    let boundary = match boundary_arn.as_deref() {
        Some(arn) => Some(NamedPolicy {
            source: format!("permissions boundary {arn}"),
            document: clients.managed_policy_document(arn).await?,
        }),
        None => None,
    };
    let resource_policy = if read.secrets_manager {
        clients
            .secret_resource_policy(&read.resource)
            .await?
            .map(|document| NamedPolicy {
                source: "the secret's resource policy".to_string(),
                document,
            })
    } else {
        None
    };
    match iam_eval::evaluate(
        role_arn,
        &identity,
        boundary.as_ref(),
        resource_policy.as_ref(),
        read.action,
        &read.resource,
    ) {
        Decision::Allowed { by, conditional } => Ok(format!(
            "execution role {role_arn} may read the defender credential ({by}{})",
            if conditional {
                "; under the statement's conditions, which AWS checks when the task starts"
            } else {
                ""
            }
        )),
        Decision::Denied { by } => Err(cannot_read(
            role_arn,
            &read,
            format!("{by} denies {}", read.action),
        )),
        Decision::NotAllowed { reason } => Err(cannot_read(
            role_arn,
            &read,
            format!("{reason} ({})", read.action),
        )),
    }
}

fn cannot_read(role: &str, read: &SecretRead, reason: String) -> DeployError {
    DeployError::ExecutionRoleCannotRead {
        role: role.to_string(),
        secret: read.resource.clone(),
        reason,
        statement: read.statement().to_string(),
    }
}

/// IAM returns policy documents URL-encoded (RFC 3986).
fn policy_json(action: &'static str, encoded: &str) -> Result<Value, AwsCallError> {
    let text = percent_encoding::percent_decode_str(encoded).decode_utf8_lossy();
    serde_json::from_str(&text).map_err(|e| AwsCallError::Transport {
        action,
        detail: format!("the policy document is not JSON: {e}"),
    })
}

impl AwsClients {
    /// ListRolePolicies + GetRolePolicy: the role's inline policies.
    pub async fn inline_policies(&self, role: &str) -> Result<Vec<(String, Value)>, AwsCallError> {
        let mut names = Vec::new();
        let mut marker = None;
        loop {
            let out = self
                .iam()
                .list_role_policies()
                .role_name(role)
                .set_marker(marker.take())
                .send()
                .await
                .map_err(|e| classify("iam:ListRolePolicies", e))?;
            names.extend(out.policy_names);
            match (out.is_truncated, out.marker) {
                (true, Some(m)) => marker = Some(m),
                _ => break,
            }
        }
        let mut policies = Vec::new();
        for name in names {
            const ACTION: &str = "iam:GetRolePolicy";
            let out = self
                .iam()
                .get_role_policy()
                .role_name(role)
                .policy_name(&name)
                .send()
                .await
                .map_err(|e| classify(ACTION, e))?;
            policies.push((name, policy_json(ACTION, &out.policy_document)?));
        }
        Ok(policies)
    }

    /// ListAttachedRolePolicies: the ARNs of the role's managed policies.
    pub async fn attached_policies(&self, role: &str) -> Result<Vec<String>, AwsCallError> {
        let mut arns = Vec::new();
        let mut marker = None;
        loop {
            let out = self
                .iam()
                .list_attached_role_policies()
                .role_name(role)
                .set_marker(marker.take())
                .send()
                .await
                .map_err(|e| classify("iam:ListAttachedRolePolicies", e))?;
            arns.extend(
                out.attached_policies
                    .unwrap_or_default()
                    .into_iter()
                    .filter_map(|p| p.policy_arn),
            );
            match (out.is_truncated, out.marker) {
                (true, Some(m)) => marker = Some(m),
                _ => break,
            }
        }
        Ok(arns)
    }

    /// GetPolicy + GetPolicyVersion: a managed policy's default document.
    pub async fn managed_policy_document(&self, arn: &str) -> Result<Value, AwsCallError> {
        let policy = self
            .iam()
            .get_policy()
            .policy_arn(arn)
            .send()
            .await
            .map_err(|e| classify("iam:GetPolicy", e))?;
        let version = policy
            .policy
            .and_then(|p| p.default_version_id)
            .unwrap_or_else(|| "v1".to_string());
        const ACTION: &str = "iam:GetPolicyVersion";
        let out = self
            .iam()
            .get_policy_version()
            .policy_arn(arn)
            .version_id(version)
            .send()
            .await
            .map_err(|e| classify(ACTION, e))?;
        let document = out
            .policy_version
            .and_then(|v| v.document)
            .unwrap_or_default();
        policy_json(ACTION, &document)
    }

    /// GetResourcePolicy of a secret: its policy, if it has one.
    pub async fn secret_resource_policy(
        &self,
        secret: &str,
    ) -> Result<Option<Value>, AwsCallError> {
        const ACTION: &str = "secretsmanager:GetResourcePolicy";
        let out = self
            .secrets()
            .get_resource_policy()
            .secret_id(secret)
            .send()
            .await
            .map_err(|e| classify(ACTION, e))?;
        match out.resource_policy {
            Some(text) if !text.trim().is_empty() => {
                serde_json::from_str(&text)
                    .map(Some)
                    .map_err(|e| AwsCallError::Transport {
                        action: ACTION,
                        detail: format!("the resource policy is not JSON: {e}"),
                    })
            }
            _ => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn value_from_names_the_read() {
        let sm = SecretRead::of(
            "arn:aws:secretsmanager:us-east-1:1:secret:app/token-AbCdEf:token::",
            "us-east-1",
            "1",
        );
        assert_eq!(sm.action, "secretsmanager:GetSecretValue");
        assert_eq!(
            sm.resource,
            "arn:aws:secretsmanager:us-east-1:1:secret:app/token-AbCdEf"
        );
        assert!(sm.secrets_manager);
        let p = SecretRead::of(
            "arn:aws:ssm:eu-west-1:1:parameter/app/token",
            "us-east-1",
            "1",
        );
        assert_eq!(
            (p.action, p.resource.as_str()),
            (
                "ssm:GetParameters",
                "arn:aws:ssm:eu-west-1:1:parameter/app/token"
            )
        );
        let name = SecretRead::of("/app/token", "us-east-1", "1");
        assert_eq!(name.resource, "arn:aws:ssm:us-east-1:1:parameter/app/token");
        assert_eq!(
            name.statement(),
            json!({"Effect": "Allow", "Action": "ssm:GetParameters", "Resource": name.resource})
        );
    }

    #[test]
    fn role_names_come_from_arns() {
        assert_eq!(role_name_of("arn:aws:iam::1:role/exec"), Some("exec"));
        assert_eq!(
            role_name_of("arn:aws:iam::1:role/service-role/ecs/exec"),
            Some("exec")
        );
        assert_eq!(role_name_of("arn:aws:iam::1:user/x"), None);
        assert_eq!(role_name_of("exec"), None);
    }

    #[test]
    fn documents_are_url_decoded() {
        let doc =
            policy_json("iam:GetRolePolicy", "%7B%22Statement%22%3A%5B%5D%7D").unwrap_or_default();
        assert_eq!(doc, json!({"Statement": []}));
        // Already-decoded documents (some endpoints) read the same.
        let doc = policy_json("iam:GetRolePolicy", "{\"Statement\": []}").unwrap_or_default();
        assert_eq!(doc, json!({"Statement": []}));
        assert!(policy_json("iam:GetRolePolicy", "%7B").is_err());
    }
}
