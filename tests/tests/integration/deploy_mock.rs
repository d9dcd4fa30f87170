//! The mocked AWS the deploy contract tests talk to (wiremock): request matchers for ECS
//! (`x-amz-target`, JSON 1.1) and EC2 (`Action=` form bodies, XML answers), canned answers in
//! AWS's own shapes, SDK settings pointing at the mock, and the IAM policy's action list.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_config::retry::RetryConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_ecs::config::{Credentials, SharedCredentialsProvider};
use deploy_protected::deploy::cmd::embed_transform;
use deploy_protected::deploy::progress::PlainProgress;
use deploy_protected::deploy::{
    deploy, AwsClients, AwsVpc, CnafIngress, DeployError, DeploySettings, Outcome, WaitSettings,
};
use protect::embed::{CnafOptions, EmbedOptions};
use serde_json::{json, Value};
use wiremock::matchers::{body_string_contains, header, method};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

pub(crate) const ECS_TARGET: &str = "AmazonEC2ContainerServiceV20141113";
pub(crate) const ACCOUNT: &str = "123456789012";
pub(crate) const SAMPLE: &str = include_str!("../../../examples/fargate-task.json");

/// SDK settings pointing at `endpoint` with static test credentials and short retry backoff.
pub(crate) fn sdk_config(endpoint: &str) -> SdkConfig {
    SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(SharedCredentialsProvider::new(Credentials::new(
            "AKIDTEST", "secret", None, None, "test",
        )))
        .endpoint_url(endpoint)
        .retry_config(
            RetryConfig::standard()
                .with_max_attempts(3)
                .with_initial_backoff(Duration::from_millis(1))
                .with_max_backoff(Duration::from_millis(5)),
        )
        .build()
}

/// The transform options the tests deploy with (CNAF 8080 -> 80).
pub(crate) fn options() -> EmbedOptions {
    EmbedOptions {
        cnaf: Some(CnafOptions {
            external_port: 8080,
            app_port: 80,
            container: None,
        }),
        ..EmbedOptions::new("https://console.example", "fargate-defender:1")
    }
}

pub(crate) fn td_arn(revision: i64) -> String {
    format!("arn:aws:ecs:us-east-1:{ACCOUNT}:task-definition/twistlock-fargate-task:{revision}")
}

pub(crate) const SERVICE_ARN: &str =
    "arn:aws:ecs:us-east-1:123456789012:service/c1/twistlock-fargate-task";

/// `definition` as DescribeTaskDefinition returns it: read-only fields and ECS defaults added.
pub(crate) fn described(definition: &Value, revision: i64) -> Value {
    let mut td = definition.clone();
    let map = td.as_object_mut().expect("object");
    map.remove("tags");
    map.insert("taskDefinitionArn".into(), json!(td_arn(revision)));
    map.insert("revision".into(), json!(revision));
    map.insert("status".into(), json!("ACTIVE"));
    map.insert("compatibilities".into(), json!(["EC2", "FARGATE"]));
    map.insert(
        "requiresAttributes".into(),
        json!([{"name": "ecs.capability.task-eni"}]),
    );
    map.insert("registeredAt".into(), json!(1_764_000_000.5));
    for c in map
        .get_mut("containerDefinitions")
        .and_then(Value::as_array_mut)
        .expect("containers")
    {
        let c = c.as_object_mut().expect("container");
        c.retain(|_, v| !v.is_null());
        for (k, v) in [
            ("cpu", json!(0)),
            ("essential", json!(true)),
            ("portMappings", json!([])),
            ("environment", json!([])),
            ("mountPoints", json!([])),
            ("volumesFrom", json!([])),
            ("systemControls", json!([])),
        ] {
            c.entry(k).or_insert(v);
        }
        if let Some(ports) = c.get_mut("portMappings").and_then(Value::as_array_mut) {
            for p in ports.iter_mut().filter_map(Value::as_object_mut) {
                let port = p["containerPort"].clone();
                p.entry("hostPort").or_insert(port);
                p.entry("protocol").or_insert(json!("tcp"));
            }
        }
    }
    json!({ "taskDefinition": td, "tags": [{"key": "team", "value": "web"}] })
}

pub(crate) fn seed() -> Value {
    serde_json::from_str(SAMPLE).expect("sample task definition")
}

pub(crate) fn protected_seed() -> Value {
    protect::embed::embed(&seed(), &options())
        .expect("transform")
        .task_definition
}

pub(crate) fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

pub(crate) fn service(
    td: &str,
    running: i32,
    desired: i32,
    deployments: &[&str],
    events: Value,
) -> Value {
    json!({
        "serviceArn": SERVICE_ARN, "serviceName": "twistlock-fargate-task",
        "clusterArn": "arn:aws:ecs:us-east-1:123456789012:cluster/c1", "status": "ACTIVE",
        "taskDefinition": td, "desiredCount": desired, "runningCount": running,
        "pendingCount": desired - running, "launchType": "FARGATE",
        "networkConfiguration": {"awsvpcConfiguration": {"subnets": ["subnet-1"],
            "securityGroups": ["sg-1"], "assignPublicIp": "DISABLED"}},
        "deployments": deployments.iter().enumerate().map(|(i, d)| json!({
            "id": format!("ecs-svc/{i}"), "status": if i == 0 { "PRIMARY" } else { "ACTIVE" },
            "taskDefinition": d, "desiredCount": desired, "runningCount": running,
            "pendingCount": desired - running, "rolloutState": "IN_PROGRESS"
        })).collect::<Vec<_>>(),
        "events": events
    })
}

pub(crate) fn ecs(op: &str) -> wiremock::MockBuilder {
    Mock::given(method("POST")).and(header("x-amz-target", format!("{ECS_TARGET}.{op}")))
}

pub(crate) fn ec2(action: &str) -> wiremock::MockBuilder {
    Mock::given(method("POST")).and(body_string_contains(format!("Action={action}&")))
}

pub(crate) fn json_ok(body: Value) -> ResponseTemplate {
    ResponseTemplate::new(200)
        .insert_header("content-type", "application/x-amz-json-1.1")
        .set_body_string(body.to_string())
}

pub(crate) fn ecs_error(status: u16, code: &str, message: &str) -> ResponseTemplate {
    ResponseTemplate::new(status)
        .insert_header("content-type", "application/x-amz-json-1.1")
        .set_body_string(json!({"__type": code, "message": message}).to_string())
}

pub(crate) fn xml_ok(body: String) -> ResponseTemplate {
    ResponseTemplate::new(200)
        .insert_header("content-type", "text/xml;charset=UTF-8")
        .set_body_string(body)
}

pub(crate) fn ec2_error(code: &str, message: &str) -> ResponseTemplate {
    ResponseTemplate::new(400)
        .insert_header("content-type", "text/xml;charset=UTF-8")
        .set_body_string(format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Response><Errors><Error><Code>{code}</Code>\
             <Message>{message}</Message></Error></Errors><RequestID>r-1</RequestID></Response>"
        ))
}

pub(crate) const EC2_NS: &str = "http://ec2.amazonaws.com/doc/2016-11-15/";

pub(crate) fn subnets_xml(items: &[(&str, &str)]) -> String {
    let items: String = items
        .iter()
        .map(|(s, v)| format!("<item><subnetId>{s}</subnetId><vpcId>{v}</vpcId></item>"))
        .collect();
    format!(
        "<DescribeSubnetsResponse xmlns=\"{EC2_NS}\"><requestId>r-1</requestId>\
         <subnetSet>{items}</subnetSet></DescribeSubnetsResponse>"
    )
}

pub(crate) fn groups_xml(items: &[(&str, &str)]) -> String {
    let items: String = items
        .iter()
        .map(|(g, v)| {
            format!(
                "<item><groupId>{g}</groupId><groupName>web</groupName><vpcId>{v}</vpcId></item>"
            )
        })
        .collect();
    format!(
        "<DescribeSecurityGroupsResponse xmlns=\"{EC2_NS}\"><requestId>r-1</requestId>\
         <securityGroupInfo>{items}</securityGroupInfo></DescribeSecurityGroupsResponse>"
    )
}

pub(crate) fn authorize_xml() -> String {
    format!(
        "<AuthorizeSecurityGroupIngressResponse xmlns=\"{EC2_NS}\"><requestId>r-1</requestId>\
         <return>true</return></AuthorizeSecurityGroupIngressResponse>"
    )
}

pub(crate) fn settings() -> DeploySettings {
    DeploySettings {
        family: "twistlock-fargate-task".into(),
        revision: None,
        cluster: "c1".into(),
        service: None,
        network: Some(AwsVpc {
            subnets: vec!["subnet-1".into()],
            security_groups: vec!["sg-1".into()],
            assign_public_ip: true,
        }),
        desired_count: None,
        cnaf: Some(CnafIngress {
            port: 8080,
            cidr: "0.0.0.0/0".parse().expect("cidr"),
        }),
        dry_run: false,
        wait: Some(WaitSettings {
            timeout: Duration::from_secs(5),
            poll_interval: Duration::from_millis(20),
        }),
        rollback: false,
    }
}

/// The network checks every run with --subnets/--security-groups makes (same VPC).
pub(crate) async fn mount_network(server: &MockServer) {
    ec2("DescribeSubnets")
        .respond_with(xml_ok(subnets_xml(&[("subnet-1", "vpc-1")])))
        .mount(server)
        .await;
    ec2("DescribeSecurityGroups")
        .respond_with(xml_ok(groups_xml(&[("sg-1", "vpc-1")])))
        .mount(server)
        .await;
}

/// Fails the test when any of `ops` (ECS) or `actions` (EC2) is called.
pub(crate) async fn forbid(server: &MockServer, ops: &[&str], actions: &[&str]) {
    for op in ops {
        ecs(op)
            .respond_with(ecs_error(500, "TestForbidden", op))
            .expect(0)
            .named(format!("forbidden {op}"))
            .mount(server)
            .await;
    }
    for action in actions {
        ec2(action)
            .respond_with(ec2_error("TestForbidden", action))
            .expect(0)
            .named(format!("forbidden {action}"))
            .mount(server)
            .await;
    }
}

pub(crate) async fn run(
    server: &MockServer,
    settings: &DeploySettings,
) -> (Result<Outcome, DeployError>, String) {
    let clients = AwsClients::new(&sdk_config(&server.uri()));
    let options = options();
    let transform = embed_transform(&options);
    let mut progress = PlainProgress::new(Vec::new());
    let result = deploy(&clients, settings, &transform, &mut progress).await;
    let text = String::from_utf8(progress.into_inner()).expect("utf-8");
    (result, text)
}

/// The IAM action each recorded request stands for.
pub(crate) fn actions_called(requests: &[Request]) -> Vec<String> {
    requests
        .iter()
        .filter_map(|r| {
            if let Some(target) = r.headers.get("x-amz-target") {
                let op = target.to_str().ok()?.rsplit('.').next()?.to_string();
                return Some(format!("ecs:{op}"));
            }
            let body = String::from_utf8_lossy(&r.body);
            let action = body.strip_prefix("Action=")?.split('&').next()?.to_string();
            Some(format!("ec2:{action}"))
        })
        .collect()
}

pub(crate) fn policy_actions() -> Vec<String> {
    let text = include_str!("../../../infra/iam/deploy-protected-policy.json");
    let policy: Value = serde_json::from_str(text).expect("policy JSON");
    policy["Statement"]
        .as_array()
        .expect("statements")
        .iter()
        .flat_map(|s| match &s["Action"] {
            Value::String(a) => vec![a.clone()],
            Value::Array(a) => a
                .iter()
                .filter_map(|v| v.as_str().map(String::from))
                .collect(),
            _ => vec![],
        })
        .collect()
}

/// DescribeTaskDefinition answers with the seed's sample as revision 1.
pub(crate) async fn mount_sample(server: &MockServer) {
    ecs("DescribeTaskDefinition")
        .respond_with(json_ok(described(&seed(), 1)))
        .mount(server)
        .await;
}

/// DescribeServices answers that the service does not exist.
pub(crate) async fn mount_no_service(server: &MockServer) {
    ecs("DescribeServices")
        .respond_with(json_ok(json!({"services": [], "failures": []})))
        .mount(server)
        .await;
}
