//! The deploy mode of `deploy-protected`: read a task definition from ECS, protect it with a
//! transform, register it (or reuse an identical latest revision), open the CNAF port, create
//! or update the Fargate service and wait for a steady state.
//!
//! - [`aws`]: the ECS/EC2 calls, errors naming the IAM action.
//! - [`network`]: a new service without `--subnets`: the default VPC and a group made for it.
//! - [`normalize`]: comparing definitions by meaning (reuse instead of duplicate revisions).
//! - [`plan`]: `--dry-run` (diff + the calls that would be made).
//! - [`wait`]: our own steady-state poll loop; [`progress`]: spinner or plain lines.
//! - [`output`]: the summary as text or JSON; [`cmd`]: the flags and the glue `main` calls.
//! - [`error`]: [`DeployError`] and its exit codes.
//! - [`credential`]: the family's defender credential in Secrets Manager; [`exec_role`]: the
//!   execution role that reads it; [`read_check`] and [`iam_eval`]: whether a given role may
//!   read a given credential.
//!
//! Nothing here reads flags: callers build a [`DeploySettings`] and hand in the transform.

pub mod aws;
pub mod cmd;
pub mod credential;
pub mod error;
pub mod exec_role;
pub mod iam_eval;
pub mod network;
pub mod normalize;
pub mod output;
pub mod plan;
pub mod progress;
pub mod read_check;
mod service;
pub mod wait;

use ipnet::IpNet;
use serde::Serialize;
use serde_json::Value;

pub use aws::{AwsClients, AwsVpc};
pub use error::{DeployError, TransformFailure, WaitFailure};
pub use plan::DryRunPlan;
pub use progress::Progress;
pub use wait::WaitSettings;

/// The transform applied to `{"taskDefinition": {...}}` (DescribeTaskDefinition output shape);
/// it returns a RegisterTaskDefinition input. Any `Fn(&Value) -> Result<Value, _>` is one; an
/// async one may read from the network first (the images, see [`cmd::ImageTransform`]).
#[async_trait::async_trait]
pub trait Transform: Sync {
    /// Protects `input`.
    async fn apply(&self, input: &Value) -> Result<Value, TransformFailure>;
}

#[async_trait::async_trait]
impl<F> Transform for F
where
    F: Fn(&Value) -> Result<Value, TransformFailure> + Sync,
{
    async fn apply(&self, input: &Value) -> Result<Value, TransformFailure> {
        self(input)
    }
}

/// The CNAF ingress rule to open on the service's security groups.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CnafIngress {
    /// External (CNAF) TCP port.
    pub port: u16,
    /// Source CIDR (`--cnaf-cidr`, default 0.0.0.0/0).
    pub cidr: IpNet,
}

/// Everything a deployment needs, already validated by the caller's flag parsing.
#[derive(Debug, Clone, PartialEq)]
pub struct DeploySettings {
    /// Task definition family.
    pub family: String,
    /// Revision to read instead of the latest ACTIVE one.
    pub revision: Option<i64>,
    /// ECS cluster name or ARN.
    pub cluster: String,
    /// Service name; defaults to the family.
    pub service: Option<String>,
    /// Subnets, security groups, public IP. When creating a service without them: the default
    /// VPC and a group made for the service; when updating, given values replace the service's.
    pub network: Option<AwsVpc>,
    /// Desired task count (default 1 on create, unchanged on update).
    pub desired_count: Option<i32>,
    /// CNAF ingress rule, when the transform gives the app a CNAF port.
    pub cnaf: Option<CnafIngress>,
    /// Only read, then describe what would be done.
    pub dry_run: bool,
    /// `None` = `--no-wait`.
    pub wait: Option<WaitSettings>,
    /// Put the service back on its previous revision when the wait fails.
    pub rollback: bool,
}

impl DeploySettings {
    /// The service name (`--service`, else the family).
    pub fn service_name(&self) -> &str {
        self.service.as_deref().unwrap_or(&self.family)
    }
}

/// Whether the protected revision was registered or an identical one reused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Registration {
    /// A new revision was registered.
    Registered,
    /// The latest revision already was the protected definition.
    Reused,
}

/// What happened to the service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ServiceAction {
    /// CreateService.
    Created,
    /// UpdateService.
    Updated,
    /// Already on the target revision with the asked settings.
    Unchanged,
}

/// The security group rule the deployment ensured.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RuleSummary {
    /// Security group id.
    pub group_id: String,
    /// Always `tcp`.
    pub protocol: &'static str,
    /// The CNAF port.
    pub port: u16,
    /// Source CIDR.
    pub cidr: String,
    /// `added` or `already-present`.
    pub result: &'static str,
}

/// Whether the group made for the service was created by this run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum GroupOrigin {
    /// CreateSecurityGroup.
    Created,
    /// It already existed (an earlier run made it).
    Reused,
}

/// The default network a new service was given (no `--subnets` / `--security-groups`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NetworkSummary {
    /// The region's default VPC.
    pub vpc_id: String,
    /// Its subnets the service runs in.
    pub subnets: Vec<String>,
    /// The group made for the service.
    pub security_group_id: String,
    /// `fargate-defender-SERVICE`.
    pub security_group_name: String,
    /// Created or reused.
    pub security_group: GroupOrigin,
    /// Always true: tasks in the default VPC's public subnets need a public IP to pull images.
    pub assign_public_ip: bool,
}

/// Where the deployment ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FinalState {
    /// One deployment, running = desired.
    Steady,
    /// `--no-wait`: the deployment was started, not watched.
    NotWaited,
    /// `--wait-timeout` passed.
    TimedOut,
    /// ECS marked the deployment failed, or the service vanished.
    Failed,
}

/// The outcome of a deployment (printed as text or JSON).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeploySummary {
    /// The protected revision's ARN.
    pub task_definition_arn: String,
    /// Registered or reused.
    pub task_definition: Registration,
    /// The service's ARN.
    pub service_arn: String,
    /// Created, updated or unchanged.
    pub service: ServiceAction,
    /// The default network the service was created in; `None` with `--subnets` or on update.
    pub default_network: Option<NetworkSummary>,
    /// CNAF rules ensured (empty without a CNAF port).
    pub security_group_rules: Vec<RuleSummary>,
    /// Where it ended.
    pub final_state: FinalState,
    /// Running tasks at the last observation.
    pub running_count: Option<i32>,
    /// Desired tasks at the last observation.
    pub desired_count: Option<i32>,
    /// Service events that said "unable" while waiting.
    pub events: Vec<String>,
    /// The revision `--rollback` put the service back on.
    pub rolled_back_to: Option<String>,
    /// `--pin-digests`: each image reference replaced by its digest (tag -> digest).
    pub pinned_images: Vec<protect::embed::Pin>,
}

/// A deployment's result: done, or (with `--dry-run`) planned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The deployment ran.
    Deployed(DeploySummary),
    /// `--dry-run`: what would be done.
    DryRun(DryRunPlan),
}

/// Runs one deployment. Every check that can fail on user input (family, cluster, subnets
/// and security groups in one VPC or a default VPC, the transform) happens before the first
/// mutating call.
pub async fn deploy(
    clients: &AwsClients,
    settings: &DeploySettings,
    transform: &dyn Transform,
    progress: &mut dyn Progress,
) -> Result<Outcome, DeployError> {
    service::run(clients, settings, transform, progress).await
}
