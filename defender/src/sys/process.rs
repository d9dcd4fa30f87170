//! Processes and signals: waiting, killing, `prctl`, pidfds, `signalfd`, `poll`.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use super::{check, SysError};

/// The signals the defender forwards to the app, plus `SIGCHLD`, as a blocked set read from a
/// `signalfd`.
pub struct SignalFd {
    fd: OwnedFd,
}

impl SignalFd {
    /// Blocks `signals` in the calling thread (call it before any other thread exists so the mask
    /// is inherited) and opens a non-blocking, close-on-exec `signalfd` for them.
    pub fn block(signals: &[i32]) -> Result<SignalFd, SysError> {
        // SAFETY: `sigset_t` is plain data; sigemptyset initialises it before any use.
        let mut set: libc::sigset_t = unsafe { std::mem::zeroed() };
        // SAFETY: `set` is a valid, writable sigset_t.
        unsafe { libc::sigemptyset(&mut set) };
        for &s in signals {
            // SAFETY: `set` is initialised; an invalid signal number only makes the call fail.
            let rc = unsafe { libc::sigaddset(&mut set, s) };
            check(rc.into(), "sigaddset", 0)?;
        }
        // SAFETY: `set` is initialised; the old mask is not requested (null).
        let rc = unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) };
        if rc != 0 {
            return Err(SysError::Failed {
                op: "pthread_sigmask",
                error: std::io::Error::from_raw_os_error(rc),
            });
        }
        // SAFETY: -1 asks for a new descriptor; `set` is initialised.
        let fd = check(
            unsafe { libc::signalfd(-1, &set, libc::SFD_CLOEXEC | libc::SFD_NONBLOCK) }.into(),
            "signalfd",
            0,
        )?;
        // SAFETY: signalfd returned a fresh descriptor that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(fd as i32) };
        Ok(SignalFd { fd })
    }

    /// The next pending signal number, or `None` when none is queued.
    pub fn read(&self) -> Result<Option<i32>, SysError> {
        // SAFETY: plain data, fully written by read() before use.
        let mut info: libc::signalfd_siginfo = unsafe { std::mem::zeroed() };
        let size = std::mem::size_of::<libc::signalfd_siginfo>();
        // SAFETY: `info` is a writable buffer of exactly `size` bytes.
        let n = unsafe { libc::read(self.fd.as_raw_fd(), (&raw mut info).cast(), size) };
        if n < 0 {
            let e = std::io::Error::last_os_error();
            if e.raw_os_error() == Some(libc::EAGAIN) {
                return Ok(None);
            }
            return Err(SysError::Failed {
                op: "read(signalfd)",
                error: e,
            });
        }
        Ok(Some(info.ssi_signo as i32))
    }

    /// Every pending signal, from one `read`: the set holds only standard signals, which do not
    /// queue, so at most one record per signal is pending and [`SIGNAL_BATCH`] records hold
    /// them all. Empty when none is pending. (One system call per wake-up instead of a second
    /// `read` that only says `EAGAIN`.)
    pub fn read_pending(&self) -> Result<Vec<i32>, SysError> {
        // SAFETY: plain data, written by read() before use (only the records it reports).
        let mut infos: [libc::signalfd_siginfo; SIGNAL_BATCH] = unsafe { std::mem::zeroed() };
        let size = std::mem::size_of_val(&infos);
        // SAFETY: `infos` is a writable buffer of exactly `size` bytes.
        let n = unsafe { libc::read(self.fd.as_raw_fd(), infos.as_mut_ptr().cast(), size) };
        if n < 0 {
            let e = std::io::Error::last_os_error();
            if e.raw_os_error() == Some(libc::EAGAIN) {
                return Ok(Vec::new());
            }
            return Err(SysError::Failed {
                op: "read(signalfd)",
                error: e,
            });
        }
        let records = n as usize / std::mem::size_of::<libc::signalfd_siginfo>();
        Ok(infos[..records]
            .iter()
            .map(|i| i.ssi_signo as i32)
            .collect())
    }

    pub fn raw(&self) -> i32 {
        self.fd.as_raw_fd()
    }
}

/// Signal records read at once by [`SignalFd::read_pending`] (more than the standard signals
/// the defender blocks).
pub const SIGNAL_BATCH: usize = 32;

/// What `waitpid` reported for one task.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WaitStatus {
    Exited(i32),
    Signaled(i32),
    /// A ptrace stop: the signal and the ptrace event (`status >> 16`).
    Stopped {
        signal: i32,
        event: i32,
    },
    Continued,
}

/// Non-blocking `waitpid(-1, __WALL)`: the next child or tracee with news, if any.
pub fn wait_any() -> Result<Option<(i32, WaitStatus)>, SysError> {
    let mut status = 0;
    // SAFETY: `status` is a valid int out-pointer.
    let pid = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG | libc::__WALL) };
    if pid < 0 {
        let e = std::io::Error::last_os_error();
        if e.raw_os_error() == Some(libc::ECHILD) {
            return Ok(None);
        }
        return Err(SysError::Failed {
            op: "waitpid",
            error: e,
        });
    }
    if pid == 0 {
        return Ok(None);
    }
    Ok(Some((pid, decode(status))))
}

/// Blocking `waitpid(pid, __WALL)` for one task.
pub fn wait_for(pid: i32) -> Result<WaitStatus, SysError> {
    let mut status = 0;
    loop {
        // SAFETY: `status` is a valid int out-pointer.
        let r = unsafe { libc::waitpid(pid, &mut status, libc::__WALL) };
        if r >= 0 {
            return Ok(decode(status));
        }
        let e = std::io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::EINTR) {
            return Err(SysError::Failed {
                op: "waitpid",
                error: e,
            });
        }
    }
}

fn decode(status: i32) -> WaitStatus {
    if libc::WIFEXITED(status) {
        WaitStatus::Exited(libc::WEXITSTATUS(status))
    } else if libc::WIFSIGNALED(status) {
        WaitStatus::Signaled(libc::WTERMSIG(status))
    } else if libc::WIFSTOPPED(status) {
        WaitStatus::Stopped {
            signal: libc::WSTOPSIG(status),
            event: (status >> 16) & 0xff,
        }
    } else {
        WaitStatus::Continued
    }
}

/// Sends `sig` to a process (`kill(2)`).
pub fn kill(pid: i32, sig: i32) -> Result<(), SysError> {
    // SAFETY: kill has no memory arguments.
    check(unsafe { libc::kill(pid, sig) }.into(), "kill", pid).map(drop)
}

/// Makes the defender the reaper of orphaned descendants (`PR_SET_CHILD_SUBREAPER`).
pub fn set_child_subreaper() -> Result<(), SysError> {
    // SAFETY: integer-only prctl.
    check(
        unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) }.into(),
        "prctl(PR_SET_CHILD_SUBREAPER)",
        0,
    )
    .map(drop)
}

/// Stops other processes with the same uid from ptracing or reading the defender's memory
/// (`PR_SET_DUMPABLE` 0).
pub fn set_not_dumpable() -> Result<(), SysError> {
    // SAFETY: integer-only prctl.
    check(
        unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) }.into(),
        "prctl(PR_SET_DUMPABLE)",
        0,
    )
    .map(drop)
}

/// `pidfd_open(pid)`.
pub fn pidfd_open(pid: i32) -> Result<OwnedFd, SysError> {
    // SAFETY: integer-only syscall.
    let fd = check(
        unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) },
        "pidfd_open",
        pid,
    )?;
    // SAFETY: a fresh descriptor owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// `pidfd_getfd(pidfd, target_fd)`: duplicates a descriptor of another process.
pub fn pidfd_getfd(pidfd: &OwnedFd, target_fd: i32) -> Result<OwnedFd, SysError> {
    // SAFETY: integer-only syscall; `pidfd` is a live descriptor.
    let fd = check(
        unsafe { libc::syscall(libc::SYS_pidfd_getfd, pidfd.as_raw_fd(), target_fd, 0) },
        "pidfd_getfd",
        0,
    )?;
    // SAFETY: a fresh descriptor owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// Waits until one of `fds` is readable (or hung up); returns the `revents` per descriptor.
pub fn poll_readable(fds: &[i32], timeout_ms: i32) -> Result<Vec<i16>, SysError> {
    let mut pfds: Vec<libc::pollfd> = fds
        .iter()
        .map(|&fd| libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        })
        .collect();
    // SAFETY: `pfds` is a valid array of `pfds.len()` pollfd structs.
    let r = unsafe { libc::poll(pfds.as_mut_ptr(), pfds.len() as libc::nfds_t, timeout_ms) };
    if r < 0 {
        let e = std::io::Error::last_os_error();
        if e.raw_os_error() == Some(libc::EINTR) {
            return Ok(vec![0; fds.len()]);
        }
        return Err(SysError::Failed {
            op: "poll",
            error: e,
        });
    }
    Ok(pfds.iter().map(|p| p.revents).collect())
}

/// The calling process's pid.
pub fn getpid() -> i32 {
    // SAFETY: getpid cannot fail.
    unsafe { libc::getpid() }
}

/// Whether the kernel offers seccomp user notification and `pidfd_getfd` to this process.
pub fn user_notification_available() -> bool {
    let action: u32 = libc::SECCOMP_RET_USER_NOTIF;
    // SAFETY: SECCOMP_GET_ACTION_AVAIL reads one u32 from `action`.
    let avail = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_GET_ACTION_AVAIL,
            0,
            &raw const action,
        )
    };
    if avail != 0 {
        return false;
    }
    // An invalid pidfd gives EBADF when the syscall exists, ENOSYS (or EPERM from a container
    // profile) when it does not.
    // SAFETY: integer-only syscall on an invalid descriptor.
    let r = unsafe { libc::syscall(libc::SYS_pidfd_getfd, -1, 0, 0) };
    r < 0 && std::io::Error::last_os_error().raw_os_error() == Some(libc::EBADF)
}

/// A close-on-exec pipe: (read end, write end).
pub fn pipe() -> Result<(OwnedFd, OwnedFd), SysError> {
    let mut fds = [0i32; 2];
    // SAFETY: `fds` is a writable array of two ints.
    let rc = unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC | libc::O_NONBLOCK) };
    check(rc.into(), "pipe2", 0)?;
    // SAFETY: pipe2 returned two fresh descriptors owned by nobody else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// Writes one byte (used to wake the supervision loop); a full pipe already means "woken".
pub fn poke(fd: &OwnedFd) {
    let b = [1u8];
    // SAFETY: writes one byte from `b`.
    unsafe { libc::write(fd.as_raw_fd(), b.as_ptr().cast(), 1) };
}

/// Reads and discards whatever is in a non-blocking pipe.
pub fn drain(fd: &OwnedFd) {
    let mut buf = [0u8; 64];
    // SAFETY: reads into `buf`, at most its length.
    while unsafe { libc::read(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) } > 0 {}
}
