//! Test harness for the network guard: runs a real program in a forked child under a seccomp
//! filter with the network syscalls notified, dispatches every notification to a `NetGuard`, and
//! collects its audit events. Also a loopback DNS responder and a C probe program.

#![allow(dead_code)]
#![allow(clippy::unwrap_used)] // test harness: a failed set-up step should fail the test loudly

use std::collections::HashMap;
use std::ffi::CString;
use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use defender::net::{NetEvent, NetGuard};
use defender::sys::bpf::{self, Action};
use defender::sys::notify::Listener;
use defender::sys::process::{poll_readable, wait_for, WaitStatus};
use defender::sys::spawn::{spawn, FilterMode, SpawnSpec};
use hickory_proto::op::{Message, MessageType, OpCode, ResponseCode};
use hickory_proto::rr::rdata::{A, AAAA};
use hickory_proto::rr::{RData, Record, RecordType};
use protect::policy::{RuntimePolicy, Scope};

/// A per-test scratch directory.
pub struct Scratch(pub PathBuf);

impl Scratch {
    pub fn new(name: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("defender-net-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }
    pub fn path(&self, p: &str) -> PathBuf {
        self.0.join(p)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The C probe, compiled once per test binary.
pub fn probe() -> &'static Path {
    static PROBE: OnceLock<PathBuf> = OnceLock::new();
    PROBE.get_or_init(|| {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/net_harness/probe.c");
        let out = std::env::temp_dir().join(format!("defender-net-probe-{}", std::process::id()));
        let st = Command::new("cc")
            .args(["-O1", "-pthread", "-o"])
            .arg(&out)
            .arg(&src)
            .status()
            .unwrap();
        assert!(st.success(), "compiling {src:?} failed");
        out
    })
}

/// A runtime policy with one rule whose `dns` and `network` sections are given as JSON.
pub fn policy(dns: &str, network: &str) -> RuntimePolicy {
    let json = format!(
        r#"{{"revision":1,"rules":[{{"name":"net-rule","dns":{dns},"network":{network}}}]}}"#
    );
    RuntimePolicy::from_json(&json).unwrap()
}

/// What a supervised run produced.
#[derive(Debug)]
pub struct Outcome {
    pub status: WaitStatus,
    /// The program's stdout and stderr, merged.
    pub output: String,
    pub events: Vec<NetEvent>,
}

impl Outcome {
    pub fn messages(&self) -> Vec<String> {
        self.events.iter().map(|e| e.message.clone()).collect()
    }
}

/// Runs `script` with `/bin/sh -c` under the network filter, enforcing `policy`.
pub fn run(policy: RuntimePolicy, scratch: &Scratch, script: &str) -> Outcome {
    let out = scratch.path("output");
    let full = format!("exec >{} 2>&1; {script}", out.display());
    let argv: Vec<CString> = ["/bin/sh", "-c", &full]
        .iter()
        .map(|a| CString::new(*a).unwrap())
        .collect();
    let env: Vec<CString> = ["PATH=/usr/local/bin:/usr/bin:/bin", "LC_ALL=C"]
        .iter()
        .map(|a| CString::new(*a).unwrap())
        .collect();
    let filter = bpf::program(&NetGuard::filter_rules(), Action::Allow);
    let spec = SpawnSpec::new(
        CString::new("/bin/sh").unwrap(),
        argv,
        env,
        filter,
        FilterMode::Listener,
    );
    let pending = spawn(&spec).unwrap();
    let mut listener =
        Listener::new(pending.listener.as_ref().unwrap().try_clone().unwrap()).unwrap();
    let replies = listener.try_clone().unwrap();
    let events = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&events);
    let shared = Arc::new(arc_swap::ArcSwap::from_pointee(policy));
    let scope = Scope {
        task: "net-test".into(),
        container: "app".into(),
        image: "probe:1".into(),
    };
    let guard = NetGuard::start(
        shared,
        scope,
        replies,
        Arc::new(move |e| sink.lock().unwrap().push(e)),
    )
    .unwrap();
    let done = Arc::new(AtomicBool::new(false));
    let done2 = Arc::clone(&done);
    let looper = std::thread::spawn(move || {
        while !done2.load(Ordering::Acquire) {
            let revents = poll_readable(&[listener.raw()], 50).unwrap();
            if revents[0] & libc::POLLHUP != 0 {
                return;
            }
            if revents[0] & libc::POLLIN == 0 {
                continue;
            }
            let Ok(Some(n)) = listener.recv() else {
                continue;
            };
            let reply = if NetGuard::handles(n.nr) {
                guard.handle(&n)
            } else {
                Some(defender::sys::notify::Reply::Continue)
            };
            if let Some(r) = reply {
                let _ = listener.send(n.id, r);
            }
        }
    });
    let pid = pending.release().unwrap();
    let status = wait_for(pid).unwrap();
    done.store(true, Ordering::Release);
    looper.join().unwrap();
    let output = std::fs::read_to_string(&out).unwrap_or_default();
    let events = events.lock().unwrap().clone();
    Outcome {
        status,
        output,
        events,
    }
}

/// Runs `script` like [`run`], but under the ptrace fallback: the child's filter stops the
/// network syscalls for this tracer, which asks `NetGuard::precheck` and skips denied calls.
/// Uses `waitpid(-1)`: call it only from a test binary that runs no other children at once.
pub fn run_traced(policy: RuntimePolicy, scratch: &Scratch, script: &str) -> Outcome {
    use defender::sys::process::wait_any;
    use defender::tracee::{Seized, StopKind, Stopped};
    let out = scratch.path("output");
    let full = format!("exec >{} 2>&1; {script}", out.display());
    let argv: Vec<CString> = ["/bin/sh", "-c", &full]
        .iter()
        .map(|a| CString::new(*a).unwrap())
        .collect();
    let env: Vec<CString> = ["PATH=/usr/local/bin:/usr/bin:/bin", "LC_ALL=C"]
        .iter()
        .map(|a| CString::new(*a).unwrap())
        .collect();
    let filter = bpf::program(&NetGuard::trace_filter_rules(), Action::Allow);
    let spec = SpawnSpec::new(
        CString::new("/bin/sh").unwrap(),
        argv,
        env,
        filter,
        FilterMode::Traced,
    );
    let pending = spawn(&spec).unwrap();
    Seized::seize(pending.pid, defender::backend::ptrace::TRACE_OPTIONS).unwrap();
    let events = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&events);
    let shared = Arc::new(arc_swap::ArcSwap::from_pointee(policy));
    let scope = Scope {
        task: "net-test".into(),
        container: "app".into(),
        image: "probe:1".into(),
    };
    let guard = NetGuard::start_traced(
        shared,
        scope,
        Arc::new(move |e| sink.lock().unwrap().push(e)),
    );
    let app = pending.release().unwrap();
    let status = loop {
        let Some((pid, st)) = wait_any().unwrap() else {
            std::thread::sleep(Duration::from_millis(1));
            continue;
        };
        let Some(stopped) = Stopped::from_wait(pid, st) else {
            if pid == app {
                break st;
            }
            continue;
        };
        if stopped.kind() == StopKind::Event(libc::PTRACE_EVENT_SECCOMP) {
            let regs = stopped.syscall_regs().unwrap();
            if let Some(errno) = guard.precheck(pid, regs.nr as i32, regs.args) {
                stopped.fail_syscall(errno).unwrap();
            }
        }
        let _ = stopped.resume();
    };
    let output = std::fs::read_to_string(&out).unwrap_or_default();
    let events = events.lock().unwrap().clone();
    Outcome {
        status,
        output,
        events,
    }
}

/// A loopback DNS responder (UDP and TCP on `addr`): answers names from its table, `NXDOMAIN`
/// otherwise, and records every name it was asked.
pub struct Responder {
    pub addr: SocketAddr,
    pub asked: Arc<Mutex<Vec<String>>>,
}

impl Responder {
    /// `records`: name (no trailing dot) → addresses. Names in `truncate` get a truncated UDP
    /// answer, forcing the client onto TCP.
    pub fn start(addr: SocketAddr, records: &[(&str, &str)], truncate: &[&str]) -> Responder {
        let mut table: HashMap<String, Vec<IpAddr>> = HashMap::new();
        for (n, ip) in records {
            table
                .entry(n.to_string())
                .or_default()
                .push(ip.parse().unwrap());
        }
        let table = Arc::new(table);
        let truncate: Arc<Vec<String>> = Arc::new(truncate.iter().map(|s| s.to_string()).collect());
        let asked = Arc::new(Mutex::new(Vec::new()));
        // [::1]:53 cannot be made unique per run: wait for another run of the suite to let go.
        let (udp, tcp) = bind_pair(addr);
        let (t, tr, a) = (
            Arc::clone(&table),
            Arc::clone(&truncate),
            Arc::clone(&asked),
        );
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            loop {
                let Ok((n, from)) = udp.recv_from(&mut buf) else {
                    return;
                };
                if let Some(r) = answer(&buf[..n], &t, &a, &tr) {
                    let _ = udp.send_to(&r, from);
                }
            }
        });
        let (t, a) = (Arc::clone(&table), Arc::clone(&asked));
        std::thread::spawn(move || {
            for conn in tcp.incoming() {
                let Ok(mut c) = conn else { continue };
                let (t, a) = (Arc::clone(&t), Arc::clone(&a));
                std::thread::spawn(move || loop {
                    let mut len = [0u8; 2];
                    if c.read_exact(&mut len).is_err() {
                        return;
                    }
                    let mut q = vec![0u8; usize::from(u16::from_be_bytes(len))];
                    if c.read_exact(&mut q).is_err() {
                        return;
                    }
                    let Some(r) = answer(&q, &t, &a, &[]) else {
                        return;
                    };
                    let mut framed = (r.len() as u16).to_be_bytes().to_vec();
                    framed.extend(r);
                    if c.write_all(&framed).is_err() {
                        return;
                    }
                });
            }
        });
        Responder { addr, asked }
    }

    pub fn asked(&self) -> Vec<String> {
        self.asked.lock().unwrap().clone()
    }
}

fn bind_pair(addr: SocketAddr) -> (UdpSocket, TcpListener) {
    let start = std::time::Instant::now();
    loop {
        match (UdpSocket::bind(addr), TcpListener::bind(addr)) {
            (Ok(u), Ok(t)) => return (u, t),
            (u, t) if start.elapsed() < Duration::from_secs(30) => {
                drop((u, t));
                std::thread::sleep(Duration::from_millis(100));
            }
            (u, t) => panic!(
                "cannot bind the test responder on {addr}: {:?} {:?}",
                u.err(),
                t.err()
            ),
        }
    }
}

fn answer(
    q: &[u8],
    table: &HashMap<String, Vec<IpAddr>>,
    asked: &Mutex<Vec<String>>,
    truncate: &[String],
) -> Option<Vec<u8>> {
    let q = Message::from_vec(q).ok()?;
    let query = q.queries.first()?.clone();
    let name = query
        .name
        .to_ascii()
        .trim_end_matches('.')
        .to_ascii_lowercase();
    asked.lock().unwrap().push(name.clone());
    let mut r = Message::new(q.metadata.id, MessageType::Response, OpCode::Query);
    r.metadata.recursion_desired = q.metadata.recursion_desired;
    r.metadata.recursion_available = true;
    r.add_query(query.clone());
    if truncate.contains(&name) {
        r.metadata.truncation = true;
        return r.to_vec().ok();
    }
    match table.get(&name) {
        None => r.metadata.response_code = ResponseCode::NXDomain,
        Some(ips) => {
            for ip in ips {
                let data = match (ip, query.query_type) {
                    (IpAddr::V4(v4), RecordType::A) => RData::A(A(*v4)),
                    (IpAddr::V6(v6), RecordType::AAAA) => RData::AAAA(AAAA(*v6)),
                    _ => continue,
                };
                r.add_answer(Record::from_rdata(query.name.clone(), 60, data));
            }
        }
    }
    r.to_vec().ok()
}

/// A TCP listener that counts the connections it accepts and the bytes it reads.
pub struct Counter {
    pub addr: SocketAddr,
    pub accepted: Arc<Mutex<Vec<Vec<u8>>>>,
}

impl Counter {
    pub fn tcp(addr: &str) -> Counter {
        let l = TcpListener::bind(addr).unwrap();
        let addr = l.local_addr().unwrap();
        let accepted = Arc::new(Mutex::new(Vec::new()));
        let acc = Arc::clone(&accepted);
        std::thread::spawn(move || {
            for c in l.incoming() {
                let Ok(mut c) = c else { continue };
                let _ = c.set_read_timeout(Some(Duration::from_secs(3)));
                let mut buf = Vec::new();
                let _ = c.read_to_end(&mut buf);
                acc.lock().unwrap().push(buf);
            }
        });
        Counter { addr, accepted }
    }

    /// A UDP socket that records each datagram.
    pub fn udp(addr: &str) -> Counter {
        let s = UdpSocket::bind(addr).unwrap();
        let addr = s.local_addr().unwrap();
        let accepted = Arc::new(Mutex::new(Vec::new()));
        let acc = Arc::clone(&accepted);
        std::thread::spawn(move || {
            let mut buf = [0u8; 2048];
            while let Ok(n) = s.recv(&mut buf) {
                acc.lock().unwrap().push(buf[..n].to_vec());
            }
        });
        Counter { addr, accepted }
    }

    /// What arrived, once in-flight traffic has landed: at least 400 ms, then until nothing
    /// new arrived for 300 ms (at most 5 s, for a loaded machine).
    pub fn seen(&self) -> Vec<Vec<u8>> {
        settle(|| self.accepted.lock().unwrap().len());
        self.accepted.lock().unwrap().clone()
    }
}

/// Waits until `count` stops changing (see [`Counter::seen`]).
pub fn settle(count: impl Fn() -> usize) {
    let start = std::time::Instant::now();
    let (mut last, mut stable_since) = (count(), std::time::Instant::now());
    while start.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(50));
        let now = count();
        if now != last {
            (last, stable_since) = (now, std::time::Instant::now());
        } else if start.elapsed() >= Duration::from_millis(400)
            && stable_since.elapsed() >= Duration::from_millis(300)
        {
            return;
        }
    }
}

/// Writes a resolv.conf naming `ns` and returns a shell prefix that runs the rest of the
/// script in a private mount namespace where `/etc/resolv.conf` is that file.
pub fn with_resolv_conf(scratch: &Scratch, ns: IpAddr, script: &str) -> String {
    let conf = scratch.path("resolv.conf");
    std::fs::write(
        &conf,
        format!("nameserver {ns}\noptions timeout:1 attempts:1\n"),
    )
    .unwrap();
    let inner = format!(
        "mount --bind {} /etc/resolv.conf && {script}",
        conf.display()
    );
    format!("unshare -m sh -c '{}'", inner.replace('\'', r"'\''"))
}

/// The nameserver address for a test: `127.B.53.OCTET:53`, with `B` drawn from this process's
/// id so two runs of the suite on one machine (two engineers, a CI run) rarely collide on the
/// fixed DNS port.
pub fn ns(octet: u8) -> SocketAddr {
    let b = 53 + (std::process::id() % 150) as u8;
    SocketAddr::new(IpAddr::from([127, b, 53, octet]), 53)
}

pub fn ip(s: &str) -> IpAddr {
    IpAddr::from_str(s).unwrap()
}
