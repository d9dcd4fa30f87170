//! The DynamoDB store's defender and credential helpers: the defender item's update (counters
//! added, or set to saturated sums), the daily count of a credential's new defenders, the
//! credentials list entry and key-ordered pages of a partition.

use aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder;
use chrono::{DateTime, Utc};

use super::{condition_failed, err, n, s, DynamoStore, Item, TTL_ATTRIBUTE};
use crate::store::{scope_json, DefenderContact, DefenderCredential, StoreError, MAX_COUNTER};

/// How a contact changes a defender's counters.
pub(super) enum Counters {
    /// `ADD`: the usual case.
    Add { audits: u64, dropped: u64 },
    /// `SET`: saturated sums computed from the stored values.
    Set { audits: u64, dropped: u64 },
}

impl DynamoStore {
    /// The credential's entry in the `CREDENTIALS` list.
    pub(super) async fn put_credential_entry(
        &self,
        hash: &str,
        created_at: DateTime<Utc>,
        d: &DefenderCredential,
    ) -> Result<(), StoreError> {
        let mut req = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("pk", s("CREDENTIALS"))
            .item("sk", s(&d.id))
            .item("hash", s(hash))
            .item("scope", s(scope_json(&d.scope)?))
            .item("created_ms", n(created_at.timestamp_millis()));
        if let Some(name) = &d.name {
            req = req.item("name", s(name));
        }
        if let Some(by) = &d.created_by {
            req = req.item("created_by", s(by));
        }
        if let Some(at) = d.revoked_at {
            req = req.item("revoked_ms", n(at.timestamp_millis()));
        }
        req.send().await.map_err(err("PutItem"))?;
        Ok(())
    }

    /// Up to `limit` items of partition `pk` with a sort key above `after`, in key order. Every
    /// Query carries `Limit` (what the page still needs); each answer brings at least one item
    /// or ends the partition, so at most `limit` Queries are sent (in practice one per MiB read).
    pub(super) async fn query_after(
        &self,
        pk: &str,
        after: Option<String>,
        limit: usize,
    ) -> Result<Vec<Item>, StoreError> {
        let mut out = Vec::new();
        let mut start: Option<Item> = None;
        let after = after.filter(|a| !a.is_empty());
        for _ in 0..limit {
            let want = i32::try_from(limit - out.len()).unwrap_or(i32::MAX);
            let mut req = self
                .client
                .query()
                .table_name(&self.table)
                .expression_attribute_values(":pk", s(pk))
                .limit(want)
                .set_exclusive_start_key(start.take());
            req = match &after {
                Some(a) => req
                    .key_condition_expression("pk = :pk AND sk > :after")
                    .expression_attribute_values(":after", s(a)),
                None => req.key_condition_expression("pk = :pk"),
            };
            let page = req.send().await.map_err(err("Query"))?;
            out.extend(page.items.unwrap_or_default());
            match page.last_evaluated_key {
                Some(k) if !k.is_empty() && out.len() < limit => start = Some(k),
                _ => break,
            }
        }
        if start.is_some() {
            // An answer without items but with more to read: never cut a page silently.
            return Err(StoreError::Dynamo {
                operation: "Query",
                detail: format!("{pk}: page of {limit} still incomplete after {limit} queries"),
            });
        }
        out.truncate(limit);
        Ok(out)
    }

    /// The update of a defender item for `contact`; `known` adds the condition that the item
    /// exists and its counters stay at most [`MAX_COUNTER`] after the `ADD`.
    pub(super) fn update_defender(
        &self,
        contact: &DefenderContact,
        key: &str,
        counters: Counters,
        known: bool,
    ) -> UpdateItemFluentBuilder {
        let d = &contact.identity;
        let mut set = vec![
            "task = :task",
            "container = :container",
            "image = :image",
            "first_ms = if_not_exists(first_ms, :at)",
            "last_ms = :at",
            "credential = if_not_exists(credential, :credential)",
            "expires_at = :ttl",
        ];
        let mut req = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s("DEFENDER"))
            .key("sk", s(key))
            .expression_attribute_values(":task", s(&d.task))
            .expression_attribute_values(":container", s(&d.container))
            .expression_attribute_values(":image", s(&d.image))
            .expression_attribute_values(":at", n(contact.at.timestamp_millis()))
            .expression_attribute_values(":credential", s(&contact.credential))
            .expression_attribute_values(":ttl", n(contact.expires_at.timestamp()));
        if let Some(i) = &d.instance {
            set.push("instance = :instance");
            req = req.expression_attribute_values(":instance", s(i));
        }
        if d.version.is_empty() {
            set.push("version = if_not_exists(version, :version)");
        } else {
            set.push("version = :version");
        }
        req = req.expression_attribute_values(":version", s(&d.version));
        let (add, audits, dropped) = match counters {
            Counters::Add { audits, dropped } => (true, audits, dropped),
            Counters::Set { audits, dropped } => {
                set.push("audits = :audits");
                set.push("dropped = :dropped");
                (false, audits, dropped)
            }
        };
        req = req
            .expression_attribute_values(":audits", n(audits))
            .expression_attribute_values(":dropped", n(dropped));
        let mut expr = format!("SET {}", set.join(", "));
        if add {
            expr.push_str(" ADD audits :audits, dropped :dropped");
        }
        if known {
            req = req
                .condition_expression(
                    "attribute_exists(pk) AND audits <= :amax AND dropped <= :dmax",
                )
                .expression_attribute_values(":amax", n(MAX_COUNTER - audits))
                .expression_attribute_values(":dmax", n(MAX_COUNTER - dropped));
        }
        req.update_expression(expr)
    }

    /// Counts a new defender against its credential's daily limit; `false` when the limit is
    /// reached (nothing counted).
    pub(super) async fn count_new_defender(
        &self,
        contact: &DefenderContact,
    ) -> Result<bool, StoreError> {
        if contact.new_per_day == 0 {
            return Ok(false);
        }
        let day = contact.at.format("%Y-%m-%d");
        let res = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(format!("CREDENTIAL#{}", contact.credential)))
            .key("sk", s(format!("NEW#{day}")))
            .update_expression(format!("SET {TTL_ATTRIBUTE} = :ttl ADD n :one"))
            .condition_expression("attribute_not_exists(n) OR n < :cap")
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":cap", n(contact.new_per_day))
            .expression_attribute_values(
                ":ttl",
                n((contact.at + chrono::Duration::days(2)).timestamp()),
            )
            .send()
            .await;
        match res {
            Ok(_) => Ok(true),
            Err(e) if condition_failed(&e) => Ok(false),
            Err(e) => Err(err("UpdateItem")(e)),
        }
    }
}
