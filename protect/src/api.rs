//! The console HTTP API's request and response bodies, shared by the console and the defender.
//!
//! Routes (all under `/api/v1`, see ARCHITECTURE.md):
//! - `GET /defender/policy?task=&container=&image=[&instance=&version=]` → [`PolicyBundle`]
//!   (ETag / `If-None-Match` → 304)
//! - `POST /defender/audits` with an [`AuditBatch`] → [`AuditBatchAck`]
//! - `GET /defenders?limit=&cursor=&status=` → [`DefenderList`] (paged)
//! - `GET /audits/runtime/app-embedded`, `GET /audits/firewall/app/app-embedded` → [`AuditPage`]
//! - `POST /authenticate` with [`AuthenticateRequest`] → [`TokenResponse`]
//! - `POST /users` with [`NewUser`] → [`UserInfo`]
//! - `POST /defenders/install-bundle` with an optional [`InstallBundleRequest`] →
//!   [`InstallBundle`]
//! - `GET /defenders/defaults` → [`DefenderDefaults`]
//! - `GET /defenders/credentials` → [`CredentialList`]; `DELETE /defenders/credentials/{id}`
//! - every error: [`ErrorBody`]

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::audit::AuditRecord;
use crate::cnaf_policy::CnafPolicy;
pub use crate::credential::CredentialScope;
use crate::policy::RuntimePolicy;

/// Path of the defender's policy route.
pub const DEFENDER_POLICY_PATH: &str = "/api/v1/defender/policy";
/// Path of the defender's audit route.
pub const DEFENDER_AUDITS_PATH: &str = "/api/v1/defender/audits";
/// Most records one [`AuditBatch`] may carry.
pub const MAX_BATCH_RECORDS: usize = 1000;
/// Largest accepted [`AuditBatch`] body, in bytes.
pub const MAX_BATCH_BYTES: usize = 1 << 20;
/// Longest accepted `batch_id`.
pub const MAX_BATCH_ID_LEN: usize = 128;
/// Largest `dropped` one [`AuditBatch`] may report (a million drops a second for 11 days);
/// anything above is refused as absurd.
pub const MAX_BATCH_DROPPED: u64 = 1_000_000_000_000;

/// Every error the console returns: `{"error": "field: what is wrong; how to fix it"}`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErrorBody {
    /// What was wrong and how to fix it.
    pub error: String,
}

/// A console user's role. Each role includes the rights of the ones after it.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[serde(rename_all = "kebab-case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum Role {
    /// Reads policies, audits and defenders.
    Auditor,
    /// Auditor rights, plus the transform and defender credentials.
    DefenderManager,
    /// Everything, including policies and users.
    Admin,
}

impl Role {
    /// The role's name on the wire (`admin`, `defender-manager`, `auditor`).
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Auditor => "auditor",
            Role::DefenderManager => "defender-manager",
            Role::Admin => "admin",
        }
    }

    /// Parses a wire name.
    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "auditor" => Some(Role::Auditor),
            "defender-manager" => Some(Role::DefenderManager),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }
}

/// `POST /api/v1/authenticate` body. Unknown fields are refused (only the console reads it,
/// as a request).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AuthenticateRequest {
    pub username: String,
    pub password: String,
}

/// A bearer token for `Authorization: Bearer TOKEN`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TokenResponse {
    pub token: String,
    /// When the token stops working.
    pub expires_at: DateTime<Utc>,
}

/// `POST /api/v1/users` body. Unknown fields are refused (only the console reads it, as a
/// request).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NewUser {
    /// 1-64 of `A-Z a-z 0-9 . _ @ -`.
    #[cfg_attr(feature = "openapi", schema(pattern = r"^[A-Za-z0-9._@-]{1,64}$"))]
    pub username: String,
    /// 12 to 1024 characters.
    #[cfg_attr(feature = "openapi", schema(min_length = 12, max_length = 1024))]
    pub password: String,
    pub role: Role,
}

/// A user as the console shows it (never with its password).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UserInfo {
    pub username: String,
    pub role: Role,
}

/// `POST /api/v1/defenders/install-bundle` body (optional). Unknown fields are refused.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct InstallBundleRequest {
    /// A label for the credential (e.g. the service it is for): at most 128 printable
    /// characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(
        feature = "openapi",
        schema(max_length = 128, pattern = r"^[^\u0000-\u001f\u007f-\u009f]*$")
    )]
    pub name: Option<String>,
    /// What the credential may speak for; absent: every task in every cluster.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<CredentialScope>,
}

/// A defender credential: give it to defenders as `DEFENDER_TOKEN` (best through a Secrets
/// Manager secret, `--token-secret-arn`). Shown once; the console keeps only its hash.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct InstallBundle {
    pub token: String,
    /// The credential's id (not secret).
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// What the credential may speak for (`{"tasks": ["*"], "clusters": ["*"]}` when the request
    /// named no scope). Absent in answers of older consoles, whose credentials were unscoped.
    #[serde(default)]
    pub scope: CredentialScope,
}

/// A defender credential as `GET /api/v1/defenders/credentials` lists it (never its token or
/// hash).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CredentialInfo {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub scope: CredentialScope,
    pub created_at: DateTime<Utc>,
    /// The user who created it, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_by: Option<String>,
    /// Set once revoked: the token no longer works.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<DateTime<Utc>>,
}

/// `GET /api/v1/defenders/credentials` answer, in id order. Pass `next_cursor` as `cursor` for
/// the next page.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CredentialList {
    pub credentials: Vec<CredentialInfo>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// Path of the credentials list ([`CredentialList`]); `DELETE {path}/{id}` revokes one.
pub const CREDENTIALS_PATH: &str = "/api/v1/defenders/credentials";

/// `GET /api/v1/defenders/defaults`: what a tool embedding the defender takes from the console
/// when its user names nothing else.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DefenderDefaults {
    /// The defender image the console's transform uses by default.
    pub defender_image: String,
    /// The console's version.
    pub version: String,
}

/// Path of [`DefenderDefaults`].
pub const DEFENDER_DEFAULTS_PATH: &str = "/api/v1/defenders/defaults";
/// Path of the install bundle route ([`InstallBundle`]).
pub const INSTALL_BUNDLE_PATH: &str = "/api/v1/defenders/install-bundle";
/// Path of the CNAF policy route.
pub const CNAF_POLICY_PATH: &str = "/api/v1/policies/firewall/app/app-embedded";

/// Who a defender is: the workload it protects, and its build.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DefenderIdentity {
    /// Task definition family (`DEFENDER_TASK_FAMILY`).
    #[cfg_attr(
        feature = "openapi",
        schema(
            max_length = 512,
            pattern = r"^[^\u0000-\u001f\u007f-\u009f]*[^\s\u0000-\u001f\u007f-\u009f][^\u0000-\u001f\u007f-\u009f]*$"
        )
    )]
    pub task: String,
    /// Container name (`DEFENDER_CONTAINER_NAME`).
    #[cfg_attr(
        feature = "openapi",
        schema(
            max_length = 512,
            pattern = r"^[^\u0000-\u001f\u007f-\u009f]*[^\s\u0000-\u001f\u007f-\u009f][^\u0000-\u001f\u007f-\u009f]*$"
        )
    )]
    pub container: String,
    /// Image (`DEFENDER_IMAGE`).
    #[cfg_attr(
        feature = "openapi",
        schema(
            max_length = 512,
            pattern = r"^[^\u0000-\u001f\u007f-\u009f]*[^\s\u0000-\u001f\u007f-\u009f][^\u0000-\u001f\u007f-\u009f]*$"
        )
    )]
    pub image: String,
    /// The running task (e.g. its ARN or id), to tell replicas apart.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(
        feature = "openapi",
        schema(max_length = 512, pattern = r"^[^\u0000-\u001f\u007f-\u009f]*$")
    )]
    pub instance: Option<String>,
    /// The defender's version.
    #[serde(default)]
    #[cfg_attr(
        feature = "openapi",
        schema(max_length = 64, pattern = r"^[^\u0000-\u001f\u007f-\u009f]*$")
    )]
    pub version: String,
}

/// A JSON Schema `pattern` for a required identity field: printable text with something other
/// than whitespace in it (the console trims identity fields).
pub const IDENTITY_REGEX: &str = r"^[^\u0000-\u001f\u007f-\u009f]*[^\s\u0000-\u001f\u007f-\u009f][^\u0000-\u001f\u007f-\u009f]*$";

/// `POST /api/v1/defender/audits` body: at most [`MAX_BATCH_RECORDS`] records and
/// [`MAX_BATCH_BYTES`] bytes. Posting the same `batch_id` again is accepted and stores nothing.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AuditBatch {
    /// Unique per batch (1-128 of `A-Z a-z 0-9 . _ : -`); a retry reuses it.
    #[cfg_attr(feature = "openapi", schema(pattern = r"^[A-Za-z0-9._:-]{1,128}$"))]
    pub batch_id: String,
    pub defender: DefenderIdentity,
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<Object>, max_items = 1000))]
    pub records: Vec<AuditRecord>,
    /// Records the defender had to drop (queue full) since its last accepted batch.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(maximum = 1_000_000_000_000_u64))]
    pub dropped: u64,
}

/// Answer to an [`AuditBatch`].
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AuditBatchAck {
    pub batch_id: String,
    /// Records stored by this request (0 for a duplicate).
    pub accepted: usize,
    /// True when this `batch_id` had been stored before.
    pub duplicate: bool,
}

/// `GET /api/v1/defender/policy` answer: the runtime rules matching the caller's scope (same
/// revision as the whole policy) and the CNAF rule for its task family (zero or one rule).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PolicyBundle {
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub runtime: RuntimePolicy,
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub cnaf: CnafPolicy,
}

/// A defender the console has heard from.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DefenderInfo {
    pub task: String,
    pub container: String,
    pub image: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance: Option<String>,
    pub version: String,
    pub first_seen: DateTime<Utc>,
    /// Last policy fetch or audit batch.
    pub last_contact: DateTime<Utc>,
    /// Audit records received.
    pub audits_received: u64,
    /// Audit records the defender reported dropping.
    pub audits_dropped: u64,
    /// How recent `last_contact` is, judged by the console when it answers. Absent in answers
    /// of older consoles.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<DefenderStatus>,
}

/// Whether a defender is in touch, from the age of its last contact.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[serde(rename_all = "lowercase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum DefenderStatus {
    /// Heard from within the connected threshold (a few poll intervals).
    Connected,
    /// Silent longer than that, but within the stale threshold.
    Stale,
    /// Silent longer than the stale threshold.
    Disconnected,
}

impl DefenderStatus {
    /// Every status, in the order error messages list them.
    pub const ALL: [DefenderStatus; 3] = [
        DefenderStatus::Connected,
        DefenderStatus::Stale,
        DefenderStatus::Disconnected,
    ];

    /// The wire name (`connected`, `stale`, `disconnected`).
    pub fn as_str(self) -> &'static str {
        match self {
            DefenderStatus::Connected => "connected",
            DefenderStatus::Stale => "stale",
            DefenderStatus::Disconnected => "disconnected",
        }
    }

    /// Parses a wire name.
    pub fn parse(s: &str) -> Option<DefenderStatus> {
        DefenderStatus::ALL.into_iter().find(|d| d.as_str() == s)
    }

    /// The status of a defender last heard from at `last_contact`, at `now`: `connected` up to
    /// `connected_within` ago (or in the future, clock skew between console instances), `stale`
    /// up to `stale_within` ago, `disconnected` beyond.
    pub fn at(
        last_contact: DateTime<Utc>,
        now: DateTime<Utc>,
        connected_within: chrono::Duration,
        stale_within: chrono::Duration,
    ) -> DefenderStatus {
        let age = now - last_contact;
        if age <= connected_within {
            DefenderStatus::Connected
        } else if age <= stale_within {
            DefenderStatus::Stale
        } else {
            DefenderStatus::Disconnected
        }
    }
}

/// `GET /api/v1/defenders` answer.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DefenderList {
    pub defenders: Vec<DefenderInfo>,
    /// Set when more defenders follow: pass it as `cursor` for the next page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// One page of audits, newest first. Pass `next_cursor` as `cursor` for the next page.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AuditPage {
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<Object>))]
    pub audits: Vec<AuditRecord>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// Checks a `batch_id`: 1-[`MAX_BATCH_ID_LEN`] characters of `A-Z a-z 0-9 . _ : -`.
pub fn valid_batch_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_BATCH_ID_LEN
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_round_trip_and_order() {
        for r in [Role::Auditor, Role::DefenderManager, Role::Admin] {
            assert_eq!(Role::parse(r.as_str()), Some(r));
            let json = serde_json::to_string(&r).unwrap();
            assert_eq!(json, format!("\"{}\"", r.as_str()));
        }
        assert!(Role::Admin > Role::DefenderManager && Role::DefenderManager > Role::Auditor);
        assert_eq!(Role::parse("root"), None);
    }

    #[test]
    fn batch_ids() {
        assert!(valid_batch_id("abc-1.2_3:x"));
        assert!(!valid_batch_id(""));
        assert!(!valid_batch_id("a#b"));
        assert!(!valid_batch_id(&"a".repeat(129)));
    }

    #[test]
    fn defender_status_from_the_age_of_the_last_contact() {
        let now = Utc::now();
        let (conn, stale) = (chrono::Duration::seconds(60), chrono::Duration::minutes(10));
        let at =
            |secs: i64| DefenderStatus::at(now - chrono::Duration::seconds(secs), now, conn, stale);
        assert_eq!(at(-5), DefenderStatus::Connected, "a contact in the future");
        assert_eq!(at(0), DefenderStatus::Connected);
        assert_eq!(at(60), DefenderStatus::Connected);
        assert_eq!(at(61), DefenderStatus::Stale);
        assert_eq!(at(600), DefenderStatus::Stale);
        assert_eq!(at(601), DefenderStatus::Disconnected);
        for s in DefenderStatus::ALL {
            assert_eq!(DefenderStatus::parse(s.as_str()), Some(s));
            assert_eq!(
                serde_json::to_string(&s).unwrap(),
                format!("\"{}\"", s.as_str())
            );
        }
        assert_eq!(DefenderStatus::parse("Connected"), None);
    }

    #[test]
    fn defender_info_without_status_still_reads() {
        let d: DefenderInfo = serde_json::from_str(
            r#"{"task":"t","container":"c","image":"i","version":"0.1.0",
                "first_seen":"2026-11-28T19:00:00Z","last_contact":"2026-11-28T19:00:10Z",
                "audits_received":1,"audits_dropped":0}"#,
        )
        .unwrap();
        assert_eq!(d.status, None);
        let json = serde_json::to_value(DefenderInfo {
            status: Some(DefenderStatus::Stale),
            ..d
        })
        .unwrap();
        assert_eq!(json["status"], "stale");
    }

    #[test]
    fn identity_defaults() {
        let d: DefenderIdentity =
            serde_json::from_str(r#"{"task":"t","container":"c","image":"i"}"#).unwrap();
        assert_eq!(d.instance, None);
        assert_eq!(d.version, "");
    }
}
