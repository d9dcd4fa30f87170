//! The network policy under the ptrace fallback backend (kernels without user notification or
//! `pidfd_getfd`): the call is decided at its seccomp stop on bytes copied from the tracee, and a
//! denied call is skipped with its errno. Nothing is emulated, so unlike the notify backend an
//! allowed call can be raced (the kernel re-reads the tracee's memory): best effort, as the
//! README says. Without `pidfd_getfd` the socket is identified through `/proc/TID/fd` and
//! `/proc/TID/net/{tcp,udp}{,6}`.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use crate::sys::bpf::{Action, Rule as FilterRule};
use crate::sys::notify::Reply;

use super::decide;
use super::emulate::{
    copy_message, enforce, judge_dns_payload, judge_outbound, judge_send, payload_cap,
};
use super::msg::{self, MsgHdr};
use super::sockaddr::{self, Dest};
use super::socket::{copy_addr, copy_in, Kind};
use super::{NetGuard, Shared};

/// The `SECCOMP_RET_TRACE` data value of the network syscalls.
pub const TRACE_DATA: u16 = 1;

/// An IP socket as `/proc/TID/net` describes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProcSock {
    pub kind: Kind,
    pub local: SocketAddr,
    /// `None` when not connected.
    pub peer: Option<SocketAddr>,
}

/// Parses `ADDR:PORT` as `/proc/net/{tcp,udp}{,6}` print it (hex, address words in host order).
fn parse_endpoint(s: &str) -> Option<SocketAddr> {
    let (addr, port) = s.split_once(':')?;
    let port = u16::from_str_radix(port, 16).ok()?;
    let word = |h: &str| u32::from_str_radix(h, 16).ok().map(u32::to_ne_bytes);
    let ip = match addr.len() {
        8 => IpAddr::V4(Ipv4Addr::from(word(addr)?)),
        32 => {
            let mut b = [0u8; 16];
            for i in 0..4 {
                b[i * 4..i * 4 + 4].copy_from_slice(&word(addr.get(i * 8..i * 8 + 8)?)?);
            }
            IpAddr::V6(Ipv6Addr::from(b))
        }
        _ => return None,
    };
    Some(SocketAddr::new(ip, port))
}

/// Finds socket `inode` in one `/proc/net` table: (local, peer).
pub fn find_in_table(table: &str, inode: u64) -> Option<(SocketAddr, Option<SocketAddr>)> {
    table.lines().skip(1).find_map(|line| {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.get(9)?.parse::<u64>().ok()? != inode {
            return None;
        }
        let local = parse_endpoint(f.get(1)?)?;
        let peer = parse_endpoint(f.get(2)?)?;
        Some((local, (peer.port() != 0).then_some(peer)))
    })
}

/// The IP socket behind descriptor `fd` of thread `tid`, if it is one.
pub fn proc_socket(tid: i32, fd: i32) -> Option<ProcSock> {
    let link = std::fs::read_link(format!("/proc/{tid}/fd/{fd}")).ok()?;
    let inode: u64 = link
        .to_str()?
        .strip_prefix("socket:[")?
        .strip_suffix(']')?
        .parse()
        .ok()?;
    let tables = [
        ("tcp", libc::AF_INET, libc::SOCK_STREAM),
        ("tcp6", libc::AF_INET6, libc::SOCK_STREAM),
        ("udp", libc::AF_INET, libc::SOCK_DGRAM),
        ("udp6", libc::AF_INET6, libc::SOCK_DGRAM),
    ];
    tables.iter().find_map(|&(name, domain, ty)| {
        let table = std::fs::read_to_string(format!("/proc/{tid}/net/{name}")).ok()?;
        let (local, peer) = find_in_table(&table, inode)?;
        Some(ProcSock {
            kind: Kind { domain, ty },
            local,
            peer,
        })
    })
}

fn errno_of(r: Result<(), Reply>) -> Option<i32> {
    match r {
        Err(Reply::Errno(e)) => Some(e),
        _ => None,
    }
}

/// What a send needs judged, from the socket (`None`: not in the IP tables, e.g. an unbound
/// UDP socket, or not an IP socket) and the raw destination.
enum SendCheck {
    /// Nothing to judge.
    Nothing,
    /// A destination on a socket of this kind.
    Dest(Kind),
    /// The DNS payload of a socket connected to this nameserver.
    Resolver(SocketAddr, bool),
}

fn send_check(sock: Option<&ProcSock>, raw: &[u8]) -> SendCheck {
    match (sock, raw.is_empty()) {
        (Some(s), true) => match s.peer {
            Some(peer) if peer.port() == 53 => {
                SendCheck::Resolver(peer, s.kind.ty == libc::SOCK_STREAM)
            }
            _ => SendCheck::Nothing,
        },
        (Some(s), false) => SendCheck::Dest(s.kind),
        // Not listed: judge it as a datagram socket when the destination is an IP address
        // (a Unix or netlink address means it is not an IP socket).
        (None, false) => match sockaddr::decode(raw) {
            Ok(Dest::Inet(d)) => {
                let domain = if d.is_ipv4() {
                    libc::AF_INET
                } else {
                    libc::AF_INET6
                };
                SendCheck::Dest(Kind {
                    domain,
                    ty: libc::SOCK_DGRAM,
                })
            }
            _ => SendCheck::Nothing,
        },
        (None, true) => SendCheck::Nothing,
    }
}

/// Judges one message; `data` copies the payload only when the check needs it.
fn judge_message(
    shared: &Shared,
    tid: i32,
    check: SendCheck,
    raw: &[u8],
    fast_open: bool,
    data: impl FnOnce(Kind) -> Result<Vec<u8>, Reply>,
) -> Result<(), Reply> {
    match check {
        SendCheck::Nothing => Ok(()),
        SendCheck::Dest(kind) => {
            judge_send(shared, tid, kind, raw, &data(kind)?, fast_open).map(drop)
        }
        SendCheck::Resolver(server, stream) => {
            let kind = Kind {
                domain: libc::AF_INET,
                ty: if stream {
                    libc::SOCK_STREAM
                } else {
                    libc::SOCK_DGRAM
                },
            };
            judge_dns_payload(shared, tid, server, stream, &data(kind)?)
        }
    }
}

fn precheck(shared: &Shared, tid: i32, nr: i64, args: [u64; 6]) -> Result<(), Reply> {
    let sock = proc_socket(tid, args[0] as i32);
    match nr {
        libc::SYS_connect => match sockaddr::decode(&copy_addr(tid, args[1], args[2])?) {
            Ok(Dest::Inet(dest)) => judge_outbound(shared, tid, dest),
            _ => Ok(()),
        },
        libc::SYS_sendto => {
            let raw = if args[4] == 0 {
                Vec::new()
            } else {
                copy_addr(tid, args[4], args[5] & 0xffff_ffff)?
            };
            let fast_open = args[3] as i32 & libc::MSG_FASTOPEN != 0;
            judge_message(
                shared,
                tid,
                send_check(sock.as_ref(), &raw),
                &raw,
                fast_open,
                |kind| copy_in(tid, args[1], payload_cap(kind, args[2])?),
            )
        }
        libc::SYS_sendmsg | libc::SYS_sendmmsg => {
            let (table_addr, count, flags) = if nr == libc::SYS_sendmsg {
                (args[1], 1, args[2])
            } else {
                (
                    args[1],
                    (args[2] as u32 as usize).min(msg::UIO_MAXIOV),
                    args[3],
                )
            };
            let stride = if nr == libc::SYS_sendmsg {
                msg::MSGHDR_LEN
            } else {
                msg::MMSGHDR_LEN
            };
            let table = copy_in(tid, table_addr, count * stride)?;
            let fast_open = flags as i32 & libc::MSG_FASTOPEN != 0;
            // A denied message fails the whole call: the kernel cannot be told to stop half-way.
            for entry in table.chunks_exact(stride) {
                let hdr = MsgHdr::parse(entry).ok_or(Reply::Errno(libc::EFAULT))?;
                let raw = if hdr.name == 0 {
                    Vec::new()
                } else {
                    copy_addr(tid, hdr.name, u64::from(hdr.namelen))?
                };
                judge_message(
                    shared,
                    tid,
                    send_check(sock.as_ref(), &raw),
                    &raw,
                    fast_open,
                    |kind| copy_message(tid, kind, &hdr).map(|m| m.data),
                )?;
            }
            Ok(())
        }
        libc::SYS_bind => match sockaddr::decode(&copy_addr(tid, args[1], args[2])?) {
            Ok(Dest::Inet(local)) if local.port() != 0 => {
                let rule = shared.rule();
                enforce(shared, decide::listen(rule.as_deref(), local.port(), tid))
            }
            _ => Ok(()),
        },
        libc::SYS_listen => match sock {
            Some(s) if s.local.port() != 0 => {
                let rule = shared.rule();
                enforce(shared, decide::listen(rule.as_deref(), s.local.port(), tid))
            }
            _ => Ok(()),
        },
        _ => Ok(()),
    }
}

impl NetGuard {
    /// The filter lines for the ptrace backend: the same calls as [`NetGuard::filter_rules`],
    /// stopped for the tracer with data [`TRACE_DATA`] — and `sendto` without an address too:
    /// without emulation a resolver socket cannot be pointed at the stub, so a query sent with
    /// `send` (glibc's single-question path, Python's `gethostbyname`) is judged at its stop.
    /// That costs a ptrace stop per `send` under this fallback backend.
    pub fn trace_filter_rules() -> Vec<FilterRule> {
        NetGuard::filter_rules()
            .into_iter()
            .filter_map(|r| match r {
                FilterRule::Syscall {
                    nr,
                    action: Action::Notify,
                } => Some(FilterRule::Syscall {
                    nr,
                    action: Action::Trace(TRACE_DATA),
                }),
                FilterRule::SyscallArgEq { .. } => None,
                other => Some(other),
            })
            .collect()
    }

    /// Decides a network call at its seccomp stop (ptrace backend): `Some(errno)` to skip it
    /// with that error, `None` to let it run. Reports audits like [`NetGuard::handle`].
    pub fn precheck(&self, tid: i32, nr: i32, args: [u64; 6]) -> Option<i32> {
        errno_of(precheck(&self.shared, tid, i64::from(nr), args))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TCP: &str = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4242 1 0000000000000000 100 0 0 10 0
   1: 0100007F:C350 0735A87F:0035 01 00000000:00000000 00:00000000 00000000     0        0 777 1 0000000000000000 20 4 30 10 -1";
    const TCP6: &str = "  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000001000000:0050 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 99 1 0000000000000000 100 0 0 10 0";

    #[test]
    fn proc_net_tables_give_endpoints_by_inode() {
        assert_eq!(
            find_in_table(TCP, 4242),
            Some(("127.0.0.1:8080".parse().unwrap(), None))
        );
        assert_eq!(
            find_in_table(TCP, 777),
            Some((
                "127.0.0.1:50000".parse().unwrap(),
                Some("127.168.53.7:53".parse().unwrap())
            ))
        );
        assert_eq!(
            find_in_table(TCP6, 99),
            Some(("[::1]:80".parse().unwrap(), None))
        );
        assert_eq!(find_in_table(TCP, 5), None);
        assert_eq!(parse_endpoint("zz:0035"), None);
    }

    #[test]
    fn trace_rules_mirror_the_notify_rules() {
        let rules = NetGuard::trace_filter_rules();
        assert_eq!(rules.len(), NetGuard::filter_rules().len() - 1);
        assert!(!rules
            .iter()
            .any(|r| matches!(r, FilterRule::SyscallArgEq { .. })));
        assert!(rules.iter().all(|r| !matches!(
            r,
            FilterRule::Syscall {
                action: Action::Notify,
                ..
            }
        )));
        assert!(rules.contains(&FilterRule::Syscall {
            nr: libc::SYS_connect as u32,
            action: Action::Trace(TRACE_DATA)
        }));
    }

    #[test]
    fn this_process_sockets_are_found_in_proc() {
        use std::os::fd::AsRawFd;
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let u = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        u.connect("127.0.0.1:53").unwrap();
        let tid = std::process::id() as i32;
        let ls = proc_socket(tid, l.as_raw_fd()).unwrap();
        assert_eq!(
            (ls.kind, ls.local, ls.peer),
            (
                Kind {
                    domain: libc::AF_INET,
                    ty: libc::SOCK_STREAM
                },
                l.local_addr().unwrap(),
                None
            )
        );
        let us = proc_socket(tid, u.as_raw_fd()).unwrap();
        assert_eq!(
            (us.kind.ty, us.peer),
            (libc::SOCK_DGRAM, Some("127.0.0.1:53".parse().unwrap()))
        );
        assert_eq!(proc_socket(tid, 0), None);
    }
}
