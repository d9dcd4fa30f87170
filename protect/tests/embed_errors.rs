//! Every transform error, with its exact text: what is wrong, where, and how to fix it.

#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use protect::embed::{embed, CnafOptions, EmbedOptions, TransformError};
use serde_json::{json, Value};

fn err(doc: &Value, o: &EmbedOptions) -> String {
    embed(doc, o).unwrap_err().to_string()
}

fn app(name: &str) -> Value {
    json!({"name": name, "image": "i", "entryPoint": ["/run"]})
}

fn task(containers: Value) -> Value {
    json!({"family": "f", "networkMode": "awsvpc", "requiresCompatibilities": ["FARGATE"],
           "cpu": "256", "memory": "512", "containerDefinitions": containers})
}

#[test]
fn not_an_object() {
    assert_eq!(
        err(&json!([1]), &options()),
        "$: expected a JSON object (a RegisterTaskDefinition input or a DescribeTaskDefinition \
         output), found an array"
    );
    assert_eq!(
        err(&json!({"taskDefinition": "x"}), &options()),
        "taskDefinition: expected a JSON object (a RegisterTaskDefinition input or a \
         DescribeTaskDefinition output), found a string"
    );
}

#[test]
fn missing_family_and_containers() {
    assert_eq!(
        err(&json!({"containerDefinitions": [app("a")]}), &options()),
        "family: missing or empty; set \"family\" to the task definition family name (the \
         defender reports it as DEFENDER_TASK_FAMILY)"
    );
    assert_eq!(
        err(&json!({"family": "f"}), &options()),
        "containerDefinitions: missing or empty; a task definition needs at least one container \
         in \"containerDefinitions\""
    );
    assert_eq!(
        err(
            &json!({"taskDefinition": {"family": "f", "containerDefinitions": []}}),
            &options()
        ),
        "taskDefinition.containerDefinitions: missing or empty; a task definition needs at \
         least one container in \"containerDefinitions\""
    );
    assert_eq!(
        err(
            &json!({"family": "f", "containerDefinitions": {"a": 1}}),
            &options()
        ),
        "containerDefinitions: expected an array of container definitions, found an object"
    );
    assert_eq!(
        err(
            &json!({"family": 7, "containerDefinitions": [app("a")]}),
            &options()
        ),
        "family: expected a string, found a number"
    );
}

#[test]
fn container_names() {
    assert_eq!(
        err(&task(json!([app("a"), {"image": "i"}])), &options()),
        "containerDefinitions[1].name: missing or empty; every container and volume needs a \
         unique \"name\""
    );
    assert_eq!(
        err(&task(json!([app("a"), 3])), &options()),
        "containerDefinitions[1]: expected an object, found a number"
    );
    assert_eq!(
        err(&task(json!([app("web"), app("web")])), &options()),
        "containerDefinitions[1].name: container name \"web\" is already used by \
         containerDefinitions[0]; container names must be unique within a task definition"
    );
}

#[test]
fn windows_task() {
    let mut doc = task(json!([app("a")]));
    doc["runtimePlatform"] = json!({"operatingSystemFamily": "WINDOWS_SERVER_2022_CORE"});
    assert_eq!(
        err(&doc, &options()),
        "runtimePlatform.operatingSystemFamily: \"WINDOWS_SERVER_2022_CORE\" is a Windows task; \
         the defender runs in Linux containers only (remove \
         runtimePlatform.operatingSystemFamily or set it to \"LINUX\")"
    );
}

#[test]
fn fargate_needs_awsvpc() {
    let mut doc = task(json!([app("a")]));
    doc["networkMode"] = json!("bridge");
    assert_eq!(
        err(&doc, &options()),
        "networkMode: is \"bridge\" but requiresCompatibilities includes FARGATE; Fargate tasks \
         must use \"networkMode\": \"awsvpc\""
    );
    doc.as_object_mut().unwrap().remove("networkMode");
    assert_eq!(
        err(&doc, &options()),
        "networkMode: is missing but requiresCompatibilities includes FARGATE; Fargate tasks \
         must use \"networkMode\": \"awsvpc\""
    );
}

#[test]
fn foreign_defender_container_and_volume() {
    assert_eq!(
        err(&task(json!([app("a"), app("defender")])), &options()),
        "containerDefinitions[1].entryPoint: a container is already named \"defender\" but it \
         is not the defender installer (its entryPoint is not \
         [\"/defender\",\"install\",\"/var/lib/defender\"]); rename that container, the \
         transform needs the name \"defender\""
    );
    let mut doc = task(json!([app("a")]));
    doc["volumes"] = json!([{"name": "data"}, {"name": "defender", "host": {"sourcePath": "/x"}}]);
    assert_eq!(
        err(&doc, &options()),
        "volumes[1]: a volume is already named \"defender\" but it has a host path or a \
         Docker/EFS/FSx configuration; rename that volume, the transform needs the name \
         \"defender\" for a task-scoped volume"
    );
    doc["volumes"] =
        json!([{"name": "defender", "efsVolumeConfiguration": {"fileSystemId": "fs-1"}}]);
    assert!(err(&doc, &options()).starts_with("volumes[0]: a volume is already named"));
    doc["volumes"] = json!([{"image": "x"}]);
    assert_eq!(
        err(&doc, &options()),
        "volumes[0].name: missing or empty; every container and volume needs a unique \"name\""
    );
}

#[test]
fn neither_entry_point_nor_command() {
    let doc = task(json!([app("a"), {"name": "sidecar", "image": "i", "command": []}]));
    assert_eq!(
        err(&doc, &options()),
        "containerDefinitions[1]: container \"sidecar\" has neither entryPoint nor command; the \
         transform replaces entryPoint, and ECS then drops the image's ENTRYPOINT and CMD, so \
         the container would have nothing to run. Copy the image's ENTRYPOINT into \
         \"entryPoint\" (and its CMD into \"command\"), or exclude the container with \
         --exclude-container sidecar"
    );
    // Confirming there is no image ENTRYPOINT does not help: there is still nothing to run.
    let mut o = options();
    o.no_image_entrypoint = vec!["sidecar".into()];
    assert!(err(&doc, &o).contains("has neither entryPoint nor command"));
    o.exclude_containers = vec!["sidecar".into()];
    assert!(embed(&doc, &o).is_ok());
}

#[test]
fn missing_image() {
    let doc = task(json!([app("a"), {"name": "b", "entryPoint": ["/b"], "image": ""}]));
    assert_eq!(
        err(&doc, &options()),
        "containerDefinitions[1].image: container \"b\" has no image; set \"image\" (the \
         defender reports it as DEFENDER_IMAGE and ECS needs it to start the container)"
    );
}

#[test]
fn command_without_entry_point() {
    let doc = task(json!([{"name": "api", "image": "i", "command": ["node", "s.js"]}]));
    assert_eq!(
        err(&doc, &options()),
        "containerDefinitions[0]: container \"api\" has a command but no entryPoint; if its image \
         has an ENTRYPOINT, overriding entryPoint would drop it. Copy the image's ENTRYPOINT \
         into \"entryPoint\", or, if the image has no ENTRYPOINT, confirm it with \
         --no-image-entrypoint api"
    );
}

#[test]
fn wrong_types_inside_containers() {
    let doc = task(json!([{"name": "a", "image": "i", "entryPoint": "/run"}]));
    assert_eq!(
        err(&doc, &options()),
        "containerDefinitions[0].entryPoint: expected an array of strings, found a string"
    );
    let doc = task(json!([{"name": "a", "image": "i", "entryPoint": ["/run", 1]}]));
    assert_eq!(
        err(&doc, &options()),
        "containerDefinitions[0].entryPoint[1]: expected a string, found a number"
    );
    let doc = task(json!([{"name": "a", "image": "i", "entryPoint": ["/r"], "environment": {}}]));
    assert_eq!(
        err(&doc, &options()),
        "containerDefinitions[0].environment: expected an array, found an object"
    );
    let doc =
        task(json!([{"name": "a", "image": "i", "entryPoint": ["/r"], "linuxParameters": []}]));
    assert_eq!(
        err(&doc, &options()),
        "containerDefinitions[0].linuxParameters: expected an object, found an array"
    );
    let doc =
        task(json!([{"name": "a", "image": "i", "entryPoint": ["/r"], "mountPoints": ["x"]}]));
    assert_eq!(
        err(&doc, &options()),
        "containerDefinitions[0].mountPoints[0]: expected an object, found a string"
    );
    let doc =
        json!({"taskDefinition": task(json!([{"name": "a", "image": 5, "entryPoint": ["/r"]}]))});
    assert_eq!(
        err(&doc, &options()),
        "taskDefinition.containerDefinitions[0].image: expected a string, found a number"
    );
}

#[test]
fn mount_conflict_and_ptrace_drop() {
    let doc = task(json!([{"name": "a", "image": "i", "entryPoint": ["/r"],
        "mountPoints": [{"sourceVolume": "data", "containerPath": "/var/lib/defender"}]}]));
    assert_eq!(
        err(&doc, &options()),
        "containerDefinitions[0].mountPoints[0]: container \"a\" already mounts volume \"data\" \
         at /var/lib/defender, where the defender is installed; move that mount elsewhere"
    );
    let doc = task(json!([{"name": "a", "image": "i", "entryPoint": ["/r"],
        "linuxParameters": {"capabilities": {"drop": ["sys_ptrace"]}}}]));
    assert_eq!(
        err(&doc, &options()),
        "containerDefinitions[0].linuxParameters.capabilities.drop: container \"a\" drops \
         SYS_PTRACE, which the defender needs to supervise the app; remove SYS_PTRACE from \
         linuxParameters.capabilities.drop or exclude the container with --exclude-container a"
    );
}

#[test]
fn excluded_but_already_wrapped() {
    let once = embed(&task(json!([app("a"), app("b")])), &options()).unwrap();
    let mut o = options();
    o.exclude_containers = vec!["b".into()];
    assert_eq!(
        err(&once.task_definition, &o),
        "containerDefinitions[2].entryPoint: container \"b\" is excluded but an earlier \
         embedding already wrapped it (its entryPoint starts with the defender); embed the \
         unprotected task definition to leave it unwrapped, or stop excluding it"
    );
}

#[test]
fn unknown_container_options() {
    let doc = task(json!([app("web"), app("worker")]));
    let mut o = options();
    o.exclude_containers = vec!["wbe".into()];
    assert_eq!(
        err(&doc, &o),
        "--exclude-container wbe: no such container in the task definition; the containers are: \
         web, worker"
    );
    let mut o = options();
    o.no_image_entrypoint = vec!["x".into()];
    assert_eq!(
        err(&doc, &o),
        "--no-image-entrypoint x: no such container in the task definition; the containers are: \
         web, worker"
    );
    let mut o = options();
    o.cnaf = Some(CnafOptions {
        external_port: 8080,
        app_port: 80,
        container: Some("defender".into()),
    });
    assert_eq!(
        err(&doc, &o),
        "--cnaf-container defender: no such container in the task definition; the containers \
         are: web, worker"
    );
}

#[test]
fn nothing_to_protect() {
    let doc = task(json!([app("a")]));
    let mut o = options();
    o.exclude_containers = vec!["a".into()];
    assert_eq!(
        err(&doc, &o),
        "containerDefinitions: every container is excluded or is a FireLens log router, so there \
         is nothing to protect; exclude fewer containers"
    );
}

#[test]
fn cnaf_errors() {
    let doc = task(json!([app("web"), app("worker")]));
    let cnaf = |container: Option<&str>| CnafOptions {
        external_port: 8080,
        app_port: 80,
        container: container.map(String::from),
    };
    let mut o = options();
    o.cnaf = Some(cnaf(None));
    assert_eq!(
        err(&doc, &o),
        "--cnaf-container: required because the task has several app containers (web, \
         worker); name the web container that listens on the app port"
    );
    o.cnaf = Some(cnaf(Some("worker")));
    o.exclude_containers = vec!["worker".into()];
    assert_eq!(
        err(&doc, &o),
        "--cnaf-container worker: that container is not a wrapped app container (it is \
         excluded or a FireLens log router); CNAF runs inside the defender wrapper of the web \
         container, name a wrapped app container"
    );
    // With one app container left, no --cnaf-container is needed.
    o.cnaf = Some(cnaf(None));
    assert!(embed(&doc, &o).is_ok());

    let mut busy = task(json!([app("web"), app("worker")]));
    busy["containerDefinitions"][1]["portMappings"] = json!([{"containerPort": 8080}]);
    let mut o = options();
    o.cnaf = Some(cnaf(Some("web")));
    assert_eq!(
        err(&busy, &o),
        "containerDefinitions[1].portMappings: container \"worker\" already maps port 8080, the \
         CNAF external port; in awsvpc mode containers share the network, so choose another \
         --cnaf-port"
    );
    o.cnaf = Some(CnafOptions {
        external_port: 80,
        app_port: 80,
        container: None,
    });
    assert_eq!(
        err(&doc, &o),
        "--cnaf-port 80: equals --app-port; the CNAF proxy and the app share the network, so the \
         external port must differ from the app port"
    );
    o.cnaf = Some(CnafOptions {
        external_port: 0,
        app_port: 80,
        container: None,
    });
    assert_eq!(err(&doc, &o), "--cnaf-port 0: not a TCP port; use 1-65535");
    o.cnaf = Some(CnafOptions {
        external_port: 8080,
        app_port: 0,
        container: None,
    });
    assert_eq!(err(&doc, &o), "--app-port 0: not a TCP port; use 1-65535");
}

#[test]
fn option_errors() {
    let doc = task(json!([app("a")]));
    let o = EmbedOptions::new("console.example.com", IMAGE);
    assert_eq!(
        err(&doc, &o),
        "--console-url \"console.example.com\": must start with http:// or https://; use \
         http(s)://HOST[:PORT][/PATH]"
    );
    let o = EmbedOptions::new(CONSOLE, "");
    assert_eq!(
        err(&doc, &o),
        "--defender-image \"\": not an image reference; use REPOSITORY[:TAG] or \
         REPOSITORY@sha256:DIGEST"
    );
    let mut o = options();
    o.token_secret_arn = Some("defender-token".into());
    assert_eq!(
        err(&doc, &o),
        "--token-secret-arn \"defender-token\": not a Secrets Manager or SSM parameter ARN; use \
         arn:aws:secretsmanager:REGION:ACCOUNT:secret:NAME or \
         arn:aws:ssm:REGION:ACCOUNT:parameter/NAME"
    );
    o.plain_token = Some("t".into());
    assert_eq!(
        err(&doc, &o),
        "--token and --token-secret-arn: give one of them, not both"
    );
    let mut o = options();
    o.plain_token = Some("t".into());
    assert_eq!(
        err(&doc, &o),
        "--token: a plain-text token would be readable by anyone who can describe the task \
         definition; store it in Secrets Manager and pass --token-secret-arn ARN, or add \
         --allow-plain-token to accept the risk"
    );
    o.plain_token = Some(String::new());
    o.allow_plain_token = true;
    assert_eq!(
        err(&doc, &o),
        "--token: empty; pass the defender credential, or omit --token"
    );
}

#[test]
fn errors_carry_path_and_container() {
    let doc = task(json!([app("a"), {"name": "b", "image": "i"}]));
    match embed(&doc, &options()) {
        Err(TransformError::NoEntryPointNorCommand { path, container }) => {
            assert_eq!(path, "containerDefinitions[1]");
            assert_eq!(container, "b");
        }
        other => panic!("unexpected {other:?}"),
    }
}
