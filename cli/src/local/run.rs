//! The task run: holder, volumes, containers in `dependsOn` order, log streaming, essential
//! semantics, stop on signal, cleanup.

use super::docker::Docker;
use super::error::LocalError;
use super::plan::{self, Naming, Secrets, DEFAULT_STOP_TIMEOUT};
use super::task::{Condition, TaskDef};
use std::io::{BufRead, BufReader, Read, Write};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Where container logs and run messages go: `[name] line`, stdout to `out`, stderr to `err`.
#[derive(Clone)]
pub struct LogSink {
    out: Arc<Mutex<dyn Write + Send>>,
    err: Arc<Mutex<dyn Write + Send>>,
}

impl LogSink {
    /// The process's stdout and stderr.
    pub fn stdio() -> LogSink {
        LogSink::new(
            Arc::new(Mutex::new(std::io::stdout())),
            Arc::new(Mutex::new(std::io::stderr())),
        )
    }

    /// Any two writers.
    pub fn new(out: Arc<Mutex<dyn Write + Send>>, err: Arc<Mutex<dyn Write + Send>>) -> LogSink {
        LogSink { out, err }
    }

    fn line(target: &Arc<Mutex<dyn Write + Send>>, prefix: &str, line: &str) {
        if let Ok(mut w) = target.lock() {
            let _ = writeln!(w, "[{prefix}] {line}");
            let _ = w.flush();
        }
    }

    /// A message of the runner itself, on `err`, prefixed `[local]`.
    pub fn note(&self, message: &str) {
        LogSink::line(&self.err, "local", message);
    }
}

/// How to run.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// The holder's network: `none` (loopback only) or a Docker network name.
    pub network: String,
    /// Secret values.
    pub secrets: Secrets,
    /// Stop the task on Ctrl-C / SIGTERM (the CLI); tests leave it off.
    pub handle_signals: bool,
}

/// Events the run loop waits for.
enum Event {
    /// `docker start --attach` of container `index` returned (the container exited).
    Exited(usize),
    /// Ctrl-C or SIGTERM.
    Stop(StopSignal),
}

/// A signal that stops the task, and the exit code it leads to (128 + its number, as a shell
/// reports a command it killed).
#[derive(Debug, Clone, Copy)]
struct StopSignal {
    name: &'static str,
    exit_code: u8,
}

const SIGINT: StopSignal = StopSignal {
    name: "SIGINT",
    exit_code: 130,
};
const SIGTERM: StopSignal = StopSignal {
    name: "SIGTERM",
    exit_code: 143,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Pending,
    Running,
    Exited(i32),
}

/// Runs `task` on the local engine until it stops; returns the exit code of the essential
/// container that stopped it. Every container and volume it created is removed.
pub fn run_task(
    docker: &Docker,
    task: &TaskDef,
    opts: &RunOptions,
    log: &LogSink,
) -> Result<u8, LocalError> {
    let naming = Naming::new(&task.family, std::process::id());
    // Build every create command first: a missing secret fails before anything starts.
    let creates = task
        .container_definitions
        .iter()
        .map(|c| plan::create_args(c, &naming, &opts.secrets))
        .collect::<Result<Vec<_>, _>>()?;
    super::pause::ensure_image(docker)?;
    let (tx, rx) = mpsc::channel();
    if opts.handle_signals {
        watch_signals(tx.clone(), docker.clone(), naming.label(), log.clone())?;
    }
    let result = Run {
        docker,
        task,
        naming: &naming,
        log,
        tx,
        phases: vec![Phase::Pending; task.container_definitions.len()],
    }
    .run(opts, &creates, &rx);
    for failure in docker.remove_labelled(&naming.label()) {
        log.note(&format!("cleanup: {failure}"));
    }
    result
}

struct Run<'a> {
    docker: &'a Docker,
    task: &'a TaskDef,
    naming: &'a Naming,
    log: &'a LogSink,
    tx: Sender<Event>,
    phases: Vec<Phase>,
}

/// What the start check of a pending container found.
enum Readiness {
    Ready,
    Wait,
    Never(String),
}

impl Run<'_> {
    fn run(
        mut self,
        opts: &RunOptions,
        creates: &[plan::CreateArgs],
        rx: &Receiver<Event>,
    ) -> Result<u8, LocalError> {
        let holder = plan::holder_args(
            self.task,
            self.naming,
            &opts.network,
            super::pause::PAUSE_IMAGE,
        );
        let mut run_args = vec!["run"];
        run_args.extend(holder.iter().map(String::as_str));
        self.docker.output(&run_args)?;
        let label = self.naming.label();
        for v in &self.task.volumes {
            let name = self.naming.volume(&v.name);
            self.docker
                .output(&["volume", "create", "--label", &label, &name])?;
        }
        let order = self.task.start_order()?;
        let mut stopping = false;
        let mut stopped_by: Option<(usize, i32)> = None;
        let mut signalled: Option<StopSignal> = None;
        let mut failure: Option<LocalError> = None;
        loop {
            if !stopping {
                for &i in &order {
                    if self.phases[i] != Phase::Pending {
                        continue;
                    }
                    match self.readiness(i) {
                        Readiness::Wait => {}
                        Readiness::Ready => {
                            if let Err(e) = self.start(i, &creates[i]) {
                                failure = Some(e);
                                stopping = true;
                                self.stop_all();
                                break;
                            }
                        }
                        Readiness::Never(reason) => {
                            failure = Some(LocalError::DependencyFailed {
                                container: self.task.container_definitions[i].name.clone(),
                                reason,
                            });
                            stopping = true;
                            self.stop_all();
                            break;
                        }
                    }
                }
            }
            if !self.phases.contains(&Phase::Running) {
                break;
            }
            match rx.recv_timeout(Duration::from_millis(250)) {
                Ok(Event::Exited(i)) => {
                    let def = &self.task.container_definitions[i];
                    let code = self
                        .docker
                        .state(&self.naming.container(&def.name))
                        .map(|s| s.exit_code)
                        .unwrap_or(-1);
                    self.phases[i] = Phase::Exited(code);
                    self.log
                        .note(&format!("container {} exited with code {code}", def.name));
                    if def.is_essential() && !stopping {
                        self.log.note(&format!(
                            "essential container {} exited: stopping the task",
                            def.name
                        ));
                        stopped_by = Some((i, code));
                        stopping = true;
                        self.stop_all();
                    }
                }
                Ok(Event::Stop(signal)) => {
                    if !stopping {
                        self.log.note(&format!(
                            "{}: stopping the task (Ctrl-C again kills the containers now)",
                            signal.name
                        ));
                        signalled = Some(signal);
                        stopping = true;
                        self.stop_all();
                    }
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => break,
            }
        }
        if let Some(e) = failure {
            return Err(e);
        }
        if let Some(signal) = signalled {
            // Stopped by the user: like a shell, 128 + the signal's number.
            return Ok(signal.exit_code);
        }
        let code = stopped_by.map(|(_, c)| c);
        Ok(code.and_then(|c| u8::try_from(c).ok()).unwrap_or(1))
    }

    fn readiness(&self, i: usize) -> Readiness {
        let mut ready = true;
        for d in &self.task.container_definitions[i].depends_on {
            let Some(j) = self
                .task
                .container_definitions
                .iter()
                .position(|c| c.name == d.container_name)
            else {
                return Readiness::Never(format!("{} is not in the task", d.container_name));
            };
            let dep = &d.container_name;
            let ok = match (d.condition, self.phases[j]) {
                (_, Phase::Pending) => false,
                (Condition::Start, _) => true,
                (Condition::Complete, Phase::Exited(_)) => true,
                (Condition::Success, Phase::Exited(0)) => true,
                (Condition::Success, Phase::Exited(code)) => {
                    return Readiness::Never(format!(
                        "{dep} exited with code {code}, and it must succeed (dependsOn SUCCESS)"
                    ))
                }
                (Condition::Healthy, Phase::Exited(code)) => {
                    return Readiness::Never(format!(
                        "{dep} exited with code {code} before it was healthy (dependsOn HEALTHY)"
                    ))
                }
                (Condition::Healthy, Phase::Running) => {
                    let name = self.naming.container(dep);
                    match self.docker.state(&name).map(|s| s.health) {
                        Ok(h) if h == "healthy" => true,
                        Ok(h) if h == "unhealthy" => {
                            return Readiness::Never(format!(
                                "{dep} is unhealthy (dependsOn HEALTHY)"
                            ))
                        }
                        _ => false,
                    }
                }
                (Condition::Complete | Condition::Success, Phase::Running) => false,
            };
            ready &= ok;
        }
        if ready {
            Readiness::Ready
        } else {
            Readiness::Wait
        }
    }

    /// Creates and starts container `i`, streams its logs, and returns once Docker reports
    /// it started (the START condition).
    fn start(&mut self, i: usize, create: &plan::CreateArgs) -> Result<(), LocalError> {
        let def = &self.task.container_definitions[i];
        let name = self.naming.container(&def.name);
        self.docker
            .create(&create.args, &create.env)
            .map_err(|e| match e {
                LocalError::Docker { command, message } if message.contains("No such image") => {
                    LocalError::Docker {
                        command,
                        message: format!(
                            "{message} (local runs never pull: build or `docker load` {} first)",
                            def.image
                        ),
                    }
                }
                other => other,
            })?;
        let mut child = self.docker.start_attached(&name)?;
        let readers = [
            child
                .stdout
                .take()
                .map(|s| pump(s, def.name.clone(), self.log.out.clone())),
            child
                .stderr
                .take()
                .map(|s| pump(s, def.name.clone(), self.log.err.clone())),
        ];
        let tx = self.tx.clone();
        std::thread::spawn(move || {
            let _ = child.wait();
            for r in readers.into_iter().flatten() {
                let _ = r.join();
            }
            let _ = tx.send(Event::Exited(i));
        });
        self.phases[i] = Phase::Running;
        self.log.note(&format!("started container {}", def.name));
        // Wait until Docker has actually started it (or it already exited).
        for _ in 0..200 {
            match self.docker.state(&name) {
                Ok(s) if s.status != "created" => break,
                _ => std::thread::sleep(Duration::from_millis(50)),
            }
        }
        Ok(())
    }

    /// Stops every running container, dependents first (reverse start order), each with its
    /// stopTimeout.
    fn stop_all(&self) {
        let Ok(order) = self.task.start_order() else {
            return;
        };
        for &i in order.iter().rev() {
            if self.phases[i] != Phase::Running {
                continue;
            }
            let def = &self.task.container_definitions[i];
            let secs = def.stop_timeout.unwrap_or(DEFAULT_STOP_TIMEOUT);
            if let Err(e) = self.docker.stop(&self.naming.container(&def.name), secs) {
                self.log.note(&format!("stopping {}: {e}", def.name));
            }
        }
    }
}

/// Copies `stream` line by line to `target` with a `[name]` prefix.
fn pump(
    stream: impl Read + Send + 'static,
    name: String,
    target: Arc<Mutex<dyn Write + Send>>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let mut reader = BufReader::new(stream);
        let mut buf = Vec::new();
        while let Ok(n) = reader.read_until(b'\n', &mut buf) {
            if n == 0 {
                break;
            }
            let text = String::from_utf8_lossy(&buf);
            LogSink::line(&target, &name, text.trim_end_matches(['\n', '\r']));
            buf.clear();
        }
    })
}

/// Sends [`Event::Stop`] on every SIGINT / SIGTERM (installed before anything starts). From
/// the second one on, the run's containers are killed at once (`docker kill`) while the
/// ordered stop is still waiting for their `stopTimeout`.
fn watch_signals(
    tx: Sender<Event>,
    docker: Docker,
    label: String,
    log: LogSink,
) -> Result<(), LocalError> {
    let (ready_tx, ready_rx) = mpsc::channel();
    std::thread::spawn(move || {
        let rt = match tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            Ok(rt) => rt,
            Err(e) => {
                let _ = ready_tx.send(Err(e));
                return;
            }
        };
        rt.block_on(async move {
            use tokio::signal::unix::{signal, SignalKind};
            let (mut int, mut term) = match (
                signal(SignalKind::interrupt()),
                signal(SignalKind::terminate()),
            ) {
                (Ok(i), Ok(t)) => (i, t),
                (Err(e), _) | (_, Err(e)) => {
                    let _ = ready_tx.send(Err(e));
                    return;
                }
            };
            let _ = ready_tx.send(Ok(()));
            let mut count = 0u32;
            loop {
                let signal = tokio::select! {
                    _ = int.recv() => SIGINT,
                    _ = term.recv() => SIGTERM,
                };
                count += 1;
                if count > 1 {
                    log.note(&format!("{} again: killing the containers", signal.name));
                    for failure in docker.kill_labelled(&label) {
                        log.note(&format!("kill: {failure}"));
                    }
                }
                if tx.send(Event::Stop(signal)).is_err() {
                    break;
                }
            }
        });
    });
    match ready_rx.recv() {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(LocalError::Signals(e)),
        Err(_) => Err(LocalError::Signals(std::io::Error::other(
            "the signal thread ended",
        ))),
    }
}
