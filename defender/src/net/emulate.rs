//! Emulating the app's network syscalls on its own socket.
//!
//! For each notification: take the socket with `pidfd_getfd` (same open file, same flags), copy
//! the address and payload out of the app (bounded), decide on those copies, then perform the
//! call on the socket with exactly the bytes decided on, and return its result. Nothing the app
//! changes after the copy is ever read. Calls that could block run on the worker pool.

use std::net::SocketAddr;
use std::os::fd::AsFd;

use crate::sys::net::{self as sysnet, End, Errno};
use crate::sys::notify::{Notification, Reply};

use super::decide::{self, Verdict};
use super::listen::{bind, has_capability, listen};
use super::msg::{self, MsgHdr};
use super::sockaddr::{self, Dest};
use super::socket::{copy_addr, copy_in, errno, take_socket, Kind, Sock};
use super::stub::Route;
use super::{dns, Shared};

/// Largest datagram payload copied (a UDP datagram cannot be larger).
const MAX_DATAGRAM: usize = 65_536;
/// Largest stream payload copied for one emulated send (TCP fast open); the app sees a short
/// write beyond it, as stream sockets allow.
const MAX_STREAM_CHUNK: usize = 256 * 1024;
/// `CAP_NET_ADMIN` and `CAP_NET_RAW`.
const CAP_NET_ADMIN: u32 = 12;
const CAP_NET_RAW: u32 = 13;
/// Largest ancillary data copied.
const MAX_CONTROL: usize = 8192;

/// Work that may block: run on the pool, its result answers the notification.
pub type Work = Box<dyn FnOnce() -> Reply + Send>;

/// What the dispatcher does with a notification.
pub enum Handled {
    Now(Reply),
    Later(Work),
}

/// Handles one network notification.
pub fn handle(shared: &Shared, n: &Notification) -> Handled {
    let sock = match take_socket(shared, n) {
        Err(r) => return Handled::Now(r),
        // Unix, netlink, packet...: the kernel interprets any address in that family only.
        Ok(None) => return Handled::Now(Reply::Continue),
        Ok(Some(s)) => s,
    };
    let r = match i64::from(n.nr) {
        libc::SYS_connect => connect(shared, n, sock),
        libc::SYS_sendto => sendto(shared, n, sock),
        libc::SYS_sendmsg => sendmsg(shared, n, sock),
        libc::SYS_sendmmsg => sendmmsg(shared, n, sock),
        libc::SYS_bind => bind(shared, n, sock),
        libc::SYS_listen => listen(shared, n, sock),
        _ => Ok(Handled::Now(Reply::Continue)),
    };
    r.unwrap_or_else(Handled::Now)
}

/// Reports the verdict's event; `Err(EPERM)` when it denies.
pub fn enforce(shared: &Shared, v: Verdict) -> Result<(), Reply> {
    let allowed = v.allows();
    if let Verdict::Alert(e) | Verdict::Deny(e) = v {
        shared.report(e);
    }
    if allowed {
        Ok(())
    } else {
        Err(Reply::Errno(libc::EPERM))
    }
}

pub(super) fn judge_outbound(shared: &Shared, pid: i32, dest: SocketAddr) -> Result<(), Reply> {
    let rule = shared.rule();
    match decide::outbound(rule.as_deref(), dest, None, pid) {
        Verdict::Allow => Ok(()),
        // Only a reported call needs the name the address was resolved from.
        _ => {
            let name = shared.resolved.name_of(dest.ip());
            enforce(
                shared,
                decide::outbound(rule.as_deref(), dest, name.as_deref(), pid),
            )
        }
    }
}

fn nonblocking(sock: &Sock, flags: i32) -> Result<bool, Reply> {
    Ok(
        flags & libc::MSG_DONTWAIT != 0
            || sysnet::is_nonblocking(sock.fd.as_fd()).map_err(errno)?,
    )
}

fn connect(shared: &Shared, n: &Notification, sock: Sock) -> Result<Handled, Reply> {
    let raw = copy_addr(n.pid, n.args[1], n.args[2])?;
    let dest = match sockaddr::decode(&raw).map_err(|e| Reply::Errno(e.errno()))? {
        Dest::Inet(d) => d,
        Dest::Unspec => {
            return Ok(Handled::Now(
                match sysnet::connect(sock.fd.as_fd(), &sockaddr::encode_unspec()) {
                    Ok(()) => Reply::Value(0),
                    Err(e) => errno(e),
                },
            ))
        }
        Dest::Unix | Dest::Other(_) => return Err(Reply::Errno(libc::EAFNOSUPPORT)),
    };
    judge_outbound(shared, n.pid, dest)?;
    if let (53, Some(stubs)) = (dest.port(), shared.stub) {
        // A resolver socket: connect it to the stub, which decides on each query it receives.
        let stub = stubs.for_server(dest);
        // A non-blocking TCP socket answers EINPROGRESS: its local address is bound already,
        // so the route is recorded and the app gets EINPROGRESS as it would have.
        let result = sysnet::connect(sock.fd.as_fd(), &sockaddr::encode(&stub));
        if let Err(e) = result.filter_in_progress() {
            return Err(errno(e));
        }
        let local = sysnet::socket_name(sock.fd.as_fd(), End::Local).map_err(errno)?;
        if let Ok(Dest::Inet(local)) = sockaddr::decode(&local) {
            // The process, read now while the connecting thread is held: the queries may come
            // later, from another thread, after this one is gone.
            let pid = crate::exec_target::tgid_of(n.pid).unwrap_or(n.pid);
            shared.routes.insert(local, Route { server: dest, pid });
        }
        return Ok(Handled::Now(match result {
            Ok(()) => Reply::Value(0),
            Err(e) => errno(e),
        }));
    }
    let bytes = sockaddr::encode(&dest);
    // Only datagram (and raw) connects never wait for a peer; stream and SCTP ones can.
    let may_wait = !matches!(sock.kind.ty, libc::SOCK_DGRAM | libc::SOCK_RAW);
    let blocks = may_wait && !nonblocking(&sock, 0)?;
    let run = move || match sysnet::connect(sock.fd.as_fd(), &bytes) {
        Ok(()) => Reply::Value(0),
        Err(e) => errno(e),
    };
    if blocks {
        return Ok(Handled::Later(Box::new(run)));
    }
    Ok(Handled::Now(run()))
}

/// Lets `EINPROGRESS` through as not-an-error (a non-blocking connect under way).
trait InProgress {
    fn filter_in_progress(self) -> Result<(), Errno>;
}

impl InProgress for Result<(), Errno> {
    fn filter_in_progress(self) -> Result<(), Errno> {
        match self {
            Err(Errno(libc::EINPROGRESS)) => Ok(()),
            r => r,
        }
    }
}

/// The destination of a send as the kernel will read `raw` on this socket: `None` = the
/// connected peer.
pub(super) fn send_dest(kind: Kind, raw: &[u8]) -> Result<Option<SocketAddr>, Reply> {
    if raw.is_empty() {
        return Ok(None);
    }
    let bad = |e: sockaddr::AddrError| Reply::Errno(e.errno());
    match (sockaddr::decode(raw).map_err(bad)?, kind.domain) {
        (Dest::Inet(d), _) => Ok(Some(d)),
        // UDP over IPv4 reads an AF_UNSPEC destination as IPv4; over IPv6 it means "no address".
        (Dest::Unspec, libc::AF_INET) => sockaddr::decode_v4(raw).map(Some).map_err(bad),
        (Dest::Unspec, _) => Ok(None),
        _ => Err(Reply::Errno(libc::EAFNOSUPPORT)),
    }
}

/// Decides one outgoing message; returns the canonical address bytes to send it with (empty =
/// the connected peer).
pub(super) fn judge_send(
    shared: &Shared,
    pid: i32,
    kind: Kind,
    raw_name: &[u8],
    payload: &[u8],
    fast_open: bool,
) -> Result<Vec<u8>, Reply> {
    // TCP ignores a destination unless the send is a fast-open connect: nothing to judge.
    let stream = kind.ty == libc::SOCK_STREAM;
    if stream && !fast_open {
        return Ok(Vec::new());
    }
    let Some(dest) = send_dest(kind, raw_name)? else {
        return Ok(Vec::new());
    };
    judge_outbound(shared, pid, dest)?;
    if dest.port() == 53 {
        judge_dns_payload(shared, pid, dest, stream, payload)?;
    }
    Ok(sockaddr::encode(&dest))
}

/// Decides a DNS query about to be sent to `server` (TCP payloads start with their length).
pub(super) fn judge_dns_payload(
    shared: &Shared,
    pid: i32,
    server: SocketAddr,
    stream: bool,
    payload: &[u8],
) -> Result<(), Reply> {
    let query = if stream {
        payload.get(2..).unwrap_or_default()
    } else {
        payload
    };
    let rule = shared.rule();
    match dns::parse_query(query) {
        Ok(q) => {
            let verdicts = q
                .names
                .iter()
                .map(|name| decide::domain(rule.as_deref(), name, Some(server.ip()), pid))
                .collect();
            let (allowed, events) = decide::combine(verdicts);
            events.into_iter().for_each(|e| shared.report(e));
            if allowed {
                Ok(())
            } else {
                Err(Reply::Errno(libc::EPERM))
            }
        }
        Err(_) if shared.dns_denies_anything(rule.as_deref()) => Err(Reply::Errno(libc::EPERM)),
        Err(_) => Ok(()),
    }
}

fn payload_cap(kind: Kind, len: u64) -> Result<usize, Reply> {
    if kind.ty == libc::SOCK_STREAM {
        Ok((len as usize).min(MAX_STREAM_CHUNK))
    } else if len as usize > MAX_DATAGRAM {
        Err(Reply::Errno(libc::EMSGSIZE))
    } else {
        Ok(len as usize)
    }
}

/// Sends one decided message; blocking sends run on the pool.
fn send_one(
    sock: Sock,
    name: Vec<u8>,
    data: Vec<u8>,
    control: Vec<u8>,
    flags: i32,
) -> Result<Handled, Reply> {
    let flags = flags | libc::MSG_NOSIGNAL;
    let value = |r: Result<usize, Errno>| match r {
        Ok(n) => Reply::Value(n as i64),
        Err(e) => errno(e),
    };
    if sock.kind.ty != libc::SOCK_STREAM {
        // Datagrams rarely block: try at once; only a full buffer on a blocking socket waits on
        // the pool.
        match sysnet::send_message(
            sock.fd.as_fd(),
            &name,
            &data,
            &control,
            flags | libc::MSG_DONTWAIT,
        ) {
            Err(Errno(libc::EAGAIN)) if !nonblocking(&sock, flags)? => {}
            r => return Ok(Handled::Now(value(r))),
        }
    } else if nonblocking(&sock, flags)? {
        return Ok(Handled::Now(value(sysnet::send_message(
            sock.fd.as_fd(),
            &name,
            &data,
            &control,
            flags,
        ))));
    } else if flags & libc::MSG_FASTOPEN == 0 {
        // A blocking stream send: whatever fits now is sent at once; the rest (a full buffer)
        // is sent on the pool, so the app still sees its whole buffer written.
        let sent = match sysnet::send_message(
            sock.fd.as_fd(),
            &name,
            &data,
            &control,
            flags | libc::MSG_DONTWAIT,
        ) {
            Ok(n) if n == data.len() => return Ok(Handled::Now(Reply::Value(n as i64))),
            Ok(n) => n,
            Err(Errno(libc::EAGAIN)) => 0,
            Err(e) => return Ok(Handled::Now(errno(e))),
        };
        return Ok(Handled::Later(Box::new(move || {
            let control: &[u8] = if sent == 0 { &control } else { &[] };
            match sysnet::send_message(sock.fd.as_fd(), &name, &data[sent..], control, flags) {
                Ok(n) => Reply::Value((sent + n) as i64),
                Err(_) if sent > 0 => Reply::Value(sent as i64),
                Err(e) => errno(e),
            }
        })));
    }
    Ok(Handled::Later(Box::new(move || {
        value(sysnet::send_message(
            sock.fd.as_fd(),
            &name,
            &data,
            &control,
            flags,
        ))
    })))
}

fn sendto(shared: &Shared, n: &Notification, sock: Sock) -> Result<Handled, Reply> {
    let flags = n.args[3] as i32;
    if n.args[4] == 0 {
        // No address: the connected peer, decided at connect; the kernel reads no address.
        return Ok(Handled::Now(Reply::Continue));
    }
    let raw = copy_addr(n.pid, n.args[4], n.args[5] & 0xffff_ffff)?;
    let data = copy_in(n.pid, n.args[1], payload_cap(sock.kind, n.args[2])?)?;
    let name = judge_send(
        shared,
        n.pid,
        sock.kind,
        &raw,
        &data,
        flags & libc::MSG_FASTOPEN != 0,
    )?;
    send_one(sock, name, data, Vec::new(), flags)
}

/// Whether the app holds `CAP_NET_ADMIN` or `CAP_NET_RAW` (effective).
fn app_has_net_admin(pid: i32) -> bool {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    has_capability(&status, CAP_NET_ADMIN) || has_capability(&status, CAP_NET_RAW)
}

/// One message of a `sendmsg`/`sendmmsg`, copied: raw address, payload, ancillary data.
struct Copied {
    raw: Vec<u8>,
    data: Vec<u8>,
    control: Vec<u8>,
}

fn copy_message(pid: i32, kind: Kind, hdr: &MsgHdr) -> Result<Copied, Reply> {
    let raw = if hdr.name == 0 {
        Vec::new()
    } else {
        copy_addr(pid, hdr.name, u64::from(hdr.namelen))?
    };
    if hdr.iovlen as usize > msg::UIO_MAXIOV {
        return Err(Reply::Errno(libc::EMSGSIZE));
    }
    let iovecs = msg::parse_iovecs(&copy_in(
        pid,
        hdr.iov,
        hdr.iovlen as usize * msg::IOVEC_LEN,
    )?);
    let total = iovecs.iter().fold(0u64, |t, &(_, l)| t.saturating_add(l));
    let cap = payload_cap(kind, total)?;
    let mut data = Vec::with_capacity(cap);
    for (base, len) in iovecs {
        let take = (len as usize).min(cap - data.len());
        data.extend(copy_in(pid, base, take)?);
    }
    if hdr.controllen as usize > MAX_CONTROL {
        return Err(Reply::Errno(libc::ENOBUFS));
    }
    let control = if hdr.control == 0 {
        Vec::new()
    } else {
        copy_in(pid, hdr.control, hdr.controllen as usize)?
    };
    if msg::needs_privilege(&control) && !app_has_net_admin(pid) {
        return Err(Reply::Errno(libc::EPERM));
    }
    Ok(Copied { raw, data, control })
}

fn sendmsg(shared: &Shared, n: &Notification, sock: Sock) -> Result<Handled, Reply> {
    let flags = n.args[2] as i32;
    let hdr = MsgHdr::parse(&copy_in(n.pid, n.args[1], msg::MSGHDR_LEN)?)
        .ok_or(Reply::Errno(libc::EFAULT))?;
    let Copied { raw, data, control } = copy_message(n.pid, sock.kind, &hdr)?;
    let name = judge_send(
        shared,
        n.pid,
        sock.kind,
        &raw,
        &data,
        flags & libc::MSG_FASTOPEN != 0,
    )?;
    send_one(sock, name, data, control, flags)
}

fn sendmmsg(shared: &Shared, n: &Notification, sock: Sock) -> Result<Handled, Reply> {
    let flags = n.args[3] as i32;
    let vlen = (n.args[2] as u32 as usize).min(msg::UIO_MAXIOV);
    if vlen == 0 {
        return Ok(Handled::Now(Reply::Value(0)));
    }
    let table = copy_in(n.pid, n.args[1], vlen * msg::MMSGHDR_LEN)?;
    // Copy and decide every message first: a denied message stops the batch before it.
    let mut batch = Vec::with_capacity(vlen);
    let mut stop = None;
    for (i, entry) in table.chunks_exact(msg::MMSGHDR_LEN).enumerate() {
        let judged = MsgHdr::parse(entry)
            .ok_or(Reply::Errno(libc::EFAULT))
            .and_then(|hdr| copy_message(n.pid, sock.kind, &hdr))
            .and_then(|c| {
                let name = judge_send(
                    shared,
                    n.pid,
                    sock.kind,
                    &c.raw,
                    &c.data,
                    flags & libc::MSG_FASTOPEN != 0,
                )?;
                Ok(Copied { raw: name, ..c })
            });
        match judged {
            Ok(m) => batch.push(m),
            Err(r) => {
                stop = Some((i, r));
                break;
            }
        }
    }
    let (pid, table_addr) = (n.pid, n.args[1]);
    let nb = nonblocking(&sock, flags)?;
    let run = move |flags: i32| -> Reply {
        let mut sent = 0usize;
        let mut first_err = None;
        for m in &batch {
            match sysnet::send_message(
                sock.fd.as_fd(),
                &m.raw,
                &m.data,
                &m.control,
                flags | libc::MSG_NOSIGNAL,
            ) {
                Ok(len) => {
                    let at = table_addr + (sent * msg::MMSGHDR_LEN + msg::MMSG_LEN_OFFSET) as u64;
                    let _ = sysnet::write_memory(pid, at, &(len as u32).to_ne_bytes());
                    sent += 1;
                }
                Err(e) => {
                    first_err = Some(errno(e));
                    break;
                }
            }
        }
        match (sent, first_err, &stop) {
            (0, Some(e), _) => e,
            (0, None, Some((_, r))) => *r,
            (s, _, _) => Reply::Value(s as i64),
        }
    };
    if nb {
        return Ok(Handled::Now(run(flags)));
    }
    Ok(Handled::Later(Box::new(move || run(flags))))
}
