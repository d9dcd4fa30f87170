//! Authentication and the role of every route: 401 without credentials, 403 for the wrong
//! role, success for the right one.

mod common;

use axum::http::{Method, StatusCode};
use base64::Engine;
use chrono::{Duration, Utc};
use common::{batch, call, call_raw, console, example, record, ADMIN_PASSWORD};
use lambda_console::auth::token_hash;
use lambda_console::store::{TokenRecord, TokenSubject};
use protect::api::Role;
use serde_json::{json, Value};

#[derive(Clone, Copy, Debug, PartialEq)]
enum Who {
    Admin,
    Manager,
    Auditor,
    Defender,
}

struct Route {
    method: Method,
    uri: &'static str,
    body: fn() -> Option<Value>,
    allowed: &'static [Who],
}

fn none() -> Option<Value> {
    None
}
fn runtime_policy() -> Option<Value> {
    Some(serde_json::from_str(&example("policy.json")).expect("json"))
}
fn cnaf_policy() -> Option<Value> {
    Some(serde_json::from_str(&example("cnaf-policy.json")).expect("json"))
}
fn task_definition() -> Option<Value> {
    Some(serde_json::from_str(&example("fargate-task.json")).expect("json"))
}
fn new_user() -> Option<Value> {
    Some(
        json!({"username": format!("u{}", rand_suffix()), "password": "a-long-password", "role": "auditor"}),
    )
}
fn audits() -> Option<Value> {
    let now = Utc::now().to_rfc3339();
    Some(batch(
        &format!("b{}", rand_suffix()),
        vec![record("process", &now, "twistlock-fargate-task", "app")],
    ))
}
fn empty_object() -> Option<Value> {
    Some(json!({}))
}
fn rand_suffix() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}

use Who::*;

fn routes() -> Vec<Route> {
    vec![
        Route {
            method: Method::GET,
            uri: "/api/v1/policies/runtime/app-embedded",
            body: none,
            allowed: &[Admin, Manager, Auditor],
        },
        Route {
            method: Method::PUT,
            uri: "/api/v1/policies/runtime/app-embedded",
            body: runtime_policy,
            allowed: &[Admin],
        },
        Route {
            method: Method::GET,
            uri: "/api/v1/policies/firewall/app/app-embedded",
            body: none,
            allowed: &[Admin, Manager, Auditor],
        },
        Route {
            method: Method::PUT,
            uri: "/api/v1/policies/firewall/app/app-embedded",
            body: cnaf_policy,
            allowed: &[Admin],
        },
        Route {
            method: Method::POST,
            uri: "/api/v1/defenders/fargate.json?consoleaddr=console.example.com",
            body: task_definition,
            allowed: &[Admin, Manager],
        },
        Route {
            method: Method::GET,
            uri: "/api/v1/audits/runtime/app-embedded",
            body: none,
            allowed: &[Admin, Manager, Auditor],
        },
        Route {
            method: Method::GET,
            uri: "/api/v1/audits/firewall/app/app-embedded",
            body: none,
            allowed: &[Admin, Manager, Auditor],
        },
        Route {
            method: Method::GET,
            uri: "/api/v1/defender/policy?task=t&container=c&image=i",
            body: none,
            allowed: &[Defender],
        },
        Route {
            method: Method::POST,
            uri: "/api/v1/defender/audits",
            body: audits,
            allowed: &[Defender],
        },
        Route {
            method: Method::GET,
            uri: "/api/v1/defenders",
            body: none,
            allowed: &[Admin, Manager, Auditor],
        },
        Route {
            method: Method::POST,
            uri: "/api/v1/defenders/install-bundle",
            body: empty_object,
            allowed: &[Admin, Manager],
        },
        Route {
            method: Method::GET,
            uri: "/api/v1/defenders/credentials",
            body: none,
            allowed: &[Admin, Manager],
        },
        Route {
            method: Method::POST,
            uri: "/api/v1/users",
            body: new_user,
            allowed: &[Admin],
        },
        Route {
            method: Method::GET,
            uri: "/api/v1/openapi.json",
            body: none,
            allowed: &[Admin, Manager, Auditor],
        },
    ]
}

#[tokio::test]
async fn every_route_checks_credentials_and_role() {
    let c = console().await;
    for route in routes() {
        let r = call(
            &c.app,
            route.method.clone(),
            route.uri,
            None,
            (route.body)(),
        )
        .await;
        assert_eq!(
            r.status,
            StatusCode::UNAUTHORIZED,
            "{} {} without auth",
            route.method,
            route.uri
        );
        assert!(
            r.body["error"]
                .as_str()
                .unwrap_or("")
                .contains("Authorization"),
            "{}",
            r.text
        );
        assert!(r.headers.contains_key("www-authenticate"));
        let r = call(
            &c.app,
            route.method.clone(),
            route.uri,
            Some("Bearer cst_nope"),
            (route.body)(),
        )
        .await;
        assert_eq!(
            r.status,
            StatusCode::UNAUTHORIZED,
            "{} {} with a bad token",
            route.method,
            route.uri
        );
        for who in [Admin, Manager, Auditor, Defender] {
            let token = match who {
                Admin => &c.admin,
                Manager => &c.manager,
                Auditor => &c.auditor,
                Defender => &c.defender,
            };
            let r = call(
                &c.app,
                route.method.clone(),
                route.uri,
                Some(token),
                (route.body)(),
            )
            .await;
            if route.allowed.contains(&who) {
                assert!(
                    r.status.is_success(),
                    "{who:?} on {} {}: {} {}",
                    route.method,
                    route.uri,
                    r.status,
                    r.text
                );
            } else {
                assert_eq!(
                    r.status,
                    StatusCode::FORBIDDEN,
                    "{who:?} on {} {}: {}",
                    route.method,
                    route.uri,
                    r.text
                );
                assert!(
                    r.body["error"]
                        .as_str()
                        .unwrap_or("")
                        .starts_with("forbidden: "),
                    "{}",
                    r.text
                );
            }
        }
    }
}

#[tokio::test]
async fn ping_needs_no_auth() {
    let c = console().await;
    let r = call(&c.app, Method::GET, "/api/v1/_ping", None, None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.text, "OK");
}

#[tokio::test]
async fn authenticate_with_json_and_basic() {
    let c = console().await;
    let r = call(
        &c.app,
        Method::POST,
        "/api/v1/authenticate",
        None,
        Some(json!({"username": "admin", "password": "wrong-password"})),
    )
    .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        r.body["error"],
        "authentication failed: unknown user or wrong password"
    );
    let r = call(
        &c.app,
        Method::POST,
        "/api/v1/authenticate",
        None,
        Some(json!({"username": "nobody", "password": "wrong-password"})),
    )
    .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);

    let basic = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("admin:{ADMIN_PASSWORD}"))
    );
    let r = call(
        &c.app,
        Method::POST,
        "/api/v1/authenticate",
        Some(&basic),
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let token = r.body["token"].as_str().expect("token");
    assert!(token.starts_with("cst_"));
    let expires: chrono::DateTime<Utc> = r.body["expires_at"]
        .as_str()
        .expect("expires")
        .parse()
        .expect("time");
    assert!(
        expires > Utc::now() + Duration::minutes(59)
            && expires < Utc::now() + Duration::minutes(61)
    );
    let r = call(&c.app, Method::GET, "/api/v1/defenders", Some(token), None).await;
    assert_eq!(r.status, StatusCode::OK);

    // Basic on a pipeline route; refused, naming the way, on the others.
    let r = call(
        &c.app,
        Method::GET,
        "/api/v1/defenders/defaults",
        Some(&basic),
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    for (method, uri) in [
        (Method::GET, "/api/v1/defenders"),
        (Method::POST, "/api/v1/users"),
        (Method::GET, "/api/v1/audits/runtime/app-embedded"),
        (Method::DELETE, "/api/v1/defenders/credentials/x"),
    ] {
        let r = call(&c.app, method, uri, Some(&basic), None).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{uri}");
        assert!(
            r.body["error"]
                .as_str()
                .is_some_and(|e| e.contains("POST /api/v1/authenticate")),
            "{uri}: {}",
            r.text
        );
    }
    let bad = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode("admin:nope")
    );
    let r = call(&c.app, Method::GET, "/api/v1/defenders", Some(&bad), None).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let r = call(
        &c.app,
        Method::GET,
        "/api/v1/defenders",
        Some("Basic !!!"),
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        r.body["error"],
        "Basic credentials are not base64 of `user:password`"
    );

    // A defender token cannot open a session.
    let r = call(
        &c.app,
        Method::POST,
        "/api/v1/authenticate",
        Some(&c.defender),
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);

    // Malformed body names the field.
    let r = call(
        &c.app,
        Method::POST,
        "/api/v1/authenticate",
        None,
        Some(json!({"username": "admin"})),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(
        r.body["error"].as_str().unwrap_or("").contains("password"),
        "{}",
        r.text
    );
}

#[tokio::test]
async fn expired_tokens_are_refused() {
    let c = console().await;
    let token = "cst_expired-token-for-the-test";
    c.state
        .store()
        .put_token(TokenRecord {
            hash: token_hash(token),
            subject: TokenSubject::User {
                username: "admin".into(),
                role: Role::Admin,
            },
            created_at: Utc::now() - Duration::hours(2),
            expires_at: Some(Utc::now() - Duration::hours(1)),
        })
        .await
        .expect("put token");
    let r = call(&c.app, Method::GET, "/api/v1/defenders", Some(token), None).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        r.body["error"],
        "the bearer token is unknown or expired: get a new one from POST /api/v1/authenticate"
    );
}

#[tokio::test]
async fn tokens_are_stored_hashed() {
    let c = console().await;
    let rec = c
        .state
        .store()
        .get_token(&token_hash(&c.defender))
        .await
        .expect("get")
        .expect("stored");
    assert!(matches!(rec.subject, TokenSubject::Defender { .. }));
    assert_eq!(rec.expires_at, None);
    assert!(c
        .state
        .store()
        .get_token(&c.defender)
        .await
        .expect("get")
        .is_none());
}

#[tokio::test]
async fn users_are_validated() {
    let c = console().await;
    let r = call(
        &c.app,
        Method::POST,
        "/api/v1/users",
        Some(&c.admin),
        Some(json!({"username": "manny", "password": "another-password", "role": "auditor"})),
    )
    .await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert_eq!(
        r.body["error"],
        "username: \"manny\" exists already; choose another name"
    );
    let r = call(
        &c.app,
        Method::POST,
        "/api/v1/users",
        Some(&c.admin),
        Some(json!({"username": "x", "password": "short", "role": "auditor"})),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        r.body["error"],
        "password: must be 12 to 1024 characters long"
    );
    let r = call(
        &c.app,
        Method::POST,
        "/api/v1/users",
        Some(&c.admin),
        Some(json!({"username": "bad name", "password": "long-enough-pw", "role": "auditor"})),
    )
    .await;
    assert_eq!(
        r.body["error"],
        "username: must be 1-64 characters of A-Z a-z 0-9 . _ @ -"
    );
    let r = call(
        &c.app,
        Method::POST,
        "/api/v1/users",
        Some(&c.admin),
        Some(json!({"username": "root", "password": "long-enough-pw", "role": "root"})),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let e = r.body["error"].as_str().unwrap_or("");
    assert!(e.contains("role") && e.contains("defender-manager"), "{e}");
    let r = call_raw(
        &c.app,
        Method::POST,
        "/api/v1/users",
        Some(&c.admin),
        "{not json".into(),
        &[],
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(
        r.body["error"].as_str().unwrap_or("").starts_with("body: "),
        "{}",
        r.text
    );
}

#[tokio::test]
async fn unknown_routes_and_methods_answer_json() {
    let c = console().await;
    let r = call(&c.app, Method::GET, "/api/v1/nothing", Some(&c.admin), None).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(
        r.body["error"],
        "no route /api/v1/nothing; see GET /api/v1/openapi.json for the API"
    );
    let r = call(
        &c.app,
        Method::DELETE,
        "/api/v1/defenders",
        Some(&c.admin),
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED);
    assert!(r.body["error"].as_str().unwrap_or("").contains("DELETE"));
}

#[tokio::test]
async fn openapi_lists_every_route() {
    let c = console().await;
    let r = call(
        &c.app,
        Method::GET,
        "/api/v1/openapi.json",
        Some(&c.auditor),
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    let paths = r.body["paths"].as_object().expect("paths");
    for p in [
        "/api/v1/_ping",
        "/api/v1/authenticate",
        "/api/v1/logout",
        "/api/v1/users",
        "/api/v1/openapi.json",
        "/api/v1/policies/runtime/app-embedded",
        "/api/v1/policies/firewall/app/app-embedded",
        "/api/v1/defenders/fargate.json",
        "/api/v1/audits/runtime/app-embedded",
        "/api/v1/audits/firewall/app/app-embedded",
        "/api/v1/defender/policy",
        "/api/v1/defender/audits",
        "/api/v1/defenders",
        "/api/v1/defenders/install-bundle",
        "/api/v1/defenders/credentials",
        "/api/v1/defenders/credentials/{id}",
    ] {
        assert!(
            paths.contains_key(p),
            "{p} missing from the OpenAPI document"
        );
    }
    assert!(paths["/api/v1/policies/runtime/app-embedded"]["put"].is_object());
    // The shared answers: credentials, JSON bodies, the login throttle.
    let put = &paths["/api/v1/policies/runtime/app-embedded"]["put"]["responses"];
    for status in ["401", "403", "415", "429", "503"] {
        assert!(put[status].is_object(), "PUT policy lacks {status}");
    }
    let login = &paths["/api/v1/authenticate"]["post"]["responses"];
    for status in ["401", "415", "429", "503"] {
        assert!(login[status].is_object(), "authenticate lacks {status}");
    }
    // Defender tokens are never login-throttled; their 429 is the new-defender limit.
    let defender_429 = &paths["/api/v1/defender/policy"]["get"]["responses"]["429"];
    assert!(
        defender_429["description"]
            .as_str()
            .is_some_and(|d| d.contains("new defender")),
        "{defender_429}"
    );
    // Basic credentials are documented exactly where the server takes them.
    for (path, item) in paths {
        for (method, op) in item.as_object().expect("path item") {
            let documented = op["security"]
                .as_array()
                .is_some_and(|s| s.iter().any(|req| req.get("basic").is_some()));
            let accepted = lambda_console::auth::BASIC_ROUTES
                .iter()
                .any(|(m, p)| m.eq_ignore_ascii_case(method) && p == path);
            assert_eq!(documented, accepted, "{method} {path}: basic security");
        }
    }
    assert!(r.body["components"]["schemas"]["AuditBatch"].is_object());
    assert!(r.body["components"]["securitySchemes"]["bearer"].is_object());

    // The query filters, with their closed sets of values.
    let params = |path: &str| -> Vec<(String, serde_json::Value)> {
        paths[path]["get"]["parameters"]
            .as_array()
            .expect("parameters")
            .iter()
            .map(|p| {
                (
                    p["name"].as_str().unwrap_or("").to_string(),
                    p["schema"].clone(),
                )
            })
            .collect()
    };
    // Typed as the handlers parse them: the page size an integer with its bounds, the kind the
    // route's own kinds.
    for (route, kinds) in [
        (
            "/api/v1/audits/runtime/app-embedded",
            json!(["process", "dns", "network", "listen"]),
        ),
        ("/api/v1/audits/firewall/app/app-embedded", json!(["cnaf"])),
    ] {
        let ps = params(route);
        let names: Vec<&str> = ps.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "task",
                "container",
                "image",
                "effect",
                "rule",
                "since",
                "limit",
                "cursor",
                "kind"
            ],
            "{route}"
        );
        let schema = |n: &str| {
            ps.iter()
                .find(|(x, _)| x == n)
                .map(|(_, s)| s.clone())
                .unwrap_or_default()
        };
        assert_eq!(
            schema("effect"),
            json!({"$ref": "#/components/schemas/Effect"})
        );
        assert_eq!(schema("kind"), json!({"type": "string", "enum": kinds}));
        assert_eq!(
            schema("limit"),
            json!({"type": "integer", "minimum": 1, "maximum": 1000, "default": 100})
        );
    }
    let ps = params("/api/v1/defenders");
    assert_eq!(
        ps,
        vec![
            (
                "status".to_string(),
                json!({"$ref": "#/components/schemas/DefenderStatus"})
            ),
            (
                "limit".to_string(),
                json!({"type": "integer", "minimum": 1, "maximum": 500, "default": 100})
            ),
            ("cursor".to_string(), json!({"type": "string"})),
        ]
    );
    assert!(paths["/api/v1/defenders/credentials/{id}"]["delete"].is_object());
    assert!(r.body["components"]["schemas"]["CredentialScope"].is_object());
    let schemas = &r.body["components"]["schemas"];
    assert_eq!(
        schemas["Effect"]["enum"],
        json!(["disable", "alert", "prevent", "block"])
    );
    assert_eq!(
        schemas["AuditKind"]["enum"],
        json!(["process", "dns", "network", "listen", "cnaf"])
    );
    assert_eq!(
        schemas["DefenderStatus"]["enum"],
        json!(["connected", "stale", "disconnected"])
    );
    assert!(schemas["DefenderInfo"]["properties"]["status"].is_object());
}
