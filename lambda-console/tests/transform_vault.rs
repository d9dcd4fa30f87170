//! The transform on a console that keeps credentials in Secrets Manager (as on Lambda): against
//! moto server for behaviour (the secret, its reuse and renewal, the execution role's grant) and
//! wiremock for the faults (the console's role lacking a permission).

mod common;

use std::sync::Arc;

use aws_sdk_dynamodb::config::{BehaviorVersion, Credentials, Region};
use axum::http::{Method, StatusCode};
use common::{call, call_raw, console_on, example, test_settings};
use integration_tests::moto::MotoServer;
use lambda_console::store::sqlite::SqliteStore;
use lambda_console::vault::SecretsVault;
use lambda_console::AppState;
use serde_json::{json, Value};

const DEFAULT_ROLE: &str = "arn:aws:iam::123456789012:role/fargate-defender-exec";
const FAMILY: &str = "twistlock-fargate-task";
const SECRET: &str = "fargate-defender/twistlock-fargate-task/defender-token";
const URI: &str = "/api/v1/defenders/fargate.json?consoleaddr=console.example";

async fn sdk_config(endpoint: &str) -> aws_config::SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("testing", "testing", None, None, "test"))
        .load()
        .await
}

async fn vault_console(endpoint: &str) -> common::Console {
    let vault = SecretsVault::new(&sdk_config(endpoint).await, Some(DEFAULT_ROLE.to_string()));
    let state = AppState::with_vault(
        Arc::new(SqliteStore::in_memory().expect("store")),
        test_settings(),
        Some(vault),
    );
    console_on(state).await
}

fn warnings(r: &common::Resp) -> Vec<String> {
    r.headers
        .get_all("warning")
        .iter()
        .map(|v| v.to_str().unwrap_or_default().to_string())
        .collect()
}

/// Every `valueFrom` of DEFENDER_TOKEN and every plain DEFENDER_TOKEN in the task.
fn token_refs(td: &Value) -> (Vec<String>, usize) {
    let mut from = Vec::new();
    let mut plain = 0;
    for c in td["containerDefinitions"].as_array().into_iter().flatten() {
        for s in c["secrets"].as_array().into_iter().flatten() {
            if s["name"] == "DEFENDER_TOKEN" {
                from.push(s["valueFrom"].as_str().unwrap_or_default().to_string());
            }
        }
        plain += c["environment"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|e| e["name"] == "DEFENDER_TOKEN")
            .count();
    }
    (from, plain)
}

async fn transform(c: &common::Console, td: &Value) -> common::Resp {
    call_raw(
        &c.app,
        Method::POST,
        URI,
        Some(&c.manager),
        td.to_string(),
        &[],
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_transform_keeps_the_credential_in_the_familys_secret() {
    let moto = MotoServer::start(&[]).expect("moto server");
    let secrets = aws_sdk_secretsmanager::Client::new(&sdk_config(&moto.endpoint()).await);
    let c = vault_console(&moto.endpoint()).await;
    let sample: Value = serde_json::from_str(&example("fargate-task.json")).expect("sample");
    assert!(sample.get("executionRoleArn").is_none());

    // First call: a new credential, scoped to the family, in a new secret; the task had no
    // execution role and gets the console's.
    let r = transform(&c, &sample).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let (from, plain) = token_refs(&r.body);
    assert_eq!(plain, 0, "no token in plain environment");
    let stored = secrets
        .get_secret_value()
        .secret_id(SECRET)
        .send()
        .await
        .expect("the secret exists");
    let arn = stored.arn().expect("arn").to_string();
    assert!(
        !from.is_empty() && from.iter().all(|f| *f == arn),
        "{from:?}"
    );
    assert_eq!(r.body["executionRoleArn"], DEFAULT_ROLE);
    let w = warnings(&r);
    assert!(
        w.iter()
            .any(|w| w.contains(&format!("stored it in secret {SECRET}"))),
        "{w:?}"
    );
    let token = stored.secret_string().expect("token").to_string();
    let policy =
        |task: &str| format!("/api/v1/defender/policy?task={task}&container=app&image=i:1");
    let ok = call(&c.app, Method::GET, &policy(FAMILY), Some(&token), None).await;
    assert_eq!(
        ok.status,
        StatusCode::OK,
        "the console accepts it: {}",
        ok.text
    );
    let other = call(&c.app, Method::GET, &policy("payments"), Some(&token), None).await;
    assert_eq!(
        other.status,
        StatusCode::FORBIDDEN,
        "scoped to the family: {}",
        other.text
    );
    let described = secrets
        .describe_secret()
        .secret_id(SECRET)
        .send()
        .await
        .expect("describe");
    let tags: Vec<(String, String)> = described
        .tags()
        .iter()
        .map(|t| {
            (
                t.key().unwrap_or_default().into(),
                t.value().unwrap_or_default().into(),
            )
        })
        .collect();
    assert!(
        tags.contains(&("fargate-defender:family".into(), FAMILY.into())),
        "{tags:?}"
    );

    // Second call: the same secret and credential.
    let again = transform(&c, &sample).await;
    assert_eq!(again.status, StatusCode::OK, "{}", again.text);
    assert_eq!(token_refs(&again.body).0, from);
    assert!(warnings(&again)
        .iter()
        .any(|w| w.contains("reusing secret")));
    let same = secrets
        .get_secret_value()
        .secret_id(SECRET)
        .send()
        .await
        .expect("secret");
    assert_eq!(same.secret_string(), Some(token.as_str()));

    // The credential revoked: the next transform puts a fresh one in the same secret.
    let list = call(
        &c.app,
        Method::GET,
        "/api/v1/defenders/credentials",
        Some(&c.manager),
        None,
    )
    .await;
    assert_eq!(list.status, StatusCode::OK, "{}", list.text);
    let id = list.body["credentials"]
        .as_array()
        .expect("credentials")
        .iter()
        .find(|cred| cred["name"] == format!("transform: {FAMILY}"))
        .and_then(|cred| cred["id"].as_str())
        .unwrap_or_else(|| panic!("the transform's credential is listed: {}", list.text))
        .to_string();
    let revoked = call(
        &c.app,
        Method::DELETE,
        &format!("/api/v1/defenders/credentials/{id}"),
        Some(&c.manager),
        None,
    )
    .await;
    assert_eq!(revoked.status, StatusCode::NO_CONTENT, "{}", revoked.text);
    let renewed = transform(&c, &sample).await;
    assert_eq!(renewed.status, StatusCode::OK, "{}", renewed.text);
    assert_eq!(token_refs(&renewed.body).0, from, "same secret");
    assert!(warnings(&renewed)
        .iter()
        .any(|w| w.contains("no longer accepted")));
    let fresh = secrets
        .get_secret_value()
        .secret_id(SECRET)
        .send()
        .await
        .expect("secret");
    let fresh = fresh.secret_string().expect("token");
    assert_ne!(fresh, token);
    let ok = call(&c.app, Method::GET, &policy(FAMILY), Some(fresh), None).await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.text);
    let retagged = secrets
        .describe_secret()
        .secret_id(SECRET)
        .send()
        .await
        .expect("describe");
    let credential_tag = retagged
        .tags()
        .iter()
        .find(|t| t.key() == Some("fargate-defender:credential-id"))
        .and_then(|t| t.value())
        .unwrap_or_default()
        .to_string();
    assert!(
        !credential_tag.is_empty() && credential_tag != id,
        "{credential_tag} vs {id}"
    );

    // A task with its own execution role keeps it, and the secret's policy lets it read.
    let mut own = sample.clone();
    own["executionRoleArn"] = json!("arn:aws:iam::123456789012:role/team-exec");
    let r = transform(&c, &own).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(
        r.body["executionRoleArn"],
        "arn:aws:iam::123456789012:role/team-exec"
    );
    let rp = secrets
        .get_resource_policy()
        .secret_id(SECRET)
        .send()
        .await
        .expect("policy");
    let rp: Value = serde_json::from_str(rp.resource_policy().expect("a policy")).expect("json");
    assert_eq!(
        rp["Statement"][0]["Principal"]["AWS"],
        "arn:aws:iam::123456789012:role/team-exec"
    );
    assert_eq!(
        rp["Statement"][0]["Action"],
        "secretsmanager:GetSecretValue"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_console_role_without_secrets_access_gets_502_naming_the_call() {
    use wiremock::matchers::{header, method};
    use wiremock::{Mock, MockServer, ResponseTemplate};
    let aws = MockServer::start().await;
    let answer = |code: &str, message: &str| {
        ResponseTemplate::new(400)
            .insert_header("content-type", "application/x-amz-json-1.1")
            .set_body_string(json!({"__type": code, "message": message}).to_string())
    };
    Mock::given(method("POST"))
        .and(header("x-amz-target", "secretsmanager.GetSecretValue"))
        .respond_with(answer("ResourceNotFoundException", "no such secret"))
        .mount(&aws)
        .await;
    Mock::given(method("POST"))
        .and(header("x-amz-target", "secretsmanager.CreateSecret"))
        .respond_with(answer(
            "AccessDeniedException",
            "User: arn:aws:sts::1:assumed-role/console is not authorized to perform: \
             secretsmanager:CreateSecret",
        ))
        .expect(1)
        .mount(&aws)
        .await;
    let c = vault_console(&aws.uri()).await;
    let sample: Value = serde_json::from_str(&example("fargate-task.json")).expect("sample");
    let r = transform(&c, &sample).await;
    assert_eq!(r.status, StatusCode::BAD_GATEWAY, "{}", r.text);
    let error = r.body["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("secretsmanager:CreateSecret") && error.contains("infra/template.yaml"),
        "{error}"
    );
    assert!(
        !error.contains("cdt_"),
        "no credential in the error: {error}"
    );
}
