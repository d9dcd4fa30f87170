//! Contracts of the registry HTTP API, on a wiremock registry (loopback, so plain HTTP): the
//! anonymous bearer-token flow (401 + `WWW-Authenticate` → token → the same request with the
//! token), image index → the task's platform, the per-digest cache, throttling retried with
//! backoff, and the errors for a denied token, a missing tag and a missing platform.

#![allow(clippy::unwrap_used)]

use image_registry::{Platform, RegistryError, Resolver, Retry};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::time::Duration;
use wiremock::matchers::{header, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

const MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const INDEX: &str = "application/vnd.oci.image.index.v1+json";
const CONFIG: &str = "application/vnd.oci.image.config.v1+json";

fn digest(bytes: &[u8]) -> String {
    let hash = Sha256::digest(bytes);
    let hex: String = hash.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

fn fast() -> Resolver {
    Resolver::new(Retry {
        attempts: 3,
        first_delay: Duration::from_millis(10),
    })
}

fn registry(server: &MockServer) -> String {
    server.address().to_string()
}

/// A config blob and a manifest pointing at it: `(manifest bytes, manifest digest, config
/// bytes, config digest)`.
fn image(entrypoint: Value, cmd: Value) -> (Vec<u8>, String, Vec<u8>, String) {
    let config = serde_json::to_vec(&json!({
        "architecture": "amd64", "os": "linux",
        "config": {"Entrypoint": entrypoint, "Cmd": cmd, "WorkingDir": "/srv", "User": "app"},
        "rootfs": {"type": "layers", "diff_ids": []}
    }))
    .unwrap();
    let config_digest = digest(&config);
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2, "mediaType": MANIFEST,
        "config": {"mediaType": CONFIG, "digest": config_digest, "size": config.len()},
        "layers": []
    }))
    .unwrap();
    let manifest_digest = digest(&manifest);
    (manifest, manifest_digest, config, config_digest)
}

fn body(bytes: &[u8], media_type: &str, digest: &str) -> ResponseTemplate {
    ResponseTemplate::new(200)
        .insert_header("Content-Type", media_type)
        .insert_header("Docker-Content-Digest", digest)
        .set_body_bytes(bytes.to_vec())
}

/// `/v2/` challenges; `/token` hands out `tok-123` for a pull of `repo`.
async fn token_flow(server: &MockServer, repo: &str) {
    let realm = format!("http://{}/token", server.address());
    Mock::given(method("GET"))
        .and(path("/v2/"))
        .respond_with(ResponseTemplate::new(401).insert_header(
            "WWW-Authenticate",
            format!("Bearer realm=\"{realm}\",service=\"wiremock-registry\"").as_str(),
        ))
        .mount(server)
        .await;
    Mock::given(method("GET"))
        .and(path("/token"))
        .and(query_param("service", "wiremock-registry"))
        .and(query_param(
            "scope",
            format!("repository:{repo}:pull").as_str(),
        ))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"token": "tok-123"})))
        .expect(1)
        .mount(server)
        .await;
}

#[tokio::test]
async fn bearer_token_flow_then_manifest_and_config() {
    let server = MockServer::start().await;
    token_flow(&server, "team/app").await;
    let (manifest, manifest_digest, config, config_digest) = image(
        json!(["/docker-entrypoint.sh"]),
        json!(["nginx", "-g", "daemon off;"]),
    );
    // Only the token opens the repository.
    Mock::given(method("GET"))
        .and(path("/v2/team/app/manifests/1.0"))
        .and(header("Authorization", "Bearer tok-123"))
        .respond_with(body(&manifest, MANIFEST, &manifest_digest))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("/v2/team/app/blobs/{config_digest}").as_str()))
        .and(header("Authorization", "Bearer tok-123"))
        .respond_with(body(&config, CONFIG, &config_digest))
        .expect(1)
        .mount(&server)
        .await;

    let resolver = fast();
    let image = format!("{}/team/app:1.0", registry(&server));
    let read = resolver
        .resolve(&image, &Platform::linux_amd64())
        .await
        .unwrap();
    assert_eq!(read.digest, manifest_digest);
    assert_eq!(read.manifest_digest, manifest_digest);
    assert_eq!(read.platform, None);
    assert_eq!(
        read.config.entrypoint,
        Some(vec!["/docker-entrypoint.sh".to_string()])
    );
    assert_eq!(
        read.config.cmd,
        Some(vec!["nginx".into(), "-g".into(), "daemon off;".into()])
    );
    assert_eq!(read.config.working_dir.as_deref(), Some("/srv"));
    assert_eq!(read.config.user.as_deref(), Some("app"));
    // The second read of the same reference is the cache's (the mocks expect one call each).
    let again = resolver
        .resolve(&image, &Platform::linux_amd64())
        .await
        .unwrap();
    assert_eq!(again, read);
    assert_eq!(resolver.config_reads(), 1);
}

#[tokio::test]
async fn a_refused_token_is_access_denied_naming_image_registry_and_fix() {
    let server = MockServer::start().await;
    let realm = format!("http://{}/token", server.address());
    Mock::given(method("GET"))
        .and(path("/v2/"))
        .respond_with(ResponseTemplate::new(401).insert_header(
            "WWW-Authenticate",
            format!("Bearer realm=\"{realm}\",service=\"r\"").as_str(),
        ))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/token"))
        .respond_with(ResponseTemplate::new(401).set_body_string("anonymous pulls are off"))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v2/private/app/manifests/1"))
        .respond_with(ResponseTemplate::new(401))
        .mount(&server)
        .await;
    let image = format!("{}/private/app:1", registry(&server));
    let err = fast()
        .resolve(&image, &Platform::linux_amd64())
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "image {image}: registry {} denied access to the repository (HTTP 401 \
             Unauthorized); this tool reads anonymously, so the repository must allow anonymous \
             pulls, or pass --offline and set the container's \"entryPoint\" (and \"command\") \
             in the task definition by hand",
            registry(&server)
        )
    );
}

#[tokio::test]
async fn an_index_gives_the_tasks_platform_or_says_it_is_missing() {
    let server = MockServer::start().await;
    let (amd, amd_digest, amd_config, amd_config_digest) = image(json!(["/amd"]), json!(null));
    let (arm, arm_digest, arm_config, arm_config_digest) = image(json!(["/arm"]), json!(null));
    let index = serde_json::to_vec(&json!({
        "schemaVersion": 2, "mediaType": INDEX,
        "manifests": [
            {"mediaType": MANIFEST, "digest": amd_digest, "size": amd.len(),
             "platform": {"os": "linux", "architecture": "amd64"}},
            {"mediaType": MANIFEST, "digest": arm_digest, "size": arm.len(),
             "platform": {"os": "linux", "architecture": "arm64", "variant": "v8"}},
        ]
    }))
    .unwrap();
    let index_digest = digest(&index);
    for (reference, bytes, media, d) in [
        ("multi", &index, INDEX, &index_digest),
        (amd_digest.as_str(), &amd, MANIFEST, &amd_digest),
        (arm_digest.as_str(), &arm, MANIFEST, &arm_digest),
    ] {
        Mock::given(method("GET"))
            .and(path(format!("/v2/app/manifests/{reference}").as_str()))
            .respond_with(body(bytes, media, d))
            .mount(&server)
            .await;
    }
    for (bytes, d) in [
        (&amd_config, &amd_config_digest),
        (&arm_config, &arm_config_digest),
    ] {
        Mock::given(method("GET"))
            .and(path(format!("/v2/app/blobs/{d}").as_str()))
            .respond_with(body(bytes, CONFIG, d))
            .mount(&server)
            .await;
    }
    // No challenge: an open registry.
    Mock::given(method("GET"))
        .and(path("/v2/"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&server)
        .await;

    let resolver = fast();
    let image = format!("{}/app:multi", registry(&server));
    let arm64 =
        Platform::of_task(&json!({"runtimePlatform": {"cpuArchitecture": "ARM64"}})).unwrap();
    let read = resolver.resolve(&image, &arm64).await.unwrap();
    assert_eq!(read.config.entrypoint, Some(vec!["/arm".to_string()]));
    assert_eq!(read.digest, index_digest, "pinning keeps the whole index");
    assert_eq!(read.manifest_digest, arm_digest);
    assert_eq!(read.info().platform.as_deref(), Some("linux/arm64"));
    let read = resolver
        .resolve(&image, &Platform::linux_amd64())
        .await
        .unwrap();
    assert_eq!(read.config.entrypoint, Some(vec!["/amd".to_string()]));

    let s390 = Platform {
        os: "linux".into(),
        architecture: "s390x".into(),
    };
    assert_eq!(
        resolver
            .resolve(&image, &s390)
            .await
            .unwrap_err()
            .to_string(),
        format!(
            "image {image}: registry {} has no linux/s390x manifest for it (the image is built \
             for linux/amd64, linux/arm64/v8); set the task's runtimePlatform (cpuArchitecture \
             X86_64 or ARM64) to a platform the image has, or use an image built for \
             linux/s390x",
            registry(&server)
        )
    );
}

#[tokio::test]
async fn a_missing_tag_is_not_found() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v2/"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v2/app/manifests/nope"))
        .respond_with(ResponseTemplate::new(404).set_body_json(json!({"errors": [
            {"code": "MANIFEST_UNKNOWN", "message": "manifest unknown", "detail": {"Tag": "nope"}}
        ]})))
        .mount(&server)
        .await;
    let image = format!("{}/app:nope", registry(&server));
    let err = fast()
        .resolve(&image, &Platform::linux_amd64())
        .await
        .unwrap_err();
    assert!(matches!(err, RegistryError::NotFound { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        format!(
            "image {image}: registry {} has no such repository or tag (ManifestUnknown: \
             manifest unknown); check the image name and tag in the task definition",
            registry(&server)
        )
    );
    assert!(err.is_bad_input());
}

#[tokio::test]
async fn throttling_is_retried_with_backoff_then_reported() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v2/"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&server)
        .await;
    let (manifest, manifest_digest, config, config_digest) = image(json!(null), json!(["/run"]));
    // Twice 429, then the manifest.
    Mock::given(method("GET"))
        .and(path("/v2/app/manifests/1"))
        .respond_with(ResponseTemplate::new(429).set_body_string("slow down"))
        .up_to_n_times(2)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v2/app/manifests/1"))
        .respond_with(body(&manifest, MANIFEST, &manifest_digest))
        .with_priority(2)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("/v2/app/blobs/{config_digest}").as_str()))
        .respond_with(body(&config, CONFIG, &config_digest))
        .mount(&server)
        .await;
    let image = format!("{}/app:1", registry(&server));
    let read = fast()
        .resolve(&image, &Platform::linux_amd64())
        .await
        .unwrap();
    assert_eq!(read.config.cmd, Some(vec!["/run".to_string()]));

    // Always throttled: three attempts, then an error that says so.
    Mock::given(method("GET"))
        .and(path("/v2/app/manifests/2"))
        .respond_with(ResponseTemplate::new(429).set_body_string("slow down"))
        .expect(3)
        .mount(&server)
        .await;
    let image = format!("{}/app:2", registry(&server));
    let err = fast()
        .resolve(&image, &Platform::linux_amd64())
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "image {image}: registry {} kept throttling the requests after 3 attempts (HTTP \
             429: slow down); try again later, or pass --offline and set the container's \
             \"entryPoint\" (and \"command\") in the task definition by hand",
            registry(&server)
        )
    );
}

#[tokio::test]
async fn an_unreachable_registry_says_so_with_the_offline_hint() {
    // A loopback port nobody listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let image = format!("127.0.0.1:{port}/app:1");
    let err = fast()
        .resolve(&image, &Platform::linux_amd64())
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, RegistryError::Unreachable { .. }), "{err:?}");
    assert!(
        text.starts_with(&format!(
            "image {image}: registry 127.0.0.1:{port} is unreachable ("
        )),
        "{text}"
    );
    assert!(
        text.ends_with(
            "check the network or the image name, or pass --offline and set the container's \
         \"entryPoint\" (and \"command\") in the task definition by hand"
        ),
        "{text}"
    );
}
