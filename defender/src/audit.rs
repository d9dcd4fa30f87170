//! Audits: the process events the supervisor reports, turned into contract audit records and
//! handed to every [`AuditSink`] (the `--audit-log` file; later the console shipper); and the
//! [`Caller`] that network, DNS and listen audits name.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;

use protect::audit::{process_message, AuditKind, AuditRecord};
use protect::policy::Scope;

use crate::exec_target;
use crate::judge::Finding;

/// One process-policy violation as the supervisor saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProcessEvent {
    pub finding: Finding,
    /// The process that exec'd (its tgid).
    pub pid: i32,
    /// The program, absolute path.
    pub process: String,
    /// The executable of the process that called exec.
    pub parent: String,
    /// The full command line.
    pub command: String,
}

/// The process behind a judged network call: the `pid`, `process`, `parent` and `command` of
/// its audit record.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Caller {
    /// The process id (thread group id) of the calling thread; the thread id itself when
    /// `/proc` no longer knows it.
    pub pid: i32,
    /// The executable of the caller's process, absolute path.
    pub process: String,
    /// The executable of that process's parent.
    pub parent: String,
    /// The process's command line (bounded, as for process audits).
    pub command: String,
}

impl Caller {
    /// Reads the process of thread `tid` from `/proc`: its thread group id, the group's
    /// executable and command line, and its parent's executable. Read it while the thread is held in the
    /// syscall (pending notification, ptrace stop) so the pid cannot name another process yet.
    /// A field that cannot be read (the process is gone) is left empty. Four small `/proc`
    /// reads: only for calls that are reported.
    pub fn of(tid: i32) -> Caller {
        let status = std::fs::read_to_string(format!("/proc/{tid}/status")).unwrap_or_default();
        let tgid = exec_target::status_value(&status, "Tgid:").unwrap_or(tid);
        let parent = exec_target::status_value(&status, "PPid:")
            .filter(|&ppid| ppid > 0)
            .and_then(exec_target::exe_of)
            .unwrap_or_default();
        Caller {
            pid: tgid,
            process: exec_target::exe_of(tgid).unwrap_or_default(),
            parent,
            command: exec_target::command_of(tgid),
        }
    }
}

/// Where the workload runs; copied into every record.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Workload {
    pub scope: Scope,
    pub task_arn: String,
}

impl Workload {
    /// Takes the task ARN from the ECS task metadata, and the family, container and image where
    /// they are still empty (flags and `DEFENDER_*` win).
    pub fn learn(&mut self, m: &crate::metadata::TaskMetadata) {
        let fill = |field: &mut String, from: &str| {
            if field.trim().is_empty() {
                from.clone_into(field);
            }
        };
        fill(&mut self.scope.task, &m.family);
        fill(&mut self.scope.container, &m.container);
        fill(&mut self.scope.image, &m.image);
        if !m.task_arn.is_empty() {
            m.task_arn.clone_into(&mut self.task_arn);
        }
    }
}

/// Receives every audit record. Must not block for long: it is called from the supervision
/// loop.
pub trait AuditSink: Send + Sync {
    fn record(&self, record: &AuditRecord);
}

/// Appends each record as one JSON line to a file.
pub struct JsonLinesFile {
    file: Mutex<File>,
}

impl JsonLinesFile {
    pub fn open(path: &Path) -> std::io::Result<JsonLinesFile> {
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        Ok(JsonLinesFile {
            file: Mutex::new(file),
        })
    }
}

impl AuditSink for JsonLinesFile {
    fn record(&self, record: &AuditRecord) {
        let Ok(mut line) = serde_json::to_string(record) else {
            return;
        };
        line.push('\n');
        if let Ok(mut f) = self.file.lock() {
            if let Err(e) = f.write_all(line.as_bytes()) {
                crate::say!("defender: cannot append to the audit log: {e}");
            }
        }
    }
}

/// Builds records and fans them out to the sinks; also logs each one on stderr.
#[derive(Clone)]
pub struct Auditor {
    /// Shared by every clone: task metadata that arrives late reaches all of them.
    workload: Arc<ArcSwap<Workload>>,
    sinks: Vec<Arc<dyn AuditSink>>,
}

impl Auditor {
    pub fn new(workload: Workload, sinks: Vec<Arc<dyn AuditSink>>) -> Auditor {
        Auditor {
            workload: Arc::new(ArcSwap::from_pointee(workload)),
            sinks,
        }
    }

    /// Task metadata that arrived after start-up: the next records carry it (see
    /// [`Workload::learn`]).
    pub fn learn(&self, m: &crate::metadata::TaskMetadata) {
        self.workload.rcu(|w| {
            let mut w = Workload::clone(w);
            w.learn(m);
            w
        });
    }

    /// Stamps the workload on `record`, logs it on stderr and hands it to every sink. Other
    /// parts of the defender (network policy, CNAF) report through here too.
    pub fn record(&self, record: AuditRecord) {
        let workload = self.workload.load();
        let mut record = record.with_scope(&workload.scope);
        record.task_arn.clone_from(&workload.task_arn);
        crate::say!(
            "defender: {} ({}): {}",
            record.effect.as_str(),
            record.rule,
            record.message
        );
        for sink in &self.sinks {
            sink.record(&record);
        }
    }

    /// Records a process event.
    pub fn process(&self, event: &ProcessEvent) {
        let f = &event.finding;
        let message = process_message(&event.process, &event.parent, &event.command, f.reason);
        let mut record = AuditRecord::new(AuditKind::Process, f.effect, f.rule.clone(), message);
        record.pid = u32::try_from(event.pid).ok();
        record.process = Some(event.process.clone());
        record.parent = Some(event.parent.clone());
        record.command = Some(event.command.clone());
        self.record(record);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exe(pid: u32) -> String {
        std::fs::read_link(format!("/proc/{pid}/exe"))
            .expect("readable exe")
            .to_string_lossy()
            .into_owned()
    }

    #[test]
    fn the_caller_is_this_process_its_parent_and_its_command_from_any_thread() {
        let me = Caller::of(std::process::id() as i32);
        let current = std::env::current_exe().expect("current exe");
        assert_eq!(
            me.process,
            std::fs::canonicalize(current)
                .expect("canonical")
                .to_string_lossy()
        );
        assert_eq!(me.parent, exe(std::os::unix::process::parent_id()));
        let args: Vec<String> = std::env::args().filter(|a| !a.is_empty()).collect();
        assert_eq!(me.command, args.join(" "));
        // Another thread of this process names the same process.
        let from_thread = std::thread::spawn(|| {
            let link = std::fs::read_link("/proc/thread-self").expect("thread-self");
            let tid: i32 = link
                .to_string_lossy()
                .rsplit('/')
                .next()
                .and_then(|t| t.parse().ok())
                .expect("tid");
            (tid, Caller::of(tid))
        })
        .join()
        .expect("thread");
        assert_ne!(from_thread.0, std::process::id() as i32);
        assert_eq!(me.pid, std::process::id() as i32);
        assert_eq!(from_thread.1, me);
    }

    #[test]
    fn a_caller_that_is_gone_keeps_its_thread_id_and_leaves_the_rest_empty() {
        // Above any pid_max (at most 2^22): no such process.
        assert_eq!(
            Caller::of(i32::MAX),
            Caller {
                pid: i32::MAX,
                ..Caller::default()
            }
        );
    }
}
