//! FireLens log routers: wrapped like any container when their entrypoint is known, never the
//! CNAF container, left alone (with a warning saying how to protect them) when it is not, and
//! never part of a dependency cycle with the installer.

#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use protect::embed::{embed, CnafOptions, TransformError};
use serde_json::{json, Value};

/// The `DEFENDER_CNAF` values of a container.
fn cnaf_marker(c: &Value) -> Vec<String> {
    env(c)
        .into_iter()
        .filter(|(k, _)| k == "DEFENDER_CNAF")
        .map(|(_, v)| v)
        .collect()
}

/// `web-firelens.json` with `edit` applied to its log router.
fn web_firelens_router(edit: impl FnOnce(&mut Value)) -> Value {
    let mut doc = fixture("web-firelens.json");
    edit(&mut doc["containerDefinitions"][0]);
    doc
}

#[test]
fn router_with_entry_point_is_wrapped_and_is_not_the_cnaf_container() {
    let original = fixture("api-fluentbit.json");
    // CNAF ports without --cnaf-container: the router does not count as a second app.
    let out = embed_fixture("api-fluentbit.json");
    assert_eq!(
        out.warnings,
        [
            "containerDefinitions[0].portMappings: container \"api\" still maps the app port \
             9000; traffic sent to it bypasses CNAF, so open only port 8080 in the security group"
        ]
    );
    let td = &out.task_definition;
    let names: Vec<&str> = td["containerDefinitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["defender", "api", "log-router"]);
    // The only awslogs configuration is the router's, and routers are not copied from: the
    // installer waits for nothing.
    assert_eq!(container(td, "defender"), &installer(IMAGE));

    let router = container(td, "log-router");
    let orig = &original["containerDefinitions"][1];
    let expected = json!({
        "name": "log-router",
        "image": "cr.fluentbit.io/fluent/fluent-bit:3.1.9",
        "essential": true,
        "entryPoint": [PREFIX[0], PREFIX[1], PREFIX[2], "/fluent-bit/bin/fluent-bit"],
        "command": ["-c", "/fluent-bit/etc/fluent-bit.conf"],
        "firelensConfiguration": orig["firelensConfiguration"],
        "logConfiguration": orig["logConfiguration"],
        "memoryReservation": 64,
        "user": "0",
        "mountPoints": [defender_mount()],
        "dependsOn": [defender_dep()],
        "linuxParameters": {"capabilities": {"add": ["SYS_PTRACE"]}},
        "environment": [
            {"name": "DEFENDER_CONSOLE_URL", "value": CONSOLE},
            {"name": "DEFENDER_TASK_FAMILY", "value": "orders-api"},
            {"name": "DEFENDER_CONTAINER_NAME", "value": "log-router"},
            {"name": "DEFENDER_IMAGE", "value": "cr.fluentbit.io/fluent/fluent-bit:3.1.9"}
        ],
        "secrets": [{"name": "DEFENDER_TOKEN", "valueFrom": SECRET_ARN}]
    });
    assert_eq!(router, &expected);

    let api = container(td, "api");
    assert_eq!(cnaf_marker(api), ["console"]);
    assert_eq!(
        env(api)[env(api).len() - 2..],
        pairs(&[
            ("DEFENDER_CNAF_LISTEN", "0.0.0.0:8080"),
            ("DEFENDER_CNAF_UPSTREAM", "127.0.0.1:9000")
        ])
    );
    // The app still waits for its log router, which waits for the installer.
    assert_eq!(
        api["dependsOn"],
        json!([{"containerName": "log-router", "condition": "START"}, defender_dep()])
    );

    // Without CNAF ports the app alone is marked for the console's CNAF rule.
    let out = embed(&original, &options()).unwrap();
    assert_eq!(out.warnings, Vec::<String>::new());
    assert_eq!(
        cnaf_marker(container(&out.task_definition, "api")),
        ["console"]
    );
    assert_eq!(
        cnaf_marker(container(&out.task_definition, "log-router")),
        Vec::<String>::new()
    );
}

#[test]
fn wrapped_router_re_embeds_idempotently() {
    let once = embed_fixture("api-fluentbit.json");
    let twice = embed(
        &once.task_definition,
        &fixture_options("api-fluentbit.json"),
    )
    .unwrap();
    assert_eq!(twice.task_definition, once.task_definition);
    // A newer defender refreshes the router's environment without wrapping it twice.
    let mut newer = fixture_options("api-fluentbit.json");
    newer.console_url = "https://console-2.example.com".into();
    let td = embed(&once.task_definition, &newer)
        .unwrap()
        .task_definition;
    let router = container(&td, "log-router");
    assert_eq!(router["entryPoint"].as_array().unwrap().len(), 4);
    assert_eq!(router["dependsOn"], json!([defender_dep()]));
    assert!(env(router).contains(&(
        "DEFENDER_CONSOLE_URL".into(),
        "https://console-2.example.com".into()
    )));
}

#[test]
fn router_with_confirmed_command_is_wrapped() {
    let doc = web_firelens_router(|r| r["command"] = json!(["/entrypoint.sh"]));
    let mut o = fixture_options("web-firelens.json");
    o.no_image_entrypoint = vec!["log_router".into()];
    let out = embed(&doc, &o).unwrap();
    // Only the CNAF port warning: the router is neither warned about nor a CNAF candidate.
    assert_eq!(out.warnings.len(), 1, "{:?}", out.warnings);
    let td = &out.task_definition;
    let router = container(td, "log_router");
    assert_eq!(router["entryPoint"], json!(PREFIX));
    assert_eq!(router["command"], json!(["/entrypoint.sh"]));
    assert_eq!(router["dependsOn"], json!([defender_dep()]));
    assert!(env(router).contains(&("DEFENDER_CONTAINER_NAME".into(), "log_router".into())));
    assert_eq!(cnaf_marker(router), Vec::<String>::new());
    assert_eq!(cnaf_marker(container(td, "web")), ["console"]);
    assert_eq!(container(td, "defender"), &installer(IMAGE));
    assert_eq!(embed(td, &o).unwrap().task_definition, *td);
}

#[test]
fn router_named_in_no_image_entrypoint_without_command_is_an_error() {
    let mut o = fixture_options("web-firelens.json");
    o.no_image_entrypoint = vec!["log_router".into()];
    match embed(&fixture("web-firelens.json"), &o) {
        Err(TransformError::NoEntryPointNorCommand { path, container }) => {
            assert_eq!(path, "containerDefinitions[0]");
            assert_eq!(container, "log_router");
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn excluded_router_is_untouched() {
    let doc = web_firelens_router(|r| r["entryPoint"] = json!(["/entrypoint.sh"]));
    let mut o = fixture_options("web-firelens.json");
    o.exclude_containers.push("log_router".into());
    let out = embed(&doc, &o).unwrap();
    assert_eq!(out.warnings.len(), 1, "{:?}", out.warnings);
    assert_eq!(
        container(&out.task_definition, "log_router"),
        &doc["containerDefinitions"][0]
    );
    // Excluding a router with no entrypoint silences the warning.
    let mut o = fixture_options("web-firelens.json");
    o.exclude_containers.push("log_router".into());
    let out = embed(&fixture("web-firelens.json"), &o).unwrap();
    assert!(
        out.warnings.iter().all(|w| !w.contains("log_router")),
        "{:?}",
        out.warnings
    );
}

#[test]
fn router_with_unconfirmed_command_is_left_with_a_warning() {
    let doc = web_firelens_router(|r| r["command"] = json!(["/entrypoint.sh"]));
    let out = embed(&doc, &fixture_options("web-firelens.json")).unwrap();
    assert_eq!(
        out.warnings[0],
        "containerDefinitions[0]: container \"log_router\" is a FireLens log router whose \
         entrypoint is not in the task definition, so it is left unwrapped; to protect it, copy \
         its image's ENTRYPOINT into \"entryPoint\", or, if the image has no ENTRYPOINT, confirm \
         it with --no-image-entrypoint log_router; to silence this warning, --exclude-container \
         log_router"
    );
    assert_eq!(
        container(&out.task_definition, "log_router"),
        &doc["containerDefinitions"][0]
    );
}

#[test]
fn installer_never_logs_through_firelens() {
    let doc = json!({
        "family": "f", "networkMode": "awsvpc", "requiresCompatibilities": ["FARGATE"],
        "cpu": "256", "memory": "512",
        "containerDefinitions": [
            {"name": "router", "image": "fluent-bit", "entryPoint": ["/fluent-bit"],
             "firelensConfiguration": {"type": "fluentbit"},
             "logConfiguration": {"logDriver": "awslogs", "options": {"awslogs-group": "r"}}},
            {"name": "web", "image": "w", "entryPoint": ["/web"],
             "logConfiguration": {"logDriver": "awsfirelens", "options": {"Name": "stdout"}}},
            {"name": "worker", "image": "k", "entryPoint": ["/work"],
             "logConfiguration": {"logDriver": "awslogs", "options": {"awslogs-group": "k"}}}
        ]
    });
    let mut o = options();
    o.cnaf = Some(CnafOptions {
        external_port: 8080,
        app_port: 80,
        container: Some("web".into()),
    });
    let td = embed(&doc, &o).unwrap().task_definition;
    // The first app container's awsfirelens route is skipped, the router's awslogs too: the
    // installer logs like the worker.
    assert_eq!(
        container(&td, "defender")["logConfiguration"],
        json!({"logDriver": "awslogs", "options": {"awslogs-group": "k"}})
    );
    assert_eq!(
        container(&td, "router")["dependsOn"],
        json!([defender_dep()])
    );
}

#[test]
fn router_cannot_be_the_cnaf_container() {
    let mut o = fixture_options("api-fluentbit.json");
    o.cnaf = Some(CnafOptions {
        external_port: 8080,
        app_port: 9000,
        container: Some("log-router".into()),
    });
    assert_eq!(
        embed(&fixture("api-fluentbit.json"), &o)
            .unwrap_err()
            .to_string(),
        "--cnaf-container log-router: that container is not a wrapped app container (it is \
         excluded or a FireLens log router); CNAF runs inside the defender wrapper of the web \
         container, name a wrapped app container"
    );
}

/// A protected `api-fluentbit.json` whose installer was edited by hand with `edit`.
fn with_edited_installer(edit: impl FnOnce(&mut Value)) -> Value {
    let mut td = embed_fixture("api-fluentbit.json").task_definition;
    edit(&mut td["containerDefinitions"][0]);
    td
}

#[test]
fn an_installer_waiting_for_a_wrapped_container_is_refused() {
    let o = fixture_options("api-fluentbit.json");
    let td = with_edited_installer(|i| {
        i["logConfiguration"] = json!({"logDriver": "awsfirelens", "options": {"Name": "stdout"}});
    });
    assert_eq!(
        embed(&td, &o).unwrap_err().to_string(),
        "containerDefinitions[0].logConfiguration.logDriver: the defender installer logs \
         through FireLens, so ECS starts it after the log router \"log-router\", which is \
         wrapped and waits for the installer to succeed, so the task would never start; give \
         the installer an awslogs logConfiguration (or none), or leave the log router unwrapped \
         with --exclude-container log-router"
    );

    let td = with_edited_installer(|i| {
        i["dependsOn"] = json!([{"containerName": "log-router", "condition": "START"}]);
    });
    assert_eq!(
        embed(&td, &o).unwrap_err().to_string(),
        "containerDefinitions[0].dependsOn[0]: the defender installer depends on container \
         \"log-router\", which is wrapped and waits for the installer to succeed, so the task \
         would never start; remove this dependsOn entry from the installer, or leave the \
         container unwrapped with --exclude-container log-router"
    );
}

#[test]
fn an_installer_logging_through_an_unwrapped_router_is_kept() {
    // The router is unwrapped (no entryPoint): the installer may wait for it.
    let mut doc = fixture("api-fluentbit.json");
    doc["containerDefinitions"][1]
        .as_object_mut()
        .unwrap()
        .remove("entryPoint");
    let o = fixture_options("api-fluentbit.json");
    let mut td = embed(&doc, &o).unwrap().task_definition;
    let firelens = json!({"logDriver": "awsfirelens", "options": {"Name": "stdout"}});
    td["containerDefinitions"][0]["logConfiguration"] = firelens.clone();
    let again = embed(&td, &o).unwrap();
    assert_eq!(
        container(&again.task_definition, "defender")["logConfiguration"],
        firelens
    );
}
