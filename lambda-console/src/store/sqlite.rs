//! The embedded store: one SQLite file (`console.db` in the data directory), WAL mode.

use std::path::Path;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use protect::api::{CredentialInfo, DefenderInfo};
use rusqlite::{params, Connection, OptionalExtension};

use super::{
    day_start_ms, defender_key, ms_to_time, role, scope_json, sort_key_floor, stored_scope,
    AuditQuery, AuditRows, BatchOutcome, DefenderContact, DefenderCredential, NewBatch,
    PageCollector, PolicyKind, Store, StoreError, StoredAudit, StoredPolicy, TokenRecord,
    TokenSubject, TouchOutcome, UserRecord,
};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS users(
    username TEXT PRIMARY KEY, password_hash TEXT NOT NULL, role TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS tokens(
    hash TEXT PRIMARY KEY, kind TEXT NOT NULL, subject TEXT NOT NULL, role TEXT, name TEXT,
    created_ms INTEGER NOT NULL, expires_ms INTEGER);
CREATE TABLE IF NOT EXISTS policies(
    kind TEXT PRIMARY KEY, revision INTEGER NOT NULL, body TEXT NOT NULL,
    updated_ms INTEGER NOT NULL);
DROP TABLE IF EXISTS audit_batches;
CREATE TABLE IF NOT EXISTS batch_markers(
    credential TEXT NOT NULL, batch_id TEXT NOT NULL, hash TEXT NOT NULL,
    received_ms INTEGER NOT NULL, PRIMARY KEY(credential, batch_id)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS audits(
    category TEXT NOT NULL, sk TEXT NOT NULL, time_ms INTEGER NOT NULL, task TEXT NOT NULL,
    container TEXT NOT NULL, kind TEXT NOT NULL, body TEXT NOT NULL,
    PRIMARY KEY(category, sk)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS audits_by_time ON audits(time_ms);
CREATE TABLE IF NOT EXISTS defenders(
    key TEXT PRIMARY KEY, task TEXT NOT NULL, container TEXT NOT NULL, image TEXT NOT NULL,
    instance TEXT, version TEXT NOT NULL, first_ms INTEGER NOT NULL, last_ms INTEGER NOT NULL,
    audits INTEGER NOT NULL, dropped INTEGER NOT NULL);
";

/// Columns added after the first release: `(table, column, declaration)`, added to older
/// databases when they are opened.
const ADDED_COLUMNS: [(&str, &str, &str); 4] = [
    ("tokens", "scope", "TEXT"),
    ("tokens", "created_by", "TEXT"),
    ("tokens", "revoked_ms", "INTEGER"),
    ("defenders", "credential", "TEXT"),
];

/// Indexes over the added columns (created once they exist).
const INDEXES: &str = "
CREATE INDEX IF NOT EXISTS tokens_by_subject ON tokens(kind, subject);
CREATE INDEX IF NOT EXISTS defenders_by_credential ON defenders(credential, first_ms);
";

/// Adds the [`ADDED_COLUMNS`] a database made by an older console lacks.
fn migrate(conn: &Connection) -> Result<(), StoreError> {
    for (table, column, decl) in ADDED_COLUMNS {
        let mut stmt = conn.prepare(&format!("PRAGMA table_info({table})"))?;
        let names = stmt.query_map([], |r| r.get::<_, String>(1))?;
        let mut present = false;
        for name in names {
            present |= name? == column;
        }
        if !present {
            conn.execute_batch(&format!("ALTER TABLE {table} ADD COLUMN {column} {decl}"))?;
        }
    }
    conn.execute_batch(INDEXES)?;
    Ok(())
}

/// A counter column as stored: older consoles summed without saturating, and SQLite turned the
/// overflowing sum into a REAL; such values read as the maximum.
fn counter(v: rusqlite::types::Value) -> u64 {
    use rusqlite::types::Value;
    match v {
        Value::Integer(i) => u64::try_from(i).unwrap_or(0),
        Value::Real(f) => super::counter_from_text(&f.to_string()),
        Value::Text(t) => super::counter_from_text(&t),
        Value::Null | Value::Blob(_) => 0,
    }
}

/// SQLite-backed [`Store`]. Cheap to clone.
#[derive(Clone)]
pub struct SqliteStore {
    conn: Arc<Mutex<Connection>>,
}

/// Creates `dir` (and its parents) with mode 0700.
fn private_dir(dir: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}

/// Creates `path` with mode 0600, or takes group and other access away from it and its WAL
/// files.
fn private_file(path: &Path) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.create(true).append(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        for suffix in ["", "-wal", "-shm"] {
            let p = std::path::PathBuf::from(format!("{}{suffix}", path.display()));
            if let Ok(meta) = std::fs::metadata(&p) {
                if meta.permissions().mode() & 0o077 != 0 {
                    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600))?;
                }
            }
        }
    }
    Ok(())
}

impl SqliteStore {
    /// Opens (creating if needed) `DIR/console.db`. A directory it creates is private to the
    /// owner (0700); the database is 0600 (an existing one is tightened to that), and SQLite
    /// gives its `-wal` and `-shm` files the database's mode.
    pub fn open(data_dir: &Path) -> Result<SqliteStore, StoreError> {
        let io = |what: &str, path: &Path, e: std::io::Error| {
            StoreError::Task(format!("cannot {what} {}: {e}", path.display()))
        };
        private_dir(data_dir).map_err(|e| io("create data directory", data_dir, e))?;
        let db = data_dir.join("console.db");
        private_file(&db).map_err(|e| io("create", &db, e))?;
        let conn = Connection::open(&db)?;
        SqliteStore::init(conn)
    }

    /// An in-memory store (tests, throwaway consoles).
    pub fn in_memory() -> Result<SqliteStore, StoreError> {
        SqliteStore::init(Connection::open_in_memory()?)
    }

    fn init(conn: Connection) -> Result<SqliteStore, StoreError> {
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        conn.execute_batch(SCHEMA)?;
        migrate(&conn)?;
        Ok(SqliteStore {
            conn: Arc::new(Mutex::new(conn)),
        })
    }

    async fn with<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let conn = Arc::clone(&self.conn);
        tokio::task::spawn_blocking(move || {
            let mut guard = conn
                .lock()
                .map_err(|_| StoreError::Task("sqlite connection lock poisoned".to_string()))?;
            f(&mut guard)
        })
        .await
        .map_err(|e| StoreError::Task(e.to_string()))?
    }
}

fn to_u64(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

#[async_trait]
impl Store for SqliteStore {
    async fn has_users(&self) -> Result<bool, StoreError> {
        self.with(|c| {
            let n: i64 = c.query_row("SELECT COUNT(*) FROM users", [], |r| r.get(0))?;
            Ok(n > 0)
        })
        .await
    }

    async fn create_user(&self, user: UserRecord) -> Result<bool, StoreError> {
        self.with(move |c| {
            let n = c.execute(
                "INSERT INTO users(username, password_hash, role) VALUES (?1, ?2, ?3)
                 ON CONFLICT(username) DO NOTHING",
                params![user.username, user.password_hash, user.role.as_str()],
            )?;
            Ok(n == 1)
        })
        .await
    }

    async fn get_user(&self, username: &str) -> Result<Option<UserRecord>, StoreError> {
        let username = username.to_string();
        self.with(move |c| {
            let row = c
                .query_row(
                    "SELECT username, password_hash, role FROM users WHERE username = ?1",
                    params![username],
                    |r| {
                        Ok((
                            r.get::<_, String>(0)?,
                            r.get::<_, String>(1)?,
                            r.get::<_, String>(2)?,
                        ))
                    },
                )
                .optional()?;
            row.map(|(username, password_hash, r)| {
                Ok(UserRecord {
                    username,
                    password_hash,
                    role: role(&r)?,
                })
            })
            .transpose()
        })
        .await
    }

    async fn put_token(&self, token: TokenRecord) -> Result<(), StoreError> {
        self.with(move |c| {
            let (kind, subject, role, name, scope, by, revoked) = match &token.subject {
                TokenSubject::User { username, role } => (
                    "user",
                    username.clone(),
                    Some(role.as_str()),
                    None,
                    None,
                    None,
                    None,
                ),
                TokenSubject::Defender(d) => (
                    "defender",
                    d.id.clone(),
                    None,
                    d.name.clone(),
                    Some(scope_json(&d.scope)?),
                    d.created_by.clone(),
                    d.revoked_at.map(|t| t.timestamp_millis()),
                ),
            };
            c.execute(
                "INSERT OR REPLACE INTO tokens(hash, kind, subject, role, name, created_ms,
                                               expires_ms, scope, created_by, revoked_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                params![
                    token.hash,
                    kind,
                    subject,
                    role,
                    name,
                    token.created_at.timestamp_millis(),
                    token.expires_at.map(|t| t.timestamp_millis()),
                    scope,
                    by,
                    revoked
                ],
            )?;
            Ok(())
        })
        .await
    }

    async fn get_token(&self, hash: &str) -> Result<Option<TokenRecord>, StoreError> {
        let hash = hash.to_string();
        self.with(move |c| {
            let row = c
                .query_row(
                    "SELECT kind, subject, role, name, created_ms, expires_ms, scope, created_by,
                            revoked_ms
                     FROM tokens WHERE hash = ?1",
                    params![hash],
                    |r| {
                        Ok((
                            (
                                r.get::<_, String>(0)?,
                                r.get::<_, String>(1)?,
                                r.get::<_, Option<String>>(2)?,
                            ),
                            (
                                r.get::<_, Option<String>>(3)?,
                                r.get::<_, i64>(4)?,
                                r.get::<_, Option<i64>>(5)?,
                            ),
                            (
                                r.get::<_, Option<String>>(6)?,
                                r.get::<_, Option<String>>(7)?,
                                r.get::<_, Option<i64>>(8)?,
                            ),
                        ))
                    },
                )
                .optional()?;
            let Some(((kind, subject, r), (name, created, expires), (scope, by, revoked))) = row
            else {
                return Ok(None);
            };
            let subject = match (kind.as_str(), r) {
                ("user", Some(r)) => TokenSubject::User {
                    username: subject,
                    role: role(&r)?,
                },
                ("defender", _) => TokenSubject::Defender(DefenderCredential {
                    id: subject,
                    name,
                    scope: stored_scope(scope.as_deref())?,
                    created_by: by,
                    revoked_at: revoked.map(ms_to_time).transpose()?,
                }),
                _ => return Err(StoreError::Corrupt(format!("token kind {kind:?}"))),
            };
            Ok(Some(TokenRecord {
                hash,
                subject,
                created_at: ms_to_time(created)?,
                expires_at: expires.map(ms_to_time).transpose()?,
            }))
        })
        .await
    }

    async fn expire_token(&self, hash: &str, at: DateTime<Utc>) -> Result<(), StoreError> {
        let hash = hash.to_string();
        self.with(move |c| {
            c.execute(
                "UPDATE tokens SET expires_ms = ?2 WHERE hash = ?1",
                params![hash, at.timestamp_millis()],
            )?;
            Ok(())
        })
        .await
    }

    async fn get_policy(&self, kind: PolicyKind) -> Result<Option<StoredPolicy>, StoreError> {
        self.with(move |c| {
            let row = c
                .query_row(
                    "SELECT revision, body, updated_ms FROM policies WHERE kind = ?1",
                    params![kind.as_str()],
                    |r| {
                        Ok((
                            r.get::<_, i64>(0)?,
                            r.get::<_, String>(1)?,
                            r.get::<_, i64>(2)?,
                        ))
                    },
                )
                .optional()?;
            row.map(|(rev, body, updated)| {
                Ok(StoredPolicy {
                    revision: to_u64(rev),
                    body,
                    updated_at: ms_to_time(updated)?,
                })
            })
            .transpose()
        })
        .await
    }

    async fn put_policy(
        &self,
        kind: PolicyKind,
        expected: u64,
        policy: StoredPolicy,
    ) -> Result<bool, StoreError> {
        self.with(move |c| {
            let tx = c.transaction()?;
            let current: Option<i64> = tx
                .query_row(
                    "SELECT revision FROM policies WHERE kind = ?1",
                    params![kind.as_str()],
                    |r| r.get(0),
                )
                .optional()?;
            if current.map(to_u64).unwrap_or(0) != expected {
                return Ok(false);
            }
            tx.execute(
                "INSERT OR REPLACE INTO policies(kind, revision, body, updated_ms)
                 VALUES (?1, ?2, ?3, ?4)",
                params![
                    kind.as_str(),
                    to_i64(policy.revision),
                    policy.body,
                    policy.updated_at.timestamp_millis()
                ],
            )?;
            tx.commit()?;
            Ok(true)
        })
        .await
    }

    async fn insert_audits(&self, batch: NewBatch) -> Result<BatchOutcome, StoreError> {
        self.with(move |c| {
            let tx = c.transaction()?;
            let fresh = tx.execute(
                "INSERT INTO batch_markers(credential, batch_id, hash, received_ms)
                 VALUES (?1, ?2, ?3, ?4) ON CONFLICT(credential, batch_id) DO NOTHING",
                params![
                    batch.credential,
                    batch.batch_id,
                    batch.body_hash,
                    batch.received_at.timestamp_millis()
                ],
            )?;
            if fresh == 0 {
                let stored: String = tx.query_row(
                    "SELECT hash FROM batch_markers WHERE credential = ?1 AND batch_id = ?2",
                    params![batch.credential, batch.batch_id],
                    |r| r.get(0),
                )?;
                return Ok(if stored == batch.body_hash {
                    BatchOutcome::Duplicate
                } else {
                    BatchOutcome::Conflict
                });
            }
            {
                let mut stmt = tx.prepare_cached(
                    "INSERT OR REPLACE INTO audits(category, sk, time_ms, task, container, kind, body)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                )?;
                for a in &batch.audits {
                    stmt.execute(params![
                        a.category.as_str(),
                        a.sk,
                        a.time_ms,
                        a.task,
                        a.container,
                        a.kind,
                        a.body
                    ])?;
                }
            }
            tx.commit()?;
            Ok(BatchOutcome::Stored(batch.audits.len()))
        })
        .await
    }

    async fn query_audits(&self, q: AuditQuery) -> Result<AuditRows, StoreError> {
        self.with(move |c| {
            // The key range is the time range (keys start with the time); rows come newest
            // first from the primary key, and are read only as far as the page needs. One
            // request walks the same window of days as on DynamoDB, so pages and cursors agree.
            let mut page = PageCollector::new(&q);
            let Some(window) = q.window() else {
                return Ok(page.finish());
            };
            let mut stmt = c.prepare_cached(
                "SELECT sk, time_ms, task, container, kind, body FROM audits
                 WHERE category = ?1 AND sk >= ?2 AND sk < ?3
                 ORDER BY sk DESC",
            )?;
            let mut rows = stmt.query(params![
                q.category.as_str(),
                sort_key_floor(window.floor_ms),
                q.key_hi()
            ])?;
            while !page.done() {
                let Some(r) = rows.next()? else {
                    page.end_of_window(&window);
                    break;
                };
                page.offer(StoredAudit {
                    category: q.category,
                    sk: r.get(0)?,
                    time_ms: r.get(1)?,
                    task: r.get(2)?,
                    container: r.get(3)?,
                    kind: r.get(4)?,
                    body: r.get(5)?,
                })?;
            }
            Ok(page.finish())
        })
        .await
    }

    async fn prune(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        self.with(move |c| {
            let cut = before.timestamp_millis();
            let tx = c.transaction()?;
            let n = tx.execute("DELETE FROM audits WHERE time_ms < ?1", params![cut])?;
            tx.execute(
                "DELETE FROM batch_markers WHERE received_ms < ?1",
                params![cut],
            )?;
            tx.execute("DELETE FROM defenders WHERE last_ms < ?1", params![cut])?;
            tx.execute(
                "DELETE FROM tokens WHERE expires_ms IS NOT NULL AND expires_ms < ?1",
                params![Utc::now().timestamp_millis()],
            )?;
            tx.commit()?;
            Ok(n as u64)
        })
        .await
    }

    async fn touch_defender(&self, contact: DefenderContact) -> Result<TouchOutcome, StoreError> {
        self.with(move |c| {
            let d = &contact.identity;
            let key = defender_key(d);
            let at = contact.at.timestamp_millis();
            let tx = c.transaction()?;
            let known = tx
                .query_row(
                    "SELECT 1 FROM defenders WHERE key = ?1",
                    params![key],
                    |_| Ok(()),
                )
                .optional()?
                .is_some();
            if !known {
                let today: i64 = tx.query_row(
                    "SELECT COUNT(*) FROM defenders WHERE credential = ?1 AND first_ms >= ?2",
                    params![contact.credential, day_start_ms(contact.at)],
                    |r| r.get(0),
                )?;
                if to_u64(today) >= contact.new_per_day {
                    return Ok(TouchOutcome::LimitReached);
                }
            }
            // Sums saturate at i64::MAX: `a + b` past it would turn into a REAL.
            tx.execute(
                "INSERT INTO defenders(key, task, container, image, instance, version, first_ms,
                                       last_ms, audits, dropped, credential)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7, ?8, ?9, ?10)
                 ON CONFLICT(key) DO UPDATE SET
                   version = CASE WHEN excluded.version = '' THEN version ELSE excluded.version END,
                   last_ms = MAX(last_ms, excluded.last_ms),
                   audits = CASE WHEN audits > 9223372036854775807 - excluded.audits
                            THEN 9223372036854775807 ELSE audits + excluded.audits END,
                   dropped = CASE WHEN dropped > 9223372036854775807 - excluded.dropped
                             THEN 9223372036854775807 ELSE dropped + excluded.dropped END,
                   credential = COALESCE(credential, excluded.credential)",
                params![
                    key,
                    d.task,
                    d.container,
                    d.image,
                    d.instance,
                    d.version,
                    at,
                    to_i64(contact.audits),
                    to_i64(contact.dropped),
                    contact.credential
                ],
            )?;
            tx.commit()?;
            Ok(TouchOutcome::Recorded)
        })
        .await
    }

    async fn list_defenders(
        &self,
        after: Option<String>,
        limit: usize,
    ) -> Result<Vec<(String, DefenderInfo)>, StoreError> {
        self.with(move |c| {
            let mut stmt = c.prepare_cached(
                "SELECT key, task, container, image, instance, version, first_ms, last_ms, audits,
                        dropped FROM defenders WHERE key > ?1 ORDER BY key LIMIT ?2",
            )?;
            let rows = stmt.query_map(
                params![after.unwrap_or_default(), to_i64(limit as u64)],
                |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        (
                            r.get::<_, String>(1)?,
                            r.get::<_, String>(2)?,
                            r.get::<_, String>(3)?,
                            r.get::<_, Option<String>>(4)?,
                            r.get::<_, String>(5)?,
                        ),
                        (
                            r.get::<_, i64>(6)?,
                            r.get::<_, i64>(7)?,
                            r.get::<_, rusqlite::types::Value>(8)?,
                            r.get::<_, rusqlite::types::Value>(9)?,
                        ),
                    ))
                },
            )?;
            let mut out = Vec::new();
            for row in rows {
                let (key, (task, container, image, instance, version), (first, last, a, d)) = row?;
                out.push((
                    key,
                    DefenderInfo {
                        task,
                        container,
                        image,
                        instance,
                        version,
                        first_seen: ms_to_time(first)?,
                        last_contact: ms_to_time(last)?,
                        audits_received: counter(a),
                        audits_dropped: counter(d),
                        status: None,
                    },
                ));
            }
            Ok(out)
        })
        .await
    }

    async fn list_credentials(
        &self,
        after: Option<String>,
        limit: usize,
    ) -> Result<Vec<CredentialInfo>, StoreError> {
        self.with(move |c| {
            let mut stmt = c.prepare_cached(
                "SELECT subject, name, scope, created_ms, created_by, revoked_ms FROM tokens
                 WHERE kind = 'defender' AND subject > ?1 ORDER BY subject LIMIT ?2",
            )?;
            let rows = stmt.query_map(
                params![after.unwrap_or_default(), to_i64(limit as u64)],
                |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, Option<String>>(1)?,
                        r.get::<_, Option<String>>(2)?,
                        r.get::<_, i64>(3)?,
                        r.get::<_, Option<String>>(4)?,
                        r.get::<_, Option<i64>>(5)?,
                    ))
                },
            )?;
            let mut out = Vec::new();
            for row in rows {
                let (id, name, scope, created, created_by, revoked) = row?;
                out.push(CredentialInfo {
                    id,
                    name,
                    scope: stored_scope(scope.as_deref())?,
                    created_at: ms_to_time(created)?,
                    created_by,
                    revoked_at: revoked.map(ms_to_time).transpose()?,
                });
            }
            Ok(out)
        })
        .await
    }

    async fn revoke_credential(&self, id: &str, at: DateTime<Utc>) -> Result<bool, StoreError> {
        let id = id.to_string();
        self.with(move |c| {
            let n = c.execute(
                "UPDATE tokens SET revoked_ms = COALESCE(revoked_ms, ?2)
                 WHERE kind = 'defender' AND subject = ?1",
                params![id, at.timestamp_millis()],
            )?;
            Ok(n > 0)
        })
        .await
    }
}
