//! Name resolution for the console URL without `getaddrinfo` (a static glibc binary cannot
//! load NSS modules): IP literals as they are, then `/etc/hosts`, then a DNS query over UDP
//! to the nameservers of `/etc/resolv.conf` (A, then AAAA).

use std::io;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::{Name, RData, RecordType};

/// Where to look names up.
#[derive(Clone, Debug)]
pub struct ResolverConfig {
    pub hosts_file: std::path::PathBuf,
    pub resolv_conf: std::path::PathBuf,
    /// Per-query timeout.
    pub timeout: Duration,
}

impl Default for ResolverConfig {
    fn default() -> ResolverConfig {
        ResolverConfig {
            hosts_file: "/etc/hosts".into(),
            resolv_conf: "/etc/resolv.conf".into(),
            timeout: Duration::from_secs(2),
        }
    }
}

/// Splits `host:port` / `[v6]:port`.
fn split_host_port(addr: &str) -> io::Result<(&str, u16)> {
    let bad = || io::Error::new(io::ErrorKind::InvalidInput, format!("bad address {addr:?}"));
    let (host, port) = addr.rsplit_once(':').ok_or_else(bad)?;
    let port = port.parse().map_err(|_| bad())?;
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    Ok((host, port))
}

/// Addresses of `name` in a hosts file.
pub fn hosts_lookup(text: &str, name: &str) -> Vec<IpAddr> {
    let name = name.trim_end_matches('.');
    text.lines()
        .filter_map(|l| {
            let l = l.split('#').next().unwrap_or("");
            let mut fields = l.split_whitespace();
            let ip: IpAddr = fields.next()?.parse().ok()?;
            fields.any(|n| n.eq_ignore_ascii_case(name)).then_some(ip)
        })
        .collect()
}

/// The `nameserver` entries of a resolv.conf.
pub fn nameservers(text: &str) -> Vec<IpAddr> {
    text.lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            (f.next()? == "nameserver").then_some(())?;
            f.next()?.split('%').next()?.parse().ok()
        })
        .collect()
}

fn query_once(
    server: SocketAddr,
    name: &Name,
    rtype: RecordType,
    timeout: Duration,
) -> io::Result<Vec<IpAddr>> {
    let bind: SocketAddr = if server.is_ipv4() {
        "0.0.0.0:0"
    } else {
        "[::]:0"
    }
    .parse()
    .map_err(|_| io::Error::other("bind address"))?;
    let sock = UdpSocket::bind(bind)?;
    sock.set_read_timeout(Some(timeout))?;
    sock.connect(server)?;
    let mut id_bytes = [0u8; 2];
    let _ = std::fs::File::open("/dev/urandom")
        .and_then(|mut f| io::Read::read_exact(&mut f, &mut id_bytes));
    let id = u16::from_ne_bytes(id_bytes);
    let mut msg = Message::new(id, MessageType::Query, OpCode::Query);
    msg.metadata.recursion_desired = true;
    msg.add_query(Query::query(name.clone(), rtype));
    let wire = msg.to_vec().map_err(|e| io::Error::other(e.to_string()))?;
    sock.send(&wire)?;
    let mut buf = [0u8; 4096];
    loop {
        let n = sock.recv(&mut buf)?;
        let Ok(resp) = Message::from_vec(&buf[..n]) else {
            continue;
        };
        if resp.metadata.id != id || resp.metadata.message_type != MessageType::Response {
            continue;
        }
        if resp.metadata.response_code != ResponseCode::NoError {
            return Ok(Vec::new());
        }
        return Ok(resp
            .answers
            .iter()
            .filter_map(|r| match &r.data {
                RData::A(a) => Some(IpAddr::V4(a.0)),
                RData::AAAA(a) => Some(IpAddr::V6(a.0)),
                _ => None,
            })
            .collect());
    }
}

/// Resolves `host:port` as described in the module docs.
pub fn resolve(config: &ResolverConfig, addr: &str) -> io::Result<Vec<SocketAddr>> {
    if let Ok(sa) = SocketAddr::from_str(addr) {
        return Ok(vec![sa]);
    }
    let (host, port) = split_host_port(addr)?;
    if let Ok(ip) = IpAddr::from_str(host) {
        return Ok(vec![SocketAddr::new(ip, port)]);
    }
    let read = |p: &Path| std::fs::read_to_string(p).unwrap_or_default();
    let from_hosts = hosts_lookup(&read(&config.hosts_file), host);
    if !from_hosts.is_empty() {
        return Ok(from_hosts
            .into_iter()
            .map(|ip| SocketAddr::new(ip, port))
            .collect());
    }
    if host.eq_ignore_ascii_case("localhost") {
        return Ok(vec![SocketAddr::from(([127, 0, 0, 1], port))]);
    }
    let fqdn = format!("{}.", host.trim_end_matches('.'));
    let name = Name::from_str(&fqdn)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, format!("{host:?}: {e}")))?;
    let servers = nameservers(&read(&config.resolv_conf));
    let mut last = io::Error::new(
        io::ErrorKind::NotFound,
        format!("{host}: no nameserver in {}", config.resolv_conf.display()),
    );
    for server in servers {
        for rtype in [RecordType::A, RecordType::AAAA] {
            match query_once(SocketAddr::new(server, 53), &name, rtype, config.timeout) {
                Ok(ips) if !ips.is_empty() => {
                    return Ok(ips
                        .into_iter()
                        .map(|ip| SocketAddr::new(ip, port))
                        .collect())
                }
                Ok(_) => {
                    last = io::Error::new(io::ErrorKind::NotFound, format!("{host}: no address"))
                }
                Err(e) => last = e,
            }
        }
    }
    Err(last)
}

/// Resolves against a nameserver at an explicit address (tests use a loopback server).
pub fn resolve_with(server: SocketAddr, host: &str, timeout: Duration) -> io::Result<Vec<IpAddr>> {
    let name = Name::from_str(&format!("{}.", host.trim_end_matches('.')))
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e.to_string()))?;
    query_once(server, &name, RecordType::A, timeout)
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::rr::rdata::A;
    use hickory_proto::rr::Record;

    #[test]
    fn literals_need_no_lookup() {
        let c = ResolverConfig {
            hosts_file: "/nonexistent".into(),
            resolv_conf: "/nonexistent".into(),
            timeout: Duration::from_millis(10),
        };
        assert_eq!(
            resolve(&c, "127.0.0.1:8083").unwrap(),
            vec!["127.0.0.1:8083".parse().unwrap()]
        );
        assert_eq!(
            resolve(&c, "[::1]:443").unwrap(),
            vec!["[::1]:443".parse().unwrap()]
        );
        assert_eq!(
            resolve(&c, "localhost:80").unwrap(),
            vec!["127.0.0.1:80".parse().unwrap()]
        );
        let e = resolve(&c, "console.example.com:443").unwrap_err();
        assert!(e.to_string().contains("no nameserver"), "{e}");
    }

    #[test]
    fn hosts_and_resolv_conf_are_parsed() {
        let hosts = "127.0.0.1 localhost\n# comment\n10.1.2.3  console.internal  console # x\n";
        assert_eq!(
            hosts_lookup(hosts, "CONSOLE"),
            vec!["10.1.2.3".parse::<IpAddr>().unwrap()]
        );
        assert!(hosts_lookup(hosts, "other").is_empty());
        let conf = "search ec2.internal\nnameserver 169.254.169.253\nnameserver fe80::1%eth0\noptions ndots:1\n";
        assert_eq!(
            nameservers(conf),
            vec![
                "169.254.169.253".parse::<IpAddr>().unwrap(),
                "fe80::1".parse().unwrap()
            ]
        );
    }

    #[test]
    fn hosts_file_entries_resolve() {
        let dir = std::env::temp_dir().join(format!("defender-resolve-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("hosts"), "127.0.0.9 console.test\n").unwrap();
        let c = ResolverConfig {
            hosts_file: dir.join("hosts"),
            resolv_conf: "/nonexistent".into(),
            timeout: Duration::from_millis(10),
        };
        assert_eq!(
            resolve(&c, "console.test:8083").unwrap(),
            vec!["127.0.0.9:8083".parse().unwrap()]
        );
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn dns_answers_from_a_loopback_server() {
        let server = UdpSocket::bind("127.0.0.1:0").unwrap();
        let addr = server.local_addr().unwrap();
        let t = std::thread::spawn(move || {
            let mut buf = [0u8; 512];
            let (n, peer) = server.recv_from(&mut buf).unwrap();
            let q = Message::from_vec(&buf[..n]).unwrap();
            let mut r = Message::new(q.metadata.id, MessageType::Response, OpCode::Query);
            r.add_query(q.queries[0].clone());
            r.add_answer(Record::from_rdata(
                q.queries[0].name.clone(),
                60,
                RData::A(A::new(127, 0, 0, 42)),
            ));
            server.send_to(&r.to_vec().unwrap(), peer).unwrap();
            q.queries[0].name.to_ascii()
        });
        let ips = resolve_with(addr, "console.example.com", Duration::from_secs(2)).unwrap();
        assert_eq!(ips, vec!["127.0.0.42".parse::<IpAddr>().unwrap()]);
        assert_eq!(t.join().unwrap(), "console.example.com.");
    }
}
