//! Tracee states as types: a [`Seized`] thread is running, a [`Stopped`] one is in a ptrace
//! stop. Stop-only requests (detach, read the event message, registers) exist only on
//! [`Stopped`], which is only made from a wait status, so they cannot be issued on a running
//! thread.

use crate::sys::process::WaitStatus;
use crate::sys::{ptrace, SysError};

/// `PTRACE_EVENT_STOP` (group-stop or `PTRACE_INTERRUPT` on a seized tracee).
pub const EVENT_STOP: i32 = 0x80;

/// A thread the defender has seized; it keeps running until it stops.
#[derive(Debug, PartialEq, Eq)]
pub struct Seized {
    tid: i32,
}

impl Seized {
    /// `PTRACE_SEIZE` the thread with `options`.
    pub fn seize(tid: i32, options: i32) -> Result<Seized, SysError> {
        ptrace::seize(tid, options)?;
        Ok(Seized { tid })
    }

    /// A thread that became a tracee through auto-attach (`PTRACE_O_TRACEFORK` and friends).
    pub fn auto_attached(tid: i32) -> Seized {
        Seized { tid }
    }

    pub fn tid(&self) -> i32 {
        self.tid
    }

    /// Asks the thread to stop at its next chance (`PTRACE_INTERRUPT`).
    pub fn interrupt(&self) -> Result<(), SysError> {
        ptrace::interrupt(self.tid)
    }
}

/// What kind of stop a tracee is in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StopKind {
    /// `PTRACE_EVENT_*` (exec, seccomp, fork, clone...).
    Event(i32),
    /// Group-stop or interrupt (`PTRACE_EVENT_STOP`).
    Interrupted,
    /// Signal-delivery stop: the signal is pending and is re-injected on resume.
    Signal(i32),
}

/// A tracee in a ptrace stop.
#[derive(Debug, PartialEq, Eq)]
pub struct Stopped {
    pid: i32,
    kind: StopKind,
}

impl Stopped {
    /// The stop `waitpid` just reported for `pid`, if the status is a stop.
    pub fn from_wait(pid: i32, status: WaitStatus) -> Option<Stopped> {
        match status {
            WaitStatus::Stopped { signal, event } => {
                let kind = match event {
                    0 => StopKind::Signal(signal),
                    EVENT_STOP => StopKind::Interrupted,
                    e => StopKind::Event(e),
                };
                Some(Stopped { pid, kind })
            }
            _ => None,
        }
    }

    pub fn pid(&self) -> i32 {
        self.pid
    }

    pub fn kind(&self) -> StopKind {
        self.kind
    }

    /// `PTRACE_GETEVENTMSG` (the former tid at an exec stop, the new pid at a fork stop).
    pub fn event_msg(&self) -> Result<u64, SysError> {
        ptrace::event_msg(self.pid)
    }

    /// The syscall number and arguments (at a seccomp stop).
    pub fn syscall_regs(&self) -> Result<ptrace::SyscallRegs, SysError> {
        ptrace::syscall_regs(self.pid)
    }

    /// Makes the pending syscall fail with `errno` (at a seccomp stop).
    pub fn fail_syscall(&self, errno: i32) -> Result<(), SysError> {
        ptrace::fail_syscall(self.pid, errno)
    }

    pub fn set_options(&self, options: i32) -> Result<(), SysError> {
        ptrace::set_options(self.pid, options)
    }

    fn pending_signal(&self) -> i32 {
        match self.kind {
            StopKind::Signal(s) if s != libc::SIGTRAP | 0x80 => s,
            _ => 0,
        }
    }

    /// Lets the tracee go, re-injecting a pending signal.
    pub fn detach(self) -> Result<(), SysError> {
        ptrace::detach(self.pid, self.pending_signal())
    }

    /// Leaves a group-stopped tracee stopped (job control) while it stays traced.
    pub fn listen(self) -> Result<Seized, SysError> {
        ptrace::listen(self.pid)?;
        Ok(Seized { tid: self.pid })
    }

    /// Resumes the tracee until its next syscall entry or exit (`PTRACE_SYSCALL`),
    /// re-injecting a pending signal.
    pub fn resume_syscall(self) -> Result<Seized, SysError> {
        ptrace::syscall_resume(self.pid, self.pending_signal())?;
        Ok(Seized { tid: self.pid })
    }

    /// The return value of the syscall the tracee is leaving (at a syscall-exit stop).
    pub fn syscall_return(&self) -> Result<i64, SysError> {
        ptrace::syscall_return(self.pid)
    }

    /// Whether this is a syscall entry/exit stop (`PTRACE_O_TRACESYSGOOD`).
    pub fn is_syscall_stop(&self) -> bool {
        self.kind == StopKind::Signal(libc::SIGTRAP | 0x80)
    }

    /// Resumes the tracee (still traced), re-injecting a pending signal.
    pub fn resume(self) -> Result<Seized, SysError> {
        ptrace::cont(self.pid, self.pending_signal())?;
        Ok(Seized { tid: self.pid })
    }
}
