//! `deploy-protected local`: run a (protected) ECS task definition on the local Docker
//! Engine the way Fargate would.
//!
//! - [`task`]: the task definition as far as a local run needs it, validated (names the bad
//!   field), and the `dependsOn` start order.
//! - [`plan`]: `docker create` arguments per container (shared network namespace,
//!   `--cap-drop ALL` + `capabilities.add`, environment, secrets by name, task volumes,
//!   entryPoint/command, stopTimeout, health check) — pure, unit-tested.
//! - [`pause`]: the network holder, a `FROM scratch` image with a tiny static pause program,
//!   built locally once; it owns the task's network namespace (awsvpc).
//! - [`docker`]: the `docker` CLI through `std::process` (never pulls).
//! - [`run`]: [`run::run_task`]: start in order honouring START / COMPLETE / SUCCESS /
//!   HEALTHY, stream logs as `[container] line`, stop the task when an essential container
//!   exits or on Ctrl-C / SIGTERM, exit with the essential container's code, remove
//!   everything it created.

pub mod docker;
pub mod error;
pub mod pause;
pub mod plan;
pub mod run;
pub mod task;

use clap::Args;
use error::LocalError;
use std::io::Read;
use std::path::PathBuf;

/// `deploy-protected local`.
#[derive(Debug, Clone, Args)]
pub struct LocalArgs {
    /// The task definition to run: RegisterTaskDefinition input (e.g. the output of
    /// `deploy-protected embed`) or `aws ecs describe-task-definition` output. `-` reads stdin.
    #[arg(long, short = 'f', value_name = "FILE")]
    pub file: PathBuf,

    /// A secret's value (repeatable): there is no Secrets Manager locally, so each
    /// `secrets[].name` comes from this flag or, failing that, the same-named environment
    /// variable (e.g. --secret DEFENDER_TOKEN=...).
    #[arg(long = "secret", value_name = "NAME=VALUE")]
    pub secrets: Vec<String>,

    /// Network of the task's shared namespace: `none` (default: loopback only, nothing
    /// leaves the task) or a Docker network such as `bridge` (then port mappings are published
    /// on 127.0.0.1).
    #[arg(long, value_name = "NETWORK", default_value = "none")]
    pub network: String,
}

/// Runs `deploy-protected local`; `Ok(code)` is the essential container's exit code.
pub fn run(args: &LocalArgs) -> Result<u8, LocalError> {
    let text = read_task(&args.file)?;
    let task = task::TaskDef::from_json(&text)?;
    let opts = run::RunOptions {
        network: args.network.clone(),
        secrets: plan::Secrets::from_flags(&args.secrets)?,
        handle_signals: true,
    };
    let docker = docker::Docker::connect()?;
    run::run_task(&docker, &task, &opts, &run::LogSink::stdio())
}

fn read_task(path: &std::path::Path) -> Result<String, LocalError> {
    let fail = |source| LocalError::ReadFile {
        path: path.display().to_string(),
        source,
    };
    if path.as_os_str() == "-" {
        let mut text = String::new();
        std::io::stdin().read_to_string(&mut text).map_err(fail)?;
        Ok(text)
    } else {
        std::fs::read_to_string(path).map_err(fail)
    }
}
