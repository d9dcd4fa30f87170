//! `cargo xtask demo`: the seed scenario end to end, locally, with no AWS account and no Docker.
//!
//! The outer half builds the binaries and re-runs this task inside a fresh user, network and
//! mount namespace (`unshare`), where the demo owns loopback, may bind ports 53/80/8080, and gives
//! the sample a `resolv.conf` naming the demo's own name server: nothing leaves the machine.
//! The inner half plays the seed's story:
//! 1. starts the local console (embedded store) and writes the seed's rules through its API;
//! 2. embeds the seed's sample task definition through the console's transform API (as the
//!    Jenkins example does) and starts the protected container the way the task would: the
//!    `defender install` sidecar, then `defender run -- entry.sh` with the task's environment;
//!    `entry.sh` runs `mkdir test` and fetches yahoo.com and google.com with wget;
//! 3. embeds the web variant with `deploy-protected embed --cnaf-port 8080 --app-port 80`, runs an
//!    HTTP app behind CNAF and sends the seed's SQL injection request;
//! 4. prints the audits as the console returns them and checks the seed's three are there.

mod api;
mod dns;
mod scenario;
pub mod web;

use crate::util::{cargo, root, run as sh};
use anyhow::{bail, Context, Result};
use std::path::PathBuf;
use std::process::Command;

pub fn run(args: &[String]) -> Result<()> {
    if let Some(pos) = args.iter().position(|a| a == "--inner") {
        let dir = args
            .get(pos + 1)
            .map(PathBuf::from)
            .context("--inner needs the demo directory")?;
        return scenario::run(&dir);
    }
    let dir = root()
        .join("target")
        .join("demo")
        .join(std::process::id().to_string());
    if dir.exists() {
        std::fs::remove_dir_all(&dir).with_context(|| format!("clearing {}", dir.display()))?;
    }
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let resolv = dir.join("resolv.conf");
    std::fs::write(&resolv, format!("nameserver {}\n", scenario::NAMESERVER))
        .context("writing the demo's resolv.conf")?;
    // Keep a copy of this executable for the inner half: the build below may replace
    // target/debug/xtask while this process runs.
    let me = dir.join("xtask");
    // (/proc/self/exe still reads the running image even after the file was replaced.)
    std::fs::copy("/proc/self/exe", &me).context("copying the xtask executable for the demo")?;
    // The same build as `cargo xtask test` makes (same feature resolution), so nothing is
    // compiled twice.
    sh(cargo().args(["build", "--quiet", "--workspace", "--bins"]))?;

    eprintln!("demo: entering a private network namespace (nothing leaves this machine)");
    let script = r#"set -e
ip link set lo up
mount --bind "$1" /etc/resolv.conf
exec "$2" demo --inner "$3""#;
    let status = Command::new("unshare")
        .args([
            "--user",
            "--map-root-user",
            "--net",
            "--mount",
            "--fork",
            "--",
        ])
        .args(["sh", "-c", script, "demo"])
        .arg(&resolv)
        .arg(&me)
        .arg(&dir)
        .status()
        .context("starting `unshare` (util-linux) for the demo's private namespace")?;
    let _ = std::fs::remove_dir_all(&dir);
    if !status.success() {
        bail!(
            "the demo failed ({status}); if `unshare --user` was refused, this kernel forbids \
             unprivileged user namespaces: run the demo as root"
        );
    }
    Ok(())
}
