//! Unit tests for the runtime policy: parsing and validation (`parse`), scope matching and the
//! checks (`eval`), property tests (`props`). Shared helpers live here.

mod eval;
mod parse;
mod props;

use std::net::IpAddr;

use super::*;
use crate::pattern::Pattern;

pub(super) fn scope(task: &str, container: &str, image: &str) -> Scope {
    Scope {
        task: task.to_owned(),
        container: container.to_owned(),
        image: image.to_owned(),
    }
}

pub(super) fn pats(list: &[&str]) -> Vec<Pattern> {
    list.iter()
        .map(|s| Pattern::new(s).expect("valid pattern"))
        .collect()
}

pub(super) fn targets(list: &[&str]) -> Vec<NetTarget> {
    list.iter()
        .map(|s| NetTarget::parse(s).expect("valid target"))
        .collect()
}

pub(super) fn ip(s: &str) -> IpAddr {
    s.parse().expect("valid ip")
}

/// Parses and returns the list of `path: message` lines, or panics if the policy is valid.
pub(super) fn errors(json: &str) -> Vec<String> {
    match RuntimePolicy::from_json(json) {
        Ok(p) => panic!("expected errors, parsed {p:?}"),
        Err(e) => e.field_errors().iter().map(ToString::to_string).collect(),
    }
}

pub(super) fn process_rule(effect: Effect, allowed: &[&str], denied: &[&str]) -> Rule {
    let mut r = Rule::new("r");
    r.processes = ProcessSection {
        effect,
        allowed: pats(allowed),
        denied: pats(denied),
    };
    r
}

pub(super) fn dns_rule(effect: Effect, allowed: &[&str], denied: &[&str]) -> Rule {
    let mut r = Rule::new("r");
    r.dns = DnsSection {
        effect,
        allowed: pats(allowed),
        denied: pats(denied),
    };
    r
}

pub(super) fn net_rule(effect: Effect, allowed: &[&str], denied: &[&str]) -> Rule {
    let mut r = Rule::new("r");
    r.network.effect = effect;
    r.network.allowed_outbound = targets(allowed);
    r.network.denied_outbound = targets(denied);
    r
}

pub(super) fn violation(effect: Effect, reason: Reason) -> Option<Violation> {
    Some(Violation {
        effect,
        rule: "r".to_owned(),
        reason,
    })
}

pub(super) const CONTRACT_EXAMPLE: &str = r#"{ "revision": 7,
  "rules": [
    { "name": "sample", "disabled": false,
      "scope": { "tasks": ["*"], "containers": ["twistlock-fargate-task"], "images": ["*"] },
      "startup": "availability",
      "processes": { "effect": "prevent", "allowed": [], "denied": ["mkdir", "/usr/bin/nc"] },
      "dns":       { "effect": "prevent", "allowed": [], "denied": ["yahoo.com", "*.evil.example"] },
      "network":   { "effect": "alert",
                     "allowed_outbound": [], "denied_outbound": ["203.0.113.0/24", "*:25"],
                     "allowed_listening_ports": [80, 8080], "denied_listening_ports": [] } } ] }"#;
