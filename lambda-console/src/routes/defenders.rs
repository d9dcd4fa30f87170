//! Defenders: the list of those seen, their credentials (install bundle) and the transform
//! that embeds them into a task definition.

use std::time::Instant;

use axum::extract::State;
use axum::http::header::{CACHE_CONTROL, WARNING};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use protect::api::{
    CredentialScope, DefenderDefaults, DefenderIdentity, DefenderList, DefenderStatus,
    InstallBundle, InstallBundleRequest,
};
use protect::embed::{embed, CnafOptions, EmbedOptions};
use protect::policy::Startup;
use serde::Deserialize;

use crate::auth::{new_id, new_token, Auditor, Caller, Manager, DEFENDER_PREFIX};
use crate::body::{parse_json, read_bounded};
use crate::error::ApiError;
use crate::query::{self, PageSize, Params, Port};
use crate::state::{AppState, CACHE_CAP};
use crate::store::{
    defender_key, DefenderContact, DefenderCredential, TokenRecord, TokenSubject, TouchOutcome,
};
use crate::vault::{Kept, Minted, SecretsVault};

/// Largest accepted task definition (ECS allows 64 KiB; DescribeTaskDefinition output is a bit
/// larger).
pub const MAX_TASK_DEFINITION_BYTES: usize = 256 * 1024;

/// Records a defender's contact under its credential. Policy fetches (`always == false`) write
/// at most once per `contact_interval` per defender. A new defender beyond its credential's
/// daily limit is refused (429); storage failures are logged, never returned (the defender's
/// request succeeds regardless).
pub async fn note_contact(
    state: &AppState,
    credential: &str,
    identity: &DefenderIdentity,
    audits: u64,
    dropped: u64,
    always: bool,
) -> Result<(), ApiError> {
    let key = defender_key(identity);
    if !always {
        let interval = state.settings().contact_interval;
        let Ok(seen) = state.inner.contacts.lock() else {
            return Ok(());
        };
        if seen.get(&key).is_some_and(|at| at.elapsed() < interval) {
            return Ok(());
        }
    }
    let now = Utc::now();
    let settings = state.settings();
    let contact = DefenderContact {
        identity: identity.clone(),
        credential: credential.to_string(),
        at: now,
        audits,
        dropped,
        new_per_day: settings.new_defenders_per_credential,
        expires_at: now + settings.audit_retention,
    };
    match state.store().touch_defender(contact).await {
        Ok(TouchOutcome::Recorded) => {}
        Ok(TouchOutcome::LimitReached) => {
            return Err(ApiError::TooMany(format!(
                "defender credential {credential} has already registered {} new defenders today \
                 (task, container, image, instance); this one is refused until tomorrow (UTC). \
                 Use one credential per service, or raise CONSOLE_NEW_DEFENDERS_PER_CREDENTIAL",
                settings.new_defenders_per_credential
            )))
        }
        Err(e) => {
            tracing::warn!(error = %e, "could not record defender contact");
            return Ok(());
        }
    }
    if let Ok(mut seen) = state.inner.contacts.lock() {
        if seen.len() >= CACHE_CAP {
            seen.clear();
        }
        seen.insert(key, Instant::now());
    }
    Ok(())
}

/// Default page size of the defenders list.
pub const DEFAULT_DEFENDERS_PAGE: usize = 100;
/// Largest page of the defenders list (a row is at most ~2 KiB of bounded identity fields, so a
/// page stays far below Lambda's 6 MB response limit).
pub const MAX_DEFENDERS_PAGE: usize = 500;

/// Page size of the defenders list.
pub type DefendersPageSize = PageSize<{ DEFAULT_DEFENDERS_PAGE }, { MAX_DEFENDERS_PAGE }>;

/// Filter and page of the defenders list.
#[derive(Deserialize, Debug, Default, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DefenderFilter {
    /// Only defenders with this status. A filtered page may hold fewer defenders, even none,
    /// and still carry `next_cursor`: follow it until it is absent.
    #[serde(default, deserialize_with = "query::value")]
    pub status: Option<DefenderStatus>,
    /// Page size.
    #[serde(default, deserialize_with = "query::value")]
    #[param(schema_with = DefendersPageSize::schema)]
    pub limit: Option<DefendersPageSize>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// Defenders seen, in task, container, image, instance order, a page at a time, with scope,
/// version, last contact and the status it gives: `connected` (heard from within
/// `CONSOLE_DEFENDER_CONNECTED_SECONDS`, default 60 s), `stale` (within
/// `CONSOLE_DEFENDER_STALE_SECONDS`, default 10 min) or `disconnected`. Defenders not heard
/// from within the audit retention are forgotten.
#[utoipa::path(get, path = "/api/v1/defenders", tag = "defenders",
    security(("bearer" = [])), params(DefenderFilter),
    responses((status = 200, body = DefenderList), (status = 400, body = protect::api::ErrorBody),
              (status = 401, body = protect::api::ErrorBody)))]
pub async fn list_defenders(
    _c: Caller<Auditor>,
    State(state): State<AppState>,
    Params(f): Params<DefenderFilter>,
) -> Result<axum::Json<DefenderList>, ApiError> {
    let wanted = f.status;
    let page = super::Page::new(DefendersPageSize::get(f.limit), f.cursor.as_deref())?;
    let rows = state
        .store()
        .list_defenders(page.after.clone(), page.limit + 1)
        .await?;
    let (rows, next_cursor) = page.split(rows, |(key, _)| key.as_str());
    let settings = state.settings();
    let now = Utc::now();
    let mut defenders: Vec<_> = rows.into_iter().map(|(_, d)| d).collect();
    for d in &mut defenders {
        d.status = Some(DefenderStatus::at(
            d.last_contact,
            now,
            settings.defender_connected_within,
            settings.defender_stale_within,
        ));
    }
    if let Some(w) = wanted {
        defenders.retain(|d| d.status == Some(w));
    }
    Ok(axum::Json(DefenderList {
        defenders,
        next_cursor,
    }))
}

/// The defender image and console version that tools embedding the defender use by default.
#[utoipa::path(get, path = "/api/v1/defenders/defaults", tag = "defenders",
    security(("bearer" = []), ("basic" = [])),
    responses((status = 200, body = DefenderDefaults), (status = 401, body = protect::api::ErrorBody)))]
pub async fn defaults(
    _c: Caller<Auditor>,
    State(state): State<AppState>,
) -> axum::Json<DefenderDefaults> {
    axum::Json(DefenderDefaults {
        defender_image: state.settings().defender_image.clone(),
        version: env!("CARGO_PKG_VERSION").to_string(),
    })
}

/// Creates a defender credential for `scope` (body `{"name": ..., "scope": {"tasks": [...],
/// "clusters": [...]}}`, patterns as in policy scopes). Without a scope the credential may
/// speak for every task in every cluster; the answer echoes the scope and a `Warning` header
/// says so. The token is shown once; the console keeps its hash.
#[utoipa::path(post, path = "/api/v1/defenders/install-bundle", tag = "defenders",
    security(("bearer" = []), ("basic" = [])), request_body(content = Option<InstallBundleRequest>, description = "optional", content_type = "application/json"),
    responses((status = 201, body = InstallBundle),
              (status = 400, description = "The error names the bad field (`scope.tasks[0]: ...`)", body = protect::api::ErrorBody),
              (status = 403, body = protect::api::ErrorBody)))]
pub async fn install_bundle(
    caller: Caller<Manager>,
    State(state): State<AppState>,
    req: axum::extract::Request,
) -> Result<Response, ApiError> {
    let body = read_bounded(req, 16 * 1024).await?;
    let request = if body.iter().all(u8::is_ascii_whitespace) || body.trim_ascii() == b"null" {
        serde_json::Value::Object(serde_json::Map::new())
    } else {
        parse_json::<serde_json::Value>(&body)?
    };
    let Some(fields) = request.as_object() else {
        return Err(ApiError::BadRequest(
            "body: expected an object {\"name\": ..., \"scope\": {\"tasks\": [...], \"clusters\": [...]}}"
                .to_string(),
        ));
    };
    if let Some(unknown) = fields
        .keys()
        .find(|k| !matches!(k.as_str(), "name" | "scope"))
    {
        return Err(ApiError::field(
            unknown.chars().take(64).collect::<String>(),
            "unknown field; expected name and scope",
        ));
    }
    let name = match fields.get("name") {
        None | Some(serde_json::Value::Null) => None,
        Some(serde_json::Value::String(name))
            if name.chars().count() <= 128 && !name.chars().any(char::is_control) =>
        {
            Some(name.clone())
        }
        Some(_) => return Err(ApiError::field("name", "at most 128 printable characters")),
    };
    let scope = match fields.get("scope") {
        None | Some(serde_json::Value::Null) => None,
        Some(v) => Some(
            CredentialScope::from_value(v, "scope")
                .map_err(|e| ApiError::BadRequest(e.to_string()))?,
        ),
    };
    let unscoped = scope.is_none();
    let bundle = mint_credential(
        &state,
        name,
        scope.unwrap_or_else(CredentialScope::all),
        &caller.username,
    )
    .await?;
    let mut resp = (StatusCode::CREATED, axum::Json(bundle)).into_response();
    resp.headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if unscoped {
        resp.headers_mut().insert(
            WARNING,
            HeaderValue::from_static(
                "199 console \"no scope: this credential may speak for every task in every \
                 cluster; pass {'scope': {'tasks': [FAMILY]}} to limit it\"",
            ),
        );
    }
    Ok(resp)
}

/// Stores a new defender credential for `scope` (its hash) and returns the token, shown this
/// once. The transform calls it with [`CredentialScope::task_family`] or
/// [`CredentialScope::all`].
pub async fn mint_credential(
    state: &AppState,
    name: Option<String>,
    scope: CredentialScope,
    by: &str,
) -> Result<InstallBundle, ApiError> {
    let (token, hash) = new_token(DEFENDER_PREFIX);
    let id = new_id();
    state
        .store()
        .put_token(TokenRecord {
            hash,
            subject: TokenSubject::Defender(DefenderCredential {
                id: id.clone(),
                name: name.clone(),
                scope: scope.clone(),
                created_by: Some(by.to_string()),
                revoked_at: None,
            }),
            created_at: Utc::now(),
            expires_at: None,
        })
        .await?;
    tracing::info!(credential = %id, by = %by, all = scope.is_all(), "defender credential created");
    Ok(InstallBundle {
        token,
        id,
        name,
        scope,
    })
}

/// Query of the transform.
#[derive(Deserialize, Debug, Default, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase")]
pub struct TransformQuery {
    /// The console address defenders use: `HOST[:PORT]` (https assumed) or a full URL.
    #[param(required = true, min_length = 1, pattern = r"\S")]
    pub consoleaddr: Option<String>,
    /// Defender image; default: the console's `CONSOLE_DEFENDER_IMAGE`, else
    /// `fargate-defender:VERSION` (this console's version).
    pub defender_image: Option<String>,
    /// Secrets Manager / SSM ARN holding the defender token (`DEFENDER_TOKEN`). Without it the
    /// console creates a defender credential and writes it in plain `environment`, with a
    /// `Warning` header.
    pub token_secret_arn: Option<String>,
    /// Startup mode of a fresh container while no policy is known (`DEFENDER_STARTUP`):
    /// `availability` or `security`.
    #[serde(default, deserialize_with = "query::value")]
    pub startup: Option<Startup>,
    /// CNAF external port (with `appPort`).
    #[serde(default, deserialize_with = "query::value")]
    #[param(value_type = Option<u16>, minimum = 1)]
    pub cnaf_port: Option<Port>,
    /// The app's port behind CNAF (with `cnafPort`).
    #[serde(default, deserialize_with = "query::value")]
    #[param(value_type = Option<u16>, minimum = 1)]
    pub app_port: Option<Port>,
    /// Container CNAF runs in (when the task has several app containers).
    pub cnaf_container: Option<String>,
    /// Comma-separated containers whose image has no ENTRYPOINT.
    pub no_image_entrypoint: Option<String>,
    /// Comma-separated containers to leave unprotected.
    pub exclude_container: Option<String>,
}

/// Rewrites the transform's flag names into this route's query names.
fn http_names(text: String) -> String {
    [
        ("--console-url", "consoleaddr"),
        ("--defender-image", "defenderImage"),
        ("--token-secret-arn", "tokenSecretArn"),
        ("--cnaf-port", "cnafPort"),
        ("--app-port", "appPort"),
        ("--cnaf-container", "cnafContainer"),
        ("--no-image-entrypoint", "noImageEntrypoint"),
        ("--exclude-container", "excludeContainer"),
        ("--startup", "startup"),
    ]
    .iter()
    .fold(text, |t, (flag, name)| t.replace(flag, name))
}

fn list(v: Option<String>) -> Vec<String> {
    v.map(|s| {
        s.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect()
    })
    .unwrap_or_default()
}

/// Embeds the defender into a task definition (the pipelines' call).
#[utoipa::path(post, path = "/api/v1/defenders/fargate.json", tag = "defenders",
    security(("bearer" = []), ("basic" = [])), params(TransformQuery),
    request_body(content = Object, description = "A task definition (RegisterTaskDefinition input or DescribeTaskDefinition output)"),
    responses((status = 200, description = "The protected task definition (RegisterTaskDefinition input); warnings in `Warning` headers", body = Object),
              (status = 400, description = "The error names the JSON path or query parameter and the fix", body = protect::api::ErrorBody)))]
pub async fn transform(
    caller: Caller<Manager>,
    State(state): State<AppState>,
    Params(q): Params<TransformQuery>,
    req: axum::extract::Request,
) -> Result<Response, ApiError> {
    let addr = q
        .consoleaddr
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| {
            ApiError::field(
                "consoleaddr",
                "missing; pass ?consoleaddr=HOST (the console address defenders reach)",
            )
        })?;
    let console_url = if addr.starts_with("http://") || addr.starts_with("https://") {
        addr.to_string()
    } else {
        format!("https://{addr}")
    };
    let image = q
        .defender_image
        .clone()
        .filter(|s| !s.trim().is_empty())
        .unwrap_or_else(|| state.settings().defender_image.clone());
    let startup = q.startup;
    let cnaf = match (q.cnaf_port, q.app_port) {
        (None, None) => None,
        (Some(Port(external_port)), Some(Port(app_port))) => Some(CnafOptions {
            external_port,
            app_port,
            container: q.cnaf_container.clone(),
        }),
        _ => {
            return Err(ApiError::field(
                "cnafPort",
                "cnafPort and appPort go together; pass both or neither",
            ))
        }
    };
    let body = read_bounded(req, MAX_TASK_DEFINITION_BYTES).await?;
    let input: serde_json::Value = parse_json(&body)?;
    let mut warnings = Vec::new();
    if let Some(note) = cleartext_console(&console_url) {
        warnings.push(note);
    }
    // No ports named: the task family's CNAF rule gives them (port mapping included).
    let cnaf = match cnaf {
        Some(c) => Some(c),
        None => {
            let family = protect::embed::family_of(&input).unwrap_or_default();
            let snap = crate::routes::policies::snapshot(&state).await?;
            snap.cnaf.rule_for_task(family).map(|rule| {
                warnings.push(format!(
                    "CNAF port {} forwards to the app's port {} (the console's CNAF rule {:?}); \
                     open the port in the service's security group",
                    rule.external_port, rule.app_port, rule.name
                ));
                CnafOptions {
                    external_port: rule.external_port,
                    app_port: rule.app_port,
                    container: q.cnaf_container.clone(),
                }
            })
        }
    };
    let mut options = EmbedOptions::new(console_url, image);
    options.token_secret_arn = q.token_secret_arn.clone().filter(|s| !s.trim().is_empty());
    options.cnaf = cnaf;
    options.no_image_entrypoint = list(q.no_image_entrypoint);
    options.exclude_containers = list(q.exclude_container);
    options.startup = startup;
    let bad = |e: protect::embed::TransformError| ApiError::BadRequest(http_names(e.to_string()));
    // A task that cannot be protected gets its error before any credential is made for it.
    let mut out = embed(&input, &options).map_err(bad)?;
    if options.token_secret_arn.is_none() {
        let family = out.task_definition["family"]
            .as_str()
            .unwrap_or_default()
            .chars()
            .take(100)
            .collect::<String>();
        let mint = || async {
            mint_credential(
                &state,
                Some(format!("transform: {family}")),
                CredentialScope::task_family(&family)
                    .map_err(|e| ApiError::field("family", e.to_string()))?,
                &caller.username,
            )
            .await
            .map(|b| Minted {
                id: b.id,
                token: b.token,
            })
        };
        match state.vault() {
            Some(vault) => {
                let task_role = out.task_definition["executionRoleArn"]
                    .as_str()
                    .filter(|r| !r.is_empty())
                    .map(String::from);
                keep_in_vault(
                    vault,
                    &state,
                    &family,
                    task_role,
                    mint,
                    &mut options,
                    &mut warnings,
                )
                .await?;
            }
            None => {
                let bundle = mint().await?;
                warnings.push(format!(
                    "no tokenSecretArn: created defender credential {} for task family {family} \
                     and wrote it to DEFENDER_TOKEN in plain environment; store it in Secrets \
                     Manager and pass tokenSecretArn=ARN instead (revoke this one when done)",
                    bundle.id
                ));
                options.plain_token = Some(bundle.token);
                options.allow_plain_token = true;
            }
        }
        out = embed(&input, &options).map_err(bad)?;
    }
    warnings.extend(out.warnings.into_iter().map(http_names));
    let mut resp = axum::Json(out.task_definition).into_response();
    resp.headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    for w in warnings {
        let text = format!("199 console \"{}\"", w.replace('"', "'"));
        if let Ok(v) = HeaderValue::from_str(&text) {
            resp.headers_mut().append(WARNING, v);
        }
    }
    Ok(resp)
}

/// The family's credential kept in Secrets Manager and referenced by ARN, its secret readable by
/// the task's execution role (or the console's default role for tasks that have none).
async fn keep_in_vault<F, Fut>(
    vault: &SecretsVault,
    state: &AppState,
    family: &str,
    task_role: Option<String>,
    mint: F,
    options: &mut EmbedOptions,
    warnings: &mut Vec<String>,
) -> Result<(), ApiError>
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = Result<Minted, ApiError>>,
{
    let name = protect::embed::credential_secret_name(family);
    let kept = vault.keep(state.store().as_ref(), family, mint).await?;
    warnings.push(match &kept {
        Kept::Created { credential, .. } => format!(
            "created defender credential {credential} for task family {family} and stored it \
             in secret {name}"
        ),
        Kept::Reused { .. } => format!("defender credential: reusing secret {name}"),
        Kept::Renewed { credential, .. } => format!(
            "the credential in secret {name} is no longer accepted: created {credential} in its \
             place"
        ),
    });
    let arn = kept.arn().to_string();
    match (task_role, &vault.default_execution_role) {
        (Some(role), default) if default.as_deref() != Some(role.as_str()) => {
            vault.grant(&arn, &role).await?;
            warnings.push(format!(
                "execution role {role} may read secret {name} (the secret's resource policy)"
            ));
        }
        (Some(_), _) => {}
        (None, Some(default)) => {
            warnings.push(format!(
                "the task had no execution role: set executionRoleArn to {default}, the \
                 console's role for defender credentials"
            ));
            options.execution_role_arn = Some(default.clone());
        }
        (None, None) => warnings.push(format!(
            "the task has no execution role and the console has none to give \
             (CONSOLE_DEFENDER_EXECUTION_ROLE_ARN): ECS needs one allowed to read {arn} \
             (secretsmanager:GetSecretValue) to start the task"
        )),
    }
    options.token_secret_arn = Some(arn);
    Ok(())
}

/// A warning when defenders would reach the console over plain HTTP beyond this host: their
/// credential and every audit would cross the network in clear text.
fn cleartext_console(url: &str) -> Option<String> {
    let rest = url.strip_prefix("http://")?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => authority.rsplit_once(':').map_or(authority, |(h, _)| h),
    };
    let loopback = host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    (!loopback).then(|| {
        format!(
            "consoleaddr {url} is plain HTTP: the defender credential and every audit would \
             cross the network in clear text; use https:// (or HOST alone, which means https)"
        )
    })
}

#[cfg(test)]
mod tests {
    use super::cleartext_console;

    #[test]
    fn plain_http_beyond_loopback_is_named() {
        assert!(cleartext_console("http://console.example:8083").is_some());
        assert!(cleartext_console("http://10.0.0.5/api").is_some());
        assert!(cleartext_console("https://console.example").is_none());
        assert!(cleartext_console("http://127.0.0.1:8083").is_none());
        assert!(cleartext_console("http://localhost:8083/x").is_none());
        assert!(cleartext_console("http://[::1]:8083").is_none());
        assert!(cleartext_console("http://[2001:db8::1]:8083").is_some());
    }
}
