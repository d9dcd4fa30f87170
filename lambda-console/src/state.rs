//! [`AppState`]: the store, the settings and small in-memory caches that keep the defender hot
//! paths (token check, policy 304) off the store.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::guard::LoginGuard;
use crate::store::{Store, TokenRecord, UserRecord};

/// How the console behaves; [`Settings::from_env`] reads the `CONSOLE_*` variables.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Lifetime of a session token from `POST /api/v1/authenticate`.
    pub token_ttl: Duration,
    /// How long audits are kept.
    pub audit_retention: chrono::Duration,
    /// Defender image the transform uses when the request names none (default: the tag
    /// `cargo xtask package --image` builds for this version).
    pub defender_image: String,
    /// Argon2 cost for new password hashes.
    pub argon2: argon2::Params,
    /// How long a policy read from the store is served from memory (other instances' writes
    /// become visible after this; this instance's writes at once).
    pub policy_cache_ttl: Duration,
    /// How long a token read from the store is trusted from memory. A credential revoked on
    /// another console instance keeps working there at most this long (on this instance it
    /// stops at once), so keep it at most one defender poll interval (10 s by default).
    pub token_cache_ttl: Duration,
    /// Policy fetches update a defender's last contact at most this often.
    pub contact_interval: Duration,
    /// How far in the future an audit's time may be.
    pub max_clock_skew: chrono::Duration,
    /// Most stored audits one audit query examines; a filtered page that has not filled by then
    /// comes back short with a `next_cursor` (bounds the work of one request).
    pub audit_scan_limit: usize,
    /// A defender last heard from at most this long ago is `connected` (its default poll is
    /// every 10 s; policy fetches are recorded at most every `contact_interval`).
    pub defender_connected_within: chrono::Duration,
    /// ... and `stale` up to this long ago; `disconnected` beyond.
    pub defender_stale_within: chrono::Duration,
    /// Where the transform keeps credentials it creates (`CONSOLE_TRANSFORM_SECRETS`); `None`:
    /// Secrets Manager on Lambda, plain `environment` locally.
    pub transform_secrets: Option<TransformSecrets>,
    /// Execution role the transform gives a task that has none, when it keeps the credential
    /// in Secrets Manager (`CONSOLE_DEFENDER_EXECUTION_ROLE_ARN`).
    pub defender_execution_role: Option<String>,
    /// Most new defender identities (task, container, image, instance) one credential may add
    /// per UTC day; beyond, their requests are refused with 429 until the next day.
    pub new_defenders_per_credential: u64,
    /// Failed logins (or attempts in flight) one username may have per `login_window` before
    /// further attempts get 429 without any password check.
    pub login_failures_per_user: u32,
    /// The same, per source address.
    pub login_failures_per_address: u32,
    /// The window those counts cover.
    pub login_window: Duration,
    /// Most Argon2 verifications running at once (each holds `argon2.m_cost` KiB).
    pub password_checks: usize,
    /// How long a login waits for a verification slot before 503.
    pub password_check_wait: Duration,
    /// How long a successful password check is remembered (Basic auth on every request pays
    /// Argon2 once per this period).
    pub login_cache_ttl: Duration,
    /// Local server: time to receive a request's headers, and most idle time between requests
    /// on a kept-alive connection.
    pub header_timeout: Duration,
    /// Local server: time to receive a request's body.
    pub body_timeout: Duration,
    /// Local server: most open connections (also kept below the open-file limit).
    pub max_connections: usize,
}

/// Where the transform keeps a credential it creates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TransformSecrets {
    /// In the task family's Secrets Manager secret, referenced by ARN.
    SecretsManager,
    /// In the protected task's plain `environment`, with a warning.
    Plain,
}

/// Why the settings could not be read.
#[derive(Debug, thiserror::Error)]
#[error("{var}: {message}")]
pub struct SettingsError {
    pub var: &'static str,
    pub message: String,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            token_ttl: Duration::from_secs(3600),
            audit_retention: chrono::Duration::days(30),
            defender_image: protect::embed::default_defender_image(),
            argon2: argon2::Params::default(),
            policy_cache_ttl: Duration::from_secs(1),
            token_cache_ttl: Duration::from_secs(10),
            contact_interval: Duration::from_secs(5),
            max_clock_skew: chrono::Duration::minutes(10),
            audit_scan_limit: 10_000,
            defender_connected_within: chrono::Duration::seconds(60),
            defender_stale_within: chrono::Duration::minutes(10),
            transform_secrets: None,
            defender_execution_role: None,
            new_defenders_per_credential: 1000,
            login_failures_per_user: 5,
            login_failures_per_address: 20,
            login_window: Duration::from_secs(60),
            password_checks: std::thread::available_parallelism().map_or(2, |n| n.get().max(2)),
            password_check_wait: Duration::from_secs(3),
            login_cache_ttl: Duration::from_secs(30),
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(30),
            max_connections: 1024,
        }
    }
}

fn env_u64(var: &'static str, min: u64, max: u64) -> Result<Option<u64>, SettingsError> {
    let Ok(text) = std::env::var(var) else {
        return Ok(None);
    };
    match text.trim().parse::<u64>() {
        Ok(v) if (min..=max).contains(&v) => Ok(Some(v)),
        _ => Err(SettingsError {
            var,
            message: format!("{text:?} is not a whole number between {min} and {max}"),
        }),
    }
}

impl Settings {
    /// Defaults, overridden by `CONSOLE_TOKEN_TTL_SECONDS` (60..=86400),
    /// `CONSOLE_AUDIT_RETENTION_DAYS` (1..=3650), `CONSOLE_DEFENDER_IMAGE`,
    /// `CONSOLE_DEFENDER_CONNECTED_SECONDS` (1..=86400), `CONSOLE_DEFENDER_STALE_SECONDS`
    /// (1..=2592000, at least the connected threshold),
    /// `CONSOLE_NEW_DEFENDERS_PER_CREDENTIAL` (1..=1000000), and the limits
    /// `CONSOLE_LOGIN_FAILURES_PER_USER` (1..=1000), `CONSOLE_LOGIN_FAILURES_PER_ADDRESS`
    /// (1..=100000), `CONSOLE_LOGIN_WINDOW_SECONDS` (1..=86400), `CONSOLE_PASSWORD_CHECKS`
    /// (1..=256), `CONSOLE_HEADER_TIMEOUT_SECONDS` (1..=3600), `CONSOLE_BODY_TIMEOUT_SECONDS`
    /// (1..=3600) and `CONSOLE_MAX_CONNECTIONS` (16..=1000000).
    pub fn from_env() -> Result<Settings, SettingsError> {
        let mut s = Settings::default();
        let secs = Duration::from_secs;
        let count = |v: u64| u32::try_from(v).unwrap_or(u32::MAX);
        let size = |v: u64| usize::try_from(v).unwrap_or(usize::MAX);
        if let Some(v) = env_u64("CONSOLE_LOGIN_FAILURES_PER_USER", 1, 1000)? {
            s.login_failures_per_user = count(v);
        }
        if let Some(v) = env_u64("CONSOLE_LOGIN_FAILURES_PER_ADDRESS", 1, 100_000)? {
            s.login_failures_per_address = count(v);
        }
        if let Some(v) = env_u64("CONSOLE_LOGIN_WINDOW_SECONDS", 1, 86_400)? {
            s.login_window = secs(v);
        }
        if let Some(v) = env_u64("CONSOLE_PASSWORD_CHECKS", 1, 256)? {
            s.password_checks = size(v);
        }
        if let Some(v) = env_u64("CONSOLE_HEADER_TIMEOUT_SECONDS", 1, 3600)? {
            s.header_timeout = secs(v);
        }
        if let Some(v) = env_u64("CONSOLE_BODY_TIMEOUT_SECONDS", 1, 3600)? {
            s.body_timeout = secs(v);
        }
        if let Some(v) = env_u64("CONSOLE_MAX_CONNECTIONS", 16, 1_000_000)? {
            s.max_connections = size(v);
        }
        if let Some(v) = env_u64("CONSOLE_DEFENDER_CONNECTED_SECONDS", 1, 86_400)? {
            s.defender_connected_within = chrono::Duration::seconds(i64::try_from(v).unwrap_or(1));
        }
        if let Some(v) = env_u64("CONSOLE_DEFENDER_STALE_SECONDS", 1, 2_592_000)? {
            s.defender_stale_within = chrono::Duration::seconds(i64::try_from(v).unwrap_or(1));
        }
        if s.defender_stale_within < s.defender_connected_within {
            return Err(SettingsError {
                var: "CONSOLE_DEFENDER_STALE_SECONDS",
                message: format!(
                    "{} is below the connected threshold ({} s, CONSOLE_DEFENDER_CONNECTED_SECONDS); \
                     set it at least as high",
                    s.defender_stale_within.num_seconds(),
                    s.defender_connected_within.num_seconds()
                ),
            });
        }
        if let Some(v) = env_u64("CONSOLE_NEW_DEFENDERS_PER_CREDENTIAL", 1, 1_000_000)? {
            s.new_defenders_per_credential = v;
        }
        if let Some(v) = env_u64("CONSOLE_TOKEN_TTL_SECONDS", 60, 86_400)? {
            s.token_ttl = Duration::from_secs(v);
        }
        if let Some(v) = env_u64("CONSOLE_AUDIT_RETENTION_DAYS", 1, 3650)? {
            s.audit_retention = chrono::Duration::days(i64::try_from(v).unwrap_or(3650));
        }
        if let Ok(v) = std::env::var("CONSOLE_TRANSFORM_SECRETS") {
            s.transform_secrets = match v.trim() {
                "" => None,
                "secretsmanager" => Some(TransformSecrets::SecretsManager),
                "plain" => Some(TransformSecrets::Plain),
                other => {
                    return Err(SettingsError {
                        var: "CONSOLE_TRANSFORM_SECRETS",
                        message: format!("{other:?}: expected secretsmanager or plain"),
                    })
                }
            };
        }
        if let Ok(role) = std::env::var("CONSOLE_DEFENDER_EXECUTION_ROLE_ARN") {
            let role = role.trim();
            if !role.is_empty() {
                if !(role.starts_with("arn:") && role.contains(":role/")) {
                    return Err(SettingsError {
                        var: "CONSOLE_DEFENDER_EXECUTION_ROLE_ARN",
                        message: format!(
                            "{role:?} is not an IAM role ARN (arn:aws:iam::ACCOUNT:role/NAME)"
                        ),
                    });
                }
                s.defender_execution_role = Some(role.to_string());
            }
        }
        if let Ok(image) = std::env::var("CONSOLE_DEFENDER_IMAGE") {
            if !image.trim().is_empty() {
                s.defender_image = image.trim().to_string();
            }
        }
        Ok(s)
    }
}

/// Shared state of the console. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) settings: Settings,
    pub(crate) tokens: Mutex<HashMap<String, (Instant, TokenRecord)>>,
    pub(crate) policy: Mutex<Option<(Instant, Arc<crate::routes::policies::Snapshot>)>>,
    pub(crate) contacts: Mutex<HashMap<String, Instant>>,
    pub(crate) vault: Option<crate::vault::SecretsVault>,
    /// Users as last read, for the current role of a session token's user (`None`: no such
    /// user); trusted for `token_cache_ttl`.
    pub(crate) users: Mutex<HashMap<String, (Instant, Option<UserRecord>)>>,
    pub(crate) guard: LoginGuard,
}

/// Most entries the in-memory token and contact caches hold before they are cleared.
pub(crate) const CACHE_CAP: usize = 10_000;

impl AppState {
    pub fn new(store: Arc<dyn Store>, settings: Settings) -> AppState {
        AppState::with_vault(store, settings, None)
    }

    /// A console whose transform keeps the credentials it creates in `vault`.
    pub fn with_vault(
        store: Arc<dyn Store>,
        settings: Settings,
        vault: Option<crate::vault::SecretsVault>,
    ) -> AppState {
        AppState {
            inner: Arc::new(Inner {
                store,
                guard: LoginGuard::new(settings.password_checks),
                users: Mutex::new(HashMap::new()),
                settings,
                tokens: Mutex::new(HashMap::new()),
                policy: Mutex::new(None),
                contacts: Mutex::new(HashMap::new()),
                vault,
            }),
        }
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.inner.store
    }

    pub fn settings(&self) -> &Settings {
        &self.inner.settings
    }

    /// Where the transform keeps credentials, when not in plain `environment`.
    pub fn vault(&self) -> Option<&crate::vault::SecretsVault> {
        self.inner.vault.as_ref()
    }

    /// Drops a revoked credential's tokens from this instance's token cache, so it stops working
    /// here at once (other instances drop it within `token_cache_ttl`).
    pub(crate) fn forget_credential(&self, id: &str) {
        if let Ok(mut m) = self.inner.tokens.lock() {
            m.retain(|_, (_, rec)| {
                !matches!(&rec.subject, crate::store::TokenSubject::Defender(d) if d.id == id)
            });
        }
    }
}
