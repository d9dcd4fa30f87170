//! `cargo xtask package [--debug] [--image [TAG]]`: the deployable artifacts.
//!
//! - `target/lambda/lambda-console.zip`: the console for AWS Lambda (`provided.al2023`), whose only
//!   entry is `bootstrap`, a statically linked x86_64 executable (so the runtime's glibc version
//!   does not matter).
//! - `target/package/defender-image/`: the static `defender` and the sidecar image's Dockerfile;
//!   with `--image` the image is built with the local Docker Engine (default tag
//!   `fargate-defender:VERSION`, the console's default defender image).
//!
//! Static builds go to their own target directory (`target/static`) so they never invalidate the
//! ordinary build cache. `--debug` builds the dev profile (fast; used by the tests).

use crate::util::{cargo, root, run as sh};
use anyhow::{bail, Context, Result};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use xtask::elf::elf_interpreter;

const TARGET: &str = "x86_64-unknown-linux-gnu";

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
                opts.image = Some(tag.unwrap_or_else(protect::embed::default_defender_image));
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
