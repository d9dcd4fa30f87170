//! `deploy-protected local --family`: the binary reads the task definition from ECS
//! (DescribeTaskDefinition through `AWS_ENDPOINT_URL`, credentials from the environment) and
//! runs it on the local Docker Engine.
//!
//! - Contract (wiremock): the request body (`family`, `family:N` with `--revision`), the
//!   region and signature, and every failure the user can meet: unknown family or revision,
//!   access denied, throttling (retried by the SDK), no credentials, no region, flag misuse —
//!   each with the binary's exit code and exact message, and Docker never touched.
//! - moto server: the seed's task definition and its protected revision are registered, then
//!   `local --family` runs the latest one on Docker with the images `local_docker` builds and
//!   the defender's mkdir prevention shows in the logs; `--require-protected` refuses the
//!   unprotected revision.

// Test helpers: a failed step is a failed test.
#![allow(clippy::unwrap_used)]

use super::deploy_mock::{described, ecs, ecs_error, json_ok, sdk_config, seed};
use super::local_docker::{
    assert_seed_prevented, binary, docker, images, local_protected_seed, position, APP_IMAGE,
};
use deploy_protected::deploy::AwsClients;
use integration_tests::moto::MotoServer;
use serde_json::{json, Value};
use std::process::{Command, Output};
use wiremock::matchers::body_partial_json;
use wiremock::MockServer;

/// Runs `deploy-protected local ARGS` with only the environment a user's shell would give it:
/// PATH and HOME (for docker), the AWS settings in `aws` (pairs), nothing else.
fn local(aws: &[(&str, String)], args: &[&str]) -> Output {
    let mut cmd = Command::new(binary());
    cmd.arg("local").args(args).env_clear();
    for var in ["PATH", "HOME", "DOCKER_HOST"] {
        if let Some(v) = std::env::var_os(var) {
            cmd.env(var, v);
        }
    }
    cmd.envs([
        ("AWS_CONFIG_FILE", "/nonexistent/config"),
        ("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/credentials"),
        ("AWS_EC2_METADATA_DISABLED", "true"),
        ("AWS_MAX_ATTEMPTS", "3"),
    ]);
    cmd.envs(aws.iter().map(|(k, v)| (k, v)));
    cmd.output().unwrap()
}

/// A mocked ECS endpoint with test credentials; Docker is made unreachable, so a test that
/// expects an AWS error also proves nothing local was started.
fn aws_env(endpoint: &str) -> Vec<(&'static str, String)> {
    vec![
        ("AWS_ENDPOINT_URL", endpoint),
        ("AWS_REGION", "eu-west-1"),
        ("AWS_ACCESS_KEY_ID", "AKIDTEST"),
        ("AWS_SECRET_ACCESS_KEY", "secret"),
        ("DEPLOY_PROTECTED_DOCKER", "/nonexistent/docker"),
    ]
    .into_iter()
    .map(|(k, v)| (k, v.to_string()))
    .collect()
}

fn text(out: &Output) -> (i32, String, String) {
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The seed's (unprotected) definition on the sample image built here.
fn seed_on_sample_image() -> Value {
    let mut td = seed();
    td["containerDefinitions"][0]["image"] = json!(APP_IMAGE);
    td
}

#[tokio::test]
async fn the_latest_revision_is_described_by_family_and_runs_with_a_loud_warning() {
    let Some(_) = docker() else { return };
    images();
    let server = MockServer::start().await;
    ecs("DescribeTaskDefinition")
        .and(body_partial_json(json!({
            "taskDefinition": "twistlock-fargate-task", "include": ["TAGS"]
        })))
        .respond_with(json_ok(described(&seed_on_sample_image(), 4)))
        .expect(1)
        .mount(&server)
        .await;
    let mut env = aws_env(&server.uri());
    env.retain(|(k, _)| *k != "DEPLOY_PROTECTED_DOCKER" && *k != "AWS_REGION");
    let out = local(
        &env,
        &[
            "--family",
            "twistlock-fargate-task",
            "--region",
            "eu-west-1",
        ],
    );
    let (code, stdout, stderr) = text(&out);
    // entry.sh exits 5 after its mkdir and wget; nothing prevents the mkdir here.
    assert_eq!(code, 5, "{stdout}\n{stderr}");
    position(&stdout, "[twistlock-fargate-task] entry.sh: test exists");
    let warning = position(
        &stderr,
        "deploy-protected: WARNING: task definition twistlock-fargate-task:4 is NOT PROTECTED: \
         no container runs under the defender.",
    );
    assert!(
        warning < position(&stderr, "[local] started container twistlock-fargate-task"),
        "the warning comes before the run\n{stderr}"
    );
    position(&stderr, "--require-protected refuses such tasks.");

    // Signed for the region of --region, as the SDK does for the deploy mode.
    let requests = server.received_requests().await.unwrap();
    let auth = requests[0].headers.get("authorization").unwrap();
    let auth = auth.to_str().unwrap();
    assert!(
        auth.starts_with("AWS4-HMAC-SHA256 Credential=AKIDTEST/")
            && auth.contains("/eu-west-1/ecs/aws4_request"),
        "{auth}"
    );
}

#[tokio::test]
async fn revision_asks_for_family_colon_n_and_require_protected_refuses_before_docker() {
    let server = MockServer::start().await;
    ecs("DescribeTaskDefinition")
        .and(body_partial_json(json!({
            "taskDefinition": "twistlock-fargate-task:3", "include": ["TAGS"]
        })))
        .respond_with(json_ok(described(&seed(), 3)))
        .expect(1)
        .mount(&server)
        .await;
    let out = local(
        &aws_env(&server.uri()),
        &[
            "--family",
            "twistlock-fargate-task",
            "--revision",
            "3",
            "--require-protected",
        ],
    );
    assert_eq!(
        text(&out),
        (
            2,
            String::new(),
            "deploy-protected: error: task definition twistlock-fargate-task:3 is not protected \
             by the defender (no container runs under the defender) and --require-protected is \
             set: protect it with `deploy-protected embed` (or deploy a protected revision with \
             `deploy-protected --family ...`) and run that\n"
                .to_string()
        )
    );
}

/// Runs `local --family nope [extra]` against `server` and returns (code, stdout, stderr).
fn failing(server: &MockServer, extra: &[&str]) -> (i32, String, String) {
    let mut args = vec!["--family", "nope"];
    args.extend_from_slice(extra);
    text(&local(&aws_env(&server.uri()), &args))
}

#[tokio::test]
async fn an_unknown_family_or_revision_is_named_with_how_to_list_them() {
    let server = MockServer::start().await;
    ecs("DescribeTaskDefinition")
        .respond_with(ecs_error(
            400,
            "ClientException",
            "Unable to describe task definition.",
        ))
        .expect(2)
        .mount(&server)
        .await;
    assert_eq!(
        failing(&server, &[]),
        (
            2,
            String::new(),
            "deploy-protected: error: task definition family `nope` has no ACTIVE revision in \
             region eu-west-1: check --family and --region (`aws ecs \
             list-task-definition-families --status ACTIVE --region eu-west-1` lists the \
             families)\n"
                .to_string()
        )
    );
    assert_eq!(
        failing(&server, &["--revision", "9"]),
        (
            2,
            String::new(),
            "deploy-protected: error: task definition `nope:9` does not exist in region \
             eu-west-1: check --revision (`aws ecs list-task-definitions --family-prefix nope \
             --region eu-west-1` lists the revisions; without --revision the latest ACTIVE one \
             runs)\n"
                .to_string()
        )
    );
}

#[tokio::test]
async fn access_denied_names_the_action_and_the_policy() {
    let server = MockServer::start().await;
    ecs("DescribeTaskDefinition")
        .respond_with(ecs_error(
            400,
            "AccessDeniedException",
            "User: arn:aws:iam::123456789012:user/dev is not authorized to perform: \
             ecs:DescribeTaskDefinition",
        ))
        .expect(1)
        .mount(&server)
        .await;
    assert_eq!(
        failing(&server, &[]),
        (
            1,
            String::new(),
            "deploy-protected: error: access denied for ecs:DescribeTaskDefinition: User: \
             arn:aws:iam::123456789012:user/dev is not authorized to perform: \
             ecs:DescribeTaskDefinition; grant `ecs:DescribeTaskDefinition` to the caller \
             (infra/iam/deploy-protected-policy.json lists every action needed)\n"
                .to_string()
        )
    );
}

#[tokio::test]
async fn throttling_is_retried_and_the_answer_after_it_counts() {
    let server = MockServer::start().await;
    ecs("DescribeTaskDefinition")
        .respond_with(ecs_error(400, "ThrottlingException", "Rate exceeded"))
        .up_to_n_times(2)
        .expect(2)
        .mount(&server)
        .await;
    ecs("DescribeTaskDefinition")
        .respond_with(ecs_error(
            400,
            "ClientException",
            "Unable to describe task definition.",
        ))
        .expect(1)
        .mount(&server)
        .await;
    let (code, _, stderr) = failing(&server, &[]);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("task definition family `nope` has no ACTIVE revision"),
        "{stderr}"
    );
    server.verify().await;

    // Throttled on every attempt: the SDK gives up after AWS_MAX_ATTEMPTS and says why.
    let server = MockServer::start().await;
    ecs("DescribeTaskDefinition")
        .respond_with(ecs_error(400, "ThrottlingException", "Rate exceeded"))
        .expect(3)
        .mount(&server)
        .await;
    assert_eq!(
        failing(&server, &[]),
        (
            1,
            String::new(),
            "deploy-protected: error: ecs:DescribeTaskDefinition failed: ThrottlingException: \
             Rate exceeded\n"
                .to_string()
        )
    );
}

#[tokio::test]
async fn no_credentials_or_no_region_stop_before_any_request() {
    let server = MockServer::start().await;
    let mut env = aws_env(&server.uri());
    env.retain(|(k, _)| !k.starts_with("AWS_ACCESS_KEY_ID") && !k.starts_with("AWS_SECRET"));
    let (code, stdout, stderr) = text(&local(&env, &["--family", "web"]));
    assert_eq!((code, stdout.as_str()), (2, ""), "{stderr}");
    assert!(
        stderr.starts_with("deploy-protected: error: --family: no AWS credentials ("),
        "{stderr}"
    );
    assert!(
        stderr.ends_with(
            "): set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, pass --profile (or set \
             AWS_PROFILE), or run `aws sso login`; without AWS, export the definition and use \
             --file\n"
        ),
        "{stderr}"
    );

    let mut env = aws_env(&server.uri());
    env.retain(|(k, _)| *k != "AWS_REGION");
    assert_eq!(
        text(&local(&env, &["--family", "web"])),
        (
            2,
            String::new(),
            "deploy-protected: error: --family: no AWS region: pass --region, set AWS_REGION, \
             or set one in the profile\n"
                .to_string()
        )
    );
    assert!(server.received_requests().await.unwrap().is_empty());
}

#[test]
fn file_or_family_exactly_one_and_aws_flags_need_family() {
    for args in [
        &["--file", "t.json", "--family", "web"][..],
        &[][..],
        &["--file", "t.json", "--revision", "2"][..],
        &["--file", "t.json", "--region", "eu-west-1"][..],
        &["--file", "t.json", "--profile", "dev"][..],
    ] {
        let (code, stdout, stderr) = text(&local(&[], args));
        assert_eq!((code, stdout.as_str()), (2, ""), "{args:?}: {stderr}");
        assert!(stderr.starts_with("error: "), "{args:?}: {stderr}");
        assert!(stderr.contains("Usage: deploy-protected local"), "{stderr}");
    }
    let (code, _, stderr) = text(&local(&[], &["--family", "web", "--revision", "0"]));
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.starts_with("error: invalid value '0' for '--revision <N>'"),
        "{stderr}"
    );
    let (code, _, stderr) = text(&local(&[], &["--family", "web:3", "--revision", "2"]));
    assert_eq!(
        (code, stderr.as_str()),
        (
            2,
            "deploy-protected: error: --family \"web:3\" already names a revision; drop \
             --revision or the \":N\"\n"
        )
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn moto_holds_the_protected_revision_and_local_family_runs_it_under_the_defender() {
    let Some(_) = docker() else { return };
    images();
    let moto = MotoServer::start(&[]).expect("moto server");
    let endpoint = moto.endpoint();
    let clients = AwsClients::new(&sdk_config(&endpoint));
    // Revision 1: the seed as its owner registered it; revision 2: protected.
    let first = clients
        .register_task_definition(&seed_on_sample_image())
        .await
        .unwrap();
    assert!(
        first.ends_with("task-definition/twistlock-fargate-task:1"),
        "{first}"
    );
    let second = clients
        .register_task_definition(&local_protected_seed())
        .await
        .unwrap();
    assert!(second.ends_with(":2"), "{second}");

    let mut env = aws_env(&endpoint);
    env.retain(|(k, _)| *k != "DEPLOY_PROTECTED_DOCKER");
    env.retain(|(k, _)| *k != "AWS_REGION");
    env.push(("AWS_REGION", "us-east-1".into()));
    let refused = text(&local(
        &env,
        &[
            "--family",
            "twistlock-fargate-task",
            "--revision",
            "1",
            "--require-protected",
        ],
    ));
    assert_eq!(refused.0, 2, "{refused:?}");
    assert!(
        refused.2.starts_with(
            "deploy-protected: error: task definition twistlock-fargate-task:1 is not protected"
        ),
        "{refused:?}"
    );

    let (code, stdout, stderr) = text(&local(
        &env,
        &[
            "--family",
            "twistlock-fargate-task",
            "--secret",
            "DEFENDER_TOKEN=local-test-token",
            "--require-protected",
        ],
    ));
    assert_eq!(code, 5, "{stdout}\n{stderr}");
    assert_seed_prevented(&stdout, &stderr);
    assert!(!stderr.contains("WARNING"), "{stderr}");
}
