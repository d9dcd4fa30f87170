//! Defenders: first contact creates, later ones update; counters saturate instead of
//! overflowing; a credential's new defenders per day are limited; the list comes in pages.

use chrono::{DateTime, Duration, Utc};
use protect::api::DefenderIdentity;

use super::e;
use crate::store::{DefenderContact, Store, TouchOutcome, MAX_COUNTER};

fn identity(task: &str, instance: &str) -> DefenderIdentity {
    DefenderIdentity {
        task: task.into(),
        container: "app".into(),
        image: "nginx:1".into(),
        instance: Some(instance.into()),
        version: "0.1.0".into(),
    }
}

fn contact(
    identity: DefenderIdentity,
    credential: &str,
    at: DateTime<Utc>,
    (audits, dropped): (u64, u64),
) -> DefenderContact {
    DefenderContact {
        identity,
        credential: credential.into(),
        at,
        audits,
        dropped,
        new_per_day: 1000,
        expires_at: at + Duration::days(30),
    }
}

async fn touch(store: &dyn Store, c: DefenderContact) -> Result<TouchOutcome, String> {
    store.touch_defender(c).await.map_err(e)
}

/// Every defender, page by page (`limit` per page), checking the pages follow each other.
async fn walk(store: &dyn Store, limit: usize) -> Result<Vec<String>, String> {
    let mut keys: Vec<String> = Vec::new();
    let mut after = None;
    for _ in 0..1000 {
        let page = store
            .list_defenders(after.clone(), limit)
            .await
            .map_err(e)?;
        ensure!(
            page.len() <= limit,
            "page of {} over limit {limit}",
            page.len()
        );
        for (k, _) in &page {
            ensure!(
                keys.last().is_none_or(|last| last < k),
                "keys out of order or repeated: {k:?} after {:?}",
                keys.last()
            );
            keys.push(k.clone());
        }
        if page.len() < limit {
            return Ok(keys);
        }
        after = keys.last().cloned();
    }
    Err("the pages never ended".into())
}

/// First contact creates, later ones update version, last contact and counters.
pub async fn defenders(store: &dyn Store) -> Result<(), String> {
    let id = identity("web", "task-1");
    let t0 = Utc::now() - Duration::seconds(10);
    let t0 = t0 - Duration::nanoseconds(i64::from(t0.timestamp_subsec_nanos()));
    touch(store, contact(id.clone(), "cred-w", t0, (0, 0))).await?;
    let mut later = id.clone();
    later.version = String::new();
    let out = touch(
        store,
        contact(later, "cred-w", t0 + Duration::seconds(5), (7, 2)),
    )
    .await?;
    ensure!(out == TouchOutcome::Recorded, "update: {out:?}");
    let mut other = id.clone();
    other.instance = Some("task-2".into());
    other.version = "0.2.0".into();
    touch(store, contact(other, "cred-w", t0, (1, 0))).await?;
    let list = store.list_defenders(None, 100).await.map_err(e)?;
    ensure!(list.len() == 2, "two defenders expected: {list:?}");
    let (_, d) = list
        .iter()
        .find(|(_, d)| d.instance.as_deref() == Some("task-1"))
        .ok_or("task-1 missing")?;
    ensure!(
        d.version == "0.1.0",
        "an empty version replaced the known one: {d:?}"
    );
    ensure!(d.first_seen == t0, "first_seen {:?}", d.first_seen);
    ensure!(
        d.last_contact == t0 + Duration::seconds(5),
        "last_contact {:?}",
        d.last_contact
    );
    ensure!(
        d.audits_received == 7 && d.audits_dropped == 2,
        "counters: {d:?}"
    );
    Ok(())
}

/// The overflow an older console had: two contacts reporting nearly `u64::MAX` dropped records
/// (SQLite turned the sum into a REAL, DynamoDB stored a number no reader could parse, and the
/// defenders list failed from then on). The sums saturate at [`MAX_COUNTER`] and the list works.
pub async fn defender_counters_saturate(store: &dyn Store) -> Result<(), String> {
    let now = Utc::now();
    let id = identity("overflow", "task-o");
    let huge = u64::MAX - 1;
    for _ in 0..2 {
        let out = touch(store, contact(id.clone(), "cred-o", now, (huge, huge))).await?;
        ensure!(out == TouchOutcome::Recorded, "huge counters: {out:?}");
    }
    let near = identity("overflow", "task-near");
    touch(
        store,
        contact(near.clone(), "cred-o", now, (MAX_COUNTER - 5, 1)),
    )
    .await?;
    touch(store, contact(near, "cred-o", now, (10, 1))).await?;
    let list = store.list_defenders(None, 1000).await.map_err(e)?;
    let counters = |instance: &str| {
        list.iter()
            .find(|(_, d)| d.instance.as_deref() == Some(instance))
            .map(|(_, d)| (d.audits_received, d.audits_dropped))
    };
    ensure!(
        counters("task-o") == Some((MAX_COUNTER, MAX_COUNTER)),
        "saturated counters: {:?}",
        counters("task-o")
    );
    ensure!(
        counters("task-near") == Some((MAX_COUNTER, 2)),
        "audits saturate, dropped adds: {:?}",
        counters("task-near")
    );
    Ok(())
}

/// A credential adds at most `new_per_day` defenders a day; known ones still update and other
/// credentials are not affected. The list pages through every defender once, in key order.
pub async fn defender_limit_and_pages(store: &dyn Store) -> Result<(), String> {
    let now = Utc::now();
    let capped = |task: &str, instance: &str| {
        let mut c = contact(identity(task, instance), "cred-cap", now, (1, 0));
        c.new_per_day = 3;
        c
    };
    for i in 0..3 {
        let out = touch(store, capped("cap", &format!("i{i}"))).await?;
        ensure!(out == TouchOutcome::Recorded, "defender {i}: {out:?}");
    }
    let out = touch(store, capped("cap", "i3")).await?;
    ensure!(
        out == TouchOutcome::LimitReached,
        "fourth defender: {out:?}"
    );
    let out = touch(store, capped("cap", "i1")).await?;
    ensure!(out == TouchOutcome::Recorded, "a known defender: {out:?}");
    let mut other = capped("cap", "i3");
    other.credential = "cred-other".into();
    let out = touch(store, other).await?;
    ensure!(out == TouchOutcome::Recorded, "another credential: {out:?}");

    let all: Vec<String> = store
        .list_defenders(None, 1000)
        .await
        .map_err(e)?
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    ensure!(all.len() >= 6, "defenders listed: {}", all.len());
    for limit in [1, 2, 4] {
        let walked = walk(store, limit).await?;
        ensure!(walked == all, "pages of {limit}: {walked:?} vs {all:?}");
    }
    let last = all.last().cloned();
    let rest = store.list_defenders(last, 10).await.map_err(e)?;
    ensure!(rest.is_empty(), "after the last key: {rest:?}");
    Ok(())
}
