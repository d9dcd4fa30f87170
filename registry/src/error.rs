//! [`RegistryError`]: why an image's config could not be read, naming the image, the registry
//! and the fix. The caller adds the container.

/// The hint every error that stops the reading ends with: how to do without it.
pub const OFFLINE_HINT: &str = "or pass --offline and set the container's \"entryPoint\" (and \
     \"command\") in the task definition by hand";

/// Why an image's config could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegistryError {
    /// Not an image reference.
    #[error("image {image:?} is not an image reference ({reason}); use [REGISTRY/]REPOSITORY[:TAG][@DIGEST]")]
    InvalidReference { image: String, reason: String },

    /// The task's `runtimePlatform` names a platform the tool cannot match.
    #[error(
        "{field}: {value:?} is not a platform this tool can read images for; expected {expected}"
    )]
    UnknownPlatform {
        field: &'static str,
        value: String,
        expected: &'static str,
    },

    /// Private ECR repositories need the ECR credential, not read yet.
    #[error(
        "image {image}: registry {registry} is a private Amazon ECR registry, whose images this \
         version cannot read yet (GetAuthorizationToken is not implemented); {OFFLINE_HINT}"
    )]
    PrivateEcr { image: String, registry: String },

    /// No connection to the registry (DNS, refused, TLS, timeout).
    #[error(
        "image {image}: registry {registry} is unreachable ({reason}); check the network or the \
         image name, {OFFLINE_HINT}"
    )]
    Unreachable {
        image: String,
        registry: String,
        reason: String,
    },

    /// The registry refused access (401/403 after the token flow).
    #[error(
        "image {image}: registry {registry} denied access to the repository ({reason}); this \
         tool reads anonymously, so the repository must allow anonymous pulls, {OFFLINE_HINT}"
    )]
    Denied {
        image: String,
        registry: String,
        reason: String,
    },

    /// The repository or tag does not exist.
    #[error(
        "image {image}: registry {registry} has no such repository or tag ({reason}); check the \
         image name and tag in the task definition"
    )]
    NotFound {
        image: String,
        registry: String,
        reason: String,
    },

    /// An image index without the task's platform.
    #[error(
        "image {image}: registry {registry} has no {wanted} manifest for it (the image is built \
         for {available}); set the task's runtimePlatform (cpuArchitecture X86_64 or ARM64) to \
         a platform the image has, or use an image built for {wanted}"
    )]
    PlatformMissing {
        image: String,
        registry: String,
        wanted: String,
        available: String,
    },

    /// Throttled (429 or 503) after the retries.
    #[error(
        "image {image}: registry {registry} kept throttling the requests after {attempts} \
         attempts ({reason}); try again later, {OFFLINE_HINT}"
    )]
    Throttled {
        image: String,
        registry: String,
        attempts: u32,
        reason: String,
    },

    /// A manifest or config the tool cannot use (bad JSON, unknown media type, too large).
    #[error("image {image}: registry {registry} returned {what} this tool cannot read ({reason}); {OFFLINE_HINT}")]
    Unreadable {
        image: String,
        registry: String,
        what: &'static str,
        reason: String,
    },
}

impl RegistryError {
    /// Whether the error is about the user's input (image name, platform) rather than the
    /// registry or the network.
    pub fn is_bad_input(&self) -> bool {
        matches!(
            self,
            RegistryError::InvalidReference { .. }
                | RegistryError::UnknownPlatform { .. }
                | RegistryError::NotFound { .. }
                | RegistryError::PlatformMissing { .. }
        )
    }
}
