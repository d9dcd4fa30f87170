//! Policies: the operators' GET/PUT of the whole runtime and CNAF policies, and the defenders'
//! `GET /api/v1/defender/policy` (the rules for their scope, with ETag / `If-None-Match`).

use std::sync::Arc;
use std::time::Instant;

use axum::extract::State;
use axum::http::header::{CACHE_CONTROL, ETAG, IF_MATCH, IF_NONE_MATCH};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use protect::api::{DefenderIdentity, PolicyBundle};
use protect::cnaf_policy::CnafPolicy;
use protect::policy::{RuntimePolicy, Scope};
use serde::Deserialize;

use crate::auth::{Admin, Auditor, Caller, DefenderCaller};
use crate::body::read_bounded;
use crate::error::ApiError;
use crate::query::Params;
use crate::state::AppState;
use crate::store::{PolicyKind, StoredPolicy};

/// Largest accepted policy document.
pub const MAX_POLICY_BYTES: usize = 1 << 20;

/// Both policies as last read from the store.
pub struct Snapshot {
    pub runtime: RuntimePolicy,
    pub cnaf: CnafPolicy,
    /// ETag of the defender route for this pair of revisions.
    pub etag: String,
}

fn empty_runtime() -> RuntimePolicy {
    RuntimePolicy {
        revision: 0,
        rules: Vec::new(),
    }
}

fn empty_cnaf() -> CnafPolicy {
    CnafPolicy {
        revision: 0,
        rules: Vec::new(),
    }
}

fn policy_etag(kind: PolicyKind, revision: u64) -> String {
    format!("\"{}-{revision}\"", kind.as_str())
}

fn bundle_etag(runtime: u64, cnaf: u64) -> String {
    format!("\"r{runtime}-c{cnaf}\"")
}

async fn load_runtime(state: &AppState) -> Result<RuntimePolicy, ApiError> {
    match state.store().get_policy(PolicyKind::Runtime).await? {
        None => Ok(empty_runtime()),
        Some(p) => RuntimePolicy::from_json(&p.body)
            .map_err(|e| ApiError::Internal(format!("stored runtime policy is invalid: {e}"))),
    }
}

async fn load_cnaf(state: &AppState) -> Result<CnafPolicy, ApiError> {
    match state.store().get_policy(PolicyKind::Firewall).await? {
        None => Ok(empty_cnaf()),
        Some(p) => CnafPolicy::from_json(&p.body)
            .map_err(|e| ApiError::Internal(format!("stored CNAF policy is invalid: {e}"))),
    }
}

/// The current policies, from memory when read less than `policy_cache_ttl` ago.
pub async fn snapshot(state: &AppState) -> Result<Arc<Snapshot>, ApiError> {
    let ttl = state.settings().policy_cache_ttl;
    if let Ok(guard) = state.inner.policy.lock() {
        if let Some((at, snap)) = guard.as_ref() {
            if at.elapsed() < ttl {
                return Ok(Arc::clone(snap));
            }
        }
    }
    let (runtime, cnaf) = tokio::try_join!(load_runtime(state), load_cnaf(state))?;
    let snap = Arc::new(Snapshot {
        etag: bundle_etag(runtime.revision, cnaf.revision),
        runtime,
        cnaf,
    });
    if let Ok(mut guard) = state.inner.policy.lock() {
        *guard = Some((Instant::now(), Arc::clone(&snap)));
    }
    Ok(snap)
}

fn invalidate(state: &AppState) {
    if let Ok(mut guard) = state.inner.policy.lock() {
        *guard = None;
    }
}

fn json_with_etag(body: String, etag: &str) -> Response {
    let mut resp = (
        [(
            axum::http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body,
    )
        .into_response();
    if let Ok(v) = HeaderValue::from_str(etag) {
        resp.headers_mut().insert(ETAG, v);
    }
    resp
}

fn to_json<T: serde::Serialize>(v: &T) -> Result<String, ApiError> {
    serde_json::to_string(v).map_err(|e| ApiError::Internal(format!("serialize: {e}")))
}

/// Whether an `If-None-Match` header value names `etag` (or is `*`), by weak comparison.
pub fn etag_matches(header: &str, etag: &str) -> bool {
    header
        .split(',')
        .map(str::trim)
        .any(|t| t == "*" || t == etag || t.strip_prefix("W/") == Some(etag))
}

/// Whether an `If-Match` header value names `etag` by strong comparison (RFC 9110 13.1.1:
/// If-Match compares strongly), or is `*`: a weak `W/"..."` validator never matches.
pub fn etag_matches_strong(header: &str, etag: &str) -> bool {
    header
        .split(',')
        .map(str::trim)
        .any(|t| t == "*" || t == etag)
}

/// Reads a policy PUT body, validates it with `parse`, assigns the next revision and stores it
/// (optimistic concurrency; `If-Match` must name the current revision when given).
async fn put_policy<P, F>(
    state: &AppState,
    kind: PolicyKind,
    headers: &HeaderMap,
    body: axum::body::Bytes,
    parse: F,
    set_revision: fn(&mut P, u64),
) -> Result<Response, ApiError>
where
    P: serde::Serialize,
    F: Fn(&str) -> Result<P, String>,
{
    let text = std::str::from_utf8(&body)
        .map_err(|_| ApiError::BadRequest("body: not UTF-8; send a JSON document".to_string()))?;
    if text.trim().is_empty() {
        return Err(ApiError::BadRequest(
            "body: empty; send the whole policy as JSON".to_string(),
        ));
    }
    let mut policy = parse(text).map_err(ApiError::BadRequest)?;
    for _ in 0..5 {
        let current = state.store().get_policy(kind).await?;
        let current_rev = current.as_ref().map_or(0, |p| p.revision);
        if let Some(want) = headers.get(IF_MATCH).and_then(|v| v.to_str().ok()) {
            if !etag_matches_strong(want, &policy_etag(kind, current_rev)) {
                return Err(ApiError::PreconditionFailed(format!(
                    "If-Match: the policy is at revision {current_rev} (ETag {}); GET it again \
                     and reapply your change",
                    policy_etag(kind, current_rev)
                )));
            }
        }
        let revision = current_rev + 1;
        set_revision(&mut policy, revision);
        let stored = to_json(&policy)?;
        let ok = state
            .store()
            .put_policy(
                kind,
                current_rev,
                StoredPolicy {
                    revision,
                    body: stored.clone(),
                    updated_at: Utc::now(),
                },
            )
            .await?;
        if ok {
            invalidate(state);
            tracing::info!(policy = kind.as_str(), revision, "policy updated");
            return Ok(json_with_etag(stored, &policy_etag(kind, revision)));
        }
    }
    Err(ApiError::Conflict(
        "the policy is being changed by someone else right now; retry".to_string(),
    ))
}

async fn get_policy_doc(state: &AppState, kind: PolicyKind) -> Result<Response, ApiError> {
    let (body, revision) = match state.store().get_policy(kind).await? {
        Some(p) => (p.body, p.revision),
        None => match kind {
            PolicyKind::Runtime => (to_json(&empty_runtime())?, 0),
            PolicyKind::Firewall => (to_json(&empty_cnaf())?, 0),
        },
    };
    Ok(json_with_etag(body, &policy_etag(kind, revision)))
}

/// The whole runtime policy.
#[utoipa::path(get, path = "/api/v1/policies/runtime/app-embedded", tag = "policies",
    security(("bearer" = []), ("basic" = [])),
    responses((status = 200, description = "The runtime policy (ETag: its revision)", body = Object),
              (status = 401, body = protect::api::ErrorBody), (status = 403, body = protect::api::ErrorBody)))]
pub async fn get_runtime(
    _c: Caller<Auditor>,
    State(state): State<AppState>,
) -> Result<Response, ApiError> {
    get_policy_doc(&state, PolicyKind::Runtime).await
}

/// Replaces the runtime policy; the console assigns the next revision.
#[utoipa::path(put, path = "/api/v1/policies/runtime/app-embedded", tag = "policies",
    security(("bearer" = []), ("basic" = [])), request_body = Object,
    responses((status = 200, description = "The stored policy with its new revision", body = Object),
              (status = 400, description = "Invalid policy; the error lists every bad field by JSON path", body = protect::api::ErrorBody),
              (status = 412, description = "If-Match names an older revision", body = protect::api::ErrorBody)))]
pub async fn put_runtime(
    _c: Caller<Admin>,
    State(state): State<AppState>,
    headers: HeaderMap,
    req: axum::extract::Request,
) -> Result<Response, ApiError> {
    let body = read_bounded(req, MAX_POLICY_BYTES).await?;
    put_policy(
        &state,
        PolicyKind::Runtime,
        &headers,
        body,
        |t| RuntimePolicy::from_json(t).map_err(|e| e.to_string()),
        |p: &mut RuntimePolicy, r| p.revision = r,
    )
    .await
}

/// The whole CNAF policy.
#[utoipa::path(get, path = "/api/v1/policies/firewall/app/app-embedded", tag = "policies",
    security(("bearer" = []), ("basic" = [])),
    responses((status = 200, description = "The CNAF policy (ETag: its revision)", body = Object),
              (status = 401, body = protect::api::ErrorBody), (status = 403, body = protect::api::ErrorBody)))]
pub async fn get_cnaf(
    _c: Caller<Auditor>,
    State(state): State<AppState>,
) -> Result<Response, ApiError> {
    get_policy_doc(&state, PolicyKind::Firewall).await
}

/// Replaces the CNAF policy; the console assigns the next revision.
#[utoipa::path(put, path = "/api/v1/policies/firewall/app/app-embedded", tag = "policies",
    security(("bearer" = []), ("basic" = [])), request_body = Object,
    responses((status = 200, description = "The stored policy with its new revision", body = Object),
              (status = 400, description = "Invalid policy; the error names the bad fields", body = protect::api::ErrorBody)))]
pub async fn put_cnaf(
    _c: Caller<Admin>,
    State(state): State<AppState>,
    headers: HeaderMap,
    req: axum::extract::Request,
) -> Result<Response, ApiError> {
    let body = read_bounded(req, MAX_POLICY_BYTES).await?;
    put_policy(
        &state,
        PolicyKind::Firewall,
        &headers,
        body,
        |t| CnafPolicy::from_json(t).map_err(|e| e.to_string()),
        |p: &mut CnafPolicy, r| p.revision = r,
    )
    .await
}

/// Query of `GET /api/v1/defender/policy`.
#[derive(Deserialize, Debug, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PolicyQuery {
    /// Task definition family.
    #[param(
        required = true,
        max_length = 512,
        pattern = r"^[^\u0000-\u001f\u007f-\u009f]*[^\s\u0000-\u001f\u007f-\u009f][^\u0000-\u001f\u007f-\u009f]*$"
    )]
    pub task: Option<String>,
    /// Container name.
    #[param(
        required = true,
        max_length = 512,
        pattern = r"^[^\u0000-\u001f\u007f-\u009f]*[^\s\u0000-\u001f\u007f-\u009f][^\u0000-\u001f\u007f-\u009f]*$"
    )]
    pub container: Option<String>,
    /// Image.
    #[param(
        required = true,
        max_length = 512,
        pattern = r"^[^\u0000-\u001f\u007f-\u009f]*[^\s\u0000-\u001f\u007f-\u009f][^\u0000-\u001f\u007f-\u009f]*$"
    )]
    pub image: Option<String>,
    /// The running task (ARN or id), to tell replicas apart in `GET /api/v1/defenders`.
    #[param(max_length = 512, pattern = r"^[^\u0000-\u001f\u007f-\u009f]*$")]
    pub instance: Option<String>,
    /// The defender's version.
    #[param(max_length = 64, pattern = r"^[^\u0000-\u001f\u007f-\u009f]*$")]
    pub version: Option<String>,
}

const MAX_SCOPE_LEN: usize = 512;

/// Checks a defender's scope fields (non-empty, bounded).
pub fn scope_field(name: &str, value: Option<&str>) -> Result<String, ApiError> {
    optional_field(name, value, MAX_SCOPE_LEN)?.ok_or_else(|| {
        ApiError::field(
            name,
            format!("missing; pass the defender's {name} (e.g. ?task=FAMILY&container=NAME&image=IMAGE)"),
        )
    })
}

/// Longest defender version accepted.
const MAX_VERSION_LEN: usize = 64;

/// An optional identity field: trimmed, empty means absent, at most `max` characters,
/// printable.
fn optional_field(name: &str, value: Option<&str>, max: usize) -> Result<Option<String>, ApiError> {
    match value.map(str::trim) {
        None | Some("") => Ok(None),
        Some(v) if v.chars().count() > max => Err(ApiError::field(
            name,
            format!("longer than {max} characters"),
        )),
        Some(v) if v.chars().any(char::is_control) => Err(ApiError::field(
            name,
            "contains a control character; identity fields are printable text",
        )),
        Some(v) => Ok(Some(v.to_string())),
    }
}

/// A defender's identity from its query or batch; `prefix` names the fields in errors
/// (`defender.` in batches). Every field is bounded and printable.
pub fn identity(prefix: &str, raw: &DefenderIdentity) -> Result<DefenderIdentity, ApiError> {
    let name = |f: &str| format!("{prefix}{f}");
    Ok(DefenderIdentity {
        task: scope_field(&name("task"), Some(&raw.task))?,
        container: scope_field(&name("container"), Some(&raw.container))?,
        image: scope_field(&name("image"), Some(&raw.image))?,
        instance: optional_field(&name("instance"), raw.instance.as_deref(), MAX_SCOPE_LEN)?,
        version: optional_field(&name("version"), Some(&raw.version), MAX_VERSION_LEN)?
            .unwrap_or_default(),
    })
}

/// The caller's credential must cover `identity` (403 naming the field otherwise).
pub fn check_scope(caller: &DefenderCaller, identity: &DefenderIdentity) -> Result<(), ApiError> {
    caller
        .scope
        .check_identity(identity)
        .map_err(|e| scope_refused(&caller.credential_id, &e))
}

/// The 403 for a claim outside the caller's credential.
pub fn scope_refused(credential: &str, e: &protect::credential::ScopeError) -> ApiError {
    ApiError::Forbidden(format!("forbidden: {e} (defender credential {credential})"))
}

/// The rules for the caller's scope: `{"runtime": RuntimePolicy, "cnaf": CnafPolicy}`.
#[utoipa::path(get, path = "/api/v1/defender/policy", tag = "defender",
    security(("defender" = [])), params(PolicyQuery),
    responses((status = 200, description = "Runtime rules matching the scope and the CNAF rule of the task", body = PolicyBundle),
              (status = 304, description = "If-None-Match names the current ETag"),
              (status = 400, body = protect::api::ErrorBody),
              (status = 403, description = "Not a defender token, or the identity is outside the credential's scope", body = protect::api::ErrorBody),
              (status = 429, description = "A new defender beyond its credential's daily limit", body = protect::api::ErrorBody)))]
pub async fn defender_policy(
    d: DefenderCaller,
    State(state): State<AppState>,
    Params(q): Params<PolicyQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let identity = identity(
        "",
        &DefenderIdentity {
            task: q.task.unwrap_or_default(),
            container: q.container.unwrap_or_default(),
            image: q.image.unwrap_or_default(),
            instance: q.instance,
            version: q.version.unwrap_or_default(),
        },
    )?;
    check_scope(&d, &identity)?;
    let snap = snapshot(&state).await?;
    super::defenders::note_contact(&state, &d.credential_id, &identity, 0, 0, false).await?;
    if headers
        .get(IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| etag_matches(v, &snap.etag))
    {
        let mut resp = StatusCode::NOT_MODIFIED.into_response();
        if let Ok(v) = HeaderValue::from_str(&snap.etag) {
            resp.headers_mut().insert(ETAG, v);
        }
        return Ok(resp);
    }
    let scope = Scope {
        task: identity.task.clone(),
        container: identity.container.clone(),
        image: identity.image.clone(),
    };
    let bundle = PolicyBundle {
        runtime: snap.runtime.for_scope(&scope),
        cnaf: CnafPolicy {
            revision: snap.cnaf.revision,
            rules: snap
                .cnaf
                .rule_for_task(&identity.task)
                .cloned()
                .into_iter()
                .collect(),
        },
    };
    let mut resp = json_with_etag(to_json(&bundle)?, &snap.etag);
    resp.headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    Ok(resp)
}
