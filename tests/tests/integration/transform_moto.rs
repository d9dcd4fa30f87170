//! Acceptance of the transform's output by AWS: every fixture, embedded with the flags a user
//! would pass, is
//! 1. validated against the RegisterTaskDefinition input shape by botocore (what
//!    `aws ecs register-task-definition --cli-input-json` does before sending: unknown fields,
//!    wrong types and `null`s are refused), and
//! 2. sent byte-for-byte as a raw RegisterTaskDefinition request to moto server, then read
//!    back with DescribeTaskDefinition: everything we sent must be what ECS holds.
//!
//! Then the DescribeTaskDefinition output is embedded again (the idempotent path
//! `deploy-protected` takes on a protected family) and registered as the next revision.

use bytes::Bytes;
use clap::Parser;
use deploy_protected::args::{Cli, Command};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use integration_tests::moto::{moto_server_path, MotoServer};
use protect::embed::{embed, EmbedOptions};
use serde_json::{json, Value};
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command as Process, Stdio};

/// Each fixture under `protect/tests/fixtures/` and the flags its owner would embed it with.
const FIXTURES: [(&str, &[&str]); 5] = [
    ("seed-sample.json", &[]),
    (
        "web-firelens.json",
        &[
            "--token-secret-arn",
            "arn:aws:secretsmanager:eu-west-1:111122223333:secret:defender/token-Ab12Cd",
            "--cnaf-port",
            "8080",
            "--app-port",
            "8000",
            "--exclude-container",
            "datadog-agent",
        ],
    ),
    (
        "describe-worker.json",
        &[
            "--token-secret-arn",
            "arn:aws:ssm:us-east-1:444455556666:parameter/defender/token",
        ],
    ),
    (
        "shop-ec2-bridge.json",
        &[
            "--no-image-entrypoint",
            "api",
            "--exclude-container",
            "cloudwatch-agent",
            "--cnaf-port",
            "8080",
            "--app-port",
            "80",
            "--cnaf-container",
            "nginx",
        ],
    ),
    (
        "api-fluentbit.json",
        &[
            "--token-secret-arn",
            "arn:aws:secretsmanager:us-east-1:444455556666:secret:defender/token-Ab12Cd",
            "--cnaf-port",
            "8080",
            "--app-port",
            "9000",
        ],
    ),
];

fn fixture(name: &str) -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../protect/tests/fixtures")
        .join(name);
    serde_json::from_str(&std::fs::read_to_string(path).expect("fixture")).expect("fixture JSON")
}

/// The options `deploy-protected embed` builds from these flags.
fn options(flags: &[&str]) -> EmbedOptions {
    let mut args = vec![
        "deploy-protected",
        "embed",
        "--console-url",
        "https://console.example.com",
        "--defender-image",
        "123456789012.dkr.ecr.us-east-1.amazonaws.com/fargate-defender:1.4.0",
    ];
    args.extend_from_slice(flags);
    match Cli::try_parse_from(args).expect("flags").command {
        Some(Command::Embed(embed)) => embed.embed.resolve("any").expect("no console call").options,
        other => panic!("not embed: {other:?}"),
    }
}

/// What botocore says about `params` as a RegisterTaskDefinition input (empty when valid).
fn botocore_report(params: &Value) -> String {
    let python = moto_server_path().with_file_name("python3");
    let script = "import json, sys, botocore.session\n\
                  from botocore.validate import ParamValidator\n\
                  model = botocore.session.get_session().get_service_model('ecs')\n\
                  shape = model.operation_model('RegisterTaskDefinition').input_shape\n\
                  report = ParamValidator().validate(json.load(sys.stdin), shape)\n\
                  print(report.generate_report() if report.has_errors() else '', end='')\n";
    let mut child = Process::new(&python)
        .args(["-c", script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap_or_else(|e| panic!("{}: {e}", python.display()));
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(params.to_string().as_bytes())
        .expect("write params");
    let out = child.wait_with_output().expect("botocore");
    assert!(out.status.success(), "botocore validation did not run");
    String::from_utf8(out.stdout).expect("utf-8")
}

/// One ECS JSON 1.1 call, sent as raw JSON so moto sees exactly what we produced.
async fn ecs_call(endpoint: &str, action: &str, body: &Value) -> (u16, Value) {
    let client: Client<_, Full<Bytes>> =
        Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let request = hyper::Request::post(format!("{endpoint}/"))
        .header(
            "x-amz-target",
            format!("AmazonEC2ContainerServiceV20141113.{action}"),
        )
        .header("content-type", "application/x-amz-json-1.1")
        .header(
            "authorization",
            "AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/ecs/aws4_request, \
             SignedHeaders=content-type;host;x-amz-target, Signature=00",
        )
        .body(Full::new(Bytes::from(body.to_string())))
        .expect("request");
    let response = client.request(request).await.expect("moto reachable");
    let status = response.status().as_u16();
    let bytes = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    let value = serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| json!({"unparsed": String::from_utf8_lossy(&bytes).into_owned()}));
    (status, value)
}

/// Task-definition fields botocore accepts but moto 5.1 does not store (checked by botocore only).
const NOT_MODELED_BY_MOTO: [&str; 1] = ["taskDefinition.enableFaultInjection"];

/// Every member of `sent` is in `held` with the same value (arrays compared in order).
fn held_as_sent(held: &Value, sent: &Value, path: &str, diffs: &mut Vec<String>) {
    match (held, sent) {
        (Value::Object(h), Value::Object(s)) => {
            for (key, value) in s {
                let member = format!("{path}.{key}");
                if NOT_MODELED_BY_MOTO.contains(&member.as_str()) {
                    continue;
                }
                match h.get(key) {
                    Some(hv) => held_as_sent(hv, value, &member, diffs),
                    None => diffs.push(format!("{member}: sent {value}, not held")),
                }
            }
        }
        (Value::Array(h), Value::Array(s)) if h.len() == s.len() => {
            for (i, (hv, sv)) in h.iter().zip(s).enumerate() {
                held_as_sent(hv, sv, &format!("{path}[{i}]"), diffs);
            }
        }
        (h, s) if h == s => {}
        (h, s) => diffs.push(format!("{path}: sent {s}, held {h}")),
    }
}

fn family(td: &Value) -> String {
    td["family"].as_str().expect("family").to_string()
}

fn entry_points(td: &Value) -> Vec<Value> {
    td["containerDefinitions"]
        .as_array()
        .expect("containers")
        .iter()
        .map(|c| c["entryPoint"].clone())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_fixture_registers_and_reads_back_unchanged() {
    let moto = MotoServer::start(&[]).expect("moto server");
    let endpoint = moto.endpoint();
    for (name, flags) in FIXTURES {
        let options = options(flags);
        let protected = embed(&fixture(name), &options)
            .unwrap_or_else(|e| panic!("{name}: {e}"))
            .task_definition;

        let report = botocore_report(&protected);
        assert_eq!(report, "", "{name}: botocore refuses the output");

        let (status, registered) = ecs_call(&endpoint, "RegisterTaskDefinition", &protected).await;
        assert_eq!(status, 200, "{name}: {registered}");
        assert_eq!(registered["taskDefinition"]["revision"], 1, "{name}");

        let query = json!({"taskDefinition": family(&protected), "include": ["TAGS"]});
        let (status, described) = ecs_call(&endpoint, "DescribeTaskDefinition", &query).await;
        assert_eq!(status, 200, "{name}: {described}");
        let mut sent = protected.clone();
        let tags = sent
            .as_object_mut()
            .expect("object")
            .remove("tags")
            .unwrap_or_else(|| json!([]));
        let mut diffs = Vec::new();
        held_as_sent(
            &described["taskDefinition"],
            &sent,
            "taskDefinition",
            &mut diffs,
        );
        held_as_sent(&described["tags"], &tags, "tags", &mut diffs);
        assert_eq!(
            diffs,
            Vec::<String>::new(),
            "{name}: ECS holds something else"
        );

        // Re-embedding what DescribeTaskDefinition returns wraps nothing twice and registers.
        let again = embed(&described, &options)
            .unwrap_or_else(|e| panic!("{name} (described): {e}"))
            .task_definition;
        assert_eq!(entry_points(&again), entry_points(&protected), "{name}");
        assert_eq!(
            again["containerDefinitions"].as_array().map(Vec::len),
            protected["containerDefinitions"].as_array().map(Vec::len),
            "{name}: a second defender container"
        );
        assert_eq!(botocore_report(&again), "", "{name}: re-embedded output");
        let (status, second) = ecs_call(&endpoint, "RegisterTaskDefinition", &again).await;
        assert_eq!(status, 200, "{name}: {second}");
        assert_eq!(second["taskDefinition"]["revision"], 2, "{name}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn botocore_catches_what_the_transform_removes() {
    // The checker can fail: the seed as written (`"command": null`) is refused by botocore,
    // and so is a misspelt field; the transform's output of the same document is accepted.
    let seed = fixture("seed-sample.json");
    let report = botocore_report(&seed);
    assert!(
        report.contains("Invalid type for parameter containerDefinitions[0].command"),
        "{report}"
    );
    let mut typo = embed(&seed, &options(&[])).expect("embed").task_definition;
    typo["containerDefinitions"][0]["entrypoint"] = json!(["/x"]);
    let report = botocore_report(&typo);
    assert!(
        report.contains("Unknown parameter in containerDefinitions[0]: \"entrypoint\""),
        "{report}"
    );
}
