//! The connection to the app, one per client connection.
//!
//! HTTP/1.1 serves one request at a time per connection, so each client connection gets its own
//! keep-alive connection to the app, opened on first use and reopened when the app closed it. No
//! shared pool, no lock contention between clients; the app sees as many connections as there are
//! clients, as it would without the proxy.

use std::net::SocketAddr;
use std::time::Duration;

use http::{Request, Response};
use hyper::body::Incoming;
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use super::body::Forwarded;

/// Why a request could not be sent to the app.
#[derive(Debug, thiserror::Error)]
pub(crate) enum UpstreamError {
    #[error("cannot connect to the app at {addr}: {source}")]
    Connect {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("connecting to the app at {addr} timed out")]
    ConnectTimeout { addr: SocketAddr },
    #[error("HTTP exchange with the app failed: {0}")]
    Http(#[source] hyper::Error),
}

pub(crate) struct Upstream {
    addr: SocketAddr,
    connect_timeout: Duration,
    /// The open connection, taken out while a request uses it (a client connection sends one
    /// request at a time; were two to overlap, the second would open a connection of its own).
    sender: std::sync::Mutex<Option<SendRequest<Forwarded>>>,
}

impl Upstream {
    pub(crate) fn new(addr: SocketAddr, connect_timeout: Duration) -> Upstream {
        Upstream {
            addr,
            connect_timeout,
            sender: std::sync::Mutex::new(None),
        }
    }

    async fn connect(&self) -> Result<SendRequest<Forwarded>, UpstreamError> {
        let stream = tokio::time::timeout(self.connect_timeout, TcpStream::connect(self.addr))
            .await
            .map_err(|_| UpstreamError::ConnectTimeout { addr: self.addr })?
            .map_err(|source| UpstreamError::Connect {
                addr: self.addr,
                source,
            })?;
        let _ = stream.set_nodelay(true);
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(UpstreamError::Http)?;
        // with_upgrades: a 101 hands the connection over to the WebSocket tunnel
        tokio::spawn(async move {
            if let Err(e) = conn.with_upgrades().await {
                tracing::debug!("cnaf: app connection ended: {e}");
            }
        });
        Ok(sender)
    }

    /// Send `req`, reusing the open connection; a request the app's idle close prevented from
    /// being sent is retried once on a fresh connection.
    pub(crate) async fn send(
        &self,
        mut req: Request<Forwarded>,
    ) -> Result<Response<Incoming>, UpstreamError> {
        let mut slot = self.sender.lock().ok().and_then(|mut s| s.take());
        loop {
            let reused = slot.as_ref().is_some_and(|s| !s.is_closed());
            let mut sender = match slot.take() {
                Some(s) if reused => s,
                _ => self.connect().await?,
            };
            if let Err(e) = sender.ready().await {
                if reused {
                    continue;
                }
                return Err(UpstreamError::Http(e));
            }
            match sender.try_send_request(req).await {
                Ok(resp) => {
                    // a connection that switched protocols is the tunnel's now
                    if resp.status() != http::StatusCode::SWITCHING_PROTOCOLS {
                        if let Ok(mut s) = self.sender.lock() {
                            *s = Some(sender);
                        }
                    }
                    return Ok(resp);
                }
                Err(mut e) => match e.take_message() {
                    Some(unsent) if reused => req = unsent,
                    _ => return Err(UpstreamError::Http(e.into_error())),
                },
            }
        }
    }
}
