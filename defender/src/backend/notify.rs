//! Seccomp user-notification backend.
//!
//! The app's filter sends `execve`/`execveat` to the listener; every other syscall runs at full
//! speed. A notified exec is judged on its path; a denied one fails with EACCES. An allowed one
//! is let through only after its thread is seized with `PTRACE_O_TRACEEXEC`, so the new image is
//! checked at `PTRACE_EVENT_EXEC` before its first instruction; the path the defender read may
//! have been rewritten by another thread, but `/proc/PID/exe` at that stop cannot be. Right after
//! the `CONTINUE` answer the thread is interrupted: a failed exec then stops with
//! `PTRACE_EVENT_STOP` instead of an exec stop, and is detached.

use std::collections::HashMap;

use super::loader::{self, Followed, LoaderWatch};
use super::{postcheck, precheck, Action, Backend, Context, ExecInFlight, Postcheck, Precheck};
use crate::exec_target::ExecCall;
use crate::sys::bpf::{self, Rule};
use crate::sys::notify::{Listener, Notification, Reply};
use crate::sys::process::{self, WaitStatus};
use crate::sys::SysError;
use crate::tracee::{Seized, StopKind, Stopped};

/// Options for the threads seized at exec: report the exec; kill them if the defender dies.
const SEIZE_OPTIONS: i32 = libc::PTRACE_O_TRACEEXEC | libc::PTRACE_O_EXITKILL;

/// Syscalls the app may never use (they would let it escape or tamper with supervision).
pub const DENIED_SYSCALLS: &[i64] = &[
    libc::SYS_ptrace,
    libc::SYS_process_vm_readv,
    libc::SYS_process_vm_writev,
    libc::SYS_pidfd_getfd,
    libc::SYS_userfaultfd,
    libc::SYS_io_uring_setup,
    libc::SYS_io_uring_enter,
    libc::SYS_io_uring_register,
];

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
    let eperm = bpf::Action::Errno(libc::EPERM as u16);
    let mut rules = vec![
        Rule::Syscall {
            nr: libc::SYS_execve as u32,
            action: bpf::Action::Notify,
        },
        Rule::Syscall {
            nr: libc::SYS_execveat as u32,
            action: bpf::Action::Notify,
        },
        Rule::SyscallArgMask {
            nr: libc::SYS_seccomp as u32,
            arg: 1,
            mask: libc::SECCOMP_FILTER_FLAG_NEW_LISTENER as u32,
            action: eperm,
        },
    ];
    rules.extend_from_slice(extra);
    rules.extend(DENIED_SYSCALLS.iter().map(|&nr| Rule::Syscall {
        nr: nr as u32,
        action: eperm,
    }));
    bpf::program(&rules, bpf::Action::Allow)
}

/// The notification backend's state.
pub struct NotifyBackend {
    listener: Option<Listener>,
    /// Threads let through to exec, by tid, waiting for their exec (or interrupt) stop.
    inflight: HashMap<i32, (Seized, ExecInFlight)>,
    /// Dynamic loaders run directly, followed until they open their program.
    loaders: HashMap<i32, LoaderWatch>,
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
        NotifyBackend {
            listener: Some(listener),
            inflight: HashMap::new(),
            loaders: HashMap::new(),
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
        let call = ExecCall::read(n.pid, n.nr, n.args);
        let decision = precheck(n.pid, &call, ctx.judge);
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
                listener.send(n.id, Reply::Errno(errno))?;
                if let Some(event) = event {
                    (ctx.audit)(event);
                }
                Ok(action)
            }
            Precheck::Trace(inflight) => {
                // Already seized (its previous exec attempt was interrupted and restarted
                // before we saw the stop): keep watching it under the new request.
                if let Some((seized, _)) = self.inflight.remove(&n.pid) {
                    if self.interrupt_first {
                        let _ = seized.interrupt();
                    }
                    listener.send(n.id, Reply::Continue)?;
                    if !self.interrupt_first {
                        let _ = seized.interrupt();
                    }
                    self.inflight.insert(n.pid, (seized, inflight));
                    return Ok(Action::Nothing);
                }
                let seized = match Seized::seize(n.pid, SEIZE_OPTIONS) {
                    Ok(s) => s,
                    Err(e) => {
                        // Cannot watch the exec: fail closed.
                        eprintln!("defender: denying exec of {}: {e}", inflight.literal);
                        listener.send(n.id, Reply::Errno(super::DENIED_EXEC_ERRNO))?;
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
                    Ok(()) => {
                        self.inflight.insert(n.pid, (seized, inflight));
                    }
                    Err(SysError::Vanished { .. }) => {}
                    Err(e) => return Err(e),
                }
                Ok(Action::Nothing)
            }
        }
    }

    fn on_exec_stop(&mut self, stopped: Stopped, ctx: &Context<'_>) -> Result<Action, SysError> {
        let former = stopped
            .event_msg()
            .map(|m| m as i32)
            .unwrap_or(stopped.pid());
        let entry = self.inflight.remove(&former);
        if former != stopped.pid() {
            // A non-leader exec'd: the old leader is gone, the thread took over its pid.
            self.inflight.remove(&stopped.pid());
        }
        let Some((_seized, inflight)) = entry else {
            return detach_quietly(stopped).map(|()| Action::Nothing);
        };
        match postcheck(stopped.pid(), &inflight, ctx.judge) {
            Postcheck::Allow => detach_quietly(stopped).map(|()| Action::Nothing),
            Postcheck::WatchLoader(watch) => {
                let pid = stopped.pid();
                loader::start(stopped, SEIZE_OPTIONS)?;
                self.loaders.insert(pid, watch);
                Ok(Action::Nothing)
            }
            Postcheck::Alert(event) => {
                (ctx.audit)(event);
                detach_quietly(stopped).map(|()| Action::Nothing)
            }
            Postcheck::Kill(event) => {
                kill_quietly(stopped.pid());
                (ctx.audit)(event);
                Ok(Action::Nothing)
            }
            Postcheck::Block(event) => {
                kill_quietly(stopped.pid());
                (ctx.audit)(event);
                Ok(Action::Block)
            }
        }
    }
}

fn detach_quietly(stopped: Stopped) -> Result<(), SysError> {
    match stopped.detach() {
        Ok(()) | Err(SysError::Vanished { .. }) => Ok(()),
        Err(e) => Err(e),
    }
}

fn kill_quietly(pid: i32) {
    let _ = process::kill(pid, libc::SIGKILL);
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
            self.inflight.remove(&pid);
            self.loaders.remove(&pid);
            return Ok((false, Action::Nothing));
        };
        if let Some(watch) = self.loaders.get_mut(&pid) {
            return match loader::on_stop(watch, stopped, ctx.judge)? {
                Followed::Resumed => Ok((true, Action::Nothing)),
                Followed::Finished(stopped) => {
                    self.loaders.remove(&pid);
                    detach_quietly(stopped).map(|()| (true, Action::Nothing))
                }
                Followed::Killed { event, block } => {
                    self.loaders.remove(&pid);
                    (ctx.audit)(event);
                    Ok((
                        true,
                        if block {
                            Action::Block
                        } else {
                            Action::Nothing
                        },
                    ))
                }
            };
        }
        if stopped.kind() == StopKind::Event(libc::PTRACE_EVENT_EXEC) {
            return self.on_exec_stop(stopped, ctx).map(|a| (true, a));
        }
        // The interrupt (the exec failed), a group-stop or a signal: the exec is over.
        if self.inflight.remove(&pid).is_some() {
            detach_quietly(stopped)?;
            return Ok((true, Action::Nothing));
        }
        Ok((false, Action::Nothing))
    }
}
