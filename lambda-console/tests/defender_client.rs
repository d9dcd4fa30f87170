//! The defender's console client (`defender::console`) against this console served over real
//! HTTP on 127.0.0.1: policy sync with ETags, the last good policy on disk, audit shipping
//! through a console outage, and drop counting.

mod common;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::Method;
use chrono::Utc;
use common::{call, console, Console as TestConsole};
use defender::console::{Console, ConsoleConfig, ShipperLimits};
use protect::api::{DefenderIdentity, PolicyBundle};
use protect::audit::{AuditKind, AuditRecord};
use protect::policy::Effect;
use serde_json::{json, Value};

/// Serves `app` on `addr` on its own runtime; dropping the guard cuts every connection (an
/// outage, not a graceful stop).
struct Served {
    rt: Option<tokio::runtime::Runtime>,
}

impl Drop for Served {
    fn drop(&mut self) {
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
    }
}

fn serve(app: axum::Router, addr: SocketAddr) -> (Served, SocketAddr) {
    // A runtime of its own, built off the test's runtime thread.
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let listener = rt.block_on(async {
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                match tokio::net::TcpListener::bind(addr).await {
                    Ok(l) => break l,
                    Err(_) if Instant::now() < deadline => {
                        tokio::time::sleep(Duration::from_millis(100)).await
                    }
                    Err(e) => panic!("bind {addr}: {e}"),
                }
            }
        });
        let local = listener.local_addr().expect("addr");
        rt.spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        (Served { rt: Some(rt) }, local)
    })
    .join()
    .expect("server thread")
}

fn identity() -> DefenderIdentity {
    DefenderIdentity {
        task: "twistlock-fargate-task".into(),
        container: "twistlock-fargate-task".into(),
        image: "matthewabq/twistlock-fargate-auto".into(),
        instance: Some("task-7".into()),
        version: "0.1.0".into(),
    }
}

fn config(addr: SocketAddr, token: &str, dir: &std::path::Path) -> ConsoleConfig {
    let mut c = ConsoleConfig::new(format!("http://{addr}"), token, identity());
    c.poll_interval = Duration::from_secs(1);
    c.state_dir = dir.to_path_buf();
    c.request_timeout = Duration::from_secs(2);
    c.limits = ShipperLimits {
        linger: Duration::from_millis(100),
        backoff_min: Duration::from_millis(100),
        backoff_max: Duration::from_millis(1000),
        ..ShipperLimits::default()
    };
    c
}

async fn put_policy(c: &TestConsole, effect: &str) {
    let mut p: Value = serde_json::from_str(&common::example("policy.json")).expect("json");
    p["rules"][0]["processes"]["effect"] = json!(effect);
    let r = call(
        &c.app,
        Method::PUT,
        "/api/v1/policies/runtime/app-embedded",
        Some(&c.admin),
        Some(p),
    )
    .await;
    assert!(r.status.is_success(), "{}", r.text);
}

fn violation(i: usize) -> AuditRecord {
    let mut r = AuditRecord::new(
        AuditKind::Process,
        Effect::Alert,
        "sample",
        format!("/bin/mkdir launched from /bin/dash and is explicitly blocked in the runtime rule. Full command: mkdir d{i}"),
    );
    r.task_family = "twistlock-fargate-task".into();
    r.container = "twistlock-fargate-task".into();
    r.command = Some(format!("mkdir d{i}"));
    r
}

async fn audit_count(c: &TestConsole) -> usize {
    let mut total = 0;
    let mut cursor = String::new();
    loop {
        let r = call(
            &c.app,
            Method::GET,
            &format!("/api/v1/audits/runtime/app-embedded?limit=1000{cursor}"),
            Some(&c.auditor),
            None,
        )
        .await;
        total += r.body["audits"].as_array().map_or(0, Vec::len);
        match r.body["next_cursor"].as_str() {
            Some(n) => cursor = format!("&cursor={n}"),
            None => return total,
        }
    }
}

async fn wait_until<F, Fut>(what: &str, timeout: Duration, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    while !f().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policy_changes_reach_the_defender_within_two_polls() {
    let c = console().await;
    put_policy(&c, "alert").await;
    let (served, addr) = serve(c.app.clone(), "127.0.0.1:0".parse().expect("addr"));
    let dir = tempfile::tempdir().expect("dir");
    let seen: Arc<Mutex<Vec<PolicyBundle>>> = Arc::default();
    let sink = Arc::clone(&seen);
    let cfg = config(addr, &c.defender, dir.path());
    let client = tokio::task::spawn_blocking(move || {
        Console::start(cfg, move |b| sink.lock().expect("lock").push(b.clone())).expect("start")
    })
    .await
    .expect("join");
    let first = tokio::task::block_in_place(|| client.wait_for_policy(Duration::from_secs(10)))
        .expect("first policy");
    assert_eq!(first.runtime.rules[0].processes.effect, Effect::Alert);
    assert_eq!(first.runtime.revision, 1);

    put_policy(&c, "prevent").await;
    let changed = Instant::now();
    wait_until("the prevent policy", Duration::from_secs(2), || {
        let seen = Arc::clone(&seen);
        async move {
            seen.lock()
                .expect("lock")
                .last()
                .is_some_and(|b| b.runtime.rules[0].processes.effect == Effect::Prevent)
        }
    })
    .await;
    assert!(
        changed.elapsed() <= Duration::from_secs(2),
        "took {:?}",
        changed.elapsed()
    );
    assert_eq!(
        seen.lock().expect("lock").len(),
        2,
        "unchanged polls (304) deliver nothing"
    );
    tokio::task::block_in_place(|| client.shutdown(Duration::from_secs(1)));

    // The console is gone: a new start has the last good policy from disk.
    drop(served);
    let cfg = config(addr, &c.defender, dir.path());
    let client = tokio::task::spawn_blocking(move || Console::start(cfg, |_| {}).expect("start"))
        .await
        .expect("join");
    let cached = client.cached_policy().expect("cached policy");
    assert_eq!(cached.runtime.revision, 2);
    assert_eq!(cached.runtime.rules[0].processes.effect, Effect::Prevent);
    assert!(
        tokio::task::block_in_place(|| client.wait_for_policy(Duration::from_millis(1500)))
            .is_none(),
        "no console, no confirmation"
    );
    tokio::task::block_in_place(|| client.shutdown(Duration::from_millis(100)));

    // A defender token is required: a user's token is refused and nothing is applied.
    let (_served, addr) = serve(c.app.clone(), "127.0.0.1:0".parse().expect("addr"));
    let dir2 = tempfile::tempdir().expect("dir");
    let cfg = config(addr, &c.auditor, dir2.path());
    let client = tokio::task::spawn_blocking(move || Console::start(cfg, |_| {}).expect("start"))
        .await
        .expect("join");
    assert!(
        tokio::task::block_in_place(|| client.wait_for_policy(Duration::from_millis(1500)))
            .is_none()
    );
    tokio::task::block_in_place(|| client.shutdown(Duration::from_millis(100)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ten_second_console_outage_loses_no_audit() {
    let c = console().await;
    let (served, addr) = serve(c.app.clone(), "127.0.0.1:0".parse().expect("addr"));
    let dir = tempfile::tempdir().expect("dir");
    let cfg = config(addr, &c.defender, dir.path());
    let client = tokio::task::spawn_blocking(move || Console::start(cfg, |_| {}).expect("start"))
        .await
        .expect("join");
    let shipper = client.shipper();
    for i in 0..300 {
        shipper.send(violation(i));
    }
    wait_until("300 audits", Duration::from_secs(10), || async {
        audit_count(&c).await == 300
    })
    .await;

    // Outage: the app keeps violating for 10 s.
    drop(served);
    let outage = Instant::now();
    let mut i = 300;
    while outage.elapsed() < Duration::from_secs(10) {
        for _ in 0..20 {
            shipper.send(violation(i));
            i += 1;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(audit_count(&c).await, 300, "the console was down");
    assert!(
        shipper
            .stats()
            .spooled
            .load(std::sync::atomic::Ordering::Relaxed)
            > 0,
        "batches wait on disk"
    );
    let (_served, _) = serve(c.app.clone(), addr);
    let want = i;
    wait_until(
        "every audit after the outage",
        Duration::from_secs(15),
        || async { audit_count(&c).await == want },
    )
    .await;
    assert_eq!(
        shipper
            .stats()
            .dropped
            .load(std::sync::atomic::Ordering::Relaxed),
        0
    );
    tokio::task::block_in_place(|| client.shutdown(Duration::from_secs(2)));
    // Exactly once: no duplicates after retries.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(audit_count(&c).await, want);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spooled_audits_survive_a_defender_restart_and_drops_are_reported() {
    let c = console().await;
    // Bind and release a port: nothing listens there while the defender runs.
    let (served, addr) = serve(c.app.clone(), "127.0.0.1:0".parse().expect("addr"));
    drop(served);
    let dir = tempfile::tempdir().expect("dir");
    let mut cfg = config(addr, &c.defender, dir.path());
    cfg.limits.memory_records = 10;
    let client = tokio::task::spawn_blocking(move || Console::start(cfg, |_| {}).expect("start"))
        .await
        .expect("join");
    let shipper = client.shipper();
    for i in 0..25 {
        shipper.send(violation(i));
    }
    assert_eq!(
        shipper
            .stats()
            .dropped
            .load(std::sync::atomic::Ordering::Relaxed),
        15,
        "memory bound of 10"
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    tokio::task::block_in_place(|| client.shutdown(Duration::from_millis(200)));
    let spooled = std::fs::read_dir(dir.path().join("spool"))
        .expect("spool")
        .count();
    assert!(spooled >= 1, "the batch waits on disk");

    // Next start, console up: the spooled batch goes first, and the drops are reported.
    let (_served, addr) = serve(c.app.clone(), addr);
    let cfg = config(addr, &c.defender, dir.path());
    let client = tokio::task::spawn_blocking(move || Console::start(cfg, |_| {}).expect("start"))
        .await
        .expect("join");
    wait_until("10 audits", Duration::from_secs(10), || async {
        audit_count(&c).await == 10
    })
    .await;
    let defenders = || async {
        call(
            &c.app,
            Method::GET,
            "/api/v1/defenders",
            Some(&c.auditor),
            None,
        )
        .await
    };
    // the drop count travels in the client's next report, which may land after the audits
    wait_until("the drops reported", Duration::from_secs(10), || async {
        defenders().await.body["defenders"]
            .as_array()
            .is_some_and(|l| {
                l.iter()
                    .any(|d| d["instance"] == "task-7" && d["audits_dropped"] == 15)
            })
    })
    .await;
    let r = defenders().await;
    let d = r.body["defenders"]
        .as_array()
        .expect("defenders")
        .iter()
        .find(|d| d["instance"] == "task-7")
        .cloned()
        .expect("defender listed");
    assert_eq!(d["audits_received"], 10);
    assert_eq!(d["audits_dropped"], 15);
    assert_eq!(d["version"], "0.1.0");
    assert!(
        chrono::DateTime::parse_from_rfc3339(d["last_contact"].as_str().expect("time"))
            .expect("rfc3339")
            <= Utc::now()
    );
    tokio::task::block_in_place(|| client.shutdown(Duration::from_secs(1)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_the_console_refuses_is_dropped_and_counted_not_retried_forever() {
    let c = console().await;
    let (_served, addr) = serve(c.app.clone(), "127.0.0.1:0".parse().expect("addr"));
    let dir = tempfile::tempdir().expect("dir");
    let cfg = config(addr, &c.defender, dir.path());
    let client = tokio::task::spawn_blocking(move || Console::start(cfg, |_| {}).expect("start"))
        .await
        .expect("join");
    let shipper = client.shipper();
    // A clock a day ahead: the console refuses the batch (400 records[0].time).
    let mut bad = violation(0);
    bad.time = Utc::now() + chrono::Duration::days(1);
    shipper.send(bad);
    wait_until(
        "the refused batch to be counted",
        Duration::from_secs(5),
        || {
            let s = shipper.clone();
            async move { s.stats().dropped.load(std::sync::atomic::Ordering::Relaxed) == 1 }
        },
    )
    .await;
    // Later records still flow, and the drop is reported with them.
    shipper.send(violation(1));
    wait_until("the next audit", Duration::from_secs(5), || async {
        audit_count(&c).await == 1
    })
    .await;
    let r = call(
        &c.app,
        Method::GET,
        "/api/v1/defenders",
        Some(&c.auditor),
        None,
    )
    .await;
    assert_eq!(r.body["defenders"][0]["audits_dropped"], 1, "{}", r.text);
    assert_eq!(
        std::fs::read_dir(dir.path().join("spool"))
            .expect("spool")
            .count(),
        0
    );
    tokio::task::block_in_place(|| client.shutdown(Duration::from_secs(1)));
}

/// The defender's own HTTP client over real HTTP with a credential scoped to its task family:
/// its workload is served, another task family is refused (policy and audits) with the
/// console's reason, and once the credential is revoked the next poll is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scoped_credential_serves_its_task_refuses_others_and_stops_when_revoked() {
    use defender::console::http::{ConsoleHttp, Fetched};
    use defender::console::ConsoleError;

    let c = console().await;
    put_policy(&c, "prevent").await;
    let r = call(
        &c.app,
        Method::POST,
        "/api/v1/defenders/install-bundle",
        Some(&c.manager),
        Some(json!({"name": "seed", "scope": {"tasks": ["twistlock-fargate-*"]}})),
    )
    .await;
    let token = r.body["token"].as_str().expect("token").to_string();
    let id = r.body["id"].as_str().expect("id").to_string();
    let (_served, addr) = serve(c.app.clone(), "127.0.0.1:0".parse().expect("addr"));
    let refused = |r: Result<_, ConsoleError>| match r {
        Err(ConsoleError::Status { status, message }) => (status, message),
        Err(e) => panic!("{e}"),
        Ok(_) => panic!("accepted"),
    };
    let (base, tok) = (format!("http://{addr}"), token.clone());
    let mut other = identity();
    other.task = "payments".into();
    let (fetched, refused_policy, refused_batch) = tokio::task::spawn_blocking(move || {
        let http = ConsoleHttp::new(&base, &tok, Duration::from_secs(5)).expect("client");
        let fetched = http.fetch_policy(&identity(), None).expect("own policy");
        let refused_policy = refused(http.fetch_policy(&other, None).map(drop));
        let mut record = violation(0);
        record.task_family = "payments".into();
        let batch = protect::api::AuditBatch {
            batch_id: "scoped-1".into(),
            defender: identity(),
            records: vec![record],
            dropped: 0,
        };
        let json = defender::console::http::batch_json(&batch).expect("json");
        let refused_batch = refused(http.post_batch(&json).map(drop));
        (fetched, refused_policy, refused_batch)
    })
    .await
    .expect("client thread");
    let Fetched::New { bundle, .. } = fetched else {
        panic!("no policy")
    };
    assert_eq!(bundle.runtime.rules[0].name, "sample");
    assert_eq!(refused_policy.0, 403);
    assert!(
        refused_policy.1.starts_with(
            "forbidden: defender.task \"payments\" is outside this credential's scope"
        ),
        "{}",
        refused_policy.1
    );
    assert_eq!(refused_batch.0, 403);
    assert!(
        refused_batch
            .1
            .contains("records[0].task_family \"payments\""),
        "{}",
        refused_batch.1
    );

    let r = call(
        &c.app,
        Method::DELETE,
        &format!("/api/v1/defenders/credentials/{id}"),
        Some(&c.manager),
        None,
    )
    .await;
    assert_eq!(r.status.as_u16(), 204, "{}", r.text);
    let base = format!("http://{addr}");
    let after = tokio::task::spawn_blocking(move || {
        let http = ConsoleHttp::new(&base, &token, Duration::from_secs(5)).expect("client");
        refused(http.fetch_policy(&identity(), None).map(drop))
    })
    .await
    .expect("client thread");
    assert_eq!(after.0, 401, "{}", after.1);
}
