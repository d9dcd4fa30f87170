//! Per-protection cost of `cnaf::inspect` on one typical GET (tuning aid):
//! `detector_cost [PARANOIA]` (level 1 to 4, default 1).
use std::time::Instant;

use cnaf::{inspect, policy, CnafEffect, Paranoia, Protections, RequestParts};
use protect::cnaf_policy::PROTECTIONS;

fn main() {
    let parts = RequestParts::new(
        "GET",
        "/catalogue/shoes?color=red&size=42&sort=price_asc&page=2",
    )
    .header("Host", "127.0.0.1:18092")
    .header(
        "User-Agent",
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36",
    )
    .header("Cookie", "session=abc123; theme=dark");
    let level = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .and_then(Paranoia::new)
        .unwrap_or_default();
    println!("paranoia level {level}");
    for only in std::iter::once("none")
        .chain(PROTECTIONS)
        .chain(std::iter::once("all"))
    {
        // every protection disabled but `only` (all of them for "all")
        let effects: serde_json::Map<String, serde_json::Value> = PROTECTIONS
            .iter()
            .map(|n| {
                let on = only == "all" || only == *n;
                (
                    n.to_string(),
                    (if on { "prevent" } else { "disable" }).into(),
                )
            })
            .collect();
        let Ok(p) = serde_json::from_value::<Protections>(effects.into()) else {
            unreachable!("every protection name with a valid effect")
        };
        let p = p.at(level);
        let n = 200_000;
        let t = Instant::now();
        for _ in 0..n {
            std::hint::black_box(inspect(&parts, b"", &p));
        }
        println!(
            "{only:<16} {:>8.2} us/request",
            t.elapsed().as_secs_f64() * 1e6 / n as f64
        );
    }
    let all = policy::all(CnafEffect::Prevent).at(level);
    let pieces = [
        (
            "bare GET /",
            RequestParts::new("GET", "/").header("Host", "h"),
        ),
        (
            "path",
            RequestParts::new("GET", "/catalogue/shoes").header("Host", "h"),
        ),
        (
            "query",
            RequestParts::new("GET", "/?color=red&size=42&sort=price_asc&page=2")
                .header("Host", "h"),
        ),
        (
            "user-agent",
            RequestParts::new("GET", "/").header("Host", "h").header(
                "User-Agent",
                "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36",
            ),
        ),
        (
            "cookie",
            RequestParts::new("GET", "/")
                .header("Host", "h")
                .header("Cookie", "session=abc123; theme=dark"),
        ),
    ];
    for (name, parts) in pieces {
        let n = 200_000;
        let t = Instant::now();
        for _ in 0..n {
            std::hint::black_box(inspect(&parts, b"", &all));
        }
        println!(
            "{name:<16} {:>8.2} us/request",
            t.elapsed().as_secs_f64() * 1e6 / n as f64
        );
    }
}
