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
use protect::api::{CredentialInfo, CredentialScope, DefenderIdentity, DefenderInfo, Role};
use protect::audit::AuditKind;
use protect::pattern::Pattern;
use protect::policy::Effect;
use serde::Deserialize;

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
    Defender(DefenderCredential),
}

/// A defender credential: what it may speak for and whether it was revoked. (Credentials made
/// before scopes existed read back with every task in scope.)
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DefenderCredential {
    /// Not secret; names the credential in lists, logs and batch markers.
    pub id: String,
    pub name: Option<String>,
    pub scope: CredentialScope,
    /// The user who created it.
    pub created_by: Option<String>,
    /// Set once revoked: the token is refused from then on.
    pub revoked_at: Option<DateTime<Utc>>,
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

/// The sort key of record `index` of batch `batch_id` of credential `credential` at `time_ms`:
/// zero-padded time first, so keys order by time; the credential, batch id and index make it
/// unique (one credential cannot overwrite another's audits) and a retried batch rewrites the
/// same keys.
pub fn audit_sort_key(time_ms: i64, credential: &str, batch_id: &str, index: usize) -> String {
    format!("{time_ms:013}#{credential}#{batch_id}#{index:05}")
}

/// The time part of a sort key.
pub fn sort_key_time(sk: &str) -> Option<i64> {
    sk.split('#').next()?.parse().ok()
}

/// Longest scan position a cursor may carry (a sort key is far shorter: 13 digits, a
/// credential id of at most 64 characters, a batch id of at most 128 and 5 digits).
pub const MAX_POSITION_LEN: usize = 256;

/// Whether `s` can be a scan position ([`AuditRows::resume_after`], a sort key): 13 digits,
/// then nothing or `#` and printable ASCII, at most [`MAX_POSITION_LEN`] bytes.
pub fn is_scan_position(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() <= MAX_POSITION_LEN
        && b.len() >= KEY_TIME_DIGITS
        && b[..KEY_TIME_DIGITS].iter().all(u8::is_ascii_digit)
        && match b.get(KEY_TIME_DIGITS) {
            None => true,
            Some(b'#') => b[KEY_TIME_DIGITS..].iter().all(|c| c.is_ascii_graphic()),
            Some(_) => false,
        }
}

/// A batch to store at once. Its marker is keyed by credential and batch id, so one
/// credential's batch ids never collide with another's.
#[derive(Clone, Debug)]
pub struct NewBatch {
    /// The credential that posted it.
    pub credential: String,
    pub batch_id: String,
    /// Hash of the batch's content: a retry must carry the same.
    pub body_hash: String,
    pub received_at: DateTime<Utc>,
    /// When the batch marker and its records may be deleted (retention).
    pub expires_at: DateTime<Utc>,
    pub audits: Vec<StoredAudit>,
}

/// What storing a batch did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BatchOutcome {
    Stored(usize),
    /// Stored before with the same content: nothing stored.
    Duplicate,
    /// This credential stored this batch id before with other content: nothing stored.
    Conflict,
}

/// What an audit must be to be returned; `None` fields match everything. Patterns are
/// [`Pattern`]s (case-insensitive, `*` wildcards), as in policy scopes. Both stores apply this
/// one predicate, [`AuditMatch::matches`], so filters behave the same on each.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AuditMatch {
    /// Task definition family.
    pub task: Option<Pattern>,
    /// Container name.
    pub container: Option<Pattern>,
    /// Image reference.
    pub image: Option<Pattern>,
    pub kind: Option<AuditKind>,
    pub effect: Option<Effect>,
    /// Rule name.
    pub rule: Option<Pattern>,
}

/// The fields of a stored record's JSON that are not columns of their own.
#[derive(Deserialize)]
struct BodyFields {
    #[serde(default)]
    image: String,
    effect: Effect,
    rule: String,
}

impl AuditMatch {
    /// Whether `a` passes every filter. The record's JSON is read only when `image`, `effect` or
    /// `rule` is asked for.
    pub fn matches(&self, a: &StoredAudit) -> Result<bool, StoreError> {
        let pat = |p: &Option<Pattern>, v: &str| p.as_ref().is_none_or(|p| p.matches(v));
        if !(pat(&self.task, &a.task)
            && pat(&self.container, &a.container)
            && self.kind.is_none_or(|k| k.as_str() == a.kind))
        {
            return Ok(false);
        }
        if self.image.is_none() && self.effect.is_none() && self.rule.is_none() {
            return Ok(true);
        }
        let body: BodyFields = serde_json::from_str(&a.body)
            .map_err(|e| StoreError::Corrupt(format!("audit {}: {e}", a.sk)))?;
        Ok(pat(&self.image, &body.image)
            && self.effect.is_none_or(|e| e == body.effect)
            && pat(&self.rule, &body.rule))
    }
}

/// Most UTC days one audit query walks (on DynamoDB, one partition `AUDIT#<category>#<day>`
/// each). 32 covers the default 30-day retention plus the clock skew allowance (the window can
/// reach into tomorrow) in one request; a longer retention is walked a window per request.
pub const MAX_AUDIT_DAYS: i64 = 32;
/// Most stored bytes one audit query examines (counted with [`audit_bytes`], an upper bound of
/// the DynamoDB item size). It also keeps a page well below Lambda's 6 MB response limit.
pub const MAX_AUDIT_BYTES: usize = 4 * 1024 * 1024;
/// What [`audit_bytes`] adds to an audit's own fields: more than the rest of its DynamoDB item
/// (`pk`, the attribute names, `time_ms` and `expires_at`, about 110 bytes).
pub const AUDIT_ITEM_OVERHEAD: usize = 256;
/// Milliseconds in a day.
pub(crate) const DAY_MS: i64 = 86_400_000;

/// The bytes an audit counts against [`MAX_AUDIT_BYTES`]: its key, fields and body plus
/// [`AUDIT_ITEM_OVERHEAD`], at least its DynamoDB item size.
pub fn audit_bytes(a: &StoredAudit) -> usize {
    a.sk.len()
        + a.task.len()
        + a.container.len()
        + a.kind.len()
        + a.body.len()
        + AUDIT_ITEM_OVERHEAD
}

/// A page request, newest first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditQuery {
    pub category: AuditCategory,
    pub filter: AuditMatch,
    /// Oldest time to return (inclusive); the caller clamps it to the retention window.
    pub since_ms: i64,
    /// Newest time that can exist (now plus allowed clock skew).
    pub until_ms: i64,
    /// Only keys strictly below this one: the previous page's last key or
    /// [`AuditRows::resume_after`]. It may be a bare 13-digit time (the start of a day already
    /// walked), which every key of that millisecond or later sorts above.
    pub before_sk: Option<String>,
    /// Most audits to return.
    pub limit: usize,
    /// Most stored audits to examine (matching or not) before giving up on filling the page; see
    /// [`AuditRows::resume_after`].
    pub scan_limit: usize,
}

/// The part of an [`AuditQuery`] one request walks: at most [`MAX_AUDIT_DAYS`] UTC days, from
/// the newest time the query can reach down to `floor_ms`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct AuditWindow {
    /// The newest time a key in range can have.
    pub top_ms: i64,
    /// The oldest time walked (inclusive).
    pub floor_ms: i64,
    /// The query reaches below `floor_ms`: a request that walks the whole window answers with a
    /// cursor at its floor.
    pub more: bool,
}

/// The first millisecond of the UTC day of `ms`.
pub(crate) fn day_floor(ms: i64) -> i64 {
    ms - ms.rem_euclid(DAY_MS)
}

impl AuditQuery {
    /// The exclusive upper key: keys strictly below it are in range.
    pub(crate) fn key_hi(&self) -> String {
        let ceiling = sort_key_ceiling(self.until_ms);
        match &self.before_sk {
            Some(b) => b.clone().min(ceiling),
            None => ceiling,
        }
    }

    /// What this request walks; `None` when nothing is in range.
    pub(crate) fn window(&self) -> Option<AuditWindow> {
        let hi = self.key_hi();
        let t = sort_key_time(&hi)?;
        // A bare time is above no key of its own millisecond.
        let top_ms = if hi.len() > KEY_TIME_DIGITS { t } else { t - 1 };
        let since = self.since_ms.max(0);
        if top_ms < since {
            return None;
        }
        let cut = day_floor(top_ms) - (MAX_AUDIT_DAYS - 1) * DAY_MS;
        Some(if cut > since {
            AuditWindow {
                top_ms,
                floor_ms: cut,
                more: true,
            }
        } else {
            AuditWindow {
                top_ms,
                floor_ms: since,
                more: false,
            }
        })
    }
}

/// The answer to an [`AuditQuery`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AuditRows {
    /// Up to `limit` matching audits, newest first.
    pub audits: Vec<StoredAudit>,
    /// Set when a bound of the request ([`AuditQuery::scan_limit`] audits, [`MAX_AUDIT_BYTES`],
    /// [`MAX_AUDIT_DAYS`], the store's own request bound) ended the walk before the page filled:
    /// every key in range at or above it has been examined, so the next page starts strictly
    /// below it; nothing is skipped and nothing examined again. It is the last audit examined,
    /// or the start of the oldest day walked (a bare 13-digit time).
    pub resume_after: Option<String>,
}

/// Fills an [`AuditRows`] from candidates offered newest first: applies the filter, the limit
/// and the bounds of one request, and keeps the scan position, the same way for every store.
pub(crate) struct PageCollector<'q> {
    query: &'q AuditQuery,
    rows: AuditRows,
    examined: usize,
    bytes: usize,
    /// Every key in range at or above this has been examined.
    position: String,
    stopped: bool,
}

impl<'q> PageCollector<'q> {
    pub(crate) fn new(query: &'q AuditQuery) -> PageCollector<'q> {
        PageCollector {
            query,
            rows: AuditRows::default(),
            examined: 0,
            bytes: 0,
            position: query.key_hi(),
            stopped: false,
        }
    }

    fn full(&self) -> bool {
        self.rows.audits.len() >= self.query.limit
    }

    /// True once the page is full or a bound reached: offer nothing more.
    pub(crate) fn done(&self) -> bool {
        self.full() || self.stopped
    }

    /// How many more candidates are worth reading: the budget left, and without filters no more
    /// than the page still needs.
    pub(crate) fn read_ahead(&self) -> usize {
        let budget = self.query.scan_limit.saturating_sub(self.examined);
        if self.query.filter == AuditMatch::default() {
            budget.min(self.query.limit.saturating_sub(self.rows.audits.len()))
        } else {
            budget
        }
    }

    /// Examines the next candidate (in the query's range, below its cursor, newest first).
    pub(crate) fn offer(&mut self, a: StoredAudit) -> Result<(), StoreError> {
        if self.done() {
            return Ok(());
        }
        self.examined += 1;
        self.bytes = self.bytes.saturating_add(audit_bytes(&a));
        if self.query.filter.matches(&a)? {
            self.position.clone_from(&a.sk);
            self.rows.audits.push(a);
        } else {
            self.position = a.sk;
        }
        if self.examined >= self.query.scan_limit || self.bytes >= MAX_AUDIT_BYTES {
            self.stop();
        }
        Ok(())
    }

    /// Everything in range at or above `key` has been examined (a day read to its end).
    pub(crate) fn passed(&mut self, key: String) {
        if !self.done() && key < self.position {
            self.position = key;
        }
    }

    /// A bound of the request ends the walk here: unless the page is full, the answer carries
    /// the position.
    pub(crate) fn stop(&mut self) {
        if !self.done() {
            self.rows.resume_after = Some(self.position.clone());
        }
        self.stopped = true;
    }

    /// The walk of `window` is over: if the query reaches below it, the answer resumes at its
    /// floor.
    pub(crate) fn end_of_window(&mut self, window: &AuditWindow) {
        if window.more {
            self.passed(sort_key_floor(window.floor_ms));
            self.stop();
        }
    }

    pub(crate) fn finish(self) -> AuditRows {
        self.rows
    }
}

/// Digits of the time that starts every sort key.
pub const KEY_TIME_DIGITS: usize = 13;

/// The lowest sort key of an audit at `since_ms` or later (sort keys start with the zero-padded
/// time, so a time range is a key range).
pub(crate) fn sort_key_floor(since_ms: i64) -> String {
    format!("{:013}", since_ms.max(0))
}

/// A key above every sort key of an audit at `until_ms` or earlier.
pub(crate) fn sort_key_ceiling(until_ms: i64) -> String {
    format!("{:013}", until_ms.max(0).saturating_add(1))
}

/// A policy fetch or audit batch from a defender.
#[derive(Clone, Debug)]
pub struct DefenderContact {
    pub identity: DefenderIdentity,
    /// The credential it came with; a new defender is counted against it.
    pub credential: String,
    pub at: DateTime<Utc>,
    /// Added to the defender's counters; sums saturate at [`MAX_COUNTER`].
    pub audits: u64,
    pub dropped: u64,
    /// Most defenders one credential may add per UTC day (see [`TouchOutcome::LimitReached`]).
    pub new_per_day: u64,
    /// When a defender not heard from again may be forgotten (retention).
    pub expires_at: DateTime<Utc>,
}

/// Largest value a defender counter holds: sums saturate here in both stores (`i64::MAX`,
/// what SQLite integers and every reader can hold).
pub const MAX_COUNTER: u64 = i64::MAX as u64;

/// What recording a contact did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TouchOutcome {
    /// Created or updated.
    Recorded,
    /// A new defender, and its credential has already added `new_per_day` defenders today:
    /// nothing recorded.
    LimitReached,
}

/// A counter as stored, read leniently: anything above [`MAX_COUNTER`] (older consoles summed
/// without saturating) reads as the maximum, negative or unreadable values as 0.
pub(crate) fn counter_from_text(text: &str) -> u64 {
    let t = text.trim();
    if let Ok(v) = t.parse::<u64>() {
        return v.min(MAX_COUNTER);
    }
    match t.parse::<f64>() {
        Ok(f) if f >= MAX_COUNTER as f64 => MAX_COUNTER,
        // Saturating float-to-integer conversion; NaN and negatives become 0.
        Ok(f) if f > 0.0 => f as u64,
        _ => 0,
    }
}

/// A credential scope as stored (JSON text).
pub(crate) fn scope_json(scope: &CredentialScope) -> Result<String, StoreError> {
    serde_json::to_string(scope).map_err(|e| StoreError::Corrupt(format!("scope: {e}")))
}

/// A stored credential scope; none stored (a credential from before scopes) is every task.
pub(crate) fn stored_scope(text: Option<&str>) -> Result<CredentialScope, StoreError> {
    match text {
        None => Ok(CredentialScope::all()),
        Some(t) => serde_json::from_str(t)
            .map_err(|e| StoreError::Corrupt(format!("credential scope {t:?}: {e}"))),
    }
}

/// The first millisecond of `at`'s UTC day.
pub(crate) fn day_start_ms(at: DateTime<Utc>) -> i64 {
    let ms = at.timestamp_millis();
    ms - ms.rem_euclid(86_400_000)
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
    /// Makes the token with this hash expire at `at` (logout); no-op for an unknown hash.
    async fn expire_token(&self, hash: &str, at: DateTime<Utc>) -> Result<(), StoreError>;

    async fn get_policy(&self, kind: PolicyKind) -> Result<Option<StoredPolicy>, StoreError>;
    /// Stores `policy` if the current revision is `expected` (0: none stored yet); `false` if
    /// another writer got there first.
    async fn put_policy(
        &self,
        kind: PolicyKind,
        expected: u64,
        policy: StoredPolicy,
    ) -> Result<bool, StoreError>;

    /// Stores a batch unless its credential stored its id before ([`BatchOutcome::Duplicate`]
    /// with the same hash, [`BatchOutcome::Conflict`] with another).
    async fn insert_audits(&self, batch: NewBatch) -> Result<BatchOutcome, StoreError>;
    /// Up to `limit` audits matching the query, newest first, examining at most `scan_limit`.
    async fn query_audits(&self, query: AuditQuery) -> Result<AuditRows, StoreError>;
    /// Deletes audits, batch markers and defenders older than `before` and expired tokens;
    /// returns how many audits went. (DynamoDB expires items by TTL instead.)
    async fn prune(&self, before: DateTime<Utc>) -> Result<u64, StoreError>;

    /// Records a contact: creates the defender (unless its credential reached its daily limit
    /// of new defenders) or updates version, last contact and counters (saturating).
    async fn touch_defender(&self, contact: DefenderContact) -> Result<TouchOutcome, StoreError>;
    /// Up to `limit` defenders in key order ([`defender_key`]), after key `after`.
    async fn list_defenders(
        &self,
        after: Option<String>,
        limit: usize,
    ) -> Result<Vec<(String, DefenderInfo)>, StoreError>;

    /// Up to `limit` defender credentials in id order, after id `after`.
    async fn list_credentials(
        &self,
        after: Option<String>,
        limit: usize,
    ) -> Result<Vec<CredentialInfo>, StoreError>;
    /// Marks a defender credential revoked (the first time wins); `false` if there is none with
    /// this id.
    async fn revoke_credential(&self, id: &str, at: DateTime<Utc>) -> Result<bool, StoreError>;
}
