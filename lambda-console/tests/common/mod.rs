//! Helpers for the console's tests: a console on an in-memory store with one user per role and
//! a defender credential, and a one-call request helper.
#![allow(dead_code)]

use std::sync::Arc;

use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode};
use axum::Router;
use http_body_util::BodyExt;
use lambda_console::bootstrap::ensure_admin;
use lambda_console::store::sqlite::SqliteStore;
use lambda_console::{app, AppState, Settings};
use serde_json::{json, Value};
use tower::ServiceExt;

pub const ADMIN_PASSWORD: &str = "admin-password-123";

/// Settings for tests: cheap Argon2 (debug builds are slow), no policy cache delay.
pub fn test_settings() -> Settings {
    Settings {
        argon2: argon2::Params::new(1024, 1, 1, None).expect("argon2 params"),
        policy_cache_ttl: std::time::Duration::from_millis(0),
        contact_interval: std::time::Duration::from_millis(0),
        defender_image: "registry.example/defender:1".to_string(),
        ..Settings::default()
    }
}

/// A console on a fresh in-memory store.
pub fn state() -> AppState {
    AppState::new(
        Arc::new(SqliteStore::in_memory().expect("store")),
        test_settings(),
    )
}

/// Tokens for every kind of caller.
pub struct Console {
    pub app: Router,
    pub state: AppState,
    pub admin: String,
    pub manager: String,
    pub auditor: String,
    /// A defender token for every task (no scope), and its credential id.
    pub defender: String,
    pub defender_id: String,
}

pub struct Resp {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
    pub text: String,
}

/// Sends one request. `auth` is a full `Authorization` value or a bearer token.
pub async fn call(
    app: &Router,
    method: Method,
    uri: &str,
    auth: Option<&str>,
    body: Option<Value>,
) -> Resp {
    call_raw(
        app,
        method,
        uri,
        auth,
        body.map(|b| b.to_string()).unwrap_or_default(),
        &[],
    )
    .await
}

pub async fn call_raw(
    app: &Router,
    method: Method,
    uri: &str,
    auth: Option<&str>,
    body: String,
    headers: &[(&str, &str)],
) -> Resp {
    let mut req = Request::builder().method(method).uri(uri);
    if let Some(a) = auth {
        let value = if a.starts_with("Basic ") || a.starts_with("Bearer ") {
            a.to_string()
        } else {
            format!("Bearer {a}")
        };
        req = req.header("authorization", value);
    }
    if !body.is_empty() {
        req = req.header("content-type", "application/json");
    }
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = app
        .clone()
        .oneshot(req.body(Body::from(body)).expect("request"))
        .await
        .expect("infallible");
    let status = resp.status();
    let headers = resp.headers().clone();
    let bytes = resp.into_body().collect().await.expect("body").to_bytes();
    let text = String::from_utf8_lossy(&bytes).to_string();
    let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    Resp {
        status,
        headers,
        body,
        text,
    }
}

pub async fn login(app: &Router, user: &str, password: &str) -> String {
    let r = call(
        app,
        Method::POST,
        "/api/v1/authenticate",
        None,
        Some(json!({"username": user, "password": password})),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "login {user}: {}", r.text);
    r.body["token"].as_str().expect("token").to_string()
}

/// A console with admin, defender-manager, auditor and a defender token.
pub async fn console() -> Console {
    console_on(state()).await
}

pub async fn console_on(state: AppState) -> Console {
    ensure_admin(&state, "admin", Some(ADMIN_PASSWORD.to_string()), false)
        .await
        .expect("bootstrap");
    let app = app(state.clone());
    let admin = login(&app, "admin", ADMIN_PASSWORD).await;
    for (name, role) in [("manny", "defender-manager"), ("audrey", "auditor")] {
        let r = call(
            &app,
            Method::POST,
            "/api/v1/users",
            Some(&admin),
            Some(json!({"username": name, "password": format!("{name}-password-1"), "role": role})),
        )
        .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    }
    let manager = login(&app, "manny", "manny-password-1").await;
    let auditor = login(&app, "audrey", "audrey-password-1").await;
    let r = call(
        &app,
        Method::POST,
        "/api/v1/defenders/install-bundle",
        Some(&manager),
        Some(json!({"name": "tests"})),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let defender = r.body["token"].as_str().expect("token").to_string();
    let defender_id = r.body["id"].as_str().expect("id").to_string();
    Console {
        app,
        state,
        admin,
        manager,
        auditor,
        defender,
        defender_id,
    }
}

pub fn example(name: &str) -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/");
    std::fs::read_to_string(format!("{path}{name}")).expect("example file")
}

/// An audit record at `time` (RFC 3339).
pub fn record(kind: &str, time: &str, task: &str, container: &str) -> Value {
    json!({
        "time": time, "kind": kind, "effect": "prevent", "rule": "sample",
        "message": "/bin/mkdir launched from /bin/dash and is explicitly blocked in the runtime rule. Full command: mkdir test",
        "task_family": task, "task_arn": "", "container": container, "image": "img:1",
        "pid": 42, "process": "/bin/mkdir", "parent": "/bin/dash", "command": "mkdir test"
    })
}

/// A batch whose defender is the workload its first record names (the seed's task, container
/// and image where the record names none), as a real defender's batches are: the console
/// refuses records of another workload than the batch's defender.
pub fn batch(id: &str, records: Vec<Value>) -> Value {
    let field = |name: &str, default: &str| {
        records
            .first()
            .and_then(|r| r[name].as_str())
            .filter(|v| !v.is_empty())
            .unwrap_or(default)
            .to_string()
    };
    json!({
        "batch_id": id,
        "defender": {"task": field("task_family", "twistlock-fargate-task"),
                      "container": field("container", "twistlock-fargate-task"),
                      "image": field("image", "matthewabq/twistlock-fargate-auto"),
                      "instance": "task-1", "version": "0.1.0"},
        "records": records
    })
}

/// Posts `records` as one batch per workload (task, container, image), as the defenders of
/// those workloads would, with batch ids `{prefix}-0`, `{prefix}-1`, ...; returns each answer.
pub async fn post_records(
    app: &Router,
    token: &str,
    prefix: &str,
    records: Vec<Value>,
) -> Vec<Resp> {
    let mut groups: Vec<((String, String, String), Vec<Value>)> = Vec::new();
    for r in records {
        let key = (
            r["task_family"].as_str().unwrap_or("").to_string(),
            r["container"].as_str().unwrap_or("").to_string(),
            r["image"].as_str().unwrap_or("").to_string(),
        );
        match groups.iter_mut().find(|(k, _)| *k == key) {
            Some((_, g)) => g.push(r),
            None => groups.push((key, vec![r])),
        }
    }
    let mut out = Vec::new();
    for (i, (_, group)) in groups.into_iter().enumerate() {
        let b = batch(&format!("{prefix}-{i}"), group);
        out.push(
            call(
                app,
                Method::POST,
                "/api/v1/defender/audits",
                Some(token),
                Some(b),
            )
            .await,
        );
    }
    out
}

/// The records accepted over several answers (every one must be 200).
pub fn accepted(answers: &[Resp]) -> u64 {
    answers
        .iter()
        .map(|r| {
            assert_eq!(r.status, StatusCode::OK, "{}", r.text);
            r.body["accepted"].as_u64().unwrap_or(0)
        })
        .sum()
}
