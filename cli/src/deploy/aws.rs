//! Thin wrappers over the ECS and EC2 SDK clients: one function per AWS call, each turning SDK
//! errors into [`AwsCallError`] values that name the IAM action involved.
//!
//! Task definitions travel as raw JSON: DescribeTaskDefinition's response body is captured as
//! sent by ECS and RegisterTaskDefinition's request body is the transform's JSON, so every field
//! (including ones newer than this SDK) survives the round trip. The SDK still builds, signs,
//! retries and parses everything else.

use std::sync::{Arc, Mutex};

use aws_sdk_ec2::types::{IpPermission, IpRange, Ipv6Range};
use aws_sdk_ecs::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_ecs::types::{
    AssignPublicIp, AwsVpcConfiguration, LaunchType, NetworkConfiguration, Service,
};
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::context::AfterDeserializationInterceptorContextRef;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::body::SdkBody;
use aws_smithy_types::config_bag::ConfigBag;
use ipnet::IpNet;
use serde_json::Value;

/// Every IAM action the deploy mode calls (the IAM policy in `infra/iam/` lists exactly these,
/// plus the authorization-only `iam:PassRole`, `ecs:TagResource`, `ec2:CreateTags` and
/// `iam:TagRole`).
pub const API_ACTIONS: &[&str] = &[
    "ecs:DescribeTaskDefinition",
    "ecs:RegisterTaskDefinition",
    "ecs:DescribeServices",
    "ecs:CreateService",
    "ecs:UpdateService",
    "ec2:DescribeSubnets",
    "ec2:DescribeSecurityGroups",
    "ec2:AuthorizeSecurityGroupIngress",
    "ec2:DescribeVpcs",
    "ec2:CreateSecurityGroup",
    "secretsmanager:DescribeSecret",
    "secretsmanager:CreateSecret",
    "secretsmanager:PutResourcePolicy",
    "iam:GetRole",
    "iam:CreateRole",
    "iam:AttachRolePolicy",
    "iam:PutRolePolicy",
    "iam:ListRolePolicies",
    "iam:GetRolePolicy",
    "iam:ListAttachedRolePolicies",
    "iam:GetPolicy",
    "iam:GetPolicyVersion",
    "secretsmanager:GetResourcePolicy",
    "secretsmanager:PutSecretValue",
    "secretsmanager:TagResource",
];

/// A failed AWS call, classified so callers can give actionable messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AwsCallError {
    /// The caller lacks the IAM permission `action`.
    AccessDenied {
        /// IAM action, e.g. `ecs:RegisterTaskDefinition`.
        action: &'static str,
        /// AWS's message.
        message: String,
    },
    /// AWS answered with an error code (after the SDK's retries).
    Service {
        /// IAM action of the call.
        action: &'static str,
        /// Error code, e.g. `ClientException`, `InvalidPermission.Duplicate`.
        code: String,
        /// AWS's message.
        message: String,
    },
    /// No usable answer: connection failure, timeout, unparsable response.
    Transport {
        /// IAM action of the call.
        action: &'static str,
        /// The error chain.
        detail: String,
    },
}

impl AwsCallError {
    /// The error code when AWS sent one.
    pub fn code(&self) -> Option<&str> {
        match self {
            AwsCallError::Service { code, .. } => Some(code),
            _ => None,
        }
    }
}

impl std::fmt::Display for AwsCallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AwsCallError::AccessDenied { action, message } => write!(
                f,
                "access denied for {action}: {message}; grant `{action}` to the caller \
                 (infra/iam/deploy-protected-policy.json lists every action needed)"
            ),
            AwsCallError::Service {
                action,
                code,
                message,
            } => write!(f, "{action} failed: {code}: {message}"),
            AwsCallError::Transport { action, detail } => {
                write!(f, "{action} failed: no usable answer from AWS: {detail}")
            }
        }
    }
}

impl std::error::Error for AwsCallError {}

const ACCESS_DENIED_CODES: &[&str] = &[
    "AccessDeniedException",
    "AccessDenied",
    "UnauthorizedOperation",
    "UnauthorizedException",
];

pub(super) fn classify<E, R>(action: &'static str, err: SdkError<E, R>) -> AwsCallError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug,
{
    if let SdkError::ServiceError(service) = &err {
        let e = service.err();
        let code = e.code().unwrap_or("Unknown").to_string();
        let message = e.message().unwrap_or("").to_string();
        if ACCESS_DENIED_CODES.contains(&code.as_str())
            || message.contains("not authorized to perform")
        {
            return AwsCallError::AccessDenied { action, message };
        }
        return AwsCallError::Service {
            action,
            code,
            message,
        };
    }
    AwsCallError::Transport {
        action,
        detail: DisplayErrorContext(&err).to_string(),
    }
}

/// Where AWS settings come from: the standard chain, overridden by `--region` / `--profile`.
/// `AWS_ENDPOINT_URL` (and `AWS_ENDPOINT_URL_ECS` / `_EC2`) are honoured by the chain itself.
pub async fn load_sdk_config(region: Option<&str>, profile: Option<&str>) -> aws_config::SdkConfig {
    let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
    if let Some(profile) = profile {
        loader = loader.profile_name(profile);
    }
    if let Some(region) = region {
        loader = loader.region(aws_config::Region::new(region.to_string()));
    }
    loader.load().await
}

/// The ECS and EC2 clients of one deployment.
#[derive(Debug, Clone)]
pub struct AwsClients {
    ecs: aws_sdk_ecs::Client,
    pub(super) ec2: aws_sdk_ec2::Client,
    secrets: aws_sdk_secretsmanager::Client,
    iam: aws_sdk_iam::Client,
    region: String,
}

/// A task definition revision as ECS describes it.
#[derive(Debug, Clone, PartialEq)]
pub struct CurrentDefinition {
    /// `taskDefinitionArn`.
    pub arn: String,
    /// `revision`.
    pub revision: i64,
    /// The `taskDefinition` object exactly as ECS sent it.
    pub definition: Value,
    /// The revision's tags (`include: TAGS`), possibly empty.
    pub tags: Vec<Value>,
}

/// The awsvpc network settings of a service.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AwsVpc {
    /// Subnet ids.
    pub subnets: Vec<String>,
    /// Security group ids.
    pub security_groups: Vec<String>,
    /// Whether tasks get a public IP.
    pub assign_public_ip: bool,
}

/// A security group rule to open (TCP, one port, one CIDR).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IngressRule {
    /// Security group id.
    pub group_id: String,
    /// TCP port.
    pub port: u16,
    /// Source CIDR (IPv4 or IPv6).
    pub cidr: IpNet,
}

/// What AuthorizeSecurityGroupIngress did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IngressOutcome {
    /// The rule was added.
    Added,
    /// An identical rule already existed (`InvalidPermission.Duplicate`).
    AlreadyPresent,
}

/// Captures a response body as received, for operations whose JSON is kept raw.
#[derive(Debug, Clone, Default)]
struct CaptureBody(Arc<Mutex<Option<Vec<u8>>>>);

impl Intercept for CaptureBody {
    fn name(&self) -> &'static str {
        "CaptureBody"
    }

    fn read_after_deserialization(
        &self,
        context: &AfterDeserializationInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if let Some(bytes) = context.response().body().bytes() {
            let mut slot = self
                .0
                .lock()
                .map_err(|_| "response capture lock poisoned")?;
            *slot = Some(bytes.to_vec());
        }
        Ok(())
    }
}

impl AwsClients {
    /// Clients for `config`.
    pub fn new(config: &aws_config::SdkConfig) -> AwsClients {
        AwsClients {
            ecs: aws_sdk_ecs::Client::new(config),
            ec2: aws_sdk_ec2::Client::new(config),
            secrets: aws_sdk_secretsmanager::Client::new(config),
            iam: aws_sdk_iam::Client::new(config),
            region: config
                .region()
                .map(|r| r.to_string())
                .unwrap_or_else(|| "(no region configured)".to_string()),
        }
    }

    /// DescribeSecret of `name`: its ARN and tags, or `None` when no such secret exists.
    pub async fn secret_arn_and_tags(
        &self,
        name: &str,
    ) -> Result<Option<(String, Vec<(String, String)>)>, AwsCallError> {
        const ACTION: &str = "secretsmanager:DescribeSecret";
        match self.secrets.describe_secret().secret_id(name).send().await {
            Ok(out) => {
                let tags = out
                    .tags()
                    .iter()
                    .filter_map(|t| Some((t.key()?.to_string(), t.value()?.to_string())))
                    .collect();
                Ok(Some((out.arn.unwrap_or_default(), tags)))
            }
            Err(e) => match classify(ACTION, e) {
                AwsCallError::Service { code, .. } if code == "ResourceNotFoundException" => {
                    Ok(None)
                }
                other => Err(other),
            },
        }
    }

    /// PutSecretValue: a new current value of the secret.
    pub async fn put_secret_value(&self, secret: &str, value: &str) -> Result<(), AwsCallError> {
        const ACTION: &str = "secretsmanager:PutSecretValue";
        self.secrets
            .put_secret_value()
            .secret_id(secret)
            .secret_string(value)
            .send()
            .await
            .map_err(|e| classify(ACTION, e))?;
        Ok(())
    }

    /// TagResource on a secret (replaces the values of the keys given).
    pub async fn tag_secret(
        &self,
        secret: &str,
        tags: &[(&str, &str)],
    ) -> Result<(), AwsCallError> {
        const ACTION: &str = "secretsmanager:TagResource";
        let mut req = self.secrets.tag_resource().secret_id(secret);
        for (k, v) in tags {
            req = req.tags(
                aws_sdk_secretsmanager::types::Tag::builder()
                    .key(*k)
                    .value(*v)
                    .build(),
            );
        }
        req.send().await.map_err(|e| classify(ACTION, e))?;
        Ok(())
    }

    /// CreateSecret `name` holding `value`, with `tags`; returns its ARN.
    pub async fn create_secret(
        &self,
        name: &str,
        description: &str,
        value: &str,
        tags: &[(&str, &str)],
    ) -> Result<String, AwsCallError> {
        const ACTION: &str = "secretsmanager:CreateSecret";
        let mut req = self
            .secrets
            .create_secret()
            .name(name)
            .description(description)
            .secret_string(value);
        for (k, v) in tags {
            req = req.tags(
                aws_sdk_secretsmanager::types::Tag::builder()
                    .key(*k)
                    .value(*v)
                    .build(),
            );
        }
        let out = req.send().await.map_err(|e| classify(ACTION, e))?;
        Ok(out.arn.unwrap_or_default())
    }

    /// PutResourcePolicy on a secret.
    pub async fn put_secret_policy(&self, secret: &str, policy: &str) -> Result<(), AwsCallError> {
        const ACTION: &str = "secretsmanager:PutResourcePolicy";
        self.secrets
            .put_resource_policy()
            .secret_id(secret)
            .resource_policy(policy)
            .send()
            .await
            .map_err(|e| classify(ACTION, e))?;
        Ok(())
    }

    /// The Secrets Manager client.
    pub(super) fn secrets(&self) -> &aws_sdk_secretsmanager::Client {
        &self.secrets
    }

    /// The IAM client (the execution role, [`super::exec_role`]).
    pub(super) fn iam(&self) -> &aws_sdk_iam::Client {
        &self.iam
    }

    /// The region the clients talk to (for messages).
    pub fn region(&self) -> &str {
        &self.region
    }

    /// DescribeTaskDefinition of `reference` (`family`, `family:revision` or an ARN) with its
    /// tags, keeping the JSON as ECS sent it.
    pub async fn describe_task_definition(
        &self,
        reference: &str,
    ) -> Result<CurrentDefinition, AwsCallError> {
        const ACTION: &str = "ecs:DescribeTaskDefinition";
        let capture = CaptureBody::default();
        let out = self
            .ecs
            .describe_task_definition()
            .task_definition(reference)
            .include(aws_sdk_ecs::types::TaskDefinitionField::Tags)
            .customize()
            .interceptor(capture.clone())
            .send()
            .await
            .map_err(|e| classify(ACTION, e))?;
        let bad = |detail: String| AwsCallError::Transport {
            action: ACTION,
            detail,
        };
        let raw = capture
            .0
            .lock()
            .map_err(|_| bad("response capture lock poisoned".to_string()))?
            .take()
            .ok_or_else(|| bad("the response body was not captured".to_string()))?;
        let mut body: Value =
            serde_json::from_slice(&raw).map_err(|e| bad(format!("response is not JSON: {e}")))?;
        let definition = body
            .get_mut("taskDefinition")
            .map(Value::take)
            .filter(Value::is_object)
            .ok_or_else(|| bad("response has no taskDefinition object".to_string()))?;
        let typed = out
            .task_definition()
            .ok_or_else(|| bad("response has no taskDefinition".to_string()))?;
        let tags = match body.get_mut("tags").map(Value::take) {
            Some(Value::Array(tags)) => tags,
            _ => Vec::new(),
        };
        Ok(CurrentDefinition {
            arn: typed.task_definition_arn().unwrap_or(reference).to_string(),
            revision: i64::from(typed.revision()),
            definition,
            tags,
        })
    }

    /// RegisterTaskDefinition with `input` (a RegisterTaskDefinition request as JSON) sent as
    /// the request body. Returns the new revision's ARN.
    pub async fn register_task_definition(&self, input: &Value) -> Result<String, AwsCallError> {
        const ACTION: &str = "ecs:RegisterTaskDefinition";
        let body = serde_json::to_vec(input).map_err(|e| AwsCallError::Transport {
            action: ACTION,
            detail: format!("could not serialize the task definition: {e}"),
        })?;
        let family = input
            .get("family")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let out = self
            .ecs
            .register_task_definition()
            .family(family)
            .customize()
            .mutate_request(move |request| {
                *request.body_mut() = SdkBody::from(body.clone());
                request
                    .headers_mut()
                    .insert("content-length", body.len().to_string());
            })
            .send()
            .await
            .map_err(|e| classify(ACTION, e))?;
        out.task_definition()
            .and_then(|t| t.task_definition_arn())
            .map(str::to_string)
            .ok_or_else(|| AwsCallError::Transport {
                action: ACTION,
                detail: "response has no taskDefinitionArn".to_string(),
            })
    }

    /// DescribeServices for one service. `None` when ECS reports it missing or INACTIVE.
    /// A missing cluster is `ClusterNotFoundException` (a [`AwsCallError::Service`]).
    pub async fn describe_service(
        &self,
        cluster: &str,
        service: &str,
    ) -> Result<Option<Service>, AwsCallError> {
        const ACTION: &str = "ecs:DescribeServices";
        let out = self
            .ecs
            .describe_services()
            .cluster(cluster)
            .services(service)
            .send()
            .await
            .map_err(|e| classify(ACTION, e))?;
        Ok(out
            .services()
            .iter()
            .find(|s| s.status() != Some("INACTIVE"))
            .cloned())
    }

    /// CreateService on Fargate (awsvpc). Returns the service.
    pub async fn create_service(
        &self,
        cluster: &str,
        service: &str,
        task_definition_arn: &str,
        desired_count: i32,
        network: &AwsVpc,
    ) -> Result<Service, AwsCallError> {
        const ACTION: &str = "ecs:CreateService";
        let out = self
            .ecs
            .create_service()
            .cluster(cluster)
            .service_name(service)
            .task_definition(task_definition_arn)
            .desired_count(desired_count)
            .launch_type(LaunchType::Fargate)
            .network_configuration(network_configuration(ACTION, network)?)
            .send()
            .await
            .map_err(|e| classify(ACTION, e))?;
        out.service().cloned().ok_or(AwsCallError::Transport {
            action: ACTION,
            detail: "response has no service".to_string(),
        })
    }

    /// UpdateService to `task_definition_arn`, optionally with a new desired count and network.
    pub async fn update_service(
        &self,
        cluster: &str,
        service: &str,
        task_definition_arn: &str,
        desired_count: Option<i32>,
        network: Option<&AwsVpc>,
    ) -> Result<Service, AwsCallError> {
        const ACTION: &str = "ecs:UpdateService";
        let network = network
            .map(|n| network_configuration(ACTION, n))
            .transpose()?;
        let out = self
            .ecs
            .update_service()
            .cluster(cluster)
            .service(service)
            .task_definition(task_definition_arn)
            .set_desired_count(desired_count)
            .set_network_configuration(network)
            .send()
            .await
            .map_err(|e| classify(ACTION, e))?;
        out.service().cloned().ok_or(AwsCallError::Transport {
            action: ACTION,
            detail: "response has no service".to_string(),
        })
    }

    /// DescribeSubnets: `(subnet id, vpc id)` for each id.
    pub async fn subnet_vpcs(&self, ids: &[String]) -> Result<Vec<(String, String)>, AwsCallError> {
        const ACTION: &str = "ec2:DescribeSubnets";
        let out = self
            .ec2
            .describe_subnets()
            .set_subnet_ids(Some(ids.to_vec()))
            .send()
            .await
            .map_err(|e| classify(ACTION, e))?;
        Ok(out
            .subnets()
            .iter()
            .map(|s| {
                (
                    s.subnet_id().unwrap_or_default().to_string(),
                    s.vpc_id().unwrap_or_default().to_string(),
                )
            })
            .collect())
    }

    /// DescribeSecurityGroups: `(group id, vpc id)` for each id.
    pub async fn security_group_vpcs(
        &self,
        ids: &[String],
    ) -> Result<Vec<(String, String)>, AwsCallError> {
        const ACTION: &str = "ec2:DescribeSecurityGroups";
        let out = self
            .ec2
            .describe_security_groups()
            .set_group_ids(Some(ids.to_vec()))
            .send()
            .await
            .map_err(|e| classify(ACTION, e))?;
        Ok(out
            .security_groups()
            .iter()
            .map(|g| {
                (
                    g.group_id().unwrap_or_default().to_string(),
                    g.vpc_id().unwrap_or_default().to_string(),
                )
            })
            .collect())
    }

    /// AuthorizeSecurityGroupIngress for one TCP port from one CIDR; a duplicate is success.
    pub async fn authorize_ingress(
        &self,
        rule: &IngressRule,
    ) -> Result<IngressOutcome, AwsCallError> {
        const ACTION: &str = "ec2:AuthorizeSecurityGroupIngress";
        const DESCRIPTION: &str = "deploy-protected: CNAF";
        let port = i32::from(rule.port);
        let mut permission = IpPermission::builder()
            .ip_protocol("tcp")
            .from_port(port)
            .to_port(port);
        permission = match rule.cidr {
            IpNet::V4(_) => permission.ip_ranges(
                IpRange::builder()
                    .cidr_ip(rule.cidr.to_string())
                    .description(DESCRIPTION)
                    .build(),
            ),
            IpNet::V6(_) => permission.ipv6_ranges(
                Ipv6Range::builder()
                    .cidr_ipv6(rule.cidr.to_string())
                    .description(DESCRIPTION)
                    .build(),
            ),
        };
        let result = self
            .ec2
            .authorize_security_group_ingress()
            .group_id(&rule.group_id)
            .ip_permissions(permission.build())
            .send()
            .await
            .map_err(|e| classify(ACTION, e));
        match result {
            Ok(_) => Ok(IngressOutcome::Added),
            Err(e) if e.code() == Some("InvalidPermission.Duplicate") => {
                Ok(IngressOutcome::AlreadyPresent)
            }
            Err(e) => Err(e),
        }
    }
}

fn network_configuration(
    action: &'static str,
    network: &AwsVpc,
) -> Result<NetworkConfiguration, AwsCallError> {
    let vpc = AwsVpcConfiguration::builder()
        .set_subnets(Some(network.subnets.clone()))
        .set_security_groups(Some(network.security_groups.clone()))
        .assign_public_ip(if network.assign_public_ip {
            AssignPublicIp::Enabled
        } else {
            AssignPublicIp::Disabled
        })
        .build()
        .map_err(|e| AwsCallError::Transport {
            action,
            detail: format!("invalid network configuration: {e}"),
        })?;
    Ok(NetworkConfiguration::builder()
        .awsvpc_configuration(vpc)
        .build())
}

/// The awsvpc settings of a described service, if it has them.
pub fn service_network(service: &Service) -> Option<AwsVpc> {
    let vpc = service.network_configuration()?.awsvpc_configuration()?;
    Some(AwsVpc {
        subnets: vpc.subnets().to_vec(),
        security_groups: vpc.security_groups().to_vec(),
        assign_public_ip: vpc.assign_public_ip() == Some(&AssignPublicIp::Enabled),
    })
}
