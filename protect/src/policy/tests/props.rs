//! Property tests: valid policies survive serialize → parse unchanged; evaluation invariants.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use proptest::arbitrary::any;
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::string::string_regex;

use super::*;

fn effect() -> impl Strategy<Value = Effect> {
    prop_oneof![
        Just(Effect::Disable),
        Just(Effect::Alert),
        Just(Effect::Prevent),
        Just(Effect::Block),
    ]
}

fn pattern(re: &'static str) -> impl Strategy<Value = Pattern> {
    re.prop_map(|s| Pattern::new(&s).expect("generated patterns are valid"))
}

/// Scope patterns: any printable text with wildcards.
fn scope_patterns() -> impl Strategy<Value = Vec<Pattern>> {
    vec(pattern("[a-zA-Z0-9*._:/-]{1,12}"), 0..3)
}

/// Process patterns starting with `first` (so allowed and denied never collide): basenames or
/// absolute path globs.
fn process_patterns(first: &'static str) -> impl Strategy<Value = Vec<Pattern>> {
    let basename = string_regex(&format!("{first}[a-z0-9*._-]{{0,8}}")).expect("regex");
    let path = string_regex(&format!("/[a-z*]{{1,5}}/{first}[a-z0-9*]{{0,5}}")).expect("regex");
    vec(
        prop_oneof![basename, path]
            .prop_map(|s| Pattern::new(&s).expect("generated patterns are valid")),
        0..4,
    )
}

/// Domain patterns whose first label starts with `first`, with an optional trailing dot.
fn domain_patterns(first: &'static str) -> impl Strategy<Value = Vec<Pattern>> {
    let name = string_regex(&format!(
        "({first}|\\*\\.{first})[a-z0-9-]{{0,5}}(\\.[a-z0-9_-]{{1,6}}){{0,3}}\\.?"
    ))
    .expect("regex");
    vec(
        name.prop_map(|s| Pattern::new(&s).expect("generated patterns are valid")),
        0..4,
    )
}

fn port() -> impl Strategy<Value = u16> {
    1u16..=u16::MAX
}

/// IPv4 destinations (host, CIDR, with or without port).
fn v4_targets() -> impl Strategy<Value = Vec<NetTarget>> {
    let one = (any::<u32>(), 0u32..=32, proptest::option::of(port())).prop_map(|(a, len, p)| {
        let mask = u32::MAX.checked_shl(32 - len).unwrap_or(0);
        let host = format!("{}/{len}", Ipv4Addr::from(a & mask));
        let text = match p {
            Some(p) => format!("{host}:{p}"),
            None => host,
        };
        NetTarget::parse(&text).expect("generated target is valid")
    });
    vec(one, 0..4)
}

/// IPv6 and any-address destinations.
fn v6_targets() -> impl Strategy<Value = Vec<NetTarget>> {
    let v6 = (any::<u128>(), 0u32..=95, proptest::option::of(port())).prop_map(|(a, len, p)| {
        let mask = u128::MAX.checked_shl(128 - len).unwrap_or(0);
        let host = format!("{}/{len}", Ipv6Addr::from(a & mask));
        let text = match p {
            Some(p) => format!("[{host}]:{p}"),
            None => host,
        };
        NetTarget::parse(&text).expect("generated target is valid")
    });
    let any_port = port().prop_map(|p| NetTarget::any(Some(p)));
    vec(prop_oneof![v6, any_port], 0..4)
}

fn rule(index: usize) -> impl Strategy<Value = Rule> {
    (
        (
            any::<bool>(),
            scope_patterns(),
            scope_patterns(),
            scope_patterns(),
        ),
        (effect(), process_patterns("a"), process_patterns("d")),
        (effect(), domain_patterns("a"), domain_patterns("d")),
        (effect(), v4_targets(), v6_targets()),
        (
            vec(
                port()
                    .prop_map(|p| p & !1)
                    .prop_filter("not 0", |p| *p != 0),
                0..4,
            ),
            vec(port().prop_map(|p| p | 1), 0..4),
            any::<bool>(),
        ),
    )
        .prop_map(
            move |(
                (disabled, tasks, containers, images),
                (pe, pa, pd),
                (de, da, dd),
                (ne, na, nd),
                (lpa, lpd, security),
            )| Rule {
                name: format!("rule-{index}"),
                disabled,
                scope: ScopePatterns {
                    tasks,
                    containers,
                    images,
                },
                startup: if security {
                    Startup::Security
                } else {
                    Startup::Availability
                },
                processes: ProcessSection {
                    effect: pe,
                    allowed: pa,
                    denied: pd,
                },
                dns: DnsSection {
                    effect: de,
                    allowed: da,
                    denied: dd,
                },
                network: NetworkSection {
                    effect: ne,
                    allowed_outbound: na,
                    denied_outbound: nd,
                    allowed_listening_ports: lpa,
                    denied_listening_ports: lpd,
                },
            },
        )
}

fn policy() -> impl Strategy<Value = RuntimePolicy> {
    (any::<u64>(), 0usize..4)
        .prop_flat_map(|(revision, n)| {
            let rules: Vec<_> = (0..n).map(rule).collect();
            (Just(revision), rules)
        })
        .prop_map(|(revision, rules)| RuntimePolicy { revision, rules })
}

fn workload() -> impl Strategy<Value = Scope> {
    (
        "[a-zA-Z0-9._-]{0,10}",
        "[a-z0-9-]{0,8}",
        "[a-z0-9/:.]{0,12}",
    )
        .prop_map(|(task, container, image)| Scope {
            task,
            container,
            image,
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn valid_policies_round_trip_through_json(p in policy()) {
        prop_assert_eq!(p.validate(), Ok(()));
        let text = serde_json::to_string(&p).expect("serialize");
        prop_assert_eq!(RuntimePolicy::from_json(&text), Ok(p.clone()));
        prop_assert_eq!(RuntimePolicy::from_json(&p.to_json_pretty()), Ok(p));
    }

    #[test]
    fn for_scope_keeps_the_same_answer(p in policy(), w in workload()) {
        let narrowed = p.for_scope(&w);
        prop_assert_eq!(narrowed.revision, p.revision);
        prop_assert_eq!(narrowed.rule_for(&w), p.rule_for(&w));
        prop_assert!(narrowed.rules.iter().all(|r| !r.disabled && r.scope.matches(&w)));
        if let Some(r) = p.rule_for(&w) {
            let first = p.rules.iter().position(|x| x == r).expect("from the list");
            prop_assert!(p.rules[..first].iter().all(|x| x.disabled || !x.scope.matches(&w)));
        }
    }

    #[test]
    fn literal_denied_entries_are_always_violations(
        e in effect(), name in "[a-z][a-z0-9_-]{0,6}(\\.[a-z0-9-]{1,5}){0,2}", dir in "(/[a-z]{1,6}){0,3}",
    ) {
        let mut r = Rule::new("r");
        r.processes = ProcessSection { effect: e, allowed: vec![], denied: pats(&[&name]) };
        r.dns = DnsSection { effect: e, allowed: vec![], denied: pats(&[&name]) };
        let expected = (e != Effect::Disable).then(|| Violation {
            effect: e,
            rule: "r".to_owned(),
            reason: Reason::ExplicitlyDenied,
        });
        prop_assert_eq!(r.check_process(&format!("{dir}/{name}")), expected.clone());
        prop_assert_eq!(r.check_domain(&format!("{}.", name.to_uppercase())), expected);
    }

    #[test]
    fn mapped_ipv6_gets_the_same_verdict_as_ipv4(p in policy(), a in any::<u32>(), port in port()) {
        let v4 = Ipv4Addr::from(a);
        for r in &p.rules {
            prop_assert_eq!(
                r.check_outbound(IpAddr::V4(v4), port),
                r.check_outbound(IpAddr::V6(v4.to_ipv6_mapped()), port)
            );
        }
    }

    #[test]
    fn the_allow_list_admits_what_it_lists(ports in vec(port(), 1..5), probe in port()) {
        let mut r = Rule::new("r");
        r.network.effect = Effect::Prevent;
        r.network.allowed_listening_ports = ports.clone();
        let verdict = r.check_listen(probe);
        prop_assert_eq!(verdict.is_none(), ports.contains(&probe));
        for p in ports {
            prop_assert_eq!(r.check_listen(p), None);
        }
    }
}
