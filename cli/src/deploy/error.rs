//! Why a deployment failed, in words a user can act on, and the exit code for each.

use std::time::Duration;

use super::aws::AwsCallError;
use super::DeploySummary;

/// A transform failure, as returned by the transform the caller plugs in.
pub type TransformFailure = Box<dyn std::error::Error + Send + Sync>;

/// Why a deployment stopped.
#[derive(Debug, thiserror::Error)]
pub enum DeployError {
    /// A setting is missing or inconsistent.
    #[error("{0}")]
    InvalidSettings(String),
    /// DescribeTaskDefinition found no ACTIVE revision of the family.
    #[error(
        "task definition family `{family}` has no ACTIVE revision in region {region}: check \
         --family and --region (or AWS_REGION / the profile's region)"
    )]
    UnknownFamily {
        /// The family asked for.
        family: String,
        /// The region searched.
        region: String,
    },
    /// DescribeTaskDefinition found no such revision.
    #[error(
        "task definition `{family}:{revision}` does not exist in region {region}: check \
         --revision (omit it to use the latest ACTIVE revision)"
    )]
    UnknownRevision {
        /// The family asked for.
        family: String,
        /// The revision asked for.
        revision: i64,
        /// The region searched.
        region: String,
    },
    /// The cluster does not exist in this region.
    #[error(
        "cluster `{cluster}` was not found in region {region} (ClusterNotFoundException): check \
         --cluster and --region"
    )]
    ClusterNotFound {
        /// The cluster asked for.
        cluster: String,
        /// The region searched.
        region: String,
    },
    /// A subnet or security group id does not exist.
    #[error("{kind} `{id}` does not exist in region {region}: check --{flag}")]
    NetworkResourceNotFound {
        /// `subnet` or `security group`.
        kind: &'static str,
        /// The flag that named it.
        flag: &'static str,
        /// The id (or ids) AWS reported.
        id: String,
        /// The region searched.
        region: String,
    },
    /// Subnets and security groups are in different VPCs.
    #[error(
        "subnet `{subnet}` is in {subnet_vpc} but security group `{group}` is in {group_vpc}: \
         a Fargate task's subnets and security groups must be in one VPC; fix --subnets or \
         --security-groups"
    )]
    VpcMismatch {
        /// A subnet id.
        subnet: String,
        /// Its VPC.
        subnet_vpc: String,
        /// A security group id.
        group: String,
        /// Its VPC.
        group_vpc: String,
    },
    /// A new service without `--subnets`, in a region with no default VPC.
    #[error(
        "service `{service}` does not exist and region {region} has no default VPC to create it \
         in: pass --subnets and --security-groups (subnets and security groups of one VPC)"
    )]
    NoDefaultVpc {
        /// Service name.
        service: String,
        /// The region searched.
        region: String,
    },
    /// A new service without `--subnets`, and the default VPC has no subnets.
    #[error(
        "service `{service}` does not exist and the default VPC {vpc_id} in region {region} has \
         no subnets to create it in: pass --subnets and --security-groups"
    )]
    NoDefaultSubnets {
        /// Service name.
        service: String,
        /// The default VPC.
        vpc_id: String,
        /// The region searched.
        region: String,
    },
    /// The transform rejected the task definition.
    #[error("cannot protect task definition {source_arn}: {error}")]
    Transform {
        /// The revision that was read.
        source_arn: String,
        /// The transform's error (in the message, not a separate cause, so `{:#}` says it once).
        error: TransformFailure,
    },
    /// The execution role cannot read the credential named by `--token-secret-arn`.
    #[error(
        "execution role {role} cannot read the defender credential {secret}: {reason}; ECS \
         would fail to start the task. Add this statement to the role's policies: {statement} \
         (or pass --execution-role ARN of a role that may read it, or omit --token-secret-arn \
         to let deploy-protected keep the credential in a secret of its own)"
    )]
    ExecutionRoleCannotRead {
        /// The task's execution role.
        role: String,
        /// The secret or parameter.
        secret: String,
        /// What the role's policies say.
        reason: String,
        /// The missing statement (JSON).
        statement: String,
    },
    /// The existing service is being deleted.
    #[error(
        "service `{service}` in cluster `{cluster}` is DRAINING (being deleted): wait until it \
         is INACTIVE or choose another --service"
    )]
    ServiceDraining {
        /// Service name.
        service: String,
        /// Cluster name.
        cluster: String,
    },
    /// An AWS call failed.
    #[error(transparent)]
    Aws(#[from] AwsCallError),
    /// A console call failed.
    #[error(transparent)]
    Console(#[from] crate::console::ConsoleError),
    /// The service did not reach a steady state; what was done is in the summary.
    #[error("{reason}")]
    NotSteady {
        /// Why the wait failed.
        reason: WaitFailure,
        /// What the deployment did before the wait failed.
        summary: Box<DeploySummary>,
    },
}

/// Why waiting for a steady state failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WaitFailure {
    /// The time limit passed.
    #[error(
        "service `{service}` did not reach a steady state within {}: {status}{}",
        humantime::format_duration(*.timeout),
        rollback_note(.rolled_back_to)
    )]
    Timeout {
        /// Service name.
        service: String,
        /// The limit.
        timeout: Duration,
        /// The last status seen.
        status: String,
        /// Revision the service was put back on, when `--rollback` did so.
        rolled_back_to: Option<String>,
    },
    /// ECS marked the deployment FAILED (deployment circuit breaker).
    #[error("deployment of service `{service}` failed: {reason}{}", rollback_note(.rolled_back_to))]
    Failed {
        /// Service name.
        service: String,
        /// ECS's reason.
        reason: String,
        /// Revision the service was put back on, when `--rollback` did so.
        rolled_back_to: Option<String>,
    },
    /// The service disappeared while waiting.
    #[error("service `{service}` disappeared while waiting for a steady state")]
    Vanished {
        /// Service name.
        service: String,
    },
}

fn rollback_note(rolled_back_to: &Option<String>) -> String {
    match rolled_back_to {
        Some(arn) => format!("; rolled back to {arn}"),
        None => String::new(),
    }
}

impl DeployError {
    /// Exit code per the contract: 2 for input the user must fix, 1 for runtime failures.
    pub fn exit_code(&self) -> u8 {
        match self {
            // An image that could not be read for a registry or network reason.
            DeployError::Transform { error, .. }
                if error
                    .downcast_ref::<crate::images::ImageError>()
                    .is_some_and(|e| e.exit_code() == 1) =>
            {
                1
            }
            DeployError::InvalidSettings(_)
            | DeployError::UnknownFamily { .. }
            | DeployError::UnknownRevision { .. }
            | DeployError::ClusterNotFound { .. }
            | DeployError::NetworkResourceNotFound { .. }
            | DeployError::VpcMismatch { .. }
            | DeployError::NoDefaultVpc { .. }
            | DeployError::NoDefaultSubnets { .. }
            | DeployError::ExecutionRoleCannotRead { .. }
            | DeployError::Transform { .. } => 2,
            DeployError::Console(e) if e.is_usage() => 2,
            DeployError::ServiceDraining { .. }
            | DeployError::Console(_)
            | DeployError::Aws(_)
            | DeployError::NotSteady { .. } => 1,
        }
    }

    /// The partial summary of a deployment that mutated AWS before failing.
    pub fn summary(&self) -> Option<&DeploySummary> {
        match self {
            DeployError::NotSteady { summary, .. } => Some(summary),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_the_fix() {
        let e = DeployError::UnknownFamily {
            family: "web".into(),
            region: "eu-west-1".into(),
        };
        assert_eq!(
            e.to_string(),
            "task definition family `web` has no ACTIVE revision in region eu-west-1: check \
             --family and --region (or AWS_REGION / the profile's region)"
        );
        assert_eq!(e.exit_code(), 2);
        let e = DeployError::Aws(AwsCallError::AccessDenied {
            action: "ecs:CreateService",
            message: "User: arn:aws:iam::1:user/ci is not authorized".into(),
        });
        assert_eq!(
            e.to_string(),
            "access denied for ecs:CreateService: User: arn:aws:iam::1:user/ci is not \
             authorized; grant `ecs:CreateService` to the caller \
             (infra/iam/deploy-protected-policy.json lists every action needed)"
        );
        assert_eq!(e.exit_code(), 1);
        let e = DeployError::NoDefaultVpc {
            service: "web".into(),
            region: "eu-west-1".into(),
        };
        assert_eq!(
            e.to_string(),
            "service `web` does not exist and region eu-west-1 has no default VPC to create it \
             in: pass --subnets and --security-groups (subnets and security groups of one VPC)"
        );
        assert_eq!(e.exit_code(), 2);
        let w = WaitFailure::Timeout {
            service: "web".into(),
            timeout: Duration::from_secs(600),
            status: "running 0/1, 2 deployments".into(),
            rolled_back_to: Some("arn:td:1".into()),
        };
        assert_eq!(
            w.to_string(),
            "service `web` did not reach a steady state within 10m: running 0/1, 2 \
             deployments; rolled back to arn:td:1"
        );
    }
}
