//! The images' own ENTRYPOINT and CMD, read from a real registry: Debian's `docker-registry`
//! on loopback (started by `integration_tests::registry`, installed with apt-get when missing),
//! with images built here `FROM scratch` by Docker and pushed to it:
//!
//! - `both`: ENTRYPOINT and CMD; `cmd-only`: CMD only; `neither`: no ENTRYPOINT, no CMD;
//! - `multi:latest`: an image index (pushed as JSON through the registry API) of two manifests,
//!   linux/amd64 (ENTRYPOINT `/amd64`) and linux/arm64 (ENTRYPOINT `/arm64`); `multi:amd-only`
//!   an index with the amd64 one only.
//!
//! 1. The resolver reads each one (index → the asked platform, a missing platform named).
//! 2. `deploy-protected embed` wraps image-only containers with their image's entrypoint and
//!    CMD, pins the digests, refuses an image with nothing to run naming container and image.
//! 3. Deploying (moto) a task definition whose container has no entryPoint registers a
//!    protected revision whose wrapped entrypoint is the image's.
//!
//! Docker and the registry are required: without them these tests fail, saying why.

#![allow(clippy::unwrap_used)]

use deploy_protected::deploy::cmd::{execute, ImageTransform};
use deploy_protected::deploy::output::OutputFormat;
use deploy_protected::deploy::progress::PlainProgress;
use deploy_protected::deploy::{AwsClients, DeploySettings};
use image_registry::{Platform, Resolver};
use integration_tests::moto::MotoServer;
use integration_tests::registry::LocalRegistry;
use serde_json::{json, Value};
use std::path::PathBuf;
use std::process::{Command, Output};

use super::deploy_mock::sdk_config;
use super::local_docker::binary;

const WRAPPER: [&str; 3] = ["/var/lib/defender/defender", "run", "--"];
const SECRET: &str = "arn:aws:secretsmanager:us-east-1:123456789012:secret:defender-token-Ab12Cd";
const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";

/// The registry and the references of the images pushed to it.
struct Images {
    registry: LocalRegistry,
    both: String,
    cmd_only: String,
    neither: String,
    multi: String,
    amd_only: String,
}

fn run(cmd: &mut Command, what: &str) -> Output {
    let out = cmd.output().unwrap_or_else(|e| {
        panic!("{what}: could not run {cmd:?}: {e} (these tests need Docker and the registry)")
    });
    assert!(
        out.status.success(),
        "{what} failed ({}): {}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Builds `FROM scratch` (one small file, the given instructions) as `reference`, pushes it
/// and removes the local tag.
fn build_and_push(reference: &str, instructions: &str) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("marker"), reference).unwrap();
    std::fs::write(
        dir.path().join("Dockerfile"),
        format!("FROM scratch\nCOPY marker /marker\n{instructions}\n"),
    )
    .unwrap();
    run(
        Command::new("docker")
            .args(["build", "-q", "-t", reference])
            .arg(dir.path())
            .env("DOCKER_BUILDKIT", "0"),
        "docker build",
    );
    run(
        Command::new("docker").args(["push", reference]),
        "docker push",
    );
    let _ = Command::new("docker").args(["rmi", reference]).output();
}

/// A manifest's digest and size, as the registry serves it.
fn manifest_descriptor(registry: &LocalRegistry, repo: &str, tag: &str) -> (String, usize) {
    let resp = ureq::get(&format!("{}/v2/{repo}/manifests/{tag}", registry.url()))
        .set("Accept", DOCKER_MANIFEST)
        .call()
        .unwrap();
    let digest = resp.header("Docker-Content-Digest").unwrap().to_string();
    let body = resp.into_string().unwrap();
    (digest, body.len())
}

/// Pushes a manifest list naming `entries` (`(tag, architecture, variant)`) as `repo:tag`.
fn push_index(
    registry: &LocalRegistry,
    repo: &str,
    tag: &str,
    entries: &[(&str, &str, Option<&str>)],
) {
    let manifests: Vec<Value> = entries
        .iter()
        .map(|(entry_tag, arch, variant)| {
            let (digest, size) = manifest_descriptor(registry, repo, entry_tag);
            let mut platform = json!({"architecture": arch, "os": "linux"});
            if let Some(v) = variant {
                platform["variant"] = json!(v);
            }
            json!({"mediaType": DOCKER_MANIFEST, "digest": digest, "size": size,
                   "platform": platform})
        })
        .collect();
    let index = json!({"schemaVersion": 2, "mediaType": DOCKER_LIST, "manifests": manifests});
    ureq::put(&format!("{}/v2/{repo}/manifests/{tag}", registry.url()))
        .set("Content-Type", DOCKER_LIST)
        .send_string(&index.to_string())
        .unwrap_or_else(|e| panic!("PUT the image index {repo}:{tag}: {e}"));
}

fn images() -> Images {
    let docker = Command::new("docker")
        .args(["version", "--format", "{{.Server.Version}}"])
        .output();
    match docker {
        Ok(o) if o.status.success() => {}
        Ok(o) => panic!(
            "the registry tests need the Docker Engine: `docker version` failed: {}",
            String::from_utf8_lossy(&o.stderr)
        ),
        Err(e) => panic!("the registry tests need the docker CLI and Engine: {e}"),
    }
    let registry = LocalRegistry::start().unwrap_or_else(|e| panic!("{e}"));
    let host = registry.host();
    let both = format!("{host}/both:1");
    build_and_push(
        &both,
        "ENTRYPOINT [\"/docker-entrypoint.sh\"]\nCMD [\"nginx\", \"-g\", \"daemon off;\"]\n\
         WORKDIR /srv\nUSER 101",
    );
    let cmd_only = format!("{host}/cmd-only:1");
    build_and_push(&cmd_only, "CMD [\"/worker\", \"--queue\", \"jobs\"]");
    let neither = format!("{host}/neither:1");
    build_and_push(&neither, "LABEL purpose=data");
    build_and_push(&format!("{host}/multi:amd64"), "ENTRYPOINT [\"/amd64\"]");
    build_and_push(&format!("{host}/multi:arm64"), "ENTRYPOINT [\"/arm64\"]");
    push_index(
        &registry,
        "multi",
        "latest",
        &[("amd64", "amd64", None), ("arm64", "arm64", Some("v8"))],
    );
    push_index(&registry, "multi", "amd-only", &[("amd64", "amd64", None)]);
    Images {
        multi: format!("{host}/multi:latest"),
        amd_only: format!("{host}/multi:amd-only"),
        registry,
        both,
        cmd_only,
        neither,
    }
}

fn strings(items: &[&str]) -> Option<Vec<String>> {
    Some(items.iter().map(|s| s.to_string()).collect())
}

#[tokio::test]
async fn the_resolver_reads_each_image_from_a_real_registry() {
    let images = images();
    let resolver = Resolver::default();
    let amd64 = Platform::linux_amd64();

    let both = resolver.resolve(&images.both, &amd64).await.unwrap();
    assert_eq!(both.config.entrypoint, strings(&["/docker-entrypoint.sh"]));
    assert_eq!(both.config.cmd, strings(&["nginx", "-g", "daemon off;"]));
    assert_eq!(both.config.working_dir.as_deref(), Some("/srv"));
    assert_eq!(both.config.user.as_deref(), Some("101"));
    assert_eq!(both.registry, images.registry.host());
    assert!(both.digest.starts_with("sha256:"), "{}", both.digest);
    assert_eq!(both.platform, None);

    let cmd_only = resolver.resolve(&images.cmd_only, &amd64).await.unwrap();
    assert_eq!(cmd_only.config.entrypoint(), None);
    assert_eq!(
        cmd_only.config.cmd,
        strings(&["/worker", "--queue", "jobs"])
    );

    let neither = resolver.resolve(&images.neither, &amd64).await.unwrap();
    assert_eq!(neither.config.entrypoint(), None);
    assert_eq!(neither.config.cmd(), None);

    let multi_amd = resolver.resolve(&images.multi, &amd64).await.unwrap();
    assert_eq!(multi_amd.config.entrypoint, strings(&["/amd64"]));
    assert_eq!(
        multi_amd
            .platform
            .as_ref()
            .map(ToString::to_string)
            .as_deref(),
        Some("linux/amd64")
    );
    let arm64 =
        Platform::of_task(&json!({"runtimePlatform": {"cpuArchitecture": "ARM64"}})).unwrap();
    let multi_arm = resolver.resolve(&images.multi, &arm64).await.unwrap();
    assert_eq!(multi_arm.config.entrypoint, strings(&["/arm64"]));
    assert_eq!(multi_arm.digest, multi_amd.digest, "both pin the index");
    assert_ne!(multi_arm.manifest_digest, multi_amd.manifest_digest);

    let missing = resolver
        .resolve(&images.amd_only, &arm64)
        .await
        .unwrap_err();
    assert_eq!(
        missing.to_string(),
        format!(
            "image {}: registry {} has no linux/arm64 manifest for it (the image is built for \
             linux/amd64); set the task's runtimePlatform (cpuArchitecture X86_64 or ARM64) to \
             a platform the image has, or use an image built for linux/arm64",
            images.amd_only,
            images.registry.host()
        )
    );

    // Read again: from the cache, no new config download.
    let reads = resolver.config_reads();
    resolver.resolve(&images.both, &amd64).await.unwrap();
    assert_eq!(resolver.config_reads(), reads);
}

fn task(containers: Value, extra: Value) -> Value {
    let mut td = json!({"family": "image-only", "networkMode": "awsvpc",
        "requiresCompatibilities": ["FARGATE"], "cpu": "256", "memory": "512",
        "executionRoleArn": "arn:aws:iam::123456789012:role/ecsTaskExecutionRole",
        "containerDefinitions": containers});
    if let (Some(td), Some(extra)) = (td.as_object_mut(), extra.as_object()) {
        td.extend(extra.clone());
    }
    td
}

/// `deploy-protected embed` on `doc` with `flags`.
fn embed(doc: &Value, flags: &[&str]) -> (Output, Value) {
    let dir = tempfile::tempdir().unwrap();
    let file: PathBuf = dir.path().join("task.json");
    std::fs::write(&file, doc.to_string()).unwrap();
    let out = Command::new(binary())
        .args([
            "embed",
            "--console-url",
            "https://console.example",
            "--defender-image",
            "fargate-defender:1",
            "--token-secret-arn",
            SECRET,
            "--file",
        ])
        .arg(&file)
        .args(flags)
        .env_remove("CONSOLE_URL")
        .output()
        .unwrap();
    let printed = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    (out, printed)
}

fn wrapped(rest: &[&str]) -> Value {
    json!(WRAPPER.iter().chain(rest).collect::<Vec<_>>())
}

#[test]
fn embed_wraps_image_only_containers_with_their_images_entrypoint_and_cmd() {
    let images = images();
    let doc = task(
        json!([{"name": "web", "image": images.both, "essential": true},
               {"name": "worker", "image": images.cmd_only, "essential": false}]),
        json!({}),
    );
    let (out, printed) = embed(&doc, &["--pin-digests"]);
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let containers = &printed["containerDefinitions"];
    assert_eq!(containers[1]["name"], "web");
    assert_eq!(
        containers[1]["entryPoint"],
        wrapped(&["/docker-entrypoint.sh"])
    );
    assert_eq!(
        containers[1]["command"],
        json!(["nginx", "-g", "daemon off;"])
    );
    assert_eq!(containers[2]["entryPoint"], wrapped(&[]));
    assert_eq!(
        containers[2]["command"],
        json!(["/worker", "--queue", "jobs"])
    );
    // Pinned: the revision names the digests that were read; stderr shows tag -> digest.
    let host = images.registry.host();
    let web_image = containers[1]["image"].as_str().unwrap();
    assert!(
        web_image.starts_with(&format!("{host}/both@sha256:")),
        "{web_image}"
    );
    assert!(
        stderr.contains(&format!(
            "deploy-protected: pinned web: {} -> {web_image}\n",
            images.both
        )),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!(
            "deploy-protected: container \"web\": image {} is {}: ENTRYPOINT \
             [\"/docker-entrypoint.sh\"], CMD [\"nginx\",\"-g\",\"daemon off;\"]\n",
            images.both,
            web_image.split('@').nth(1).unwrap()
        )),
        "{stderr}"
    );

    // An image with neither ENTRYPOINT nor CMD: an error naming the container and the image.
    let doc = task(
        json!([{"name": "data", "image": images.neither}]),
        json!({}),
    );
    let (out, _) = embed(&doc, &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
    let stderr = String::from_utf8_lossy(&out.stderr);
    let (before, after) = stderr.split_once(": containerDefinitions[0]: ").unwrap();
    assert!(
        before.starts_with("deploy-protected: error: embedding "),
        "{stderr}"
    );
    assert_eq!(
        after,
        format!(
            "container \"data\" has neither entryPoint nor command, and its image {} has \
             neither ENTRYPOINT nor CMD, so the container has nothing to run; set \
             \"entryPoint\" (or \"command\") to the program to start, or exclude the \
             container with --exclude-container data\n",
            images.neither
        )
    );

    // The task's platform picks the manifest of a multi-platform image.
    let arm =
        json!({"runtimePlatform": {"cpuArchitecture": "ARM64", "operatingSystemFamily": "LINUX"}});
    let doc = task(json!([{"name": "app", "image": images.multi}]), arm.clone());
    let (out, printed) = embed(&doc, &[]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        printed["containerDefinitions"][1]["entryPoint"],
        wrapped(&["/arm64"])
    );
    let doc = task(json!([{"name": "app", "image": images.multi}]), json!({}));
    let (_, printed) = embed(&doc, &[]);
    assert_eq!(
        printed["containerDefinitions"][1]["entryPoint"],
        wrapped(&["/amd64"])
    );
    // ... and says so when the image lacks it (exit 2: the task's or the image's fault).
    let doc = task(json!([{"name": "app", "image": images.amd_only}]), arm);
    let (out, _) = embed(&doc, &[]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        format!(
            "deploy-protected: error: container \"app\": image {}: registry {} has no \
             linux/arm64 manifest for it (the image is built for linux/amd64); set the task's \
             runtimePlatform (cpuArchitecture X86_64 or ARM64) to a platform the image has, or \
             use an image built for linux/arm64\n",
            images.amd_only, host
        )
    );

    // --offline reads nothing: the old request for an explicit entryPoint.
    let doc = task(json!([{"name": "web", "image": images.both}]), json!({}));
    let (out, _) = embed(&doc, &["--offline"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("has neither entryPoint nor command; the transform replaces entryPoint"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deploying_an_image_only_task_wraps_the_images_own_entrypoint() {
    let images = images();
    let moto = MotoServer::start(&[("MOTO_ECS_SERVICE_RUNNING", "1")]).expect("moto server");
    let config = sdk_config(&moto.endpoint());
    let ecs = aws_sdk_ecs::Client::new(&config);
    let clients = AwsClients::new(&config);
    ecs.create_cluster()
        .cluster_name("c1")
        .send()
        .await
        .expect("cluster");
    // nginx-style: image only, no entryPoint, no command.
    let source = task(
        json!([{"name": "web", "image": images.both, "essential": true,
                "portMappings": [{"containerPort": 80, "protocol": "tcp"}]}]),
        json!({}),
    );
    clients
        .register_task_definition(&source)
        .await
        .expect("register the image-only task definition");

    let mut options =
        protect::embed::EmbedOptions::new("https://console.example", "fargate-defender:1");
    options.token_secret_arn = Some(SECRET.into());
    options.pin_digests = true;
    let resolver = Resolver::default();
    let transform = ImageTransform::new(&options, Some(&resolver));
    let settings = DeploySettings {
        family: "image-only".into(),
        revision: None,
        cluster: "c1".into(),
        service: None,
        network: None,
        desired_count: Some(1),
        cnaf: None,
        dry_run: false,
        wait: None,
        rollback: false,
    };
    let mut out = Vec::new();
    let mut progress = PlainProgress::new(Vec::new());
    execute(
        &clients,
        &settings,
        &transform,
        OutputFormat::Json,
        &mut out,
        &mut progress,
    )
    .await
    .expect("deploy");
    let summary: Value = serde_json::from_slice(&out).expect("JSON summary");
    assert_eq!(summary["task_definition"], "registered");
    let pinned = summary["pinned_images"][0]["to"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(summary["pinned_images"][0]["container"], "web");
    assert_eq!(summary["pinned_images"][0]["from"], images.both.as_str());

    // What ECS now holds: the protected revision runs the image's own entrypoint and CMD
    // under the defender, from the digest that was read.
    let described = ecs
        .describe_task_definition()
        .task_definition("image-only")
        .send()
        .await
        .expect("describe");
    let td = described.task_definition().expect("task definition");
    assert_eq!(td.revision(), 2);
    let web = td
        .container_definitions()
        .iter()
        .find(|c| c.name() == Some("web"))
        .expect("web");
    assert_eq!(
        web.entry_point(),
        [
            "/var/lib/defender/defender",
            "run",
            "--",
            "/docker-entrypoint.sh"
        ]
    );
    assert_eq!(web.command(), ["nginx", "-g", "daemon off;"]);
    assert_eq!(web.image(), Some(pinned.as_str()));
    assert!(pinned.starts_with(&format!("{}/both@sha256:", images.registry.host())));
}
