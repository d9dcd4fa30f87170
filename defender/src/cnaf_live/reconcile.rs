//! The decision: what the proxy should serve (the console rule's ports, else the settings'
//! endpoints, else nothing), what to do to get there from what runs (start, restart, stop,
//! keep), and doing it with bind failures reported once per change and retried.

use std::net::SocketAddr;

use cnaf::proxy::ProxyError;
use protect::cnaf_policy::CnafRule;

use super::proxy::Endpoints;

/// Where a wanted address comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Origin {
    /// `DEFENDER_CNAF_LISTEN` / `DEFENDER_CNAF_UPSTREAM`.
    Settings,
    /// The ports of the console's CNAF rule of this name.
    Rule(String),
}

/// What the proxy should serve, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    pub at: Endpoints,
    pub origin: Origin,
}

/// The rule: the ports of the task's CNAF rule (the first enabled rule matching the family)
/// when it names them; else the settings' endpoints (`DEFENDER_CNAF_LISTEN`), if any; else no
/// proxy. So a console rule with ports overrides the settings, and a disabled or removed rule
/// falls back to them, or stops the proxy when there are none (`DEFENDER_CNAF=console` alone).
pub fn wanted(settings: Option<Endpoints>, rule: Option<&CnafRule>) -> Option<Target> {
    let from_rule = rule.and_then(|r| {
        Endpoints::from_rule(r).map(|at| Target {
            at,
            origin: Origin::Rule(r.name.clone()),
        })
    });
    from_rule.or_else(|| {
        settings.map(|at| Target {
            at,
            origin: Origin::Settings,
        })
    })
}

/// One move from what serves to what is wanted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// Already right (also: nothing runs and nothing is wanted).
    Keep,
    Start(Endpoints),
    /// `release_first`: the new listen address overlaps the old one (same port, one of them on
    /// all interfaces, or the same IP), so the old proxy must let go of the port before the new
    /// one binds; otherwise the new one binds first and the old one stops only once it did.
    Restart {
        from: Endpoints,
        to: Endpoints,
        release_first: bool,
    },
    Stop(Endpoints),
}

/// Two listen addresses that cannot both be bound.
fn overlaps(a: SocketAddr, b: SocketAddr) -> bool {
    a.port() == b.port() && (a.ip() == b.ip() || a.ip().is_unspecified() || b.ip().is_unspecified())
}

/// From the endpoints serving now to the wanted ones.
pub fn step(current: Option<Endpoints>, wanted: Option<Endpoints>) -> Step {
    match (current, wanted) {
        (None, None) => Step::Keep,
        (Some(c), Some(w)) if c == w => Step::Keep,
        (None, Some(w)) => Step::Start(w),
        (Some(c), None) => Step::Stop(c),
        (Some(from), Some(to)) => Step::Restart {
            from,
            to,
            release_first: overlaps(from.listen, to.listen),
        },
    }
}

/// Starts and stops proxies: the real ones, or a fake in tests.
pub(crate) trait Proxies {
    type Running;
    fn start(&mut self, at: Endpoints) -> Result<Self::Running, ProxyError>;
    fn stop(&mut self, running: Self::Running) -> Result<(), ProxyError>;
    /// The proxy ended on its own.
    fn finished(&self, running: &Self::Running) -> bool;
}

/// Brings the running proxy to the wanted endpoints; remembers a failed target so its failure
/// is reported once (the next change, or a success, reports again).
pub(crate) struct Reconciler<P: Proxies> {
    proxies: P,
    family: String,
    settings: Option<Endpoints>,
    wanted: Option<Target>,
    running: Option<(Endpoints, P::Running)>,
    reported: Option<Target>,
}

impl<P: Proxies> Reconciler<P> {
    pub(crate) fn new(proxies: P, family: String, settings: Option<Endpoints>) -> Reconciler<P> {
        Reconciler {
            proxies,
            family,
            settings,
            wanted: wanted(settings, None),
            running: None,
            reported: None,
        }
    }

    /// A CNAF policy from the console (fetched or cached): its rule for the family decides.
    pub(crate) fn policy(&mut self, policy: &protect::cnaf_policy::CnafPolicy) {
        self.wanted = wanted(self.settings, policy.rule_for_task(&self.family));
    }

    /// The endpoints serving now.
    pub(crate) fn serving(&self) -> Option<Endpoints> {
        self.running.as_ref().map(|(at, _)| *at)
    }

    /// The first start, before the app: a settings address that cannot be bound is an error
    /// (as with a fixed `DEFENDER_CNAF_LISTEN`); a rule's is reported and retried.
    pub(crate) fn start_up(&mut self) -> Result<Vec<String>, ProxyError> {
        let settings_first = match (&self.running, &self.wanted) {
            (None, Some(t)) if t.origin == Origin::Settings => Some(t.at),
            _ => None,
        };
        if let Some(at) = settings_first {
            let running = self.proxies.start(at)?;
            self.running = Some((at, running));
            return Ok(Vec::new());
        }
        let mut notes = self.reconcile();
        if self.wanted.is_none() {
            notes.push(format!(
                "defender: cnaf: no enabled CNAF rule for task family {:?} names ports yet: \
                 not listening until one does",
                self.family
            ));
        }
        Ok(notes)
    }

    /// One pass: notices a proxy that died, then takes the step to the wanted endpoints.
    /// Returns the lines to log.
    pub(crate) fn reconcile(&mut self) -> Vec<String> {
        let mut notes = Vec::new();
        if let Some((at, running)) = self.running.take() {
            if self.proxies.finished(&running) {
                let why = match self.proxies.stop(running) {
                    Ok(()) => String::new(),
                    Err(e) => format!(": {e}"),
                };
                notes.push(format!(
                    "defender: cnaf: the proxy on {} stopped unexpectedly{why}",
                    at.listen
                ));
            } else {
                self.running = Some((at, running));
            }
        }
        let Some(target) = self.wanted.clone() else {
            if let Some((at, running)) = self.running.take() {
                notes.push(format!(
                    "defender: cnaf: stopped listening on {}: no enabled CNAF rule for task \
                     family {:?} names ports",
                    at.listen, self.family
                ));
                self.stop(at, running, &mut notes);
            }
            self.reported = None;
            return notes;
        };
        match step(self.serving(), Some(target.at)) {
            Step::Keep | Step::Stop(_) => {}
            Step::Start(to) => self.start(&target, to, &mut notes),
            Step::Restart {
                from,
                to,
                release_first,
            } => {
                if release_first {
                    if let Some((_, running)) = self.running.take() {
                        self.stop(from, running, &mut notes);
                    }
                }
                self.start(&target, to, &mut notes);
                if self.serving() == Some(to) {
                    notes.push(format!(
                        "defender: cnaf: {} moved the proxy: no longer listening on {} \
                         (forwarding to {})",
                        describe(&target.origin),
                        from.listen,
                        from.upstream
                    ));
                }
            }
        }
        notes
    }

    /// Stops what runs (at exit).
    pub(crate) fn shutdown(&mut self) -> Result<(), ProxyError> {
        match self.running.take() {
            Some((_, running)) => self.proxies.stop(running),
            None => Ok(()),
        }
    }

    /// Starts `to`; on success the proxy it replaces (if any) stops, on failure it keeps
    /// serving and the failure is reported once for this target.
    fn start(&mut self, target: &Target, to: Endpoints, notes: &mut Vec<String>) {
        match self.proxies.start(to) {
            Ok(running) => {
                if let Some((from, old)) = self.running.replace((to, running)) {
                    self.stop(from, old, notes);
                }
                self.reported = None;
            }
            Err(e) => {
                if self.reported.as_ref() == Some(target) {
                    return;
                }
                self.reported = Some(target.clone());
                let why = match &e {
                    ProxyError::Bind { addr, source } => format!(
                        "cannot listen on {addr} for {}: {source} (is another process using the \
                         port? {})",
                        describe(&target.origin),
                        match target.origin {
                            Origin::Rule(_) => "free it or change the rule's external_port",
                            Origin::Settings => "free it or change DEFENDER_CNAF_LISTEN",
                        }
                    ),
                    other => format!("cannot start the proxy on {}: {other}", to.listen),
                };
                let now = match self.serving() {
                    Some(at) => format!("still listening on {}", at.listen),
                    None => "not listening".to_string(),
                };
                notes.push(format!(
                    "defender: cnaf: {why}; {now}; trying again at each policy poll"
                ));
            }
        }
    }

    fn stop(&mut self, at: Endpoints, running: P::Running, notes: &mut Vec<String>) {
        if let Err(e) = self.proxies.stop(running) {
            notes.push(format!(
                "defender: cnaf: the proxy on {} ended with an error: {e}",
                at.listen
            ));
        }
    }
}

fn describe(origin: &Origin) -> String {
    match origin {
        Origin::Settings => protect::embed::ENV_CNAF_LISTEN.to_string(),
        Origin::Rule(name) => format!("CNAF rule {name:?}"),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use protect::cnaf_policy::CnafPolicy;
    use serde_json::json;

    use super::*;

    fn at(listen: &str, upstream: &str) -> Endpoints {
        Endpoints {
            listen: listen.parse().unwrap(),
            upstream: upstream.parse().unwrap(),
        }
    }

    /// The console's CNAF policy with one rule for the web family.
    fn policy(external: u16, app: u16, disabled: bool, sqli: &str) -> CnafPolicy {
        CnafPolicy::from_value(json!({"revision": 1, "rules": [{
            "name": "web", "disabled": disabled, "scope": {"tasks": ["web*"]},
            "external_port": external, "app_port": app,
            "protections": {"sqli": sqli}}]}))
        .unwrap()
    }

    #[test]
    fn the_rules_ports_win_then_the_settings_then_nothing() {
        let settings = at("127.0.0.1:7000", "127.0.0.1:7001");
        let p = policy(8080, 80, false, "prevent");
        let rule = p.rule_for_task("web-shop");
        let from_rule = Target {
            at: at("0.0.0.0:8080", "127.0.0.1:80"),
            origin: Origin::Rule("web".into()),
        };
        assert_eq!(wanted(None, rule), Some(from_rule.clone()));
        assert_eq!(wanted(Some(settings), rule), Some(from_rule));
        // disabled, or for another family: no rule
        let off = policy(8080, 80, true, "prevent");
        for rule in [off.rule_for_task("web-shop"), p.rule_for_task("api")] {
            assert_eq!(rule, None);
            assert_eq!(wanted(None, rule), None);
            assert_eq!(
                wanted(Some(settings), rule),
                Some(Target {
                    at: settings,
                    origin: Origin::Settings
                })
            );
        }
    }

    #[test]
    fn the_step_from_what_serves_to_what_is_wanted() {
        let a = at("0.0.0.0:8080", "127.0.0.1:80");
        let b = at("0.0.0.0:9090", "127.0.0.1:80");
        let a_new_app = at("0.0.0.0:8080", "127.0.0.1:81");
        let a_loopback = at("127.0.0.1:8080", "127.0.0.1:80");
        let other_ip = at("127.0.0.2:8080", "127.0.0.1:80");
        assert_eq!(step(None, None), Step::Keep);
        assert_eq!(step(Some(a), Some(a)), Step::Keep);
        assert_eq!(step(None, Some(a)), Step::Start(a));
        assert_eq!(step(Some(a), None), Step::Stop(a));
        let restart = |from, to, release_first| Step::Restart {
            from,
            to,
            release_first,
        };
        // a new port: the new one binds first, the old one serves until it has
        assert_eq!(step(Some(a), Some(b)), restart(a, b, false));
        // the same port: the old one lets go first
        assert_eq!(step(Some(a), Some(a_new_app)), restart(a, a_new_app, true));
        assert_eq!(
            step(Some(a_loopback), Some(a)),
            restart(a_loopback, a, true)
        );
        assert_eq!(
            step(Some(a), Some(a_loopback)),
            restart(a, a_loopback, true)
        );
        // same port on two distinct addresses: both can be bound
        assert_eq!(
            step(Some(a_loopback), Some(other_ip)),
            restart(a_loopback, other_ip, false)
        );
    }

    /// Proxies that "bind" in a table: a busy port, or one bound already, fails like the kernel.
    #[derive(Default)]
    struct Fake {
        bound: Vec<Endpoints>,
        busy: HashSet<u16>,
        dead: HashSet<u16>,
        log: Vec<String>,
    }

    impl Proxies for Fake {
        type Running = Endpoints;

        fn start(&mut self, at: Endpoints) -> Result<Endpoints, ProxyError> {
            let taken = self.busy.contains(&at.listen.port())
                || self.bound.iter().any(|b| overlaps(b.listen, at.listen));
            if taken {
                self.log.push(format!("refused {}", at.listen));
                return Err(ProxyError::Bind {
                    addr: at.listen,
                    source: std::io::Error::from_raw_os_error(libc::EADDRINUSE),
                });
            }
            self.log.push(format!("start {}", at.listen));
            self.bound.push(at);
            Ok(at)
        }

        fn stop(&mut self, running: Endpoints) -> Result<(), ProxyError> {
            self.log.push(format!("stop {}", running.listen));
            self.bound.retain(|b| *b != running);
            Ok(())
        }

        fn finished(&self, running: &Endpoints) -> bool {
            self.dead.contains(&running.listen.port())
        }
    }

    fn console_only() -> Reconciler<Fake> {
        Reconciler::new(Fake::default(), "web-shop".into(), None)
    }

    fn log(rec: &mut Reconciler<Fake>) -> Vec<String> {
        std::mem::take(&mut rec.proxies.log)
    }

    #[test]
    fn console_mode_starts_moves_keeps_and_stops_the_proxy() {
        let mut rec = console_only();
        assert_eq!(
            rec.start_up().unwrap(),
            [
                "defender: cnaf: no enabled CNAF rule for task family \"web-shop\" names ports \
              yet: not listening until one does"
            ]
        );
        assert!(log(&mut rec).is_empty());

        rec.policy(&policy(8080, 80, false, "prevent"));
        assert!(rec.reconcile().is_empty());
        assert_eq!(log(&mut rec), ["start 0.0.0.0:8080"]);

        // new ports: the new proxy binds before the old one lets go
        rec.policy(&policy(9090, 90, false, "prevent"));
        assert_eq!(
            rec.reconcile(),
            [
                "defender: cnaf: CNAF rule \"web\" moved the proxy: no longer listening on \
              0.0.0.0:8080 (forwarding to 127.0.0.1:80)"
            ]
        );
        assert_eq!(log(&mut rec), ["start 0.0.0.0:9090", "stop 0.0.0.0:8080"]);
        assert_eq!(rec.serving(), Some(at("0.0.0.0:9090", "127.0.0.1:90")));

        // protections only: nothing restarts
        rec.policy(&policy(9090, 90, false, "disable"));
        assert!(rec.reconcile().is_empty());
        assert!(log(&mut rec).is_empty());

        // the same listen port, another app port: the old one lets go first
        rec.policy(&policy(9090, 91, false, "disable"));
        assert_eq!(rec.reconcile().len(), 1);
        assert_eq!(log(&mut rec), ["stop 0.0.0.0:9090", "start 0.0.0.0:9090"]);

        rec.policy(&policy(9090, 91, true, "disable"));
        assert_eq!(
            rec.reconcile(),
            [
                "defender: cnaf: stopped listening on 0.0.0.0:9090: no enabled CNAF rule for task \
              family \"web-shop\" names ports"
            ]
        );
        assert_eq!(log(&mut rec), ["stop 0.0.0.0:9090"]);
        assert_eq!(rec.serving(), None);
        rec.policy(&CnafPolicy::default());
        assert!(rec.reconcile().is_empty());
        assert!(log(&mut rec).is_empty());
    }

    #[test]
    fn a_busy_port_is_reported_once_keeps_the_old_proxy_and_is_retried() {
        let mut rec = console_only();
        rec.policy(&policy(8080, 80, false, "prevent"));
        rec.start_up().unwrap();
        rec.proxies.busy.insert(9090);
        rec.policy(&policy(9090, 80, false, "prevent"));
        assert_eq!(
            rec.reconcile(),
            [
                "defender: cnaf: cannot listen on 0.0.0.0:9090 for CNAF rule \"web\": Address \
              already in use (os error 98) (is another process using the port? free it or change \
              the rule's external_port); still listening on 0.0.0.0:8080; trying again at each \
              policy poll"
            ]
        );
        // the retries (poll ticks, the same policy again) say nothing more
        assert!(rec.reconcile().is_empty());
        rec.policy(&policy(9090, 80, false, "alert"));
        assert!(rec.reconcile().is_empty());
        assert_eq!(rec.serving(), Some(at("0.0.0.0:8080", "127.0.0.1:80")));
        assert_eq!(
            log(&mut rec),
            [
                "start 0.0.0.0:8080",
                "refused 0.0.0.0:9090",
                "refused 0.0.0.0:9090",
                "refused 0.0.0.0:9090"
            ]
        );
        // the port comes free: the next pass moves the proxy
        rec.proxies.busy.clear();
        assert_eq!(rec.reconcile().len(), 1);
        assert_eq!(rec.serving(), Some(at("0.0.0.0:9090", "127.0.0.1:80")));
        // a later failure (another change) is reported again
        rec.proxies.busy.insert(7070);
        rec.policy(&policy(7070, 80, false, "prevent"));
        assert_eq!(rec.reconcile().len(), 1);
        rec.policy(&policy(7071, 80, false, "prevent"));
        rec.proxies.busy.insert(7071);
        assert_eq!(rec.reconcile().len(), 1);
    }

    #[test]
    fn settings_run_first_yield_to_a_rule_and_come_back_when_it_goes() {
        let settings = at("127.0.0.1:8080", "127.0.0.1:80");
        let mut rec = Reconciler::new(Fake::default(), "web-shop".into(), Some(settings));
        assert!(rec.start_up().unwrap().is_empty());
        assert_eq!(rec.serving(), Some(settings));
        // the rule names the same port on all interfaces: the settings' proxy lets go first
        rec.policy(&policy(8080, 80, false, "prevent"));
        rec.reconcile();
        assert_eq!(
            log(&mut rec),
            [
                "start 127.0.0.1:8080",
                "stop 127.0.0.1:8080",
                "start 0.0.0.0:8080"
            ]
        );
        // rule disabled: back to the settings, not stopped
        rec.policy(&policy(8080, 80, true, "prevent"));
        assert_eq!(
            rec.reconcile(),
            [
                "defender: cnaf: DEFENDER_CNAF_LISTEN moved the proxy: no longer listening on \
              0.0.0.0:8080 (forwarding to 127.0.0.1:80)"
            ]
        );
        assert_eq!(rec.serving(), Some(settings));
    }

    #[test]
    fn at_start_up_busy_settings_fail_but_a_busy_rule_port_does_not() {
        let settings = at("127.0.0.1:8080", "127.0.0.1:80");
        let mut fake = Fake::default();
        fake.busy.insert(8080);
        let mut rec = Reconciler::new(fake, "web-shop".into(), Some(settings));
        assert_eq!(
            rec.start_up().unwrap_err().to_string(),
            "cannot listen on 127.0.0.1:8080: Address already in use (os error 98) (is another \
             process using the port? set DEFENDER_CNAF_LISTEN to a free address)"
        );
        rec.policy(&policy(8080, 80, false, "prevent"));
        let notes = rec.start_up().unwrap();
        assert_eq!(notes.len(), 1);
        assert!(
            notes[0].ends_with("not listening; trying again at each policy poll"),
            "{notes:?}"
        );
    }

    #[test]
    fn a_proxy_that_died_is_started_again() {
        let mut rec = console_only();
        rec.policy(&policy(8080, 80, false, "prevent"));
        rec.start_up().unwrap();
        rec.proxies.dead.insert(8080);
        assert_eq!(
            rec.reconcile(),
            ["defender: cnaf: the proxy on 0.0.0.0:8080 stopped unexpectedly"]
        );
        rec.proxies.dead.clear();
        assert_eq!(
            log(&mut rec),
            [
                "start 0.0.0.0:8080",
                "stop 0.0.0.0:8080",
                "start 0.0.0.0:8080"
            ]
        );
        assert_eq!(rec.serving(), Some(at("0.0.0.0:8080", "127.0.0.1:80")));
    }
}
