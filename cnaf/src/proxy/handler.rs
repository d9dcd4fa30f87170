//! One request: inspect, then block, or forward and stream the answer back.

use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Request, Response, StatusCode, Uri};
use http_body_util::{Either, Full};
use hyper::body::Incoming;

use super::audit::{record_for, AuditContext, AuditSink, RequestInfo};
use super::body::{read_prefix, Forwarded};
use super::tail::Tail;
use super::upstream::Upstream;
use super::{PolicyHandle, ProxyConfig};
use crate::model::{Action, RequestParts};

/// What the proxy answers with: its own page, or the app's streamed body.
pub(crate) type ProxyBody = Either<Full<Bytes>, Incoming>;

pub(crate) struct State {
    pub(crate) upstream: SocketAddr,
    pub(crate) connect_timeout: std::time::Duration,
    policy: PolicyHandle,
    audit: Arc<dyn AuditSink>,
    context: AuditContext,
    max_header_bytes: usize,
}

impl State {
    pub(crate) fn new(c: &ProxyConfig) -> State {
        State {
            upstream: c.upstream,
            connect_timeout: c.limits.connect_timeout,
            policy: c.policy.clone(),
            audit: c.audit.clone(),
            context: c.context.clone(),
            max_header_bytes: c.limits.max_header_bytes,
        }
    }
}

/// A request id: 16 hex digits, unique per process and unlikely to repeat across restarts.
fn request_id() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let t = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let mut z = t ^ (u64::from(std::process::id()) << 32) ^ n.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    // splitmix64 finaliser
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    format!("{:016x}", z ^ (z >> 31))
}

fn page(status: StatusCode, title: &str, text: &str, id: &str, close: bool) -> Response<ProxyBody> {
    let html = format!(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{title}</title></head>\
         <body><h1>{title}</h1><p>{text}</p><p>Request ID: <code>{id}</code></p></body></html>\n"
    );
    let mut r = Response::new(Either::Left(Full::new(Bytes::from(html))));
    *r.status_mut() = status;
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Ok(v) = HeaderValue::from_str(id) {
        h.insert(HeaderName::from_static("x-request-id"), v);
    }
    if close {
        h.insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    r
}

/// The client an audit names: the peer, unless the peer is a private-network hop (the task's
/// load balancer) that said in `X-Forwarded-For` whom it forwards for — then the address that
/// hop appended (the last entry; earlier ones are the client's own claims).
fn client_ip(peer: IpAddr, headers: &HeaderMap) -> IpAddr {
    let peer = peer.to_canonical();
    let private = match peer {
        IpAddr::V4(v4) => v4.is_private() || v4.is_loopback() || v4.is_link_local(),
        IpAddr::V6(v6) => v6.is_loopback() || (v6.segments()[0] & 0xfe00) == 0xfc00,
    };
    if !private {
        return peer;
    }
    headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .last()
        .and_then(|last| last.trim().parse::<IpAddr>().ok())
        .map_or(peer, |ip| ip.to_canonical())
}

/// Hop-by-hop headers (RFC 9110 §7.6.1) plus those named in `Connection`.
fn strip_hop_by_hop(h: &mut HeaderMap) {
    let named: Vec<HeaderName> = h
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|n| HeaderName::from_bytes(n.trim().as_bytes()).ok())
        .collect();
    for n in named {
        h.remove(n);
    }
    for n in [
        header::CONNECTION,
        header::TE,
        header::TRAILER,
        header::TRANSFER_ENCODING,
        header::UPGRADE,
        header::PROXY_AUTHORIZATION,
        header::PROXY_AUTHENTICATE,
    ] {
        h.remove(n);
    }
    h.remove("keep-alive");
    h.remove("proxy-connection");
}

pub(crate) async fn handle(
    req: Request<Incoming>,
    state: Arc<State>,
    upstream: Arc<Upstream>,
    peer: SocketAddr,
) -> Result<Response<ProxyBody>, Infallible> {
    let policy = state.policy.get();
    let id = request_id();
    let head_len = req.uri().to_string().len()
        + req
            .headers()
            .iter()
            .map(|(n, v)| n.as_str().len() + v.len() + 4)
            .sum::<usize>();
    if head_len > state.max_header_bytes {
        return Ok(page(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "Request header fields too large",
            "The request head exceeds the size this server accepts.",
            &id,
            true,
        ));
    }
    let (mut parts, body) = req.into_parts();
    let prefix = match read_prefix(body, policy.body_limit).await {
        Ok(p) => p,
        Err(e) => {
            tracing::debug!("cnaf: request {id} from {peer}: body read failed: {e}");
            return Ok(page(
                StatusCode::BAD_REQUEST,
                "Bad request",
                "The request body could not be read.",
                &id,
                true,
            ));
        }
    };
    let inspected = &prefix.bytes[..prefix.bytes.len().min(policy.body_limit)];
    let verdict = if policy.protections == crate::policy::all(crate::CnafEffect::Disable) {
        crate::Verdict::default()
    } else {
        crate::inspect(&RequestParts::from(&parts), inspected, &policy.protections)
    };
    let action = verdict.action();
    let method = parts.method.as_str().to_string();
    let path = parts.uri.path().to_string();
    let info = RequestInfo {
        method: &method,
        path: &path,
        source_ip: client_ip(peer.ip(), &parts.headers).to_string(),
        request_id: &id,
        rule: &policy.rule,
    };
    audit(&state, &info, &verdict.findings);
    if action == Action::Block {
        // An unread body would have to be drained to keep the connection: close it instead.
        return Ok(blocked(&id, prefix.rest.is_some()));
    }
    // the part of the body past `body_limit` is inspected while it streams to the app
    let tail = prefix
        .rest
        .as_ref()
        .and_then(|_| {
            let ct = parts
                .headers
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            Tail::new(policy.protections, ct, &prefix.bytes)
        })
        .map(Arc::new);
    let response = forward(
        &state,
        &upstream,
        &mut parts,
        prefix,
        tail.clone(),
        peer,
        &id,
    )
    .await;
    if let Some(tail) = tail {
        let (findings, stopped) = tail.outcome();
        audit(&state, &info, &findings);
        if stopped {
            return Ok(blocked(&id, true));
        }
    }
    response
}

fn audit(state: &State, info: &RequestInfo<'_>, findings: &[crate::Finding]) {
    for f in findings {
        let record = record_for(&state.context, info, f);
        tracing::warn!(request_id = %info.request_id, attack = f.attack.key(), "cnaf: {}", record.message);
        state.audit.record(record);
    }
}

fn blocked(id: &str, close: bool) -> Response<ProxyBody> {
    page(
        StatusCode::FORBIDDEN,
        "Request blocked",
        "This request was blocked by the web application firewall. If you believe this is a \
         mistake, contact the site's administrators and quote the request ID.",
        id,
        close,
    )
}

async fn forward(
    state: &State,
    upstream: &Upstream,
    parts: &mut http::request::Parts,
    prefix: super::body::Prefix,
    tail: Option<Arc<Tail>>,
    peer: SocketAddr,
    id: &str,
) -> Result<Response<ProxyBody>, Infallible> {
    let pq = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    // origin form (`/path?query`), as a client talking to the app directly would send
    let Ok(uri) = Uri::try_from(pq) else {
        return Ok(page(
            StatusCode::BAD_REQUEST,
            "Bad request",
            "Invalid request target.",
            id,
            true,
        ));
    };
    let mut headers = std::mem::take(&mut parts.headers);
    let chunked = headers.contains_key(header::TRANSFER_ENCODING);
    strip_hop_by_hop(&mut headers);
    if chunked {
        // framing comes from the body we send, never from a length the client claimed
        headers.remove(header::CONTENT_LENGTH);
    }
    headers.remove(header::EXPECT);
    let client_ip = peer.ip().to_canonical().to_string();
    let xff = match headers.get("x-forwarded-for").and_then(|v| v.to_str().ok()) {
        Some(prev) if !prev.trim().is_empty() => format!("{prev}, {client_ip}"),
        _ => client_ip,
    };
    if let Ok(v) = HeaderValue::from_str(&xff) {
        headers.insert(HeaderName::from_static("x-forwarded-for"), v);
    }
    if !headers.contains_key("x-forwarded-proto") {
        headers.insert(
            HeaderName::from_static("x-forwarded-proto"),
            HeaderValue::from_static("http"),
        );
    }
    if let Ok(v) = HeaderValue::from_str(id) {
        headers.insert(HeaderName::from_static("x-request-id"), v);
    }
    if !headers.contains_key(header::HOST) {
        if let Ok(v) = HeaderValue::from_str(&state.upstream.to_string()) {
            headers.insert(header::HOST, v);
        }
    }
    let mut up = Request::new(Forwarded::new(prefix, tail));
    *up.method_mut() = parts.method.clone();
    *up.uri_mut() = uri;
    *up.headers_mut() = headers;
    match upstream.send(up).await {
        Ok(resp) => {
            let (mut rparts, rbody) = resp.into_parts();
            strip_hop_by_hop(&mut rparts.headers);
            Ok(Response::from_parts(rparts, Either::Right(rbody)))
        }
        Err(e) => {
            tracing::warn!(
                "cnaf: request {id}: upstream {} failed: {e}",
                state.upstream
            );
            Ok(page(
                StatusCode::BAD_GATEWAY,
                "Bad gateway",
                "The application behind the web application firewall is not reachable.",
                id,
                false,
            ))
        }
    }
}
