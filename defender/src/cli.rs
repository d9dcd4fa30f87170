//! Command-line parsing (clap), settings validation, and the glue that starts supervision.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use arc_swap::ArcSwap;
use clap::{Parser, Subcommand, ValueEnum};
use defender::audit::{AuditSink, Auditor, JsonLinesFile, Workload};
use defender::backend::notify::NotifyDelegate;
use defender::backend::BackendKind;
use defender::console::ConsoleConfig;
use defender::judge::PolicyJudge;
use defender::metadata::{self, Lookup};
use defender::supervisor::{self, Launch};
use protect::api::DefenderIdentity;
use protect::embed as embed_env;
use protect::embed::ENV_CNAF;
use protect::policy::{RuntimePolicy, Scope};

use crate::cnaf_run::{self, CnafParts, CnafSettings};
use crate::console_run::{self, ConsoleArgs};

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
    /// Run the CNAF web application firewall alone, in front of an app started elsewhere.
    Cnaf(CnafArgs),
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
    #[command(flatten)]
    scope: ScopeArgs,
    #[command(flatten)]
    console: ConsoleArgs,
    /// Start the CNAF proxy on this address (IP:PORT or PORT) in front of the app.
    #[arg(long = "cnaf-listen", env = embed_env::ENV_CNAF_LISTEN)]
    cnaf_listen: Option<String>,
    /// The app's address CNAF forwards clean requests to (IP:PORT or PORT on 127.0.0.1).
    #[arg(long = "cnaf-upstream", env = embed_env::ENV_CNAF_UPSTREAM)]
    cnaf_upstream: Option<String>,
    /// CNAF policy file (JSON); its rule for the task family applies (default: the console's).
    #[arg(long = "cnaf-policy-file")]
    cnaf_policy_file: Option<PathBuf>,
    /// `console`: the CNAF proxy listens on the ports of the console's CNAF rule for the task
    /// family (0.0.0.0:external_port, forwarding to 127.0.0.1:app_port) and starts, moves or
    /// stops live as that rule changes (needs a console). Unset or `off`: CNAF runs only with
    /// --cnaf-listen, whose endpoints a console rule naming ports overrides.
    #[arg(long = "cnaf", env = ENV_CNAF, value_name = "MODE")]
    cnaf: Option<String>,
    /// The app: program and arguments.
    #[arg(
        trailing_var_arg = true,
        allow_hyphen_values = true,
        required = true,
        value_name = "PROGRAM"
    )]
    program: Vec<String>,
}

/// The workload the defender protects (policy scope, audit fields).
#[derive(clap::Args, Debug, Clone)]
struct ScopeArgs {
    /// ECS task family of this workload.
    #[arg(long = "task", env = embed_env::ENV_TASK_FAMILY, default_value = "")]
    task_family: String,
    /// Container name of this workload.
    #[arg(
        long = "container",
        env = embed_env::ENV_CONTAINER_NAME,
        default_value = ""
    )]
    container: String,
    /// Image of this workload.
    #[arg(long = "image", env = embed_env::ENV_IMAGE, default_value = "")]
    image: String,
    /// From the ECS task metadata, when it answered at start-up.
    #[arg(skip)]
    task_arn: String,
}

impl ScopeArgs {
    fn workload(&self) -> Workload {
        Workload {
            scope: Scope {
                task: self.task_family.clone(),
                container: self.container.clone(),
                image: self.image.clone(),
            },
            task_arn: self.task_arn.clone(),
        }
    }

    fn identity(&self) -> DefenderIdentity {
        DefenderIdentity {
            task: self.task_family.clone(),
            container: self.container.clone(),
            image: self.image.clone(),
            instance: (!self.task_arn.is_empty()).then(|| self.task_arn.clone()),
            version: String::new(),
        }
    }

    /// Reads the ECS task metadata (when `ECS_CONTAINER_METADATA_URI_V4` is set) for at most
    /// [`metadata::STARTUP_BUDGET`]: an answer fills the task ARN and the scope fields that
    /// flags and `DEFENDER_*` left empty. Returns the lookup still running when it did not
    /// answer in time (its late answer goes to the auditor, see [`learn_late`]).
    fn learn_task_metadata(&mut self) -> Option<Lookup> {
        let lookup = Lookup::from_env()?;
        let Some(m) = lookup.wait(metadata::STARTUP_BUDGET) else {
            return Some(lookup);
        };
        let mut workload = self.workload();
        workload.learn(&m);
        self.task_family = workload.scope.task;
        self.container = workload.scope.container;
        self.image = workload.scope.image;
        self.task_arn = workload.task_arn;
        defender::say!("defender: task {} (ECS task metadata)", self.task_arn);
        None
    }
}

/// Task metadata that did not answer within the start-up budget fills the audits when it does.
fn learn_late(pending: Option<Lookup>, auditor: &Auditor) {
    if let Some(lookup) = pending {
        let auditor = auditor.clone();
        lookup.then(move |m| auditor.learn(&m));
    }
}

/// `defender cnaf`: the proxy alone.
#[derive(clap::Args, Debug)]
struct CnafArgs {
    /// CNAF policy file (JSON); its rule for the task family applies (default: the console's).
    #[arg(long)]
    policy_file: Option<PathBuf>,
    /// Append every audit as one JSON line to this file.
    #[arg(long)]
    audit_log: Option<PathBuf>,
    /// Address to listen on (IP:PORT or PORT).
    #[arg(long, env = embed_env::ENV_CNAF_LISTEN)]
    listen: Option<String>,
    /// The app's address (IP:PORT, or PORT on 127.0.0.1).
    #[arg(long, env = embed_env::ENV_CNAF_UPSTREAM)]
    upstream: Option<String>,
    /// `console`: listen on the ports of the console's CNAF rule for the task family and follow
    /// them live (then --listen is optional); unset or `off`: --listen is required.
    #[arg(long = "cnaf", env = ENV_CNAF, value_name = "MODE")]
    cnaf: Option<String>,
    #[command(flatten)]
    scope: ScopeArgs,
    #[command(flatten)]
    console: ConsoleArgs,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum BackendArg {
    Notify,
    Ptrace,
}

/// Exit code for bad usage or input.
const USAGE: u8 = 2;

pub fn main() -> ExitCode {
    // Not dumpable for the whole run: the app (same uid, without CAP_SYS_PTRACE) can then
    // neither ptrace the defender nor open its /proc/PID/mem, where the console credential
    // lives. (Some kernels still let a same-uid root read /proc/PID/environ: `scrub` below
    // overwrites the settings there.) The defender execs nothing itself (only the app's child
    // does, see `sys::spawn`), so the flag is never reset.
    if let Err(e) = defender::sys::process::set_not_dumpable() {
        defender::say!("defender: {e}");
        return ExitCode::from(1);
    }
    // Signals first, before any thread exists (clap and later parts may start some).
    let signals = match supervisor::prepare_signals() {
        Ok(s) => s,
        Err(e) => {
            defender::say!("defender: {e:#}");
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
    // The test-only assumed kernel is read before the settings leave the environment.
    let _ = defender::sys::kernel::assumed();
    // Parsed: the settings leave the environment (the app's too) and /proc/PID/environ and
    // /proc/PID/cmdline, before any thread exists.
    if let Err(e) = defender::settings_env::scrub() {
        defender::say!("defender: warning: {:#}", anyhow::Error::new(e));
    }
    let result = match cli.command {
        Command::Install { dir } => match defender::install::install_self(&dir) {
            Ok(path) => {
                defender::say!("defender: installed {}", path.display());
                Ok(0)
            }
            Err(e) => Err(RunFailure::Runtime(e.into())),
        },
        Command::Run(args) => run(args, signals),
        Command::Cnaf(args) => cnaf_alone(args, &signals),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(RunFailure::Usage(e)) => {
            defender::say!("defender: {e:#}");
            ExitCode::from(USAGE)
        }
        Err(RunFailure::Runtime(e)) => {
            defender::say!("defender: {e:#}");
            ExitCode::from(1)
        }
    }
}

enum RunFailure {
    Usage(anyhow::Error),
    Runtime(anyhow::Error),
}

/// Opens `--audit-log` as a sink.
fn audit_log_sink(path: Option<&PathBuf>) -> anyhow::Result<Vec<Arc<dyn AuditSink>>> {
    let mut sinks: Vec<Arc<dyn AuditSink>> = Vec::new();
    if let Some(path) = path {
        let file = JsonLinesFile::open(path).with_context(|| {
            format!(
                "--audit-log {}: cannot open it for appending",
                path.display()
            )
        })?;
        sinks.push(Arc::new(file));
    }
    Ok(sinks)
}

/// Validated settings for `defender run`.
struct RunSettings {
    policy: RuntimePolicy,
    /// The runtime policy comes from `--policy-file` (the console's runtime part is ignored).
    policy_from_file: bool,
    workload: Workload,
    sinks: Vec<Arc<dyn AuditSink>>,
    launch: Launch,
    console: Option<(ConsoleConfig, ConsoleArgs)>,
    cnaf: Option<CnafSettings>,
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
        let sinks = audit_log_sink(args.audit_log.as_ref())?;
        let backend = match args.backend {
            Some(BackendArg::Notify) => BackendKind::Notify,
            Some(BackendArg::Ptrace) => BackendKind::Ptrace,
            None => defender::backend::probe(),
        };
        let console = args
            .console
            .config(args.scope.identity())?
            .map(|c| (c, args.console.clone()));
        let cnaf = CnafSettings::from_parts(CnafParts {
            mode: args.cnaf.as_deref(),
            listen: args.cnaf_listen.as_deref(),
            upstream: args.cnaf_upstream.as_deref(),
            file: args.cnaf_policy_file.as_ref(),
            file_flag: "--cnaf-policy-file",
            family: &args.scope.task_family,
            console_poll: console.as_ref().map(|(c, _)| c.poll_interval),
        })?;
        let mut program = args.program.into_iter();
        let Some(first) = program.next() else {
            anyhow::bail!("PROGRAM: missing; usage: defender run [OPTIONS] -- PROGRAM [ARGS...]");
        };
        supervisor::find_program(&first)?;
        Ok(RunSettings {
            policy,
            policy_from_file: args.policy_file.is_some(),
            workload: args.scope.workload(),
            sinks,
            launch: Launch {
                program: first,
                args: program.collect(),
                backend,
            },
            console,
            cnaf,
        })
    }
}

fn run(mut args: RunArgs, signals: defender::sys::process::SignalFd) -> Result<u8, RunFailure> {
    let pending_metadata = args.scope.learn_task_metadata();
    let explicit_backend = args.backend.is_some();
    let mut settings = RunSettings::from_args(args).map_err(RunFailure::Usage)?;
    let policy = Arc::new(ArcSwap::from_pointee(settings.policy.clone()));
    let scope = settings.workload.scope.clone();

    // The console first: its shipper is an audit sink, and the startup mode needs its policy.
    let console = match settings.console.take() {
        Some((config, args)) => {
            let targets = console_run::Targets {
                runtime: (!settings.policy_from_file).then(|| Arc::clone(&policy)),
                cnaf: settings
                    .cnaf
                    .as_mut()
                    .and_then(|c| c.console_target(&scope.task)),
            };
            let connected = console_run::connect(config, targets)
                .map_err(|e| RunFailure::Usage(anyhow::anyhow!("console: {e}")))?;
            settings.sinks.push(Arc::new(connected.shipper()));
            Some((connected, args))
        }
        None => None,
    };
    let auditor = Auditor::new(settings.workload.clone(), settings.sinks);
    learn_late(pending_metadata, &auditor);
    if let Some((connected, args)) = &console {
        let decides = (!settings.policy_from_file).then_some(&scope);
        connected
            .await_startup(
                decides,
                args.startup.into(),
                Duration::from_secs(args.startup_timeout),
            )
            .map_err(|e| RunFailure::Runtime(e.into()))?;
    }

    // CNAF before the app, so the app's port is guarded from its first request. Signals are
    // blocked already: the proxy threads inherit the mask.
    let proxy = match &mut settings.cnaf {
        Some(c) => c
            .start(&scope.task, auditor.clone(), &settings.workload)
            .map_err(|e| RunFailure::Runtime(anyhow::anyhow!("CNAF: {e}")))?,
        None => None,
    };

    let how = if explicit_backend {
        "forced by --backend"
    } else {
        "probed"
    };
    defender::say!(
        "defender: supervising with the {} backend ({how})",
        settings.launch.backend.name()
    );
    let judge = Arc::new(PolicyJudge::new(Arc::clone(&policy), scope.clone()));
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
    let status = supervisor::supervise(&settings.launch, signals, judge, auditor, hooks);
    if let Some(p) = proxy {
        if let Err(e) = p.stop() {
            defender::say!("defender: CNAF: {e}");
        }
    }
    if let Some((connected, _)) = console {
        connected.shutdown();
    }
    let status = status.map_err(|e| RunFailure::Runtime(e.into()))?;
    Ok(u8::try_from(status).unwrap_or(1))
}

/// `defender cnaf`: the proxy alone until SIGTERM/SIGINT.
fn cnaf_alone(
    mut args: CnafArgs,
    signals: &defender::sys::process::SignalFd,
) -> Result<u8, RunFailure> {
    let pending_metadata = args.scope.learn_task_metadata();
    let family = args.scope.task_family.clone();
    let (mut cnaf, sinks, console) = (|| {
        let console = args.console.config(args.scope.identity())?;
        let cnaf = CnafSettings::from_parts(CnafParts {
            mode: args.cnaf.as_deref(),
            listen: args.listen.as_deref(),
            upstream: args.upstream.as_deref(),
            file: args.policy_file.as_ref(),
            file_flag: "--policy-file",
            family: &family,
            console_poll: console.as_ref().map(|c| c.poll_interval),
        })?
        .context(
            "DEFENDER_CNAF_LISTEN (--listen): not set; the address CNAF listens on, e.g. \
             0.0.0.0:8080 (or DEFENDER_CNAF=console: the ports of the console's CNAF rule)",
        )?;
        let sinks = audit_log_sink(args.audit_log.as_ref())?;
        anyhow::Ok((cnaf, sinks, console))
    })()
    .map_err(RunFailure::Usage)?;
    let mut sinks = sinks;
    let console = match console {
        Some(config) => {
            let targets = console_run::Targets {
                runtime: None,
                cnaf: cnaf.console_target(&family),
            };
            let connected = console_run::connect(config, targets)
                .map_err(|e| RunFailure::Usage(anyhow::anyhow!("console: {e}")))?;
            sinks.push(Arc::new(connected.shipper()));
            connected
                .await_startup(
                    None,
                    args.console.startup.into(),
                    Duration::from_secs(args.console.startup_timeout),
                )
                .map_err(|e| RunFailure::Runtime(e.into()))?;
            Some(connected)
        }
        None => None,
    };
    let workload = args.scope.workload();
    defender::say!(
        "defender: cnaf: {}",
        cnaf_run::describe_source(args.policy_file.as_ref(), console.is_some())
    );
    let auditor = Auditor::new(workload.clone(), sinks);
    learn_late(pending_metadata, &auditor);
    let proxy = cnaf
        .start(&family, auditor, &workload)
        .map_err(|e| RunFailure::Runtime(anyhow::anyhow!("CNAF: {e}")))?
        .context("CNAF: no proxy to run")
        .map_err(RunFailure::Runtime)?;
    let outcome = loop {
        if proxy.finished() {
            break Err(RunFailure::Runtime(anyhow::anyhow!(
                "CNAF: the proxy stopped unexpectedly"
            )));
        }
        let ready = defender::sys::process::poll_readable(&[signals.raw()], 250)
            .map_err(|e| RunFailure::Runtime(e.into()));
        match ready {
            Err(e) => break Err(e),
            Ok(r) if r.first().copied().unwrap_or(0) == 0 => continue,
            Ok(_) => {}
        }
        match signals.read() {
            Ok(Some(sig)) if sig == libc::SIGTERM || sig == libc::SIGINT => {
                defender::say!("defender: cnaf: signal {sig}: stopping");
                break Ok(0);
            }
            Ok(_) => {}
            Err(e) => break Err(RunFailure::Runtime(e.into())),
        }
    };
    let stopped = proxy.stop();
    if let Some(c) = console {
        c.shutdown();
    }
    match (outcome, stopped) {
        (Ok(code), Ok(())) => Ok(code),
        (Ok(_), Err(e)) | (Err(RunFailure::Runtime(_)), Err(e)) => {
            Err(RunFailure::Runtime(anyhow::anyhow!("CNAF: {e}")))
        }
        (Err(e), _) => Err(e),
    }
}
