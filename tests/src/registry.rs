//! A real OCI registry for one test: Debian's `docker-registry` (the CNCF distribution
//! registry), installed with apt-get when it is missing, started on a free 127.0.0.1 port with
//! a storage directory of its own, killed (and its storage removed) on drop. Docker talks plain
//! HTTP to it, as to any registry on 127.0.0.0/8.

use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Where Debian's package puts the registry.
pub const REGISTRY_BINARY: &str = "/usr/bin/docker-registry";

/// Why the registry could not be started.
#[derive(Debug)]
pub struct RegistryStartError(pub String);

impl std::fmt::Display for RegistryStartError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for RegistryStartError {}

/// A running registry. Dropping it kills the process and removes its storage.
#[derive(Debug)]
pub struct LocalRegistry {
    child: Child,
    addr: SocketAddr,
    dir: PathBuf,
}

/// Installs Debian's `docker-registry` when it is missing (`apt-get install`, after an
/// `apt-get update` if the first try fails).
pub fn ensure_installed() -> Result<PathBuf, RegistryStartError> {
    // Tests run in parallel; dpkg takes one installer at a time.
    static INSTALL: Mutex<()> = Mutex::new(());
    let _one_at_a_time = INSTALL
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let binary = PathBuf::from(REGISTRY_BINARY);
    if binary.exists() {
        return Ok(binary);
    }
    let install = || {
        Command::new("apt-get")
            .args([
                "install",
                "-y",
                "--no-install-recommends",
                "docker-registry",
            ])
            .env("DEBIAN_FRONTEND", "noninteractive")
            .output()
    };
    let failed = |what: &str, out: std::io::Result<std::process::Output>| match out {
        Ok(o) if o.status.success() => None,
        Ok(o) => Some(format!(
            "{what} failed ({}): {}",
            o.status,
            String::from_utf8_lossy(&o.stderr).trim()
        )),
        Err(e) => Some(format!("{what} could not run: {e}")),
    };
    if let Some(first) = failed("apt-get install docker-registry", install()) {
        let update = Command::new("apt-get")
            .arg("update")
            .env("DEBIAN_FRONTEND", "noninteractive")
            .output();
        if let Some(e) = failed("apt-get update", update)
            .or_else(|| failed("apt-get install docker-registry", install()))
        {
            return Err(RegistryStartError(format!(
                "the registry tests need Debian's docker-registry package at {REGISTRY_BINARY} \
                 and could not install it (as root: apt-get install docker-registry): {first}; \
                 then {e}"
            )));
        }
    }
    if binary.exists() {
        Ok(binary)
    } else {
        Err(RegistryStartError(format!(
            "apt-get installed docker-registry but {REGISTRY_BINARY} is missing"
        )))
    }
}

impl LocalRegistry {
    /// Installs (when needed) and starts a registry, waiting up to 30 s until it accepts
    /// connections.
    pub fn start() -> Result<LocalRegistry, RegistryStartError> {
        let binary = ensure_installed()?;
        let port = free_port()?;
        let dir = std::env::temp_dir().join(format!(
            "fargate-defender-registry-{}-{port}",
            std::process::id()
        ));
        std::fs::create_dir_all(dir.join("data"))
            .map_err(|e| RegistryStartError(format!("cannot create {}: {e}", dir.display())))?;
        let config = dir.join("config.yml");
        std::fs::write(&config, config_yaml(&dir.join("data"), port))
            .map_err(|e| RegistryStartError(format!("cannot write {}: {e}", config.display())))?;
        let mut child = Command::new(&binary)
            .arg("serve")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| {
                RegistryStartError(format!("could not start {}: {e}", binary.display()))
            })?;
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                return Ok(LocalRegistry { child, addr, dir });
            }
            if let Ok(Some(status)) = child.try_wait() {
                let _ = std::fs::remove_dir_all(&dir);
                return Err(RegistryStartError(format!(
                    "docker-registry exited early: {status}"
                )));
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                let _ = std::fs::remove_dir_all(&dir);
                return Err(RegistryStartError(
                    "docker-registry did not accept connections within 30 s".to_string(),
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// `127.0.0.1:PORT`, the registry part of image references.
    pub fn host(&self) -> String {
        self.addr.to_string()
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for LocalRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn config_yaml(storage: &Path, port: u16) -> String {
    format!(
        "version: 0.1\n\
         log:\n  level: error\n\
         storage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\n\
         http:\n  addr: 127.0.0.1:{port}\n",
        storage.display()
    )
}

fn free_port() -> Result<u16, RegistryStartError> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| RegistryStartError(format!("no free loopback port: {e}")))
}
