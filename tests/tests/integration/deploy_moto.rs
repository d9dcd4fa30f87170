//! The deploy mode end to end against moto server (a behavioural AWS emulator): seed the
//! sample task definition, deploy, check what AWS now holds, deploy again and see nothing
//! duplicated; then a new service with no network flags (the default VPC, a group made for it).

use std::time::Duration;

use aws_sdk_ec2::types::{Filter, IpPermission};
use deploy_protected::deploy::cmd::{embed_transform, execute, ImageTransform};
use deploy_protected::deploy::output::OutputFormat;
use deploy_protected::deploy::progress::PlainProgress;
use deploy_protected::deploy::{
    deploy, AwsClients, AwsVpc, CnafIngress, DeploySettings, FinalState, GroupOrigin, Outcome,
    Registration, ServiceAction, WaitSettings,
};
use integration_tests::moto::MotoServer;
use serde_json::Value;

use super::deploy_default_network::{default_network_settings, GROUP};
use super::deploy_mock::{options, sdk_config, seed, SAMPLE};

const FAMILY: &str = "twistlock-fargate-task";

fn cnaf_rules(permissions: &[IpPermission]) -> Vec<String> {
    permissions
        .iter()
        .filter(|p| p.from_port() == Some(8080))
        .flat_map(|p| {
            p.ip_ranges().iter().map(move |r| {
                format!(
                    "{}/{}-{} {}",
                    p.ip_protocol().unwrap_or_default(),
                    p.from_port().unwrap_or_default(),
                    p.to_port().unwrap_or_default(),
                    r.cidr_ip().unwrap_or_default()
                )
            })
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deploy_to_moto_then_again_without_duplicates() {
    let moto = MotoServer::start(&[("MOTO_ECS_SERVICE_RUNNING", "1")]).expect("moto server");
    let config = sdk_config(&moto.endpoint());
    let ecs = aws_sdk_ecs::Client::new(&config);
    let ec2 = aws_sdk_ec2::Client::new(&config);
    let clients = AwsClients::new(&config);

    // The world before: a cluster, a VPC with a subnet and a security group, the sample task.
    ecs.create_cluster()
        .cluster_name("c1")
        .send()
        .await
        .expect("cluster");
    let vpc = ec2
        .create_vpc()
        .cidr_block("10.0.0.0/16")
        .send()
        .await
        .expect("vpc");
    let vpc_id = vpc
        .vpc()
        .and_then(|v| v.vpc_id())
        .expect("vpc id")
        .to_string();
    let subnet = ec2
        .create_subnet()
        .vpc_id(&vpc_id)
        .cidr_block("10.0.1.0/24")
        .send()
        .await
        .expect("subnet");
    let subnet_id = subnet
        .subnet()
        .and_then(|s| s.subnet_id())
        .expect("subnet id")
        .to_string();
    let group_id = ec2
        .create_security_group()
        .group_name("web")
        .description("web tasks")
        .vpc_id(&vpc_id)
        .send()
        .await
        .expect("security group")
        .group_id()
        .expect("group id")
        .to_string();
    let sample: Value = serde_json::from_str(SAMPLE).expect("sample");
    let seeded = clients
        .register_task_definition(&sample)
        .await
        .expect("seed the sample task definition");
    assert!(seeded.ends_with(":1"), "{seeded}");

    let settings = DeploySettings {
        family: FAMILY.into(),
        revision: None,
        cluster: "c1".into(),
        service: None,
        network: Some(AwsVpc {
            subnets: vec![subnet_id.clone()],
            security_groups: vec![group_id.clone()],
            assign_public_ip: true,
        }),
        desired_count: Some(1),
        cnaf: Some(CnafIngress {
            port: 8080,
            cidr: "0.0.0.0/0".parse().expect("cidr"),
        }),
        dry_run: false,
        wait: Some(WaitSettings {
            timeout: Duration::from_secs(30),
            poll_interval: Duration::from_millis(200),
        }),
        rollback: true,
    };
    let options = options();
    let transform = embed_transform(&options);

    // A dry run first changes nothing.
    let mut progress = PlainProgress::new(Vec::new());
    let plan = deploy(
        &clients,
        &DeploySettings {
            dry_run: true,
            ..settings.clone()
        },
        &transform,
        &mut progress,
    )
    .await
    .expect("dry run");
    let Outcome::DryRun(plan) = plan else {
        panic!("{plan:?}");
    };
    assert!(
        plan.diff.contains("\"/var/lib/defender/defender\""),
        "{}",
        plan.diff
    );
    let revisions = ecs
        .list_task_definitions()
        .family_prefix(FAMILY)
        .send()
        .await
        .expect("list");
    assert_eq!(revisions.task_definition_arns().len(), 1);

    // Deploy.
    let mut progress = PlainProgress::new(Vec::new());
    let outcome = deploy(&clients, &settings, &transform, &mut progress)
        .await
        .expect("deploy");
    let Outcome::Deployed(first) = outcome else {
        panic!("{outcome:?}");
    };
    assert_eq!(first.task_definition, Registration::Registered);
    assert!(first.task_definition_arn.ends_with(&format!("{FAMILY}:2")));
    assert_eq!(first.service, ServiceAction::Created);
    assert_eq!(first.final_state, FinalState::Steady);
    assert_eq!(first.security_group_rules[0].result, "added");

    // What AWS holds now.
    let td = ecs
        .describe_task_definition()
        .task_definition(FAMILY)
        .send()
        .await
        .expect("describe");
    let td = td.task_definition().expect("task definition");
    assert_eq!(td.revision(), 2);
    let names: Vec<&str> = td
        .container_definitions()
        .iter()
        .filter_map(|c| c.name())
        .collect();
    assert_eq!(names, ["defender", FAMILY]);
    let app = &td.container_definitions()[1];
    assert_eq!(
        app.entry_point(),
        ["/var/lib/defender/defender", "run", "--", "entry.sh"]
    );
    assert_eq!(
        app.port_mappings().first().and_then(|p| p.container_port()),
        Some(8080)
    );
    let services = ecs
        .describe_services()
        .cluster("c1")
        .services(FAMILY)
        .send()
        .await
        .expect("services");
    let service = &services.services()[0];
    assert_eq!(
        service.task_definition(),
        Some(first.task_definition_arn.as_str())
    );
    assert_eq!(service.launch_type().map(|l| l.as_str()), Some("FARGATE"));
    assert_eq!(service.desired_count(), 1);
    let vpc_conf = service
        .network_configuration()
        .and_then(|n| n.awsvpc_configuration())
        .expect("awsvpc");
    assert_eq!(vpc_conf.subnets(), [subnet_id.as_str()]);
    assert_eq!(vpc_conf.security_groups(), [group_id.as_str()]);
    let group_rules = || async {
        let groups = ec2
            .describe_security_groups()
            .filters(Filter::builder().name("group-id").values(&group_id).build())
            .send()
            .await
            .expect("groups");
        cnaf_rules(groups.security_groups()[0].ip_permissions())
    };
    assert_eq!(group_rules().await, ["tcp/8080-8080 0.0.0.0/0"]);

    // Again, through the CLI glue with JSON output: nothing new.
    let mut out = Vec::new();
    let mut progress = PlainProgress::new(Vec::new());
    execute(
        &clients,
        &settings,
        &ImageTransform::new(&options, None),
        OutputFormat::Json,
        &mut out,
        &mut progress,
    )
    .await
    .expect("second deploy");
    let summary: Value = serde_json::from_slice(&out).expect("JSON summary");
    assert_eq!(summary["task_definition"], "reused");
    assert_eq!(
        summary["task_definition_arn"],
        first.task_definition_arn.as_str()
    );
    assert_eq!(summary["service"], "unchanged");
    assert_eq!(
        summary["security_group_rules"][0]["result"],
        "already-present"
    );
    assert_eq!(summary["final_state"], "steady");
    assert_eq!(summary["error"], Value::Null);
    let revisions = ecs
        .list_task_definitions()
        .family_prefix(FAMILY)
        .send()
        .await
        .expect("list");
    assert_eq!(revisions.task_definition_arns().len(), 2);
    let listed = ecs
        .list_services()
        .cluster("c1")
        .send()
        .await
        .expect("list");
    assert_eq!(listed.service_arns().len(), 1);
    assert_eq!(group_rules().await, ["tcp/8080-8080 0.0.0.0/0"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deploy_to_moto_default_vpc_then_again_then_recreated_with_the_same_group() {
    let moto = MotoServer::start(&[("MOTO_ECS_SERVICE_RUNNING", "1")]).expect("moto server");
    let config = sdk_config(&moto.endpoint());
    let ecs = aws_sdk_ecs::Client::new(&config);
    let ec2 = aws_sdk_ec2::Client::new(&config);
    let clients = AwsClients::new(&config);

    // The world before: a cluster and the sample task; moto's region has a default VPC.
    ecs.create_cluster()
        .cluster_name("c1")
        .send()
        .await
        .expect("cluster");
    clients
        .register_task_definition(&seed())
        .await
        .expect("seed the sample task definition");
    let vpc_id = clients
        .default_vpc()
        .await
        .expect("describe vpcs")
        .expect("moto has a default VPC");
    let subnets = ec2
        .describe_subnets()
        .filters(Filter::builder().name("vpc-id").values(&vpc_id).build())
        .filters(
            Filter::builder()
                .name("default-for-az")
                .values("true")
                .build(),
        )
        .send()
        .await
        .expect("subnets");
    let mut expected_subnets: Vec<(String, String)> = subnets
        .subnets()
        .iter()
        .map(|s| {
            (
                s.availability_zone().unwrap_or_default().to_string(),
                s.subnet_id().unwrap_or_default().to_string(),
            )
        })
        .collect();
    expected_subnets.sort();
    let expected_subnets: Vec<String> = expected_subnets.into_iter().map(|(_, s)| s).collect();
    assert!(!expected_subnets.is_empty());
    let made_groups = || async {
        let out = ec2
            .describe_security_groups()
            .filters(Filter::builder().name("group-name").values(GROUP).build())
            .send()
            .await
            .expect("groups");
        out.security_groups().to_vec()
    };

    let settings = DeploySettings {
        desired_count: Some(1),
        wait: Some(WaitSettings {
            timeout: Duration::from_secs(30),
            poll_interval: Duration::from_millis(200),
        }),
        ..default_network_settings()
    };
    let options = options();
    let transform = embed_transform(&options);

    // A dry run names the default VPC and creates no group.
    let mut progress = PlainProgress::new(Vec::new());
    let plan = deploy(
        &clients,
        &DeploySettings {
            dry_run: true,
            ..settings.clone()
        },
        &transform,
        &mut progress,
    )
    .await
    .expect("dry run");
    let Outcome::DryRun(plan) = plan else {
        panic!("{plan:?}");
    };
    let note = plan.network.expect("network note");
    assert!(
        note.starts_with(&format!("default VPC {vpc_id} (subnets ")),
        "{note}"
    );
    assert!(made_groups().await.is_empty());

    // Deploy: the group is made, the CNAF port opened on it, the service created in it.
    let mut progress = PlainProgress::new(Vec::new());
    let outcome = deploy(&clients, &settings, &transform, &mut progress)
        .await
        .expect("deploy");
    let Outcome::Deployed(first) = outcome else {
        panic!("{outcome:?}");
    };
    assert_eq!(first.service, ServiceAction::Created);
    assert_eq!(first.final_state, FinalState::Steady);
    let network = first.default_network.clone().expect("default network");
    assert_eq!(network.vpc_id, vpc_id);
    assert_eq!(network.subnets, expected_subnets);
    assert_eq!(network.security_group, GroupOrigin::Created);
    let groups = made_groups().await;
    assert_eq!(groups.len(), 1);
    let group = &groups[0];
    assert_eq!(group.group_id(), Some(network.security_group_id.as_str()));
    assert_eq!(group.vpc_id(), Some(vpc_id.as_str()));
    let tags: Vec<(&str, &str)> = group
        .tags()
        .iter()
        .map(|t| (t.key().unwrap_or_default(), t.value().unwrap_or_default()))
        .collect();
    assert_eq!(
        tags,
        [("fargate-defender:service", "twistlock-fargate-task")]
    );
    let cnaf_open: Vec<String> = group
        .ip_permissions()
        .iter()
        .filter(|p| p.from_port() == Some(8080) && p.to_port() == Some(8080))
        .flat_map(|p| p.ip_ranges().iter().filter_map(|r| r.cidr_ip()))
        .map(String::from)
        .collect();
    assert_eq!(cnaf_open, ["0.0.0.0/0"]);
    let described = ecs
        .describe_services()
        .cluster("c1")
        .services("twistlock-fargate-task")
        .send()
        .await
        .expect("services");
    let vpc_conf = described.services()[0]
        .network_configuration()
        .and_then(|n| n.awsvpc_configuration())
        .expect("awsvpc");
    assert_eq!(vpc_conf.subnets(), expected_subnets.as_slice());
    assert_eq!(
        vpc_conf.security_groups(),
        [network.security_group_id.as_str()]
    );
    assert_eq!(
        vpc_conf.assign_public_ip().map(|a| a.as_str()),
        Some("ENABLED")
    );

    // Again, through the CLI glue with JSON output: the service keeps its network, nothing new.
    let mut out = Vec::new();
    let mut progress = PlainProgress::new(Vec::new());
    execute(
        &clients,
        &settings,
        &ImageTransform::new(&options, None),
        OutputFormat::Json,
        &mut out,
        &mut progress,
    )
    .await
    .expect("second deploy");
    let summary: Value = serde_json::from_slice(&out).expect("JSON summary");
    assert_eq!(summary["task_definition"], "reused");
    assert_eq!(summary["service"], "unchanged");
    assert_eq!(summary["default_network"], Value::Null);
    assert_eq!(
        summary["security_group_rules"][0]["group_id"],
        network.security_group_id.as_str()
    );
    assert_eq!(
        summary["security_group_rules"][0]["result"],
        "already-present"
    );
    assert_eq!(made_groups().await.len(), 1);

    // The service deleted (INACTIVE), then deployed again: created anew with the same group.
    ecs.delete_service()
        .cluster("c1")
        .service("twistlock-fargate-task")
        .force(true)
        .send()
        .await
        .expect("delete service");
    let mut progress = PlainProgress::new(Vec::new());
    let outcome = deploy(&clients, &settings, &transform, &mut progress)
        .await
        .expect("deploy after delete");
    let Outcome::Deployed(third) = outcome else {
        panic!("{outcome:?}");
    };
    assert_eq!(third.service, ServiceAction::Created);
    let again = third.default_network.expect("default network");
    assert_eq!(again.security_group, GroupOrigin::Reused);
    assert_eq!(again.security_group_id, network.security_group_id);
    assert_eq!(made_groups().await.len(), 1);
    let progress = String::from_utf8(progress.into_inner()).expect("utf-8");
    assert!(
        progress.contains(&format!(
            "security group {} (reused) for service twistlock-fargate-task",
            network.security_group_id
        )),
        "{progress}"
    );
}
