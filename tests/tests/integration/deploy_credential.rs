//! Wiremock contracts of the deploy mode's credential calls: the console's install bundle,
//! Secrets Manager (DescribeSecret, CreateSecret with tags, PutResourcePolicy), and their
//! faults (AccessDenied names the IAM action, throttling is retried, a found secret makes no
//! new credential).

use deploy_protected::console::{Console, Login};
use deploy_protected::deploy::credential::{ensure_secret, CredentialSecret};
use deploy_protected::deploy::{exec_role, AwsClients};
use serde_json::json;
use wiremock::matchers::{body_string_contains, header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use super::deploy_mock::{ecs_error, json_ok, sdk_config};

const FAMILY: &str = "twistlock-fargate-task";
const NAME: &str = "fargate-defender/twistlock-fargate-task/defender-token";
const ARN: &str =
    "arn:aws:secretsmanager:us-east-1:123456789012:secret:fargate-defender/twistlock-fargate-task/defender-token-AbCdEf";

fn secrets(op: &str) -> wiremock::MockBuilder {
    Mock::given(method("POST")).and(header("x-amz-target", format!("secretsmanager.{op}")))
}

/// A console that hands out one credential per install-bundle call, `expected` times.
async fn console(expected: u64) -> (MockServer, Console) {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/api/v1/defenders/install-bundle"))
        .and(header("authorization", "Bearer ops-token"))
        .and(body_string_contains("deploy: twistlock-fargate-task"))
        .respond_with(ResponseTemplate::new(201).set_body_json(
            json!({"token": "cdt_fresh", "id": "cred-1", "name": "deploy: twistlock-fargate-task"}),
        ))
        .expect(expected)
        .mount(&server)
        .await;
    let console = Console::new(&server.uri(), Login::Token("ops-token".into()));
    (server, console)
}

fn not_found() -> ResponseTemplate {
    ecs_error(
        400,
        "ResourceNotFoundException",
        "Secrets Manager can't find the specified secret.",
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_secret_gets_a_fresh_credential_tagged_with_the_family() {
    let aws = MockServer::start().await;
    let (_c, console) = console(1).await;
    secrets("DescribeSecret")
        .and(body_string_contains(NAME))
        .respond_with(not_found())
        .expect(1)
        .mount(&aws)
        .await;
    secrets("CreateSecret")
        .and(body_string_contains("\"SecretString\":\"cdt_fresh\""))
        .and(body_string_contains("fargate-defender:family"))
        .and(body_string_contains("cred-1"))
        .respond_with(json_ok(json!({"ARN": ARN, "Name": NAME})))
        .expect(1)
        .mount(&aws)
        .await;
    let clients = AwsClients::new(&sdk_config(&aws.uri()));
    let got = ensure_secret(&clients, FAMILY, &console, false)
        .await
        .expect("created");
    assert_eq!(
        got,
        CredentialSecret::Created {
            name: NAME.into(),
            arn: ARN.into(),
            id: "cred-1".into()
        }
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_found_secret_is_reused_after_throttling_and_makes_no_credential() {
    let aws = MockServer::start().await;
    let (_c, console) = console(0).await;
    secrets("DescribeSecret")
        .respond_with(ecs_error(400, "ThrottlingException", "Rate exceeded"))
        .up_to_n_times(2)
        .with_priority(1)
        .expect(2)
        .mount(&aws)
        .await;
    secrets("DescribeSecret")
        .respond_with(json_ok(json!({"ARN": ARN, "Name": NAME})))
        .expect(1)
        .mount(&aws)
        .await;
    secrets("CreateSecret")
        .respond_with(json_ok(json!({})))
        .expect(0)
        .mount(&aws)
        .await;
    let clients = AwsClients::new(&sdk_config(&aws.uri()));
    let got = ensure_secret(&clients, FAMILY, &console, false)
        .await
        .expect("reused");
    assert_eq!(
        got,
        CredentialSecret::Reused {
            name: NAME.into(),
            arn: ARN.into()
        }
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn access_denied_on_create_secret_names_the_action() {
    let aws = MockServer::start().await;
    let (_c, console) = console(1).await;
    secrets("DescribeSecret")
        .respond_with(not_found())
        .mount(&aws)
        .await;
    secrets("CreateSecret")
        .respond_with(ecs_error(
            400,
            "AccessDeniedException",
            "User: arn:aws:iam::123456789012:user/ci is not authorized to perform: \
             secretsmanager:CreateSecret",
        ))
        .expect(1)
        .mount(&aws)
        .await;
    let clients = AwsClients::new(&sdk_config(&aws.uri()));
    let err = ensure_secret(&clients, FAMILY, &console, false)
        .await
        .expect_err("denied");
    let text = err.to_string();
    assert!(text.contains("secretsmanager:CreateSecret"), "{text}");
    assert!(text.contains("user/ci"), "{text}");
    assert_eq!(err.exit_code(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dry_run_creates_nothing() {
    let aws = MockServer::start().await;
    let (_c, console) = console(0).await;
    secrets("DescribeSecret")
        .respond_with(not_found())
        .mount(&aws)
        .await;
    let clients = AwsClients::new(&sdk_config(&aws.uri()));
    let got = ensure_secret(&clients, FAMILY, &console, true)
        .await
        .expect("dry run");
    assert!(
        matches!(got, CredentialSecret::WouldCreate { .. }),
        "{got:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tasks_own_execution_role_is_granted_by_the_secrets_resource_policy() {
    let aws = MockServer::start().await;
    let role = "arn:aws:iam::123456789012:role/web-execution";
    secrets("PutResourcePolicy")
        .and(body_string_contains(ARN))
        .and(body_string_contains("web-execution"))
        .and(body_string_contains("secretsmanager:GetSecretValue"))
        .respond_with(json_ok(json!({"ARN": ARN, "Name": NAME})))
        .expect(1)
        .mount(&aws)
        .await;
    let clients = AwsClients::new(&sdk_config(&aws.uri()));
    let got = exec_role::ensure(&clients, FAMILY, Some(role), ARN, false)
        .await
        .expect("granted");
    assert_eq!(got.arn(), role);

    // Denied: the error names the action, and exit code 1.
    let aws = MockServer::start().await;
    secrets("PutResourcePolicy")
        .respond_with(ecs_error(
            400,
            "AccessDeniedException",
            "not authorized to perform: secretsmanager:PutResourcePolicy",
        ))
        .mount(&aws)
        .await;
    let clients = AwsClients::new(&sdk_config(&aws.uri()));
    let err = exec_role::ensure(&clients, FAMILY, Some(role), ARN, false)
        .await
        .expect_err("denied");
    assert!(
        err.to_string().contains("secretsmanager:PutResourcePolicy"),
        "{err}"
    );
}
