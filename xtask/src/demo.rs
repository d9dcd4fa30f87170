//! `cargo xtask demo`: the README's main command.
//!
//! For now it embeds the seed's sample task definition and prints the protected definition.

use crate::util::{cargo, run as sh};
use anyhow::Result;

pub fn run(_extra: &[String]) -> Result<()> {
    sh(cargo().args([
        "run",
        "--quiet",
        "--package",
        "deploy-protected",
        "--",
        "embed",
        "--file",
        "examples/fargate-task.json",
        "--console-url",
        "http://127.0.0.1:8083",
        "--defender-image",
        "fargate-defender:latest",
    ]))
}
