//! Taking the app's socket into the defender (`pidfd_getfd`, with kept thread pidfds) and
//! copying the call's buffers out of the app, bounded.

use std::collections::HashMap;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::Mutex;

use crate::sys::net::{self as sysnet, Errno};
use crate::sys::notify::{read_memory, Notification, Reply};
use crate::sys::process::pidfd_getfd;

use super::sockaddr::MAX_ADDR_LEN;
use super::Shared;

/// The app's socket, taken into the defender.
pub struct Sock {
    pub fd: OwnedFd,
    pub kind: Kind,
}

/// A socket's address family (`AF_INET`/`AF_INET6`) and type (`SOCK_STREAM`, `SOCK_DGRAM`...).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Kind {
    pub domain: i32,
    pub ty: i32,
}

/// The answer that fails the app's call with the kernel's errno.
pub fn errno(e: Errno) -> Reply {
    Reply::Errno(e.0)
}

/// Copies exactly `len` bytes from the app (`EFAULT` when any of it is unreadable).
pub fn copy_in(pid: i32, addr: u64, len: usize) -> Result<Vec<u8>, Reply> {
    let mut buf = vec![0u8; len];
    if len == 0 {
        return Ok(buf);
    }
    match read_memory(pid, addr, &mut buf) {
        Ok(n) if n == len => Ok(buf),
        _ => Err(Reply::Errno(libc::EFAULT)),
    }
}

/// Copies a `sockaddr` of `len` bytes (`EINVAL` beyond `sockaddr_storage`, as the kernel).
pub fn copy_addr(pid: i32, addr: u64, len: u64) -> Result<Vec<u8>, Reply> {
    if len > MAX_ADDR_LEN as u64 {
        return Err(Reply::Errno(libc::EINVAL));
    }
    copy_in(pid, addr, len as usize)
}

/// Takes the socket the call names. `Ok(None)` for sockets that are not IPv4/IPv6.
pub fn take_socket(shared: &Shared, n: &Notification) -> Result<Option<Sock>, Reply> {
    let target = n.args[0] as i32;
    let fd = match shared.pidfds.take_fd(n.pid, target) {
        Some(Ok(fd)) => fd,
        Some(Err(e)) => return Err(Reply::Errno(e)),
        None => {
            let vanished = Reply::Errno(libc::ESRCH);
            let (pidfd, is_thread) = sysnet::pidfd_open_thread(n.pid).map_err(|_| vanished)?;
            // The pidfd now pins the thread; make sure it is still the one that made the call.
            if !shared
                .pool
                .as_ref()
                .is_some_and(|p| p.replies().id_valid(n.id))
            {
                return Err(vanished);
            }
            let fd = pidfd_getfd(&pidfd, target)
                .map_err(|e| Reply::Errno(e.errno().unwrap_or(libc::EBADF)))?;
            if is_thread {
                shared.pidfds.keep(n.pid, pidfd);
            }
            fd
        }
    };
    let (domain, ty) = sysnet::socket_kind(fd.as_fd()).map_err(errno)?;
    if domain != libc::AF_INET && domain != libc::AF_INET6 {
        return Ok(None);
    }
    Ok(Some(Sock {
        fd,
        kind: Kind { domain, ty },
    }))
}

/// Thread pidfds kept between calls (bounded). A kept pidfd names one task for good: while that
/// task lives no other can hold its tid, so a descriptor taken through it belongs to the caller;
/// once it is gone `pidfd_getfd` fails with `ESRCH` and the entry is replaced.
#[derive(Default)]
pub struct PidfdCache {
    map: Mutex<HashMap<i32, OwnedFd>>,
}

/// Kept pidfds at most (each is a descriptor of the defender's).
const MAX_PIDFDS: usize = 256;

impl PidfdCache {
    /// Takes `fd` of thread `tid` through a kept pidfd: `None` when there is none (or its task
    /// is gone), else the result with the errno to return.
    fn take_fd(&self, tid: i32, fd: i32) -> Option<Result<OwnedFd, i32>> {
        let mut map = self.map.lock().ok()?;
        let pidfd = map.get(&tid)?;
        match pidfd_getfd(pidfd, fd) {
            Ok(f) => Some(Ok(f)),
            Err(e) if e.errno() == Some(libc::ESRCH) => {
                map.remove(&tid);
                None
            }
            Err(e) => Some(Err(e.errno().unwrap_or(libc::EBADF))),
        }
    }

    fn keep(&self, tid: i32, pidfd: OwnedFd) {
        if let Ok(mut map) = self.map.lock() {
            if map.len() >= MAX_PIDFDS {
                map.clear();
            }
            map.insert(tid, pidfd);
        }
    }
}
