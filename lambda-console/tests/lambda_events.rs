//! The console behind AWS Lambda: real Function URL and API Gateway HTTP API (v2) event JSON,
//! parsed by `lambda_http` exactly as the runtime does, then served by `app()`.

mod common;

use axum::http::StatusCode;
use http_body_util::BodyExt;
use serde_json::{json, Value};
use tower::ServiceExt;

/// A Function URL invocation event (payload format 2.0), as Lambda delivers it.
fn function_url_event(
    method: &str,
    path: &str,
    query: &str,
    headers: Value,
    body: Option<&str>,
) -> String {
    json!({
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": query,
        "headers": headers,
        "requestContext": {
            "accountId": "anonymous",
            "apiId": "abcdefghijklmnopqrstuvwxyz0",
            "domainName": "abcdefghijklmnopqrstuvwxyz0.lambda-url.us-east-1.on.aws",
            "domainPrefix": "abcdefghijklmnopqrstuvwxyz0",
            "http": {
                "method": method,
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": "198.51.100.7",
                "userAgent": "curl/8.5.0"
            },
            "requestId": "0f1c3b8e-8d5a-4e0b-9b53-5c2b1f7f1a11",
            "routeKey": "$default",
            "stage": "$default",
            "time": "28/Nov/2026:19:03:58 +0000",
            "timeEpoch": 1795892638390u64
        },
        "body": body,
        "isBase64Encoded": false
    })
    .to_string()
}

/// An API Gateway HTTP API event (payload 2.0) with a named stage.
fn http_api_event(
    method: &str,
    path: &str,
    query: &str,
    headers: Value,
    body: Option<&str>,
) -> String {
    let mut qs = serde_json::Map::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        qs.insert(k.to_string(), json!(v));
    }
    json!({
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": query,
        "headers": headers,
        "queryStringParameters": qs,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "a1b2c3d4e5",
            "domainName": "a1b2c3d4e5.execute-api.us-east-1.amazonaws.com",
            "domainPrefix": "a1b2c3d4e5",
            "http": {
                "method": method,
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": "198.51.100.7",
                "userAgent": "Jenkins"
            },
            "requestId": "JKJaXmPLvHcESHA=",
            "routeKey": "$default",
            "stage": "$default",
            "time": "28/Nov/2026:19:03:58 +0000",
            "timeEpoch": 1795892638390u64
        },
        "body": body,
        "isBase64Encoded": false
    })
    .to_string()
}

async fn invoke(app: &axum::Router, event: &str) -> (StatusCode, axum::http::HeaderMap, String) {
    let req = lambda_http::request::from_str(event).expect("lambda_http parses the event");
    let resp = app.clone().oneshot(req).await.expect("infallible");
    let status = resp.status();
    let headers = resp.headers().clone();
    let body = resp.into_body().collect().await.expect("body").to_bytes();
    (status, headers, String::from_utf8_lossy(&body).to_string())
}

#[tokio::test]
async fn function_url_events_reach_the_routes() {
    let c = common::console().await;
    let (status, _, body) = invoke(
        &c.app,
        &function_url_event("GET", "/api/v1/_ping", "", json!({}), None),
    )
    .await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "OK"));

    let login = json!({"username": "admin", "password": common::ADMIN_PASSWORD}).to_string();
    let (status, _, body) = invoke(
        &c.app,
        &function_url_event(
            "POST",
            "/api/v1/authenticate",
            "",
            json!({"content-type": "application/json"}),
            Some(&login),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let token = serde_json::from_str::<Value>(&body).expect("json")["token"]
        .as_str()
        .expect("token")
        .to_string();

    // The defender's policy fetch with a query string and If-None-Match.
    let headers = json!({"authorization": format!("Bearer {}", c.defender)});
    let (status, h, body) = invoke(
        &c.app,
        &function_url_event(
            "GET",
            "/api/v1/defender/policy",
            "task=web&container=app&image=nginx%3A1",
            headers.clone(),
            None,
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let etag = h["etag"].to_str().expect("etag").to_string();
    let mut with_etag = headers.clone();
    with_etag["if-none-match"] = json!(etag);
    let (status, _, _) = invoke(
        &c.app,
        &function_url_event(
            "GET",
            "/api/v1/defender/policy",
            "task=web&container=app&image=nginx%3A1",
            with_etag,
            None,
        ),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_MODIFIED);

    let (status, _, body) = invoke(
        &c.app,
        &function_url_event(
            "GET",
            "/api/v1/defenders",
            "",
            json!({"authorization": format!("Bearer {token}")}),
            None,
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let list: Value = serde_json::from_str(&body).expect("json");
    assert_eq!(list["defenders"][0]["task"], "web");
    assert_eq!(list["defenders"][0]["image"], "nginx:1");

    let (status, _, _) = invoke(
        &c.app,
        &function_url_event("GET", "/api/v1/defenders", "", json!({}), None),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn http_api_events_carry_the_transform_call() {
    let c = common::console().await;
    let basic = format!(
        "Basic {}",
        base64::Engine::encode(
            &base64::engine::general_purpose::STANDARD,
            format!("admin:{}", common::ADMIN_PASSWORD)
        )
    );
    let td = common::example("fargate-task.json");
    let (status, _, body) = invoke(
        &c.app,
        &http_api_event(
            "POST",
            "/api/v1/defenders/fargate.json",
            "consoleaddr=console.example.com",
            json!({"authorization": basic, "content-type": "application/json"}),
            Some(&td),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let out: Value = serde_json::from_str(&body).expect("json");
    assert!(out["containerDefinitions"]
        .as_array()
        .expect("containers")
        .iter()
        .any(|c| c["name"] == "defender"));
}

#[tokio::test]
async fn the_login_throttle_counts_the_events_source_address() {
    let settings = lambda_console::Settings {
        login_failures_per_address: 2,
        ..common::test_settings()
    };
    let state = lambda_console::AppState::new(
        std::sync::Arc::new(
            lambda_console::store::sqlite::SqliteStore::in_memory().expect("store"),
        ),
        settings,
    );
    let c = common::console_on(state).await;
    let wrong = |user: &str, ip: &str| {
        let body = json!({"username": user, "password": "wrong-password-1"}).to_string();
        function_url_event(
            "POST",
            "/api/v1/authenticate",
            "",
            json!({"content-type": "application/json"}),
            Some(&body),
        )
        .replace("198.51.100.7", ip)
    };
    for user in ["alice", "bob"] {
        let (status, _, body) = invoke(&c.app, &wrong(user, "198.51.100.7")).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    }
    let (status, headers, body) = invoke(&c.app, &wrong("carol", "198.51.100.7")).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert!(headers.contains_key("retry-after"));
    // Another source address is not throttled.
    let (status, _, body) = invoke(&c.app, &wrong("carol", "203.0.113.9")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
}
