//! The task execution role that lets ECS read the family's defender credential secret.
//!
//! - `--execution-role ARN`, or the task definition's own `executionRoleArn`: the secret this
//!   tool manages gets a resource policy allowing that role `secretsmanager:GetSecretValue`
//!   (same account: the resource policy alone grants it; the role is not modified).
//! - No role at all (the seed's sample has none): a role of the family's own
//!   ([`role_name`]) with the ECS task-execution managed policy and an inline policy reading
//!   that one secret, created once and reused.

use serde_json::json;

use super::aws::{classify, AwsCallError, AwsClients};
use super::DeployError;

/// The AWS managed policy every Fargate task execution role carries (image pulls, logs).
pub const ECS_EXECUTION_POLICY: &str =
    "arn:aws:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy";
/// The inline policy that reads the defender credential.
pub const READ_TOKEN_POLICY: &str = "read-defender-token";

/// The role made for task family `family` (IAM role names hold at most 64 characters).
pub fn role_name(family: &str) -> String {
    let mut name = format!("fargate-defender-exec-{family}");
    name.truncate(64);
    name
}

/// What the deployment did about the execution role, for the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExecutionRole {
    /// The given or existing role; the secret's resource policy lets it read the credential.
    Granted { arn: String },
    /// The family's role from an earlier run.
    Reused { arn: String },
    /// A new role.
    Created { arn: String },
    /// Dry run: what a real run would do.
    Would { arn: String, what: String },
}

impl ExecutionRole {
    /// The role's ARN.
    pub fn arn(&self) -> &str {
        match self {
            ExecutionRole::Granted { arn }
            | ExecutionRole::Reused { arn }
            | ExecutionRole::Created { arn }
            | ExecutionRole::Would { arn, .. } => arn,
        }
    }

    /// One line for the user.
    pub fn describe(&self) -> String {
        match self {
            ExecutionRole::Granted { arn } => format!(
                "execution role {arn}: allowed to read the defender credential (secret resource \
                 policy)"
            ),
            ExecutionRole::Reused { arn } => format!("execution role: reusing {arn}"),
            ExecutionRole::Created { arn } => format!(
                "execution role: the task had none; created {arn} (ECS task execution policy + \
                 read access to the defender credential secret); --execution-role ARN chooses \
                 another"
            ),
            ExecutionRole::Would { what, .. } => format!("execution role: would {what}"),
        }
    }
}

fn read_secret_statement(principal: Option<&str>, secret_arn: &str) -> serde_json::Value {
    let mut st = json!({
        "Sid": "DefenderReadsItsCredential",
        "Effect": "Allow",
        "Action": "secretsmanager:GetSecretValue",
        "Resource": secret_arn,
    });
    if let Some(p) = principal {
        st["Principal"] = json!({ "AWS": p });
        st["Resource"] = json!("*");
    }
    st
}

/// Makes sure the task's execution role can read `secret_arn`; returns the role to put in the
/// task definition. `role` is `--execution-role` or the task's own `executionRoleArn`.
pub async fn ensure(
    clients: &AwsClients,
    family: &str,
    role: Option<&str>,
    secret_arn: &str,
    dry_run: bool,
) -> Result<ExecutionRole, DeployError> {
    let name = role_name(family);
    // The family's own role (named in the revision an earlier run registered) is ours to keep.
    let role = role.filter(|arn| !arn.ends_with(&format!(":role/{name}")));
    if let Some(arn) = role {
        if dry_run {
            return Ok(ExecutionRole::Would {
                arn: arn.to_string(),
                what: format!("allow {arn} to read the defender credential secret"),
            });
        }
        let policy = json!({
            "Version": "2012-10-17",
            "Statement": [read_secret_statement(Some(arn), secret_arn)],
        });
        clients
            .put_secret_policy(secret_arn, &policy.to_string())
            .await?;
        return Ok(ExecutionRole::Granted {
            arn: arn.to_string(),
        });
    }
    if let Some(arn) = clients.role_arn(&name).await? {
        if !dry_run {
            // The secret may be new (deleted and made again): keep the inline grant current.
            put_read_policy(clients, &name, secret_arn).await?;
        }
        return Ok(ExecutionRole::Reused { arn });
    }
    if dry_run {
        return Ok(ExecutionRole::Would {
            arn: format!("arn:aws:iam::000000000000:role/{name}"),
            what: format!(
                "create role {name} (ECS task execution policy + read access to the defender \
                 credential secret); the ARN shown is a stand-in"
            ),
        });
    }
    let trust = json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Principal": { "Service": "ecs-tasks.amazonaws.com" },
            "Action": "sts:AssumeRole",
        }],
    });
    let arn = clients
        .create_role(
            &name,
            &trust.to_string(),
            &format!("Task execution role of ECS task family {family}, made by deploy-protected"),
            family,
        )
        .await?;
    clients
        .attach_role_policy(&name, ECS_EXECUTION_POLICY)
        .await?;
    put_read_policy(clients, &name, secret_arn).await?;
    Ok(ExecutionRole::Created { arn })
}

async fn put_read_policy(
    clients: &AwsClients,
    role: &str,
    secret_arn: &str,
) -> Result<(), AwsCallError> {
    let policy = json!({
        "Version": "2012-10-17",
        "Statement": [read_secret_statement(None, secret_arn)],
    });
    clients
        .put_role_policy(role, READ_TOKEN_POLICY, &policy.to_string())
        .await
}

impl AwsClients {
    /// GetRole: the role, or `None` when it does not exist.
    pub async fn get_role(
        &self,
        name: &str,
    ) -> Result<Option<aws_sdk_iam::types::Role>, AwsCallError> {
        const ACTION: &str = "iam:GetRole";
        match self.iam().get_role().role_name(name).send().await {
            Ok(out) => Ok(out.role),
            Err(e) => match classify(ACTION, e) {
                AwsCallError::Service { code, .. } if code == "NoSuchEntity" => Ok(None),
                other => Err(other),
            },
        }
    }

    /// The role's ARN, or `None` when it does not exist.
    pub async fn role_arn(&self, name: &str) -> Result<Option<String>, AwsCallError> {
        Ok(self.get_role(name).await?.map(|r| r.arn))
    }

    /// CreateRole with a trust policy, tagged with the family.
    pub async fn create_role(
        &self,
        name: &str,
        trust_policy: &str,
        description: &str,
        family: &str,
    ) -> Result<String, AwsCallError> {
        const ACTION: &str = "iam:CreateRole";
        let tag = aws_sdk_iam::types::Tag::builder()
            .key("fargate-defender:family")
            .value(family)
            .build()
            .map_err(|e| AwsCallError::Transport {
                action: ACTION,
                detail: e.to_string(),
            })?;
        let out = self
            .iam()
            .create_role()
            .role_name(name)
            .assume_role_policy_document(trust_policy)
            .description(description)
            .tags(tag)
            .send()
            .await
            .map_err(|e| classify(ACTION, e))?;
        Ok(out.role.map(|r| r.arn).unwrap_or_default())
    }

    /// AttachRolePolicy of a managed policy.
    pub async fn attach_role_policy(&self, role: &str, policy: &str) -> Result<(), AwsCallError> {
        const ACTION: &str = "iam:AttachRolePolicy";
        self.iam()
            .attach_role_policy()
            .role_name(role)
            .policy_arn(policy)
            .send()
            .await
            .map_err(|e| classify(ACTION, e))?;
        Ok(())
    }

    /// PutRolePolicy (inline; replaces one of the same name).
    pub async fn put_role_policy(
        &self,
        role: &str,
        name: &str,
        document: &str,
    ) -> Result<(), AwsCallError> {
        const ACTION: &str = "iam:PutRolePolicy";
        self.iam()
            .put_role_policy()
            .role_name(role)
            .policy_name(name)
            .policy_document(document)
            .send()
            .await
            .map_err(|e| classify(ACTION, e))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_names_fit_iam() {
        assert_eq!(role_name("web"), "fargate-defender-exec-web");
        assert_eq!(role_name(&"x".repeat(255)).len(), 64);
    }

    #[test]
    fn statements_name_the_secret_or_the_principal() {
        let arn = "arn:aws:secretsmanager:us-east-1:1:secret:s";
        assert_eq!(read_secret_statement(None, arn)["Resource"], arn);
        let st = read_secret_statement(Some("arn:aws:iam::1:role/r"), arn);
        assert_eq!(st["Principal"]["AWS"], "arn:aws:iam::1:role/r");
        assert_eq!(st["Resource"], "*");
    }
}
