//! The defender in a Fargate-like container: Docker with `--cap-drop ALL --cap-add SYS_PTRACE`
//! and Docker's default seccomp profile, the defender as PID 1. The image is built by the test
//! from this machine's files (dash, mkdir, sleep and their libraries) plus the defender.

mod common;

use std::path::Path;
use std::process::Command;

use common::DEFENDER;

/// Copies `bin` and the libraries `ldd` lists into `root`, keeping their paths.
fn copy_with_libs(bin: &str, root: &Path) {
    let copy = |src: &str| {
        let dst = root.join(src.trim_start_matches('/'));
        std::fs::create_dir_all(dst.parent().expect("parent")).expect("mkdir");
        std::fs::copy(src, &dst).unwrap_or_else(|e| panic!("copy {src}: {e}"));
    };
    copy(bin);
    let ldd = Command::new("ldd").arg(bin).output().expect("ldd");
    for word in String::from_utf8_lossy(&ldd.stdout).split_whitespace() {
        if word.starts_with('/') {
            copy(word);
        }
    }
}

struct Image {
    tag: String,
}

impl Image {
    fn build() -> Image {
        let dir = std::env::temp_dir().join(format!("defender-docker-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let root = dir.join("rootfs");
        std::fs::create_dir_all(root.join("tmp")).expect("rootfs");
        for bin in [
            "/usr/bin/dash",
            "/usr/bin/mkdir",
            "/usr/bin/sleep",
            "/usr/bin/cat",
        ] {
            copy_with_libs(
                &std::fs::canonicalize(bin).expect("bin").to_string_lossy(),
                &root,
            );
        }
        copy_with_libs(DEFENDER, &root);
        std::fs::rename(
            root.join(DEFENDER.trim_start_matches('/')),
            root.join("defender"),
        )
        .expect("place defender");
        std::os::unix::fs::symlink("dash", root.join("usr/bin/sh")).expect("sh");
        std::os::unix::fs::symlink("usr/bin", root.join("bin")).expect("bin");
        if !root.join("lib64").exists() && root.join("usr/lib64").exists() {
            std::os::unix::fs::symlink("usr/lib64", root.join("lib64")).expect("lib64");
        }
        std::fs::write(
            root.join("policy.json"),
            r#"{"revision":1,"rules":[{"name":"sample","processes":{"effect":"prevent","denied":["mkdir"]}}]}"#,
        )
        .expect("policy");
        std::fs::write(
            root.join("block.json"),
            r#"{"revision":1,"rules":[{"name":"stop","processes":{"effect":"block","denied":["mkdir"]}}]}"#,
        )
        .expect("block policy");
        std::fs::write(dir.join("Dockerfile"), "FROM scratch\nCOPY rootfs /\n")
            .expect("Dockerfile");
        let tag = format!("defender-test:{}", std::process::id());
        let out = Command::new("docker")
            .args(["build", "-q", "-t", &tag])
            .arg(&dir)
            .output()
            .expect("docker build");
        assert!(
            out.status.success(),
            "docker build: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let _ = std::fs::remove_dir_all(&dir);
        Image { tag }
    }

    fn run(&self, caps: &[&str], backend: &str, script: &str) -> (Option<i32>, String, String) {
        self.run_with(caps, backend, "/policy.json", script)
    }

    fn run_with(
        &self,
        caps: &[&str],
        backend: &str,
        policy: &str,
        script: &str,
    ) -> (Option<i32>, String, String) {
        let out = Command::new("docker")
            .args(["run", "--rm", "--cap-drop", "ALL"])
            .args(caps)
            .arg(&self.tag)
            .args([
                "/defender",
                "run",
                "--backend",
                backend,
                "--policy-file",
                policy,
                "--",
            ])
            .args(["/bin/sh", "-c", script])
            .output()
            .expect("docker run");
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }
}

impl Image {
    /// Starts the container in the background; returns its id.
    fn start_detached(&self, caps: &[&str], backend: &str, script: &str) -> String {
        let out = Command::new("docker")
            .args(["run", "-d", "--cap-drop", "ALL"])
            .args(caps)
            .arg(&self.tag)
            .args([
                "/defender",
                "run",
                "--backend",
                backend,
                "--policy-file",
                "/policy.json",
                "--",
            ])
            .args(["/bin/sh", "-c", script])
            .output()
            .expect("docker run -d");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }
}

impl Drop for Image {
    fn drop(&mut self) {
        let _ = Command::new("docker")
            .args(["rmi", "-f", &self.tag])
            .output();
    }
}

#[test]
fn both_backends_enforce_in_a_fargate_like_container_forward_docker_stop_and_refuse_without_sys_ptrace(
) {
    let image = Image::build();
    let with_ptrace = ["--cap-add", "SYS_PTRACE"];
    for backend in ["notify", "ptrace"] {
        let (code, stdout, stderr) = image.run(
            &with_ptrace,
            backend,
            "mkdir /tmp/test; echo after; cat /proc/1/comm; [ -d /tmp/test ] || echo absent",
        );
        assert_eq!(code, Some(0), "{backend}: {stderr}");
        assert_eq!(stdout, "after\ndefender\nabsent\n", "{backend}: {stderr}");
        assert!(
            stderr.contains("mkdir: Permission denied"),
            "{backend}: {stderr}"
        );
        assert!(
            stderr.contains("/usr/bin/mkdir launched from /usr/bin/dash and is explicitly blocked in the runtime rule. Full command: mkdir /tmp/test"),
            "{backend}: {stderr}"
        );
        let (code, _, _) = image.run(&with_ptrace, backend, "exit 5");
        assert_eq!(code, Some(5), "{backend}");
    }
    // block as PID 1: every process of the container is killed, the container exits non-zero.
    for backend in ["notify", "ptrace"] {
        let started = std::time::Instant::now();
        let script = "sleep 30 & mkdir /tmp/x; sleep 30; echo after";
        let (code, stdout, stderr) = image.run_with(&with_ptrace, backend, "/block.json", script);
        assert!(
            started.elapsed() < std::time::Duration::from_secs(20),
            "{backend}"
        );
        assert_eq!(code, Some(137), "{backend}: {stderr}");
        assert_eq!(stdout, "", "{backend}");
        assert!(
            stderr.contains("a block rule was violated"),
            "{backend}: {stderr}"
        );
    }
    // `docker stop` sends SIGTERM to PID 1 from outside the container: forwarded, 128+15.
    for backend in ["notify", "ptrace"] {
        let id = image.start_detached(&with_ptrace, backend, "sleep 60");
        std::thread::sleep(std::time::Duration::from_millis(500));
        let started = std::time::Instant::now();
        let stop = Command::new("docker")
            .args(["stop", "-t", "20", &id])
            .output()
            .expect("docker stop");
        assert!(
            stop.status.success(),
            "{}",
            String::from_utf8_lossy(&stop.stderr)
        );
        assert!(
            started.elapsed() < std::time::Duration::from_secs(15),
            "{backend}: SIGTERM was not forwarded"
        );
        let code = Command::new("docker")
            .args(["inspect", "-f", "{{.State.ExitCode}}", &id])
            .output()
            .expect("inspect");
        let _ = Command::new("docker").args(["rm", "-f", &id]).output();
        assert_eq!(
            String::from_utf8_lossy(&code.stdout).trim(),
            "143",
            "{backend}"
        );
    }
    // Without SYS_PTRACE the defender refuses to run the app unsupervised.
    let (code, stdout, stderr) = image.run(&[], "notify", "echo ran");
    assert_eq!(code, Some(1), "{stderr}");
    assert_eq!(stdout, "");
    assert!(stderr.contains("SYS_PTRACE"), "{stderr}");
}
