//! Users: log in (session tokens), log out, and create users.

use axum::extract::State;
use axum::http::header::AUTHORIZATION;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use protect::api::{AuthenticateRequest, NewUser, TokenResponse, UserInfo};

use crate::auth::{
    bearer, client_addr, forget_token, hash_password_blocking, login, new_token, token_hash, Admin,
    Caller, Principal, SESSION_PREFIX,
};
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

/// Exchanges a username and password (JSON body, or Basic auth) for a bearer token. With a
/// session token instead, a new token for the same session: it ends when the old one does.
#[utoipa::path(post, path = "/api/v1/authenticate", tag = "console",
    request_body(content = Option<AuthenticateRequest>, description = "Absent with Basic credentials or a session token", content_type = "application/json"),
    responses((status = 200, body = TokenResponse),
              (status = 400, description = "Malformed body, unknown or duplicate field", body = protect::api::ErrorBody),
              (status = 401, description = "Unknown user or wrong password", body = protect::api::ErrorBody),
              (status = 403, description = "A defender token cannot open a session", body = protect::api::ErrorBody),
              (status = 415, description = "The body is not sent as application/json", body = protect::api::ErrorBody),
              (status = 429, description = "Too many failed logins for the user or address (Retry-After)", body = protect::api::ErrorBody),
              (status = 503, description = "Every password check slot is busy (Retry-After)", body = protect::api::ErrorBody)))]
pub async fn authenticate(
    State(state): State<AppState>,
    headers: HeaderMap,
    req: axum::extract::Request,
) -> Result<Response, ApiError> {
    let client = client_addr(&headers, req.extensions());
    let extensions = req.extensions().clone();
    let body = read_bounded(req, 8192).await?;
    // The body is optional: absent (or `null`), the credentials are in `Authorization`.
    let no_body = body.iter().all(u8::is_ascii_whitespace) || body.trim_ascii() == b"null";
    if no_body && !headers.contains_key(AUTHORIZATION) {
        return Err(ApiError::Unauthorized(
            "no credentials: send {\"username\": ..., \"password\": ...} as JSON, Basic \
             credentials, or a session token to renew",
        ));
    }
    let (username, role, session_end) = if no_body {
        match crate::auth::authenticate(&headers, &extensions, &state).await? {
            Principal::User {
                username,
                role,
                expires_at,
            } => (username, role, expires_at),
            Principal::Defender { .. } => {
                return Err(ApiError::Forbidden(
                    "forbidden: a defender token cannot open a user session".to_string(),
                ))
            }
        }
    } else {
        let creds: AuthenticateRequest = parse_json(&body)?;
        let role = login(&state, client, &creds.username, &creds.password).await?;
        (creds.username, role, None)
    };
    let (token, hash) = new_token(SESSION_PREFIX);
    let now = Utc::now();
    let ttl = chrono::Duration::from_std(state.settings().token_ttl)
        .unwrap_or_else(|_| chrono::Duration::hours(1));
    // A renewed session keeps its absolute end.
    let expires_at = session_end.map_or(now + ttl, |end| end.min(now + ttl));
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
    tracing::info!(user = %username, renewed = session_end.is_some(), "session opened");
    Ok(axum::Json(TokenResponse { token, expires_at }).into_response())
}

/// Ends the session of the bearer token sent: it stops working at once on this console
/// instance, and on other instances once their token cache (`token_cache_ttl`) expires.
#[utoipa::path(post, path = "/api/v1/logout", tag = "console",
    security(("bearer" = [])),
    responses((status = 204, description = "The session token no longer works"),
              (status = 400, description = "No session token was sent (Basic credentials have no session)", body = protect::api::ErrorBody),
              (status = 401, description = "The token is unknown or expired", body = protect::api::ErrorBody),
              (status = 403, description = "A defender token (revoke it as a defender credential)", body = protect::api::ErrorBody)))]
pub async fn logout(
    State(state): State<AppState>,
    headers: HeaderMap,
    req: axum::extract::Request,
) -> Result<Response, ApiError> {
    match crate::auth::authenticate(&headers, req.extensions(), &state).await? {
        Principal::Defender { .. } => Err(ApiError::Forbidden(
            "forbidden: a defender token is not a session; revoke the defender credential \
             instead"
                .to_string(),
        )),
        Principal::User { username, .. } => {
            let Some(token) = bearer(&headers) else {
                return Err(ApiError::BadRequest(
                    "Authorization: logout ends a session token; send `Authorization: Bearer \
                     TOKEN` with the token from POST /api/v1/authenticate"
                        .to_string(),
                ));
            };
            let hash = token_hash(token);
            state.store().expire_token(&hash, Utc::now()).await?;
            forget_token(&state, &hash);
            tracing::info!(user = %username, "session closed");
            Ok(StatusCode::NO_CONTENT.into_response())
        }
    }
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
    if !(MIN_PASSWORD_LEN..=MAX_PASSWORD_LEN).contains(&n) {
        return Err(ApiError::field(
            "password",
            format!("must be {MIN_PASSWORD_LEN} to {MAX_PASSWORD_LEN} characters long"),
        ));
    }
    Ok(())
}

/// Creates a user.
#[utoipa::path(post, path = "/api/v1/users", tag = "console",
    security(("bearer" = [])),
    request_body(content = NewUser, content_type = "application/json"),
    responses((status = 201, body = UserInfo),
              (status = 400, body = protect::api::ErrorBody),
              (status = 401, body = protect::api::ErrorBody),
              (status = 403, description = "The caller is not an admin", body = protect::api::ErrorBody),
              (status = 415, description = "The body is not sent as application/json", body = protect::api::ErrorBody),
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
