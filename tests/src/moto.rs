//! A moto server started for one test, on a free loopback port, stopped on drop.

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Why a moto server could not be started.
#[derive(Debug)]
pub struct MotoStartError(pub String);

impl std::fmt::Display for MotoStartError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for MotoStartError {}

/// A running moto server. Dropping it kills the process.
#[derive(Debug)]
pub struct MotoServer {
    child: Child,
    addr: SocketAddr,
}

/// Where the `moto_server` executable is: `$MOTO_SERVER`, else the venv `cargo xtask test` makes.
pub fn moto_server_path() -> PathBuf {
    if let Some(p) = std::env::var_os("MOTO_SERVER") {
        return PathBuf::from(p);
    }
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let root = manifest.parent().map(PathBuf::from).unwrap_or(manifest);
    root.join("target/venv/bin/moto_server")
}

impl MotoServer {
    /// Starts moto server on 127.0.0.1 and waits (up to 30 s) until it accepts connections.
    /// `env` is passed to the server (e.g. `MOTO_ECS_SERVICE_RUNNING=1`).
    pub fn start(env: &[(&str, &str)]) -> Result<MotoServer, MotoStartError> {
        let path = moto_server_path();
        if !path.exists() {
            return Err(MotoStartError(format!(
                "moto server not found at {}: run the tests with `cargo xtask test`, which \
                 installs it into target/venv (or set MOTO_SERVER to its path)",
                path.display()
            )));
        }
        let port = free_port()?;
        let mut cmd = Command::new(&path);
        cmd.args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd
            .spawn()
            .map_err(|e| MotoStartError(format!("could not start {}: {e}", path.display())))?;
        // Drain stderr so the server never blocks on a full pipe.
        if let Some(err) = child.stderr.take() {
            std::thread::spawn(move || {
                for line in BufReader::new(err).lines().map_while(Result::ok) {
                    if std::env::var_os("MOTO_LOG").is_some() {
                        eprintln!("moto: {line}");
                    }
                }
            });
        }
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                return Ok(MotoServer { child, addr });
            }
            if let Ok(Some(status)) = child.try_wait() {
                return Err(MotoStartError(format!(
                    "moto server exited early: {status}"
                )));
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                return Err(MotoStartError(
                    "moto server did not accept connections within 30 s".to_string(),
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The endpoint URL to give the AWS SDK (`http://127.0.0.1:PORT`).
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for MotoServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> Result<u16, MotoStartError> {
    let listener = TcpListener::bind("127.0.0.1:0")
        .map_err(|e| MotoStartError(format!("no free loopback port: {e}")))?;
    listener
        .local_addr()
        .map(|a| a.port())
        .map_err(|e| MotoStartError(format!("no free loopback port: {e}")))
}
