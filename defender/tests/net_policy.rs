//! Network policy on real processes: a child under a real seccomp listener filter makes real
//! connect/send/bind/listen calls (glibc `getent`, a C probe), the `NetGuard` decides and
//! emulates them. Loopback only: every DNS answer comes from a responder the test starts on
//! 127.B.53.x:53 (see `ns`) or [::1]:53, never from the system resolver.

mod net_harness;

use net_harness::*;
use protect::audit::AuditKind;
use protect::policy::Effect;

const DNS_PREVENT: &str = r#"{"effect":"prevent","denied":["yahoo.com","*.evil.example"]}"#;
const DNS_ALERT: &str = r#"{"effect":"alert","denied":["yahoo.com"]}"#;
const NET_OFF: &str = r#"{"effect":"disable"}"#;
const RECORDS: &[(&str, &str)] = &[
    ("google.com", "127.0.0.7"),
    ("google.com", "::1"),
    ("yahoo.com", "127.0.0.8"),
    ("www.evil.example", "127.0.0.9"),
];

#[allow(clippy::unwrap_used)]
fn responder(last_octet: u8) -> Responder {
    Responder::start(ns(last_octet), RECORDS, &["big.example"])
}

#[test]
fn glibc_lookup_of_a_denied_name_fails_and_never_reaches_the_resolver() {
    let s = Scratch::new("glibc-prevent");
    let r = responder(1);
    let script = with_resolv_conf(
        &s,
        r.addr.ip(),
        "getent ahosts google.com; echo rc=$?; getent ahosts yahoo.com; echo rc=$?; getent ahosts WWW.Evil.Example.; echo rc=$?",
    );
    let o = run(policy(DNS_PREVENT, NET_OFF), &s, &script);
    assert!(o.output.contains("127.0.0.7"), "{}", o.output);
    assert!(o.output.contains("::1"), "{}", o.output);
    let rcs: Vec<&str> = o.output.lines().filter(|l| l.starts_with("rc=")).collect();
    assert_eq!(rcs, ["rc=0", "rc=2", "rc=2"], "{}", o.output);
    assert!(
        !o.output.contains("127.0.0.8") && !o.output.contains("127.0.0.9"),
        "{}",
        o.output
    );
    let asked = r.asked();
    assert!(asked.iter().any(|n| n == "google.com"), "{asked:?}");
    assert!(
        !asked
            .iter()
            .any(|n| n.contains("yahoo") || n.contains("evil")),
        "{asked:?}"
    );
    let msgs = o.messages();
    assert!(
        msgs.contains(&"DNS resolution of suspicious name yahoo.com".to_string()),
        "{msgs:?}"
    );
    assert!(
        msgs.contains(&"DNS resolution of suspicious name www.evil.example".to_string()),
        "{msgs:?}"
    );
    assert!(o
        .events
        .iter()
        .all(|e| e.kind == AuditKind::Dns && e.effect == Effect::Prevent && e.rule == "net-rule"));
    assert!(o.events.len() >= 2, "{:?}", o.events);
}

#[test]
fn glibc_lookup_under_alert_resolves_and_audits() {
    let s = Scratch::new("glibc-alert");
    let r = responder(2);
    let script = with_resolv_conf(&s, r.addr.ip(), "getent ahosts yahoo.com; echo rc=$?");
    let o = run(policy(DNS_ALERT, NET_OFF), &s, &script);
    assert!(
        o.output.contains("127.0.0.8") && o.output.contains("rc=0"),
        "{}",
        o.output
    );
    assert!(r.asked().iter().any(|n| n == "yahoo.com"));
    assert!(!o.events.is_empty());
    for e in &o.events {
        assert_eq!((e.kind, e.effect), (AuditKind::Dns, Effect::Alert));
        assert_eq!(e.message, "DNS resolution of suspicious name yahoo.com");
        assert_eq!(e.ip, Some(ns(2).ip().to_string()));
    }
}

#[test]
fn glibc_falls_back_to_tcp_through_the_stub() {
    let s = Scratch::new("glibc-tcp");
    let r = Responder::start(
        ns(3),
        &[("big.example", "127.0.0.11"), ("yahoo.com", "127.0.0.8")],
        &["big.example", "yahoo.com"],
    );
    let script = with_resolv_conf(&s, r.addr.ip(), "getent ahostsv4 big.example; echo rc=$?");
    let o = run(policy(DNS_PREVENT, NET_OFF), &s, &script);
    assert!(
        o.output.contains("127.0.0.11") && o.output.contains("rc=0"),
        "{}",
        o.output
    );
    assert!(o.events.is_empty(), "{:?}", o.events);
}

#[test]
fn musl_style_unconnected_sendto_is_decided_on_its_payload() {
    let s = Scratch::new("musl");
    let r = responder(4);
    let p = probe().display();
    let script = format!(
        "{p} dns-sendto {n} 53 google.com; {p} dns-sendto {n} 53 yahoo.com",
        n = r.addr.ip()
    );
    let o = run(policy(DNS_PREVENT, NET_OFF), &s, &script);
    let lines: Vec<&str> = o.output.lines().collect();
    assert_eq!(lines, ["rcode 0 answers 1", "err EPERM"], "{}", o.output);
    assert_eq!(r.asked(), ["google.com"]);
    assert_eq!(
        o.messages(),
        ["DNS resolution of suspicious name yahoo.com"]
    );
}

#[test]
fn go_style_connect_then_write_and_tcp_queries_go_through_the_stub() {
    let s = Scratch::new("go-tcp");
    let r = responder(5);
    let p = probe().display();
    let script = format!(
        "{p} dns-connect-write {n} 53 google.com; {p} dns-connect-write {n} 53 yahoo.com; \
         {p} dns-tcp {n} 53 google.com; {p} dns-tcp {n} 53 Yahoo.Com; \
         {p} dns-tcp-nb {n} 53 google.com; {p} dns-tcp-nb {n} 53 yahoo.com",
        n = r.addr.ip()
    );
    let o = run(policy(DNS_PREVENT, NET_OFF), &s, &script);
    let lines: Vec<&str> = o.output.lines().collect();
    assert_eq!(
        lines,
        [
            "rcode 0 answers 1",
            "rcode 3 answers 0",
            "rcode 0 answers 1",
            "rcode 3 answers 0",
            "rcode 0 answers 1",
            "rcode 3 answers 0"
        ],
        "{}",
        o.output
    );
    assert_eq!(r.asked(), ["google.com", "google.com", "google.com"]);
    assert_eq!(
        o.messages(),
        vec!["DNS resolution of suspicious name yahoo.com"; 3]
    );
}

#[test]
fn outbound_tcp_connects_blocking_and_nonblocking() {
    let s = Scratch::new("connect");
    let allowed = Counter::tcp("127.0.0.1:0");
    let denied = Counter::tcp("127.0.0.90:0");
    let net = r#"{"effect":"prevent","denied_outbound":["127.0.0.90"]}"#;
    let p = probe().display();
    let (a, d) = (allowed.addr, denied.addr);
    let script = format!(
        "{p} connect {} {}; {p} connect {} {}; {p} connect-nb {} {}; {p} connect-nb {} {}",
        a.ip(),
        a.port(),
        d.ip(),
        d.port(),
        a.ip(),
        a.port(),
        d.ip(),
        d.port()
    );
    let o = run(policy(r#"{"effect":"disable"}"#, net), &s, &script);
    let lines: Vec<&str> = o.output.lines().collect();
    assert_eq!(lines[0], "ok 0", "{}", o.output);
    assert_eq!(lines[1], "err EPERM", "{}", o.output);
    assert!(
        lines[2] == "err EINPROGRESS" || lines[2] == "ok 0",
        "{}",
        o.output
    );
    assert_eq!(lines[3], "err EPERM", "{}", o.output);
    assert_eq!(allowed.seen().len(), 2);
    assert!(denied.seen().is_empty());
    let expected = format!("Outbound connection to {d} is explicitly blocked in the runtime rule");
    assert_eq!(o.messages(), vec![expected; 2]);
    let e = &o.events[0];
    assert_eq!(
        (e.kind, e.effect, e.port),
        (AuditKind::Network, Effect::Prevent, Some(d.port()))
    );
    assert_eq!(e.ip.as_deref(), Some("127.0.0.90"));
}

#[test]
fn ipv6_and_v4_mapped_destinations() {
    let s = Scratch::new("ipv6");
    let v6 = Counter::tcp("[::1]:0");
    let mapped = Counter::tcp("127.0.0.91:0");
    let net = r#"{"effect":"prevent","denied_outbound":["::1","127.0.0.91"]}"#;
    let p = probe().display();
    let script = format!(
        "{p} connect ::1 {}; {p} connect ::ffff:127.0.0.91 {}",
        v6.addr.port(),
        mapped.addr.port()
    );
    let o = run(policy(NET_OFF, net), &s, &script);
    assert_eq!(
        o.output.lines().collect::<Vec<_>>(),
        ["err EPERM", "err EPERM"],
        "{}",
        o.output
    );
    assert!(v6.seen().is_empty() && mapped.seen().is_empty());
    assert_eq!(
        o.messages(),
        [
            format!(
                "Outbound connection to [::1]:{} is explicitly blocked in the runtime rule",
                v6.addr.port()
            ),
            format!(
                "Outbound connection to 127.0.0.91:{} is explicitly blocked in the runtime rule",
                mapped.addr.port()
            ),
        ]
    );
}

#[test]
fn udp_sendto_sendmsg_sendmmsg_to_denied_hosts_send_nothing() {
    let s = Scratch::new("udp");
    let ok = Counter::udp("127.0.0.1:0");
    let bad = Counter::udp("127.0.0.92:0");
    let net = r#"{"effect":"prevent","denied_outbound":["127.0.0.92"]}"#;
    let p = probe().display();
    let (a, b) = (ok.addr, bad.addr);
    let script = format!(
        "{p} sendto {bi} {bp}; {p} sendmsg {bi} {bp}; {p} sendmsg {ai} {ap}; \
         {p} sendmmsg {ai} {ap} {bi} {bp}; {p} sendmmsg {bi} {bp} {ai} {ap}",
        ai = a.ip(),
        ap = a.port(),
        bi = b.ip(),
        bp = b.port()
    );
    let o = run(policy(NET_OFF, net), &s, &script);
    let lines: Vec<&str> = o.output.lines().collect();
    assert_eq!(
        lines,
        [
            "err EPERM",
            "err EPERM",
            "ok 5",
            "ok 1 lens 5 0",
            "err EPERM"
        ],
        "{}",
        o.output
    );
    assert_eq!(ok.seen(), [b"hello".to_vec(), b"first".to_vec()]);
    assert!(bad.seen().is_empty());
    assert_eq!(o.events.len(), 4, "{:?}", o.events);
}

#[test]
fn tcp_fast_open_to_a_denied_host_sends_no_syn() {
    let s = Scratch::new("tfo");
    let ok = Counter::tcp("127.0.0.1:0");
    let bad = Counter::tcp("127.0.0.93:0");
    let net = r#"{"effect":"prevent","denied_outbound":["127.0.0.93"]}"#;
    let p = probe().display();
    let script = format!(
        "{p} fastopen {} {}; {p} fastopen {} {}",
        bad.addr.ip(),
        bad.addr.port(),
        ok.addr.ip(),
        ok.addr.port()
    );
    let o = run(policy(NET_OFF, net), &s, &script);
    assert_eq!(
        o.output.lines().collect::<Vec<_>>(),
        ["err EPERM", "ok 8"],
        "{}",
        o.output
    );
    assert!(bad.seen().is_empty());
    assert_eq!(ok.seen(), [b"tfo-data".to_vec()]);
}

#[test]
fn a_thread_racing_the_address_never_reaches_the_denied_host() {
    let s = Scratch::new("race");
    let bad = Counter::tcp("127.0.0.94:0");
    let ok = Counter::tcp(&format!("127.0.0.1:{}", bad.addr.port()));
    let net = r#"{"effect":"prevent","denied_outbound":["127.0.0.94"]}"#;
    let p = probe().display();
    let port = bad.addr.port();
    let script = format!("{p} race 127.0.0.1 {port} 127.0.0.94 {port} 300");
    let o = run(policy(NET_OFF, net), &s, &script);
    let f: Vec<&str> = o.output.split_whitespace().collect();
    assert_eq!(
        (f.len(), f[0], f[2], f[4]),
        (6, "ok", "denied", "other"),
        "{}",
        o.output
    );
    let (oks, denied, other): (usize, usize, usize) = (
        f[1].parse().unwrap(),
        f[3].parse().unwrap(),
        f[5].parse().unwrap(),
    );
    assert_eq!((oks + denied, other), (300, 0), "{}", o.output);
    assert!(
        bad.seen().is_empty(),
        "a connection reached the denied host"
    );
    assert_eq!(ok.seen().len(), oks);
    assert_eq!(o.events.len(), denied);
}

#[test]
fn bind_and_listen_on_ports_outside_the_allowed_list_fail() {
    let s = Scratch::new("listen");
    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let allowed_port = free.local_addr().unwrap().port();
    drop(free);
    let net = format!(r#"{{"effect":"prevent","allowed_listening_ports":[{allowed_port}]}}"#);
    let p = probe().display();
    let script = format!(
        "{p} bind 127.0.0.1 {allowed_port}; {p} bind 127.0.0.1 {}; {p} listen-any 127.0.0.1 0",
        allowed_port ^ 1
    );
    let o = run(policy(NET_OFF, &net), &s, &script);
    assert_eq!(
        o.output.lines().collect::<Vec<_>>(),
        ["listen ok 0", "bind err EPERM", "err EPERM"],
        "{}",
        o.output
    );
    assert_eq!(o.events.len(), 2);
    assert!(o.events.iter().all(|e| e.kind == AuditKind::Listen));
    assert_eq!(
        o.events[0].message,
        format!(
            "Listening on port {} is not in the allowed list of the runtime rule",
            allowed_port ^ 1
        )
    );
}

#[test]
fn alert_lets_connections_through_and_names_the_resolved_domain() {
    let s = Scratch::new("alert-connect");
    let r = responder(6);
    let target = Counter::tcp("127.0.0.7:0");
    let net = r#"{"effect":"alert","denied_outbound":["127.0.0.7"]}"#;
    let p = probe().display();
    let inner = format!(
        "getent ahostsv4 google.com >/dev/null; {p} connect 127.0.0.7 {}",
        target.addr.port()
    );
    let script = with_resolv_conf(&s, r.addr.ip(), &inner);
    let o = run(policy(NET_OFF, net), &s, &script);
    assert_eq!(o.output.trim(), "ok 0");
    assert_eq!(target.seen().len(), 1);
    assert_eq!(
        o.messages(),
        [format!("Outbound connection to 127.0.0.7:{} (google.com) is explicitly blocked in the runtime rule", target.addr.port())]
    );
    assert_eq!(
        (o.events[0].effect, o.events[0].domain.as_deref()),
        (Effect::Alert, Some("google.com"))
    );
}

#[test]
fn blocking_connects_to_a_silent_host_do_not_stall_other_calls() {
    let s = Scratch::new("stall");
    let good = Counter::tcp("127.0.0.1:0");
    let p = probe().display();
    // 12 threads hang in connect (full backlog, 3 s send timeout), more than the pool starts with.
    let script = format!("{p} stall 127.0.0.88 0 12 127.0.0.1 {}", good.addr.port());
    let o = run(
        policy(
            NET_OFF,
            r#"{"effect":"prevent","denied_outbound":["203.0.113.0/24"]}"#,
        ),
        &s,
        &script,
    );
    assert_eq!(o.output.trim(), "ok fast", "{}", o.output);
    assert_eq!(good.seen().len(), 1);
}

#[test]
fn a_thread_racing_the_query_name_never_gets_a_denied_name_out() {
    let s = Scratch::new("dns-race");
    let r = Responder::start(ns(7), &[("good.test", "127.0.0.12")], &[]);
    let p = probe().display();
    let script = format!("{p} dns-race {} 53 good.test evil.test 400", r.addr.ip());
    let o = run(
        policy(r#"{"effect":"prevent","denied":["evil.test"]}"#, NET_OFF),
        &s,
        &script,
    );
    let f: Vec<&str> = o.output.split_whitespace().collect();
    assert_eq!(
        (f.len(), f[0], f[2], f[4], f[5]),
        (6, "ok", "denied", "other", "0"),
        "{}",
        o.output
    );
    let (oks, denied): (usize, usize) = (f[1].parse().unwrap(), f[3].parse().unwrap());
    assert_eq!(oks + denied, 400);
    settle(|| r.asked().len());
    let asked = r.asked();
    assert!(
        !asked.iter().any(|n| n == "evil.test"),
        "a denied name reached the resolver"
    );
    assert_eq!(asked.len(), oks);
    assert_eq!(o.events.len(), denied);
}

#[test]
fn ipv6_and_v4_mapped_nameservers_go_through_the_stub() {
    let s = Scratch::new("dns-v6");
    let r = Responder::start("[::1]:53".parse().unwrap(), RECORDS, &[]);
    let v4 = responder(8);
    let p = probe().display();
    let script = format!(
        "{p} dns-connect-write ::1 53 google.com; {p} dns-connect-write ::1 53 yahoo.com; \
         {p} dns-sendto ::1 53 yahoo.com; {p} dns-tcp ::1 53 yahoo.com; \
         {p} dns-connect-write ::ffff:{n} 53 google.com; {p} dns-connect-write ::ffff:{n} 53 yahoo.com",
        n = v4.addr.ip()
    );
    let o = run(policy(DNS_PREVENT, NET_OFF), &s, &script);
    let lines: Vec<&str> = o.output.lines().collect();
    assert_eq!(
        lines,
        [
            "rcode 0 answers 1",
            "rcode 3 answers 0",
            "err EPERM",
            "rcode 3 answers 0",
            "rcode 0 answers 1",
            "rcode 3 answers 0"
        ],
        "{}",
        o.output
    );
    assert_eq!(r.asked(), ["google.com"]);
    assert_eq!(v4.asked(), ["google.com"]);
    assert_eq!(o.events.len(), 4);
    assert_eq!(o.events[0].ip.as_deref(), Some("::1"));
    assert_eq!(o.events[3].ip, Some(v4.addr.ip().to_string()));
}

#[test]
fn tcp_sendmsg_is_emulated_without_losing_or_reordering_bytes() {
    let s = Scratch::new("tcp-sendmsg");
    let sink = Counter::tcp("127.0.0.1:0");
    let p = probe().display();
    let size = 3 * 1024 * 1024 + 17;
    let script = format!("{p} tcp-sendmsg 127.0.0.1 {} {size}", sink.addr.port());
    let o = run(
        policy(
            NET_OFF,
            r#"{"effect":"prevent","denied_outbound":["203.0.113.0/24"]}"#,
        ),
        &s,
        &script,
    );
    assert_eq!(o.output.trim(), format!("ok {size}"));
    let got = sink.seen();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].len(), size);
    assert!(
        got[0]
            .iter()
            .enumerate()
            .all(|(i, &b)| b == (i % 251) as u8),
        "bytes reordered or corrupted"
    );
}

#[test]
fn a_nameserver_that_is_down_fails_the_lookup_without_wedging_the_stub() {
    let s = Scratch::new("dns-down");
    let live = responder(9);
    let dead = ns(10).ip();
    let p = probe().display();
    let script = format!(
        "{p} dns-connect-write {dead} 53 google.com; {p} dns-connect-write {n} 53 google.com; \
         {p} dns-connect-write {n} 53 yahoo.com",
        n = live.addr.ip()
    );
    let started = std::time::Instant::now();
    let o = run(policy(DNS_PREVENT, NET_OFF), &s, &script);
    let lines: Vec<&str> = o.output.lines().collect();
    assert_eq!(
        lines,
        ["err EAGAIN", "rcode 0 answers 1", "rcode 3 answers 0"],
        "{}",
        o.output
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
    assert_eq!(live.asked(), ["google.com"]);
}

#[test]
fn emulated_calls_never_lend_the_app_the_defenders_privileges() {
    let s = Scratch::new("privileges");
    let sink = Counter::udp("127.0.0.1:0");
    let p = probe().display();
    let nobody =
        "setpriv --reuid 65534 --regid 65534 --clear-groups --inh-caps=-all --bounding-set=-all";
    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let high = free.local_addr().unwrap().port();
    drop(free);
    // The defender runs as root: a low port bind or an SO_MARK done with its credentials would
    // succeed where the unprivileged app itself fails.
    let script = format!(
        "{nobody} {p} bind 127.0.0.1 81; {nobody} {p} sendmsg-mark 127.0.0.1 {port}; \
         {nobody} {p} bind 127.0.0.1 {high}; {p} sendmsg-mark 127.0.0.1 {port}",
        port = sink.addr.port()
    );
    let o = run(
        policy(
            NET_OFF,
            r#"{"effect":"prevent","denied_listening_ports":[4444]}"#,
        ),
        &s,
        &script,
    );
    assert_eq!(
        o.output.lines().collect::<Vec<_>>(),
        ["bind err EACCES", "err EPERM", "listen ok 0", "ok 6"],
        "{}",
        o.output
    );
    // Only the root app's marked datagram went out.
    assert_eq!(sink.seen(), [b"marked".to_vec()]);
    assert!(o.events.is_empty(), "{:?}", o.events);
}
