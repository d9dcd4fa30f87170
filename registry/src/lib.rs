//! Reads container image configs (ENTRYPOINT, CMD, WorkingDir, User) from OCI and Docker
//! registry-v2 registries, so that the transform can wrap an image-only container with the
//! image's own entrypoint, and pin images by digest.
//!
//! - [`Resolver`]: manifest (an image index → the task's platform), then the config blob,
//!   through the `oci-client` crate: anonymous bearer-token flow, HTTPS, plain HTTP only for
//!   loopback registries, retries with backoff on throttling, a cache per digest.
//! - [`Platform`]: the task's `runtimePlatform` in OCI names (linux/amd64 by default).
//! - [`RegistryError`]: what failed, naming the image, the registry and the fix.
//!
//! Not yet: private Amazon ECR registries (GetAuthorizationToken), credentials from a task's
//! `repositoryCredentials` or the Docker credential store; such images fail with an error
//! that says so.

mod error;
mod platform;
mod resolver;

pub use error::{RegistryError, OFFLINE_HINT};
pub use platform::Platform;
pub use resolver::{
    is_loopback, is_private_ecr, parse_config, Resolved, Resolver, Retry, MAX_CONFIG_BYTES,
};
