//! The library's only place with `unsafe` (the test helper `defender-probe` has its own raw
//! attacks in its binary): thin wrappers over the Linux system calls the defender needs.
//!
//! Each wrapper makes one system call, turns the result into a `Result` on the spot and documents
//! its invariant with a `// SAFETY:` comment. Everything above this module is safe Rust.
//!
//! - [`kernel`]: the newer kernel features requested, and the test-only assumed kernel.
//! - [`bpf`]: a small typed builder for classic BPF seccomp programs (no `unsafe`).
//! - [`spawn`]: fork the app with its seccomp filter and hand the listener to the defender.
//! - [`notify`]: seccomp user-notification ioctls and `process_vm_readv`.
//! - [`ptrace`]: the few ptrace requests the defender uses.
//! - [`process`]: signals, waiting, `prctl`, pidfds, `poll`.
//! - [`own_blocks`]: overwrite the defender's own argument and environment blocks (`/proc/PID/cmdline`, `/proc/PID/environ`).
//! - [`net`]: socket-side calls for the network policy (take, inspect, connect/bind/send in the app's place).

pub mod bpf;
pub mod kernel;
pub mod net;
pub mod notify;
pub mod own_blocks;
pub mod process;
pub mod ptrace;
pub mod spawn;

use std::io;

/// A failed system call: which operation, on which process, and the kernel's error.
#[derive(Debug, thiserror::Error)]
pub enum SysError {
    /// The target thread or process no longer exists (`ESRCH`).
    #[error("{op}: process {pid} no longer exists")]
    Vanished { op: &'static str, pid: i32 },
    /// Any other failure (the kernel's error is part of the message, not a separate cause).
    #[error("{op}: {error}")]
    Failed { op: &'static str, error: io::Error },
}

impl SysError {
    /// Builds the error from `errno` right after a failed call.
    pub fn last(op: &'static str, pid: i32) -> SysError {
        let source = io::Error::last_os_error();
        if source.raw_os_error() == Some(libc::ESRCH) {
            SysError::Vanished { op, pid }
        } else {
            SysError::Failed { op, error: source }
        }
    }

    /// The raw errno, when there is one.
    pub fn errno(&self) -> Option<i32> {
        match self {
            SysError::Vanished { .. } => Some(libc::ESRCH),
            SysError::Failed { error: source, .. } => source.raw_os_error(),
        }
    }
}

/// Turns a `-1`-on-error return value into a `Result`.
pub(crate) fn check(
    ret: libc::c_long,
    op: &'static str,
    pid: i32,
) -> Result<libc::c_long, SysError> {
    if ret < 0 {
        Err(SysError::last(op, pid))
    } else {
        Ok(ret)
    }
}
