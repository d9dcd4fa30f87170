//! `defender-probe`: a helper run *under* the defender by its tests and benchmarks. Each
//! subcommand is one attack the defender must stop or one benchmark workload; it prints one
//! result line on stdout. Not part of the product image.

use std::ffi::CString;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::process::{Command, ExitCode};
use std::time::Instant;

mod raw;

use defender::sys::SysError;
use raw as probe;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (cmd, rest) = match args.split_first() {
        Some((c, r)) => (c.as_str(), r),
        None => return usage(),
    };
    let result = match cmd {
        "spawn" => spawn(rest),
        "threads" => threads(rest),
        "race" => race(rest),
        "execveat-fd" => execveat_fd(rest),
        "execveat-dir" => execveat_dir(rest),
        "proc-fd" => proc_fd(rest),
        "memfd" => memfd(rest),
        "exec-fail" => exec_fail(rest),
        "vfork" => vfork(rest),
        "thread-exec" => thread_exec(rest),
        "connect" => connect(rest),
        "peek-mem" => peek_mem(rest),
        "int80" => Ok(format!("int80: returned {}", probe::int80_getpid())),
        "x32" => Ok(format!("x32: returned {}", probe::x32_getpid())),
        "escape" => Ok(probe::escape_attempts()
            .iter()
            .map(|(name, errno)| format!("{name}={errno}"))
            .collect::<Vec<_>>()
            .join(" ")),
        "bench" => bench(rest),
        _ => return usage(),
    };
    match result {
        Ok(line) => {
            println!("{line}");
            let _ = std::io::stdout().flush();
            ExitCode::SUCCESS
        }
        Err(e) => {
            println!("{cmd}: error: {e}");
            ExitCode::from(3)
        }
    }
}

fn usage() -> ExitCode {
    eprintln!(
        "usage: defender-probe spawn|threads N|race DIR|execveat-fd|execveat-dir DIR|proc-fd|memfd|vfork|thread-exec PROGRAM ARGS...\n\
         \x20      defender-probe connect IP:PORT\n\
         \x20      defender-probe peek-mem PID NEEDLE_HEX\n\
         \x20      defender-probe int80|x32|escape\n\
         \x20      defender-probe bench fork-exec|fork|threads|files|malloc|connect N"
    );
    ExitCode::from(2)
}

fn cstrings(args: &[String]) -> Result<Vec<CString>, String> {
    args.iter()
        .map(|a| CString::new(a.as_str()).map_err(|_| format!("NUL in {a:?}")))
        .collect()
}

fn errno_of(e: &SysError) -> String {
    format!("errno {}", e.errno().unwrap_or(0))
}

/// Describes how a child ended.
fn describe(status: std::io::Result<std::process::ExitStatus>) -> String {
    use std::os::unix::process::ExitStatusExt;
    match status {
        Ok(s) => match (s.code(), s.signal()) {
            (Some(c), _) => format!("exit {c}"),
            (_, Some(sig)) => format!("signal {sig}"),
            _ => "unknown".into(),
        },
        Err(e) => format!("errno {}", e.raw_os_error().unwrap_or(0)),
    }
}

/// std's Command: posix_spawn (clone with CLONE_VM|CLONE_VFORK) + exec.
fn spawn(args: &[String]) -> Result<String, String> {
    let (prog, rest) = args.split_first().ok_or("spawn: PROGRAM missing")?;
    Ok(format!(
        "spawn: {}",
        describe(Command::new(prog).args(rest).status())
    ))
}

/// N threads busy at once; each spawns /bin/true, thread 0 also spawns PROGRAM.
fn threads(args: &[String]) -> Result<String, String> {
    let (n, cmd) = args.split_first().ok_or("threads: N missing")?;
    let n: usize = n.parse().map_err(|_| "threads: N must be a number")?;
    let (prog, rest) = cmd.split_first().ok_or("threads: PROGRAM missing")?;
    let handles: Vec<_> = (0..n)
        .map(|i| {
            let (prog, rest) = (prog.clone(), rest.to_vec());
            std::thread::spawn(move || {
                let ok = Command::new("/bin/true")
                    .status()
                    .map(|s| s.success())
                    .unwrap_or(false);
                let target = (i == 0).then(|| describe(Command::new(&prog).args(&rest).status()));
                (ok, target)
            })
        })
        .collect();
    let mut true_ok = 0;
    let mut target = String::new();
    for h in handles {
        let (ok, t) = h.join().map_err(|_| "a thread panicked")?;
        true_ok += usize::from(ok);
        if let Some(t) = t {
            target = t;
        }
    }
    Ok(format!("threads: true_ok={true_ok} target={target}"))
}

/// Children that exec from a path buffer another thread flips between /usr/bin/true and
/// /usr/bin/mkdir; mkdir would create DIR/raced.
fn race(args: &[String]) -> Result<String, String> {
    let dir = args.first().ok_or("race: DIR missing")?;
    let rounds: usize = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(40);
    let pad = |s: &str| {
        let mut b = [0u8; 32];
        b[..s.len()].copy_from_slice(s.as_bytes());
        b
    };
    let (a, b) = (pad("/usr/bin/true"), pad("/usr/bin/mkdir"));
    let argv = cstrings(&["mkdir".into(), format!("{dir}/raced")])?;
    let (mut ran_true, mut killed, mut other) = (0, 0, 0);
    for _ in 0..rounds {
        let pid = probe::fork().map_err(|e| e.to_string())?;
        if pid == 0 {
            let _ = probe::racing_execve(&a, &b, &argv);
            probe::exit_now(42);
        }
        match defender::sys::process::wait_for(pid).map_err(|e| e.to_string())? {
            defender::sys::process::WaitStatus::Exited(0) => ran_true += 1,
            defender::sys::process::WaitStatus::Signaled(9) => killed += 1,
            _ => other += 1,
        }
    }
    Ok(format!(
        "race: true={ran_true} killed={killed} other={other}"
    ))
}

fn execveat_fd(args: &[String]) -> Result<String, String> {
    let (prog, _) = args.split_first().ok_or("execveat-fd: PROGRAM missing")?;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_PATH)
        .open(prog)
        .map_err(|e| e.to_string())?;
    let argv = cstrings(args)?;
    let empty = CString::default();
    let e = probe::execveat(probe::raw(&file), &empty, &argv, libc::AT_EMPTY_PATH);
    Ok(format!("execveat-fd: {}", errno_of(&e)))
}

fn execveat_dir(args: &[String]) -> Result<String, String> {
    let (dir, rest) = args.split_first().ok_or("execveat-dir: DIR missing")?;
    let (name, _) = rest.split_first().ok_or("execveat-dir: NAME missing")?;
    let d = std::fs::File::open(dir).map_err(|e| e.to_string())?;
    let argv = cstrings(rest)?;
    let name = CString::new(name.as_str()).map_err(|_| "NUL in NAME")?;
    let e = probe::execveat(probe::raw(&d), &name, &argv, 0);
    Ok(format!("execveat-dir: {}", errno_of(&e)))
}

fn proc_fd(args: &[String]) -> Result<String, String> {
    let (prog, _) = args.split_first().ok_or("proc-fd: PROGRAM missing")?;
    let file = std::fs::File::open(prog).map_err(|e| e.to_string())?;
    let path = CString::new(format!("/proc/self/fd/{}", probe::raw(&file))).map_err(|_| "NUL")?;
    let e = probe::execve(&path, &cstrings(args)?);
    Ok(format!("proc-fd: {}", errno_of(&e)))
}

/// An exec the kernel refuses after the defender let it through (a file without the x bit):
/// prints the errno, whether this thread is still traced right afterwards, and whether it
/// still is after up to half a second (`later`).
fn exec_fail(args: &[String]) -> Result<String, String> {
    let (prog, _) = args.split_first().ok_or("exec-fail: PROGRAM missing")?;
    let path = CString::new(prog.as_str()).map_err(|_| "NUL in PROGRAM")?;
    let e = probe::execve(&path, &cstrings(args)?);
    let tracer = || -> Result<String, String> {
        let status =
            std::fs::read_to_string("/proc/thread-self/status").map_err(|e| e.to_string())?;
        Ok(status
            .lines()
            .find_map(|l| l.strip_prefix("TracerPid:"))
            .map(|v| v.trim().to_string())
            .unwrap_or_default())
    };
    let at_once = tracer()?;
    let mut later = at_once.clone();
    for _ in 0..50 {
        if later == "0" {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
        later = tracer()?;
    }
    Ok(format!(
        "exec-fail: {} tracer={at_once} later={later}",
        errno_of(&e)
    ))
}

/// The raw `vfork` system call, then `execve(PROGRAM, ARGS)` in the child (whose exec failure
/// the child reports itself); prints the child's pid and how it ended once the parent resumes.
fn vfork(args: &[String]) -> Result<String, String> {
    let (prog, _) = args.split_first().ok_or("vfork: PROGRAM missing")?;
    let path = CString::new(prog.as_str()).map_err(|_| "NUL in PROGRAM")?;
    let pid = probe::vfork_exec(&path, &cstrings(args)?).map_err(|e| e.to_string())?;
    let status = match defender::sys::process::wait_for(pid).map_err(|e| e.to_string())? {
        defender::sys::process::WaitStatus::Exited(c) => format!("exit {c}"),
        defender::sys::process::WaitStatus::Signaled(s) => format!("signal {s}"),
        other => format!("{other:?}"),
    };
    Ok(format!("vfork: pid={pid} {status}"))
}

/// `execve(PROGRAM, ARGS)` from a second thread (not the thread group leader), while the main
/// thread waits: a successful exec replaces the whole process; a failed one prints the errno.
fn thread_exec(args: &[String]) -> Result<String, String> {
    let (prog, _) = args.split_first().ok_or("thread-exec: PROGRAM missing")?;
    let path = CString::new(prog.as_str()).map_err(|_| "NUL in PROGRAM")?;
    let argv = cstrings(args)?;
    let e = std::thread::spawn(move || errno_of(&probe::execve(&path, &argv)))
        .join()
        .map_err(|_| "the exec thread panicked")?;
    Ok(format!("thread-exec: {e}"))
}

/// A TCP connect to `IP:PORT`: prints `ok` or the errno the app saw.
fn connect(args: &[String]) -> Result<String, String> {
    let addr: std::net::SocketAddr = args
        .first()
        .ok_or("connect: IP:PORT missing")?
        .parse()
        .map_err(|e| format!("connect: IP:PORT: {e}"))?;
    Ok(match std::net::TcpStream::connect(addr) {
        Ok(_) => "connect: ok".into(),
        Err(e) => format!("connect: errno {}", e.raw_os_error().unwrap_or(0)),
    })
}

fn memfd(args: &[String]) -> Result<String, String> {
    let (prog, _) = args.split_first().ok_or("memfd: PROGRAM missing")?;
    let name = CString::new("innocent").map_err(|_| "NUL")?;
    let fd = probe::memfd_create(&name).map_err(|e| e.to_string())?;
    let mut out = std::fs::File::from(fd);
    let bytes = std::fs::read(prog).map_err(|e| e.to_string())?;
    out.write_all(&bytes).map_err(|e| e.to_string())?;
    let empty = CString::default();
    let e = probe::execveat(
        probe::raw(&out),
        &empty,
        &cstrings(args)?,
        libc::AT_EMPTY_PATH,
    );
    Ok(format!("memfd: {}", errno_of(&e)))
}

/// One benchmark workload, N iterations; prints the elapsed nanoseconds.
fn bench(args: &[String]) -> Result<String, String> {
    let name = args.first().ok_or("bench: WORKLOAD missing")?;
    let n: usize = args
        .get(1)
        .and_then(|s| s.parse().ok())
        .ok_or("bench: N missing")?;
    let start = Instant::now();
    match name.as_str() {
        "fork-exec" => {
            for _ in 0..n {
                Command::new("/bin/true")
                    .status()
                    .map_err(|e| e.to_string())?;
            }
        }
        "fork" => {
            for _ in 0..n {
                probe::fork_and_reap().map_err(|e| e.to_string())?;
            }
        }
        "threads" => {
            for _ in 0..n {
                std::thread::spawn(|| std::hint::black_box(1))
                    .join()
                    .map_err(|_| "thread panicked")?;
            }
        }
        "files" => {
            // tmpfs when there is one: measure the syscalls, not the disk other jobs share.
            let base = match std::path::Path::new("/dev/shm") {
                shm if shm.is_dir() => shm.to_path_buf(),
                _ => std::env::temp_dir(),
            };
            let dir = base.join(format!("defender-bench-{}", std::process::id()));
            std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
            let block = [7u8; 4096];
            for i in 0..n {
                let p = dir.join(format!("f{i}"));
                std::fs::write(&p, block).map_err(|e| e.to_string())?;
                std::fs::remove_file(&p).map_err(|e| e.to_string())?;
            }
            let _ = std::fs::remove_dir(&dir);
        }
        "malloc" => {
            for i in 0..n {
                let mut v = vec![0u8; 64 + (i % 64) * 1024];
                let len = v.len();
                v[i % len] = 1;
                std::hint::black_box(&v);
            }
        }
        "connect" => {
            // Connect, then accept in the same thread: the handshake completes in the kernel,
            // so the backlog never overflows (a dropped SYN would cost a 1 s retransmission).
            let listener = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
            let addr = listener.local_addr().map_err(|e| e.to_string())?;
            for _ in 0..n {
                let client = std::net::TcpStream::connect(addr).map_err(|e| e.to_string())?;
                let (server, _) = listener.accept().map_err(|e| e.to_string())?;
                drop((client, server));
            }
        }
        other => return Err(format!("unknown workload {other:?}")),
    }
    Ok(format!(
        "bench {name} n={n} ns={}",
        start.elapsed().as_nanos()
    ))
}

/// Tries to read process PID's memory through /proc/PID/maps and /proc/PID/mem and looks for
/// NEEDLE (hex, so the needle itself is never printed): `peek-mem: maps denied errno N, mem
/// denied errno N` when the kernel refuses, else how much was read and whether NEEDLE was found.
fn peek_mem(args: &[String]) -> Result<String, String> {
    use std::os::unix::fs::FileExt;
    let [pid, hex] = args else {
        return Err("peek-mem: PID NEEDLE_HEX expected".into());
    };
    let needle: Vec<u8> = (0..hex.len() / 2)
        .map(|i| u8::from_str_radix(hex.get(i * 2..i * 2 + 2).unwrap_or("zz"), 16))
        .collect::<Result<_, _>>()
        .map_err(|_| "peek-mem: NEEDLE_HEX is not hex")?;
    let errno = |e: std::io::Error| format!("denied errno {}", e.raw_os_error().unwrap_or(0));
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps"));
    let mem = std::fs::File::open(format!("/proc/{pid}/mem"));
    let (maps, mem) = match (maps, mem) {
        (Ok(maps), Ok(mem)) => (maps, mem),
        (maps, mem) => {
            return Ok(format!(
                "peek-mem: maps {}, mem {}",
                maps.map(|_| "readable".to_string()).unwrap_or_else(errno),
                mem.map(|_| "opened".to_string()).unwrap_or_else(errno),
            ))
        }
    };
    let (mut read, mut found) = (0usize, false);
    for line in maps
        .lines()
        .filter(|l| l.split(' ').nth(1).is_some_and(|p| p.starts_with('r')))
    {
        let Some((lo, hi)) = line.split(' ').next().and_then(|r| r.split_once('-')) else {
            continue;
        };
        let (Ok(lo), Ok(hi)) = (u64::from_str_radix(lo, 16), u64::from_str_radix(hi, 16)) else {
            continue;
        };
        let mut buf = vec![0u8; usize::try_from(hi - lo).unwrap_or(0).min(64 << 20)];
        if let Ok(n) = mem.read_at(&mut buf, lo) {
            read += n;
            found |= !needle.is_empty() && buf[..n].windows(needle.len()).any(|w| w == needle);
        }
    }
    Ok(format!(
        "peek-mem: read {read} bytes, needle {}",
        if found { "found" } else { "absent" }
    ))
}
