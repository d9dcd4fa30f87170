//! The console client: policy sync and audit shipping, each on its own thread so console I/O
//! never blocks the app.
//!
//! ```text
//! let config = ConsoleConfig::from_env(identity)?;          // None without DEFENDER_CONSOLE_URL
//! let console = Console::start(config, move |bundle| policy.store(Arc::new(bundle.runtime.clone())))?;
//! // availability: run at once with console.cached_policy() (or empty);
//! // security: console.wait_for_policy(timeout) must return Some before the app starts.
//! sinks.push(Arc::new(console.shipper()));                  // an audit::AuditSink
//! ...
//! console.shutdown(Duration::from_secs(5));                 // flush what it can; the rest stays spooled
//! ```
//!
//! - [`http`]: the two defender routes over a blocking rustls client (no OpenSSL).
//! - [`resolve`]: names without `getaddrinfo` (IP literal, `/etc/hosts`, DNS over UDP).
//! - [`policy`]: polling with `If-None-Match`, last good policy on disk.
//! - [`shipper`]: bounded queue, spool directory, retries with backoff, drop counting.
//!
//! State lives under `DEFENDER_STATE_DIR` (default `/tmp/defender`): `policy.json` (the last
//! good policy and its ETag) and `spool/` (batches not yet acknowledged; sent first at the
//! next start).

pub mod http;
pub mod policy;
pub mod resolve;
mod seal;
pub mod shipper;

use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use protect::api::{DefenderIdentity, PolicyBundle};

pub use shipper::{AuditShipper, ShipperLimits, ShipperStats};

/// Seconds between policy polls (the defender's own setting; the transform does not write it).
pub const ENV_POLL_SECONDS: &str = "DEFENDER_POLL_SECONDS";
/// Where the sealed policy copy and the audit spool live.
pub const ENV_STATE_DIR: &str = "DEFENDER_STATE_DIR";
/// How long a `security` start-up waits for the console.
pub const ENV_STARTUP_TIMEOUT: &str = "DEFENDER_STARTUP_TIMEOUT";

/// Why talking to the console failed.
#[derive(Debug, thiserror::Error)]
pub enum ConsoleError {
    /// A setting is wrong; the text names it.
    #[error("{0}")]
    Config(String),
    /// The console answered with an error status.
    #[error("the console answered {status}{}", if message.is_empty() { String::new() } else { format!(": {message}") })]
    Status { status: u16, message: String },
    /// The console could not be reached.
    #[error("cannot reach the console: {0}")]
    Transport(String),
    /// The console's policy could not be used (the last good one stays).
    #[error("the console sent a policy this defender cannot use: {0}")]
    BadPolicy(String),
}

impl ConsoleError {
    /// A 4xx other than 401/403/408/429: retrying the same request cannot succeed.
    pub fn is_permanent(&self) -> bool {
        matches!(self, ConsoleError::Status { status, .. }
            if (400..500).contains(status) && ![401, 403, 408, 429].contains(status))
    }
}

/// How to reach the console and where to keep state.
#[derive(Clone)]
pub struct ConsoleConfig {
    /// `DEFENDER_CONSOLE_URL`.
    pub url: String,
    /// `DEFENDER_TOKEN` (never printed).
    pub token: String,
    pub identity: DefenderIdentity,
    /// `DEFENDER_POLL_SECONDS` (default 10).
    pub poll_interval: Duration,
    /// `DEFENDER_STATE_DIR` (default `/tmp/defender`).
    pub state_dir: PathBuf,
    /// Per-request timeout.
    pub request_timeout: Duration,
    pub limits: ShipperLimits,
}

impl std::fmt::Debug for ConsoleConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConsoleConfig")
            .field("url", &self.url)
            .field("token", &"<redacted>")
            .field("identity", &self.identity)
            .field("poll_interval", &self.poll_interval)
            .field("state_dir", &self.state_dir)
            .finish()
    }
}

impl ConsoleConfig {
    /// Settings with defaults for everything but the console and the workload.
    pub fn new(
        url: impl Into<String>,
        token: impl Into<String>,
        identity: DefenderIdentity,
    ) -> ConsoleConfig {
        ConsoleConfig {
            url: url.into(),
            token: token.into(),
            identity,
            poll_interval: Duration::from_secs(10),
            state_dir: PathBuf::from("/tmp/defender"),
            request_timeout: Duration::from_secs(10),
            limits: ShipperLimits::default(),
        }
    }

    /// Reads `DEFENDER_CONSOLE_URL`, `DEFENDER_TOKEN`, `DEFENDER_POLL_SECONDS`,
    /// `DEFENDER_STATE_DIR`. `Ok(None)` when no console URL is set. `identity.version` defaults
    /// to this build's version.
    pub fn from_env(mut identity: DefenderIdentity) -> Result<Option<ConsoleConfig>, ConsoleError> {
        let Some(url) = std::env::var(protect::embed::ENV_CONSOLE_URL)
            .ok()
            .filter(|s| !s.trim().is_empty())
        else {
            return Ok(None);
        };
        let token = std::env::var(protect::embed::ENV_TOKEN)
            .ok()
            .filter(|s| !s.trim().is_empty())
            .ok_or_else(|| {
                ConsoleError::Config(
                    "DEFENDER_TOKEN: not set; DEFENDER_CONSOLE_URL needs the defender credential \
                     (POST /api/v1/defenders/install-bundle), usually from a secret"
                        .to_string(),
                )
            })?;
        if identity.version.is_empty() {
            identity.version = env!("CARGO_PKG_VERSION").to_string();
        }
        let mut config = ConsoleConfig::new(url.trim(), token.trim(), identity);
        if let Ok(s) = std::env::var(ENV_POLL_SECONDS) {
            match s.trim().parse::<u64>() {
                Ok(n) if (1..=3600).contains(&n) => config.poll_interval = Duration::from_secs(n),
                _ => {
                    return Err(ConsoleError::Config(format!(
                        "DEFENDER_POLL_SECONDS {s:?}: not a whole number of seconds from 1 to 3600"
                    )))
                }
            }
        }
        if let Some(dir) = std::env::var_os(ENV_STATE_DIR).filter(|s| !s.is_empty()) {
            config.state_dir = PathBuf::from(dir);
        }
        Ok(Some(config))
    }
}

/// A running console client.
pub struct Console {
    policy: policy::Shared,
    cached: Option<PolicyBundle>,
    shipper: AuditShipper,
    poller: Option<JoinHandle<()>>,
    worker: Option<JoinHandle<()>>,
    flush: Arc<Mutex<Duration>>,
}

impl Console {
    /// Starts the policy poller and the audit shipper. `on_policy` runs on the poller thread
    /// for every new policy the console sends (not for the cached one: see
    /// [`Console::cached_policy`]).
    pub fn start(
        config: ConsoleConfig,
        on_policy: impl Fn(&PolicyBundle) + Send + 'static,
    ) -> Result<Console, ConsoleError> {
        for (name, v) in [
            ("task", &config.identity.task),
            ("container", &config.identity.container),
            ("image", &config.identity.image),
        ] {
            if v.trim().is_empty() {
                return Err(ConsoleError::Config(format!(
                    "the defender's {name} is unknown: set DEFENDER_{} (the transform writes it)",
                    match name {
                        "task" => "TASK_FAMILY",
                        "container" => "CONTAINER_NAME",
                        _ => "IMAGE",
                    }
                )));
            }
        }
        std::fs::create_dir_all(&config.state_dir).map_err(|e| {
            ConsoleError::Config(format!(
                "DEFENDER_STATE_DIR {}: {e}",
                config.state_dir.display()
            ))
        })?;
        let http = http::ConsoleHttp::new(&config.url, &config.token, config.request_timeout)?;
        let cache_path = config.state_dir.join("policy.json");
        let cache_key = seal::SealKey::from_token(&config.token);
        let cached = match policy::load_cache(&cache_path, &cache_key) {
            Ok(c) => Some(c),
            Err(policy::CacheMiss::Absent) => None,
            Err(miss) => {
                crate::say!(
                    "defender: ignoring the cached policy {}: {}; starting as a fresh container \
                     (DEFENDER_STARTUP)",
                    cache_path.display(),
                    match miss {
                        policy::CacheMiss::Forged => {
                            "its seal does not verify (written by something other than this \
                             defender, e.g. the app)"
                        }
                        _ => "it is not a valid policy",
                    }
                );
                None
            }
        };
        let shared: policy::Shared = Arc::new((
            Mutex::new(policy::PolicyState {
                current: cached.as_ref().map(|c| c.0.clone()),
                etag: cached.as_ref().and_then(|c| c.1.clone()),
                confirmed: false,
                stopping: false,
            }),
            Condvar::new(),
        ));
        let (shipper, worker) = shipper::new(
            config.limits.clone(),
            http.clone(),
            config.identity.clone(),
            config.state_dir.join("spool"),
            cache_key.clone(),
        )?;
        let poller = policy::Poller {
            http,
            identity: config.identity.clone(),
            interval: config.poll_interval,
            cache: cache_path,
            cache_key,
            shared: Arc::clone(&shared),
            on_policy: Box::new(on_policy),
        };
        let flush = Arc::new(Mutex::new(Duration::from_secs(5)));
        let flush_for_worker = Arc::clone(&flush);
        let poller = std::thread::Builder::new()
            .name("console-policy".into())
            .spawn(move || poller.run())
            .map_err(|e| ConsoleError::Config(format!("cannot start the policy thread: {e}")))?;
        let worker = std::thread::Builder::new()
            .name("console-audits".into())
            .spawn(move || worker.run(flush_for_worker))
            .map_err(|e| ConsoleError::Config(format!("cannot start the audit thread: {e}")))?;
        Ok(Console {
            policy: shared,
            cached: cached.map(|c| c.0),
            shipper,
            poller: Some(poller),
            worker: Some(worker),
            flush,
        })
    }

    /// The last good policy kept on disk by an earlier run, if any.
    pub fn cached_policy(&self) -> Option<PolicyBundle> {
        self.cached.clone()
    }

    /// The newest policy known (fetched, or cached).
    pub fn current_policy(&self) -> Option<PolicyBundle> {
        self.policy.0.lock().ok().and_then(|s| s.current.clone())
    }

    /// Waits until the console has answered once (a new policy, or 304 for the cached one) and
    /// returns the policy; `None` after `timeout` (security startup: do not start the app).
    pub fn wait_for_policy(&self, timeout: Duration) -> Option<PolicyBundle> {
        let (lock, cond) = &*self.policy;
        let deadline = Instant::now() + timeout;
        let mut s = lock.lock().ok()?;
        loop {
            if s.confirmed {
                return s.current.clone();
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            s = cond.wait_timeout(s, left).ok()?.0;
        }
    }

    /// The audit sink (cheap to clone; never blocks).
    pub fn shipper(&self) -> AuditShipper {
        self.shipper.clone()
    }

    /// Stops polling and ships what it can within `flush`; the rest stays in the spool for
    /// the next start.
    pub fn shutdown(mut self, flush: Duration) {
        if let Ok(mut f) = self.flush.lock() {
            *f = flush;
        }
        self.stop_threads();
    }

    fn stop_threads(&mut self) {
        if let Ok(mut s) = self.policy.0.lock() {
            s.stopping = true;
        }
        self.policy.1.notify_all();
        shipper::stop(&self.shipper);
        if let Some(t) = self.poller.take() {
            let _ = t.join();
        }
        if let Some(t) = self.worker.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Console {
    fn drop(&mut self) {
        self.stop_threads();
    }
}
