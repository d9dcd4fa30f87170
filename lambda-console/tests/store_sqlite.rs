//! The storage conformance suite against the SQLite store, plus local pruning and reopening.

use chrono::{Duration, Utc};
use lambda_console::store::sqlite::SqliteStore;
use lambda_console::store::{
    audit_sort_key, conformance, AuditCategory, AuditMatch, AuditQuery, NewBatch, PolicyKind,
    Store, StoredAudit, StoredPolicy, TokenSubject, MAX_COUNTER,
};

#[tokio::test]
async fn sqlite_passes_the_store_suite() {
    let store = SqliteStore::in_memory().expect("store");
    conformance::run(&store).await.expect("conformance");
}

fn audit(time_ms: i64, i: usize) -> StoredAudit {
    StoredAudit {
        category: AuditCategory::Runtime,
        sk: audit_sort_key(time_ms, "cred", "old", i),
        time_ms,
        task: "t".into(),
        container: "c".into(),
        kind: "dns".into(),
        body: "{}".into(),
    }
}

#[tokio::test]
async fn prune_deletes_audits_past_retention() {
    let store = SqliteStore::in_memory().expect("store");
    let now = Utc::now();
    let old = (now - Duration::days(40)).timestamp_millis();
    let fresh = now.timestamp_millis();
    store
        .insert_audits(NewBatch {
            credential: "cred".into(),
            batch_id: "old".into(),
            body_hash: "h".into(),
            received_at: now - Duration::days(40),
            expires_at: now - Duration::days(10),
            audits: vec![audit(old, 0), audit(fresh, 1)],
        })
        .await
        .expect("insert");
    let deleted = store.prune(now - Duration::days(30)).await.expect("prune");
    assert_eq!(deleted, 1);
    let all = store
        .query_audits(AuditQuery {
            category: AuditCategory::Runtime,
            filter: AuditMatch::default(),
            since_ms: 0,
            until_ms: fresh + 1,
            before_sk: None,
            limit: 10,
            scan_limit: 100,
        })
        .await
        .expect("query");
    assert_eq!(all.audits.len(), 1);
    assert_eq!(all.audits[0].time_ms, fresh);
}

#[tokio::test]
async fn data_survives_reopening() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let store = SqliteStore::open(dir.path()).expect("open");
        let p = StoredPolicy {
            revision: 1,
            body: "{\"revision\":1,\"rules\":[]}".into(),
            updated_at: Utc::now(),
        };
        assert!(store
            .put_policy(PolicyKind::Firewall, 0, p)
            .await
            .expect("put"));
    }
    let store = SqliteStore::open(dir.path()).expect("reopen");
    let got = store
        .get_policy(PolicyKind::Firewall)
        .await
        .expect("get")
        .expect("kept");
    assert_eq!(got.revision, 1);
    assert!(dir.path().join("console.db").exists());
}

/// A database written by an older console: tokens without scope columns, a defender whose
/// counter overflowed into a REAL (two huge `dropped` reports). It opens, its defender
/// credential reads back unscoped, and the defenders list works.
#[test]
fn an_older_database_opens_and_lists() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let conn = rusqlite::Connection::open(dir.path().join("console.db")).expect("db");
        conn.execute_batch(
            "CREATE TABLE tokens(hash TEXT PRIMARY KEY, kind TEXT NOT NULL, subject TEXT NOT NULL,
                 role TEXT, name TEXT, created_ms INTEGER NOT NULL, expires_ms INTEGER);
             INSERT INTO tokens VALUES ('abc', 'defender', 'old-id', NULL, 'old', 0, NULL);
             CREATE TABLE audit_batches(batch_id TEXT PRIMARY KEY, received_ms INTEGER NOT NULL);
             CREATE TABLE defenders(key TEXT PRIMARY KEY, task TEXT NOT NULL,
                 container TEXT NOT NULL, image TEXT NOT NULL, instance TEXT,
                 version TEXT NOT NULL, first_ms INTEGER NOT NULL, last_ms INTEGER NOT NULL,
                 audits INTEGER NOT NULL, dropped INTEGER NOT NULL);
             INSERT INTO defenders VALUES ('k', 't', 'c', 'i', NULL, '0.1.0', 0, 0, 3,
                 9223372036854775807 + 9223372036854775807);",
        )
        .expect("old schema");
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let store = SqliteStore::open(dir.path()).expect("open an older database");
        let token = store.get_token("abc").await.expect("get").expect("token");
        match token.subject {
            TokenSubject::Defender(d) => {
                assert_eq!(d.id, "old-id");
                assert!(d.scope.is_all(), "{:?}", d.scope);
                assert_eq!(d.revoked_at, None);
            }
            other => panic!("{other:?}"),
        }
        let list = store.list_defenders(None, 10).await.expect("list");
        assert_eq!(list.len(), 1);
        assert_eq!(list[0].1.audits_received, 3);
        assert_eq!(list[0].1.audits_dropped, MAX_COUNTER);
        let creds = store.list_credentials(None, 10).await.expect("credentials");
        assert_eq!(creds.len(), 1);
        assert_eq!(creds[0].name.as_deref(), Some("old"));
    });
}
