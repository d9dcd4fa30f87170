//! The console's API against its own OpenAPI document, with Schemathesis (all checks).
//!
//! Starts `lambda-console serve` on a free loopback port with an empty data directory and a
//! known admin, logs in, saves the document (`GET /api/v1/openapi.json` needs a user) and makes
//! a defender credential for the `/api/v1/defender/*` routes, then runs Schemathesis with
//! `xtask/schemathesis/schemathesis.toml` (per-scheme auth: users' session token, the defender
//! token) and `hooks.py` (the rules OpenAPI cannot state). A bounded number of examples per
//! operation, a fixed seed and a wall-clock bound; any finding fails the run, and the command
//! that reproduces it is printed.

use crate::util::{root, target_dir};
use anyhow::{bail, Context, Result};
use serde_json::{json, Value};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Generated cases per operation and phase.
const MAX_EXAMPLES: u32 = 50;
/// The seed of the generated cases (`API_FUZZ_SEED` overrides it).
const SEED: u64 = 1;
/// The whole Schemathesis run must end within this.
const WALL_CLOCK: Duration = Duration::from_secs(240);
const ADMIN: &str = "admin";
const PASSWORD: &str = "api-fuzz-password-1";

/// Kills the child on drop.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> Result<u16> {
    let l = TcpListener::bind("127.0.0.1:0").context("finding a free loopback port")?;
    Ok(l.local_addr()?.port())
}

fn wait_ready(base: &str) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    while ureq::get(&format!("{base}/api/v1/_ping")).call().is_err() {
        if Instant::now() > deadline {
            bail!("the console at {base} did not answer /api/v1/_ping within 30 s");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(())
}

fn post(base: &str, path: &str, bearer: Option<&str>, body: Value) -> Result<Value> {
    let mut req = ureq::post(&format!("{base}{path}"));
    if let Some(t) = bearer {
        req = req.set("Authorization", &format!("Bearer {t}"));
    }
    req.send_json(body)
        .with_context(|| format!("POST {path}"))?
        .into_json()
        .with_context(|| format!("POST {path}: reading the answer"))
}

fn field(v: &Value, name: &str) -> Result<String> {
    v[name]
        .as_str()
        .map(String::from)
        .with_context(|| format!("no {name} in {v}"))
}

/// Runs Schemathesis from the venv `bin` against a fresh local console.
pub fn run(venv_bin: &Path) -> Result<()> {
    let dir = target_dir().join("api-fuzz");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let port = free_port()?;
    let base = format!("http://127.0.0.1:{port}");
    let log = std::fs::File::create(dir.join("console.log")).context("creating console.log")?;
    let _console = Running(
        Command::new(target_dir().join("debug").join("lambda-console"))
            .args([
                "serve",
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--data-dir",
            ])
            .arg(dir.join("data"))
            .env("CONSOLE_ADMIN_USER", ADMIN)
            .env("CONSOLE_ADMIN_PASSWORD", PASSWORD)
            // Generated logins fail by the thousand; the admin must not be locked out.
            .env("CONSOLE_LOGIN_FAILURES_PER_USER", "1000")
            .env("CONSOLE_LOGIN_FAILURES_PER_ADDRESS", "100000")
            .env("CONSOLE_NEW_DEFENDERS_PER_CREDENTIAL", "1000000")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .context("starting lambda-console")?,
    );
    wait_ready(&base)?;
    let session = post(
        &base,
        "/api/v1/authenticate",
        None,
        json!({"username": ADMIN, "password": PASSWORD}),
    )?;
    let token = field(&session, "token")?;
    let document: Value = ureq::get(&format!("{base}/api/v1/openapi.json"))
        .set("Authorization", &format!("Bearer {token}"))
        .call()
        .context("GET /api/v1/openapi.json")?
        .into_json()
        .context("reading the OpenAPI document")?;
    let spec = dir.join("openapi.json");
    std::fs::write(&spec, serde_json::to_vec_pretty(&document)?)
        .with_context(|| format!("writing {}", spec.display()))?;
    let bundle = post(
        &base,
        "/api/v1/defenders/install-bundle",
        Some(&token),
        json!({"name": "api-fuzz"}),
    )?;
    let defender_token = field(&bundle, "token")?;

    let seed = std::env::var("API_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(SEED);
    let config = root().join("xtask/schemathesis/schemathesis.toml");
    let mut st = Command::new(venv_bin.join("schemathesis"));
    // Its own state (.schemathesis/) goes beside the run's files, not into the work tree.
    st.current_dir(&dir)
        .arg("--config-file")
        .arg(&config)
        .arg("run")
        .arg(&spec)
        // Every check is on by default (`--checks` is not given, so that the config file's
        // per-operation settings take effect).
        .args(["--url", &base, "--no-color"])
        .args(["--max-examples", &MAX_EXAMPLES.to_string()])
        .args(["--seed", &seed.to_string()])
        .args(["--generation-database", "none"])
        .env("SCHEMATHESIS_HOOKS", "hooks")
        .env("PYTHONPATH", root().join("xtask/schemathesis"))
        .env("API_FUZZ_USER", ADMIN)
        .env("API_FUZZ_PASSWORD", PASSWORD)
        .env("API_FUZZ_DEFENDER_TOKEN", &defender_token);
    let shown = format!(
        "{} --config-file {} run {} --url {base} --max-examples {MAX_EXAMPLES} \
         --seed {seed} --generation-database none (with SCHEMATHESIS_HOOKS=hooks \
         PYTHONPATH=xtask/schemathesis and a console as in xtask/src/api_fuzz.rs)",
        venv_bin.join("schemathesis").display(),
        config.display(),
        spec.display()
    );
    eprintln!("xtask: $ {shown}");
    let start = Instant::now();
    let mut child = st.spawn().context("starting schemathesis")?;
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if start.elapsed() > WALL_CLOCK {
            let _ = child.kill();
            let _ = child.wait();
            bail!(
                "schemathesis ran longer than {WALL_CLOCK:?}; reproduce with: {shown} \
                 (console log: {})",
                dir.join("console.log").display()
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    eprintln!(
        "xtask: schemathesis took {:.0} s",
        start.elapsed().as_secs_f64()
    );
    if !status.success() {
        bail!(
            "schemathesis found the API and its OpenAPI document disagreeing ({status}); the \
             failures are above. Reproduce with `cargo xtask test --api-fuzz` or: {shown}"
        );
    }
    Ok(())
}

/// The venv's `bin` directory holding `schemathesis`.
pub fn venv_bin(moto_server: &Path) -> PathBuf {
    moto_server
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}
