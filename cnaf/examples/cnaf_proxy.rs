//! Run the CNAF proxy alone, for manual tests and the performance benchmark.
//!
//! `cargo run -p cnaf --example cnaf_proxy -- LISTEN UPSTREAM [prevent|alert|disable] [THREADS]`
//! e.g. `-- 127.0.0.1:8080 127.0.0.1:8081 prevent`. Audits are printed as JSON lines on
//! stdout; Ctrl-C stops it gracefully.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;

use cnaf::proxy::{serve, AuditSink, PolicyHandle, ProxyConfig, ProxyPolicy};
use cnaf::CnafEffect;
use protect::audit::AuditRecord;

struct Stdout;

impl AuditSink for Stdout {
    fn record(&self, record: AuditRecord) {
        if let Ok(line) = serde_json::to_string(&record) {
            println!("{line}");
        }
    }
}

fn parse(args: &[String]) -> Result<(SocketAddr, SocketAddr, CnafEffect, Option<usize>), String> {
    let usage = "usage: cnaf_proxy LISTEN UPSTREAM [prevent|alert|disable] [THREADS]";
    let listen = args
        .first()
        .ok_or(usage)?
        .parse()
        .map_err(|e| format!("LISTEN: {e} (expected IP:PORT)"))?;
    let upstream = args
        .get(1)
        .ok_or(usage)?
        .parse()
        .map_err(|e| format!("UPSTREAM: {e} (expected IP:PORT)"))?;
    let effect = match args.get(2).map(String::as_str) {
        None | Some("prevent") => CnafEffect::Prevent,
        Some("alert") => CnafEffect::Alert,
        Some("disable") => CnafEffect::Disable,
        Some(other) => {
            return Err(format!(
                "effect {other:?}: expected prevent, alert or disable"
            ))
        }
    };
    let threads = match args.get(3) {
        None => None,
        Some(t) => Some(
            t.parse()
                .map_err(|e| format!("THREADS {t:?}: {e} (expected a number)"))?,
        ),
    };
    Ok((listen, upstream, effect, threads))
}

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (listen, upstream, effect, threads) = match parse(&args) {
        Ok(x) => x,
        Err(e) => {
            eprintln!("cnaf_proxy: {e}");
            return ExitCode::from(2);
        }
    };
    let policy = PolicyHandle::new(ProxyPolicy::uniform("example", effect));
    let mut cfg = ProxyConfig::new(listen, upstream, policy);
    cfg.audit = Arc::new(Stdout);
    if let Some(t) = threads {
        cfg.threads = t;
    }
    let shutdown = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    match serve(cfg, shutdown).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("cnaf_proxy: {e}");
            ExitCode::FAILURE
        }
    }
}
