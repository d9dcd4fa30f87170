//! [`Resolver`]: reads an image's manifest (choosing the task's platform from an image index)
//! and its config blob through `oci-client`, anonymously (the registry's bearer-token flow:
//! `401` + `WWW-Authenticate: Bearer realm=...` → token → retry), over HTTPS, or plain HTTP
//! for a loopback registry as Docker does. Throttling (429, 503) and passing server errors are
//! retried with backoff. Results are cached for the resolver's life: per reference and
//! platform, and each config per manifest digest.

use crate::error::RegistryError;
use crate::platform::Platform;
use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::errors::{OciDistributionError, OciErrorCode};
use oci_client::manifest::{ImageIndexEntry, OciImageManifest, OciManifest};
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference};
use protect::embed::{ImageConfig, ImageInfo};
use serde_json::Value;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Duration;

/// The largest image config read (real ones are a few KiB; history can make them larger).
pub const MAX_CONFIG_BYTES: i64 = 4 * 1024 * 1024;

/// One image, as read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    /// The reference as given (`nginx:1.27`).
    pub image: String,
    /// The registry it was read from (`docker.io`, `127.0.0.1:5000`).
    pub registry: String,
    /// The digest the reference resolved to: the image index's for a multi-platform image,
    /// else the manifest's. Pinning uses it.
    pub digest: String,
    /// The digest of the platform's manifest whose config was read.
    pub manifest_digest: String,
    /// The platform chosen from an image index (`None` for a single-platform manifest).
    pub platform: Option<Platform>,
    /// ENTRYPOINT, CMD, WorkingDir, User.
    pub config: ImageConfig,
}

impl Resolved {
    /// What the transform takes ([`protect::embed::EmbedOptions::images`]).
    pub fn info(&self) -> ImageInfo {
        ImageInfo {
            digest: self.digest.clone(),
            platform: self.platform.as_ref().map(Platform::to_string),
            config: self.config.clone(),
        }
    }
}

/// How often and how patiently a throttled or failing request is retried.
#[derive(Debug, Clone, Copy)]
pub struct Retry {
    /// Attempts in all (1 = no retry).
    pub attempts: u32,
    /// The first pause; each next one doubles.
    pub first_delay: Duration,
}

impl Default for Retry {
    fn default() -> Self {
        Retry {
            attempts: 4,
            first_delay: Duration::from_millis(500),
        }
    }
}

/// Reads image configs from registries; one per run (it caches what it read).
pub struct Resolver {
    retry: Retry,
    clients: Mutex<HashMap<String, Client>>,
    resolved: Mutex<HashMap<(String, Platform), Resolved>>,
    configs: Mutex<HashMap<String, ImageConfig>>,
    config_reads: Mutex<usize>,
}

impl Default for Resolver {
    fn default() -> Self {
        Resolver::new(Retry::default())
    }
}

impl Resolver {
    /// A resolver with an empty cache.
    pub fn new(retry: Retry) -> Resolver {
        Resolver {
            retry,
            clients: Mutex::new(HashMap::new()),
            resolved: Mutex::new(HashMap::new()),
            configs: Mutex::new(HashMap::new()),
            config_reads: Mutex::new(0),
        }
    }

    /// How many config blobs were downloaded (the rest came from the cache).
    pub fn config_reads(&self) -> usize {
        self.config_reads.lock().map(|n| *n).unwrap_or_default()
    }

    /// Reads `image`'s config for `platform` (used when the reference is an image index).
    pub async fn resolve(
        &self,
        image: &str,
        platform: &Platform,
    ) -> Result<Resolved, RegistryError> {
        let key = (image.to_string(), platform.clone());
        if let Some(hit) = self.resolved.lock().ok().and_then(|m| m.get(&key).cloned()) {
            return Ok(hit);
        }
        let reference: Reference =
            image.parse().map_err(
                |e: oci_client::ParseError| RegistryError::InvalidReference {
                    image: image.to_string(),
                    reason: e.to_string(),
                },
            )?;
        let registry = reference.registry().to_string();
        if is_private_ecr(&registry) {
            return Err(RegistryError::PrivateEcr {
                image: image.to_string(),
                registry,
            });
        }
        let ctx = Ctx {
            image,
            registry: &registry,
        };
        let client = self.client(&registry)?;
        let (manifest, digest) = self
            .retrying(&ctx, || {
                client.pull_manifest(&reference, &RegistryAuth::Anonymous)
            })
            .await?;
        let (manifest, manifest_digest, chosen) = match manifest {
            OciManifest::Image(m) => (m, digest.clone(), None),
            OciManifest::ImageIndex(index) => {
                let entry = choose(&index.manifests, platform).ok_or_else(|| {
                    RegistryError::PlatformMissing {
                        image: image.to_string(),
                        registry: registry.clone(),
                        wanted: platform.to_string(),
                        available: platforms(&index.manifests),
                    }
                })?;
                let by_digest = reference.clone_with_digest(entry.digest.clone());
                let (inner, inner_digest) = self
                    .retrying(&ctx, || {
                        client.pull_manifest(&by_digest, &RegistryAuth::Anonymous)
                    })
                    .await?;
                let OciManifest::Image(m) = inner else {
                    return Err(ctx.unreadable(
                        "a nested image index",
                        "an index entry points to another index".into(),
                    ));
                };
                (m, inner_digest, Some(platform.clone()))
            }
        };
        let config = self
            .config(&ctx, &client, &reference, &manifest, &manifest_digest)
            .await?;
        let resolved = Resolved {
            image: image.to_string(),
            registry,
            digest,
            manifest_digest,
            platform: chosen,
            config,
        };
        if let Ok(mut m) = self.resolved.lock() {
            m.insert(key, resolved.clone());
        }
        Ok(resolved)
    }

    /// The config of a manifest, from the cache or the registry.
    async fn config(
        &self,
        ctx: &Ctx<'_>,
        client: &Client,
        reference: &Reference,
        manifest: &OciImageManifest,
        manifest_digest: &str,
    ) -> Result<ImageConfig, RegistryError> {
        if let Some(hit) = self
            .configs
            .lock()
            .ok()
            .and_then(|m| m.get(manifest_digest).cloned())
        {
            return Ok(hit);
        }
        if manifest.config.size > MAX_CONFIG_BYTES {
            return Err(ctx.unreadable(
                "an image config",
                format!(
                    "{} bytes, more than the {MAX_CONFIG_BYTES} this tool reads",
                    manifest.config.size
                ),
            ));
        }
        let blob = self
            .retrying(ctx, || async {
                let mut out = Vec::new();
                client
                    .pull_blob(reference, &manifest.config, &mut out)
                    .await
                    .map(|()| out)
            })
            .await?;
        if let Ok(mut n) = self.config_reads.lock() {
            *n += 1;
        }
        let config = parse_config(&blob).map_err(|e| ctx.unreadable("an image config", e))?;
        if let Ok(mut m) = self.configs.lock() {
            m.insert(manifest_digest.to_string(), config.clone());
        }
        Ok(config)
    }

    /// The client for `registry`: plain HTTP for a loopback registry, HTTPS otherwise.
    fn client(&self, registry: &str) -> Result<Client, RegistryError> {
        let mut clients = self
            .clients
            .lock()
            .map_err(|_| RegistryError::Unreachable {
                image: String::new(),
                registry: registry.to_string(),
                reason: "internal lock poisoned".into(),
            })?;
        let client = clients.entry(registry.to_string()).or_insert_with(|| {
            Client::new(ClientConfig {
                protocol: if is_loopback(registry) {
                    ClientProtocol::Http
                } else {
                    ClientProtocol::Https
                },
                platform_resolver: None,
                connect_timeout: Some(Duration::from_secs(10)),
                read_timeout: Some(Duration::from_secs(30)),
                user_agent: concat!("deploy-protected/", env!("CARGO_PKG_VERSION")),
                ..ClientConfig::default()
            })
        });
        Ok(client.clone())
    }

    /// Runs `op`, retrying throttling and passing server errors with doubling pauses.
    async fn retrying<T, F, Fut>(&self, ctx: &Ctx<'_>, op: F) -> Result<T, RegistryError>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Result<T, OciDistributionError>>,
    {
        let mut delay = self.retry.first_delay;
        let mut attempt = 1;
        loop {
            match op().await {
                Ok(value) => return Ok(value),
                Err(e) => match ctx.classify(e) {
                    Failure::Retry { .. } if attempt < self.retry.attempts => {
                        tokio::time::sleep(delay).await;
                        delay *= 2;
                        attempt += 1;
                    }
                    Failure::Retry { throttled, reason } => {
                        return Err(if throttled {
                            RegistryError::Throttled {
                                image: ctx.image.to_string(),
                                registry: ctx.registry.to_string(),
                                attempts: attempt,
                                reason,
                            }
                        } else {
                            RegistryError::Unreachable {
                                image: ctx.image.to_string(),
                                registry: ctx.registry.to_string(),
                                reason: format!("{reason}, after {attempt} attempts"),
                            }
                        })
                    }
                    Failure::Fatal(e) => return Err(e),
                },
            }
        }
    }
}

/// The image and registry an error is about.
struct Ctx<'a> {
    image: &'a str,
    registry: &'a str,
}

enum Failure {
    Retry { throttled: bool, reason: String },
    Fatal(RegistryError),
}

impl Ctx<'_> {
    fn unreadable(&self, what: &'static str, reason: String) -> RegistryError {
        RegistryError::Unreadable {
            image: self.image.to_string(),
            registry: self.registry.to_string(),
            what,
            reason,
        }
    }

    fn classify(&self, error: OciDistributionError) -> Failure {
        let image = self.image.to_string();
        let registry = self.registry.to_string();
        let denied = |reason: String| {
            Failure::Fatal(RegistryError::Denied {
                image: image.clone(),
                registry: registry.clone(),
                reason,
            })
        };
        let not_found = |reason: String| {
            Failure::Fatal(RegistryError::NotFound {
                image: image.clone(),
                registry: registry.clone(),
                reason,
            })
        };
        match error {
            OciDistributionError::RequestError(e) => Failure::Fatal(RegistryError::Unreachable {
                image: image.clone(),
                registry: registry.clone(),
                reason: chain(&e),
            }),
            OciDistributionError::UnauthorizedError { .. } => {
                denied("HTTP 401 Unauthorized".into())
            }
            OciDistributionError::AuthenticationFailure(reason) => {
                denied(format!("the token request failed: {}", reason.trim()))
            }
            OciDistributionError::RegistryError { envelope, .. } => {
                let codes: Vec<&OciErrorCode> = envelope.errors.iter().map(|e| &e.code).collect();
                let text = envelope
                    .errors
                    .iter()
                    .map(|e| format!("{:?}: {}", e.code, e.message))
                    .collect::<Vec<_>>()
                    .join("; ");
                if codes.iter().any(|c| **c == OciErrorCode::Toomanyrequests) {
                    Failure::Retry {
                        throttled: true,
                        reason: text,
                    }
                } else if codes
                    .iter()
                    .any(|c| matches!(c, OciErrorCode::Unauthorized | OciErrorCode::Denied))
                {
                    denied(text)
                } else if codes.iter().any(|c| {
                    matches!(
                        c,
                        OciErrorCode::ManifestUnknown
                            | OciErrorCode::NameUnknown
                            | OciErrorCode::NotFound
                            | OciErrorCode::BlobUnknown
                    )
                }) {
                    not_found(text)
                } else {
                    Failure::Fatal(self.unreadable("an error", text))
                }
            }
            OciDistributionError::ServerError { code, message, .. } => {
                let reason = format!("HTTP {code}: {}", message.trim());
                match code {
                    401 | 403 => denied(reason),
                    404 => not_found(reason),
                    429 | 503 => Failure::Retry {
                        throttled: true,
                        reason,
                    },
                    500 | 502 | 504 => Failure::Retry {
                        throttled: false,
                        reason,
                    },
                    _ => Failure::Fatal(self.unreadable("a response", reason)),
                }
            }
            other => Failure::Fatal(self.unreadable("a manifest or config", other.to_string())),
        }
    }
}

/// An error and its causes on one line (reqwest hides the useful part in the sources).
fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(e) = source {
        text.push_str(": ");
        text.push_str(&e.to_string());
        source = e.source();
    }
    text
}

/// The first index entry for `platform`.
fn choose<'a>(entries: &'a [ImageIndexEntry], platform: &Platform) -> Option<&'a ImageIndexEntry> {
    entries.iter().find(|e| {
        e.platform.as_ref().is_some_and(|p| {
            p.os.to_string() == platform.os && p.architecture.to_string() == platform.architecture
        })
    })
}

/// The platforms of an index, for an error (`linux/amd64, linux/arm64/v8`).
fn platforms(entries: &[ImageIndexEntry]) -> String {
    let list: Vec<String> = entries
        .iter()
        .filter_map(|e| e.platform.as_ref())
        .map(|p| match &p.variant {
            Some(v) => format!("{}/{}/{v}", p.os, p.architecture),
            None => format!("{}/{}", p.os, p.architecture),
        })
        .collect();
    if list.is_empty() {
        "no platform named in its index".into()
    } else {
        list.join(", ")
    }
}

/// `Entrypoint`, `Cmd`, `WorkingDir`, `User` from an OCI or Docker image config blob.
pub fn parse_config(blob: &[u8]) -> Result<ImageConfig, String> {
    let doc: Value = serde_json::from_slice(blob).map_err(|e| format!("not JSON: {e}"))?;
    let config = match doc.get("config") {
        None | Some(Value::Null) => return Ok(ImageConfig::default()),
        Some(Value::Object(c)) => c,
        Some(_) => return Err("\"config\" is not an object".into()),
    };
    let list = |name: &str| -> Result<Option<Vec<String>>, String> {
        match config.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Array(items)) => items
                .iter()
                .map(|i| {
                    i.as_str()
                        .map(String::from)
                        .ok_or_else(|| format!("config.{name} holds a non-string"))
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Some),
            Some(_) => Err(format!("config.{name} is not a list of strings")),
        }
    };
    let text = |name: &str| {
        config
            .get(name)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(String::from)
    };
    Ok(ImageConfig {
        entrypoint: list("Entrypoint")?,
        cmd: list("Cmd")?,
        working_dir: text("WorkingDir"),
        user: text("User"),
    })
}

/// `localhost`, `127.x.y.z` or `[::1]`, with or without a port: Docker talks plain HTTP to
/// these.
pub fn is_loopback(registry: &str) -> bool {
    let host = match registry.strip_prefix('[') {
        Some(rest) => rest.split(']').next().unwrap_or_default(),
        None => registry.split(':').next().unwrap_or_default(),
    };
    host.eq_ignore_ascii_case("localhost")
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// `ACCOUNT.dkr.ecr.REGION.amazonaws.com[.cn]`.
pub fn is_private_ecr(registry: &str) -> bool {
    let host = registry.split(':').next().unwrap_or_default();
    let labels: Vec<&str> = host.split('.').collect();
    labels.len() >= 6
        && labels[1] == "dkr"
        && labels[2] == "ecr"
        && (host.ends_with(".amazonaws.com") || host.ends_with(".amazonaws.com.cn"))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn loopback_registries_only_get_plain_http() {
        for yes in [
            "localhost:5000",
            "127.0.0.1:5000",
            "127.9.9.9",
            "[::1]:5000",
            "LOCALHOST",
        ] {
            assert!(is_loopback(yes), "{yes}");
        }
        for no in [
            "docker.io",
            "10.0.0.1:5000",
            "registry.example:5000",
            "[2001:db8::1]:5000",
        ] {
            assert!(!is_loopback(no), "{no}");
        }
    }

    #[test]
    fn private_ecr_hosts() {
        assert!(is_private_ecr(
            "123456789012.dkr.ecr.us-east-1.amazonaws.com"
        ));
        assert!(is_private_ecr(
            "123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn"
        ));
        assert!(!is_private_ecr("public.ecr.aws"));
        assert!(!is_private_ecr("docker.io"));
    }

    #[test]
    fn configs_of_both_formats() {
        let docker = br#"{"architecture":"amd64","config":{"Entrypoint":["/docker-entrypoint.sh"],
            "Cmd":["nginx","-g","daemon off;"],"WorkingDir":"","User":"101"}}"#;
        assert_eq!(
            parse_config(docker).unwrap(),
            ImageConfig {
                entrypoint: Some(vec!["/docker-entrypoint.sh".into()]),
                cmd: Some(vec!["nginx".into(), "-g".into(), "daemon off;".into()]),
                working_dir: None,
                user: Some("101".into()),
            }
        );
        let none = br#"{"architecture":"amd64","config":{"Entrypoint":null,"Cmd":null}}"#;
        assert_eq!(parse_config(none).unwrap(), ImageConfig::default());
        assert_eq!(parse_config(b"{}").unwrap(), ImageConfig::default());
        assert_eq!(
            parse_config(br#"{"config":{"Cmd":"nginx"}}"#).unwrap_err(),
            "config.Cmd is not a list of strings"
        );
    }
}
