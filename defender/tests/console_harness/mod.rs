//! The real `lambda-console` binary on a free loopback port, its API over real HTTP, and the real
//! `defender` binary pointed at it.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

pub const DEFENDER: &str = env!("CARGO_BIN_EXE_defender");
pub const FAMILY: &str = "twistlock-fargate-task";
pub const IMAGE: &str = "matthewabq/twistlock-fargate-auto";
pub const ADMIN_PASSWORD: &str = "test-admin-password-1";

/// A scratch directory removed on drop.
pub struct Scratch {
    pub dir: PathBuf,
}

impl Scratch {
    pub fn new(name: &str) -> Scratch {
        let dir =
            std::env::temp_dir().join(format!("defender-console-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create scratch dir");
        Scratch { dir }
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.join(rel)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `target/debug/lambda-console`, next to this test binary's `deps/` directory.
pub fn console_binary() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    let debug = exe
        .parent()
        .and_then(Path::parent)
        .expect("test binary lives in target/<profile>/deps");
    let bin = debug.join("lambda-console");
    assert!(
        bin.is_file(),
        "{} is missing: these tests run the real console; build it first with \
         `cargo build -p lambda-console` (same CARGO_TARGET_DIR)",
        bin.display()
    );
    bin
}

/// A free loopback port (bound, read, released).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}

/// A running `lambda-console serve`; killed on drop.
pub struct ConsoleProc {
    child: Option<Child>,
    pub addr: SocketAddr,
    data: PathBuf,
}

impl ConsoleProc {
    pub fn start(data: &Path) -> ConsoleProc {
        let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().expect("addr");
        let mut c = ConsoleProc {
            child: None,
            addr,
            data: data.to_path_buf(),
        };
        c.restart();
        c
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Kills the console (an outage: connections are cut).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts it again on the same data directory and port; returns when it answers.
    pub fn restart(&mut self) {
        self.stop();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let mut child = Command::new(console_binary())
                .args(["serve", "--listen", &self.addr.to_string(), "--data-dir"])
                .arg(&self.data)
                .env("CONSOLE_ADMIN_USER", "admin")
                .env("CONSOLE_ADMIN_PASSWORD", ADMIN_PASSWORD)
                .env_remove("AWS_LAMBDA_RUNTIME_API")
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .expect("start lambda-console");
            let (tx, rx) = mpsc::channel();
            let err = child.stderr.take().expect("stderr");
            std::thread::spawn(move || {
                for line in BufReader::new(err).lines().map_while(Result::ok) {
                    let _ = tx.send(line);
                }
            });
            let mut listening = false;
            while let Ok(line) = rx.recv_timeout(Duration::from_secs(20)) {
                if line.contains("listening on http://") {
                    listening = true;
                    break;
                }
            }
            if listening {
                // keep draining its log
                std::thread::spawn(move || while rx.recv().is_ok() {});
                self.child = Some(child);
                return;
            }
            let _ = child.kill();
            let _ = child.wait();
            // the port may still be held by the killed process for a moment
            assert!(
                Instant::now() < deadline,
                "lambda-console did not start on {}",
                self.addr
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for ConsoleProc {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The console API as the admin.
pub struct Api {
    base: String,
    bearer: String,
    agent: ureq::Agent,
}

impl Api {
    pub fn login(console: &ConsoleProc) -> Api {
        let agent = ureq::AgentBuilder::new()
            .timeout(Duration::from_secs(10))
            .build();
        let base = console.url();
        let text = agent
            .post(&format!("{base}/api/v1/authenticate"))
            .set("Content-Type", "application/json")
            .send_string(&json!({"username": "admin", "password": ADMIN_PASSWORD}).to_string())
            .expect("authenticate")
            .into_string()
            .expect("token answer");
        let v: Value = serde_json::from_str(&text).expect("token json");
        let token = v["token"].as_str().expect("token").to_string();
        Api {
            base,
            bearer: format!("Bearer {token}"),
            agent,
        }
    }

    fn send(&self, method: &str, path: &str, body: &Value) -> Value {
        match self
            .agent
            .request(method, &format!("{}{path}", self.base))
            .set("Authorization", &self.bearer)
            .set("Content-Type", "application/json")
            .send_string(&body.to_string())
        {
            Ok(r) => serde_json::from_str(&r.into_string().expect("answer")).expect("json answer"),
            Err(ureq::Error::Status(code, r)) => panic!(
                "{method} {path}: {code}: {}",
                r.into_string().unwrap_or_default()
            ),
            Err(e) => panic!("{method} {path}: {e}"),
        }
    }

    pub fn put_runtime_policy(&self, policy: &Value) {
        self.send("PUT", "/api/v1/policies/runtime/app-embedded", policy);
    }

    pub fn put_cnaf_policy(&self, policy: &Value) {
        self.send("PUT", "/api/v1/policies/firewall/app/app-embedded", policy);
    }

    /// A defender credential.
    pub fn defender_token(&self) -> String {
        let v = self.send(
            "POST",
            "/api/v1/defenders/install-bundle",
            &json!({"name": "test"}),
        );
        v["token"]
            .as_str()
            .expect("install-bundle token")
            .to_string()
    }

    /// Every audit of one family (runtime or CNAF), as JSON.
    pub fn audits(&self, firewall: bool) -> Vec<Value> {
        let path = if firewall {
            "/api/v1/audits/firewall/app/app-embedded"
        } else {
            "/api/v1/audits/runtime/app-embedded"
        };
        let mut all = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut req = self
                .agent
                .get(&format!("{}{path}", self.base))
                .set("Authorization", &self.bearer)
                .query("limit", "500");
            if let Some(c) = &cursor {
                req = req.query("cursor", c);
            }
            let text = req
                .call()
                .expect("audits")
                .into_string()
                .expect("audit page");
            let page: Value = serde_json::from_str(&text).expect("audit page json");
            all.extend(page["audits"].as_array().cloned().unwrap_or_default());
            match page["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_string()),
                None => break,
            }
        }
        all
    }

    pub fn messages(&self, firewall: bool) -> Vec<String> {
        self.audits(firewall)
            .iter()
            .map(|a| a["message"].as_str().unwrap_or_default().to_string())
            .collect()
    }
}

/// A one-rule runtime policy for the sample container denying mkdir with `effect`.
pub fn mkdir_policy(revision: u64, effect: &str, startup: &str) -> Value {
    json!({"revision": revision, "rules": [{
        "name": "sample", "scope": {"containers": [FAMILY]}, "startup": startup,
        "processes": {"effect": effect, "allowed": [], "denied": ["mkdir"]}}]})
}

/// `defender run` for the sample container, fed by `console` with `token`.
pub fn defender(console: &ConsoleProc, token: &str, state: &Path) -> Command {
    let mut cmd = Command::new(DEFENDER);
    cmd.arg("run")
        .env("DEFENDER_CONSOLE_URL", console.url())
        .env("DEFENDER_TOKEN", token)
        .env("DEFENDER_TASK_FAMILY", FAMILY)
        .env("DEFENDER_CONTAINER_NAME", FAMILY)
        .env("DEFENDER_IMAGE", IMAGE)
        .env("DEFENDER_POLL_SECONDS", "1")
        .env("DEFENDER_STATE_DIR", state)
        .env_remove("DEFENDER_CNAF")
        .env_remove("DEFENDER_CNAF_LISTEN")
        .env_remove("DEFENDER_CNAF_UPSTREAM")
        .env_remove("DEFENDER_STARTUP")
        .env_remove("DEFENDER_STARTUP_TIMEOUT");
    cmd
}

/// Polls `f` until it is true; panics with `what` after `timeout`.
pub fn wait_until(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !f() {
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?}: {what}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Lines of a child's pipe, as they come.
pub fn lines(r: impl std::io::Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(r).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// Audits of an `--audit-log` file.
pub fn read_audits(log: &Path) -> Vec<Value> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}
