//! Command-line parsing (clap), settings validation, and the glue that starts supervision.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;
use arc_swap::ArcSwap;
use clap::{Parser, Subcommand, ValueEnum};
use defender::audit::{AuditSink, Auditor, JsonLinesFile, Workload};
use defender::backend::notify::NotifyDelegate;
use defender::backend::BackendKind;
use defender::judge::PolicyJudge;
use defender::supervisor::{self, Launch};
use protect::policy::{RuntimePolicy, Scope};

#[derive(Parser, Debug)]
#[command(
    name = "defender",
    version,
    about = "Runtime defense inside the app's container"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run PROGRAM under supervision and enforce the runtime policy on every program it starts.
    Run(RunArgs),
    /// Copy this defender binary into DIR (mode 0755), for the sidecar.
    Install {
        /// Destination directory (created if missing).
        dir: PathBuf,
    },
}

#[derive(clap::Args, Debug)]
struct RunArgs {
    /// Enforce this runtime policy file (JSON) instead of fetching one from the console.
    #[arg(long)]
    policy_file: Option<PathBuf>,
    /// Append every audit as one JSON line to this file.
    #[arg(long)]
    audit_log: Option<PathBuf>,
    /// Interception mechanism; default: probe and pick the best available.
    #[arg(long, value_enum)]
    backend: Option<BackendArg>,
    /// ECS task family of this workload.
    #[arg(long = "task", env = "DEFENDER_TASK_FAMILY", default_value = "")]
    task_family: String,
    /// Container name of this workload.
    #[arg(
        long = "container",
        env = "DEFENDER_CONTAINER_NAME",
        default_value = ""
    )]
    container: String,
    /// Image of this workload.
    #[arg(long = "image", env = "DEFENDER_IMAGE", default_value = "")]
    image: String,
    /// The app: program and arguments.
    #[arg(
        trailing_var_arg = true,
        allow_hyphen_values = true,
        required = true,
        value_name = "PROGRAM"
    )]
    program: Vec<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum BackendArg {
    Notify,
    Ptrace,
}

/// Exit code for bad usage or input.
const USAGE: u8 = 2;

pub fn main() -> ExitCode {
    // Signals first, before any thread exists (clap and later parts may start some).
    let signals = match supervisor::prepare_signals() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("defender: {e:#}");
            return ExitCode::from(1);
        }
    };
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { USAGE } else { 0 });
        }
    };
    match cli.command {
        Command::Install { dir } => match defender::install::install_self(&dir) {
            Ok(path) => {
                eprintln!("defender: installed {}", path.display());
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("defender: {e:#}");
                ExitCode::from(1)
            }
        },
        Command::Run(args) => match run(args, signals) {
            Ok(code) => ExitCode::from(code),
            Err(RunFailure::Usage(e)) => {
                eprintln!("defender: {e:#}");
                ExitCode::from(USAGE)
            }
            Err(RunFailure::Runtime(e)) => {
                eprintln!("defender: {e:#}");
                ExitCode::from(1)
            }
        },
    }
}

enum RunFailure {
    Usage(anyhow::Error),
    Runtime(anyhow::Error),
}

/// Validated settings for `defender run`.
struct RunSettings {
    policy: RuntimePolicy,
    workload: Workload,
    sinks: Vec<Arc<dyn AuditSink>>,
    launch: Launch,
}

impl RunSettings {
    fn from_args(args: RunArgs) -> anyhow::Result<RunSettings> {
        let policy = match &args.policy_file {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("--policy-file {}: cannot read it", path.display()))?;
                RuntimePolicy::from_json(&text).with_context(|| {
                    format!("--policy-file {}: invalid runtime policy", path.display())
                })?
            }
            None => RuntimePolicy {
                revision: 0,
                rules: Vec::new(),
            },
        };
        let mut sinks: Vec<Arc<dyn AuditSink>> = Vec::new();
        if let Some(path) = &args.audit_log {
            let file = JsonLinesFile::open(path).with_context(|| {
                format!(
                    "--audit-log {}: cannot open it for appending",
                    path.display()
                )
            })?;
            sinks.push(Arc::new(file));
        }
        let backend = match args.backend {
            Some(BackendArg::Notify) => BackendKind::Notify,
            Some(BackendArg::Ptrace) => BackendKind::Ptrace,
            None => defender::backend::probe(),
        };
        let mut program = args.program.into_iter();
        let Some(first) = program.next() else {
            anyhow::bail!("PROGRAM: missing; usage: defender run [OPTIONS] -- PROGRAM [ARGS...]");
        };
        supervisor::find_program(&first)?;
        Ok(RunSettings {
            policy,
            workload: Workload {
                scope: Scope {
                    task: args.task_family,
                    container: args.container,
                    image: args.image,
                },
                task_arn: String::new(),
            },
            sinks,
            launch: Launch {
                program: first,
                args: program.collect(),
                backend,
            },
        })
    }
}

fn run(args: RunArgs, signals: defender::sys::process::SignalFd) -> Result<u8, RunFailure> {
    let explicit_backend = args.backend.is_some();
    let settings = RunSettings::from_args(args).map_err(RunFailure::Usage)?;
    let how = if explicit_backend {
        "forced by --backend"
    } else {
        "probed"
    };
    eprintln!(
        "defender: supervising with the {} backend ({how})",
        settings.launch.backend.name()
    );
    let policy = Arc::new(ArcSwap::from_pointee(settings.policy));
    let scope = settings.workload.scope.clone();
    let judge = Arc::new(PolicyJudge::new(Arc::clone(&policy), scope.clone()));
    let auditor = Auditor::new(settings.workload, settings.sinks);
    // Later: when DEFENDER_CNAF_LISTEN is set, start the CNAF proxy here (after signals are
    // blocked, so its threads inherit the mask) and stop it after supervision returns.
    let mut hooks = supervisor::Hooks::new().map_err(|e| RunFailure::Runtime(e.into()))?;
    // Network policy: on the notification listener (notify backend), or judged at seccomp
    // stops (ptrace backend).
    if settings.launch.backend == BackendKind::Notify {
        hooks.extra_filter_rules = defender::net::NetGuard::filter_rules();
        let sink = defender::net::audit_sink(auditor.clone(), hooks.stopper());
        hooks.delegate = Some(Box::new(move |listener| {
            let guard = defender::net::NetGuard::start(policy, scope, listener, sink)
                .map_err(|e| e.to_string())?;
            Ok(Box::new(guard) as Box<dyn NotifyDelegate>)
        }));
    } else {
        hooks.extra_filter_rules = defender::net::NetGuard::trace_filter_rules();
        let sink = defender::net::audit_sink(auditor.clone(), hooks.stopper());
        let guard = defender::net::NetGuard::start_traced(policy, scope, sink);
        hooks.trace_precheck = Some(Box::new(move |tid, nr, args| guard.precheck(tid, nr, args)));
    }
    let status = supervisor::supervise(&settings.launch, signals, judge, auditor, hooks)
        .map_err(|e| RunFailure::Runtime(e.into()))?;
    Ok(u8::try_from(status).unwrap_or(1))
}
