//! The defender as the app's parent (PID 1 in the container): start the app under its filter,
//! run the event loop (notifications, tracee stops, signals), reap orphans, forward signals,
//! stop the tree on `block`, and exit with the app's status.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::ffi::CString;
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::audit::{Auditor, ProcessEvent};
use crate::backend::notify::{self, NotifyBackend, NotifyDelegate};
use crate::backend::ptrace::{self, PtraceBackend, TracePrecheck};
use crate::backend::{Action, Backend, BackendKind, Context};
use crate::judge::ExecJudge;
use crate::sys::bpf::Rule;
use crate::sys::notify::Listener;
use crate::sys::process::{self, SignalFd, WaitStatus};
use crate::sys::spawn::{self, FilterMode, SpawnSpec};
use crate::sys::SysError;

/// Repeated violations by one process with one command line within this window are audited
/// once.
const AUDIT_DEDUP_WINDOW: Duration = Duration::from_secs(2);

/// Signals forwarded to the app.
pub const FORWARDED: &[i32] = &[
    libc::SIGTERM,
    libc::SIGINT,
    libc::SIGHUP,
    libc::SIGQUIT,
    libc::SIGUSR1,
    libc::SIGUSR2,
];

/// Why supervision could not start or went wrong.
#[derive(Debug, thiserror::Error)]
pub enum SuperviseError {
    #[error("cannot find program {0:?} in PATH; give an absolute path or fix PATH")]
    ProgramNotFound(String),
    #[error("argument {0:?} contains a NUL byte")]
    NulInArgument(String),
    #[error("cannot set up signal handling")]
    Signals(#[source] SysError),
    #[error(
        "cannot start the app under the {backend} backend{}",
        capability_hint(source)
    )]
    Spawn {
        backend: &'static str,
        #[source]
        source: SysError,
    },
    #[error("cannot start the notification delegate: {0}")]
    Delegate(String),
    #[error("supervision failed")]
    Loop(#[source] SysError),
}

/// Lets any thread ask the supervisor to stop the whole app tree (a `block` violation found
/// outside the exec path, e.g. by the network guard). Cheap to clone.
#[derive(Clone)]
pub struct Stopper {
    tx: Arc<OwnedFd>,
}

impl Stopper {
    /// Stops the app tree (asynchronously: the supervision loop wakes up and kills it).
    pub fn stop(&self) {
        process::poke(&self.tx);
    }
}

/// Builds a delegate for the notifications the supervisor does not judge itself, from a
/// handle on the listener; runs once before the app starts.
pub type DelegateFactory = Box<dyn FnOnce(Listener) -> Result<Box<dyn NotifyDelegate>, String>>;

/// Extension points for other parts of the defender.
pub struct Hooks {
    /// Rules added to the app's filter (before the built-in denials).
    pub extra_filter_rules: Vec<Rule>,
    /// Receives the notifications for syscalls other than exec (notify backend only).
    pub delegate: Option<DelegateFactory>,
    /// Judges traced syscalls other than exec (ptrace backend only).
    pub trace_precheck: Option<TracePrecheck>,
    stop_rx: OwnedFd,
    stopper: Stopper,
}

impl Hooks {
    pub fn new() -> Result<Hooks, SuperviseError> {
        let (stop_rx, tx) = process::pipe().map_err(SuperviseError::Signals)?;
        Ok(Hooks {
            extra_filter_rules: Vec::new(),
            delegate: None,
            trace_precheck: None,
            stop_rx,
            stopper: Stopper { tx: Arc::new(tx) },
        })
    }

    /// A handle that stops the app tree from any thread.
    pub fn stopper(&self) -> Stopper {
        self.stopper.clone()
    }
}

/// A container without CAP_SYS_PTRACE (or whose seccomp profile forbids ptrace/pidfd_getfd)
/// fails with EPERM: say how to fix it.
fn capability_hint(e: &SysError) -> &'static str {
    if e.errno() == Some(libc::EPERM) {
        " (the container needs the SYS_PTRACE capability: add it under \
         linuxParameters.capabilities.add; deploy-protected does this)"
    } else {
        ""
    }
}

/// What to run and how.
pub struct Launch {
    pub program: String,
    pub args: Vec<String>,
    pub backend: BackendKind,
}

/// Blocks the handled signals. Call first thing in `main`, before any thread exists, so every
/// later thread inherits the mask and the signals only arrive through the signalfd.
pub fn prepare_signals() -> Result<SignalFd, SuperviseError> {
    let mut set = FORWARDED.to_vec();
    set.push(libc::SIGCHLD);
    SignalFd::block(&set).map_err(SuperviseError::Signals)
}

/// Runs the app until it exits; returns the exit status to leave with (128+N when the app was
/// killed by signal N).
pub fn supervise(
    launch: &Launch,
    signals: SignalFd,
    judge: Arc<dyn ExecJudge>,
    auditor: Auditor,
    hooks: Hooks,
) -> Result<i32, SuperviseError> {
    // Orphans of the app are re-parented to us (we reap them).
    let _ = process::set_child_subreaper();

    let spec = spawn_spec(launch, &hooks.extra_filter_rules)?;
    let spawn_err = |source| SuperviseError::Spawn {
        backend: launch.backend.name(),
        source,
    };
    // Nothing in the app may read or write our memory (`main` made the defender non-dumpable;
    // said again here for callers of the library).
    let _ = process::set_not_dumpable();
    let mut pending = spawn::spawn(&spec).map_err(spawn_err)?;
    let mut backend: Box<dyn Backend> = match launch.backend {
        BackendKind::Notify => {
            let Some(fd) = pending.listener.take() else {
                return Err(spawn_err(SysError::Failed {
                    op: "seccomp listener",
                    error: std::io::Error::other("the child did not hand over a listener"),
                }));
            };
            let listener = Listener::new(fd).map_err(spawn_err)?;
            let delegate = match hooks.delegate {
                Some(factory) => {
                    let handle = listener.try_clone().map_err(spawn_err)?;
                    Some(factory(handle).map_err(SuperviseError::Delegate)?)
                }
                None => None,
            };
            Box::new(NotifyBackend::new(
                listener,
                delegate,
                pending.killable_wait,
            ))
        }
        BackendKind::Ptrace => {
            let backend =
                PtraceBackend::attach(pending.pid, hooks.trace_precheck).map_err(spawn_err)?;
            Box::new(backend)
        }
    };
    let app = pending.release().map_err(spawn_err)?;
    run_loop(
        app,
        &signals,
        &hooks.stop_rx,
        backend.as_mut(),
        judge.as_ref(),
        &auditor,
    )
}

fn run_loop(
    app: i32,
    signals: &SignalFd,
    stop_rx: &OwnedFd,
    backend: &mut dyn Backend,
    judge: &dyn ExecJudge,
    auditor: &Auditor,
) -> Result<i32, SuperviseError> {
    // A shell walking PATH tries every directory: one audit per process and command line.
    let recent: RefCell<VecDeque<(i32, String, Instant)>> = RefCell::new(VecDeque::new());
    let audit = |event: ProcessEvent| {
        let mut recent = recent.borrow_mut();
        let now = Instant::now();
        recent.retain(|(_, _, t)| now.duration_since(*t) < AUDIT_DEDUP_WINDOW);
        if recent
            .iter()
            .any(|(pid, cmd, _)| *pid == event.pid && *cmd == event.command)
        {
            return;
        }
        if recent.len() >= 64 {
            recent.pop_front();
        }
        recent.push_back((event.pid, event.command.clone(), now));
        auditor.process(&event);
    };
    let ctx = Context {
        judge,
        audit: &audit,
    };
    let mut app_status: Option<i32> = None;
    loop {
        let mut fds = vec![signals.raw(), stop_rx.as_raw_fd()];
        if let Some(fd) = backend.fd() {
            fds.push(fd);
        }
        let revents = process::poll_readable(&fds, -1).map_err(SuperviseError::Loop)?;
        let mut block = false;
        if revents[1] != 0 {
            process::drain(stop_rx);
            block = true;
        }
        if revents.len() > 2 && revents[2] != 0 {
            let hangup =
                revents[2] & (libc::POLLHUP | libc::POLLERR) != 0 && revents[2] & libc::POLLIN == 0;
            block |= backend
                .on_readable(&ctx, hangup)
                .map_err(SuperviseError::Loop)?
                == Action::Block;
        }
        let mut child_news = false;
        if revents[0] != 0 {
            for sig in signals.read_pending().map_err(SuperviseError::Loop)? {
                if sig == libc::SIGCHLD {
                    child_news = true;
                } else if app_status.is_none() {
                    let _ = process::kill(app, sig);
                }
            }
        }
        // SIGCHLD (exits and tracee stops alike) coalesces: after consuming it, collect every
        // pending status; a change after the last wait raises a new SIGCHLD.
        if child_news {
            while let Some((pid, status)) = process::wait_any().map_err(SuperviseError::Loop)? {
                let (mine, action) = backend
                    .on_wait(pid, status, &ctx)
                    .map_err(SuperviseError::Loop)?;
                block |= action == Action::Block;
                if !mine && pid == app {
                    match status {
                        WaitStatus::Exited(code) => app_status = Some(code),
                        WaitStatus::Signaled(sig) => app_status = Some(128 + sig),
                        _ => {}
                    }
                }
            }
        }
        if block {
            crate::say!("defender: a block rule was violated: stopping the app");
            kill_tree();
        }
        if let Some(status) = app_status {
            // The app is gone: like a container whose entrypoint exited, stop the rest.
            kill_tree();
            while let Ok(Some(_)) = process::wait_any() {}
            return Ok(status);
        }
    }
}

/// SIGKILLs every descendant of the defender (everything else in the container when it is
/// PID 1), repeating until a scan finds none, so racing forks cannot escape.
pub fn kill_tree() {
    let me = process::getpid();
    if me == 1 {
        let _ = process::kill(-1, libc::SIGKILL);
        return;
    }
    for _ in 0..64 {
        let victims = descendants(me);
        if victims.is_empty() {
            return;
        }
        for pid in victims {
            let _ = process::kill(pid, libc::SIGKILL);
        }
    }
}

/// Live descendants of `root`, from /proc.
fn descendants(root: i32) -> Vec<i32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let parents: Vec<(i32, i32)> = dir
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter_map(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            // Fields after the parenthesised command: state ppid ...
            let rest = &stat[stat.rfind(')')? + 2..];
            let mut fields = rest.split(' ');
            let state = fields.next()?;
            let ppid = fields.next()?.parse().ok()?;
            (state != "Z").then_some((pid, ppid))
        })
        .collect();
    let mut out = Vec::new();
    let mut frontier = vec![root];
    while let Some(p) = frontier.pop() {
        for &(pid, ppid) in &parents {
            if ppid == p && !out.contains(&pid) {
                out.push(pid);
                frontier.push(pid);
            }
        }
    }
    out
}

fn spawn_spec(launch: &Launch, extra: &[Rule]) -> Result<SpawnSpec, SuperviseError> {
    let path = find_program(&launch.program)?;
    let cstr = |s: &str| CString::new(s).map_err(|_| SuperviseError::NulInArgument(s.to_string()));
    let program = cstr(&path)?;
    let mut argv = vec![cstr(&launch.program)?];
    for a in &launch.args {
        argv.push(cstr(a)?);
    }
    // The defender's settings and credential stay with the defender.
    let env = crate::settings_env::app_environment()
        .filter_map(|(k, v)| {
            let mut kv = k.into_encoded_bytes();
            kv.push(b'=');
            kv.extend(v.into_encoded_bytes());
            CString::new(kv).ok()
        })
        .collect();
    let (filter, mode) = match launch.backend {
        BackendKind::Notify => (notify::filter(extra), FilterMode::Listener),
        BackendKind::Ptrace => (ptrace::filter(extra), FilterMode::Traced),
    };
    Ok(SpawnSpec::new(program, argv, env, filter, mode))
}

/// Finds `program` like a shell: a name with a slash is used as is, others are searched in PATH.
pub fn find_program(program: &str) -> Result<String, SuperviseError> {
    use std::os::unix::fs::PermissionsExt;
    if program.contains('/') {
        return Ok(program.to_string());
    }
    let path = std::env::var("PATH").unwrap_or_else(|_| "/usr/local/bin:/usr/bin:/bin".into());
    path.split(':')
        .filter(|d| !d.is_empty())
        .map(|d| format!("{d}/{program}"))
        .find(|p| {
            std::fs::metadata(p)
                .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
                .unwrap_or(false)
        })
        .ok_or_else(|| SuperviseError::ProgramNotFound(program.to_string()))
}
