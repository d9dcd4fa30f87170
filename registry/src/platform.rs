//! [`Platform`]: which manifest of a multi-platform image a task runs, from its
//! `runtimePlatform` (ECS names: `X86_64` / `ARM64`, `LINUX`) to OCI names (`amd64` /
//! `arm64`, `linux`).

use crate::RegistryError;
use serde_json::Value;
use std::fmt;

/// An OCI platform: `os`/`architecture`[/`variant`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Platform {
    /// `linux`.
    pub os: String,
    /// `amd64`, `arm64`.
    pub architecture: String,
}

impl Platform {
    /// linux/amd64, what Fargate runs without a `runtimePlatform`.
    pub fn linux_amd64() -> Platform {
        Platform {
            os: "linux".into(),
            architecture: "amd64".into(),
        }
    }

    /// The platform of a task definition (either input shape): its `runtimePlatform`'s
    /// `cpuArchitecture` and `operatingSystemFamily`, linux/amd64 where they are missing.
    pub fn of_task(document: &Value) -> Result<Platform, RegistryError> {
        let td = document.get("taskDefinition").unwrap_or(document);
        let runtime = td.get("runtimePlatform");
        let field = |name: &str| runtime.and_then(|r| r.get(name)).and_then(Value::as_str);
        let architecture = match field("cpuArchitecture") {
            None => "amd64",
            Some(a) if a.eq_ignore_ascii_case("X86_64") => "amd64",
            Some(a) if a.eq_ignore_ascii_case("ARM64") => "arm64",
            Some(other) => {
                return Err(RegistryError::UnknownPlatform {
                    field: "runtimePlatform.cpuArchitecture",
                    value: other.to_string(),
                    expected: "X86_64 or ARM64",
                })
            }
        };
        let os = match field("operatingSystemFamily") {
            None => "linux",
            Some(o) if o.eq_ignore_ascii_case("LINUX") => "linux",
            Some(other) => {
                return Err(RegistryError::UnknownPlatform {
                    field: "runtimePlatform.operatingSystemFamily",
                    value: other.to_string(),
                    expected: "LINUX",
                })
            }
        };
        Ok(Platform {
            os: os.into(),
            architecture: architecture.into(),
        })
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn runtime_platform_to_oci_names() {
        assert_eq!(
            Platform::of_task(&json!({})).unwrap(),
            Platform::linux_amd64()
        );
        let arm = json!({"taskDefinition": {"runtimePlatform":
            {"cpuArchitecture": "ARM64", "operatingSystemFamily": "LINUX"}}});
        assert_eq!(Platform::of_task(&arm).unwrap().to_string(), "linux/arm64");
        let bad = json!({"runtimePlatform": {"cpuArchitecture": "RISCV"}});
        assert_eq!(
            Platform::of_task(&bad).unwrap_err().to_string(),
            "runtimePlatform.cpuArchitecture: \"RISCV\" is not a platform this tool can read \
             images for; expected X86_64 or ARM64"
        );
    }
}
