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
//! - [`family`]: `--family`: the revision read from ECS (DescribeTaskDefinition) with the
//!   deploy mode's AWS settings.
//! - [`protection`]: whether the defender protects the task (an unprotected one runs after a
//!   loud warning, or is refused with `--require-protected`).
//!
//! Exit codes: the essential container's code; 130 / 143 when Ctrl-C / SIGTERM stopped the
//! task; 2 for bad input (task definition, flags, unknown family or revision, no AWS region or
//! credentials); 1 for runtime failures (Docker, AWS access denied or unavailable).

pub mod docker;
pub mod error;
pub mod family;
pub mod pause;
pub mod plan;
pub mod protection;
pub mod run;
pub mod task;

use clap::Args;
use error::LocalError;
use std::io::Read;
use std::path::PathBuf;

/// `deploy-protected local`.
#[derive(Debug, Clone, Args)]
#[command(group(clap::ArgGroup::new("source").required(true).args(["file", "family"])))]
pub struct LocalArgs {
    /// The task definition to run: RegisterTaskDefinition input (e.g. the output of
    /// `deploy-protected embed`) or `aws ecs describe-task-definition` output. `-` reads stdin.
    #[arg(long, short = 'f', value_name = "FILE")]
    pub file: Option<PathBuf>,

    /// Read the task definition from ECS instead: this family's latest ACTIVE revision (or
    /// --revision), with the AWS settings of the deploy mode (AWS_REGION, AWS_PROFILE,
    /// AWS_ENDPOINT_URL, ...; needs ecs:DescribeTaskDefinition).
    #[arg(long, value_name = "FAMILY")]
    pub family: Option<String>,

    /// With --family: run this revision instead of the latest ACTIVE one.
    #[arg(long, value_name = "N", conflicts_with = "file",
          value_parser = clap::value_parser!(u32).range(1..))]
    pub revision: Option<u32>,

    /// With --family: AWS region (default: the standard chain: AWS_REGION, the profile, ...).
    #[arg(long, value_name = "REGION", conflicts_with = "file")]
    pub region: Option<String>,

    /// With --family: AWS profile from the shared config files.
    #[arg(long, value_name = "PROFILE", conflicts_with = "file")]
    pub profile: Option<String>,

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

    /// Refuse (exit 2) a task definition the defender does not protect, instead of running it
    /// after a warning.
    #[arg(long)]
    pub require_protected: bool,
}

/// Runs `deploy-protected local`; `Ok(code)` is the essential container's exit code (130 /
/// 143 when Ctrl-C / SIGTERM stopped the task).
pub fn run(args: &LocalArgs) -> Result<u8, LocalError> {
    let (name, task) = match (&args.file, &args.family) {
        (Some(path), _) => (
            if path.as_os_str() == "-" {
                "the task definition on stdin".to_string()
            } else {
                format!("the task definition in {}", path.display())
            },
            task::TaskDef::from_json(&read_task(path)?)?,
        ),
        (None, Some(family)) => {
            let fetched = family::fetch(&family::FamilyRef {
                family: family.clone(),
                revision: args.revision,
                region: args.region.clone(),
                profile: args.profile.clone(),
            })?;
            let task =
                task::TaskDef::from_json(&fetched.definition.to_string()).map_err(|e| match e {
                    LocalError::TaskJson { path, message } => LocalError::TaskJson {
                        path,
                        message: format!("{message} (in {} as ECS describes it)", fetched.name),
                    },
                    other => other,
                })?;
            (format!("task definition {}", fetched.name), task)
        }
        // clap's `source` group requires one of them.
        (None, None) => {
            return Err(LocalError::TaskJson {
                path: String::new(),
                message: "give --file or --family".into(),
            })
        }
    };
    check_protection(&name, &task, args.require_protected)?;
    let opts = run::RunOptions {
        network: args.network.clone(),
        secrets: plan::Secrets::from_flags(&args.secrets)?,
        handle_signals: true,
    };
    let docker = docker::Docker::connect()?;
    run::run_task(&docker, &task, &opts, &run::LogSink::stdio())
}

/// Warns loudly on stderr (or refuses with `require`) when the defender does not protect
/// `task`; notes the containers left unwrapped in a protected one.
fn check_protection(name: &str, task: &task::TaskDef, require: bool) -> Result<(), LocalError> {
    let p = protection::Protection::of(task);
    match p.missing() {
        Some(reason) if require => Err(LocalError::Unprotected {
            task: name.to_string(),
            reason,
        }),
        Some(reason) => {
            eprintln!("{}", unprotected_warning(name, &reason));
            Ok(())
        }
        None => {
            if !p.unwrapped.is_empty() {
                eprintln!(
                    "deploy-protected: note: {} run{} without the defender (excluded when \
                     embedded, or log routers)",
                    p.unwrapped.join(", "),
                    if p.unwrapped.len() == 1 { "s" } else { "" }
                );
            }
            Ok(())
        }
    }
}

/// The banner printed before an unprotected task runs.
pub fn unprotected_warning(name: &str, reason: &str) -> String {
    let bar = "deploy-protected: WARNING: ".to_string() + &"!".repeat(60);
    format!(
        "{bar}\n\
         deploy-protected: WARNING: {name} is NOT PROTECTED: {reason}.\n\
         deploy-protected: WARNING: it runs as is, with no runtime defense.\n\
         deploy-protected: WARNING: protect it: `deploy-protected embed -f task.json \
         --console-url URL --defender-image IMAGE --token-secret-arn ARN > protected.json` \
         then `deploy-protected local -f protected.json`, or deploy a protected revision with \
         `deploy-protected --family F --cluster C ...` and run `local --family F`; \
         --require-protected refuses such tasks.\n\
         {bar}"
    )
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
