//! The deploy mode run as the built binary against a mocked AWS reached through
//! `AWS_ENDPOINT_URL` and credentials from the environment (the standard chain): exit codes,
//! the summary on stdout, progress and errors on stderr.

#![allow(clippy::unwrap_used)]

use serde_json::{json, Value};
use std::path::Path;
use std::process::{Command, Output};
use wiremock::matchers::{body_string_contains, header, method};
use wiremock::{Mock, MockServer, ResponseTemplate};

const TARGET: &str = "AmazonEC2ContainerServiceV20141113";
const TD1: &str = "arn:aws:ecs:eu-west-1:123456789012:task-definition/twistlock-fargate-task:1";
const TD2: &str = "arn:aws:ecs:eu-west-1:123456789012:task-definition/twistlock-fargate-task:2";
const ROLE: &str = "arn:aws:iam::123456789012:role/exec";
const SVC: &str = "arn:aws:ecs:eu-west-1:123456789012:service/c1/twistlock-fargate-task";

/// Runs the binary with only the AWS environment a CI job would set.
fn run(endpoint: &str, extra: &[&str]) -> Output {
    let mut args = vec![
        "--family",
        "twistlock-fargate-task",
        "--cluster",
        "c1",
        "--console-url",
        "https://console.example",
        "--defender-image",
        "fargate-defender:1",
        "--token-secret-arn",
        "arn:aws:secretsmanager:eu-west-1:123456789012:secret:defender-token",
        "--cnaf-port",
        "8080",
        "--app-port",
        "80",
        "--poll-interval",
        "20ms",
        "--execution-role",
        ROLE,
    ];
    args.extend_from_slice(extra);
    Command::new(env!("CARGO_BIN_EXE_deploy-protected"))
        .args(args)
        .env_clear()
        .env("AWS_ENDPOINT_URL", endpoint)
        .env("AWS_REGION", "eu-west-1")
        .env("AWS_ACCESS_KEY_ID", "AKIDTEST")
        .env("AWS_SECRET_ACCESS_KEY", "secret")
        .env("AWS_CONFIG_FILE", "/nonexistent/config")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/credentials")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .output()
        .unwrap()
}

fn ecs(op: &str) -> wiremock::MockBuilder {
    Mock::given(method("POST")).and(header("x-amz-target", format!("{TARGET}.{op}")))
}

fn ok(body: Value) -> ResponseTemplate {
    ResponseTemplate::new(200)
        .insert_header("content-type", "application/x-amz-json-1.1")
        .set_body_string(body.to_string())
}

fn sample() -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/fargate-task.json");
    let mut td: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    td["taskDefinitionArn"] = json!(TD1);
    td["revision"] = json!(1);
    td["status"] = json!("ACTIVE");
    json!({ "taskDefinition": td })
}

fn service(td: &str, running: i32, deployments: usize) -> Value {
    json!({"serviceArn": SVC, "serviceName": "twistlock-fargate-task", "status": "ACTIVE",
        "taskDefinition": td, "desiredCount": 1, "runningCount": running,
        "pendingCount": 1 - running,
        "networkConfiguration": {"awsvpcConfiguration": {"subnets": ["subnet-1"],
            "securityGroups": ["sg-1"], "assignPublicIp": "DISABLED"}},
        "deployments": (0..deployments).map(|i| json!({"id": format!("d{i}"),
            "status": if i == 0 { "PRIMARY" } else { "ACTIVE" }, "taskDefinition": td}))
            .collect::<Vec<_>>()})
}

fn iam_ok(action: &str, result: &str) -> Mock {
    Mock::given(method("POST"))
        .and(body_string_contains(format!("Action={action}&")))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("content-type", "text/xml")
                .set_body_string(format!(
                    "<{action}Response xmlns=\"https://iam.amazonaws.com/doc/2010-05-08/\">\
                     <{action}Result>{result}</{action}Result><ResponseMetadata><RequestId>r\
                     </RequestId></ResponseMetadata></{action}Response>"
                )),
        )
}

/// `--execution-role` ROLE exists and an inline policy lets it read the given secret.
async fn mount_readable_role(server: &MockServer) {
    iam_ok(
        "GetRole",
        "<Role><Path>/</Path><RoleName>exec</RoleName><RoleId>AROA1</RoleId>\
         <Arn>arn:aws:iam::123456789012:role/exec</Arn>\
         <CreateDate>2026-01-01T00:00:00Z</CreateDate></Role>",
    )
    .mount(server)
    .await;
    iam_ok(
        "ListRolePolicies",
        "<PolicyNames><member>read-token</member></PolicyNames><IsTruncated>false</IsTruncated>",
    )
    .mount(server)
    .await;
    let document = "%7B%22Statement%22%3A%5B%7B%22Effect%22%3A%22Allow%22%2C%22Action%22%3A%22\
                    secretsmanager%3AGetSecretValue%22%2C%22Resource%22%3A%22arn%3Aaws%3A\
                    secretsmanager%3Aeu-west-1%3A123456789012%3Asecret%3Adefender-token*%22%7D%5D%7D";
    iam_ok(
        "GetRolePolicy",
        &format!(
            "<RoleName>exec</RoleName><PolicyName>read-token</PolicyName>\
             <PolicyDocument>{document}</PolicyDocument>"
        ),
    )
    .mount(server)
    .await;
    iam_ok(
        "ListAttachedRolePolicies",
        "<AttachedPolicies/><IsTruncated>false</IsTruncated>",
    )
    .mount(server)
    .await;
    Mock::given(method("POST"))
        .and(header("x-amz-target", "secretsmanager.GetResourcePolicy"))
        .respond_with(ok(json!({"ARN": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:defender-token", "Name": "defender-token"})))
        .mount(server)
        .await;
}

/// An existing service on revision 1, moved to revision 2; `steady` says whether it settles.
async fn mock_update(steady: bool) -> MockServer {
    let server = MockServer::start().await;
    mount_readable_role(&server).await;
    ecs("DescribeTaskDefinition")
        .respond_with(ok(sample()))
        .mount(&server)
        .await;
    ecs("DescribeServices")
        .respond_with(ok(json!({"services": [service(TD1, 1, 1)]})))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    let later = if steady {
        service(TD2, 1, 1)
    } else {
        service(TD2, 0, 2)
    };
    ecs("DescribeServices")
        .respond_with(ok(json!({ "services": [later] })))
        .mount(&server)
        .await;
    ecs("RegisterTaskDefinition")
        .respond_with(ok(json!({"taskDefinition": {"taskDefinitionArn": TD2}})))
        .expect(1)
        .mount(&server)
        .await;
    ecs("UpdateService")
        .respond_with(ok(json!({ "service": service(TD2, 0, 2) })))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(body_string_contains(
            "Action=AuthorizeSecurityGroupIngress&",
        ))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("content-type", "text/xml")
                .set_body_string(
                    "<AuthorizeSecurityGroupIngressResponse><requestId>r</requestId>\
                     <return>true</return></AuthorizeSecurityGroupIngressResponse>",
                ),
        )
        .expect(1)
        .mount(&server)
        .await;
    server
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deploys_through_aws_endpoint_url_and_prints_a_json_summary() {
    let server = mock_update(true).await;
    let out = run(&server.uri(), &["--output", "json"]);
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let summary: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["task_definition_arn"], TD2);
    assert_eq!(summary["task_definition"], "registered");
    assert_eq!(summary["service_arn"], SVC);
    assert_eq!(summary["service"], "updated");
    assert_eq!(summary["security_group_rules"][0]["group_id"], "sg-1");
    assert_eq!(summary["security_group_rules"][0]["port"], 8080);
    assert_eq!(summary["security_group_rules"][0]["cidr"], "0.0.0.0/0");
    assert_eq!(summary["final_state"], "steady");
    // Not a terminal: plain progress lines, suitable for CI logs.
    assert!(
        stderr.contains(&format!("registered task definition {TD2}\n")),
        "{stderr}"
    );
    assert!(
        stderr.contains("waiting: running 1/1, pending 0, 1 deployment\n"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wait_timeout_exits_1_with_the_summary_and_the_error() {
    let server = mock_update(false).await;
    let out = run(
        &server.uri(),
        &["--output", "json", "--wait-timeout", "200ms"],
    );
    assert_eq!(out.status.code(), Some(1));
    let summary: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["final_state"], "timed-out");
    let error = "service `twistlock-fargate-task` did not reach a steady state within 200ms: \
                 running 0/1, pending 1, 2 deployments";
    assert_eq!(summary["error"], error);
    assert_eq!(
        String::from_utf8(out.stderr).unwrap().lines().last(),
        Some(format!("deploy-protected: error: {error}").as_str())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_family_exits_2_naming_it() {
    let server = MockServer::start().await;
    mount_readable_role(&server).await;
    ecs("DescribeTaskDefinition")
        .respond_with(
            ResponseTemplate::new(400)
                .insert_header("content-type", "application/x-amz-json-1.1")
                .set_body_string(
                    json!({"__type": "ClientException",
                        "message": "Unable to describe task definition."})
                    .to_string(),
                ),
        )
        .mount(&server)
        .await;
    let out = run(&server.uri(), &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.starts_with("deploy-protected: execution role "),
        "{stderr}"
    );
    assert_eq!(
        stderr
            .lines()
            .last()
            .map(|l| format!("{l}\n"))
            .unwrap_or_default(),
        "deploy-protected: error: task definition family `twistlock-fargate-task` has no ACTIVE \
         revision in region eu-west-1: check --family and --region (or AWS_REGION / the \
         profile's region)\n"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dry_run_prints_the_diff_and_the_calls_and_changes_nothing() {
    let server = MockServer::start().await;
    mount_readable_role(&server).await;
    ecs("DescribeTaskDefinition")
        .respond_with(ok(sample()))
        .mount(&server)
        .await;
    ecs("DescribeServices")
        .respond_with(ok(json!({"services": [service(TD1, 1, 1)]})))
        .mount(&server)
        .await;
    for op in ["RegisterTaskDefinition", "UpdateService", "CreateService"] {
        ecs(op)
            .respond_with(ResponseTemplate::new(500))
            .expect(0)
            .mount(&server)
            .await;
    }
    let out = run(&server.uri(), &["--dry-run"]);
    assert_eq!(out.status.code(), Some(0));
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(
        stdout.starts_with(
            "dry run: nothing was changed\n\n--- twistlock-fargate-task:1\n+++ protected\n"
        ),
        "{stdout}"
    );
    assert!(
        stdout.contains("+        \"/var/lib/defender/defender\",\n"),
        "{stdout}"
    );
    assert!(stdout.contains(
        "AWS calls a real run would make:\n  ecs:RegisterTaskDefinition family=twistlock-fargate-task"
    ), "{stdout}");
    assert!(
        stdout.contains(
            "  ecs:UpdateService cluster=c1 service=twistlock-fargate-task \
         taskDefinition=twistlock-fargate-task:<new revision>\n"
        ),
        "{stdout}"
    );
}
