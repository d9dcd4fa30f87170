//! The `lambda-console serve` binary over real HTTP on 127.0.0.1: first-start admin password
//! shown once, state kept across a restart, no secret in the log; the connection limits and
//! timeouts, the per-address login throttle and the memory bound of password checks (issue 16).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Value};

struct Server {
    child: Child,
    addr: SocketAddr,
    stdout: Arc<Mutex<Vec<String>>>,
    stderr: Arc<Mutex<Vec<String>>>,
}

fn collect(
    r: impl Read + Send + 'static,
    sink: Arc<Mutex<Vec<String>>>,
    tx: Option<mpsc::Sender<String>>,
) {
    std::thread::spawn(move || {
        for line in BufReader::new(r).lines().map_while(Result::ok) {
            if let Some(tx) = &tx {
                let _ = tx.send(line.clone());
            }
            sink.lock().expect("lock").push(line);
        }
    });
}

fn start(dir: &Path) -> Server {
    start_with(dir, &[], None)
}

/// Starts the server with extra environment and, when `open_files` is given, that soft limit
/// on open files (set by the shell before it execs the server; the hard limit is unchanged).
fn start_with(dir: &Path, env: &[(&str, &str)], open_files: Option<u32>) -> Server {
    let bin = env!("CARGO_BIN_EXE_lambda-console");
    let mut cmd = match open_files {
        Some(n) => {
            let mut c = Command::new("sh");
            c.args(["-c", &format!("ulimit -Sn {n} && exec \"$0\" \"$@\""), bin]);
            c
        }
        None => Command::new(bin),
    };
    cmd.args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir)
        .env_remove("CONSOLE_ADMIN_PASSWORD")
        .env_remove("AWS_LAMBDA_RUNTIME_API")
        .env("CONSOLE_LOG", "debug");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start lambda-console");
    let stdout = Arc::new(Mutex::new(Vec::new()));
    let stderr = Arc::new(Mutex::new(Vec::new()));
    let (tx, rx) = mpsc::channel();
    collect(
        child.stdout.take().expect("stdout"),
        Arc::clone(&stdout),
        None,
    );
    collect(
        child.stderr.take().expect("stderr"),
        Arc::clone(&stderr),
        Some(tx),
    );
    let addr = loop {
        let line = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("server announced its address");
        if let Some(rest) = line.split("listening on http://").nth(1) {
            break rest
                .split_whitespace()
                .next()
                .expect("addr")
                .parse()
                .expect("socket addr");
        }
    };
    Server {
        child,
        addr,
        stdout,
        stderr,
    }
}

impl Server {
    /// Sends SIGTERM and waits: the server must shut down cleanly.
    fn stop(mut self) -> (Vec<String>, Vec<String>) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(status.success());
        let exit = self.child.wait().expect("wait");
        assert!(exit.success(), "server exit: {exit:?}");
        std::thread::sleep(Duration::from_millis(100));
        let out = self.stdout.lock().expect("lock").clone();
        let err = self.stderr.lock().expect("lock").clone();
        (out, err)
    }

    fn request(
        &self,
        method: &str,
        path: &str,
        auth: Option<&str>,
        body: Option<&Value>,
    ) -> (u16, Value) {
        let (status, _, body) = self.request_raw(method, path, auth, body);
        (status, body)
    }

    /// The status, the head (status line and headers) and the JSON body.
    fn request_raw(
        &self,
        method: &str,
        path: &str,
        auth: Option<&str>,
        body: Option<&Value>,
    ) -> (u16, String, Value) {
        let mut s = TcpStream::connect(self.addr).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(30)))
            .expect("timeout");
        let body = body.map(Value::to_string).unwrap_or_default();
        let mut req = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nContent-Length: {}\r\n",
            self.addr,
            body.len()
        );
        if let Some(a) = auth {
            req.push_str(&format!("Authorization: Bearer {a}\r\n"));
        }
        if !body.is_empty() {
            req.push_str("Content-Type: application/json\r\n");
        }
        req.push_str("\r\n");
        req.push_str(&body);
        s.write_all(req.as_bytes()).expect("write");
        let mut raw = String::new();
        s.read_to_string(&mut raw).expect("read");
        let status: u16 = raw
            .split_whitespace()
            .nth(1)
            .expect("status")
            .parse()
            .expect("code");
        let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
        (
            status,
            head.to_ascii_lowercase(),
            serde_json::from_str(body).unwrap_or(Value::Null),
        )
    }

    /// The server's peak resident memory (`VmHWM`), in KiB.
    fn peak_rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .expect("/proc/PID/status");
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmHWM")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn serves_over_http_and_keeps_state_across_a_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = start(dir.path());
    let (status, _) = server.request("GET", "/api/v1/_ping", None, None);
    assert_eq!(status, 200);

    // The generated password is printed once on stdout.
    std::thread::sleep(Duration::from_millis(200));
    let first = server.stdout.lock().expect("lock").join("\n");
    let password = first
        .split("with password ")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .expect("generated admin password on stdout")
        .to_string();
    let (status, body) = server.request(
        "POST",
        "/api/v1/authenticate",
        None,
        Some(&json!({"username": "admin", "password": password})),
    );
    assert_eq!(status, 200, "{body}");
    let token = body["token"].as_str().expect("token").to_string();

    let policy: Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../examples/policy.json"
        ))
        .expect("example"),
    )
    .expect("json");
    let (status, body) = server.request(
        "PUT",
        "/api/v1/policies/runtime/app-embedded",
        Some(&token),
        Some(&policy),
    );
    assert_eq!(
        (status, body["revision"].clone()),
        (200, json!(1)),
        "{body}"
    );
    let (status, body) = server.request(
        "POST",
        "/api/v1/defenders/install-bundle",
        Some(&token),
        None,
    );
    assert_eq!(status, 201, "{body}");
    let defender = body["token"].as_str().expect("defender token").to_string();
    let now = chrono::Utc::now().to_rfc3339();
    let batch = json!({"batch_id": "http-1",
        "defender": {"task": "twistlock-fargate-task", "container": "twistlock-fargate-task", "image": "img", "version": "0.1.0"},
        "records": [{"time": now, "kind": "dns", "effect": "prevent", "rule": "sample",
                     "message": "DNS resolution of suspicious name yahoo.com", "domain": "yahoo.com",
                     "task_family": "twistlock-fargate-task", "container": "twistlock-fargate-task"}]});
    let (status, body) = server.request(
        "POST",
        "/api/v1/defender/audits",
        Some(&defender),
        Some(&batch),
    );
    assert_eq!(status, 200, "{body}");
    let (_, err) = server.stop();

    // Restart on the same directory: same users, tokens, policy, audits and defenders.
    let server = start(dir.path());
    let (status, body) = server.request(
        "GET",
        "/api/v1/policies/runtime/app-embedded",
        Some(&token),
        None,
    );
    assert_eq!((status, body["revision"].clone()), (200, json!(1)));
    let (status, body) = server.request(
        "GET",
        "/api/v1/audits/runtime/app-embedded?kind=dns",
        Some(&token),
        None,
    );
    assert_eq!(status, 200);
    assert_eq!(body["audits"][0]["domain"], "yahoo.com");
    let (status, body) = server.request("GET", "/api/v1/defender/policy?task=twistlock-fargate-task&container=twistlock-fargate-task&image=img", Some(&defender), None);
    assert_eq!(status, 200);
    assert_eq!(body["runtime"]["rules"][0]["name"], "sample");
    let (status, body) = server.request(
        "POST",
        "/api/v1/defender/audits",
        Some(&defender),
        Some(&batch),
    );
    assert_eq!((status, body["duplicate"].clone()), (200, json!(true)));
    let (status, body) = server.request("GET", "/api/v1/defenders", Some(&token), None);
    assert_eq!(status, 200);
    assert_eq!(body["defenders"][0]["audits_received"], 1);
    let (out2, err2) = server.stop();
    assert!(
        !out2.join("\n").contains("password"),
        "the password is shown only on the first start: {out2:?}"
    );

    // No secret in the log (stderr), even at debug level.
    let log = [err, err2].concat().join("\n");
    assert!(log.contains("request"), "debug access log expected: {log}");
    for secret in [password.as_str(), token.as_str(), defender.as_str()] {
        assert!(!log.contains(secret), "secret in the log: {log}");
    }
}

/// Runs the binary to completion with `args` and extra environment.
fn run(args: &[&str], env: &[(&str, &str)]) -> (Option<i32>, String, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_lambda-console"));
    cmd.args(args)
        .current_dir(dir.path())
        .env_remove("AWS_LAMBDA_RUNTIME_API")
        .env_remove("CONSOLE_DEFENDER_CONNECTED_SECONDS")
        .env_remove("CONSOLE_DEFENDER_STALE_SECONDS");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run lambda-console");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

#[test]
fn defender_status_thresholds_come_from_the_environment() {
    let (code, stdout, _) = run(&["serve", "--help"], &[]);
    assert_eq!(code, Some(0));
    for var in [
        "CONSOLE_DEFENDER_CONNECTED_SECONDS",
        "CONSOLE_DEFENDER_STALE_SECONDS",
        "CONSOLE_AUDIT_RETENTION_DAYS",
    ] {
        assert!(stdout.contains(var), "{var} missing from --help:\n{stdout}");
    }
    let bad = [
        (
            vec![("CONSOLE_DEFENDER_CONNECTED_SECONDS", "soon")],
            "lambda-console: CONSOLE_DEFENDER_CONNECTED_SECONDS: \"soon\" is not a whole number \
             between 1 and 86400\n",
        ),
        (
            vec![
                ("CONSOLE_DEFENDER_CONNECTED_SECONDS", "120"),
                ("CONSOLE_DEFENDER_STALE_SECONDS", "60"),
            ],
            "lambda-console: CONSOLE_DEFENDER_STALE_SECONDS: 60 is below the connected threshold \
             (120 s, CONSOLE_DEFENDER_CONNECTED_SECONDS); set it at least as high\n",
        ),
    ];
    for (env, want) in bad {
        let (code, _, stderr) = run(&["serve", "--listen", "127.0.0.1:0"], &env);
        assert_eq!(code, Some(2), "{env:?}: {stderr}");
        assert_eq!(stderr, want, "{env:?}");
    }
}

/// `/_ping` within a second.
fn ping_within_a_second(server: &Server) -> Result<(), String> {
    let start = std::time::Instant::now();
    let mut s = TcpStream::connect(server.addr).map_err(|e| format!("connect: {e}"))?;
    s.set_read_timeout(Some(Duration::from_secs(1)))
        .map_err(|e| e.to_string())?;
    s.write_all(b"GET /api/v1/_ping HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .map_err(|e| format!("write: {e}"))?;
    let mut raw = String::new();
    s.read_to_string(&mut raw)
        .map_err(|e| format!("no answer after {:?}: {e}", start.elapsed()))?;
    if !raw.starts_with("HTTP/1.1 200") || start.elapsed() > Duration::from_secs(1) {
        return Err(format!("after {:?}: {raw}", start.elapsed()));
    }
    Ok(())
}

#[test]
fn idle_and_half_open_connections_do_not_starve_the_server() {
    let dir = tempfile::tempdir().expect("tempdir");
    // A soft limit of 256 open files (common for services and on macOS): 300 connections
    // exceed it unless the server raises it and keeps its connections below it.
    let server = start_with(
        dir.path(),
        &[("CONSOLE_HEADER_TIMEOUT_SECONDS", "2")],
        Some(256),
    );
    let mut idle = Vec::new();
    for i in 0..300 {
        let mut s = TcpStream::connect(server.addr).expect("connect");
        if i % 2 == 0 {
            // Half-open: a request head that never ends.
            s.write_all(b"GET /api/v1/_ping HTTP/1.1\r\nHost: x\r\n")
                .expect("write");
        }
        idle.push(s);
    }
    std::thread::sleep(Duration::from_millis(300));
    ping_within_a_second(&server).expect("ping with 300 idle and half-open connections");

    // The header timeout closes them: a read sees the end of the stream, not a hang.
    let started = std::time::Instant::now();
    for s in idle.iter_mut().step_by(37) {
        s.set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        let mut buf = Vec::new();
        let _ = s.read_to_end(&mut buf);
    }
    assert!(
        started.elapsed() < Duration::from_secs(6),
        "idle connections were closed only after {:?}",
        started.elapsed()
    );
    ping_within_a_second(&server).expect("ping afterwards");
}

fn first_password(server: &Server) -> String {
    std::thread::sleep(Duration::from_millis(200));
    let out = server.stdout.lock().expect("lock").join("\n");
    out.split("with password ")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .expect("generated admin password on stdout")
        .to_string()
}

#[test]
fn failed_logins_are_throttled_per_source_address() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = start_with(
        dir.path(),
        &[("CONSOLE_LOGIN_FAILURES_PER_ADDRESS", "3")],
        None,
    );
    let password = first_password(&server);
    // Three users, one wrong password each (under the per-user limit of 5)...
    for user in ["admin", "alice", "bob"] {
        let (status, body) = server.request(
            "POST",
            "/api/v1/authenticate",
            None,
            Some(&json!({"username": user, "password": "wrong-password-1"})),
        );
        assert_eq!(status, 401, "{user}: {body}");
    }
    // ... and this address is throttled, for the right password too.
    let (status, head, body) = server.request_raw(
        "POST",
        "/api/v1/authenticate",
        None,
        Some(&json!({"username": "admin", "password": password})),
    );
    assert_eq!(status, 429, "{body}");
    let retry: u64 = head
        .lines()
        .find_map(|l| l.strip_prefix("retry-after:"))
        .and_then(|v| v.trim().parse().ok())
        .expect("Retry-After");
    assert!((1..=60).contains(&retry), "{retry}");
    assert!(head.contains("cache-control: no-store"), "{head}");
    assert!(head.contains("x-content-type-options: nosniff"), "{head}");
}

#[test]
fn concurrent_wrong_passwords_do_not_grow_the_server() {
    let dir = tempfile::tempdir().expect("tempdir");
    // No throttle in the way: this is about the bound on concurrent Argon2 checks (19 MiB
    // each at the default cost).
    let server = Arc::new(start_with(
        dir.path(),
        &[
            ("CONSOLE_LOGIN_FAILURES_PER_ADDRESS", "100000"),
            ("CONSOLE_LOGIN_FAILURES_PER_USER", "1000"),
            ("CONSOLE_PASSWORD_CHECKS", "2"),
        ],
        None,
    ));
    let _ = first_password(&server);
    let before = server.peak_rss_kib();
    let workers: Vec<_> = (0..200)
        .map(|_| {
            let server = Arc::clone(&server);
            std::thread::spawn(move || {
                server.request_raw(
                    "POST",
                    "/api/v1/authenticate",
                    None,
                    Some(&json!({"username": "admin", "password": "wrong-password-1"})),
                )
            })
        })
        .collect();
    for w in workers {
        let (status, head, body) = w.join().expect("worker");
        match status {
            401 => {}
            503 => assert!(head.contains("retry-after: 1"), "{head}"),
            other => panic!("{other}: {body}"),
        }
    }
    let after = server.peak_rss_kib();
    eprintln!("peak memory: {before} KiB before, {after} KiB after 200 wrong passwords");
    assert!(
        after < before + 100 * 1024,
        "peak memory grew from {before} KiB to {after} KiB"
    );
}
