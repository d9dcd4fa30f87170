//! The two ways of intercepting execs, and the judging they share.
//!
//! - [`notify`]: seccomp user notification (primary): only execs reach the defender.
//! - [`ptrace`]: ptrace with a `SECCOMP_RET_TRACE` filter (fallback for kernels without user
//!   notification or `pidfd_getfd`).
//!
//! - [`exec`]: judging one exec, shared by both. Each exec is judged twice: before it runs, on
//!   the path the caller named (deny early with EACCES), and at `PTRACE_EVENT_EXEC`, on
//!   `/proc/PID/exe` of the new image before its first instruction (kill it if a denied program
//!   got through a race, a symlink, a descriptor, a `#!` line or the dynamic loader).
//! - [`loader`]: following a directly-run dynamic loader until it has opened its program.

pub mod exec;
pub mod loader;
pub mod notify;
pub mod ptrace;

pub use exec::{ExecInFlight, DENIED_EXEC_ERRNO};

use crate::audit::ProcessEvent;
use crate::judge::ExecJudge;
use crate::sys::bpf::{self, Rule};
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

/// The app's filter, both backends: execs go to the defender with `exec` (notify or trace),
/// then the backend's own `rules`, a second seccomp listener refused, the `extra` rules (the
/// network guard's), and the escape hatches denied with EPERM; everything else is allowed.
/// (Foreign ABIs are killed by the program builder.)
pub fn app_filter(exec: bpf::Action, rules: &[Rule], extra: &[Rule]) -> Vec<libc::sock_filter> {
    let eperm = bpf::Action::Errno(libc::EPERM as u16);
    let mut all = vec![
        Rule::Syscall {
            nr: libc::SYS_execve as u32,
            action: exec,
        },
        Rule::Syscall {
            nr: libc::SYS_execveat as u32,
            action: exec,
        },
    ];
    all.extend_from_slice(rules);
    all.push(Rule::SyscallArgMask {
        nr: libc::SYS_seccomp as u32,
        arg: 1,
        mask: libc::SECCOMP_FILTER_FLAG_NEW_LISTENER as u32,
        action: eperm,
    });
    all.extend_from_slice(extra);
    all.extend(DENIED_SYSCALLS.iter().map(|&nr| Rule::Syscall {
        nr: nr as u32,
        action: eperm,
    }));
    bpf::program(&all, bpf::Action::Allow)
}
