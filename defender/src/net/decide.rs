//! The pure decisions: a destination, a listening port or a DNS name against the rule in force,
//! turned into a [`Verdict`] that carries the audit event when there is one.

use std::net::{IpAddr, SocketAddr};

use protect::audit::{dns_message, listen_message, outbound_message, AuditKind, AuditRecord};
use protect::policy::{Effect, Rule, Violation};

use super::sockaddr::policy_ip;
use crate::audit::Caller;

/// One network policy event, ready to become an audit record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NetEvent {
    /// `Dns`, `Network` or `Listen`.
    pub kind: AuditKind,
    /// `Alert`, `Prevent` or `Block`. With `Block` the syscall was already failed; the supervisor
    /// stops the app tree.
    pub effect: Effect,
    pub rule: String,
    pub message: String,
    /// The thread that made the call; its process id once the guard reported it (see
    /// [`Caller::pid`]).
    pub pid: i32,
    pub domain: Option<String>,
    pub ip: Option<String>,
    pub port: Option<u16>,
    /// The process that made the call: left `None` by the pure decisions, read from `/proc` by
    /// the guard when it reports the event (only reported calls pay for it).
    pub caller: Option<Caller>,
}

/// What to do with one operation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Go ahead, nothing to report.
    Allow,
    /// Go ahead and report (`alert`).
    Alert(NetEvent),
    /// Fail with `EPERM` and report (`prevent`, `block`).
    Deny(NetEvent),
}

impl NetEvent {
    /// The contract audit record (workload fields are stamped by the supervisor's auditor).
    pub fn to_record(&self) -> AuditRecord {
        let mut r = AuditRecord::new(
            self.kind,
            self.effect,
            self.rule.clone(),
            self.message.clone(),
        );
        r.pid = u32::try_from(self.pid).ok();
        r.domain.clone_from(&self.domain);
        r.ip.clone_from(&self.ip);
        r.port = self.port;
        if let Some(c) = &self.caller {
            r.process = Some(c.process.clone());
            r.parent = Some(c.parent.clone());
            r.command = Some(c.command.clone());
        }
        r
    }
}

impl Verdict {
    fn from(violation: Option<Violation>, event: impl FnOnce(Violation) -> NetEvent) -> Verdict {
        match violation {
            None => Verdict::Allow,
            Some(v) if v.denies() => Verdict::Deny(event(v)),
            Some(v) => Verdict::Alert(event(v)),
        }
    }

    /// Whether the operation may go ahead.
    pub fn allows(&self) -> bool {
        !matches!(self, Verdict::Deny(_))
    }

    /// The event to report, if any.
    pub fn event(&self) -> Option<&NetEvent> {
        match self {
            Verdict::Allow => None,
            Verdict::Alert(e) | Verdict::Deny(e) => Some(e),
        }
    }
}

/// Canonical form of a queried name: lower case, no trailing dot.
pub fn normalize_name(name: &str) -> String {
    name.strip_suffix('.').unwrap_or(name).to_ascii_lowercase()
}

/// May the app send to `dest`? `domain` is the name the defender saw resolve to its address.
pub fn outbound(rule: Option<&Rule>, dest: SocketAddr, domain: Option<&str>, pid: i32) -> Verdict {
    let Some(rule) = rule else {
        return Verdict::Allow;
    };
    let ip = policy_ip(dest.ip());
    Verdict::from(rule.check_outbound(ip, dest.port()), |v| NetEvent {
        kind: AuditKind::Network,
        effect: v.effect,
        message: outbound_message(ip, dest.port(), domain, v.reason),
        rule: v.rule,
        pid,
        domain: domain.map(str::to_owned),
        ip: Some(ip.to_string()),
        port: Some(dest.port()),
        caller: None,
    })
}

/// May the app listen on (or bind) `port`?
pub fn listen(rule: Option<&Rule>, port: u16, pid: i32) -> Verdict {
    let Some(rule) = rule else {
        return Verdict::Allow;
    };
    Verdict::from(rule.check_listen(port), |v| NetEvent {
        kind: AuditKind::Listen,
        effect: v.effect,
        message: listen_message(port, v.reason),
        rule: v.rule,
        pid,
        domain: None,
        ip: None,
        port: Some(port),
        caller: None,
    })
}

/// May the app resolve `name`? `server` is the nameserver the query was meant for.
pub fn domain(rule: Option<&Rule>, name: &str, server: Option<IpAddr>, pid: i32) -> Verdict {
    let Some(rule) = rule else {
        return Verdict::Allow;
    };
    let name = normalize_name(name);
    Verdict::from(rule.check_domain(&name), |v| NetEvent {
        kind: AuditKind::Dns,
        effect: v.effect,
        message: dns_message(&name),
        rule: v.rule,
        pid,
        ip: server.map(|s| policy_ip(s).to_string()),
        domain: Some(name),
        port: None,
        caller: None,
    })
}

/// Combines the verdicts of several names in one query: the first denial wins, else the first
/// alert; every event is returned for the audit log.
pub fn combine(verdicts: Vec<Verdict>) -> (bool, Vec<NetEvent>) {
    let allowed = verdicts.iter().all(Verdict::allows);
    let events = verdicts.into_iter().filter_map(|v| match v {
        Verdict::Allow => None,
        Verdict::Alert(e) | Verdict::Deny(e) => Some(e),
    });
    (allowed, events.collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use protect::policy::RuntimePolicy;

    fn rule(dns: &str, network: &str) -> Rule {
        let json = format!(
            r#"{{"revision":1,"rules":[{{"name":"r1","dns":{dns},"network":{network}}}]}}"#
        );
        RuntimePolicy::from_json(&json).unwrap().rules.remove(0)
    }

    fn prevent() -> Rule {
        rule(
            r#"{"effect":"prevent","denied":["yahoo.com","*.evil.example"]}"#,
            r#"{"effect":"prevent","denied_outbound":["203.0.113.0/24","*:25"],"allowed_listening_ports":[80,8080]}"#,
        )
    }

    #[test]
    fn outbound_denied_with_contract_message() {
        let r = prevent();
        let v = outbound(Some(&r), "203.0.113.7:443".parse().unwrap(), None, 42);
        let Verdict::Deny(e) = v else { panic!("{v:?}") };
        assert_eq!(
            e.message,
            "Outbound connection to 203.0.113.7:443 is explicitly blocked in the runtime rule"
        );
        assert_eq!(
            (e.kind, e.effect, e.rule.as_str()),
            (AuditKind::Network, Effect::Prevent, "r1")
        );
        assert_eq!(
            (e.ip.as_deref(), e.port, e.pid),
            (Some("203.0.113.7"), Some(443), 42)
        );
    }

    #[test]
    fn outbound_names_the_resolved_domain_and_unmaps_v4() {
        let r = prevent();
        let v = outbound(
            Some(&r),
            "[::ffff:203.0.113.9]:80".parse().unwrap(),
            Some("yahoo.com"),
            1,
        );
        let Verdict::Deny(e) = v else { panic!("{v:?}") };
        assert_eq!(e.message, "Outbound connection to 203.0.113.9:80 (yahoo.com) is explicitly blocked in the runtime rule");
        assert_eq!(e.domain.as_deref(), Some("yahoo.com"));
        assert_eq!(
            outbound(Some(&r), "198.51.100.1:443".parse().unwrap(), None, 1),
            Verdict::Allow
        );
        assert!(!outbound(Some(&r), "[2001:db8::1]:25".parse().unwrap(), None, 1).allows());
    }

    #[test]
    fn alert_allows_and_reports() {
        let r = rule(
            r#"{"effect":"alert","denied":["yahoo.com"]}"#,
            r#"{"effect":"alert","denied_outbound":["*:25"]}"#,
        );
        let v = outbound(Some(&r), "127.0.0.1:25".parse().unwrap(), None, 1);
        assert!(v.allows());
        assert_eq!(v.event().map(|e| e.effect), Some(Effect::Alert));
        let d = domain(Some(&r), "YAHOO.com.", None, 1);
        assert!(d.allows());
        assert_eq!(
            d.event().map(|e| e.message.as_str()),
            Some("DNS resolution of suspicious name yahoo.com")
        );
    }

    #[test]
    fn domain_names_are_case_insensitive_without_trailing_dot() {
        let r = prevent();
        for n in ["yahoo.com", "Yahoo.COM.", "a.b.evil.example"] {
            assert!(!domain(Some(&r), n, None, 1).allows(), "{n}");
        }
        assert_eq!(domain(Some(&r), "google.com.", None, 1), Verdict::Allow);
        let Verdict::Deny(e) = domain(
            Some(&r),
            "YAHOO.COM.",
            Some("::ffff:10.0.0.2".parse().unwrap()),
            3,
        ) else {
            panic!()
        };
        assert_eq!(e.domain.as_deref(), Some("yahoo.com"));
        assert_eq!(e.ip.as_deref(), Some("10.0.0.2"));
        assert_eq!(e.kind, AuditKind::Dns);
        let rec = e.to_record();
        assert_eq!(
            (rec.kind, rec.pid, rec.domain.as_deref(), rec.port),
            (AuditKind::Dns, Some(3), Some("yahoo.com"), None)
        );
        assert_eq!(serde_json::to_value(&rec).unwrap()["kind"], "dns");
    }

    #[test]
    fn the_record_names_the_caller_when_the_guard_filled_it() {
        let r = prevent();
        let Verdict::Deny(mut e) = listen(Some(&r), 8081, 7) else {
            panic!()
        };
        assert_eq!(e.caller, None);
        let rec = e.to_record();
        assert_eq!((rec.process, rec.parent, rec.command), (None, None, None));
        e.caller = Some(Caller {
            pid: 7,
            process: "/usr/bin/python3.12".into(),
            parent: "/usr/bin/dash".into(),
            command: "python3 -m http.server 8081".into(),
        });
        let json = serde_json::to_value(e.to_record()).unwrap();
        assert_eq!(json["process"], "/usr/bin/python3.12");
        assert_eq!(json["parent"], "/usr/bin/dash");
        assert_eq!(json["command"], "python3 -m http.server 8081");
        assert_eq!(
            (json["pid"].as_u64(), json["port"].as_u64()),
            (Some(7), Some(8081))
        );
        assert_eq!(
            json["message"],
            "Listening on port 8081 is not in the allowed list of the runtime rule"
        );
        // A caller that could not be read still gives the fields, empty.
        e.caller = Some(Caller::default());
        let json = serde_json::to_value(e.to_record()).unwrap();
        assert_eq!(
            (&json["process"], &json["command"]),
            (&"".into(), &"".into())
        );
    }

    #[test]
    fn listen_ports_from_allow_list() {
        let r = prevent();
        assert_eq!(listen(Some(&r), 8080, 1), Verdict::Allow);
        let Verdict::Deny(e) = listen(Some(&r), 8081, 1) else {
            panic!()
        };
        assert_eq!(
            e.message,
            "Listening on port 8081 is not in the allowed list of the runtime rule"
        );
        assert_eq!((e.kind, e.port), (AuditKind::Listen, Some(8081)));
    }

    #[test]
    fn no_rule_allows_everything() {
        assert_eq!(
            outbound(None, "203.0.113.7:443".parse().unwrap(), None, 1),
            Verdict::Allow
        );
        assert_eq!(listen(None, 1, 1), Verdict::Allow);
        assert_eq!(domain(None, "yahoo.com", None, 1), Verdict::Allow);
    }

    #[test]
    fn combine_denies_if_any_name_is_denied() {
        let r = prevent();
        let (ok, events) = combine(vec![
            domain(Some(&r), "google.com", None, 1),
            domain(Some(&r), "yahoo.com", None, 1),
        ]);
        assert!(!ok);
        assert_eq!(events.len(), 1);
        let (ok, events) = combine(vec![domain(Some(&r), "google.com", None, 1)]);
        assert!(ok && events.is_empty());
    }
}
