//! `cargo xtask test`: the README's test command.
//!
//! 1. Creates `venv` in the target directory and installs moto server into it (once; kept
//!    between runs).
//! 2. Lints the console's AWS SAM template with cfn-lint (from the same venv).
//! 3. Builds every binary (integration tests run the real binaries).
//! 4. Runs the whole workspace test suite with `MOTO_SERVER` pointing at the venv's
//!    `moto_server`, so tests that need it start their own instance on a free loopback port.
//!    `--no-fail-fast`: one failing test binary does not hide the results of the others.
//! 5. Runs the defender's kernel-facing suites again as on Fargate's 5.10 kernel
//!    (`DEFENDER_ASSUME_KERNEL=5.10`: no feature newer than 5.10 is requested), both backends.
//! 6. Runs Schemathesis (same venv) against a local console and its OpenAPI document
//!    ([`crate::api_fuzz`]); `cargo xtask test --api-fuzz` runs only this step.

use crate::util::{cargo, root, run as sh};
use anyhow::{Context, Result};
use std::path::PathBuf;
use std::process::Command;

/// The defender suites that exercise kernel features (supervision, network judging, app
/// isolation; each runs both backends), run a second time assuming Fargate's 5.10 kernel. The
/// console and CNAF suites do not depend on the kernel's seccomp features and run once.
const KERNEL_SUITES: &[&str] = &[
    "supervise",
    "net_run",
    "net_policy",
    "net_trace",
    "app_isolation",
];

/// The kernel Fargate platform 1.4.0 runs.
pub const FARGATE_KERNEL: &str = "5.10";

/// The Python packages the tests need, pinned to the versions they are written against.
const PY_PACKAGES: &[&str] = &[
    "moto[server]==5.1.*",
    "cfn-lint==1.*",
    "schemathesis==4.32.*",
];

pub fn run(extra: &[String]) -> Result<()> {
    let moto = ensure_venv().context("preparing moto server and cfn-lint in target/venv")?;
    let cfn_lint = moto.with_file_name("cfn-lint");
    sh(Command::new(cfn_lint)
        .current_dir(root())
        .arg("infra/template.yaml"))
    .context("cfn-lint rejected infra/template.yaml")?;
    if extra == ["--api-fuzz"] {
        sh(cargo().args(["build", "-p", "lambda-console", "--bin", "lambda-console"]))?;
        return crate::api_fuzz::run(&crate::api_fuzz::venv_bin(&moto));
    }
    sh(cargo().args(["build", "--workspace", "--bins"]))?;
    let mut test = cargo();
    test.args(["test", "--workspace", "--no-fail-fast"])
        .args(extra);
    test.env("MOTO_SERVER", &moto);
    let all = sh(&mut test);
    if !extra.is_empty() {
        // A filtered run (arguments given) is about those tests only.
        return all;
    }
    let mut old_kernel = cargo();
    old_kernel
        .args(["test", "-p", "defender", "--no-fail-fast"])
        .args(KERNEL_SUITES.iter().flat_map(|t| ["--test", t]))
        .env("DEFENDER_ASSUME_KERNEL", FARGATE_KERNEL);
    let assumed = sh(&mut old_kernel)
        .with_context(|| format!("the defender suites assuming kernel {FARGATE_KERNEL}"));
    let fuzz = crate::api_fuzz::run(&crate::api_fuzz::venv_bin(&moto))
        .context("the console's API against its OpenAPI document");
    all.and(assumed).and(fuzz)
}

/// Makes `target/venv` with moto server, cfn-lint and Schemathesis in it; returns the path of
/// `moto_server`.
fn ensure_venv() -> Result<PathBuf> {
    let venv = crate::util::target_dir().join("venv");
    let bin = venv.join("bin");
    let server = bin.join("moto_server");
    let stamp = venv.join(".installed");
    let wanted = PY_PACKAGES.join("\n");
    if server.exists() && std::fs::read_to_string(&stamp).is_ok_and(|s| s == wanted) {
        return Ok(server);
    }
    let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".to_string());
    sh(Command::new(&python).args(["-m", "venv"]).arg(&venv))?;
    sh(Command::new(bin.join("pip"))
        .args(["install", "--quiet", "--disable-pip-version-check"])
        .args(PY_PACKAGES))?;
    std::fs::write(&stamp, wanted).context("writing the venv stamp")?;
    Ok(server)
}
