//! `defender run` / `defender cnaf` and the console: settings (flags or `DEFENDER_*`), where a
//! new policy goes (the running supervisor's [`SharedPolicy`], the CNAF proxy's
//! [`PolicyHandle`] and, when its ports follow the console, its [`Feed`]), and the startup
//! decision (`availability` / `security`).
//!
//! The startup mode lives in the rule, so it is only known once a policy is: the cached copy
//! from an earlier run decides at once; with no copy, the defender waits briefly
//! ([`FIRST_ANSWER_WAIT`]) for the console's first answer, and when the console stays silent
//! it falls back on `--startup` (`DEFENDER_STARTUP`, default `availability`).

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use clap::ValueEnum;
use cnaf::proxy::{PolicyHandle, ProxyPolicy};
use defender::cnaf_live::Feed;
use defender::console::{Console, ConsoleConfig, ConsoleError};
use defender::judge::SharedPolicy;
use protect::api::{DefenderIdentity, PolicyBundle};
use protect::policy::{Scope, Startup};

/// With no cached policy, how long the app waits for the console's first answer before the
/// `--startup` fallback decides (a healthy console answers in milliseconds).
pub const FIRST_ANSWER_WAIT: Duration = Duration::from_secs(3);

/// How long `defender` flushes audits to the console at exit (the rest stays spooled).
pub const EXIT_FLUSH: Duration = Duration::from_secs(5);

/// Console settings shared by `defender run` and `defender cnaf`.
#[derive(clap::Args, Debug, Clone)]
pub struct ConsoleArgs {
    /// Console base URL: policies come from it, audits go to it (none: local policy only).
    #[arg(long = "console-url", env = protect::embed::ENV_CONSOLE_URL)]
    pub console_url: Option<String>,
    /// Defender credential for the console (prefer the environment: flags show in `ps`).
    #[arg(long, env = protect::embed::ENV_TOKEN, hide_env_values = true)]
    pub token: Option<String>,
    /// Seconds between policy polls (If-None-Match).
    #[arg(long = "poll-seconds", env = defender::console::ENV_POLL_SECONDS, default_value_t = 10,
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub poll_seconds: u64,
    /// Last good policy and the audit spool live here.
    #[arg(
        long = "state-dir",
        env = defender::console::ENV_STATE_DIR,
        default_value = "/tmp/defender"
    )]
    pub state_dir: PathBuf,
    /// Startup mode while no policy is known yet (no cached copy, console silent); a known
    /// rule's `startup` always wins.
    #[arg(
        long,
        env = protect::embed::ENV_STARTUP,
        value_enum,
        default_value = "availability"
    )]
    pub startup: StartupArg,
    /// Seconds `security` startup waits for the console before failing.
    #[arg(long = "startup-timeout", env = defender::console::ENV_STARTUP_TIMEOUT, default_value_t = 60,
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub startup_timeout: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum StartupArg {
    Availability,
    Security,
}

impl From<StartupArg> for Startup {
    fn from(s: StartupArg) -> Startup {
        match s {
            StartupArg::Availability => Startup::Availability,
            StartupArg::Security => Startup::Security,
        }
    }
}

impl ConsoleArgs {
    /// The client configuration, or `None` without a console URL.
    pub fn config(&self, identity: DefenderIdentity) -> anyhow::Result<Option<ConsoleConfig>> {
        let Some(url) = self
            .console_url
            .as_deref()
            .map(str::trim)
            .filter(|u| !u.is_empty())
        else {
            return Ok(None);
        };
        let Some(token) = self
            .token
            .as_deref()
            .map(str::trim)
            .filter(|t| !t.is_empty())
        else {
            anyhow::bail!(
                "DEFENDER_TOKEN (--token): not set; DEFENDER_CONSOLE_URL needs the defender \
                 credential (POST /api/v1/defenders/install-bundle), usually from a secret"
            );
        };
        let mut identity = identity;
        if identity.version.is_empty() {
            identity.version = env!("CARGO_PKG_VERSION").to_string();
        }
        let mut config = ConsoleConfig::new(url, token, identity);
        config.poll_interval = Duration::from_secs(self.poll_seconds);
        config.state_dir.clone_from(&self.state_dir);
        Ok(Some(config))
    }
}

/// Where policies from the console go. A part set by a local file is `None` (the file wins).
pub struct Targets {
    /// The running supervisor's runtime policy.
    pub runtime: Option<SharedPolicy>,
    /// The CNAF proxy's rule.
    pub cnaf: Option<CnafTarget>,
}

/// Where the console's CNAF rule goes.
pub struct CnafTarget {
    /// The protections of the running proxy (applied at once, no restart).
    pub handle: PolicyHandle,
    /// The task family that picks the rule.
    pub family: String,
    /// The proxy's ports follow the rule: the whole CNAF policy goes to the proxy thread too.
    pub live: Option<Feed>,
}

/// Applies bundles to the targets; a cached bundle never overwrites a fetched one.
struct Applier {
    fetched: Mutex<bool>,
    targets: Targets,
}

impl Applier {
    fn store(&self, bundle: &PolicyBundle) {
        if let Some(runtime) = &self.targets.runtime {
            runtime.store(Arc::new(bundle.runtime.clone()));
        }
        if let Some(cnaf) = &self.targets.cnaf {
            cnaf.handle
                .set(ProxyPolicy::for_task(&bundle.cnaf, &cnaf.family));
            if let Some(feed) = &cnaf.live {
                // queued: the proxy (re)starts on its own thread, not on the poller's
                feed.policy(&bundle.cnaf);
            }
        }
    }

    fn fetched(&self, bundle: &PolicyBundle) {
        let mut fetched = self.fetched.lock().unwrap_or_else(|e| e.into_inner());
        *fetched = true;
        self.store(bundle);
    }

    fn cached(&self, bundle: &PolicyBundle) {
        let fetched = self.fetched.lock().unwrap_or_else(|e| e.into_inner());
        if !*fetched {
            self.store(bundle);
        }
    }
}

/// Security startup could not get a policy in time.
#[derive(Debug, thiserror::Error)]
#[error(
    "security startup: no policy from the console at {url} within {secs} s, so the app was not \
     started (check DEFENDER_CONSOLE_URL, DEFENDER_TOKEN and the console; or raise \
     DEFENDER_STARTUP_TIMEOUT)"
)]
pub struct StartupTimeout {
    url: String,
    secs: u64,
}

/// A running console client wired to the targets.
pub struct Connected {
    console: Console,
    applier: Arc<Applier>,
    url: String,
    /// Some policy comes from the console (else it only receives audits).
    feeds: bool,
}

/// Starts polling and shipping. New policies go to `targets` as soon as they arrive.
pub fn connect(config: ConsoleConfig, targets: Targets) -> Result<Connected, ConsoleError> {
    let url = config.url.clone();
    let feeds = targets.runtime.is_some() || targets.cnaf.is_some();
    let applier = Arc::new(Applier {
        fetched: Mutex::new(false),
        targets,
    });
    let on_policy = Arc::clone(&applier);
    let console = Console::start(config, move |bundle| on_policy.fetched(bundle))?;
    Ok(Connected {
        console,
        applier,
        url,
        feeds,
    })
}

impl Connected {
    /// The console's audit sink (never blocks).
    pub fn shipper(&self) -> defender::console::AuditShipper {
        self.console.shipper()
    }

    /// Returns when the app may start, with the newest known policy applied. `scope` is the
    /// workload whose runtime rule decides the mode (`None`: the runtime policy is not
    /// console-fed, so availability); `fallback` is the mode while no policy is known.
    pub fn await_startup(
        &self,
        scope: Option<&Scope>,
        fallback: Startup,
        timeout: Duration,
    ) -> Result<(), StartupTimeout> {
        if !self.feeds {
            // local policy files only: nothing to wait for
            return Ok(());
        }
        let mode_of = |b: &PolicyBundle| match scope {
            Some(s) => b.runtime.rule_for(s).map(|r| r.startup).unwrap_or_default(),
            None => Startup::Availability,
        };
        let cached = self.console.cached_policy();
        let mode = match &cached {
            Some(b) => mode_of(b),
            None if scope.is_some() => fallback,
            None => Startup::Availability,
        };
        let mut fresh = None;
        if mode == Startup::Availability && cached.is_none() {
            fresh = self.console.wait_for_policy(FIRST_ANSWER_WAIT.min(timeout));
        }
        // A fresh policy in hand is what security asks for, whatever its rule's mode.
        let needs_fresh = fresh.is_none() && mode == Startup::Security;
        if needs_fresh {
            defender::say!(
                "defender: security startup: waiting up to {} s for the policy from the console",
                timeout.as_secs()
            );
            if self.console.wait_for_policy(timeout).is_none() {
                return Err(StartupTimeout {
                    url: self.url.clone(),
                    secs: timeout.as_secs(),
                });
            }
        }
        match self.console.current_policy() {
            Some(b) => {
                self.applier.cached(&b);
                if fresh.is_none() && !needs_fresh {
                    defender::say!(
                        "defender: availability startup: starting with the cached policy \
                         (runtime revision {}); the console's policy applies when it answers",
                        b.runtime.revision
                    );
                }
            }
            None => defender::say!(
                "defender: availability startup: no policy from the console yet; starting \
                 with no console rule, which applies as soon as the console answers"
            ),
        }
        Ok(())
    }

    /// Stops polling and flushes audits (bounded); what is left stays in the spool.
    pub fn shutdown(self) {
        self.console.shutdown(EXIT_FLUSH);
    }
}
