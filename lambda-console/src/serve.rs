//! The local server's HTTP/1 loop, with the limits `axum::serve` does not expose:
//!
//! - hyper's `header_read_timeout` (needs hyper-util's Tokio timer): a connection that has not
//!   sent a whole request head within `header_timeout` is closed, whether it sent part of one
//!   or nothing, and it is the idle timeout of a kept-alive connection too (the timer runs
//!   while hyper waits for the next head). HTTP/1 only: the local server does not speak h2c;
//! - tower-http's `RequestBodyTimeoutLayer`: a body that stalls for `body_timeout` fails;
//! - at most `max_connections` connections at once, kept below the process's open-file limit
//!   (raised to its hard limit first): past it, new connections wait in the kernel's backlog
//!   instead of the accept loop failing on `EMFILE`;
//! - the caller's address as axum's `ConnectInfo<SocketAddr>` (tower-http `AddExtension`), as
//!   `into_make_service_with_connect_info` would set it, for the login throttle;
//! - graceful shutdown (hyper-util): open requests finish, within [`DRAIN_TIMEOUT`].

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tower::{ServiceBuilder, ServiceExt};
use tower_http::add_extension::AddExtensionLayer;
use tower_http::timeout::RequestBodyTimeoutLayer;

/// How long shutdown waits for open connections.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// File descriptors kept free of connections (store, logs, the listener).
const FD_RESERVE: u64 = 64;

/// The local server's connection limits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    pub header_timeout: Duration,
    pub body_timeout: Duration,
    pub max_connections: usize,
}

impl Limits {
    /// The limits of `settings`.
    pub fn of(settings: &crate::Settings) -> Limits {
        Limits {
            header_timeout: settings.header_timeout,
            body_timeout: settings.body_timeout,
            max_connections: settings.max_connections,
        }
    }
}

/// Raises the open-file soft limit to the hard limit and returns how many connections fit
/// under it (at most `wanted`).
pub fn connection_budget(wanted: usize) -> usize {
    use rustix::process::{getrlimit, setrlimit, Resource};
    let mut limit = getrlimit(Resource::Nofile);
    if limit.current < limit.maximum {
        let raised = rustix::process::Rlimit {
            current: limit.maximum,
            maximum: limit.maximum,
        };
        match setrlimit(Resource::Nofile, raised) {
            Ok(()) => limit = raised,
            Err(e) => tracing::debug!(error = %e, "cannot raise the open-file limit"),
        }
    }
    match limit.current {
        Some(n) => {
            let fit = usize::try_from(n.saturating_sub(FD_RESERVE).max(16)).unwrap_or(usize::MAX);
            if fit < wanted {
                tracing::warn!(
                    max_connections = fit,
                    open_files = n,
                    "the open-file limit allows fewer connections than CONSOLE_MAX_CONNECTIONS"
                );
            }
            fit.min(wanted)
        }
        None => wanted,
    }
}

/// Serves `app` on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: Limits,
    shutdown: impl Future<Output = ()>,
) {
    let app = app.layer(RequestBodyTimeoutLayer::new(limits.body_timeout));
    // hyper's own HTTP/1 builder: hyper-util's auto builder first sniffs for HTTP/2 without a
    // timeout, so a connection that sends nothing would never be closed.
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .keep_alive(true);
    let slots = Arc::new(Semaphore::new(
        connection_budget(limits.max_connections).max(1),
    ));
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let slot = tokio::select! {
            s = Arc::clone(&slots).acquire_owned() => match s {
                Ok(s) => s,
                Err(_) => break,
            },
            () = &mut shutdown => break,
        };
        let (stream, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(c) => c,
                Err(e) => {
                    // EMFILE and the like: back off a little rather than spin.
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let service = ServiceBuilder::new()
            .layer(AddExtensionLayer::new(ConnectInfo(peer)))
            .service(app.clone())
            .map_request(|req: hyper::Request<hyper::body::Incoming>| req.map(Body::new));
        let conn =
            builder.serve_connection(TokioIo::new(stream), TowerToHyperService::new(service));
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::trace!(error = %e, %peer, "connection ended with an error");
            }
            drop(slot);
        });
    }
    drop(listener);
    if tokio::time::timeout(DRAIN_TIMEOUT, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("some connections were still open at shutdown");
    }
}
