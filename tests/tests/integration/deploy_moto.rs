//! The deploy mode end to end against moto server (a behavioural AWS emulator): seed the
//! sample task definition, deploy, check what AWS now holds, deploy again and see nothing
//! duplicated.

use std::time::Duration;

use aws_sdk_ec2::types::{Filter, IpPermission};
use deploy_protected::deploy::cmd::{embed_transform, execute};
use deploy_protected::deploy::output::OutputFormat;
use deploy_protected::deploy::progress::PlainProgress;
use deploy_protected::deploy::{
    deploy, AwsClients, AwsVpc, CnafIngress, DeploySettings, FinalState, Outcome, Registration,
    ServiceAction, WaitSettings,
};
use integration_tests::moto::MotoServer;
use serde_json::Value;

use super::deploy_mock::{options, sdk_config, SAMPLE};

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
        &options,
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
