//! Authentication and roles.
//!
//! - Passwords: Argon2id PHC strings ([`hash_password`], [`verify_password`]).
//! - Tokens: 32 random bytes, base64url, with a prefix (`cst_` session, `cdt_` defender); the
//!   store keeps only their SHA-256 ([`token_hash`]).
//! - Extractors: [`Caller<R>`] admits a user whose role is at least `R` (Bearer session token,
//!   or Basic credentials on the pipeline routes [`BASIC_ROUTES`]); [`DefenderCaller`] admits
//!   only a defender token. Every route but
//!   `_ping` and `authenticate` takes one of them, so the role check cannot be forgotten.
//! - Sessions act with the user's current role (read at most `token_cache_ttl` ago): a role
//!   change or a deleted user applies to tokens already issued.
//! - [`login`] goes through [`crate::guard`]: throttled per user and source address
//!   ([`client_addr`]), bounded Argon2 concurrency, a dummy hash for unknown users.

use std::marker::PhantomData;
use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use argon2::password_hash::{PasswordHash, PasswordHasher, SaltString};
use argon2::{Algorithm, Argon2, Version};
use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use axum::http::{Extensions, HeaderMap};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use chrono::{DateTime, Utc};
use lambda_http::request::RequestContext;
use lambda_http::RequestExt;
use protect::api::{CredentialScope, Role};
use rand_core::{OsRng, RngCore};
use sha2::{Digest, Sha256};

use crate::error::ApiError;
use crate::guard::Attempt;
use crate::state::{AppState, CACHE_CAP};
use crate::store::{TokenRecord, TokenSubject, UserRecord};

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
    verify_password_in(phc, password, &mut Vec::new())
}

/// [`verify_password`] with the Argon2 memory in `blocks`, resized to the hash's cost and left
/// to the caller: a verifier that keeps its buffer does not go through the allocator each time
/// (glibc keeps freed 19 MiB blocks resident once its mmap threshold has adapted to them, so
/// per-check allocations grew the server by ~10 MiB per check).
pub fn verify_password_in(phc: &str, password: &str, blocks: &mut Vec<argon2::Block>) -> bool {
    let Ok(hash) = PasswordHash::new(phc) else {
        return false;
    };
    let (Some(salt), Some(expected)) = (hash.salt, hash.hash) else {
        return false;
    };
    let Ok(algorithm) = Algorithm::try_from(hash.algorithm) else {
        return false;
    };
    let version = match hash.version.map(Version::try_from).transpose() {
        Ok(v) => v.unwrap_or_default(),
        Err(_) => return false,
    };
    let Ok(params) = argon2::Params::try_from(&hash) else {
        return false;
    };
    let mut salt_buf = [0u8; 64];
    let Ok(salt) = salt.decode_b64(&mut salt_buf) else {
        return false;
    };
    blocks.resize(params.block_count(), argon2::Block::default());
    let mut out = vec![0u8; expected.len()];
    Argon2::new(algorithm, version, params)
        .hash_password_into_with_memory(password.as_bytes(), salt, &mut out, &mut blocks[..])
        .is_ok()
        // Output's equality is constant-time.
        && argon2::password_hash::Output::new(&out).is_ok_and(|o| o == expected)
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

/// Verifies on the blocking pool in `slot`, which is released (its buffer kept) when the check
/// ends, even if the request was dropped meanwhile: the bound on concurrent checks holds.
async fn verify_blocking(slot: crate::guard::Slot, phc: String, password: String) -> bool {
    tokio::task::spawn_blocking(move || {
        let mut slot = slot;
        verify_password_in(&phc, &password, slot.blocks())
    })
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
    /// A user, with their current role. `expires_at`: the session's end when they came with a
    /// session token (a renewed token keeps it), `None` for Basic credentials.
    User {
        username: String,
        role: Role,
        expires_at: Option<DateTime<Utc>>,
    },
    Defender {
        id: String,
        scope: CredentialScope,
    },
}

/// The caller's address: the peer of the local server's connection (axum `ConnectInfo`), or on
/// Lambda the source IP of the request context (API Gateway, Function URL; behind an ALB the
/// address the ALB appended to `X-Forwarded-For`). `None` when unknown (e.g. in-process tests).
pub fn client_addr(headers: &HeaderMap, extensions: &Extensions) -> Option<IpAddr> {
    if let Some(ConnectInfo(peer)) = extensions.get::<ConnectInfo<SocketAddr>>() {
        return Some(peer.ip());
    }
    let source = match extensions.request_context_ref()? {
        RequestContext::ApiGatewayV2(c) => c.http.source_ip.clone(),
        RequestContext::ApiGatewayV1(c) => c.identity.source_ip.clone(),
        RequestContext::WebSocket(c) => c.identity.source_ip.clone(),
        RequestContext::Alb(_) => headers
            .get("x-forwarded-for")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.rsplit(',').next())
            .map(|v| v.trim().to_string()),
        #[allow(unreachable_patterns)]
        _ => None,
    };
    source.and_then(|s| s.parse().ok())
}

/// The user `username` as stored, read at most `token_cache_ttl` ago.
pub async fn current_user(
    state: &AppState,
    username: &str,
) -> Result<Option<UserRecord>, ApiError> {
    let ttl = state.settings().token_cache_ttl;
    let cached = state
        .inner
        .users
        .lock()
        .ok()
        .and_then(|m| m.get(username).cloned())
        .filter(|(at, _)| at.elapsed() < ttl);
    if let Some((_, user)) = cached {
        return Ok(user);
    }
    let user = state.store().get_user(username).await?;
    if let Ok(mut m) = state.inner.users.lock() {
        if m.len() >= CACHE_CAP {
            m.clear();
        }
        m.insert(username.to_string(), (Instant::now(), user.clone()));
    }
    Ok(user)
}

/// Checks `username`/`password` from `client` against the store, through the login guard:
/// a recently verified pair is accepted at once; otherwise throttled (429), bounded (503) and
/// verified with Argon2, against a dummy hash when the user does not exist.
pub async fn login(
    state: &AppState,
    client: Option<IpAddr>,
    username: &str,
    password: &str,
) -> Result<Role, ApiError> {
    let settings = state.settings();
    let guard = &state.inner.guard;
    let key = guard.credential_key(username, password);
    if let Some(phc) = guard.remembered(&key, settings.login_cache_ttl) {
        if let Some(user) = current_user(state, username).await? {
            if user.password_hash == phc {
                return Ok(user.role);
            }
        }
    }
    let attempt = Attempt::new(settings, username, client);
    guard.begin(&attempt, settings.login_window)?;
    let user = state.store().get_user(username).await?;
    let slot = guard.slot(settings.password_check_wait).await?;
    let phc = match &user {
        Some(u) => u.password_hash.clone(),
        None => guard.dummy_hash(&settings.argon2).await?,
    };
    let matched = verify_blocking(slot, phc.clone(), password.to_string()).await;
    match user {
        Some(user) if matched => {
            guard.succeeded(&attempt);
            guard.remember(key, phc, settings.login_cache_ttl);
            Ok(user.role)
        }
        _ => {
            tracing::info!(user = %username, client = ?client, "login failed");
            Err(ApiError::Unauthorized(BAD_LOGIN))
        }
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
        TokenSubject::User { username, .. } => {
            let Some(user) = current_user(state, &username).await? else {
                return Err(ApiError::Unauthorized(BAD_TOKEN));
            };
            Principal::User {
                username,
                role: user.role,
                expires_at: record.expires_at,
            }
        }
        TokenSubject::Defender(d) if d.revoked_at.is_some() => {
            return Err(ApiError::Unauthorized(REVOKED))
        }
        TokenSubject::Defender(d) => Principal::Defender {
            id: d.id,
            scope: d.scope,
        },
    })
}

/// The token of an `Authorization: Bearer TOKEN` header.
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, rest) = value.split_once(' ')?;
    let rest = rest.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !rest.is_empty()).then_some(rest)
}

/// Forgets this instance's cached copy of a token (after it was ended in the store).
pub fn forget_token(state: &AppState, hash: &str) {
    if let Ok(mut m) = state.inner.tokens.lock() {
        m.remove(hash);
    }
}

/// Reads the `Authorization` header: Bearer token or Basic credentials (`extensions` give the
/// caller's address for the login throttle).
pub async fn authenticate(
    headers: &HeaderMap,
    extensions: &Extensions,
    state: &AppState,
) -> Result<Principal, ApiError> {
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
        let role = login(state, client_addr(headers, extensions), user, pass).await?;
        Ok(Principal::User {
            username: user.to_string(),
            role,
            expires_at: None,
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

/// The routes that accept Basic credentials: what pipelines and `deploy-protected` call (the
/// transform, credentials for a deployment, the defaults and policies as code). Every other
/// route needs a session token from `POST /api/v1/authenticate`, so a password is not sent on
/// every request of an interactive session or a script.
pub const BASIC_ROUTES: &[(&str, &str)] = &[
    ("POST", "/api/v1/defenders/fargate.json"),
    ("POST", "/api/v1/defenders/install-bundle"),
    ("GET", "/api/v1/defenders/defaults"),
    ("GET", "/api/v1/defenders/credentials"),
    ("GET", "/api/v1/policies/runtime/app-embedded"),
    ("PUT", "/api/v1/policies/runtime/app-embedded"),
    ("GET", "/api/v1/policies/firewall/app/app-embedded"),
    ("PUT", "/api/v1/policies/firewall/app/app-embedded"),
    ("GET", "/api/v1/openapi.json"),
];

fn basic_allowed(parts: &Parts) -> bool {
    let path = parts.uri.path().trim_end_matches('/');
    BASIC_ROUTES
        .iter()
        .any(|(m, p)| parts.method.as_str() == *m && path == *p)
}

const BASIC_NOT_HERE: &str = "Basic credentials are accepted only on the pipeline routes (the \
     transform, install-bundle, defaults, credentials list, policies, openapi.json); log in with \
     POST /api/v1/authenticate and send `Authorization: Bearer TOKEN`";

impl<R: MinRole> FromRequestParts<AppState> for Caller<R> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let principal = authenticate(&parts.headers, &parts.extensions, state).await?;
        // Basic credentials (a user without a session end) only where pipelines need them.
        if matches!(
            principal,
            Principal::User {
                expires_at: None,
                ..
            }
        ) && !basic_allowed(parts)
        {
            return Err(ApiError::Unauthorized(BASIC_NOT_HERE));
        }
        match principal {
            Principal::User { username, role, .. } if role >= R::ROLE => Ok(Caller {
                username,
                role,
                _min: PhantomData,
            }),
            Principal::User { .. } => Err(ApiError::Forbidden(format!(
                "forbidden: this route needs role {} or higher",
                R::ROLE.as_str()
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
        match authenticate(&parts.headers, &parts.extensions, state).await? {
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
