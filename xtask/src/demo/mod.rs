//! `cargo xtask demo`: the seed scenario end to end, locally, with no AWS account and no Docker.
//!
//! The outer half builds the binaries and re-runs this task inside a fresh user, network and
//! mount namespace (`unshare`), where the demo owns loopback, may bind ports 53/80/8080, and gives
//! the sample a `resolv.conf` naming the demo's own name server: nothing leaves the machine.
//! The inner half walks the seed's journey in its order, with nothing assembled by hand:
//! 1. starts the local console on its defaults (embedded store, no defender image configured);
//! 2. writes the seed's rules through its API: the runtime rule (mkdir prevented, DNS for
//!    yahoo.com prevented) and a CNAF rule for the sample's family (external port, app port);
//! 3. embeds the defender with the seed's Jenkins call as written,
//!    `POST /api/v1/defenders/fargate.json?consoleaddr=...`, and shows the console's `Warning`
//!    headers (it minted the defender credential into `DEFENDER_TOKEN`);
//! 4. runs the protected task as ECS would, from the transformed JSON alone: the defender
//!    installer, then the sample container (its entryPoint, command and environment), whose
//!    defender opens the CNAF port the console's rule names (`DEFENDER_CNAF=console`); the
//!    sample's `entry.sh` runs `mkdir test`, fetches yahoo.com and google.com with wget, then
//!    serves HTTP on the app port; the demo waits until the CNAF port answers;
//! 5. sends the seed's SQL injection to the CNAF port, prints the audits as the console returns
//!    them and checks the seed's three are there.

mod api;
mod dns;
mod scenario;
mod task;
pub mod web;

use crate::util::{cargo, run as sh, target_dir};
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
    let dir = target_dir()
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
    // <target>/debug/xtask while this process runs.
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
