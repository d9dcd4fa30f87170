//! The summary printed on stdout: text for people, JSON (`--output json`) for pipelines.

use serde_json::json;

use super::{DeploySummary, DryRunPlan, FinalState, GroupOrigin, Registration, ServiceAction};

/// `--output`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OutputFormat {
    /// Aligned lines.
    #[default]
    Text,
    /// One JSON object.
    Json,
}

/// The summary in `format`, ending with a newline. `error` is the failure, if any.
pub fn render_summary(
    summary: &DeploySummary,
    error: Option<&str>,
    format: OutputFormat,
) -> String {
    match format {
        OutputFormat::Json => {
            let mut value = serde_json::to_value(summary).unwrap_or_else(|_| json!({}));
            if let Some(map) = value.as_object_mut() {
                map.insert("error".to_string(), json!(error));
            }
            format!("{value:#}\n")
        }
        OutputFormat::Text => {
            let mut out = String::new();
            let registration = match summary.task_definition {
                Registration::Registered => "registered",
                Registration::Reused => "reused",
            };
            out.push_str(&format!(
                "task definition: {} ({registration})\n",
                summary.task_definition_arn
            ));
            let action = match summary.service {
                ServiceAction::Created => "created",
                ServiceAction::Updated => "updated",
                ServiceAction::Unchanged => "unchanged",
            };
            out.push_str(&format!(
                "service:         {} ({action})\n",
                summary.service_arn
            ));
            if let Some(n) = &summary.default_network {
                let origin = match n.security_group {
                    GroupOrigin::Created => "created",
                    GroupOrigin::Reused => "reused",
                };
                out.push_str(&format!(
                    "network:         default VPC {} subnets {}, security group {} {} \
                     ({origin}), public IP\n",
                    n.vpc_id,
                    n.subnets.join(","),
                    n.security_group_id,
                    n.security_group_name
                ));
            }
            for rule in &summary.security_group_rules {
                out.push_str(&format!(
                    "security group:  {} {}/{} from {} ({})\n",
                    rule.group_id,
                    rule.protocol,
                    rule.port,
                    rule.cidr,
                    rule.result.replace('-', " ")
                ));
            }
            let state = match summary.final_state {
                FinalState::Steady => "steady",
                FinalState::NotWaited => "not waited for (--no-wait)",
                FinalState::TimedOut => "timed out",
                FinalState::Failed => "failed",
            };
            let counts = match (summary.running_count, summary.desired_count) {
                (Some(r), Some(d)) => format!(" (running {r}/{d})"),
                _ => String::new(),
            };
            out.push_str(&format!("final state:     {state}{counts}\n"));
            if let Some(previous) = &summary.rolled_back_to {
                out.push_str(&format!("rolled back to:  {previous}\n"));
            }
            for pin in crate::images::pin_lines(&summary.pinned_images) {
                out.push_str(&format!("pinned image:    {pin}\n"));
            }
            out
        }
    }
}

/// The dry-run plan in `format`, ending with a newline.
pub fn render_plan(plan: &DryRunPlan, format: OutputFormat) -> String {
    match format {
        OutputFormat::Json => {
            let value = json!({
                "dry_run": true,
                "source_task_definition_arn": plan.source_task_definition_arn,
                "reuse_task_definition_arn": plan.reuse_task_definition_arn,
                "diff": plan.diff,
                "network": plan.network,
                "calls": plan.calls,
                "pinned_images": plan.pinned_images,
            });
            format!("{value:#}\n")
        }
        OutputFormat::Text => {
            let mut out = format!("dry run: nothing was changed\n\n{}", plan.diff);
            if plan.diff.is_empty() {
                out.push_str("(the protected definition equals the current one)\n");
            }
            if let Some(arn) = &plan.reuse_task_definition_arn {
                out.push_str(&format!("\n{arn} already is the protected definition\n"));
            }
            if let Some(network) = &plan.network {
                out.push_str(&format!("\nnetwork: {network}\n"));
            }
            if !plan.pinned_images.is_empty() {
                out.push_str("\nimages pinned to the digest read (tag -> digest):\n");
                for pin in crate::images::pin_lines(&plan.pinned_images) {
                    out.push_str(&format!("  {pin}\n"));
                }
            }
            out.push_str("\nAWS calls a real run would make:\n");
            for call in &plan.calls {
                out.push_str(&format!("  {call}\n"));
            }
            out
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::deploy::{NetworkSummary, RuleSummary};

    fn summary() -> DeploySummary {
        DeploySummary {
            task_definition_arn: "arn:aws:ecs:us-east-1:1:task-definition/web:2".into(),
            task_definition: Registration::Registered,
            service_arn: "arn:aws:ecs:us-east-1:1:service/c/web".into(),
            service: ServiceAction::Created,
            default_network: None,
            security_group_rules: vec![RuleSummary {
                group_id: "sg-1".into(),
                protocol: "tcp",
                port: 8080,
                cidr: "0.0.0.0/0".into(),
                result: "already-present",
            }],
            final_state: FinalState::Steady,
            running_count: Some(1),
            desired_count: Some(1),
            events: vec![],
            rolled_back_to: None,
            pinned_images: vec![],
        }
    }

    #[test]
    fn text_summary() {
        assert_eq!(
            render_summary(&summary(), None, OutputFormat::Text),
            "task definition: arn:aws:ecs:us-east-1:1:task-definition/web:2 (registered)\n\
             service:         arn:aws:ecs:us-east-1:1:service/c/web (created)\n\
             security group:  sg-1 tcp/8080 from 0.0.0.0/0 (already present)\n\
             final state:     steady (running 1/1)\n"
        );
    }

    #[test]
    fn json_summary_fields() {
        let text = render_summary(&summary(), None, OutputFormat::Json);
        let v: serde_json::Value = serde_json::from_str(&text).expect("json");
        assert_eq!(v["task_definition"], "registered");
        assert_eq!(v["service"], "created");
        assert_eq!(v["final_state"], "steady");
        assert_eq!(v["security_group_rules"][0]["result"], "already-present");
        assert_eq!(v["error"], serde_json::Value::Null);
        assert_eq!(v["default_network"], serde_json::Value::Null);
    }

    #[test]
    fn the_default_network_is_in_both_formats() {
        let mut s = summary();
        s.default_network = Some(NetworkSummary {
            vpc_id: "vpc-1".into(),
            subnets: vec!["subnet-a".into(), "subnet-b".into()],
            security_group_id: "sg-1".into(),
            security_group_name: "fargate-defender-web".into(),
            security_group: GroupOrigin::Created,
            assign_public_ip: true,
        });
        let text = render_summary(&s, None, OutputFormat::Text);
        assert!(
            text.contains(
                "network:         default VPC vpc-1 subnets subnet-a,subnet-b, security group \
                 sg-1 fargate-defender-web (created), public IP\n"
            ),
            "{text}"
        );
        let v: serde_json::Value =
            serde_json::from_str(&render_summary(&s, None, OutputFormat::Json)).expect("json");
        assert_eq!(v["default_network"]["security_group"], "created");
        assert_eq!(v["default_network"]["subnets"][1], "subnet-b");
        assert_eq!(v["default_network"]["assign_public_ip"], true);
    }
}
