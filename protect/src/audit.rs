//! The audit record (one per event) and the messages it carries, in the contract's wording.
//!
//! Optional fields are left out of the JSON when `None`; unknown fields are ignored when reading,
//! so a newer defender can ship records to an older console.

use std::fmt;
use std::net::{IpAddr, SocketAddr};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::cnaf_policy::CnafEffect;
use crate::policy::{Effect, Reason, Scope};

/// What kind of event an audit describes.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[serde(rename_all = "lowercase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum AuditKind {
    /// A process was started.
    Process,
    /// A name was resolved.
    Dns,
    /// An outbound connection.
    Network,
    /// A listening socket.
    Listen,
    /// A web request inspected by CNAF.
    Cnaf,
}

impl AuditKind {
    /// The JSON spelling (`"process"`), also used in the console's `kind` filter.
    pub fn as_str(self) -> &'static str {
        match self {
            AuditKind::Process => "process",
            AuditKind::Dns => "dns",
            AuditKind::Network => "network",
            AuditKind::Listen => "listen",
            AuditKind::Cnaf => "cnaf",
        }
    }
}

impl fmt::Display for AuditKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for AuditKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "process" => Ok(AuditKind::Process),
            "dns" => Ok(AuditKind::Dns),
            "network" => Ok(AuditKind::Network),
            "listen" => Ok(AuditKind::Listen),
            "cnaf" => Ok(AuditKind::Cnaf),
            other => Err(format!(
                "unknown audit kind {other:?}; expected one of process, dns, network, listen, cnaf"
            )),
        }
    }
}

impl From<CnafEffect> for Effect {
    fn from(e: CnafEffect) -> Effect {
        match e {
            CnafEffect::Disable => Effect::Disable,
            CnafEffect::Alert => Effect::Alert,
            CnafEffect::Prevent => Effect::Prevent,
        }
    }
}

/// One audit record. `time` is RFC 3339 in UTC.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct AuditRecord {
    /// When the event happened.
    pub time: DateTime<Utc>,
    /// What kind of event.
    pub kind: AuditKind,
    /// The effect applied (`alert`, `prevent`, `block`).
    pub effect: Effect,
    /// Name of the rule that produced the audit.
    pub rule: String,
    /// Human-readable description (see the `*_message` builders).
    pub message: String,
    /// Task definition family.
    #[serde(default)]
    pub task_family: String,
    /// Task ARN, when known.
    #[serde(default)]
    pub task_arn: String,
    /// Container name.
    #[serde(default)]
    pub container: String,
    /// Image reference.
    #[serde(default)]
    pub image: String,
    /// Process id of the offending process.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
    /// Absolute path of the executable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub process: Option<String>,
    /// Absolute path of the parent's executable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<String>,
    /// Full command line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    /// Resolved name (dns) or the name behind an address (network), when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
    /// Destination address (network).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip: Option<String>,
    /// Destination port (network) or listening port (listen).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// Attack type (cnaf), e.g. `sqli`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attack: Option<String>,
    /// Where in the request the attack was found (cnaf), e.g. `query parameter id`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    /// HTTP method (cnaf).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    /// Request path (cnaf).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Client address (cnaf).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_ip: Option<String>,
    /// Request id shown on the block page (cnaf).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// The matched fragment of the request (cnaf), bounded by the producer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snippet: Option<String>,
}

impl AuditRecord {
    /// A record stamped now, with every workload and kind-specific field empty.
    pub fn new(
        kind: AuditKind,
        effect: Effect,
        rule: impl Into<String>,
        message: impl Into<String>,
    ) -> AuditRecord {
        AuditRecord {
            time: Utc::now(),
            kind,
            effect,
            rule: rule.into(),
            message: message.into(),
            task_family: String::new(),
            task_arn: String::new(),
            container: String::new(),
            image: String::new(),
            pid: None,
            process: None,
            parent: None,
            command: None,
            domain: None,
            ip: None,
            port: None,
            attack: None,
            location: None,
            method: None,
            path: None,
            source_ip: None,
            request_id: None,
            snippet: None,
        }
    }

    /// Fills `task_family`, `container` and `image` from the workload.
    pub fn with_scope(mut self, scope: &Scope) -> AuditRecord {
        self.task_family.clone_from(&scope.task);
        self.container.clone_from(&scope.container);
        self.image.clone_from(&scope.image);
        self
    }
}

/// `/bin/mkdir launched from /bin/dash and is explicitly blocked in the runtime rule. Full
/// command: mkdir test` (or `... and is not in the allowed list of the runtime rule. ...`).
pub fn process_message(exe: &str, parent: &str, command: &str, reason: Reason) -> String {
    let why = match reason {
        Reason::ExplicitlyDenied => "is explicitly blocked in the runtime rule",
        Reason::NotAllowed => "is not in the allowed list of the runtime rule",
    };
    format!("{exe} launched from {parent} and {why}. Full command: {command}")
}

/// `DNS resolution of suspicious name yahoo.com` (a trailing dot is dropped).
pub fn dns_message(domain: &str) -> String {
    let domain = domain.strip_suffix('.').unwrap_or(domain);
    format!("DNS resolution of suspicious name {domain}")
}

/// `Outbound connection to 203.0.113.7:443 is explicitly blocked in the runtime rule`; IPv6 is
/// bracketed (`[2001:db8::1]:443`), IPv4-mapped IPv6 printed as IPv4, and a known name is added
/// in parentheses (`203.0.113.7:443 (evil.example)`).
pub fn outbound_message(ip: IpAddr, port: u16, domain: Option<&str>, reason: Reason) -> String {
    let target = SocketAddr::new(ip.to_canonical(), port);
    let name = domain
        .map(|d| format!(" ({})", d.strip_suffix('.').unwrap_or(d)))
        .unwrap_or_default();
    let why = match reason {
        Reason::ExplicitlyDenied => "is explicitly blocked in the runtime rule",
        Reason::NotAllowed => "is not in the allowed list of the runtime rule",
    };
    format!("Outbound connection to {target}{name} {why}")
}

/// `Listening on port 4444 is explicitly blocked in the runtime rule` (or `... is not in the
/// allowed list of the runtime rule`).
pub fn listen_message(port: u16, reason: Reason) -> String {
    let why = match reason {
        Reason::ExplicitlyDenied => "is explicitly blocked in the runtime rule",
        Reason::NotAllowed => "is not in the allowed list of the runtime rule",
    };
    format!("Listening on port {port} {why}")
}

/// `SQL injection detected in query parameter id from 198.51.100.4; request blocked` (`prevent`)
/// or `...; request allowed (alert only)` (`alert`). `attack` is the display name
/// (`SQL injection`), `location` where it was found.
pub fn cnaf_message(attack: &str, location: &str, source_ip: &str, effect: CnafEffect) -> String {
    let outcome = match effect {
        CnafEffect::Prevent => "request blocked",
        CnafEffect::Alert | CnafEffect::Disable => "request allowed (alert only)",
    };
    format!("{attack} detected in {location} from {source_ip}; {outcome}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_use_the_contract_wording() {
        assert_eq!(
            process_message("/bin/mkdir", "/bin/dash", "mkdir test", Reason::ExplicitlyDenied),
            "/bin/mkdir launched from /bin/dash and is explicitly blocked in the runtime rule. Full command: mkdir test"
        );
        assert_eq!(
            process_message("/usr/bin/curl", "/bin/sh", "curl x", Reason::NotAllowed),
            "/usr/bin/curl launched from /bin/sh and is not in the allowed list of the runtime rule. Full command: curl x"
        );
        assert_eq!(
            dns_message("yahoo.com"),
            "DNS resolution of suspicious name yahoo.com"
        );
        assert_eq!(
            dns_message("yahoo.com."),
            "DNS resolution of suspicious name yahoo.com"
        );
        let ip: IpAddr = "203.0.113.7".parse().expect("ip");
        assert_eq!(
            outbound_message(ip, 443, None, Reason::ExplicitlyDenied),
            "Outbound connection to 203.0.113.7:443 is explicitly blocked in the runtime rule"
        );
        let mapped: IpAddr = "::ffff:203.0.113.7".parse().expect("ip");
        assert_eq!(
            outbound_message(mapped, 443, Some("evil.example."), Reason::NotAllowed),
            "Outbound connection to 203.0.113.7:443 (evil.example) is not in the allowed list of the runtime rule"
        );
        let v6: IpAddr = "2001:db8::1".parse().expect("ip");
        assert_eq!(
            outbound_message(v6, 25, None, Reason::ExplicitlyDenied),
            "Outbound connection to [2001:db8::1]:25 is explicitly blocked in the runtime rule"
        );
        assert_eq!(
            listen_message(4444, Reason::ExplicitlyDenied),
            "Listening on port 4444 is explicitly blocked in the runtime rule"
        );
        assert_eq!(
            listen_message(9000, Reason::NotAllowed),
            "Listening on port 9000 is not in the allowed list of the runtime rule"
        );
        assert_eq!(
            cnaf_message(
                "SQL injection",
                "query parameter id",
                "198.51.100.4",
                CnafEffect::Prevent
            ),
            "SQL injection detected in query parameter id from 198.51.100.4; request blocked"
        );
        assert_eq!(
            cnaf_message("Cross-site scripting", "header User-Agent", "198.51.100.4", CnafEffect::Alert),
            "Cross-site scripting detected in header User-Agent from 198.51.100.4; request allowed (alert only)"
        );
    }

    #[test]
    fn record_json_skips_absent_fields_and_round_trips() {
        let scope = Scope {
            task: "twistlock-fargate-task".to_owned(),
            container: "twistlock-fargate-task".to_owned(),
            image: "matthewabq/twistlock-fargate-auto".to_owned(),
        };
        let mut r = AuditRecord::new(
            AuditKind::Process,
            Effect::Prevent,
            "sample",
            process_message(
                "/bin/mkdir",
                "/bin/dash",
                "mkdir test",
                Reason::ExplicitlyDenied,
            ),
        )
        .with_scope(&scope);
        r.time = DateTime::parse_from_rfc3339("2026-11-28T19:00:00Z")
            .expect("time")
            .with_timezone(&Utc);
        r.pid = Some(42);
        r.process = Some("/bin/mkdir".to_owned());
        r.parent = Some("/bin/dash".to_owned());
        r.command = Some("mkdir test".to_owned());
        let json = serde_json::to_value(&r).expect("serialize");
        assert_eq!(
            json,
            serde_json::json!({
                "time": "2026-11-28T19:00:00Z",
                "kind": "process",
                "effect": "prevent",
                "rule": "sample",
                "message": "/bin/mkdir launched from /bin/dash and is explicitly blocked in the runtime rule. Full command: mkdir test",
                "task_family": "twistlock-fargate-task",
                "task_arn": "",
                "container": "twistlock-fargate-task",
                "image": "matthewabq/twistlock-fargate-auto",
                "pid": 42,
                "process": "/bin/mkdir",
                "parent": "/bin/dash",
                "command": "mkdir test"
            })
        );
        let back: AuditRecord = serde_json::from_value(json).expect("deserialize");
        assert_eq!(back, r);
    }

    #[test]
    fn reading_tolerates_unknown_and_missing_optional_fields() {
        let r: AuditRecord = serde_json::from_str(
            r#"{"time":"2026-11-28T19:00:00.5+01:00","kind":"dns","effect":"alert","rule":"r",
                "message":"DNS resolution of suspicious name yahoo.com","domain":"yahoo.com","future":1}"#,
        )
        .expect("parse");
        assert_eq!(r.kind, AuditKind::Dns);
        assert_eq!(r.domain.as_deref(), Some("yahoo.com"));
        assert_eq!(r.task_family, "");
        assert_eq!(r.time.to_rfc3339(), "2026-11-28T18:00:00.500+00:00");
        let bad = serde_json::from_str::<AuditRecord>(
            r#"{"time":"yesterday","kind":"dns","effect":"alert","rule":"r","message":"m"}"#,
        );
        assert!(bad.is_err());
    }

    #[test]
    fn kinds_parse_and_print() {
        for k in [
            AuditKind::Process,
            AuditKind::Dns,
            AuditKind::Network,
            AuditKind::Listen,
            AuditKind::Cnaf,
        ] {
            assert_eq!(k.to_string().parse::<AuditKind>(), Ok(k));
            assert_eq!(
                serde_json::to_string(&k).expect("serialize"),
                format!("\"{k}\"")
            );
        }
        assert_eq!(
            "proc".parse::<AuditKind>(),
            Err(
                "unknown audit kind \"proc\"; expected one of process, dns, network, listen, cnaf"
                    .to_owned()
            )
        );
        assert_eq!(Effect::from(CnafEffect::Prevent), Effect::Prevent);
        assert_eq!(Effect::from(CnafEffect::Alert), Effect::Alert);
        assert_eq!(Effect::from(CnafEffect::Disable), Effect::Disable);
    }
}
