//! The DynamoDB store: one table, single-table design.
//!
//! | item | `pk` | `sk` | other attributes |
//! |---|---|---|---|
//! | user | `USERS` | username | `password_hash`, `role` |
//! | token | `TOKEN#<sha256 hex>` | `TOKEN` | `kind`, `subject`, `role`, `name`, `created_ms`, `expires_ms`, `expires_at`; defenders also `scope` (JSON), `created_by`, `revoked_ms` |
//! | defender credential | `CREDENTIALS` | credential id | `hash`, `name`, `scope`, `created_ms`, `created_by`, `revoked_ms` (the list; the token item is what authenticates) |
//! | new defenders of a day | `CREDENTIAL#<id>` | `NEW#<YYYY-MM-DD>` | `n` (N), `expires_at` |
//! | policy | `POLICY` | `runtime` / `firewall` | `revision` (N), `body`, `updated_ms` |
//! | batch marker | `BATCH#<credential>#<batch_id>` | `BATCH` | `hash`, `received_ms`, `expires_at` |
//! | audit | `AUDIT#<category>#<YYYY-MM-DD>` | `<time ms, 13 digits>#<credential>#<batch_id>#<index>` | `time_ms`, `task`, `container`, `kind`, `body`, `expires_at` |
//! | defender | `DEFENDER` | task␟container␟image␟instance | `task`, `container`, `image`, `instance`, `version`, `first_ms`, `last_ms`, `audits`, `dropped`, `credential`, `expires_at` |
//!
//! Audits are bucketed per UTC day so no partition grows without bound; a page walks the day
//! buckets newest first. `expires_at` (epoch seconds) is the table's TTL attribute: DynamoDB deletes
//! expired audits, batch markers, defenders not heard from within the retention, daily counters
//! and session tokens by itself, so [`Store::prune`] is a no-op. Counters (`audits`, `dropped`)
//! saturate at [`MAX_COUNTER`] and read leniently, so an older console's overflowed sums list.

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::error::{DisplayErrorContext, SdkError};
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType, PutRequest,
    ScalarAttributeType, TimeToLiveSpecification, WriteRequest,
};
use aws_sdk_dynamodb::Client;
use chrono::{DateTime, Utc};
use protect::api::{CredentialInfo, DefenderInfo};

use super::{
    counter_from_text, defender_key, ms_to_time, role, scope_json, stored_scope, AuditQuery,
    AuditRows, BatchOutcome, DefenderContact, DefenderCredential, NewBatch, PolicyKind, Store,
    StoreError, StoredPolicy, TokenRecord, TokenSubject, TouchOutcome, UserRecord, MAX_COUNTER,
};

mod audits;
pub mod cost;
mod defenders;

pub use audits::{MAX_AUDIT_QUERY_REQUESTS, QUERY_RESPONSE_BYTES};
use defenders::Counters;

type Item = HashMap<String, AttributeValue>;

/// Name of the TTL attribute.
pub const TTL_ATTRIBUTE: &str = "expires_at";

/// DynamoDB-backed [`Store`].
#[derive(Clone, Debug)]
pub struct DynamoStore {
    client: Client,
    table: String,
}

fn err<E, R>(operation: &'static str) -> impl FnOnce(SdkError<E, R>) -> StoreError
where
    E: std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    move |e| StoreError::Dynamo {
        operation,
        detail: DisplayErrorContext(e).to_string(),
    }
}

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

fn get_s(item: &Item, key: &str) -> Result<String, StoreError> {
    match item.get(key) {
        Some(AttributeValue::S(v)) => Ok(v.clone()),
        _ => Err(StoreError::Corrupt(format!(
            "attribute {key} missing or not a string"
        ))),
    }
}

fn opt_s(item: &Item, key: &str) -> Option<String> {
    match item.get(key) {
        Some(AttributeValue::S(v)) => Some(v.clone()),
        _ => None,
    }
}

fn get_n(item: &Item, key: &str) -> Result<i64, StoreError> {
    match item.get(key) {
        Some(AttributeValue::N(v)) => v
            .parse()
            .map_err(|_| StoreError::Corrupt(format!("attribute {key} is not an integer"))),
        _ => Err(StoreError::Corrupt(format!(
            "attribute {key} missing or not a number"
        ))),
    }
}

/// A counter, read leniently (see [`counter_from_text`]); absent reads as 0.
fn get_counter(item: &Item, key: &str) -> u64 {
    match item.get(key) {
        Some(AttributeValue::N(v)) => counter_from_text(v),
        _ => 0,
    }
}

/// Whether an SDK error is a failed condition (`ConditionalCheckFailedException`).
fn condition_failed<E: aws_sdk_dynamodb::error::ProvideErrorMetadata, R>(
    e: &SdkError<E, R>,
) -> bool {
    e.as_service_error()
        .and_then(|e| e.code())
        .is_some_and(|c| c == "ConditionalCheckFailedException")
}

fn opt_n(item: &Item, key: &str) -> Result<Option<i64>, StoreError> {
    match item.get(key) {
        None | Some(AttributeValue::Null(_)) => Ok(None),
        Some(_) => get_n(item, key).map(Some),
    }
}

/// `Ok(true)` if a conditional PutItem wrote, `Ok(false)` if its condition failed.
fn put_if(
    res: Result<
        aws_sdk_dynamodb::operation::put_item::PutItemOutput,
        SdkError<
            aws_sdk_dynamodb::operation::put_item::PutItemError,
            aws_sdk_dynamodb::config::http::HttpResponse,
        >,
    >,
) -> Result<bool, StoreError> {
    match res {
        Ok(_) => Ok(true),
        Err(e)
            if e.as_service_error()
                .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
        {
            Ok(false)
        }
        Err(e) => Err(err("PutItem")(e)),
    }
}

impl DynamoStore {
    /// A store over an existing table.
    pub fn new(client: Client, table: impl Into<String>) -> DynamoStore {
        DynamoStore {
            client,
            table: table.into(),
        }
    }

    /// Creates the table (on-demand billing, `pk`/`sk` strings) and turns on TTL on `expires_at`.
    /// For tests and first-time setup; the infra template creates the same table.
    pub async fn create_table(client: &Client, table: &str) -> Result<(), StoreError> {
        let attr = |name: &str| {
            AttributeDefinition::builder()
                .attribute_name(name)
                .attribute_type(ScalarAttributeType::S)
                .build()
        };
        let key = |name: &str, t: KeyType| {
            KeySchemaElement::builder()
                .attribute_name(name)
                .key_type(t)
                .build()
        };
        let bad = |e: aws_sdk_dynamodb::error::BuildError| StoreError::Dynamo {
            operation: "CreateTable",
            detail: e.to_string(),
        };
        client
            .create_table()
            .table_name(table)
            .attribute_definitions(attr("pk").map_err(bad)?)
            .attribute_definitions(attr("sk").map_err(bad)?)
            .key_schema(key("pk", KeyType::Hash).map_err(bad)?)
            .key_schema(key("sk", KeyType::Range).map_err(bad)?)
            .billing_mode(BillingMode::PayPerRequest)
            .send()
            .await
            .map_err(err("CreateTable"))?;
        client
            .update_time_to_live()
            .table_name(table)
            .time_to_live_specification(
                TimeToLiveSpecification::builder()
                    .enabled(true)
                    .attribute_name(TTL_ATTRIBUTE)
                    .build()
                    .map_err(|e| StoreError::Dynamo {
                        operation: "UpdateTimeToLive",
                        detail: e.to_string(),
                    })?,
            )
            .send()
            .await
            .map_err(err("UpdateTimeToLive"))?;
        Ok(())
    }

    /// The raw item under a key (tests check the stored shape with it).
    pub async fn raw_item(&self, pk: &str, sk: &str) -> Result<Option<Item>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(pk))
            .key("sk", s(sk))
            .consistent_read(true)
            .send()
            .await
            .map_err(err("GetItem"))?;
        Ok(out.item)
    }

    async fn get(&self, pk: &str, sk: &str) -> Result<Option<Item>, StoreError> {
        self.raw_item(pk, sk).await
    }

    async fn write_all(&self, mut requests: Vec<WriteRequest>) -> Result<(), StoreError> {
        while !requests.is_empty() {
            let rest = requests.split_off(requests.len().min(25));
            let mut chunk = std::mem::replace(&mut requests, rest);
            let mut attempt = 0u32;
            while !chunk.is_empty() {
                let out = self
                    .client
                    .batch_write_item()
                    .request_items(&self.table, chunk)
                    .send()
                    .await
                    .map_err(err("BatchWriteItem"))?;
                chunk = out
                    .unprocessed_items
                    .and_then(|mut m| m.remove(&self.table))
                    .unwrap_or_default();
                if !chunk.is_empty() {
                    attempt += 1;
                    if attempt > 8 {
                        return Err(StoreError::Dynamo {
                            operation: "BatchWriteItem",
                            detail: "items still unprocessed after 8 retries".to_string(),
                        });
                    }
                    tokio::time::sleep(std::time::Duration::from_millis(20 << attempt)).await;
                }
            }
        }
        Ok(())
    }
}

#[async_trait]
impl Store for DynamoStore {
    async fn has_users(&self) -> Result<bool, StoreError> {
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk")
            .expression_attribute_values(":pk", s("USERS"))
            .limit(1)
            .consistent_read(true)
            .send()
            .await
            .map_err(err("Query"))?;
        Ok(out.count > 0)
    }

    async fn create_user(&self, user: UserRecord) -> Result<bool, StoreError> {
        let res = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("pk", s("USERS"))
            .item("sk", s(&user.username))
            .item("password_hash", s(&user.password_hash))
            .item("role", s(user.role.as_str()))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await;
        put_if(res)
    }

    async fn get_user(&self, username: &str) -> Result<Option<UserRecord>, StoreError> {
        let Some(item) = self.get("USERS", username).await? else {
            return Ok(None);
        };
        Ok(Some(UserRecord {
            username: get_s(&item, "sk")?,
            password_hash: get_s(&item, "password_hash")?,
            role: role(&get_s(&item, "role")?)?,
        }))
    }

    async fn put_token(&self, token: TokenRecord) -> Result<(), StoreError> {
        let mut req = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("pk", s(format!("TOKEN#{}", token.hash)))
            .item("sk", s("TOKEN"))
            .item("created_ms", n(token.created_at.timestamp_millis()));
        match &token.subject {
            TokenSubject::User { username, role } => {
                req = req
                    .item("kind", s("user"))
                    .item("subject", s(username))
                    .item("role", s(role.as_str()));
            }
            TokenSubject::Defender(d) => {
                req = req
                    .item("kind", s("defender"))
                    .item("subject", s(&d.id))
                    .item("scope", s(scope_json(&d.scope)?));
                if let Some(name) = &d.name {
                    req = req.item("name", s(name));
                }
                if let Some(by) = &d.created_by {
                    req = req.item("created_by", s(by));
                }
                if let Some(at) = d.revoked_at {
                    req = req.item("revoked_ms", n(at.timestamp_millis()));
                }
                self.put_credential_entry(&token.hash, token.created_at, d)
                    .await?;
            }
        }
        if let Some(exp) = token.expires_at {
            req = req
                .item("expires_ms", n(exp.timestamp_millis()))
                .item(TTL_ATTRIBUTE, n(exp.timestamp()));
        }
        req.send().await.map_err(err("PutItem"))?;
        Ok(())
    }

    async fn get_token(&self, hash: &str) -> Result<Option<TokenRecord>, StoreError> {
        let Some(item) = self.get(&format!("TOKEN#{hash}"), "TOKEN").await? else {
            return Ok(None);
        };
        let kind = get_s(&item, "kind")?;
        let subject = get_s(&item, "subject")?;
        let subject = match kind.as_str() {
            "user" => TokenSubject::User {
                username: subject,
                role: role(&get_s(&item, "role")?)?,
            },
            "defender" => TokenSubject::Defender(DefenderCredential {
                id: subject,
                name: opt_s(&item, "name"),
                scope: stored_scope(opt_s(&item, "scope").as_deref())?,
                created_by: opt_s(&item, "created_by"),
                revoked_at: opt_n(&item, "revoked_ms")?.map(ms_to_time).transpose()?,
            }),
            other => return Err(StoreError::Corrupt(format!("token kind {other:?}"))),
        };
        Ok(Some(TokenRecord {
            hash: hash.to_string(),
            subject,
            created_at: ms_to_time(get_n(&item, "created_ms")?)?,
            expires_at: opt_n(&item, "expires_ms")?.map(ms_to_time).transpose()?,
        }))
    }

    async fn expire_token(&self, hash: &str, at: DateTime<Utc>) -> Result<(), StoreError> {
        let res = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(format!("TOKEN#{hash}")))
            .key("sk", s("TOKEN"))
            .condition_expression("attribute_exists(pk)")
            .update_expression(format!("SET expires_ms = :ms, {TTL_ATTRIBUTE} = :ttl"))
            .expression_attribute_values(":ms", n(at.timestamp_millis()))
            .expression_attribute_values(":ttl", n(at.timestamp()))
            .send()
            .await;
        match res {
            Ok(_) => Ok(()),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                Ok(())
            }
            Err(e) => Err(err("UpdateItem")(e)),
        }
    }

    async fn get_policy(&self, kind: PolicyKind) -> Result<Option<StoredPolicy>, StoreError> {
        let Some(item) = self.get("POLICY", kind.as_str()).await? else {
            return Ok(None);
        };
        Ok(Some(StoredPolicy {
            revision: u64::try_from(get_n(&item, "revision")?)
                .map_err(|_| StoreError::Corrupt("negative policy revision".to_string()))?,
            body: get_s(&item, "body")?,
            updated_at: ms_to_time(get_n(&item, "updated_ms")?)?,
        }))
    }

    async fn put_policy(
        &self,
        kind: PolicyKind,
        expected: u64,
        policy: StoredPolicy,
    ) -> Result<bool, StoreError> {
        let mut req = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("pk", s("POLICY"))
            .item("sk", s(kind.as_str()))
            .item("revision", n(policy.revision))
            .item("body", s(policy.body))
            .item("updated_ms", n(policy.updated_at.timestamp_millis()));
        req = if expected == 0 {
            req.condition_expression("attribute_not_exists(pk)")
        } else {
            req.condition_expression("revision = :expected")
                .expression_attribute_values(":expected", n(expected))
        };
        put_if(req.send().await)
    }

    async fn insert_audits(&self, batch: NewBatch) -> Result<BatchOutcome, StoreError> {
        let marker_pk = format!("BATCH#{}#{}", batch.credential, batch.batch_id);
        let seen = |marker: Item| {
            if opt_s(&marker, "hash").as_deref() == Some(batch.body_hash.as_str()) {
                BatchOutcome::Duplicate
            } else {
                BatchOutcome::Conflict
            }
        };
        if let Some(marker) = self.get(&marker_pk, "BATCH").await? {
            return Ok(seen(marker));
        }
        let ttl = batch.expires_at.timestamp();
        let mut requests = Vec::with_capacity(batch.audits.len());
        for a in &batch.audits {
            let put = PutRequest::builder()
                .item("pk", s(audits::day_bucket(a.category.as_str(), a.time_ms)))
                .item("sk", s(&a.sk))
                .item("time_ms", n(a.time_ms))
                .item("task", s(&a.task))
                .item("container", s(&a.container))
                .item("kind", s(&a.kind))
                .item("body", s(&a.body))
                .item(TTL_ATTRIBUTE, n(ttl))
                .build()
                .map_err(|e| StoreError::Dynamo {
                    operation: "BatchWriteItem",
                    detail: e.to_string(),
                })?;
            requests.push(WriteRequest::builder().put_request(put).build());
        }
        // Records first, marker last: a retry after a failure in between rewrites the same
        // keys, so nothing is duplicated and nothing is lost.
        self.write_all(requests).await?;
        let res = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("pk", s(&marker_pk))
            .item("sk", s("BATCH"))
            .item("hash", s(&batch.body_hash))
            .item("received_ms", n(batch.received_at.timestamp_millis()))
            .item(TTL_ATTRIBUTE, n(ttl))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await;
        if put_if(res)? {
            return Ok(BatchOutcome::Stored(batch.audits.len()));
        }
        // Another request stored the marker in between.
        let marker = self.get(&marker_pk, "BATCH").await?.unwrap_or_default();
        Ok(seen(marker))
    }

    async fn query_audits(&self, q: AuditQuery) -> Result<AuditRows, StoreError> {
        self.walk_audits(&q).await
    }

    async fn prune(&self, _before: DateTime<Utc>) -> Result<u64, StoreError> {
        // Expired items carry `ttl`; DynamoDB deletes them. Queries never reach past the
        // retention window, so items waiting for TTL deletion are not shown.
        Ok(0)
    }

    async fn touch_defender(&self, contact: DefenderContact) -> Result<TouchOutcome, StoreError> {
        let key = defender_key(&contact.identity);
        let audits = contact.audits.min(MAX_COUNTER);
        let dropped = contact.dropped.min(MAX_COUNTER);
        // The common case, one request: a known defender whose counters stay below the maximum.
        let res = self
            .update_defender(&contact, &key, Counters::Add { audits, dropped }, true)
            .send()
            .await;
        match res {
            Ok(_) => return Ok(TouchOutcome::Recorded),
            Err(e) if condition_failed(&e) => {}
            Err(e) => return Err(err("UpdateItem")(e)),
        }
        let counters = match self.get("DEFENDER", &key).await? {
            // Near the maximum: the saturated sums, computed here.
            Some(item) => Counters::Set {
                audits: get_counter(&item, "audits")
                    .saturating_add(audits)
                    .min(MAX_COUNTER),
                dropped: get_counter(&item, "dropped")
                    .saturating_add(dropped)
                    .min(MAX_COUNTER),
            },
            None => {
                if !self.count_new_defender(&contact).await? {
                    return Ok(TouchOutcome::LimitReached);
                }
                Counters::Add { audits, dropped }
            }
        };
        self.update_defender(&contact, &key, counters, false)
            .send()
            .await
            .map_err(err("UpdateItem"))?;
        Ok(TouchOutcome::Recorded)
    }

    async fn list_defenders(
        &self,
        after: Option<String>,
        limit: usize,
    ) -> Result<Vec<(String, DefenderInfo)>, StoreError> {
        let items = self.query_after("DEFENDER", after, limit).await?;
        items
            .iter()
            .map(|item| {
                Ok((
                    get_s(item, "sk")?,
                    DefenderInfo {
                        task: get_s(item, "task")?,
                        container: get_s(item, "container")?,
                        image: get_s(item, "image")?,
                        instance: opt_s(item, "instance"),
                        version: get_s(item, "version")?,
                        first_seen: ms_to_time(get_n(item, "first_ms")?)?,
                        last_contact: ms_to_time(get_n(item, "last_ms")?)?,
                        audits_received: get_counter(item, "audits"),
                        audits_dropped: get_counter(item, "dropped"),
                        status: None,
                    },
                ))
            })
            .collect()
    }

    async fn list_credentials(
        &self,
        after: Option<String>,
        limit: usize,
    ) -> Result<Vec<CredentialInfo>, StoreError> {
        let items = self.query_after("CREDENTIALS", after, limit).await?;
        items
            .iter()
            .map(|item| {
                Ok(CredentialInfo {
                    id: get_s(item, "sk")?,
                    name: opt_s(item, "name"),
                    scope: stored_scope(opt_s(item, "scope").as_deref())?,
                    created_at: ms_to_time(get_n(item, "created_ms")?)?,
                    created_by: opt_s(item, "created_by"),
                    revoked_at: opt_n(item, "revoked_ms")?.map(ms_to_time).transpose()?,
                })
            })
            .collect()
    }

    async fn revoke_credential(&self, id: &str, at: DateTime<Utc>) -> Result<bool, StoreError> {
        let Some(entry) = self.get("CREDENTIALS", id).await? else {
            return Ok(false);
        };
        let hash = get_s(&entry, "hash")?;
        // The token first: it is what authenticates.
        for (pk, sk) in [
            (format!("TOKEN#{hash}"), "TOKEN"),
            ("CREDENTIALS".into(), id),
        ] {
            let res = self
                .client
                .update_item()
                .table_name(&self.table)
                .key("pk", s(pk))
                .key("sk", s(sk))
                .update_expression("SET revoked_ms = if_not_exists(revoked_ms, :at)")
                .condition_expression("attribute_exists(pk)")
                .expression_attribute_values(":at", n(at.timestamp_millis()))
                .send()
                .await;
            match res {
                Ok(_) => {}
                Err(e) if condition_failed(&e) => {}
                Err(e) => return Err(err("UpdateItem")(e)),
            }
        }
        Ok(true)
    }
}
