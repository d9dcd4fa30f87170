//! A stand-in for the ECS task metadata endpoint v4 on 127.0.0.1: real HTTP over a real socket,
//! serving the documents in `tests/fixtures/ecs-metadata-v4/` at `/v4/<id>` (this container)
//! and `/v4/<id>/task` (the task), or misbehaving on purpose.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const FIXTURES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/ecs-metadata-v4"
);
/// The path under which the endpoint answers (Fargate's has the container's id here).
pub const PREFIX: &str = "/v4/4d7e1c95b02a4f6c8e3b9a1d5f0c2e78-2210934817";
/// What the fixtures say.
pub const TASK_ARN: &str =
    "arn:aws:ecs:eu-central-1:210987654321:task/shop-prod/4d7e1c95b02a4f6c8e3b9a1d5f0c2e78";
pub const FAMILY: &str = "shop-storefront";
pub const CONTAINER: &str = "storefront";
pub const IMAGE: &str = "210987654321.dkr.ecr.eu-central-1.amazonaws.com/shop/storefront:4.7.2";

/// How the endpoint answers.
#[derive(Clone, Copy, Debug)]
pub enum Behaviour {
    /// The fixture documents, at once.
    Documents,
    /// Accepts the connection, reads the request, never answers.
    Silent,
    /// `200` with a body that is not JSON for the first `n` requests, then the documents.
    GarbageFirst(usize),
}

/// A running endpoint; stops on drop.
pub struct MetadataEndpoint {
    pub addr: SocketAddr,
    requests: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
}

impl MetadataEndpoint {
    pub fn start(behaviour: Behaviour) -> MetadataEndpoint {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the metadata endpoint");
        listener.set_nonblocking(true).expect("nonblocking");
        let addr = listener.local_addr().expect("addr");
        let requests: Arc<Mutex<Vec<String>>> = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let (seen, stopping) = (Arc::clone(&requests), Arc::clone(&stop));
        std::thread::spawn(move || {
            while !stopping.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((stream, _)) => {
                        let (seen, stopping) = (Arc::clone(&seen), Arc::clone(&stopping));
                        std::thread::spawn(move || serve(stream, behaviour, &seen, &stopping));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        MetadataEndpoint {
            addr,
            requests,
            stop,
        }
    }

    /// The value of `ECS_CONTAINER_METADATA_URI_V4` for this endpoint.
    pub fn uri(&self) -> String {
        format!("http://{}{PREFIX}", self.addr)
    }

    /// The request paths seen so far, in order.
    pub fn requests(&self) -> Vec<String> {
        self.requests
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

impl Drop for MetadataEndpoint {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn serve(
    mut stream: TcpStream,
    behaviour: Behaviour,
    seen: &Mutex<Vec<String>>,
    stop: &AtomicBool,
) {
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") && head.len() < 16 * 1024 {
        match stream.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            _ => return,
        }
    }
    let text = String::from_utf8_lossy(&head);
    let path = text
        .split_whitespace()
        .nth(1)
        .unwrap_or_default()
        .to_string();
    let nth = {
        let mut seen = seen.lock().unwrap_or_else(|p| p.into_inner());
        seen.push(path.clone());
        seen.len()
    };
    let (status, body) = match behaviour {
        Behaviour::Silent => {
            // Hold the connection open, answering nothing, until the endpoint stops.
            for _ in 0..200 {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            return;
        }
        Behaviour::GarbageFirst(n) if nth <= n => {
            ("200 OK", "<html>gateway starting</html>".to_string())
        }
        _ => document(&path),
    };
    let _ = write!(
        stream,
        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
}

fn document(path: &str) -> (&'static str, String) {
    let file = if path == PREFIX {
        "container.json"
    } else if path == format!("{PREFIX}/task") {
        "task.json"
    } else {
        return ("404 Not Found", "404 page not found".to_string());
    };
    let body = std::fs::read_to_string(format!("{FIXTURES}/{file}")).expect("fixture");
    ("200 OK", body)
}
