//! The CNAF (web application firewall) policy: per task family, which port the defender's proxy
//! listens on, which app port it forwards to, and what each protection does.
//!
//! Parsing and validation work like the runtime policy's: [`CnafPolicy::from_json`] reports every
//! bad field with its JSON path.

use std::collections::HashMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::pattern::Pattern;
use crate::policy::check::{index, join};
use crate::policy::{checked_value, parse_checked, validate_typed, PolicyError, Walker};

/// Default `body_limit`: 128 KiB of request body are inspected.
pub const DEFAULT_BODY_LIMIT: usize = 131_072;
/// Largest accepted `body_limit` (16 MiB), so a policy cannot make the proxy buffer without bound.
pub const MAX_BODY_LIMIT: usize = 16 * 1024 * 1024;

/// What a CNAF protection does on a detection. Ordered by severity.
#[derive(
    Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default,
)]
#[serde(rename_all = "lowercase")]
pub enum CnafEffect {
    /// The protection is off.
    Disable,
    /// Forward the request and write an audit.
    #[default]
    Alert,
    /// Answer 403 with the block page and write an audit.
    Prevent,
}

impl CnafEffect {
    /// The JSON spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            CnafEffect::Disable => "disable",
            CnafEffect::Alert => "alert",
            CnafEffect::Prevent => "prevent",
        }
    }
}

impl fmt::Display for CnafEffect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How hard the protections look, 1 to 4 (default 2), in the spirit of the OWASP CRS paranoia
/// levels: level 1 flags what is an attack in any context; each higher level adds rules that
/// also flag fragments a legitimate request sends more often (a lone SQL operator, a bare
/// command name), catching more attacks at the price of more false positives.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[serde(try_from = "u8", into = "u8")]
pub struct Paranoia(u8);

impl Paranoia {
    /// The lowest level: what is an attack in any context, no fragments.
    pub const MIN: Paranoia = Paranoia(1);
    /// The default level: level 1 and the fragments that ordinary requests do not send (a real
    /// SQL function call, a known command with arguments); the level that meets the detection
    /// goal (`cargo xtask waf-bench`: attacks caught ≥95% with benign requests passed ≥99.5%).
    pub const DEFAULT: Paranoia = Paranoia(2);
    /// The highest level.
    pub const MAX: Paranoia = Paranoia(4);

    /// The level `n`, if it is 1 to 4.
    pub fn new(n: u8) -> Option<Paranoia> {
        (1..=4).contains(&n).then_some(Paranoia(n))
    }

    /// The level as a number, 1 to 4.
    pub fn level(self) -> u8 {
        self.0
    }

    /// Every level, lowest first.
    pub fn all() -> impl Iterator<Item = Paranoia> {
        (1..=4).map(Paranoia)
    }
}

impl Default for Paranoia {
    fn default() -> Self {
        Paranoia::DEFAULT
    }
}

impl TryFrom<u8> for Paranoia {
    type Error = String;
    fn try_from(n: u8) -> Result<Paranoia, String> {
        Paranoia::new(n).ok_or_else(|| format!("paranoia {n} is out of range; use 1 to 4"))
    }
}

impl From<Paranoia> for u8 {
    fn from(p: Paranoia) -> u8 {
        p.0
    }
}

impl fmt::Display for Paranoia {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// The effect of each protection (a missing protection is `alert`) and the paranoia level they
/// all run at.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
#[serde(deny_unknown_fields)]
pub struct Protections {
    /// Paranoia level, 1 (default) to 4.
    #[serde(default)]
    pub paranoia: Paranoia,
    /// SQL injection.
    #[serde(default)]
    pub sqli: CnafEffect,
    /// Cross-site scripting.
    #[serde(default)]
    pub xss: CnafEffect,
    /// OS command injection.
    #[serde(default)]
    pub cmdi: CnafEffect,
    /// Code injection (PHP, template, expression languages).
    #[serde(default)]
    pub code_injection: CnafEffect,
    /// Local file inclusion and path traversal.
    #[serde(default)]
    pub lfi: CnafEffect,
    /// LDAP search filter injection.
    #[serde(default)]
    pub ldap: CnafEffect,
    /// GraphQL introspection.
    #[serde(default)]
    pub graphql: CnafEffect,
    /// Known attack tools and scanners.
    #[serde(default)]
    pub attack_tools: CnafEffect,
    /// Shellshock (CVE-2014-6271).
    #[serde(default)]
    pub shellshock: CnafEffect,
    /// Malformed HTTP requests.
    #[serde(default)]
    pub malformed: CnafEffect,
}

/// The protections' JSON names, in document order.
pub const PROTECTIONS: [&str; 10] = [
    "sqli",
    "xss",
    "cmdi",
    "code_injection",
    "lfi",
    "ldap",
    "graphql",
    "attack_tools",
    "shellshock",
    "malformed",
];

impl Protections {
    /// Every protection set to `effect`.
    pub fn all(effect: CnafEffect) -> Protections {
        Protections {
            paranoia: Paranoia::DEFAULT,
            sqli: effect,
            xss: effect,
            cmdi: effect,
            code_injection: effect,
            lfi: effect,
            ldap: effect,
            graphql: effect,
            attack_tools: effect,
            shellshock: effect,
            malformed: effect,
        }
    }

    /// The same effects at paranoia level `paranoia`.
    pub fn at(self, paranoia: Paranoia) -> Protections {
        Protections { paranoia, ..self }
    }

    /// Every protection with its JSON name, in document order.
    pub fn iter(&self) -> [(&'static str, CnafEffect); 10] {
        [
            ("sqli", self.sqli),
            ("xss", self.xss),
            ("cmdi", self.cmdi),
            ("code_injection", self.code_injection),
            ("lfi", self.lfi),
            ("ldap", self.ldap),
            ("graphql", self.graphql),
            ("attack_tools", self.attack_tools),
            ("shellshock", self.shellshock),
            ("malformed", self.malformed),
        ]
    }

    /// The effect of the protection named `name` (JSON name), if there is one.
    pub fn get(&self, name: &str) -> Option<CnafEffect> {
        self.iter()
            .into_iter()
            .find(|(n, _)| *n == name)
            .map(|(_, e)| e)
    }
}

fn any() -> Vec<Pattern> {
    vec![Pattern::any()]
}

/// Which task families a CNAF rule covers; a missing or empty list is `*`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct CnafScope {
    /// Task family patterns (no revision).
    #[serde(default = "any")]
    pub tasks: Vec<Pattern>,
}

impl Default for CnafScope {
    fn default() -> Self {
        CnafScope { tasks: any() }
    }
}

fn default_body_limit() -> usize {
    DEFAULT_BODY_LIMIT
}

/// One CNAF rule.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct CnafRule {
    /// Unique name, carried by every audit the rule produces.
    pub name: String,
    /// A disabled rule is skipped.
    #[serde(default)]
    pub disabled: bool,
    /// Which task families it covers.
    #[serde(default)]
    pub scope: CnafScope,
    /// Port the proxy listens on (exposed in the task's port mappings).
    pub external_port: u16,
    /// Port the app listens on; the proxy forwards to `127.0.0.1:app_port`.
    pub app_port: u16,
    /// Bytes of request body inspected (default 131072, at most 16 MiB).
    #[serde(default = "default_body_limit")]
    pub body_limit: usize,
    /// What each protection does.
    #[serde(default)]
    pub protections: Protections,
}

/// The whole CNAF policy.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default)]
#[serde(deny_unknown_fields)]
pub struct CnafPolicy {
    /// Bumped by the console on every change.
    #[serde(default)]
    pub revision: u64,
    /// Ordered rules; the first enabled one whose scope matches the task family applies.
    #[serde(default)]
    pub rules: Vec<CnafRule>,
}

/// `family:3` and task-definition ARNs reduce to the bare family name.
fn bare_family(family: &str) -> &str {
    let family = family.rsplit('/').next().unwrap_or(family);
    match family.rsplit_once(':') {
        Some((name, rev)) if !rev.is_empty() && rev.bytes().all(|b| b.is_ascii_digit()) => name,
        _ => family,
    }
}

impl CnafPolicy {
    /// Parses and validates a CNAF policy; the error lists every bad field with its path.
    pub fn from_json(text: &str) -> Result<CnafPolicy, PolicyError> {
        parse_checked(text, cnaf_policy)
    }

    /// Validates an already parsed JSON value.
    pub fn from_value(value: Value) -> Result<CnafPolicy, PolicyError> {
        checked_value(value, cnaf_policy)
    }

    /// Checks a policy built in code.
    pub fn validate(&self) -> Result<(), PolicyError> {
        validate_typed(self, cnaf_policy)
    }

    /// The policy as pretty JSON.
    pub fn to_json_pretty(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_else(|e| unreachable!("plain data: {e}"))
    }

    /// The first enabled rule whose scope matches the task family. A revision suffix
    /// (`family:3`) or a task-definition ARN is reduced to the family first.
    pub fn rule_for_task(&self, family: &str) -> Option<&CnafRule> {
        let family = bare_family(family);
        self.rules.iter().find(|r| {
            !r.disabled
                && (r.scope.tasks.is_empty() || r.scope.tasks.iter().any(|p| p.matches(family)))
        })
    }

    /// The same revision with only the rule that applies to the task family (zero or one rule):
    /// what the console hands a defender.
    pub fn for_task(&self, family: &str) -> CnafPolicy {
        CnafPolicy {
            revision: self.revision,
            rules: self.rule_for_task(family).cloned().into_iter().collect(),
        }
    }
}

const CNAF_EFFECTS: [&str; 3] = ["disable", "alert", "prevent"];

/// Checks a whole CNAF policy document.
fn cnaf_policy(w: &mut Walker, v: &Value) {
    let Some(map) = w.object(v, "", &["revision", "rules"]) else {
        return;
    };
    if let Some(r) = map.get("revision") {
        w.unsigned(r, "revision");
    }
    let Some(rules) = map.get("rules").and_then(|r| w.array(r, "rules")) else {
        return;
    };
    let mut seen = HashMap::new();
    for (i, r) in rules.iter().enumerate() {
        cnaf_rule(w, r, &index("rules", i), &mut seen);
    }
}

fn cnaf_rule(w: &mut Walker, v: &Value, path: &str, seen: &mut HashMap<String, String>) {
    let fields = [
        "name",
        "disabled",
        "scope",
        "external_port",
        "app_port",
        "body_limit",
        "protections",
    ];
    let Some(map) = w.object(v, path, &fields) else {
        return;
    };
    w.rule_name(map, path, seen);
    if let Some(d) = map.get("disabled") {
        w.boolean(d, &join(path, "disabled"));
    }
    if let Some(s) = map.get("scope") {
        let sp = join(path, "scope");
        if let Some(scope) = w.object(s, &sp, &["tasks"]) {
            if let Some(tasks) = scope.get("tasks") {
                w.scope_patterns(tasks, &join(&sp, "tasks"));
            }
        }
    }
    let external = w
        .required(
            map,
            path,
            "external_port",
            "the port the proxy listens on (1 to 65535)",
        )
        .and_then(|p| w.port(p, &join(path, "external_port")));
    let app = w
        .required(
            map,
            path,
            "app_port",
            "the port the app listens on (1 to 65535)",
        )
        .and_then(|p| w.port(p, &join(path, "app_port")));
    if let (Some(e), Some(a)) = (external, app) {
        if e == a {
            w.error(
                &join(path, "app_port"),
                format!("app_port equals external_port {e}; the proxy listens on external_port and forwards to 127.0.0.1:app_port, so they must differ"),
            );
        }
    }
    if let Some(b) = map.get("body_limit") {
        let bp = join(path, "body_limit");
        if let Some(n) = w.unsigned(b, &bp) {
            if n == 0 || n > MAX_BODY_LIMIT as u64 {
                w.error(
                    &bp,
                    format!("body_limit {n} is out of range; use 1 to {MAX_BODY_LIMIT} bytes (default {DEFAULT_BODY_LIMIT})"),
                );
            }
        }
    }
    if let Some(p) = map.get("protections") {
        let pp = join(path, "protections");
        let mut fields = vec!["paranoia"];
        fields.extend(PROTECTIONS);
        if let Some(prot) = w.object(p, &pp, &fields) {
            if let Some(level) = prot.get("paranoia") {
                let lp = join(&pp, "paranoia");
                if let Some(n) = w.unsigned(level, &lp) {
                    if !(1..=4).contains(&n) {
                        w.error(
                            &lp,
                            format!("paranoia {n} is out of range; use 1 (attacks only) to 4 (most rules, most false positives); the default is 2"),
                        );
                    }
                }
            }
            for (key, effect) in prot {
                if PROTECTIONS.contains(&key.as_str()) {
                    w.one_of(effect, &join(&pp, key), "effect", &CNAF_EFFECTS);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONTRACT_EXAMPLE: &str = r#"{ "revision": 3,
  "rules": [ { "name": "web", "scope": { "tasks": ["twistlock-fargate-task*"] },
    "external_port": 8080, "app_port": 80, "body_limit": 131072,
    "protections": { "sqli": "prevent", "xss": "prevent", "cmdi": "alert", "code_injection": "alert",
                     "lfi": "prevent", "attack_tools": "alert", "shellshock": "prevent", "malformed": "alert" } } ] }"#;

    fn errors(json: &str) -> Vec<String> {
        match CnafPolicy::from_json(json) {
            Ok(p) => panic!("expected errors, parsed {p:?}"),
            Err(e) => e.field_errors().iter().map(ToString::to_string).collect(),
        }
    }

    #[test]
    fn parses_the_contract_example() {
        let p = CnafPolicy::from_json(CONTRACT_EXAMPLE).expect("valid");
        assert_eq!(p.revision, 3);
        let r = &p.rules[0];
        assert_eq!(r.name, "web");
        assert_eq!(
            (r.external_port, r.app_port, r.body_limit),
            (8080, 80, 131_072)
        );
        assert_eq!(r.protections.sqli, CnafEffect::Prevent);
        assert_eq!(r.protections.cmdi, CnafEffect::Alert);
        assert_eq!(r.protections.get("shellshock"), Some(CnafEffect::Prevent));
        assert_eq!(r.protections.get("nope"), None);
        assert_eq!(p.validate(), Ok(()));
        let back = CnafPolicy::from_json(&p.to_json_pretty()).expect("round trip");
        assert_eq!(back, p);
        assert_eq!(
            CnafPolicy::from_value(serde_json::to_value(&p).expect("value")),
            Ok(p)
        );
    }

    #[test]
    fn defaults() {
        let p =
            CnafPolicy::from_json(r#"{"rules":[{"name":"w","external_port":8080,"app_port":80}]}"#)
                .expect("valid");
        let r = &p.rules[0];
        assert_eq!(r.body_limit, DEFAULT_BODY_LIMIT);
        assert_eq!(r.protections, Protections::default());
        assert_eq!(Protections::default(), Protections::all(CnafEffect::Alert));
        let off = Protections::all(CnafEffect::Disable);
        assert!(PROTECTIONS
            .iter()
            .all(|n| off.get(n) == Some(CnafEffect::Disable)));
        assert!(r
            .protections
            .iter()
            .iter()
            .all(|(_, e)| *e == CnafEffect::Alert));
        assert_eq!(r.scope, CnafScope::default());
        assert!(!r.disabled);
        assert_eq!(r.protections.paranoia, Paranoia::DEFAULT);
        assert_eq!(r.protections.paranoia.level(), 2);
    }

    #[test]
    fn paranoia_levels() {
        let p = CnafPolicy::from_json(
            r#"{"rules":[{"name":"w","external_port":8080,"app_port":80,
                "protections":{"paranoia":3,"sqli":"prevent"}}]}"#,
        )
        .expect("valid");
        let prot = p.rules[0].protections;
        assert_eq!(prot.paranoia.level(), 3);
        assert_eq!(prot.sqli, CnafEffect::Prevent);
        assert_eq!(prot.get("paranoia"), None, "paranoia is not an effect");
        assert!(p.to_json_pretty().contains("\"paranoia\": 3"));
        assert_eq!(
            CnafPolicy::from_json(&p.to_json_pretty()).expect("round trip"),
            p
        );
        assert_eq!(
            prot.at(Paranoia::MAX).paranoia,
            Paranoia::new(4).expect("4 is a level")
        );
        assert_eq!(Paranoia::new(0), None);
        assert_eq!(Paranoia::new(5), None);
        assert_eq!(
            Paranoia::all().map(Paranoia::level).collect::<Vec<_>>(),
            vec![1, 2, 3, 4]
        );
        for bad in ["0", "5", "-1", "\"2\"", "1.5"] {
            let json = format!(
                r#"{{"rules":[{{"name":"w","external_port":8080,"app_port":80,"protections":{{"paranoia":{bad}}}}}]}}"#
            );
            let errs = errors(&json);
            assert_eq!(errs.len(), 1, "{bad}: {errs:?}");
            assert!(
                errs[0].starts_with("rules[0].protections.paranoia: "),
                "{bad}: {errs:?}"
            );
        }
        let typed: Result<Paranoia, _> = serde_json::from_str("9");
        assert!(typed.is_err(), "serde alone also refuses level 9");
    }

    #[test]
    fn ldap_and_graphql_protections() {
        let p = CnafPolicy::from_json(
            r#"{"rules":[{"name":"w","external_port":8080,"app_port":80,
                "protections":{"ldap":"prevent","graphql":"disable"}}]}"#,
        )
        .expect("valid");
        let prot = p.rules[0].protections;
        assert_eq!(prot.ldap, CnafEffect::Prevent);
        assert_eq!(prot.graphql, CnafEffect::Disable);
        assert_eq!(prot.get("ldap"), Some(CnafEffect::Prevent));
        assert_eq!(prot.get("graphql"), Some(CnafEffect::Disable));
        assert_eq!(prot.sqli, CnafEffect::Alert, "others keep their default");
        assert_eq!(
            CnafPolicy::from_json(&p.to_json_pretty()).expect("round trip"),
            p
        );
        let defaults = Protections::default();
        assert_eq!(
            (defaults.ldap, defaults.graphql),
            (CnafEffect::Alert, CnafEffect::Alert)
        );
        assert_eq!(
            errors(
                r#"{"rules":[{"name":"w","external_port":8080,"app_port":80,
                    "protections":{"ldap":"block","graphql":1}}]}"#
            ),
            vec![
                "rules[0].protections.ldap: unknown effect \"block\"; expected one of disable, alert, prevent",
                "rules[0].protections.graphql: expected a string, one of disable, alert, prevent, found number 1",
            ]
        );
    }

    #[test]
    fn rule_for_task_matches_the_family_first_enabled_wins() {
        let p = CnafPolicy::from_json(
            r#"{"rules":[
                {"name":"off","disabled":true,"scope":{"tasks":["*"]},"external_port":1,"app_port":2},
                {"name":"web","scope":{"tasks":["twistlock-fargate-task*"]},"external_port":8080,"app_port":80},
                {"name":"rest","scope":{"tasks":[]},"external_port":9090,"app_port":90}]}"#,
        )
        .expect("valid");
        let name = |f: &str| p.rule_for_task(f).map(|r| r.name.as_str());
        assert_eq!(name("twistlock-fargate-task"), Some("web"));
        assert_eq!(name("TWISTLOCK-FARGATE-TASK-prod"), Some("web"));
        assert_eq!(name("twistlock-fargate-task:12"), Some("web"));
        assert_eq!(
            name("arn:aws:ecs:us-east-1:123456789012:task-definition/twistlock-fargate-task:3"),
            Some("web")
        );
        assert_eq!(name("billing"), Some("rest"));
        assert_eq!(CnafPolicy::default().rule_for_task("x"), None);
        let narrowed = p.for_task("twistlock-fargate-task:7");
        assert_eq!(narrowed.revision, p.revision);
        assert_eq!(narrowed.rules, vec![p.rules[1].clone()]);
        assert!(CnafPolicy::default().for_task("x").rules.is_empty());
    }

    #[test]
    fn every_bad_field_is_reported_with_its_path() {
        let json = r#"{"revision": "3", "rules": [
            {"name": "web", "scope": {"task": ["x"], "tasks": [""]}, "external_port": 0, "app_port": 70000,
             "body_limit": 0, "protections": {"paranoia": 5, "sqli": "block", "xss": true, "csrf": "alert"}},
            {"name": "web", "external_port": 8080, "app_port": 8080, "body_limit": 99999999},
            {"name": "x"}
        ]}"#;
        assert_eq!(
            errors(json),
            vec![
                "revision: expected a non-negative integer, found string \"3\"",
                "rules[0].scope.task: unknown field; did you mean tasks? expected one of tasks",
                "rules[0].scope.tasks[0]: empty pattern; use \"*\" to match everything",
                "rules[0].external_port: port 0 is not valid; ports are 1 to 65535",
                "rules[0].app_port: port 70000 is out of range; ports are 1 to 65535",
                "rules[0].body_limit: body_limit 0 is out of range; use 1 to 16777216 bytes (default 131072)",
                "rules[0].protections.csrf: unknown field; expected one of paranoia, sqli, xss, cmdi, code_injection, lfi, ldap, graphql, attack_tools, shellshock, malformed",
                "rules[0].protections.paranoia: paranoia 5 is out of range; use 1 (attacks only) to 4 (most rules, most false positives); the default is 2",
                "rules[0].protections.sqli: unknown effect \"block\"; expected one of disable, alert, prevent",
                "rules[0].protections.xss: expected a string, one of disable, alert, prevent, found boolean true",
                "rules[1].name: duplicate rule name \"web\" (also used by rules[0]); rule names must be unique",
                "rules[1].app_port: app_port equals external_port 8080; the proxy listens on external_port and forwards to 127.0.0.1:app_port, so they must differ",
                "rules[1].body_limit: body_limit 99999999 is out of range; use 1 to 16777216 bytes (default 131072)",
                "rules[2].external_port: missing field; expected the port the proxy listens on (1 to 65535)",
                "rules[2].app_port: missing field; expected the port the app listens on (1 to 65535)",
            ]
        );
    }

    #[test]
    fn validate_checks_hand_built_policies() {
        let rule = CnafRule {
            name: "w".to_owned(),
            disabled: false,
            scope: CnafScope::default(),
            external_port: 8080,
            app_port: 8080,
            body_limit: 0,
            protections: Protections::default(),
        };
        let p = CnafPolicy {
            revision: 1,
            rules: vec![rule],
        };
        let err = p.validate().expect_err("invalid");
        assert_eq!(
            err.to_string(),
            "rules[0].app_port: app_port equals external_port 8080; the proxy listens on external_port and forwards to 127.0.0.1:app_port, so they must differ\n\
             rules[0].body_limit: body_limit 0 is out of range; use 1 to 16777216 bytes (default 131072)"
        );
    }

    #[test]
    fn effect_spellings() {
        for e in [CnafEffect::Disable, CnafEffect::Alert, CnafEffect::Prevent] {
            assert_eq!(
                serde_json::to_string(&e).expect("serialize"),
                format!("\"{e}\"")
            );
        }
    }
}
