//! CNAF in the real `defender run` and `defender cnaf`, over real HTTP on 127.0.0.1: the seed's
//! SQL injection gets a 403 and its audit reaches the console (and `--audit-log`), clean
//! requests reach the app, a console policy change applies to the running proxy, a busy port
//! fails before the app starts. With `DEFENDER_CNAF=console` the proxy listens on the console
//! rule's ports and follows them live: moved, protections changed without a restart, stopped;
//! a busy port named by the console is reported once and retried, the app keeps running.
//! The app is a small Python HTTP server started by the defender.

#![allow(clippy::unwrap_used)] // test set-up: a failed step should fail the test loudly

mod console_harness;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use console_harness::*;
use serde_json::{json, Value};

const SEED_SQLI: &str =
    r#"{"-1+union+all+select+1,group_concat(user,0x3a,file_priv),3,4+from+mysql.user--"}"#;
const WEB_FAMILY: &str = "twistlock-fargate-task-web";
const PYTHON: &str = "/usr/bin/python3";
/// Two policy polls (`DEFENDER_POLL_SECONDS=1`) and the time to act on the second.
const TWO_POLLS: Duration = Duration::from_secs(3);

/// The app: answers every GET/POST with 200 "It works!" and logs `METHOD PATH` to `log`.
/// With `probe`, it first tries to connect to that loopback port and logs `start: proxy up`
/// or `start: proxy down`.
fn app_argv(port: u16, log: &Path, probe: Option<u16>) -> Vec<String> {
    assert!(
        Path::new(PYTHON).is_file(),
        "{PYTHON} is needed as the test app behind CNAF: apt-get install python3"
    );
    let script = format!(
        r#"
import http.server, socket
probe = {probe}
if probe:
    try:
        socket.create_connection(("127.0.0.1", probe), timeout=2).close()
        state = "up"
    except OSError:
        state = "down"
    with open({log:?}, "a") as f: f.write("start: proxy " + state + "\n")
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
        log = log.display().to_string(),
        probe = probe.unwrap_or(0)
    );
    vec![PYTHON.into(), "-c".into(), script]
}

/// The CNAF policy with rule `web` for the web family on these ports.
fn cnaf_rule(sqli: &str, external_port: u16, app_port: u16, disabled: bool) -> Value {
    json!({"revision": 1, "rules": [{
        "name": "web", "disabled": disabled, "scope": {"tasks": ["twistlock-fargate-task*"]},
        "external_port": external_port, "app_port": app_port, "body_limit": 131072,
        "protections": {"sqli": sqli, "xss": "prevent", "cmdi": "prevent",
            "code_injection": "alert", "lfi": "prevent", "ldap": "prevent",
            "graphql": "alert", "attack_tools": "alert", "shellshock": "prevent",
            "malformed": "alert"}}]})
}

/// The seed's rule (8080 → 80): for policy files, whose ports the proxy does not follow.
fn cnaf_policy(sqli: &str) -> Value {
    cnaf_rule(sqli, 8080, 80, false)
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
    let (app_port, cnaf_port) = (free_port(), free_port());
    // the rule names the same ports as the settings (a rule's ports override them)
    api.put_cnaf_policy(&cnaf_rule("prevent", cnaf_port, app_port, false));
    let token = api.defender_token();
    let log = s.path("app.log");
    let mut child = defender(&console, &token, &s.path("state"))
        .env("DEFENDER_TASK_FAMILY", WEB_FAMILY)
        .env("DEFENDER_CONTAINER_NAME", "web")
        .env("DEFENDER_CNAF_LISTEN", format!("127.0.0.1:{cnaf_port}"))
        .env("DEFENDER_CNAF_UPSTREAM", format!("127.0.0.1:{app_port}"))
        .arg("--audit-log")
        .arg(s.path("audits.jsonl"))
        .arg("--")
        .args(app_argv(app_port, &log, None))
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
    api.put_cnaf_policy(&cnaf_rule("alert", cnaf_port, app_port, false));
    let changed = Instant::now();
    loop {
        let (code, _) = http("POST", &format!("{base}/login"), Some(SEED_SQLI)).unwrap();
        if code == 200 {
            break;
        }
        assert!(
            changed.elapsed() < TWO_POLLS,
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
    let argv = app_argv(app_port, &log, None);
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
        .env_remove("DEFENDER_CNAF")
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
        .env_remove("DEFENDER_CNAF")
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

/// True when nothing listens on `127.0.0.1:port` (the connection is refused).
fn refused(port: u16) -> bool {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    matches!(
        TcpStream::connect_timeout(&addr, Duration::from_secs(1)),
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused
    )
}

/// `GET url` answered 200 "It works!" (the app, through the proxy).
fn serves(url: &str) -> bool {
    matches!(http("GET", url, None), Ok((200, ref b)) if b == "It works!")
}

/// Polls `f` every 100 ms until it holds; panics with `what` after `within`.
fn within(within: Duration, what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !f() {
        assert!(Instant::now() < deadline, "not within {within:?}: {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// One client connection kept open across requests (HTTP/1.1 keep-alive).
struct KeepAlive(BufReader<TcpStream>);

impl KeepAlive {
    fn open(port: u16) -> KeepAlive {
        let s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        KeepAlive(BufReader::new(s))
    }

    /// `GET path` on this connection: the status, or why there was none (connection closed).
    fn get(&mut self, path: &str) -> Result<u16, String> {
        let req = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
        self.0
            .get_mut()
            .write_all(req.as_bytes())
            .map_err(|e| e.to_string())?;
        let mut head = Vec::new();
        loop {
            let mut line = String::new();
            if self.0.read_line(&mut line).map_err(|e| e.to_string())? == 0 {
                return Err(format!("connection closed after {head:?}"));
            }
            if line == "\r\n" {
                break;
            }
            head.push(line.trim_end().to_string());
        }
        let status = head
            .first()
            .and_then(|l| l.split(' ').nth(1))
            .and_then(|c| c.parse().ok())
            .ok_or_else(|| format!("no status line: {head:?}"))?;
        let length: usize = head
            .iter()
            .find_map(|h| {
                let (name, value) = h.split_once(':')?;
                name.eq_ignore_ascii_case("content-length")
                    .then(|| value.trim().parse().ok())?
            })
            .ok_or_else(|| format!("no Content-Length: {head:?}"))?;
        let mut body = vec![0; length];
        self.0.read_exact(&mut body).map_err(|e| e.to_string())?;
        Ok(status)
    }
}

/// The defender's stderr lines so far (the pipe is drained as it comes).
fn drain(rx: &mpsc::Receiver<String>, seen: &mut Vec<String>) {
    while let Ok(line) = rx.try_recv() {
        seen.push(line);
    }
}

/// `defender run` with `DEFENDER_CNAF=console` and no `DEFENDER_CNAF_LISTEN`, the app on
/// `app_port` probing `probe` at start; stderr is piped.
fn console_mode(
    console: &ConsoleProc,
    token: &str,
    s: &Scratch,
    app_port: u16,
    probe: u16,
) -> Child {
    defender(console, token, &s.path("state"))
        .env("DEFENDER_TASK_FAMILY", WEB_FAMILY)
        .env("DEFENDER_CONTAINER_NAME", "web")
        .env(protect::embed::ENV_CNAF, protect::embed::CNAF_FROM_CONSOLE)
        .arg("--")
        .args(app_argv(app_port, &s.path("app.log"), Some(probe)))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

#[test]
fn console_mode_listens_on_the_rules_ports_and_follows_them_live() {
    let s = Scratch::new("cnaf-console-ports");
    let console = ConsoleProc::start(&s.path("console"));
    let api = Api::login(&console);
    let (app_port, first, second) = (free_port(), free_port(), free_port());
    api.put_cnaf_policy(&cnaf_rule("prevent", first, app_port, false));
    let token = api.defender_token();
    let mut child = console_mode(&console, &token, &s, app_port, first);
    let stderr = lines(child.stderr.take().unwrap());
    let mut said = Vec::new();
    let url = |port: u16, path: &str| format!("http://127.0.0.1:{port}{path}");
    wait_serving(&url(first, "/"), &mut child);
    // the proxy was up before the app started
    assert!(
        app_log(&s.path("app.log")).contains(&"start: proxy up".to_string()),
        "{:?}",
        app_log(&s.path("app.log"))
    );
    let (code, _) = http("POST", &url(first, "/login"), Some(SEED_SQLI)).unwrap();
    assert_eq!(code, 403);
    assert!(serves(&url(first, "/products?id=42")));

    // new ports: the new one serves and the old one refuses connections within two polls
    api.put_cnaf_policy(&cnaf_rule("prevent", second, app_port, false));
    within(TWO_POLLS, "the proxy moved to the rule's new port", || {
        serves(&url(second, "/")) && refused(first)
    });
    let (code, _) = http("POST", &url(second, "/login"), Some(SEED_SQLI)).unwrap();
    assert_eq!(code, 403, "the rule's protections came along");

    // protections change: applied to the running proxy, no restart (a kept-alive connection
    // survives it; a restart would close it)
    let mut kept = KeepAlive::open(second);
    assert_eq!(kept.get("/kept"), Ok(200));
    api.put_cnaf_policy(&cnaf_rule("disable", second, app_port, false));
    within(TWO_POLLS, "sqli disabled: the attack passes", || {
        matches!(
            http("POST", &url(second, "/login"), Some(SEED_SQLI)),
            Ok((200, _))
        )
    });
    assert_eq!(kept.get("/still-kept"), Ok(200), "the proxy was restarted");
    assert!(app_log(&s.path("app.log")).contains(&"POST /login".to_string()));

    // the rule disabled: no proxy, the app keeps running
    api.put_cnaf_policy(&cnaf_rule("disable", second, app_port, true));
    within(TWO_POLLS, "the disabled rule's port refuses", || {
        refused(second)
    });
    assert!(child.try_wait().unwrap().is_none(), "the defender exited");
    assert!(serves(&url(app_port, "/direct")), "the app stopped");

    let status = stop(&mut child);
    assert!(matches!(status.code(), Some(143) | Some(0)), "{status}");
    drain(&stderr, &mut said);
    let cnaf: Vec<&String> = said
        .iter()
        .filter(|l| l.starts_with("defender: cnaf:"))
        .collect();
    assert!(
        cnaf.contains(&&format!(
            "defender: cnaf: listening on 0.0.0.0:{second}, forwarding to 127.0.0.1:{app_port}"
        )),
        "{cnaf:?}"
    );
    assert!(
        cnaf.contains(&&format!(
            "defender: cnaf: stopped listening on 0.0.0.0:{second}: no enabled CNAF rule for \
             task family \"{WEB_FAMILY}\" names ports"
        )),
        "{cnaf:?}"
    );
}

#[test]
fn a_busy_port_named_by_the_console_is_reported_once_and_retried() {
    let s = Scratch::new("cnaf-console-busy");
    let console = ConsoleProc::start(&s.path("console"));
    let api = Api::login(&console);
    let (app_port, first) = (free_port(), free_port());
    api.put_cnaf_policy(&cnaf_rule("prevent", first, app_port, false));
    let token = api.defender_token();
    let mut child = console_mode(&console, &token, &s, app_port, first);
    let stderr = lines(child.stderr.take().unwrap());
    let mut said = Vec::new();
    let url = |port: u16, path: &str| format!("http://127.0.0.1:{port}{path}");
    wait_serving(&url(first, "/"), &mut child);

    // someone else listens on the port the console now names
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let taken = busy.local_addr().unwrap().port();
    api.put_cnaf_policy(&cnaf_rule("prevent", taken, app_port, false));
    let report = format!(
        "defender: cnaf: cannot listen on 0.0.0.0:{taken} for CNAF rule \"web\": Address already \
         in use (os error 98) (is another process using the port? free it or change the rule's \
         external_port); still listening on 0.0.0.0:{first}; trying again at each policy poll"
    );
    within(TWO_POLLS, "the busy port reported", || {
        drain(&stderr, &mut said);
        said.contains(&report)
    });
    // several polls later: reported once, the old port still guards the app, the app runs
    std::thread::sleep(Duration::from_millis(3500));
    drain(&stderr, &mut said);
    let reports = said.iter().filter(|l| l.contains("cannot listen")).count();
    assert_eq!(reports, 1, "{said:?}");
    assert!(child.try_wait().unwrap().is_none(), "the defender exited");
    let (code, _) = http("POST", &url(first, "/login"), Some(SEED_SQLI)).unwrap();
    assert_eq!(code, 403);

    // the port comes free: the next retry moves the proxy there
    drop(busy);
    within(TWO_POLLS, "the proxy moved once the port was free", || {
        serves(&url(taken, "/")) && refused(first)
    });
    let status = stop(&mut child);
    assert!(matches!(status.code(), Some(143) | Some(0)), "{status}");
}

#[test]
fn defender_cnaf_settings_that_cannot_work_are_usage_errors() {
    let s = Scratch::new("cnaf-mode-usage");
    std::fs::write(s.path("cnaf.json"), cnaf_policy("prevent").to_string()).unwrap();
    let run = |env: &[(&str, &str)], args: &[&str]| {
        let mut cmd = Command::new(DEFENDER);
        cmd.arg("run").args(args).args([
            "--task",
            WEB_FAMILY,
            "--container",
            "web",
            "--image",
            "i",
        ]);
        for var in [
            "DEFENDER_CNAF",
            "DEFENDER_CNAF_LISTEN",
            "DEFENDER_CNAF_UPSTREAM",
            "DEFENDER_CONSOLE_URL",
            "DEFENDER_TOKEN",
        ] {
            cmd.env_remove(var);
        }
        cmd.envs(env.iter().copied())
            .args(["--", "/bin/true"])
            .output()
            .unwrap()
    };
    let file = s.path("cnaf.json");
    let file = file.to_str().unwrap();
    // environment, arguments, the whole message
    type Case<'a> = (&'a [(&'a str, &'a str)], &'a [&'a str], &'a str);
    let cases: [Case; 4] = [
        (
            &[("DEFENDER_CNAF", "on")],
            &[],
            "defender: DEFENDER_CNAF (--cnaf) \"on\": not a CNAF mode; use \"console\" (the proxy \
             listens on the ports of the console's CNAF rule for the task family, and follows \
             them live), or leave it unset or \"off\" (the proxy runs only with \
             DEFENDER_CNAF_LISTEN)",
        ),
        (
            &[],
            &["--cnaf=yes"],
            "defender: DEFENDER_CNAF (--cnaf) \"yes\": not a CNAF mode; use \"console\" (the proxy \
             listens on the ports of the console's CNAF rule for the task family, and follows \
             them live), or leave it unset or \"off\" (the proxy runs only with \
             DEFENDER_CNAF_LISTEN)",
        ),
        (
            &[("DEFENDER_CNAF", "console")],
            &[],
            "defender: DEFENDER_CNAF=console (--cnaf): the proxy's ports come from the console's \
             CNAF rule, but DEFENDER_CONSOLE_URL (--console-url) is not set",
        ),
        (
            &[
                ("DEFENDER_CNAF", "console"),
                ("DEFENDER_CONSOLE_URL", "http://127.0.0.1:9"),
                ("DEFENDER_TOKEN", "t"),
            ],
            &["--cnaf-policy-file", file],
            "defender: DEFENDER_CNAF=console (--cnaf) takes the CNAF rule and its ports from the \
             console, and --cnaf-policy-file replaces that rule: set one or the other",
        ),
    ];
    for (env, args, message) in cases {
        let out = run(env, args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{env:?} {args:?}: {stderr}");
        assert_eq!(stderr.trim_end(), message, "{env:?} {args:?}");
    }
    // off is the default: no proxy, the app runs
    let out = run(&[("DEFENDER_CNAF", "off")], &[]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn defender_cnaf_alone_follows_the_console_rule() {
    let s = Scratch::new("cnaf-alone-console");
    let console = ConsoleProc::start(&s.path("console"));
    let api = Api::login(&console);
    let (app_port, port) = (free_port(), free_port());
    api.put_cnaf_policy(&cnaf_rule("prevent", port, app_port, false));
    let token = api.defender_token();
    let argv = app_argv(app_port, &s.path("app.log"), None);
    let mut app = Command::new(&argv[0]).args(&argv[1..]).spawn().unwrap();
    let mut proxy = Command::new(DEFENDER)
        .args(["cnaf", "--cnaf", "console"])
        .env("DEFENDER_CONSOLE_URL", console.url())
        .env("DEFENDER_TOKEN", &token)
        .env("DEFENDER_TASK_FAMILY", WEB_FAMILY)
        .env("DEFENDER_CONTAINER_NAME", "web")
        .env("DEFENDER_IMAGE", IMAGE)
        .env("DEFENDER_POLL_SECONDS", "1")
        .env("DEFENDER_STATE_DIR", s.path("state"))
        .env_remove("DEFENDER_CNAF")
        .env_remove("DEFENDER_CNAF_LISTEN")
        .env_remove("DEFENDER_CNAF_UPSTREAM")
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let url = format!("http://127.0.0.1:{port}");
    wait_serving(&format!("{url}/"), &mut proxy);
    let (code, _) = http("GET", &format!("{url}/?id=%27%20OR%20%271"), None).unwrap();
    assert_eq!(code, 403);
    api.put_cnaf_policy(&cnaf_rule("prevent", port, app_port, true));
    within(TWO_POLLS, "the disabled rule's port refuses", || {
        refused(port)
    });
    assert!(proxy.try_wait().unwrap().is_none(), "defender cnaf exited");
    let status = stop(&mut proxy);
    let _ = app.kill();
    let _ = app.wait();
    assert_eq!(status.code(), Some(0), "SIGTERM is a clean stop");
}
