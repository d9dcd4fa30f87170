//! The two ways of intercepting execs, and the judging they share.
//!
//! - [`notify`]: seccomp user notification (primary): only execs reach the defender.
//! - [`ptrace`]: ptrace with a `SECCOMP_RET_TRACE` filter (fallback for kernels without user
//!   notification or `pidfd_getfd`).
//!
//! Both judge an exec twice: before it runs, on the path the caller named (deny early with
//! EACCES), and at `PTRACE_EVENT_EXEC`, on `/proc/PID/exe` of the new image before its first
//! instruction (kill it if a denied program got through a race, a symlink, a descriptor, a `#!`
//! line or the dynamic loader).

pub mod loader;
pub mod notify;
pub mod ptrace;

use loader::LoaderWatch;

use crate::audit::ProcessEvent;
use crate::exec_target::{self, ExecCall};
use crate::judge::{severity, Effect, ExecJudge, ExecNames, Finding};
use crate::sys::process::WaitStatus;
use crate::sys::SysError;

/// Which mechanism supervises the app.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BackendKind {
    Notify,
    Ptrace,
}

impl BackendKind {
    pub fn name(self) -> &'static str {
        match self {
            BackendKind::Notify => "notify",
            BackendKind::Ptrace => "ptrace",
        }
    }
}

/// Picks the best backend this kernel supports: user notification when the kernel has
/// `SECCOMP_RET_USER_NOTIF` and `pidfd_getfd` (5.6+) and they are not filtered, else ptrace.
pub fn probe() -> BackendKind {
    if crate::sys::process::user_notification_available() {
        BackendKind::Notify
    } else {
        BackendKind::Ptrace
    }
}

/// The errno a prevented exec fails with: EACCES, what the kernel itself returns for a program
/// that may not be executed (shells print "Permission denied").
pub const DENIED_EXEC_ERRNO: i32 = libc::EACCES;

/// What the supervisor must do after a backend handled an event.
#[derive(Debug, PartialEq, Eq)]
pub enum Action {
    Nothing,
    /// A `block` violation: stop the whole app tree.
    Block,
}

/// What the backends need from the supervisor.
pub struct Context<'a> {
    pub judge: &'a dyn ExecJudge,
    pub audit: &'a dyn Fn(ProcessEvent),
}

/// A supervision mechanism driven by the supervisor's event loop.
pub trait Backend {
    /// A descriptor to poll for readability, if the backend has one.
    fn fd(&self) -> Option<i32>;
    /// The descriptor became readable (or hung up: then `fd` must return `None` afterwards).
    fn on_readable(&mut self, ctx: &Context<'_>, hangup: bool) -> Result<Action, SysError>;
    /// `waitpid` reported `status` for `pid`. Returns whether the event was the backend's own
    /// (a tracee stop) and what to do.
    fn on_wait(
        &mut self,
        pid: i32,
        status: WaitStatus,
        ctx: &Context<'_>,
    ) -> Result<(bool, Action), SysError>;
}

/// An exec let through, waiting for its `PTRACE_EVENT_EXEC` (or its failure).
#[derive(Clone, Debug)]
pub struct ExecInFlight {
    /// The path as called (absolute).
    pub literal: String,
    pub command: String,
    /// The caller's executable before the exec.
    pub parent: String,
}

/// The decision before the exec runs.
pub enum Precheck {
    /// Fail the exec with this errno; audit the event if there is one.
    Deny {
        errno: i32,
        event: Option<ProcessEvent>,
        action: Action,
    },
    /// Let it run under ptrace and check the new image.
    Trace(ExecInFlight),
}

/// Judges an exec call of thread `tid` before it runs.
pub fn precheck(tid: i32, call: &ExecCall, judge: &dyn ExecJudge) -> Precheck {
    let parent = exec_target::exe_of(tid).unwrap_or_default();
    let Some(target) = exec_target::resolve(tid, call) else {
        let errno = if call.path.is_none() {
            libc::EFAULT
        } else {
            libc::ENOENT
        };
        return Precheck::Deny {
            errno,
            event: None,
            action: Action::Nothing,
        };
    };
    let mut names = ExecNames::default();
    match exec_target::canonical(&target.fs_path) {
        // Nothing to run there: answer as the kernel would, without auditing each PATH probe.
        Err(e) if e == libc::ENOENT || e == libc::ENOTDIR => {
            return Precheck::Deny {
                errno: e,
                event: None,
                action: Action::Nothing,
            };
        }
        Err(_) => names.via.push(target.literal.clone()),
        Ok(canon) => {
            names.program = match exec_target::multicall_applet(&canon, &call.leading_args) {
                Some(applet) => exec_target::applet_names(&applet),
                None => exec_target::names_of(&canon),
            };
            if !names.program.contains(&target.literal) {
                names.via.push(target.literal.clone());
            }
        }
    }
    let inflight = ExecInFlight {
        literal: target.literal,
        command: call.command.clone(),
        parent,
    };
    match judge.judge(&names) {
        Some(f) if severity(f.effect) >= severity(Effect::Prevent) => {
            let action = if f.effect == Effect::Block {
                Action::Block
            } else {
                Action::Nothing
            };
            let event = ProcessEvent {
                finding: f,
                pid: exec_target::tgid_of(tid).unwrap_or(tid),
                process: inflight.literal,
                parent: inflight.parent,
                command: inflight.command,
            };
            Precheck::Deny {
                errno: DENIED_EXEC_ERRNO,
                event: Some(event),
                action,
            }
        }
        _ => Precheck::Trace(inflight),
    }
}

/// The decision at `PTRACE_EVENT_EXEC`.
pub enum Postcheck {
    Allow,
    /// The dynamic loader run directly, its program allowed: follow it until it has opened
    /// the program (see [`loader`]).
    WatchLoader(LoaderWatch),
    Alert(ProcessEvent),
    /// Kill the new image (it must not run a single instruction).
    Kill(ProcessEvent),
    Block(ProcessEvent),
}

/// Judges the image process `pid` has just exec'd (stopped before its first instruction).
pub fn postcheck(pid: i32, inflight: &ExecInFlight, judge: &dyn ExecJudge) -> Postcheck {
    let exe = exec_target::exe_of(pid).unwrap_or_default();
    // The new image's argv is on its own stack now, out of reach of the old threads. Only
    // multi-call binaries and the dynamic loader need it.
    let argv = if exec_target::is_multicall(&exe) || exec_target::is_dynamic_loader(&exe) {
        exec_target::cmdline_of(pid)
    } else {
        Vec::new()
    };
    let applet = exec_target::multicall_applet(&exe, &argv);
    let program = match &applet {
        Some(applet) => exec_target::applet_names(applet),
        None => exec_target::names_of(&exe),
    };
    let mut names = ExecNames {
        program,
        via: Vec::new(),
    };
    if !names.program.contains(&inflight.literal) {
        names.via.push(inflight.literal.clone());
    }
    let mut worst: Option<(Finding, String)> = judge.judge(&names).map(|f| (f, exe.clone()));
    let mut loader_target: Option<String> = None;
    if exec_target::is_dynamic_loader(&exe) {
        // `ld.so /path/prog`: the loader maps the program itself; judge that program too.
        if let Some(prog) = exec_target::loader_program(&argv) {
            loader_target = Some(prog.to_string());
            let call = ExecCall {
                path: Some(prog.to_string()),
                dirfd: None,
                empty_path: false,
                command: String::new(),
                leading_args: Vec::new(),
            };
            if let Some(target) = exec_target::resolve(pid, &call) {
                let mut names = ExecNames::default();
                match exec_target::canonical(&target.fs_path) {
                    Ok(canon) => names.program = exec_target::names_of(&canon),
                    Err(_) => names.program.push(target.literal.clone()),
                }
                names.via.push(target.literal.clone());
                let copy = || judge.judge_copy(&target.fs_path).map(|(f, _)| f);
                if let Some(f) = judge.judge(&names).or_else(copy) {
                    if worst
                        .as_ref()
                        .is_none_or(|(w, _)| severity(f.effect) > severity(w.effect))
                    {
                        worst = Some((f, target.literal));
                    }
                }
            }
        }
    }
    if worst.is_none() {
        // Not denied by name: is it a denied program's copy, hard link or memfd?
        let image = std::path::PathBuf::from(format!("/proc/{pid}/exe"));
        worst = judge
            .judge_copy(&image)
            .map(|(f, _original)| (f, exe.clone()));
    }
    let Some((finding, process)) = worst else {
        return match loader_target {
            Some(program) => Postcheck::WatchLoader(LoaderWatch::new(program, inflight.clone())),
            None => Postcheck::Allow,
        };
    };
    let process = if process == exe && (applet.is_some() || names_alias(&exe, &inflight.literal)) {
        inflight.literal.clone()
    } else {
        process
    };
    let event = ProcessEvent {
        finding,
        pid,
        process,
        parent: inflight.parent.clone(),
        command: inflight.command.clone(),
    };
    match event.finding.effect {
        Effect::Disable => Postcheck::Allow,
        Effect::Alert => Postcheck::Alert(event),
        Effect::Prevent => Postcheck::Kill(event),
        Effect::Block => Postcheck::Block(event),
    }
}

/// Whether `literal` is one of the system names of `exe` (then the audit shows the name the
/// caller used, e.g. `/bin/mkdir` rather than `/usr/bin/mkdir`).
fn names_alias(exe: &str, literal: &str) -> bool {
    exec_target::names_of(exe).iter().any(|n| n == literal)
}
