//! Authentication and roles.
//!
//! - Passwords: Argon2id PHC strings ([`hash_password`], [`verify_password`]).
//! - Tokens: 32 random bytes, base64url, with a prefix (`cst_` session, `cdt_` defender); the
//!   store keeps only their SHA-256 ([`token_hash`]).
//! - Extractors: [`Caller<R>`] admits a user whose role is at least `R` (Bearer session token
//!   or Basic credentials); [`DefenderCaller`] admits only a defender token. Every route but
//!   `_ping` and `authenticate` takes one of them, so the role check cannot be forgotten.

use std::marker::PhantomData;
use std::time::Instant;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Version};
use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use axum::http::HeaderMap;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use chrono::Utc;
use protect::api::{CredentialScope, Role};
use rand_core::{OsRng, RngCore};
use sha2::{Digest, Sha256};

use crate::error::ApiError;
use crate::state::{AppState, CACHE_CAP};
use crate::store::{TokenRecord, TokenSubject};

/// Prefix of session tokens.
pub const SESSION_PREFIX: &str = "cst_";
/// Prefix of defender tokens.
pub const DEFENDER_PREFIX: &str = "cdt_";

const NEED_AUTH: &str = "authentication required: send `Authorization: Bearer TOKEN` (from POST \
                         /api/v1/authenticate) or Basic credentials";
const BAD_TOKEN: &str = "the bearer token is unknown or expired: get a new one from POST \
                         /api/v1/authenticate";
const REVOKED: &str = "this defender credential was revoked: give the defender a new one (POST \
                       /api/v1/defenders/install-bundle)";
const BAD_LOGIN: &str = "authentication failed: unknown user or wrong password";

/// Hashes a password with Argon2id and a random salt.
pub fn hash_password(params: &argon2::Params, password: &str) -> Result<String, ApiError> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone())
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| ApiError::Internal(format!("argon2 hash: {e}")))
}

/// Checks a password against a PHC string (its own parameters are used).
pub fn verify_password(phc: &str, password: &str) -> bool {
    PasswordHash::new(phc)
        .map(|h| {
            Argon2::default()
                .verify_password(password.as_bytes(), &h)
                .is_ok()
        })
        .unwrap_or(false)
}

/// Runs Argon2 off the async threads.
pub async fn hash_password_blocking(
    params: argon2::Params,
    password: String,
) -> Result<String, ApiError> {
    tokio::task::spawn_blocking(move || hash_password(&params, &password))
        .await
        .map_err(|e| ApiError::Internal(format!("hash task: {e}")))?
}

async fn verify_blocking(phc: String, password: String) -> bool {
    tokio::task::spawn_blocking(move || verify_password(&phc, &password))
        .await
        .unwrap_or(false)
}

/// A new random token with `prefix`, and its hash.
pub fn new_token(prefix: &str) -> (String, String) {
    let mut bytes = [0u8; 32];
    OsRng.fill_bytes(&mut bytes);
    let token = format!("{prefix}{}", URL_SAFE_NO_PAD.encode(bytes));
    let hash = token_hash(&token);
    (token, hash)
}

/// Lowercase hex SHA-256 of a token (tokens are 256 random bits, so a plain hash suffices).
pub fn token_hash(token: &str) -> String {
    sha256_hex(token.as_bytes())
}

/// Lowercase hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A short random id (not secret).
pub fn new_id() -> String {
    let mut bytes = [0u8; 9];
    OsRng.fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Who is calling.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Principal {
    User { username: String, role: Role },
    Defender { id: String, scope: CredentialScope },
}

/// Checks `username`/`password` against the store.
pub async fn login(state: &AppState, username: &str, password: &str) -> Result<Role, ApiError> {
    let user = state.store().get_user(username).await?;
    let Some(user) = user else {
        return Err(ApiError::Unauthorized(BAD_LOGIN));
    };
    if verify_blocking(user.password_hash, password.to_string()).await {
        Ok(user.role)
    } else {
        Err(ApiError::Unauthorized(BAD_LOGIN))
    }
}

async fn lookup_token(state: &AppState, token: &str) -> Result<Principal, ApiError> {
    let hash = token_hash(token);
    let ttl = state.settings().token_cache_ttl;
    let cached = state
        .inner
        .tokens
        .lock()
        .ok()
        .and_then(|m| m.get(&hash).cloned())
        .filter(|(at, _)| at.elapsed() < ttl)
        .map(|(_, rec)| rec);
    let record: TokenRecord = match cached {
        Some(r) => r,
        None => {
            let Some(r) = state.store().get_token(&hash).await? else {
                return Err(ApiError::Unauthorized(BAD_TOKEN));
            };
            if let Ok(mut m) = state.inner.tokens.lock() {
                if m.len() >= CACHE_CAP {
                    m.clear();
                }
                m.insert(hash, (Instant::now(), r.clone()));
            }
            r
        }
    };
    if record.expires_at.is_some_and(|e| e <= Utc::now()) {
        return Err(ApiError::Unauthorized(BAD_TOKEN));
    }
    Ok(match record.subject {
        TokenSubject::User { username, role } => Principal::User { username, role },
        TokenSubject::Defender(d) if d.revoked_at.is_some() => {
            return Err(ApiError::Unauthorized(REVOKED))
        }
        TokenSubject::Defender(d) => Principal::Defender {
            id: d.id,
            scope: d.scope,
        },
    })
}

/// Reads the `Authorization` header: Bearer token or Basic credentials.
pub async fn authenticate(headers: &HeaderMap, state: &AppState) -> Result<Principal, ApiError> {
    let Some(value) = headers.get(AUTHORIZATION) else {
        return Err(ApiError::Unauthorized(NEED_AUTH));
    };
    let value = value
        .to_str()
        .map_err(|_| ApiError::Unauthorized(NEED_AUTH))?;
    let (scheme, rest) = value.split_once(' ').unwrap_or((value, ""));
    let rest = rest.trim();
    if scheme.eq_ignore_ascii_case("bearer") && !rest.is_empty() {
        lookup_token(state, rest).await
    } else if scheme.eq_ignore_ascii_case("basic") {
        let decoded = STANDARD
            .decode(rest)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .ok_or(ApiError::Unauthorized(
                "Basic credentials are not base64 of `user:password`",
            ))?;
        let (user, pass) = decoded.split_once(':').ok_or(ApiError::Unauthorized(
            "Basic credentials are not base64 of `user:password`",
        ))?;
        let role = login(state, user, pass).await?;
        Ok(Principal::User {
            username: user.to_string(),
            role,
        })
    } else {
        Err(ApiError::Unauthorized(NEED_AUTH))
    }
}

/// The least role a route needs.
pub trait MinRole: Send + Sync + 'static {
    const ROLE: Role;
}

/// Admin only.
pub struct Admin;
/// Admin or defender-manager.
pub struct Manager;
/// Any user.
pub struct Auditor;

impl MinRole for Admin {
    const ROLE: Role = Role::Admin;
}
impl MinRole for Manager {
    const ROLE: Role = Role::DefenderManager;
}
impl MinRole for Auditor {
    const ROLE: Role = Role::Auditor;
}

/// A user with at least role `R`.
pub struct Caller<R: MinRole> {
    pub username: String,
    pub role: Role,
    _min: PhantomData<R>,
}

impl<R: MinRole> FromRequestParts<AppState> for Caller<R> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        match authenticate(&parts.headers, state).await? {
            Principal::User { username, role } if role >= R::ROLE => Ok(Caller {
                username,
                role,
                _min: PhantomData,
            }),
            Principal::User { username, role } => Err(ApiError::Forbidden(format!(
                "forbidden: this route needs role {} or higher; user {username:?} has role {}",
                R::ROLE.as_str(),
                role.as_str()
            ))),
            Principal::Defender { .. } => Err(ApiError::Forbidden(
                "forbidden: a defender token is accepted only on /api/v1/defender/ routes; \
                 log in as a user"
                    .to_string(),
            )),
        }
    }
}

/// A defender token's holder, with what its credential may speak for.
pub struct DefenderCaller {
    pub credential_id: String,
    pub scope: CredentialScope,
}

impl FromRequestParts<AppState> for DefenderCaller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        match authenticate(&parts.headers, state).await? {
            Principal::Defender { id, scope } => Ok(DefenderCaller {
                credential_id: id,
                scope,
            }),
            Principal::User { .. } => Err(ApiError::Forbidden(
                "forbidden: this route takes a defender token (from POST \
                 /api/v1/defenders/install-bundle), not a user's credentials"
                    .to_string(),
            )),
        }
    }
}
