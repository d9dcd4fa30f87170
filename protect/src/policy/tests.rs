//! Unit tests for the runtime policy: parsing, validation paths, scope matching, evaluation.

use std::net::IpAddr;

use super::*;

fn scope(task: &str, container: &str, image: &str) -> Scope {
    Scope {
        task: task.to_owned(),
        container: container.to_owned(),
        image: image.to_owned(),
    }
}

fn pats(list: &[&str]) -> Vec<Pattern> {
    list.iter()
        .map(|s| Pattern::new(s).expect("valid pattern"))
        .collect()
}

fn targets(list: &[&str]) -> Vec<NetTarget> {
    list.iter()
        .map(|s| NetTarget::parse(s).expect("valid target"))
        .collect()
}

fn ip(s: &str) -> IpAddr {
    s.parse().expect("valid ip")
}

/// Parses and returns the list of `path: message` lines, or panics if the policy is valid.
fn errors(json: &str) -> Vec<String> {
    match RuntimePolicy::from_json(json) {
        Ok(p) => panic!("expected errors, parsed {p:?}"),
        Err(e) => e.field_errors().iter().map(ToString::to_string).collect(),
    }
}

fn process_rule(effect: Effect, allowed: &[&str], denied: &[&str]) -> Rule {
    let mut r = Rule::new("r");
    r.processes = ProcessSection {
        effect,
        allowed: pats(allowed),
        denied: pats(denied),
    };
    r
}

fn dns_rule(effect: Effect, allowed: &[&str], denied: &[&str]) -> Rule {
    let mut r = Rule::new("r");
    r.dns = DnsSection {
        effect,
        allowed: pats(allowed),
        denied: pats(denied),
    };
    r
}

fn net_rule(effect: Effect, allowed: &[&str], denied: &[&str]) -> Rule {
    let mut r = Rule::new("r");
    r.network.effect = effect;
    r.network.allowed_outbound = targets(allowed);
    r.network.denied_outbound = targets(denied);
    r
}

fn violation(effect: Effect, reason: Reason) -> Option<Violation> {
    Some(Violation {
        effect,
        rule: "r".to_owned(),
        reason,
    })
}

const CONTRACT_EXAMPLE: &str = r#"{ "revision": 7,
  "rules": [
    { "name": "sample", "disabled": false,
      "scope": { "tasks": ["*"], "containers": ["twistlock-fargate-task"], "images": ["*"] },
      "startup": "availability",
      "processes": { "effect": "prevent", "allowed": [], "denied": ["mkdir", "/usr/bin/nc"] },
      "dns":       { "effect": "prevent", "allowed": [], "denied": ["yahoo.com", "*.evil.example"] },
      "network":   { "effect": "alert",
                     "allowed_outbound": [], "denied_outbound": ["203.0.113.0/24", "*:25"],
                     "allowed_listening_ports": [80, 8080], "denied_listening_ports": [] } } ] }"#;

#[test]
fn parses_the_contract_example() {
    let p = RuntimePolicy::from_json(CONTRACT_EXAMPLE).expect("contract example is valid");
    assert_eq!(p.revision, 7);
    assert_eq!(p.rules.len(), 1);
    let r = &p.rules[0];
    assert_eq!(r.name, "sample");
    assert!(!r.disabled);
    assert_eq!(r.scope.containers, pats(&["twistlock-fargate-task"]));
    assert_eq!(r.startup, Startup::Availability);
    assert_eq!(r.processes.effect, Effect::Prevent);
    assert_eq!(r.processes.denied, pats(&["mkdir", "/usr/bin/nc"]));
    assert_eq!(r.dns.denied, pats(&["yahoo.com", "*.evil.example"]));
    assert_eq!(r.network.effect, Effect::Alert);
    assert_eq!(
        r.network.denied_outbound,
        targets(&["203.0.113.0/24", "*:25"])
    );
    assert_eq!(r.network.allowed_listening_ports, vec![80, 8080]);
    assert_eq!(p.validate(), Ok(()));
}

#[test]
fn defaults_for_missing_fields() {
    let p = RuntimePolicy::from_json(r#"{"rules":[{"name":"only-name"}]}"#).expect("valid");
    assert_eq!(p.revision, 0);
    let r = &p.rules[0];
    assert_eq!(r, &Rule::new("only-name"));
    assert_eq!(r.scope, ScopePatterns::default());
    assert_eq!(r.startup, Startup::Availability);
    assert_eq!(r.processes.effect, Effect::Disable);
    assert_eq!(r.check_process("/bin/anything"), None);
    let empty = RuntimePolicy::from_json("{}").expect("empty object is an empty policy");
    assert_eq!(empty, RuntimePolicy::default());
}

#[test]
fn the_contract_error_message_for_a_bad_effect() {
    let json = r#"{"rules":[{"name":"a","processes":{"effect":"explode"}}]}"#;
    let err = RuntimePolicy::from_json(json).expect_err("bad effect");
    assert_eq!(
        err.to_string(),
        r#"rules[0].processes.effect: unknown effect "explode"; expected one of disable, alert, prevent, block"#
    );
}

#[test]
fn every_bad_field_is_reported_with_its_path() {
    let json = r#"{
      "revision": -1,
      "color": "blue",
      "rules": [
        { "name": "a", "disabled": "no",
          "scope": { "tasks": [""], "containerz": ["x"], "images": "nginx" },
          "startup": "fast",
          "processes": { "effect": "explode", "allowed": ["bin/sh"], "denied": [3, "/usr/bin/"] },
          "dns": { "allowed": [], "denied": ["http://yahoo.com", "a..b", "münchen.de"] },
          "network": { "effect": "block",
                       "allowed_outbound": ["203.0.113.7/24", "example.com"],
                       "denied_outbound": ["*:0", "nonsense"],
                       "allowed_listening_ports": [0, 65536, "80", 443],
                       "denied_listening_ports": [443] } },
        { "name": "a", "processes": { "effect": "prevent", "allowedList": [] } },
        { "name": "" },
        "not a rule",
        { "disabled": true }
      ] }"#;
    assert_eq!(
        errors(json),
        vec![
            "color: unknown field; expected one of revision, rules",
            "revision: expected a non-negative integer, found number -1",
            "rules[0].disabled: expected true or false, found string \"no\"",
            "rules[0].scope.containerz: unknown field; did you mean containers? expected one of tasks, containers, images",
            "rules[0].scope.tasks[0]: empty pattern; use \"*\" to match everything",
            "rules[0].scope.images: expected an array, found string \"nginx\"",
            "rules[0].startup: unknown startup \"fast\"; expected one of availability, security",
            "rules[0].processes.effect: unknown effect \"explode\"; expected one of disable, alert, prevent, block",
            "rules[0].processes.allowed[0]: \"bin/sh\" contains \"/\" but is not an absolute path; write an absolute path such as /bin/sh or a basename such as sh",
            "rules[0].processes.denied[0]: expected a string, found number 3",
            "rules[0].processes.denied[1]: \"/usr/bin/\" ends with \"/\" and can never match an executable; add a name or \"*\"",
            "rules[0].dns.effect: missing field; expected an effect, one of disable, alert, prevent, block",
            "rules[0].dns.denied[0]: \"http://yahoo.com\" is not a domain name pattern: ':' is not allowed; write names like yahoo.com or *.evil.example",
            "rules[0].dns.denied[1]: \"a..b\" has an empty label (a leading dot or \"..\"); write names like yahoo.com or *.evil.example",
            "rules[0].dns.denied[2]: \"münchen.de\" is not a domain name pattern: 'ü' is not allowed (use the xn-- punycode form for international names); write names like yahoo.com or *.evil.example",
            "rules[0].network.allowed_outbound[0]: \"203.0.113.7/24\" has host bits set after the prefix; write 203.0.113.0/24",
            "rules[0].network.allowed_outbound[1]: \"example.com\" is a host name; outbound lists take IP addresses and CIDRs (put names in the dns section)",
            "rules[0].network.denied_outbound[0]: port \"0\" in \"*:0\" is not a number between 1 and 65535",
            "rules[0].network.denied_outbound[1]: \"nonsense\" is a host name; outbound lists take IP addresses and CIDRs (put names in the dns section)",
            "rules[0].network.allowed_listening_ports[0]: port 0 is not valid; ports are 1 to 65535",
            "rules[0].network.allowed_listening_ports[1]: port 65536 is out of range; ports are 1 to 65535",
            "rules[0].network.allowed_listening_ports[2]: expected a port number (1 to 65535), found string \"80\"",
            "rules[0].network.denied_listening_ports[0]: 443 is also in allowed_listening_ports; remove it from one of the lists",
            "rules[1].name: duplicate rule name \"a\" (also used by rules[0]); rule names must be unique",
            "rules[1].processes.allowedList: unknown field; expected one of effect, allowed, denied",
            "rules[2].name: empty rule name; give the rule a unique name",
            "rules[3]: expected an object, found string \"not a rule\"",
            "rules[4].name: missing field; expected a unique rule name",
        ]
    );
}

#[test]
fn syntax_errors_give_line_and_column() {
    let err = RuntimePolicy::from_json("{\n  \"rules\": [,]\n}").expect_err("bad JSON");
    match &err {
        PolicyError::Syntax { line, column, .. } => assert_eq!((*line, *column), (2, 13)),
        other => panic!("expected a syntax error, got {other:?}"),
    }
    assert!(err.field_errors().is_empty());
    assert!(err
        .to_string()
        .starts_with("policy is not valid JSON (line 2, column 13): "));
}

#[test]
fn top_level_must_be_an_object_and_nulls_are_not_defaults() {
    assert_eq!(errors("[]"), vec!["expected an object, found an array"]);
    assert_eq!(
        errors(r#"{"rules": null}"#),
        vec!["rules: expected an array, found null"]
    );
    assert_eq!(
        errors(r#"{"rules": [{"name": "x", "dns": {"effect": null}}]}"#),
        vec!["rules[0].dns.effect: expected a string, one of disable, alert, prevent, block, found null"]
    );
}

#[test]
fn conflicting_entries_are_reported() {
    assert_eq!(
        errors(
            r#"{"rules":[{"name":"x","processes":{"effect":"alert","allowed":["sh"],"denied":["sh"]}}]}"#
        ),
        vec![
            "rules[0].processes.denied[0]: sh is also in allowed; remove it from one of the lists"
        ]
    );
    assert_eq!(
        errors(r#"{"rules":[{"name":"x","network":{"effect":"alert","allowed_outbound":["*:25"],"denied_outbound":["*:25"]}}]}"#),
        vec!["rules[0].network.denied_outbound[0]: *:25 is also in allowed_outbound; remove it from one of the lists"]
    );
}

#[test]
fn validate_catches_what_the_types_allow() {
    let mut p = RuntimePolicy {
        revision: 1,
        rules: vec![Rule::new("same"), Rule::new("same")],
    };
    p.rules[0].network.denied_listening_ports = vec![0];
    p.rules[0].processes.denied = pats(&["usr/bin/nc"]);
    p.rules[1].dns.denied = pats(&["evil example"]);
    let err = p.validate().expect_err("invalid");
    let lines: Vec<String> = err.field_errors().iter().map(ToString::to_string).collect();
    assert_eq!(
        lines,
        vec![
            "rules[0].processes.denied[0]: \"usr/bin/nc\" contains \"/\" but is not an absolute path; write an absolute path such as /usr/bin/nc or a basename such as nc",
            "rules[0].network.denied_listening_ports[0]: port 0 is not valid; ports are 1 to 65535",
            "rules[1].name: duplicate rule name \"same\" (also used by rules[0]); rule names must be unique",
            "rules[1].dns.denied[0]: \"evil example\" is not a domain name pattern: ' ' is not allowed; write names like yahoo.com or *.evil.example",
        ]
    );
    assert_eq!(err.to_string(), lines.join("\n"));
}

#[test]
fn serialization_round_trips_and_from_value_agrees() {
    let p = RuntimePolicy::from_json(CONTRACT_EXAMPLE).expect("valid");
    let back = RuntimePolicy::from_json(&p.to_json_pretty()).expect("round trip");
    assert_eq!(back, p);
    let value = serde_json::to_value(&p).expect("to value");
    assert_eq!(RuntimePolicy::from_value(value), Ok(p));
}

// ---------- scope matching ----------

fn scoped(name: &str, tasks: &[&str], containers: &[&str], images: &[&str]) -> Rule {
    let mut r = Rule::new(name);
    r.scope = ScopePatterns {
        tasks: pats(tasks),
        containers: pats(containers),
        images: pats(images),
    };
    r
}

#[test]
fn empty_policy_matches_nothing() {
    let p = RuntimePolicy::default();
    assert_eq!(p.rule_for(&scope("t", "c", "i")), None);
    assert!(p.for_scope(&scope("t", "c", "i")).rules.is_empty());
}

#[test]
fn scope_fields_and_together_case_insensitively() {
    let r = scoped("r", &["shop-*"], &["web"], &["*nginx:*"]);
    assert!(r
        .scope
        .matches(&scope("shop-prod", "web", "docker.io/library/nginx:1.27")));
    assert!(r.scope.matches(&scope("SHOP-prod", "WEB", "NGINX:latest")));
    assert!(!r.scope.matches(&scope("shop-prod", "worker", "nginx:1.27")));
    assert!(!r.scope.matches(&scope("blog", "web", "nginx:1.27")));
    assert!(!r.scope.matches(&scope("shop-prod", "web", "httpd:2")));
}

#[test]
fn missing_or_empty_scope_fields_mean_everything() {
    let p = RuntimePolicy::from_json(
        r#"{"rules":[{"name":"a","scope":{"containers":["web"]}},{"name":"b","scope":{"tasks":[],"containers":[],"images":[]}}]}"#,
    )
    .expect("valid");
    assert_eq!(p.rules[0].scope.tasks, pats(&["*"]));
    assert!(p.rules[0]
        .scope
        .matches(&scope("any-task", "web", "any/image:tag")));
    assert!(p.rules[1].scope.matches(&scope("x", "y", "z")));
    assert_eq!(
        p.rule_for(&scope("t", "worker", "i"))
            .map(|r| r.name.as_str()),
        Some("b")
    );
}

#[test]
fn first_enabled_matching_rule_wins() {
    let mut disabled = scoped("disabled", &["*"], &["web"], &["*"]);
    disabled.disabled = true;
    let p = RuntimePolicy {
        revision: 3,
        rules: vec![
            disabled,
            scoped("other-task", &["billing"], &["*"], &["*"]),
            scoped("web", &["*"], &["web*"], &["*"]),
            scoped("catch-all", &["*"], &["*"], &["*"]),
        ],
    };
    let web = scope("shop", "web", "nginx");
    assert_eq!(p.rule_for(&web).map(|r| r.name.as_str()), Some("web"));
    assert_eq!(
        p.rule_for(&scope("billing", "web", "x"))
            .map(|r| r.name.as_str()),
        Some("other-task")
    );
    assert_eq!(
        p.rule_for(&scope("shop", "worker", "x"))
            .map(|r| r.name.as_str()),
        Some("catch-all")
    );
    let narrowed = p.for_scope(&web);
    assert_eq!(narrowed.revision, 3);
    let names: Vec<&str> = narrowed.rules.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, vec!["web", "catch-all"]);
    assert_eq!(
        narrowed.rule_for(&web).map(|r| r.name.as_str()),
        Some("web")
    );
}

#[test]
fn all_rules_disabled_means_no_enforcement() {
    let mut r = scoped("off", &["*"], &["*"], &["*"]);
    r.disabled = true;
    let p = RuntimePolicy {
        revision: 1,
        rules: vec![r],
    };
    assert_eq!(p.rule_for(&scope("a", "b", "c")), None);
}

// ---------- processes ----------

#[test]
fn process_deny_list_by_basename_and_path() {
    let r = process_rule(Effect::Prevent, &[], &["mkdir", "/usr/bin/nc", "python*"]);
    let denied = violation(Effect::Prevent, Reason::ExplicitlyDenied);
    assert_eq!(r.check_process("/bin/mkdir"), denied);
    assert_eq!(r.check_process("/usr/local/bin/MKDIR"), denied);
    assert_eq!(r.check_process("/usr/bin/nc"), denied);
    assert_eq!(
        r.check_process("/bin/nc"),
        None,
        "path pattern needs the exact path"
    );
    assert_eq!(r.check_process("/usr/bin/python3.12"), denied);
    assert_eq!(r.check_process("/usr/bin/mkdirat"), None);
    assert_eq!(
        r.check_process("/opt/mkdir/tool"),
        None,
        "basename only, not a directory"
    );
    assert_eq!(r.check_process("/bin/ls"), None);
}

#[test]
fn process_path_globs() {
    let r = process_rule(Effect::Alert, &[], &["/tmp/*", "*/nc"]);
    let hit = violation(Effect::Alert, Reason::ExplicitlyDenied);
    assert_eq!(r.check_process("/tmp/x"), hit);
    assert_eq!(r.check_process("/tmp/a/b/c"), hit);
    assert_eq!(r.check_process("/usr/bin/nc"), hit);
    assert_eq!(r.check_process("/usr/bin/ncat"), None);
    assert_eq!(r.check_process("/var/tmp/x"), None);
}

#[test]
fn process_allow_list_makes_everything_else_a_violation() {
    let r = process_rule(Effect::Block, &["/entry.sh", "nginx", "sh"], &["sh"]);
    assert_eq!(r.check_process("/entry.sh"), None);
    assert_eq!(r.check_process("/usr/sbin/nginx"), None);
    assert_eq!(
        r.check_process("/bin/sh"),
        violation(Effect::Block, Reason::ExplicitlyDenied),
        "denied wins over allowed"
    );
    assert_eq!(
        r.check_process("/bin/mkdir"),
        violation(Effect::Block, Reason::NotAllowed)
    );
}

#[test]
fn disabled_section_checks_nothing() {
    let r = process_rule(Effect::Disable, &["nginx"], &["mkdir"]);
    assert_eq!(r.check_process("/bin/mkdir"), None);
    assert_eq!(r.check_process("/bin/other"), None);
    let d = dns_rule(Effect::Disable, &[], &["*"]);
    assert_eq!(d.check_domain("yahoo.com"), None);
    let n = net_rule(Effect::Disable, &[], &["*"]);
    assert_eq!(n.check_outbound(ip("203.0.113.7"), 443), None);
    let mut l = Rule::new("r");
    l.network.denied_listening_ports = vec![22];
    assert_eq!(l.check_listen(22), None);
}

#[test]
fn empty_lists_allow_everything() {
    for effect in [Effect::Alert, Effect::Prevent, Effect::Block] {
        assert_eq!(
            process_rule(effect, &[], &[]).check_process("/bin/sh"),
            None
        );
        assert_eq!(dns_rule(effect, &[], &[]).check_domain("a.b"), None);
        assert_eq!(
            net_rule(effect, &[], &[]).check_outbound(ip("1.1.1.1"), 53),
            None
        );
        let mut r = Rule::new("r");
        r.network.effect = effect;
        assert_eq!(r.check_listen(80), None);
    }
}

// ---------- DNS ----------

#[test]
fn dns_exact_and_wildcard_names() {
    let r = dns_rule(Effect::Prevent, &[], &["yahoo.com", "*.evil.example"]);
    let hit = violation(Effect::Prevent, Reason::ExplicitlyDenied);
    assert_eq!(r.check_domain("yahoo.com"), hit);
    assert_eq!(r.check_domain("YAHOO.COM"), hit);
    assert_eq!(r.check_domain("yahoo.com."), hit, "trailing dot");
    assert_eq!(r.check_domain("www.yahoo.com"), None, "exact name only");
    assert_eq!(r.check_domain("a.evil.example"), hit);
    assert_eq!(r.check_domain("x.y.evil.example"), hit);
    assert_eq!(r.check_domain("A.Evil.Example."), hit);
    assert_eq!(r.check_domain("evil.example"), None);
    assert_eq!(r.check_domain("notevil.example"), None);
    assert_eq!(r.check_domain(""), None);
}

#[test]
fn dns_patterns_with_a_trailing_dot() {
    let r = dns_rule(Effect::Alert, &[], &["yahoo.com."]);
    let hit = violation(Effect::Alert, Reason::ExplicitlyDenied);
    assert_eq!(r.check_domain("yahoo.com"), hit);
    assert_eq!(r.check_domain("yahoo.com."), hit);
    assert_eq!(r.check_domain("yahoo.co"), None);
}

#[test]
fn dns_allow_list() {
    let r = dns_rule(Effect::Prevent, &["*.amazonaws.com", "example.com"], &[]);
    assert_eq!(r.check_domain("ecs.us-east-1.amazonaws.com"), None);
    assert_eq!(r.check_domain("example.com."), None);
    assert_eq!(
        r.check_domain("yahoo.com"),
        violation(Effect::Prevent, Reason::NotAllowed)
    );
    assert_eq!(
        r.check_domain("amazonaws.com"),
        violation(Effect::Prevent, Reason::NotAllowed)
    );
}

// ---------- network ----------

#[test]
fn outbound_deny_forms() {
    let r = net_rule(
        Effect::Prevent,
        &[],
        &[
            "203.0.113.0/24",
            "*:25",
            "198.51.100.7:443",
            "[2001:db8::1]:443",
            "2001:db8:dead::/48",
        ],
    );
    let hit = violation(Effect::Prevent, Reason::ExplicitlyDenied);
    assert_eq!(r.check_outbound(ip("203.0.113.7"), 443), hit);
    assert_eq!(r.check_outbound(ip("::ffff:203.0.113.7"), 443), hit);
    assert_eq!(r.check_outbound(ip("203.0.114.7"), 443), None);
    assert_eq!(r.check_outbound(ip("192.0.2.1"), 25), hit);
    assert_eq!(r.check_outbound(ip("2001:db8::5"), 25), hit);
    assert_eq!(r.check_outbound(ip("198.51.100.7"), 443), hit);
    assert_eq!(r.check_outbound(ip("198.51.100.7"), 80), None);
    assert_eq!(r.check_outbound(ip("2001:db8::1"), 443), hit);
    assert_eq!(r.check_outbound(ip("2001:db8::1"), 80), None);
    assert_eq!(r.check_outbound(ip("2001:db8:dead:1::1"), 1), hit);
    assert_eq!(r.check_outbound(ip("2001:db8:beef::1"), 1), None);
}

#[test]
fn outbound_allow_list() {
    let r = net_rule(Effect::Alert, &["10.0.0.0/8", "*:443"], &["10.0.0.5"]);
    assert_eq!(r.check_outbound(ip("10.1.2.3"), 5432), None);
    assert_eq!(r.check_outbound(ip("93.184.216.34"), 443), None);
    assert_eq!(r.check_outbound(ip("::ffff:10.9.9.9"), 80), None);
    assert_eq!(
        r.check_outbound(ip("93.184.216.34"), 80),
        violation(Effect::Alert, Reason::NotAllowed)
    );
    assert_eq!(
        r.check_outbound(ip("10.0.0.5"), 443),
        violation(Effect::Alert, Reason::ExplicitlyDenied)
    );
}

#[test]
fn listening_ports() {
    let mut deny = Rule::new("r");
    deny.network.effect = Effect::Block;
    deny.network.denied_listening_ports = vec![22, 4444];
    assert_eq!(
        deny.check_listen(4444),
        violation(Effect::Block, Reason::ExplicitlyDenied)
    );
    assert_eq!(deny.check_listen(80), None);

    let mut allow = Rule::new("r");
    allow.network.effect = Effect::Prevent;
    allow.network.allowed_listening_ports = vec![80, 8080];
    assert_eq!(allow.check_listen(80), None);
    assert_eq!(allow.check_listen(8080), None);
    assert_eq!(
        allow.check_listen(9000),
        violation(Effect::Prevent, Reason::NotAllowed)
    );
}

#[test]
fn violations_carry_the_rule_name_and_say_whether_they_deny() {
    let p = RuntimePolicy::from_json(CONTRACT_EXAMPLE).expect("valid");
    let r = p
        .rule_for(&scope(
            "twistlock-fargate-task",
            "twistlock-fargate-task",
            "img",
        ))
        .expect("sample applies");
    let v = r.check_process("/bin/mkdir").expect("mkdir denied");
    assert_eq!(v.rule, "sample");
    assert!(v.denies());
    let v = r
        .check_outbound(ip("203.0.113.7"), 443)
        .expect("network alert");
    assert!(!v.denies());
    assert_eq!(r.check_listen(80), None);
    assert_eq!(
        r.check_listen(22),
        Some(Violation {
            effect: Effect::Alert,
            rule: "sample".to_owned(),
            reason: Reason::NotAllowed
        })
    );
}

#[test]
fn effect_and_reason_spellings() {
    let names: Vec<String> = Effect::ALL.iter().map(ToString::to_string).collect();
    assert_eq!(names, vec!["disable", "alert", "prevent", "block"]);
    for e in Effect::ALL {
        let json = serde_json::to_string(&e).expect("serialize");
        assert_eq!(json, format!("\"{}\"", e.as_str()));
    }
    assert_eq!(
        serde_json::to_string(&Reason::NotAllowed).expect("serialize"),
        "\"not_allowed\""
    );
    assert_eq!(Reason::ExplicitlyDenied.to_string(), "explicitly denied");
}

#[test]
fn unknown_fields_suggest_the_closest_known_one() {
    assert_eq!(
        errors(r#"{"rules":[{"name":"x","network":{"effect":"alert","allowedOutbound":[],"deniedListeningPorts":[],"color":1}}]}"#),
        vec![
            "rules[0].network.allowedOutbound: unknown field; did you mean allowed_outbound? expected one of effect, allowed_outbound, denied_outbound, allowed_listening_ports, denied_listening_ports",
            "rules[0].network.deniedListeningPorts: unknown field; did you mean denied_listening_ports? expected one of effect, allowed_outbound, denied_outbound, allowed_listening_ports, denied_listening_ports",
            "rules[0].network.color: unknown field; expected one of effect, allowed_outbound, denied_outbound, allowed_listening_ports, denied_listening_ports",
        ]
    );
    assert_eq!(
        errors(r#"{"revison": 3}"#),
        vec!["revison: unknown field; did you mean revision? expected one of revision, rules"]
    );
}

// ---------- the shipped examples ----------

#[test]
fn the_example_policy_files_parse_and_do_what_the_seed_says() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples");
    let text = std::fs::read_to_string(dir.join("policy.json")).expect("examples/policy.json");
    let p = RuntimePolicy::from_json(&text).expect("examples/policy.json is valid");
    let seed = scope(
        "twistlock-fargate-task",
        "twistlock-fargate-task",
        "matthewabq/twistlock-fargate-auto",
    );
    let r = p
        .rule_for(&seed)
        .expect("the sample rule covers the seed container");
    assert_eq!(r.name, "sample");
    let denied = Some(Violation {
        effect: Effect::Prevent,
        rule: "sample".to_owned(),
        reason: Reason::ExplicitlyDenied,
    });
    assert_eq!(r.check_process("/bin/mkdir"), denied);
    assert_eq!(r.check_process("/bin/ls"), None);
    assert_eq!(r.check_domain("yahoo.com"), denied);
    assert_eq!(r.check_domain("amazon.com"), None);
    assert_eq!(r.check_outbound(ip("203.0.113.7"), 443), None);
    assert_eq!(
        p.rule_for(&scope("twistlock-fargate-task", "sidecar", "x")),
        None
    );

    let text =
        std::fs::read_to_string(dir.join("cnaf-policy.json")).expect("examples/cnaf-policy.json");
    let c = crate::cnaf_policy::CnafPolicy::from_json(&text).expect("cnaf-policy.json is valid");
    let web = c
        .rule_for_task("twistlock-fargate-task")
        .expect("covers the seed task");
    assert_eq!((web.external_port, web.app_port), (8080, 80));
    assert_eq!(
        web.protections.sqli,
        crate::cnaf_policy::CnafEffect::Prevent
    );
}
