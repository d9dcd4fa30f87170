//! Sessions and logins (issue 16): failed logins throttled without password work, no username
//! oracle in the timing, Basic auth verified once per cache period, renewals that keep the
//! session's end, sessions that follow the user's current role, logout.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::http::{Method, StatusCode};
use base64::Engine;
use common::{call, console_on, login, test_settings, ADMIN_PASSWORD};
use lambda_console::store::sqlite::SqliteStore;
use lambda_console::{AppState, Settings};
use serde_json::json;

/// Argon2 at its default cost (19 MiB, 2 passes): slow enough that a password check shows in
/// the timing, even in an optimised build.
fn costly(settings: Settings) -> Settings {
    Settings {
        argon2: argon2::Params::default(),
        ..settings
    }
}

fn state_with(settings: Settings) -> AppState {
    AppState::new(Arc::new(SqliteStore::in_memory().expect("store")), settings)
}

fn basic(user: &str, password: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
    )
}

/// Creates user `name` (password `NAME-password-1`), whose password has not been checked yet.
async fn new_user(c: &common::Console, name: &str, role: &str) -> String {
    let password = format!("{name}-password-1");
    let r = call(
        &c.app,
        Method::POST,
        "/api/v1/users",
        Some(&c.admin),
        Some(json!({"username": name, "password": password, "role": role})),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    password
}

async fn wrong_login(app: &axum::Router, user: &str) -> common::Resp {
    call(
        app,
        Method::POST,
        "/api/v1/authenticate",
        None,
        Some(json!({"username": user, "password": "wrong-password-1"})),
    )
    .await
}

#[tokio::test]
async fn failed_logins_are_throttled_per_user_without_password_work() {
    let c = console_on(state_with(costly(test_settings()))).await;
    let password = new_user(&c, "pat", "auditor").await;
    for _ in 0..5 {
        let r = wrong_login(&c.app, "pat").await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.text);
    }
    // 35 more guesses: each refused before any Argon2 work, so all of them take less time
    // than a handful of password checks would.
    let start = Instant::now();
    for _ in 0..35 {
        let r = wrong_login(&c.app, "pat").await;
        assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{}", r.text);
        let retry: u64 = r.headers["retry-after"]
            .to_str()
            .expect("ascii")
            .parse()
            .expect("seconds");
        assert!((1..=60).contains(&retry), "Retry-After {retry}");
        assert_eq!(
            r.body["error"],
            format!(
                "too many failed logins for this user or from this address; retry after \
                 {retry} s"
            )
        );
    }
    let throttled = start.elapsed();
    // The right password is throttled too while the window lasts (unless it was verified
    // within the login cache period)...
    let r = call(
        &c.app,
        Method::POST,
        "/api/v1/authenticate",
        None,
        Some(json!({"username": "pat", "password": password})),
    )
    .await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    // ... other users are not.
    login(&c.app, "audrey", "audrey-password-1").await;
    let one_check = {
        let start = Instant::now();
        let r = wrong_login(&c.app, "manny").await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
        start.elapsed()
    };
    assert!(
        throttled < one_check * 3,
        "35 throttled logins took {throttled:?}, one password check {one_check:?}"
    );
}

/// The median time of `n` runs of `f`.
async fn median<F, Fut>(n: usize, mut f: F) -> Duration
where
    F: FnMut(usize) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let mut times = Vec::with_capacity(n);
    for i in 0..n {
        let start = Instant::now();
        f(i).await;
        times.push(start.elapsed());
    }
    times.sort();
    times[n / 2]
}

#[tokio::test]
async fn unknown_users_take_as_long_as_known_ones() {
    let settings = Settings {
        login_failures_per_user: 1000,
        ..costly(test_settings())
    };
    let c = console_on(state_with(settings)).await;
    // The dummy hash is made on first use: warm it up.
    wrong_login(&c.app, "warm-up").await;
    let app = &c.app;
    let known = median(7, |_| async move {
        let r = wrong_login(app, "admin").await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    })
    .await;
    let unknown = median(7, |i| async move {
        let r = wrong_login(app, &format!("nobody-{i}")).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    })
    .await;
    let ratio = unknown.as_secs_f64() / known.as_secs_f64();
    assert!(
        (0.5..2.0).contains(&ratio),
        "unknown user {unknown:?}, known user {known:?}"
    );
}

#[tokio::test]
async fn basic_auth_is_verified_once_per_cache_period() {
    let c = console_on(state_with(costly(test_settings()))).await;
    let password = new_user(&c, "pipeline", "auditor").await;
    let creds = basic("pipeline", &password);
    let first = {
        let start = Instant::now();
        let r = call(
            &c.app,
            Method::GET,
            "/api/v1/defenders/defaults",
            Some(&creds),
            None,
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        start.elapsed()
    };
    let start = Instant::now();
    for _ in 0..20 {
        let r = call(
            &c.app,
            Method::GET,
            "/api/v1/defenders/defaults",
            Some(&creds),
            None,
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    }
    let cached = start.elapsed();
    assert!(
        cached < first * 4,
        "20 Basic requests took {cached:?}, the first (verified) one {first:?}"
    );
    // A wrong password is never served from the memory of the right one.
    let r = call(
        &c.app,
        Method::GET,
        "/api/v1/defenders/defaults",
        Some(&basic("pipeline", "wrong-password-1")),
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
}

fn expires_at(r: &common::Resp) -> chrono::DateTime<chrono::Utc> {
    r.body["expires_at"]
        .as_str()
        .expect("expires_at")
        .parse()
        .expect("time")
}

#[tokio::test]
async fn renewed_tokens_keep_the_sessions_end() {
    let c = console_on(common::state()).await;
    let first = call(
        &c.app,
        Method::POST,
        "/api/v1/authenticate",
        None,
        Some(json!({"username": "admin", "password": ADMIN_PASSWORD})),
    )
    .await;
    assert_eq!(first.status, StatusCode::OK);
    let end = expires_at(&first);
    let mut token = first.body["token"].as_str().expect("token").to_string();
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_millis(20)).await;
        let r = call(
            &c.app,
            Method::POST,
            "/api/v1/authenticate",
            Some(&token),
            None,
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        let renewed = r.body["token"].as_str().expect("token").to_string();
        assert_ne!(renewed, token);
        assert!(
            (expires_at(&r) - end).num_milliseconds().abs() < 1,
            "a renewed token ends at {}, the session at {end}",
            expires_at(&r)
        );
        token = renewed;
    }
    let r = call(&c.app, Method::GET, "/api/v1/defenders", Some(&token), None).await;
    assert_eq!(r.status, StatusCode::OK);
}

#[tokio::test]
async fn sessions_follow_the_users_current_role() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = SqliteStore::open(dir.path()).expect("store");
    let settings = Settings {
        token_cache_ttl: Duration::ZERO,
        ..test_settings()
    };
    let c = console_on(AppState::new(Arc::new(store), settings)).await;
    let install = |token: String| {
        let app = c.app.clone();
        async move {
            call(
                &app,
                Method::POST,
                "/api/v1/defenders/install-bundle",
                Some(&token),
                Some(json!({"name": "web"})),
            )
            .await
        }
    };
    assert_eq!(install(c.manager.clone()).await.status, StatusCode::CREATED);

    // An operator demotes manny in the store: the session has the new role at once (the
    // token cache TTL is 0 here).
    let db = rusqlite::Connection::open(dir.path().join("console.db")).expect("db");
    db.execute(
        "UPDATE users SET role = 'auditor' WHERE username = 'manny'",
        [],
    )
    .expect("update");
    let r = install(c.manager.clone()).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text);
    assert_eq!(
        r.body["error"],
        "forbidden: this route needs role defender-manager or higher"
    );
    let r = call(
        &c.app,
        Method::GET,
        "/api/v1/defenders",
        Some(&c.manager),
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);

    // A deleted user's sessions end.
    db.execute("DELETE FROM users WHERE username = 'manny'", [])
        .expect("delete");
    let r = call(
        &c.app,
        Method::GET,
        "/api/v1/defenders",
        Some(&c.manager),
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.text);
}

#[tokio::test]
async fn logout_ends_the_session() {
    let c = console_on(common::state()).await;
    let token = login(&c.app, "admin", ADMIN_PASSWORD).await;
    let r = call(&c.app, Method::GET, "/api/v1/defenders", Some(&token), None).await;
    assert_eq!(r.status, StatusCode::OK);
    let r = call(&c.app, Method::POST, "/api/v1/logout", Some(&token), None).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    for (method, uri) in [
        (Method::GET, "/api/v1/defenders"),
        (Method::POST, "/api/v1/authenticate"),
        (Method::POST, "/api/v1/logout"),
    ] {
        let r = call(&c.app, method, uri, Some(&token), None).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{uri}: {}", r.text);
    }
    // Other sessions go on.
    let r = call(
        &c.app,
        Method::GET,
        "/api/v1/defenders",
        Some(&c.admin),
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    // Basic credentials have no session to end; a defender token is no session.
    let r = call(
        &c.app,
        Method::POST,
        "/api/v1/logout",
        Some(&basic("admin", ADMIN_PASSWORD)),
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    let r = call(
        &c.app,
        Method::POST,
        "/api/v1/logout",
        Some(&c.defender),
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text);
}
