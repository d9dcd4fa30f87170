//! HTTP hygiene (issue 16): JSON bodies sent as JSON, security and cache headers on every
//! answer, 403 texts that do not name the caller's role, duplicate keys and unknown fields
//! refused, `If-Match` compared strongly, a private data directory.

mod common;

use axum::http::{Method, StatusCode};
use common::{call, call_raw, console, example, ADMIN_PASSWORD};
use lambda_console::store::sqlite::SqliteStore;
use serde_json::json;

/// Sends `body` with the given `Content-Type` headers (`common::call_raw` always adds JSON's).
async fn send(
    app: &axum::Router,
    method: Method,
    uri: &str,
    auth: Option<&str>,
    content_types: &[&str],
    body: String,
) -> (StatusCode, serde_json::Value) {
    let mut req = axum::http::Request::builder().method(method).uri(uri);
    if let Some(a) = auth {
        req = req.header("authorization", format!("Bearer {a}"));
    }
    for t in content_types {
        req = req.header("content-type", *t);
    }
    let req = req.body(axum::body::Body::from(body)).expect("request");
    let resp = tower::ServiceExt::oneshot(app.clone(), req)
        .await
        .expect("infallible");
    let status = resp.status();
    let body = http_body_util::BodyExt::collect(resp.into_body())
        .await
        .expect("body")
        .to_bytes();
    (status, serde_json::from_slice(&body).unwrap_or_default())
}

#[tokio::test]
async fn json_bodies_need_a_json_content_type() {
    let c = console().await;
    let creds = json!({"username": "admin", "password": ADMIN_PASSWORD}).to_string();
    let auth = "/api/v1/authenticate";
    for (content_types, sent) in [
        (&[][..], "none"),
        (&["text/plain"][..], "\"text/plain\""),
        (
            &["application/x-www-form-urlencoded"][..],
            "\"application/x-www-form-urlencoded\"",
        ),
        (
            &["application/json", "text/plain"][..],
            "2 Content-Type headers",
        ),
    ] {
        let (status, body) = send(
            &c.app,
            Method::POST,
            auth,
            None,
            content_types,
            creds.clone(),
        )
        .await;
        assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{body}");
        assert_eq!(
            body["error"],
            format!(
                "Content-Type: the body must be sent as `Content-Type: application/json` (got \
                 {sent}); with curl add -H 'Content-Type: application/json'"
            )
        );
    }
    let json_utf8 = ["application/json; charset=utf-8"];
    let (status, body) = send(&c.app, Method::POST, auth, None, &json_utf8, creds).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = send(
        &c.app,
        Method::PUT,
        "/api/v1/policies/runtime/app-embedded",
        Some(&c.admin),
        &["text/plain"],
        example("policy.json"),
    )
    .await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{body}");
}

#[tokio::test]
async fn every_answer_carries_the_security_and_cache_headers() {
    let c = console().await;
    let answers = [
        call(&c.app, Method::GET, "/api/v1/_ping", None, None).await,
        call(&c.app, Method::GET, "/api/v1/nothing-here", None, None).await,
        call(&c.app, Method::GET, "/api/v1/defenders", None, None).await,
        call(
            &c.app,
            Method::POST,
            "/api/v1/authenticate",
            None,
            Some(json!({"username": "admin", "password": ADMIN_PASSWORD})),
        )
        .await,
        call(
            &c.app,
            Method::GET,
            "/api/v1/policies/runtime/app-embedded",
            Some(&c.auditor),
            None,
        )
        .await,
        call(
            &c.app,
            Method::GET,
            "/api/v1/audits/runtime/app-embedded",
            Some(&c.auditor),
            None,
        )
        .await,
        call(
            &c.app,
            Method::GET,
            "/api/v1/defender/policy?task=t&container=c&image=i",
            Some(&c.defender),
            None,
        )
        .await,
    ];
    for r in answers {
        for (name, want) in [
            ("x-content-type-options", "nosniff"),
            (
                "content-security-policy",
                "default-src 'none'; frame-ancestors 'none'",
            ),
            ("referrer-policy", "no-referrer"),
            ("x-frame-options", "DENY"),
            ("cache-control", "no-store"),
        ] {
            assert_eq!(
                r.headers.get(name).and_then(|v| v.to_str().ok()),
                Some(want),
                "{name} on a {} answer: {:?}",
                r.status,
                r.headers
            );
        }
    }
}

#[tokio::test]
async fn forbidden_texts_do_not_name_the_callers_role() {
    let c = console().await;
    let r = call_raw(
        &c.app,
        Method::PUT,
        "/api/v1/policies/runtime/app-embedded",
        Some(&c.auditor),
        example("policy.json"),
        &[],
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(
        r.body["error"],
        "forbidden: this route needs role admin or higher"
    );
}

#[tokio::test]
async fn duplicate_keys_are_refused_with_their_name() {
    let c = console().await;
    let r = call_raw(
        &c.app,
        Method::POST,
        "/api/v1/authenticate",
        None,
        format!(r#"{{"username": "nobody", "password": "{ADMIN_PASSWORD}", "username": "admin"}}"#),
        &[],
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    assert_eq!(
        r.body["error"],
        "body: duplicate key \"username\" in $ at line 1 column 67; send each key once"
    );
    // Inside a task definition the transform would otherwise read as a plain JSON value.
    let r = call_raw(
        &c.app,
        Method::POST,
        "/api/v1/defenders/fargate.json?consoleaddr=console.example",
        Some(&c.manager),
        r#"{"family": "web", "containerDefinitions": [{"name": "app", "image": "nginx",
            "entryPoint": ["/start"], "image": "evil"}]}"#
            .to_string(),
        &[],
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    assert!(
        r.body["error"]
            .as_str()
            .unwrap_or("")
            .starts_with("body: duplicate key \"image\" in $.containerDefinitions[0]"),
        "{}",
        r.text
    );
}

#[tokio::test]
async fn unknown_fields_are_refused_on_request_bodies() {
    let c = console().await;
    let r = call(
        &c.app,
        Method::POST,
        "/api/v1/authenticate",
        None,
        Some(json!({"username": "admin", "password": ADMIN_PASSWORD, "remember_me": true})),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    assert!(
        r.body["error"]
            .as_str()
            .unwrap_or("")
            .contains("unknown field `remember_me`"),
        "{}",
        r.text
    );
    let r = call(
        &c.app,
        Method::POST,
        "/api/v1/users",
        Some(&c.admin),
        Some(
            json!({"username": "eve", "password": "eve-password-12", "role": "auditor",
                    "is_admin": true}),
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    assert!(
        r.body["error"]
            .as_str()
            .unwrap_or("")
            .contains("unknown field `is_admin`"),
        "{}",
        r.text
    );
}

#[tokio::test]
async fn weak_if_match_does_not_satisfy_a_strong_comparison() {
    let c = console().await;
    let put = |if_match: &'static str| {
        let app = c.app.clone();
        let admin = c.admin.clone();
        async move {
            call_raw(
                &app,
                Method::PUT,
                "/api/v1/policies/runtime/app-embedded",
                Some(&admin),
                example("policy.json"),
                &[("if-match", if_match)],
            )
            .await
        }
    };
    let r = put("W/\"runtime-0\"").await;
    assert_eq!(r.status, StatusCode::PRECONDITION_FAILED, "{}", r.text);
    let r = put("\"runtime-0\"").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.headers["etag"], "\"runtime-1\"");
}

#[cfg(unix)]
#[tokio::test]
async fn the_data_directory_and_database_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let mode =
        |p: &std::path::Path| std::fs::metadata(p).expect("metadata").permissions().mode() & 0o777;
    let top = tempfile::tempdir().expect("tempdir");
    let dir = top.path().join("data");
    let store = SqliteStore::open(&dir).expect("store");
    let state = lambda_console::AppState::new(std::sync::Arc::new(store), common::test_settings());
    let c = common::console_on(state).await;
    assert_eq!(mode(&dir), 0o700);
    for f in ["console.db", "console.db-wal", "console.db-shm"] {
        assert_eq!(mode(&dir.join(f)), 0o600, "{f}");
    }
    drop(c);

    // A database left readable by an older console is tightened when opened.
    std::fs::set_permissions(
        dir.join("console.db"),
        std::fs::Permissions::from_mode(0o644),
    )
    .expect("chmod");
    drop(SqliteStore::open(&dir).expect("reopen"));
    assert_eq!(mode(&dir.join("console.db")), 0o600);
}
