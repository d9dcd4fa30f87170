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
//! - [`socket`]: taking the app's socket and copying its buffers.
//! - [`emulate`]: performing the app's call on its own socket after deciding on copied bytes.
//! - [`listen`]: `bind`/`listen` on the listening-port lists.
//! - [`pool`]: worker threads for the calls that may block.
//! - [`trace`]: the ptrace fallback: decide at the seccomp stop, skip denied calls.
//! - [`stub`]: the loopback resolver stub that connected resolver sockets are pointed at.

pub mod decide;
pub mod dns;
pub mod emulate;
pub mod listen;
pub mod msg;
pub mod pool;
pub mod sockaddr;
pub mod socket;
pub mod stub;
pub mod trace;

use std::sync::{Arc, Mutex};

use protect::policy::{Effect, Rule, RuntimePolicy, Scope};

use crate::audit::{Auditor, Caller};
use crate::backend::notify::NotifyDelegate;
use crate::judge::SharedPolicy;
use crate::supervisor::Stopper;
use crate::sys::bpf::{Action, Rule as FilterRule};
use crate::sys::notify::{Listener, Notification, Reply};

pub use decide::{NetEvent, Verdict};

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

/// Follows the live policy and picks this workload's rule, once per policy version.
pub struct RulePicker {
    policy: SharedPolicy,
    scope: Scope,
    /// The policy last seen and the rule picked from it.
    picked: Mutex<Picked>,
}

/// A policy and the rule picked from it for the workload.
type Picked = (Option<Arc<RuntimePolicy>>, Option<Arc<Rule>>);

impl RulePicker {
    pub fn new(policy: SharedPolicy, scope: Scope) -> RulePicker {
        RulePicker {
            policy,
            scope,
            picked: Mutex::new((None, None)),
        }
    }

    /// The rule in force for this workload (`None`: no rule applies, everything is allowed).
    /// A policy swapped in by the console applies from the next call.
    pub fn rule(&self) -> Option<Arc<Rule>> {
        let current = self.policy.load_full();
        let mut picked = self.picked.lock().ok()?;
        if picked.0.as_ref().is_some_and(|p| Arc::ptr_eq(p, &current)) {
            return picked.1.clone();
        }
        let rule = current.rule_for(&self.scope).cloned().map(Arc::new);
        *picked = (Some(current), rule.clone());
        rule
    }
}

/// State shared by the dispatcher, the workers and the stub.
pub struct Shared {
    rules: RulePicker,
    audit: AuditSink,
    resolved: dns::ResolvedNames,
    routes: stub::Routes,
    /// `None` when loopback could not be bound: resolver sockets then go to their nameserver
    /// unredirected (judged on outbound only) instead of the defender refusing to start.
    stub: Option<stub::StubAddrs>,
    /// `None` under the ptrace backend (nothing is emulated there).
    pool: Option<pool::Pool>,
    pidfds: socket::PidfdCache,
    unprivileged_port_start: u16,
}

impl Shared {
    fn rule(&self) -> Option<Arc<Rule>> {
        self.rules.rule()
    }

    /// Reports `event`, naming the process that made the call: `event.pid`, the calling
    /// thread, becomes its process (thread group) id. Every path but the stub calls this while
    /// that thread is still held in its syscall (the notification unanswered, the tracee at its
    /// seccomp stop), so its id still names it; the stub's route already holds the process id
    /// of the thread that connected the resolver socket.
    fn report(&self, mut event: NetEvent) {
        let caller = Caller::of(event.pid);
        event.pid = caller.pid;
        event.caller = Some(caller);
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
        let bound = match stub::bind() {
            Ok(b) => Some(b),
            Err(e) => {
                crate::say!("defender: {e}; DNS on connected resolver sockets will not be judged");
                None
            }
        };
        let shared = Arc::new(Shared {
            rules: RulePicker::new(policy, scope),
            audit,
            resolved: dns::ResolvedNames::new(16_384),
            routes: stub::Routes::default(),
            stub: bound.as_ref().map(|b| b.addrs),
            pool: Some(pool::Pool::start(replies)?),
            pidfds: socket::PidfdCache::default(),
            unprivileged_port_start,
        });
        if let Some(bound) = bound {
            stub::start(&shared, bound)?;
        }
        Ok(NetGuard { shared })
    }

    /// The guard for the ptrace backend ([`NetGuard::precheck`]): no stub, no workers, nothing
    /// emulated.
    pub fn start_traced(policy: SharedPolicy, scope: Scope, audit: AuditSink) -> NetGuard {
        NetGuard {
            shared: Arc::new(Shared {
                rules: RulePicker::new(policy, scope),
                audit,
                resolved: dns::ResolvedNames::new(16_384),
                routes: stub::Routes::default(),
                stub: None,
                pool: None,
                pidfds: socket::PidfdCache::default(),
                unprivileged_port_start: 1024,
            }),
        }
    }

    /// The stub's loopback addresses (`None` when it could not be bound).
    pub fn stub_addrs(&self) -> Option<stub::StubAddrs> {
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
            emulate::Handled::Later(work) => match &self.shared.pool {
                Some(pool) => pool.submit(n.id, work),
                None => Some(work()),
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

#[cfg(test)]
mod tests {
    use super::*;
    use arc_swap::ArcSwap;

    fn policy(revision: u64, task: &str, denied: &str) -> RuntimePolicy {
        let json = format!(
            r#"{{"revision":{revision},"rules":[{{"name":"r{revision}","scope":{{"tasks":["{task}"]}},
                "dns":{{"effect":"prevent","denied":["{denied}"]}}}}]}}"#
        );
        RuntimePolicy::from_json(&json).unwrap()
    }

    #[test]
    fn the_picker_follows_policy_updates_and_scope() {
        let shared: SharedPolicy = Arc::new(ArcSwap::from_pointee(policy(1, "web*", "yahoo.com")));
        let scope = Scope {
            task: "web-app".into(),
            container: "c".into(),
            image: "i".into(),
        };
        let picker = RulePicker::new(Arc::clone(&shared), scope);
        let r1 = picker.rule().unwrap();
        assert_eq!(r1.name, "r1");
        assert!(r1.check_domain("yahoo.com").is_some());
        // Same policy: the same rule object, no re-pick.
        assert!(Arc::ptr_eq(&r1, &picker.rule().unwrap()));
        shared.store(Arc::new(policy(2, "web*", "google.com")));
        let r2 = picker.rule().unwrap();
        assert_eq!(r2.name, "r2");
        assert!(r2.check_domain("yahoo.com").is_none() && r2.check_domain("google.com").is_some());
        shared.store(Arc::new(policy(3, "batch*", "google.com")));
        assert!(picker.rule().is_none());
    }

    #[test]
    fn filter_rules_skip_addressless_sendto_and_notify_the_rest() {
        use crate::sys::bpf::{evaluate, program, AUDIT_ARCH_X86_64};
        let prog = program(&NetGuard::filter_rules(), Action::Allow);
        let run = |nr: i64, args: [u64; 6]| evaluate(&prog, nr as u32, AUDIT_ARCH_X86_64, args);
        assert_eq!(
            run(libc::SYS_sendto, [3, 0x1000, 5, 0, 0, 0]),
            libc::SECCOMP_RET_ALLOW
        );
        assert_eq!(
            run(libc::SYS_sendto, [3, 0x1000, 5, 0, 0x2000, 16]),
            libc::SECCOMP_RET_USER_NOTIF
        );
        assert_eq!(
            run(libc::SYS_sendto, [3, 0x1000, 5, 0, 1 << 40, 16]),
            libc::SECCOMP_RET_USER_NOTIF
        );
        for nr in [
            libc::SYS_connect,
            libc::SYS_sendmsg,
            libc::SYS_sendmmsg,
            libc::SYS_bind,
            libc::SYS_listen,
        ] {
            assert_eq!(
                run(nr, [3, 0, 0, 0, 0, 0]),
                libc::SECCOMP_RET_USER_NOTIF,
                "{nr}"
            );
            assert!(NetGuard::handles(nr as i32));
        }
        assert_eq!(
            run(libc::SYS_write, [1, 0, 0, 0, 0, 0]),
            libc::SECCOMP_RET_ALLOW
        );
        assert!(!NetGuard::handles(libc::SYS_write as i32));
    }
}
