//! The README's main command, `cargo xtask demo`, runs the seed scenario end to end: its output
//! must walk the seed's journey in order (console, rules, the transform called as the seed
//! does, the service, the audits), with the credential and the CNAF ports coming from the
//! console, and show the seed's three audits as the console returned them.

use std::path::PathBuf;
use std::process::Command;

#[test]
fn the_demo_shows_the_seed_audits() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut demo = Command::new(cargo);
    // Without the variables `cargo test` set for this package, or the build rebuilds ring.
    xtask::cargo_env::without_package_env(&mut demo);
    let out = demo
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
    // The seed's order: console, rules, transform, service, test, audits.
    let steps: Vec<&str> = stdout
        .lines()
        .filter_map(|l| l.strip_prefix("==> "))
        .collect();
    let order = [
        "1. Starting the console on its defaults",
        "2. Defining the policy",
        "3. Embedding the Fargate Defender",
        "4. Starting the service",
        "5. Testing the task",
        "Audits, as the console returns them",
    ];
    let mut at = steps.iter();
    for want in order {
        assert!(
            at.any(|s| s.starts_with(want)),
            "step {want:?} missing or out of order in {steps:?}"
        );
    }
    // The seed's API call as written, and the console's warning about the credential it minted.
    let call = stdout
        .lines()
        .find(|l| l.contains("/api/v1/defenders/fargate.json?"))
        .unwrap_or_else(|| panic!("no transform call in:\n{stdout}"));
    assert!(call.contains("fargate.json?consoleaddr="), "{call}");
    for param in ["defenderImage", "tokenSecretArn", "cnafPort", "appPort"] {
        assert!(
            !call.contains(param),
            "the seed's call has no {param}: {call}"
        );
    }
    assert!(
        stdout.lines().any(|l| l
            .starts_with("Warning: 199 console \"no tokenSecretArn: created defender credential ")),
        "no credential warning in:\n{stdout}"
    );
    assert!(
        stdout.contains("DEFENDER_TOKEN=cdt_") && !stdout.contains("install-bundle"),
        "the credential must be the transform's DEFENDER_TOKEN:\n{stdout}"
    );
    // The CNAF port: from the console's rule (DEFENDER_CNAF=console), never another one.
    assert!(
        stdout.contains("    DEFENDER_CNAF=console\n")
            && stdout
                .lines()
                .filter(|l| l.contains("DEFENDER_CNAF_LISTEN="))
                .all(|l| l.trim() == "DEFENDER_CNAF_LISTEN=0.0.0.0:8080"),
        "{stdout}"
    );
    assert!(
        stdout.contains(
            "CNAF rule \"web\" (revision 1) for task family twistlock-fargate-task: external port \
             8080 -> app port 80"
        ),
        "{stdout}"
    );
    assert!(
        stdout.contains(
            "[twistlock-fargate-task] defender: cnaf: listening on 0.0.0.0:8080, forwarding to \
             127.0.0.1:80"
        ),
        "the defender did not open the rule's port:\n{stdout}"
    );
    assert!(
        stdout.contains("service up: http://127.0.0.1:8080/ answers through CNAF (port 8080 from the console's rule \"web\""),
        "{stdout}"
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
        lines.iter().any(|l| l
            .contains("[Cnaf/Prevent] twistlock-fargate-task: SQL injection detected")
            && l.ends_with("request blocked")),
        "no SQL injection audit in:\n{audits}"
    );
    assert!(
        !lines.iter().any(|l| l.contains("google.com")),
        "google.com is allowed and must not be audited:\n{audits}"
    );
    assert!(stdout.contains("demo: OK"), "{stdout}");
}
