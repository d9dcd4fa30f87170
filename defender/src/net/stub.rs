//! The resolver stub: a UDP + TCP DNS server on loopback inside the defender.
//!
//! A connected socket to port 53 is connected here instead of to its nameserver; the stub
//! remembers, per redirected socket (its local address), which nameserver it meant. Each query
//! that arrives is decided on the bytes the stub itself received, so no other thread of the app
//! can change them afterwards. Allowed queries (and `alert` ones) are forwarded to that
//! nameserver and the answer relayed back; denied ones are answered `NXDOMAIN` at once and never
//! leave the defender.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::fd::AsRawFd;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::decide;
use super::dns::{self, TcpFramer};
use super::sockaddr::policy_ip;
use super::{NetError, Shared};
use crate::sys::process::poll_readable;

/// How long the stub waits for a nameserver's answer.
const FORWARD_TIMEOUT: Duration = Duration::from_secs(5);
/// Idle TCP connections are closed after this long.
const TCP_IDLE: Duration = Duration::from_secs(10);
/// Forwarded queries awaiting an answer per stub socket; more are dropped (the app retries).
const MAX_IN_FLIGHT: usize = 256;
/// Redirected sockets remembered at once.
const MAX_ROUTES: usize = 8192;

/// Where a redirected socket's queries were meant to go.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Route {
    pub server: SocketAddr,
    /// The process (thread group) that connected the socket.
    pub pid: i32,
}

/// Redirected sockets by their local address (IPv4-mapped addresses folded to IPv4).
#[derive(Default)]
pub struct Routes {
    map: Mutex<HashMap<(IpAddr, u16), Route>>,
}

fn key(addr: SocketAddr) -> (IpAddr, u16) {
    (policy_ip(addr.ip()), addr.port())
}

impl Routes {
    pub fn insert(&self, local: SocketAddr, route: Route) {
        if let Ok(mut m) = self.map.lock() {
            if m.len() >= MAX_ROUTES {
                m.clear();
            }
            m.insert(key(local), route);
        }
    }

    pub fn get(&self, peer: SocketAddr) -> Option<Route> {
        self.map.lock().ok()?.get(&key(peer)).copied()
    }
}

/// The stub's addresses (one port for UDP and TCP).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StubAddrs {
    pub v4: SocketAddr,
    /// `[::1]` when the container has IPv6 loopback.
    pub v6: Option<SocketAddr>,
}

impl StubAddrs {
    /// Where to send a socket that wanted `server`.
    pub fn for_server(&self, server: SocketAddr) -> SocketAddr {
        match (server, self.v6) {
            (SocketAddr::V4(_), _) => self.v4,
            (SocketAddr::V6(_), Some(v6)) => v6,
            (SocketAddr::V6(_), None) => super::sockaddr::for_family(self.v4, libc::AF_INET6),
        }
    }
}

/// The stub's sockets, bound but not yet served.
pub struct Bound {
    pub addrs: StubAddrs,
    sockets: Vec<(UdpSocket, TcpListener)>,
}

/// Binds the stub on 127.0.0.1 (and ::1 when possible), one free port for UDP and TCP.
pub fn bind() -> Result<Bound, NetError> {
    let bind_err = |source| NetError::StubBind { source };
    let mut last = None;
    for _ in 0..16 {
        let udp = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).map_err(bind_err)?;
        let v4 = udp.local_addr().map_err(bind_err)?;
        match TcpListener::bind(v4) {
            Ok(tcp) => {
                let mut sockets = vec![(udp, tcp)];
                let mut v6 = None;
                if let Some((u6, t6)) = bind_v6(v4.port()) {
                    v6 = u6.local_addr().ok();
                    sockets.push((u6, t6));
                }
                return Ok(Bound {
                    addrs: StubAddrs { v4, v6 },
                    sockets,
                });
            }
            Err(e) => last = Some(e),
        }
    }
    Err(bind_err(last.unwrap_or_else(|| {
        std::io::Error::other("no free loopback port")
    })))
}

/// Starts the stub's threads.
pub fn start(shared: &Arc<Shared>, bound: Bound) -> Result<(), NetError> {
    for (udp, tcp) in bound.sockets {
        serve(shared, udp, tcp)?;
    }
    Ok(())
}

fn bind_v6(port: u16) -> Option<(UdpSocket, TcpListener)> {
    let addr = SocketAddr::new(IpAddr::V6(Ipv6Addr::LOCALHOST), port);
    Some((UdpSocket::bind(addr).ok()?, TcpListener::bind(addr).ok()?))
}

fn serve(shared: &Arc<Shared>, udp: UdpSocket, tcp: TcpListener) -> Result<(), NetError> {
    let spawn_err = |source| NetError::Thread { source };
    let s = Arc::clone(shared);
    std::thread::Builder::new()
        .name("dns-stub-udp".into())
        .spawn(move || udp_loop(&s, udp))
        .map_err(spawn_err)?;
    let s = Arc::clone(shared);
    std::thread::Builder::new()
        .name("dns-stub-tcp".into())
        .spawn(move || tcp_loop(&s, tcp))
        .map_err(spawn_err)?;
    Ok(())
}

/// Decides a query the stub received from `route`'s socket. `None` = forward it; `Some(bytes)` =
/// answer with these bytes instead.
fn decide_query(shared: &Shared, route: Option<Route>, query: &[u8]) -> Option<Vec<u8>> {
    let Some(route) = route else {
        // Not a socket the defender redirected: nothing to forward to.
        return Some(dns::refusal(query).unwrap_or_default());
    };
    let rule = shared.rule();
    let parsed = match dns::parse_query(query) {
        Ok(q) => q,
        // Not a query we can read: forward only when the DNS section denies nothing.
        Err(_) => return shared.dns_denies_anything(rule.as_deref()).then(Vec::new),
    };
    let verdicts = parsed
        .names
        .iter()
        .map(|n| decide::domain(rule.as_deref(), n, Some(route.server.ip()), route.pid))
        .collect();
    let (allowed, events) = decide::combine(verdicts);
    events.into_iter().for_each(|e| shared.report(e));
    if allowed {
        None
    } else {
        Some(dns::refusal(query).unwrap_or_default())
    }
}

/// A forwarded query waiting for its nameserver's answer.
struct Pending {
    upstream: UdpSocket,
    client: SocketAddr,
    id: [u8; 2],
    deadline: Instant,
}

/// One thread per stub socket: reads queries, decides them, answers refusals at once, forwards
/// the rest from a fresh socket each, and relays answers as they arrive (no thread per query).
fn udp_loop(shared: &Shared, sock: UdpSocket) {
    if sock.set_nonblocking(true).is_err() {
        return;
    }
    let mut pending: Vec<Pending> = Vec::new();
    let mut buf = vec![0u8; dns::MAX_MESSAGE];
    loop {
        let now = Instant::now();
        let timeout = pending
            .iter()
            .map(|p| p.deadline.saturating_duration_since(now).as_millis())
            .min()
            .map_or(-1, |ms| i32::try_from(ms + 1).unwrap_or(i32::MAX));
        let mut fds = vec![sock.as_raw_fd()];
        fds.extend(pending.iter().map(|p| p.upstream.as_raw_fd()));
        let Ok(revents) = poll_readable(&fds, timeout) else {
            return;
        };
        // Answers first, then expiries, then new queries (so indexes stay valid).
        for i in (0..pending.len()).rev() {
            if revents.get(i + 1).copied().unwrap_or(0) == 0 {
                continue;
            }
            loop {
                match pending[i].upstream.recv(&mut buf) {
                    Ok(n) if n >= 2 && buf[..2] == pending[i].id => {
                        let p = pending.swap_remove(i);
                        shared.resolved.record(&buf[..n]);
                        let _ = sock.send_to(&buf[..n], p.client);
                        break;
                    }
                    Ok(_) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                    // Refused or unreachable: the app's own retry or timeout takes over.
                    Err(_) => {
                        pending.swap_remove(i);
                        break;
                    }
                }
            }
        }
        let now = Instant::now();
        pending.retain(|p| p.deadline > now);
        while let Ok((n, from)) = sock.recv_from(&mut buf) {
            let query = &buf[..n];
            let route = shared.routes.get(from);
            match decide_query(shared, route, query) {
                Some(refusal) if refusal.is_empty() => {}
                Some(refusal) => {
                    let _ = sock.send_to(&refusal, from);
                }
                None if pending.len() >= MAX_IN_FLIGHT => {}
                None => {
                    let forwarded = route.and_then(|r| forward_udp(r.server, query));
                    if let (Some(upstream), [a, b, ..]) = (forwarded, query) {
                        pending.push(Pending {
                            upstream,
                            client: from,
                            id: [*a, *b],
                            deadline: now + FORWARD_TIMEOUT,
                        });
                    }
                }
            }
        }
    }
}

/// Sends `query` to `server` from a fresh non-blocking socket, returned to wait on.
fn forward_udp(server: SocketAddr, query: &[u8]) -> Option<UdpSocket> {
    let local: SocketAddr = match server {
        SocketAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
        SocketAddr::V6(_) => (Ipv6Addr::UNSPECIFIED, 0).into(),
    };
    let sock = UdpSocket::bind(local).ok()?;
    sock.connect(server).ok()?;
    sock.set_nonblocking(true).ok()?;
    sock.send(query).ok()?;
    Some(sock)
}

fn tcp_loop(shared: &Arc<Shared>, listener: TcpListener) {
    for conn in listener.incoming() {
        let Ok(conn) = conn else { continue };
        let s = Arc::clone(shared);
        let _ = std::thread::Builder::new()
            .name("dns-stub-tcp-conn".into())
            .spawn(move || tcp_conn(&s, conn));
    }
}

fn tcp_conn(shared: &Shared, mut conn: TcpStream) {
    let Ok(peer) = conn.peer_addr() else { return };
    let _ = conn.set_read_timeout(Some(TCP_IDLE));
    let mut upstream: Option<TcpStream> = None;
    let mut framer = TcpFramer::default();
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        while let Some(query) = framer.next_message() {
            // Looked up per query: the app writes only after its connect was answered, which is
            // after the route was recorded (the accept itself can come first).
            let route = shared.routes.get(peer);
            let answer = match decide_query(shared, route, &query) {
                Some(refusal) if refusal.is_empty() => return,
                Some(refusal) => refusal,
                None => match route.and_then(|r| forward_tcp(&mut upstream, r.server, &query)) {
                    Some(a) => a,
                    None => return,
                },
            };
            shared.resolved.record(&answer);
            match dns::tcp_frame(&answer) {
                Some(framed) if conn.write_all(&framed).is_ok() => {}
                _ => return,
            }
        }
        match conn.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => framer.push(&buf[..n]),
        }
    }
}

/// Sends one query over the (lazily opened) upstream connection and reads one framed answer.
fn forward_tcp(
    upstream: &mut Option<TcpStream>,
    server: SocketAddr,
    query: &[u8],
) -> Option<Vec<u8>> {
    if upstream.is_none() {
        let s = TcpStream::connect_timeout(&server, FORWARD_TIMEOUT).ok()?;
        s.set_read_timeout(Some(FORWARD_TIMEOUT)).ok()?;
        *upstream = Some(s);
    }
    let up = upstream.as_mut()?;
    up.write_all(&dns::tcp_frame(query)?).ok()?;
    let mut len = [0u8; 2];
    up.read_exact(&mut len).ok()?;
    let mut answer = vec![0u8; usize::from(u16::from_be_bytes(len))];
    up.read_exact(&mut answer).ok()?;
    Some(answer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_fold_v4_mapped_local_addresses() {
        let routes = Routes::default();
        let server: SocketAddr = "10.0.0.2:53".parse().unwrap();
        routes.insert(
            "[::ffff:127.0.0.1]:40000".parse().unwrap(),
            Route { server, pid: 7 },
        );
        assert_eq!(
            routes.get("127.0.0.1:40000".parse().unwrap()),
            Some(Route { server, pid: 7 })
        );
        assert_eq!(routes.get("127.0.0.1:40001".parse().unwrap()), None);
        routes.insert("127.0.0.1:40000".parse().unwrap(), Route { server, pid: 8 });
        assert_eq!(
            routes
                .get("[::ffff:127.0.0.1]:40000".parse().unwrap())
                .map(|r| r.pid),
            Some(8)
        );
    }

    #[test]
    fn resolver_sockets_go_to_the_stub_of_their_family() {
        let v4: SocketAddr = "127.0.0.1:5300".parse().unwrap();
        let v6: SocketAddr = "[::1]:5300".parse().unwrap();
        let both = StubAddrs { v4, v6: Some(v6) };
        assert_eq!(both.for_server("8.8.8.8:53".parse().unwrap()), v4);
        assert_eq!(both.for_server("[2001:db8::53]:53".parse().unwrap()), v6);
        let only_v4 = StubAddrs { v4, v6: None };
        assert_eq!(
            only_v4.for_server("[2001:db8::53]:53".parse().unwrap()),
            "[::ffff:127.0.0.1]:5300".parse().unwrap()
        );
    }
}
