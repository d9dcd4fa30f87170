//! The `lambda-console serve` binary over real HTTP on 127.0.0.1: first-start admin password
//! shown once, state kept across a restart, no secret in the log.

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
    let mut child = Command::new(env!("CARGO_BIN_EXE_lambda-console"))
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir)
        .env_remove("CONSOLE_ADMIN_PASSWORD")
        .env_remove("AWS_LAMBDA_RUNTIME_API")
        .env("CONSOLE_LOG", "debug")
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
        let body = raw.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
        (status, serde_json::from_str(body).unwrap_or(Value::Null))
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
