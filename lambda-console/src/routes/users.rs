//! Users: log in (session tokens) and create users.

use axum::extract::State;
use axum::http::header::AUTHORIZATION;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use protect::api::{AuthenticateRequest, NewUser, TokenResponse, UserInfo};

use crate::auth::{hash_password_blocking, login, new_token, Admin, Caller, SESSION_PREFIX};
use crate::body::{parse_json, read_bounded};
use crate::error::ApiError;
use crate::state::AppState;
use crate::store::{TokenRecord, TokenSubject, UserRecord};

/// Shortest accepted password.
pub const MIN_PASSWORD_LEN: usize = 12;
const MAX_PASSWORD_LEN: usize = 1024;

/// Liveness.
#[utoipa::path(get, path = "/api/v1/_ping", tag = "console",
    responses((status = 200, description = "The console is up", body = String)))]
pub async fn ping() -> &'static str {
    "OK"
}

/// Exchanges a username and password (JSON body, or Basic auth) for a bearer token.
#[utoipa::path(post, path = "/api/v1/authenticate", tag = "console",
    request_body = AuthenticateRequest,
    responses((status = 200, body = TokenResponse),
              (status = 401, description = "Unknown user or wrong password", body = protect::api::ErrorBody)))]
pub async fn authenticate(
    State(state): State<AppState>,
    headers: HeaderMap,
    req: axum::extract::Request,
) -> Result<Response, ApiError> {
    let body = read_bounded(req, 8192).await?;
    let (username, role) =
        if body.iter().all(u8::is_ascii_whitespace) && headers.contains_key(AUTHORIZATION) {
            match crate::auth::authenticate(&headers, &state).await? {
                crate::auth::Principal::User { username, role } => (username, role),
                crate::auth::Principal::Defender { .. } => {
                    return Err(ApiError::Forbidden(
                        "forbidden: a defender token cannot open a user session".to_string(),
                    ))
                }
            }
        } else {
            let creds: AuthenticateRequest = parse_json(&body)?;
            let role = login(&state, &creds.username, &creds.password).await?;
            (creds.username, role)
        };
    let (token, hash) = new_token(SESSION_PREFIX);
    let now = Utc::now();
    let ttl = chrono::Duration::from_std(state.settings().token_ttl)
        .unwrap_or_else(|_| chrono::Duration::hours(1));
    let expires_at = now + ttl;
    state
        .store()
        .put_token(TokenRecord {
            hash,
            subject: TokenSubject::User {
                username: username.clone(),
                role,
            },
            created_at: now,
            expires_at: Some(expires_at),
        })
        .await?;
    tracing::info!(user = %username, "session opened");
    Ok(axum::Json(TokenResponse { token, expires_at }).into_response())
}

/// Checks a username: 1-64 of `A-Z a-z 0-9 . _ @ -`.
pub fn check_username(name: &str) -> Result<(), ApiError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '@' | '-'));
    if ok {
        Ok(())
    } else {
        Err(ApiError::field(
            "username",
            "must be 1-64 characters of A-Z a-z 0-9 . _ @ -",
        ))
    }
}

/// Checks a password's length.
pub fn check_password(password: &str) -> Result<(), ApiError> {
    let n = password.chars().count();
    if n < MIN_PASSWORD_LEN || password.len() > MAX_PASSWORD_LEN {
        return Err(ApiError::field(
            "password",
            format!("must be {MIN_PASSWORD_LEN} to {MAX_PASSWORD_LEN} characters long"),
        ));
    }
    Ok(())
}

/// Creates a user.
#[utoipa::path(post, path = "/api/v1/users", tag = "console",
    security(("bearer" = []), ("basic" = [])), request_body = NewUser,
    responses((status = 201, body = UserInfo),
              (status = 400, body = protect::api::ErrorBody),
              (status = 409, description = "The username is taken", body = protect::api::ErrorBody)))]
pub async fn create_user(
    caller: Caller<Admin>,
    State(state): State<AppState>,
    req: axum::extract::Request,
) -> Result<Response, ApiError> {
    let body = read_bounded(req, 8192).await?;
    let user: NewUser = parse_json(&body)?;
    check_username(&user.username)?;
    check_password(&user.password)?;
    let hash = hash_password_blocking(state.settings().argon2.clone(), user.password).await?;
    let created = state
        .store()
        .create_user(UserRecord {
            username: user.username.clone(),
            password_hash: hash,
            role: user.role,
        })
        .await?;
    if !created {
        return Err(ApiError::Conflict(format!(
            "username: {:?} exists already; choose another name",
            user.username
        )));
    }
    tracing::info!(user = %user.username, role = user.role.as_str(), by = %caller.username, "user created");
    Ok((
        StatusCode::CREATED,
        axum::Json(UserInfo {
            username: user.username,
            role: user.role,
        }),
    )
        .into_response())
}
