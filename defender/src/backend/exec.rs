//! Judging one exec, the same for both backends: the call read from the caller (path, argv),
//! the policy asked before it runs ([`precheck`]: deny early), the new image judged again at
//! `PTRACE_EVENT_EXEC` ([`postcheck`]), the audit built, and the effect applied to the stopped
//! tracee ([`ExecWatch`]: let it go, follow a directly-run loader, kill, block). A backend only
//! supplies its mechanism: how a denied call fails (a notification answer or a skipped
//! syscall), how a tracee is let go ([`Release`]) and what it keeps per exec in flight.

use std::collections::HashMap;

use super::loader::{self, Followed, LoaderWatch};
use super::{Action, Context};
use crate::audit::ProcessEvent;
use crate::exec_target::{self, ExecCall};
use crate::judge::{Effect, ExecJudge, ExecNames, Finding};
use crate::sys::process;
use crate::sys::SysError;
use crate::tracee::{StopKind, Stopped};

/// The errno a prevented exec fails with: EACCES, what the kernel itself returns for a program
/// that may not be executed (shells print "Permission denied"). Network denials use EPERM.
pub const DENIED_EXEC_ERRNO: i32 = libc::EACCES;

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
        Some(f) if f.effect >= Effect::Prevent => {
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
                    if worst.as_ref().is_none_or(|(w, _)| f.effect > w.effect) {
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

/// Judges an `execve` (`nr` 59) or `execveat` (322) of thread `tid` with raw arguments `args`
/// before it runs: reads the path and argv from the caller, then [`precheck`].
pub fn judge_call(tid: i32, nr: i32, args: [u64; 6], judge: &dyn ExecJudge) -> Precheck {
    let call = ExecCall::read(tid, nr, args);
    precheck(tid, &call, judge)
}

impl Precheck {
    /// For a denial the backend is about to answer: audits it and says what the supervisor must
    /// do. Backends call it before letting the caller go, so the audit line is written while
    /// the app still waits in the syscall and cannot interleave its own error message with it.
    pub fn report_denial(event: Option<ProcessEvent>, action: Action, ctx: &Context<'_>) -> Action {
        if let Some(event) = event {
            (ctx.audit)(event);
        }
        action
    }
}

/// How a backend lets a tracee go once its exec has been judged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Release {
    /// Seized only for the exec (notify backend): detach.
    Detach,
    /// Traced for good (ptrace backend): resume.
    Resume,
}

impl Release {
    /// Lets `stopped` go; a tracee that vanished meanwhile is not an error.
    pub fn apply(self, stopped: Stopped) -> Result<(), SysError> {
        let done = match self {
            Release::Detach => stopped.detach(),
            Release::Resume => stopped.resume().map(drop),
        };
        match done {
            Ok(()) | Err(SysError::Vanished { .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }
}

/// What [`ExecWatch::on_stop`] made of a tracee stop.
pub enum Handled {
    /// An exec stop or a followed loader's stop: dealt with.
    Done(Action),
    /// Another stop: the backend's to handle.
    Other(Stopped),
}

/// The execs a backend let through (awaiting their exec stop) and the directly-run dynamic
/// loaders it follows. `T` is what the backend keeps with each exec in flight (the notify
/// backend's seized thread; nothing for ptrace).
pub struct ExecWatch<T> {
    inflight: HashMap<i32, (T, ExecInFlight)>,
    loaders: HashMap<i32, LoaderWatch>,
    /// The tracees' ptrace options (a followed loader keeps them, plus `TRACESYSGOOD`).
    options: i32,
    release: Release,
}

impl<T> ExecWatch<T> {
    pub fn new(options: i32, release: Release) -> ExecWatch<T> {
        ExecWatch {
            inflight: HashMap::new(),
            loaders: HashMap::new(),
            options,
            release,
        }
    }

    /// Thread `tid` was let through to exec: its exec stop will be judged with `inflight`.
    pub fn expect(&mut self, tid: i32, token: T, inflight: ExecInFlight) {
        self.inflight.insert(tid, (token, inflight));
    }

    /// The exec in flight of thread `tid`, no longer expected.
    pub fn take(&mut self, tid: i32) -> Option<(T, ExecInFlight)> {
        self.inflight.remove(&tid)
    }

    /// `pid` is gone (exited or killed).
    pub fn forget(&mut self, pid: i32) {
        self.inflight.remove(&pid);
        self.loaders.remove(&pid);
    }

    /// Handles a stop of a followed loader or an exec stop. `unexpected` supplies what to judge
    /// an exec stop with when no exec of that thread was expected (`None`: just let it go).
    pub fn on_stop(
        &mut self,
        stopped: Stopped,
        ctx: &Context<'_>,
        unexpected: impl FnOnce(&Stopped) -> Option<ExecInFlight>,
    ) -> Result<Handled, SysError> {
        let pid = stopped.pid();
        if let Some(watch) = self.loaders.get_mut(&pid) {
            let action = match loader::on_stop(watch, stopped, ctx.judge)? {
                Followed::Resumed => Action::Nothing,
                Followed::Finished(stopped) => {
                    self.loaders.remove(&pid);
                    self.release.apply(stopped)?;
                    Action::Nothing
                }
                Followed::Killed { event, block } => {
                    self.loaders.remove(&pid);
                    (ctx.audit)(event);
                    if block {
                        Action::Block
                    } else {
                        Action::Nothing
                    }
                }
            };
            return Ok(Handled::Done(action));
        }
        if stopped.kind() != StopKind::Event(libc::PTRACE_EVENT_EXEC) {
            return Ok(Handled::Other(stopped));
        }
        self.on_exec_stop(stopped, ctx, unexpected)
            .map(Handled::Done)
    }

    fn on_exec_stop(
        &mut self,
        stopped: Stopped,
        ctx: &Context<'_>,
        unexpected: impl FnOnce(&Stopped) -> Option<ExecInFlight>,
    ) -> Result<Action, SysError> {
        let pid = stopped.pid();
        // Which thread exec'd: the stop's pid is the thread group's, the event message names
        // the thread. Only threads with an exec in flight can stop here (the notify backend
        // seizes just those; the ptrace backend records every exec at its seccomp stop), so
        // when `pid` is the only one, it is that thread and the question costs no syscall.
        let former = if self.inflight.len() == 1 && self.inflight.contains_key(&pid) {
            pid
        } else {
            stopped.event_msg().map(|m| m as i32).unwrap_or(pid)
        };
        let entry = self.inflight.remove(&former);
        if former != pid {
            // A non-leader exec'd: the old leader is gone, the thread took over its pid.
            self.inflight.remove(&pid);
        }
        let inflight = match entry.map(|(_, inflight)| inflight) {
            Some(inflight) => inflight,
            None => match unexpected(&stopped) {
                Some(inflight) => inflight,
                None => return self.release.apply(stopped).map(|()| Action::Nothing),
            },
        };
        match postcheck(pid, &inflight, ctx.judge) {
            Postcheck::Allow => self.release.apply(stopped).map(|()| Action::Nothing),
            Postcheck::WatchLoader(watch) => {
                loader::start(stopped, self.options)?;
                self.loaders.insert(pid, watch);
                Ok(Action::Nothing)
            }
            Postcheck::Alert(event) => {
                (ctx.audit)(event);
                self.release.apply(stopped).map(|()| Action::Nothing)
            }
            Postcheck::Kill(event) => {
                let _ = process::kill(pid, libc::SIGKILL);
                (ctx.audit)(event);
                Ok(Action::Nothing)
            }
            Postcheck::Block(event) => {
                let _ = process::kill(pid, libc::SIGKILL);
                (ctx.audit)(event);
                Ok(Action::Block)
            }
        }
    }
}
