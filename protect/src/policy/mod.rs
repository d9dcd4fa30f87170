//! The runtime policy: rules with a scope and three sections (processes, DNS, network).
//!
//! - [`RuntimePolicy::from_json`] parses and validates a policy; a bad policy yields a
//!   [`PolicyError`] listing every bad field with its JSON path
//!   (`rules[0].processes.effect: unknown effect "explode"; expected one of disable, alert,
//!   prevent, block`).
//! - [`RuntimePolicy::rule_for`] picks the first enabled rule whose scope matches a workload.
//! - [`Rule::check_process`], [`Rule::check_domain`], [`Rule::check_outbound`] and
//!   [`Rule::check_listen`] are the pure checks the defender calls (see `eval.rs`).
//! - [`NetTarget`] is one entry of an outbound list (IP, CIDR, `*:PORT`, `IP:PORT`, `[v6]:PORT`).

pub(crate) mod check;
mod eval;
mod net;

#[cfg(test)]
mod tests;

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::pattern::Pattern;

pub use eval::{Reason, Violation};
pub use net::{NetTarget, NetTargetError};

pub use check::FieldError;
pub(crate) use check::Walker;

/// What a section does when something matches its lists. Ordered by severity
/// (`Disable` < `Alert` < `Prevent` < `Block`).
#[derive(
    Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default,
)]
#[serde(rename_all = "lowercase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum Effect {
    /// No check at all.
    #[default]
    Disable,
    /// Allow, and write an audit.
    Alert,
    /// Deny the operation (EPERM) and write an audit.
    Prevent,
    /// Write an audit and stop the whole container with a non-zero exit.
    Block,
}

impl Effect {
    /// Every effect, in the order error messages list them.
    pub const ALL: [Effect; 4] = [
        Effect::Disable,
        Effect::Alert,
        Effect::Prevent,
        Effect::Block,
    ];

    /// The JSON spelling (`"prevent"`).
    pub fn as_str(self) -> &'static str {
        match self {
            Effect::Disable => "disable",
            Effect::Alert => "alert",
            Effect::Prevent => "prevent",
            Effect::Block => "block",
        }
    }
}

impl fmt::Display for Effect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the app does before a policy has been fetched.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
#[serde(rename_all = "lowercase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum Startup {
    /// Start at once with the last cached (or an empty) policy.
    #[default]
    Availability,
    /// Do not start the app until a policy has been fetched (bounded wait, then fail).
    Security,
}

impl Startup {
    /// The mode's name in policies and in `DEFENDER_STARTUP`.
    pub fn as_str(self) -> &'static str {
        match self {
            Startup::Availability => "availability",
            Startup::Security => "security",
        }
    }

    /// Parses a name as [`Startup::as_str`] writes it.
    pub fn parse(s: &str) -> Option<Startup> {
        match s {
            "availability" => Some(Startup::Availability),
            "security" => Some(Startup::Security),
            _ => None,
        }
    }
}

/// A concrete workload: the values a rule's scope is matched against.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Hash, Default)]
pub struct Scope {
    /// Task definition family (no revision), e.g. `twistlock-fargate-task`.
    pub task: String,
    /// Container name inside the task definition.
    pub container: String,
    /// Image reference as written in the task definition.
    pub image: String,
}

fn any() -> Vec<Pattern> {
    vec![Pattern::any()]
}

/// A rule's scope: patterns per field; the fields AND together, a missing field is `["*"]` and
/// an empty list also matches everything.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ScopePatterns {
    /// Task family patterns.
    #[serde(default = "any")]
    pub tasks: Vec<Pattern>,
    /// Container name patterns.
    #[serde(default = "any")]
    pub containers: Vec<Pattern>,
    /// Image reference patterns.
    #[serde(default = "any")]
    pub images: Vec<Pattern>,
}

impl Default for ScopePatterns {
    fn default() -> Self {
        ScopePatterns {
            tasks: any(),
            containers: any(),
            images: any(),
        }
    }
}

/// True when the list is empty or one of its patterns matches `value`.
pub(crate) fn any_matches(patterns: &[Pattern], value: &str) -> bool {
    patterns.is_empty() || patterns.iter().any(|p| p.matches(value))
}

impl ScopePatterns {
    /// Whether the workload falls inside this scope (every field must match).
    pub fn matches(&self, scope: &Scope) -> bool {
        any_matches(&self.tasks, &scope.task)
            && any_matches(&self.containers, &scope.container)
            && any_matches(&self.images, &scope.image)
    }
}

/// Which executables may run. Patterns with a `/` match the absolute path, others the basename.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default)]
#[serde(deny_unknown_fields)]
pub struct ProcessSection {
    /// What a violation does.
    pub effect: Effect,
    /// When non-empty, only these may run.
    #[serde(default)]
    pub allowed: Vec<Pattern>,
    /// These may not run.
    #[serde(default)]
    pub denied: Vec<Pattern>,
}

/// Which names may be resolved. Exact names or `*.` suffixes, case-insensitive.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default)]
#[serde(deny_unknown_fields)]
pub struct DnsSection {
    /// What a violation does.
    pub effect: Effect,
    /// When non-empty, only these may be resolved.
    #[serde(default)]
    pub allowed: Vec<Pattern>,
    /// These may not be resolved.
    #[serde(default)]
    pub denied: Vec<Pattern>,
}

/// Which connections may happen.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default)]
#[serde(deny_unknown_fields)]
pub struct NetworkSection {
    /// What a violation does.
    pub effect: Effect,
    /// When non-empty, only these destinations may be connected to.
    #[serde(default)]
    pub allowed_outbound: Vec<NetTarget>,
    /// These destinations may not be connected to.
    #[serde(default)]
    pub denied_outbound: Vec<NetTarget>,
    /// When non-empty, only these ports may be listened on.
    #[serde(default)]
    pub allowed_listening_ports: Vec<u16>,
    /// These ports may not be listened on.
    #[serde(default)]
    pub denied_listening_ports: Vec<u16>,
}

/// One rule of a runtime policy.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// Unique name, carried by every audit the rule produces.
    pub name: String,
    /// A disabled rule is skipped when picking the rule for a workload.
    #[serde(default)]
    pub disabled: bool,
    /// Which workloads the rule applies to.
    #[serde(default)]
    pub scope: ScopePatterns,
    /// Behaviour before a policy has been fetched.
    #[serde(default)]
    pub startup: Startup,
    /// Process section; absent means `disable`.
    #[serde(default)]
    pub processes: ProcessSection,
    /// DNS section; absent means `disable`.
    #[serde(default)]
    pub dns: DnsSection,
    /// Network section; absent means `disable`.
    #[serde(default)]
    pub network: NetworkSection,
}

impl Rule {
    /// A rule with the given name, scope `*` everywhere and every section disabled.
    pub fn new(name: impl Into<String>) -> Rule {
        Rule {
            name: name.into(),
            disabled: false,
            scope: ScopePatterns::default(),
            startup: Startup::default(),
            processes: ProcessSection::default(),
            dns: DnsSection::default(),
            network: NetworkSection::default(),
        }
    }
}

/// The whole runtime policy: an ordered list of rules and a revision the console bumps.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default)]
#[serde(deny_unknown_fields)]
pub struct RuntimePolicy {
    /// Bumped by the console on every change.
    #[serde(default)]
    pub revision: u64,
    /// Ordered rules; the first enabled one whose scope matches applies.
    #[serde(default)]
    pub rules: Vec<Rule>,
}

/// Largest policy document accepted by `from_json`, in bytes (4 MiB).
pub const MAX_POLICY_BYTES: usize = 4 * 1024 * 1024;

/// Why a policy document was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    /// The document is larger than [`MAX_POLICY_BYTES`].
    #[error("policy is {len} bytes; the limit is {max} bytes, split it or remove unused rules")]
    TooLarge {
        /// Size of the document in bytes.
        len: usize,
        /// The limit, [`MAX_POLICY_BYTES`].
        max: usize,
    },
    /// The text is not JSON at all.
    #[error("policy is not valid JSON (line {line}, column {column}): {message}")]
    Syntax {
        /// 1-based line of the syntax error.
        line: usize,
        /// 1-based column of the syntax error.
        column: usize,
        /// What serde_json reported.
        message: String,
    },
    /// The JSON is well formed but some fields are wrong; every one of them is listed.
    #[error("{}", check::render(.errors))]
    Invalid {
        /// Each bad field with its JSON path, in document order.
        errors: Vec<FieldError>,
    },
}

impl PolicyError {
    /// The bad fields (empty for a syntax error).
    pub fn field_errors(&self) -> &[FieldError] {
        match self {
            PolicyError::TooLarge { .. } | PolicyError::Syntax { .. } => &[],
            PolicyError::Invalid { errors } => errors,
        }
    }
}

/// Parses `text` as JSON, checks it with `check`, then deserializes the typed value.
pub(crate) fn parse_checked<T: serde::de::DeserializeOwned>(
    text: &str,
    check: fn(&mut Walker, &serde_json::Value),
) -> Result<T, PolicyError> {
    if text.len() > MAX_POLICY_BYTES {
        return Err(PolicyError::TooLarge {
            len: text.len(),
            max: MAX_POLICY_BYTES,
        });
    }
    let value: serde_json::Value = serde_json::from_str(text).map_err(|e| PolicyError::Syntax {
        line: e.line(),
        column: e.column(),
        message: e.to_string(),
    })?;
    checked_value(value, check)
}

/// Checks an already parsed JSON value, then deserializes the typed value.
pub(crate) fn checked_value<T: serde::de::DeserializeOwned>(
    value: serde_json::Value,
    check: fn(&mut Walker, &serde_json::Value),
) -> Result<T, PolicyError> {
    let mut walker = Walker::default();
    check(&mut walker, &value);
    walker.finish()?;
    serde_json::from_value(value).map_err(|e| PolicyError::Invalid {
        errors: vec![FieldError::new("", e.to_string())],
    })
}

/// Checks a typed value by serializing it and walking the JSON, so one set of checks serves
/// both parsed and hand-built policies.
pub(crate) fn validate_typed<T: Serialize>(
    value: &T,
    check: fn(&mut Walker, &serde_json::Value),
) -> Result<(), PolicyError> {
    let json = serde_json::to_value(value).map_err(|e| PolicyError::Invalid {
        errors: vec![FieldError::new("", e.to_string())],
    })?;
    let mut walker = Walker::default();
    check(&mut walker, &json);
    walker.finish()
}

impl RuntimePolicy {
    /// Parses and validates a policy document; the error lists every bad field with its path.
    pub fn from_json(text: &str) -> Result<RuntimePolicy, PolicyError> {
        parse_checked(text, check::runtime_policy)
    }

    /// Validates an already parsed JSON value (e.g. a field of a larger request body).
    pub fn from_value(value: serde_json::Value) -> Result<RuntimePolicy, PolicyError> {
        checked_value(value, check::runtime_policy)
    }

    /// Checks a policy built in code (duplicate names, port 0, bad process or domain patterns).
    pub fn validate(&self) -> Result<(), PolicyError> {
        validate_typed(self, check::runtime_policy)
    }

    /// The policy as pretty JSON (field order as in the contract).
    pub fn to_json_pretty(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_else(|e| unreachable!("plain data: {e}"))
    }

    /// The first enabled rule whose scope matches the workload; `None` means no enforcement.
    pub fn rule_for(&self, scope: &Scope) -> Option<&Rule> {
        self.rules
            .iter()
            .find(|r| !r.disabled && r.scope.matches(scope))
    }

    /// The same revision with only the enabled rules whose scope matches, in order (what the
    /// console hands a defender).
    pub fn for_scope(&self, scope: &Scope) -> RuntimePolicy {
        RuntimePolicy {
            revision: self.revision,
            rules: self
                .rules
                .iter()
                .filter(|r| !r.disabled && r.scope.matches(scope))
                .cloned()
                .collect(),
        }
    }
}
