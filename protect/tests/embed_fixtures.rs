//! The transform on real task definitions, asserted field by field.

#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use protect::embed::embed;
use serde_json::{json, Value};

#[test]
fn seed_sample_whole_document() {
    let out = embed_fixture("seed-sample.json");
    assert_eq!(out.warnings, Vec::<String>::new());
    let expected = json!({
        "requiresCompatibilities": ["FARGATE"],
        "containerDefinitions": [
            installer(IMAGE),
            {
                "entryPoint": ["/var/lib/defender/defender", "run", "--", "entry.sh"],
                "portMappings": [],
                "image": "matthewabq/twistlock-fargate-auto",
                "name": "twistlock-fargate-task",
                "mountPoints": [defender_mount()],
                "dependsOn": [defender_dep()],
                "linuxParameters": {"capabilities": {"add": ["SYS_PTRACE"]}},
                "environment": [
                    {"name": "DEFENDER_CONSOLE_URL", "value": CONSOLE},
                    {"name": "DEFENDER_TASK_FAMILY", "value": "twistlock-fargate-task"},
                    {"name": "DEFENDER_CONTAINER_NAME", "value": "twistlock-fargate-task"},
                    {"name": "DEFENDER_IMAGE", "value": "matthewabq/twistlock-fargate-auto"},
                    {"name": "DEFENDER_CNAF", "value": "console"}
                ]
            }
        ],
        "family": "twistlock-fargate-task",
        "volumes": [{"name": "defender"}],
        "networkMode": "awsvpc",
        "memory": "512",
        "cpu": "256"
    });
    assert_eq!(out.task_definition, expected);
    // The `"command": null` of the seed is gone: the AWS CLI rejects nulls.
    assert!(container(&out.task_definition, "twistlock-fargate-task")
        .get("command")
        .is_none());
    // Key order of the original is kept (preserve_order), new keys come after.
    let keys: Vec<&String> = out.task_definition.as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        [
            "requiresCompatibilities",
            "containerDefinitions",
            "family",
            "volumes",
            "networkMode",
            "memory",
            "cpu"
        ]
    );
}

#[test]
fn web_firelens_fields() {
    let original = fixture("web-firelens.json");
    let out = embed_fixture("web-firelens.json");
    let td = &out.task_definition;
    assert_eq!(
        out.warnings,
        [
            "containerDefinitions[0]: container \"log_router\" is a FireLens log router whose \
             entrypoint is not in the task definition, so it is left unwrapped; to protect it, \
             copy its image's ENTRYPOINT into \"entryPoint\" (and its CMD into \"command\"); to \
             silence this warning, --exclude-container log_router",
            "containerDefinitions[1].portMappings: container \"web\" still maps the app port \
             8000; traffic sent to it bypasses CNAF, so open only port 8080 in the security group"
        ]
    );
    // Task-level fields other than containers and volumes are untouched.
    for (key, value) in original.as_object().unwrap() {
        if key != "containerDefinitions" && key != "volumes" {
            assert_eq!(&td[key], value, "{key}");
        }
    }
    assert_eq!(
        td["volumes"],
        json!([{"name": "tmp"}, {"name": "defender"}])
    );
    let names: Vec<&str> = td["containerDefinitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["defender", "log_router", "web", "datadog-agent"]);
    assert_eq!(container(td, "defender"), &installer(IMAGE));
    // The log router and the excluded agent are byte-for-byte the originals.
    assert_eq!(
        container(td, "log_router"),
        &original["containerDefinitions"][0]
    );
    assert_eq!(
        container(td, "datadog-agent"),
        &original["containerDefinitions"][2]
    );

    let web = container(td, "web");
    let orig = &original["containerDefinitions"][1];
    assert_eq!(
        web["entryPoint"],
        json!([
            "/var/lib/defender/defender",
            "run",
            "--",
            "/usr/local/bin/docker-entrypoint.sh"
        ])
    );
    assert_eq!(web["command"], orig["command"]);
    assert_eq!(
        web["portMappings"],
        json!([orig["portMappings"][0], {"containerPort": 8080, "protocol": "tcp"}])
    );
    assert_eq!(
        env(web),
        pairs(&[
            ("DJANGO_SETTINGS_MODULE", "checkout.settings.production"),
            ("AWS_REGION", "eu-west-1"),
            ("DEFENDER_CONSOLE_URL", CONSOLE),
            ("DEFENDER_TASK_FAMILY", "checkout-web"),
            ("DEFENDER_CONTAINER_NAME", "web"),
            ("DEFENDER_IMAGE", orig["image"].as_str().unwrap()),
            ("DEFENDER_CNAF", "console"),
            ("DEFENDER_CNAF_LISTEN", "0.0.0.0:8080"),
            ("DEFENDER_CNAF_UPSTREAM", "127.0.0.1:8000"),
        ])
    );
    assert_eq!(
        web["secrets"],
        json!([
            orig["secrets"][0],
            orig["secrets"][1],
            {"name": "DEFENDER_TOKEN", "valueFrom": SECRET_ARN}
        ])
    );
    assert_eq!(
        web["dependsOn"],
        json!([{"containerName": "log_router", "condition": "START"}, defender_dep()])
    );
    assert_eq!(
        web["linuxParameters"],
        json!({"initProcessEnabled": true, "capabilities": {"drop": ["NET_RAW"], "add": ["SYS_PTRACE"]}})
    );
    assert_eq!(
        web["mountPoints"],
        json!([orig["mountPoints"][0], defender_mount()])
    );
    for key in [
        "image",
        "essential",
        "healthCheck",
        "readonlyRootFilesystem",
        "ulimits",
        "logConfiguration",
        "dockerLabels",
    ] {
        assert_eq!(web[key], orig[key], "{key}");
    }
}

#[test]
fn describe_output_becomes_register_input() {
    let original = fixture("describe-worker.json");
    let inner = &original["taskDefinition"];
    let out = embed_fixture("describe-worker.json");
    let td = &out.task_definition;
    assert_eq!(
        out.warnings,
        [
            "DEFENDER_TOKEN is stored in plain text in the task definition's environment; anyone \
          who can describe the task definition can read it (use --token-secret-arn)"
        ]
    );
    let obj = td.as_object().unwrap();
    assert!(obj.get("taskDefinition").is_none());
    for field in protect::embed::READ_ONLY_FIELDS {
        assert!(obj.get(field).is_none(), "{field} kept");
    }
    assert_eq!(td["tags"], original["tags"]);
    for key in [
        "family",
        "taskRoleArn",
        "executionRoleArn",
        "networkMode",
        "placementConstraints",
        "requiresCompatibilities",
        "cpu",
        "memory",
        "enableFaultInjection",
    ] {
        assert_eq!(td[key], inner[key], "{key}");
    }
    assert_eq!(td["volumes"][0], inner["volumes"][0]);
    assert_eq!(td["volumes"][1], json!({"name": "defender"}));

    let worker = container(td, "worker");
    let orig = &inner["containerDefinitions"][0];
    // The installer logs to CloudWatch like the first app container.
    let mut expected_installer = installer(IMAGE);
    expected_installer["logConfiguration"] = orig["logConfiguration"].clone();
    assert_eq!(container(td, "defender"), &expected_installer);
    assert_eq!(
        worker["entryPoint"],
        json!(["/var/lib/defender/defender", "run", "--", "python", "-m"])
    );
    assert_eq!(worker["command"], orig["command"]);
    // The stale DEFENDER_CONSOLE_URL is replaced, not duplicated.
    assert_eq!(
        env(worker),
        pairs(&[
            (
                "QUEUE_URL",
                "https://sqs.us-east-1.amazonaws.com/444455556666/invoices-prod"
            ),
            ("DEFENDER_CONSOLE_URL", CONSOLE),
            ("DEFENDER_TASK_FAMILY", "invoice-worker"),
            ("DEFENDER_CONTAINER_NAME", "worker"),
            (
                "DEFENDER_IMAGE",
                "444455556666.dkr.ecr.us-east-1.amazonaws.com/invoice-worker:2024.11.3"
            ),
            ("DEFENDER_TOKEN", "dfnd_9f8e7d6c5b4a"),
        ])
    );
    assert_eq!(worker["secrets"], orig["secrets"]);
    // SYS_PTRACE was already there: not added twice.
    assert_eq!(
        worker["linuxParameters"],
        json!({"capabilities": {"add": ["SYS_PTRACE"], "drop": []}, "initProcessEnabled": true})
    );
    assert_eq!(
        worker["dependsOn"],
        json!([{"containerName": "xray-daemon", "condition": "START"}, defender_dep()])
    );
    assert_eq!(
        worker["mountPoints"],
        json!([orig["mountPoints"][0], defender_mount()])
    );
    for key in [
        "cpu",
        "portMappings",
        "essential",
        "environmentFiles",
        "volumesFrom",
        "user",
        "workingDirectory",
        "stopTimeout",
        "logConfiguration",
        "systemControls",
    ] {
        assert_eq!(worker[key], orig[key], "{key}");
    }

    // The X-Ray sidecar has an entryPoint: it is wrapped too.
    let xray = container(td, "xray-daemon");
    assert_eq!(
        xray["entryPoint"],
        json!(["/var/lib/defender/defender", "run", "--", "/xray"])
    );
    assert_eq!(xray["command"], json!(["-o", "-b", "0.0.0.0:2000"]));
    assert_eq!(xray["dependsOn"], json!([defender_dep()]));
    assert_eq!(xray["mountPoints"], json!([defender_mount()]));
    assert_eq!(
        xray["portMappings"],
        inner["containerDefinitions"][1]["portMappings"]
    );
}

#[test]
fn shop_ec2_bridge_fields() {
    let original = fixture("shop-ec2-bridge.json");
    let out = embed_fixture("shop-ec2-bridge.json");
    let td = &out.task_definition;
    assert_eq!(
        out.warnings,
        ["containerDefinitions[0].portMappings: container \"nginx\" still maps the app port 80; \
          traffic sent to it bypasses CNAF, so open only port 8080 in the security group"]
    );
    // No task-level memory (EC2): the installer gets its own limit.
    let mut expected_installer = installer(IMAGE);
    expected_installer["memory"] = json!(64);
    assert_eq!(container(td, "defender"), &expected_installer);
    assert_eq!(td["volumes"], json!([{"name": "defender"}]));
    for key in [
        "family",
        "networkMode",
        "requiresCompatibilities",
        "placementConstraints",
        "pidMode",
        "ipcMode",
    ] {
        assert_eq!(td[key], original[key], "{key}");
    }

    let nginx = container(td, "nginx");
    let orig = &original["containerDefinitions"][0];
    assert_eq!(
        nginx["entryPoint"],
        json!([
            "/var/lib/defender/defender",
            "run",
            "--",
            "/docker-entrypoint.sh"
        ])
    );
    assert_eq!(nginx["command"], json!(["nginx", "-g", "daemon off;"]));
    assert_eq!(
        nginx["portMappings"],
        json!([orig["portMappings"][0], {"containerPort": 8080, "protocol": "tcp"}])
    );
    assert_eq!(
        nginx["dependsOn"],
        json!([{"containerName": "api", "condition": "HEALTHY"}, defender_dep()])
    );
    assert_eq!(
        nginx["linuxParameters"],
        json!({
            "initProcessEnabled": true,
            "tmpfs": [{"containerPath": "/var/cache/nginx", "size": 64}],
            "capabilities": {"add": ["SYS_PTRACE"]}
        })
    );
    assert_eq!(
        &env(nginx)[4..],
        pairs(&[
            ("DEFENDER_CNAF", "console"),
            ("DEFENDER_CNAF_LISTEN", "0.0.0.0:8080"),
            ("DEFENDER_CNAF_UPSTREAM", "127.0.0.1:80"),
        ])
    );
    for key in ["memory", "essential", "links", "logConfiguration", "image"] {
        assert_eq!(nginx[key], orig[key], "{key}");
    }

    // `api` has a command and no entryPoint; --no-image-entrypoint api confirms the image has
    // no ENTRYPOINT, so the wrapper alone becomes the entryPoint and runs the command.
    let api = container(td, "api");
    let orig = &original["containerDefinitions"][1];
    assert_eq!(api["entryPoint"], json!(PREFIX));
    assert_eq!(api["command"], json!(["node", "dist/server.js"]));
    assert_eq!(
        env(api),
        pairs(&[
            ("NODE_ENV", "production"),
            ("PORT", "3000"),
            ("DEFENDER_CONSOLE_URL", CONSOLE),
            ("DEFENDER_TASK_FAMILY", "shop-frontend"),
            ("DEFENDER_CONTAINER_NAME", "api"),
            ("DEFENDER_IMAGE", "registry.example.com/shop/api:7.3.1"),
        ])
    );
    assert!(api.get("portMappings").is_none());
    for key in [
        "memory",
        "memoryReservation",
        "workingDirectory",
        "user",
        "healthCheck",
        "repositoryCredentials",
        "ulimits",
        "dockerLabels",
    ] {
        assert_eq!(api[key], orig[key], "{key}");
    }
    assert_eq!(
        container(td, "cloudwatch-agent"),
        &original["containerDefinitions"][2]
    );
}

#[test]
fn every_fixture_embeds_idempotently() {
    for name in FIXTURES {
        let once = embed_fixture(name);
        let twice = embed(&once.task_definition, &fixture_options(name)).unwrap();
        assert_eq!(twice.task_definition, once.task_definition, "{name}");
    }
}

#[test]
fn re_embedding_updates_image_and_environment() {
    let once = embed_fixture("web-firelens.json");
    let mut newer = fixture_options("web-firelens.json");
    newer.defender_image = "registry.example.com/defender:2.0.0".into();
    newer.console_url = "https://console-2.example.com".into();
    let twice = embed(&once.task_definition, &newer).unwrap();
    let td = &twice.task_definition;
    assert_eq!(
        container(td, "defender"),
        &installer("registry.example.com/defender:2.0.0")
    );
    let web = container(td, "web");
    assert_eq!(
        web["entryPoint"].as_array().unwrap().len(),
        4,
        "wrapped twice"
    );
    let console: Vec<_> = env(web)
        .into_iter()
        .filter(|(k, _)| k == "DEFENDER_CONSOLE_URL")
        .collect();
    assert_eq!(
        console,
        pairs(&[("DEFENDER_CONSOLE_URL", "https://console-2.example.com")])
    );
    assert_eq!(web["dependsOn"].as_array().unwrap().len(), 2);
    assert_eq!(web["mountPoints"].as_array().unwrap().len(), 2);
    assert_eq!(web["portMappings"].as_array().unwrap().len(), 2);
    assert_eq!(web["secrets"].as_array().unwrap().len(), 3);
    assert_eq!(td["volumes"].as_array().unwrap().len(), 2);
}

#[test]
fn re_embedding_without_token_or_cnaf_keeps_them() {
    let once = embed_fixture("web-firelens.json");
    let mut plain = options();
    plain.exclude_containers = vec!["datadog-agent".into()];
    let twice = embed(&once.task_definition, &plain).unwrap();
    let web = container(&twice.task_definition, "web");
    assert_eq!(
        web["secrets"][2],
        json!({"name": "DEFENDER_TOKEN", "valueFrom": SECRET_ARN})
    );
    let names: Vec<String> = env(web).into_iter().map(|(k, _)| k).collect();
    assert!(names.contains(&"DEFENDER_CNAF_LISTEN".to_string()));
    assert_eq!(names.len(), 9);
}

#[test]
fn switching_token_kind_moves_it() {
    let once = embed_fixture("web-firelens.json");
    let mut plain = fixture_options("web-firelens.json");
    plain.token_secret_arn = None;
    plain.plain_token = Some("t0k".into());
    plain.allow_plain_token = true;
    let td = embed(&once.task_definition, &plain)
        .unwrap()
        .task_definition;
    let web = container(&td, "web");
    assert_eq!(web["secrets"].as_array().unwrap().len(), 2);
    assert!(env(web).contains(&("DEFENDER_TOKEN".into(), "t0k".into())));
    let back = embed(&td, &fixture_options("web-firelens.json")).unwrap();
    let web = container(&back.task_definition, "web");
    assert!(!env(web).iter().any(|(k, _)| k == "DEFENDER_TOKEN"));
    assert_eq!(web["secrets"][2]["valueFrom"], SECRET_ARN);
}

#[test]
fn describe_shape_with_null_tags_and_register_shape_with_tags() {
    let inner = fixture("seed-sample.json");
    let wrapped = json!({"taskDefinition": inner, "tags": null});
    let a = embed(&wrapped, &options()).unwrap();
    let b = embed(&inner, &options()).unwrap();
    assert_eq!(a, b);
    let wrapped = json!({"taskDefinition": inner, "tags": []});
    assert_eq!(embed(&wrapped, &options()).unwrap(), b);
}

#[test]
fn secret_token_without_execution_role_warns() {
    let mut o = options();
    o.token_secret_arn = Some(SECRET_ARN.into());
    let out = embed(&fixture("seed-sample.json"), &o).unwrap();
    assert_eq!(
        out.warnings,
        [
            "executionRoleArn: not set; ECS needs a task execution role allowed to read the token \
          secret (secretsmanager:GetSecretValue or ssm:GetParameters) to start the task"
        ]
    );
    let app = container(&out.task_definition, "twistlock-fargate-task");
    assert_eq!(
        app["secrets"],
        json!([{"name": "DEFENDER_TOKEN", "valueFrom": SECRET_ARN}])
    );
}

#[test]
fn defender_entry_for_existing_depends_on_gets_success() {
    let doc = json!({
        "family": "f",
        "containerDefinitions": [{
            "name": "app", "image": "a", "entryPoint": ["/app"],
            "dependsOn": [{"containerName": "defender", "condition": "START"}],
            "linuxParameters": {"capabilities": {"add": ["CAP_SYS_PTRACE"]}},
            "mountPoints": [{"sourceVolume": "defender", "containerPath": "/var/lib/defender/"}]
        }],
        "volumes": [{"name": "defender", "host": {}}],
        "memory": "512"
    });
    let td = embed(&doc, &options()).unwrap().task_definition;
    let app = container(&td, "app");
    assert_eq!(app["dependsOn"], json!([defender_dep()]));
    assert_eq!(
        app["linuxParameters"]["capabilities"]["add"],
        json!(["CAP_SYS_PTRACE"])
    );
    assert_eq!(app["mountPoints"], json!([defender_mount()]));
    assert_eq!(td["volumes"], json!([{"name": "defender", "host": {}}]));
}

#[test]
fn needless_no_image_entrypoint_warns_once_per_unwrapped_container() {
    let mut o = options();
    o.no_image_entrypoint = vec!["twistlock-fargate-task".into()];
    let once = embed(&fixture("seed-sample.json"), &o).unwrap();
    assert_eq!(
        once.warnings,
        [
            "containerDefinitions[0]: container \"twistlock-fargate-task\" has an entryPoint, so \
          --no-image-entrypoint twistlock-fargate-task changes nothing"
        ]
    );
    // Once wrapped, the flag is what made it wrappable: no warning on re-embedding.
    let twice = embed(&once.task_definition, &o).unwrap();
    assert_eq!(twice.warnings, Vec::<String>::new());
}

#[test]
fn startup_mode_is_written_replaced_and_kept() {
    let mut security = options();
    security.startup = Some(protect::policy::Startup::Security);
    let once = embed(&fixture("seed-sample.json"), &security).unwrap();
    let startup = |td: &Value| -> Vec<(String, String)> {
        env(container(td, "twistlock-fargate-task"))
            .into_iter()
            .filter(|(k, _)| k == "DEFENDER_STARTUP")
            .collect()
    };
    assert_eq!(
        startup(&once.task_definition),
        pairs(&[("DEFENDER_STARTUP", "security")])
    );
    // Not named again: the earlier choice stays.
    let kept = embed(&once.task_definition, &options()).unwrap();
    assert_eq!(
        startup(&kept.task_definition),
        pairs(&[("DEFENDER_STARTUP", "security")])
    );
    let mut availability = options();
    availability.startup = Some(protect::policy::Startup::Availability);
    let changed = embed(&kept.task_definition, &availability).unwrap();
    assert_eq!(
        startup(&changed.task_definition),
        pairs(&[("DEFENDER_STARTUP", "availability")])
    );
    // Never named: no variable (the defender's default applies).
    let plain = embed(&fixture("seed-sample.json"), &options()).unwrap();
    assert_eq!(startup(&plain.task_definition), vec![]);
}

#[test]
fn console_cnaf_marker_only_on_the_proxy_container() {
    let marker = |c: &Value| {
        env(c)
            .into_iter()
            .filter(|(k, _)| k == "DEFENDER_CNAF")
            .map(|(_, v)| v)
            .collect::<Vec<_>>()
    };
    // Two app containers and no CNAF ports: neither may claim a port the console names.
    let worker = embed_fixture("describe-worker.json");
    for name in ["worker", "xray-daemon"] {
        assert_eq!(
            marker(container(&worker.task_definition, name)),
            Vec::<String>::new(),
            "{name}"
        );
    }
    // Ports and a chosen container: that one only.
    let shop = embed_fixture("shop-ec2-bridge.json");
    assert_eq!(
        marker(container(&shop.task_definition, "nginx")),
        vec!["console"]
    );
    assert_eq!(
        marker(container(&shop.task_definition, "api")),
        Vec::<String>::new()
    );
    // Embedding twice keeps one marker.
    let twice = embed(
        &shop.task_definition,
        &fixture_options("shop-ec2-bridge.json"),
    )
    .unwrap();
    assert_eq!(
        marker(container(&twice.task_definition, "nginx")),
        vec!["console"]
    );
}
