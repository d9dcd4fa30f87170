//! Defender credentials: the list (never a token or its hash) and revocation. Credentials are
//! created by `POST /api/v1/defenders/install-bundle` ([`super::defenders::install_bundle`]).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use protect::api::CredentialList;
use serde::Deserialize;

use crate::auth::{Caller, Manager};
use crate::error::ApiError;
use crate::query::{self, PageSize, Params};
use crate::state::AppState;

/// Default page size of the credentials list.
pub const DEFAULT_PAGE: usize = 100;
/// Largest page of the credentials list.
pub const MAX_PAGE: usize = 1000;

/// Page size of the credentials list.
pub type CredentialsPageSize = PageSize<{ DEFAULT_PAGE }, { MAX_PAGE }>;

/// Page of the credentials list.
#[derive(Deserialize, Debug, Default, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CredentialPage {
    /// Page size.
    #[serde(default, deserialize_with = "query::value")]
    #[param(schema_with = CredentialsPageSize::schema)]
    pub limit: Option<CredentialsPageSize>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// Defender credentials in id order, revoked ones included (with `revoked_at`): id, name,
/// scope, who created them and when. Tokens and their hashes are never shown.
#[utoipa::path(get, path = "/api/v1/defenders/credentials", tag = "defenders",
    security(("bearer" = []), ("basic" = [])), params(CredentialPage),
    responses((status = 200, body = CredentialList), (status = 400, body = protect::api::ErrorBody),
              (status = 403, description = "Needs role defender-manager or admin", body = protect::api::ErrorBody)))]
pub async fn list_credentials(
    _c: Caller<Manager>,
    State(state): State<AppState>,
    Params(q): Params<CredentialPage>,
) -> Result<axum::Json<CredentialList>, ApiError> {
    let page = super::Page::new(CredentialsPageSize::get(q.limit), q.cursor.as_deref())?;
    let rows = state
        .store()
        .list_credentials(page.after.clone(), page.limit + 1)
        .await?;
    let (credentials, next_cursor) = page.split(rows, |c| c.id.as_str());
    Ok(axum::Json(CredentialList {
        credentials,
        next_cursor,
    }))
}

/// Revokes a defender credential: its token is refused from then on (at once on the console
/// instance that answers, within `token_cache_ttl` — 10 s, one defender poll — on others).
/// Revoking again changes nothing.
#[utoipa::path(delete, path = "/api/v1/defenders/credentials/{id}", tag = "defenders",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The credential's id (from the install bundle or the list)")),
    responses((status = 204, description = "Revoked"),
              (status = 403, description = "Needs role defender-manager or admin", body = protect::api::ErrorBody),
              (status = 404, description = "No credential with this id", body = protect::api::ErrorBody)))]
pub async fn revoke_credential(
    caller: Caller<Manager>,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let plausible = !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_'));
    if !plausible || !state.store().revoke_credential(&id, Utc::now()).await? {
        return Err(ApiError::NotFound(format!(
            "no defender credential {:?}; see GET /api/v1/defenders/credentials",
            id.chars().take(64).collect::<String>()
        )));
    }
    state.forget_credential(&id);
    tracing::info!(credential = %id, by = %caller.username, "defender credential revoked");
    Ok(StatusCode::NO_CONTENT.into_response())
}
