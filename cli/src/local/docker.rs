//! [`Docker`]: the `docker` CLI, run through `std::process` (no SDK, no daemon socket
//! handling here). Nothing is ever pulled: `create` uses `--pull never`.

use super::error::LocalError;
use std::ffi::OsString;
use std::path::Path;
use std::process::{Child, Command, Stdio};

/// The docker command (`docker`, or `$DEPLOY_PROTECTED_DOCKER`).
#[derive(Debug, Clone)]
pub struct Docker {
    program: OsString,
}

/// What `docker inspect` says about a container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct State {
    /// created, running, exited, ...
    pub status: String,
    /// The exit code once exited.
    pub exit_code: i32,
    /// starting, healthy, unhealthy (empty without a health check).
    pub health: String,
}

impl Docker {
    /// Finds docker and checks that the engine answers.
    pub fn connect() -> Result<Docker, LocalError> {
        let program =
            std::env::var_os("DEPLOY_PROTECTED_DOCKER").unwrap_or_else(|| OsString::from("docker"));
        let docker = Docker { program };
        match docker.output(&["version", "--format", "{{.Server.Version}}"]) {
            Ok(v) if !v.is_empty() => Ok(docker),
            Ok(_) => Err(LocalError::DockerUnavailable(
                "`docker version` shows no server".into(),
            )),
            Err(LocalError::Docker { message, .. }) => Err(LocalError::DockerUnavailable(message)),
            Err(e) => Err(e),
        }
    }

    /// A docker command in its own process group: the terminal's Ctrl-C reaches only
    /// deploy-protected, which then stops the task in order (a `docker stop` or `inspect`
    /// under way is not killed by the same keystroke).
    fn command(&self) -> Command {
        use std::os::unix::process::CommandExt;
        let mut c = Command::new(&self.program);
        c.stdin(Stdio::null()).process_group(0);
        c
    }

    /// Runs `docker ARGS`, returns its trimmed stdout, or its stderr as the error.
    pub fn output(&self, args: &[&str]) -> Result<String, LocalError> {
        self.output_of(self.command().args(args), args)
    }

    fn output_of(&self, cmd: &mut Command, args: &[&str]) -> Result<String, LocalError> {
        let what = args.iter().take(2).copied().collect::<Vec<_>>().join(" ");
        let out = cmd.output().map_err(|e| LocalError::Docker {
            command: what.clone(),
            message: format!("cannot run {:?}: {e}", self.program),
        })?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
        } else {
            Err(LocalError::Docker {
                command: what,
                message: String::from_utf8_lossy(&out.stderr).trim().to_string(),
            })
        }
    }

    /// Whether the engine has `image`.
    pub fn image_exists(&self, image: &str) -> bool {
        self.output(&["image", "inspect", "--format", "{{.Id}}", image])
            .is_ok()
    }

    /// The engine's architecture (`x86_64`, `aarch64`...).
    pub fn server_arch(&self) -> Result<String, LocalError> {
        self.output(&["version", "--format", "{{.Server.Arch}}"])
    }

    /// Builds `dir` as `tag` with the legacy builder (offline, no BuildKit images needed).
    pub fn build(&self, dir: &Path, tag: &str) -> Result<(), LocalError> {
        let dir_s = dir.to_string_lossy().into_owned();
        let args = ["build", "--quiet", "--tag", tag, &dir_s];
        self.output_of(self.command().args(args).env("DOCKER_BUILDKIT", "0"), &args)
            .map(|_| ())
    }

    /// Creates a container (never pulling); `env` holds the secret values docker reads for
    /// the `-e NAME` flags, so they never appear on a command line.
    pub fn create(&self, args: &[String], env: &[(String, String)]) -> Result<String, LocalError> {
        let mut cmd = self.command();
        cmd.args(["create", "--pull", "never"]).args(args);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let name = args
            .iter()
            .position(|a| a == "--name")
            .and_then(|i| args.get(i + 1))
            .map(String::as_str)
            .unwrap_or("");
        self.output_of(&mut cmd, &["create", name])
    }

    /// `docker start --attach NAME` with piped output (in its own process group, see
    /// [`Docker::command`]).
    pub fn start_attached(&self, name: &str) -> Result<Child, LocalError> {
        self.command()
            .args(["start", "--attach", name])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| LocalError::Docker {
                command: format!("start {name}"),
                message: format!("cannot run {:?}: {e}", self.program),
            })
    }

    /// The container's state.
    pub fn state(&self, name: &str) -> Result<State, LocalError> {
        let text = self.output(&[
            "inspect",
            "--format",
            "{{.State.Status}} {{.State.ExitCode}} {{if .State.Health}}{{.State.Health.Status}}{{end}}",
            name,
        ])?;
        let mut parts = text.split_whitespace();
        let status = parts.next().unwrap_or("").to_string();
        let exit_code = parts.next().and_then(|c| c.parse().ok()).unwrap_or(-1);
        let health = parts.next().unwrap_or("").to_string();
        Ok(State {
            status,
            exit_code,
            health,
        })
    }

    /// `docker stop --time SECS NAME`: SIGTERM (or the image's STOPSIGNAL), SIGKILL after.
    pub fn stop(&self, name: &str, secs: u32) -> Result<(), LocalError> {
        self.output(&["stop", "--time", &secs.to_string(), name])
            .map(|_| ())
    }

    /// `docker kill` every running container labelled `label=value` (best effort, returns
    /// what failed).
    pub fn kill_labelled(&self, label: &str) -> Vec<LocalError> {
        let filter = format!("label={label}");
        match self.output(&["ps", "--quiet", "--filter", &filter]) {
            Ok(ids) if !ids.is_empty() => {
                let mut args = vec!["kill"];
                args.extend(ids.lines());
                self.output(&args).err().into_iter().collect()
            }
            Ok(_) => Vec::new(),
            Err(e) => vec![e],
        }
    }

    /// Removes every container and volume labelled `label=value` (best effort, returns what
    /// failed).
    pub fn remove_labelled(&self, label: &str) -> Vec<LocalError> {
        let mut failures = Vec::new();
        let filter = format!("label={label}");
        match self.output(&["ps", "--all", "--quiet", "--filter", &filter]) {
            Ok(ids) if !ids.is_empty() => {
                let mut args = vec!["rm", "--force", "--volumes"];
                args.extend(ids.lines());
                if let Err(e) = self.output(&args) {
                    failures.push(e);
                }
            }
            Ok(_) => {}
            Err(e) => failures.push(e),
        }
        match self.output(&["volume", "ls", "--quiet", "--filter", &filter]) {
            Ok(names) if !names.is_empty() => {
                let mut args = vec!["volume", "rm", "--force"];
                args.extend(names.lines());
                if let Err(e) = self.output(&args) {
                    failures.push(e);
                }
            }
            Ok(_) => {}
            Err(e) => failures.push(e),
        }
        failures
    }
}
