//! Defender credentials bound to a scope (issue 16): a credential reads the policy and posts
//! audits only for the task families and clusters it was issued for, its batch ids are its own,
//! it can be listed and revoked, and what a defender reports is bounded (counters, identities,
//! defenders per credential, the defenders list's pages).

mod common;

use axum::http::{Method, StatusCode};
use chrono::{Duration, Utc};
use common::{batch, call, console, console_on, record, Console};
use serde_json::{json, Value};

const AUDITS: &str = "/api/v1/defender/audits";
const SEED: &str = "twistlock-fargate-task";
const PROD_ARN: &str = "arn:aws:ecs:eu-west-1:123456789012:task/prod/0123456789abcdef";

fn policy_uri(task: &str, instance: &str) -> String {
    format!("/api/v1/defender/policy?task={task}&container=app&image=img:1&instance={instance}")
}

/// A credential from the install bundle for `body`; returns the answer's JSON.
async fn bundle(c: &Console, body: Value) -> Value {
    let r = call(
        &c.app,
        Method::POST,
        "/api/v1/defenders/install-bundle",
        Some(&c.manager),
        Some(body),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    r.body
}

async fn token_for(c: &Console, tasks: &[&str]) -> String {
    let b = bundle(c, json!({"name": "scoped", "scope": {"tasks": tasks}})).await;
    b["token"].as_str().expect("token").to_string()
}

/// Every runtime and firewall audit the console holds.
async fn stored_audits(c: &Console) -> usize {
    let mut n = 0;
    for route in [
        "/api/v1/audits/runtime/app-embedded",
        "/api/v1/audits/firewall/app/app-embedded",
    ] {
        let r = call(&c.app, Method::GET, route, Some(&c.auditor), None).await;
        n += r.body["audits"].as_array().map_or(0, Vec::len);
    }
    n
}

fn now() -> String {
    Utc::now().to_rfc3339()
}

#[tokio::test]
async fn install_bundle_validates_and_echoes_the_scope() {
    let c = console().await;
    let r = call(
        &c.app,
        Method::POST,
        "/api/v1/defenders/install-bundle",
        Some(&c.manager),
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(r.body["scope"], json!({"tasks": ["*"], "clusters": ["*"]}));
    let warning = r.headers["warning"].to_str().expect("warning");
    assert!(
        warning.contains("no scope: this credential may speak for every task"),
        "{warning}"
    );

    let b = bundle(
        &c,
        json!({"name": "payments", "scope": {"tasks": ["payments", "payments-*"], "clusters": ["prod"]}}),
    )
    .await;
    assert_eq!(
        b["scope"],
        json!({"tasks": ["payments", "payments-*"], "clusters": ["prod"]})
    );
    let b = bundle(&c, json!({"scope": {"tasks": ["web"]}})).await;
    assert_eq!(b["scope"], json!({"tasks": ["web"], "clusters": ["*"]}));

    for (body, want) in [
        (
            json!({"scope": {"tasks": [""]}}),
            "scope.tasks[0]: empty pattern; use \"*\" to match everything",
        ),
        (
            json!({"scope": {"tasks": []}}),
            "scope.tasks: empty list; list at least one pattern, or \"*\" for every task",
        ),
        (
            json!({"scope": {"task": ["web"]}}),
            "scope.task: unknown field; did you mean tasks? expected one of tasks, clusters",
        ),
        (
            json!({"scope": {"clusters": "prod"}}),
            "scope.clusters: expected an array, found string \"prod\"",
        ),
        (
            json!({"scopes": {"tasks": ["web"]}}),
            "scopes: unknown field; expected name and scope",
        ),
        (
            json!({"name": "a\nb"}),
            "name: at most 128 printable characters",
        ),
    ] {
        let r = call(
            &c.app,
            Method::POST,
            "/api/v1/defenders/install-bundle",
            Some(&c.manager),
            Some(body.clone()),
        )
        .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{body}: {}", r.text);
        assert_eq!(r.body["error"], want, "{body}");
    }
}

#[tokio::test]
async fn a_credential_reads_only_the_policy_of_its_scope() {
    let c = console().await;
    let web = token_for(&c, &["web", "web-*"]).await;
    let r = call(
        &c.app,
        Method::GET,
        &policy_uri("web-api", "t1"),
        Some(&web),
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let r = call(
        &c.app,
        Method::GET,
        &policy_uri("payments", "t1"),
        Some(&web),
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text);
    let e = r.body["error"].as_str().unwrap_or("");
    assert!(
        e.starts_with(
            "forbidden: defender.task \"payments\" is outside this credential's scope (tasks: \
             web, web-*); use a credential issued for this task family (defender credential "
        ),
        "{e}"
    );

    // Limited to a cluster: the task ARN must name it.
    let b = bundle(
        &c,
        json!({"scope": {"tasks": ["payments"], "clusters": ["prod"]}}),
    )
    .await;
    let prod = b["token"].as_str().expect("token");
    let r = call(
        &c.app,
        Method::GET,
        &policy_uri("payments", PROD_ARN),
        Some(prod),
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let staging = PROD_ARN.replace("/prod/", "/staging/");
    let r = call(
        &c.app,
        Method::GET,
        &policy_uri("payments", &staging),
        Some(prod),
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text);
    let r = call(
        &c.app,
        Method::GET,
        &policy_uri("payments", "task-1"),
        Some(prod),
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text);
    assert!(r.text.contains("names no cluster"), "{}", r.text);
    // Refused identities are not listed as defenders.
    let r = call(
        &c.app,
        Method::GET,
        "/api/v1/defenders",
        Some(&c.auditor),
        None,
    )
    .await;
    let tasks: Vec<&str> = r.body["defenders"]
        .as_array()
        .expect("defenders")
        .iter()
        .filter_map(|d| d["instance"].as_str())
        .collect();
    assert_eq!(tasks, vec![PROD_ARN, "t1"], "{}", r.text);
}

#[tokio::test]
async fn a_credential_posts_audits_only_for_its_scope() {
    let c = console().await;
    let web = token_for(&c, &["web"]).await;
    let r = call(
        &c.app,
        Method::POST,
        AUDITS,
        Some(&web),
        Some(batch("b1", vec![record("dns", &now(), "payments", "app")])),
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text);
    assert!(
        r.text
            .contains("defender.task \\\"payments\\\" is outside this credential's scope"),
        "{}",
        r.text
    );
    assert_eq!(stored_audits(&c).await, 0);
    let r = call(
        &c.app,
        Method::POST,
        AUDITS,
        Some(&web),
        Some(batch("b1", vec![record("dns", &now(), "web", "app")])),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(stored_audits(&c).await, 1);
}

#[tokio::test]
async fn records_must_describe_the_batch_defender() {
    let c = console().await;
    let web = token_for(&c, &["web"]).await;
    for (field, value) in [
        ("task_family", "payments"),
        ("container", "other"),
        ("image", "evil:1"),
        ("task_arn", PROD_ARN),
    ] {
        let mut other = record("process", &now(), "web", "app");
        other[field] = json!(value);
        let b = batch("mixed", vec![record("dns", &now(), "web", "app"), other]);
        let r = call(&c.app, Method::POST, AUDITS, Some(&web), Some(b)).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{field}: {}", r.text);
        let e = r.body["error"].as_str().unwrap_or("");
        assert!(
            e.starts_with(&format!(
                "forbidden: records[1].{field} \"{value}\" is not this batch's defender."
            )),
            "{e}"
        );
    }
    // The seed defender's all-task credential is held to the same rule.
    let mut b = batch("seed", vec![record("dns", &now(), SEED, SEED)]);
    b["records"][0]["task_family"] = json!("payments");
    let r = call(&c.app, Method::POST, AUDITS, Some(&c.defender), Some(b)).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text);
    assert_eq!(stored_audits(&c).await, 0, "nothing stored");
}

#[tokio::test]
async fn another_credential_cannot_suppress_a_batch() {
    let c = console().await;
    let web = token_for(&c, &["web"]).await;
    let intruder = token_for(&c, &["other"]).await;
    // The intruder takes batch id X first, with nothing in it.
    let mut empty = batch("X", vec![]);
    empty["defender"]["task"] = json!("other");
    let r = call(&c.app, Method::POST, AUDITS, Some(&intruder), Some(empty)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let records = vec![record("dns", &now(), "web", "app"); 2];
    let r = call(
        &c.app,
        Method::POST,
        AUDITS,
        Some(&web),
        Some(batch("X", records)),
    )
    .await;
    assert_eq!(
        r.body,
        json!({"batch_id": "X", "accepted": 2, "duplicate": false}),
        "{}",
        r.text
    );
    assert_eq!(stored_audits(&c).await, 2);
}

#[tokio::test]
async fn a_changed_retry_is_refused_and_an_identical_one_is_idempotent() {
    let c = console().await;
    let time = now();
    let first = batch("R", vec![record("dns", &time, "web", "app")]);
    let r = call(
        &c.app,
        Method::POST,
        AUDITS,
        Some(&c.defender),
        Some(first.clone()),
    )
    .await;
    assert_eq!(r.body["accepted"], 1, "{}", r.text);
    let r = call(
        &c.app,
        Method::POST,
        AUDITS,
        Some(&c.defender),
        Some(first.clone()),
    )
    .await;
    assert_eq!(
        (r.status, r.body["duplicate"].clone()),
        (StatusCode::OK, json!(true))
    );
    let mut changed = first;
    changed["records"][0]["rule"] = json!("other");
    let r = call(
        &c.app,
        Method::POST,
        AUDITS,
        Some(&c.defender),
        Some(changed),
    )
    .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.text);
    assert_eq!(
        r.body["error"],
        "batch_id \"R\" was sent before by this credential with other content; a retry must \
         repeat the batch exactly, a new batch needs a new batch_id"
    );
    assert_eq!(stored_audits(&c).await, 1);
}

#[tokio::test]
async fn absurd_counters_and_identities_are_refused_and_stored_sums_never_break_the_list() {
    let c = console().await;
    let mut b = batch("d1", vec![record("dns", &now(), "web", "app")]);
    b["dropped"] = json!(u64::MAX - 1);
    let r = call(&c.app, Method::POST, AUDITS, Some(&c.defender), Some(b)).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    assert_eq!(
        r.body["error"],
        "dropped: 18446744073709551614 is not a plausible count of dropped records; report at \
         most 1000000000000 per batch"
    );
    let mut b = batch("d2", vec![]);
    b["defender"]["instance"] = json!("x".repeat(513));
    let r = call(&c.app, Method::POST, AUDITS, Some(&c.defender), Some(b)).await;
    assert_eq!(
        r.body["error"],
        "defender.instance: longer than 512 characters"
    );
    let r = call(
        &c.app,
        Method::GET,
        "/api/v1/defender/policy?task=web&container=app%07&image=i",
        Some(&c.defender),
        None,
    )
    .await;
    assert_eq!(
        r.body["error"],
        "container: contains a control character; identity fields are printable text"
    );
    // Sums at the top saturate: the list keeps answering.
    for i in 0..3 {
        let mut b = batch(&format!("big-{i}"), vec![]);
        b["dropped"] = json!(1_000_000_000_000u64);
        let r = call(&c.app, Method::POST, AUDITS, Some(&c.defender), Some(b)).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    }
    let huge = lambda_console::store::DefenderContact {
        identity: protect::api::DefenderIdentity {
            task: SEED.into(),
            container: SEED.into(),
            image: "matthewabq/twistlock-fargate-auto".into(),
            instance: Some("task-1".into()),
            version: "0.1.0".into(),
        },
        credential: c.defender_id.clone(),
        at: Utc::now(),
        audits: u64::MAX,
        dropped: u64::MAX,
        new_per_day: 1000,
        expires_at: Utc::now() + Duration::days(30),
    };
    for _ in 0..2 {
        c.state
            .store()
            .touch_defender(huge.clone())
            .await
            .expect("touch");
    }
    let r = call(
        &c.app,
        Method::GET,
        "/api/v1/defenders",
        Some(&c.auditor),
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["defenders"][0]["audits_dropped"], json!(i64::MAX));
}

#[tokio::test]
async fn credentials_are_listed_and_revoked() {
    let c = console().await;
    let b = bundle(&c, json!({"name": "web", "scope": {"tasks": ["web"]}})).await;
    let (token, id) = (
        b["token"].as_str().expect("t"),
        b["id"].as_str().expect("id"),
    );
    let r = call(
        &c.app,
        Method::GET,
        &policy_uri("web", "t1"),
        Some(token),
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);

    let list = "/api/v1/defenders/credentials";
    let r = call(&c.app, Method::GET, list, Some(&c.manager), None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let listed: protect::api::CredentialList =
        serde_json::from_value(r.body.clone()).expect("CredentialList");
    let mine = listed
        .credentials
        .iter()
        .find(|x| x.id == id)
        .expect("listed");
    assert_eq!(mine.name.as_deref(), Some("web"));
    assert_eq!(mine.created_by.as_deref(), Some("manny"));
    assert_eq!(mine.scope.tasks[0].as_str(), "web");
    assert_eq!(mine.revoked_at, None);
    assert!(
        !r.text.contains(token) && !r.text.contains("hash"),
        "{}",
        r.text
    );
    for who in [&c.auditor, &c.defender] {
        let r = call(&c.app, Method::GET, list, Some(who), None).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text);
        let r = call(
            &c.app,
            Method::DELETE,
            &format!("{list}/{id}"),
            Some(who),
            None,
        )
        .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text);
    }
    // Pages of one.
    let r = call(
        &c.app,
        Method::GET,
        &format!("{list}?limit=1"),
        Some(&c.manager),
        None,
    )
    .await;
    assert_eq!(r.body["credentials"].as_array().map(Vec::len), Some(1));
    let next = r.body["next_cursor"].as_str().expect("next page");
    let r = call(
        &c.app,
        Method::GET,
        &format!("{list}?limit=1&cursor={next}"),
        Some(&c.manager),
        None,
    )
    .await;
    assert_eq!(r.body["credentials"].as_array().map(Vec::len), Some(1));
    assert!(r.body.get("next_cursor").is_none(), "{}", r.text);

    // Revoked: refused at once, though this instance had the token cached.
    let r = call(
        &c.app,
        Method::DELETE,
        &format!("{list}/{id}"),
        Some(&c.manager),
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    let r = call(
        &c.app,
        Method::GET,
        &policy_uri("web", "t1"),
        Some(token),
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.text);
    assert_eq!(
        r.body["error"],
        "this defender credential was revoked: give the defender a new one (POST \
         /api/v1/defenders/install-bundle)"
    );
    let r = call(
        &c.app,
        Method::POST,
        AUDITS,
        Some(token),
        Some(batch("after", vec![record("dns", &now(), "web", "app")])),
    )
    .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.text);
    let r = call(&c.app, Method::GET, list, Some(&c.admin), None).await;
    let mine = r.body["credentials"]
        .as_array()
        .expect("list")
        .iter()
        .find(|x| x["id"] == id)
        .cloned()
        .expect("still listed");
    assert!(mine["revoked_at"].is_string(), "{mine}");
    // The other credential still works.
    let r = call(
        &c.app,
        Method::GET,
        &policy_uri(SEED, "t1"),
        Some(&c.defender),
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let r = call(
        &c.app,
        Method::DELETE,
        &format!("{list}/nope"),
        Some(&c.manager),
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.text);
    assert_eq!(
        r.body["error"],
        "no defender credential \"nope\"; see GET /api/v1/defenders/credentials"
    );
}

#[test]
fn other_instances_drop_a_revoked_token_within_one_poll() {
    // A revoked credential stays cached on other console instances at most this long; the
    // defender polls every 10 s by default.
    assert!(
        lambda_console::Settings::default().token_cache_ttl <= std::time::Duration::from_secs(10)
    );
}

#[tokio::test]
async fn a_credential_adds_a_bounded_number_of_defenders() {
    let mut settings = common::test_settings();
    settings.new_defenders_per_credential = 3;
    let c = console_on(lambda_console::AppState::new(
        std::sync::Arc::new(
            lambda_console::store::sqlite::SqliteStore::in_memory().expect("store"),
        ),
        settings,
    ))
    .await;
    for i in 0..3 {
        let r = call(
            &c.app,
            Method::GET,
            &policy_uri("web", &format!("t{i}")),
            Some(&c.defender),
            None,
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    }
    let r = call(
        &c.app,
        Method::GET,
        &policy_uri("web", "t3"),
        Some(&c.defender),
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{}", r.text);
    assert!(
        r.body["error"]
            .as_str()
            .unwrap_or("")
            .ends_with("has already registered 3 new defenders today (task, container, image, instance); this one is refused until tomorrow (UTC). Use one credential per service, or raise CONSOLE_NEW_DEFENDERS_PER_CREDENTIAL"),
        "{}",
        r.text
    );
    let mut b = batch("new", vec![record("dns", &now(), "web", "app")]);
    b["defender"]["instance"] = json!("t4");
    let r = call(&c.app, Method::POST, AUDITS, Some(&c.defender), Some(b)).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{}", r.text);
    // Known defenders carry on; another credential is not affected.
    let r = call(
        &c.app,
        Method::GET,
        &policy_uri("web", "t1"),
        Some(&c.defender),
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let other = token_for(&c, &["web"]).await;
    let r = call(
        &c.app,
        Method::GET,
        &policy_uri("web", "t3"),
        Some(&other),
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
}

#[tokio::test]
async fn the_defenders_list_comes_in_pages_far_below_the_lambda_limit() {
    let c = console().await;
    // 501 defenders with the longest identity fields accepted.
    let long = |c: char| c.to_string().repeat(512);
    let store = c.state.store().clone();
    for i in 0..501 {
        let outcome = store
            .touch_defender(lambda_console::store::DefenderContact {
                identity: protect::api::DefenderIdentity {
                    task: format!("{i:03}{}", long('t')).chars().take(512).collect(),
                    container: long('c'),
                    image: long('i'),
                    instance: Some(long('n')),
                    version: "v".repeat(64),
                },
                credential: c.defender_id.clone(),
                at: Utc::now(),
                audits: 1,
                dropped: 0,
                new_per_day: 1000,
                expires_at: Utc::now() + Duration::days(30),
            })
            .await
            .expect("touch");
        assert_eq!(outcome, lambda_console::store::TouchOutcome::Recorded);
    }
    let r = call(
        &c.app,
        Method::GET,
        "/api/v1/defenders",
        Some(&c.auditor),
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["defenders"].as_array().map(Vec::len), Some(100));
    assert!(
        r.text.len() < 1_000_000,
        "default page: {} bytes",
        r.text.len()
    );
    let mut seen = Vec::new();
    let mut cursor = String::new();
    loop {
        let r = call(
            &c.app,
            Method::GET,
            &format!("/api/v1/defenders?limit=500{cursor}"),
            Some(&c.auditor),
            None,
        )
        .await;
        assert_eq!(
            r.status,
            StatusCode::OK,
            "{}",
            &r.text[..200.min(r.text.len())]
        );
        assert!(
            r.text.len() < 3_000_000,
            "largest page: {} bytes",
            r.text.len()
        );
        for d in r.body["defenders"].as_array().expect("defenders") {
            seen.push(d["task"].as_str().unwrap_or("")[..3].to_string());
        }
        match r.body["next_cursor"].as_str() {
            Some(n) => cursor = format!("&cursor={n}"),
            None => break,
        }
    }
    let want: Vec<String> = (0..501).map(|i| format!("{i:03}")).collect();
    assert_eq!(seen, want, "every defender once, in order");
    for (query, want) in [
        (
            "?limit=0",
            "limit: \"0\" is not a whole number from 1 to 500",
        ),
        (
            "?limit=501",
            "limit: \"501\" is not a whole number from 1 to 500",
        ),
        (
            "?cursor=%21%21",
            "cursor: not a cursor this console issued; pass next_cursor from the previous page",
        ),
    ] {
        let r = call(
            &c.app,
            Method::GET,
            &format!("/api/v1/defenders{query}"),
            Some(&c.auditor),
            None,
        )
        .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{query}");
        assert_eq!(r.body["error"], want, "{query}");
    }
}
