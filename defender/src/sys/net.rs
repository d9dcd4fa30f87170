//! Socket-side system calls for the network policy: taking the app's socket, asking what it is,
//! and performing `connect`/`bind`/`listen`/`send*` on it in the app's place.
//!
//! Emulated operations return the kernel's errno as an [`Errno`] so the caller can hand it back to
//! the app unchanged. Addresses are raw `sockaddr` bytes (see `net::sockaddr`); the kernel copies
//! them, so they need no particular alignment.

use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use super::{check, SysError};

/// An errno the app will see as the result of its own syscall.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Errno(pub i32);

impl Errno {
    fn last() -> Errno {
        Errno(
            std::io::Error::last_os_error()
                .raw_os_error()
                .unwrap_or(libc::EIO),
        )
    }
}

/// `PIDFD_THREAD` (Linux 6.9+): a pidfd for a thread that is not its group's leader.
const PIDFD_THREAD: libc::c_int = libc::O_EXCL;

/// A pidfd for the thread `tid`, and whether it names that thread itself. Tries `PIDFD_THREAD`
/// (`true`); on older kernels opens the thread group leader named by `/proc/TID/status`
/// (`false`: descriptors are shared by the whole group, but the pidfd outlives the thread).
pub fn pidfd_open_thread(tid: i32) -> Result<(OwnedFd, bool), SysError> {
    // SAFETY: integer-only syscall.
    let r = unsafe { libc::syscall(libc::SYS_pidfd_open, tid, PIDFD_THREAD) };
    if r >= 0 {
        // SAFETY: a fresh descriptor owned by nobody else.
        return Ok((unsafe { OwnedFd::from_raw_fd(r as i32) }, true));
    }
    let err = SysError::last("pidfd_open", tid);
    if err.errno() != Some(libc::EINVAL) {
        return Err(err);
    }
    let status =
        std::fs::read_to_string(format!("/proc/{tid}/status")).map_err(|_| SysError::Vanished {
            op: "read /proc/TID/status",
            pid: tid,
        })?;
    let tgid = status
        .lines()
        .find_map(|l| l.strip_prefix("Tgid:"))
        .and_then(|v| v.trim().parse::<i32>().ok())
        .ok_or(SysError::Vanished {
            op: "Tgid in /proc/TID/status",
            pid: tid,
        })?;
    Ok((super::process::pidfd_open(tgid)?, false))
}

fn getsockopt_int(fd: BorrowedFd<'_>, level: i32, name: i32) -> Result<i32, Errno> {
    let mut v: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: `v` is a writable int and `len` holds its size.
    let r = unsafe { libc::getsockopt(fd.as_raw_fd(), level, name, (&raw mut v).cast(), &mut len) };
    if r < 0 {
        Err(Errno::last())
    } else {
        Ok(v)
    }
}

/// The socket's address family (`SO_DOMAIN`) and type (`SO_TYPE`); `ENOTSOCK` for other files.
pub fn socket_kind(fd: BorrowedFd<'_>) -> Result<(i32, i32), Errno> {
    let domain = getsockopt_int(fd, libc::SOL_SOCKET, libc::SO_DOMAIN)?;
    let ty = getsockopt_int(fd, libc::SOL_SOCKET, libc::SO_TYPE)?;
    Ok((domain, ty))
}

/// Whether the open file is in non-blocking mode (`O_NONBLOCK`, shared with the app's descriptor).
pub fn is_nonblocking(fd: BorrowedFd<'_>) -> Result<bool, Errno> {
    // SAFETY: integer-only fcntl.
    let flags = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETFL) };
    if flags < 0 {
        return Err(Errno::last());
    }
    Ok(flags & libc::O_NONBLOCK != 0)
}

/// `connect(fd, addr)`.
pub fn connect(fd: BorrowedFd<'_>, addr: &[u8]) -> Result<(), Errno> {
    // SAFETY: `addr` is readable for its length; the kernel copies it.
    let r = unsafe {
        libc::connect(
            fd.as_raw_fd(),
            addr.as_ptr().cast(),
            addr.len() as libc::socklen_t,
        )
    };
    if r < 0 {
        Err(Errno::last())
    } else {
        Ok(())
    }
}

/// `bind(fd, addr)`.
pub fn bind(fd: BorrowedFd<'_>, addr: &[u8]) -> Result<(), Errno> {
    // SAFETY: `addr` is readable for its length; the kernel copies it.
    let r = unsafe {
        libc::bind(
            fd.as_raw_fd(),
            addr.as_ptr().cast(),
            addr.len() as libc::socklen_t,
        )
    };
    if r < 0 {
        Err(Errno::last())
    } else {
        Ok(())
    }
}

/// `listen(fd, backlog)`.
pub fn listen(fd: BorrowedFd<'_>, backlog: i32) -> Result<(), Errno> {
    // SAFETY: integer-only call.
    let r = unsafe { libc::listen(fd.as_raw_fd(), backlog) };
    if r < 0 {
        Err(Errno::last())
    } else {
        Ok(())
    }
}

/// Which end of the socket [`socket_name`] reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum End {
    Local,
    Peer,
}

/// `getsockname`/`getpeername`: the raw address bytes (at most 128).
pub fn socket_name(fd: BorrowedFd<'_>, end: End) -> Result<Vec<u8>, Errno> {
    let mut buf = [0u8; 128];
    let mut len = buf.len() as libc::socklen_t;
    // SAFETY: `buf` is writable for `len` bytes; the kernel writes at most that many.
    let r = unsafe {
        match end {
            End::Local => libc::getsockname(fd.as_raw_fd(), buf.as_mut_ptr().cast(), &mut len),
            End::Peer => libc::getpeername(fd.as_raw_fd(), buf.as_mut_ptr().cast(), &mut len),
        }
    };
    if r < 0 {
        return Err(Errno::last());
    }
    Ok(buf[..(len as usize).min(buf.len())].to_vec())
}

/// `sendmsg(fd)` of one datagram or stream chunk: `name` (empty for none), `data`, ancillary
/// `control` bytes (empty for none) and `flags`. Returns the bytes sent.
pub fn send_message(
    fd: BorrowedFd<'_>,
    name: &[u8],
    data: &[u8],
    control: &[u8],
    flags: i32,
) -> Result<usize, Errno> {
    let mut iov = libc::iovec {
        iov_base: data.as_ptr().cast_mut().cast(),
        iov_len: data.len(),
    };
    // SAFETY: msghdr is plain data; every field is set below.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    if !name.is_empty() {
        msg.msg_name = name.as_ptr().cast_mut().cast();
        msg.msg_namelen = name.len() as libc::socklen_t;
    }
    msg.msg_iov = &raw mut iov;
    msg.msg_iovlen = 1;
    if !control.is_empty() {
        msg.msg_control = control.as_ptr().cast_mut().cast();
        msg.msg_controllen = control.len();
    }
    // SAFETY: `msg` points at `name`, `iov` (over `data`) and `control`, all readable and alive
    // for the call; the kernel only reads them.
    let n = unsafe { libc::sendmsg(fd.as_raw_fd(), &msg, flags) };
    if n < 0 {
        Err(Errno::last())
    } else {
        Ok(n as usize)
    }
}

/// Writes `bytes` at `addr` in process `pid` (`process_vm_writev`); used to report per-message
/// results of an emulated `sendmmsg`.
pub fn write_memory(pid: i32, addr: u64, bytes: &[u8]) -> Result<usize, SysError> {
    let local = libc::iovec {
        iov_base: bytes.as_ptr().cast_mut().cast(),
        iov_len: bytes.len(),
    };
    let remote = libc::iovec {
        iov_base: addr as usize as *mut libc::c_void,
        iov_len: bytes.len(),
    };
    // SAFETY: `local` describes our readable buffer of its exact length; the remote range is only
    // touched by the kernel inside the other process, with its own checks.
    let n = unsafe { libc::process_vm_writev(pid, &local, 1, &remote, 1, 0) };
    check(n as libc::c_long, "process_vm_writev", pid).map(|n| n as usize)
}
