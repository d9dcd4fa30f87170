//! The behaviour every [`Store`] must have, as one suite run against each implementation
//! (SQLite in this crate's tests, DynamoDB through moto server in the integration tests).
//! Each check returns `Err` with what went wrong; run them on an empty store.

use chrono::{Duration, Utc};
use protect::api::{CredentialScope, Role};

use protect::audit::AuditKind;
use protect::pattern::Pattern;

use super::{
    audit_sort_key, AuditCategory, AuditMatch, AuditQuery, AuditRows, BatchOutcome,
    DefenderCredential, NewBatch, PolicyKind, Store, StoredAudit, StoredPolicy, TokenRecord,
    TokenSubject, UserRecord,
};

macro_rules! ensure {
    ($cond:expr, $($msg:tt)+) => {
        if !$cond {
            return Err(format!($($msg)+));
        }
    };
}

fn e(err: super::StoreError) -> String {
    err.to_string()
}

mod credentials;
mod defenders;
mod filters;
mod windows;
pub use credentials::credentials;
pub use defenders::{defender_counters_saturate, defender_limit_and_pages, defenders};
pub use filters::audit_filters;
pub use windows::audit_windows;

/// Runs every check.
pub async fn run(store: &dyn Store) -> Result<(), String> {
    users(store).await?;
    tokens(store).await?;
    token_expiry(store).await?;
    policies(store).await?;
    audits(store).await?;
    defenders(store).await?;
    defender_counters_saturate(store).await?;
    defender_limit_and_pages(store).await?;
    credentials(store).await?;
    Ok(())
}

/// Users: create once, read back, names are unique.
pub async fn users(store: &dyn Store) -> Result<(), String> {
    ensure!(
        !store.has_users().await.map_err(e)?,
        "a new store has users"
    );
    let u = UserRecord {
        username: "alice".into(),
        password_hash: "$argon2id$v=19$m=8,t=1,p=1$c2FsdHNhbHQ$aGFzaA".into(),
        role: Role::DefenderManager,
    };
    ensure!(
        store.create_user(u.clone()).await.map_err(e)?,
        "first create_user refused"
    );
    let mut dup = u.clone();
    dup.role = Role::Admin;
    ensure!(
        !store.create_user(dup).await.map_err(e)?,
        "duplicate user accepted"
    );
    ensure!(
        store.has_users().await.map_err(e)?,
        "has_users false after create"
    );
    let got = store.get_user("alice").await.map_err(e)?;
    ensure!(got.as_ref() == Some(&u), "get_user returned {got:?}");
    ensure!(
        store.get_user("bob").await.map_err(e)?.is_none(),
        "unknown user found"
    );
    Ok(())
}

/// Tokens: both kinds round-trip with their expiry.
pub async fn tokens(store: &dyn Store) -> Result<(), String> {
    let now = Utc::now();
    let now = now - Duration::nanoseconds(i64::from(now.timestamp_subsec_nanos()));
    let user = TokenRecord {
        hash: "a".repeat(64),
        subject: TokenSubject::User {
            username: "alice".into(),
            role: Role::Auditor,
        },
        created_at: now,
        expires_at: Some(now + Duration::hours(1)),
    };
    let defender = TokenRecord {
        hash: "b".repeat(64),
        subject: TokenSubject::Defender(DefenderCredential {
            id: "d1".into(),
            name: Some("web".into()),
            scope: CredentialScope::all(),
            created_by: None,
            revoked_at: None,
        }),
        created_at: now,
        expires_at: None,
    };
    store.put_token(user.clone()).await.map_err(e)?;
    store.put_token(defender.clone()).await.map_err(e)?;
    let got = store.get_token(&user.hash).await.map_err(e)?;
    ensure!(
        got.as_ref() == Some(&user),
        "user token read back as {got:?}"
    );
    let got = store.get_token(&defender.hash).await.map_err(e)?;
    ensure!(
        got.as_ref() == Some(&defender),
        "defender token read back as {got:?}"
    );
    ensure!(
        store.get_token(&"c".repeat(64)).await.map_err(e)?.is_none(),
        "unknown token found"
    );
    Ok(())
}

/// Logout: a token's expiry can be brought forward; an unknown hash is no error and creates
/// nothing.
pub async fn token_expiry(store: &dyn Store) -> Result<(), String> {
    let now = Utc::now();
    let now = now - Duration::nanoseconds(i64::from(now.timestamp_subsec_nanos()));
    let session = TokenRecord {
        hash: "e".repeat(64),
        subject: TokenSubject::User {
            username: "alice".into(),
            role: Role::Admin,
        },
        created_at: now,
        expires_at: Some(now + Duration::hours(1)),
    };
    store.put_token(session.clone()).await.map_err(e)?;
    store.expire_token(&session.hash, now).await.map_err(e)?;
    let got = store.get_token(&session.hash).await.map_err(e)?;
    let want = TokenRecord {
        expires_at: Some(now),
        ..session
    };
    ensure!(
        got.as_ref() == Some(&want),
        "expired token read back as {got:?}"
    );
    let unknown = "f".repeat(64);
    store.expire_token(&unknown, now).await.map_err(e)?;
    ensure!(
        store.get_token(&unknown).await.map_err(e)?.is_none(),
        "expiring an unknown token created it"
    );
    Ok(())
}

/// Policies: compare-and-set on the revision.
pub async fn policies(store: &dyn Store) -> Result<(), String> {
    ensure!(
        store
            .get_policy(PolicyKind::Runtime)
            .await
            .map_err(e)?
            .is_none(),
        "a new store has a policy"
    );
    let now = Utc::now();
    let now = now - Duration::nanoseconds(i64::from(now.timestamp_subsec_nanos()));
    let p = |rev: u64| StoredPolicy {
        revision: rev,
        body: format!("{{\"revision\":{rev},\"rules\":[]}}"),
        updated_at: now,
    };
    ensure!(
        store
            .put_policy(PolicyKind::Runtime, 0, p(1))
            .await
            .map_err(e)?,
        "first put refused"
    );
    ensure!(
        !store
            .put_policy(PolicyKind::Runtime, 0, p(1))
            .await
            .map_err(e)?,
        "put with a stale expected revision accepted"
    );
    ensure!(
        store
            .put_policy(PolicyKind::Runtime, 1, p(2))
            .await
            .map_err(e)?,
        "put on the current revision refused"
    );
    let got = store.get_policy(PolicyKind::Runtime).await.map_err(e)?;
    ensure!(got == Some(p(2)), "runtime policy read back as {got:?}");
    ensure!(
        store
            .get_policy(PolicyKind::Firewall)
            .await
            .map_err(e)?
            .is_none(),
        "the firewall policy shares the runtime's slot"
    );
    Ok(())
}

fn audit(
    cat: AuditCategory,
    time_ms: i64,
    batch: &str,
    i: usize,
    task: &str,
    kind: &str,
) -> StoredAudit {
    StoredAudit {
        category: cat,
        sk: audit_sort_key(time_ms, "cred-a", batch, i),
        time_ms,
        task: task.into(),
        container: format!("c-{task}"),
        kind: kind.into(),
        body: format!(
            "{{\"i\":{i},\"batch\":\"{batch}\",\"effect\":\"alert\",\"rule\":\"r\",\"image\":\"img\"}}"
        ),
    }
}

fn query(category: AuditCategory, since_ms: i64, until_ms: i64) -> AuditQuery {
    AuditQuery {
        category,
        filter: AuditMatch::default(),
        since_ms,
        until_ms,
        before_sk: None,
        limit: 100,
        scan_limit: 10_000,
    }
}

/// A pattern from a literal known to be valid.
fn pattern(p: &str) -> Pattern {
    Pattern::new(p).unwrap_or_else(|_| Pattern::any())
}

fn keys(rows: &AuditRows) -> Vec<String> {
    rows.audits.iter().map(|a| a.sk.clone()).collect()
}

/// Audits: idempotent batches, newest-first pages, filters, cursors across days.
pub async fn audits(store: &dyn Store) -> Result<(), String> {
    let now = Utc::now();
    let now_ms = now.timestamp_millis();
    let day_ms = 86_400_000;
    let rt = AuditCategory::Runtime;
    // Five runtime records: two yesterday, three now; one firewall record.
    let records = vec![
        audit(rt, now_ms - day_ms - 2, "b1", 0, "web", "process"),
        audit(rt, now_ms - day_ms - 1, "b1", 1, "api", "dns"),
        audit(rt, now_ms - 3, "b1", 2, "web", "network"),
        audit(rt, now_ms - 2, "b1", 3, "web", "process"),
        audit(rt, now_ms - 1, "b1", 4, "api", "process"),
        audit(AuditCategory::Firewall, now_ms - 1, "b1", 5, "web", "cnaf"),
    ];
    // Another credential takes batch id b1 first, with nothing in it: batch ids are per
    // credential, so cred-a's b1 is still stored.
    let squatter = NewBatch {
        credential: "cred-b".into(),
        batch_id: "b1".into(),
        body_hash: "h-empty".into(),
        received_at: now,
        expires_at: now + Duration::days(30),
        audits: Vec::new(),
    };
    let out = store.insert_audits(squatter).await.map_err(e)?;
    ensure!(out == BatchOutcome::Stored(0), "cred-b's b1: {out:?}");
    let batch = NewBatch {
        credential: "cred-a".into(),
        batch_id: "b1".into(),
        body_hash: "h1".into(),
        received_at: now,
        expires_at: now + Duration::days(30),
        audits: records.clone(),
    };
    let out = store.insert_audits(batch.clone()).await.map_err(e)?;
    ensure!(
        out == BatchOutcome::Stored(6),
        "first insert after another credential's b1: {out:?}"
    );
    let out = store.insert_audits(batch.clone()).await.map_err(e)?;
    ensure!(out == BatchOutcome::Duplicate, "repeated batch: {out:?}");
    let mut changed = batch;
    changed.body_hash = "h2".into();
    changed.audits.truncate(1);
    let out = store.insert_audits(changed).await.map_err(e)?;
    ensure!(
        out == BatchOutcome::Conflict,
        "same batch id, other content: {out:?}"
    );

    let base = query(rt, now_ms - 30 * day_ms, now_ms + 600_000);
    let all = store.query_audits(base.clone()).await.map_err(e)?;
    ensure!(
        all.resume_after.is_none(),
        "resume_after without a budget: {all:?}"
    );
    let idx: Vec<usize> = keys(&all)
        .iter()
        .map(|sk| records.iter().position(|r| &r.sk == sk).unwrap_or(99))
        .collect();
    ensure!(
        idx == vec![4, 3, 2, 1, 0],
        "all runtime audits, newest first: {idx:?}"
    );
    ensure!(
        all.audits[0] == records[4],
        "stored audit read back as {:?}",
        all.audits[0]
    );

    // Pages of two, following the cursor across the day boundary.
    let mut seen = Vec::new();
    let mut q = base.clone();
    q.limit = 2;
    for _ in 0..4 {
        let page = store.query_audits(q.clone()).await.map_err(e)?;
        if page.audits.is_empty() {
            break;
        }
        q.before_sk = page.audits.last().map(|a| a.sk.clone());
        seen.extend(keys(&page));
    }
    let want: Vec<String> = [4, 3, 2, 1, 0]
        .iter()
        .map(|&i| records[i].sk.clone())
        .collect();
    ensure!(seen == want, "paged: {seen:?}");

    let mut q = base.clone();
    q.filter.task = Some(pattern("web"));
    q.filter.kind = Some(AuditKind::Process);
    let got = keys(&store.query_audits(q).await.map_err(e)?);
    ensure!(
        got == vec![records[3].sk.clone(), records[0].sk.clone()],
        "task=web kind=process: {got:?}"
    );
    let mut q = base.clone();
    q.filter.container = Some(pattern("c-api"));
    q.limit = 1;
    let got = store.query_audits(q).await.map_err(e)?;
    ensure!(
        keys(&got) == vec![records[4].sk.clone()],
        "container filter with limit 1: {got:?}"
    );
    let mut q = base.clone();
    q.since_ms = now_ms - 3;
    let got = store.query_audits(q).await.map_err(e)?;
    ensure!(
        got.audits.len() == 3,
        "since now-3ms: {} records",
        got.audits.len()
    );
    let mut q = base.clone();
    q.until_ms = now_ms - 2;
    let got = keys(&store.query_audits(q).await.map_err(e)?);
    ensure!(
        got == [3, 2, 1, 0].map(|i| records[i].sk.clone()),
        "until now-2ms (inclusive): {got:?}"
    );
    let mut q = base.clone();
    q.category = AuditCategory::Firewall;
    let got = store.query_audits(q).await.map_err(e)?;
    ensure!(
        got.audits.len() == 1 && got.audits[0] == records[5],
        "firewall audits: {got:?}"
    );
    filters::audit_filters(store).await?;
    windows::audit_windows(store).await
}
