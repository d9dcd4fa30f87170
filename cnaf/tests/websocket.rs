//! WebSocket (HTTP/1.1 Upgrade) through the proxy over real loopback sockets. The app is a raw
//! TCP server: it answers a `websocket` handshake with 101, greets, then echoes bytes; anything
//! else gets a plain answer and a close. After the 101 CNAF copies bytes without looking at
//! them, so raw bytes stand for WebSocket frames here.
#![allow(clippy::unwrap_used)] // test helpers: a failure here is a test failure

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use cnaf::proxy::{PolicyHandle, ProxyConfig, ProxyPolicy};
use cnaf::CnafEffect;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot};

const GREETING: &[u8] = b"app-hello";

/// What the app saw.
#[derive(Debug)]
enum Seen {
    /// A request head (lower-cased).
    Head(String),
    /// An echo session ended after this many bytes.
    Closed(usize),
}

/// Read up to the end of a message head; returns the head and any bytes read past it.
async fn read_head(s: &mut (impl AsyncRead + Unpin)) -> Option<(String, Vec<u8>)> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let rest = buf.split_off(end + 4);
            return Some((String::from_utf8_lossy(&buf).into_owned(), rest));
        }
        let n = s.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

async fn app_connection(mut s: TcpStream, seen: mpsc::UnboundedSender<Seen>) {
    let Some((head, rest)) = read_head(&mut s).await else {
        return;
    };
    let head = head.to_ascii_lowercase();
    let _ = seen.send(Seen::Head(head.clone()));
    let websocket = head.contains("\r\nupgrade: websocket\r\n");
    if head.starts_with("get /switch-unasked") {
        let _ = s
            .write_all(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\nraw")
            .await;
        return;
    }
    if head.starts_with("get /refuse") || !websocket {
        let body = if websocket { "refused" } else { "plain" };
        let status = if websocket {
            "400 Bad Request"
        } else {
            "200 OK"
        };
        let _ = s
            .write_all(
                format!(
                    "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                )
                .as_bytes(),
            )
            .await;
        return;
    }
    let _ = s
        .write_all(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
              Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\nKeep-Alive: timeout=5\r\n\r\n",
        )
        .await;
    let _ = s.write_all(GREETING).await;
    let mut total = 0;
    if !rest.is_empty() {
        total += rest.len();
        let _ = s.write_all(&rest).await;
    }
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        match s.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                total += n;
                if s.write_all(&chunk[..n]).await.is_err() {
                    break;
                }
            }
        }
    }
    let _ = seen.send(Seen::Closed(total));
}

struct Harness {
    proxy: SocketAddr,
    seen: mpsc::UnboundedReceiver<Seen>,
    stop: Option<oneshot::Sender<()>>,
    done: tokio::task::JoinHandle<()>,
}

async fn start(grace: Duration) -> Harness {
    let app_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let app = app_listener.local_addr().unwrap();
    let (seen_tx, seen) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((s, _)) = app_listener.accept().await {
            tokio::spawn(app_connection(s, seen_tx.clone()));
        }
    });
    let policy = PolicyHandle::new(ProxyPolicy::uniform("web", CnafEffect::Prevent));
    let mut cfg = ProxyConfig::new("127.0.0.1:0".parse().unwrap(), app, policy);
    cfg.limits.shutdown_grace = grace;
    let common::Running {
        addr,
        stop: stop_tx,
        done,
    } = common::run_proxy(cfg).await;
    Harness {
        proxy: addr,
        seen,
        stop: Some(stop_tx),
        done,
    }
}

fn handshake(target: &str) -> String {
    format!(
        "GET {target} HTTP/1.1\r\nHost: shop.example\r\nConnection: keep-alive, Upgrade\r\n\
         Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nKeep-Alive: timeout=5\r\n\r\n"
    )
}

/// Connect to the proxy, send the handshake for `target`, return the response head.
async fn open(proxy: SocketAddr, target: &str) -> (TcpStream, String, Vec<u8>) {
    let mut s = TcpStream::connect(proxy).await.unwrap();
    s.write_all(handshake(target).as_bytes()).await.unwrap();
    let (head, rest) = tokio::time::timeout(Duration::from_secs(5), read_head(&mut s))
        .await
        .unwrap()
        .unwrap();
    (s, head.to_ascii_lowercase(), rest)
}

/// An upgraded connection: the 101 checked and the app's greeting read.
async fn upgraded(proxy: SocketAddr, target: &str) -> TcpStream {
    let (mut s, head, mut rest) = open(proxy, target).await;
    assert!(head.starts_with("http/1.1 101"), "{head}");
    while rest.len() < GREETING.len() {
        let mut b = [0u8; 64];
        let n = s.read(&mut b).await.unwrap();
        assert!(n > 0, "closed before the greeting");
        rest.extend_from_slice(&b[..n]);
    }
    assert_eq!(rest, GREETING);
    s
}

async fn next_head(seen: &mut mpsc::UnboundedReceiver<Seen>) -> String {
    match tokio::time::timeout(Duration::from_secs(5), seen.recv()).await {
        Ok(Some(Seen::Head(h))) => h,
        other => panic!("expected a request head at the app, got {other:?}"),
    }
}

async fn next_close(seen: &mut mpsc::UnboundedReceiver<Seen>) -> usize {
    match tokio::time::timeout(Duration::from_secs(5), seen.recv()).await {
        Ok(Some(Seen::Closed(n))) => n,
        other => panic!("expected the app's echo session to end, got {other:?}"),
    }
}

/// Sends a plain `GET path` with `Connection: close` on `s` and returns the whole answer,
/// lower-cased.
async fn last_plain_request(s: &mut TcpStream, path: &str) -> String {
    let request = format!("GET {path} HTTP/1.1\r\nHost: shop\r\nConnection: close\r\n\r\n");
    s.write_all(request.as_bytes()).await.unwrap();
    let mut resp = Vec::new();
    let _ = s.read_to_end(&mut resp).await;
    String::from_utf8_lossy(&resp).to_ascii_lowercase()
}

fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 + i / 251) as u8).collect()
}

#[tokio::test]
async fn handshake_is_forwarded_with_upgrade_and_bytes_flow_both_ways() {
    let mut h = start(Duration::from_secs(10)).await;
    let (mut s, head, rest) = open(h.proxy, "/chat?room=7").await;
    assert!(head.starts_with("http/1.1 101"), "{head}");
    assert!(head.contains("\r\nupgrade: websocket"), "{head}");
    assert!(head.contains("\r\nconnection: upgrade"), "{head}");
    assert!(
        head.contains("\r\nsec-websocket-accept: s3pplmbitxaq9kygzzhzrbk+xoo="),
        "{head}"
    );
    assert!(!head.contains("keep-alive"), "hop-by-hop kept: {head}");
    let app_head = next_head(&mut h.seen).await;
    assert!(
        app_head.starts_with("get /chat?room=7 http/1.1\r\n"),
        "{app_head}"
    );
    for kept in [
        "\r\nupgrade: websocket\r\n",
        "\r\nconnection: upgrade\r\n",
        "\r\nsec-websocket-key: dghlihnhbxbszsbub25jzq==\r\n",
        "\r\nsec-websocket-version: 13\r\n",
        "\r\nx-forwarded-for: 127.0.0.1\r\n",
        "\r\nx-request-id: ",
    ] {
        assert!(app_head.contains(kept), "{kept:?} missing: {app_head}");
    }
    assert!(!app_head.contains("keep-alive"), "{app_head}");

    // server to client first (the greeting), then a large payload both ways at once
    let mut got = rest;
    while got.len() < GREETING.len() {
        let mut b = [0u8; 64];
        let n = s.read(&mut b).await.unwrap();
        assert!(n > 0);
        got.extend_from_slice(&b[..n]);
    }
    assert_eq!(got, GREETING);
    let payload = pattern(8 << 20);
    let (mut rd, mut wr) = s.into_split();
    let sent = payload.clone();
    let writer = tokio::spawn(async move {
        wr.write_all(&sent).await.unwrap();
        wr
    });
    let mut echoed = vec![0u8; payload.len()];
    tokio::time::timeout(Duration::from_secs(30), rd.read_exact(&mut echoed))
        .await
        .unwrap()
        .unwrap();
    assert!(echoed == payload, "echo differs from what was sent");
    let wr = writer.await.unwrap();
    // the client closes: the app sees the end, the proxy closes the client side too
    drop(wr);
    assert_eq!(next_close(&mut h.seen).await, payload.len());
    let mut tail = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), rd.read_to_end(&mut tail))
        .await
        .unwrap()
        .unwrap();
    assert!(tail.is_empty());
}

#[tokio::test]
async fn attack_in_the_handshake_query_is_blocked_without_upgrade() {
    let mut h = start(Duration::from_secs(10)).await;
    let (mut s, head, _) = open(h.proxy, "/chat?id=1%27%20OR%20%271%27=%271%27--%20").await;
    assert!(head.starts_with("http/1.1 403"), "{head}");
    assert!(!head.contains("upgrade"), "{head}");
    assert!(head.contains("\r\nx-request-id: "), "{head}");
    // no upgrade happened: the connection still speaks HTTP, and the app never saw the attack
    let resp = last_plain_request(&mut s, "/after").await;
    assert!(
        resp.contains("http/1.1 200") && resp.ends_with("plain"),
        "{resp}"
    );
    let app_head = next_head(&mut h.seen).await;
    assert!(app_head.starts_with("get /after "), "{app_head}");
    assert!(h.seen.try_recv().is_err(), "the app saw more than /after");
}

#[tokio::test]
async fn app_refusing_the_upgrade_is_forwarded() {
    let mut h = start(Duration::from_secs(10)).await;
    let (mut s, head, mut rest) = open(h.proxy, "/refuse").await;
    assert!(head.starts_with("http/1.1 400"), "{head}");
    assert!(!head.contains("upgrade"), "{head}");
    let app_head = next_head(&mut h.seen).await;
    assert!(
        app_head.contains("\r\nupgrade: websocket\r\n"),
        "{app_head}"
    );
    while rest.len() < "refused".len() {
        let mut b = [0u8; 64];
        let n = s.read(&mut b).await.unwrap();
        assert!(n > 0, "closed before the body");
        rest.extend_from_slice(&b[..n]);
    }
    assert_eq!(rest, b"refused");
    // the client connection stays HTTP: a next request is answered (on a new app connection)
    let resp = last_plain_request(&mut s, "/next").await;
    assert!(
        resp.starts_with("http/1.1 200") && resp.ends_with("plain"),
        "{resp}"
    );
}

#[tokio::test]
async fn h2c_upgrade_is_stripped_and_answered_as_http1() {
    let mut h = start(Duration::from_secs(10)).await;
    let mut s = TcpStream::connect(h.proxy).await.unwrap();
    s.write_all(
        b"GET /items HTTP/1.1\r\nHost: shop\r\nConnection: Upgrade, HTTP2-Settings\r\n\
          Upgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n",
    )
    .await
    .unwrap();
    let (head, _) = tokio::time::timeout(Duration::from_secs(5), read_head(&mut s))
        .await
        .unwrap()
        .unwrap();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let app_head = next_head(&mut h.seen).await;
    for dropped in ["upgrade", "http2-settings", "connection: upgrade"] {
        assert!(!app_head.contains(dropped), "{dropped}: {app_head}");
    }
    // the same with websocket on a POST, or offered next to another protocol: not upgraded
    for request in [
        "POST /chat HTTP/1.1\r\nHost: shop\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
         Content-Length: 0\r\n\r\n",
        "GET /chat HTTP/1.1\r\nHost: shop\r\nConnection: Upgrade\r\nUpgrade: websocket, h2c\r\n\r\n",
    ] {
        let mut s = TcpStream::connect(h.proxy).await.unwrap();
        s.write_all(request.as_bytes()).await.unwrap();
        let (head, _) = tokio::time::timeout(Duration::from_secs(5), read_head(&mut s))
            .await
            .unwrap()
            .unwrap();
        assert!(head.starts_with("HTTP/1.1 200"), "{request}: {head}");
        let app_head = next_head(&mut h.seen).await;
        assert!(!app_head.contains("upgrade"), "{app_head}");
    }
}

#[tokio::test]
async fn client_vanishing_mid_stream_closes_the_app_side_and_the_proxy_serves_on() {
    let mut h = start(Duration::from_secs(10)).await;
    for _ in 0..3 {
        let mut s = upgraded(h.proxy, "/chat").await;
        let _ = next_head(&mut h.seen).await;
        // half a message written, nothing read back, then closed: the echo arriving at a closed
        // socket is answered with a reset
        s.write_all(&pattern(256 * 1024)).await.unwrap();
        drop(s);
        let _ = next_close(&mut h.seen).await;
    }
    let mut s = upgraded(h.proxy, "/chat").await;
    s.write_all(b"still here").await.unwrap();
    let mut b = [0u8; 10];
    s.read_exact(&mut b).await.unwrap();
    assert_eq!(&b, b"still here");
    let _ = h.stop.take().unwrap().send(());
    drop(s);
    tokio::time::timeout(Duration::from_secs(5), &mut h.done)
        .await
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn shutdown_drains_open_websockets_for_the_grace_period_then_closes_them() {
    let mut h = start(Duration::from_millis(600)).await;
    let mut s = upgraded(h.proxy, "/chat").await;
    let started = Instant::now();
    let _ = h.stop.take().unwrap().send(());
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(
        TcpStream::connect(h.proxy).await.is_err(),
        "no longer listening"
    );
    // during the grace period the tunnel still carries messages
    s.write_all(b"during drain").await.unwrap();
    let mut b = [0u8; 12];
    s.read_exact(&mut b).await.unwrap();
    assert_eq!(&b, b"during drain");
    // then it is closed, and the proxy stops
    let mut rest = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut rest))
        .await
        .unwrap()
        .unwrap();
    assert!(rest.is_empty());
    let closed_after = started.elapsed();
    // closed at the end of the grace period (0.6 s), not when the proxy gave up waiting
    // (1 s later)
    assert!(
        closed_after >= Duration::from_millis(550) && closed_after < Duration::from_millis(1400),
        "{closed_after:?}"
    );
    tokio::time::timeout(Duration::from_secs(5), &mut h.done)
        .await
        .unwrap()
        .unwrap();

    // a tunnel that ends during the grace period lets shutdown finish early
    let mut h = start(Duration::from_secs(10)).await;
    let s = upgraded(h.proxy, "/chat").await;
    let started = Instant::now();
    let _ = h.stop.take().unwrap().send(());
    tokio::time::sleep(Duration::from_millis(100)).await;
    drop(s);
    tokio::time::timeout(Duration::from_secs(5), &mut h.done)
        .await
        .unwrap()
        .unwrap();
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn app_switching_protocols_unasked_gives_502() {
    let mut h = start(Duration::from_secs(10)).await;
    let mut s = TcpStream::connect(h.proxy).await.unwrap();
    s.write_all(b"GET /switch-unasked HTTP/1.1\r\nHost: shop\r\n\r\n")
        .await
        .unwrap();
    let mut resp = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut resp))
        .await
        .unwrap()
        .unwrap();
    let resp = String::from_utf8_lossy(&resp);
    assert!(resp.starts_with("HTTP/1.1 502"), "{resp}");
    assert!(!resp.contains("raw"), "{resp}");
    let app_head = next_head(&mut h.seen).await;
    assert!(app_head.starts_with("get /switch-unasked "), "{app_head}");
}
