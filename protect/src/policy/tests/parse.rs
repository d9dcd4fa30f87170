//! Parsing, validation messages and the shipped examples.

use super::*;

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

#[test]
fn oversized_documents_are_refused_before_parsing() {
    let text = format!(
        "{{\"revision\": 1, \"pad\": \"{}\"}}",
        "x".repeat(MAX_POLICY_BYTES)
    );
    let err = RuntimePolicy::from_json(&text).expect_err("too large");
    assert_eq!(
        err,
        PolicyError::TooLarge {
            len: text.len(),
            max: MAX_POLICY_BYTES
        }
    );
    assert!(err.field_errors().is_empty());
    assert!(crate::cnaf_policy::CnafPolicy::from_json(&text).is_err());
}

#[test]
fn effects_are_ordered_by_severity() {
    assert!(Effect::Disable < Effect::Alert);
    assert!(Effect::Alert < Effect::Prevent);
    assert!(Effect::Prevent < Effect::Block);
    assert_eq!(Effect::ALL.iter().max(), Some(&Effect::Block));
}

#[test]
fn echoed_input_is_bounded() {
    let long = "x".repeat(5000);
    let json = format!(
        r#"{{"{long}": 1, "rules": [{{"name": "a", "startup": "{long}", "disabled": "{long}",
            "network": {{"effect": "alert", "denied_outbound": ["{long}"]}}}}]}}"#
    );
    let cut = format!("{}…", "x".repeat(64));
    assert_eq!(
        errors(&json),
        vec![
            format!("{cut}: unknown field; expected one of revision, rules"),
            format!("rules[0].disabled: expected true or false, found string \"{cut}\""),
            format!("rules[0].startup: unknown startup \"{cut}\"; expected one of availability, security"),
            "rules[0].network.denied_outbound[0]: entry is 5000 bytes long; the limit is 1024".to_owned(),
        ]
    );
}
