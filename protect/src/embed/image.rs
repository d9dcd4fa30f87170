//! What the transform knows about a container's image when the caller has read it from its
//! registry ([`ImageInfo`]: the digest and the config's ENTRYPOINT, CMD, WorkingDir, User), and
//! digest pinning ([`pinned_reference`], [`Pin`]). The transform never reads a registry: the
//! caller (e.g. `deploy-protected`) resolves the images and hands the results in through
//! [`super::EmbedOptions::images`].
//!
//! Docker's rules, which the transform applies to a container without `entryPoint`:
//! - the task's `entryPoint` replaces the image's ENTRYPOINT and resets its CMD;
//! - the task's `command` replaces the image's CMD;
//! - so a container with neither runs the image's ENTRYPOINT followed by its CMD, and the
//!   transform (which must set `entryPoint`) writes the image's ENTRYPOINT after the wrapper
//!   and copies the image's CMD into `command`.

use serde::{Deserialize, Serialize};

/// The parts of an image's config (`config` in an OCI or Docker image configuration) that
/// decide what a container runs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageConfig {
    /// `Entrypoint` (`None` when the image has none; an empty list counts as none).
    pub entrypoint: Option<Vec<String>>,
    /// `Cmd` (`None` when the image has none; an empty list counts as none).
    pub cmd: Option<Vec<String>>,
    /// `WorkingDir` (kept by ECS whatever the task overrides; informational).
    pub working_dir: Option<String>,
    /// `User` (kept by ECS unless the task sets `user`; informational).
    pub user: Option<String>,
}

impl ImageConfig {
    /// The image's ENTRYPOINT, if it has a non-empty one.
    pub fn entrypoint(&self) -> Option<&[String]> {
        self.entrypoint.as_deref().filter(|e| !e.is_empty())
    }

    /// The image's CMD, if it has a non-empty one.
    pub fn cmd(&self) -> Option<&[String]> {
        self.cmd.as_deref().filter(|c| !c.is_empty())
    }
}

/// An image as read from its registry.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageInfo {
    /// The digest the reference resolved to (`sha256:...`): the manifest's, or the image
    /// index's for a multi-platform image. `--pin-digests` references the image by it.
    pub digest: String,
    /// The platform whose manifest was read from an image index (`linux/arm64`), if any.
    pub platform: Option<String>,
    /// The config of the manifest that was read.
    pub config: ImageConfig,
}

/// One image reference replaced by its digest (`--pin-digests`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Pin {
    /// The container whose `image` changed.
    pub container: String,
    /// The reference as written (`nginx:1.27`).
    pub from: String,
    /// The reference by digest (`nginx@sha256:...`).
    pub to: String,
}

/// Whether a reference already names a digest (`REPOSITORY@sha256:...`).
pub fn is_digest_reference(image: &str) -> bool {
    image.contains('@')
}

/// `image` referenced by `digest`, spelled as the user spelled the repository: the tag (and any
/// digest) is replaced, `nginx:1.27` → `nginx@sha256:...`, `localhost:5000/app` →
/// `localhost:5000/app@sha256:...`.
pub fn pinned_reference(image: &str, digest: &str) -> String {
    let name = image.split('@').next().unwrap_or(image);
    let repository = match name.rsplit_once(':') {
        // A colon after the last slash separates the tag; one before it is a registry port.
        Some((repository, tag)) if !tag.contains('/') => repository,
        _ => name,
    };
    format!("{repository}@{digest}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pinning_keeps_the_repository_as_written() {
        let d = "sha256:abc";
        assert_eq!(pinned_reference("nginx", d), "nginx@sha256:abc");
        assert_eq!(pinned_reference("nginx:1.27", d), "nginx@sha256:abc");
        assert_eq!(
            pinned_reference("localhost:5000/app", d),
            "localhost:5000/app@sha256:abc"
        );
        assert_eq!(
            pinned_reference("127.0.0.1:5000/team/app:v1", d),
            "127.0.0.1:5000/team/app@sha256:abc"
        );
        assert_eq!(
            pinned_reference("app:v1@sha256:old", d),
            "app@sha256:abc",
            "an old digest is replaced"
        );
        assert!(is_digest_reference("app@sha256:abc"));
        assert!(!is_digest_reference("localhost:5000/app:v1"));
    }

    #[test]
    fn empty_lists_count_as_none() {
        let config = ImageConfig {
            entrypoint: Some(vec![]),
            cmd: Some(vec!["nginx".into()]),
            ..ImageConfig::default()
        };
        assert_eq!(config.entrypoint(), None);
        assert_eq!(config.cmd(), Some(&["nginx".to_string()][..]));
    }
}
