//! CNAF in `defender run` / `defender cnaf`: the settings (`DEFENDER_CNAF`,
//! `DEFENDER_CNAF_LISTEN`, `DEFENDER_CNAF_UPSTREAM`, a CNAF policy file), and the proxy the
//! command runs — fixed on `DEFENDER_CNAF_LISTEN`, or following the console's CNAF rule
//! ([`defender::cnaf_live`]).

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;
use cnaf::proxy::{PolicyHandle, ProxyError, ProxyPolicy};
use defender::audit::{Auditor, Workload};
use defender::cnaf_live::{
    self, Endpoints, Feed, LiveConfig, LiveProxy, Mode, Pending, RunningProxy,
};
use protect::cnaf_policy::CnafPolicy;
use protect::embed::{CNAF_FROM_CONSOLE, ENV_CNAF};

use crate::console_run::CnafTarget;

/// The raw CNAF settings of a command.
pub struct CnafParts<'a> {
    /// `DEFENDER_CNAF` (`--cnaf`).
    pub mode: Option<&'a str>,
    pub listen: Option<&'a str>,
    pub upstream: Option<&'a str>,
    pub file: Option<&'a PathBuf>,
    /// The file flag's name, for messages.
    pub file_flag: &'static str,
    pub family: &'a str,
    /// The console's poll interval, when a console is configured.
    pub console_poll: Option<Duration>,
}

/// The CNAF part of a run: where to listen, and the rule (from a file, or pass-through until
/// the console's arrives).
pub struct CnafSettings {
    /// `DEFENDER_CNAF_LISTEN` / `DEFENDER_CNAF_UPSTREAM`.
    at: Option<Endpoints>,
    handle: PolicyHandle,
    /// The rule comes from `--cnaf-policy-file` (the console's `cnaf` part is then ignored).
    from_file: bool,
    /// The proxy's ports follow the console's CNAF rule (a console, no policy file, and
    /// `DEFENDER_CNAF=console` or a listen address): the poll interval (how often a port that
    /// could not be bound is tried again), and the policy queue until the proxy thread starts.
    live: Option<(Duration, Option<(Feed, Pending)>)>,
}

impl CnafSettings {
    /// `None` when the command runs no proxy (`DEFENDER_CNAF` off and no listen address).
    pub fn from_parts(p: CnafParts<'_>) -> anyhow::Result<Option<CnafSettings>> {
        let mode = Mode::parse(p.mode)?;
        let at = Endpoints::from_settings(p.listen, p.upstream)?;
        if mode == Mode::Console {
            if p.file.is_some() {
                anyhow::bail!(
                    "{ENV_CNAF}={CNAF_FROM_CONSOLE} (--cnaf) takes the CNAF rule and its ports \
                     from the console, and {} replaces that rule: set one or the other",
                    p.file_flag
                );
            }
            if p.console_poll.is_none() {
                anyhow::bail!(
                    "{ENV_CNAF}={CNAF_FROM_CONSOLE} (--cnaf): the proxy's ports come from the \
                     console's CNAF rule, but DEFENDER_CONSOLE_URL (--console-url) is not set"
                );
            }
        }
        if at.is_none() && mode == Mode::Off {
            if p.file.is_some() {
                anyhow::bail!(
                    "{} needs DEFENDER_CNAF_LISTEN (--cnaf-listen): the address the CNAF proxy \
                     listens on",
                    p.file_flag
                );
            }
            return Ok(None);
        }
        let policy = match p.file {
            Some(path) => load_policy_file(path, p.family)?,
            None => ProxyPolicy::pass_through(),
        };
        let live = match (p.console_poll, p.file) {
            (Some(poll), None) => Some((poll, Some(cnaf_live::feed()))),
            _ => None,
        };
        Ok(Some(CnafSettings {
            at,
            handle: PolicyHandle::new(policy),
            from_file: p.file.is_some(),
            live,
        }))
    }

    /// Where the console's CNAF policies go (`None`: a policy file decides). Takes the feed.
    pub fn console_target(&mut self, family: &str) -> Option<CnafTarget> {
        if self.from_file {
            return None;
        }
        let live = self
            .live
            .as_mut()
            .and_then(|(_, queue)| queue.as_ref())
            .map(|(feed, _)| feed.clone());
        Some(CnafTarget {
            handle: self.handle.clone(),
            family: family.to_string(),
            live,
        })
    }

    /// Starts the proxy: following the console's rule (its cached or fetched ports are bound
    /// before this returns), or fixed on the listen address. A fixed address that cannot be
    /// bound is an error (the app does not start).
    pub fn start(
        &mut self,
        family: &str,
        auditor: Auditor,
        workload: &Workload,
    ) -> Result<Option<CnafProxy>, ProxyError> {
        if let Some((retry, queue)) = &mut self.live {
            let Some((_, pending)) = queue.take() else {
                return Ok(None);
            };
            let live = pending.start(LiveConfig {
                family: family.to_string(),
                settings: self.at,
                retry: *retry,
                policy: self.handle.clone(),
                auditor,
                workload: workload.clone(),
            })?;
            return Ok(Some(CnafProxy::Live(live)));
        }
        match self.at {
            Some(at) => Ok(Some(CnafProxy::Fixed(cnaf_live::start(
                at,
                self.handle.clone(),
                auditor,
                workload,
            )?))),
            None => Ok(None),
        }
    }
}

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
