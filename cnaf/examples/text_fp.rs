//! False positives on ordinary text beyond the benign corpus (tuning aid): every non-empty line
//! of the files given (or of stdin) is sent as a form field and as a query parameter, and the
//! share of lines with a finding is printed per paranoia level.
//!
//! `text_fp [--show LEVEL] FILE...`: with `--show`, the lines flagged at LEVEL are printed too.
//! For example, documentation text:
//! `cargo run --release -p cnaf --example text_fp -- /usr/share/common-licenses/* README.md`.
use std::io::Read;

use cnaf::{inspect, policy, Action, CnafEffect, Paranoia, RequestParts};

fn main() {
    let mut show: Option<u8> = None;
    let mut files = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        if a == "--show" {
            show = args.next().and_then(|n| n.parse().ok());
        } else {
            files.push(a);
        }
    }
    let mut text = String::new();
    if files.is_empty() {
        if let Err(e) = std::io::stdin().read_to_string(&mut text) {
            eprintln!("text_fp: stdin: {e}");
            std::process::exit(2);
        }
    }
    for f in &files {
        match std::fs::read(f) {
            Ok(b) => {
                text.push_str(&String::from_utf8_lossy(&b));
                text.push('\n');
            }
            Err(e) => eprintln!("text_fp: {f}: {e} (skipped)"),
        }
    }
    let mut lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| l.len() >= 3)
        .collect();
    lines.sort_unstable();
    lines.dedup();
    println!("{} distinct lines", lines.len());
    for level in Paranoia::all() {
        let protections = policy::all(CnafEffect::Prevent).at(level);
        let mut flagged = 0usize;
        for line in &lines {
            let enc = encode(line);
            let body = format!("text={enc}");
            let form = browser(RequestParts::new("POST", "/submit"))
                .header("Content-Type", "application/x-www-form-urlencoded")
                .header("Content-Length", &body.len().to_string());
            let query = browser(RequestParts::new("GET", &format!("/search?q={enc}")));
            let hits: Vec<String> = [
                inspect(&form, body.as_bytes(), &protections),
                inspect(&query, b"", &protections),
            ]
            .iter()
            .filter(|v| v.action() != Action::Allow)
            .flat_map(|v| v.findings.iter().map(|f| f.attack.to_string()))
            .collect();
            if !hits.is_empty() {
                flagged += 1;
                if show == Some(level.level()) {
                    println!("  L{level} [{}] {line}", hits.join(","));
                }
            }
        }
        println!(
            "paranoia {level}: {flagged}/{} lines flagged = {:.2}%",
            lines.len(),
            100.0 * flagged as f64 / lines.len().max(1) as f64
        );
    }
}

/// The headers a browser sends with every request.
fn browser(parts: RequestParts) -> RequestParts {
    parts
        .header("Host", "shop.example.com")
        .header(
            "User-Agent",
            "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36",
        )
        .header("Accept-Language", "en-GB,en;q=0.9")
}

/// Percent-encoding of everything but unreserved characters.
fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}
