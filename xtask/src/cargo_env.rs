//! Running `cargo` from inside a cargo-run process without rebuilding the world.
//!
//! `cargo run` (hence `cargo xtask`) and `cargo test` hand the running program the variables
//! cargo sets for one package (`CARGO_MANIFEST_DIR`, `CARGO_PKG_NAME`, ...). A nested `cargo`
//! that inherits them sees a changed environment for build scripts that watch those names with
//! `rerun-if-env-changed` (ring does), reruns them and rebuilds everything above them (rustls,
//! the AWS SDK): minutes, twice, as the next plain `cargo build` rebuilds again.

use std::process::Command;

/// Variables cargo sets for the package it runs, by exact name.
const PACKAGE_VARS: &[&str] = &[
    "CARGO_MANIFEST_DIR",
    "CARGO_MANIFEST_PATH",
    "CARGO_MANIFEST_LINKS",
    "CARGO_CRATE_NAME",
    "CARGO_BIN_NAME",
    "CARGO_PRIMARY_PACKAGE",
    "CARGO_RUSTC_CURRENT_DIR",
    "CARGO_TARGET_TMPDIR",
    "OUT_DIR",
];

/// Removes from `cmd`'s environment what cargo set for the package running this program
/// (the names above and every `CARGO_PKG_*`), so a nested `cargo` sees the user's environment.
pub fn without_package_env(cmd: &mut Command) -> &mut Command {
    for (name, _) in std::env::vars_os() {
        let Some(name) = name.to_str() else { continue };
        if name.starts_with("CARGO_PKG_") || PACKAGE_VARS.contains(&name) {
            cmd.env_remove(name);
        }
    }
    cmd
}
