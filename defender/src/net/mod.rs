//! Network policy: DNS names, outbound connections and listening ports.
//!
//! The supervisor's seccomp filter notifies `connect`, `sendto` (with an address), `sendmsg`,
//! `sendmmsg`, `bind` and `listen` ([`NetGuard::filter_rules`]); the supervisor hands each such
//! notification to [`NetGuard::handle`].
//!
//! - [`sockaddr`]: decoding the copied `sockaddr`, encoding the one the defender uses.
//! - [`decide`]: the pure decisions against `protect::policy::Rule` and the audit events.
//! - [`dns`]: DNS wire format (hickory-proto): query names, refusals, answers, TCP framing.
//! - [`msg`]: `msghdr`/`mmsghdr` layouts and the ancillary-data check.
//! - [`emulate`]: performing the app's call on its own socket after deciding on copied bytes.
//! - [`stub`]: the loopback resolver stub that connected resolver sockets are pointed at.

pub mod decide;
pub mod dns;
pub mod emulate;
pub mod msg;
pub mod sockaddr;
pub mod stub;

use std::sync::mpsc;
use std::sync::{Arc, Mutex};

use protect::policy::{Effect, Rule, RuntimePolicy, Scope};

use crate::audit::Auditor;
use crate::backend::notify::NotifyDelegate;
use crate::judge::SharedPolicy;
use crate::supervisor::Stopper;
use crate::sys::bpf::{Action, Rule as FilterRule};
use crate::sys::notify::{Listener, Notification, Reply};

pub use decide::{NetEvent, Verdict};

/// Threads that run calls which may block (a blocking `connect`, a full send buffer).
const WORKERS: usize = 4;

/// Why the network guard could not start.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    #[error("cannot bind the DNS stub on loopback (is 127.0.0.1 configured?): {source}")]
    StubBind {
        #[source]
        source: std::io::Error,
    },
    #[error("cannot start a network policy thread: {source}")]
    Thread {
        #[source]
        source: std::io::Error,
    },
}

/// Where audit events go.
pub type AuditSink = Arc<dyn Fn(NetEvent) + Send + Sync>;

/// A policy and the rule picked from it for the workload.
type Picked = (Option<Arc<RuntimePolicy>>, Option<Arc<Rule>>);

/// State shared by the dispatcher, the workers and the stub.
pub struct Shared {
    policy: SharedPolicy,
    scope: Scope,
    /// The rule picked for `scope` from the policy last seen (recomputed when it is replaced).
    picked: Mutex<Picked>,
    audit: AuditSink,
    resolved: dns::ResolvedNames,
    routes: stub::Routes,
    stub: stub::StubAddrs,
    replies: Listener,
    unprivileged_port_start: u16,
}

impl Shared {
    /// The rule in force for this workload (`None`: no rule applies, everything is allowed).
    fn rule(&self) -> Option<Arc<Rule>> {
        let current = self.policy.load_full();
        let mut picked = self.picked.lock().ok()?;
        if picked.0.as_ref().is_some_and(|p| Arc::ptr_eq(p, &current)) {
            return picked.1.clone();
        }
        let rule = current.rule_for(&self.scope).cloned().map(Arc::new);
        *picked = (Some(current), rule.clone());
        rule
    }

    fn report(&self, event: NetEvent) {
        (self.audit)(event);
    }

    /// Whether a query that cannot be decoded should be stopped: the DNS section would stop
    /// something (an allowed list, or denied names under `prevent`/`block`).
    fn dns_denies_anything(&self, rule: Option<&Rule>) -> bool {
        rule.is_some_and(|r| {
            matches!(r.dns.effect, Effect::Prevent | Effect::Block)
                && (!r.dns.allowed.is_empty() || !r.dns.denied.is_empty())
        })
    }
}

/// The network policy enforcer the supervisor dispatches to.
#[derive(Clone)]
pub struct NetGuard {
    shared: Arc<Shared>,
    work: mpsc::Sender<(u64, emulate::Work)>,
}

impl NetGuard {
    /// Starts the DNS stub and the worker pool. Decisions use the rule of `policy` for `scope`
    /// (a console update swapped into `policy` applies to the next call). `replies` answers
    /// notifications completed on a worker (a clone of the supervisor's listener).
    pub fn start(
        policy: SharedPolicy,
        scope: Scope,
        replies: Listener,
        audit: AuditSink,
    ) -> Result<NetGuard, NetError> {
        let unprivileged_port_start =
            std::fs::read_to_string("/proc/sys/net/ipv4/ip_unprivileged_port_start")
                .ok()
                .and_then(|s| s.trim().parse().ok())
                .unwrap_or(1024);
        let bound = stub::bind()?;
        let shared = Arc::new(Shared {
            policy,
            scope,
            picked: Mutex::new((None, None)),
            audit,
            resolved: dns::ResolvedNames::new(16_384),
            routes: stub::Routes::default(),
            stub: bound.addrs,
            replies,
            unprivileged_port_start,
        });
        stub::start(&shared, bound)?;
        let (tx, rx) = mpsc::channel::<(u64, emulate::Work)>();
        let rx = Arc::new(Mutex::new(rx));
        for i in 0..WORKERS {
            let (rx, s) = (Arc::clone(&rx), Arc::clone(&shared));
            std::thread::Builder::new()
                .name(format!("net-worker-{i}"))
                .spawn(move || worker(&s, &rx))
                .map_err(|source| NetError::Thread { source })?;
        }
        Ok(NetGuard { shared, work: tx })
    }

    /// The stub's loopback addresses.
    pub fn stub_addrs(&self) -> stub::StubAddrs {
        self.shared.stub
    }

    /// Whether syscall `nr` is one this module handles.
    pub fn handles(nr: i32) -> bool {
        [
            libc::SYS_connect,
            libc::SYS_sendto,
            libc::SYS_sendmsg,
            libc::SYS_sendmmsg,
            libc::SYS_bind,
            libc::SYS_listen,
        ]
        .contains(&i64::from(nr))
    }

    /// The filter lines to splice in, in order: `sendto` without an address (a connected
    /// socket, already decided) stays in the kernel; the rest is notified.
    pub fn filter_rules() -> Vec<FilterRule> {
        let mut rules = vec![FilterRule::SyscallArgEq {
            nr: libc::SYS_sendto as u32,
            arg: 4,
            value: 0,
            action: Action::Allow,
        }];
        rules.extend(
            [
                libc::SYS_connect,
                libc::SYS_sendto,
                libc::SYS_sendmsg,
                libc::SYS_sendmmsg,
                libc::SYS_bind,
                libc::SYS_listen,
            ]
            .iter()
            .map(|&nr| FilterRule::Syscall {
                nr: nr as u32,
                action: Action::Notify,
            }),
        );
        rules
    }

    /// Handles one notification. Never blocks: `Some(reply)` is the answer to send now; `None`
    /// means a worker answers it when the call completes.
    pub fn handle(&self, n: &Notification) -> Option<Reply> {
        match emulate::handle(&self.shared, n) {
            emulate::Handled::Now(r) => Some(r),
            emulate::Handled::Later(work) => match self.work.send((n.id, work)) {
                Ok(()) => None,
                Err(mpsc::SendError((_, work))) => Some(work()),
            },
        }
    }
}

impl NotifyDelegate for NetGuard {
    fn handles(&self, nr: i32) -> bool {
        NetGuard::handles(nr)
    }

    fn handle(&self, n: &Notification) -> Option<Reply> {
        NetGuard::handle(self, n)
    }
}

/// The sink `defender run` uses: every event becomes a contract audit record; a `block` event
/// also stops the app tree.
pub fn audit_sink(auditor: Auditor, stopper: Stopper) -> AuditSink {
    Arc::new(move |event: NetEvent| {
        auditor.record(event.to_record());
        if event.effect == Effect::Block {
            stopper.stop();
        }
    })
}

fn worker(shared: &Shared, rx: &Mutex<mpsc::Receiver<(u64, emulate::Work)>>) {
    loop {
        let job = match rx.lock() {
            Ok(rx) => rx.recv(),
            Err(_) => return,
        };
        let Ok((id, work)) = job else { return };
        let reply = work();
        let _ = shared.replies.send(id, reply);
    }
}
