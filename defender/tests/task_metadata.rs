//! `defender run` reading the ECS task metadata endpoint v4 (a loopback stand-in serving
//! realistic documents): the task ARN reaches every audit, the family/container/image fill the
//! scope when flags and `DEFENDER_*` do not set them, a silent endpoint does not hold up the
//! app, and a garbage answer is logged and retried in the background.

mod common;
mod metadata_endpoint;

use std::process::{Command, Output};
use std::time::{Duration, Instant};

use common::{read_audits, Scratch, DEFENDER};
use metadata_endpoint::*;

/// `defender run --policy-file P --audit-log L [flags] -- /bin/sh -c SCRIPT`, with the metadata
/// endpoint `uri` (none: not on ECS) and no `DEFENDER_*` scope in the environment.
fn run(
    s: &Scratch,
    uri: Option<&str>,
    policy: &serde_json::Value,
    flags: &[&str],
    script: &str,
) -> Output {
    std::fs::write(s.path("policy.json"), policy.to_string()).expect("policy");
    let _ = std::fs::remove_file(s.path("audit.jsonl"));
    let mut cmd = Command::new(DEFENDER);
    cmd.arg("run")
        .arg("--policy-file")
        .arg(s.path("policy.json"))
        .arg("--audit-log")
        .arg(s.path("audit.jsonl"))
        .args(flags)
        .args(["--", "/bin/sh", "-c", script])
        .current_dir(&s.dir)
        .env_remove("ECS_CONTAINER_METADATA_URI_V4");
    for var in [
        "DEFENDER_TASK_FAMILY",
        "DEFENDER_CONTAINER_NAME",
        "DEFENDER_IMAGE",
        "DEFENDER_CONSOLE_URL",
        "DEFENDER_CNAF_LISTEN",
    ] {
        cmd.env_remove(var);
    }
    if let Some(uri) = uri {
        cmd.env("ECS_CONTAINER_METADATA_URI_V4", uri);
    }
    cmd.output().expect("start defender")
}

/// A rule denying mkdir for workloads matching `tasks` and `containers`.
fn mkdir_rule(tasks: &str, containers: &str) -> serde_json::Value {
    serde_json::json!({"revision": 1, "rules": [{"name": "shop",
        "scope": {"tasks": [tasks], "containers": [containers]},
        "processes": {"effect": "prevent", "denied": ["mkdir"]}}]})
}

/// An audit's workload fields: task ARN, family, container, image.
fn workload(a: &serde_json::Value) -> [&str; 4] {
    ["task_arn", "task_family", "container", "image"].map(|k| a[k].as_str().unwrap_or("?"))
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The app's `mkdir made; echo rc=$?` saw its exec denied (the shell's 126).
fn assert_mkdir_was_denied(o: &Output) {
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        "rc=126\n",
        "{}",
        stderr(o)
    );
}

#[test]
fn the_task_arn_reaches_the_audits_and_the_metadata_fills_the_scope() {
    let s = Scratch::new("metadata-scope");
    let endpoint = MetadataEndpoint::start(Behaviour::Documents);
    // The rule names the family and container only the metadata knows: it applies, so they
    // were read before the app started.
    let o = run(
        &s,
        Some(&endpoint.uri()),
        &mkdir_rule(FAMILY, CONTAINER),
        &[],
        "mkdir made; echo rc=$?",
    );
    assert_mkdir_was_denied(&o);
    assert!(!s.path("made").exists());
    assert!(
        stderr(&o).contains(&format!("defender: task {TASK_ARN} (ECS task metadata)")),
        "{}",
        stderr(&o)
    );
    assert_eq!(
        endpoint.requests(),
        [PREFIX.to_string(), format!("{PREFIX}/task")]
    );
    let audits = read_audits(&s.path("audit.jsonl"));
    assert_eq!(audits.len(), 1, "{audits:?}");
    assert_eq!(workload(&audits[0]), [TASK_ARN, FAMILY, CONTAINER, IMAGE]);

    // Flags (and DEFENDER_*) win over the metadata; what they leave empty still comes from it.
    let o = run(
        &s,
        Some(&endpoint.uri()),
        &mkdir_rule("checkout", "worker"),
        &["--task", "checkout", "--container", "worker"],
        "mkdir made; echo rc=$?",
    );
    assert_mkdir_was_denied(&o);
    let audits = read_audits(&s.path("audit.jsonl"));
    assert_eq!(audits.len(), 1, "{audits:?}");
    assert_eq!(
        workload(&audits[0]),
        [TASK_ARN, "checkout", "worker", IMAGE]
    );

    // Without the endpoint (not on ECS) nothing is asked and the ARN stays empty.
    let o = run(
        &s,
        None,
        &mkdir_rule("*", "*"),
        &[],
        "mkdir made; echo rc=$?",
    );
    assert_mkdir_was_denied(&o);
    assert_eq!(read_audits(&s.path("audit.jsonl"))[0]["task_arn"], "");
    assert_eq!(endpoint.requests().len(), 4);
}

#[test]
fn a_silent_endpoint_does_not_hold_up_the_app() {
    let s = Scratch::new("metadata-silent");
    let endpoint = MetadataEndpoint::start(Behaviour::Silent);
    let policy = mkdir_rule("*", "*");
    let timed = |uri: Option<&str>| {
        let start = Instant::now();
        let o = run(&s, uri, &policy, &[], "echo started");
        (start.elapsed(), o)
    };
    let (bare, o) = timed(None);
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        "started\n",
        "{}",
        stderr(&o)
    );
    let (silent, o) = timed(Some(&endpoint.uri()));
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        "started\n",
        "{}",
        stderr(&o)
    );
    assert_eq!(o.status.code(), Some(0));
    // The start-up budget is 0.8 s; allow for a loaded machine, never the endpoint's silence
    // (it holds the connection for 10 s).
    assert!(
        silent < bare + Duration::from_millis(1500),
        "the app waited {silent:?} (without the endpoint: {bare:?})"
    );
    assert!(
        !endpoint.requests().is_empty(),
        "the endpoint was not asked"
    );
}

#[test]
fn a_garbage_answer_is_logged_and_the_arn_arrives_from_a_later_attempt() {
    let s = Scratch::new("metadata-garbage");
    let endpoint = MetadataEndpoint::start(Behaviour::GarbageFirst(1));
    // The first attempt fails, so the app starts without the ARN; the background retry (1 s
    // later) fills it before the app's mkdir.
    let o = run(
        &s,
        Some(&endpoint.uri()),
        &mkdir_rule("*", "*"),
        &[],
        "sleep 2.5; mkdir made; echo rc=$?",
    );
    let err = stderr(&o);
    assert_eq!(String::from_utf8_lossy(&o.stdout), "rc=126\n", "{err}");
    assert!(
        err.contains(&format!(
            "defender: ECS task metadata: GET {}: not ECS task metadata v4 JSON (expected value at line 1 column 1); \
             audits go without the task ARN until it answers (retrying in the background)",
            endpoint.uri()
        )),
        "{err}"
    );
    assert!(
        err.contains(&format!(
            "defender: ECS task metadata: task {TASK_ARN} (after 2 attempts"
        )),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
    let audits = read_audits(&s.path("audit.jsonl"));
    assert_eq!(audits.len(), 1, "{audits:?}");
    assert_eq!(audits[0]["task_arn"], TASK_ARN);
    assert_eq!(audits[0]["task_family"], FAMILY);
    assert_eq!(
        endpoint.requests()[..3],
        [
            PREFIX.to_string(),
            PREFIX.to_string(),
            format!("{PREFIX}/task")
        ]
    );
}
