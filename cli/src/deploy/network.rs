//! The network a new service gets when no `--subnets` / `--security-groups` are given: the
//! region's default VPC, its subnets (the default-for-AZ ones when there are any) and a
//! security group made for the service (`fargate-defender-SERVICE`, tagged
//! `fargate-defender:service=SERVICE`), created once and reused afterwards. Tasks get a public
//! IP: the default VPC's subnets are public, and without one a Fargate task cannot pull images.

use aws_sdk_ec2::types::{Filter, ResourceType, Tag, TagSpecification};

use super::aws::{classify, AwsCallError, AwsClients, AwsVpc};
use super::error::DeployError;
use super::progress::Progress;
use super::{GroupOrigin, NetworkSummary};

/// The tag key on groups made for a service (value: the service name).
pub const SERVICE_TAG: &str = "fargate-defender:service";

/// The name of the security group made for `service`.
pub fn group_name(service: &str) -> String {
    format!("fargate-defender-{service}")
}

/// The default network found for a new service (read-only: nothing created yet).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct DefaultNetwork {
    /// The default VPC.
    pub vpc_id: String,
    /// The subnets the service runs in.
    pub subnets: Vec<String>,
    /// `fargate-defender-SERVICE`.
    pub group_name: String,
    /// The group's id when it already exists.
    pub group_id: Option<String>,
}

impl DefaultNetwork {
    /// The awsvpc settings with `group_id` (public IP on).
    pub fn vpc(&self, group_id: &str) -> AwsVpc {
        AwsVpc {
            subnets: self.subnets.clone(),
            security_groups: vec![group_id.to_string()],
            assign_public_ip: true,
        }
    }

    /// What a real run would do, for `--dry-run`.
    pub fn plan_note(&self, service: &str) -> String {
        let group = match &self.group_id {
            Some(id) => format!("{id} ({}, reused)", self.group_name),
            None => format!("{} (would be created)", self.group_name),
        };
        format!(
            "default VPC {} (subnets {}), security group {group} for service {service}; \
             assignPublicIp ENABLED (tasks in the default VPC's public subnets need it to pull \
             images)",
            self.vpc_id,
            self.subnets.join(",")
        )
    }
}

impl NetworkSummary {
    /// The progress line: where the service runs and whether its group was made now.
    pub fn describe(&self, service: &str) -> String {
        let origin = match self.security_group {
            GroupOrigin::Created => "created",
            GroupOrigin::Reused => "reused",
        };
        format!(
            "network: default VPC {} (subnets {}), security group {} ({origin}) for service \
             {service}; assignPublicIp ENABLED (tasks in the default VPC's public subnets need \
             it to pull images)",
            self.vpc_id,
            self.subnets.join(","),
            self.security_group_id
        )
    }
}

/// A subnet of the default VPC as DescribeSubnets reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct SubnetInfo {
    pub id: String,
    pub availability_zone: String,
    pub default_for_az: bool,
}

/// The subnets to use: the default-for-AZ ones when there are any, else all; ordered by
/// availability zone, then id (stable output, stable comparisons).
fn pick_subnets(mut subnets: Vec<SubnetInfo>) -> Vec<String> {
    if subnets.iter().any(|s| s.default_for_az) {
        subnets.retain(|s| s.default_for_az);
    }
    subnets.sort_by(|a, b| (&a.availability_zone, &a.id).cmp(&(&b.availability_zone, &b.id)));
    subnets.into_iter().map(|s| s.id).collect()
}

/// Finds the default VPC, its subnets and the service's group (if it exists). Only reads.
pub(super) async fn discover(
    clients: &AwsClients,
    service: &str,
) -> Result<DefaultNetwork, DeployError> {
    let region = clients.region().to_string();
    let vpc_id = clients
        .default_vpc()
        .await?
        .ok_or_else(|| DeployError::NoDefaultVpc {
            service: service.to_string(),
            region: region.clone(),
        })?;
    let subnets = pick_subnets(clients.vpc_subnets(&vpc_id).await?);
    if subnets.is_empty() {
        return Err(DeployError::NoDefaultSubnets {
            service: service.to_string(),
            vpc_id,
            region,
        });
    }
    let group_name = group_name(service);
    let group_id = clients.security_group_by_name(&vpc_id, &group_name).await?;
    Ok(DefaultNetwork {
        vpc_id,
        subnets,
        group_name,
        group_id,
    })
}

/// Creates the service's group when it does not exist yet, says so on `progress`, and returns
/// the network summary. A group created meanwhile by someone else (`InvalidGroup.Duplicate`)
/// is looked up and reused.
pub(super) async fn ensure_group(
    clients: &AwsClients,
    network: &DefaultNetwork,
    service: &str,
    progress: &mut dyn Progress,
) -> Result<NetworkSummary, DeployError> {
    let (group_id, origin) = match &network.group_id {
        Some(id) => (id.clone(), GroupOrigin::Reused),
        None => match clients
            .create_security_group(&network.vpc_id, &network.group_name, service)
            .await
        {
            Ok(id) => (id, GroupOrigin::Created),
            Err(e) if e.code() == Some("InvalidGroup.Duplicate") => {
                match clients
                    .security_group_by_name(&network.vpc_id, &network.group_name)
                    .await?
                {
                    Some(id) => (id, GroupOrigin::Reused),
                    None => return Err(e.into()),
                }
            }
            Err(e) => return Err(e.into()),
        },
    };
    let summary = NetworkSummary {
        vpc_id: network.vpc_id.clone(),
        subnets: network.subnets.clone(),
        security_group_id: group_id,
        security_group_name: network.group_name.clone(),
        security_group: origin,
        assign_public_ip: true,
    };
    progress.step(&summary.describe(service));
    Ok(summary)
}

/// The description of the group made for `service`.
pub fn group_description(service: &str) -> String {
    format!("fargate-defender: tasks of ECS service {service} (made by deploy-protected)")
}

fn filter(name: &str, value: &str) -> Filter {
    Filter::builder().name(name).values(value).build()
}

impl AwsClients {
    /// DescribeVpcs `isDefault=true`: the region's default VPC, if it has one.
    pub async fn default_vpc(&self) -> Result<Option<String>, AwsCallError> {
        const ACTION: &str = "ec2:DescribeVpcs";
        let out = self
            .ec2
            .describe_vpcs()
            .filters(filter("isDefault", "true"))
            .send()
            .await
            .map_err(|e| classify(ACTION, e))?;
        Ok(out
            .vpcs()
            .iter()
            .find_map(|v| v.vpc_id())
            .map(str::to_string))
    }

    /// DescribeSubnets `vpc-id=VPC`: the VPC's subnets.
    pub(super) async fn vpc_subnets(&self, vpc_id: &str) -> Result<Vec<SubnetInfo>, AwsCallError> {
        const ACTION: &str = "ec2:DescribeSubnets";
        let out = self
            .ec2
            .describe_subnets()
            .filters(filter("vpc-id", vpc_id))
            .send()
            .await
            .map_err(|e| classify(ACTION, e))?;
        Ok(out
            .subnets()
            .iter()
            .filter_map(|s| {
                Some(SubnetInfo {
                    id: s.subnet_id()?.to_string(),
                    availability_zone: s.availability_zone().unwrap_or_default().to_string(),
                    default_for_az: s.default_for_az().unwrap_or(false),
                })
            })
            .collect())
    }

    /// DescribeSecurityGroups `group-name=NAME, vpc-id=VPC`: the group's id, if it exists.
    pub async fn security_group_by_name(
        &self,
        vpc_id: &str,
        name: &str,
    ) -> Result<Option<String>, AwsCallError> {
        const ACTION: &str = "ec2:DescribeSecurityGroups";
        let out = self
            .ec2
            .describe_security_groups()
            .filters(filter("group-name", name))
            .filters(filter("vpc-id", vpc_id))
            .send()
            .await
            .map_err(|e| classify(ACTION, e))?;
        Ok(out
            .security_groups()
            .iter()
            .find_map(|g| g.group_id())
            .map(str::to_string))
    }

    /// CreateSecurityGroup `name` in `vpc_id` for `service`, tagged
    /// `fargate-defender:service=SERVICE` on creation; returns its id.
    pub async fn create_security_group(
        &self,
        vpc_id: &str,
        name: &str,
        service: &str,
    ) -> Result<String, AwsCallError> {
        const ACTION: &str = "ec2:CreateSecurityGroup";
        let tags = TagSpecification::builder()
            .resource_type(ResourceType::SecurityGroup)
            .tags(Tag::builder().key(SERVICE_TAG).value(service).build())
            .build();
        let out = self
            .ec2
            .create_security_group()
            .group_name(name)
            .description(group_description(service))
            .vpc_id(vpc_id)
            .tag_specifications(tags)
            .send()
            .await
            .map_err(|e| match classify(ACTION, e) {
                AwsCallError::AccessDenied { action, message } => AwsCallError::AccessDenied {
                    action,
                    message: format!(
                        "{message} (the group is tagged on creation, which also needs \
                         `ec2:CreateTags`)"
                    ),
                },
                other => other,
            })?;
        out.group_id()
            .map(str::to_string)
            .ok_or(AwsCallError::Transport {
                action: ACTION,
                detail: "response has no groupId".to_string(),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subnet(id: &str, az: &str, default_for_az: bool) -> SubnetInfo {
        SubnetInfo {
            id: id.into(),
            availability_zone: az.into(),
            default_for_az,
        }
    }

    #[test]
    fn default_for_az_subnets_are_preferred_and_ordered_by_zone() {
        let picked = pick_subnets(vec![
            subnet("subnet-c", "us-east-1c", true),
            subnet("subnet-x", "us-east-1a", false),
            subnet("subnet-a", "us-east-1a", true),
        ]);
        assert_eq!(picked, ["subnet-a", "subnet-c"]);
        let picked = pick_subnets(vec![
            subnet("subnet-2", "us-east-1b", false),
            subnet("subnet-1", "us-east-1a", false),
        ]);
        assert_eq!(picked, ["subnet-1", "subnet-2"]);
        assert!(pick_subnets(vec![]).is_empty());
    }

    #[test]
    fn notes_name_the_vpc_subnets_group_and_public_ip() {
        let network = DefaultNetwork {
            vpc_id: "vpc-1".into(),
            subnets: vec!["subnet-a".into(), "subnet-b".into()],
            group_name: group_name("web"),
            group_id: None,
        };
        assert_eq!(
            network.plan_note("web"),
            "default VPC vpc-1 (subnets subnet-a,subnet-b), security group \
             fargate-defender-web (would be created) for service web; assignPublicIp ENABLED \
             (tasks in the default VPC's public subnets need it to pull images)"
        );
        let summary = NetworkSummary {
            vpc_id: "vpc-1".into(),
            subnets: network.subnets.clone(),
            security_group_id: "sg-9".into(),
            security_group_name: network.group_name.clone(),
            security_group: GroupOrigin::Created,
            assign_public_ip: true,
        };
        assert_eq!(
            summary.describe("web"),
            "network: default VPC vpc-1 (subnets subnet-a,subnet-b), security group sg-9 \
             (created) for service web; assignPublicIp ENABLED (tasks in the default VPC's \
             public subnets need it to pull images)"
        );
        assert_eq!(network.vpc("sg-9").security_groups, ["sg-9"]);
        assert!(network.vpc("sg-9").assign_public_ip);
    }
}
