//! DNS wire format through hickory-proto: the names a query asks for, the refusal the stub sends
//! for a denied query, the addresses an answer carries, and TCP's 2-byte length framing.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;

use hickory_proto::op::{Message, MessageType, ResponseCode};
use hickory_proto::rr::RData;

use super::decide::normalize_name;

/// Largest DNS message over TCP (the length prefix is 16 bits).
pub const MAX_MESSAGE: usize = 65_535;

/// A decoded query: its id and the names it asks for (normalised: lower case, no trailing dot).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DnsQuery {
    pub id: u16,
    pub names: Vec<String>,
}

/// Why a payload is not a DNS query.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DnsError {
    #[error("not a DNS message: {0}")]
    Malformed(String),
    #[error("a DNS response, not a query")]
    NotAQuery,
}

/// Decodes a query (a UDP payload, or one TCP message without its length prefix).
pub fn parse_query(bytes: &[u8]) -> Result<DnsQuery, DnsError> {
    let msg = Message::from_vec(bytes).map_err(|e| DnsError::Malformed(e.to_string()))?;
    if msg.metadata.message_type != MessageType::Query {
        return Err(DnsError::NotAQuery);
    }
    let names = msg
        .queries
        .iter()
        .map(|q| normalize_name(&q.name.to_ascii()))
        .collect();
    Ok(DnsQuery {
        id: msg.metadata.id,
        names,
    })
}

/// The answer to a denied query: the same id and questions, `NXDOMAIN`, so the lookup fails at
/// once instead of timing out. `None` when the query itself cannot be decoded.
pub fn refusal(query: &[u8]) -> Option<Vec<u8>> {
    let q = Message::from_vec(query).ok()?;
    let mut r = Message::error_msg(q.metadata.id, q.metadata.op_code, ResponseCode::NXDomain);
    r.metadata.recursion_desired = q.metadata.recursion_desired;
    r.metadata.recursion_available = true;
    r.add_queries(q.queries);
    r.to_vec().ok()
}

/// The address records of an answer, each with the name the app asked for (the first question,
/// so CNAME chains map back to the name the app used).
pub fn answers(response: &[u8]) -> Vec<(IpAddr, String)> {
    let Ok(msg) = Message::from_vec(response) else {
        return Vec::new();
    };
    let Some(asked) = msg
        .queries
        .first()
        .map(|q| normalize_name(&q.name.to_ascii()))
    else {
        return Vec::new();
    };
    msg.answers
        .iter()
        .filter_map(|r| match &r.data {
            RData::A(a) => Some(IpAddr::V4(a.0)),
            RData::AAAA(a) => Some(IpAddr::V6(a.0)),
            _ => None,
        })
        .map(|ip| (ip, asked.clone()))
        .collect()
}

/// Splits a TCP DNS byte stream into messages (2-byte big-endian length prefix each).
#[derive(Default)]
pub struct TcpFramer {
    buf: Vec<u8>,
}

impl TcpFramer {
    /// Appends received bytes.
    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// The next complete message, if one has fully arrived.
    pub fn next_message(&mut self) -> Option<Vec<u8>> {
        if self.buf.len() < 2 {
            return None;
        }
        let len = usize::from(u16::from_be_bytes([self.buf[0], self.buf[1]]));
        if self.buf.len() < 2 + len {
            return None;
        }
        let msg = self.buf[2..2 + len].to_vec();
        self.buf.drain(..2 + len);
        Some(msg)
    }
}

/// Prefixes a message with its 2-byte length for TCP. `None` when it is too long.
pub fn tcp_frame(msg: &[u8]) -> Option<Vec<u8>> {
    let len = u16::try_from(msg.len()).ok()?;
    let mut out = Vec::with_capacity(msg.len() + 2);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(msg);
    Some(out)
}

/// Which name each address was resolved from, as the stub saw answers go by (bounded).
pub struct ResolvedNames {
    map: Mutex<HashMap<IpAddr, String>>,
    cap: usize,
}

impl ResolvedNames {
    pub fn new(cap: usize) -> ResolvedNames {
        ResolvedNames {
            map: Mutex::new(HashMap::new()),
            cap,
        }
    }

    /// Records the addresses of an answer.
    pub fn record(&self, response: &[u8]) {
        let found = answers(response);
        if found.is_empty() {
            return;
        }
        let Ok(mut map) = self.map.lock() else { return };
        if map.len() + found.len() > self.cap {
            map.clear();
        }
        for (ip, name) in found {
            map.insert(super::sockaddr::policy_ip(ip), name);
        }
    }

    /// The name `ip` was last resolved from.
    pub fn name_of(&self, ip: IpAddr) -> Option<String> {
        let map = self.map.lock().ok()?;
        map.get(&super::sockaddr::policy_ip(ip)).cloned()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use hickory_proto::op::{OpCode, Query};
    use hickory_proto::rr::rdata::{A, AAAA, CNAME};
    use hickory_proto::rr::{Name, Record, RecordType};
    use std::str::FromStr;

    pub(crate) fn query(id: u16, names: &[&str]) -> Vec<u8> {
        let mut m = Message::new(id, MessageType::Query, OpCode::Query);
        for n in names {
            m.add_query(Query::query(Name::from_str(n).unwrap(), RecordType::A));
        }
        m.to_vec().unwrap()
    }

    #[test]
    fn query_names_are_normalised() {
        let q = parse_query(&query(7, &["WWW.Yahoo.COM.", "google.com"])).unwrap();
        assert_eq!(
            q,
            DnsQuery {
                id: 7,
                names: vec!["www.yahoo.com".into(), "google.com".into()]
            }
        );
    }

    #[test]
    fn garbage_and_responses_are_not_queries() {
        assert!(matches!(
            parse_query(&[1, 2, 3]),
            Err(DnsError::Malformed(_))
        ));
        let r = refusal(&query(9, &["yahoo.com"])).unwrap();
        assert_eq!(parse_query(&r), Err(DnsError::NotAQuery));
    }

    #[test]
    fn refusal_is_nxdomain_for_the_same_question() {
        let r = Message::from_vec(&refusal(&query(0x1234, &["yahoo.com."])).unwrap()).unwrap();
        assert_eq!(r.metadata.id, 0x1234);
        assert_eq!(r.metadata.message_type, MessageType::Response);
        assert_eq!(r.metadata.response_code, ResponseCode::NXDomain);
        assert_eq!(r.queries.len(), 1);
        assert_eq!(r.queries[0].name.to_ascii(), "yahoo.com.");
        assert!(r.answers.is_empty());
        assert_eq!(refusal(b"xx"), None);
    }

    #[test]
    fn answers_map_addresses_to_the_asked_name_through_cnames() {
        let mut m = Message::new(1, MessageType::Response, OpCode::Query);
        let asked = Name::from_str("Www.Example.com.").unwrap();
        let target = Name::from_str("edge.example.net.").unwrap();
        m.add_query(Query::query(asked.clone(), RecordType::A));
        m.add_answer(Record::from_rdata(
            asked,
            60,
            RData::CNAME(CNAME(target.clone())),
        ));
        m.add_answer(Record::from_rdata(
            target.clone(),
            60,
            RData::A(A::new(192, 0, 2, 7)),
        ));
        m.add_answer(Record::from_rdata(
            target,
            60,
            RData::AAAA(AAAA::from_str("2001:db8::7").unwrap()),
        ));
        let bytes = m.to_vec().unwrap();
        let got = answers(&bytes);
        assert_eq!(
            got,
            vec![
                ("192.0.2.7".parse().unwrap(), "www.example.com".to_string()),
                (
                    "2001:db8::7".parse().unwrap(),
                    "www.example.com".to_string()
                )
            ]
        );
        let names = ResolvedNames::new(10);
        names.record(&bytes);
        assert_eq!(
            names
                .name_of("::ffff:192.0.2.7".parse().unwrap())
                .as_deref(),
            Some("www.example.com")
        );
        assert_eq!(names.name_of("192.0.2.8".parse().unwrap()), None);
    }

    #[test]
    fn tcp_framing_splits_and_joins() {
        let a = query(1, &["a.example"]);
        let b = query(2, &["b.example"]);
        let mut stream = tcp_frame(&a).unwrap();
        stream.extend(tcp_frame(&b).unwrap());
        let mut f = TcpFramer::default();
        f.push(&stream[..1]);
        assert_eq!(f.next_message(), None);
        f.push(&stream[1..a.len() + 3]);
        assert_eq!(f.next_message().as_ref(), Some(&a));
        assert_eq!(f.next_message(), None);
        f.push(&stream[a.len() + 3..]);
        assert_eq!(f.next_message(), Some(b));
        assert_eq!(tcp_frame(&vec![0; 70_000]), None);
    }
}
