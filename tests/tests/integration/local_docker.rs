//! `deploy-protected local` on the real Docker Engine of this machine, with images built here
//! `FROM scratch` (nothing pulled): the defender sidecar image from `cargo xtask package
//! --image`, and the seed's sample app (host dash, mkdir, wget, cat with their shared
//! libraries, and `entry.sh`).
//!
//! 1. The seed's task, protected by `protect::embed`, runs as on Fargate: sidecar first
//!    (dependsOn SUCCESS), shared `defender` volume, `--cap-drop ALL --cap-add SYS_PTRACE`,
//!    the wrapped entry point; the defender prevents `mkdir` and audits the yahoo.com lookup.
//! 2. A three-container task proves the start order, the SUCCESS condition on a task volume
//!    and one shared localhost (the app reaches a listener of another container on
//!    127.0.0.1).
//! 3. A SUCCESS dependency that fails keeps the dependent from starting.
//! 4. Ctrl-C: the binary, on a long-running two-container task with a volume, gets SIGINT
//!    as a terminal sends it (to its process group) once its containers run; it stops the
//!    task (the containers see SIGTERM and their last lines are streamed), removes every
//!    container, the network holder and the volume, and exits 130. A second Ctrl-C kills a
//!    container that ignores SIGTERM instead of waiting for its stopTimeout.
//!
//! Without a Docker daemon the tests fail under CI (`CI` set) and otherwise say loudly that
//! they did not run.

// Test helpers: a failed step is a failed test.
#![allow(clippy::unwrap_used)]

use deploy_protected::local::docker::Docker;
use deploy_protected::local::plan::{Naming, Secrets};
use deploy_protected::local::run::{run_task, LogSink, RunOptions};
use deploy_protected::local::task::TaskDef;
use serde_json::json;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

pub(crate) const DEFENDER_IMAGE: &str = "fargate-defender:test";
pub(crate) const APP_IMAGE: &str = "deploy-protected-local-sample:test";

pub(crate) fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

/// `target/<profile>/deploy-protected`, next to this test binary's `deps/` directory.
pub(crate) fn binary() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let bin = exe
        .parent()
        .and_then(Path::parent)
        .expect("test binary lives in target/<profile>/deps")
        .join("deploy-protected");
    assert!(
        bin.is_file(),
        "{} is missing: these tests run the real binary; build it first with `cargo build \
         --workspace --bins` (same CARGO_TARGET_DIR), as `cargo xtask test` does",
        bin.display()
    );
    bin
}

/// The engine, or `None` (after a loud message) outside CI when no daemon answers.
pub(crate) fn docker() -> Option<Docker> {
    match Docker::connect() {
        Ok(d) => Some(d),
        Err(e) if std::env::var_os("CI").is_some() => {
            panic!("CI: the Docker Engine must answer for the local-run tests: {e}")
        }
        Err(e) => {
            eprintln!(
                "\n!!!!! local_docker: NOT RUN: {e}\n!!!!! (these tests run whenever CI is set)\n"
            );
            None
        }
    }
}

/// Builds both images once per test process.
pub(crate) fn images() {
    static BUILT: OnceLock<()> = OnceLock::new();
    BUILT.get_or_init(|| {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = Command::new(cargo)
            .current_dir(root())
            .args(["xtask", "package", "--debug", "--image", DEFENDER_IMAGE])
            .status()
            .expect("cargo xtask package starts");
        assert!(
            status.success(),
            "cargo xtask package --image failed: {status}"
        );
        build_app_image();
    });
}

const ENTRY_SH: &str = r#"#!/bin/dash
# The seed's sample container: mkdir, then an outbound request to yahoo.com.
echo "entry.sh: mkdir test"
mkdir test || echo "entry.sh: mkdir was refused"
if [ -d test ]; then echo "entry.sh: test exists"; else echo "entry.sh: test is missing"; fi
wget -q -T 2 -t 1 -O - http://yahoo.com/ || echo "entry.sh: wget yahoo.com failed"
exit 5
"#;

/// `FROM scratch` + host binaries and the libraries `ldd` lists + entry.sh + the seed policy.
fn build_app_image() {
    let ctx = tempfile::tempdir().unwrap();
    let rootfs = ctx.path().join("rootfs");
    std::fs::create_dir_all(rootfs.join("bin")).unwrap();
    for (host, inside) in [
        ("/usr/bin/dash", "bin/dash"),
        ("/usr/bin/dash", "bin/sh"),
        ("/usr/bin/mkdir", "bin/mkdir"),
        ("/usr/bin/wget", "bin/wget"),
        ("/usr/bin/cat", "bin/cat"),
        ("/usr/bin/sleep", "bin/sleep"),
    ] {
        copy_with_libraries(Path::new(host), &rootfs, inside);
    }
    write_exec(&rootfs.join("bin/entry.sh"), ENTRY_SH);
    std::fs::copy(
        root().join("examples/policy.json"),
        rootfs.join("policy.json"),
    )
    .unwrap();
    std::fs::write(
        ctx.path().join("Dockerfile"),
        "FROM scratch\nCOPY rootfs/ /\n",
    )
    .unwrap();
    let out = Command::new("docker")
        .args(["build", "--quiet", "--tag", APP_IMAGE])
        .arg(ctx.path())
        .env("DOCKER_BUILDKIT", "0")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "building the sample image: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn copy_with_libraries(host: &Path, rootfs: &Path, inside: &str) {
    std::fs::copy(host, rootfs.join(inside))
        .unwrap_or_else(|e| panic!("{}: {e} (the sample image needs it)", host.display()));
    let out = Command::new("ldd").arg(host).output().expect("ldd runs");
    for lib in String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .filter(|w| w.starts_with('/'))
    {
        let dest = rootfs.join(lib.trim_start_matches('/'));
        std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
        std::fs::copy(lib, &dest).unwrap();
    }
}

fn write_exec(path: &Path, text: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// A writer the test reads back.
#[derive(Clone, Default)]
struct Buffer(Arc<Mutex<Vec<u8>>>);

impl Write for Buffer {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Buffer {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

/// Runs `task` and returns (result, stdout, stderr).
fn run(
    docker: &Docker,
    task: &serde_json::Value,
    secrets: &[&str],
) -> (Result<u8, String>, String, String) {
    let task = TaskDef::from_json(&task.to_string()).expect("a valid task");
    let (out, err) = (Buffer::default(), Buffer::default());
    let log = LogSink::new(
        Arc::new(Mutex::new(out.clone())),
        Arc::new(Mutex::new(err.clone())),
    );
    let opts = RunOptions {
        network: "none".into(),
        secrets: Secrets::from_flags(&secrets.iter().map(|s| s.to_string()).collect::<Vec<_>>())
            .unwrap(),
        handle_signals: false,
    };
    let result = run_task(docker, &task, &opts, &log).map_err(|e| e.to_string());
    // Nothing of the run is left behind.
    let label = Naming::new(&task.family, std::process::id()).label();
    for kind in [&["ps", "--all"][..], &["volume", "ls"][..]] {
        let mut args = kind.to_vec();
        args.extend(["--quiet", "--filter"]);
        let filter = format!("label={label}");
        args.push(&filter);
        assert_eq!(
            docker.output(&args).unwrap(),
            "",
            "left behind: docker {kind:?}"
        );
    }
    (result, out.text(), err.text())
}

pub(crate) fn position(text: &str, needle: &str) -> usize {
    text.find(needle)
        .unwrap_or_else(|| panic!("{needle:?} not in the run's output:\n{text}"))
}

#[test]
fn seed_task_protected_runs_locally_and_the_defender_prevents_mkdir() {
    let Some(docker) = docker() else { return };
    images();
    let task = local_protected_seed();
    // The secret has no value locally unless given.
    let (result, _, _) = run(&docker, &task, &[]);
    if std::env::var_os("DEFENDER_TOKEN").is_none() {
        assert!(result
            .unwrap_err()
            .contains("pass --secret DEFENDER_TOKEN=VALUE"));
    }

    let (result, out, err) = run(&docker, &task, &["DEFENDER_TOKEN=local-test-token"]);
    assert_eq!(
        result,
        Ok(5),
        "the essential container's exit code\n{out}\n{err}"
    );
    assert_seed_prevented(&out, &err);
}

/// The seed's task definition protected by `protect::embed`, its app on the sample image
/// built here, the defender told to enforce the seed policy baked into that image (no console
/// here: the URL is a closed port and the audits are spooled).
pub(crate) fn local_protected_seed() -> serde_json::Value {
    let seed: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(root().join("examples/fargate-task.json")).unwrap(),
    )
    .unwrap();
    let options = protect::embed::EmbedOptions {
        console_url: "http://127.0.0.1:9".into(),
        defender_image: DEFENDER_IMAGE.into(),
        token_secret_arn: Some("arn:aws:secretsmanager:us-east-1:123456789012:secret:dt".into()),
        ..Default::default()
    };
    let mut task = protect::embed::embed(&seed, &options)
        .unwrap()
        .task_definition;
    let app = task["containerDefinitions"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|c| c["name"] == "twistlock-fargate-task")
        .unwrap();
    app["image"] = json!(APP_IMAGE);
    let entry = app["entryPoint"].as_array_mut().unwrap();
    assert_eq!(
        entry[..2],
        [json!("/var/lib/defender/defender"), json!("run")]
    );
    entry.splice(2..2, [json!("--policy-file"), json!("/policy.json")]);
    assert_eq!(
        app["linuxParameters"]["capabilities"]["add"],
        json!(["SYS_PTRACE"])
    );
    task
}

/// The seed run's log lines that show the defender at work (stdout, stderr of the run).
pub(crate) fn assert_seed_prevented(out: &str, err: &str) {
    // Sidecar first, its success, then the app.
    let installed = position(
        err,
        "[defender] defender: installed /var/lib/defender/defender",
    );
    let sidecar_done = position(err, "[local] container defender exited with code 0");
    let app_started = position(err, "[local] started container twistlock-fargate-task");
    assert!(
        installed < sidecar_done && sidecar_done < app_started,
        "{err}"
    );
    position(
        err,
        "[twistlock-fargate-task] defender: prevent (sample): /bin/mkdir launched from /bin/dash \
         and is explicitly blocked in the runtime rule. Full command: mkdir test",
    );
    position(
        err,
        "[twistlock-fargate-task] defender: prevent (sample): DNS resolution of suspicious name \
         yahoo.com",
    );
    position(out, "[twistlock-fargate-task] entry.sh: mkdir was refused");
    position(out, "[twistlock-fargate-task] entry.sh: test is missing");
}

fn multi_task(family: &str, init_command: &str) -> serde_json::Value {
    json!({
        "family": family,
        "networkMode": "awsvpc",
        "requiresCompatibilities": ["FARGATE"],
        "containerDefinitions": [
            {
                "name": "app",
                "image": APP_IMAGE,
                "entryPoint": ["/bin/dash", "-c"],
                "command": ["cat /shared/order; wget -S -T 3 -t 1 -O - http://127.0.0.1:8080/ 2>&1; exit 3"],
                "mountPoints": [{"sourceVolume": "shared", "containerPath": "/shared", "readOnly": true}],
                "dependsOn": [
                    {"containerName": "init", "condition": "SUCCESS"},
                    {"containerName": "web", "condition": "START"}
                ]
            },
            {
                "name": "web",
                "image": DEFENDER_IMAGE,
                "essential": false,
                "stopTimeout": 2,
                "entryPoint": ["/defender", "cnaf", "--listen", "127.0.0.1:8080", "--upstream", "127.0.0.1:9"]
            },
            {
                "name": "init",
                "image": APP_IMAGE,
                "essential": false,
                "entryPoint": ["/bin/dash", "-c", init_command],
                "mountPoints": [{"sourceVolume": "shared", "containerPath": "/shared"}]
            }
        ],
        "volumes": [{"name": "shared"}]
    })
}

#[test]
fn containers_start_in_dependency_order_and_share_localhost() {
    let Some(docker) = docker() else { return };
    images();
    let task = multi_task("local-multi", "echo written-by-init > /shared/order");
    let (result, out, err) = run(&docker, &task, &[]);
    assert_eq!(result, Ok(3), "{out}\n{err}");
    let init_done = position(&err, "[local] container init exited with code 0");
    let web_started = position(&err, "[local] started container web");
    let app_started = position(&err, "[local] started container app");
    assert!(
        init_done < app_started && web_started < app_started,
        "{err}"
    );
    // The task volume carried init's file; 127.0.0.1:8080 in the app is web's listener.
    position(&out, "[app] written-by-init");
    position(&out, "[app] Connecting to 127.0.0.1:8080... connected.");
    position(&out, "[app]   HTTP/1.1 502 Bad Gateway");
    // The essential app's exit stopped the rest.
    position(
        &err,
        "[local] essential container app exited: stopping the task",
    );
    position(&err, "[local] container web exited");
}

#[test]
fn a_failed_success_dependency_keeps_the_dependent_from_starting() {
    let Some(docker) = docker() else { return };
    images();
    let (result, out, err) = run(&docker, &multi_task("local-multi-fail", "exit 4"), &[]);
    assert_eq!(
        result,
        Err(
            "container app cannot start: init exited with code 4, and it must succeed \
             (dependsOn SUCCESS)"
                .to_string()
        ),
        "{out}\n{err}"
    );
    assert!(!err.contains("started container app"), "{err}");
}

/// What the binary's run `pid` of `family` left on the engine: containers (by label and by
/// name, the network holder included) and volumes.
fn leftovers(docker: &Docker, family: &str, pid: u32) -> String {
    let naming = Naming::new(family, pid);
    let label = format!("label={}", naming.label());
    let name = format!("name={}", naming.prefix);
    [
        &["ps", "--all", "--quiet", "--filter", &label][..],
        &["ps", "--all", "--quiet", "--filter", &name][..],
        &["volume", "ls", "--quiet", "--filter", &label][..],
        &["volume", "ls", "--quiet", "--filter", &name][..],
    ]
    .iter()
    .map(|args| docker.output(args).unwrap())
    .collect::<Vec<_>>()
    .join("")
}

/// Lines of a child's stream, collected as they come.
fn collect(stream: impl std::io::Read + Send + 'static) -> Arc<Mutex<String>> {
    use std::io::BufRead;
    let text = Arc::new(Mutex::new(String::new()));
    let sink = text.clone();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stream)
            .lines()
            .map_while(Result::ok)
        {
            let mut t = sink.lock().unwrap();
            t.push_str(&line);
            t.push('\n');
        }
    });
    text
}

/// `deploy-protected local --file` running in the background as a terminal's foreground job
/// (its own process group, which a terminal's Ctrl-C goes to as a whole).
struct Background {
    child: std::process::Child,
    out: Arc<Mutex<String>>,
    err: Arc<Mutex<String>>,
    _dir: tempfile::TempDir,
}

impl Background {
    fn start(task: &serde_json::Value) -> Background {
        use std::os::unix::process::CommandExt;
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("task.json");
        std::fs::write(&file, task.to_string()).unwrap();
        let mut child = Command::new(binary())
            .arg("local")
            .arg("--file")
            .arg(&file)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .process_group(0)
            .spawn()
            .unwrap();
        let out = collect(child.stdout.take().unwrap());
        let err = collect(child.stderr.take().unwrap());
        Background {
            child,
            out,
            err,
            _dir: dir,
        }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn logs(&self) -> String {
        format!(
            "--- stdout\n{}--- stderr\n{}",
            self.out.lock().unwrap(),
            self.err.lock().unwrap()
        )
    }

    /// Waits (up to 60 s) until `stream` (stdout or stderr) holds `needle`.
    fn wait_for(&mut self, stderr: bool, needle: &str) {
        let started = std::time::Instant::now();
        loop {
            let stream = if stderr { &self.err } else { &self.out };
            if stream.lock().unwrap().contains(needle) {
                return;
            }
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("exited ({status}) before {needle:?}\n{}", self.logs());
            }
            assert!(
                started.elapsed() < std::time::Duration::from_secs(60),
                "no {needle:?} within 60 s\n{}",
                self.logs()
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }

    /// Ctrl-C: SIGINT to the whole process group.
    fn interrupt(&self) {
        let status = Command::new("kill")
            .args(["-INT", "--", &format!("-{}", self.pid())])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Waits (up to `limit`) for the exit; returns the code, how long it took, and the logs.
    fn wait_exit(mut self, limit: std::time::Duration) -> (Option<i32>, Duration, String, String) {
        let since = std::time::Instant::now();
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            assert!(
                since.elapsed() < limit,
                "still running {limit:?} after the signal\n{}",
                self.logs()
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        };
        let took = since.elapsed();
        // The pipes close with the process; give the readers a moment to finish.
        std::thread::sleep(std::time::Duration::from_millis(200));
        let out = self.out.lock().unwrap().clone();
        let err = self.err.lock().unwrap().clone();
        (status.code(), took, out, err)
    }
}

#[test]
fn ctrl_c_stops_the_task_removes_everything_and_exits_130() {
    let Some(docker) = docker() else { return };
    images();
    let family = "local-ctrl-c";
    let task = json!({
        "family": family,
        "containerDefinitions": [
            {
                "name": "app",
                "image": APP_IMAGE,
                "entryPoint": ["/bin/dash", "-c"],
                "command": ["trap 'echo app got SIGTERM after tick $i; exit 0' TERM; i=0; \
                    while :; do i=$((i+1)); echo tick $i > /shared/last; echo tick $i; \
                    sleep 0.2; done"],
                "mountPoints": [{"sourceVolume": "shared", "containerPath": "/shared"}],
                "dependsOn": [{"containerName": "sidecar", "condition": "START"}],
                "stopTimeout": 5
            },
            {
                "name": "sidecar",
                "image": APP_IMAGE,
                "essential": false,
                "entryPoint": ["/bin/dash", "-c",
                    "trap 'echo sidecar saw $(cat /shared/last); exit 0' TERM; \
                     echo sidecar up; while :; do sleep 0.2; done"],
                "mountPoints": [{"sourceVolume": "shared", "containerPath": "/shared"}],
                "stopTimeout": 5
            }
        ],
        "volumes": [{"name": "shared"}]
    });
    let mut run = Background::start(&task);
    let pid = run.pid();
    run.wait_for(false, "[app] tick 3\n");
    // Everything runs: holder, sidecar, app, and the task volume.
    let naming = Naming::new(family, pid);
    let running = docker
        .output(&[
            "ps",
            "--filter",
            &format!("label={}", naming.label()),
            "--format",
            "{{.Names}}",
        ])
        .unwrap();
    let mut names: Vec<&str> = running.lines().collect();
    names.sort_unstable();
    assert_eq!(
        names,
        [
            naming.container("app"),
            naming.holder(),
            naming.container("sidecar")
        ]
    );
    assert_eq!(
        docker
            .output(&[
                "volume",
                "ls",
                "--quiet",
                "--filter",
                &format!("label={}", naming.label())
            ])
            .unwrap(),
        naming.volume("shared")
    );

    run.interrupt();
    let (code, took, out, err) = run.wait_exit(Duration::from_secs(30));
    assert_eq!(code, Some(130), "{out}\n{err}");
    eprintln!("local_docker: Ctrl-C to exit: {took:?} (two containers, machine shared)");
    position(
        &err,
        "[local] SIGINT: stopping the task (Ctrl-C again kills the containers now)",
    );
    // Both containers got SIGTERM (not killed) and their last words were streamed; the app
    // stopped first (dependents first), so the sidecar saw its last tick.
    let app_stop = position(&out, "[app] app got SIGTERM after tick ");
    let last_tick: String = out[app_stop..]
        .trim_start_matches("[app] app got SIGTERM after tick ")
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    position(&out, &format!("[app] tick {last_tick}\n"));
    position(&out, &format!("[sidecar] sidecar saw tick {last_tick}\n"));
    position(&err, "[local] container app exited with code 0");
    position(&err, "[local] container sidecar exited with code 0");
    assert!(!err.contains("again: killing"), "{err}");
    assert_eq!(leftovers(&docker, family, pid), "", "left behind");
}

#[test]
fn a_second_ctrl_c_kills_a_container_that_ignores_sigterm() {
    let Some(docker) = docker() else { return };
    images();
    let family = "local-ctrl-c-twice";
    // Ignores SIGTERM; the ordered stop would wait its whole stopTimeout.
    let task = json!({
        "family": family,
        "containerDefinitions": [{
            "name": "app",
            "image": APP_IMAGE,
            "entryPoint": ["/bin/dash", "-c",
                "trap 'echo app ignores SIGTERM' TERM; echo up; while :; do sleep 0.2; done"],
            "stopTimeout": 60
        }]
    });
    let mut run = Background::start(&task);
    let pid = run.pid();
    run.wait_for(false, "[app] up\n");
    run.interrupt();
    run.wait_for(false, "[app] app ignores SIGTERM\n");
    run.interrupt();
    let (code, took, out, err) = run.wait_exit(Duration::from_secs(20));
    assert_eq!(code, Some(130), "{out}\n{err}");
    eprintln!("local_docker: second Ctrl-C to exit: {took:?} (stopTimeout 60 s)");
    let first = position(&err, "[local] SIGINT: stopping the task");
    let second = position(&err, "[local] SIGINT again: killing the containers");
    assert!(first < second, "{err}");
    position(&err, "[local] container app exited with code 137");
    assert_eq!(leftovers(&docker, family, pid), "", "left behind");
}
