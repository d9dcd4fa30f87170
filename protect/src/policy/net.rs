//! One entry of an outbound list: an address part (any, IP or CIDR) and an optional port.
//!
//! Forms: `*`, `*:25`, `203.0.113.7`, `203.0.113.7:443`, `203.0.113.0/24`, `203.0.113.0/24:443`,
//! `2001:db8::1`, `2001:db8::/32`, `[2001:db8::1]:443`, `[2001:db8::/32]:443`. IPv4-mapped IPv6
//! (`::ffff:203.0.113.7`, `::ffff:203.0.113.0/120`) is stored as the IPv4 form, and addresses are
//! mapped the same way before matching, so one entry covers both families' spellings.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use ipnet::{IpNet, Ipv4Net};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The forms an outbound entry may take, quoted in errors.
const FORMS: &str =
    "an IP (203.0.113.7), a CIDR (203.0.113.0/24), *:PORT, IP:PORT, CIDR:PORT or [IPv6]:PORT";

/// Why a string is not a valid outbound entry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NetTargetError {
    /// The entry does not have any of the accepted shapes.
    #[error("{input:?} is not an outbound destination; expected {FORMS}")]
    Malformed {
        /// The entry as written.
        input: String,
    },
    /// The entry names a host; outbound lists take addresses only.
    #[error("{input:?} is a host name; outbound lists take IP addresses and CIDRs (put names in the dns section)")]
    HostName {
        /// The entry as written.
        input: String,
    },
    /// The port is not a number between 1 and 65535.
    #[error("port {port:?} in {input:?} is not a number between 1 and 65535")]
    BadPort {
        /// The entry as written.
        input: String,
        /// The port part as written.
        port: String,
    },
    /// The CIDR has bits set after the prefix length.
    #[error("{input:?} has host bits set after the prefix; write {suggestion}")]
    HostBits {
        /// The entry as written.
        input: String,
        /// The network address with the host bits cleared.
        suggestion: String,
    },
}

/// A destination pattern: `None` for the address means any address, `None` for the port any port.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct NetTarget {
    net: Option<IpNet>,
    port: Option<u16>,
}

impl NetTarget {
    /// Parses one outbound entry; see the module docs for the forms.
    pub fn parse(input: &str) -> Result<NetTarget, NetTargetError> {
        let malformed = || NetTargetError::Malformed {
            input: input.to_owned(),
        };
        let (host, port) = if let Some(inner) = input.strip_prefix('[') {
            let (host, port) = inner.split_once("]:").ok_or_else(malformed)?;
            if !host.contains(':') {
                return Err(malformed());
            }
            (host, Some(port))
        } else if input.matches(':').count() == 1 {
            let (host, port) = input.split_once(':').ok_or_else(malformed)?;
            (host, Some(port))
        } else {
            (input, None)
        };
        let port = port.map(|p| parse_port(input, p)).transpose()?;
        let net = if host == "*" {
            None
        } else {
            Some(parse_host(input, host)?)
        };
        Ok(NetTarget { net, port })
    }

    /// Any address; `port` limits it to one port.
    pub fn any(port: Option<u16>) -> NetTarget {
        NetTarget { net: None, port }
    }

    /// The address part: `None` for any address.
    pub fn net(&self) -> Option<IpNet> {
        self.net
    }

    /// The port part: `None` for any port.
    pub fn port(&self) -> Option<u16> {
        self.port
    }

    /// Whether a connection to `ip:port` falls under this entry (IPv4-mapped IPv6 counts as IPv4).
    pub fn matches(&self, ip: IpAddr, port: u16) -> bool {
        let ip = ip.to_canonical();
        self.net.is_none_or(|n| n.contains(&ip)) && self.port.is_none_or(|p| p == port)
    }
}

fn parse_port(input: &str, port: &str) -> Result<u16, NetTargetError> {
    let bad = || NetTargetError::BadPort {
        input: input.to_owned(),
        port: port.to_owned(),
    };
    if port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    match port.parse::<u16>() {
        Ok(0) | Err(_) => Err(bad()),
        Ok(p) => Ok(p),
    }
}

fn parse_host(input: &str, host: &str) -> Result<IpNet, NetTargetError> {
    if host.contains('/') {
        let net = IpNet::from_str(host).map_err(|_| NetTargetError::Malformed {
            input: input.to_owned(),
        })?;
        if net.trunc() != net {
            return Err(NetTargetError::HostBits {
                input: input.to_owned(),
                suggestion: net.trunc().to_string(),
            });
        }
        return Ok(canonical_net(net));
    }
    match IpAddr::from_str(host) {
        Ok(ip) => Ok(IpNet::from(ip.to_canonical())),
        Err(_) if host.bytes().any(|b| b.is_ascii_alphabetic()) && !host.contains(':') => {
            Err(NetTargetError::HostName {
                input: input.to_owned(),
            })
        }
        Err(_) => Err(NetTargetError::Malformed {
            input: input.to_owned(),
        }),
    }
}

/// `::ffff:a.b.c.d/(96+n)` becomes `a.b.c.d/n`; other networks are unchanged.
fn canonical_net(net: IpNet) -> IpNet {
    if let IpNet::V6(v6) = net {
        if let (Some(v4), true) = (v6.addr().to_ipv4_mapped(), v6.prefix_len() >= 96) {
            if let Ok(n) = Ipv4Net::new(v4, v6.prefix_len() - 96) {
                return IpNet::V4(n);
            }
        }
    }
    net
}

impl fmt::Display for NetTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let host = match self.net {
            None => "*".to_owned(),
            Some(n) if n.prefix_len() == n.max_prefix_len() => n.addr().to_string(),
            Some(n) => n.to_string(),
        };
        match (self.net, self.port) {
            (_, None) => f.write_str(&host),
            (Some(IpNet::V6(_)), Some(p)) => write!(f, "[{host}]:{p}"),
            (_, Some(p)) => write!(f, "{host}:{p}"),
        }
    }
}

impl FromStr for NetTarget {
    type Err = NetTargetError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        NetTarget::parse(s)
    }
}

impl Serialize for NetTarget {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for NetTarget {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        NetTarget::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    fn t(s: &str) -> NetTarget {
        NetTarget::parse(s).expect("valid target")
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("valid ip")
    }

    #[test]
    fn every_form_parses_and_prints_back() {
        for s in [
            "*",
            "*:25",
            "203.0.113.7",
            "203.0.113.7:443",
            "203.0.113.0/24",
            "203.0.113.0/24:443",
            "2001:db8::1",
            "2001:db8::/32",
            "[2001:db8::1]:443",
            "[2001:db8::/32]:443",
            "0.0.0.0/0",
            "::/0",
        ] {
            assert_eq!(t(s).to_string(), s, "{s}");
        }
    }

    #[test]
    fn matching_by_form() {
        assert!(t("*").matches(ip("198.51.100.1"), 1));
        assert!(t("*:25").matches(ip("198.51.100.1"), 25));
        assert!(t("*:25").matches(ip("2001:db8::9"), 25));
        assert!(!t("*:25").matches(ip("198.51.100.1"), 26));
        assert!(t("203.0.113.7").matches(ip("203.0.113.7"), 9));
        assert!(!t("203.0.113.7").matches(ip("203.0.113.8"), 9));
        assert!(t("203.0.113.7:443").matches(ip("203.0.113.7"), 443));
        assert!(!t("203.0.113.7:443").matches(ip("203.0.113.7"), 80));
        assert!(t("203.0.113.0/24").matches(ip("203.0.113.255"), 80));
        assert!(!t("203.0.113.0/24").matches(ip("203.0.114.0"), 80));
        assert!(t("203.0.113.0/24:443").matches(ip("203.0.113.1"), 443));
        assert!(!t("203.0.113.0/24:443").matches(ip("203.0.113.1"), 444));
        assert!(t("[2001:db8::1]:443").matches(ip("2001:db8::1"), 443));
        assert!(!t("[2001:db8::1]:443").matches(ip("2001:db8::2"), 443));
        assert!(t("2001:db8::/32").matches(ip("2001:db8:ffff::1"), 1));
        assert!(!t("2001:db8::/32").matches(ip("2001:db9::1"), 1));
        assert!(!t("203.0.113.0/24").matches(ip("2001:db8::1"), 1));
    }

    #[test]
    fn ipv4_mapped_ipv6_is_the_ipv4_address() {
        assert!(t("203.0.113.7").matches(ip("::ffff:203.0.113.7"), 443));
        assert!(t("203.0.113.0/24:443").matches(ip("::ffff:203.0.113.99"), 443));
        assert_eq!(t("::ffff:203.0.113.7"), t("203.0.113.7"));
        assert_eq!(t("[::ffff:203.0.113.7]:443"), t("203.0.113.7:443"));
        assert_eq!(t("::ffff:203.0.113.0/120"), t("203.0.113.0/24"));
        assert!(t("::ffff:203.0.113.7").matches(IpAddr::V4(Ipv4Addr::new(203, 0, 113, 7)), 1));
        let mapped = IpAddr::V6(Ipv4Addr::new(203, 0, 113, 7).to_ipv6_mapped());
        assert!(t("203.0.113.7").matches(mapped, 1));
        // A plain IPv6 address that is not mapped stays IPv6.
        assert!(!t("203.0.113.7").matches(IpAddr::V6(Ipv6Addr::LOCALHOST), 1));
    }

    #[test]
    fn bad_forms_say_what_is_expected() {
        let err = |s: &str| NetTarget::parse(s).expect_err(s).to_string();
        assert_eq!(
            err("nonsense:x:y"),
            format!("\"nonsense:x:y\" is not an outbound destination; expected {FORMS}")
        );
        assert_eq!(
            err("*:0"),
            "port \"0\" in \"*:0\" is not a number between 1 and 65535"
        );
        assert_eq!(
            err("*:65536"),
            "port \"65536\" in \"*:65536\" is not a number between 1 and 65535"
        );
        assert_eq!(
            err("1.2.3.4:+80"),
            "port \"+80\" in \"1.2.3.4:+80\" is not a number between 1 and 65535"
        );
        assert_eq!(
            err("203.0.113.7/24"),
            "\"203.0.113.7/24\" has host bits set after the prefix; write 203.0.113.0/24"
        );
        assert_eq!(
            err("example.com"),
            "\"example.com\" is a host name; outbound lists take IP addresses and CIDRs (put names in the dns section)"
        );
        assert_eq!(
            err("example.com:443"),
            "\"example.com:443\" is a host name; outbound lists take IP addresses and CIDRs (put names in the dns section)"
        );
        for bad in [
            "",
            " 1.2.3.4",
            "1.2.3.4/33",
            "1.2.3",
            "[1.2.3.4]:80",
            "[2001:db8::1]",
            "2001:db8::1]:443",
            "*:",
            ":80",
            "*/8",
        ] {
            assert!(NetTarget::parse(bad).is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn serde_uses_the_string_form() {
        let v: Vec<NetTarget> =
            serde_json::from_str(r#"["*:25", "[2001:db8::1]:443"]"#).expect("parse");
        assert_eq!(v, vec![t("*:25"), t("[2001:db8::1]:443")]);
        assert_eq!(
            serde_json::to_string(&v).expect("serialize"),
            r#"["*:25","[2001:db8::1]:443"]"#
        );
        assert!(serde_json::from_str::<NetTarget>("\"*:0\"").is_err());
    }

    fn arb_net() -> impl Strategy<Value = Option<IpNet>> {
        prop_oneof![
            Just(None),
            (any::<u32>(), 0u8..=32).prop_map(|(a, len)| {
                Ipv4Net::new(Ipv4Addr::from(a), len)
                    .ok()
                    .map(|n| IpNet::V4(n.trunc()))
            }),
            (any::<u128>(), 0u8..=128).prop_map(|(a, len)| {
                ipnet::Ipv6Net::new(Ipv6Addr::from(a), len)
                    .ok()
                    .map(|n| canonical_net(IpNet::V6(n.trunc())))
            }),
        ]
    }

    proptest! {
        #[test]
        fn display_then_parse_is_identity(net in arb_net(), port in proptest::option::of(1u16..)) {
            let target = NetTarget { net, port };
            let text = target.to_string();
            prop_assert_eq!(NetTarget::parse(&text), Ok(target), "{}", text);
        }

        #[test]
        fn cidr_match_agrees_with_mask_arithmetic(addr in any::<u32>(), probe in any::<u32>(), len in 0u8..=32) {
            let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
            let net = Ipv4Addr::from(addr & mask);
            let target = t(&format!("{net}/{len}"));
            let expected = probe & mask == addr & mask;
            prop_assert_eq!(target.matches(IpAddr::V4(Ipv4Addr::from(probe)), 80), expected);
            let mapped = IpAddr::V6(Ipv4Addr::from(probe).to_ipv6_mapped());
            prop_assert_eq!(target.matches(mapped, 80), expected);
        }
    }
}
