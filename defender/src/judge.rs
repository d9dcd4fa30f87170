//! Deciding an exec: the [`ExecJudge`] trait the supervision mechanism asks, and the names a
//! program is judged under.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;
use protect::policy::{RuntimePolicy, Scope};

use crate::copies::DeniedImages;

pub use protect::policy::{Effect, Reason};

/// A violation of the process policy (effect `Alert`, `Prevent` or `Block`).
pub type Finding = protect::policy::Violation;

/// The names an exec is judged under.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ExecNames {
    /// The program's own names: its canonical path and the system aliases of that path. On an
    /// allow list, one of them must be allowed; on a deny list, any of them denied is enough.
    pub program: Vec<String>,
    /// Names that led to it (the path as called when it was a symlink, a `#!` script's path):
    /// checked against the denied list only, since an attacker can pick them freely.
    pub via: Vec<String>,
}

/// Decides whether a program may run. Implementations must be cheap and never block: the
/// caller is waiting in `execve`.
pub trait ExecJudge: Send + Sync {
    fn judge(&self, names: &ExecNames) -> Option<Finding>;

    /// A program whose name passed but whose content is a denied program's (a copy, a hard
    /// link, a memfd). `exe` opens the running image (`/proc/PID/exe`). Returns the finding and
    /// the denied file it copies.
    fn judge_copy(&self, _exe: &Path) -> Option<(Finding, PathBuf)> {
        None
    }
}

/// Combines per-name answers from a policy rule: `check(name)` answers like
/// `Rule::check_process`. Deny wins from any name; "not allowed" needs every program name to be
/// not allowed.
pub fn combine(names: &ExecNames, check: impl Fn(&str) -> Option<Finding>) -> Option<Finding> {
    let mut not_allowed: Option<Finding> = None;
    let mut allowed_somewhere = false;
    for name in &names.program {
        match check(name) {
            Some(f) if f.reason == Reason::ExplicitlyDenied => return Some(f),
            Some(f) => {
                not_allowed.get_or_insert(f);
            }
            None => allowed_somewhere = true,
        }
    }
    for name in &names.via {
        if let Some(f) = check(name) {
            if f.reason == Reason::ExplicitlyDenied {
                return Some(f);
            }
        }
    }
    if allowed_somewhere {
        None
    } else {
        not_allowed
    }
}

/// The runtime policy in force, swappable while the app runs (the console poller stores a new
/// one; the next exec is judged by it).
pub type SharedPolicy = Arc<ArcSwap<RuntimePolicy>>;

/// Judges execs with the first enabled rule of the shared policy that matches the workload.
pub struct PolicyJudge {
    policy: SharedPolicy,
    scope: Scope,
    /// The denied files of the rule in force, keyed by the policy they were resolved for.
    copies: Mutex<Option<(usize, Arc<DeniedImages>)>>,
}

impl PolicyJudge {
    pub fn new(policy: SharedPolicy, scope: Scope) -> PolicyJudge {
        PolicyJudge {
            policy,
            scope,
            copies: Mutex::new(None),
        }
    }

    fn denied_images(
        &self,
        policy: &Arc<RuntimePolicy>,
        rule: &protect::policy::Rule,
    ) -> Arc<DeniedImages> {
        let key = Arc::as_ptr(policy) as usize;
        let mut cache = self.copies.lock().unwrap_or_else(|p| p.into_inner());
        match cache.as_ref() {
            Some((k, images)) if *k == key => Arc::clone(images),
            _ => {
                let images = Arc::new(DeniedImages::for_rule(rule));
                *cache = Some((key, Arc::clone(&images)));
                images
            }
        }
    }
}

impl ExecJudge for PolicyJudge {
    fn judge(&self, names: &ExecNames) -> Option<Finding> {
        let policy = self.policy.load();
        let rule = policy.rule_for(&self.scope)?;
        combine(names, |n| rule.check_process(n))
    }

    fn judge_copy(&self, exe: &Path) -> Option<(Finding, PathBuf)> {
        let policy = self.policy.load_full();
        let rule = policy.rule_for(&self.scope)?;
        if rule.processes.effect == Effect::Disable || rule.processes.denied.is_empty() {
            return None;
        }
        let images = self.denied_images(&policy, rule);
        let original = images.matching(exe)?.to_path_buf();
        let finding = Finding {
            effect: rule.processes.effect,
            rule: rule.name.clone(),
            reason: Reason::ExplicitlyDenied,
        };
        Some((finding, original))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn finding(reason: Reason) -> Finding {
        Finding {
            effect: Effect::Prevent,
            rule: "r".into(),
            reason,
        }
    }

    fn names(program: &[&str], via: &[&str]) -> ExecNames {
        ExecNames {
            program: program.iter().map(|s| s.to_string()).collect(),
            via: via.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn a_denied_alias_or_via_name_is_a_violation() {
        let deny_mkdir = |n: &str| {
            n.ends_with("/mkdir")
                .then(|| finding(Reason::ExplicitlyDenied))
        };
        assert!(combine(&names(&["/usr/bin/mkdir", "/bin/mkdir"], &[]), deny_mkdir).is_some());
        assert!(combine(&names(&["/usr/bin/true"], &["/tmp/mkdir"]), deny_mkdir).is_some());
        assert!(combine(&names(&["/usr/bin/true"], &["/tmp/x"]), deny_mkdir).is_none());
    }

    #[test]
    fn allow_lists_judge_the_program_not_the_link() {
        let allow_ls = |n: &str| (!n.ends_with("/ls")).then(|| finding(Reason::NotAllowed));
        // A symlink called `ls` to mkdir is mkdir.
        assert!(combine(&names(&["/usr/bin/mkdir"], &["/tmp/ls"]), allow_ls).is_some());
        // One allowed alias is enough.
        assert!(combine(&names(&["/usr/bin/ls", "/bin/ls"], &[]), allow_ls).is_none());
    }

    #[test]
    fn a_swapped_policy_applies_to_the_next_exec() {
        let deny = |name: &str| {
            RuntimePolicy::from_json(&format!(
                r#"{{"revision": 1, "rules": [{{"name": "r", "processes": {{"effect": "prevent", "denied": ["{name}"]}}}}]}}"#
            ))
            .expect("policy")
        };
        let shared: SharedPolicy = Arc::new(ArcSwap::from_pointee(deny("mkdir")));
        let judge = PolicyJudge::new(Arc::clone(&shared), Scope::default());
        let mkdir = names(&["/usr/bin/mkdir", "/bin/mkdir"], &[]);
        let found = judge.judge(&mkdir).expect("mkdir denied");
        assert_eq!(
            (found.effect, found.reason),
            (Effect::Prevent, Reason::ExplicitlyDenied)
        );
        shared.store(Arc::new(deny("rmdir")));
        assert_eq!(judge.judge(&mkdir), None);
        assert!(judge.judge(&names(&["/usr/bin/rmdir"], &[])).is_some());
    }
}
