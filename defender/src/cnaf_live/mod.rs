//! CNAF inside the defender, with the proxy's ports following the console's CNAF rule live.
//!
//! - [`proxy`]: the settings (`DEFENDER_CNAF_LISTEN`, `DEFENDER_CNAF_UPSTREAM`, `DEFENDER_CNAF`),
//!   a rule's ports as [`Endpoints`], and one running proxy ([`start`], [`RunningProxy`]).
//! - [`reconcile`]: the decision, pure: what to serve ([`wanted`]) and how to get there from
//!   what serves ([`step`]: start, restart, stop, keep).
//! - [`LiveProxy`]: a thread that applies each CNAF policy the console sends.
//!
//! ```text
//! let (feed, pending) = cnaf_live::feed();        // before the console client starts
//! // the console's callback: handle.set(ProxyPolicy::for_task(..)); feed.policy(&bundle.cnaf)
//! let live = pending.start(LiveConfig { .. })?;   // after the startup decision, before the app
//! ...
//! live.stop()?;                                   // at exit: in-flight requests finish (bounded)
//! ```
//!
//! The console client calls back on its poller thread, which must not wait for a proxy to
//! drain: [`Feed::policy`] only queues the policy. Protections never restart anything: they
//! reach the running proxy through its [`cnaf::proxy::PolicyHandle`] (shared by every proxy the
//! thread starts). A port change restarts the proxy; a port that cannot be bound is reported
//! once per change on stderr, the previous proxy (if any) keeps serving, and the thread tries
//! again every poll interval.

pub mod proxy;
pub mod reconcile;

use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

use cnaf::proxy::{PolicyHandle, ProxyError};
use protect::cnaf_policy::CnafPolicy;
use protect::embed::CNAF_FROM_CONSOLE;

pub use proxy::{parse_addr, start, CnafSettingError, Endpoints, RunningProxy};
pub use reconcile::{step, wanted, Origin, Step, Target};

use crate::audit::{Auditor, Workload};
use reconcile::{Proxies, Reconciler};

/// `DEFENDER_CNAF` (`--cnaf`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Mode {
    /// Unset or `off`: the proxy runs only with `DEFENDER_CNAF_LISTEN` (whose endpoints a
    /// console rule naming ports still overrides).
    #[default]
    Off,
    /// `console`: the proxy listens on the ports of the console's CNAF rule for the task
    /// family, and starts, moves and stops as that rule changes.
    Console,
}

impl Mode {
    /// Reads the setting; anything but `console`, `off` or nothing is refused.
    pub fn parse(value: Option<&str>) -> Result<Mode, CnafSettingError> {
        match value.map(str::trim) {
            None | Some("") => Ok(Mode::Off),
            Some(v) if v.eq_ignore_ascii_case("off") => Ok(Mode::Off),
            Some(v) if v.eq_ignore_ascii_case(CNAF_FROM_CONSOLE) => Ok(Mode::Console),
            Some(_) => Err(CnafSettingError::UnknownMode {
                value: value.unwrap_or_default().to_string(),
            }),
        }
    }
}

enum Msg {
    Policy(Box<CnafPolicy>),
    Stop,
}

/// Where the console's CNAF policies go (cheap to clone; never blocks).
#[derive(Clone)]
pub struct Feed(mpsc::Sender<Msg>);

impl Feed {
    /// Queues a CNAF policy (fetched or cached) for the proxy thread.
    pub fn policy(&self, policy: &CnafPolicy) {
        let _ = self.0.send(Msg::Policy(Box::new(policy.clone())));
    }
}

/// Policies queued before the proxy thread runs.
pub struct Pending {
    tx: mpsc::Sender<Msg>,
    rx: mpsc::Receiver<Msg>,
}

/// A feed and the queue it fills.
pub fn feed() -> (Feed, Pending) {
    let (tx, rx) = mpsc::channel();
    (Feed(tx.clone()), Pending { tx, rx })
}

/// What the proxy thread needs.
pub struct LiveConfig {
    /// The task family that picks the CNAF rule.
    pub family: String,
    /// `DEFENDER_CNAF_LISTEN` / `DEFENDER_CNAF_UPSTREAM`, if set.
    pub settings: Option<Endpoints>,
    /// How often a failed start is tried again (the policy poll interval).
    pub retry: Duration,
    /// The protections, shared by every proxy the thread starts.
    pub policy: PolicyHandle,
    pub auditor: Auditor,
    pub workload: Workload,
}

/// The real proxies.
struct Real {
    policy: PolicyHandle,
    auditor: Auditor,
    workload: Workload,
}

impl Proxies for Real {
    type Running = RunningProxy;

    fn start(&mut self, at: Endpoints) -> Result<RunningProxy, ProxyError> {
        start(
            at,
            self.policy.clone(),
            self.auditor.clone(),
            &self.workload,
        )
    }

    fn stop(&mut self, running: RunningProxy) -> Result<(), ProxyError> {
        running.stop()
    }

    fn finished(&self, running: &RunningProxy) -> bool {
        running.finished()
    }
}

/// The proxy thread: follows the console's CNAF rule until [`LiveProxy::stop`].
pub struct LiveProxy {
    tx: mpsc::Sender<Msg>,
    thread: Option<JoinHandle<Result<(), ProxyError>>>,
}

impl Pending {
    /// Applies the newest queued policy at once (so a cached or fetched rule naming ports has
    /// its proxy up before this returns, i.e. before the app starts), then follows the feed on
    /// a thread of its own. Fails only when the settings' endpoints (no rule naming ports)
    /// cannot be bound, as a fixed `DEFENDER_CNAF_LISTEN` does; a rule's busy port is reported
    /// and tried again.
    pub fn start(self, config: LiveConfig) -> Result<LiveProxy, ProxyError> {
        let real = Real {
            policy: config.policy,
            auditor: config.auditor,
            workload: config.workload,
        };
        let mut rec = Reconciler::new(real, config.family, config.settings);
        while let Ok(msg) = self.rx.try_recv() {
            if let Msg::Policy(p) = msg {
                rec.policy(&p);
            }
        }
        for note in rec.start_up()? {
            crate::say!("{note}");
        }
        let (rx, retry) = (self.rx, config.retry);
        let thread = std::thread::Builder::new()
            .name("cnaf-live".into())
            .spawn(move || follow(rec, &rx, retry))
            .map_err(ProxyError::Thread)?;
        Ok(LiveProxy {
            tx: self.tx,
            thread: Some(thread),
        })
    }
}

/// The thread's loop: each policy, and each `retry` tick, is one reconciliation.
fn follow<P: Proxies>(
    mut rec: Reconciler<P>,
    rx: &mpsc::Receiver<Msg>,
    retry: Duration,
) -> Result<(), ProxyError> {
    loop {
        match rx.recv_timeout(retry) {
            Ok(Msg::Policy(p)) => rec.policy(&p),
            Ok(Msg::Stop) | Err(mpsc::RecvTimeoutError::Disconnected) => return rec.shutdown(),
            Err(mpsc::RecvTimeoutError::Timeout) => {}
        }
        for note in rec.reconcile() {
            crate::say!("{note}");
        }
    }
}

impl LiveProxy {
    /// True once the thread ended (it only ends when asked to, or by a panic).
    pub fn finished(&self) -> bool {
        self.thread.as_ref().is_none_or(JoinHandle::is_finished)
    }

    /// Stops the thread and the proxy it runs (in-flight requests finish, bounded).
    pub fn stop(mut self) -> Result<(), ProxyError> {
        self.shutdown()
    }

    fn shutdown(&mut self) -> Result<(), ProxyError> {
        let _ = self.tx.send(Msg::Stop);
        match self.thread.take().map(JoinHandle::join) {
            None => Ok(()),
            Some(Ok(r)) => r,
            Some(Err(_)) => Err(ProxyError::ThreadLost),
        }
    }
}

impl Drop for LiveProxy {
    fn drop(&mut self) {
        let _ = self.shutdown();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mode_setting() {
        assert_eq!(Mode::parse(None), Ok(Mode::Off));
        assert_eq!(Mode::parse(Some("")), Ok(Mode::Off));
        assert_eq!(Mode::parse(Some("off")), Ok(Mode::Off));
        assert_eq!(Mode::parse(Some("console")), Ok(Mode::Console));
        assert_eq!(Mode::parse(Some(" Console ")), Ok(Mode::Console));
        assert_eq!(
            Mode::parse(Some("on")).unwrap_err().to_string(),
            "DEFENDER_CNAF (--cnaf) \"on\": not a CNAF mode; use \"console\" (the proxy listens \
             on the ports of the console's CNAF rule for the task family, and follows them live), \
             or leave it unset or \"off\" (the proxy runs only with DEFENDER_CNAF_LISTEN)"
        );
    }
}
