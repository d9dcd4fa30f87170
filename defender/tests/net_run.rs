//! The network policy through the real `defender run` (notify backend): the seed's DNS scenario
//! with glibc `getent`, audits in `--audit-log`, alert, and `block` stopping the app tree.
//! Loopback only; the nameserver is a responder this test starts on 127.B.53.x:53 (see `ns`).

#![allow(clippy::unwrap_used)] // test helpers: a failed set-up step should fail the test loudly

mod net_harness;

use std::process::Command;

use net_harness::*;

const DEFENDER: &str = env!("CARGO_BIN_EXE_defender");

struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
    audits: Vec<serde_json::Value>,
}

impl Run {
    fn messages(&self) -> Vec<String> {
        self.audits
            .iter()
            .map(|a| a["message"].as_str().unwrap_or_default().to_string())
            .collect()
    }
}

fn defender_run(s: &Scratch, dns: &str, network: &str, script: &str) -> Run {
    defender_run_with("notify", s, dns, network, script)
}

fn defender_run_with(backend: &str, s: &Scratch, dns: &str, network: &str, script: &str) -> Run {
    let policy = format!(
        r#"{{"revision":3,"rules":[{{"name":"seed-rule","scope":{{"tasks":["twistlock-*"]}},"dns":{dns},"network":{network}}}]}}"#
    );
    std::fs::write(s.path("policy.json"), policy).unwrap();
    let out = Command::new(DEFENDER)
        .args(["run", "--backend", backend, "--policy-file"])
        .arg(s.path("policy.json"))
        .arg("--audit-log")
        .arg(s.path("audit.jsonl"))
        .args([
            "--task",
            "twistlock-fargate-task",
            "--container",
            "app",
            "--image",
            "alpine:3",
        ])
        .args(["--", "/bin/sh", "-c", script])
        .output()
        .unwrap();
    let audits = std::fs::read_to_string(s.path("audit.jsonl"))
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    Run {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        audits,
    }
}

#[test]
fn seed_yahoo_lookup_fails_under_prevent_and_google_resolves() {
    let s = Scratch::new("run-seed");
    let r = Responder::start(
        ns(20),
        &[("google.com", "127.0.0.7"), ("yahoo.com", "127.0.0.8")],
        &[],
    );
    let script = with_resolv_conf(
        &s,
        r.addr.ip(),
        "getent ahostsv4 yahoo.com; echo yahoo=$?; getent ahostsv4 google.com; echo google=$?",
    );
    let run = defender_run(
        &s,
        r#"{"effect":"prevent","denied":["yahoo.com"]}"#,
        r#"{"effect":"disable"}"#,
        &script,
    );
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert!(run.stdout.contains("yahoo=2"), "{}", run.stdout);
    assert!(
        run.stdout.contains("127.0.0.7") && run.stdout.contains("google=0"),
        "{}",
        run.stdout
    );
    assert!(
        !r.asked().iter().any(|n| n == "yahoo.com"),
        "{:?}",
        r.asked()
    );
    assert!(!run.audits.is_empty());
    for a in &run.audits {
        assert_eq!(a["message"], "DNS resolution of suspicious name yahoo.com");
        assert_eq!(
            (a["kind"].as_str(), a["effect"].as_str()),
            (Some("dns"), Some("prevent"))
        );
        assert_eq!(
            (a["rule"].as_str(), a["domain"].as_str()),
            (Some("seed-rule"), Some("yahoo.com"))
        );
        assert_eq!(
            (a["task_family"].as_str(), a["container"].as_str()),
            (Some("twistlock-fargate-task"), Some("app"))
        );
        assert!(a["pid"].as_u64().is_some_and(|p| p > 0));
    }
}

#[test]
fn alert_resolves_and_audits_the_outbound_connection_with_its_name() {
    let s = Scratch::new("run-alert");
    let r = Responder::start(ns(21), &[("yahoo.com", "127.0.0.8")], &[]);
    let target = Counter::tcp("127.0.0.8:0");
    let p = probe().display();
    let inner = format!(
        "getent ahostsv4 yahoo.com >/dev/null; echo rc=$?; {p} connect 127.0.0.8 {}",
        target.addr.port()
    );
    let script = with_resolv_conf(&s, r.addr.ip(), &inner);
    let run = defender_run(
        &s,
        r#"{"effect":"alert","denied":["yahoo.com"]}"#,
        r#"{"effect":"alert","denied_outbound":["127.0.0.8"]}"#,
        &script,
    );
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert_eq!(run.stdout, "rc=0\nok 0\n");
    assert_eq!(target.seen().len(), 1);
    let msgs = run.messages();
    assert!(
        msgs.contains(&"DNS resolution of suspicious name yahoo.com".to_string()),
        "{msgs:?}"
    );
    let outbound = format!(
        "Outbound connection to 127.0.0.8:{} (yahoo.com) is explicitly blocked in the runtime rule",
        target.addr.port()
    );
    assert_eq!(msgs.last(), Some(&outbound), "{msgs:?}");
    let last = run.audits.last().unwrap();
    assert_eq!(
        (last["kind"].as_str(), last["effect"].as_str()),
        (Some("network"), Some("alert"))
    );
    assert_eq!(
        (last["ip"].as_str(), last["port"].as_u64()),
        (Some("127.0.0.8"), Some(u64::from(target.addr.port())))
    );
}

#[test]
fn block_stops_the_app_tree_on_a_denied_connection() {
    let s = Scratch::new("run-block");
    let target = Counter::tcp("127.0.0.89:0");
    let p = probe().display();
    let script = format!(
        "{p} connect 127.0.0.89 {}; echo still-running; sleep 5; echo survived",
        target.addr.port()
    );
    let run = defender_run(
        &s,
        r#"{"effect":"disable"}"#,
        r#"{"effect":"block","denied_outbound":["127.0.0.89"]}"#,
        &script,
    );
    assert_ne!(run.code, Some(0), "{}", run.stderr);
    assert!(!run.stdout.contains("survived"), "{}", run.stdout);
    assert!(target.seen().is_empty());
    assert_eq!(run.audits.len(), 1, "{:?}", run.audits);
    assert_eq!(
        (
            run.audits[0]["kind"].as_str(),
            run.audits[0]["effect"].as_str()
        ),
        (Some("network"), Some("block"))
    );
}

#[test]
fn listening_on_a_denied_port_fails() {
    let s = Scratch::new("run-listen");
    let p = probe().display();
    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = free.local_addr().unwrap().port();
    drop(free);
    let script = format!("{p} bind 127.0.0.1 {port}");
    let net = format!(r#"{{"effect":"prevent","denied_listening_ports":[{port}]}}"#);
    let run = defender_run(&s, r#"{"effect":"disable"}"#, &net, &script);
    assert_eq!(run.stdout, "bind err EPERM\n", "{}", run.stderr);
    assert_eq!(
        run.messages(),
        [format!(
            "Listening on port {port} is explicitly blocked in the runtime rule"
        )]
    );
    assert_eq!(run.audits[0]["kind"], "listen");
}

#[test]
fn seed_under_the_ptrace_backend_too() {
    let s = Scratch::new("run-ptrace");
    let r = Responder::start(
        ns(22),
        &[("google.com", "127.0.0.7"), ("yahoo.com", "127.0.0.8")],
        &[],
    );
    let script = with_resolv_conf(
        &s,
        r.addr.ip(),
        "getent hosts yahoo.com; echo yahoo=$?; getent ahostsv4 yahoo.com; echo yahoo=$?; getent ahostsv4 google.com; echo google=$?",
    );
    let run = defender_run_with(
        "ptrace",
        &s,
        r#"{"effect":"prevent","denied":["yahoo.com"]}"#,
        r#"{"effect":"disable"}"#,
        &script,
    );
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert!(run.stdout.contains("yahoo=2\nyahoo=2\n"), "{}", run.stdout);
    assert!(
        run.stdout.contains("127.0.0.7") && run.stdout.contains("google=0"),
        "{}",
        run.stdout
    );
    assert!(
        !r.asked().iter().any(|n| n == "yahoo.com"),
        "{:?}",
        r.asked()
    );
    assert!(!run.audits.is_empty());
    assert!(
        run.messages()
            .iter()
            .all(|m| m == "DNS resolution of suspicious name yahoo.com"),
        "{:?}",
        run.messages()
    );
}

/// The canonical path of `p` (`/bin/sh` -> `/usr/bin/dash`), as `/proc/PID/exe` names it.
fn canonical(p: impl AsRef<std::path::Path>) -> String {
    std::fs::canonicalize(p)
        .unwrap()
        .to_string_lossy()
        .into_owned()
}

/// The program `name` found on `PATH`, canonical.
fn on_path(name: &str) -> String {
    let out = Command::new("/bin/sh")
        .args(["-c", &format!("command -v {name}")])
        .output()
        .unwrap();
    canonical(String::from_utf8(out.stdout).unwrap().trim())
}

/// A DNS lookup through glibc (the stub under notify), a musl-style query, an outbound connect
/// and a listen, each reported under `alert`: every audit names the program that made the call,
/// its parent (the shell) and its command line.
fn audits_name_the_caller(backend: &str, octet: u8) {
    let s = Scratch::new(&format!("run-caller-{backend}"));
    let r = Responder::start(ns(octet), &[("yahoo.com", "127.0.0.8")], &[]);
    let target = Counter::tcp("127.0.0.8:0");
    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let lport = free.local_addr().unwrap().port();
    drop(free);
    let p = probe().display().to_string();
    let (getent, dns_sendto, connect, bind) = (
        "getent ahostsv4 yahoo.com".to_string(),
        format!("{p} dns-sendto {} 53 yahoo.com", r.addr.ip()),
        format!("{p} connect 127.0.0.8 {}", target.addr.port()),
        format!("{p} bind 127.0.0.1 {lport}"),
    );
    // `echo` last: the shell stays the parent of every program (dash execs a last command).
    let inner = format!("{getent} >/dev/null; {dns_sendto}; {connect}; {bind}; echo end");
    let script = with_resolv_conf(&s, r.addr.ip(), &inner);
    let net = format!(
        r#"{{"effect":"alert","denied_outbound":["127.0.0.8"],"denied_listening_ports":[{lport}]}}"#
    );
    let run = defender_run_with(
        backend,
        &s,
        r#"{"effect":"alert","denied":["yahoo.com"]}"#,
        &net,
        &script,
    );
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert_eq!(
        run.stdout, "rcode 0 answers 1\nok 0\nlisten ok 0\nend\n",
        "{}",
        run.stderr
    );
    let field = |a: &serde_json::Value, f: &str| a[f].as_str().unwrap_or("<absent>").to_string();
    let mut seen: Vec<[String; 4]> = run
        .audits
        .iter()
        .map(|a| ["kind", "process", "parent", "command"].map(|f| field(a, f)))
        .collect();
    seen.sort();
    seen.dedup();
    let (sh, probe) = (canonical("/bin/sh"), canonical(probe()));
    let mut expected = vec![
        ["dns".into(), on_path("getent"), sh.clone(), getent],
        ["dns".into(), probe.clone(), sh.clone(), dns_sendto],
        ["listen".into(), probe.clone(), sh.clone(), bind],
        ["network".into(), probe, sh, connect],
    ];
    expected.sort();
    assert_eq!(seen, expected, "{:#?}", run.audits);
}

#[test]
fn audits_name_the_caller_under_notify() {
    audits_name_the_caller("notify", 23);
}

#[test]
fn audits_name_the_caller_under_ptrace() {
    audits_name_the_caller("ptrace", 24);
}

/// The numbers after `key ` in `out`, in order (`pid 12`, `tid 13` lines of `probe thread`).
fn numbers(out: &str, key: &str) -> Vec<u64> {
    out.lines()
        .filter_map(|l| l.strip_prefix(key)?.strip_prefix(' ')?.parse().ok())
        .collect()
}

/// Network, DNS (on a connected UDP socket: connect, then `send` or `write` without an
/// address, also sent after the connecting thread exited) and listen calls made from a second
/// thread: each audit's `pid` is the process id (`getpid`), not the thread id, and
/// `process`/`command` are the process's.
fn audits_name_the_process_of_a_second_thread(backend: &str, octet: u8) {
    let s = Scratch::new(&format!("run-thread-{backend}"));
    let r = Responder::start(ns(octet), &[("yahoo.com", "127.0.0.8")], &[]);
    let target = Counter::tcp("127.0.0.8:0");
    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let lport = free.local_addr().unwrap().port();
    drop(free);
    let p = probe().display().to_string();
    let mut calls = vec![
        (
            "network",
            format!("{p} thread connect 127.0.0.8 {}", target.addr.port()),
        ),
        (
            "dns",
            format!("{p} thread dns-connect-send {} 53 yahoo.com", r.addr.ip()),
        ),
        ("listen", format!("{p} thread bind 127.0.0.1 {lport}")),
    ];
    // The query comes from the process's main thread after the connecting thread exited.
    calls.push((
        "dns",
        format!("{p} dns-thread-connect-send {} 53 yahoo.com", r.addr.ip()),
    ));
    // Go's resolver writes its query; the ptrace backend does not judge `write` (README).
    if backend == "notify" {
        calls.push((
            "dns",
            format!("{p} thread dns-connect-write {} 53 yahoo.com", r.addr.ip()),
        ));
    }
    // One call per run of the probe: audits are told apart by their pid.
    let inner = calls
        .iter()
        .map(|(_, c)| c.as_str())
        .collect::<Vec<_>>()
        .join("; ")
        + "; echo end";
    let script = with_resolv_conf(&s, r.addr.ip(), &inner);
    let net = format!(
        r#"{{"effect":"alert","denied_outbound":["127.0.0.8"],"denied_listening_ports":[{lport}]}}"#
    );
    let run = defender_run_with(
        backend,
        &s,
        r#"{"effect":"alert","denied":["yahoo.com"]}"#,
        &net,
        &script,
    );
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert!(
        run.stdout.ends_with("end\n"),
        "{}\n{}",
        run.stdout,
        run.stderr
    );
    let (pids, tids) = (numbers(&run.stdout, "pid"), numbers(&run.stdout, "tid"));
    assert_eq!(
        (pids.len(), tids.len()),
        (calls.len(), calls.len()),
        "{}",
        run.stdout
    );
    let probe = canonical(probe());
    for (((kind, command), pid), tid) in calls.iter().zip(&pids).zip(&tids) {
        assert_ne!(pid, tid, "{command}: not made from a second thread");
        let mine: Vec<&serde_json::Value> = run
            .audits
            .iter()
            .filter(|a| a["command"].as_str() == Some(command.as_str()))
            .collect();
        assert!(!mine.is_empty(), "{command}: no audit in {:#?}", run.audits);
        for a in mine {
            assert_eq!(a["kind"].as_str(), Some(*kind), "{a}");
            assert_eq!(a["pid"].as_u64(), Some(*pid), "{command}: tid {tid}: {a}");
            assert_eq!(a["process"].as_str(), Some(probe.as_str()), "{a}");
        }
    }
}

#[test]
fn audits_name_the_process_of_a_second_thread_under_notify() {
    audits_name_the_process_of_a_second_thread("notify", 25);
}

#[test]
fn audits_name_the_process_of_a_second_thread_under_ptrace() {
    audits_name_the_process_of_a_second_thread("ptrace", 26);
}
