//! ptrace + `SECCOMP_RET_TRACE` fallback backend, for kernels without user notification or
//! `pidfd_getfd`.
//!
//! The defender seizes the app before its filter is installed, with fork/vfork/clone
//! auto-attach so every task of the tree stays traced (a `RET_TRACE` filter without a tracer
//! fails the syscall with ENOSYS). The filter stops only `execve`/`execveat` (seccomp stop):
//! the exec is judged on its path there and skipped with EACCES when denied; an allowed one is
//! checked again at `PTRACE_EVENT_EXEC` on `/proc/PID/exe`, like the notify backend. `clone3`
//! is refused with ENOSYS (its flags are out of BPF's reach; libc falls back to `clone`), and
//! `clone` with `CLONE_UNTRACED` with EPERM, so no task escapes the tracer.

use super::exec::{self, ExecInFlight, ExecWatch, Handled, Precheck, Release};
use super::{Action, Backend, Context};
use crate::sys::bpf::{self, Rule};
use crate::sys::process::WaitStatus;
use crate::sys::SysError;
use crate::tracee::{Seized, StopKind, Stopped};

/// Options for every task of the app tree.
pub const TRACE_OPTIONS: i32 = libc::PTRACE_O_TRACESECCOMP
    | libc::PTRACE_O_TRACEEXEC
    | libc::PTRACE_O_TRACEFORK
    | libc::PTRACE_O_TRACEVFORK
    | libc::PTRACE_O_TRACECLONE
    | libc::PTRACE_O_EXITKILL;

const CLONE_UNTRACED: u32 = 0x0080_0000;

/// The app's filter for this backend: the notify filter's shape with execs traced, `clone3`
/// refused with ENOSYS and `clone(CLONE_UNTRACED)` with EPERM.
pub fn filter(extra: &[Rule]) -> Vec<libc::sock_filter> {
    let own = [
        Rule::Syscall {
            nr: libc::SYS_clone3 as u32,
            action: bpf::Action::Errno(libc::ENOSYS as u16),
        },
        Rule::SyscallArgMask {
            nr: libc::SYS_clone as u32,
            arg: 0,
            mask: CLONE_UNTRACED,
            action: bpf::Action::Errno(libc::EPERM as u16),
        },
    ];
    super::app_filter(bpf::Action::Trace(0), &own, extra)
}

/// The ptrace backend's state: execs judged at their seccomp stop, awaiting their exec stop.
pub struct PtraceBackend {
    /// Execs judged at their seccomp stop, awaiting their exec stop, and loaders followed.
    watch: ExecWatch<()>,
    /// Judges the other traced syscalls (the network guard): `Some(errno)` skips the call.
    others: Option<TracePrecheck>,
}

/// Judges a traced non-exec syscall of thread `tid` at its seccomp stop: `Some(errno)` makes it
/// fail with that errno, `None` lets it run.
pub type TracePrecheck = Box<dyn Fn(i32, i32, [u64; 6]) -> Option<i32>>;

impl PtraceBackend {
    /// Seizes the (not yet filtered) app child with auto-attach for its whole tree.
    pub fn attach(app: i32, others: Option<TracePrecheck>) -> Result<PtraceBackend, SysError> {
        Seized::seize(app, TRACE_OPTIONS)?;
        Ok(PtraceBackend {
            watch: ExecWatch::new(TRACE_OPTIONS, Release::Resume),
            others,
        })
    }

    fn on_seccomp_stop(&mut self, stopped: Stopped, ctx: &Context<'_>) -> Result<Action, SysError> {
        let regs = stopped.syscall_regs()?;
        let nr = regs.nr as i32;
        if nr != libc::SYS_execve as i32 && nr != libc::SYS_execveat as i32 {
            if let Some(errno) = self
                .others
                .as_ref()
                .and_then(|f| f(stopped.pid(), nr, regs.args))
            {
                stopped.fail_syscall(errno)?;
            }
            resume(stopped)?;
            return Ok(Action::Nothing);
        }
        match exec::judge_call(stopped.pid(), nr, regs.args, ctx.judge) {
            Precheck::Deny {
                errno,
                event,
                action,
            } => {
                // Audit first (see the notify backend): the app stays stopped meanwhile.
                let action = Precheck::report_denial(event, action, ctx);
                stopped.fail_syscall(errno)?;
                resume(stopped)?;
                Ok(action)
            }
            Precheck::Trace(inflight) => {
                self.watch.expect(stopped.pid(), (), inflight);
                resume(stopped)?;
                Ok(Action::Nothing)
            }
        }
    }
}

/// Resumes a stopped tracee; a tracee that vanished meanwhile is not an error.
fn resume(stopped: Stopped) -> Result<(), SysError> {
    Release::Resume.apply(stopped)
}

/// An exec that bypassed the seccomp stop cannot happen (the filter traces every exec); it is
/// judged anyway with what the new image says about itself.
fn unexpected_exec(stopped: &Stopped) -> Option<ExecInFlight> {
    Some(ExecInFlight {
        literal: crate::exec_target::exe_of(stopped.pid()).unwrap_or_default(),
        command: crate::exec_target::command_of(stopped.pid()),
        parent: String::new(),
    })
}

impl Backend for PtraceBackend {
    fn fd(&self) -> Option<i32> {
        None
    }

    fn on_readable(&mut self, _ctx: &Context<'_>, _hangup: bool) -> Result<Action, SysError> {
        Ok(Action::Nothing)
    }

    fn on_wait(
        &mut self,
        pid: i32,
        status: WaitStatus,
        ctx: &Context<'_>,
    ) -> Result<(bool, Action), SysError> {
        let Some(stopped) = Stopped::from_wait(pid, status) else {
            self.watch.forget(pid);
            return Ok((false, Action::Nothing));
        };
        let stopped = match self.watch.on_stop(stopped, ctx, unexpected_exec)? {
            Handled::Done(action) => return Ok((true, action)),
            Handled::Other(stopped) => stopped,
        };
        let action = match stopped.kind() {
            StopKind::Event(libc::PTRACE_EVENT_SECCOMP) => self.on_seccomp_stop(stopped, ctx)?,
            // fork/vfork/clone: the new task is attached and reports its own first stop.
            StopKind::Event(_) => resume(stopped).map(|()| Action::Nothing)?,
            StopKind::Interrupted => {
                let WaitStatus::Stopped { signal, .. } = status else {
                    return Ok((true, Action::Nothing));
                };
                if matches!(
                    signal,
                    libc::SIGSTOP | libc::SIGTSTP | libc::SIGTTIN | libc::SIGTTOU
                ) {
                    // A real group-stop: keep it stopped (job control) but traced.
                    match stopped.listen() {
                        Ok(_) | Err(SysError::Vanished { .. }) => {}
                        Err(e) => return Err(e),
                    }
                } else {
                    resume(stopped)?;
                }
                Action::Nothing
            }
            StopKind::Signal(_) => resume(stopped).map(|()| Action::Nothing)?,
        };
        Ok((true, action))
    }
}
