//! Properties of the transform on generated task definitions: embedding twice equals embedding
//! once, and no original field is lost.

#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use proptest::prelude::*;
use protect::embed::{embed, EmbedOptions, READ_ONLY_FIELDS};
use serde_json::{json, Map, Value};

/// A scalar or small nested value for fields the transform does not know.
fn any_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        any::<bool>().prop_map(Value::from),
        any::<i32>().prop_map(Value::from),
        "[ -~]{0,12}".prop_map(Value::from),
    ];
    leaf.prop_recursive(2, 8, 3, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..3).prop_map(Value::from),
            prop::collection::btree_map("[a-z]{1,6}", inner, 0..3)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Extra container fields ECS has and the transform leaves alone.
fn extra_container_fields() -> impl Strategy<Value = Map<String, Value>> {
    let keys = prop::sample::subsequence(
        vec![
            "cpu",
            "memoryReservation",
            "essential",
            "user",
            "workingDirectory",
            "healthCheck",
            "logConfiguration",
            "dockerLabels",
            "ulimits",
            "readonlyRootFilesystem",
            "stopTimeout",
            "hostname",
            "xUnknownFutureField",
        ],
        0..5,
    );
    (keys, prop::collection::vec(any_value(), 5)).prop_map(|(keys, values)| {
        keys.into_iter()
            .zip(values.into_iter().cycle())
            .map(|(k, v)| (k.to_string(), v))
            .collect()
    })
}

fn words() -> impl Strategy<Value = Vec<String>> {
    prop::collection::vec("[a-z/._-]{1,8}", 1..4)
}

#[derive(Debug, Clone)]
struct Generated {
    doc: Value,
    options: EmbedOptions,
}

fn container(
    name: String,
    others: Vec<String>,
) -> impl Strategy<Value = (Map<String, Value>, bool)> {
    (
        prop::option::of(words()),
        prop::option::of(words()),
        any::<bool>(),
        prop::collection::vec(("[A-Z_]{1,8}", "[ -~]{0,8}"), 0..3),
        prop::option::of(prop::sample::subsequence(
            vec!["SYS_PTRACE", "NET_ADMIN", "CHOWN"],
            0..3,
        )),
        prop::collection::vec((1u16..60000, prop::bool::ANY), 0..3),
        prop::collection::vec(("[a-z]{1,5}", "/[a-z]{1,6}"), 0..2),
        any::<bool>(),
        extra_container_fields(),
    )
        .prop_map(
            move |(entry, command, null_command, env, caps, ports, mounts, dep, extra)| {
                let mut c = Map::new();
                c.insert("name".into(), json!(name));
                c.insert("image".into(), json!(format!("repo/{name}:1")));
                // Every container can run: an entryPoint, or a command (confirmed below).
                let entry = entry.or(if command.is_none() {
                    Some(vec!["/start".to_string()])
                } else {
                    None
                });
                let confirm = entry.is_none();
                if let Some(e) = entry {
                    c.insert("entryPoint".into(), json!(e));
                }
                match command {
                    Some(cmd) => {
                        c.insert("command".into(), json!(cmd));
                    }
                    None if null_command => {
                        c.insert("command".into(), Value::Null);
                    }
                    None => {}
                }
                if !env.is_empty() {
                    let env: Vec<Value> = env
                        .into_iter()
                        .map(|(n, v)| json!({"name": format!("APP_{n}"), "value": v}))
                        .collect();
                    c.insert("environment".into(), Value::Array(env));
                }
                if let Some(add) = caps {
                    c.insert(
                        "linuxParameters".into(),
                        json!({"initProcessEnabled": true, "capabilities": {"add": add}}),
                    );
                }
                if !ports.is_empty() {
                    let ports: Vec<Value> = ports
                        .into_iter()
                        .map(|(p, udp)| {
                            json!({"containerPort": p, "protocol": if udp {"udp"} else {"tcp"}})
                        })
                        .collect();
                    c.insert("portMappings".into(), Value::Array(ports));
                }
                if !mounts.is_empty() {
                    let mounts: Vec<Value> = mounts
                        .into_iter()
                        .map(|(v, p)| json!({"sourceVolume": v, "containerPath": p}))
                        .collect();
                    c.insert("mountPoints".into(), Value::Array(mounts));
                }
                if dep {
                    if let Some(other) = others.first() {
                        c.insert(
                            "dependsOn".into(),
                            json!([{"containerName": other, "condition": "START"}]),
                        );
                    }
                }
                for (k, v) in extra {
                    c.insert(k, v);
                }
                (c, confirm)
            },
        )
}

fn generated() -> impl Strategy<Value = Generated> {
    prop::collection::btree_set("[a-z][a-z0-9-]{0,6}", 1..4)
        .prop_filter("defender is reserved", |names| !names.contains("defender"))
        .prop_flat_map(|names| {
            let names: Vec<String> = names.into_iter().collect();
            let containers: Vec<_> = names
                .iter()
                .map(|n| {
                    let others = names.iter().filter(|o| *o != n).cloned().collect();
                    container(n.clone(), others)
                })
                .collect();
            (
                containers,
                any::<bool>(),
                any::<bool>(),
                prop::option::of(any::<bool>()),
                prop::option::of(any_value()),
            )
        })
        .prop_map(|(containers, describe, token, firelens, extra)| {
            let mut confirm = Vec::new();
            let mut defs = Vec::new();
            for (c, needs_confirm) in containers {
                if needs_confirm {
                    confirm.push(c["name"].as_str().unwrap_or_default().to_string());
                }
                defs.push(Value::Object(c));
            }
            // A log router, with its entrypoint known (wrapped) or not (left as it is).
            if let Some(entry_point) = firelens {
                let mut router = json!({"name": "log_router", "image": "fluent-bit",
                    "firelensConfiguration": {"type": "fluentbit"}, "essential": true});
                if entry_point {
                    router["entryPoint"] = json!(["/fluent-bit/bin/fluent-bit"]);
                }
                defs.push(router);
            }
            let mut td = json!({
                "family": "generated",
                "networkMode": "awsvpc",
                "requiresCompatibilities": ["FARGATE"],
                "cpu": "256",
                "memory": "512",
                "containerDefinitions": defs,
                "volumes": [{"name": "data"}],
                "taskRoleArn": null,
            });
            if let Some(extra) = extra {
                td["xExtraTaskField"] = extra;
            }
            let doc = if describe {
                let mut inner = td;
                inner["revision"] = json!(3);
                inner["status"] = json!("ACTIVE");
                inner["compatibilities"] = json!(["EC2", "FARGATE"]);
                inner["requiresAttributes"] = json!([{"name": "ecs.capability.task-eni"}]);
                json!({"taskDefinition": inner, "tags": [{"key": "k", "value": "v"}]})
            } else {
                td
            };
            let mut options = options();
            options.no_image_entrypoint = confirm;
            if token {
                options.token_secret_arn = Some(SECRET_ARN.into());
            }
            Generated { doc, options }
        })
}

/// `out` has everything `orig` has: object members recursively (nulls count as absent), array
/// elements each covered by some element of `out`, scalars equal.
fn covers(out: &Value, orig: &Value) -> bool {
    match (out, orig) {
        (_, Value::Null) => true,
        (Value::Object(o), Value::Object(g)) => g
            .iter()
            .all(|(k, v)| v.is_null() || o.get(k).is_some_and(|ov| covers(ov, v))),
        (Value::Array(o), Value::Array(g)) => g.iter().all(|gv| o.iter().any(|ov| covers(ov, gv))),
        (o, g) => o == g,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn embedding_twice_equals_embedding_once(g in generated()) {
        let once = embed(&g.doc, &g.options).unwrap();
        let twice = embed(&once.task_definition, &g.options).unwrap();
        prop_assert_eq!(&twice.task_definition, &once.task_definition);
    }

    #[test]
    fn no_original_field_is_lost(g in generated()) {
        let out = embed(&g.doc, &g.options).unwrap().task_definition;
        let mut orig = g.doc.get("taskDefinition").cloned().unwrap_or_else(|| g.doc.clone());
        if let Some(tags) = g.doc.get("tags") {
            orig["tags"] = tags.clone();
        }
        for field in READ_ONLY_FIELDS {
            orig.as_object_mut().unwrap().remove(field);
        }
        prop_assert!(covers(&out, &orig), "lost a field:\n{out:#}\nfrom\n{orig:#}");
        for field in READ_ONLY_FIELDS {
            prop_assert!(out.get(field).is_none());
        }
        // Wrapped entryPoints keep the original entryPoint after the wrapper, commands stay.
        for c in orig["containerDefinitions"].as_array().unwrap() {
            let name = c["name"].as_str().unwrap();
            let o = out["containerDefinitions"]
                .as_array()
                .unwrap()
                .iter()
                .find(|x| x["name"] == name)
                .unwrap();
            prop_assert_eq!(o.get("command"), c.get("command").filter(|v| !v.is_null()));
            if c.get("firelensConfiguration").is_some() && c.get("entryPoint").is_none() {
                prop_assert_eq!(o, c);
                continue;
            }
            let entry = o["entryPoint"].as_array().unwrap();
            let prefix: Vec<Value> = PREFIX.iter().map(|p| json!(p)).collect();
            prop_assert_eq!(&entry[..3], &prefix[..]);
            let original: &[Value] = c.get("entryPoint").and_then(Value::as_array).map_or(&[], |v| v);
            prop_assert_eq!(&entry[3..], original);
        }
    }
}
