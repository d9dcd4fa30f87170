//! Contract tests of the deploy mode against a mocked AWS (wiremock): ECS calls are matched by
//! their `x-amz-target` header (JSON 1.1), EC2 calls by the `Action=` of their query-protocol
//! form bodies (XML answers). The real SDK signs, retries and parses; the real transform runs.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_config::retry::RetryConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_ecs::config::{Credentials, SharedCredentialsProvider};
use deploy_protected::deploy::cmd::embed_transform;
use deploy_protected::deploy::progress::PlainProgress;
use deploy_protected::deploy::{
    deploy, AwsClients, AwsVpc, CnafIngress, DeployError, DeploySettings, FinalState, Outcome,
    Registration, ServiceAction, WaitFailure, WaitSettings,
};
use protect::embed::{CnafOptions, EmbedOptions};
use serde_json::{json, Value};
use wiremock::matchers::{body_partial_json, body_string_contains, header, method};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

const ECS_TARGET: &str = "AmazonEC2ContainerServiceV20141113";
const ACCOUNT: &str = "123456789012";
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

fn td_arn(revision: i64) -> String {
    format!("arn:aws:ecs:us-east-1:{ACCOUNT}:task-definition/twistlock-fargate-task:{revision}")
}

const SERVICE_ARN: &str = "arn:aws:ecs:us-east-1:123456789012:service/c1/twistlock-fargate-task";

/// `definition` as DescribeTaskDefinition returns it: read-only fields and ECS defaults added.
fn described(definition: &Value, revision: i64) -> Value {
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

fn seed() -> Value {
    serde_json::from_str(SAMPLE).expect("sample task definition")
}

fn protected_seed() -> Value {
    protect::embed::embed(&seed(), &options())
        .expect("transform")
        .task_definition
}

fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

fn service(td: &str, running: i32, desired: i32, deployments: &[&str], events: Value) -> Value {
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

fn ecs(op: &str) -> wiremock::MockBuilder {
    Mock::given(method("POST")).and(header("x-amz-target", format!("{ECS_TARGET}.{op}")))
}

fn ec2(action: &str) -> wiremock::MockBuilder {
    Mock::given(method("POST")).and(body_string_contains(format!("Action={action}&")))
}

fn json_ok(body: Value) -> ResponseTemplate {
    ResponseTemplate::new(200)
        .insert_header("content-type", "application/x-amz-json-1.1")
        .set_body_string(body.to_string())
}

fn ecs_error(status: u16, code: &str, message: &str) -> ResponseTemplate {
    ResponseTemplate::new(status)
        .insert_header("content-type", "application/x-amz-json-1.1")
        .set_body_string(json!({"__type": code, "message": message}).to_string())
}

fn xml_ok(body: String) -> ResponseTemplate {
    ResponseTemplate::new(200)
        .insert_header("content-type", "text/xml;charset=UTF-8")
        .set_body_string(body)
}

fn ec2_error(code: &str, message: &str) -> ResponseTemplate {
    ResponseTemplate::new(400)
        .insert_header("content-type", "text/xml;charset=UTF-8")
        .set_body_string(format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Response><Errors><Error><Code>{code}</Code>\
             <Message>{message}</Message></Error></Errors><RequestID>r-1</RequestID></Response>"
        ))
}

const EC2_NS: &str = "http://ec2.amazonaws.com/doc/2016-11-15/";

fn subnets_xml(items: &[(&str, &str)]) -> String {
    let items: String = items
        .iter()
        .map(|(s, v)| format!("<item><subnetId>{s}</subnetId><vpcId>{v}</vpcId></item>"))
        .collect();
    format!(
        "<DescribeSubnetsResponse xmlns=\"{EC2_NS}\"><requestId>r-1</requestId>\
         <subnetSet>{items}</subnetSet></DescribeSubnetsResponse>"
    )
}

fn groups_xml(items: &[(&str, &str)]) -> String {
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

fn authorize_xml() -> String {
    format!(
        "<AuthorizeSecurityGroupIngressResponse xmlns=\"{EC2_NS}\"><requestId>r-1</requestId>\
         <return>true</return></AuthorizeSecurityGroupIngressResponse>"
    )
}

fn settings() -> DeploySettings {
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
async fn mount_network(server: &MockServer) {
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
async fn forbid(server: &MockServer, ops: &[&str], actions: &[&str]) {
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

async fn run(
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
fn actions_called(requests: &[Request]) -> Vec<String> {
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

fn policy_actions() -> Vec<String> {
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

#[tokio::test]
async fn new_service_registers_opens_cnaf_port_creates_and_waits() {
    let server = MockServer::start().await;
    ecs("DescribeTaskDefinition")
        .and(body_partial_json(json!({
            "taskDefinition": "twistlock-fargate-task", "include": ["TAGS"]
        })))
        .respond_with(json_ok(described(&seed(), 1)))
        .expect(1)
        .mount(&server)
        .await;
    // First look: the service does not exist yet; afterwards it is steady.
    ecs("DescribeServices")
        .and(body_partial_json(
            json!({"cluster": "c1", "services": ["twistlock-fargate-task"]}),
        ))
        .respond_with(json_ok(json!({"services": [], "failures": [
            {"arn": SERVICE_ARN, "reason": "MISSING"}]})))
        .up_to_n_times(1)
        .expect(1)
        .mount(&server)
        .await;
    ecs("DescribeServices")
        .respond_with(json_ok(json!({"services": [service(
            &td_arn(2), 1, 1, &[&td_arn(2)], json!([]))], "failures": []})))
        .mount(&server)
        .await;
    mount_network(&server).await;
    // What ECS described (defaults and tags included), protected by the real transform.
    let expected = protect::embed::embed(&described(&seed(), 1), &options())
        .expect("transform")
        .task_definition;
    assert_eq!(expected["tags"], json!([{"key": "team", "value": "web"}]));
    ecs("RegisterTaskDefinition")
        .and(body_partial_json(expected.clone()))
        .respond_with(json_ok(json!({"taskDefinition": {
            "taskDefinitionArn": td_arn(2), "revision": 2, "family": "twistlock-fargate-task"}})))
        .expect(1)
        .mount(&server)
        .await;
    ec2("AuthorizeSecurityGroupIngress")
        .and(body_string_contains("GroupId=sg-1"))
        .and(body_string_contains("IpPermissions.1.IpProtocol=tcp"))
        .and(body_string_contains("IpPermissions.1.FromPort=8080"))
        .and(body_string_contains("IpPermissions.1.ToPort=8080"))
        .and(body_string_contains(
            "IpPermissions.1.IpRanges.1.CidrIp=0.0.0.0%2F0",
        ))
        .respond_with(xml_ok(authorize_xml()))
        .expect(1)
        .mount(&server)
        .await;
    ecs("CreateService")
        .and(body_partial_json(json!({
            "cluster": "c1", "serviceName": "twistlock-fargate-task",
            "taskDefinition": td_arn(2), "desiredCount": 1, "launchType": "FARGATE",
            "networkConfiguration": {"awsvpcConfiguration": {"subnets": ["subnet-1"],
                "securityGroups": ["sg-1"], "assignPublicIp": "ENABLED"}}
        })))
        .respond_with(json_ok(json!({"service": service(
            &td_arn(2), 0, 1, &[&td_arn(2)], json!([]))})))
        .expect(1)
        .mount(&server)
        .await;
    forbid(&server, &["UpdateService"], &[]).await;

    let (result, progress) = run(&server, &settings()).await;
    let Ok(Outcome::Deployed(summary)) = result else {
        panic!("{result:?}");
    };
    assert_eq!(summary.task_definition_arn, td_arn(2));
    assert_eq!(summary.task_definition, Registration::Registered);
    assert_eq!(summary.service, ServiceAction::Created);
    assert_eq!(summary.service_arn, SERVICE_ARN);
    assert_eq!(summary.final_state, FinalState::Steady);
    assert_eq!(summary.security_group_rules.len(), 1);
    assert_eq!(summary.security_group_rules[0].result, "added");
    assert!(
        progress.contains("registered task definition"),
        "{progress}"
    );

    // The request body of RegisterTaskDefinition is exactly the transform's output (+ tags).
    let requests = server.received_requests().await.expect("recording");
    let register = requests
        .iter()
        .find(|r| {
            r.headers
                .get("x-amz-target")
                .is_some_and(|t| t.as_bytes().ends_with(b".RegisterTaskDefinition"))
        })
        .expect("register request");
    let sent: Value = serde_json::from_slice(&register.body).expect("JSON body");
    assert_eq!(sent, expected);
    assert!(register.headers.get("authorization").is_some(), "signed");

    // Every call made is in the IAM policy.
    let policy = policy_actions();
    for action in actions_called(&requests) {
        assert!(policy.contains(&action), "{action} missing from the policy");
    }
}

#[tokio::test]
async fn throttling_is_retried_by_the_sdk() {
    let server = MockServer::start().await;
    ecs("DescribeTaskDefinition")
        .respond_with(ecs_error(400, "ThrottlingException", "Rate exceeded"))
        .up_to_n_times(2)
        .expect(2)
        .mount(&server)
        .await;
    ecs("DescribeTaskDefinition")
        .respond_with(json_ok(described(&seed(), 1)))
        .expect(1)
        .mount(&server)
        .await;
    ecs("DescribeServices")
        .respond_with(json_ok(json!({"services": [], "failures": []})))
        .mount(&server)
        .await;
    mount_network(&server).await;
    forbid(
        &server,
        &["RegisterTaskDefinition", "CreateService", "UpdateService"],
        &["AuthorizeSecurityGroupIngress"],
    )
    .await;
    let (result, _) = run(
        &server,
        &DeploySettings {
            dry_run: true,
            ..settings()
        },
    )
    .await;
    let Ok(Outcome::DryRun(plan)) = result else {
        panic!("{result:?}");
    };
    assert_eq!(plan.source_task_definition_arn, td_arn(1));
    assert!(
        plan.diff.contains("+      \"name\": \"defender\""),
        "{}",
        plan.diff
    );
    assert!(plan.calls[0].starts_with("ecs:RegisterTaskDefinition"));
    assert!(plan.calls[1].starts_with("ec2:AuthorizeSecurityGroupIngress groupId=sg-1 tcp/8080"));
    assert!(plan.calls[2].starts_with("ecs:CreateService cluster=c1"));
}

#[tokio::test]
async fn server_errors_are_retried_then_reported_with_the_action() {
    let server = MockServer::start().await;
    ecs("DescribeTaskDefinition")
        .respond_with(json_ok(described(&seed(), 1)))
        .mount(&server)
        .await;
    ecs("DescribeServices")
        .respond_with(ecs_error(
            500,
            "ServerException",
            "Service unavailable, try again",
        ))
        .expect(3)
        .mount(&server)
        .await;
    forbid(
        &server,
        &["RegisterTaskDefinition", "CreateService", "UpdateService"],
        &["AuthorizeSecurityGroupIngress"],
    )
    .await;
    let (result, _) = run(&server, &settings()).await;
    let err = result.expect_err("5xx after retries");
    assert_eq!(
        err.to_string(),
        "ecs:DescribeServices failed: ServerException: Service unavailable, try again"
    );
    assert_eq!(err.exit_code(), 1);
}

#[tokio::test]
async fn a_transient_5xx_then_success_deploys() {
    let server = MockServer::start().await;
    ecs("DescribeTaskDefinition")
        .respond_with(ResponseTemplate::new(503).set_body_string("unavailable"))
        .up_to_n_times(1)
        .expect(1)
        .mount(&server)
        .await;
    ecs("DescribeTaskDefinition")
        .respond_with(json_ok(described(&seed(), 1)))
        .expect(1)
        .mount(&server)
        .await;
    ecs("DescribeServices")
        .respond_with(json_ok(json!({"services": [], "failures": []})))
        .mount(&server)
        .await;
    mount_network(&server).await;
    let (result, _) = run(
        &server,
        &DeploySettings {
            dry_run: true,
            ..settings()
        },
    )
    .await;
    assert!(matches!(result, Ok(Outcome::DryRun(_))), "{result:?}");
}

#[tokio::test]
async fn access_denied_names_the_iam_action_and_stops() {
    let server = MockServer::start().await;
    ecs("DescribeTaskDefinition")
        .respond_with(json_ok(described(&seed(), 1)))
        .mount(&server)
        .await;
    ecs("DescribeServices")
        .respond_with(json_ok(json!({"services": [], "failures": []})))
        .mount(&server)
        .await;
    mount_network(&server).await;
    ecs("RegisterTaskDefinition")
        .respond_with(ecs_error(
            400,
            "AccessDeniedException",
            "User: arn:aws:iam::123456789012:user/ci is not authorized to perform: \
             ecs:RegisterTaskDefinition on resource: *",
        ))
        .expect(1)
        .mount(&server)
        .await;
    forbid(
        &server,
        &["CreateService", "UpdateService"],
        &["AuthorizeSecurityGroupIngress"],
    )
    .await;
    let (result, _) = run(&server, &settings()).await;
    let err = result.expect_err("denied");
    assert_eq!(
        err.to_string(),
        "access denied for ecs:RegisterTaskDefinition: User: \
         arn:aws:iam::123456789012:user/ci is not authorized to perform: \
         ecs:RegisterTaskDefinition on resource: *; grant `ecs:RegisterTaskDefinition` to the \
         caller (infra/iam/deploy-protected-policy.json lists every action needed)"
    );
    assert_eq!(err.exit_code(), 1);
}

#[tokio::test]
async fn ec2_unauthorized_operation_names_the_ec2_action() {
    let server = MockServer::start().await;
    ecs("DescribeTaskDefinition")
        .respond_with(json_ok(described(&seed(), 1)))
        .mount(&server)
        .await;
    ecs("DescribeServices")
        .respond_with(json_ok(json!({"services": [], "failures": []})))
        .mount(&server)
        .await;
    ec2("DescribeSubnets")
        .respond_with(ec2_error(
            "UnauthorizedOperation",
            "You are not authorized to perform this operation.",
        ))
        .mount(&server)
        .await;
    forbid(
        &server,
        &["RegisterTaskDefinition", "CreateService", "UpdateService"],
        &["AuthorizeSecurityGroupIngress"],
    )
    .await;
    let (result, _) = run(&server, &settings()).await;
    let err = result.expect_err("denied");
    assert!(
        err.to_string()
            .starts_with("access denied for ec2:DescribeSubnets: You are not authorized"),
        "{err}"
    );
}

#[tokio::test]
async fn unknown_family_is_named_and_nothing_else_is_called() {
    let server = MockServer::start().await;
    ecs("DescribeTaskDefinition")
        .respond_with(ecs_error(
            400,
            "ClientException",
            "Unable to describe task definition.",
        ))
        .expect(1)
        .mount(&server)
        .await;
    forbid(
        &server,
        &[
            "DescribeServices",
            "RegisterTaskDefinition",
            "CreateService",
            "UpdateService",
        ],
        &["DescribeSubnets", "AuthorizeSecurityGroupIngress"],
    )
    .await;
    let (result, _) = run(
        &server,
        &DeploySettings {
            family: "no-such-family".into(),
            ..settings()
        },
    )
    .await;
    let err = result.expect_err("unknown family");
    assert_eq!(
        err.to_string(),
        "task definition family `no-such-family` has no ACTIVE revision in region us-east-1: \
         check --family and --region (or AWS_REGION / the profile's region)"
    );
    assert_eq!(err.exit_code(), 2);
}

#[tokio::test]
async fn missing_cluster_is_reported_with_region() {
    let server = MockServer::start().await;
    ecs("DescribeTaskDefinition")
        .respond_with(json_ok(described(&seed(), 1)))
        .mount(&server)
        .await;
    ecs("DescribeServices")
        .respond_with(ecs_error(
            400,
            "ClusterNotFoundException",
            "Cluster not found.",
        ))
        .expect(1)
        .mount(&server)
        .await;
    forbid(
        &server,
        &["RegisterTaskDefinition", "CreateService", "UpdateService"],
        &["AuthorizeSecurityGroupIngress"],
    )
    .await;
    let (result, _) = run(&server, &settings()).await;
    let err = result.expect_err("no cluster");
    assert_eq!(
        err.to_string(),
        "cluster `c1` was not found in region us-east-1 (ClusterNotFoundException): check \
         --cluster and --region"
    );
    assert_eq!(err.exit_code(), 2);
}

#[tokio::test]
async fn subnets_and_security_groups_in_different_vpcs_stop_before_any_change() {
    let server = MockServer::start().await;
    ecs("DescribeTaskDefinition")
        .respond_with(json_ok(described(&seed(), 1)))
        .mount(&server)
        .await;
    ecs("DescribeServices")
        .respond_with(json_ok(json!({"services": [], "failures": []})))
        .mount(&server)
        .await;
    ec2("DescribeSubnets")
        .respond_with(xml_ok(subnets_xml(&[("subnet-1", "vpc-1")])))
        .mount(&server)
        .await;
    ec2("DescribeSecurityGroups")
        .respond_with(xml_ok(groups_xml(&[("sg-1", "vpc-2")])))
        .mount(&server)
        .await;
    forbid(
        &server,
        &["RegisterTaskDefinition", "CreateService", "UpdateService"],
        &["AuthorizeSecurityGroupIngress"],
    )
    .await;
    let (result, _) = run(&server, &settings()).await;
    let err = result.expect_err("vpc mismatch");
    assert_eq!(
        err.to_string(),
        "subnet `subnet-1` is in vpc-1 but security group `sg-1` is in vpc-2: a Fargate task's \
         subnets and security groups must be in one VPC; fix --subnets or --security-groups"
    );
    assert_eq!(err.exit_code(), 2);

    // An unknown subnet id is named too.
    let server = MockServer::start().await;
    ecs("DescribeTaskDefinition")
        .respond_with(json_ok(described(&seed(), 1)))
        .mount(&server)
        .await;
    ecs("DescribeServices")
        .respond_with(json_ok(json!({"services": [], "failures": []})))
        .mount(&server)
        .await;
    ec2("DescribeSubnets")
        .respond_with(ec2_error(
            "InvalidSubnetID.NotFound",
            "The subnet ID 'subnet-9' does not exist",
        ))
        .mount(&server)
        .await;
    let (result, _) = run(&server, &settings()).await;
    assert_eq!(
        result.expect_err("unknown subnet").to_string(),
        "subnet `subnet-9` does not exist in region us-east-1: check --subnets"
    );
}

#[tokio::test]
async fn update_with_duplicate_rule_and_reused_revision() {
    // The latest revision already is the protected definition: no RegisterTaskDefinition; the
    // service runs revision 1 and is updated; the CNAF rule already exists.
    let server = MockServer::start().await;
    ecs("DescribeTaskDefinition")
        .respond_with(json_ok(described(&protected_seed(), 2)))
        .mount(&server)
        .await;
    ecs("DescribeServices")
        .respond_with(json_ok(json!({"services": [service(
            &td_arn(1), 1, 1, &[&td_arn(1)], json!([]))], "failures": []})))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    ecs("DescribeServices")
        .respond_with(json_ok(json!({"services": [service(
            &td_arn(2), 1, 1, &[&td_arn(2)], json!([]))], "failures": []})))
        .mount(&server)
        .await;
    mount_network(&server).await;
    ec2("AuthorizeSecurityGroupIngress")
        .respond_with(ec2_error(
            "InvalidPermission.Duplicate",
            "the specified rule \"peer: 0.0.0.0/0, TCP, from port: 8080, to port: 8080, ALLOW\" \
             already exists",
        ))
        .expect(1)
        .mount(&server)
        .await;
    ecs("UpdateService")
        .and(body_partial_json(json!({
            "cluster": "c1", "service": "twistlock-fargate-task", "taskDefinition": td_arn(2)
        })))
        .respond_with(json_ok(json!({"service": service(
            &td_arn(2), 1, 1, &[&td_arn(2), &td_arn(1)], json!([]))})))
        .expect(1)
        .mount(&server)
        .await;
    forbid(&server, &["RegisterTaskDefinition", "CreateService"], &[]).await;
    let mut s = settings();
    s.network = Some(AwsVpc {
        assign_public_ip: false,
        ..s.network.clone().expect("network")
    });
    let (result, progress) = run(&server, &s).await;
    let Ok(Outcome::Deployed(summary)) = result else {
        panic!("{result:?}");
    };
    assert_eq!(summary.task_definition, Registration::Reused);
    assert_eq!(summary.task_definition_arn, td_arn(2));
    assert_eq!(summary.service, ServiceAction::Updated);
    assert_eq!(summary.security_group_rules[0].result, "already-present");
    assert_eq!(summary.final_state, FinalState::Steady);
    assert!(
        progress.contains("already is the protected definition"),
        "{progress}"
    );
}

#[tokio::test]
async fn a_service_that_never_stabilises_times_out_and_rolls_back() {
    let server = MockServer::start().await;
    ecs("DescribeTaskDefinition")
        .respond_with(json_ok(described(&seed(), 1)))
        .mount(&server)
        .await;
    let unable = "(service twistlock-fargate-task) was unable to place a task because no \
                  container instance met all of its requirements.";
    ecs("DescribeServices")
        .respond_with(json_ok(json!({"services": [service(
            &td_arn(1), 1, 1, &[&td_arn(1)], json!([]))], "failures": []})))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    ecs("DescribeServices")
        .respond_with(json_ok(json!({"services": [service(
            &td_arn(2), 0, 1, &[&td_arn(2), &td_arn(1)], json!([
                {"id": "e2", "createdAt": now() + 1.0, "message": unable},
                {"id": "e1", "createdAt": now() - 3600.0,
                 "message": "(service x) was unable to do an old thing."}
            ]))], "failures": []})))
        .mount(&server)
        .await;
    mount_network(&server).await;
    ecs("RegisterTaskDefinition")
        .respond_with(json_ok(json!({"taskDefinition": {
            "taskDefinitionArn": td_arn(2), "revision": 2}})))
        .expect(1)
        .mount(&server)
        .await;
    ec2("AuthorizeSecurityGroupIngress")
        .respond_with(xml_ok(authorize_xml()))
        .mount(&server)
        .await;
    ecs("UpdateService")
        .and(body_partial_json(json!({"taskDefinition": td_arn(2)})))
        .respond_with(json_ok(json!({"service": service(
            &td_arn(2), 0, 1, &[&td_arn(2), &td_arn(1)], json!([]))})))
        .expect(1)
        .mount(&server)
        .await;
    ecs("UpdateService")
        .and(body_partial_json(json!({"taskDefinition": td_arn(1)})))
        .respond_with(json_ok(json!({"service": service(
            &td_arn(1), 0, 1, &[&td_arn(1), &td_arn(2)], json!([]))})))
        .expect(1)
        .mount(&server)
        .await;
    let mut s = settings();
    s.network = None;
    s.rollback = true;
    s.wait = Some(WaitSettings {
        timeout: Duration::from_millis(300),
        poll_interval: Duration::from_millis(30),
    });
    let (result, progress) = run(&server, &s).await;
    let err = result.expect_err("never steady");
    let DeployError::NotSteady { reason, summary } = &err else {
        panic!("{err:?}");
    };
    assert_eq!(
        *reason,
        WaitFailure::Timeout {
            service: "twistlock-fargate-task".into(),
            timeout: Duration::from_millis(300),
            status: "running 0/1, pending 1, 2 deployments, rollout IN_PROGRESS".into(),
            rolled_back_to: Some(td_arn(1)),
        }
    );
    assert_eq!(summary.final_state, FinalState::TimedOut);
    assert_eq!(summary.rolled_back_to, Some(td_arn(1)));
    assert_eq!(summary.events, vec![unable.to_string()]);
    assert_eq!(err.exit_code(), 1);
    assert_eq!(progress.matches("service event:").count(), 1, "{progress}");
    assert!(progress.contains(&format!(
        "rolled service twistlock-fargate-task back to {}",
        td_arn(1)
    )));
    // Polled several times, every few tens of milliseconds.
    let polls = actions_called(&server.received_requests().await.expect("recording"))
        .iter()
        .filter(|a| *a == "ecs:DescribeServices")
        .count();
    assert!((4..=15).contains(&polls), "{polls} polls");
}

#[test]
fn the_iam_policy_lists_exactly_the_actions_the_cli_needs() {
    let mut policy = policy_actions();
    policy.sort();
    let mut needed: Vec<String> = deploy_protected::deploy::aws::API_ACTIONS
        .iter()
        .map(|a| a.to_string())
        .chain(["iam:PassRole".to_string(), "ecs:TagResource".to_string()])
        .collect();
    needed.sort();
    assert_eq!(policy, needed);
}
