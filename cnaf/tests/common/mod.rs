//! What the proxy integration tests share: a proxy bound on loopback and served until told to
//! stop.
#![allow(clippy::unwrap_used)] // test helpers: a failure here is a test failure

use std::net::SocketAddr;

use cnaf::proxy::{Proxy, ProxyConfig};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// A proxy serving on its own task.
pub struct Running {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Send (or drop) to start its graceful shutdown.
    pub stop: oneshot::Sender<()>,
    /// Ends when the proxy has shut down.
    pub done: JoinHandle<()>,
}

/// Bind `cfg` (listen on `127.0.0.1:0` for a free port) and serve until `stop`.
pub async fn run_proxy(cfg: ProxyConfig) -> Running {
    let proxy = Proxy::bind(cfg).await.unwrap();
    let addr = proxy.local_addr().unwrap();
    let (stop, stop_rx) = oneshot::channel::<()>();
    let done = tokio::spawn(async move {
        proxy
            .run(async {
                let _ = stop_rx.await;
            })
            .await
            .unwrap();
    });
    Running { addr, stop, done }
}
