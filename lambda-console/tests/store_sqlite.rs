//! The storage conformance suite against the SQLite store, plus local pruning and reopening.

use chrono::{Duration, Utc};
use lambda_console::store::sqlite::SqliteStore;
use lambda_console::store::{
    audit_sort_key, conformance, AuditCategory, AuditMatch, AuditQuery, NewBatch, PolicyKind,
    Store, StoredAudit, StoredPolicy,
};

#[tokio::test]
async fn sqlite_passes_the_store_suite() {
    let store = SqliteStore::in_memory().expect("store");
    conformance::run(&store).await.expect("conformance");
}

fn audit(time_ms: i64, i: usize) -> StoredAudit {
    StoredAudit {
        category: AuditCategory::Runtime,
        sk: audit_sort_key(time_ms, "old", i),
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
            batch_id: "old".into(),
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
