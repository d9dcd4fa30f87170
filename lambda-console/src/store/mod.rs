//! Storage: one [`Store`] trait, two implementations.
//!
//! - [`sqlite::SqliteStore`]: the embedded store of the local server (one file in the data
//!   directory, WAL mode).
//! - [`dynamo::DynamoStore`]: one DynamoDB table (single-table design, `pk`/`sk`, TTL on `expires_at`)
//!   for the console on Lambda.
//!
//! Both are checked by the same suite, [`conformance`].

pub mod conformance;
pub mod dynamo;
pub mod sqlite;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use protect::api::{DefenderIdentity, DefenderInfo, Role};

/// Why a storage operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("dynamodb {operation}: {detail}")]
    Dynamo {
        operation: &'static str,
        detail: String,
    },
    #[error("stored item is malformed: {0}")]
    Corrupt(String),
    #[error("storage task failed: {0}")]
    Task(String),
}

/// Which policy document.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PolicyKind {
    Runtime,
    Firewall,
}

impl PolicyKind {
    pub fn as_str(self) -> &'static str {
        match self {
            PolicyKind::Runtime => "runtime",
            PolicyKind::Firewall => "firewall",
        }
    }
}

/// A stored policy document: its JSON text (with `revision` set) and revision.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredPolicy {
    pub revision: u64,
    pub body: String,
    pub updated_at: DateTime<Utc>,
}

/// A console user.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserRecord {
    pub username: String,
    /// Argon2 PHC string.
    pub password_hash: String,
    pub role: Role,
}

/// Whom a token stands for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TokenSubject {
    /// A user's session token from `POST /api/v1/authenticate`.
    User { username: String, role: Role },
    /// A defender credential from `POST /api/v1/defenders/install-bundle`.
    Defender { id: String, name: Option<String> },
}

/// A token, kept only as the SHA-256 of its text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenRecord {
    /// Lowercase hex SHA-256 of the token.
    pub hash: String,
    pub subject: TokenSubject,
    pub created_at: DateTime<Utc>,
    /// `None`: does not expire.
    pub expires_at: Option<DateTime<Utc>>,
}

/// Runtime (process, DNS, network, listen) or firewall (CNAF) audits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AuditCategory {
    Runtime,
    Firewall,
}

impl AuditCategory {
    pub fn as_str(self) -> &'static str {
        match self {
            AuditCategory::Runtime => "runtime",
            AuditCategory::Firewall => "firewall",
        }
    }

    pub fn parse(s: &str) -> Option<AuditCategory> {
        match s {
            "runtime" => Some(AuditCategory::Runtime),
            "firewall" => Some(AuditCategory::Firewall),
            _ => None,
        }
    }
}

/// One stored audit record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredAudit {
    pub category: AuditCategory,
    /// Sort key, unique and ordered by time: [`audit_sort_key`].
    pub sk: String,
    pub time_ms: i64,
    pub task: String,
    pub container: String,
    pub kind: String,
    /// The record's JSON.
    pub body: String,
}

/// The sort key of record `index` of batch `batch_id` at `time_ms`: zero-padded time first, so
/// keys order by time; the batch id and index make it unique and a retried batch rewrites the
/// same keys.
pub fn audit_sort_key(time_ms: i64, batch_id: &str, index: usize) -> String {
    format!("{time_ms:013}#{batch_id}#{index:05}")
}

/// The time part of a sort key.
pub fn sort_key_time(sk: &str) -> Option<i64> {
    sk.split('#').next()?.parse().ok()
}

/// A batch to store at once.
#[derive(Clone, Debug)]
pub struct NewBatch {
    pub batch_id: String,
    pub received_at: DateTime<Utc>,
    /// When the batch marker and its records may be deleted (retention).
    pub expires_at: DateTime<Utc>,
    pub audits: Vec<StoredAudit>,
}

/// What storing a batch did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BatchOutcome {
    Stored(usize),
    Duplicate,
}

/// A page request, newest first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditQuery {
    pub category: AuditCategory,
    pub task: Option<String>,
    pub container: Option<String>,
    pub kind: Option<String>,
    /// Oldest time to return (inclusive); the caller clamps it to the retention window.
    pub since_ms: i64,
    /// Newest time that can exist (now plus allowed clock skew).
    pub until_ms: i64,
    /// Only keys strictly below this one (the previous page's last key).
    pub before_sk: Option<String>,
    pub limit: usize,
}

/// A policy fetch or audit batch from a defender.
#[derive(Clone, Debug)]
pub struct DefenderContact {
    pub identity: DefenderIdentity,
    pub at: DateTime<Utc>,
    pub audits: u64,
    pub dropped: u64,
}

/// A stored epoch-milliseconds time.
pub(crate) fn ms_to_time(ms: i64) -> Result<DateTime<Utc>, StoreError> {
    chrono::TimeZone::timestamp_millis_opt(&Utc, ms)
        .single()
        .ok_or_else(|| StoreError::Corrupt(format!("bad timestamp {ms}")))
}

/// A stored role name.
pub(crate) fn role(s: &str) -> Result<Role, StoreError> {
    Role::parse(s).ok_or_else(|| StoreError::Corrupt(format!("unknown role {s:?}")))
}

/// The key a defender is listed under.
pub fn defender_key(d: &DefenderIdentity) -> String {
    format!(
        "{}\u{1f}{}\u{1f}{}\u{1f}{}",
        d.task,
        d.container,
        d.image,
        d.instance.as_deref().unwrap_or("")
    )
}

/// Everything the console keeps.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// True once any user exists.
    async fn has_users(&self) -> Result<bool, StoreError>;
    /// Creates a user; `false` if the name is taken.
    async fn create_user(&self, user: UserRecord) -> Result<bool, StoreError>;
    async fn get_user(&self, username: &str) -> Result<Option<UserRecord>, StoreError>;

    async fn put_token(&self, token: TokenRecord) -> Result<(), StoreError>;
    /// The token with this hash, expired or not (the caller checks).
    async fn get_token(&self, hash: &str) -> Result<Option<TokenRecord>, StoreError>;

    async fn get_policy(&self, kind: PolicyKind) -> Result<Option<StoredPolicy>, StoreError>;
    /// Stores `policy` if the current revision is `expected` (0: none stored yet); `false` if
    /// another writer got there first.
    async fn put_policy(
        &self,
        kind: PolicyKind,
        expected: u64,
        policy: StoredPolicy,
    ) -> Result<bool, StoreError>;

    /// Stores a batch unless its id was stored before.
    async fn insert_audits(&self, batch: NewBatch) -> Result<BatchOutcome, StoreError>;
    /// Up to `limit` audits matching the query, newest first.
    async fn query_audits(&self, query: AuditQuery) -> Result<Vec<StoredAudit>, StoreError>;
    /// Deletes audits and batch markers older than `before` and expired tokens; returns how many
    /// audits went. (DynamoDB also expires items by TTL.)
    async fn prune(&self, before: DateTime<Utc>) -> Result<u64, StoreError>;

    /// Records a contact: creates the defender or updates version, last contact and counters.
    async fn touch_defender(&self, contact: DefenderContact) -> Result<(), StoreError>;
    async fn list_defenders(&self) -> Result<Vec<DefenderInfo>, StoreError>;
}
