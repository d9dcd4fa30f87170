//! The DynamoDB store against moto server: the same conformance suite as SQLite, the TTL
//! attributes, and the console's main flows on top of it.

mod common;

use std::sync::Arc;

use aws_sdk_dynamodb::config::{BehaviorVersion, Credentials, Region};
use axum::http::{Method, StatusCode};
use chrono::Utc;
use common::{batch, call, call_raw, console_on, example, record};
use integration_tests::moto::MotoServer;
use lambda_console::store::conformance;
use lambda_console::store::dynamo::{DynamoStore, TTL_ATTRIBUTE};
use lambda_console::AppState;
use serde_json::json;

async fn sdk_config(moto: &MotoServer) -> aws_config::SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .endpoint_url(moto.endpoint())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("testing", "testing", None, None, "moto"))
        .load()
        .await
}

async fn client(moto: &MotoServer) -> aws_sdk_dynamodb::Client {
    aws_sdk_dynamodb::Client::new(&sdk_config(moto).await)
}

async fn fresh_store(moto: &MotoServer, table: &str) -> (DynamoStore, aws_sdk_dynamodb::Client) {
    let client = client(moto).await;
    DynamoStore::create_table(&client, table)
        .await
        .expect("create table");
    (DynamoStore::new(client.clone(), table), client)
}

#[tokio::test]
async fn dynamodb_passes_the_store_suite() {
    let moto = MotoServer::start(&[]).expect("moto server");
    let (store, client) = fresh_store(&moto, "console-suite").await;
    conformance::run(&store).await.expect("conformance");

    // The table expires items by TTL on `expires_at`.
    let ttl = client
        .describe_time_to_live()
        .table_name("console-suite")
        .send()
        .await
        .expect("describe ttl");
    let desc = ttl.time_to_live_description().expect("ttl description");
    assert_eq!(desc.attribute_name(), Some(TTL_ATTRIBUTE));
}

#[tokio::test]
async fn audits_and_batch_markers_carry_the_ttl() {
    let moto = MotoServer::start(&[]).expect("moto server");
    let (store, _) = fresh_store(&moto, "console-ttl").await;
    let state = AppState::new(Arc::new(store.clone()), common::test_settings());
    let c = console_on(state).await;
    let now = Utc::now();
    let r = call(
        &c.app,
        Method::POST,
        "/api/v1/defender/audits",
        Some(&c.defender),
        Some(batch(
            "ttl-1",
            vec![record("dns", &now.to_rfc3339(), "web", "app")],
        )),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let marker = store
        .raw_item(&format!("BATCH#{}#ttl-1", c.defender_id), "BATCH")
        .await
        .expect("get")
        .expect("marker");
    let ttl: i64 = marker[TTL_ATTRIBUTE]
        .as_n()
        .expect("n")
        .parse()
        .expect("int");
    let want = (now + chrono::Duration::days(30)).timestamp();
    assert!((ttl - want).abs() < 60, "ttl {ttl} vs {want}");
    let pk = format!("AUDIT#runtime#{}", now.format("%Y-%m-%d"));
    let sk = lambda_console::store::audit_sort_key(
        chrono::DateTime::parse_from_rfc3339(&now.to_rfc3339())
            .expect("t")
            .timestamp_millis(),
        &c.defender_id,
        "ttl-1",
        0,
    );
    let item = store
        .raw_item(&pk, &sk)
        .await
        .expect("get")
        .expect("audit item");
    assert_eq!(item[TTL_ATTRIBUTE].as_n().expect("n"), &ttl.to_string());
    assert_eq!(item["kind"].as_s().expect("s"), "dns");
}

#[tokio::test]
async fn the_console_runs_on_dynamodb() {
    let moto = MotoServer::start(&[]).expect("moto server");
    let (store, _) = fresh_store(&moto, "console-api").await;
    let c = console_on(AppState::new(Arc::new(store), common::test_settings())).await;

    let r = call_raw(
        &c.app,
        Method::PUT,
        "/api/v1/policies/runtime/app-embedded",
        Some(&c.admin),
        example("policy.json"),
        &[],
    )
    .await;
    assert_eq!(
        (r.status, r.body["revision"].clone()),
        (StatusCode::OK, json!(1)),
        "{}",
        r.text
    );
    let r = call_raw(
        &c.app,
        Method::PUT,
        "/api/v1/policies/runtime/app-embedded",
        Some(&c.admin),
        example("policy.json"),
        &[],
    )
    .await;
    assert_eq!(r.body["revision"], 2);
    let uri =
        "/api/v1/defender/policy?task=t&container=twistlock-fargate-task&image=i&version=0.1.0";
    let r = call(&c.app, Method::GET, uri, Some(&c.defender), None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["runtime"]["rules"][0]["name"], "sample");
    let etag = r.headers["etag"].to_str().expect("etag").to_string();
    let r = call_raw(
        &c.app,
        Method::GET,
        uri,
        Some(&c.defender),
        String::new(),
        &[("if-none-match", &etag)],
    )
    .await;
    assert_eq!(r.status, StatusCode::NOT_MODIFIED);

    let now = Utc::now();
    let records: Vec<_> = (0..30)
        .map(|i| {
            record(
                "process",
                &(now - chrono::Duration::seconds(i)).to_rfc3339(),
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
        Some(batch("dyn-1", records.clone())),
    )
    .await;
    assert_eq!(r.body["accepted"], 30, "{}", r.text);
    let r = call(
        &c.app,
        Method::POST,
        "/api/v1/defender/audits",
        Some(&c.defender),
        Some(batch("dyn-1", records)),
    )
    .await;
    assert_eq!(r.body["duplicate"], true);
    let mut cursor = String::new();
    let mut total = 0;
    for _ in 0..10 {
        let r = call(
            &c.app,
            Method::GET,
            &format!("/api/v1/audits/runtime/app-embedded?limit=7{cursor}"),
            Some(&c.auditor),
            None,
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        total += r.body["audits"].as_array().map_or(0, Vec::len);
        match r.body["next_cursor"].as_str() {
            Some(n) => cursor = format!("&cursor={n}"),
            None => break,
        }
    }
    assert_eq!(total, 30);
    let r = call(
        &c.app,
        Method::GET,
        "/api/v1/defenders",
        Some(&c.auditor),
        None,
    )
    .await;
    let d = &r.body["defenders"];
    assert_eq!(d.as_array().map(Vec::len), Some(2), "{}", r.text);
}

#[tokio::test]
async fn lambda_bootstrap_reads_the_admin_password_from_secrets_manager() {
    let moto = MotoServer::start(&[]).expect("moto server");
    let config = sdk_config(&moto).await;
    let ddb = aws_sdk_dynamodb::Client::new(&config);
    DynamoStore::create_table(&ddb, "console-boot")
        .await
        .expect("table");
    let secret = aws_sdk_secretsmanager::Client::new(&config)
        .create_secret()
        .name("console-admin")
        .secret_string("from-the-secret-123")
        .send()
        .await
        .expect("secret");
    let admin = lambda_console::server::AdminSource {
        username: "root-admin".into(),
        password: None,
        secret_arn: secret.arn().map(str::to_string),
    };
    let state = lambda_console::server::lambda_state(
        &config,
        "console-boot",
        admin.clone(),
        common::test_settings(),
    )
    .await
    .expect("state");
    let app = lambda_console::app(state);
    let token = common::login(&app, "root-admin", "from-the-secret-123").await;
    let r = call(&app, Method::GET, "/api/v1/defenders", Some(&token), None).await;
    assert_eq!(r.status, StatusCode::OK);

    // A second cold start finds the user and does not need the secret.
    let mut gone = admin;
    gone.secret_arn = Some("arn:aws:secretsmanager:us-east-1:123456789012:secret:missing".into());
    lambda_console::server::lambda_state(
        &config,
        "console-boot",
        gone.clone(),
        common::test_settings(),
    )
    .await
    .expect("existing users: the secret is not read");
    // On an empty table a missing secret is a clear error.
    DynamoStore::create_table(&ddb, "console-empty")
        .await
        .expect("table");
    let e = lambda_console::server::lambda_state(
        &config,
        "console-empty",
        gone,
        common::test_settings(),
    )
    .await
    .err()
    .expect("missing secret");
    assert!(
        e.to_string()
            .starts_with("CONSOLE_ADMIN_PASSWORD_SECRET_ARN: cannot read the secret"),
        "{e}"
    );
}

/// Every DynamoDB request the client sends: its operation and JSON body.
#[derive(Clone, Debug, Default)]
struct Requests(Arc<std::sync::Mutex<Vec<(String, serde_json::Value)>>>);

impl Requests {
    fn take(&self) -> Vec<(String, serde_json::Value)> {
        std::mem::take(&mut *self.0.lock().expect("lock"))
    }
}

impl aws_sdk_dynamodb::config::Intercept for Requests {
    fn name(&self) -> &'static str {
        "Requests"
    }

    fn read_before_transmit(
        &self,
        ctx: &aws_sdk_dynamodb::config::interceptors::BeforeTransmitInterceptorContextRef<'_>,
        _rc: &aws_sdk_dynamodb::config::RuntimeComponents,
        _cfg: &mut aws_sdk_dynamodb::config::ConfigBag,
    ) -> Result<(), aws_sdk_dynamodb::error::BoxError> {
        let req = ctx.request();
        let op = req
            .headers()
            .get("x-amz-target")
            .unwrap_or_default()
            .trim_start_matches("DynamoDB_20120810.")
            .to_string();
        let body = req
            .body()
            .bytes()
            .and_then(|b| serde_json::from_slice(b).ok())
            .unwrap_or_default();
        self.0.lock().expect("lock").push((op, body));
        Ok(())
    }
}

/// The console on DynamoDB with a client that records every request, and a 400-day retention.
async fn counted_console(moto: &MotoServer, table: &str) -> (common::Console, Requests) {
    let requests = Requests::default();
    let config = aws_sdk_dynamodb::config::Builder::from(&sdk_config(moto).await)
        .interceptor(requests.clone())
        .build();
    let client = aws_sdk_dynamodb::Client::from_conf(config);
    DynamoStore::create_table(&client, table)
        .await
        .expect("table");
    let mut settings = common::test_settings();
    settings.audit_retention = chrono::Duration::days(400);
    let c = console_on(AppState::new(
        Arc::new(DynamoStore::new(client, table)),
        settings,
    ))
    .await;
    (c, requests)
}

/// The Queries among `requests`, after checking that each carries `Limit` and that nothing
/// scans the table.
fn queries(requests: &[(String, serde_json::Value)]) -> usize {
    for (op, body) in requests {
        assert_ne!(op, "Scan", "{body}");
        if op == "Query" {
            assert!(
                body["Limit"].as_u64().is_some(),
                "Query without Limit: {body}"
            );
        }
    }
    requests.iter().filter(|(op, _)| op == "Query").count()
}

/// Follows an audit query through the API: the audits' times (newest first), and the
/// Queries each page sent.
async fn follow_counted(
    c: &common::Console,
    requests: &Requests,
    query: &str,
) -> (Vec<String>, Vec<usize>) {
    let mut cursor = String::new();
    let (mut times, mut per_page) = (Vec::new(), Vec::new());
    requests.take();
    for _ in 0..100 {
        let r = call(
            &c.app,
            Method::GET,
            &format!("/api/v1/audits/runtime/app-embedded?{query}{cursor}"),
            Some(&c.auditor),
            None,
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        per_page.push(queries(&requests.take()));
        for a in r.body["audits"].as_array().expect("audits") {
            times.push(a["time"].as_str().expect("time").to_string());
        }
        match r.body["next_cursor"].as_str() {
            Some(n) => cursor = format!("&cursor={n}"),
            None => return (times, per_page),
        }
    }
    panic!("paging does not end: {per_page:?}");
}

/// One audit query sends at most one Query per day of its window (32), each with `Limit`, even
/// when the filter matches nothing over 400 days of retention; following the cursors reads every
/// day once and returns each matching audit once.
#[tokio::test]
async fn an_audit_query_sends_a_bounded_number_of_queries() {
    use lambda_console::store::dynamo::MAX_AUDIT_QUERY_REQUESTS;
    use lambda_console::store::MAX_AUDIT_DAYS;
    let moto = MotoServer::start(&[]).expect("moto server");
    let (c, requests) = counted_console(&moto, "console-bounds").await;
    let setup = requests.take();
    queries(&setup);

    // Two audits on each of six days spread over the retention; the other days are empty.
    let now = Utc::now() - chrono::Duration::minutes(1);
    let mut want = Vec::new();
    let mut records = Vec::new();
    for d in [0, 3, 40, 41, 200, 390] {
        for s in [0, 1] {
            let t = (now - chrono::Duration::days(d) - chrono::Duration::seconds(s))
                .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
            records.push(record("process", &t, "web", "app"));
            want.push(t);
        }
    }
    let r = call(
        &c.app,
        Method::POST,
        "/api/v1/defender/audits",
        Some(&c.defender),
        Some(batch("spread-1", records)),
    )
    .await;
    assert_eq!(r.body["accepted"], 12, "{}", r.text);
    // The ingest reads only the batch marker and the defender: no Query.
    assert_eq!(queries(&requests.take()), 0);

    // Nothing matches: each page walks one window of 32 days, one Query per day.
    let (times, per_page) = follow_counted(&c, &requests, "task=nothing").await;
    eprintln!("task=nothing: Queries per page {per_page:?}");
    assert!(times.is_empty());
    let windows = 401_usize.div_ceil(MAX_AUDIT_DAYS as usize);
    assert!(
        per_page.len() == windows || per_page.len() == windows + 1,
        "{per_page:?}"
    );
    assert_eq!(per_page[0], MAX_AUDIT_DAYS as usize, "{per_page:?}");
    assert!(per_page.iter().all(|&n| n <= MAX_AUDIT_DAYS as usize));
    // Every day of the retention once, and no more.
    assert!(per_page.iter().sum::<usize>() <= 402, "{per_page:?}");

    // The matching audits, once each, newest first, with any page size.
    for query in ["task=web", "task=web&limit=1", "limit=5"] {
        let (times, per_page) = follow_counted(&c, &requests, query).await;
        eprintln!("{query}: Queries per page {per_page:?}");
        assert_eq!(times, want, "{query}");
        assert!(
            per_page.iter().all(|&n| n <= MAX_AUDIT_QUERY_REQUESTS),
            "{query}: {per_page:?}"
        );
    }

    // The lists: one Query a page.
    for uri in ["/api/v1/defenders", "/api/v1/defenders/credentials"] {
        requests.take();
        let r = call(&c.app, Method::GET, uri, Some(&c.admin), None).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        let n = queries(&requests.take());
        eprintln!("{uri}: {n} Query");
        assert_eq!(n, 1, "{uri}");
    }
}
