//! From a container definition to `docker create` arguments, as Fargate would run it:
//! the task's shared network namespace, `--cap-drop ALL` plus `capabilities.add`, the
//! environment (secrets by name only), the task volumes, entryPoint/command, stop timeout,
//! health check. Pure functions: unit-tested without Docker.

use super::error::LocalError;
use super::task::{ContainerDef, HealthCheck, TaskDef};
use std::collections::BTreeMap;

/// ECS's default time between SIGTERM and SIGKILL on Fargate.
pub const DEFAULT_STOP_TIMEOUT: u32 = 30;

/// The label every container and volume of one local run carries (value: [`Naming::prefix`]).
pub const LABEL: &str = "deploy-protected.local";

/// Names of the run's Docker objects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Naming {
    /// `dp-<family>-<pid>`: unique per run on one engine.
    pub prefix: String,
}

impl Naming {
    /// Names for a run of `family` by this process.
    pub fn new(family: &str, pid: u32) -> Naming {
        let family: String = family
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                    c
                } else {
                    '-'
                }
            })
            .take(60)
            .collect();
        let family = if family.is_empty() {
            "task".into()
        } else {
            family
        };
        Naming {
            prefix: format!("dp-{family}-{pid}"),
        }
    }

    /// The network holder container.
    pub fn holder(&self) -> String {
        format!("{}-pause", self.prefix)
    }

    /// A task container.
    pub fn container(&self, name: &str) -> String {
        format!("{}-{name}", self.prefix)
    }

    /// A task volume.
    pub fn volume(&self, name: &str) -> String {
        format!("{}-{name}", self.prefix)
    }

    /// `LABEL=prefix`.
    pub fn label(&self) -> String {
        format!("{LABEL}={}", self.prefix)
    }
}

/// The secret values of a run: `--secret NAME=VALUE` flags first, then the environment.
#[derive(Debug, Clone, Default)]
pub struct Secrets {
    flags: BTreeMap<String, String>,
}

impl Secrets {
    /// Parses `NAME=VALUE` flags.
    pub fn from_flags(flags: &[String]) -> Result<Secrets, LocalError> {
        let mut map = BTreeMap::new();
        for f in flags {
            match f.split_once('=') {
                Some((k, v)) if !k.is_empty() => {
                    map.insert(k.to_string(), v.to_string());
                }
                _ => return Err(LocalError::SecretFlag(f.clone())),
            }
        }
        Ok(Secrets { flags: map })
    }

    fn value(&self, name: &str) -> Option<String> {
        self.flags
            .get(name)
            .cloned()
            .or_else(|| std::env::var(name).ok())
    }
}

/// `docker create` arguments for one container, and the secret values docker reads from
/// its own environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateArgs {
    /// Everything after `docker create --pull never`.
    pub args: Vec<String>,
    /// Secret values for the `-e NAME` flags.
    pub env: Vec<(String, String)>,
}

/// Builds the `docker create` arguments of `c` in `task`.
pub fn create_args(
    c: &ContainerDef,
    naming: &Naming,
    secrets: &Secrets,
) -> Result<CreateArgs, LocalError> {
    let mut a: Vec<String> = Vec::new();
    let mut push = |items: &[&str]| a.extend(items.iter().map(|s| s.to_string()));
    push(&["--name", &naming.container(&c.name)]);
    push(&["--label", &naming.label()]);
    push(&["--network", &format!("container:{}", naming.holder())]);
    push(&["--cap-drop", "ALL"]);
    let caps = c
        .linux_parameters
        .as_ref()
        .and_then(|l| l.capabilities.as_ref());
    for cap in caps.map(|c| c.add.as_slice()).unwrap_or_default() {
        push(&["--cap-add", cap]);
    }
    for e in &c.environment {
        push(&["--env", &format!("{}={}", e.name, e.value)]);
    }
    let mut env = Vec::new();
    for s in &c.secrets {
        let value = secrets
            .value(&s.name)
            .ok_or_else(|| LocalError::MissingSecret {
                container: c.name.clone(),
                name: s.name.clone(),
                value_from: s.value_from.clone(),
            })?;
        push(&["--env", &s.name]);
        env.push((s.name.clone(), value));
    }
    for m in &c.mount_points {
        let mut spec = format!(
            "type=volume,src={},dst={}",
            naming.volume(&m.source_volume),
            m.container_path
        );
        if m.read_only == Some(true) {
            spec.push_str(",readonly");
        }
        push(&["--mount", &spec]);
    }
    let stop = c.stop_timeout.unwrap_or(DEFAULT_STOP_TIMEOUT).to_string();
    push(&["--stop-timeout", &stop]);
    if let Some(h) = &c.health_check {
        push(&["--health-cmd", &health_command(h, &c.name)?]);
        push(&[
            "--health-interval",
            &format!("{}s", h.interval.unwrap_or(30)),
        ]);
        push(&["--health-timeout", &format!("{}s", h.timeout.unwrap_or(5))]);
        push(&["--health-retries", &h.retries.unwrap_or(3).to_string()]);
        push(&[
            "--health-start-period",
            &format!("{}s", h.start_period.unwrap_or(0)),
        ]);
    }
    if let Some(w) = &c.working_directory {
        push(&["--workdir", w]);
    }
    if let Some(u) = &c.user {
        push(&["--user", u]);
    }
    if c.readonly_root_filesystem == Some(true) {
        push(&["--read-only"]);
    }
    if let Some(m) = c.memory {
        push(&["--memory", &format!("{m}m")]);
    }
    if c.linux_parameters
        .as_ref()
        .and_then(|l| l.init_process_enabled)
        == Some(true)
    {
        push(&["--init"]);
    }
    let (entry, rest) = match c.entry_point.as_deref() {
        Some([first, rest @ ..]) => (Some(first.as_str()), rest),
        Some([]) => (Some(""), &[][..]),
        None => (None, &[][..]),
    };
    if let Some(e) = entry {
        push(&["--entrypoint", e]);
    }
    a.push(c.image.clone());
    a.extend(rest.iter().cloned());
    a.extend(c.command.iter().flatten().cloned());
    Ok(CreateArgs { args: a, env })
}

/// The holder's `docker run` arguments: `--network` (default `none`: loopback only), and
/// on another network the task's port mappings published on 127.0.0.1.
pub fn holder_args(task: &TaskDef, naming: &Naming, network: &str, image: &str) -> Vec<String> {
    let mut a: Vec<String> = ["--detach", "--name"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    a.push(naming.holder());
    a.extend(["--label".to_string(), naming.label()]);
    a.extend(["--network".to_string(), network.to_string()]);
    a.extend(["--cap-drop".to_string(), "ALL".to_string()]);
    if network != "none" {
        for p in task
            .container_definitions
            .iter()
            .flat_map(|c| &c.port_mappings)
        {
            let proto = p.protocol.as_deref().unwrap_or("tcp");
            a.push("--publish".into());
            a.push(format!(
                "127.0.0.1:{}:{}/{proto}",
                p.host_port.unwrap_or(p.container_port),
                p.container_port
            ));
        }
    }
    a.push(image.to_string());
    a
}

/// Docker's `--health-cmd` is a shell command: CMD-SHELL as is, CMD quoted word by word.
fn health_command(h: &HealthCheck, container: &str) -> Result<String, LocalError> {
    match h.command.split_first() {
        Some((kind, rest)) if kind == "CMD-SHELL" && !rest.is_empty() => Ok(rest.join(" ")),
        Some((kind, rest)) if kind == "CMD" && !rest.is_empty() => Ok(rest
            .iter()
            .map(|w| format!("'{}'", w.replace('\'', r"'\''")))
            .collect::<Vec<_>>()
            .join(" ")),
        _ => Err(LocalError::TaskJson {
            path: format!("containerDefinitions[name={container}].healthCheck.command"),
            message: "expected [\"CMD-SHELL\", \"command\"] or [\"CMD\", \"program\", ...]".into(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn protected() -> TaskDef {
        TaskDef::from_json(
            &serde_json::json!({
              "family": "twistlock-fargate-task",
              "containerDefinitions": [
                {"name": "defender", "image": "d:1", "essential": false,
                 "entryPoint": ["/defender", "install", "/var/lib/defender"],
                 "mountPoints": [{"sourceVolume": "defender", "containerPath": "/var/lib/defender"}]},
                {"name": "app", "image": "app:1",
                 "entryPoint": ["/var/lib/defender/defender", "run", "--", "entry.sh"],
                 "command": ["x"],
                 "environment": [{"name": "A", "value": "b c"}],
                 "secrets": [{"name": "DEFENDER_TOKEN", "valueFrom": "arn:aws:secretsmanager:r:1:secret:t"}],
                 "mountPoints": [{"sourceVolume": "defender", "containerPath": "/var/lib/defender", "readOnly": true}],
                 "dependsOn": [{"containerName": "defender", "condition": "SUCCESS"}],
                 "linuxParameters": {"capabilities": {"add": ["SYS_PTRACE"]}},
                 "stopTimeout": 5,
                 "healthCheck": {"command": ["CMD", "wget", "-q", "it's"], "interval": 2}}
              ],
              "volumes": [{"name": "defender"}]
            })
            .to_string(),
        )
        .unwrap()
    }

    #[test]
    fn the_wrapped_container_runs_like_on_fargate() {
        let task = protected();
        let naming = Naming::new(&task.family, 42);
        let secrets = Secrets::from_flags(&["DEFENDER_TOKEN=s3cret".into()]).unwrap();
        let c = create_args(&task.container_definitions[1], &naming, &secrets).unwrap();
        let expected: Vec<&str> = vec![
            "--name",
            "dp-twistlock-fargate-task-42-app",
            "--label",
            "deploy-protected.local=dp-twistlock-fargate-task-42",
            "--network",
            "container:dp-twistlock-fargate-task-42-pause",
            "--cap-drop",
            "ALL",
            "--cap-add",
            "SYS_PTRACE",
            "--env",
            "A=b c",
            "--env",
            "DEFENDER_TOKEN",
            "--mount",
            "type=volume,src=dp-twistlock-fargate-task-42-defender,dst=/var/lib/defender,readonly",
            "--stop-timeout",
            "5",
            "--health-cmd",
            "'wget' '-q' 'it'\\''s'",
            "--health-interval",
            "2s",
            "--health-timeout",
            "5s",
            "--health-retries",
            "3",
            "--health-start-period",
            "0s",
            "--entrypoint",
            "/var/lib/defender/defender",
            "app:1",
            "run",
            "--",
            "entry.sh",
            "x",
        ];
        assert_eq!(c.args, expected);
        assert_eq!(
            c.env,
            [("DEFENDER_TOKEN".to_string(), "s3cret".to_string())]
        );
        assert!(
            !c.args.iter().any(|a| a.contains("s3cret")),
            "secret on the command line"
        );
    }

    #[test]
    fn a_missing_secret_says_how_to_pass_it() {
        let task = protected();
        let naming = Naming::new(&task.family, 1);
        let e = create_args(
            &task.container_definitions[1],
            &naming,
            &Secrets::from_flags(&["OTHER_UNSET_NAME_FOR_TEST=1".into()]).unwrap(),
        );
        // DEFENDER_TOKEN may be set in a developer's environment; only check when it is not.
        if std::env::var_os("DEFENDER_TOKEN").is_none() {
            assert_eq!(
                e.unwrap_err().to_string(),
                "container app: secret DEFENDER_TOKEN (valueFrom \
                 \"arn:aws:secretsmanager:r:1:secret:t\") has no value locally (there is no \
                 Secrets Manager here); pass --secret DEFENDER_TOKEN=VALUE or set DEFENDER_TOKEN \
                 in the environment"
            );
        }
        assert_eq!(
            Secrets::from_flags(&["novalue".into()])
                .unwrap_err()
                .to_string(),
            "--secret \"novalue\": expected NAME=VALUE"
        );
    }

    #[test]
    fn holder_is_isolated_unless_a_network_is_asked_for() {
        let mut task = protected();
        task.container_definitions[1].port_mappings = vec![super::super::task::PortMapping {
            container_port: 80,
            host_port: Some(8080),
            protocol: None,
        }];
        let naming = Naming::new("f/x", 7);
        let none = holder_args(&task, &naming, "none", "p:1");
        assert!(!none.iter().any(|a| a == "--publish"));
        assert!(none.windows(2).any(|w| w == ["--network", "none"]));
        let bridge = holder_args(&task, &naming, "bridge", "p:1");
        assert!(bridge
            .windows(2)
            .any(|w| w == ["--publish", "127.0.0.1:8080:80/tcp"]));
        assert_eq!(naming.holder(), "dp-f-x-7-pause");
    }
}
