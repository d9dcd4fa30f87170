//! `cargo xtask package` builds the artifacts users deploy: a Lambda zip whose only entry is a
//! static `bootstrap`, and the defender image context with a static `defender`.

use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::Command;
use xtask::elf::elf_interpreter;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

#[test]
fn package_builds_a_static_lambda_bootstrap_and_defender() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let zip_path = root().join("target/lambda/lambda-console.zip");
    let _ = std::fs::remove_file(&zip_path);
    let status = Command::new(cargo)
        .current_dir(root())
        .args(["xtask", "package", "--debug"])
        .status()
        .expect("cargo xtask package starts");
    assert!(
        status.success(),
        "cargo xtask package --debug failed: {status}"
    );

    let mut archive =
        zip::ZipArchive::new(std::fs::File::open(&zip_path).expect("the zip exists")).unwrap();
    assert_eq!(archive.len(), 1, "the Lambda zip holds bootstrap only");
    let mut entry = archive.by_index(0).unwrap();
    assert_eq!(entry.name(), "bootstrap");
    assert_eq!(entry.unix_mode().map(|m| m & 0o777), Some(0o755));
    let mut bootstrap = Vec::new();
    entry.read_to_end(&mut bootstrap).unwrap();
    assert_eq!(
        elf_interpreter(&bootstrap),
        Ok(None),
        "bootstrap must be statically linked"
    );

    let defender = root().join("target/package/defender-image/defender");
    let bytes = std::fs::read(&defender).expect("the defender is packaged");
    assert_eq!(elf_interpreter(&bytes), Ok(None), "defender must be static");
    let mode = std::fs::metadata(&defender).unwrap().permissions().mode();
    assert_eq!(mode & 0o111, 0o111, "defender is executable");
    let dockerfile =
        std::fs::read_to_string(root().join("target/package/defender-image/Dockerfile")).unwrap();
    assert!(dockerfile.contains(r#"ENTRYPOINT ["/defender", "install", "/var/lib/defender"]"#));
}
