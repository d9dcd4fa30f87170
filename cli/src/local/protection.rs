//! Whether the defender protects a task definition, as `protect::embed` leaves it: the
//! `defender` installer container and app containers whose entryPoint starts with
//! `/var/lib/defender/defender run`.

use super::task::TaskDef;
use protect::embed::{DEFENDER_CONTAINER, INSTALL_ENTRYPOINT, WRAPPER_PREFIX};

/// What the defender covers in a task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Protection {
    /// The `defender` installer container is there.
    pub installer: bool,
    /// Containers that run under the defender.
    pub wrapped: Vec<String>,
    /// Other containers (excluded when embedded, log routers, or never embedded).
    pub unwrapped: Vec<String>,
}

impl Protection {
    /// Looks at `task`.
    pub fn of(task: &TaskDef) -> Protection {
        let mut p = Protection {
            installer: false,
            wrapped: Vec::new(),
            unwrapped: Vec::new(),
        };
        for c in &task.container_definitions {
            let entry = c.entry_point.as_deref().unwrap_or_default();
            if c.name == DEFENDER_CONTAINER && entry == INSTALL_ENTRYPOINT {
                p.installer = true;
            } else if entry.len() >= 2 && entry[..2] == WRAPPER_PREFIX[..2] {
                p.wrapped.push(c.name.clone());
            } else {
                p.unwrapped.push(c.name.clone());
            }
        }
        p
    }

    /// Why the task is not protected; `None` when the defender installs and wraps at least
    /// one container.
    pub fn missing(&self) -> Option<String> {
        match (self.installer, self.wrapped.is_empty()) {
            (true, false) => None,
            (false, true) => Some("no container runs under the defender".into()),
            (true, true) => Some(
                "the defender installer is there but no container runs under the defender".into(),
            ),
            (false, false) => Some(format!(
                "{} run{} under /var/lib/defender/defender but the `defender` installer \
                 container that puts it there is missing",
                self.wrapped.join(", "),
                if self.wrapped.len() == 1 { "s" } else { "" }
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn task(containers: serde_json::Value) -> TaskDef {
        TaskDef::from_json(&json!({"family": "f", "containerDefinitions": containers}).to_string())
            .unwrap()
    }

    #[test]
    fn the_transforms_output_is_protected_and_excluded_containers_are_listed() {
        let seed = serde_json::from_str::<serde_json::Value>(include_str!(
            "../../../examples/fargate-task.json"
        ))
        .unwrap();
        let mut options = protect::embed::EmbedOptions::new("https://c.example", "d:1");
        options.token_secret_arn = Some("arn:aws:ssm:us-east-1:123456789012:parameter/t".into());
        let protected = protect::embed::embed(&seed, &options).unwrap();
        let p =
            Protection::of(&TaskDef::from_json(&protected.task_definition.to_string()).unwrap());
        assert_eq!(p.missing(), None);
        assert!(p.installer);
        assert_eq!(p.wrapped, ["twistlock-fargate-task"]);
        assert!(p.unwrapped.is_empty());

        let p = Protection::of(&TaskDef::from_json(&seed.to_string()).unwrap());
        assert_eq!(
            p.missing().as_deref(),
            Some("no container runs under the defender")
        );
        assert_eq!(p.unwrapped, ["twistlock-fargate-task"]);
    }

    #[test]
    fn a_wrapper_without_installer_or_an_installer_alone_is_not_protection() {
        let wrapped = json!({"name": "app", "image": "a",
            "entryPoint": ["/var/lib/defender/defender", "run", "--policy-file", "/p", "--", "/app"]});
        let installer = json!({"name": "defender", "image": "d", "essential": false,
            "entryPoint": ["/defender", "install", "/var/lib/defender"]});
        let plain = json!({"name": "log", "image": "l", "entryPoint": ["/fluent-bit"]});
        assert_eq!(
            Protection::of(&task(json!([wrapped]))).missing().as_deref(),
            Some(
                "app runs under /var/lib/defender/defender but the `defender` installer \
                 container that puts it there is missing"
            )
        );
        assert_eq!(
            Protection::of(&task(json!([installer, plain])))
                .missing()
                .as_deref(),
            Some("the defender installer is there but no container runs under the defender")
        );
        let p = Protection::of(&task(json!([installer, wrapped, plain])));
        assert_eq!(p.missing(), None);
        assert_eq!(p.unwrapped, ["log"]);
    }
}
