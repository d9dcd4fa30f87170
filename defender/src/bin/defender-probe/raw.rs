//! Raw operations for `defender-probe`, the helper that tests and benchmarks run under the
//! defender: the attacks the defender must stop (racing exec paths, descriptor and memfd execs,
//! foreign ABIs, escape syscalls) and the benchmark workloads. It belongs to the test helper
//! binary, not the library, so the defender that ships carries none of this `unsafe`; each
//! block has its SAFETY comment as in `defender::sys`.

use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};

use defender::sys::SysError;

fn check(ret: libc::c_long, op: &'static str, pid: i32) -> Result<libc::c_long, SysError> {
    if ret < 0 {
        Err(SysError::last(op, pid))
    } else {
        Ok(ret)
    }
}

/// NULL-terminated pointer array for argv/envp.
fn ptrs(items: &[CString]) -> Vec<*const libc::c_char> {
    let mut v: Vec<_> = items.iter().map(|c| c.as_ptr()).collect();
    v.push(std::ptr::null());
    v
}

fn environ() -> Vec<CString> {
    std::env::vars()
        .filter_map(|(k, v)| CString::new(format!("{k}={v}")).ok())
        .collect()
}

/// `execveat(dirfd, path, argv, environ, flags)`; returns only on failure.
pub fn execveat(dirfd: i32, path: &CString, argv: &[CString], flags: i32) -> SysError {
    let env = environ();
    let (a, e) = (ptrs(argv), ptrs(&env));
    // SAFETY: all strings are NUL-terminated and the arrays NULL-terminated; they outlive the call.
    unsafe {
        libc::syscall(
            libc::SYS_execveat,
            dirfd,
            path.as_ptr(),
            a.as_ptr(),
            e.as_ptr(),
            flags,
        )
    };
    SysError::last("execveat", 0)
}

/// `execve(path, argv, environ)`; returns only on failure.
pub fn execve(path: &CString, argv: &[CString]) -> SysError {
    let env = environ();
    let (a, e) = (ptrs(argv), ptrs(&env));
    // SAFETY: as for `execveat`.
    unsafe { libc::execve(path.as_ptr(), a.as_ptr(), e.as_ptr()) };
    SysError::last("execve", 0)
}

/// `memfd_create(name, 0)`.
pub fn memfd_create(name: &CString) -> Result<OwnedFd, SysError> {
    // SAFETY: `name` is NUL-terminated.
    let fd = check(
        unsafe { libc::memfd_create(name.as_ptr(), 0) }.into(),
        "memfd_create",
        0,
    )?;
    // SAFETY: a fresh descriptor owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// `fork()`: `Ok(0)` in the child, the child's pid in the parent. The child must only exec or
/// `_exit` (the caller may have threads).
pub fn fork() -> Result<i32, SysError> {
    // SAFETY: callers keep the child to async-signal-safe work (exec, _exit).
    check(unsafe { libc::fork() }.into(), "fork", 0).map(|p| p as i32)
}

/// `_exit(code)`.
pub fn exit_now(code: i32) -> ! {
    // SAFETY: _exit never returns.
    unsafe { libc::_exit(code) }
}

/// The i386 `getpid` through `int 0x80` from 64-bit code: the defender's filter must kill the
/// process (the audit arch is I386). Returns only if it was not killed.
pub fn int80_getpid() -> i64 {
    let mut ret: i64 = 20; // __NR_getpid on i386
                           // SAFETY: `int 0x80` with eax=20 takes no pointer arguments; it clobbers only eax (and the
                           // kernel preserves the other registers for the compat entry).
    unsafe { std::arch::asm!("int 0x80", inout("rax") ret, options(nostack)) };
    ret
}

/// `getpid` through the x32 ABI (syscall number with bit 30 set): must be killed too.
pub fn x32_getpid() -> i64 {
    // SAFETY: integer-only syscall.
    unsafe { libc::syscall(0x4000_0000 | libc::SYS_getpid) }
}

/// Tries each syscall the app's filter denies; returns (name, errno or 0).
pub fn escape_attempts() -> Vec<(&'static str, i32)> {
    let errno = || std::io::Error::last_os_error().raw_os_error().unwrap_or(0);
    let mut out = Vec::new();
    let mut params = [0u8; 120];
    // SAFETY: io_uring_setup reads/writes a 120-byte io_uring_params; `params` is that size.
    let r = unsafe { libc::syscall(libc::SYS_io_uring_setup, 4, params.as_mut_ptr()) };
    out.push(("io_uring_setup", if r < 0 { errno() } else { 0 }));
    // SAFETY: PTRACE_TRACEME has no pointer arguments.
    let r = unsafe { libc::ptrace(libc::PTRACE_TRACEME, 0, 0usize, 0usize) };
    out.push(("ptrace", if r < 0 { errno() } else { 0 }));
    let mut buf = [0u8; 8];
    let local = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: 8,
    };
    let remote = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: 8,
    };
    // SAFETY: both iovecs describe our own 8-byte buffer.
    let r = unsafe { libc::process_vm_readv(libc::getpid(), &local, 1, &remote, 1, 0) };
    out.push(("process_vm_readv", if r < 0 { errno() } else { 0 }));
    // SAFETY: as above; process_vm_writev reads our buffer and writes the same buffer.
    let r = unsafe { libc::process_vm_writev(libc::getpid(), &local, 1, &remote, 1, 0) };
    out.push(("process_vm_writev", if r < 0 { errno() } else { 0 }));
    // SAFETY: integer-only syscall.
    let r = unsafe { libc::syscall(libc::SYS_userfaultfd, 0) };
    out.push(("userfaultfd", if r < 0 { errno() } else { 0 }));
    // SAFETY: integer-only syscall (pidfd 0 is not a pidfd: EBADF when allowed).
    let r = unsafe { libc::syscall(libc::SYS_pidfd_getfd, 0, 0, 0) };
    out.push(("pidfd_getfd", if r < 0 { errno() } else { 0 }));
    let filter = [libc::sock_filter {
        code: (libc::BPF_RET | libc::BPF_K) as u16,
        jt: 0,
        jf: 0,
        k: libc::SECCOMP_RET_ALLOW,
    }];
    let prog = libc::sock_fprog {
        len: 1,
        filter: filter.as_ptr().cast_mut(),
    };
    // SAFETY: `prog` points at a one-instruction filter alive for the call.
    let r = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER,
            libc::SECCOMP_FILTER_FLAG_NEW_LISTENER,
            &prog,
        )
    };
    out.push(("seccomp_listener", if r < 0 { errno() } else { 0 }));
    out
}

/// A path buffer another thread rewrites while this thread execs from it: `execve` reads the
/// path the defender did not judge. Returns only on failure of the exec.
pub fn racing_execve(a: &[u8; 32], b: &[u8; 32], argv: &[CString]) -> SysError {
    static BUF: [AtomicU8; 32] = [const { AtomicU8::new(0) }; 32];
    static STOP: AtomicBool = AtomicBool::new(false);
    for (slot, byte) in BUF.iter().zip(a) {
        slot.store(*byte, Ordering::Relaxed);
    }
    let (a, b) = (*a, *b);
    std::thread::spawn(move || {
        let mut flip = false;
        while !STOP.load(Ordering::Relaxed) {
            let src = if flip { &a } else { &b };
            for (slot, byte) in BUF.iter().zip(src) {
                slot.store(*byte, Ordering::Relaxed);
            }
            flip = !flip;
        }
    });
    let env = environ();
    let (av, ev) = (ptrs(argv), ptrs(&env));
    let mut last = SysError::last("execve", 0);
    for _ in 0..200 {
        // SAFETY: BUF always holds a NUL-terminated string (both sources are NUL-padded to 32
        // bytes and written byte by byte, so a mix is still terminated by the last byte); the
        // arrays are NULL-terminated and outlive the call.
        unsafe { libc::execve(BUF.as_ptr().cast(), av.as_ptr(), ev.as_ptr()) };
        last = SysError::last("execve", 0);
    }
    STOP.store(true, Ordering::Relaxed);
    last
}

/// What the child of [`vfork_exec`] writes on stdout when its exec failed (before `_exit`ing
/// with the exec's errno as its status).
pub const VFORK_CHILD_REPORT: &str = "vfork child: exec failed\n";

/// The raw `vfork` system call, then `execve(path, argv, environ)` in the child; a child whose
/// exec fails writes [`VFORK_CHILD_REPORT`] to stdout and `_exit`s with the errno. Returns the
/// child's pid in the parent, which the kernel resumes once the child has exec'd or exited.
///
/// The child borrows the parent's memory and stack until then, so everything it does is in one
/// assembly block: it runs no compiler-generated code, touches no memory (not even the stack)
/// and only makes system calls. `libc::vfork` is deprecated for exactly that reason (the
/// compiler does not know the call returns twice).
#[cfg(target_arch = "x86_64")]
pub fn vfork_exec(path: &CString, argv: &[CString]) -> Result<i32, SysError> {
    let env = environ();
    let (a, e) = (ptrs(argv), ptrs(&env));
    let report = VFORK_CHILD_REPORT.as_bytes();
    let ret: i64;
    // SAFETY: the strings and pointer arrays are NUL/NULL-terminated and outlive the block. The
    // parent's side is one `syscall` instruction (clobbers rax, rcx, r11, declared). The child
    // runs only the instructions of this block and leaves through `exit_group`, so it never
    // returns into (or writes to) the frames it shares with the suspended parent; the registers
    // it changes are its own (the kernel restores the parent's). The write only reads `report`.
    unsafe {
        std::arch::asm!(
            "syscall",
            "test rax, rax",
            "jnz 2f",
            "mov rdi, {path}",
            "mov rsi, {argv}",
            "mov rdx, {envp}",
            "mov eax, {execve}",
            "syscall",
            "neg rax",
            "mov {path}, rax",
            "mov eax, {write}",
            "mov edi, 1",
            "mov rsi, {msg}",
            "mov rdx, {len}",
            "syscall",
            "mov rdi, {path}",
            "mov eax, {exit}",
            "syscall",
            "2:",
            path = inout(reg) path.as_ptr() => _,
            argv = in(reg) a.as_ptr(),
            envp = in(reg) e.as_ptr(),
            msg = in(reg) report.as_ptr(),
            len = in(reg) report.len(),
            execve = const libc::SYS_execve,
            write = const libc::SYS_write,
            exit = const libc::SYS_exit_group,
            inlateout("rax") libc::SYS_vfork => ret,
            out("rdi") _,
            out("rsi") _,
            out("rdx") _,
            out("rcx") _,
            out("r11") _,
            options(nostack),
        );
    }
    if ret < 0 {
        let errno = i32::try_from(-ret).unwrap_or(libc::EINVAL);
        return Err(SysError::Failed {
            op: "vfork",
            error: std::io::Error::from_raw_os_error(errno),
        });
    }
    i32::try_from(ret).map_err(|_| SysError::Failed {
        op: "vfork",
        error: std::io::Error::from_raw_os_error(libc::EOVERFLOW),
    })
}

/// Raw `fork` + `_exit(0)` in the child + wait: the benchmark's fork-only workload.
pub fn fork_and_reap() -> Result<(), SysError> {
    // SAFETY: the child only calls _exit.
    let pid = check(unsafe { libc::fork() }.into(), "fork", 0)? as i32;
    if pid == 0 {
        exit_now(0);
    }
    let mut status = 0;
    // SAFETY: `status` is a valid out-pointer.
    check(
        unsafe { libc::waitpid(pid, &mut status, 0) }.into(),
        "waitpid",
        pid,
    )
    .map(drop)
}

/// The descriptor number of an open file, for `/proc/self/fd/N` paths.
pub fn raw(fd: &impl AsRawFd) -> i32 {
    fd.as_raw_fd()
}
