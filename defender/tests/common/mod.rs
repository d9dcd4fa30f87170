//! Running the real `defender` binary on real programs, with a policy and an audit log in a
//! fresh directory.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub const DEFENDER: &str = env!("CARGO_BIN_EXE_defender");
pub const PROBE: &str = env!("CARGO_BIN_EXE_defender-probe");

/// A scratch directory removed on drop.
pub struct Scratch {
    pub dir: PathBuf,
}

impl Scratch {
    pub fn new(name: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("defender-test-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create scratch dir");
        Scratch { dir }
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.join(rel)
    }

    pub fn s(&self, rel: &str) -> String {
        self.path(rel).to_string_lossy().into_owned()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A one-rule policy with a process section.
pub fn process_policy(effect: &str, allowed: &[&str], denied: &[&str]) -> String {
    serde_json::json!({
        "revision": 1,
        "rules": [{
            "name": "test-rule",
            "scope": { "containers": ["*"] },
            "processes": { "effect": effect, "allowed": allowed, "denied": denied }
        }]
    })
    .to_string()
}

/// The result of one `defender run`.
pub struct Run {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    pub audits: Vec<serde_json::Value>,
}

impl Run {
    pub fn messages(&self) -> Vec<String> {
        self.audits
            .iter()
            .map(|a| a["message"].as_str().unwrap_or_default().to_string())
            .collect()
    }
}

/// Runs `defender run --backend B --policy-file P --audit-log L -- app...` in `scratch`.
pub fn run(backend: &str, scratch: &Scratch, policy: &str, app: &[&str]) -> Run {
    let policy_path = scratch.path("policy.json");
    let log = scratch.path("audit.jsonl");
    std::fs::write(&policy_path, policy).expect("write policy");
    let _ = std::fs::remove_file(&log);
    let out: Output = Command::new(DEFENDER)
        .args(["run", "--backend", backend, "--policy-file"])
        .arg(&policy_path)
        .arg("--audit-log")
        .arg(&log)
        .arg("--")
        .args(app)
        .current_dir(&scratch.dir)
        .output()
        .expect("start defender");
    Run {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        audits: read_audits(&log),
    }
}

pub fn read_audits(log: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).expect("audit line is JSON"))
        .collect()
}

/// Where a shell finds `name` first in PATH (what it will exec).
pub fn first_in_path(name: &str) -> String {
    let path = std::env::var("PATH").expect("PATH");
    path.split(':')
        .map(|d| format!("{d}/{name}"))
        .find(|p| Path::new(p).is_file())
        .expect("program in PATH")
}

/// `/proc/PID/exe` style canonical path.
pub fn canonical(p: &str) -> String {
    std::fs::canonicalize(p)
        .expect("canonicalize")
        .to_string_lossy()
        .into_owned()
}
