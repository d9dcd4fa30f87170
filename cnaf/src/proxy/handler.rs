//! One request: inspect, then block, or forward and stream the answer back.

use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock};
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Request, Response, StatusCode, Uri};
use http_body_util::{Either, Full};
use hyper::body::Incoming;

use super::audit::{record_for, AuditContext, AuditSink, RequestInfo};
use super::body::{read_prefix, Forwarded};
use super::tail::Tail;
use super::upgrade::{self, Phase};
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
    /// The proxy's phase, watched by upgraded connections (and counted by shutdown).
    phase: tokio::sync::watch::Receiver<Phase>,
}

impl State {
    pub(crate) fn new(c: &ProxyConfig, phase: tokio::sync::watch::Receiver<Phase>) -> State {
        State {
            upstream: c.upstream,
            connect_timeout: c.limits.connect_timeout,
            policy: c.policy.clone(),
            audit: c.audit.clone(),
            context: c.context.clone(),
            max_header_bytes: c.limits.max_header_bytes,
            phase,
        }
    }
}

/// A request id: 16 hex digits, unique per process and unlikely to repeat across restarts.
pub(crate) struct RequestId([u8; 16]);

impl RequestId {
    pub(crate) fn new() -> RequestId {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        // the process id is read once (getpid is a system call per request otherwise)
        static PID_BITS: LazyLock<u64> = LazyLock::new(|| u64::from(std::process::id()) << 32);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let t = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        let mut z = t ^ *PID_BITS ^ n.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        // splitmix64 finaliser
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut out = [0u8; 16];
        for (i, d) in out.iter_mut().enumerate() {
            *d = HEX[((z >> (60 - 4 * i)) & 0xf) as usize];
        }
        RequestId(out)
    }

    pub(crate) fn as_str(&self) -> &str {
        // lower-case hex digits only
        std::str::from_utf8(&self.0).unwrap_or_default()
    }

    fn header(&self) -> Option<HeaderValue> {
        HeaderValue::from_bytes(&self.0).ok()
    }
}

fn page(
    status: StatusCode,
    title: &str,
    text: &str,
    id: &RequestId,
    close: bool,
) -> Response<ProxyBody> {
    let html = format!(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{title}</title></head>\
         <body><h1>{title}</h1><p>{text}</p><p>Request ID: <code>{}</code></p></body></html>\n",
        id.as_str()
    );
    let mut r = Response::new(Either::Left(Full::new(Bytes::from(html))));
    *r.status_mut() = status;
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Some(v) = id.header() {
        h.insert(X_REQUEST_ID.clone(), v);
    }
    if close {
        h.insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    r
}

static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
static X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
static KEEP_ALIVE: HeaderName = HeaderName::from_static("keep-alive");
static PROXY_CONNECTION: HeaderName = HeaderName::from_static("proxy-connection");

/// One client connection: the peer and its own connection to the app.
pub(crate) struct Client {
    pub(crate) state: Arc<State>,
    pub(crate) upstream: Upstream,
    pub(crate) peer: SocketAddr,
    /// The peer's address as the `X-Forwarded-For` entry CNAF appends (built once).
    peer_entry: String,
}

impl Client {
    pub(crate) fn new(state: Arc<State>, peer: SocketAddr) -> Client {
        Client {
            upstream: Upstream::new(state.upstream, state.connect_timeout),
            state,
            peer,
            peer_entry: peer.ip().to_canonical().to_string(),
        }
    }
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
        .get_all(&X_FORWARDED_FOR)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .last()
        .and_then(|last| last.trim().parse::<IpAddr>().ok())
        .map_or(peer, |ip| ip.to_canonical())
}

/// The hop-by-hop headers (RFC 9110 §7.6.1) a proxy drops.
fn hop_by_hop(n: &HeaderName) -> bool {
    [
        &header::CONNECTION,
        &header::TE,
        &header::TRAILER,
        &header::TRANSFER_ENCODING,
        &header::UPGRADE,
        &header::PROXY_AUTHORIZATION,
        &header::PROXY_AUTHENTICATE,
        &KEEP_ALIVE,
        &PROXY_CONNECTION,
    ]
    .contains(&n)
}

/// Hop-by-hop headers (RFC 9110 §7.6.1) plus those named in `Connection`.
fn strip_hop_by_hop(h: &mut HeaderMap) {
    // one pass over the names (most messages have none) instead of a lookup per header
    if !h.keys().any(hop_by_hop) {
        return;
    }
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
    h.remove(&KEEP_ALIVE);
    h.remove(&PROXY_CONNECTION);
}

/// The request fields an audit carries, gathered only when there is something to audit.
struct Audited {
    method: String,
    path: String,
    source_ip: String,
}

impl Audited {
    fn of(parts: &http::request::Parts, peer: IpAddr) -> Audited {
        Audited {
            method: parts.method.as_str().to_string(),
            path: parts.uri.path().to_string(),
            source_ip: client_ip(peer, &parts.headers).to_string(),
        }
    }

    fn info<'a>(&'a self, id: &'a RequestId, rule: &'a str) -> RequestInfo<'a> {
        RequestInfo {
            method: &self.method,
            path: &self.path,
            source_ip: self.source_ip.clone(),
            request_id: id.as_str(),
            rule,
        }
    }
}

/// Length of the request head as the size limit counts it: the target as sent plus every
/// header line.
fn head_len(req: &Request<Incoming>) -> usize {
    let uri = req.uri();
    let target = match uri.path_and_query() {
        Some(pq) if uri.scheme().is_none() && uri.authority().is_none() => pq.as_str().len(),
        _ => uri.to_string().len(),
    };
    target
        + req
            .headers()
            .iter()
            .map(|(n, v)| n.as_str().len() + v.len() + 4)
            .sum::<usize>()
}

pub(crate) async fn handle(
    mut req: Request<Incoming>,
    client: Arc<Client>,
) -> Result<Response<ProxyBody>, Infallible> {
    let state = &client.state;
    let peer = client.peer;
    let policy = state.policy.get();
    let id = RequestId::new();
    if head_len(&req) > state.max_header_bytes {
        return Ok(page(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "Request header fields too large",
            "The request head exceeds the size this server accepts.",
            &id,
            true,
        ));
    }
    // a WebSocket handshake: the client side of the switch, taken before the request is split
    let websocket = upgrade::websocket(&req).map(|v| (v, hyper::upgrade::on(&mut req)));
    let (mut parts, body) = req.into_parts();
    let prefix = match read_prefix(body, policy.body_limit).await {
        Ok(p) => p,
        Err(e) => {
            tracing::debug!(
                "cnaf: request {} from {peer}: body read failed: {e}",
                id.as_str()
            );
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
        crate::inspect_with_limit(
            &RequestParts::from(&parts),
            inspected,
            &policy.protections,
            policy.body_limit,
        )
    };
    let mut audited = None;
    if !verdict.findings.is_empty() {
        let a = audited.insert(Audited::of(&parts, peer.ip()));
        audit(state, &a.info(&id, &policy.rule), &verdict.findings);
    }
    if verdict.action() == Action::Block {
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
            let ce = parts
                .headers
                .get(header::CONTENT_ENCODING)
                .map(|v| v.to_str().unwrap_or("unreadable"));
            Tail::new(policy.protections, ct, ce, &prefix.bytes)
        })
        .map(Arc::new);
    if tail.is_some() && audited.is_none() {
        audited = Some(Audited::of(&parts, peer.ip()));
    }
    let response = forward(&client, &mut parts, prefix, tail.clone(), websocket, &id).await;
    if let (Some(tail), Some(audited)) = (tail, audited) {
        let (findings, stopped) = tail.outcome();
        audit(state, &audited.info(&id, &policy.rule), &findings);
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

fn blocked(id: &RequestId, close: bool) -> Response<ProxyBody> {
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
    client: &Client,
    parts: &mut http::request::Parts,
    prefix: super::body::Prefix,
    tail: Option<Arc<Tail>>,
    websocket: Option<(HeaderValue, hyper::upgrade::OnUpgrade)>,
    id: &RequestId,
) -> Result<Response<ProxyBody>, Infallible> {
    let state = &client.state;
    // origin form (`/path?query`), as a client talking to the app directly would send
    let uri = if parts.uri.scheme().is_none()
        && parts.uri.authority().is_none()
        && parts.uri.path_and_query().is_some()
    {
        std::mem::take(&mut parts.uri)
    } else {
        let pq = parts.uri.path_and_query().map_or("/", |p| p.as_str());
        let Ok(uri) = Uri::try_from(pq) else {
            return Ok(page(
                StatusCode::BAD_REQUEST,
                "Bad request",
                "Invalid request target.",
                id,
                true,
            ));
        };
        uri
    };
    let mut headers = std::mem::take(&mut parts.headers);
    let chunked = headers.contains_key(header::TRANSFER_ENCODING);
    strip_hop_by_hop(&mut headers);
    let on_client = websocket.map(|(value, on_client)| {
        upgrade::restore_headers(&mut headers, value);
        on_client
    });
    if chunked {
        // framing comes from the body we send, never from a length the client claimed
        headers.remove(header::CONTENT_LENGTH);
    }
    headers.remove(header::EXPECT);
    let xff = match headers.get(&X_FORWARDED_FOR).and_then(|v| v.to_str().ok()) {
        Some(prev) if !prev.trim().is_empty() => {
            HeaderValue::from_str(&format!("{prev}, {}", client.peer_entry)).ok()
        }
        _ => HeaderValue::from_str(&client.peer_entry).ok(),
    };
    if let Some(v) = xff {
        headers.insert(X_FORWARDED_FOR.clone(), v);
    }
    if !headers.contains_key(&X_FORWARDED_PROTO) {
        headers.insert(X_FORWARDED_PROTO.clone(), HeaderValue::from_static("http"));
    }
    if let Some(v) = id.header() {
        headers.insert(X_REQUEST_ID.clone(), v);
    }
    if !headers.contains_key(header::HOST) {
        if let Ok(v) = HeaderValue::from_str(&state.upstream.to_string()) {
            headers.insert(header::HOST, v);
        }
    }
    let mut up = Request::new(Forwarded::new(prefix, tail));
    *up.method_mut() = std::mem::take(&mut parts.method);
    *up.uri_mut() = uri;
    *up.headers_mut() = headers;
    match client.upstream.send(up).await {
        Ok(mut resp) if resp.status() == StatusCode::SWITCHING_PROTOCOLS => {
            let Some(on_client) = on_client else {
                tracing::warn!(
                    "cnaf: request {}: the app switched protocols without being asked",
                    id.as_str()
                );
                return Ok(page(
                    StatusCode::BAD_GATEWAY,
                    "Bad gateway",
                    "The application gave an answer the web application firewall cannot \
                     forward.",
                    id,
                    true,
                ));
            };
            let on_app = hyper::upgrade::on(&mut resp);
            let (mut rparts, rbody) = resp.into_parts();
            let confirmed = rparts.headers.get(header::UPGRADE).cloned();
            strip_hop_by_hop(&mut rparts.headers);
            if let Some(value) = confirmed {
                upgrade::restore_headers(&mut rparts.headers, value);
            }
            // hyper completes both sides once the 101 is written to the client
            tokio::spawn(upgrade::tunnel(
                on_client,
                on_app,
                state.phase.clone(),
                id.as_str().to_string(),
            ));
            Ok(Response::from_parts(rparts, Either::Right(rbody)))
        }
        Ok(resp) => {
            let (mut rparts, rbody) = resp.into_parts();
            strip_hop_by_hop(&mut rparts.headers);
            Ok(Response::from_parts(rparts, Either::Right(rbody)))
        }
        Err(e) => {
            tracing::warn!(
                "cnaf: request {}: upstream {} failed: {e}",
                id.as_str(),
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
