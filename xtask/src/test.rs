//! `cargo xtask test`: the README's test command.
//!
//! 1. Creates `target/venv` and installs moto server into it (once; kept between runs).
//! 2. Builds every binary (integration tests run the real binaries).
//! 3. Runs the whole workspace test suite with `MOTO_SERVER` pointing at the venv's
//!    `moto_server`, so tests that need it start their own instance on a free loopback port.

use crate::util::{cargo, root, run as sh};
use anyhow::{Context, Result};
use std::path::PathBuf;
use std::process::Command;

/// The moto version the tests are written against.
const MOTO: &str = "moto[server]==5.1.*";

pub fn run(extra: &[String]) -> Result<()> {
    let moto = ensure_moto().context("preparing moto server in target/venv")?;
    sh(cargo().args(["build", "--workspace", "--bins"]))?;
    let mut test = cargo();
    test.args(["test", "--workspace"]).args(extra);
    test.env("MOTO_SERVER", &moto);
    sh(&mut test)
}

/// Makes `target/venv` with moto server in it and returns the path of `moto_server`.
fn ensure_moto() -> Result<PathBuf> {
    let venv = root().join("target").join("venv");
    let bin = venv.join("bin");
    let server = bin.join("moto_server");
    let stamp = venv.join(".moto-installed");
    if server.exists() && stamp.exists() {
        return Ok(server);
    }
    let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".to_string());
    sh(Command::new(&python).args(["-m", "venv"]).arg(&venv))?;
    sh(Command::new(bin.join("pip"))
        .args(["install", "--quiet", "--disable-pip-version-check", MOTO]))?;
    std::fs::write(&stamp, MOTO).context("writing the venv stamp")?;
    Ok(server)
}
