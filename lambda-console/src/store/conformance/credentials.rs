//! Defender credentials: scope and creator round-trip, the list (in id order, paged, never a
//! hash), revocation (first time wins; unknown ids are reported).

use chrono::{Duration, Utc};
use protect::api::CredentialScope;
use serde_json::json;

use super::e;
use crate::store::{DefenderCredential, Store, TokenRecord, TokenSubject};

/// Run after [`super::tokens`] (whose defender token `d1` is listed too).
pub async fn credentials(store: &dyn Store) -> Result<(), String> {
    let now = Utc::now();
    let now = now - Duration::nanoseconds(i64::from(now.timestamp_subsec_nanos()));
    let scope: CredentialScope =
        serde_json::from_value(json!({"tasks": ["payments", "pay-*"], "clusters": ["prod"]}))
            .map_err(|e| e.to_string())?;
    let cred = |id: &str, scope: CredentialScope| DefenderCredential {
        id: id.into(),
        name: Some(format!("{id} name")),
        scope,
        created_by: Some("manny".into()),
        revoked_at: None,
    };
    for (hash, c) in [
        ("e".repeat(64), cred("cr-1", scope.clone())),
        ("f".repeat(64), cred("cr-2", CredentialScope::all())),
    ] {
        store
            .put_token(TokenRecord {
                hash,
                subject: TokenSubject::Defender(c),
                created_at: now,
                expires_at: None,
            })
            .await
            .map_err(e)?;
    }
    let got = store.get_token(&"e".repeat(64)).await.map_err(e)?;
    let want = TokenRecord {
        hash: "e".repeat(64),
        subject: TokenSubject::Defender(cred("cr-1", scope.clone())),
        created_at: now,
        expires_at: None,
    };
    ensure!(
        got.as_ref() == Some(&want),
        "scoped token read back as {got:?}"
    );

    let list = store.list_credentials(None, 100).await.map_err(e)?;
    let ids: Vec<&str> = list.iter().map(|c| c.id.as_str()).collect();
    ensure!(
        ids == ["cr-1", "cr-2", "d1"],
        "credentials (no user tokens): {ids:?}"
    );
    ensure!(
        list[0].scope == scope
            && list[0].created_by.as_deref() == Some("manny")
            && list[0].name.as_deref() == Some("cr-1 name")
            && list[0].created_at == now
            && list[0].revoked_at.is_none(),
        "listed as {:?}",
        list[0]
    );
    let page = store
        .list_credentials(Some("cr-1".into()), 1)
        .await
        .map_err(e)?;
    ensure!(
        page.len() == 1 && page[0].id == "cr-2",
        "page after cr-1: {page:?}"
    );

    let at = now + Duration::seconds(3);
    ensure!(
        store.revoke_credential("cr-1", at).await.map_err(e)?,
        "revoking cr-1 found nothing"
    );
    ensure!(
        store
            .revoke_credential("cr-1", at + Duration::seconds(60))
            .await
            .map_err(e)?,
        "revoking cr-1 again found nothing"
    );
    ensure!(
        !store.revoke_credential("nope", at).await.map_err(e)?,
        "revoked an unknown credential"
    );
    match store.get_token(&"e".repeat(64)).await.map_err(e)? {
        Some(TokenRecord {
            subject: TokenSubject::Defender(d),
            ..
        }) => ensure!(d.revoked_at == Some(at), "revoked_at {:?}", d.revoked_at),
        other => return Err(format!("revoked token read back as {other:?}")),
    }
    let list = store.list_credentials(None, 100).await.map_err(e)?;
    ensure!(
        list[0].revoked_at == Some(at) && list[1].revoked_at.is_none(),
        "list after revoking: {list:?}"
    );
    Ok(())
}
