//! The proxy over real loopback sockets: a small echo app behind it, requests sent with a hyper
//! client connection (so keep-alive is observable) or raw bytes (for chunked framing).
#![allow(clippy::unwrap_used)] // test helpers: a failure here is a test failure

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use cnaf::proxy::{PolicyHandle, Proxy, ProxyConfig, ProxyPolicy};
use cnaf::CnafEffect;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use protect::audit::AuditRecord;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot};

/// The app: echoes the body back; reports what it saw in `x-echo-*` headers.
async fn echo(req: Request<Incoming>) -> Result<Response<Full<Bytes>>, hyper::Error> {
    let (parts, body) = req.into_parts();
    let chunked = parts.headers.contains_key("transfer-encoding");
    let data = body.collect().await?.to_bytes();
    let mut r = Response::new(Full::new(data));
    let h = r.headers_mut();
    for (name, echo) in [
        ("x-forwarded-for", "x-echo-xff"),
        ("x-forwarded-proto", "x-echo-proto"),
        ("x-request-id", "x-echo-request-id"),
        ("host", "x-echo-host"),
    ] {
        if let Some(v) = parts.headers.get(name) {
            h.insert(echo, v.clone());
        }
    }
    h.insert(
        "x-echo-chunked",
        if chunked { "yes" } else { "no" }.parse().unwrap(),
    );
    h.insert("x-echo-target", parts.uri.to_string().parse().unwrap());
    let names: Vec<&str> = parts.headers.keys().map(|n| n.as_str()).collect();
    h.insert("x-echo-names", names.join(",").parse().unwrap());
    Ok(r)
}

/// Serve the echo app on `listener` until the returned sender is dropped or fired.
fn spawn_app(listener: TcpListener) -> oneshot::Sender<()> {
    let (tx, mut rx) = oneshot::channel::<()>();
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = &mut rx => break,
                acc = listener.accept() => {
                    let Ok((s, _)) = acc else { continue };
                    tokio::spawn(async move {
                        // more header fields than the proxy accepts, so its limit is the one seen
                        let _ = hyper::server::conn::http1::Builder::new()
                            .max_headers(200)
                            .serve_connection(TokioIo::new(s), hyper::service::service_fn(echo))
                            .await;
                    });
                }
            }
        }
    });
    tx
}

struct Harness {
    proxy: SocketAddr,
    app: SocketAddr,
    policy: PolicyHandle,
    audits: mpsc::UnboundedReceiver<AuditRecord>,
    stop: Option<oneshot::Sender<()>>,
    done: tokio::task::JoinHandle<()>,
    _app_stop: Option<oneshot::Sender<()>>,
}

async fn start(policy: ProxyPolicy, with_app: bool) -> Harness {
    let app_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let app = app_listener.local_addr().unwrap();
    let app_stop = if with_app {
        Some(spawn_app(app_listener))
    } else {
        drop(app_listener);
        None
    };
    let handle = PolicyHandle::new(policy);
    let (tx, audits) = mpsc::unbounded_channel();
    let mut cfg = ProxyConfig::new("127.0.0.1:0".parse().unwrap(), app, handle.clone());
    cfg.audit = Arc::new(tx);
    cfg.context.task_family = "shop".into();
    let common::Running {
        addr,
        stop: stop_tx,
        done,
    } = common::run_proxy(cfg).await;
    Harness {
        proxy: addr,
        app,
        policy: handle,
        audits,
        stop: Some(stop_tx),
        done,
        _app_stop: app_stop,
    }
}

type Sender = hyper::client::conn::http1::SendRequest<Full<Bytes>>;

async fn connect(addr: SocketAddr) -> Sender {
    let s = TcpStream::connect(addr).await.unwrap();
    let (send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(s))
        .await
        .unwrap();
    tokio::spawn(conn);
    send
}

async fn send(
    c: &mut Sender,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    body: Vec<u8>,
) -> (StatusCode, http::HeaderMap, Bytes) {
    let mut b = Request::builder()
        .method(method)
        .uri(target)
        .header("host", "shop.example");
    for (n, v) in headers {
        b = b.header(*n, *v);
    }
    let resp = c
        .send_request(b.body(Full::new(Bytes::from(body))).unwrap())
        .await
        .unwrap();
    let (parts, body) = resp.into_parts();
    (
        parts.status,
        parts.headers,
        body.collect().await.unwrap().to_bytes(),
    )
}

async fn once(
    addr: SocketAddr,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (StatusCode, http::HeaderMap, Bytes) {
    let mut c = connect(addr).await;
    send(&mut c, method, target, headers, body.to_vec()).await
}

#[tokio::test]
async fn seed_sqli_is_blocked_with_a_request_id_the_audit_carries() {
    let mut h = start(ProxyPolicy::uniform("web", CnafEffect::Prevent), true).await;
    let body =
        br#"{"-1+union+all+select+1,group_concat(user,0x3a,file_priv),3,4+from+mysql.user--"}"#;
    let (status, headers, page) = once(
        h.proxy,
        "POST",
        "/",
        &[("content-type", "application/json")],
        body,
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let id = headers["x-request-id"].to_str().unwrap().to_string();
    assert_eq!(id.len(), 16);
    assert!(
        String::from_utf8_lossy(&page).contains(&id),
        "block page names the request id"
    );
    let a = h.audits.recv().await.unwrap();
    assert_eq!(a.request_id.as_deref(), Some(id.as_str()));
    assert_eq!(a.attack.as_deref(), Some("sqli"));
    assert_eq!(a.method.as_deref(), Some("POST"));
    assert_eq!(a.path.as_deref(), Some("/"));
    assert_eq!(a.source_ip.as_deref(), Some("127.0.0.1"));
    assert_eq!(a.rule, "web");
    assert_eq!(a.task_family, "shop");
    assert!(
        a.message
            .starts_with("SQL injection detected in JSON value"),
        "{}",
        a.message
    );
    assert!(
        a.message.ends_with("from 127.0.0.1; request blocked"),
        "{}",
        a.message
    );
    assert!(a.snippet.as_deref().unwrap().contains("union"));
    assert_eq!(serde_json::to_value(&a).unwrap()["kind"], "cnaf");
}

#[tokio::test]
async fn smoke_attacks_blocked_and_look_alikes_forwarded() {
    let h = start(ProxyPolicy::uniform("web", CnafEffect::Prevent), true).await;
    let mut c = connect(h.proxy).await;
    let attacks: &[(&str, &[(&str, &str)])] = &[
        ("/?id=%27%20OR%20%271", &[]),
        ("/?q=%3Cscript%3Ealert(1)%3C/script%3E", &[]),
        ("/?host=127.0.0.1;/sbin/shutdown", &[]),
        ("/?x=phpinfo()", &[]),
        ("/?file=../etc/passwd", &[]),
        (
            "/",
            &[("user-agent", "sqlmap/1.7.4#stable (https://sqlmap.org)")],
        ),
        (
            "/cgi-bin/status",
            &[("user-agent", "() { :; }; /bin/bash -c 'cat /etc/passwd'")],
        ),
    ];
    for (target, headers) in attacks {
        // one keep-alive connection for all of them: blocks do not close it
        let (status, _, _) = send(&mut c, "GET", target, headers, Vec::new()).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{target} {headers:?}");
    }
    for target in [
        "/?q=union+was+a+great+select",
        "/?q=D%27or+1st+parfume",
        "/?q=echo+in+the+mirror",
        "/?q=h2%3Ch1",
        "/?q=JavaScript%3A+Basics+of+JavaScript+Language",
        "/docs/v1.2..v1.3/changes",
    ] {
        let (status, _, _) = send(&mut c, "GET", target, &[], Vec::new()).await;
        assert_eq!(status, StatusCode::OK, "{target}");
    }
}

#[tokio::test]
async fn forwards_with_forwarding_headers_and_keeps_the_connection() {
    let h = start(ProxyPolicy::uniform("web", CnafEffect::Prevent), true).await;
    let mut c = connect(h.proxy).await;
    for i in 0..5 {
        let (status, headers, body) = send(
            &mut c,
            "POST",
            &format!("/orders/{i}?x=1"),
            &[
                ("x-forwarded-for", "203.0.113.9"),
                ("content-type", "text/plain"),
            ],
            format!("order {i}").into_bytes(),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body, format!("order {i}").as_bytes());
        assert_eq!(headers["x-echo-xff"], "203.0.113.9, 127.0.0.1");
        assert_eq!(headers["x-echo-proto"], "http");
        assert_eq!(headers["x-echo-host"], "shop.example");
        assert_eq!(
            headers["x-echo-target"],
            format!("/orders/{i}?x=1").as_str()
        );
        assert_eq!(headers["x-echo-request-id"].len(), 16);
    }
    assert!(
        c.is_ready(),
        "the client connection is still open after 5 requests"
    );
}

fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 % 251) as u8).collect()
}

#[tokio::test]
async fn large_body_beyond_the_limit_is_forwarded_byte_exact() {
    let mut policy = ProxyPolicy::uniform("web", CnafEffect::Prevent);
    policy.body_limit = 64 * 1024;
    let h = start(policy, true).await;
    let body = pattern(3 * 1024 * 1024 + 17);
    let (status, headers, echoed) = once(
        h.proxy,
        "PUT",
        "/blob",
        &[("content-type", "application/octet-stream")],
        &body,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        headers["x-echo-chunked"], "no",
        "a length-framed body stays length-framed"
    );
    assert_eq!(echoed.len(), body.len());
    assert!(echoed == body, "bytes differ");
}

#[tokio::test]
async fn chunked_body_is_forwarded_byte_exact_and_inspected() {
    let h = start(ProxyPolicy::uniform("web", CnafEffect::Prevent), true).await;
    let payload = pattern(200_000);
    let mut raw = b"POST /upload HTTP/1.1\r\nHost: shop\r\nTransfer-Encoding: chunked\r\nContent-Type: application/octet-stream\r\nConnection: close\r\n\r\n".to_vec();
    for chunk in payload.chunks(7000) {
        raw.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        raw.extend_from_slice(chunk);
        raw.extend_from_slice(b"\r\n");
    }
    raw.extend_from_slice(b"0\r\n\r\n");
    let mut s = TcpStream::connect(h.proxy).await.unwrap();
    s.write_all(&raw).await.unwrap();
    let mut resp = Vec::new();
    s.read_to_end(&mut resp).await.unwrap();
    let split = resp.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8_lossy(&resp[..split]).to_ascii_lowercase();
    assert!(head.starts_with("http/1.1 200"), "{head}");
    assert!(head.contains("x-echo-chunked: yes"), "{head}");
    let echoed = &resp[split + 4..];
    // the proxy re-frames the echoed length-delimited answer as it came: content-length
    assert_eq!(echoed.len(), payload.len());
    assert!(echoed == payload.as_slice());

    // an attack inside a chunked body is seen too
    let attack = b"POST /f HTTP/1.1\r\nHost: shop\r\nTransfer-Encoding: chunked\r\nContent-Type: application/x-www-form-urlencoded\r\nConnection: close\r\n\r\n5\r\nq=%3C\r\nf\r\nscript%3Ealert(\r\n2\r\n1)\r\n0\r\n\r\n";
    let mut s = TcpStream::connect(h.proxy).await.unwrap();
    s.write_all(attack).await.unwrap();
    let mut resp = Vec::new();
    s.read_to_end(&mut resp).await.unwrap();
    assert!(
        resp.starts_with(b"HTTP/1.1 403"),
        "{}",
        String::from_utf8_lossy(&resp)
    );
}

#[tokio::test]
async fn app_down_gives_502_then_recovers_when_it_returns() {
    let h = start(ProxyPolicy::uniform("web", CnafEffect::Prevent), false).await;
    let mut c = connect(h.proxy).await;
    let (status, headers, page) = send(&mut c, "GET", "/health", &[], Vec::new()).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY);
    assert!(String::from_utf8_lossy(&page).contains(headers["x-request-id"].to_str().unwrap()));
    // the app comes up on its port
    let listener = TcpListener::bind(h.app).await.unwrap();
    let _app = spawn_app(listener);
    let (status, _, _) = send(&mut c, "GET", "/health", &[], Vec::new()).await;
    assert_eq!(status, StatusCode::OK, "same client connection, app back");
}

#[tokio::test]
async fn alert_mode_forwards_and_audits_and_policy_swaps_live() {
    let mut h = start(ProxyPolicy::uniform("watch", CnafEffect::Alert), true).await;
    // from a private-network hop (a load balancer), the audit names the client it forwards for
    let (status, _, _) = once(
        h.proxy,
        "GET",
        "/?id=1%20or%201%3D1",
        &[("x-forwarded-for", "192.0.2.1, 198.51.100.4")],
        b"",
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let a = h.audits.recv().await.unwrap();
    assert_eq!(a.source_ip.as_deref(), Some("198.51.100.4"));
    assert!(a.message.contains("from 198.51.100.4;"), "{}", a.message);
    assert_eq!(serde_json::to_value(&a).unwrap()["effect"], "alert");
    assert_eq!(a.location.as_deref(), Some("query parameter id"));
    assert!(
        a.message.ends_with("request allowed (alert only)"),
        "{}",
        a.message
    );

    h.policy
        .set(ProxyPolicy::uniform("enforce", CnafEffect::Prevent));
    let (status, _, _) = once(h.proxy, "GET", "/?id=1%20or%201%3D1", &[], b"").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(h.audits.recv().await.unwrap().rule, "enforce");

    h.policy.set(ProxyPolicy::pass_through());
    let (status, _, _) = once(h.proxy, "GET", "/?id=1%20or%201%3D1", &[], b"").await;
    assert_eq!(status, StatusCode::OK);
    assert!(h.audits.try_recv().is_err(), "pass-through audits nothing");
}

#[tokio::test]
async fn the_policy_paranoia_level_reaches_the_proxy() {
    let policy = |level: u8| {
        let json = format!(
            r#"{{"rules":[{{"name":"p{level}","external_port":8080,"app_port":80,
                "protections":{{"paranoia":{level},"sqli":"prevent"}}}}]}}"#
        );
        let policy = cnaf::policy::CnafPolicy::from_json(&json).unwrap();
        ProxyPolicy::for_task(&policy, "shop")
    };
    // `IS NOT NULL` alone is a level-2 fragment, `XOR` between words a level-3 one
    let fragment = "/?n=1%20is%20not%20null";
    let operator = "/?q=a%20xor%20b";
    let mut h = start(policy(1), true).await;
    for target in [fragment, operator] {
        let (status, _, _) = once(h.proxy, "GET", target, &[], b"").await;
        assert_eq!(status, StatusCode::OK, "level 1: {target}");
    }
    h.policy.set(policy(2));
    let (status, _, _) = once(h.proxy, "GET", fragment, &[], b"").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let audit = h.audits.recv().await.unwrap();
    assert_eq!(
        (audit.rule.as_str(), audit.attack.as_deref()),
        ("p2", Some("sqli"))
    );
    let (status, _, _) = once(h.proxy, "GET", operator, &[], b"").await;
    assert_eq!(status, StatusCode::OK, "level 2: {operator}");
    h.policy.set(policy(3));
    let (status, _, _) = once(h.proxy, "GET", operator, &[], b"").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(h.audits.recv().await.unwrap().rule, "p3");
}

#[tokio::test]
async fn oversized_head_is_refused() {
    let h = start(ProxyPolicy::uniform("web", CnafEffect::Prevent), true).await;
    let big = "a".repeat(100 * 1024);
    let raw = format!("GET / HTTP/1.1\r\nHost: shop\r\nX-Big: {big}\r\n\r\n");
    let mut s = TcpStream::connect(h.proxy).await.unwrap();
    let _ = s.write_all(raw.as_bytes()).await;
    let mut resp = Vec::new();
    let _ = s.read_to_end(&mut resp).await;
    assert!(
        resp.starts_with(b"HTTP/1.1 431"),
        "{}",
        String::from_utf8_lossy(&resp)
    );
}

#[tokio::test]
async fn graceful_shutdown_finishes_in_flight_and_stops_listening() {
    let mut h = start(ProxyPolicy::uniform("web", CnafEffect::Prevent), true).await;
    // a request whose body is still being sent when shutdown starts
    let mut s = TcpStream::connect(h.proxy).await.unwrap();
    s.write_all(b"POST /slow HTTP/1.1\r\nHost: shop\r\nContent-Length: 10\r\nContent-Type: text/plain\r\n\r\nhello")
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let _ = h.stop.take().unwrap().send(());
    tokio::time::sleep(Duration::from_millis(100)).await;
    s.write_all(b"world").await.unwrap();
    let mut resp = Vec::new();
    s.read_to_end(&mut resp).await.unwrap();
    let text = String::from_utf8_lossy(&resp);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(text.ends_with("helloworld"), "{text}");
    tokio::time::timeout(Duration::from_secs(5), &mut h.done)
        .await
        .unwrap()
        .unwrap();
    assert!(
        TcpStream::connect(h.proxy).await.is_err(),
        "no longer listening"
    );
}

#[tokio::test]
async fn serve_runs_on_its_own_thread_and_stops_on_shutdown() {
    let app_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let app = app_listener.local_addr().unwrap();
    let _app = spawn_app(app_listener);
    // a free port for `serve` to bind itself
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let listen: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let (tx, audits) = mpsc::unbounded_channel::<AuditRecord>();
    let mut cfg = ProxyConfig::new(
        listen,
        app,
        PolicyHandle::new(ProxyPolicy::uniform("web", CnafEffect::Prevent)),
    );
    cfg.audit = Arc::new(tx);
    let (stop_tx, stop_rx) = oneshot::channel::<()>();
    let served = tokio::spawn(cnaf::proxy::serve(cfg, async {
        let _ = stop_rx.await;
    }));
    let mut ok = None;
    for _ in 0..50 {
        if TcpStream::connect(listen).await.is_ok() {
            ok = Some(());
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(ok.is_some(), "serve did not start listening");
    let (status, _, _) = once(
        listen,
        "GET",
        "/?q=%3Cscript%3Ealert(1)%3C/script%3E",
        &[],
        b"",
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _, body) = once(
        listen,
        "POST",
        "/echo",
        &[("content-type", "text/plain")],
        b"hello",
    )
    .await;
    assert_eq!((status, body.as_ref()), (StatusCode::OK, &b"hello"[..]));
    drop(audits);
    // a second proxy on the same port fails at once, naming the address
    let mut again = ProxyConfig::new(listen, app, PolicyHandle::new(ProxyPolicy::pass_through()));
    again.limits.shutdown_grace = Duration::from_millis(10);
    let err = cnaf::proxy::serve(again, std::future::pending())
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .starts_with(&format!("cannot listen on {listen}")),
        "{err}"
    );
    let _ = stop_tx.send(());
    tokio::time::timeout(Duration::from_secs(5), served)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(
        TcpStream::connect(listen).await.is_err(),
        "stopped listening"
    );
}

#[tokio::test]
async fn app_that_closes_each_connection_is_reconnected_transparently() {
    // an app without keep-alive: every answer ends its connection
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let app = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((s, _)) = listener.accept().await else {
                continue;
            };
            tokio::spawn(async move {
                let _ = hyper::server::conn::http1::Builder::new()
                    .keep_alive(false)
                    .serve_connection(TokioIo::new(s), hyper::service::service_fn(echo))
                    .await;
            });
        }
    });
    let mut cfg = ProxyConfig::new(
        "127.0.0.1:0".parse().unwrap(),
        app,
        PolicyHandle::new(ProxyPolicy::uniform("web", CnafEffect::Prevent)),
    );
    cfg.limits.connect_timeout = Duration::from_secs(2);
    let proxy = Proxy::bind(cfg).await.unwrap();
    let addr = proxy.local_addr().unwrap();
    tokio::spawn(proxy.run(std::future::pending()));
    let mut c = connect(addr).await;
    for i in 0..5 {
        let (status, _, body) = send(
            &mut c,
            "POST",
            "/n",
            &[("content-type", "text/plain")],
            format!("req {i}").into_bytes(),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "request {i}");
        assert_eq!(body, format!("req {i}").as_bytes());
        // give the app's close time to land before the next request reuses the connection
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // and back to back, racing the app's close
    for i in 0..20 {
        let (status, _, _) = send(&mut c, "GET", "/fast", &[], Vec::new()).await;
        assert_eq!(status, StatusCode::OK, "back-to-back request {i}");
    }
}

#[tokio::test]
async fn attacks_past_the_body_limit_are_stopped_while_streaming() {
    let mut policy = ProxyPolicy::uniform("web", CnafEffect::Prevent);
    policy.body_limit = 1024;
    let mut h = start(policy, true).await;
    let form = [("content-type", "application/x-www-form-urlencoded")];
    // padding past the limit, then the attack
    let mut body = format!("pad={}", "A".repeat(200_000)).into_bytes();
    body.extend_from_slice(b"&q=%3Cscript%3Ealert(1)%3C%2Fscript%3E");
    let (status, headers, _) = once(h.proxy, "POST", "/comment", &form, &body).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let a = h.audits.recv().await.unwrap();
    assert_eq!(a.attack.as_deref(), Some("xss"));
    assert_eq!(
        a.request_id.as_deref(),
        headers["x-request-id"].to_str().ok()
    );
    // the same size of harmless text goes through untouched
    let mut text = String::from("comment=");
    while text.len() < 200_000 {
        text.push_str("It%27s+a+lovely+day+in+the+park%3B+we+walked+for+hours+%26+talked.+");
    }
    let (status, _, echoed) = once(h.proxy, "POST", "/comment", &form, text.as_bytes()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(echoed, text.as_bytes());
    assert!(h.audits.try_recv().is_err());
}

/// One raw HTTP/1.1 exchange on a fresh connection (`Connection: close` is the caller's).
async fn raw_exchange(addr: SocketAddr, request: &str) -> String {
    let mut s = TcpStream::connect(addr).await.unwrap();
    let _ = s.write_all(request.as_bytes()).await;
    let mut resp = Vec::new();
    let _ = s.read_to_end(&mut resp).await;
    String::from_utf8_lossy(&resp).into_owned()
}

#[tokio::test]
async fn header_count_limit_is_one_hundred_fields() {
    let h = start(ProxyPolicy::uniform("web", CnafEffect::Prevent), true).await;
    let request = |fields: usize| {
        // Host and Connection plus numbered fields
        let extra: String = (0..fields - 2)
            .map(|i| format!("X-Field-{i}: v{i}\r\n"))
            .collect();
        format!("GET /limits HTTP/1.1\r\nHost: shop\r\nConnection: close\r\n{extra}\r\n")
    };
    let at_limit = raw_exchange(h.proxy, &request(100)).await;
    assert!(at_limit.starts_with("HTTP/1.1 200"), "{at_limit}");
    let over = raw_exchange(h.proxy, &request(101)).await;
    assert!(over.starts_with("HTTP/1.1 431"), "{over}");
}

#[tokio::test]
async fn absolute_form_is_forwarded_in_origin_form_without_hop_by_hop_headers() {
    let h = start(ProxyPolicy::uniform("web", CnafEffect::Prevent), true).await;
    let resp = raw_exchange(
        h.proxy,
        "GET http://shop.example/items/7?sort=asc HTTP/1.1\r\nHost: shop.example\r\n\
         Connection: close, x-hop\r\nX-Hop: secret\r\nKeep-Alive: timeout=5\r\n\r\n",
    )
    .await;
    assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
    let lower = resp.to_ascii_lowercase();
    assert!(
        lower.contains("x-echo-target: /items/7?sort=asc\r\n"),
        "{resp}"
    );
    assert!(lower.contains("x-echo-xff: 127.0.0.1\r\n"), "{resp}");
    let names = lower
        .lines()
        .find_map(|l| l.strip_prefix("x-echo-names: "))
        .unwrap();
    let names: Vec<&str> = names.split(',').collect();
    assert!(names.contains(&"x-request-id"), "{names:?}");
    for hop in ["connection", "x-hop", "keep-alive"] {
        assert!(!names.contains(&hop), "{hop} reached the app: {names:?}");
    }
}

fn gzip(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

#[tokio::test]
async fn gzip_bodies_are_inspected_decompressed_and_forwarded_as_sent() {
    let mut h = start(ProxyPolicy::uniform("web", CnafEffect::Prevent), true).await;
    let mut c = connect(h.proxy).await;
    let headers = [
        ("content-type", "application/json"),
        ("content-encoding", "gzip"),
    ];
    let clean = gzip(br#"{"order":{"note":"leave it at the door, it's fine"}}"#);
    let (status, _, body) = send(&mut c, "POST", "/api/orders", &headers, clean.clone()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, clean, "the app gets the compressed bytes as sent");
    let attack = gzip(br#"{"order":{"note":"x' OR '1'='1"}}"#);
    let (status, _, _) = send(&mut c, "POST", "/api/orders", &headers, attack).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let a = h.audits.recv().await.unwrap();
    assert_eq!(a.location.as_deref(), Some("JSON value $.order.note"));
}
