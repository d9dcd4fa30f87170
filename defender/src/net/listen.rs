//! `bind` and `listen`: judged on the port, performed on the app's socket by the defender,
//! without lending it the defender's privilege to bind low ports.

use std::net::SocketAddr;
use std::os::fd::AsFd;

use crate::sys::net::{self as sysnet, End};
use crate::sys::notify::{Notification, Reply};

use super::decide;
use super::emulate::{enforce, Handled};
use super::sockaddr::{self, Dest};
use super::socket::{copy_addr, errno, Sock};
use super::Shared;

/// `CAP_NET_BIND_SERVICE`.
const CAP_NET_BIND_SERVICE: u32 = 10;

/// The local address a bind names, as the kernel will read it on this socket.
fn bind_dest(sock: &Sock, raw: &[u8]) -> Result<SocketAddr, Reply> {
    let bad = |e: sockaddr::AddrError| Reply::Errno(e.errno());
    match (sockaddr::decode(raw).map_err(bad)?, sock.kind.domain) {
        (Dest::Inet(d @ SocketAddr::V4(_)), libc::AF_INET)
        | (Dest::Inet(d @ SocketAddr::V6(_)), libc::AF_INET6) => Ok(d),
        // IPv4 accepts AF_UNSPEC for INADDR_ANY (old programs).
        (Dest::Unspec, libc::AF_INET) => sockaddr::decode_v4(raw).map_err(bad),
        _ => Err(Reply::Errno(libc::EAFNOSUPPORT)),
    }
}

/// Whether `/proc/PID/status` text shows capability `cap` in the effective set.
pub fn has_capability(status: &str, cap: u32) -> bool {
    status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        .is_some_and(|bits| bits & (1u64 << cap) != 0)
}

pub fn bind(shared: &Shared, n: &Notification, sock: Sock) -> Result<Handled, Reply> {
    let raw = copy_addr(n.pid, n.args[1], n.args[2])?;
    let local = bind_dest(&sock, &raw)?;
    let port = local.port();
    if port != 0 {
        let rule = shared.rule();
        enforce(shared, decide::listen(rule.as_deref(), port, n.pid))?;
        // The defender binds with its own privileges: keep the app's limits on low ports.
        if port < shared.unprivileged_port_start {
            let status =
                std::fs::read_to_string(format!("/proc/{}/status", n.pid)).unwrap_or_default();
            if !has_capability(&status, CAP_NET_BIND_SERVICE) {
                return Err(Reply::Errno(libc::EACCES));
            }
        }
    }
    Ok(Handled::Now(
        match sysnet::bind(sock.fd.as_fd(), &sockaddr::encode(&local)) {
            Ok(()) => Reply::Value(0),
            Err(e) => errno(e),
        },
    ))
}

fn local_port(sock: &Sock) -> Result<u16, Reply> {
    let raw = sysnet::socket_name(sock.fd.as_fd(), End::Local).map_err(errno)?;
    match sockaddr::decode(&raw) {
        Ok(Dest::Inet(a)) => Ok(a.port()),
        _ => Ok(0),
    }
}

pub fn listen(shared: &Shared, n: &Notification, sock: Sock) -> Result<Handled, Reply> {
    let mut port = local_port(&sock)?;
    if port == 0 && sock.kind.ty == libc::SOCK_STREAM {
        // listen() would pick an ephemeral port itself; pick it first so it can be judged.
        let any: SocketAddr = match sock.kind.domain {
            libc::AF_INET6 => (std::net::Ipv6Addr::UNSPECIFIED, 0).into(),
            _ => (std::net::Ipv4Addr::UNSPECIFIED, 0).into(),
        };
        sysnet::bind(sock.fd.as_fd(), &sockaddr::encode(&any)).map_err(errno)?;
        port = local_port(&sock)?;
    }
    if port != 0 {
        let rule = shared.rule();
        enforce(shared, decide::listen(rule.as_deref(), port, n.pid))?;
    }
    Ok(Handled::Now(
        match sysnet::listen(sock.fd.as_fd(), n.args[1] as i32) {
            Ok(()) => Reply::Value(0),
            Err(e) => errno(e),
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capability_bits_from_proc_status() {
        let root = "Name:\tx\nCapEff:\t000001ffffffffff\n";
        let none = "Name:\tx\nCapEff:\t0000000000000000\n";
        let only_bind = "CapEff:\t0000000000000400\n";
        assert!(has_capability(root, CAP_NET_BIND_SERVICE));
        assert!(!has_capability(none, CAP_NET_BIND_SERVICE));
        assert!(has_capability(only_bind, CAP_NET_BIND_SERVICE));
        assert!(!has_capability("", CAP_NET_BIND_SERVICE));
    }
}
