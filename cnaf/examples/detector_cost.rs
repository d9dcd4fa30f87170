//! Per-protection cost of `cnaf::inspect` on one typical GET (tuning aid): `detector_cost`.
use std::time::Instant;

use cnaf::{inspect, policy, CnafEffect, RequestParts};

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
    let names = [
        "sqli",
        "xss",
        "cmdi",
        "code_injection",
        "lfi",
        "attack_tools",
        "shellshock",
        "malformed",
    ];
    for only in std::iter::once("none")
        .chain(names)
        .chain(std::iter::once("all"))
    {
        let mut p = policy::all(CnafEffect::Disable);
        for (n, e) in [
            ("sqli", &mut p.sqli),
            ("xss", &mut p.xss),
            ("cmdi", &mut p.cmdi),
            ("code_injection", &mut p.code_injection),
            ("lfi", &mut p.lfi),
            ("attack_tools", &mut p.attack_tools),
            ("shellshock", &mut p.shellshock),
            ("malformed", &mut p.malformed),
        ] {
            if only == "all" || only == n {
                *e = CnafEffect::Prevent;
            }
        }
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
    let all = policy::all(CnafEffect::Prevent);
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
