//! A minimal HTTP/1.1 app (keep-alive, fixed 13-byte answer) standing in for the protected
//! application in the performance benchmark: `hello_app LISTEN [WORK_US]`.
//!
//! With `WORK_US`, every request first does about that many microseconds of CPU work (a
//! fixed number of rounds of an integer mixing loop, calibrated at start against the thread's
//! CPU clock), like an app that renders a page or serialises a query result: the throughput
//! ratio through a proxy then reflects what the proxy costs next to real work.

use std::convert::Infallible;
use std::process::ExitCode;
use std::sync::OnceLock;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

/// Rounds of [`work`] per request (0: none).
static ROUNDS: OnceLock<u64> = OnceLock::new();

/// CPU work the optimiser cannot remove: `rounds` steps of a xorshift-multiply mix.
fn work(rounds: u64) -> u64 {
    let mut x = std::hint::black_box(0x9E37_79B9_7F4A_7C15_u64);
    for _ in 0..rounds {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x = x.wrapping_mul(0xBF58_476D_1CE4_E5B9);
    }
    std::hint::black_box(x)
}

fn thread_cpu() -> Duration {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
    Duration::new(t.tv_sec as u64, t.tv_nsec as u32)
}

/// Rounds of [`work`] that take `us` microseconds of CPU: the fastest of several timed runs
/// (the one least disturbed by other processes).
fn calibrate(us: u64) -> u64 {
    const PROBE: u64 = 2_000_000;
    let best = (0..7)
        .map(|_| {
            let t = thread_cpu();
            work(PROBE);
            thread_cpu() - t
        })
        .min()
        .unwrap_or(Duration::from_millis(1));
    (PROBE as f64 * us as f64 / (best.as_secs_f64() * 1e6)) as u64
}

async fn hello(_req: Request<hyper::body::Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let rounds = ROUNDS.get().copied().unwrap_or(0);
    if rounds > 0 {
        work(rounds);
    }
    Ok(Response::new(Full::new(Bytes::from_static(
        b"Hello, world!",
    ))))
}

#[tokio::main]
async fn main() -> ExitCode {
    let Some(addr) = std::env::args().nth(1) else {
        eprintln!("usage: hello_app LISTEN [WORK_US]");
        return ExitCode::from(2);
    };
    let work_us = match std::env::args().nth(2).map(|a| a.parse::<u64>()) {
        None => 0,
        Some(Ok(us)) => us,
        Some(Err(e)) => {
            eprintln!("hello_app: WORK_US: {e} (expected microseconds)");
            return ExitCode::from(2);
        }
    };
    let rounds = if work_us > 0 { calibrate(work_us) } else { 0 };
    let _ = ROUNDS.set(rounds);
    let listener = match TcpListener::bind(&addr).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("hello_app: cannot listen on {addr}: {e}");
            return ExitCode::FAILURE;
        }
    };
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        tokio::spawn(async move {
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), hyper::service::service_fn(hello))
                .await;
        });
    }
}
