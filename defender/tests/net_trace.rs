//! The network policy under the ptrace fallback backend: a real traced child, its seccomp
//! filter stopping the network syscalls for a tracer that asks `NetGuard::precheck`. One test
//! function runs every scenario in turn, because the tracer waits for any child.
//! Loopback only; the nameserver is a responder started here on 127.B.53.x:53 (see `ns`).

mod net_harness;

use net_harness::*;
use protect::audit::AuditKind;
use protect::policy::Effect;

const RECORDS: &[(&str, &str)] = &[("google.com", "127.0.0.7"), ("yahoo.com", "127.0.0.8")];

#[test]
fn ptrace_backend_decides_at_the_seccomp_stop() {
    let p = probe().display().to_string();
    let dns = r#"{"effect":"prevent","denied":["yahoo.com"]}"#;

    // glibc: connect + sendmmsg on the resolver socket, judged on the queries' payload.
    let s = Scratch::new("trace-glibc");
    let r = Responder::start(ns(30), RECORDS, &[]);
    let script = with_resolv_conf(
        &s,
        r.addr.ip(),
        "getent ahosts yahoo.com; echo rc=$?; getent hosts yahoo.com; echo rc=$?; \
         getent ahostsv4 google.com; echo rc=$?",
    );
    let o = run_traced(policy(dns, r#"{"effect":"disable"}"#), &s, &script);
    let rcs: Vec<&str> = o.output.lines().filter(|l| l.starts_with("rc=")).collect();
    assert_eq!(rcs, ["rc=2", "rc=2", "rc=0"], "{}", o.output);
    assert!(o.output.contains("127.0.0.7"), "{}", o.output);
    assert!(
        !r.asked().iter().any(|n| n == "yahoo.com"),
        "{:?}",
        r.asked()
    );
    assert!(o
        .events
        .iter()
        .all(|e| e.kind == AuditKind::Dns
            && e.message == "DNS resolution of suspicious name yahoo.com"));
    assert!(!o.events.is_empty());

    // musl: unconnected sendto, judged on its payload.
    let s = Scratch::new("trace-musl");
    let script = format!(
        "{p} dns-sendto {n} 53 yahoo.com; {p} dns-sendto {n} 53 google.com",
        n = r.addr.ip()
    );
    let o = run_traced(policy(dns, r#"{"effect":"disable"}"#), &s, &script);
    assert_eq!(o.output, "err EPERM\nrcode 0 answers 1\n");

    // Outbound: connect, sendto, sendmsg, sendmmsg, fast open to a denied host; IPv6; listen.
    let s = Scratch::new("trace-outbound");
    let bad_tcp = Counter::tcp("127.0.0.87:0");
    let bad_udp = Counter::udp("127.0.0.87:0");
    let ok_udp = Counter::udp("127.0.0.1:0");
    let v6 = Counter::tcp("[::1]:0");
    let (bt, bu, ou) = (bad_tcp.addr.port(), bad_udp.addr.port(), ok_udp.addr.port());
    let script = format!(
        "{p} connect 127.0.0.87 {bt}; {p} sendto 127.0.0.87 {bu}; {p} sendmsg 127.0.0.87 {bu}; \
         {p} sendmmsg 127.0.0.1 {ou} 127.0.0.87 {bu}; {p} fastopen 127.0.0.87 {bt}; {p} connect ::1 {}; \
         {p} sendto 127.0.0.1 {ou}; {p} bind 127.0.0.1 4444",
        v6.addr.port()
    );
    let net = r#"{"effect":"prevent","denied_outbound":["127.0.0.87","::1"],"denied_listening_ports":[4444]}"#;
    let o = run_traced(policy(r#"{"effect":"disable"}"#, net), &s, &script);
    let lines: Vec<&str> = o.output.lines().collect();
    assert_eq!(
        lines,
        [
            "err EPERM",
            "err EPERM",
            "err EPERM",
            "err EPERM",
            "err EPERM",
            "err EPERM",
            "ok 5",
            "bind err EPERM"
        ],
        "{}",
        o.output
    );
    assert!(bad_tcp.seen().is_empty() && bad_udp.seen().is_empty() && v6.seen().is_empty());
    assert_eq!(ok_udp.seen(), [b"hello".to_vec()]);
    assert_eq!(o.events.len(), 7, "{:?}", o.events);
    assert_eq!(
        o.events.last().map(|e| (e.kind, e.port)),
        Some((AuditKind::Listen, Some(4444)))
    );

    // Alert lets the call through and reports it.
    let s = Scratch::new("trace-alert");
    let target = Counter::tcp("127.0.0.86:0");
    let script = format!("{p} connect 127.0.0.86 {}", target.addr.port());
    let o = run_traced(
        policy(
            r#"{"effect":"disable"}"#,
            r#"{"effect":"alert","denied_outbound":["127.0.0.86"]}"#,
        ),
        &s,
        &script,
    );
    assert_eq!(o.output, "ok 0\n");
    assert_eq!(target.seen().len(), 1);
    assert_eq!(
        o.events.iter().map(|e| e.effect).collect::<Vec<_>>(),
        [Effect::Alert]
    );
}
