//! What a hostile app can learn about its defender: nothing of its settings or credential — not
//! in its environment, not in the defender's `/proc/PID/environ`, `/proc/PID/cmdline` or
//! `/proc/PID/mem` — and it runs without `CAP_SYS_PTRACE`. Real `defender run`, both backends.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};

use common::*;

const CAP_SYS_PTRACE: u32 = 19;

/// A credential no program prints by chance.
fn secret(tag: &str) -> String {
    format!("tok-{tag}-{}-{:x}", std::process::id(), rand_ish())
}

fn rand_ish() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(7)
}

fn hex(s: &str) -> String {
    s.bytes().map(|b| format!("{b:02x}")).collect()
}

/// The lines of `out` between the `--- name` marker and the next marker.
fn section<'a>(out: &'a str, name: &str) -> Vec<&'a str> {
    out.lines()
        .skip_while(|l| *l != format!("--- {name}"))
        .skip(1)
        .take_while(|l| !l.starts_with("--- "))
        .collect()
}

/// Whether `cap` is set in the `field` line (e.g. `CapEff:`) of a /proc/PID/status text.
fn has_cap(status: &str, field: &str, cap: u32) -> bool {
    let line = status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .unwrap_or_else(|| panic!("{field} missing in {status}"));
    let mask = u64::from_str_radix(line.trim(), 16).expect("hex capability mask");
    mask & (1 << cap) != 0
}

/// The app prints what it can see of itself and of its parent, the defender.
fn spy_script(needle: &str) -> String {
    format!(
        "echo app-ran; \
         echo '--- env'; env; \
         echo '--- environ'; tr '\\0' '\\n' < /proc/$PPID/environ; \
         echo '--- cmdline'; tr '\\0' ' ' < /proc/$PPID/cmdline; echo; \
         echo '--- mem'; {PROBE} peek-mem $PPID {}; \
         echo '--- caps'; grep '^Cap' /proc/self/status; \
         echo '--- end'",
        hex(needle)
    )
}

fn app_sees_nothing_of_the_defender(backend: &str) {
    let me = std::fs::read_to_string("/proc/self/status").expect("own status");
    assert!(
        has_cap(&me, "CapEff:", CAP_SYS_PTRACE),
        "this test needs CAP_SYS_PTRACE (the Fargate set-up: root with --cap-add SYS_PTRACE)"
    );
    let s = Scratch::new(&format!("isolation-{backend}"));
    std::fs::write(s.path("p.json"), process_policy("prevent", &[], &["mkdir"])).expect("policy");
    let (env_token, flag_token) = (secret("env"), secret("flag"));
    // A console that is down: the defender keeps the credential in memory for its client.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let console = format!("http://{}", closed.local_addr().expect("addr"));
    drop(closed);
    let out = Command::new(DEFENDER)
        .args(["run", "--backend", backend, "--policy-file"])
        .arg(s.path("p.json"))
        .args(["--token", &flag_token])
        .args(["--", "/bin/sh", "-c", &spy_script(&flag_token)])
        .env("DEFENDER_TOKEN", &env_token)
        .env("DEFENDER_CONSOLE_URL", &console)
        .env("DEFENDER_TASK_FAMILY", "isolation")
        .env("DEFENDER_CONTAINER_NAME", "app")
        .env("DEFENDER_IMAGE", "debian:12")
        .env("DEFENDER_STATE_DIR", s.path("state"))
        .env("DEFENDER_POLL_SECONDS", "5")
        .env("DEFENDER_STARTUP", "availability")
        .env("APP_SETTING", "kept")
        .current_dir(&s.dir)
        .output()
        .expect("start defender");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let all = format!("{stdout}\n{stderr}");
    assert_eq!(out.status.code(), Some(0), "{all}");
    assert!(
        stdout.starts_with("app-ran\n") && stdout.ends_with("--- end\n"),
        "{all}"
    );
    for token in [&env_token, &flag_token] {
        assert!(!all.contains(token.as_str()), "{token} leaked:\n{all}");
    }

    // Its own environment: the app's variables, none of the defender's.
    let env = section(&stdout, "env");
    assert!(env.contains(&"APP_SETTING=kept"), "{env:?}");
    assert!(env.iter().all(|l| !l.starts_with("DEFENDER_")), "{env:?}");

    // The defender's environment: refused, or (kernels whose PTRACE_MODE_READ check lets a
    // same-uid root read a non-dumpable process's environ, as this 6.18 test VM does) only the
    // app's variables, the settings overwritten.
    let environ = section(&stdout, "environ");
    if environ.is_empty() {
        assert!(stderr.contains("environ: Permission denied"), "{stderr}");
    } else {
        assert!(environ.contains(&"APP_SETTING=kept"), "{environ:?}");
        assert!(
            environ.iter().all(|l| !l.starts_with("DEFENDER_")),
            "{environ:?}"
        );
    }
    // Its memory, where the console client holds the credential: refused by the kernel (not
    // dumpable, and no CAP_SYS_PTRACE in the app). With the capability kept, the probe reads
    // it and finds the credential.
    let mem = section(&stdout, "mem");
    assert!(
        mem.len() == 1 && mem[0].ends_with(", mem denied errno 13"),
        "{all}"
    );

    // The defender's command line (readable by anyone): the credential is starred out.
    let cmdline = section(&stdout, "cmdline").join("\n");
    let starred = "*".repeat(flag_token.len());
    assert!(
        cmdline.contains(&format!("run --backend {backend} --policy-file")),
        "{cmdline}"
    );
    assert!(
        cmdline.contains(&format!("--token {starred} -- /bin/sh")),
        "{cmdline}"
    );

    // No CAP_SYS_PTRACE in any of the app's sets.
    let caps = section(&stdout, "caps").join("\n");
    for field in ["CapInh:", "CapPrm:", "CapEff:", "CapBnd:", "CapAmb:"] {
        assert!(!has_cap(&caps, field, CAP_SYS_PTRACE), "{field} in\n{caps}");
    }
    // ...but the rest of root's capabilities are untouched (CAP_CHOWN, bit 0).
    assert!(has_cap(&caps, "CapEff:", 0), "{caps}");
}

#[test]
fn the_app_sees_nothing_of_the_defenders_settings_under_notify() {
    app_sees_nothing_of_the_defender("notify");
}

#[test]
fn the_app_sees_nothing_of_the_defenders_settings_under_ptrace() {
    app_sees_nothing_of_the_defender("ptrace");
}

#[test]
fn the_defenders_own_environ_and_cmdline_no_longer_hold_its_settings() {
    // Read from outside with every privilege (this test runs as root with CAP_SYS_PTRACE): the
    // settings were overwritten, not only hidden behind the dumpable flag.
    let s = Scratch::new("isolation-own-environ");
    std::fs::write(s.path("p.json"), process_policy("prevent", &[], &["mkdir"])).expect("policy");
    let (env_token, flag_token) = (secret("env"), secret("flag"));
    let mut child = Command::new(DEFENDER)
        .args(["run", "--backend", "notify", "--policy-file"])
        .arg(s.path("p.json"))
        .args([&format!("--token={flag_token}"), "--"])
        .args(["/bin/sh", "-c", "echo up; read x; echo bye"])
        .env("DEFENDER_TOKEN", &env_token)
        .env("DEFENDER_TASK_FAMILY", "isolation-family")
        .env("APP_SETTING", "kept")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("start defender");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    assert_eq!(lines.next().and_then(Result::ok).as_deref(), Some("up"));
    let pid = child.id();
    let environ = std::fs::read(format!("/proc/{pid}/environ")).expect("environ as root");
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).expect("cmdline");
    let _ = child.stdin.take().expect("stdin").write_all(b"go\n");
    assert_eq!(lines.next().and_then(Result::ok).as_deref(), Some("bye"));
    assert!(child.wait().expect("wait").success());

    let environ = String::from_utf8_lossy(&environ);
    let vars: Vec<&str> = environ.split('\0').filter(|v| !v.is_empty()).collect();
    assert!(vars.contains(&"APP_SETTING=kept"), "{vars:?}");
    assert!(vars.iter().all(|v| !v.starts_with("DEFENDER_")), "{vars:?}");
    assert!(!environ.contains(&env_token), "{environ}");
    let cmdline = String::from_utf8_lossy(&cmdline);
    assert!(!cmdline.contains(&flag_token), "{cmdline}");
    assert!(
        cmdline.contains(&format!(
            "--token={}\0--\0/bin/sh",
            "*".repeat(flag_token.len())
        )),
        "{cmdline:?}"
    );
}

#[test]
fn a_non_root_defender_is_no_more_readable_by_its_same_user_app() {
    // No capability at all, app and defender under one uid: only the dumpable flag keeps the
    // app out of the defender's environment and memory.
    use std::os::unix::fs::PermissionsExt;
    let s = Scratch::new("isolation-nonroot");
    std::fs::set_permissions(&s.dir, std::fs::Permissions::from_mode(0o777)).expect("chmod");
    std::fs::write(s.path("p.json"), process_policy("prevent", &[], &["mkdir"])).expect("policy");
    let token = secret("nonroot");
    for backend in ["notify", "ptrace"] {
        let out = Command::new("setpriv")
            .args([
                "--reuid",
                "65534",
                "--regid",
                "65534",
                "--clear-groups",
                "--inh-caps=-all",
            ])
            .args([DEFENDER, "run", "--backend", backend, "--policy-file"])
            .arg(s.path("p.json"))
            .args(["--", "/bin/sh", "-c", &spy_script(&token)])
            .env("DEFENDER_TOKEN", &token)
            .current_dir(&s.dir)
            .output()
            .expect("setpriv");
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        let all = format!("{stdout}\n{stderr}");
        assert_eq!(out.status.code(), Some(0), "{backend}: {all}");
        assert!(stdout.starts_with("app-ran\n"), "{backend}: {all}");
        assert!(!all.contains(&token), "{backend}: leaked:\n{all}");
        assert!(
            stderr.contains("environ: Permission denied"),
            "{backend}: {stderr}"
        );
        assert_eq!(
            section(&stdout, "mem"),
            ["peek-mem: maps denied errno 13, mem denied errno 13"],
            "{backend}: {all}"
        );
    }
}
