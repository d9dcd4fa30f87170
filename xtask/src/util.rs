//! Small helpers for running commands from the workspace root.

use anyhow::{bail, Context, Result};
use std::path::PathBuf;
use std::process::Command;

/// The workspace root (the parent of `xtask/`).
pub fn root() -> PathBuf {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().map(PathBuf::from).unwrap_or(manifest)
}

/// Cargo's target directory: `CARGO_TARGET_DIR` when set (a relative one is taken from the
/// workspace root, where [`cargo`] runs), else `target/` under the root.
pub fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR").filter(|d| !d.is_empty()) {
        // `join` keeps an absolute path as it is.
        Some(dir) => root().join(dir),
        None => root().join("target"),
    }
}

/// The `cargo` that runs this task, without the package variables `cargo run` handed us (see
/// [`xtask::cargo_env`]).
pub fn cargo() -> Command {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(root());
    xtask::cargo_env::without_package_env(&mut cmd);
    cmd
}

/// Runs a command to completion, failing with its name when it exits non-zero.
pub fn run(cmd: &mut Command) -> Result<()> {
    // Program and arguments only: the environment changes (see `cargo`) would bury them.
    let shown = std::iter::once(cmd.get_program())
        .chain(cmd.get_args())
        .map(|a| a.to_string_lossy())
        .collect::<Vec<_>>()
        .join(" ");
    eprintln!("xtask: $ {shown}");
    let status = cmd
        .status()
        .with_context(|| format!("could not start {shown}"))?;
    if !status.success() {
        bail!("{shown} failed with {status}");
    }
    Ok(())
}
