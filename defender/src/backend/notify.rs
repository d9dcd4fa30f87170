//! Seccomp user-notification backend.
//!
//! The app's filter sends `execve`/`execveat` to the listener; every other syscall runs at full
//! speed. A notified exec is judged on its path; a denied one fails with EACCES. An allowed one
//! is let through only after its thread is seized with `PTRACE_O_TRACEEXEC`, so the new image is
//! checked at `PTRACE_EVENT_EXEC` before its first instruction; the path the defender read may
//! have been rewritten by another thread, but `/proc/PID/exe` at that stop cannot be. Right after
//! the `CONTINUE` answer the thread is interrupted: a failed exec then stops with
//! `PTRACE_EVENT_STOP` instead of an exec stop, and is detached.

use super::exec::{self, ExecWatch, Handled, Precheck, Release};
use super::{Action, Backend, Context};
use crate::sys::bpf::{self, Rule};
use crate::sys::notify::{Listener, Notification, Reply};
use crate::sys::process::WaitStatus;
use crate::sys::SysError;
use crate::tracee::{Seized, Stopped};

/// Options for the threads seized at exec: report the exec; kill them if the defender dies.
const SEIZE_OPTIONS: i32 = libc::PTRACE_O_TRACEEXEC | libc::PTRACE_O_EXITKILL;

/// Another part of the defender that judges some notified syscalls (the network guard).
pub trait NotifyDelegate {
    /// Whether notifications for syscall `nr` go to this delegate.
    fn handles(&self, nr: i32) -> bool;
    /// `Some(reply)`: answer now. `None`: the delegate answers later itself (through its own
    /// [`Listener::try_clone`] handle); it must never block the caller.
    fn handle(&self, n: &Notification) -> Option<Reply>;
}

/// The app's filter: foreign ABIs killed, execs notified, escape hatches denied with EPERM, a
/// second listener refused; `extra` rules (a delegate's syscalls) go before the denials.
pub fn filter(extra: &[Rule]) -> Vec<libc::sock_filter> {
    super::app_filter(bpf::Action::Notify, &[], extra)
}

/// The notification backend's state.
pub struct NotifyBackend {
    listener: Option<Listener>,
    /// Threads let through to exec (seized, waiting for their exec or interrupt stop) and
    /// loaders followed; detached once judged.
    watch: ExecWatch<Seized>,
    delegate: Option<Box<dyn NotifyDelegate>>,
    /// Received notifications wait only for fatal signals: the exec thread can be interrupted
    /// *before* the answer, so a failed exec stops before running a single instruction.
    interrupt_first: bool,
}

impl NotifyBackend {
    /// `killable_wait`: the filter was installed with `SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV`.
    pub fn new(
        listener: Listener,
        delegate: Option<Box<dyn NotifyDelegate>>,
        killable_wait: bool,
    ) -> NotifyBackend {
        let sync_wake_up =
            crate::sys::kernel::requested().sync_wake_up && listener.set_sync_wake_up();
        crate::say!(
            "defender: kernel {}{}: killable notification wait {}, synchronous wake-up {}",
            crate::sys::kernel::release(),
            crate::sys::kernel::assumed()
                .map(|(a, b)| format!(" (behaving as {a}.{b}: newer features not requested)"))
                .unwrap_or_default(),
            if killable_wait { "on" } else { "off" },
            if sync_wake_up { "on" } else { "off" },
        );
        NotifyBackend {
            listener: Some(listener),
            watch: ExecWatch::new(SEIZE_OPTIONS, Release::Detach),
            delegate,
            interrupt_first: killable_wait,
        }
    }

    fn handle_one(&mut self, ctx: &Context<'_>) -> Result<Action, SysError> {
        let Some(listener) = self.listener.as_mut() else {
            return Ok(Action::Nothing);
        };
        let Some(n) = listener.recv()? else {
            return Ok(Action::Nothing);
        };
        if n.nr != libc::SYS_execve as i32 && n.nr != libc::SYS_execveat as i32 {
            let reply = match &self.delegate {
                Some(d) if d.handles(n.nr) => d.handle(&n),
                _ => Some(Reply::Errno(libc::ENOSYS)),
            };
            if let Some(reply) = reply {
                listener.send(n.id, reply)?;
            }
            return Ok(Action::Nothing);
        }
        let decision = exec::judge_call(n.pid, n.nr, n.args, ctx.judge);
        // Everything read through the pid is trustworthy only if the thread still waits.
        if !listener.id_valid(n.id) {
            return Ok(Action::Nothing);
        }
        match decision {
            Precheck::Deny {
                errno,
                event,
                action,
            } => {
                // Audit first: the app's own message about this exec (on the same stderr)
                // cannot start before the syscall returns, so the audit line comes out whole.
                let action = Precheck::report_denial(event, action, ctx);
                listener.send(n.id, Reply::Errno(errno))?;
                Ok(action)
            }
            Precheck::Trace(inflight) => {
                // Already seized (its previous exec attempt was interrupted and restarted
                // before we saw the stop): keep watching it under the new request.
                if let Some((seized, _)) = self.watch.take(n.pid) {
                    if self.interrupt_first {
                        let _ = seized.interrupt();
                    }
                    listener.send(n.id, Reply::Continue)?;
                    if !self.interrupt_first {
                        let _ = seized.interrupt();
                    }
                    self.watch.expect(n.pid, seized, inflight);
                    return Ok(Action::Nothing);
                }
                let seized = match Seized::seize(n.pid, SEIZE_OPTIONS) {
                    Ok(s) => s,
                    Err(e) => {
                        // Cannot watch the exec: fail closed.
                        crate::say!("defender: denying exec of {}: {e}", inflight.literal);
                        listener.send(n.id, Reply::Errno(exec::DENIED_EXEC_ERRNO))?;
                        return Ok(Action::Nothing);
                    }
                };
                // The interrupt makes a failed exec stop on its way back to user space (a
                // successful one stops at PTRACE_EVENT_EXEC, which clears the interrupt). With
                // a killable wait it is sent before the answer: the waiting thread ignores it
                // until then, so no instruction runs between a failed exec and the stop.
                // Otherwise it would cancel the notification, so it follows the answer.
                if !self.interrupt_first {
                    listener.send(n.id, Reply::Continue)?;
                }
                let interrupted = seized.interrupt();
                if self.interrupt_first {
                    listener.send(n.id, Reply::Continue)?;
                }
                match interrupted {
                    Ok(()) => self.watch.expect(n.pid, seized, inflight),
                    Err(SysError::Vanished { .. }) => {}
                    Err(e) => return Err(e),
                }
                Ok(Action::Nothing)
            }
        }
    }
}

impl Backend for NotifyBackend {
    fn fd(&self) -> Option<i32> {
        self.listener.as_ref().map(Listener::raw)
    }

    fn on_readable(&mut self, ctx: &Context<'_>, hangup: bool) -> Result<Action, SysError> {
        if hangup {
            // No task uses the filter any more.
            self.listener = None;
            return Ok(Action::Nothing);
        }
        self.handle_one(ctx)
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
        // An exec stop nobody expected is not this backend's business: let it go.
        match self.watch.on_stop(stopped, ctx, |_| None)? {
            Handled::Done(action) => Ok((true, action)),
            // The interrupt (the exec failed), a group-stop or a signal: the exec is over.
            Handled::Other(stopped) if self.watch.take(pid).is_some() => {
                Release::Detach.apply(stopped)?;
                Ok((true, Action::Nothing))
            }
            Handled::Other(_) => Ok((false, Action::Nothing)),
        }
    }
}
