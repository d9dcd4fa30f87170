//! The bounds of one audit query: a window of at most [`MAX_AUDIT_DAYS`] days per request, a
//! scan budget, and cursors that resume exactly where the walk stopped, over a long retention
//! with audits spread over a few days and most days empty.

use chrono::{Duration, Utc};

use super::{audit, e, pattern, query};
use crate::store::{
    day_floor, sort_key_floor, AuditCategory, AuditMatch, AuditQuery, BatchOutcome, NewBatch,
    Store, DAY_MS, MAX_AUDIT_DAYS,
};

/// What following a query to its end gave: every audit's key in order and the pages it took.
struct Walk {
    keys: Vec<String>,
    pages: usize,
    /// Pages that came back short (fewer than `limit`) with a cursor.
    short_with_cursor: usize,
}

/// Follows `q` page by page as the API does (the last audit of a full page, else
/// `resume_after`), checking that each page stays inside its window of days.
async fn walk(store: &dyn Store, mut q: AuditQuery) -> Result<Walk, String> {
    let mut w = Walk {
        keys: Vec::new(),
        pages: 0,
        short_with_cursor: 0,
    };
    for _ in 0..500 {
        let window = q.window();
        let page = store.query_audits(q.clone()).await.map_err(e)?;
        w.pages += 1;
        if let Some(win) = window {
            let oldest_day = day_floor(win.top_ms) - (MAX_AUDIT_DAYS - 1) * DAY_MS;
            ensure!(
                page.audits.iter().all(|a| a.time_ms >= oldest_day),
                "page {} reaches past its {MAX_AUDIT_DAYS} days: {page:?}",
                w.pages
            );
        }
        w.keys.extend(page.audits.iter().map(|a| a.sk.clone()));
        let next = if page.audits.len() >= q.limit {
            page.audits.last().map(|a| a.sk.clone())
        } else {
            if page.resume_after.is_some() {
                w.short_with_cursor += 1;
            }
            page.resume_after
        };
        match next {
            Some(k) => {
                ensure!(
                    q.before_sk.as_ref().is_none_or(|b| k < *b),
                    "cursor {k} does not move below {:?}",
                    q.before_sk
                );
                q.before_sk = Some(k);
            }
            None => return Ok(w),
        }
    }
    Err(format!("paging does not end after {} pages", w.pages))
}

/// A filter matching nothing over 401 days comes back in windows of [`MAX_AUDIT_DAYS`] days,
/// each a short page with a cursor at the start of the oldest day walked; following the cursors
/// with any filter, limit and scan budget gives exactly the matching audits, newest first, once.
pub async fn audit_windows(store: &dyn Store) -> Result<(), String> {
    let rt = AuditCategory::Runtime;
    // Far before the other checks' audits: noon, 3000 days ago.
    let now = Utc::now();
    let t0 = day_floor((now - Duration::days(3000)).timestamp_millis()) + DAY_MS / 2;
    // Audits on a few of the 401 days: two on some, the rest empty.
    let days = [0, 1, 5, 31, 32, 33, 64, 100, 250, 399, 400];
    let mut records = Vec::new();
    for (n, d) in days.iter().enumerate() {
        let t = t0 - d * DAY_MS;
        records.push(audit(rt, t, "windows", 2 * n, "long-hit", "dns"));
        if n % 2 == 0 {
            records.push(audit(
                rt,
                t - 1000,
                "windows",
                2 * n + 1,
                "long-miss",
                "dns",
            ));
        }
    }
    let out = store
        .insert_audits(NewBatch {
            credential: "cred-a".into(),
            batch_id: "windows".into(),
            body_hash: "h-windows".into(),
            received_at: now,
            expires_at: now + Duration::days(30),
            audits: records.clone(),
        })
        .await
        .map_err(e)?;
    ensure!(
        out == BatchOutcome::Stored(records.len()),
        "insert: {out:?}"
    );
    let mut newest_first = records.clone();
    newest_first.sort_by(|a, b| b.sk.cmp(&a.sk));
    let keys_of = |task: Option<&str>| -> Vec<String> {
        newest_first
            .iter()
            .filter(|a| task.is_none_or(|t| a.task == t))
            .map(|a| a.sk.clone())
            .collect()
    };
    let base = query(rt, t0 - 400 * DAY_MS - 5000, t0 + 3_600_000);
    // The query spans 401 days: 13 windows of 32 days.
    let windows = 401_usize.div_ceil(MAX_AUDIT_DAYS as usize);

    // Nothing matches: the first request walks one window and answers an empty page whose
    // cursor is the start of the oldest day it walked.
    let mut nothing = base.clone();
    nothing.filter.task = Some(pattern("nothing*"));
    let page = store.query_audits(nothing.clone()).await.map_err(e)?;
    let floor = sort_key_floor(day_floor(t0) - (MAX_AUDIT_DAYS - 1) * DAY_MS);
    ensure!(
        page.audits.is_empty() && page.resume_after.as_ref() == Some(&floor),
        "no match, first page: {page:?}, want cursor {floor}"
    );
    let w = walk(store, nothing).await?;
    ensure!(
        w.keys.is_empty() && w.pages == windows && w.short_with_cursor == windows - 1,
        "no match: {} keys in {} pages ({} short with a cursor), want 0 in {windows}",
        w.keys.len(),
        w.pages,
        w.short_with_cursor
    );

    for (filter, want) in [
        (None, keys_of(None)),
        (Some("long-hit"), keys_of(Some("long-hit"))),
        (Some("long-miss"), keys_of(Some("long-miss"))),
    ] {
        for (limit, scan_limit) in [(100, 10_000), (1, 10_000), (2, 1)] {
            let mut q = base.clone();
            q.filter = AuditMatch {
                task: filter.map(pattern),
                ..AuditMatch::default()
            };
            q.limit = limit;
            q.scan_limit = scan_limit;
            let w = walk(store, q).await?;
            ensure!(
                w.keys == want,
                "task={filter:?} limit {limit} scan_limit {scan_limit}: got {:?}, want {want:?}",
                w.keys
            );
            ensure!(
                w.pages >= windows,
                "task={filter:?} limit {limit}: {} pages over {windows} windows",
                w.pages
            );
        }
    }
    Ok(())
}
