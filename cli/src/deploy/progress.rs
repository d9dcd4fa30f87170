//! Progress while deploying: a spinner with counts on a terminal, plain lines otherwise (CI
//! logs), both on stderr so stdout carries only the summary.

use std::io::{IsTerminal, Write};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

/// One observation of the service while waiting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WaitStatus {
    /// Running tasks.
    pub running: i32,
    /// Desired tasks.
    pub desired: i32,
    /// Pending tasks.
    pub pending: i32,
    /// Number of deployments (1 once the old one is drained).
    pub deployments: usize,
    /// Rollout state of the primary deployment, when ECS reports one.
    pub rollout: Option<String>,
}

impl std::fmt::Display for WaitStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "running {}/{}, pending {}, {} deployment{}",
            self.running,
            self.desired,
            self.pending,
            self.deployments,
            if self.deployments == 1 { "" } else { "s" }
        )?;
        if let Some(rollout) = &self.rollout {
            write!(f, ", rollout {rollout}")?;
        }
        Ok(())
    }
}

/// Where progress goes.
pub trait Progress: Send {
    /// A completed step ("registered ...", "created service ...").
    fn step(&mut self, message: &str);
    /// The latest wait status (reported every poll; implementations decide what to show).
    fn status(&mut self, status: &WaitStatus);
    /// A service event worth the user's attention (e.g. "unable to place a task").
    fn event(&mut self, message: &str);
    /// The wait is over.
    fn finish(&mut self);
}

/// Plain lines: steps and events as they come, the status only when it changes.
#[derive(Debug)]
pub struct PlainProgress<W> {
    out: W,
    last: Option<WaitStatus>,
}

impl<W: Write + Send> PlainProgress<W> {
    /// Lines written to `out`.
    pub fn new(out: W) -> PlainProgress<W> {
        PlainProgress { out, last: None }
    }

    /// The writer (tests read what was written).
    pub fn into_inner(self) -> W {
        self.out
    }
}

impl<W: Write + Send> Progress for PlainProgress<W> {
    fn step(&mut self, message: &str) {
        let _ = writeln!(self.out, "{message}");
    }

    fn status(&mut self, status: &WaitStatus) {
        if self.last.as_ref() != Some(status) {
            let _ = writeln!(self.out, "waiting: {status}");
            self.last = Some(status.clone());
        }
    }

    fn event(&mut self, message: &str) {
        let _ = writeln!(self.out, "service event: {message}");
    }

    fn finish(&mut self) {
        let _ = self.out.flush();
    }
}

/// A spinner on the terminal with the latest counts.
#[derive(Debug)]
pub struct SpinnerProgress {
    bar: ProgressBar,
}

impl SpinnerProgress {
    /// A spinner drawn on stderr.
    pub fn new() -> SpinnerProgress {
        let bar = ProgressBar::new_spinner();
        if let Ok(style) = ProgressStyle::with_template("{spinner} {elapsed} {msg}") {
            bar.set_style(style);
        }
        bar.enable_steady_tick(Duration::from_millis(120));
        bar.set_message("deploying");
        SpinnerProgress { bar }
    }
}

impl Default for SpinnerProgress {
    fn default() -> Self {
        SpinnerProgress::new()
    }
}

impl Progress for SpinnerProgress {
    fn step(&mut self, message: &str) {
        self.bar.println(message);
    }

    fn status(&mut self, status: &WaitStatus) {
        self.bar
            .set_message(format!("waiting for steady state: {status}"));
    }

    fn event(&mut self, message: &str) {
        self.bar.println(format!("service event: {message}"));
    }

    fn finish(&mut self) {
        self.bar.finish_and_clear();
    }
}

/// A spinner when stderr is a terminal, plain lines otherwise.
pub fn for_stderr() -> Box<dyn Progress> {
    if std::io::stderr().is_terminal() {
        Box::new(SpinnerProgress::new())
    } else {
        Box::new(PlainProgress::new(std::io::stderr()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_lines_repeat_a_status_only_when_it_changes() {
        let mut p = PlainProgress::new(Vec::new());
        let s = WaitStatus {
            running: 0,
            desired: 2,
            pending: 2,
            deployments: 2,
            rollout: Some("IN_PROGRESS".into()),
        };
        p.status(&s);
        p.status(&s);
        p.event("(service web) was unable to place a task");
        p.status(&WaitStatus {
            running: 2,
            pending: 0,
            deployments: 1,
            rollout: None,
            ..s
        });
        p.finish();
        let text = String::from_utf8(p.into_inner()).expect("utf-8");
        assert_eq!(
            text,
            "waiting: running 0/2, pending 2, 2 deployments, rollout IN_PROGRESS\n\
             service event: (service web) was unable to place a task\n\
             waiting: running 2/2, pending 0, 1 deployment\n"
        );
    }
}
