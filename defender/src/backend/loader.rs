//! The dynamic loader run directly (`ld.so /path/prog`): the program is judged by path at the
//! exec stop, but the loader opens it only afterwards, so the file could be swapped in between.
//! The loader is therefore followed from syscall to syscall until it has opened its program:
//! every file it opens on the way is judged against the deny list (by name and by content), and
//! a denied one kills it before it is mapped. Only direct loader invocations pay for this.

use super::{ExecInFlight, ProcessEvent};
use crate::exec_target;
use crate::judge::{Effect, ExecJudge, ExecNames};
use crate::sys::SysError;
use crate::tracee::Stopped;

/// Stop following after this many syscall stops (the loader opens its program within its
/// first few dozen syscalls).
const BUDGET: u32 = 400;

/// What to do after a syscall stop of a followed loader.
pub enum WatchStep {
    /// Keep following (resume with `PTRACE_SYSCALL`).
    Continue,
    /// The program is open and judged: stop following.
    Done,
    /// A denied file was opened: kill (and block when the effect is `block`).
    Kill(ProcessEvent),
}

/// A loader being followed until it opens its program.
pub struct LoaderWatch {
    program: String,
    inflight: ExecInFlight,
    in_syscall: bool,
    open_path: Option<String>,
    budget: u32,
}

impl LoaderWatch {
    /// `program`: the program argument as the loader will open it.
    pub fn new(program: String, inflight: ExecInFlight) -> LoaderWatch {
        // Followed from its exec stop, which is inside execve: the first syscall stop is
        // execve's exit.
        LoaderWatch {
            program,
            inflight,
            in_syscall: true,
            open_path: None,
            budget: BUDGET,
        }
    }

    /// Handles one syscall-entry or syscall-exit stop of the loader.
    pub fn on_syscall_stop(
        &mut self,
        stopped: &Stopped,
        judge: &dyn ExecJudge,
    ) -> Result<WatchStep, SysError> {
        self.budget = self.budget.saturating_sub(1);
        self.in_syscall = !self.in_syscall;
        if self.in_syscall {
            let regs = stopped.syscall_regs()?;
            let path_arg = match regs.nr as i64 {
                libc::SYS_open => Some(regs.args[0]),
                libc::SYS_openat | libc::SYS_openat2 => Some(regs.args[1]),
                _ => None,
            };
            self.open_path = path_arg.and_then(|ptr| {
                exec_target::read_c_string(stopped.pid(), ptr, exec_target::MAX_PATH)
            });
            return Ok(if self.budget == 0 {
                WatchStep::Done
            } else {
                WatchStep::Continue
            });
        }
        let Some(path) = self.open_path.take() else {
            return Ok(if self.budget == 0 {
                WatchStep::Done
            } else {
                WatchStep::Continue
            });
        };
        let fd = stopped.syscall_return()?;
        if fd < 0 {
            return Ok(WatchStep::Continue);
        }
        let opened = format!("/proc/{}/fd/{fd}", stopped.pid());
        let real = std::fs::read_link(&opened)
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_default();
        // Deny-list semantics only: libraries are opened too, and the program's name already
        // passed the allow list at the exec stop.
        let names = ExecNames {
            program: Vec::new(),
            via: exec_target::names_of(&real),
        };
        let finding = judge
            .judge(&names)
            .filter(|f| f.effect != Effect::Alert)
            .or_else(|| {
                judge
                    .judge_copy(std::path::Path::new(&opened))
                    .map(|(f, _)| f)
                    .filter(|f| f.effect != Effect::Alert)
            });
        if let Some(finding) = finding {
            return Ok(WatchStep::Kill(ProcessEvent {
                finding,
                pid: stopped.pid(),
                process: real,
                parent: self.inflight.parent.clone(),
                command: self.inflight.command.clone(),
            }));
        }
        if path == self.program || self.budget == 0 {
            return Ok(WatchStep::Done);
        }
        Ok(WatchStep::Continue)
    }
}

/// What became of a followed loader after one of its stops.
pub enum Followed {
    /// Still followed (resumed to its next syscall stop).
    Resumed,
    /// No longer followed: the backend lets it go (detach or plain resume).
    Finished(Stopped),
    /// Killed for opening a denied file; `block` when the effect was `block`.
    Killed { event: ProcessEvent, block: bool },
}

/// Handles any stop of a followed loader.
pub fn on_stop(
    watch: &mut LoaderWatch,
    stopped: Stopped,
    judge: &dyn ExecJudge,
) -> Result<Followed, SysError> {
    let step = if stopped.is_syscall_stop() {
        watch.on_syscall_stop(&stopped, judge)?
    } else if matches!(stopped.kind(), crate::tracee::StopKind::Signal(_)) {
        // A signal for the loader: deliver it and keep following.
        WatchStep::Continue
    } else {
        // Group-stop, interrupt or another event: stop following.
        WatchStep::Done
    };
    match step {
        WatchStep::Continue => match stopped.resume_syscall() {
            Ok(_) | Err(SysError::Vanished { .. }) => Ok(Followed::Resumed),
            Err(e) => Err(e),
        },
        WatchStep::Done => Ok(Followed::Finished(stopped)),
        WatchStep::Kill(event) => {
            let _ = crate::sys::process::kill(stopped.pid(), libc::SIGKILL);
            let block = event.finding.effect == Effect::Block;
            Ok(Followed::Killed { event, block })
        }
    }
}

/// Starts following a loader stopped at its exec stop: syscall stops are marked
/// (`PTRACE_O_TRACESYSGOOD`) and it resumes to its first syscall.
pub fn start(stopped: Stopped, options: i32) -> Result<(), SysError> {
    stopped.set_options(options | libc::PTRACE_O_TRACESYSGOOD)?;
    match stopped.resume_syscall() {
        Ok(_) | Err(SysError::Vanished { .. }) => Ok(()),
        Err(e) => Err(e),
    }
}
