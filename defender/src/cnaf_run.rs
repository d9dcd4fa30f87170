//! CNAF in `defender run` / `defender cnaf`: the policy file, and the proxy the command runs —
//! fixed on `DEFENDER_CNAF_LISTEN`, or following the console's CNAF rule
//! ([`defender::cnaf_live`]).

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use cnaf::proxy::{ProxyError, ProxyPolicy};
use defender::cnaf_live::{LiveProxy, RunningProxy};
use protect::cnaf_policy::CnafPolicy;

/// The rule for task `family` in a CNAF policy file (a pass-through when no rule matches).
pub fn load_policy_file(path: &Path, family: &str) -> anyhow::Result<ProxyPolicy> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("--cnaf-policy-file {}: cannot read it", path.display()))?;
    let policy = CnafPolicy::from_json(&text)
        .with_context(|| format!("--cnaf-policy-file {}: invalid CNAF policy", path.display()))?;
    let chosen = ProxyPolicy::for_task(&policy, family);
    if chosen.rule.is_empty() {
        defender::say!(
            "defender: cnaf: no rule in {} matches task family {family:?}: forwarding without \
             inspection",
            path.display()
        );
    }
    Ok(chosen)
}

/// The proxy a command runs.
pub enum CnafProxy {
    /// On `DEFENDER_CNAF_LISTEN`, for the whole run.
    Fixed(RunningProxy),
    /// Following the console's CNAF rule.
    Live(LiveProxy),
}

impl CnafProxy {
    /// The proxy (fixed), or the thread running it (live), ended on its own.
    pub fn finished(&self) -> bool {
        match self {
            CnafProxy::Fixed(p) => p.finished(),
            CnafProxy::Live(p) => p.finished(),
        }
    }

    /// Stops accepting, lets in-flight requests finish (bounded), and reports how it ended.
    pub fn stop(self) -> Result<(), ProxyError> {
        match self {
            CnafProxy::Fixed(p) => p.stop(),
            CnafProxy::Live(p) => p.stop(),
        }
    }
}

/// `defender cnaf` and `defender run` CNAF flags' file argument, for messages.
pub fn describe_source(file: Option<&PathBuf>, console: bool) -> String {
    match (file, console) {
        (Some(f), _) => format!("rule from {}", f.display()),
        (None, true) => "rule from the console".to_string(),
        (None, false) => "no CNAF policy: forwarding without inspection".to_string(),
    }
}
