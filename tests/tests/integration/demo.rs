//! The README's main command, `cargo xtask demo`, runs the seed scenario end to end: its output
//! must show the seed's three audits as the console returned them.

use std::path::PathBuf;
use std::process::Command;

#[test]
fn the_demo_shows_the_seed_audits() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .current_dir(&root)
        .args(["xtask", "demo"])
        .output()
        .expect("cargo xtask demo starts");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "cargo xtask demo failed: {}\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
        out.status
    );
    // The audits section, as printed from the console's answers.
    let audits = stdout
        .split("==> Audits, as the console returns them")
        .nth(1)
        .unwrap_or_else(|| panic!("no audits section in:\n{stdout}"));
    let lines: Vec<&str> = audits.lines().collect();
    assert!(
        lines
            .iter()
            .any(|l| l.contains("[Process/Prevent] twistlock-fargate-task:")
                && l.contains("mkdir launched from")
                && l.ends_with(
                    "dash and is explicitly blocked in the runtime rule. Full command: mkdir test"
                )),
        "no mkdir audit in:\n{audits}"
    );
    assert!(
        lines.iter().any(|l| l.ends_with(
            "[Dns/Prevent] twistlock-fargate-task: DNS resolution of suspicious name yahoo.com"
        )),
        "no yahoo.com audit in:\n{audits}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.contains("[Cnaf/Prevent] web: SQL injection detected")
                && l.ends_with("request blocked")),
        "no SQL injection audit in:\n{audits}"
    );
    assert!(
        !lines.iter().any(|l| l.contains("google.com")),
        "google.com is allowed and must not be audited:\n{audits}"
    );
    assert!(stdout.contains("demo: OK"), "{stdout}");
}
