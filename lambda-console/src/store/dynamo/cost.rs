//! The most one console request can read from DynamoDB, derived from the bounds in code: the
//! README's table ("DynamoDB reads per request") is checked against [`read_costs`].
//!
//! Read capacity: a strongly consistent read costs 1 RCU per 4 KiB, an eventually consistent
//! one half that, each request rounded up to whole 4 KiB (so at least one unit per request).
//! Point reads (GetItem) are strongly consistent; audit and list Queries eventually consistent.

use super::{MAX_AUDIT_QUERY_REQUESTS, QUERY_RESPONSE_BYTES};
use crate::store::{AUDIT_ITEM_OVERHEAD, MAX_AUDIT_BYTES};

/// DynamoDB's read unit.
pub const READ_UNIT_BYTES: usize = 4096;
/// DynamoDB's largest item: no stored policy is larger.
pub const MAX_ITEM_BYTES: usize = 400 * 1024;
/// Identity fields (task, container, image, instance) are at most 512 bytes, `version` and
/// credential ids at most 64 (the console's request checks).
pub const IDENTITY_FIELD_BYTES: usize = 512;
/// Largest defender item: the key and the attributes repeat the four identity fields; version,
/// credential, five numbers (at most 21 bytes each), `pk` and the attribute names.
pub const MAX_DEFENDER_ITEM_BYTES: usize =
    2 * (4 * IDENTITY_FIELD_BYTES + 3) + 2 * 64 + 5 * 21 + 8 + 128;
/// Largest credential or defender token item: its scope comes from an install-bundle body of
/// at most 16 KiB; id, hash, name (≤ 128), creator, numbers and names fit in 1 KiB more.
pub const MAX_CREDENTIAL_ITEM_BYTES: usize = 16 * 1024 + 1024;
/// Largest user item (name, Argon2 PHC string, role).
pub const MAX_USER_ITEM_BYTES: usize = 4096;
/// Largest batch marker item (key with credential and batch id, hash, numbers).
pub const MAX_MARKER_ITEM_BYTES: usize = 1024;
/// An audit record's JSON is at most 64 KiB (`routes::audits::MAX_RECORD_BYTES`); its key and
/// columns add at most [`AUDIT_ITEM_OVERHEAD`] and 2 KiB.
pub const MAX_AUDIT_ITEM_BYTES: usize = 64 * 1024 + AUDIT_ITEM_OVERHEAD + 2048;

/// Strongly consistent read units of one GetItem of an item of at most `bytes`.
pub fn rcu_get(bytes: usize) -> usize {
    bytes.div_ceil(READ_UNIT_BYTES).max(1)
}

/// Eventually consistent read units of `bytes` read in `requests` Queries (worst case: each
/// request rounds up to whole units, an empty answer costs one half unit).
pub fn rcu_queries(bytes: usize, requests: usize) -> usize {
    (bytes.div_ceil(READ_UNIT_BYTES) + requests).div_ceil(2)
}

/// Queries and bytes of a key-ordered list page of `limit` rows (the route asks for one more).
fn list_page(limit: usize, item_bytes: usize) -> (usize, usize) {
    let bytes = (limit + 1) * item_bytes;
    // One answer per MiB, and one more that finds the end.
    (bytes.div_ceil(QUERY_RESPONSE_BYTES) + 1, bytes)
}

/// One row of the table: a route, what it sends at most, and the read units that can cost.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReadCost {
    pub route: &'static str,
    pub requests: String,
    pub rcu: usize,
}

impl ReadCost {
    /// The README's table row.
    pub fn row(&self) -> String {
        format!("| {} | {} | {} |", self.route, self.requests, self.rcu)
    }
}

/// The worst case of each route that reads DynamoDB, beyond authenticating the caller (the
/// first row), for list pages of at most `defenders_page` and `credentials_page` rows.
pub fn read_costs(defenders_page: usize, credentials_page: usize) -> Vec<ReadCost> {
    // The audit walk reads what it examines (under MAX_AUDIT_BYTES, counted generously) plus
    // the rest of the answer in which it stopped: one answer and the item crossing its end.
    let audit_bytes = MAX_AUDIT_BYTES + QUERY_RESPONSE_BYTES + MAX_AUDIT_ITEM_BYTES;
    let (dq, db) = list_page(defenders_page, MAX_DEFENDER_ITEM_BYTES);
    let (cq, cb) = list_page(credentials_page, MAX_CREDENTIAL_ITEM_BYTES);
    let policy = rcu_get(MAX_ITEM_BYTES);
    let defender = rcu_get(MAX_DEFENDER_ITEM_BYTES);
    vec![
        ReadCost {
            route: "authentication (token, cached 10 s; Basic: the user)",
            requests: "1 GetItem".into(),
            rcu: rcu_get(MAX_CREDENTIAL_ITEM_BYTES).max(rcu_get(MAX_USER_ITEM_BYTES)),
        },
        ReadCost {
            route: "`GET /api/v1/audits/...` (both)",
            requests: format!("≤ {MAX_AUDIT_QUERY_REQUESTS} Query"),
            rcu: rcu_queries(audit_bytes, MAX_AUDIT_QUERY_REQUESTS),
        },
        ReadCost {
            route: "`GET /api/v1/defenders`",
            requests: format!("≤ {dq} Query"),
            rcu: rcu_queries(db, dq),
        },
        ReadCost {
            route: "`GET /api/v1/defenders/credentials`",
            requests: format!("≤ {cq} Query"),
            rcu: rcu_queries(cb, cq),
        },
        ReadCost {
            route: "`DELETE /api/v1/defenders/credentials/{id}`",
            requests: "1 GetItem".into(),
            rcu: rcu_get(MAX_CREDENTIAL_ITEM_BYTES),
        },
        ReadCost {
            route: "`GET /api/v1/policies/...`",
            requests: "1 GetItem (cached 1 s)".into(),
            rcu: policy,
        },
        ReadCost {
            route: "`PUT /api/v1/policies/...`",
            requests: "≤ 5 GetItem (compare-and-set retries)".into(),
            rcu: 5 * policy,
        },
        ReadCost {
            route: "`GET /api/v1/defender/policy`",
            requests: "3 GetItem (both policies, cached 1 s; the defender)".into(),
            rcu: 2 * policy + defender,
        },
        ReadCost {
            route: "`POST /api/v1/defender/audits`",
            requests: "3 GetItem (batch marker twice, the defender)".into(),
            rcu: 2 * rcu_get(MAX_MARKER_ITEM_BYTES) + defender,
        },
        ReadCost {
            route: "`POST /api/v1/authenticate`",
            requests: "1 GetItem".into(),
            rcu: rcu_get(MAX_USER_ITEM_BYTES),
        },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The README states what the code bounds.
    #[test]
    fn the_readme_table_matches_the_bounds() {
        let readme = include_str!("../../../../README.md");
        let costs = read_costs(
            crate::routes::defenders::MAX_DEFENDERS_PAGE,
            crate::routes::credentials::MAX_PAGE,
        );
        for c in &costs {
            eprintln!("{}", c.row());
        }
        for c in &costs {
            let row = c.row();
            assert!(readme.contains(&row), "README lacks the row\n{row}");
        }
        let audits = &costs[1];
        assert_eq!(
            (audits.requests.as_str(), audits.rcu),
            ("≤ 37 Query", 667),
            "{audits:?}"
        );
        assert_eq!(
            crate::routes::audits::MAX_RECORD_BYTES + AUDIT_ITEM_OVERHEAD + 2048,
            MAX_AUDIT_ITEM_BYTES
        );
    }
}
