//! Decoding the `sockaddr` bytes copied out of the app, and encoding the canonical address the
//! defender then hands to the kernel (so the kernel acts on exactly what was decided).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

/// Largest address the kernel accepts (`sizeof(struct sockaddr_storage)`).
pub const MAX_ADDR_LEN: usize = 128;

const AF_UNSPEC: u16 = libc::AF_UNSPEC as u16;
const AF_INET: u16 = libc::AF_INET as u16;
const AF_INET6: u16 = libc::AF_INET6 as u16;
const AF_UNIX: u16 = libc::AF_UNIX as u16;
const SIN_LEN: usize = 16;
const SIN6_LEN: usize = 28;
/// The kernel accepts IPv6 addresses without the trailing scope id (RFC 2133 size).
const SIN6_LEN_RFC2133: usize = 24;

/// What a copied address means to the kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dest {
    /// An IPv4 or IPv6 endpoint (IPv4-mapped IPv6 kept as IPv6; see [`policy_ip`]).
    Inet(SocketAddr),
    /// `AF_UNSPEC`: `connect` dissolves the association.
    Unspec,
    /// A Unix socket path or abstract name: not network policy.
    Unix,
    /// Any other family.
    Other(u16),
}

/// Why a copied address is unusable; each maps to the errno the kernel would give.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AddrError {
    #[error("address of {len} bytes is too short for its family")]
    TooShort { len: usize },
}

impl AddrError {
    /// The errno the kernel returns for this address.
    pub fn errno(self) -> i32 {
        libc::EINVAL
    }
}

/// Decodes `bytes` (the first `addrlen` bytes at the app's pointer).
pub fn decode(bytes: &[u8]) -> Result<Dest, AddrError> {
    if bytes.len() < 2 {
        return Err(AddrError::TooShort { len: bytes.len() });
    }
    let family = u16::from_ne_bytes([bytes[0], bytes[1]]);
    match family {
        AF_INET => decode_v4(bytes).map(Dest::Inet),
        AF_INET6 => {
            if bytes.len() < SIN6_LEN_RFC2133 {
                return Err(AddrError::TooShort { len: bytes.len() });
            }
            let port = u16::from_be_bytes([bytes[2], bytes[3]]);
            let flowinfo = u32::from_be_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]);
            let mut ip = [0u8; 16];
            ip.copy_from_slice(&bytes[8..24]);
            let scope = if bytes.len() >= SIN6_LEN {
                u32::from_ne_bytes([bytes[24], bytes[25], bytes[26], bytes[27]])
            } else {
                0
            };
            Ok(Dest::Inet(SocketAddr::V6(SocketAddrV6::new(
                Ipv6Addr::from(ip),
                port,
                flowinfo,
                scope,
            ))))
        }
        AF_UNSPEC => Ok(Dest::Unspec),
        AF_UNIX => Ok(Dest::Unix),
        other => Ok(Dest::Other(other)),
    }
}

/// Reads an IPv4 `sockaddr_in` whatever its family field says (UDP on an IPv4 socket treats an
/// `AF_UNSPEC` destination this way).
pub fn decode_v4(bytes: &[u8]) -> Result<SocketAddr, AddrError> {
    if bytes.len() < SIN_LEN {
        return Err(AddrError::TooShort { len: bytes.len() });
    }
    let port = u16::from_be_bytes([bytes[2], bytes[3]]);
    let ip = Ipv4Addr::new(bytes[4], bytes[5], bytes[6], bytes[7]);
    Ok(SocketAddr::V4(SocketAddrV4::new(ip, port)))
}

/// The canonical `sockaddr_in`/`sockaddr_in6` bytes for `addr`.
pub fn encode(addr: &SocketAddr) -> Vec<u8> {
    match addr {
        SocketAddr::V4(a) => {
            let mut b = vec![0u8; SIN_LEN];
            b[..2].copy_from_slice(&AF_INET.to_ne_bytes());
            b[2..4].copy_from_slice(&a.port().to_be_bytes());
            b[4..8].copy_from_slice(&a.ip().octets());
            b
        }
        SocketAddr::V6(a) => {
            let mut b = vec![0u8; SIN6_LEN];
            b[..2].copy_from_slice(&AF_INET6.to_ne_bytes());
            b[2..4].copy_from_slice(&a.port().to_be_bytes());
            b[4..8].copy_from_slice(&a.flowinfo().to_be_bytes());
            b[8..24].copy_from_slice(&a.ip().octets());
            b[24..28].copy_from_slice(&a.scope_id().to_ne_bytes());
            b
        }
    }
}

/// The `sockaddr` for `AF_UNSPEC` (dissolve a datagram association).
pub fn encode_unspec() -> Vec<u8> {
    let mut b = vec![0u8; SIN_LEN];
    b[..2].copy_from_slice(&AF_UNSPEC.to_ne_bytes());
    b
}

/// The address the policy judges: an IPv4-mapped IPv6 address is the IPv4 address it carries.
pub fn policy_ip(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map(IpAddr::V4)
            .unwrap_or(IpAddr::V6(v6)),
        v4 => v4,
    }
}

/// The same address expressed for a socket of family `domain`: an IPv4 endpoint becomes
/// IPv4-mapped on an `AF_INET6` socket.
pub fn for_family(addr: SocketAddr, domain: i32) -> SocketAddr {
    match (addr, domain) {
        (SocketAddr::V4(a), libc::AF_INET6) => {
            SocketAddr::V6(SocketAddrV6::new(a.ip().to_ipv6_mapped(), a.port(), 0, 0))
        }
        (a, _) => a,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sin(ip: [u8; 4], port: u16) -> Vec<u8> {
        let mut b = vec![0u8; 16];
        b[..2].copy_from_slice(&(libc::AF_INET as u16).to_ne_bytes());
        b[2..4].copy_from_slice(&port.to_be_bytes());
        b[4..8].copy_from_slice(&ip);
        b
    }

    #[test]
    fn ipv4_round_trips() {
        let bytes = sin([203, 0, 113, 7], 443);
        let d = decode(&bytes).unwrap();
        assert_eq!(d, Dest::Inet("203.0.113.7:443".parse().unwrap()));
        let Dest::Inet(a) = d else { panic!() };
        assert_eq!(encode(&a), bytes);
    }

    #[test]
    fn ipv6_with_scope_and_rfc2133_length() {
        let a: SocketAddr = "[2001:db8::1]:53".parse().unwrap();
        let mut bytes = encode(&a);
        assert_eq!(bytes.len(), 28);
        assert_eq!(decode(&bytes).unwrap(), Dest::Inet(a));
        bytes.truncate(24);
        assert_eq!(decode(&bytes).unwrap(), Dest::Inet(a));
        bytes.truncate(23);
        assert_eq!(decode(&bytes), Err(AddrError::TooShort { len: 23 }));
    }

    #[test]
    fn v4_mapped_is_judged_as_ipv4() {
        let a: SocketAddr = "[::ffff:203.0.113.7]:443".parse().unwrap();
        let Dest::Inet(d) = decode(&encode(&a)).unwrap() else {
            panic!()
        };
        assert_eq!(policy_ip(d.ip()), "203.0.113.7".parse::<IpAddr>().unwrap());
        assert_eq!(
            policy_ip("::1".parse().unwrap()),
            "::1".parse::<IpAddr>().unwrap()
        );
    }

    #[test]
    fn other_families_and_short_inputs() {
        let mut unix = vec![0u8; 20];
        unix[..2].copy_from_slice(&(libc::AF_UNIX as u16).to_ne_bytes());
        assert_eq!(decode(&unix).unwrap(), Dest::Unix);
        assert_eq!(decode(&encode_unspec()).unwrap(), Dest::Unspec);
        let mut nl = vec![0u8; 12];
        nl[..2].copy_from_slice(&(libc::AF_NETLINK as u16).to_ne_bytes());
        assert_eq!(decode(&nl).unwrap(), Dest::Other(libc::AF_NETLINK as u16));
        assert_eq!(decode(&[2]), Err(AddrError::TooShort { len: 1 }));
        assert_eq!(
            decode(&sin([1, 2, 3, 4], 1)[..15]),
            Err(AddrError::TooShort { len: 15 })
        );
    }

    #[test]
    fn unspec_read_as_ipv4_for_udp() {
        let mut b = sin([198, 51, 100, 1], 53);
        b[..2].copy_from_slice(&0u16.to_ne_bytes());
        assert_eq!(decode_v4(&b).unwrap(), "198.51.100.1:53".parse().unwrap());
    }

    #[test]
    fn ipv4_becomes_mapped_on_ipv6_sockets() {
        let a: SocketAddr = "127.0.0.1:5353".parse().unwrap();
        assert_eq!(
            for_family(a, libc::AF_INET6),
            "[::ffff:127.0.0.1]:5353".parse().unwrap()
        );
        assert_eq!(for_family(a, libc::AF_INET), a);
    }
}
