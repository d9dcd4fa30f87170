//! Helpers shared by the transform tests: fixtures and the wrapper constants.

#![allow(dead_code, clippy::unwrap_used)]

use protect::embed::{embed, EmbedOptions, EmbedOutput};
use serde_json::{json, Value};
use std::path::PathBuf;

pub const CONSOLE: &str = "https://console.example.com";
pub const IMAGE: &str = "123456789012.dkr.ecr.us-east-1.amazonaws.com/fargate-defender:1.4.0";
pub const SECRET_ARN: &str =
    "arn:aws:secretsmanager:us-east-1:123456789012:secret:defender/token-Ab12Cd";
pub const PREFIX: [&str; 3] = ["/var/lib/defender/defender", "run", "--"];

/// Every fixture under `tests/fixtures/`.
pub const FIXTURES: [&str; 5] = [
    "seed-sample.json",
    "web-firelens.json",
    "describe-worker.json",
    "shop-ec2-bridge.json",
    "api-fluentbit.json",
];

pub fn fixture(name: &str) -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    let text = std::fs::read_to_string(&path).unwrap();
    serde_json::from_str(&text).unwrap()
}

pub fn options() -> EmbedOptions {
    EmbedOptions::new(CONSOLE, IMAGE)
}

/// The options each fixture needs to embed cleanly (exclusions, confirmations, CNAF).
pub fn fixture_options(name: &str) -> EmbedOptions {
    let mut o = options();
    match name {
        "web-firelens.json" => {
            o.token_secret_arn = Some(SECRET_ARN.into());
            o.exclude_containers = vec!["datadog-agent".into()];
            o.cnaf = Some(protect::embed::CnafOptions {
                external_port: 8080,
                app_port: 8000,
                container: None,
            });
        }
        "api-fluentbit.json" => {
            o.token_secret_arn = Some(SECRET_ARN.into());
            o.cnaf = Some(protect::embed::CnafOptions {
                external_port: 8080,
                app_port: 9000,
                container: None,
            });
        }
        "describe-worker.json" => {
            o.plain_token = Some("dfnd_9f8e7d6c5b4a".into());
            o.allow_plain_token = true;
        }
        "shop-ec2-bridge.json" => {
            o.no_image_entrypoint = vec!["api".into()];
            o.exclude_containers = vec!["cloudwatch-agent".into()];
            o.cnaf = Some(protect::embed::CnafOptions {
                external_port: 8080,
                app_port: 80,
                container: Some("nginx".into()),
            });
        }
        _ => {}
    }
    o
}

pub fn embed_fixture(name: &str) -> EmbedOutput {
    embed(&fixture(name), &fixture_options(name)).unwrap()
}

/// The container named `name` in a task definition.
pub fn container<'a>(td: &'a Value, name: &str) -> &'a Value {
    td["containerDefinitions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no container {name}"))
}

/// `[{name, value}]` as pairs.
pub fn env(c: &Value) -> Vec<(String, String)> {
    c["environment"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .map(|e| {
                    (
                        e["name"].as_str().unwrap().to_string(),
                        e["value"].as_str().unwrap().to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Owned `(name, value)` pairs, to compare with [`env`].
pub fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// The installer container the transform adds (no logConfiguration, task-level memory).
pub fn installer(image: &str) -> Value {
    json!({
        "name": "defender",
        "image": image,
        "essential": false,
        "entryPoint": ["/defender", "install", "/var/lib/defender"],
        "mountPoints": [
            {"sourceVolume": "defender", "containerPath": "/var/lib/defender", "readOnly": false}
        ]
    })
}

/// The read-only mount every wrapped container gets.
pub fn defender_mount() -> Value {
    json!({"sourceVolume": "defender", "containerPath": "/var/lib/defender", "readOnly": true})
}

/// The `dependsOn` entry every wrapped container gets.
pub fn defender_dep() -> Value {
    json!({"containerName": "defender", "condition": "SUCCESS"})
}
