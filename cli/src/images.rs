//! Reading the images a task definition needs from their registries, before the (pure)
//! transform runs, and handing the results to it through [`EmbedOptions::images`].
//!
//! Which images are read ([`needed`]): with `--pin-digests`, every container's image (but the
//! defender installer's and those already named by digest); otherwise only those of containers
//! the transform cannot wrap without it: no `entryPoint`, not excluded, not confirmed with
//! `--no-image-entrypoint`. With `--offline` nothing is read (the transform then asks for an
//! explicit `entryPoint`, as before). A FireLens log router whose image cannot be read stays
//! unwrapped with a warning, as it did before images were read; any other failure stops the
//! run with an error naming the container, the image, the registry and the fix.

use image_registry::{Platform, RegistryError, Resolver};
use protect::embed::{image::is_digest_reference, EmbedOptions, DEFENDER_CONTAINER};
use serde_json::Value;

/// A container's image could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("container \"{container}\": {error}")]
pub struct ImageError {
    /// The container.
    pub container: String,
    /// What the registry (or the reference) said.
    pub error: RegistryError,
}

impl ImageError {
    /// 2 for bad input (image name, tag, platform), 1 for the registry or the network.
    pub fn exit_code(&self) -> u8 {
        if self.error.is_bad_input() {
            2
        } else {
            1
        }
    }
}

/// A container whose image is to be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Needed {
    /// The container's name.
    pub container: String,
    /// Its image, as written.
    pub image: String,
    /// Whether the run can go on without it (a log router that may stay unwrapped).
    pub optional: bool,
}

/// The containers of `document` (either input shape) whose images are to be read.
pub fn needed(document: &Value, options: &EmbedOptions) -> Vec<Needed> {
    let td = document.get("taskDefinition").unwrap_or(document);
    let containers = td
        .get("containerDefinitions")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let mut out = Vec::new();
    for c in containers {
        let name = c.get("name").and_then(Value::as_str).unwrap_or_default();
        let Some(image) = c.get("image").and_then(Value::as_str) else {
            continue;
        };
        if name == DEFENDER_CONTAINER || image.is_empty() {
            continue;
        }
        let has_entry_point = c.get("entryPoint").is_some_and(|e| !e.is_null());
        let excluded = options.exclude_containers.iter().any(|n| n == name);
        let confirmed = options.no_image_entrypoint.iter().any(|n| n == name);
        let router = c.get("firelensConfiguration").is_some_and(|f| !f.is_null());
        let for_wrapping = !has_entry_point && !excluded && !confirmed;
        let for_pinning = options.pin_digests && !is_digest_reference(image);
        if for_wrapping || for_pinning {
            out.push(Needed {
                container: name.to_string(),
                image: image.to_string(),
                optional: router && !for_pinning,
            });
        }
    }
    out
}

/// Reads the images `document` needs into `options.images`. Returns notes for the user (what
/// was read) and warnings (log routers left unwrapped).
pub async fn read_into(
    document: &Value,
    options: &mut EmbedOptions,
    resolver: &Resolver,
) -> Result<Reading, ImageError> {
    let mut reading = Reading::default();
    let needed = needed(document, options);
    let Some(first) = needed.first() else {
        return Ok(reading);
    };
    let platform = Platform::of_task(document).map_err(|error| ImageError {
        container: first.container.clone(),
        error,
    })?;
    for need in needed {
        match resolver.resolve(&need.image, &platform).await {
            Ok(read) => {
                reading.notes.push(describe(&need.container, &read));
                options.images.insert(need.image.clone(), read.info());
            }
            Err(error) if need.optional => reading.warnings.push(format!(
                "container \"{}\" (a FireLens log router): its image could not be read: {error}",
                need.container
            )),
            Err(error) => {
                return Err(ImageError {
                    container: need.container,
                    error,
                })
            }
        }
    }
    Ok(reading)
}

/// What reading the images told the user.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reading {
    /// One line per image read.
    pub notes: Vec<String>,
    /// Log routers left unwrapped because their image could not be read.
    pub warnings: Vec<String>,
}

fn describe(container: &str, read: &image_registry::Resolved) -> String {
    let list = |l: Option<&[String]>| {
        l.map_or_else(
            || "none".to_string(),
            |l| serde_json::to_string(l).unwrap_or_default(),
        )
    };
    let platform = read
        .platform
        .as_ref()
        .map(|p| format!(" ({p} from its index)"))
        .unwrap_or_default();
    format!(
        "container \"{container}\": image {} is {}{platform}: ENTRYPOINT {}, CMD {}",
        read.image,
        read.digest,
        list(read.config.entrypoint()),
        list(read.config.cmd()),
    )
}

/// The pins as lines: `web: nginx:1.27 -> nginx@sha256:...`.
pub fn pin_lines(pins: &[protect::embed::Pin]) -> Vec<String> {
    pins.iter()
        .map(|p| format!("{}: {} -> {}", p.container, p.from, p.to))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn names(needed: &[Needed]) -> Vec<(&str, bool)> {
        needed
            .iter()
            .map(|n| (n.container.as_str(), n.optional))
            .collect()
    }

    #[test]
    fn only_what_the_transform_needs_is_read_unless_pinning() {
        let doc = json!({"taskDefinition": {"containerDefinitions": [
            {"name": "defender", "image": "d:1", "entryPoint": ["/defender", "install", "/var/lib/defender"]},
            {"name": "web", "image": "nginx:1.27"},
            {"name": "app", "image": "app:1", "entryPoint": ["/app"]},
            {"name": "confirmed", "image": "c:1", "command": ["/c"]},
            {"name": "excluded", "image": "x:1"},
            {"name": "router", "image": "fluent-bit:3", "firelensConfiguration": {"type": "fluentbit"}},
            {"name": "fixed", "image": "f@sha256:00", "entryPoint": ["/f"]},
        ]}});
        let mut o = EmbedOptions {
            no_image_entrypoint: vec!["confirmed".into()],
            exclude_containers: vec!["excluded".into()],
            ..EmbedOptions::default()
        };
        assert_eq!(names(&needed(&doc, &o)), [("web", false), ("router", true)]);
        o.pin_digests = true;
        assert_eq!(
            names(&needed(&doc, &o)),
            [
                ("web", false),
                ("app", false),
                ("confirmed", false),
                ("excluded", false),
                ("router", false)
            ]
        );
    }
}
