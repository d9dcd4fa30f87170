//! `cargo xtask package [--debug] [--image [TAG]]`: the deployable artifacts.
//!
//! - `target/lambda/lambda-console.zip`: the console for AWS Lambda (`provided.al2023`), whose only
//!   entry is `bootstrap`, a statically linked x86_64 executable (so the runtime's glibc version
//!   does not matter).
//! - `target/package/defender-image/`: the static `defender` and the sidecar image's Dockerfile;
//!   with `--image` the image is built with the local Docker Engine (default tag
//!   `fargate-defender:latest`).
//!
//! Static builds go to their own target directory (`target/static`) so they never invalidate the
//! ordinary build cache. `--debug` builds the dev profile (fast; used by the tests).

use crate::util::{cargo, root, run as sh};
use anyhow::{bail, Context, Result};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

const TARGET: &str = "x86_64-unknown-linux-gnu";
const DEFAULT_IMAGE: &str = "fargate-defender:latest";

/// What to build, from the command line.
struct Options {
    debug: bool,
    image: Option<String>,
}

fn parse(args: &[String]) -> Result<Options> {
    let mut opts = Options {
        debug: false,
        image: None,
    };
    let mut it = args.iter().peekable();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--debug" => opts.debug = true,
            "--image" => {
                let tag = match it.peek() {
                    Some(next) if !next.starts_with("--") => it.next().cloned(),
                    _ => None,
                };
                opts.image = Some(tag.unwrap_or_else(|| DEFAULT_IMAGE.to_string()));
            }
            other => {
                bail!("package: unknown argument {other:?}; expected --debug or --image [TAG]")
            }
        }
    }
    Ok(opts)
}

pub fn run(args: &[String]) -> Result<()> {
    let opts = parse(args)?;
    let target_dir = root().join("target").join("static");
    let profile = if opts.debug { "dev" } else { "release" };
    sh(cargo()
        .args(["build", "--profile", profile, "--target", TARGET])
        .args(["--package", "lambda-console", "--package", "defender"])
        .env("CARGO_TARGET_DIR", &target_dir)
        .env("RUSTFLAGS", "-C target-feature=+crt-static"))?;
    let out = target_dir
        .join(TARGET)
        .join(if opts.debug { "debug" } else { "release" });

    let console = out.join("lambda-console");
    require_static(&console)?;
    let zip_path = root().join("target/lambda/lambda-console.zip");
    write_bootstrap_zip(&console, &zip_path)?;
    eprintln!("xtask: wrote {}", zip_path.display());

    let defender = out.join("defender");
    require_static(&defender)?;
    let context = root().join("target/package/defender-image");
    std::fs::create_dir_all(&context).context("creating target/package/defender-image")?;
    std::fs::copy(&defender, context.join("defender")).context("copying the defender")?;
    std::fs::copy(
        root().join("infra/defender-image/Dockerfile"),
        context.join("Dockerfile"),
    )
    .context("copying infra/defender-image/Dockerfile")?;
    eprintln!("xtask: defender image context in {}", context.display());

    if let Some(tag) = opts.image {
        sh(Command::new("docker")
            .args(["build", "--quiet", "--tag", &tag])
            .arg(&context)
            .env("DOCKER_BUILDKIT", "0"))
        .context("building the defender image (is the Docker Engine running?)")?;
        eprintln!("xtask: built image {tag}");
    }
    Ok(())
}

/// Fails unless `path` is an ELF executable with no program interpreter (statically linked).
fn require_static(path: &Path) -> Result<()> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    match elf_interpreter(&bytes) {
        Ok(None) => Ok(()),
        Ok(Some(interp)) => bail!(
            "{} is dynamically linked (interpreter {interp}); it must be static",
            path.display()
        ),
        Err(why) => bail!("{} is not a usable ELF executable: {why}", path.display()),
    }
}

/// The `PT_INTERP` program interpreter of a 64-bit little-endian ELF file, if it has one.
pub fn elf_interpreter(bytes: &[u8]) -> Result<Option<String>, String> {
    const PT_INTERP: u32 = 3;
    if bytes.len() < 64 || &bytes[..4] != b"\x7fELF" {
        return Err("no ELF header".into());
    }
    if bytes[4] != 2 || bytes[5] != 1 {
        return Err("not a 64-bit little-endian ELF file".into());
    }
    let u16_at = |o: usize| -> Result<u16, String> {
        bytes
            .get(o..o + 2)
            .map(|b| u16::from_le_bytes([b[0], b[1]]))
            .ok_or_else(|| "truncated".to_string())
    };
    let u32_at = |o: usize| -> Result<u32, String> {
        bytes
            .get(o..o + 4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .ok_or_else(|| "truncated".to_string())
    };
    let u64_at = |o: usize| -> Result<u64, String> {
        let b = bytes.get(o..o + 8).ok_or_else(|| "truncated".to_string())?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    };
    let phoff = usize::try_from(u64_at(0x20)?).map_err(|e| e.to_string())?;
    let phentsize = usize::from(u16_at(0x36)?);
    let phnum = usize::from(u16_at(0x38)?);
    for i in 0..phnum {
        let ph = phoff + i * phentsize;
        if u32_at(ph)? == PT_INTERP {
            let off = usize::try_from(u64_at(ph + 8)?).map_err(|e| e.to_string())?;
            let size = usize::try_from(u64_at(ph + 32)?).map_err(|e| e.to_string())?;
            let raw = bytes.get(off..off + size).ok_or("truncated interpreter")?;
            let name = String::from_utf8_lossy(raw)
                .trim_end_matches('\0')
                .to_string();
            return Ok(Some(name));
        }
    }
    Ok(None)
}

/// Writes a zip whose only entry is `bootstrap` (mode 0755), the Lambda custom-runtime layout.
fn write_bootstrap_zip(binary: &Path, zip_path: &PathBuf) -> Result<()> {
    if let Some(dir) = zip_path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let data = std::fs::read(binary).with_context(|| format!("reading {}", binary.display()))?;
    let tmp = zip_path.with_extension("zip.tmp");
    let file =
        std::fs::File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
    let mut zip = zip::ZipWriter::new(file);
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .unix_permissions(0o755);
    zip.start_file("bootstrap", options)
        .context("starting the bootstrap entry")?;
    zip.write_all(&data)
        .context("writing the bootstrap entry")?;
    zip.finish().context("finishing the zip")?;
    std::fs::rename(&tmp, zip_path).with_context(|| format!("writing {}", zip_path.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::elf_interpreter;

    #[test]
    fn a_dynamic_system_binary_has_an_interpreter() {
        let bytes = std::fs::read("/bin/sh").expect("/bin/sh exists");
        let interp = elf_interpreter(&bytes).expect("valid ELF");
        assert!(interp.is_some_and(|i| i.contains("ld-linux")));
    }

    #[test]
    fn garbage_is_not_elf() {
        assert_eq!(elf_interpreter(b"#!/bin/sh\n"), Err("no ELF header".into()));
        let mut truncated = b"\x7fELF\x02\x01".to_vec();
        truncated.resize(64, 0);
        truncated[0x38] = 1; // one program header, beyond the end of the file
        truncated[0x20] = 200;
        assert_eq!(elf_interpreter(&truncated), Err("truncated".into()));
    }
}
