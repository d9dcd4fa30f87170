//! Scope matching and the pure checks.

use super::*;

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
