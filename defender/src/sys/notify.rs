//! Seccomp user notifications (`SECCOMP_IOCTL_NOTIF_*`) and reading a tracee's memory.

use std::os::fd::{AsRawFd, OwnedFd};

use super::{check, SysError};

/// One notified syscall.
#[derive(Clone, Copy, Debug)]
pub struct Notification {
    pub id: u64,
    /// The calling thread (a tid in the defender's pid namespace).
    pub pid: i32,
    pub nr: i32,
    pub arch: u32,
    pub args: [u64; 6],
}

/// The answer to a notification.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reply {
    /// Let the kernel run the syscall (`SECCOMP_USER_NOTIF_FLAG_CONTINUE`).
    Continue,
    /// Fail it with this errno.
    Errno(i32),
    /// Return this value without running it (an emulated syscall's result).
    Value(i64),
}

/// The notification listener (the fd returned by `SECCOMP_FILTER_FLAG_NEW_LISTENER`).
pub struct Listener {
    fd: OwnedFd,
    /// Buffer sized for the running kernel's `struct seccomp_notif` (may exceed libc's).
    buf: Vec<u64>,
}

impl Listener {
    /// A second handle on the same listener (for a part that answers notifications from
    /// another thread).
    pub fn try_clone(&self) -> Result<Listener, SysError> {
        let fd = self.fd.try_clone().map_err(|source| SysError::Failed {
            op: "dup(listener)",
            error: source,
        })?;
        Ok(Listener {
            fd,
            buf: self.buf.clone(),
        })
    }

    pub fn new(fd: OwnedFd) -> Result<Listener, SysError> {
        // SAFETY: plain data, filled by the kernel.
        let mut sizes: libc::seccomp_notif_sizes = unsafe { std::mem::zeroed() };
        // SAFETY: SECCOMP_GET_NOTIF_SIZES writes one seccomp_notif_sizes into `sizes`.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_seccomp,
                libc::SECCOMP_GET_NOTIF_SIZES,
                0,
                &raw mut sizes,
            )
        };
        check(rc, "seccomp(SECCOMP_GET_NOTIF_SIZES)", 0)?;
        let bytes =
            usize::from(sizes.seccomp_notif).max(std::mem::size_of::<libc::seccomp_notif>());
        Ok(Listener {
            fd,
            buf: vec![0u64; bytes.div_ceil(8)],
        })
    }

    pub fn raw(&self) -> i32 {
        self.fd.as_raw_fd()
    }

    /// Receives the next notification. `Ok(None)` when it vanished before we got it (`ENOENT`)
    /// or the call was interrupted.
    pub fn recv(&mut self) -> Result<Option<Notification>, SysError> {
        self.buf.iter_mut().for_each(|w| *w = 0);
        // SAFETY: `buf` is zeroed (as the kernel requires), 8-byte aligned and at least as large
        // as the kernel's struct seccomp_notif.
        let r = unsafe {
            libc::ioctl(
                self.fd.as_raw_fd(),
                libc::SECCOMP_IOCTL_NOTIF_RECV,
                self.buf.as_mut_ptr(),
            )
        };
        if r < 0 {
            let e = std::io::Error::last_os_error();
            return match e.raw_os_error() {
                Some(libc::ENOENT) | Some(libc::EINTR) => Ok(None),
                _ => Err(SysError::Failed {
                    op: "ioctl(SECCOMP_IOCTL_NOTIF_RECV)",
                    error: e,
                }),
            };
        }
        // SAFETY: the buffer is at least size_of::<seccomp_notif>() bytes, aligned, and was
        // filled by the kernel; seccomp_notif is plain data.
        let n: libc::seccomp_notif = unsafe { std::ptr::read(self.buf.as_ptr().cast()) };
        Ok(Some(Notification {
            id: n.id,
            pid: n.pid as i32,
            nr: n.data.nr,
            arch: n.data.arch,
            args: n.data.args,
        }))
    }

    /// Whether the notification is still pending (its thread has not died or been interrupted),
    /// so that pid-based lookups done since `recv` refer to the right process.
    /// Asks the kernel (6.6+) to hand the CPU straight between the notifying thread and the
    /// defender (`SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP`): the two run in turn, never side by side.
    /// Returns whether the kernel took the hint; older kernels ignore it (nothing changes).
    pub fn set_sync_wake_up(&self) -> bool {
        /// `SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP` (linux/seccomp.h; not in libc yet).
        const SYNC_WAKE_UP: u64 = 1;
        // SAFETY: SECCOMP_IOCTL_NOTIF_SET_FLAGS takes the flags as the integer argument.
        let r = unsafe {
            libc::ioctl(
                self.fd.as_raw_fd(),
                libc::SECCOMP_IOCTL_NOTIF_SET_FLAGS,
                SYNC_WAKE_UP,
            )
        };
        r == 0
    }

    pub fn id_valid(&self, id: u64) -> bool {
        let mut id = id;
        // SAFETY: the ioctl reads one u64 from `id`.
        let r = unsafe {
            libc::ioctl(
                self.fd.as_raw_fd(),
                libc::SECCOMP_IOCTL_NOTIF_ID_VALID,
                &raw mut id,
            )
        };
        r == 0
    }

    /// Answers a notification. `Ok(false)` when the thread is no longer waiting (`ENOENT`).
    pub fn send(&self, id: u64, reply: Reply) -> Result<bool, SysError> {
        let mut resp = libc::seccomp_notif_resp {
            id,
            val: 0,
            error: 0,
            flags: 0,
        };
        match reply {
            Reply::Continue => resp.flags = libc::SECCOMP_USER_NOTIF_FLAG_CONTINUE as u32,
            Reply::Errno(e) => resp.error = -e,
            Reply::Value(v) => resp.val = v,
        }
        // SAFETY: the ioctl reads one seccomp_notif_resp from `resp`.
        let r = unsafe {
            libc::ioctl(
                self.fd.as_raw_fd(),
                libc::SECCOMP_IOCTL_NOTIF_SEND,
                &raw mut resp,
            )
        };
        if r < 0 {
            let e = std::io::Error::last_os_error();
            if e.raw_os_error() == Some(libc::ENOENT) {
                return Ok(false);
            }
            return Err(SysError::Failed {
                op: "ioctl(SECCOMP_IOCTL_NOTIF_SEND)",
                error: e,
            });
        }
        Ok(true)
    }
}

/// Reads several regions of process `pid`'s memory with one `process_vm_readv`, into
/// consecutive parts of `buf`: `regions` are (address, length) pairs whose lengths sum to at
/// most `buf.len()` (at most [`MAX_REGIONS`]). Returns the bytes copied, fewer than asked when a
/// region is not (fully) mapped: the kernel stops there and reads none of the later regions.
pub fn read_memory_regions(
    pid: i32,
    regions: &[(u64, usize)],
    buf: &mut [u8],
) -> Result<usize, SysError> {
    let total: usize = regions.iter().map(|&(_, len)| len).sum();
    if total > buf.len() || regions.len() > MAX_REGIONS {
        return Err(SysError::Failed {
            op: "process_vm_readv",
            error: std::io::Error::from_raw_os_error(libc::EINVAL),
        });
    }
    let local = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: total,
    };
    let remote: Vec<libc::iovec> = regions
        .iter()
        .map(|&(addr, len)| libc::iovec {
            iov_base: addr as usize as *mut libc::c_void,
            iov_len: len,
        })
        .collect();
    // SAFETY: `local` describes the first `total` bytes of our writable buffer (checked above);
    // the remote iovecs are only dereferenced by the kernel inside the other process, with its
    // own checks; both arrays outlive the call and their counts are their lengths.
    let n = unsafe {
        libc::process_vm_readv(
            pid,
            &local,
            1,
            remote.as_ptr(),
            remote.len() as libc::c_ulong,
            0,
        )
    };
    check(n as libc::c_long, "process_vm_readv", pid).map(|n| n as usize)
}

/// Most remote regions [`read_memory_regions`] takes at once (the kernel's `UIO_MAXIOV`).
pub const MAX_REGIONS: usize = 1024;

/// Copies up to `buf.len()` bytes from `addr` in process `pid`; returns how many were read
/// (fewer when the range crosses into unmapped memory).
pub fn read_memory(pid: i32, addr: u64, buf: &mut [u8]) -> Result<usize, SysError> {
    let local = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    let remote = libc::iovec {
        iov_base: addr as usize as *mut libc::c_void,
        iov_len: buf.len(),
    };
    // SAFETY: `local` describes our writable buffer of its exact length; the remote iovec is
    // only dereferenced by the kernel inside the other process, with its own checks.
    let n = unsafe { libc::process_vm_readv(pid, &local, 1, &remote, 1, 0) };
    check(n as libc::c_long, "process_vm_readv", pid).map(|n| n as usize)
}
