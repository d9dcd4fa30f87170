//! WebSocket pass-through: an HTTP/1.1 `Upgrade: websocket` request is inspected like any other;
//! when the app answers `101 Switching Protocols`, the client's and the app's connections are
//! joined and bytes are copied both ways, uninspected, until either side closes.
//!
//! Only `websocket` is let through. Other protocols (`h2c`, TLS upgrades, ...) keep the old
//! behaviour: `Upgrade` is dropped as a hop-by-hop header and the request reaches the app as a
//! plain HTTP/1.1 request.

use http::header::{self, HeaderMap, HeaderValue};
use http::{Method, Request, Version};
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use tokio::sync::watch;

/// Where a proxy is in its life: tunnels stay open while [`Phase::Draining`] and are closed
/// at [`Phase::Closing`] (the end of the shutdown grace period).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    Serving,
    Draining,
    Closing,
}

/// Whether a header holding comma-separated tokens names `token` (ASCII case-insensitive).
fn has_token(h: &HeaderMap, name: &header::HeaderName, token: &str) -> bool {
    h.get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case(token))
}

/// The `Upgrade` value to forward when `req` is a WebSocket opening handshake CNAF lets
/// through: HTTP/1.1 `GET`, `Connection` naming `upgrade`, one `Upgrade` value that is
/// `websocket`, and no request body (no `Transfer-Encoding`, no non-zero `Content-Length`).
pub(crate) fn websocket<B>(req: &Request<B>) -> Option<HeaderValue> {
    if req.method() != Method::GET || req.version() != Version::HTTP_11 {
        return None;
    }
    let h = req.headers();
    let mut upgrades = h.get_all(header::UPGRADE).iter();
    let (Some(value), None) = (upgrades.next(), upgrades.next()) else {
        return None;
    };
    if !value
        .as_bytes()
        .trim_ascii()
        .eq_ignore_ascii_case(b"websocket")
        || !has_token(h, &header::CONNECTION, "upgrade")
        || h.contains_key(header::TRANSFER_ENCODING)
        || h.get(header::CONTENT_LENGTH)
            .is_some_and(|v| v.as_bytes() != b"0")
    {
        return None;
    }
    Some(value.clone())
}

/// Put back the two headers that ask for (or confirm) the switch, after hop-by-hop stripping.
pub(crate) fn restore_headers(h: &mut HeaderMap, upgrade: HeaderValue) {
    h.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    h.insert(header::UPGRADE, upgrade);
}

/// Join the client's and the app's upgraded connections and copy bytes both ways until either
/// side closes, or until the proxy's shutdown grace period is over.
pub(crate) async fn tunnel(
    client: OnUpgrade,
    app: OnUpgrade,
    mut phase: watch::Receiver<Phase>,
    id: String,
) {
    let copy = async {
        let (client, app) = match tokio::try_join!(client, app) {
            Ok(both) => both,
            Err(e) => {
                tracing::debug!("cnaf: request {id}: upgrade not completed: {e}");
                return;
            }
        };
        let mut client = TokioIo::new(client);
        let mut app = TokioIo::new(app);
        match tokio::io::copy_bidirectional(&mut client, &mut app).await {
            Ok((up, down)) => tracing::debug!(
                "cnaf: request {id}: upgraded connection closed ({up} bytes to the app, {down} \
                 to the client)"
            ),
            Err(e) => tracing::debug!("cnaf: request {id}: upgraded connection ended: {e}"),
        }
    };
    tokio::select! {
        () = copy => {}
        // the sender gone means the proxy is gone: close as well
        _ = phase.wait_for(|p| *p == Phase::Closing) => {
            tracing::debug!("cnaf: request {id}: upgraded connection closed by shutdown");
        }
    }
}
