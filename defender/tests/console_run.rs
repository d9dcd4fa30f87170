//! `defender run` with the real `lambda-console` binary over real HTTP on 127.0.0.1: the seed's
//! mkdir audit reaches the console, a policy change applies to a running app within two polls,
//! a 10 s console outage loses no audit, and security startup waits for the policy.
//! (The client library alone is tested in `lambda-console/tests/defender_client.rs`.)

#![allow(clippy::unwrap_used)] // test set-up: a failed step should fail the test loudly

mod console_harness;
mod metadata_endpoint;

use std::process::Stdio;
use std::time::{Duration, Instant};

use console_harness::*;

fn is_seed_mkdir(m: &str) -> bool {
    m.contains("mkdir launched from")
        && m.ends_with("and is explicitly blocked in the runtime rule. Full command: mkdir test")
}

#[test]
fn the_seeds_mkdir_audit_reaches_the_console_and_the_audit_log() {
    let s = Scratch::new("seed");
    // On Fargate: the task metadata endpoint names the task, whose ARN every audit carries.
    let metadata =
        metadata_endpoint::MetadataEndpoint::start(metadata_endpoint::Behaviour::Documents);
    let console = ConsoleProc::start(&s.path("console"));
    let api = Api::login(&console);
    api.put_runtime_policy(&mkdir_policy(1, "prevent", "availability"));
    let token = api.defender_token();
    let work = s.path("work");
    std::fs::create_dir_all(&work).unwrap();
    let out = defender(&console, &token, &s.path("state"))
        .arg("--audit-log")
        .arg(s.path("audits.jsonl"))
        .args(["--", "/bin/sh", "-c", "mkdir test || echo refused"])
        .env("ECS_CONTAINER_METADATA_URI_V4", metadata.uri())
        .current_dir(&work)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(0),
        "stdout {stdout}\nstderr {stderr}"
    );
    assert!(stdout.contains("refused"), "mkdir ran: {stdout}\n{stderr}");
    assert!(!work.join("test").exists(), "the directory was created");
    // flushed at exit: in the console without waiting for another run
    let runtime = api.audits(false);
    let hit = runtime
        .iter()
        .find(|a| is_seed_mkdir(a["message"].as_str().unwrap_or("")))
        .unwrap_or_else(|| panic!("no mkdir audit in the console: {runtime:?}\n{stderr}"));
    assert_eq!(hit["kind"], "process");
    assert_eq!(hit["effect"], "prevent");
    assert_eq!(hit["container"], FAMILY);
    assert_eq!(hit["image"], IMAGE);
    assert_eq!(hit["command"], "mkdir test");
    assert_eq!(hit["task_arn"], metadata_endpoint::TASK_ARN);
    // DEFENDER_* (from the transform) win over the metadata's names.
    assert_eq!(hit["task_family"], FAMILY);
    let local = read_audits(&s.path("audits.jsonl"));
    assert!(
        local
            .iter()
            .any(|a| is_seed_mkdir(a["message"].as_str().unwrap_or(""))),
        "--audit-log lacks it: {local:?}"
    );
    // the policy was kept on disk for the next start
    assert!(s.path("state/policy.json").is_file());
}

#[test]
fn alert_to_prevent_applies_to_the_running_app_within_two_polls() {
    let s = Scratch::new("switch");
    let console = ConsoleProc::start(&s.path("console"));
    let api = Api::login(&console);
    api.put_runtime_policy(&mkdir_policy(1, "alert", "availability"));
    let token = api.defender_token();
    let work = s.path("work");
    std::fs::create_dir_all(&work).unwrap();
    let poll = Duration::from_secs(1);
    let app = "i=0; while [ ! -e stop ]; do i=$((i+1)); \
               if mkdir d$i 2>/dev/null; then echo made $i; else echo refused $i; fi; sleep 0.1; done";
    let mut child = defender(&console, &token, &s.path("state"))
        .args(["--", "/bin/sh", "-c", app])
        .current_dir(&work)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let out = lines(child.stdout.take().unwrap());
    let first = out.recv_timeout(Duration::from_secs(20)).unwrap();
    assert!(first.starts_with("made"), "alert must allow: {first}");
    api.put_runtime_policy(&mkdir_policy(2, "prevent", "availability"));
    let changed = Instant::now();
    let took = loop {
        let line = out
            .recv_timeout(Duration::from_secs(10))
            .expect("the app went quiet");
        if line.starts_with("refused") {
            break changed.elapsed();
        }
        assert!(
            changed.elapsed() < Duration::from_secs(10),
            "still allowed: {line}"
        );
    };
    std::fs::write(work.join("stop"), "").unwrap();
    let status = child.wait().unwrap();
    assert!(status.success(), "{status}");
    // two poll intervals, plus one turn of the app's loop
    assert!(
        took <= 2 * poll + Duration::from_millis(300),
        "prevent took {took:?} (poll {poll:?})"
    );
    // the alert audits and the prevent audits both reached the console
    let effects: Vec<String> = api
        .audits(false)
        .iter()
        .map(|a| a["effect"].as_str().unwrap_or("").to_string())
        .collect();
    assert!(effects.iter().any(|e| e == "alert"), "{effects:?}");
    assert!(effects.iter().any(|e| e == "prevent"), "{effects:?}");
}

#[test]
fn a_ten_second_console_outage_while_the_app_violates_loses_no_audit() {
    let s = Scratch::new("outage");
    let mut console = ConsoleProc::start(&s.path("console"));
    let api = Api::login(&console);
    api.put_runtime_policy(&mkdir_policy(1, "alert", "availability"));
    let token = api.defender_token();
    let work = s.path("work");
    std::fs::create_dir_all(&work).unwrap();
    let log = s.path("audits.jsonl");
    let app = "i=0; while [ ! -e stop ]; do i=$((i+1)); mkdir x$i; sleep 0.05; done";
    let mut child = defender(&console, &token, &s.path("state"))
        .arg("--audit-log")
        .arg(&log)
        .args(["--", "/bin/sh", "-c", app])
        .current_dir(&work)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let count = |api: &Api| {
        api.messages(false)
            .iter()
            .filter(|m| m.contains("Full command: mkdir x"))
            .count()
    };
    wait_until(
        "first audits in the console",
        Duration::from_secs(20),
        || count(&api) > 0,
    );
    console.stop();
    let before = read_audits(&log).len();
    std::thread::sleep(Duration::from_secs(10));
    let during = read_audits(&log).len() - before;
    assert!(during > 20, "the app did not keep violating: {during}");
    console.restart();
    let api = Api::login(&console);
    // while the app keeps running, the backlog of the outage arrives (retry backoff ≤ 30 s)
    let backlog = read_audits(&log).len();
    wait_until(
        "the outage's backlog in the console",
        Duration::from_secs(45),
        || count(&api) >= backlog,
    );
    std::fs::write(work.join("stop"), "").unwrap();
    let status = child.wait().unwrap();
    assert!(status.success(), "{status}");
    let made = read_audits(&log)
        .iter()
        .filter(|a| {
            a["message"]
                .as_str()
                .unwrap_or("")
                .contains("Full command: mkdir x")
        })
        .count();
    let dirs = std::fs::read_dir(&work).unwrap().count() - 1; // minus `stop`
    assert_eq!(made, dirs, "the audit log misses violations");
    // what the exit flush could not send stays spooled: ship it with a short run
    let mut last;
    let mut reruns = 0;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        last = count(&api);
        if last >= made || Instant::now() > deadline {
            eprintln!("{made} audits ({during} during the outage); {reruns} extra start(s) to drain the spool");
            break;
        }
        reruns += 1;
        let _ = defender(&console, &token, &s.path("state"))
            .args(["--", "/bin/true"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
    assert_eq!(last, made, "the console lost audits of the outage");
}

#[test]
fn security_startup_waits_for_the_policy_and_fails_when_it_never_comes() {
    let s = Scratch::new("security");
    let mut console = ConsoleProc::start(&s.path("console"));
    let api = Api::login(&console);
    api.put_runtime_policy(&mkdir_policy(1, "prevent", "security"));
    let token = api.defender_token();
    let state = s.path("state");
    let marker = s.path("started");
    let app = format!("date +%s.%N > {}", marker.display());
    // First start: fetches the policy (and caches it, with its security startup).
    let ok = defender(&console, &token, &state)
        .args(["--", "/bin/sh", "-c", &app])
        .output()
        .unwrap();
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    std::fs::remove_file(&marker).unwrap();

    // Console down: the cached rule says security, so the app waits for the console.
    console.stop();
    let mut child = defender(&console, &token, &state)
        .args(["--", "/bin/sh", "-c", &app])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(3));
    assert!(
        !marker.exists(),
        "the app started before any policy was fetched"
    );
    assert!(
        child.try_wait().unwrap().is_none(),
        "the defender gave up early"
    );
    console.restart();
    let back = Instant::now();
    let status = child.wait().unwrap();
    assert!(status.success(), "{status}");
    assert!(marker.exists(), "the app never started");
    assert!(back.elapsed() < Duration::from_secs(15));

    // Console down for longer than the bound: exit 1 with a clear message, app not started.
    console.stop();
    std::fs::remove_file(&marker).unwrap();
    let out = defender(&console, &token, &state)
        .env("DEFENDER_STARTUP_TIMEOUT", "2")
        .args(["--", "/bin/sh", "-c", &app])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("security startup: no policy from the console")
            && stderr.contains("the app was not started"),
        "{stderr}"
    );
    assert!(!marker.exists());

    // No cached copy, console down: DEFENDER_STARTUP=security decides the same way.
    let out = defender(&console, &token, &s.path("fresh-state"))
        .env("DEFENDER_STARTUP", "security")
        .env("DEFENDER_STARTUP_TIMEOUT", "2")
        .args(["--", "/bin/sh", "-c", &app])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(!marker.exists());
    // ... while availability (the default) starts the app at once.
    let started = Instant::now();
    let out = defender(&console, &token, &s.path("fresh-state-2"))
        .args(["--", "/bin/sh", "-c", &app])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(marker.exists());
    assert!(started.elapsed() < Duration::from_secs(15));
}

#[test]
fn a_cached_policy_written_by_anyone_but_the_defender_is_ignored() {
    // The state directory is on the app's filesystem: a hostile app can rewrite the cached
    // policy, e.g. to turn a `security` startup with a `prevent` rule into an open door for
    // the next start while the console is unreachable.
    let s = Scratch::new("forged-cache");
    let mut console = ConsoleProc::start(&s.path("console"));
    let api = Api::login(&console);
    api.put_runtime_policy(&mkdir_policy(1, "prevent", "security"));
    let token = api.defender_token();
    let state = s.path("state");
    let ok = defender(&console, &token, &state)
        .args(["--", "/bin/true"])
        .output()
        .unwrap();
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let cache = state.join("policy.json");
    let sealed: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&cache).unwrap()).unwrap();
    let body = sealed["body"].as_str().expect("a sealed body");
    assert!(body.contains("\"security\""), "{body}");
    // The forgery keeps the seal but says `availability`; a second one is the old, unsealed
    // format an app could also write.
    let forged_body = body
        .replace("\"security\"", "\"availability\"")
        .replace("\"prevent\"", "\"alert\"");
    let forgeries = [
        serde_json::json!({"mac": sealed["mac"], "body": forged_body}).to_string(),
        forged_body.clone(),
    ];
    console.stop();
    let marker = s.path("started");
    let app = format!("date > {}", marker.display());
    for forged in forgeries {
        std::fs::write(&cache, forged).unwrap();
        let out = defender(&console, &token, &state)
            .env("DEFENDER_STARTUP", "security")
            .env("DEFENDER_STARTUP_TIMEOUT", "2")
            .args(["--", "/bin/sh", "-c", &app])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("ignoring the cached policy")
                && stderr.contains("seal does not verify"),
            "{stderr}"
        );
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert!(
            !marker.exists(),
            "the forged availability start let the app run"
        );
    }
}

#[test]
fn a_spooled_batch_written_by_the_app_is_never_shipped() {
    // The spool is on the app's filesystem: a batch the app drops there must not reach the
    // console under the defender's credential.
    let s = Scratch::new("forged-spool");
    let mut console = ConsoleProc::start(&s.path("console"));
    let api = Api::login(&console);
    api.put_runtime_policy(&mkdir_policy(1, "alert", "availability"));
    let token = api.defender_token();
    let state = s.path("state");
    let work = s.path("work");
    std::fs::create_dir_all(&work).unwrap();
    // Console down: the real audit waits in the spool, sealed.
    let ok = defender(&console, &token, &state)
        .args(["--", "/bin/true"])
        .output()
        .unwrap();
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    console.stop();
    let out = defender(&console, &token, &state)
        .env("DEFENDER_STARTUP", "availability")
        .args(["--", "/bin/sh", "-c", "mkdir real"])
        .current_dir(&work)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let spool = state.join("spool");
    let real: Vec<_> = std::fs::read_dir(&spool)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    assert!(!real.is_empty(), "the outage's audit is spooled");
    // The app's forgeries: the real batch with another message, unsealed and with the real
    // seal kept, under names that sort first.
    let sealed: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&real[0]).unwrap()).unwrap();
    let body = sealed["body"].as_str().expect("a sealed body");
    assert!(body.contains("mkdir real"), "{body}");
    let forged = body
        .replace("mkdir real", "mkdir forged")
        .replace("\"batch_id\":\"", "\"batch_id\":\"x");
    std::fs::write(spool.join("0000000000001-00000001-1.json"), &forged).unwrap();
    std::fs::write(
        spool.join("0000000000002-00000001-1.json"),
        serde_json::json!({"mac": sealed["mac"], "body": forged}).to_string(),
    )
    .unwrap();
    console.restart();
    let api = Api::login(&console);
    let out = defender(&console, &token, &state)
        .args(["--", "/bin/true"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        stderr.matches("discarded spool file").count(),
        2,
        "{stderr}"
    );
    wait_until(
        "the real audit in the console",
        Duration::from_secs(20),
        || {
            api.messages(false)
                .iter()
                .any(|m| m.contains("Full command: mkdir real"))
        },
    );
    let messages = api.messages(false);
    assert!(
        !messages.iter().any(|m| m.contains("forged")),
        "a forged batch reached the console: {messages:?}"
    );
}

#[test]
fn a_policy_file_wins_over_the_console_which_still_gets_the_audits() {
    let s = Scratch::new("file-wins");
    let console = ConsoleProc::start(&s.path("console"));
    let api = Api::login(&console);
    // the console would allow mkdir (alert); the local file prevents it
    api.put_runtime_policy(&mkdir_policy(1, "alert", "availability"));
    std::fs::write(
        s.path("policy.json"),
        mkdir_policy(9, "prevent", "security").to_string(),
    )
    .unwrap();
    let token = api.defender_token();
    let work = s.path("work");
    std::fs::create_dir_all(&work).unwrap();
    let out = defender(&console, &token, &s.path("state"))
        .arg("--policy-file")
        .arg(s.path("policy.json"))
        .args([
            "--",
            "/bin/sh",
            "-c",
            "sleep 2.5; mkdir test || echo refused",
        ])
        .current_dir(&work)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // still refused after two polls of the console's alert policy
    assert!(stdout.contains("refused"), "{stdout}");
    assert!(!work.join("test").exists());
    let runtime = api.audits(false);
    assert!(
        runtime
            .iter()
            .any(|a| is_seed_mkdir(a["message"].as_str().unwrap_or("")) && a["effect"] == "prevent"),
        "{runtime:?}"
    );
}
