//! The demo's "internet" name server: answers on UDP and TCP port 53 of a loopback address inside
//! the demo's own network namespace, so no query ever leaves the machine.

use anyhow::{Context, Result};
use hickory_proto::op::{Message, MessageType, OpCode, ResponseCode};
use hickory_proto::rr::rdata::A;
use hickory_proto::rr::{RData, Record, RecordType};
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, UdpSocket};

/// Names the demo's world knows, all served by the demo's web server.
const KNOWN: &[&str] = &[
    "yahoo.com.",
    "www.yahoo.com.",
    "google.com.",
    "www.google.com.",
];

/// Answers one query: A records for the known names, an empty answer for their other types,
/// NXDOMAIN for everything else.
pub fn answer(query: &[u8], web: Ipv4Addr) -> Option<Vec<u8>> {
    let q = Message::from_vec(query).ok()?;
    let mut r = Message::new(q.metadata.id, MessageType::Response, OpCode::Query);
    r.metadata.recursion_desired = q.metadata.recursion_desired;
    r.metadata.recursion_available = true;
    r.metadata.authoritative = true;
    let mut known_all = true;
    for question in &q.queries {
        r.add_query(question.clone());
        let name = question.name.to_ascii().to_ascii_lowercase();
        if !KNOWN.contains(&name.as_str()) {
            known_all = false;
            continue;
        }
        if question.query_type == RecordType::A {
            let w = web.octets();
            r.add_answer(Record::from_rdata(
                question.name.clone(),
                60,
                RData::A(A::new(w[0], w[1], w[2], w[3])),
            ));
        }
    }
    if !known_all {
        r.metadata.response_code = ResponseCode::NXDomain;
    }
    r.to_vec().ok()
}

/// Starts the UDP and TCP servers on `addr` (port 53) in background threads.
pub fn start(addr: SocketAddr, web: Ipv4Addr) -> Result<()> {
    let udp = UdpSocket::bind(addr).with_context(|| format!("binding UDP {addr}"))?;
    let tcp = TcpListener::bind(addr).with_context(|| format!("binding TCP {addr}"))?;
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok((n, peer)) = udp.recv_from(&mut buf) {
            if let Some(resp) = answer(&buf[..n], web) {
                let _ = udp.send_to(&resp, peer);
            }
        }
    });
    std::thread::spawn(move || {
        for mut conn in tcp.incoming().map_while(Result::ok) {
            std::thread::spawn(move || {
                let mut len = [0u8; 2];
                while conn.read_exact(&mut len).is_ok() {
                    let mut q = vec![0u8; usize::from(u16::from_be_bytes(len))];
                    if conn.read_exact(&mut q).is_err() {
                        return;
                    }
                    let Some(resp) = answer(&q, web) else { return };
                    let Ok(n) = u16::try_from(resp.len()) else {
                        return;
                    };
                    if conn.write_all(&n.to_be_bytes()).is_err() || conn.write_all(&resp).is_err() {
                        return;
                    }
                }
            });
        }
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::op::Query;
    use hickory_proto::rr::Name;
    use std::str::FromStr;

    fn query(name: &str, t: RecordType) -> Vec<u8> {
        let mut m = Message::new(7, MessageType::Query, OpCode::Query);
        m.add_query(Query::query(Name::from_str(name).unwrap(), t));
        m.to_vec().unwrap()
    }

    #[test]
    fn known_names_resolve_to_the_web_server_and_others_do_not_exist() {
        let web = Ipv4Addr::new(127, 0, 0, 80);
        let r =
            Message::from_vec(&answer(&query("Google.com.", RecordType::A), web).unwrap()).unwrap();
        assert_eq!(r.metadata.id, 7);
        assert_eq!(r.answers.len(), 1);
        assert_eq!(r.answers[0].data, RData::A(A::new(127, 0, 0, 80)));
        let r = Message::from_vec(&answer(&query("google.com.", RecordType::AAAA), web).unwrap())
            .unwrap();
        assert_eq!(r.metadata.response_code, ResponseCode::NoError);
        assert!(r.answers.is_empty());
        let r = Message::from_vec(&answer(&query("example.org.", RecordType::A), web).unwrap())
            .unwrap();
        assert_eq!(r.metadata.response_code, ResponseCode::NXDomain);
        assert_eq!(answer(b"\x00", web), None);
    }
}
