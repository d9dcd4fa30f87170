//! The audit filters: patterns on task, container, image and rule, exact kind and effect, and
//! the scan budget, checked page by page.

use chrono::{Duration, Utc};
use protect::audit::{AuditKind, AuditRecord};
use protect::policy::Effect;

use super::{e, keys, pattern, query};
use crate::store::{
    audit_sort_key, ms_to_time, AuditCategory, AuditMatch, AuditQuery, BatchOutcome, NewBatch,
    Store, StoredAudit,
};
use protect::pattern::Pattern;

/// A record as the console stores it (the record's JSON as body).
fn record(
    time_ms: i64,
    i: usize,
    (task, container, image): (&str, &str, &str),
    kind: AuditKind,
    effect: Effect,
    rule: &str,
) -> Result<StoredAudit, String> {
    let mut r = AuditRecord::new(kind, effect, rule, "m");
    r.time = ms_to_time(time_ms).map_err(e)?;
    r.task_family = task.into();
    r.container = container.into();
    r.image = image.into();
    Ok(StoredAudit {
        category: AuditCategory::Runtime,
        sk: audit_sort_key(time_ms, "cred-f", "filters", i),
        time_ms,
        task: task.into(),
        container: container.into(),
        kind: kind.as_str().into(),
        body: serde_json::to_string(&r).map_err(|e| e.to_string())?,
    })
}

/// Follows a query page by page as the API does (the last audit of a full page, else
/// `resume_after`) and returns the indexes of every audit seen.
async fn follow(
    store: &dyn Store,
    mut q: AuditQuery,
    sks: &[String],
) -> Result<Vec<usize>, String> {
    let mut seen = Vec::new();
    for _ in 0..20 {
        let page = store.query_audits(q.clone()).await.map_err(e)?;
        seen.extend(
            page.audits
                .iter()
                .map(|a| sks.iter().position(|k| *k == a.sk).unwrap_or(99)),
        );
        let next = if page.audits.len() >= q.limit {
            page.audits.last().map(|a| a.sk.clone())
        } else {
            page.resume_after
        };
        match next {
            Some(k) => q.before_sk = Some(k),
            None => return Ok(seen),
        }
    }
    Err(format!("paging does not end: {seen:?}"))
}

/// A filter written as `name=value` words: `task=web* effect=alert`.
fn spec(words: &str) -> Result<AuditMatch, String> {
    let mut m = AuditMatch::default();
    for word in words.split_whitespace() {
        let (name, v) = word.split_once('=').ok_or(format!("{word}: no ="))?;
        let pat = || Pattern::new(v).map(Some).map_err(|e| e.to_string());
        match name {
            "task" => m.task = pat()?,
            "container" => m.container = pat()?,
            "image" => m.image = pat()?,
            "rule" => m.rule = pat()?,
            "kind" => m.kind = Some(v.parse()?),
            "effect" => {
                m.effect = Some(
                    serde_json::from_value(serde_json::Value::from(v))
                        .map_err(|e| e.to_string())?,
                )
            }
            _ => return Err(format!("{word}: unknown filter")),
        }
    }
    Ok(m)
}

/// Filters: patterns on task, container, image and rule (case-insensitive, `*`), kind and
/// effect; the scan budget ends a page early with a cursor that loses nothing.
pub async fn audit_filters(store: &dyn Store) -> Result<(), String> {
    let now = Utc::now();
    // An hour back, apart from the records of [`audits`].
    let t0 = now.timestamp_millis() - 3_600_000;
    let seed = (
        "twistlock-fargate-task",
        "twistlock-fargate-task",
        "matthewabq/twistlock-fargate-auto:latest",
    );
    // Index i is at t0 - i: newest first is index order.
    let rows = [
        (seed, "process", "prevent", "sample"),
        (
            ("Twistlock-Fargate-Web", "app", "nginx:1.27"),
            "dns",
            "alert",
            "sample-dns",
        ),
        (
            ("billing", "app", "nginx:1.27"),
            "network",
            "block",
            "Sample",
        ),
        (
            ("twistlock-fargate-task", "sidecar", "busybox"),
            "listen",
            "alert",
            "other",
        ),
        (
            ("billing", "worker", "registry.example/billing:2"),
            "process",
            "prevent",
            "other",
        ),
        (
            ("x-twistlock-fargate-task", "app", "nginx"),
            "process",
            "alert",
            "sample",
        ),
    ];
    let mut records = Vec::new();
    for (i, (scope, kind, effect, rule)) in rows.into_iter().enumerate() {
        let m = spec(&format!("kind={kind} effect={effect}"))?;
        let (Some(kind), Some(effect)) = (m.kind, m.effect) else {
            return Err(format!("row {i}"));
        };
        records.push(record(t0 - i as i64, i, scope, kind, effect, rule)?);
    }
    let sks: Vec<String> = records.iter().map(|r| r.sk.clone()).collect();
    let out = store
        .insert_audits(NewBatch {
            credential: "cred-f".into(),
            batch_id: "filters".into(),
            body_hash: "h-filters".into(),
            received_at: now,
            expires_at: now + Duration::days(30),
            audits: records,
        })
        .await
        .map_err(e)?;
    ensure!(out == BatchOutcome::Stored(6), "insert: {out:?}");
    let base = query(AuditCategory::Runtime, t0 - 5, t0);

    let cases: [(&str, &[usize]); 16] = [
        ("", &[0, 1, 2, 3, 4, 5]),
        ("task=twistlock-fargate-*", &[0, 1, 3]),
        ("task=*FARGATE*", &[0, 1, 3, 5]),
        ("task=twistlock-fargate-task", &[0, 3]),
        ("container=APP", &[1, 2, 5]),
        ("image=nginx:*", &[1, 2]),
        ("image=*/*", &[0, 4]),
        ("kind=process", &[0, 4, 5]),
        ("effect=prevent", &[0, 4]),
        ("effect=block", &[2]),
        ("effect=disable", &[]),
        ("rule=sample", &[0, 2, 5]),
        ("rule=sample*", &[0, 1, 2, 5]),
        ("task=twistlock-fargate-* effect=alert", &[1, 3]),
        ("kind=process effect=prevent rule=other", &[4]),
        ("task=nothing*", &[]),
    ];
    for (name, want) in cases {
        let mut q = base.clone();
        q.filter = spec(name)?;
        let got = follow(store, q.clone(), &sks).await?;
        ensure!(got == want, "{name}: got {got:?}, want {want:?}");
        // One at a time, and with a scan budget of 1, 2 and 4: the same records, none lost.
        for (limit, scan_limit) in [(1, 10_000), (2, 1), (1, 2), (3, 4)] {
            q.limit = limit;
            q.scan_limit = scan_limit;
            let got = follow(store, q.clone(), &sks).await?;
            ensure!(
                got == want,
                "{name} limit {limit} scan_limit {scan_limit}: got {got:?}, want {want:?}"
            );
        }
    }

    // The budget ends a page early at the last record examined.
    let mut q = base.clone();
    q.filter.task = Some(pattern("billing"));
    q.scan_limit = 2;
    let page = store.query_audits(q.clone()).await.map_err(e)?;
    ensure!(
        page.audits.is_empty() && page.resume_after.as_ref() == Some(&sks[1]),
        "task=billing scan_limit 2: {page:?}"
    );
    q.before_sk = page.resume_after;
    let page = store.query_audits(q.clone()).await.map_err(e)?;
    ensure!(
        keys(&page) == vec![sks[2].clone()] && page.resume_after.as_ref() == Some(&sks[3]),
        "second page: {page:?}"
    );
    // A full page needs no resume key, budget or not.
    let mut q = base.clone();
    q.limit = 2;
    q.scan_limit = 2;
    let page = store.query_audits(q).await.map_err(e)?;
    ensure!(
        keys(&page) == sks[..2] && page.resume_after.is_none(),
        "full page at the budget: {page:?}"
    );
    Ok(())
}
