//! CNAF inside the defender: settings (`--cnaf-listen`/`DEFENDER_CNAF_LISTEN`, the upstream, a
//! CNAF policy file), and the proxy run on a thread of its own with its audits fanned out
//! through the defender's [`Auditor`] (so they reach `--audit-log` and the console).

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::pin::pin;
use std::sync::mpsc;
use std::sync::Arc;
use std::task::Poll;
use std::thread::JoinHandle;

use anyhow::Context as _;
use cnaf::proxy::{AuditContext, PolicyHandle, ProxyConfig, ProxyError, ProxyPolicy};
use defender::audit::{Auditor, Workload};
use protect::audit::AuditRecord;
use protect::cnaf_policy::CnafPolicy;

/// Reads an address: `IP:PORT`, or a bare `PORT` (then `default_ip`). `what` names the setting
/// in the error.
pub fn parse_addr(what: &str, value: &str, default_ip: IpAddr) -> anyhow::Result<SocketAddr> {
    let v = value.trim();
    if let Ok(port) = v.parse::<u16>() {
        return Ok(SocketAddr::new(default_ip, port));
    }
    v.parse::<SocketAddr>().map_err(|_| {
        anyhow::anyhow!(
            "{what} {value:?}: not an address; expected IP:PORT (e.g. 0.0.0.0:8080) or a port \
             (names are not resolved)"
        )
    })
}

/// Where the proxy listens and forwards.
#[derive(Clone, Copy, Debug)]
pub struct Endpoints {
    pub listen: SocketAddr,
    pub upstream: SocketAddr,
}

impl Endpoints {
    /// From the flag/environment values; `None` when CNAF is not asked for (no listen address).
    pub fn from_settings(
        listen: Option<&str>,
        upstream: Option<&str>,
    ) -> anyhow::Result<Option<Endpoints>> {
        let Some(listen) = listen.filter(|l| !l.trim().is_empty()) else {
            return Ok(None);
        };
        let listen = parse_addr(
            "DEFENDER_CNAF_LISTEN (--cnaf-listen)",
            listen,
            IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        )?;
        let Some(upstream) = upstream.filter(|u| !u.trim().is_empty()) else {
            anyhow::bail!(
                "DEFENDER_CNAF_UPSTREAM (--cnaf-upstream): not set; CNAF listens on {listen} and \
                 needs the app's address to forward to, e.g. 127.0.0.1:80"
            );
        };
        let upstream = parse_addr(
            "DEFENDER_CNAF_UPSTREAM (--cnaf-upstream)",
            upstream,
            IpAddr::V4(Ipv4Addr::LOCALHOST),
        )?;
        if upstream == listen {
            anyhow::bail!(
                "DEFENDER_CNAF_UPSTREAM {upstream}: the same address CNAF listens on; point it \
                 at the app's port"
            );
        }
        Ok(Some(Endpoints { listen, upstream }))
    }
}

/// The rule for task `family` in a CNAF policy file (a pass-through when no rule matches).
pub fn load_policy_file(path: &Path, family: &str) -> anyhow::Result<ProxyPolicy> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("--cnaf-policy-file {}: cannot read it", path.display()))?;
    let policy = CnafPolicy::from_json(&text)
        .with_context(|| format!("--cnaf-policy-file {}: invalid CNAF policy", path.display()))?;
    let chosen = ProxyPolicy::for_task(&policy, family);
    if chosen.rule.is_empty() {
        defender::say!(
            "defender: cnaf: no rule in {} matches task family {family:?}: forwarding without \
             inspection",
            path.display()
        );
    }
    Ok(chosen)
}

/// CNAF audits go through the defender's auditor (stderr, `--audit-log`, the console).
struct ToAuditor(Auditor);

impl cnaf::proxy::AuditSink for ToAuditor {
    fn record(&self, record: AuditRecord) {
        self.0.record(record);
    }
}

/// The proxy, serving on its own threads until [`RunningProxy::stop`].
pub struct RunningProxy {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<Result<(), ProxyError>>>,
}

/// Binds the listen address and starts serving; returns once the socket is bound, or the
/// bind error (a busy port fails here, before the app starts).
pub fn start(
    at: Endpoints,
    policy: PolicyHandle,
    auditor: Auditor,
    workload: &Workload,
) -> Result<RunningProxy, ProxyError> {
    let mut config = ProxyConfig::new(at.listen, at.upstream, policy);
    config.audit = Arc::new(ToAuditor(auditor));
    config.context = AuditContext {
        task_family: workload.scope.task.clone(),
        task_arn: workload.task_arn.clone(),
        container: workload.scope.container.clone(),
        image: workload.scope.image.clone(),
    };
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let (bound_tx, bound_rx) = mpsc::channel::<Result<(), ProxyError>>();
    let thread = std::thread::Builder::new()
        .name("cnaf".into())
        .spawn(move || -> Result<(), ProxyError> {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(ProxyError::Thread)?;
            rt.block_on(async move {
                let shutdown = async move {
                    let _ = stop_rx.await;
                };
                let mut serving = pin!(cnaf::proxy::serve(config, shutdown));
                // `serve` binds before its first await: one poll tells bound from failed.
                let first = std::future::poll_fn(|cx| Poll::Ready(serving.as_mut().poll(cx))).await;
                match first {
                    Poll::Ready(Err(e)) => {
                        let _ = bound_tx.send(Err(e));
                        Ok(())
                    }
                    Poll::Ready(Ok(())) => {
                        let _ = bound_tx.send(Ok(()));
                        Ok(())
                    }
                    Poll::Pending => {
                        let _ = bound_tx.send(Ok(()));
                        serving.await
                    }
                }
            })
        })
        .map_err(ProxyError::Thread)?;
    match bound_rx.recv() {
        Ok(Ok(())) => {
            defender::say!(
                "defender: cnaf: listening on {}, forwarding to {}",
                at.listen,
                at.upstream
            );
            Ok(RunningProxy {
                stop: Some(stop_tx),
                thread: Some(thread),
            })
        }
        Ok(Err(e)) => {
            let _ = thread.join();
            Err(e)
        }
        Err(_) => {
            // The thread ended without a word: its runtime failed to build, or it panicked.
            match thread.join() {
                Ok(Err(e)) => Err(e),
                _ => Err(ProxyError::ThreadLost),
            }
        }
    }
}

impl RunningProxy {
    /// True once the proxy stopped on its own (an error; see [`RunningProxy::stop`]).
    pub fn finished(&self) -> bool {
        self.thread.as_ref().is_none_or(JoinHandle::is_finished)
    }

    /// Stops accepting, lets in-flight requests finish (bounded), and reports how it ended.
    pub fn stop(mut self) -> Result<(), ProxyError> {
        self.shutdown()
    }

    fn shutdown(&mut self) -> Result<(), ProxyError> {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        match self.thread.take().map(JoinHandle::join) {
            None => Ok(()),
            Some(Ok(r)) => r,
            Some(Err(_)) => Err(ProxyError::ThreadLost),
        }
    }
}

impl Drop for RunningProxy {
    fn drop(&mut self) {
        let _ = self.shutdown();
    }
}

/// `defender cnaf` and `defender run` CNAF flags' file argument, for messages.
pub fn describe_source(file: Option<&PathBuf>, console: bool) -> String {
    match (file, console) {
        (Some(f), _) => format!("rule from {}", f.display()),
        (None, true) => "rule from the console".to_string(),
        (None, false) => "no CNAF policy: forwarding without inspection".to_string(),
    }
}
