//! The transform with image configs read from a registry (`EmbedOptions::images`): Docker's
//! rules for a container without `entryPoint`, FireLens routers wrapped once their image is
//! known, and `pin_digests`.

#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use protect::embed::{embed, EmbedOptions, ImageConfig, ImageInfo, Pin};
use serde_json::{json, Value};

const DIGEST: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";

fn task(containers: Value) -> Value {
    json!({"family": "web", "networkMode": "awsvpc", "requiresCompatibilities": ["FARGATE"],
           "cpu": "256", "memory": "512", "containerDefinitions": containers,
           "executionRoleArn": "arn:aws:iam::123456789012:role/ecsTaskExecutionRole"})
}

fn info(entrypoint: Option<&[&str]>, cmd: Option<&[&str]>) -> ImageInfo {
    let list = |l: Option<&[&str]>| l.map(|l| l.iter().map(|s| s.to_string()).collect());
    ImageInfo {
        digest: DIGEST.into(),
        platform: None,
        config: ImageConfig {
            entrypoint: list(entrypoint),
            cmd: list(cmd),
            working_dir: Some("/srv".into()),
            user: None,
        },
    }
}

fn with_image(image: &str, info: ImageInfo) -> EmbedOptions {
    let mut o = options();
    o.token_secret_arn = Some(SECRET_ARN.into());
    o.images.insert(image.into(), info);
    o
}

/// The wrapped container (the installer is at index 0).
fn app(doc: &Value, o: &EmbedOptions) -> Value {
    embed(doc, o).unwrap().task_definition["containerDefinitions"][1].clone()
}

fn wrapped(rest: &[&str]) -> Value {
    json!(PREFIX.iter().chain(rest).collect::<Vec<_>>())
}

#[test]
fn an_image_only_container_runs_the_images_entrypoint_and_cmd() {
    let doc = task(json!([{"name": "web", "image": "nginx:1.27"}]));
    let o = with_image(
        "nginx:1.27",
        info(
            Some(&["/docker-entrypoint.sh"]),
            Some(&["nginx", "-g", "daemon off;"]),
        ),
    );
    let c = app(&doc, &o);
    assert_eq!(c["entryPoint"], wrapped(&["/docker-entrypoint.sh"]));
    assert_eq!(c["command"], json!(["nginx", "-g", "daemon off;"]));
    assert_eq!(c["image"], "nginx:1.27", "no pinning unless asked");
}

#[test]
fn the_tasks_command_replaces_the_images_cmd() {
    let doc = task(json!([{"name": "web", "image": "nginx:1.27", "command": ["nginx", "-T"]}]));
    let o = with_image(
        "nginx:1.27",
        info(
            Some(&["/docker-entrypoint.sh"]),
            Some(&["nginx", "-g", "daemon off;"]),
        ),
    );
    let c = app(&doc, &o);
    assert_eq!(c["entryPoint"], wrapped(&["/docker-entrypoint.sh"]));
    assert_eq!(c["command"], json!(["nginx", "-T"]));
}

#[test]
fn the_tasks_entrypoint_replaces_the_images_and_resets_its_cmd() {
    let doc = task(json!([{"name": "web", "image": "nginx:1.27", "entryPoint": ["/bin/sh"]}]));
    let o = with_image(
        "nginx:1.27",
        info(Some(&["/docker-entrypoint.sh"]), Some(&["nginx"])),
    );
    let c = app(&doc, &o);
    assert_eq!(c["entryPoint"], wrapped(&["/bin/sh"]));
    assert_eq!(
        c.get("command"),
        None,
        "the image's CMD is not brought back"
    );
}

#[test]
fn an_image_with_only_cmd_is_wrapped_around_it() {
    let doc = task(json!([{"name": "worker", "image": "py:3"}]));
    let o = with_image("py:3", info(None, Some(&["python3", "-m", "worker"])));
    let c = app(&doc, &o);
    assert_eq!(c["entryPoint"], wrapped(&[]));
    assert_eq!(c["command"], json!(["python3", "-m", "worker"]));
    // An empty ENTRYPOINT list is no ENTRYPOINT.
    let o = with_image("py:3", info(Some(&[]), Some(&["python3"])));
    assert_eq!(app(&doc, &o)["entryPoint"], wrapped(&[]));
}

#[test]
fn an_image_with_nothing_to_run_is_an_error_naming_container_and_image() {
    let doc = task(json!([{"name": "data", "image": "127.0.0.1:5000/data:1"}]));
    let o = with_image("127.0.0.1:5000/data:1", info(None, Some(&[])));
    assert_eq!(
        embed(&doc, &o).unwrap_err().to_string(),
        "containerDefinitions[0]: container \"data\" has neither entryPoint nor command, and \
         its image 127.0.0.1:5000/data:1 has neither ENTRYPOINT nor CMD, so the container has \
         nothing to run; set \"entryPoint\" (or \"command\") to the program to start, or \
         exclude the container with --exclude-container data"
    );
    // The task's command is enough.
    let doc = task(json!([{"name": "data", "image": "127.0.0.1:5000/data:1",
                           "command": ["/seed"]}]));
    let c = app(&doc, &o);
    assert_eq!(c["entryPoint"], wrapped(&[]));
    assert_eq!(c["command"], json!(["/seed"]));
}

#[test]
fn a_wrong_no_image_entrypoint_is_corrected_by_the_image_with_a_warning() {
    let doc = task(json!([{"name": "web", "image": "nginx:1.27", "command": ["nginx"]}]));
    let mut o = with_image("nginx:1.27", info(Some(&["/docker-entrypoint.sh"]), None));
    o.no_image_entrypoint = vec!["web".into()];
    let out = embed(&doc, &o).unwrap();
    assert_eq!(
        out.task_definition["containerDefinitions"][1]["entryPoint"],
        wrapped(&["/docker-entrypoint.sh"])
    );
    assert_eq!(
        out.warnings,
        [
            "containerDefinitions[0]: --no-image-entrypoint web: image nginx:1.27 has the \
          ENTRYPOINT [\"/docker-entrypoint.sh\"], which is kept after the defender wrapper; \
          drop the flag"
        ]
    );
}

#[test]
fn a_log_router_whose_image_was_read_is_wrapped() {
    let doc = task(json!([
        {"name": "log_router", "image": "fluent-bit:3", "firelensConfiguration": {"type": "fluentbit"}},
        {"name": "web", "image": "app:1", "entryPoint": ["/app"]},
    ]));
    let o = with_image(
        "fluent-bit:3",
        info(
            Some(&["/fluent-bit/bin/fluent-bit"]),
            Some(&["-c", "/f.conf"]),
        ),
    );
    let out = embed(&doc, &o).unwrap();
    assert_eq!(out.warnings, Vec::<String>::new());
    let router = &out.task_definition["containerDefinitions"][1];
    assert_eq!(
        router["entryPoint"],
        wrapped(&["/fluent-bit/bin/fluent-bit"])
    );
    assert_eq!(router["command"], json!(["-c", "/f.conf"]));
}

#[test]
fn pinning_references_each_image_by_the_digest_read_and_is_idempotent() {
    let doc = task(json!([
        {"name": "web", "image": "nginx:1.27"},
        {"name": "side", "image": "localhost:5000/side", "entryPoint": ["/side"]},
        {"name": "fixed", "image": format!("busybox@{DIGEST}"), "entryPoint": ["/bin/sh"]},
    ]));
    let mut o = with_image("nginx:1.27", info(Some(&["/docker-entrypoint.sh"]), None));
    o.images
        .insert("localhost:5000/side".into(), info(None, None));
    o.pin_digests = true;
    let out = embed(&doc, &o).unwrap();
    let containers = &out.task_definition["containerDefinitions"];
    assert_eq!(containers[1]["image"], format!("nginx@{DIGEST}"));
    assert_eq!(
        containers[2]["image"],
        format!("localhost:5000/side@{DIGEST}")
    );
    assert_eq!(containers[3]["image"], format!("busybox@{DIGEST}"));
    assert_eq!(
        containers[0]["image"], IMAGE,
        "the defender image is not pinned"
    );
    assert_eq!(
        out.pins,
        [
            Pin {
                container: "web".into(),
                from: "nginx:1.27".into(),
                to: format!("nginx@{DIGEST}"),
            },
            Pin {
                container: "side".into(),
                from: "localhost:5000/side".into(),
                to: format!("localhost:5000/side@{DIGEST}"),
            },
        ]
    );
    // The defender reports the tag the image was pinned from, now and after a second embed.
    let env_image = |c: &Value| {
        c["environment"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["name"] == "DEFENDER_IMAGE")
            .unwrap()["value"]
            .clone()
    };
    assert_eq!(env_image(&containers[1]), "nginx:1.27");
    let again = embed(&out.task_definition, &o).unwrap();
    assert_eq!(again.task_definition, out.task_definition);
    assert_eq!(again.pins, []);
}

#[test]
fn pinning_an_image_that_was_not_read_is_an_error() {
    let doc = task(json!([{"name": "web", "image": "app:1", "entryPoint": ["/app"]}]));
    let mut o = options();
    o.token_secret_arn = Some(SECRET_ARN.into());
    o.pin_digests = true;
    assert_eq!(
        embed(&doc, &o).unwrap_err().to_string(),
        "containerDefinitions[0].image: --pin-digests: the digest of image app:1 (container \
         \"web\") was not read from its registry; let deploy-protected read it (without \
         --offline), or reference the image by digest (REPOSITORY@sha256:...)"
    );
}

#[test]
fn embedding_an_image_only_container_twice_equals_once() {
    let doc = task(json!([{"name": "web", "image": "nginx:1.27"}]));
    let o = with_image(
        "nginx:1.27",
        info(
            Some(&["/docker-entrypoint.sh"]),
            Some(&["nginx", "-g", "daemon off;"]),
        ),
    );
    let once = embed(&doc, &o).unwrap().task_definition;
    assert_eq!(embed(&once, &o).unwrap().task_definition, once);
}
