//! `--dry-run`: the diff between the current and the protected definition, and the AWS calls a
//! real run would make. Building a plan only reads from AWS.

use serde::Serialize;
use serde_json::Value;
use similar::TextDiff;

use super::aws::AwsVpc;
use super::network::{group_description, SERVICE_TAG};
use super::normalize::register_input;
use super::CnafIngress;

/// What a real run would do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DryRunPlan {
    /// The revision that was read and transformed.
    pub source_task_definition_arn: String,
    /// The existing revision that would be reused instead of registering a new one.
    pub reuse_task_definition_arn: Option<String>,
    /// Unified diff of the current (register-input shape) and protected definitions.
    pub diff: String,
    /// The default network a new service would get (no `--subnets`), in words.
    pub network: Option<String>,
    /// The mutating AWS calls, in order, followed by the wait.
    pub calls: Vec<String>,
    /// `--pin-digests`: each image reference replaced by its digest (tag -> digest).
    pub pinned_images: Vec<protect::embed::Pin>,
}

/// Unified diff of two definitions, pretty-printed with read-only fields dropped.
pub fn definition_diff(current_label: &str, current: &Value, protected: &Value) -> String {
    let pretty = |v: &Value| {
        let mut s = serde_json::to_string_pretty(v).unwrap_or_else(|_| v.to_string());
        s.push('\n');
        s
    };
    let old = pretty(&register_input(current));
    let new = pretty(protected);
    TextDiff::from_lines(&old, &new)
        .unified_diff()
        .context_radius(3)
        .header(current_label, "protected")
        .to_string()
}

/// Stands for the id of a security group a real run would create.
pub const NEW_GROUP: &str = "<new group>";

/// What the calls list is built from.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PlanInput<'a> {
    pub family: &'a str,
    pub reuse: Option<&'a str>,
    pub cluster: &'a str,
    pub service: &'a str,
    /// The service's current task definition, when it exists.
    pub existing_task_definition: Option<&'a str>,
    pub update_needed: bool,
    pub desired_count: Option<i32>,
    pub network: Option<&'a AwsVpc>,
    pub network_changed: bool,
    /// The security group to create for the service: `(name, vpc id)`.
    pub create_group: Option<(&'a str, &'a str)>,
    pub cnaf: Option<&'a CnafIngress>,
    pub security_groups: &'a [String],
    pub wait: Option<std::time::Duration>,
}

/// The calls, as `service:Action key=value ...` lines.
pub(crate) fn planned_calls(p: &PlanInput<'_>) -> Vec<String> {
    let mut calls = Vec::new();
    let target = match p.reuse {
        Some(arn) => arn.to_string(),
        None => {
            calls.push(format!(
                "ecs:RegisterTaskDefinition family={} (the protected definition above)",
                p.family
            ));
            format!("{}:<new revision>", p.family)
        }
    };
    if let Some((name, vpc)) = p.create_group {
        calls.push(format!(
            "ec2:CreateSecurityGroup groupName={name} vpcId={vpc} description=\"{}\" \
             tags={SERVICE_TAG}={}",
            group_description(p.service),
            p.service
        ));
    }
    if let Some(cnaf) = p.cnaf {
        for group in p.security_groups {
            calls.push(format!(
                "ec2:AuthorizeSecurityGroupIngress groupId={group} tcp/{} from {} \
                 (InvalidPermission.Duplicate = already open)",
                cnaf.port, cnaf.cidr
            ));
        }
    }
    let network = |n: &AwsVpc| {
        format!(
            "subnets={} securityGroups={} assignPublicIp={}",
            n.subnets.join(","),
            n.security_groups.join(","),
            if n.assign_public_ip {
                "ENABLED"
            } else {
                "DISABLED"
            }
        )
    };
    match p.existing_task_definition {
        None => calls.push(format!(
            "ecs:CreateService cluster={} serviceName={} taskDefinition={target} \
             launchType=FARGATE desiredCount={} {}",
            p.cluster,
            p.service,
            p.desired_count.unwrap_or(1),
            p.network.map(network).unwrap_or_default()
        )),
        Some(_) if p.update_needed => {
            let mut line = format!(
                "ecs:UpdateService cluster={} service={} taskDefinition={target}",
                p.cluster, p.service
            );
            if let Some(count) = p.desired_count {
                line.push_str(&format!(" desiredCount={count}"));
            }
            if let (true, Some(n)) = (p.network_changed, p.network) {
                line.push(' ');
                line.push_str(&network(n));
            }
            calls.push(line);
        }
        Some(current) => calls.push(format!(
            "(no service change: {} already runs {current})",
            p.service
        )),
    }
    match p.wait {
        Some(timeout) => calls.push(format!(
            "ecs:DescribeServices cluster={} services={} every few seconds until steady \
             (up to {})",
            p.cluster,
            p.service,
            humantime::format_duration(timeout)
        )),
        None => calls.push("(no wait: --no-wait)".to_string()),
    }
    calls
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn diff_shows_added_lines_and_drops_read_only_fields() {
        let current = json!({"taskDefinitionArn": "arn:x", "revision": 4, "family": "web",
            "cpu": "256"});
        let protected = json!({"family": "web", "cpu": "256", "volumes": [{"name": "defender"}]});
        let diff = definition_diff("web:4", &current, &protected);
        assert!(diff.starts_with("--- web:4\n+++ protected\n"), "{diff}");
        assert!(diff.contains("+  \"volumes\": ["), "{diff}");
        assert!(!diff.contains("taskDefinitionArn"), "{diff}");
    }

    #[test]
    fn calls_for_a_new_service_with_cnaf() {
        let network = AwsVpc {
            subnets: vec!["subnet-1".into(), "subnet-2".into()],
            security_groups: vec!["sg-1".into()],
            assign_public_ip: true,
        };
        let cnaf = CnafIngress {
            port: 8080,
            cidr: "0.0.0.0/0".parse().expect("cidr"),
        };
        let calls = planned_calls(&PlanInput {
            family: "web",
            reuse: None,
            cluster: "c",
            service: "web",
            existing_task_definition: None,
            update_needed: true,
            desired_count: None,
            network: Some(&network),
            network_changed: true,
            create_group: None,
            cnaf: Some(&cnaf),
            security_groups: &network.security_groups,
            wait: Some(std::time::Duration::from_secs(600)),
        });
        assert_eq!(
            calls,
            vec![
                "ecs:RegisterTaskDefinition family=web (the protected definition above)",
                "ec2:AuthorizeSecurityGroupIngress groupId=sg-1 tcp/8080 from 0.0.0.0/0 \
                 (InvalidPermission.Duplicate = already open)",
                "ecs:CreateService cluster=c serviceName=web taskDefinition=web:<new revision> \
                 launchType=FARGATE desiredCount=1 subnets=subnet-1,subnet-2 \
                 securityGroups=sg-1 assignPublicIp=ENABLED",
                "ecs:DescribeServices cluster=c services=web every few seconds until steady \
                 (up to 10m)",
            ]
        );
    }

    #[test]
    fn calls_for_a_new_service_in_the_default_vpc() {
        let network = AwsVpc {
            subnets: vec!["subnet-a".into()],
            security_groups: vec![NEW_GROUP.into()],
            assign_public_ip: true,
        };
        let calls = planned_calls(&PlanInput {
            family: "web",
            reuse: Some("arn:td:2"),
            cluster: "c",
            service: "web",
            existing_task_definition: None,
            update_needed: true,
            desired_count: None,
            network: Some(&network),
            network_changed: true,
            create_group: Some(("fargate-defender-web", "vpc-1")),
            cnaf: None,
            security_groups: &network.security_groups,
            wait: None,
        });
        assert_eq!(
            calls,
            vec![
                "ec2:CreateSecurityGroup groupName=fargate-defender-web vpcId=vpc-1 \
                 description=\"fargate-defender: tasks of ECS service web (made by \
                 deploy-protected)\" tags=fargate-defender:service=web",
                "ecs:CreateService cluster=c serviceName=web taskDefinition=arn:td:2 \
                 launchType=FARGATE desiredCount=1 subnets=subnet-a \
                 securityGroups=<new group> assignPublicIp=ENABLED",
                "(no wait: --no-wait)",
            ]
        );
    }
}
