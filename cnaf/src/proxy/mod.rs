//! The CNAF reverse proxy: HTTP/1.1 on hyper 1.x, one inspection per request, clean traffic
//! forwarded to the app over pooled keep-alive connections.
//!
//! - Listens on [`ProxyConfig::listen`], forwards to [`ProxyConfig::upstream`] (an IP address:
//!   no name resolution happens).
//! - Reads up to `body_limit` bytes of each body, inspects head + that prefix with
//!   [`crate::inspect`], then streams prefix + the rest upstream unchanged (chunked stays
//!   chunked, lengths stay lengths).
//! - `prevent` findings get a 403 block page naming a request id; every finding becomes an
//!   audit (kind `cnaf`) carrying the same id, sent to the [`AuditSink`].
//! - Adds `X-Forwarded-For` (appends the peer), `X-Forwarded-Proto` (keeps a client's, else
//!   `http`) and `X-Request-Id` upstream; removes hop-by-hop headers.
//! - App down: 502 page; each request tries again, so traffic recovers when the app returns.
//! - Bounded: request head ([`Limits::max_header_bytes`], [`Limits::max_headers`]), time to
//!   send the head ([`Limits::header_timeout`]), buffered body (`body_limit`).
//! - WebSocket: an `Upgrade: websocket` handshake is inspected like any request; when the app
//!   answers 101 both connections are joined and bytes copied both ways, uninspected. Other
//!   upgrade protocols are dropped as hop-by-hop headers.
//! - Graceful shutdown: stop accepting, let in-flight requests and open WebSocket connections
//!   finish, all bounded by [`Limits::shutdown_grace`]; what is still open then is closed.
//! - The policy is swappable while serving ([`PolicyHandle::set`]).

mod audit;
mod body;
mod handler;
pub(crate) mod tail;
mod upgrade;
mod upstream;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;

pub use audit::{AuditContext, AuditSink, DiscardAudits};
use upgrade::Phase;

use crate::policy::{all, CnafEffect, CnafPolicy, CnafRule, Protections, DEFAULT_BODY_LIMIT};

/// What the proxy enforces: the CNAF rule that applies to this workload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyPolicy {
    /// Rule name carried by audits (empty when no rule applies).
    pub rule: String,
    /// Effect per protection.
    pub protections: Protections,
    /// Request-body bytes inspected (the rest is streamed uninspected).
    pub body_limit: usize,
}

impl ProxyPolicy {
    /// The policy of one CNAF rule.
    pub fn from_rule(rule: &CnafRule) -> ProxyPolicy {
        ProxyPolicy {
            rule: rule.name.clone(),
            protections: rule.protections,
            body_limit: rule.body_limit,
        }
    }

    /// The first enabled rule of `policy` whose scope matches task family `family`; with none,
    /// a pass-through (every protection disabled).
    pub fn for_task(policy: &CnafPolicy, family: &str) -> ProxyPolicy {
        policy
            .rule_for_task(family)
            .map_or_else(ProxyPolicy::pass_through, ProxyPolicy::from_rule)
    }

    /// Forward everything, inspect nothing.
    pub fn pass_through() -> ProxyPolicy {
        ProxyPolicy {
            rule: String::new(),
            protections: all(CnafEffect::Disable),
            body_limit: 0,
        }
    }

    /// Every protection set to `effect`, default body limit (tools and tests).
    pub fn uniform(rule: &str, effect: CnafEffect) -> ProxyPolicy {
        ProxyPolicy {
            rule: rule.to_string(),
            protections: all(effect),
            body_limit: DEFAULT_BODY_LIMIT,
        }
    }
}

/// A shared, atomically swappable [`ProxyPolicy`]: the policy poller calls [`set`](Self::set)
/// and the next request sees the new policy; requests in flight keep the one they started with.
#[derive(Debug, Clone)]
pub struct PolicyHandle(Arc<ArcSwap<ProxyPolicy>>);

impl PolicyHandle {
    /// A handle holding `policy`.
    pub fn new(policy: ProxyPolicy) -> PolicyHandle {
        PolicyHandle(Arc::new(ArcSwap::from_pointee(policy)))
    }

    /// Replace the policy.
    pub fn set(&self, policy: ProxyPolicy) {
        self.0.store(Arc::new(policy));
    }

    /// The current policy.
    pub fn get(&self) -> Arc<ProxyPolicy> {
        self.0.load_full()
    }
}

/// The header count hyper parses without allocating (its default limit).
const HYPER_INLINE_HEADERS: usize = 100;

/// Resource bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest request head (request line + headers); larger gets 431. Minimum 8192.
    pub max_header_bytes: usize,
    /// Most header fields in a request; more gets 431.
    pub max_headers: usize,
    /// Time a client has to send a complete request head.
    pub header_timeout: Duration,
    /// Time to connect to the app.
    pub connect_timeout: Duration,
    /// How long shutdown waits for in-flight requests and upgraded (WebSocket) connections.
    pub shutdown_grace: Duration,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_header_bytes: 64 * 1024,
            max_headers: HYPER_INLINE_HEADERS,
            header_timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(5),
            shutdown_grace: Duration::from_secs(10),
        }
    }
}

/// Everything [`serve`] needs.
#[derive(Clone)]
pub struct ProxyConfig {
    /// Address to listen on (the task's external CNAF port).
    pub listen: SocketAddr,
    /// The app (`127.0.0.1:APP_PORT`).
    pub upstream: SocketAddr,
    /// The enforced policy, swappable at run time.
    pub policy: PolicyHandle,
    /// Where audits go.
    pub audit: Arc<dyn AuditSink>,
    /// Workload fields copied into audits.
    pub context: AuditContext,
    /// Resource bounds.
    pub limits: Limits,
    /// Proxy threads, each an event loop of its own accepting on the same socket (default:
    /// the CPUs available to the task, at most 4).
    pub threads: usize,
}

impl ProxyConfig {
    /// A configuration with default limits, no workload context and audits discarded.
    pub fn new(listen: SocketAddr, upstream: SocketAddr, policy: PolicyHandle) -> ProxyConfig {
        ProxyConfig {
            listen,
            upstream,
            policy,
            audit: Arc::new(DiscardAudits),
            context: AuditContext::default(),
            limits: Limits::default(),
            threads: std::thread::available_parallelism().map_or(1, |n| n.get().min(4)),
        }
    }
}

/// Why the proxy could not run.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}: {source} (is another process using the port? set DEFENDER_CNAF_LISTEN to a free address)")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    /// The bound socket has no local address.
    #[error("cannot read the local address of the listening socket: {0}")]
    LocalAddr(#[source] std::io::Error),
    /// The proxy thread or its runtime could not be started.
    #[error("cannot start the CNAF proxy thread: {0}")]
    Thread(#[source] std::io::Error),
    /// The proxy thread ended without reporting (it panicked).
    #[error("the CNAF proxy thread stopped unexpectedly")]
    ThreadLost,
}

/// A bound proxy, not yet serving (lets callers learn the port when binding port 0).
pub struct Proxy {
    listener: TcpListener,
    config: ProxyConfig,
}

impl Proxy {
    /// Bind `config.listen`.
    pub async fn bind(config: ProxyConfig) -> Result<Proxy, ProxyError> {
        let listener =
            TcpListener::bind(config.listen)
                .await
                .map_err(|source| ProxyError::Bind {
                    addr: config.listen,
                    source,
                })?;
        Ok(Proxy { listener, config })
    }

    /// The address actually bound.
    pub fn local_addr(&self) -> Result<SocketAddr, ProxyError> {
        self.listener.local_addr().map_err(ProxyError::LocalAddr)
    }

    /// Serve until `shutdown` completes, then drain in-flight requests and upgraded connections
    /// (bounded by [`Limits::shutdown_grace`]; what is still open then is closed).
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send) -> Result<(), ProxyError> {
        // every connection task and tunnel holds a receiver: shutdown waits for them all to go
        let (phase_tx, phase_rx) = tokio::sync::watch::channel(Phase::Serving);
        let state = Arc::new(handler::State::new(&self.config, phase_rx.clone()));
        let limits = self.config.limits;
        let mut http = hyper::server::conn::http1::Builder::new();
        http.timer(TokioTimer::new())
            .header_read_timeout(limits.header_timeout)
            .max_buf_size(limits.max_header_bytes.max(8192))
            .max_header_size(limits.max_header_bytes)
            .keep_alive(true);
        if limits.max_headers != HYPER_INLINE_HEADERS {
            // hyper parses up to 100 fields in place; another limit costs two heap buffers
            // (and their initialisation) per request
            http.max_headers(limits.max_headers);
        }
        tokio::pin!(shutdown);
        tracing::info!(
            "cnaf: listening on {}, forwarding to {}",
            self.local_addr()?,
            self.config.upstream
        );
        loop {
            tokio::select! {
                () = &mut shutdown => break,
                accepted = self.listener.accept() => {
                    let (stream, peer) = match accepted {
                        Ok(x) => x,
                        Err(e) => {
                            // EMFILE and friends: back off instead of spinning
                            tracing::warn!("cnaf: accept failed: {e}");
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            continue;
                        }
                    };
                    let _ = stream.set_nodelay(true);
                    let client = Arc::new(handler::Client::new(state.clone(), peer));
                    let svc = hyper::service::service_fn(move |req| {
                        handler::handle(req, client.clone())
                    });
                    let conn = http.serve_connection(TokioIo::new(stream), svc).with_upgrades();
                    tokio::spawn(connection(conn, phase_rx.clone(), peer));
                }
            }
        }
        drop(self.listener);
        drop(state);
        drop(phase_rx);
        phase_tx.send_replace(Phase::Draining);
        if tokio::time::timeout(limits.shutdown_grace, phase_tx.closed())
            .await
            .is_err()
        {
            tracing::warn!("cnaf: shutdown grace period over; closing open connections");
            phase_tx.send_replace(Phase::Closing);
            // they close at their next poll
            let _ = tokio::time::timeout(Duration::from_secs(1), phase_tx.closed()).await;
        }
        Ok(())
    }
}

/// Serve one client connection: asked to drain, it finishes the request in flight and closes;
/// at the end of the grace period it is dropped.
async fn connection<C>(conn: C, mut phase: tokio::sync::watch::Receiver<Phase>, peer: SocketAddr)
where
    C: Future<Output = Result<(), hyper::Error>> + GracefulShutdown,
{
    tokio::pin!(conn);
    let served = tokio::select! {
        r = conn.as_mut() => Some(r),
        _ = phase.wait_for(|p| *p != Phase::Serving) => None,
    };
    let result = match served {
        Some(r) => r,
        None => {
            conn.as_mut().start_shutdown();
            tokio::select! {
                r = conn.as_mut() => r,
                _ = phase.wait_for(|p| *p == Phase::Closing) => Ok(()),
            }
        }
    };
    if let Err(e) = result {
        tracing::debug!("cnaf: connection from {peer}: {e}");
    }
}

/// A served connection that can be asked to finish (hyper's upgradeable HTTP/1 connection).
trait GracefulShutdown {
    fn start_shutdown(self: std::pin::Pin<&mut Self>);
}

impl<I, S, B> GracefulShutdown for hyper::server::conn::http1::UpgradeableConnection<I, S>
where
    S: hyper::service::HttpService<hyper::body::Incoming, ResBody = B>,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
    B: hyper::body::Body + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    fn start_shutdown(self: std::pin::Pin<&mut Self>) {
        hyper::server::conn::http1::UpgradeableConnection::graceful_shutdown(self);
    }
}

/// Bind `config.listen` and serve until `shutdown` completes.
///
/// The proxy runs on threads of its own ([`ProxyConfig::threads`]), each a single-threaded
/// tokio runtime: request load cannot starve the caller's runtime (the defender's supervisor),
/// and event loops without cross-thread wake-ups are the cheapest way to proxy on Fargate's
/// 0.25–4 vCPU tasks. Binding happens before the first `await`, so a busy port fails fast.
pub async fn serve(
    config: ProxyConfig,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), ProxyError> {
    let addr = config.listen;
    let std_listener =
        std::net::TcpListener::bind(addr).map_err(|source| ProxyError::Bind { addr, source })?;
    std_listener
        .set_nonblocking(true)
        .map_err(|source| ProxyError::Bind { addr, source })?;
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let (done_tx, mut done_rx) = tokio::sync::mpsc::unbounded_channel();
    let threads = config.threads.max(1);
    for n in 0..threads {
        // every thread accepts on the same socket; the kernel spreads the connections
        let listener = std_listener.try_clone().map_err(ProxyError::Thread)?;
        let config = config.clone();
        let mut stop_rx = stop_rx.clone();
        let done_tx = done_tx.clone();
        std::thread::Builder::new()
            .name(format!("cnaf-proxy-{n}"))
            .spawn(move || {
                let result = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map_err(ProxyError::Thread)
                    .and_then(|rt| {
                        rt.block_on(async move {
                            let listener = TcpListener::from_std(listener)
                                .map_err(|source| ProxyError::Bind { addr, source })?;
                            let stopped = async move {
                                let _ = stop_rx.wait_for(|stop| *stop).await;
                            };
                            Proxy { listener, config }.run(stopped).await
                        })
                    });
                let _ = done_tx.send(result);
            })
            .map_err(ProxyError::Thread)?;
    }
    drop(done_tx);
    drop(std_listener);
    let mut first = None;
    tokio::select! {
        r = done_rx.recv() => first = Some(r.unwrap_or(Err(ProxyError::ThreadLost))),
        () = shutdown => {}
    }
    let _ = stop_tx.send(true);
    let mut results = Vec::with_capacity(threads);
    results.extend(first);
    while let Some(r) = done_rx.recv().await {
        results.push(r);
    }
    if results.len() < threads {
        return Err(ProxyError::ThreadLost);
    }
    results.into_iter().collect()
}
