//! The proxy's addresses (`DEFENDER_CNAF_LISTEN` / `DEFENDER_CNAF_UPSTREAM`, or a CNAF rule's
//! ports) and one running proxy on a thread of its own, its audits fanned out through the
//! defender's [`Auditor`] (so they reach `--audit-log` and the console).

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::pin::pin;
use std::sync::mpsc;
use std::sync::Arc;
use std::task::Poll;
use std::thread::JoinHandle;

use cnaf::proxy::{AuditContext, PolicyHandle, ProxyConfig, ProxyError};
use protect::audit::AuditRecord;
use protect::cnaf_policy::CnafRule;
use protect::embed::{CNAF_FROM_CONSOLE, ENV_CNAF};

use crate::audit::{Auditor, Workload};

/// A CNAF setting that cannot be used; the text names the variable and the fix.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CnafSettingError {
    /// An address setting is neither `IP:PORT` nor a port.
    #[error(
        "{what} {value:?}: not an address; expected IP:PORT (e.g. 0.0.0.0:8080) or a port \
         (names are not resolved)"
    )]
    NotAnAddress { what: &'static str, value: String },
    /// A listen address without the app's address.
    #[error(
        "DEFENDER_CNAF_UPSTREAM (--cnaf-upstream): not set; CNAF listens on {listen} and needs \
         the app's address to forward to, e.g. 127.0.0.1:80"
    )]
    NoUpstream { listen: SocketAddr },
    /// The proxy would forward to itself.
    #[error(
        "DEFENDER_CNAF_UPSTREAM {upstream}: the same address CNAF listens on; point it at the \
         app's port"
    )]
    SameAddress { upstream: SocketAddr },
    /// `DEFENDER_CNAF` has a value this defender does not know.
    #[error(
        "{ENV_CNAF} (--cnaf) {value:?}: not a CNAF mode; use {CNAF_FROM_CONSOLE:?} (the proxy \
         listens on the ports of the console's CNAF rule for the task family, and follows them \
         live), or leave it unset or \"off\" (the proxy runs only with DEFENDER_CNAF_LISTEN)"
    )]
    UnknownMode { value: String },
}

/// Reads an address: `IP:PORT`, or a bare `PORT` (then `default_ip`). `what` names the setting
/// in the error.
pub fn parse_addr(
    what: &'static str,
    value: &str,
    default_ip: IpAddr,
) -> Result<SocketAddr, CnafSettingError> {
    let v = value.trim();
    if let Ok(port) = v.parse::<u16>() {
        return Ok(SocketAddr::new(default_ip, port));
    }
    v.parse::<SocketAddr>()
        .map_err(|_| CnafSettingError::NotAnAddress {
            what,
            value: value.to_string(),
        })
}

/// Where the proxy listens and forwards.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Endpoints {
    pub listen: SocketAddr,
    pub upstream: SocketAddr,
}

impl Endpoints {
    /// From the flag/environment values; `None` when they ask for no proxy (no listen address).
    pub fn from_settings(
        listen: Option<&str>,
        upstream: Option<&str>,
    ) -> Result<Option<Endpoints>, CnafSettingError> {
        let Some(listen) = listen.filter(|l| !l.trim().is_empty()) else {
            return Ok(None);
        };
        let listen = parse_addr(
            "DEFENDER_CNAF_LISTEN (--cnaf-listen)",
            listen,
            IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        )?;
        let Some(upstream) = upstream.filter(|u| !u.trim().is_empty()) else {
            return Err(CnafSettingError::NoUpstream { listen });
        };
        let upstream = parse_addr(
            "DEFENDER_CNAF_UPSTREAM (--cnaf-upstream)",
            upstream,
            IpAddr::V4(Ipv4Addr::LOCALHOST),
        )?;
        if upstream == listen {
            return Err(CnafSettingError::SameAddress { upstream });
        }
        Ok(Some(Endpoints { listen, upstream }))
    }

    /// What a CNAF rule names: listen on `0.0.0.0:external_port`, forward to
    /// `127.0.0.1:app_port`. `None` for a port 0 or equal ports (the policy's validation refuses
    /// both; a defender never binds an arbitrary port for them).
    pub fn from_rule(rule: &CnafRule) -> Option<Endpoints> {
        let (external, app) = (rule.external_port, rule.app_port);
        (external != 0 && app != 0 && external != app).then(|| Endpoints {
            listen: SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), external),
            upstream: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), app),
        })
    }
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
            crate::say!(
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

    /// Stops accepting (the port is released at once), lets in-flight requests finish
    /// (bounded), and reports how it ended.
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_and_their_errors() {
        let at = Endpoints::from_settings(Some("8080"), Some("80")).unwrap();
        assert_eq!(
            at,
            Some(Endpoints {
                listen: "0.0.0.0:8080".parse().unwrap(),
                upstream: "127.0.0.1:80".parse().unwrap(),
            })
        );
        assert_eq!(Endpoints::from_settings(None, Some("80")), Ok(None));
        assert_eq!(Endpoints::from_settings(Some(" "), None), Ok(None));
        assert_eq!(
            Endpoints::from_settings(Some("8080"), None)
                .unwrap_err()
                .to_string(),
            "DEFENDER_CNAF_UPSTREAM (--cnaf-upstream): not set; CNAF listens on 0.0.0.0:8080 and \
             needs the app's address to forward to, e.g. 127.0.0.1:80"
        );
        assert_eq!(
            Endpoints::from_settings(Some("web:8080"), Some("80"))
                .unwrap_err()
                .to_string(),
            "DEFENDER_CNAF_LISTEN (--cnaf-listen) \"web:8080\": not an address; expected IP:PORT \
             (e.g. 0.0.0.0:8080) or a port (names are not resolved)"
        );
        assert_eq!(
            Endpoints::from_settings(Some("127.0.0.1:80"), Some("80"))
                .unwrap_err()
                .to_string(),
            "DEFENDER_CNAF_UPSTREAM 127.0.0.1:80: the same address CNAF listens on; point it at \
             the app's port"
        );
    }

    #[test]
    fn a_rules_ports_are_all_interfaces_to_loopback() {
        let rule: CnafRule =
            serde_json::from_str(r#"{"name":"web","external_port":8080,"app_port":80}"#).unwrap();
        assert_eq!(
            Endpoints::from_rule(&rule),
            Some(Endpoints {
                listen: "0.0.0.0:8080".parse().unwrap(),
                upstream: "127.0.0.1:80".parse().unwrap(),
            })
        );
        for (external_port, app_port) in [(0, 80), (8080, 0), (8080, 8080)] {
            let odd = CnafRule {
                external_port,
                app_port,
                ..rule.clone()
            };
            assert_eq!(
                Endpoints::from_rule(&odd),
                None,
                "{external_port} {app_port}"
            );
        }
    }
}
