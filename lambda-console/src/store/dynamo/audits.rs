//! The DynamoDB store's audit query: a bounded walk of the day partitions.
//!
//! One request walks at most the [`AuditWindow`](crate::store::AuditWindow) of [`MAX_AUDIT_DAYS`] day partitions, newest
//! first, and stops at whichever bound comes first: the page full, `scan_limit` audits or
//! [`MAX_AUDIT_BYTES`] examined, the window walked, or [`MAX_AUDIT_QUERY_REQUESTS`] Queries
//! sent. Every Query carries `Limit` (what the page and the scan budget can still use). A
//! bound that stops the walk leaves the scan position in [`AuditRows::resume_after`]: the last
//! key examined, or the start of the oldest day walked, so the next request skips the empty days
//! already visited. A page resuming below a stored key starts its read there
//! (`ExclusiveStartKey`), so that audit is not read again.

use chrono::{TimeZone, Utc};

use super::{err, get_n, get_s, s, DynamoStore, Item};
use crate::store::{
    day_floor, sort_key_floor, AuditQuery, AuditRows, PageCollector, StoreError, StoredAudit,
    DAY_MS, KEY_TIME_DIGITS, MAX_AUDIT_BYTES, MAX_AUDIT_DAYS,
};

/// Most data one Query answer carries (DynamoDB's limit): a day holding more is read in several
/// Queries.
pub const QUERY_RESPONSE_BYTES: usize = 1024 * 1024;

/// Most Queries one audit query sends: one per day partition of the window, and the
/// continuations of partitions holding more than [`QUERY_RESPONSE_BYTES`] (each answer cut at
/// that size brings the walk that much closer to [`MAX_AUDIT_BYTES`]), plus one.
pub const MAX_AUDIT_QUERY_REQUESTS: usize =
    MAX_AUDIT_DAYS as usize + MAX_AUDIT_BYTES / QUERY_RESPONSE_BYTES + 1;

/// The partition of `category`'s audits of the UTC day of `ms`.
pub(super) fn day_bucket(category: &str, ms: i64) -> String {
    let day = Utc
        .timestamp_millis_opt(ms)
        .single()
        .map(|t| t.format("%Y-%m-%d").to_string())
        .unwrap_or_else(|| "1970-01-01".to_string());
    format!("AUDIT#{category}#{day}")
}

fn audit_from_item(item: &Item, q: &AuditQuery) -> Result<StoredAudit, StoreError> {
    Ok(StoredAudit {
        category: q.category,
        sk: get_s(item, "sk")?,
        time_ms: get_n(item, "time_ms")?,
        task: get_s(item, "task")?,
        container: get_s(item, "container")?,
        kind: get_s(item, "kind")?,
        body: get_s(item, "body")?,
    })
}

impl DynamoStore {
    /// [`crate::store::Store::query_audits`]: see the module docs.
    pub(super) async fn walk_audits(&self, q: &AuditQuery) -> Result<AuditRows, StoreError> {
        // No FilterExpression: DynamoDB applies it after `Limit` and hides what it drops, so
        // the filters run here, on every item read, through the same predicate as SQLite's.
        let mut page = PageCollector::new(q);
        let Some(window) = q.window() else {
            return Ok(page.finish());
        };
        let lo = sort_key_floor(window.floor_ms);
        let hi = q.key_hi();
        let top_day = day_floor(window.top_ms);
        let mut requests = 0;
        let mut day = top_day;
        while day + DAY_MS > window.floor_ms {
            let pk = day_bucket(q.category.as_str(), day);
            // A full key (the previous page's last audit) may be stored in its day: the read
            // starts right below it. A bare time is never a stored key.
            let mut start: Option<Item> = (day == top_day && hi.len() > KEY_TIME_DIGITS)
                .then(|| Item::from([("pk".into(), s(&pk)), ("sk".into(), s(&hi))]));
            loop {
                if page.done() {
                    return Ok(page.finish());
                }
                if requests >= MAX_AUDIT_QUERY_REQUESTS {
                    page.stop();
                    return Ok(page.finish());
                }
                requests += 1;
                let limit = i32::try_from(page.read_ahead().max(1)).unwrap_or(i32::MAX);
                let mut req = self
                    .client
                    .query()
                    .table_name(&self.table)
                    .expression_attribute_values(":pk", s(&pk))
                    .expression_attribute_values(":lo", s(&lo))
                    .scan_index_forward(false)
                    .limit(limit);
                req = if start.is_some() {
                    req.key_condition_expression("pk = :pk AND sk >= :lo")
                } else {
                    req.key_condition_expression("pk = :pk AND sk BETWEEN :lo AND :hi")
                        .expression_attribute_values(":hi", s(&hi))
                };
                let out = req
                    .set_exclusive_start_key(start.take())
                    .send()
                    .await
                    .map_err(err("Query"))?;
                for item in out.items.unwrap_or_default() {
                    let a = audit_from_item(&item, q)?;
                    if a.sk < hi {
                        page.offer(a)?;
                    }
                }
                match out.last_evaluated_key {
                    Some(k) if !k.is_empty() => start = Some(k),
                    _ => break,
                }
            }
            page.passed(sort_key_floor(day.max(window.floor_ms)));
            day -= DAY_MS;
        }
        page.end_of_window(&window);
        Ok(page.finish())
    }
}
