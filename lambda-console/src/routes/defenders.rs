//! Defenders: the list of those seen, their credentials (install bundle) and the transform
//! that embeds them into a task definition.

use std::time::Instant;

use axum::extract::{Query, State};
use axum::http::header::{CACHE_CONTROL, WARNING};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use protect::api::{
    DefenderDefaults, DefenderIdentity, DefenderList, DefenderStatus, InstallBundle,
    InstallBundleRequest,
};
use protect::embed::{embed, CnafOptions, EmbedOptions};
use protect::policy::Startup;
use serde::Deserialize;

use crate::auth::{new_id, new_token, Auditor, Caller, Manager, DEFENDER_PREFIX};
use crate::body::{parse_json, read_bounded};
use crate::error::ApiError;
use crate::state::{AppState, CACHE_CAP};
use crate::store::{defender_key, DefenderContact, TokenRecord, TokenSubject};
use crate::vault::{Kept, Minted, SecretsVault};

/// Largest accepted task definition (ECS allows 64 KiB; DescribeTaskDefinition output is a bit
/// larger).
pub const MAX_TASK_DEFINITION_BYTES: usize = 256 * 1024;

/// Records a defender's contact. Policy fetches (`always == false`) write at most once per
/// `contact_interval` per defender; failures are logged, never returned (the defender's
/// request succeeds regardless).
pub async fn note_contact(
    state: &AppState,
    identity: &DefenderIdentity,
    audits: u64,
    dropped: u64,
    always: bool,
) {
    let key = defender_key(identity);
    if !always {
        let interval = state.settings().contact_interval;
        let Ok(mut seen) = state.inner.contacts.lock() else {
            return;
        };
        if seen.get(&key).is_some_and(|at| at.elapsed() < interval) {
            return;
        }
        if seen.len() >= CACHE_CAP {
            seen.clear();
        }
        seen.insert(key, Instant::now());
    }
    let contact = DefenderContact {
        identity: identity.clone(),
        at: Utc::now(),
        audits,
        dropped,
    };
    if let Err(e) = state.store().touch_defender(contact).await {
        tracing::warn!(error = %e, "could not record defender contact");
    }
}

/// Filter of the defenders list.
#[derive(Deserialize, Debug, Default, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DefenderFilter {
    /// Only defenders with this status.
    #[param(value_type = Option<DefenderStatus>)]
    pub status: Option<String>,
}

/// Defenders seen, with scope, version, last contact and the status it gives: `connected`
/// (heard from within `CONSOLE_DEFENDER_CONNECTED_SECONDS`, default 60 s), `stale` (within
/// `CONSOLE_DEFENDER_STALE_SECONDS`, default 10 min) or `disconnected`.
#[utoipa::path(get, path = "/api/v1/defenders", tag = "defenders",
    security(("bearer" = []), ("basic" = [])), params(DefenderFilter),
    responses((status = 200, body = DefenderList), (status = 400, body = protect::api::ErrorBody),
              (status = 401, body = protect::api::ErrorBody)))]
pub async fn list_defenders(
    _c: Caller<Auditor>,
    State(state): State<AppState>,
    filter: Result<Query<DefenderFilter>, axum::extract::rejection::QueryRejection>,
) -> Result<axum::Json<DefenderList>, ApiError> {
    let Query(f) = filter?;
    let wanted = match f.status.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        None => None,
        Some(s) => Some(DefenderStatus::parse(s).ok_or_else(|| {
            let all: Vec<&str> = DefenderStatus::ALL.iter().map(|d| d.as_str()).collect();
            ApiError::field(
                "status",
                format!("unknown status {s:?}; expected one of {}", all.join(", ")),
            )
        })?),
    };
    let settings = state.settings();
    let now = Utc::now();
    let mut defenders = state.store().list_defenders().await?;
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
    Ok(axum::Json(DefenderList { defenders }))
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

/// Creates a defender credential. The token is shown once; the console keeps its hash.
#[utoipa::path(post, path = "/api/v1/defenders/install-bundle", tag = "defenders",
    security(("bearer" = []), ("basic" = [])), request_body(content = InstallBundleRequest, description = "optional"),
    responses((status = 201, body = InstallBundle), (status = 403, body = protect::api::ErrorBody)))]
pub async fn install_bundle(
    caller: Caller<Manager>,
    State(state): State<AppState>,
    req: axum::extract::Request,
) -> Result<Response, ApiError> {
    let body = read_bounded(req, 4096).await?;
    let request: InstallBundleRequest = if body.iter().all(u8::is_ascii_whitespace) {
        InstallBundleRequest::default()
    } else {
        parse_json(&body)?
    };
    if let Some(name) = &request.name {
        if name.len() > 128 || name.chars().any(char::is_control) {
            return Err(ApiError::field("name", "at most 128 printable characters"));
        }
    }
    let bundle = mint_credential(&state, request.name, &caller.username).await?;
    Ok((StatusCode::CREATED, axum::Json(bundle)).into_response())
}

/// Stores a new defender credential (its hash) and returns the token, shown this once.
async fn mint_credential(
    state: &AppState,
    name: Option<String>,
    by: &str,
) -> Result<InstallBundle, ApiError> {
    let (token, hash) = new_token(DEFENDER_PREFIX);
    let id = new_id();
    state
        .store()
        .put_token(TokenRecord {
            hash,
            subject: TokenSubject::Defender {
                id: id.clone(),
                name: name.clone(),
            },
            created_at: Utc::now(),
            expires_at: None,
        })
        .await?;
    tracing::info!(credential = %id, by = %by, "defender credential created");
    Ok(InstallBundle { token, id, name })
}

/// Query of the transform.
#[derive(Deserialize, Debug, Default, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase")]
pub struct TransformQuery {
    /// The console address defenders use: `HOST[:PORT]` (https assumed) or a full URL.
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
    pub startup: Option<String>,
    /// CNAF external port (with `appPort`).
    pub cnaf_port: Option<u16>,
    /// The app's port behind CNAF.
    pub app_port: Option<u16>,
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
    query: Result<Query<TransformQuery>, axum::extract::rejection::QueryRejection>,
    req: axum::extract::Request,
) -> Result<Response, ApiError> {
    let Query(q) = query?;
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
    let startup = match q.startup.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(s) => Some(Startup::parse(s).ok_or_else(|| {
            ApiError::field(
                "startup",
                "must be availability (start at once) or security (wait for the policy)",
            )
        })?),
    };
    let cnaf = match (q.cnaf_port, q.app_port) {
        (None, None) => None,
        (Some(external_port), Some(app_port)) => Some(CnafOptions {
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
