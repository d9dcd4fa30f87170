//! The deployment steps in order: read, transform, check, then mutate and wait.

use serde_json::{json, Value};

use super::aws::{
    service_network, AwsCallError, AwsClients, AwsVpc, CurrentDefinition, IngressOutcome,
    IngressRule,
};
use super::error::{DeployError, WaitFailure};
use super::network;
use super::normalize::same_definition;
use super::plan::{definition_diff, planned_calls, DryRunPlan, PlanInput, NEW_GROUP};
use super::progress::Progress;
use super::wait::{wait_for_steady, WaitOutcome};
use super::{
    DeploySettings, DeploySummary, FinalState, Outcome, Registration, RuleSummary, ServiceAction,
    Transform,
};

pub(super) async fn run(
    clients: &AwsClients,
    settings: &DeploySettings,
    transform: &dyn Transform,
    progress: &mut dyn Progress,
) -> Result<Outcome, DeployError> {
    check_settings(settings)?;
    let region = clients.region().to_string();
    let service_name = settings.service_name().to_string();

    // 1. Read the source revision (and the latest one, when a revision was named).
    let source_ref = match settings.revision {
        Some(rev) => format!("{}:{rev}", settings.family),
        None => settings.family.clone(),
    };
    let source = describe(clients, settings, &source_ref).await?;
    let latest = match settings.revision {
        Some(_) => describe(clients, settings, &settings.family).await?,
        None => source.clone(),
    };

    // 2. Transform; carry the revision's tags over to the new one.
    let input = if source.tags.is_empty() {
        json!({ "taskDefinition": source.definition })
    } else {
        json!({ "taskDefinition": source.definition, "tags": source.tags })
    };
    let mut protected = transform
        .apply(&input)
        .await
        .map_err(|e| DeployError::Transform {
            source_arn: source.arn.clone(),
            error: e,
        })?;
    if let Some(map) = protected.as_object_mut() {
        if !source.tags.is_empty() && !map.contains_key("tags") {
            map.insert("tags".to_string(), Value::Array(source.tags.clone()));
        }
    }
    let reuse = same_definition(&latest.definition, &protected).then(|| latest.arn.clone());

    // 3. The cluster and the service as they are.
    let existing = clients
        .describe_service(&settings.cluster, &service_name)
        .await
        .map_err(|e| match e.code() {
            Some("ClusterNotFoundException") => DeployError::ClusterNotFound {
                cluster: settings.cluster.clone(),
                region: region.clone(),
            },
            _ => DeployError::Aws(e),
        })?;
    if let Some(s) = &existing {
        if s.status() == Some("DRAINING") {
            return Err(DeployError::ServiceDraining {
                service: service_name,
                cluster: settings.cluster.clone(),
            });
        }
    }
    let existing_network = existing.as_ref().and_then(service_network);

    // 4. Subnets and security groups exist and share one VPC; a new service without them gets
    // the default VPC and a group made for it (found now, created after the checks).
    if let Some(network) = &settings.network {
        check_network(clients, network, &region).await?;
    }
    let default_network = match (&existing, &settings.network) {
        (None, None) => Some(network::discover(clients, &service_name).await?),
        _ => None,
    };
    let groups: Vec<String> = match &default_network {
        Some(n) => vec![n.group_id.clone().unwrap_or_else(|| NEW_GROUP.to_string())],
        None => settings
            .network
            .as_ref()
            .or(existing_network.as_ref())
            .map(|n| n.security_groups.clone())
            .unwrap_or_default(),
    };
    let mut new_network = match &default_network {
        Some(n) => Some(n.vpc(&groups[0])),
        None => settings.network.clone(),
    };
    if settings.cnaf.is_some() && groups.is_empty() {
        return Err(DeployError::InvalidSettings(format!(
            "service `{service_name}` has no security groups to open the CNAF port on: pass \
             --security-groups"
        )));
    }

    let existing_td = existing
        .as_ref()
        .and_then(|s| s.task_definition())
        .map(str::to_string);
    let network_changed = match (&settings.network, &existing_network) {
        (Some(asked), Some(current)) => !same_network(asked, current),
        (Some(_), None) => true,
        (None, _) => false,
    };
    let count_changed = match (settings.desired_count, &existing) {
        (Some(count), Some(s)) => s.desired_count() != count,
        _ => false,
    };
    let target_known = reuse.as_deref();
    let update_needed = existing_td.as_deref() != target_known || network_changed || count_changed;

    // 5. Dry run: describe, do nothing.
    if settings.dry_run {
        let label = source
            .arn
            .rsplit('/')
            .next()
            .unwrap_or(&source.arn)
            .to_string();
        return Ok(Outcome::DryRun(DryRunPlan {
            source_task_definition_arn: source.arn.clone(),
            reuse_task_definition_arn: reuse.clone(),
            diff: definition_diff(&label, &source.definition, &protected),
            network: default_network.as_ref().map(|n| n.plan_note(&service_name)),
            calls: planned_calls(&PlanInput {
                family: &settings.family,
                reuse: reuse.as_deref(),
                cluster: &settings.cluster,
                service: &service_name,
                existing_task_definition: existing_td.as_deref(),
                update_needed,
                desired_count: settings.desired_count,
                network: new_network.as_ref(),
                network_changed,
                create_group: default_network
                    .as_ref()
                    .filter(|n| n.group_id.is_none())
                    .map(|n| (n.group_name.as_str(), n.vpc_id.as_str())),
                cnaf: settings.cnaf.as_ref(),
                security_groups: &groups,
                wait: settings.wait.map(|w| w.timeout),
            }),
            pinned_images: Vec::new(),
        }));
    }

    // 6. Register (or reuse).
    let (task_definition_arn, registration) = match reuse {
        Some(arn) => {
            progress.step(&format!(
                "task definition {arn} already is the protected definition; reusing it"
            ));
            (arn, Registration::Reused)
        }
        None => {
            let arn = clients.register_task_definition(&protected).await?;
            progress.step(&format!("registered task definition {arn}"));
            (arn, Registration::Registered)
        }
    };

    // 7. The default network's group (created when missing), then CNAF ingress.
    let mut groups = groups;
    let mut default_summary = None;
    if let Some(n) = &default_network {
        let summary = network::ensure_group(clients, n, &service_name, progress).await?;
        groups = vec![summary.security_group_id.clone()];
        new_network = Some(n.vpc(&summary.security_group_id));
        default_summary = Some(summary);
    }
    let mut rules = Vec::new();
    if let Some(cnaf) = settings.cnaf {
        for group in &groups {
            let rule = IngressRule {
                group_id: group.clone(),
                port: cnaf.port,
                cidr: cnaf.cidr,
            };
            let outcome = clients.authorize_ingress(&rule).await?;
            let result = match outcome {
                IngressOutcome::Added => "added",
                IngressOutcome::AlreadyPresent => "already-present",
            };
            progress.step(&format!(
                "security group {group}: tcp/{} from {} {}",
                cnaf.port,
                cnaf.cidr,
                result.replace('-', " ")
            ));
            rules.push(RuleSummary {
                group_id: group.clone(),
                protocol: "tcp",
                port: cnaf.port,
                cidr: cnaf.cidr.to_string(),
                result,
            });
        }
    }

    // 8. Create or update the service.
    let (service, action) = match (&existing, &new_network) {
        (None, Some(network)) => {
            let count = settings.desired_count.unwrap_or(1);
            let s = clients
                .create_service(
                    &settings.cluster,
                    &service_name,
                    &task_definition_arn,
                    count,
                    network,
                )
                .await?;
            progress.step(&format!("created service {service_name}"));
            (s, ServiceAction::Created)
        }
        (Some(s), _)
            if s.task_definition() == Some(task_definition_arn.as_str())
                && !network_changed
                && !count_changed =>
        {
            progress.step(&format!(
                "service {service_name} already runs {task_definition_arn}"
            ));
            (s.clone(), ServiceAction::Unchanged)
        }
        (Some(_), _) => {
            let network = settings.network.as_ref().filter(|_| network_changed);
            let s = clients
                .update_service(
                    &settings.cluster,
                    &service_name,
                    &task_definition_arn,
                    settings.desired_count,
                    network,
                )
                .await?;
            progress.step(&format!(
                "updated service {service_name} to {task_definition_arn}"
            ));
            (s, ServiceAction::Updated)
        }
        (None, None) => {
            return Err(DeployError::InvalidSettings(format!(
                "service `{service_name}` does not exist and has no network to be created in: \
                 pass --subnets and --security-groups"
            )))
        }
    };
    let mut summary = DeploySummary {
        task_definition_arn: task_definition_arn.clone(),
        task_definition: registration,
        service_arn: service.service_arn().unwrap_or_default().to_string(),
        service: action,
        default_network: default_summary,
        security_group_rules: rules,
        final_state: FinalState::NotWaited,
        running_count: Some(service.running_count()),
        desired_count: Some(service.desired_count()),
        events: Vec::new(),
        rolled_back_to: None,
        pinned_images: Vec::new(),
    };

    // 9. Wait.
    let Some(wait) = settings.wait else {
        return Ok(Outcome::Deployed(summary));
    };
    let report = wait_for_steady(
        clients,
        &settings.cluster,
        &service_name,
        &task_definition_arn,
        wait,
        progress,
    )
    .await;
    progress.finish();
    let report = report?;
    summary.events = report.events;
    let (state, status) = match report.outcome {
        WaitOutcome::Steady(status) => {
            summary.final_state = FinalState::Steady;
            summary.running_count = Some(status.running);
            summary.desired_count = Some(status.desired);
            return Ok(Outcome::Deployed(summary));
        }
        WaitOutcome::TimedOut(status) => {
            summary.running_count = Some(status.running);
            summary.desired_count = Some(status.desired);
            (FinalState::TimedOut, Ok(status.to_string()))
        }
        WaitOutcome::Failed(reason) => (FinalState::Failed, Err(reason)),
        WaitOutcome::Vanished => (FinalState::Failed, Err(String::new())),
    };
    summary.final_state = state;

    // 10. Roll back to the revision the service ran before, when asked and there was one.
    let previous = existing_td.filter(|td| *td != task_definition_arn);
    if settings.rollback {
        match &previous {
            Some(previous) => {
                clients
                    .update_service(&settings.cluster, &service_name, previous, None, None)
                    .await?;
                progress.step(&format!("rolled service {service_name} back to {previous}"));
                summary.rolled_back_to = Some(previous.clone());
            }
            None => progress.step(&format!(
                "--rollback: service {service_name} had no previous revision to go back to"
            )),
        }
    }
    let rolled_back_to = summary.rolled_back_to.clone();
    let reason = match status {
        Ok(status) => WaitFailure::Timeout {
            service: service_name,
            timeout: wait.timeout,
            status,
            rolled_back_to,
        },
        Err(reason) if reason.is_empty() => WaitFailure::Vanished {
            service: service_name,
        },
        Err(reason) => WaitFailure::Failed {
            service: service_name,
            reason,
            rolled_back_to,
        },
    };
    Err(DeployError::NotSteady {
        reason,
        summary: Box::new(summary),
    })
}

fn check_settings(settings: &DeploySettings) -> Result<(), DeployError> {
    let bad = |m: &str| Err(DeployError::InvalidSettings(m.to_string()));
    if settings.family.trim().is_empty() {
        return bad("--family is empty: name the task definition family to protect");
    }
    if settings.cluster.trim().is_empty() {
        return bad("--cluster is empty: name the ECS cluster to deploy to");
    }
    if let Some(rev) = settings.revision {
        if rev < 1 {
            return bad("--revision must be 1 or more");
        }
    }
    if let Some(count) = settings.desired_count {
        if count < 0 {
            return bad("--desired-count must be 0 or more");
        }
    }
    if let Some(network) = &settings.network {
        if network.subnets.is_empty() {
            return bad("--subnets is empty: give at least one subnet id (subnet-...)");
        }
        if network.security_groups.is_empty() {
            return bad("--security-groups is empty: give at least one security group id (sg-...)");
        }
    }
    if let Some(wait) = settings.wait {
        if wait.poll_interval.is_zero() {
            return bad("the poll interval must be more than zero");
        }
    }
    Ok(())
}

pub(super) async fn describe(
    clients: &AwsClients,
    settings: &DeploySettings,
    reference: &str,
) -> Result<CurrentDefinition, DeployError> {
    clients
        .describe_task_definition(reference)
        .await
        .map_err(|e| match (e.code(), reference.contains(':')) {
            (Some("ClientException"), false) => DeployError::UnknownFamily {
                family: settings.family.clone(),
                region: clients.region().to_string(),
            },
            (Some("ClientException"), true) => DeployError::UnknownRevision {
                family: settings.family.clone(),
                revision: settings.revision.unwrap_or_default(),
                region: clients.region().to_string(),
            },
            _ => DeployError::Aws(e),
        })
}

async fn check_network(
    clients: &AwsClients,
    network: &AwsVpc,
    region: &str,
) -> Result<(), DeployError> {
    let not_found = |kind, flag, e: &AwsCallError| match e {
        AwsCallError::Service { message, .. } => DeployError::NetworkResourceNotFound {
            kind,
            flag,
            id: quoted_ids(message),
            region: region.to_string(),
        },
        _ => DeployError::Aws(e.clone()),
    };
    let subnets = clients
        .subnet_vpcs(&network.subnets)
        .await
        .map_err(|e| match e.code() {
            Some(code) if code.starts_with("InvalidSubnet") => not_found("subnet", "subnets", &e),
            _ => DeployError::Aws(e),
        })?;
    let groups = clients
        .security_group_vpcs(&network.security_groups)
        .await
        .map_err(|e| match e.code() {
            Some(code) if code.starts_with("InvalidGroup") => {
                not_found("security group", "security-groups", &e)
            }
            _ => DeployError::Aws(e),
        })?;
    for (id, flag, kind, found) in [
        (&network.subnets, "subnets", "subnet", &subnets),
        (
            &network.security_groups,
            "security-groups",
            "security group",
            &groups,
        ),
    ] {
        if let Some(missing) = id.iter().find(|i| !found.iter().any(|(f, _)| f == *i)) {
            return Err(DeployError::NetworkResourceNotFound {
                kind,
                flag,
                id: missing.clone(),
                region: region.to_string(),
            });
        }
    }
    for (subnet, subnet_vpc) in &subnets {
        if let Some((group, group_vpc)) = groups.iter().find(|(_, vpc)| vpc != subnet_vpc) {
            return Err(DeployError::VpcMismatch {
                subnet: subnet.clone(),
                subnet_vpc: subnet_vpc.clone(),
                group: group.clone(),
                group_vpc: group_vpc.clone(),
            });
        }
    }
    Ok(())
}

/// The ids AWS quoted in a not-found message (`The subnet ID 'subnet-1' does not exist`), or
/// the whole message when it quotes none.
fn quoted_ids(message: &str) -> String {
    let ids: Vec<&str> = message
        .split('\'')
        .skip(1)
        .step_by(2)
        .filter(|s| !s.is_empty())
        .collect();
    if ids.is_empty() {
        message.to_string()
    } else {
        ids.join(", ")
    }
}

fn same_network(a: &AwsVpc, b: &AwsVpc) -> bool {
    let sorted = |v: &[String]| {
        let mut v = v.to_vec();
        v.sort();
        v
    };
    sorted(&a.subnets) == sorted(&b.subnets)
        && sorted(&a.security_groups) == sorted(&b.security_groups)
        && a.assign_public_ip == b.assign_public_ip
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_ids_are_extracted() {
        assert_eq!(
            quoted_ids("The subnet ID 'subnet-123' does not exist"),
            "subnet-123"
        );
        assert_eq!(
            quoted_ids("The security group 'sg-1' does not exist in VPC 'vpc-2'"),
            "sg-1, vpc-2"
        );
        assert_eq!(quoted_ids("no quotes"), "no quotes");
    }

    #[test]
    fn network_comparison_ignores_order() {
        let a = AwsVpc {
            subnets: vec!["s1".into(), "s2".into()],
            security_groups: vec!["g".into()],
            assign_public_ip: false,
        };
        let mut b = a.clone();
        b.subnets.reverse();
        assert!(same_network(&a, &b));
        b.assign_public_ip = true;
        assert!(!same_network(&a, &b));
    }
}
