//! The part of an ECS task definition a local run needs, read from RegisterTaskDefinition
//! input or `aws ecs describe-task-definition` output, and checked before anything starts.

use super::error::LocalError;
use serde::Deserialize;
use std::collections::{BTreeMap, HashSet};

/// A task definition, reduced to what `local` runs.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct TaskDef {
    /// The family (names the local run's containers and volumes).
    #[serde(default)]
    pub family: String,
    /// The containers, in definition order.
    #[serde(default)]
    pub container_definitions: Vec<ContainerDef>,
    /// The task's volumes (Fargate: ephemeral bind volumes).
    #[serde(default)]
    pub volumes: Vec<Volume>,
}

/// One container definition.
#[derive(Debug, Clone, Deserialize, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct ContainerDef {
    /// Container name (unique in the task).
    pub name: String,
    /// Image reference, run as is from the local Docker Engine's images.
    pub image: String,
    /// Overrides the image's ENTRYPOINT.
    #[serde(default)]
    pub entry_point: Option<Vec<String>>,
    /// Overrides the image's CMD.
    #[serde(default)]
    pub command: Option<Vec<String>>,
    /// Stopping an essential container stops the task (default true).
    #[serde(default)]
    pub essential: Option<bool>,
    /// Plain environment variables.
    #[serde(default)]
    pub environment: Vec<NameValue>,
    /// Secrets: values come from `--secret NAME=VALUE` or the environment locally.
    #[serde(default)]
    pub secrets: Vec<Secret>,
    /// S3 environment files: not available locally.
    #[serde(default)]
    pub environment_files: Vec<serde_json::Value>,
    /// Start conditions on other containers.
    #[serde(default)]
    pub depends_on: Vec<Dependency>,
    /// Volume mounts.
    #[serde(default)]
    pub mount_points: Vec<MountPoint>,
    /// Capabilities and init process.
    #[serde(default)]
    pub linux_parameters: Option<LinuxParameters>,
    /// Seconds between SIGTERM and SIGKILL when the task stops.
    #[serde(default)]
    pub stop_timeout: Option<u32>,
    /// Docker health check (for the HEALTHY condition).
    #[serde(default)]
    pub health_check: Option<HealthCheck>,
    /// Working directory.
    #[serde(default)]
    pub working_directory: Option<String>,
    /// User (and group).
    #[serde(default)]
    pub user: Option<String>,
    /// Read-only root file system.
    #[serde(default)]
    pub readonly_root_filesystem: Option<bool>,
    /// Hard memory limit in MiB.
    #[serde(default)]
    pub memory: Option<u64>,
    /// Privileged mode (not supported on Fargate).
    #[serde(default)]
    pub privileged: Option<bool>,
    /// Port mappings (published on 127.0.0.1 when `--network` is not `none`).
    #[serde(default)]
    pub port_mappings: Vec<PortMapping>,
}

impl ContainerDef {
    /// Whether this container's exit stops the task (ECS default: true).
    pub fn is_essential(&self) -> bool {
        self.essential.unwrap_or(true)
    }
}

/// `{"name": ..., "value": ...}`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct NameValue {
    /// Variable name.
    pub name: String,
    /// Its value.
    #[serde(default)]
    pub value: String,
}

/// `{"name": ..., "valueFrom": ...}`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Secret {
    /// Variable name in the container.
    pub name: String,
    /// Secrets Manager / SSM ARN (only quoted in messages locally).
    #[serde(default)]
    pub value_from: String,
}

/// `{"containerName": ..., "condition": ...}`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Dependency {
    /// The container waited for.
    pub container_name: String,
    /// START, COMPLETE, SUCCESS or HEALTHY.
    pub condition: Condition,
}

/// A `dependsOn` condition.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "UPPERCASE")]
pub enum Condition {
    /// The dependency has started.
    Start,
    /// The dependency has exited (any code).
    Complete,
    /// The dependency has exited with code 0.
    Success,
    /// The dependency's health check passed.
    Healthy,
}

/// `{"sourceVolume": ..., "containerPath": ..., "readOnly": ...}`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct MountPoint {
    /// A task volume's name.
    pub source_volume: String,
    /// Where it appears in the container.
    pub container_path: String,
    /// Mount read-only.
    #[serde(default)]
    pub read_only: Option<bool>,
}

/// Linux parameters used locally.
#[derive(Debug, Clone, Deserialize, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct LinuxParameters {
    /// Capabilities added to / dropped from the default set.
    #[serde(default)]
    pub capabilities: Option<Capabilities>,
    /// Run an init process as PID 1.
    #[serde(default)]
    pub init_process_enabled: Option<bool>,
}

/// `{"add": [...], "drop": [...]}`.
#[derive(Debug, Clone, Deserialize, PartialEq, Default)]
pub struct Capabilities {
    /// Capabilities to add.
    #[serde(default)]
    pub add: Vec<String>,
    /// Capabilities to drop (everything is dropped locally anyway).
    #[serde(default)]
    pub drop: Vec<String>,
}

/// The container health check.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct HealthCheck {
    /// `["CMD-SHELL", "cmd"]` or `["CMD", "prog", "arg"...]`.
    pub command: Vec<String>,
    /// Seconds between checks (ECS default 30).
    #[serde(default)]
    pub interval: Option<u32>,
    /// Seconds a check may take (ECS default 5).
    #[serde(default)]
    pub timeout: Option<u32>,
    /// Failures before unhealthy (ECS default 3).
    #[serde(default)]
    pub retries: Option<u32>,
    /// Grace period in seconds.
    #[serde(default)]
    pub start_period: Option<u32>,
}

/// A port mapping.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PortMapping {
    /// The container's port.
    pub container_port: u16,
    /// The host port (defaults to the container port).
    #[serde(default)]
    pub host_port: Option<u16>,
    /// tcp or udp.
    #[serde(default)]
    pub protocol: Option<String>,
}

/// A task volume.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Volume {
    /// Its name, used by `mountPoints[].sourceVolume`.
    pub name: String,
    /// Host path volumes: not on Fargate.
    #[serde(default)]
    pub host: Option<serde_json::Value>,
    /// EFS volumes: not available locally.
    #[serde(default)]
    pub efs_volume_configuration: Option<serde_json::Value>,
}

impl TaskDef {
    /// Parses RegisterTaskDefinition input or describe-task-definition output.
    pub fn from_json(text: &str) -> Result<TaskDef, LocalError> {
        let mut value: serde_json::Value =
            serde_json::from_str(text).map_err(|e| LocalError::TaskJson {
                path: String::new(),
                message: e.to_string(),
            })?;
        if let Some(inner) = value.get_mut("taskDefinition") {
            value = inner.take();
        }
        let task: TaskDef = serde_json::from_value(value).map_err(|e| LocalError::TaskJson {
            path: String::new(),
            message: e.to_string(),
        })?;
        task.validate()?;
        Ok(task)
    }

    /// Checks what a local run relies on; errors name the field and the fix.
    pub fn validate(&self) -> Result<(), LocalError> {
        let bad = |path: String, message: String| Err(LocalError::TaskJson { path, message });
        if self.container_definitions.is_empty() {
            return bad(
                "containerDefinitions".into(),
                "is empty; a task needs at least one container".into(),
            );
        }
        let mut names = HashSet::new();
        for (i, c) in self.container_definitions.iter().enumerate() {
            let at = format!("containerDefinitions[{i}]");
            if c.name.is_empty() || !valid_name(&c.name) {
                return bad(
                    format!("{at}.name"),
                    format!("{:?}: use 1-255 letters, digits, '-' or '_'", c.name),
                );
            }
            if !names.insert(c.name.as_str()) {
                return bad(format!("{at}.name"), format!("{:?} is used twice", c.name));
            }
            if c.image.is_empty() {
                return bad(format!("{at}.image"), "is empty".into());
            }
            if c.privileged == Some(true) {
                return bad(
                    format!("{at}.privileged"),
                    "Fargate does not run privileged containers; remove it".into(),
                );
            }
            if !c.environment_files.is_empty() {
                return bad(
                    format!("{at}.environmentFiles"),
                    "S3 environment files cannot be read locally; put the variables in \
                     `environment` or pass them with --secret"
                        .into(),
                );
            }
            for (j, m) in c.mount_points.iter().enumerate() {
                if !self.volumes.iter().any(|v| v.name == m.source_volume) {
                    return bad(
                        format!("{at}.mountPoints[{j}].sourceVolume"),
                        format!("{:?} is not in the task's `volumes`", m.source_volume),
                    );
                }
            }
        }
        for (i, c) in self.container_definitions.iter().enumerate() {
            for (j, d) in c.depends_on.iter().enumerate() {
                let at = format!("containerDefinitions[{i}].dependsOn[{j}]");
                let Some(dep) = self.container(&d.container_name) else {
                    return bad(
                        format!("{at}.containerName"),
                        format!("{:?} is not a container of this task", d.container_name),
                    );
                };
                if d.condition == Condition::Healthy && dep.health_check.is_none() {
                    return bad(
                        format!("{at}.condition"),
                        format!(
                            "HEALTHY needs a healthCheck on {:?}; add one or use START",
                            dep.name
                        ),
                    );
                }
                if matches!(d.condition, Condition::Complete | Condition::Success)
                    && dep.is_essential()
                {
                    return bad(
                        format!("{at}.condition"),
                        format!(
                            "{:?} is essential, so waiting for it to exit would stop the task; \
                             mark it \"essential\": false",
                            dep.name
                        ),
                    );
                }
            }
        }
        if !self.container_definitions.iter().any(|c| c.is_essential()) {
            return bad(
                "containerDefinitions".into(),
                "no container is essential; mark at least one \"essential\": true".into(),
            );
        }
        for (i, v) in self.volumes.iter().enumerate() {
            if v.host
                .as_ref()
                .is_some_and(|h| h.get("sourcePath").is_some())
            {
                return bad(
                    format!("volumes[{i}].host.sourcePath"),
                    "host paths are not available on Fargate; remove `host`".into(),
                );
            }
            if v.efs_volume_configuration.is_some() {
                return bad(
                    format!("volumes[{i}].efsVolumeConfiguration"),
                    "EFS cannot be mounted locally; remove the volume or use a task volume".into(),
                );
            }
        }
        self.start_order().map(|_| ())
    }

    /// The container named `name`.
    pub fn container(&self, name: &str) -> Option<&ContainerDef> {
        self.container_definitions.iter().find(|c| c.name == name)
    }

    /// Container indexes in an order where every dependency comes first (definition order
    /// among equals), or an error naming a dependency cycle.
    pub fn start_order(&self) -> Result<Vec<usize>, LocalError> {
        let index: BTreeMap<&str, usize> = self
            .container_definitions
            .iter()
            .enumerate()
            .map(|(i, c)| (c.name.as_str(), i))
            .collect();
        let mut placed = vec![false; self.container_definitions.len()];
        let mut order = Vec::new();
        while order.len() < placed.len() {
            let next = (0..placed.len()).find(|&i| {
                !placed[i]
                    && self.container_definitions[i].depends_on.iter().all(|d| {
                        index
                            .get(d.container_name.as_str())
                            .is_some_and(|&j| placed[j])
                    })
            });
            match next {
                Some(i) => {
                    placed[i] = true;
                    order.push(i);
                }
                None => {
                    let stuck: Vec<&str> = (0..placed.len())
                        .filter(|&i| !placed[i])
                        .map(|i| self.container_definitions[i].name.as_str())
                        .collect();
                    return Err(LocalError::TaskJson {
                        path: "containerDefinitions[].dependsOn".into(),
                        message: format!(
                            "dependency cycle among {}; remove one of the dependsOn entries",
                            stuck.join(", ")
                        ),
                    });
                }
            }
        }
        Ok(order)
    }
}

/// ECS container names: letters, digits, hyphens and underscores, up to 255.
fn valid_name(name: &str) -> bool {
    name.len() <= 255
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task(containers: serde_json::Value) -> Result<TaskDef, LocalError> {
        TaskDef::from_json(
            &serde_json::json!({
                "family": "f",
                "containerDefinitions": containers,
                "volumes": [{"name": "v"}]
            })
            .to_string(),
        )
    }

    fn message(e: LocalError) -> String {
        e.to_string()
    }

    #[test]
    fn reads_describe_output_and_orders_by_dependencies() {
        let t = TaskDef::from_json(
            &serde_json::json!({"taskDefinition": {
            "family": "f",
            "containerDefinitions": [
                {"name": "app", "image": "a", "dependsOn": [
                    {"containerName": "side", "condition": "SUCCESS"},
                    {"containerName": "db", "condition": "START"}]},
                {"name": "db", "image": "d", "essential": false},
                {"name": "side", "image": "s", "essential": false,
                 "dependsOn": [{"containerName": "db", "condition": "START"}]}
            ]}})
            .to_string(),
        )
        .unwrap();
        assert_eq!(t.family, "f");
        assert_eq!(t.start_order().unwrap(), [1, 2, 0]);
    }

    #[test]
    fn unknown_dependency_is_named() {
        let e = task(serde_json::json!([
            {"name": "app", "image": "a", "dependsOn": [{"containerName": "x", "condition": "START"}]}
        ]))
        .unwrap_err();
        assert_eq!(
            message(e),
            "task definition: containerDefinitions[0].dependsOn[0].containerName: \"x\" is not a \
             container of this task"
        );
    }

    #[test]
    fn cycles_are_refused() {
        let e = task(serde_json::json!([
            {"name": "a", "image": "a", "dependsOn": [{"containerName": "b", "condition": "START"}]},
            {"name": "b", "image": "b", "dependsOn": [{"containerName": "a", "condition": "START"}]}
        ]))
        .unwrap_err();
        assert_eq!(
            message(e),
            "task definition: containerDefinitions[].dependsOn: dependency cycle among a, b; \
             remove one of the dependsOn entries"
        );
    }

    #[test]
    fn bad_condition_and_missing_volume_are_named() {
        let e = task(serde_json::json!([
            {"name": "a", "image": "a", "dependsOn": [{"containerName": "a", "condition": "DONE"}]}
        ]))
        .unwrap_err();
        assert!(message(e).contains("unknown variant `DONE`"));
        let e = task(serde_json::json!([
            {"name": "a", "image": "a", "mountPoints": [{"sourceVolume": "w", "containerPath": "/w"}]}
        ]))
        .unwrap_err();
        assert_eq!(
            message(e),
            "task definition: containerDefinitions[0].mountPoints[0].sourceVolume: \"w\" is not \
             in the task's `volumes`"
        );
    }

    #[test]
    fn success_on_an_essential_container_and_healthy_without_check_are_refused() {
        let e = task(serde_json::json!([
            {"name": "a", "image": "a"},
            {"name": "b", "image": "b", "dependsOn": [{"containerName": "a", "condition": "SUCCESS"}]}
        ]))
        .unwrap_err();
        assert!(message(e).contains("mark it \"essential\": false"));
        let e = task(serde_json::json!([
            {"name": "a", "image": "a"},
            {"name": "b", "image": "b", "dependsOn": [{"containerName": "a", "condition": "HEALTHY"}]}
        ]))
        .unwrap_err();
        assert!(message(e).contains("HEALTHY needs a healthCheck on \"a\""));
    }

    #[test]
    fn no_essential_container_is_refused() {
        let e =
            task(serde_json::json!([{"name": "a", "image": "a", "essential": false}])).unwrap_err();
        assert!(message(e).contains("no container is essential"));
    }
}
