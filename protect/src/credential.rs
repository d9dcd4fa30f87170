//! What a defender credential may speak for: its [`CredentialScope`] (task family and cluster
//! patterns, the same [`Pattern`]s as policy scopes) and the checks the console applies to a
//! defender's identity and to every audit record it posts.
//!
//! - [`CredentialScope::from_value`] parses a scope with the JSON path of every bad field
//!   (`scope.tasks[0]: empty pattern; use "*" to match everything`).
//! - [`CredentialScope::check_identity`]: the identity a defender claims (policy fetch, batch)
//!   must fall inside the scope.
//! - [`CredentialScope::check_record`]: a record must describe the batch's own workload.
//! - [`cluster_of`]: the cluster named by a task ARN (`arn:aws:ecs:R:A:task/CLUSTER/ID`).

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::api::DefenderIdentity;
use crate::audit::AuditRecord;
use crate::pattern::Pattern;
use crate::policy::{PolicyError, Walker};

/// Most patterns one list of a credential scope may hold.
pub const MAX_SCOPE_PATTERNS: usize = 100;

fn any() -> Vec<Pattern> {
    vec![Pattern::any()]
}

/// The task families and clusters a defender credential may speak for. A missing field is
/// `["*"]`; an empty list is refused (it would read as "nothing" but match everything).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CredentialScope {
    /// Task definition family patterns, e.g. `payments-*`.
    #[serde(default = "any")]
    #[cfg_attr(feature = "openapi", schema(min_items = 1, max_items = 100))]
    pub tasks: Vec<Pattern>,
    /// ECS cluster name patterns. Anything but `*` needs the defender to know its task ARN
    /// (ECS task metadata), which names the cluster.
    #[serde(default = "any")]
    #[cfg_attr(feature = "openapi", schema(min_items = 1, max_items = 100))]
    pub clusters: Vec<Pattern>,
}

impl Default for CredentialScope {
    fn default() -> Self {
        CredentialScope::all()
    }
}

/// Why a defender's claim falls outside its credential. Each message names the request field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScopeError {
    /// The claimed task family matches none of the credential's task patterns.
    #[error(
        "defender.task {task:?} is outside this credential's scope (tasks: {allowed}); use a \
         credential issued for this task family"
    )]
    Task { task: String, allowed: String },
    /// The cluster named by a task ARN matches none of the credential's cluster patterns.
    #[error(
        "{field} names cluster {cluster:?}, outside this credential's scope (clusters: \
         {allowed}); use a credential issued for this cluster"
    )]
    Cluster {
        field: String,
        cluster: String,
        allowed: String,
    },
    /// The credential is limited to some clusters and the claim names none.
    #[error(
        "{field} {value:?} names no cluster (not a task ARN \
         arn:aws:ecs:REGION:ACCOUNT:task/CLUSTER/ID) and this credential is limited to clusters \
         {allowed}; run the defender where ECS task metadata is available, or use a credential \
         for every cluster"
    )]
    ClusterUnknown {
        field: String,
        value: String,
        allowed: String,
    },
    /// A record describes another workload than the batch's identity.
    #[error(
        "{field} {value:?} is not this batch's defender.{identity_field} {expected:?}; a batch \
         may carry only its own defender's audits"
    )]
    RecordMismatch {
        field: String,
        value: String,
        expected: String,
        identity_field: &'static str,
    },
}

fn list(patterns: &[Pattern]) -> String {
    patterns
        .iter()
        .map(Pattern::as_str)
        .collect::<Vec<_>>()
        .join(", ")
}

/// The cluster a task ARN names: `arn:PARTITION:ecs:REGION:ACCOUNT:task/CLUSTER/TASK_ID`.
/// Old-format ARNs (`task/TASK_ID`) and anything else name none.
pub fn cluster_of(task_arn: &str) -> Option<&str> {
    let mut parts = task_arn.splitn(6, ':');
    let (Some("arn"), Some(_), Some("ecs"), Some(_), Some(_), Some(resource)) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return None;
    };
    let mut rest = resource.strip_prefix("task/")?.split('/');
    match (rest.next(), rest.next(), rest.next()) {
        (Some(cluster), Some(id), None) if !cluster.is_empty() && !id.is_empty() => Some(cluster),
        _ => None,
    }
}

impl CredentialScope {
    /// Every task in every cluster (a credential created without a scope).
    pub fn all() -> CredentialScope {
        CredentialScope {
            tasks: any(),
            clusters: any(),
        }
    }

    /// Exactly one task family, any cluster (what the transform mints for a task definition).
    /// `*` in the name is taken literally only as far as patterns allow: family names
    /// (letters, digits, `-`, `_`) never contain one.
    pub fn task_family(family: &str) -> Result<CredentialScope, crate::pattern::PatternError> {
        Ok(CredentialScope {
            tasks: vec![Pattern::new(family)?],
            clusters: any(),
        })
    }

    /// Parses the `scope` object of an install-bundle request; `path` prefixes the JSON paths
    /// of the errors. Every bad field is listed.
    pub fn from_value(v: &Value, path: &str) -> Result<CredentialScope, PolicyError> {
        let mut w = Walker::default();
        if let Some(map) = w.object(v, path, &["tasks", "clusters"]) {
            for (key, what) in [("tasks", "task"), ("clusters", "cluster")] {
                let Some(list) = map.get(key) else { continue };
                let p = format!("{path}.{key}");
                match list.as_array() {
                    Some(a) if a.is_empty() => w.error(
                        &p,
                        format!("empty list; list at least one pattern, or \"*\" for every {what}"),
                    ),
                    Some(a) if a.len() > MAX_SCOPE_PATTERNS => w.error(
                        &p,
                        format!(
                            "{} patterns; a credential scope may list at most {MAX_SCOPE_PATTERNS}",
                            a.len()
                        ),
                    ),
                    _ => w.scope_patterns(list, &p),
                }
            }
        }
        w.finish()?;
        serde_json::from_value(v.clone()).map_err(|e| PolicyError::Invalid {
            errors: vec![crate::policy::FieldError::new(path, e.to_string())],
        })
    }

    /// True for the scope of every task in every cluster.
    pub fn is_all(&self) -> bool {
        let all = |l: &[Pattern]| l.iter().any(Pattern::matches_everything);
        all(&self.tasks) && all(&self.clusters)
    }

    fn every_cluster(&self) -> bool {
        self.clusters.iter().any(Pattern::matches_everything)
    }

    /// Whether the credential may speak for task family `task`.
    pub fn allows_task(&self, task: &str) -> bool {
        self.tasks.iter().any(|p| p.matches(task))
    }

    fn check_cluster(&self, field: &str, task_arn: &str) -> Result<(), ScopeError> {
        if self.every_cluster() {
            return Ok(());
        }
        match cluster_of(task_arn) {
            Some(c) if self.clusters.iter().any(|p| p.matches(c)) => Ok(()),
            Some(c) => Err(ScopeError::Cluster {
                field: field.to_string(),
                cluster: c.to_string(),
                allowed: list(&self.clusters),
            }),
            None => Err(ScopeError::ClusterUnknown {
                field: field.to_string(),
                value: task_arn.to_string(),
                allowed: list(&self.clusters),
            }),
        }
    }

    /// The identity a defender claims must be inside the scope: its task family matches a task
    /// pattern and, unless every cluster is allowed, its instance is a task ARN of an allowed
    /// cluster.
    pub fn check_identity(&self, id: &DefenderIdentity) -> Result<(), ScopeError> {
        if !self.allows_task(&id.task) {
            return Err(ScopeError::Task {
                task: id.task.clone(),
                allowed: list(&self.tasks),
            });
        }
        self.check_cluster("defender.instance", id.instance.as_deref().unwrap_or(""))
    }

    /// Record `index` of a batch from `id` (already checked with
    /// [`CredentialScope::check_identity`]) must describe that same workload: its task family,
    /// container and image are empty or the identity's, and its task ARN is empty, or the
    /// identity's instance, or (when the identity has none) of an allowed cluster.
    pub fn check_record(
        &self,
        id: &DefenderIdentity,
        index: usize,
        r: &AuditRecord,
    ) -> Result<(), ScopeError> {
        let same = |field: &str, value: &str, identity_field, expected: &str| {
            if value.is_empty() || value == expected {
                Ok(())
            } else {
                Err(ScopeError::RecordMismatch {
                    field: format!("records[{index}].{field}"),
                    value: value.to_string(),
                    expected: expected.to_string(),
                    identity_field,
                })
            }
        };
        same("task_family", &r.task_family, "task", &id.task)?;
        same("container", &r.container, "container", &id.container)?;
        same("image", &r.image, "image", &id.image)?;
        match id.instance.as_deref().filter(|i| !i.is_empty()) {
            Some(instance) => same("task_arn", &r.task_arn, "instance", instance),
            None if r.task_arn.is_empty() => Ok(()),
            None => self.check_cluster(&format!("records[{index}].task_arn"), &r.task_arn),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::AuditKind;
    use crate::policy::Effect;
    use serde_json::json;

    const ARN: &str = "arn:aws:ecs:eu-west-1:123456789012:task/prod/0123456789abcdef";

    fn identity(task: &str, instance: Option<&str>) -> DefenderIdentity {
        DefenderIdentity {
            task: task.into(),
            container: "app".into(),
            image: "img:1".into(),
            instance: instance.map(String::from),
            version: "0.1.0".into(),
        }
    }

    fn scope(v: Value) -> CredentialScope {
        CredentialScope::from_value(&v, "scope").expect("valid scope")
    }

    #[test]
    fn clusters_from_task_arns() {
        assert_eq!(cluster_of(ARN), Some("prod"));
        assert_eq!(
            cluster_of("arn:aws-cn:ecs:cn-north-1:1:task/c-1/abc"),
            Some("c-1")
        );
        assert_eq!(cluster_of("arn:aws:ecs:eu-west-1:1:task/abc"), None);
        assert_eq!(cluster_of("arn:aws:ecs:eu-west-1:1:service/c/s"), None);
        assert_eq!(cluster_of("arn:aws:s3:eu-west-1:1:task/c/abc"), None);
        assert_eq!(cluster_of("task-1"), None);
        assert_eq!(cluster_of(""), None);
    }

    #[test]
    fn missing_fields_are_everything_and_errors_name_the_field() {
        let s = scope(json!({}));
        assert!(s.is_all());
        assert_eq!(s, CredentialScope::all());
        let s = scope(json!({"tasks": ["payments-*"]}));
        assert!(!s.is_all());
        assert!(s.allows_task("PAYMENTS-api") && !s.allows_task("web"));
        let e = CredentialScope::from_value(
            &json!({"tasks": [], "clusters": ["", 3], "task": ["x"]}),
            "scope",
        )
        .expect_err("bad scope");
        assert_eq!(
            e.to_string(),
            "scope.task: unknown field; did you mean tasks? expected one of tasks, clusters\n\
             scope.tasks: empty list; list at least one pattern, or \"*\" for every task\n\
             scope.clusters[0]: empty pattern; use \"*\" to match everything\n\
             scope.clusters[1]: expected a string, found number 3"
        );
        let e = CredentialScope::from_value(&json!(["x"]), "scope").expect_err("not an object");
        assert_eq!(e.to_string(), "scope: expected an object, found an array");
        let many: Vec<String> = (0..=MAX_SCOPE_PATTERNS).map(|i| format!("t{i}")).collect();
        let e =
            CredentialScope::from_value(&json!({ "tasks": many }), "scope").expect_err("too many");
        assert_eq!(
            e.to_string(),
            "scope.tasks: 101 patterns; a credential scope may list at most 100"
        );
    }

    #[test]
    fn identities_inside_and_outside() {
        let s = scope(json!({"tasks": ["payments"], "clusters": ["prod*"]}));
        assert_eq!(s.check_identity(&identity("payments", Some(ARN))), Ok(()));
        assert_eq!(
            s.check_identity(&identity("web", Some(ARN)))
                .expect_err("other task")
                .to_string(),
            "defender.task \"web\" is outside this credential's scope (tasks: payments); use a \
             credential issued for this task family"
        );
        let other = ARN.replace("/prod/", "/staging/");
        let e = s
            .check_identity(&identity("payments", Some(&other)))
            .expect_err("other cluster");
        assert_eq!(
            e.to_string(),
            "defender.instance names cluster \"staging\", outside this credential's scope \
             (clusters: prod*); use a credential issued for this cluster"
        );
        let e = s
            .check_identity(&identity("payments", None))
            .expect_err("no task ARN");
        assert!(
            e.to_string().starts_with(
                "defender.instance \"\" names no cluster (not a task ARN \
                 arn:aws:ecs:REGION:ACCOUNT:task/CLUSTER/ID) and this credential is limited to \
                 clusters prod*;"
            ),
            "{e}"
        );
        // Any cluster: no task ARN needed.
        let s = scope(json!({"tasks": ["payments"]}));
        assert_eq!(
            s.check_identity(&identity("payments", Some("task-1"))),
            Ok(())
        );
    }

    #[test]
    fn records_must_describe_the_batch_workload() {
        let s = scope(json!({"tasks": ["payments"], "clusters": ["prod"]}));
        let mut r = AuditRecord::new(AuditKind::Process, Effect::Alert, "r", "m");
        let id = identity("payments", Some(ARN));
        assert_eq!(s.check_record(&id, 0, &r), Ok(()), "empty fields");
        r.task_family = "payments".into();
        r.container = "app".into();
        r.image = "img:1".into();
        r.task_arn = ARN.into();
        assert_eq!(s.check_record(&id, 0, &r), Ok(()));
        let mut other = r.clone();
        other.task_family = "web".into();
        let e = s.check_record(&id, 3, &other).expect_err("other task");
        assert_eq!(
            e.to_string(),
            "records[3].task_family \"web\" is not this batch's defender.task \"payments\"; a \
             batch may carry only its own defender's audits"
        );
        let mut other = r.clone();
        other.container = "sidecar".into();
        assert!(s.check_record(&id, 0, &other).is_err());
        let mut other = r.clone();
        other.task_arn = ARN.replace("0123", "9999");
        assert!(s.check_record(&id, 0, &other).is_err());
        // No instance in the identity: the record's ARN must be of an allowed cluster.
        let id = identity("payments", None);
        let s_any = scope(json!({"tasks": ["payments"]}));
        assert_eq!(s_any.check_record(&id, 0, &r), Ok(()));
        let mut other = r.clone();
        other.task_arn = ARN.replace("/prod/", "/staging/");
        assert!(s.check_record(&id, 0, &other).is_err());
    }

    #[test]
    fn round_trips_as_stored() {
        let s = scope(json!({"tasks": ["a*", "b"], "clusters": ["prod"]}));
        let text = serde_json::to_string(&s).expect("json");
        assert_eq!(text, r#"{"tasks":["a*","b"],"clusters":["prod"]}"#);
        let back: CredentialScope = serde_json::from_str(&text).expect("parse");
        assert_eq!(back, s);
        assert_eq!(
            CredentialScope::task_family("web").expect("family").tasks[0].as_str(),
            "web"
        );
    }
}
