//! Behaviour of the routes through `app().oneshot`: policies, the defender routes, audits,
//! defenders and the transform.

mod common;

use axum::http::{Method, StatusCode};
use chrono::{Duration, Utc};
use common::{batch, call, call_raw, console, example, record};
use serde_json::{json, Value};

const RUNTIME: &str = "/api/v1/policies/runtime/app-embedded";
const CNAF: &str = "/api/v1/policies/firewall/app/app-embedded";
const POLICY: &str = "/api/v1/defender/policy?task=twistlock-fargate-task&container=twistlock-fargate-task&image=img:1&instance=task-1&version=0.1.0";
const AUDITS: &str = "/api/v1/defender/audits";

#[tokio::test]
async fn policies_get_put_revisions_and_etags() {
    let c = console().await;
    let r = call(&c.app, Method::GET, RUNTIME, Some(&c.auditor), None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body, json!({"revision": 0, "rules": []}));
    assert_eq!(r.headers["etag"], "\"runtime-0\"");

    let mut policy: Value = serde_json::from_str(&example("policy.json")).expect("json");
    policy["revision"] = json!(41); // ignored: the console assigns revisions
    let r = call(
        &c.app,
        Method::PUT,
        RUNTIME,
        Some(&c.admin),
        Some(policy.clone()),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["revision"], 1);
    assert_eq!(r.headers["etag"], "\"runtime-1\"");
    assert_eq!(r.body["rules"][0]["name"], "sample");
    let r = call_raw(
        &c.app,
        Method::PUT,
        RUNTIME,
        Some(&c.admin),
        policy.to_string(),
        &[("if-match", "\"runtime-1\"")],
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["revision"], 2);
    let r = call_raw(
        &c.app,
        Method::PUT,
        RUNTIME,
        Some(&c.admin),
        policy.to_string(),
        &[("if-match", "\"runtime-1\"")],
    )
    .await;
    assert_eq!(r.status, StatusCode::PRECONDITION_FAILED);
    assert_eq!(
        r.body["error"],
        "If-Match: the policy is at revision 2 (ETag \"runtime-2\"); GET it again and reapply your change"
    );
    let r = call(&c.app, Method::GET, RUNTIME, Some(&c.manager), None).await;
    assert_eq!(r.body["revision"], 2);
    assert_eq!(r.headers["etag"], "\"runtime-2\"");

    // Invalid: every bad field by JSON path; nothing stored.
    let mut bad = policy.clone();
    bad["rules"][0]["processes"]["effect"] = json!("explode");
    bad["rules"][0]["network"]["denied_outbound"] = json!(["300.1.1.1/8"]);
    let r = call(&c.app, Method::PUT, RUNTIME, Some(&c.admin), Some(bad)).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let e = r.body["error"].as_str().expect("error");
    assert!(e.contains("rules[0].processes.effect"), "{e}");
    assert!(e.contains("rules[0].network.denied_outbound[0]"), "{e}");
    let r = call_raw(
        &c.app,
        Method::PUT,
        RUNTIME,
        Some(&c.admin),
        String::new(),
        &[],
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        r.body["error"],
        "body: empty; send the whole policy as JSON"
    );
    let r = call(&c.app, Method::GET, RUNTIME, Some(&c.auditor), None).await;
    assert_eq!(r.body["revision"], 2);

    // CNAF policy: same life cycle, its own revisions.
    let r = call(
        &c.app,
        Method::PUT,
        CNAF,
        Some(&c.admin),
        Some(serde_json::from_str(&example("cnaf-policy.json")).expect("json")),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["revision"], 1);
    assert_eq!(r.headers["etag"], "\"firewall-1\"");
    let r = call(&c.app, Method::PUT, CNAF, Some(&c.admin), Some(json!({"rules": [{"name": "w", "scope": {"tasks": ["*"]}, "external_port": 0, "app_port": 80}]}))).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(
        r.body["error"]
            .as_str()
            .unwrap_or("")
            .contains("rules[0].external_port"),
        "{}",
        r.text
    );
}

#[tokio::test]
async fn oversized_policy_is_refused() {
    let c = console().await;
    let big = format!("{{\"rules\":[],\"pad\":\"{}\"}}", "x".repeat(1 << 20));
    let r = call_raw(&c.app, Method::PUT, RUNTIME, Some(&c.admin), big, &[]).await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(
        r.body["error"],
        "request body too large: at most 1048576 bytes; send smaller batches"
    );
}

#[tokio::test]
async fn defender_gets_its_rules_with_etag_and_304() {
    let c = console().await;
    let mut policy: Value = serde_json::from_str(&example("policy.json")).expect("json");
    let other = json!({"name": "other", "scope": {"containers": ["sidecar"]},
        "processes": {"effect": "alert", "denied": ["nc"]}});
    policy["rules"].as_array_mut().expect("rules").push(other);
    let r = call(&c.app, Method::PUT, RUNTIME, Some(&c.admin), Some(policy)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let r = call(
        &c.app,
        Method::PUT,
        CNAF,
        Some(&c.admin),
        Some(serde_json::from_str(&example("cnaf-policy.json")).expect("json")),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);

    let r = call(&c.app, Method::GET, POLICY, Some(&c.defender), None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.headers["etag"], "\"r1-c1\"");
    assert_eq!(r.body["runtime"]["revision"], 1);
    let names: Vec<&str> = r.body["runtime"]["rules"]
        .as_array()
        .expect("rules")
        .iter()
        .filter_map(|r| r["name"].as_str())
        .collect();
    assert_eq!(names, vec!["sample"]);
    assert_eq!(r.body["cnaf"]["revision"], 1);
    assert_eq!(r.body["cnaf"]["rules"][0]["name"], "web");
    assert_eq!(r.body["cnaf"]["rules"].as_array().map(Vec::len), Some(1));
    // The response is the shared API type.
    let bundle: protect::api::PolicyBundle =
        serde_json::from_value(r.body.clone()).expect("PolicyBundle");
    assert_eq!(bundle.runtime.rules.len(), 1);

    let sidecar = "/api/v1/defender/policy?task=other-task&container=sidecar&image=x";
    let r = call(&c.app, Method::GET, sidecar, Some(&c.defender), None).await;
    let names: Vec<&str> = r.body["runtime"]["rules"]
        .as_array()
        .expect("rules")
        .iter()
        .filter_map(|r| r["name"].as_str())
        .collect();
    assert_eq!(names, vec!["other"]);
    assert_eq!(r.body["cnaf"]["rules"], json!([]));

    let r = call_raw(
        &c.app,
        Method::GET,
        POLICY,
        Some(&c.defender),
        String::new(),
        &[("if-none-match", "\"r1-c1\"")],
    )
    .await;
    assert_eq!(r.status, StatusCode::NOT_MODIFIED);
    assert_eq!(r.text, "");
    assert_eq!(r.headers["etag"], "\"r1-c1\"");

    // A change makes the old ETag stale.
    let r = call(
        &c.app,
        Method::PUT,
        RUNTIME,
        Some(&c.admin),
        Some(serde_json::from_str(&example("policy.json")).expect("json")),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    let r = call_raw(
        &c.app,
        Method::GET,
        POLICY,
        Some(&c.defender),
        String::new(),
        &[("if-none-match", "\"r1-c1\"")],
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.headers["etag"], "\"r2-c1\"");

    let r = call(
        &c.app,
        Method::GET,
        "/api/v1/defender/policy?container=c&image=i",
        Some(&c.defender),
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        r.body["error"],
        "task: missing; pass the defender's task (e.g. ?task=FAMILY&container=NAME&image=IMAGE)"
    );
}

#[tokio::test]
async fn audit_batches_are_idempotent_validated_and_queryable() {
    let c = console().await;
    let now = Utc::now();
    let t = |secs: i64| (now - Duration::seconds(secs)).to_rfc3339();
    let web_app = vec![
        record("process", &t(50), "web", "app"),
        record("dns", &t(40), "web", "app"),
        record("cnaf", &t(10), "web", "app"),
    ];
    let r = call(
        &c.app,
        Method::POST,
        AUDITS,
        Some(&c.defender),
        Some(batch("batch-1", web_app.clone())),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(
        r.body,
        json!({"batch_id": "batch-1", "accepted": 3, "duplicate": false})
    );
    let r = call(
        &c.app,
        Method::POST,
        AUDITS,
        Some(&c.defender),
        Some(batch("batch-1", web_app)),
    )
    .await;
    assert_eq!(
        r.body,
        json!({"batch_id": "batch-1", "accepted": 0, "duplicate": true})
    );
    // Two more workloads, each its own defender's batch.
    let others = vec![
        record("network", &t(30), "api", "app"),
        record("process", &t(20), "web", "side"),
    ];
    let answers = common::post_records(&c.app, &c.defender, "batch-2", others).await;
    assert_eq!(common::accepted(&answers), 2);

    let q = |s: &str| format!("/api/v1/audits/runtime/app-embedded{s}");
    let r = call(&c.app, Method::GET, &q(""), Some(&c.auditor), None).await;
    assert_eq!(r.status, StatusCode::OK);
    let kinds: Vec<&str> = r.body["audits"]
        .as_array()
        .expect("audits")
        .iter()
        .filter_map(|a| a["kind"].as_str())
        .collect();
    assert_eq!(
        kinds,
        vec!["process", "network", "dns", "process"],
        "newest first, runtime only"
    );
    assert!(r.body.get("next_cursor").is_none());
    assert_eq!(r.body["audits"][0]["command"], "mkdir test");
    let page: protect::api::AuditPage = serde_json::from_value(r.body.clone()).expect("AuditPage");
    assert_eq!(page.audits.len(), 4);

    let r = call(
        &c.app,
        Method::GET,
        &q("?task=web&kind=process"),
        Some(&c.auditor),
        None,
    )
    .await;
    assert_eq!(r.body["audits"].as_array().map(Vec::len), Some(2));
    let r = call(
        &c.app,
        Method::GET,
        &q("?container=side"),
        Some(&c.auditor),
        None,
    )
    .await;
    assert_eq!(r.body["audits"].as_array().map(Vec::len), Some(1));
    let since = urlencode(&t(35));
    let r = call(
        &c.app,
        Method::GET,
        &q(&format!("?since={since}")),
        Some(&c.auditor),
        None,
    )
    .await;
    assert_eq!(
        r.body["audits"].as_array().map(Vec::len),
        Some(2),
        "{}",
        r.text
    );

    // Pages of one, following next_cursor.
    let mut cursor = String::new();
    let mut seen = Vec::new();
    for _ in 0..10 {
        let r = call(
            &c.app,
            Method::GET,
            &q(&format!("?limit=1{cursor}")),
            Some(&c.auditor),
            None,
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        seen.push(
            r.body["audits"][0]["kind"]
                .as_str()
                .unwrap_or("")
                .to_string(),
        );
        match r.body["next_cursor"].as_str() {
            Some(n) => cursor = format!("&cursor={n}"),
            None => break,
        }
    }
    assert_eq!(seen, vec!["process", "network", "dns", "process"]);

    let r = call(
        &c.app,
        Method::GET,
        "/api/v1/audits/firewall/app/app-embedded",
        Some(&c.auditor),
        None,
    )
    .await;
    let kinds: Vec<&str> = r.body["audits"]
        .as_array()
        .expect("audits")
        .iter()
        .filter_map(|a| a["kind"].as_str())
        .collect();
    assert_eq!(kinds, vec!["cnaf"]);

    // Bad filters name the parameter.
    for (query, want) in [
        ("?since=yesterday", "since: \"yesterday\" is not an RFC 3339 time; use e.g. 2026-11-28T19:00:00Z"),
        ("?limit=0", "limit: \"0\" is not a whole number from 1 to 1000"),
        ("?limit=5000", "limit: \"5000\" is not a whole number from 1 to 1000"),
        ("?kind=cnaf", "kind: \"cnaf\" audits are not on this route; expected process, dns, network or listen"),
        ("?kind=bogus", "kind: unknown audit kind \"bogus\"; expected one of process, dns, network, listen, cnaf"),
        ("?cursor=%21%21", "cursor: not a cursor this console issued; pass next_cursor from the previous page"),
    ] {
        let r = call(&c.app, Method::GET, &q(query), Some(&c.auditor), None).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{query}");
        assert_eq!(r.body["error"], want, "{query}");
    }
}

/// The audits of a query as `kind:task:effect:rule`, newest first, following every
/// `next_cursor`; and whether a page came back short yet with a cursor.
async fn walk(c: &common::Console, route: &str, query: &str) -> (Vec<String>, bool) {
    let mut out = Vec::new();
    let mut short = false;
    let mut cursor = String::new();
    for _ in 0..50 {
        let r = call(
            &c.app,
            Method::GET,
            &format!("{route}?{query}{cursor}"),
            Some(&c.auditor),
            None,
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "{query}: {}", r.text);
        let audits = r.body["audits"].as_array().expect("audits");
        out.extend(audits.iter().map(|a| {
            format!(
                "{}:{}:{}:{}",
                a["kind"].as_str().unwrap_or(""),
                a["task_family"].as_str().unwrap_or(""),
                a["effect"].as_str().unwrap_or(""),
                a["rule"].as_str().unwrap_or("")
            )
        }));
        match r.body["next_cursor"].as_str() {
            Some(n) => {
                let limit = query
                    .split('&')
                    .find_map(|kv| kv.strip_prefix("limit="))
                    .map_or(100, |l| l.parse().expect("limit"));
                short |= audits.len() < limit;
                cursor = format!("&cursor={n}");
            }
            None => return (out, short),
        }
    }
    panic!("{query}: paging does not end: {out:?}");
}

const RUNTIME_AUDITS: &str = "/api/v1/audits/runtime/app-embedded";
const FIREWALL_AUDITS: &str = "/api/v1/audits/firewall/app/app-embedded";

#[tokio::test]
async fn audit_filters_take_patterns_effect_and_rule() {
    // A scan budget of 3 audits per request: filtered pages come back short, with a cursor.
    let mut settings = common::test_settings();
    settings.audit_scan_limit = 3;
    let state = lambda_console::AppState::new(
        std::sync::Arc::new(
            lambda_console::store::sqlite::SqliteStore::in_memory().expect("store"),
        ),
        settings,
    );
    let c = common::console_on(state).await;
    let now = Utc::now();
    let t = |secs: i64| (now - Duration::seconds(secs)).to_rfc3339();
    let seed = "twistlock-fargate-task";
    let rec = |kind: &str, secs: i64, task: &str, effect: &str, rule: &str, image: &str| {
        let mut r = record(kind, &t(secs), task, seed);
        r["effect"] = json!(effect);
        r["rule"] = json!(rule);
        r["image"] = json!(image);
        r
    };
    let records = vec![
        rec(
            "process",
            80,
            seed,
            "prevent",
            "sample",
            "matthewabq/twistlock-fargate-auto",
        ),
        rec("dns", 70, "web", "alert", "sample-dns", "nginx:1.27"),
        rec(
            "network",
            60,
            seed,
            "alert",
            "Sample",
            "matthewabq/twistlock-fargate-auto",
        ),
        rec(
            "listen",
            50,
            "billing",
            "block",
            "other",
            "registry.example/billing:2",
        ),
        rec(
            "process",
            40,
            "TWISTLOCK-FARGATE-TASK",
            "alert",
            "other",
            "nginx:1.27",
        ),
        rec("process", 30, "web", "prevent", "other", "nginx:1.27"),
        rec(
            "cnaf",
            20,
            seed,
            "prevent",
            "cnaf-sample",
            "matthewabq/twistlock-fargate-auto",
        ),
        rec("cnaf", 10, "web", "alert", "cnaf-web", "nginx:1.27"),
    ];
    let answers = common::post_records(&c.app, &c.defender, "filters", records).await;
    assert_eq!(common::accepted(&answers), 8);

    let cases: &[(&str, &[&str])] = &[
        (
            "task=twistlock-fargate-*",
            &[
                "process:TWISTLOCK-FARGATE-TASK:alert:other",
                "network:twistlock-fargate-task:alert:Sample",
                "process:twistlock-fargate-task:prevent:sample",
            ],
        ),
        (
            "effect=prevent",
            &[
                "process:web:prevent:other",
                "process:twistlock-fargate-task:prevent:sample",
            ],
        ),
        (
            "rule=sample",
            &[
                "network:twistlock-fargate-task:alert:Sample",
                "process:twistlock-fargate-task:prevent:sample",
            ],
        ),
        (
            "rule=sample*",
            &[
                "network:twistlock-fargate-task:alert:Sample",
                "dns:web:alert:sample-dns",
                "process:twistlock-fargate-task:prevent:sample",
            ],
        ),
        (
            "image=NGINX:*&kind=process",
            &[
                "process:web:prevent:other",
                "process:TWISTLOCK-FARGATE-TASK:alert:other",
            ],
        ),
        (
            "task=twistlock-fargate-*&effect=alert&kind=network",
            &["network:twistlock-fargate-task:alert:Sample"],
        ),
        (
            "effect=block&container=twistlock-*",
            &["listen:billing:block:other"],
        ),
        ("task=nothing-*", &[]),
    ];
    for (query, want) in cases {
        for limit in ["", "&limit=1", "&limit=2"] {
            let (got, _) = walk(&c, RUNTIME_AUDITS, &format!("{query}{limit}")).await;
            assert_eq!(got, *want, "{query}{limit}");
        }
    }
    // The budget of 3 left some filtered pages short; following the cursor lost nothing.
    let (got, short) = walk(&c, RUNTIME_AUDITS, "effect=prevent&limit=2").await;
    assert_eq!(got.len(), 2);
    assert!(short, "a page of effect=prevent stopped at the scan budget");

    let (got, _) = walk(&c, FIREWALL_AUDITS, "task=TWISTLOCK-*&effect=prevent").await;
    assert_eq!(got, vec!["cnaf:twistlock-fargate-task:prevent:cnaf-sample"]);
    let (got, _) = walk(&c, FIREWALL_AUDITS, "rule=cnaf-*&kind=cnaf").await;
    assert_eq!(got.len(), 2);

    // Bad filters are 400s naming the parameter.
    let long = "a".repeat(1025);
    for (query, want) in [
        ("effect=deny", "effect: unknown effect \"deny\"; expected one of disable, alert, prevent, block".to_string()),
        ("effect=Prevent", "effect: unknown effect \"Prevent\"; expected one of disable, alert, prevent, block".to_string()),
        ("kind=file", "kind: unknown audit kind \"file\"; expected one of process, dns, network, listen, cnaf".to_string()),
        ("task=a%01b", "task: pattern \"a\\u{1}b\" contains a control character; remove it".to_string()),
        ("container=a%00", "container: pattern \"a\\0\" contains a control character; remove it".to_string()),
        ("image=%1Fx", "image: pattern \"\\u{1f}x\" contains a control character; remove it".to_string()),
        (&*format!("rule={long}"), "rule: pattern is 1025 bytes long; the limit is 1024".to_string()),
    ] {
        let r = call(&c.app, Method::GET, &format!("{RUNTIME_AUDITS}?{query}"), Some(&c.auditor), None).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{query}");
        assert_eq!(r.body["error"], want, "{query}");
    }
    let r = call(
        &c.app,
        Method::GET,
        &format!("{FIREWALL_AUDITS}?kind=dns"),
        Some(&c.auditor),
        None,
    )
    .await;
    assert_eq!(
        r.body["error"],
        "kind: \"dns\" audits are not on this route; expected cnaf"
    );
}

fn urlencode(s: &str) -> String {
    s.replace('+', "%2B").replace(':', "%3A")
}

#[tokio::test]
async fn audit_batches_are_bounded_and_checked() {
    let c = console().await;
    let now = Utc::now().to_rfc3339();
    let r = call(
        &c.app,
        Method::POST,
        AUDITS,
        Some(&c.defender),
        Some(batch("bad#id", vec![])),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        r.body["error"],
        "batch_id: must be 1-128 characters of A-Z a-z 0-9 . _ : - (e.g. a UUID)"
    );

    let many = vec![
        json!({"time": now, "kind": "dns", "effect": "alert", "rule": "r", "message": "m"});
        1001
    ];
    let r = call(
        &c.app,
        Method::POST,
        AUDITS,
        Some(&c.defender),
        Some(batch("many", many)),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        r.body["error"],
        "records: 1001 records; send at most 1000 per batch"
    );

    let mut big = record("process", &now, "web", "app");
    big["command"] = json!("x".repeat(1 << 20));
    let r = call(
        &c.app,
        Method::POST,
        AUDITS,
        Some(&c.defender),
        Some(batch("big", vec![big])),
    )
    .await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);

    let mut bad = record("process", &now, "web", "app");
    bad["kind"] = json!("explosion");
    let r = call(
        &c.app,
        Method::POST,
        AUDITS,
        Some(&c.defender),
        Some(batch("b2", vec![record("dns", &now, "w", "a"), bad])),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let e = r.body["error"].as_str().unwrap_or("");
    assert!(e.contains("records[1].kind"), "{e}");

    let old = (Utc::now() - Duration::days(31)).to_rfc3339();
    let r = call(
        &c.app,
        Method::POST,
        AUDITS,
        Some(&c.defender),
        Some(batch("b3", vec![record("dns", &old, "w", "a")])),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(
        r.body["error"]
            .as_str()
            .unwrap_or("")
            .starts_with("records[0].time: "),
        "{}",
        r.text
    );

    let mut b = batch("b4", vec![]);
    b["defender"]["task"] = json!("");
    let r = call(&c.app, Method::POST, AUDITS, Some(&c.defender), Some(b)).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(
        r.body["error"]
            .as_str()
            .unwrap_or("")
            .starts_with("defender.task: missing"),
        "{}",
        r.text
    );
    // Nothing above was stored.
    let r = call(
        &c.app,
        Method::GET,
        "/api/v1/audits/runtime/app-embedded",
        Some(&c.auditor),
        None,
    )
    .await;
    assert_eq!(r.body["audits"], json!([]));
}

#[tokio::test]
async fn defenders_list_scope_version_and_last_contact() {
    let c = console().await;
    let before = Utc::now() - Duration::seconds(1);
    let r = call(&c.app, Method::GET, POLICY, Some(&c.defender), None).await;
    assert_eq!(r.status, StatusCode::OK);
    let now = Utc::now().to_rfc3339();
    let mut b = batch(
        "contact-1",
        vec![
            record(
                "dns",
                &now,
                "twistlock-fargate-task",
                "twistlock-fargate-task"
            );
            3
        ],
    );
    b["defender"]["image"] = json!("img:1");
    b["dropped"] = json!(4);
    let r = call(&c.app, Method::POST, AUDITS, Some(&c.defender), Some(b)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let r = call(
        &c.app,
        Method::GET,
        "/api/v1/defenders",
        Some(&c.auditor),
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    let list: protect::api::DefenderList =
        serde_json::from_value(r.body.clone()).expect("DefenderList");
    assert_eq!(list.defenders.len(), 1, "{}", r.text);
    let d = &list.defenders[0];
    assert_eq!(
        (d.task.as_str(), d.container.as_str(), d.image.as_str()),
        ("twistlock-fargate-task", "twistlock-fargate-task", "img:1")
    );
    assert_eq!(d.instance.as_deref(), Some("task-1"));
    assert_eq!(d.version, "0.1.0");
    assert!(d.last_contact >= before && d.first_seen >= before);
    assert_eq!((d.audits_received, d.audits_dropped), (3, 4));
    assert_eq!(d.status, Some(protect::api::DefenderStatus::Connected));
}

#[tokio::test]
async fn defenders_are_connected_stale_or_disconnected_by_last_contact() {
    let c = console().await;
    // One defender polls now; two were last heard from 5 minutes and 2 hours ago.
    let r = call(&c.app, Method::GET, POLICY, Some(&c.defender), None).await;
    assert_eq!(r.status, StatusCode::OK);
    for (instance, ago) in [
        ("task-2", Duration::minutes(5)),
        ("task-3", Duration::hours(2)),
    ] {
        c.state
            .store()
            .touch_defender(lambda_console::store::DefenderContact {
                identity: protect::api::DefenderIdentity {
                    task: "twistlock-fargate-task".into(),
                    container: "twistlock-fargate-task".into(),
                    image: "img:1".into(),
                    instance: Some(instance.into()),
                    version: "0.1.0".into(),
                },
                at: Utc::now() - ago,
                credential: c.defender_id.clone(),
                audits: 0,
                dropped: 0,
                new_per_day: 1000,
                expires_at: Utc::now() + Duration::days(30),
            })
            .await
            .expect("touch");
    }
    let statuses = |r: &common::Resp| -> Vec<(String, String)> {
        let list: protect::api::DefenderList =
            serde_json::from_value(r.body.clone()).expect("DefenderList");
        let mut v: Vec<(String, String)> = list
            .defenders
            .iter()
            .map(|d| {
                (
                    d.instance.clone().unwrap_or_default(),
                    d.status.map(|s| s.as_str().to_string()).unwrap_or_default(),
                )
            })
            .collect();
        v.sort();
        v
    };
    let pair = |i: &str, s: &str| (i.to_string(), s.to_string());
    let r = call(
        &c.app,
        Method::GET,
        "/api/v1/defenders",
        Some(&c.auditor),
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(
        statuses(&r),
        vec![
            pair("task-1", "connected"),
            pair("task-2", "stale"),
            pair("task-3", "disconnected")
        ],
        "{}",
        r.text
    );
    for (status, instance) in [
        ("connected", "task-1"),
        ("stale", "task-2"),
        ("disconnected", "task-3"),
    ] {
        let r = call(
            &c.app,
            Method::GET,
            &format!("/api/v1/defenders?status={status}"),
            Some(&c.auditor),
            None,
        )
        .await;
        assert_eq!(statuses(&r), vec![pair(instance, status)], "{status}");
    }
    let r = call(
        &c.app,
        Method::GET,
        "/api/v1/defenders?status=offline",
        Some(&c.auditor),
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        r.body["error"],
        "status: unknown status \"offline\"; expected one of connected, stale, disconnected"
    );

    // The thresholds are settings.
    let mut settings = common::test_settings();
    settings.defender_connected_within = Duration::minutes(10);
    settings.defender_stale_within = Duration::hours(3);
    let app = lambda_console::app(lambda_console::AppState::new(
        c.state.store().clone(),
        settings,
    ));
    let r = call(
        &app,
        Method::GET,
        "/api/v1/defenders",
        Some(&c.auditor),
        None,
    )
    .await;
    assert_eq!(
        statuses(&r),
        vec![
            pair("task-1", "connected"),
            pair("task-2", "connected"),
            pair("task-3", "stale")
        ]
    );
}

#[tokio::test]
async fn transform_embeds_the_defender() {
    let c = console().await;
    let td = example("fargate-task.json");
    let uri = "/api/v1/defenders/fargate.json?consoleaddr=console.example.com:8083&tokenSecretArn=arn:aws:secretsmanager:us-east-1:123456789012:secret:defender-token";
    let r = call_raw(&c.app, Method::POST, uri, Some(&c.manager), td.clone(), &[]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let containers = r.body["containerDefinitions"]
        .as_array()
        .expect("containers");
    let installer = containers
        .iter()
        .find(|c| c["name"] == "defender")
        .expect("defender container");
    assert_eq!(installer["image"], "registry.example/defender:1");
    let app = containers
        .iter()
        .find(|c| c["name"] == "twistlock-fargate-task")
        .expect("app");
    assert_eq!(
        app["entryPoint"],
        json!(["/var/lib/defender/defender", "run", "--", "entry.sh"])
    );
    let env = app["environment"].as_array().expect("env");
    assert!(
        env.contains(
            &json!({"name": "DEFENDER_CONSOLE_URL", "value": "https://console.example.com:8083"})
        ),
        "{env:?}"
    );
    assert!(app["secrets"].to_string().contains("defender-token"));

    let uri = "/api/v1/defenders/fargate.json?consoleaddr=http://10.0.0.5:8083&defenderImage=mine/defender:2";
    let r = call_raw(&c.app, Method::POST, uri, Some(&c.admin), td.clone(), &[]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert!(r.text.contains("mine/defender:2") && r.text.contains("http://10.0.0.5:8083"));
    let warned = r
        .headers
        .get_all("warning")
        .iter()
        .any(|w| w.to_str().unwrap_or_default().contains("is plain HTTP"));
    assert!(
        warned,
        "an http:// console beyond loopback is named: {:?}",
        r.headers
    );

    let r = call_raw(
        &c.app,
        Method::POST,
        "/api/v1/defenders/fargate.json",
        Some(&c.admin),
        td.clone(),
        &[],
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        r.body["error"],
        "consoleaddr: missing; pass ?consoleaddr=HOST (the console address defenders reach)"
    );

    let r = call_raw(
        &c.app,
        Method::POST,
        "/api/v1/defenders/fargate.json?consoleaddr=c&tokenSecretArn=nope",
        Some(&c.admin),
        td.clone(),
        &[],
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(
        r.body["error"]
            .as_str()
            .unwrap_or("")
            .contains("tokenSecretArn"),
        "{}",
        r.text
    );

    let broken = json!({"family": "f", "containerDefinitions": [{"name": "a", "image": "i"}]});
    let r = call(
        &c.app,
        Method::POST,
        "/api/v1/defenders/fargate.json?consoleaddr=c",
        Some(&c.admin),
        Some(broken),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(
        r.body["error"]
            .as_str()
            .unwrap_or("")
            .contains("containerDefinitions[0]"),
        "{}",
        r.text
    );
}

#[tokio::test]
async fn transform_on_a_default_console_returns_a_task_that_can_start() {
    let state = lambda_console::AppState::new(
        std::sync::Arc::new(
            lambda_console::store::sqlite::SqliteStore::in_memory().expect("store"),
        ),
        lambda_console::Settings {
            defender_image: lambda_console::Settings::default().defender_image,
            ..common::test_settings()
        },
    );
    let c = common::console_on(state).await;
    // The seed's order: the CNAF rule first, in the console.
    let r = call(
        &c.app,
        Method::PUT,
        "/api/v1/policies/firewall/app/app-embedded",
        Some(&c.admin),
        Some(
            json!({"rules": [{"name": "web", "scope": {"tasks": ["twistlock-fargate-*"]},
            "external_port": 8080, "app_port": 80}]}),
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    // The seed's call, as written: no image, no secret, no ports.
    let r = call_raw(
        &c.app,
        Method::POST,
        "/api/v1/defenders/fargate.json?consoleaddr=console.example.com&startup=security",
        Some(&c.manager),
        example("fargate-task.json"),
        &[],
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.headers["cache-control"], "no-store");
    let containers = r.body["containerDefinitions"]
        .as_array()
        .expect("containers");
    let installer = containers
        .iter()
        .find(|c| c["name"] == "defender")
        .expect("installer");
    assert_eq!(
        installer["image"],
        format!("fargate-defender:{}", env!("CARGO_PKG_VERSION"))
    );
    let app = containers
        .iter()
        .find(|c| c["name"] == "twistlock-fargate-task")
        .expect("app");
    let env_of = |name: &str| {
        app["environment"]
            .as_array()
            .expect("env")
            .iter()
            .find(|e| e["name"] == name)
            .and_then(|e| e["value"].as_str())
            .map(String::from)
    };
    assert_eq!(env_of("DEFENDER_STARTUP").as_deref(), Some("security"));
    assert_eq!(env_of("DEFENDER_CNAF").as_deref(), Some("console"));
    assert_eq!(
        env_of("DEFENDER_CNAF_LISTEN").as_deref(),
        Some("0.0.0.0:8080")
    );
    assert_eq!(
        env_of("DEFENDER_CNAF_UPSTREAM").as_deref(),
        Some("127.0.0.1:80")
    );
    assert!(
        app["portMappings"].to_string().contains("8080"),
        "{}",
        app["portMappings"]
    );
    let token = env_of("DEFENDER_TOKEN").expect("a credential in the task");
    let warnings: Vec<&str> = r
        .headers
        .get_all("warning")
        .iter()
        .map(|v| v.to_str().expect("ascii"))
        .collect();
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("created defender credential")
                && w.contains("twistlock-fargate-task")
                && w.contains("tokenSecretArn")),
        "{warnings:?}"
    );
    assert!(!warnings.iter().any(|w| w.contains(&token)), "{warnings:?}");
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("CNAF port 8080 forwards to the app's port 80")),
        "{warnings:?}"
    );
    // The credential in the task is one the console accepts from a defender.
    let r = call(&c.app, Method::GET, POLICY, Some(&token), None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);

    // Tools that embed the defender themselves read the same default.
    let r = call(
        &c.app,
        Method::GET,
        "/api/v1/defenders/defaults",
        Some(&c.auditor),
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(
        r.body,
        json!({
            "defender_image": format!("fargate-defender:{}", env!("CARGO_PKG_VERSION")),
            "version": env!("CARGO_PKG_VERSION"),
        })
    );
    let r = call(
        &c.app,
        Method::GET,
        "/api/v1/defenders/defaults",
        None,
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);

    // Bad requests are refused (before any credential is made).
    let r = call_raw(
        &c.app,
        Method::POST,
        "/api/v1/defenders/fargate.json?consoleaddr=c",
        Some(&c.manager),
        r#"{"family": "x", "containerDefinitions": []}"#.to_string(),
        &[],
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    let r = call_raw(
        &c.app,
        Method::POST,
        "/api/v1/defenders/fargate.json?consoleaddr=c&startup=fast",
        Some(&c.manager),
        example("fargate-task.json"),
        &[],
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        r.body["error"],
        "startup: must be availability (start at once) or security (wait for the policy)"
    );
}

/// `next_cursor` is opaque and checked: a garbled, truncated or hand-edited cursor, an older
/// console's plain key, a cursor of the other audit route or one naming no scan position is a
/// 400 naming `cursor`, before any audit is read.
#[tokio::test]
async fn forged_audit_cursors_are_refused() {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;
    use lambda_console::routes::audits::encode_cursor;
    use lambda_console::store::AuditCategory;

    let c = console().await;
    let now = Utc::now();
    let records: Vec<Value> = (0..3)
        .map(|i| {
            record(
                "dns",
                &(now - Duration::seconds(i)).to_rfc3339(),
                "web",
                "app",
            )
        })
        .collect();
    let r = call(
        &c.app,
        Method::POST,
        "/api/v1/defender/audits",
        Some(&c.defender),
        Some(batch("cursor-1", records)),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let runtime = "/api/v1/audits/runtime/app-embedded";
    let r = call(
        &c.app,
        Method::GET,
        &format!("{runtime}?limit=1"),
        Some(&c.auditor),
        None,
    )
    .await;
    let good = r.body["next_cursor"].as_str().expect("cursor").to_string();
    let text = String::from_utf8(URL_SAFE_NO_PAD.decode(&good).expect("base64")).expect("utf8");
    let (rest, _check) = text.rsplit_once('|').expect("check");
    let position = rest.rsplit_once('|').expect("position").1;
    // The cursor names the last audit of the page: the next page holds the second.
    let r = call(
        &c.app,
        Method::GET,
        &format!("{runtime}?limit=1&cursor={good}"),
        Some(&c.auditor),
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["audits"].as_array().map(Vec::len), Some(1));

    let b64 = |s: &str| URL_SAFE_NO_PAD.encode(s);
    let earlier = format!("0000000000001{}", &position[13..]);
    let issued =
        "cursor: not a cursor this console issued; pass next_cursor from the previous page";
    for (name, cursor, want) in [
        ("garbled", "!!".to_string(), issued.to_string()),
        (
            "truncated",
            good[..good.len() - 3].to_string(),
            issued.into(),
        ),
        ("an older console's plain key", b64(position), issued.into()),
        (
            "position edited, check kept",
            b64(&text.replacen(position, &earlier, 1)),
            issued.into(),
        ),
        (
            "checked, but no scan position",
            encode_cursor(AuditCategory::Runtime, "yesterday"),
            issued.into(),
        ),
        (
            "checked, position too long",
            encode_cursor(
                AuditCategory::Runtime,
                &format!("{position}{}", "x".repeat(300)),
            ),
            issued.into(),
        ),
        (
            "the firewall route's",
            encode_cursor(AuditCategory::Firewall, position),
            "cursor: a cursor of the firewall audits; pass next_cursor from the previous page of \
             this route"
                .into(),
        ),
    ] {
        let r = call(
            &c.app,
            Method::GET,
            &format!("{runtime}?cursor={cursor}"),
            Some(&c.auditor),
            None,
        )
        .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{name}: {}", r.text);
        assert_eq!(r.body["error"], want.as_str(), "{name}");
    }
}
