//! CNAF in the real `defender run` and `defender cnaf`, over real HTTP on 127.0.0.1: the seed's
//! SQL injection gets a 403 and its audit reaches the console (and `--audit-log`), clean
//! requests reach the app, a console policy change applies to the running proxy, a busy port
//! fails before the app starts. The app is a small Python HTTP server started by the defender.

#![allow(clippy::unwrap_used)] // test set-up: a failed step should fail the test loudly

mod console_harness;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use console_harness::*;
use serde_json::{json, Value};

const SEED_SQLI: &str =
    r#"{"-1+union+all+select+1,group_concat(user,0x3a,file_priv),3,4+from+mysql.user--"}"#;
const WEB_FAMILY: &str = "twistlock-fargate-task-web";
const PYTHON: &str = "/usr/bin/python3";

/// The app: answers every GET/POST with 200 "It works!" and logs `METHOD PATH` to `log`.
fn app_argv(port: u16, log: &Path) -> Vec<String> {
    assert!(
        Path::new(PYTHON).is_file(),
        "{PYTHON} is needed as the test app behind CNAF: apt-get install python3"
    );
    let script = format!(
        r#"
import http.server
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_GET(self): self.ok()
    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.ok()
    def ok(self):
        with open({log:?}, "a") as f: f.write(self.command + " " + self.path + "\n")
        b = b"It works!"
        self.send_response(200)
        self.send_header("Content-Length", str(len(b)))
        self.end_headers()
        self.wfile.write(b)
    def log_message(self, *a): pass
http.server.ThreadingHTTPServer(("127.0.0.1", {port}), H).serve_forever()
"#,
        log = log.display().to_string()
    );
    vec![PYTHON.into(), "-c".into(), script]
}

fn cnaf_policy(sqli: &str) -> Value {
    json!({"revision": 1, "rules": [{
        "name": "web", "scope": {"tasks": ["twistlock-fargate-task*"]},
        "external_port": 8080, "app_port": 80, "body_limit": 131072,
        "protections": {"sqli": sqli, "xss": "prevent", "cmdi": "prevent",
            "code_injection": "alert", "lfi": "prevent", "ldap": "prevent",
            "graphql": "alert", "attack_tools": "alert", "shellshock": "prevent",
            "malformed": "alert"}}]})
}

/// One request; any status is an answer.
fn http(method: &str, url: &str, json_body: Option<&str>) -> Result<(u16, String), String> {
    let req = ureq::request(method, url).timeout(Duration::from_secs(5));
    let r = match json_body {
        Some(b) => req.set("Content-Type", "application/json").send_string(b),
        None => req.call(),
    };
    match r {
        Ok(resp) => Ok((resp.status(), resp.into_string().unwrap_or_default())),
        Err(ureq::Error::Status(code, resp)) => Ok((code, resp.into_string().unwrap_or_default())),
        Err(e) => Err(e.to_string()),
    }
}

fn wait_serving(url: &str, child: &mut Child) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok((200, _)) = http("GET", url, None) {
            return;
        }
        if let Some(status) = child.try_wait().unwrap() {
            panic!("the defender exited before serving: {status}");
        }
        assert!(Instant::now() < deadline, "nothing served {url}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn stop(child: &mut Child) -> std::process::ExitStatus {
    // SAFETY: kill(2) on our own child's pid, not yet reaped.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    child.wait().unwrap()
}

fn app_log(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn cnaf_under_defender_run_blocks_the_seeds_sqli_and_follows_the_console() {
    let s = Scratch::new("cnaf-run");
    let console = ConsoleProc::start(&s.path("console"));
    let api = Api::login(&console);
    api.put_cnaf_policy(&cnaf_policy("prevent"));
    let token = api.defender_token();
    let (app_port, cnaf_port) = (free_port(), free_port());
    let log = s.path("app.log");
    let mut child = defender(&console, &token, &s.path("state"))
        .env("DEFENDER_TASK_FAMILY", WEB_FAMILY)
        .env("DEFENDER_CONTAINER_NAME", "web")
        .env("DEFENDER_CNAF_LISTEN", format!("127.0.0.1:{cnaf_port}"))
        .env("DEFENDER_CNAF_UPSTREAM", format!("127.0.0.1:{app_port}"))
        .arg("--audit-log")
        .arg(s.path("audits.jsonl"))
        .arg("--")
        .args(app_argv(app_port, &log))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{cnaf_port}");
    wait_serving(&format!("{base}/"), &mut child);

    let (code, body) = http("GET", &format!("{base}/products?id=42"), None).unwrap();
    assert_eq!((code, body.as_str()), (200, "It works!"));
    let (code, body) = http("POST", &format!("{base}/"), Some(r#"{"name":"O'Brien"}"#)).unwrap();
    assert_eq!((code, body.as_str()), (200, "It works!"));
    let (code, page) = http("POST", &format!("{base}/login"), Some(SEED_SQLI)).unwrap();
    assert_eq!(code, 403, "{page}");
    assert!(page.to_lowercase().contains("request id"), "{page}");
    let seen = app_log(&log);
    assert!(
        seen.contains(&"GET /products?id=42".to_string()),
        "{seen:?}"
    );
    assert!(seen.contains(&"POST /".to_string()), "{seen:?}");
    assert!(
        !seen.iter().any(|l| l == "POST /login"),
        "the attack reached the app: {seen:?}"
    );

    wait_until(
        "the CNAF audit in the console",
        Duration::from_secs(20),
        || {
            api.audits(true).iter().any(|a| {
                a["kind"] == "cnaf"
                    && a["attack"] == "sqli"
                    && a["effect"] == "prevent"
                    && a["path"] == "/login"
                    && a["task_family"] == WEB_FAMILY
                    && a["message"].as_str().is_some_and(|m| {
                        m.starts_with("SQL injection detected") && m.ends_with("request blocked")
                    })
            })
        },
    );

    // The console switches SQL injection to alert: forwarded (and audited) within two polls.
    api.put_cnaf_policy(&cnaf_policy("alert"));
    let changed = Instant::now();
    loop {
        let (code, _) = http("POST", &format!("{base}/login"), Some(SEED_SQLI)).unwrap();
        if code == 200 {
            break;
        }
        assert!(
            changed.elapsed() < Duration::from_secs(3),
            "still blocked after two polls"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(app_log(&log).iter().any(|l| l == "POST /login"));

    let status = stop(&mut child);
    // the app was killed by the forwarded SIGTERM
    assert!(matches!(status.code(), Some(143) | Some(0)), "{status}");
    let local = read_audits(&s.path("audits.jsonl"));
    let effects: Vec<&str> = local
        .iter()
        .filter(|a| a["kind"] == "cnaf")
        .filter_map(|a| a["effect"].as_str())
        .collect();
    assert!(
        effects.contains(&"prevent") && effects.contains(&"alert"),
        "{local:?}"
    );
}

#[test]
fn defender_cnaf_alone_with_a_policy_file() {
    let s = Scratch::new("cnaf-alone");
    std::fs::write(s.path("cnaf.json"), cnaf_policy("prevent").to_string()).unwrap();
    let (app_port, cnaf_port) = (free_port(), free_port());
    let log = s.path("app.log");
    // the app, started separately (the sidecar layout)
    let argv = app_argv(app_port, &log);
    let mut app = Command::new(&argv[0]).args(&argv[1..]).spawn().unwrap();
    let mut proxy = Command::new(DEFENDER)
        .args(["cnaf", "--task", WEB_FAMILY, "--policy-file"])
        .arg(s.path("cnaf.json"))
        .arg("--audit-log")
        .arg(s.path("audits.jsonl"))
        .args([
            "--listen",
            &cnaf_port.to_string(),
            "--upstream",
            &app_port.to_string(),
        ])
        .env_remove("DEFENDER_CONSOLE_URL")
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{cnaf_port}");
    wait_serving(&format!("{base}/"), &mut proxy);
    let (code, _) = http("GET", &format!("{base}/?id=%27%20OR%20%271"), None).unwrap();
    assert_eq!(code, 403);
    let (code, _) = http("GET", &format!("{base}/search?q=union+jack+flag"), None).unwrap();
    assert_eq!(code, 200);
    let status = stop(&mut proxy);
    let _ = app.kill();
    let _ = app.wait();
    assert_eq!(status.code(), Some(0), "SIGTERM is a clean stop");
    let audits = read_audits(&s.path("audits.jsonl"));
    assert_eq!(audits.len(), 1, "{audits:?}");
    assert_eq!(audits[0]["kind"], "cnaf");
    assert_eq!(audits[0]["attack"], "sqli");
    assert_eq!(audits[0]["location"], "query parameter id");
}

#[test]
fn a_busy_cnaf_port_fails_before_the_app_starts() {
    let s = Scratch::new("cnaf-busy");
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = busy.local_addr().unwrap().port();
    std::fs::write(s.path("cnaf.json"), cnaf_policy("prevent").to_string()).unwrap();
    let marker = s.path("started");
    let out = Command::new(DEFENDER)
        .args(["run", "--task", WEB_FAMILY, "--cnaf-policy-file"])
        .arg(s.path("cnaf.json"))
        .args([
            "--cnaf-listen",
            &format!("127.0.0.1:{port}"),
            "--cnaf-upstream",
            "127.0.0.1:9",
        ])
        .env_remove("DEFENDER_CONSOLE_URL")
        .args([
            "--",
            "/bin/sh",
            "-c",
            &format!("touch {}", marker.display()),
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("CNAF: cannot listen on 127.0.0.1:{port}")),
        "{stderr}"
    );
    assert!(!marker.exists(), "the app started");
    // bad settings are usage errors naming the variable
    let out = Command::new(DEFENDER)
        .args(["run", "--cnaf-listen", "8080"])
        .env_remove("DEFENDER_CNAF_UPSTREAM")
        .env_remove("DEFENDER_CONSOLE_URL")
        .args(["--", "/bin/true"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("DEFENDER_CNAF_UPSTREAM"));
    drop(busy);
}
