//! The pure checks the defender runs for each event.
//!
//! Each check returns `None` when the event is allowed without an audit (or the section is
//! `disable`), and a [`Violation`] otherwise. A denied-list match wins over the allowed list; a
//! non-empty allowed list makes everything it does not match a violation.

use std::fmt;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use super::{Effect, NetTarget, Rule};
use crate::pattern::Pattern;

/// Why an event violates a section.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// It matched the section's denied list.
    ExplicitlyDenied,
    /// The section has a non-empty allowed list and it matched nothing there.
    NotAllowed,
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Reason::ExplicitlyDenied => "explicitly denied",
            Reason::NotAllowed => "not in the allowed list",
        })
    }
}

/// A check's verdict when the event is not simply allowed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    /// `Alert`, `Prevent` or `Block`; never `Disable`.
    pub effect: Effect,
    /// Name of the rule that produced it.
    pub rule: String,
    /// Denied list or missed allowed list.
    pub reason: Reason,
}

impl Violation {
    /// Whether the operation must be refused (`prevent` or `block`).
    pub fn denies(&self) -> bool {
        matches!(self.effect, Effect::Prevent | Effect::Block)
    }
}

/// The common decision: denied list first, then a non-empty allowed list.
fn decide<T>(
    rule: &Rule,
    effect: Effect,
    allowed: &[T],
    denied: &[T],
    hit: impl Fn(&T) -> bool,
) -> Option<Violation> {
    if effect == Effect::Disable {
        return None;
    }
    let reason = if denied.iter().any(&hit) {
        Reason::ExplicitlyDenied
    } else if !allowed.is_empty() && !allowed.iter().any(&hit) {
        Reason::NotAllowed
    } else {
        return None;
    };
    Some(Violation {
        effect,
        rule: rule.name.clone(),
        reason,
    })
}

/// A process pattern with a `/` matches the whole path, otherwise the basename (`base`).
fn process_pattern_matches(pattern: &Pattern, exe_path: &str, base: &str) -> bool {
    if pattern.as_str().contains('/') {
        pattern.matches(exe_path)
    } else {
        pattern.matches(base)
    }
}

/// A domain pattern matches `name` (its trailing dot already dropped); a pattern written with a
/// trailing dot is compared with the dot put back.
fn domain_pattern_matches(pattern: &Pattern, name: &str) -> bool {
    if pattern.as_str().ends_with('.') {
        pattern.matches(&format!("{name}."))
    } else {
        pattern.matches(name)
    }
}

impl Rule {
    /// May `exe_path` (the absolute path of the executable) run?
    pub fn check_process(&self, exe_path: &str) -> Option<Violation> {
        let s = &self.processes;
        let base = exe_path.rsplit('/').next().unwrap_or(exe_path);
        decide(self, s.effect, &s.allowed, &s.denied, |p| {
            process_pattern_matches(p, exe_path, base)
        })
    }

    /// May `name` be resolved? Case-insensitive; a trailing dot is ignored.
    pub fn check_domain(&self, name: &str) -> Option<Violation> {
        let s = &self.dns;
        let name = name.strip_suffix('.').unwrap_or(name);
        decide(self, s.effect, &s.allowed, &s.denied, |p| {
            domain_pattern_matches(p, name)
        })
    }

    /// May the app connect to `ip:port`? IPv4-mapped IPv6 addresses count as IPv4.
    pub fn check_outbound(&self, ip: IpAddr, port: u16) -> Option<Violation> {
        let s = &self.network;
        let ip = ip.to_canonical();
        decide(
            self,
            s.effect,
            &s.allowed_outbound,
            &s.denied_outbound,
            |t: &NetTarget| t.matches(ip, port),
        )
    }

    /// May the app listen on `port`?
    pub fn check_listen(&self, port: u16) -> Option<Violation> {
        let s = &self.network;
        decide(
            self,
            s.effect,
            &s.allowed_listening_ports,
            &s.denied_listening_ports,
            |p: &u16| *p == port,
        )
    }
}
