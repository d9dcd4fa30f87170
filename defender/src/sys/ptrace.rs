//! The ptrace requests the defender uses. The typed wrappers in `crate::tracee` make sure the
//! stop-only requests are only issued on stopped tracees.

use super::{check, SysError};

/// `PTRACE_SEIZE` with `options`; the tracee keeps running.
pub fn seize(tid: i32, options: i32) -> Result<(), SysError> {
    // SAFETY: no memory arguments (addr 0, data is the option bitmask).
    let r = unsafe { libc::ptrace(libc::PTRACE_SEIZE, tid, 0usize, options as usize) };
    check(r, "ptrace(PTRACE_SEIZE)", tid).map(drop)
}

/// `PTRACE_INTERRUPT`: ask a seized tracee to stop at its next chance.
pub fn interrupt(tid: i32) -> Result<(), SysError> {
    // SAFETY: no memory arguments.
    let r = unsafe { libc::ptrace(libc::PTRACE_INTERRUPT, tid, 0usize, 0usize) };
    check(r, "ptrace(PTRACE_INTERRUPT)", tid).map(drop)
}

/// `PTRACE_DETACH`, delivering `sig` (0 for none). The tracee must be stopped.
pub(crate) fn detach(tid: i32, sig: i32) -> Result<(), SysError> {
    // SAFETY: no memory arguments.
    let r = unsafe { libc::ptrace(libc::PTRACE_DETACH, tid, 0usize, sig as usize) };
    check(r, "ptrace(PTRACE_DETACH)", tid).map(drop)
}

/// `PTRACE_CONT`, delivering `sig`. The tracee must be stopped.
pub(crate) fn cont(tid: i32, sig: i32) -> Result<(), SysError> {
    // SAFETY: no memory arguments.
    let r = unsafe { libc::ptrace(libc::PTRACE_CONT, tid, 0usize, sig as usize) };
    check(r, "ptrace(PTRACE_CONT)", tid).map(drop)
}

/// `PTRACE_SETOPTIONS`. The tracee must be stopped.
pub(crate) fn set_options(tid: i32, options: i32) -> Result<(), SysError> {
    // SAFETY: no memory arguments.
    let r = unsafe { libc::ptrace(libc::PTRACE_SETOPTIONS, tid, 0usize, options as usize) };
    check(r, "ptrace(PTRACE_SETOPTIONS)", tid).map(drop)
}

/// `PTRACE_GETEVENTMSG`. The tracee must be stopped.
pub(crate) fn event_msg(tid: i32) -> Result<u64, SysError> {
    let mut msg: libc::c_ulong = 0;
    // SAFETY: the kernel writes one unsigned long into `msg`.
    let r = unsafe { libc::ptrace(libc::PTRACE_GETEVENTMSG, tid, 0usize, &raw mut msg) };
    check(r, "ptrace(PTRACE_GETEVENTMSG)", tid).map(|_| msg)
}

/// The syscall registers of a stopped tracee.
#[derive(Clone, Copy, Debug)]
pub struct SyscallRegs {
    pub nr: u64,
    pub args: [u64; 6],
}

/// `PTRACE_GETREGS`, reduced to the syscall number and arguments. The tracee must be stopped.
pub(crate) fn syscall_regs(tid: i32) -> Result<SyscallRegs, SysError> {
    // SAFETY: plain data, filled by the kernel.
    let mut regs: libc::user_regs_struct = unsafe { std::mem::zeroed() };
    // SAFETY: the kernel writes one user_regs_struct into `regs`.
    let r = unsafe { libc::ptrace(libc::PTRACE_GETREGS, tid, 0usize, &raw mut regs) };
    check(r, "ptrace(PTRACE_GETREGS)", tid)?;
    Ok(SyscallRegs {
        nr: regs.orig_rax,
        args: [regs.rdi, regs.rsi, regs.rdx, regs.r10, regs.r8, regs.r9],
    })
}

/// Makes the pending syscall of a stopped tracee fail with `-errno` (skips it: number -1,
/// return value set). The tracee must be in a seccomp stop.
pub(crate) fn fail_syscall(tid: i32, errno: i32) -> Result<(), SysError> {
    // SAFETY: plain data, filled by the kernel.
    let mut regs: libc::user_regs_struct = unsafe { std::mem::zeroed() };
    // SAFETY: the kernel writes one user_regs_struct into `regs`.
    let r = unsafe { libc::ptrace(libc::PTRACE_GETREGS, tid, 0usize, &raw mut regs) };
    check(r, "ptrace(PTRACE_GETREGS)", tid)?;
    regs.orig_rax = u64::MAX;
    regs.rax = (-(i64::from(errno))) as u64;
    // SAFETY: the kernel reads one user_regs_struct from `regs`.
    let r = unsafe { libc::ptrace(libc::PTRACE_SETREGS, tid, 0usize, &raw const regs) };
    check(r, "ptrace(PTRACE_SETREGS)", tid).map(drop)
}

/// `PTRACE_LISTEN`: leave a seized tracee in its group-stop but let it report the next event.
/// The tracee must be in a group-stop.
pub(crate) fn listen(tid: i32) -> Result<(), SysError> {
    // SAFETY: no memory arguments.
    let r = unsafe { libc::ptrace(libc::PTRACE_LISTEN, tid, 0usize, 0usize) };
    check(r, "ptrace(PTRACE_LISTEN)", tid).map(drop)
}

/// `PTRACE_SYSCALL`: resume until the next syscall entry or exit, delivering `sig`. The tracee
/// must be stopped.
pub(crate) fn syscall_resume(tid: i32, sig: i32) -> Result<(), SysError> {
    // SAFETY: no memory arguments.
    let r = unsafe { libc::ptrace(libc::PTRACE_SYSCALL, tid, 0usize, sig as usize) };
    check(r, "ptrace(PTRACE_SYSCALL)", tid).map(drop)
}

/// The return value of the syscall a tracee is leaving (at a syscall-exit stop).
pub(crate) fn syscall_return(tid: i32) -> Result<i64, SysError> {
    // SAFETY: plain data, filled by the kernel.
    let mut regs: libc::user_regs_struct = unsafe { std::mem::zeroed() };
    // SAFETY: the kernel writes one user_regs_struct into `regs`.
    let r = unsafe { libc::ptrace(libc::PTRACE_GETREGS, tid, 0usize, &raw mut regs) };
    check(r, "ptrace(PTRACE_GETREGS)", tid)?;
    Ok(regs.rax as i64)
}
