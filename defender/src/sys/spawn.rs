//! Forking the app under its seccomp filter.
//!
//! The child prepares itself (death signal, signal mask, no ptrace capability, no_new_privs,
//! filter), reports back through a pipe, waits for the parent's go, then execs the app. With a
//! listener filter the child may not use any notified syscall before the parent reads the
//! listener, so it passes the listener's fd *number* through the pipe (`write` is not notified)
//! and the parent takes the descriptor itself with `pidfd_open` + `pidfd_getfd`.
//!
//! Between `fork` and `execve` the child only makes raw system calls on memory prepared before
//! the fork: no allocation, no locks (the defender may have other threads).
//!
//! The defender is not dumpable, and neither is the child it forks until the app's `execve`
//! resets the flag. A defender with `CAP_SYS_PTRACE` takes the listener and traces the child
//! regardless; one without it (a non-root container user) needs the child dumpable, so only
//! then the child sets the flag itself, before any app code exists.

use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use super::{process, SysError};

const CAP_SYS_PTRACE: u32 = 19;
const LINUX_CAPABILITY_VERSION_3: u32 = 0x2008_0522;

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: i32,
}

#[repr(C)]
#[derive(Clone, Copy)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

/// How the child installs its filter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FilterMode {
    /// `SECCOMP_FILTER_FLAG_NEW_LISTENER`: the parent receives the listener.
    Listener,
    /// A plain filter (its `SECCOMP_RET_TRACE` actions need a tracer: the parent seizes the
    /// child before releasing it).
    Traced,
}

/// Everything the child needs, prepared before `fork`.
pub struct SpawnSpec {
    program: CString,
    _argv: Vec<CString>,
    argv_ptrs: Vec<*const libc::c_char>,
    _env: Vec<CString>,
    env_ptrs: Vec<*const libc::c_char>,
    filter: Vec<libc::sock_filter>,
    mode: FilterMode,
    exec_error_prefix: Vec<u8>,
    /// Request `SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV` ([`super::kernel::requested`]).
    request_killable_wait: bool,
}

impl SpawnSpec {
    /// `program` is the path to exec; `argv[0]` is what the app sees as its name.
    pub fn new(
        program: CString,
        argv: Vec<CString>,
        env: Vec<CString>,
        filter: Vec<libc::sock_filter>,
        mode: FilterMode,
    ) -> SpawnSpec {
        let mut argv_ptrs: Vec<_> = argv.iter().map(|a| a.as_ptr()).collect();
        argv_ptrs.push(std::ptr::null());
        let mut env_ptrs: Vec<_> = env.iter().map(|a| a.as_ptr()).collect();
        env_ptrs.push(std::ptr::null());
        let mut exec_error_prefix = b"defender: cannot execute ".to_vec();
        exec_error_prefix.extend_from_slice(program.as_bytes());
        exec_error_prefix.extend_from_slice(b": ");
        SpawnSpec {
            program,
            _argv: argv,
            argv_ptrs,
            _env: env,
            env_ptrs,
            filter,
            mode,
            exec_error_prefix,
            request_killable_wait: super::kernel::requested().wait_killable_recv,
        }
    }
}

/// The step of the child's set-up that failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(i32)]
enum Step {
    Ready = 0,
    /// Ready, but the kernel refused `SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV`.
    ReadyInterruptible = 4,
    DeathSignal = 1,
    NoNewPrivs = 2,
    Filter = 3,
}

/// A forked child that has installed its filter and waits for [`Pending::release`].
pub struct Pending {
    pub pid: i32,
    /// The notification listener ([`FilterMode::Listener`] only).
    pub listener: Option<OwnedFd>,
    /// Whether a received notification waits only for fatal signals
    /// (`SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV`, Linux 5.19+).
    pub killable_wait: bool,
    go: OwnedFd,
}

impl Pending {
    /// Lets the child exec the app.
    pub fn release(self) -> Result<i32, SysError> {
        write_all(self.go.as_raw_fd(), &[1]).map_err(|source| SysError::Failed {
            op: "write(go pipe)",
            error: source,
        })?;
        Ok(self.pid)
    }
}

fn pipe() -> Result<(OwnedFd, OwnedFd), SysError> {
    let mut fds = [0i32; 2];
    // SAFETY: `fds` is a writable array of two ints.
    let rc = unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) };
    super::check(rc.into(), "pipe2", 0)?;
    // SAFETY: pipe2 returned two fresh descriptors owned by nobody else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

fn write_all(fd: i32, bytes: &[u8]) -> std::io::Result<()> {
    // SAFETY: `bytes` is a readable buffer of its length.
    let n = unsafe { libc::write(fd, bytes.as_ptr().cast(), bytes.len()) };
    if n == bytes.len() as isize {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Whether this process has CAP_SYS_PTRACE in its effective set.
fn has_ptrace_capability() -> bool {
    let mut header = CapHeader {
        version: LINUX_CAPABILITY_VERSION_3,
        pid: 0,
    };
    let mut data = [CapData {
        effective: 0,
        permitted: 0,
        inheritable: 0,
    }; 2];
    // SAFETY: capget writes two CapData structs for version 3.
    if unsafe { libc::syscall(libc::SYS_capget, &raw mut header, data.as_mut_ptr()) } != 0 {
        return false;
    }
    data[0].effective & (1 << CAP_SYS_PTRACE) != 0
}

/// Forks the child and waits until its filter is installed.
pub fn spawn(spec: &SpawnSpec) -> Result<Pending, SysError> {
    let parent = process::getpid();
    let child_dumpable = !has_ptrace_capability();
    let (status_r, status_w) = pipe()?;
    let (go_r, go_w) = pipe()?;
    let fprog = libc::sock_fprog {
        len: spec.filter.len() as libc::c_ushort,
        filter: spec.filter.as_ptr().cast_mut(),
    };
    // SAFETY: the child only runs `child_main`, which makes raw syscalls on memory prepared
    // before the fork and never returns.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(SysError::last("fork", 0));
    }
    if pid == 0 {
        child_main(
            spec,
            &fprog,
            parent,
            child_dumpable,
            status_w.as_raw_fd(),
            go_r.as_raw_fd(),
        );
    }
    drop(status_w);
    drop(go_r);
    let mut report = [0u8; 8];
    let mut got = 0;
    while got < report.len() {
        // SAFETY: reads into the unread tail of `report`.
        let n = unsafe {
            libc::read(
                status_r.as_raw_fd(),
                report[got..].as_mut_ptr().cast(),
                report.len() - got,
            )
        };
        if n < 0 && std::io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) {
            continue;
        }
        if n <= 0 {
            let _ = process::wait_for(pid);
            return Err(SysError::Failed {
                op: "child set-up",
                error: std::io::Error::other("the child exited before installing its filter"),
            });
        }
        got += n as usize;
    }
    let step = i32::from_ne_bytes([report[0], report[1], report[2], report[3]]);
    let value = i32::from_ne_bytes([report[4], report[5], report[6], report[7]]);
    let killable_wait = step == Step::Ready as i32;
    if step != Step::Ready as i32 && step != Step::ReadyInterruptible as i32 {
        let _ = process::wait_for(pid);
        let op = match step {
            1 => "child set-up: prctl(PR_SET_PDEATHSIG)",
            2 => "child set-up: prctl(PR_SET_NO_NEW_PRIVS)",
            _ => "child set-up: seccomp(SECCOMP_SET_MODE_FILTER)",
        };
        return Err(SysError::Failed {
            op,
            error: std::io::Error::from_raw_os_error(value),
        });
    }
    let listener = match spec.mode {
        FilterMode::Listener => {
            let pidfd = process::pidfd_open(pid)?;
            Some(process::pidfd_getfd(&pidfd, value)?)
        }
        FilterMode::Traced => None,
    };
    Ok(Pending {
        pid,
        listener,
        killable_wait,
        go: go_w,
    })
}

fn report(fd: i32, step: Step, value: i32) {
    let mut buf = [0u8; 8];
    buf[..4].copy_from_slice(&(step as i32).to_ne_bytes());
    buf[4..].copy_from_slice(&value.to_ne_bytes());
    let _ = write_all(fd, &buf);
}

fn errno() -> i32 {
    std::io::Error::last_os_error()
        .raw_os_error()
        .unwrap_or(libc::EINVAL)
}

fn child_exit(code: i32) -> ! {
    // SAFETY: _exit never returns and is async-signal-safe.
    unsafe { libc::_exit(code) }
}

/// The child between fork and exec. Raw syscalls only.
fn child_main(
    spec: &SpawnSpec,
    fprog: &libc::sock_fprog,
    parent: i32,
    dumpable: bool,
    status_w: i32,
    go_r: i32,
) -> ! {
    if dumpable {
        // A parent without CAP_SYS_PTRACE must take our listener or trace us (see the module
        // notes). Failure shows there as EPERM.
        // SAFETY: integer-only prctl.
        unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 1, 0, 0, 0) };
    }
    // Die with the defender; close the race where it died before the prctl.
    // SAFETY: integer-only prctl.
    if unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) } != 0 {
        report(status_w, Step::DeathSignal, errno());
        child_exit(126);
    }
    // SAFETY: getppid cannot fail.
    if unsafe { libc::getppid() } != parent {
        child_exit(126);
    }
    // The defender blocks the signals it forwards and Rust ignores SIGPIPE: undo both for the app.
    // SAFETY: a zeroed sigset_t is the empty set on Linux; the old mask is not requested.
    unsafe {
        let empty: libc::sigset_t = std::mem::zeroed();
        libc::sigprocmask(libc::SIG_SETMASK, &empty, std::ptr::null_mut());
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    drop_ptrace_capability();
    // SAFETY: integer-only prctl.
    if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
        report(status_w, Step::NoNewPrivs, errno());
        child_exit(126);
    }
    let flags = match spec.mode {
        FilterMode::Listener => libc::SECCOMP_FILTER_FLAG_NEW_LISTENER,
        FilterMode::Traced => 0,
    };
    if spec.mode == FilterMode::Traced {
        // The tracer must be attached before RET_TRACE rules take effect: report, wait for go,
        // then install the filter.
        report(status_w, Step::Ready, 0);
        wait_go(go_r);
    }
    // A received notification waits only for fatal signals (Linux 5.19+): an emulated call is
    // then never restarted after the defender performed it. Older kernels: without the flag.
    let killable = match spec.mode {
        FilterMode::Listener if spec.request_killable_wait => {
            libc::SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV
        }
        _ => 0,
    };
    let install = |flags: libc::c_ulong| {
        // SAFETY: `fprog` points at the filter vector, alive for the whole child.
        unsafe {
            libc::syscall(
                libc::SYS_seccomp,
                libc::SECCOMP_SET_MODE_FILTER,
                flags,
                fprog,
            )
        }
    };
    let mut fd = install(flags | killable);
    let mut ready = if killable != 0 || spec.mode == FilterMode::Traced {
        Step::Ready
    } else {
        Step::ReadyInterruptible
    };
    if fd < 0 && killable != 0 && errno() == libc::EINVAL {
        fd = install(flags);
        ready = Step::ReadyInterruptible;
    }
    if fd < 0 {
        if spec.mode == FilterMode::Listener {
            report(status_w, Step::Filter, errno());
        }
        child_exit(126);
    }
    if spec.mode == FilterMode::Listener {
        report(status_w, ready, fd as i32);
        wait_go(go_r);
        // SAFETY: closing our own descriptor: the app must never hold the listener.
        unsafe { libc::close(fd as i32) };
    }
    // SAFETY: program/argv/env are NUL-terminated strings and NULL-terminated arrays prepared
    // before the fork.
    unsafe {
        libc::execve(
            spec.program.as_ptr(),
            spec.argv_ptrs.as_ptr(),
            spec.env_ptrs.as_ptr(),
        )
    };
    let e = errno();
    let reason: &[u8] = match e {
        libc::ENOENT => b"No such file or directory\n",
        libc::EACCES => b"Permission denied (or denied by the runtime policy)\n",
        libc::EPERM => b"Operation not permitted\n",
        _ => b"execve failed\n",
    };
    let _ = write_all(2, &spec.exec_error_prefix);
    let _ = write_all(2, reason);
    child_exit(if e == libc::ENOENT { 127 } else { 126 });
}

fn wait_go(go_r: i32) {
    let mut b = [0u8; 1];
    loop {
        // SAFETY: reads one byte into `b`.
        let n = unsafe { libc::read(go_r, b.as_mut_ptr().cast(), 1) };
        if n == 1 {
            return;
        }
        if n < 0 && errno() == libc::EINTR {
            continue;
        }
        child_exit(126);
    }
}

/// Removes CAP_SYS_PTRACE from the app (bounding, ambient, effective, permitted, inheritable):
/// the container gets it for the defender, and with it the app could write the defender's
/// memory through /proc. Best effort: without CAP_SETPCAP the bounding set stays, but
/// no_new_privs then keeps exec from regaining the capability.
fn drop_ptrace_capability() {
    // SAFETY: integer-only prctls; failures are acceptable (see above).
    unsafe {
        libc::prctl(libc::PR_CAPBSET_DROP, CAP_SYS_PTRACE, 0, 0, 0);
        libc::prctl(
            libc::PR_CAP_AMBIENT,
            libc::PR_CAP_AMBIENT_LOWER,
            CAP_SYS_PTRACE,
            0,
            0,
        );
    }
    let mut header = CapHeader {
        version: LINUX_CAPABILITY_VERSION_3,
        pid: 0,
    };
    let mut data = [CapData {
        effective: 0,
        permitted: 0,
        inheritable: 0,
    }; 2];
    // SAFETY: capget writes two CapData structs for version 3.
    if unsafe { libc::syscall(libc::SYS_capget, &raw mut header, data.as_mut_ptr()) } != 0 {
        return;
    }
    let bit = !(1u32 << CAP_SYS_PTRACE);
    data[0].effective &= bit;
    data[0].permitted &= bit;
    data[0].inheritable &= bit;
    // SAFETY: capset reads the header and two CapData structs.
    unsafe { libc::syscall(libc::SYS_capset, &raw mut header, data.as_ptr()) };
}
