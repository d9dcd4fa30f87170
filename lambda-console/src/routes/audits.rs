//! Audits: the defenders' batch ingest and the operators' paged queries.

use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::http::HeaderValue;
use axum::response::{IntoResponse, Response};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{DateTime, Utc};
use protect::api::{
    valid_batch_id, AuditBatch, AuditBatchAck, AuditPage, MAX_BATCH_BYTES, MAX_BATCH_DROPPED,
    MAX_BATCH_RECORDS,
};
use protect::audit::AuditKind;
use protect::pattern::Pattern;
use protect::policy::Effect;
use serde::Deserialize;

use crate::auth::{sha256_hex, Auditor, Caller, DefenderCaller};
use crate::body::JsonBody;
use crate::error::ApiError;
use crate::query::{self, FirewallKind, PageSize, Params, RuntimeKind};
use crate::routes::policies;
use crate::state::AppState;
use crate::store::{
    audit_sort_key, AuditCategory, AuditMatch, AuditQuery, AuditRows, BatchOutcome, NewBatch,
    StoredAudit,
};

/// Largest accepted single record (its JSON).
pub const MAX_RECORD_BYTES: usize = 64 * 1024;
/// Default and largest page size.
pub const DEFAULT_LIMIT: usize = 100;
pub const MAX_LIMIT: usize = 1000;

fn category_of(kind: AuditKind) -> AuditCategory {
    if query::is_firewall(kind) {
        AuditCategory::Firewall
    } else {
        AuditCategory::Runtime
    }
}

/// Stores a batch of audit records. The batch's `defender` must be inside the credential's
/// scope and every record must describe that defender's workload (its task family, container,
/// image and task ARN are empty or the identity's); otherwise nothing is stored (403). Batch
/// ids are per credential: the same `batch_id` with the same content is acknowledged and
/// ignored (`duplicate: true`), with other content refused (409).
#[utoipa::path(post, path = "/api/v1/defender/audits", tag = "defender",
    security(("defender" = [])), request_body = AuditBatch,
    responses((status = 200, description = "Stored (or already stored with the same content)", body = AuditBatchAck),
              (status = 400, description = "A field is wrong (e.g. `dropped` over 10^12); the error names its path", body = protect::api::ErrorBody),
              (status = 403, description = "The identity or a record is outside the credential's scope", body = protect::api::ErrorBody),
              (status = 409, description = "This credential sent this batch_id before with other content", body = protect::api::ErrorBody),
              (status = 413, description = "Body over 1 MiB", body = protect::api::ErrorBody),
              (status = 429, description = "A new defender beyond its credential's daily limit", body = protect::api::ErrorBody)))]
pub async fn post_audits(
    d: DefenderCaller,
    State(state): State<AppState>,
    JsonBody(batch): JsonBody<AuditBatch, MAX_BATCH_BYTES>,
) -> Result<Response, ApiError> {
    if !valid_batch_id(&batch.batch_id) {
        return Err(ApiError::field(
            "batch_id",
            "must be 1-128 characters of A-Z a-z 0-9 . _ : - (e.g. a UUID)",
        ));
    }
    if batch.records.len() > MAX_BATCH_RECORDS {
        return Err(ApiError::field(
            "records",
            format!(
                "{} records; send at most {MAX_BATCH_RECORDS} per batch",
                batch.records.len()
            ),
        ));
    }
    let identity = policies::identity("defender.", &batch.defender)?;
    policies::check_scope(&d, &identity)?;
    if batch.dropped > MAX_BATCH_DROPPED {
        return Err(ApiError::field(
            "dropped",
            format!(
                "{} is not a plausible count of dropped records; report at most \
                 {MAX_BATCH_DROPPED} per batch",
                batch.dropped
            ),
        ));
    }
    let now = Utc::now();
    let settings = state.settings();
    let oldest = now - settings.audit_retention;
    let newest = now + settings.max_clock_skew;
    let mut audits = Vec::with_capacity(batch.records.len());
    for (i, r) in batch.records.iter().enumerate() {
        d.scope
            .check_record(&identity, i, r)
            .map_err(|e| policies::scope_refused(&d.credential_id, &e))?;
        if r.time < oldest || r.time > newest {
            return Err(ApiError::field(
                format!("records[{i}].time"),
                format!(
                    "{} is outside the accepted window {} .. {} (retention and clock skew); \
                     check the defender's clock",
                    r.time.to_rfc3339(),
                    oldest.to_rfc3339(),
                    newest.to_rfc3339()
                ),
            ));
        }
        let body = serde_json::to_string(r)
            .map_err(|e| ApiError::Internal(format!("serialize audit: {e}")))?;
        if body.len() > MAX_RECORD_BYTES {
            return Err(ApiError::field(
                format!("records[{i}]"),
                format!(
                    "{} bytes; a record may have at most {MAX_RECORD_BYTES}",
                    body.len()
                ),
            ));
        }
        let time_ms = r.time.timestamp_millis();
        audits.push(StoredAudit {
            category: category_of(r.kind),
            sk: audit_sort_key(time_ms, &d.credential_id, &batch.batch_id, i),
            time_ms,
            task: r.task_family.clone(),
            container: r.container.clone(),
            kind: r.kind.as_str().to_string(),
            body,
        });
    }
    let count = audits.len();
    // The content a retry must repeat: the batch as parsed, serialized again.
    let canonical = serde_json::to_vec(&batch)
        .map_err(|e| ApiError::Internal(format!("serialize batch: {e}")))?;
    let outcome = state
        .store()
        .insert_audits(NewBatch {
            credential: d.credential_id.clone(),
            batch_id: batch.batch_id.clone(),
            body_hash: sha256_hex(&canonical),
            received_at: now,
            expires_at: now + settings.audit_retention,
            audits,
        })
        .await?;
    let (accepted, duplicate) = match outcome {
        BatchOutcome::Stored(n) => (n, false),
        BatchOutcome::Duplicate => (0, true),
        BatchOutcome::Conflict => {
            return Err(ApiError::Conflict(format!(
                "batch_id {:?} was sent before by this credential with other content; a retry \
                 must repeat the batch exactly, a new batch needs a new batch_id",
                batch.batch_id
            )))
        }
    };
    if !duplicate {
        super::defenders::note_contact(
            &state,
            &d.credential_id,
            &identity,
            count as u64,
            batch.dropped,
            true,
        )
        .await?;
    }
    Ok(axum::Json(AuditBatchAck {
        batch_id: batch.batch_id,
        accepted,
        duplicate,
    })
    .into_response())
}

/// Filters of the audit queries. `task`, `container`, `image` and `rule` are patterns as in
/// policy scopes: `*` matches any run of characters, the rest matches ignoring case. The `kind`
/// filter is route's own ([`RuntimeKindFilter`], [`FirewallKindFilter`]).
#[derive(Deserialize, Debug, Default, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditFilter {
    /// Task definition family pattern, e.g. `twistlock-fargate-*`.
    #[param(
        min_length = 1,
        max_length = 1024,
        pattern = r"^[^\u0000-\u001f\u007f-\u009f]*$"
    )]
    pub task: Option<String>,
    /// Container name pattern.
    #[param(
        min_length = 1,
        max_length = 1024,
        pattern = r"^[^\u0000-\u001f\u007f-\u009f]*$"
    )]
    pub container: Option<String>,
    /// Image reference pattern, e.g. `*/nginx:*`.
    #[param(
        min_length = 1,
        max_length = 1024,
        pattern = r"^[^\u0000-\u001f\u007f-\u009f]*$"
    )]
    pub image: Option<String>,
    /// The effect applied.
    #[serde(default, deserialize_with = "query::value")]
    pub effect: Option<Effect>,
    /// Rule name pattern (an exact name matches itself, ignoring case).
    #[param(
        min_length = 1,
        max_length = 1024,
        pattern = r"^[^\u0000-\u001f\u007f-\u009f]*$"
    )]
    pub rule: Option<String>,
    /// RFC 3339 time; only audits at or after it.
    #[param(format = DateTime)]
    pub since: Option<String>,
    /// Page size. A filtered page may hold fewer audits, even none, and still carry
    /// `next_cursor`: follow it until it is absent.
    #[serde(default, deserialize_with = "query::value")]
    #[param(schema_with = AuditPageSize::schema)]
    pub limit: Option<AuditPageSize>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// Page size of the audit queries: 1 to [`MAX_LIMIT`], default [`DEFAULT_LIMIT`].
pub type AuditPageSize = PageSize<{ DEFAULT_LIMIT }, { MAX_LIMIT }>;

/// `kind` of the runtime audits.
#[derive(Deserialize, Debug, Default, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RuntimeKindFilter {
    /// Only audits of this kind.
    #[serde(default, deserialize_with = "query::value")]
    #[param(schema_with = RuntimeKind::schema)]
    pub kind: Option<RuntimeKind>,
}

/// `kind` of the CNAF audits.
#[derive(Deserialize, Debug, Default, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct FirewallKindFilter {
    /// Only audits of this kind.
    #[serde(default, deserialize_with = "query::value")]
    #[param(schema_with = FirewallKind::schema)]
    pub kind: Option<FirewallKind>,
}

/// A pattern parameter, checked as policy scope patterns are.
fn pattern_param(name: &str, v: Option<&str>) -> Result<Option<Pattern>, ApiError> {
    v.map(|p| Pattern::new(p).map_err(|e| ApiError::field(name, e.to_string())))
        .transpose()
}

/// Version of the `next_cursor` format.
const CURSOR_VERSION: &str = "a1";

/// The check a cursor carries: the start of the SHA-256 of its other parts. It catches garbled,
/// truncated and hand-edited cursors; it is not a secret, so a cursor built by hand with the
/// right check is accepted, and it only names a place in the key order, as `since` does.
fn cursor_check(category: &str, position: &str) -> String {
    let mut h =
        sha256_hex(format!("audit-cursor|{CURSOR_VERSION}|{category}|{position}").as_bytes());
    h.truncate(16);
    h
}

/// The opaque `next_cursor`: base64url of `a1|<category>|<scan position>|<check>`. The scan
/// position is [`AuditRows::resume_after`] or the last audit of a full page: the next page
/// starts strictly below it.
pub fn encode_cursor(category: AuditCategory, position: &str) -> String {
    let c = category.as_str();
    URL_SAFE_NO_PAD.encode(format!(
        "{CURSOR_VERSION}|{c}|{position}|{}",
        cursor_check(c, position)
    ))
}

/// The scan position of a cursor from [`encode_cursor`] for this route; anything else is a
/// 400 naming `cursor`.
fn decode_cursor(cursor: &str, category: AuditCategory) -> Result<String, ApiError> {
    let bad = || {
        ApiError::field(
            "cursor",
            "not a cursor this console issued; pass next_cursor from the previous page",
        )
    };
    // base64 of the longest valid cursor is well below this.
    if cursor.len() > 2 * crate::store::MAX_POSITION_LEN {
        return Err(bad());
    }
    let text = URL_SAFE_NO_PAD
        .decode(cursor)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(bad)?;
    let (version, rest) = text.split_once('|').ok_or_else(bad)?;
    let (route, rest) = rest.split_once('|').ok_or_else(bad)?;
    let (position, check) = rest.rsplit_once('|').ok_or_else(bad)?;
    if version != CURSOR_VERSION
        || check != cursor_check(route, position)
        || !crate::store::is_scan_position(position)
    {
        return Err(bad());
    }
    if route != category.as_str() {
        return Err(ApiError::field(
            "cursor",
            format!(
                "a cursor of the {route} audits; pass next_cursor from the previous page of this route"
            ),
        ));
    }
    Ok(position.to_string())
}

fn parse_filter(
    f: AuditFilter,
    kind: Option<AuditKind>,
    category: AuditCategory,
    state: &AppState,
) -> Result<AuditQuery, ApiError> {
    let now = Utc::now();
    let oldest = (now - state.settings().audit_retention).timestamp_millis();
    let since_ms = match f.since.as_deref() {
        None => oldest,
        Some(s) => DateTime::parse_from_rfc3339(s)
            .map_err(|_| {
                ApiError::field(
                    "since",
                    format!("{s:?} is not an RFC 3339 time; use e.g. 2026-11-28T19:00:00Z"),
                )
            })?
            .timestamp_millis()
            .max(oldest),
    };
    let limit = AuditPageSize::get(f.limit);
    let before_sk = match f.cursor.as_deref() {
        None => None,
        Some(c) => Some(decode_cursor(c, category)?),
    };
    Ok(AuditQuery {
        category,
        filter: AuditMatch {
            task: pattern_param("task", f.task.as_deref())?,
            container: pattern_param("container", f.container.as_deref())?,
            image: pattern_param("image", f.image.as_deref())?,
            kind,
            effect: f.effect,
            rule: pattern_param("rule", f.rule.as_deref())?,
        },
        since_ms,
        until_ms: (now + state.settings().max_clock_skew).timestamp_millis(),
        before_sk,
        limit,
        scan_limit: state.settings().audit_scan_limit,
    })
}

async fn query(
    state: &AppState,
    filter: AuditFilter,
    kind: Option<AuditKind>,
    category: AuditCategory,
) -> Result<Response, ApiError> {
    let mut q = parse_filter(filter, kind, category, state)?;
    let limit = q.limit;
    // One more than the page: if it exists, there is a next page.
    q.limit = limit + 1;
    let AuditRows {
        audits: mut rows,
        resume_after,
    } = state.store().query_audits(q).await?;
    let next = if rows.len() > limit {
        rows.truncate(limit);
        rows.last().map(|r| r.sk.clone())
    } else {
        // The scan budget ran out first: the next page starts below the last audit examined.
        resume_after
    }
    .map(|position| encode_cursor(category, &position));
    // The stored bodies are the records' JSON; the page is assembled without re-parsing them.
    let mut out = String::with_capacity(rows.iter().map(|r| r.body.len() + 1).sum::<usize>() + 64);
    out.push_str("{\"audits\":[");
    for (i, r) in rows.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&r.body);
    }
    out.push(']');
    if let Some(c) = next {
        out.push_str(",\"next_cursor\":\"");
        out.push_str(&c);
        out.push('"');
    }
    out.push('}');
    Ok((
        [(CONTENT_TYPE, HeaderValue::from_static("application/json"))],
        out,
    )
        .into_response())
}

/// Runtime audits (process, DNS, network, listen), newest first.
#[utoipa::path(get, path = "/api/v1/audits/runtime/app-embedded", tag = "audits",
    security(("bearer" = [])), params(AuditFilter, RuntimeKindFilter),
    responses((status = 200, body = AuditPage), (status = 400, body = protect::api::ErrorBody)))]
pub async fn runtime_audits(
    _c: Caller<Auditor>,
    State(state): State<AppState>,
    Params(f): Params<AuditFilter>,
    Params(k): Params<RuntimeKindFilter>,
) -> Result<Response, ApiError> {
    query(&state, f, k.kind.map(|k| k.0), AuditCategory::Runtime).await
}

/// CNAF audits, newest first.
#[utoipa::path(get, path = "/api/v1/audits/firewall/app/app-embedded", tag = "audits",
    security(("bearer" = [])), params(AuditFilter, FirewallKindFilter),
    responses((status = 200, body = AuditPage), (status = 400, body = protect::api::ErrorBody)))]
pub async fn firewall_audits(
    _c: Caller<Auditor>,
    State(state): State<AppState>,
    Params(f): Params<AuditFilter>,
    Params(k): Params<FirewallKindFilter>,
) -> Result<Response, ApiError> {
    query(&state, f, k.kind.map(|k| k.0), AuditCategory::Firewall).await
}
