//! Latency at a fixed request rate, for the "added p99" figure of the performance benchmark:
//! `fixed_rate ADDR RATE SECONDS [CONNECTIONS] [PATH]` (defaults: 64 connections, the
//! benchmark's catalogue GET).
//!
//! wrk sends as fast as the target answers, so its percentiles at saturation measure queueing;
//! what a proxy adds to each request shows below saturation. Here every connection sends on a
//! fixed schedule (`RATE` requests/s spread over the connections, keep-alive). A request held
//! up by the previous one on its connection has its latency counted from the moment it was
//! *due*, so a stall is counted in the requests queued behind it too (no coordinated omission);
//! one sent on an idle connection, from when it was sent (the timer's own millisecond of
//! lateness is the generator's, not the target's).
//! Prints the rate achieved and the p50/p90/p99/p99.9/max latency in microseconds, and the
//! number of non-2xx answers and errors.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::Request;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

const USER_AGENT: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36";

/// What one connection saw: latencies (µs) of 2xx answers, other answers, errors.
#[derive(Default)]
struct Outcome {
    latencies: Vec<u64>,
    non_2xx: u64,
    errors: u64,
}

async fn connection(
    addr: String,
    path: String,
    first_due: Instant,
    interval: Duration,
    end: Instant,
) -> Outcome {
    let mut out = Outcome::default();
    let mut due = first_due;
    'reconnect: while due < end {
        let stream = match TcpStream::connect(&addr).await {
            Ok(s) => s,
            Err(_) => {
                out.errors += 1;
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let Ok((mut sender, conn)) =
            hyper::client::conn::http1::handshake::<_, Empty<Bytes>>(TokioIo::new(stream)).await
        else {
            out.errors += 1;
            continue;
        };
        tokio::spawn(conn);
        // when the previous answer arrived: a request due before that was held up by it
        let mut prev_done = Instant::now();
        while due < end {
            tokio::time::sleep_until(due.into()).await;
            // held up by the previous request: latency counts from when it was due; sent on
            // an idle connection: from when it was sent (the timer wakes up to a millisecond
            // late, which is the generator's lateness, not the target's)
            let start = if prev_done >= due {
                due
            } else {
                Instant::now()
            };
            let req = Request::get(path.as_str())
                .header("host", addr.as_str())
                .header("user-agent", USER_AGENT)
                .header("cookie", "session=abc123; theme=dark")
                .body(Empty::new());
            let Ok(req) = req else {
                out.errors += 1;
                return out;
            };
            match sender.send_request(req).await {
                Ok(resp) => {
                    let ok = resp.status().is_success();
                    if resp.into_body().collect().await.is_err() {
                        out.errors += 1;
                        due += interval;
                        continue 'reconnect;
                    }
                    prev_done = Instant::now();
                    let us = prev_done.duration_since(start).as_micros() as u64;
                    if ok {
                        out.latencies.push(us);
                    } else {
                        out.non_2xx += 1;
                    }
                }
                Err(_) => {
                    out.errors += 1;
                    due += interval;
                    continue 'reconnect;
                }
            }
            due += interval;
        }
    }
    out
}

fn percentile(sorted: &[u64], q: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = "usage: fixed_rate ADDR RATE SECONDS [CONNECTIONS] [PATH]";
    let (Some(addr), Some(rate), Some(secs)) = (
        args.first().cloned(),
        args.get(1).and_then(|r| r.parse::<f64>().ok()),
        args.get(2).and_then(|s| s.parse::<f64>().ok()),
    ) else {
        eprintln!("{usage}");
        return ExitCode::from(2);
    };
    let conns: usize = args.get(3).and_then(|c| c.parse().ok()).unwrap_or(64);
    let path = args
        .get(4)
        .cloned()
        .unwrap_or_else(|| "/catalogue/shoes?color=red&size=42&sort=price_asc&page=2".into());
    if rate <= 0.0 || secs <= 0.0 || conns == 0 {
        eprintln!("fixed_rate: RATE, SECONDS and CONNECTIONS must be positive; {usage}");
        return ExitCode::from(2);
    }
    let Ok(rt) = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
    else {
        eprintln!("fixed_rate: cannot start the runtime");
        return ExitCode::FAILURE;
    };
    let interval = Duration::from_secs_f64(conns as f64 / rate);
    let outcomes = rt.block_on(async {
        // a short warm-up so connections exist and caches are filled before measuring
        let start = Instant::now() + Duration::from_millis(200);
        let end = start + Duration::from_secs_f64(secs);
        let tasks: Vec<_> = (0..conns)
            .map(|i| {
                let first = start + interval.mul_f64(i as f64 / conns as f64);
                tokio::spawn(connection(addr.clone(), path.clone(), first, interval, end))
            })
            .collect();
        let mut all = Vec::new();
        for t in tasks {
            if let Ok(o) = t.await {
                all.push(o);
            }
        }
        all
    });
    let mut lat: Vec<u64> = outcomes
        .iter()
        .flat_map(|o| o.latencies.iter().copied())
        .collect();
    lat.sort_unstable();
    let non_2xx: u64 = outcomes.iter().map(|o| o.non_2xx).sum();
    let errors: u64 = outcomes.iter().map(|o| o.errors).sum();
    println!(
        "{:.0} req/s achieved | p50 {} us  p90 {} us  p99 {} us  p99.9 {} us  max {} us | non-2xx {non_2xx}, errors {errors}",
        lat.len() as f64 / secs,
        percentile(&lat, 0.5),
        percentile(&lat, 0.9),
        percentile(&lat, 0.99),
        percentile(&lat, 0.999),
        percentile(&lat, 1.0),
    );
    if errors > 0 || lat.is_empty() {
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
