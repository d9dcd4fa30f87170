//! Runs the containers of a protected task definition on this machine the way ECS would: each
//! from its own definition in the transformed JSON (entryPoint + command, environment, the
//! `defender` volume at its mount point), nothing assembled by hand. What the task does not say
//! comes from the "image": the files the demo puts on the container's `PATH`.

use anyhow::{bail, Context, Result};
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// The task's volume the transform adds, shared by the installer and the app containers.
const VOLUME: &str = "defender";

/// A child process killed (if still running) when dropped.
pub struct Running(pub Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The container definition named `name` in a task definition.
pub fn container<'a>(task: &'a Value, name: &str) -> Result<&'a Value> {
    task["containerDefinitions"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["name"] == name))
        .with_context(|| format!("the protected task has no container {name}"))
}

/// The value of `name` in a container's `environment`.
pub fn env<'a>(def: &'a Value, name: &str) -> Option<&'a str> {
    def["environment"]
        .as_array()?
        .iter()
        .find(|v| v["name"] == name)?["value"]
        .as_str()
}

fn strings(v: &Value) -> impl Iterator<Item = String> + '_ {
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s.as_str().map(String::from))
}

/// What the container runs: its entryPoint, then its command, with paths inside the
/// `defender` volume's mount point moved to `volume` (the volume's directory here).
fn argv(def: &Value, volume: &Path) -> Result<Vec<String>> {
    let name = def["name"].as_str().unwrap_or("?");
    let mut argv: Vec<String> = strings(&def["entryPoint"]).collect();
    argv.extend(strings(&def["command"]));
    if argv.is_empty() {
        bail!("container {name} has neither entryPoint nor command");
    }
    let mount = def["mountPoints"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|m| m["sourceVolume"] == VOLUME)
        .and_then(|m| m["containerPath"].as_str())
        .with_context(|| format!("container {name} does not mount the {VOLUME} volume"))?;
    let host = volume.display().to_string();
    Ok(argv
        .into_iter()
        .map(|a| match a.strip_prefix(mount) {
            Some(rest) if rest.is_empty() || rest.starts_with('/') => format!("{host}{rest}"),
            _ => a,
        })
        .collect())
}

/// Runs the task's `defender` installer container to completion, as ECS does before the app
/// containers that depend on it (`dependsOn ... SUCCESS`). Its image holds one file,
/// `/defender`: this build's defender.
pub fn run_installer(task: &Value, volume: &Path, defender: &Path) -> Result<()> {
    let def = container(task, VOLUME)?;
    let argv = argv(def, volume)?;
    if argv[0] != "/defender" {
        bail!("the defender container runs {argv:?}, not the image's /defender");
    }
    println!(
        "defender ({}): {}",
        def["image"].as_str().unwrap_or("?"),
        argv.join(" ")
    );
    let status = Command::new(defender)
        .args(&argv[1..])
        .status()
        .context("running the defender installer")?;
    if !status.success() {
        bail!("the defender installer container failed: {status}");
    }
    Ok(())
}

/// Starts an app container: its entryPoint + command and its environment from the task, the
/// image's files first on `PATH`, its output prefixed with its name. Its defender's state goes
/// into the container's own directory (on Fargate each container has its own `/tmp`, here
/// `/tmp` is the machine's).
pub fn start(def: &Value, volume: &Path, dir: &Path, image_path: &Path) -> Result<Running> {
    let name = def["name"].as_str().unwrap_or("app").to_string();
    if let Some(secrets) = def["secrets"].as_array().filter(|s| !s.is_empty()) {
        let names: Vec<&str> = secrets.iter().filter_map(|s| s["name"].as_str()).collect();
        bail!(
            "container {name} takes {} from secrets (Secrets Manager or SSM), which the demo \
             cannot read; transform without tokenSecretArn",
            names.join(", ")
        );
    }
    let argv = argv(def, volume)?;
    let root = dir.join(format!("{name}-root"));
    std::fs::create_dir_all(&root).with_context(|| format!("creating {}", root.display()))?;
    let mut cmd = Command::new(&argv[0]);
    cmd.args(&argv[1..])
        .current_dir(&root)
        .env_clear()
        .env(
            "PATH",
            format!("{}:/bin:/usr/bin:/sbin:/usr/sbin", image_path.display()),
        )
        .env("DEFENDER_STATE_DIR", root.join("tmp-defender"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for var in def["environment"].as_array().into_iter().flatten() {
        if let (Some(k), Some(v)) = (var["name"].as_str(), var["value"].as_str()) {
            cmd.env(k, v);
        }
    }
    let mut child = cmd
        .spawn()
        .with_context(|| format!("starting container {name} ({})", argv[0]))?;
    let streams = [
        child
            .stdout
            .take()
            .map(|s| Box::new(s) as Box<dyn std::io::Read + Send>),
        child
            .stderr
            .take()
            .map(|s| Box::new(s) as Box<dyn std::io::Read + Send>),
    ];
    for stream in streams.into_iter().flatten() {
        let name = name.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stream).lines().map_while(Result::ok) {
                println!("[{name}] {line}");
            }
        });
    }
    Ok(Running(child))
}

/// Writes an executable script (a file of a demo "image").
pub fn write_script(path: &Path, text: &str) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))
        .with_context(|| format!("making {} executable", path.display()))
}

/// Stops a container as ECS does: SIGTERM, then SIGKILL after a grace period.
pub fn stop(child: &mut Child) -> Result<ExitStatus> {
    let pid = libc::pid_t::try_from(child.id()).context("pid out of range")?;
    // SAFETY: kill(2) on the pid of a child we spawned and have not reaped; no memory is touched.
    unsafe {
        libc::kill(pid, libc::SIGTERM);
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(status);
        }
        if Instant::now() > deadline {
            child.kill()?;
            return Ok(child.wait()?);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A directory under `dir` for an image's files.
pub fn image_dir(dir: &Path, name: &str) -> Result<PathBuf> {
    let path = dir.join(format!("image-{name}"));
    std::fs::create_dir_all(&path).with_context(|| format!("creating {}", path.display()))?;
    Ok(path)
}
