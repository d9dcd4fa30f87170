//! What an exec is about to run: the path and argv copied out of the caller (bounded), the path
//! made absolute the way the kernel will resolve it, and the names the program answers to.

use std::path::{Path, PathBuf};

use crate::sys::notify::read_memory;

/// Longest path read from a tracee (PATH_MAX).
pub const MAX_PATH: usize = 4096;
/// At most this many argv entries are read for the audit's command line.
pub const MAX_ARGS: usize = 256;
/// The audit's command line is cut at this many bytes.
pub const MAX_COMMAND: usize = 8192;

/// `execveat`'s `AT_FDCWD` and `AT_EMPTY_PATH`.
const AT_FDCWD: i32 = -100;
const AT_EMPTY_PATH: u64 = 0x1000;

/// The arguments of one `execve`/`execveat`, copied from the caller's memory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExecCall {
    /// `None` when the path could not be read (bad pointer): the kernel will fail the call.
    pub path: Option<String>,
    /// `execveat`'s directory descriptor (`None` for `execve` or `AT_FDCWD`).
    pub dirfd: Option<i32>,
    pub empty_path: bool,
    /// The command line, argv joined by spaces (bounded).
    pub command: String,
    /// `argv[0]` and `argv[1]` (multi-call binaries pick their applet from them).
    pub leading_args: Vec<String>,
}

impl ExecCall {
    /// Reads an `execve` (`nr` 59) or `execveat` (`nr` 322) call of thread `tid`.
    pub fn read(tid: i32, nr: i32, args: [u64; 6]) -> ExecCall {
        let (path_ptr, argv_ptr, dirfd, flags) = if nr == libc::SYS_execveat as i32 {
            (args[1], args[2], args[0] as i32, args[4])
        } else {
            (args[0], args[1], AT_FDCWD, 0)
        };
        let (path, argv) = read_path_and_argv(tid, path_ptr, argv_ptr);
        ExecCall {
            path,
            dirfd: (dirfd != AT_FDCWD).then_some(dirfd),
            empty_path: flags & AT_EMPTY_PATH != 0,
            command: String::new(),
            leading_args: Vec::new(),
        }
        .with_argv(argv)
    }

    fn with_argv(mut self, argv: Vec<String>) -> ExecCall {
        self.leading_args = argv.iter().take(2).cloned().collect();
        self.command = argv.join(" ");
        truncate(&mut self.command, MAX_COMMAND);
        self
    }
}

/// Reads a NUL-terminated string of at most `max` bytes (lossy UTF-8).
pub fn read_c_string(pid: i32, addr: u64, max: usize) -> Option<String> {
    if addr == 0 {
        return None;
    }
    let mut buf = vec![0u8; max];
    let n = read_memory(pid, addr, &mut buf).ok()?;
    let end = buf[..n].iter().position(|&b| b == 0)?;
    Some(String::from_utf8_lossy(&buf[..end]).into_owned())
}

/// The argv pointers in `raw` up to the terminating NULL: `(pointers, terminated)`.
fn argv_pointers(raw: &[u8]) -> (Vec<u64>, bool) {
    let mut ptrs = Vec::new();
    for chunk in raw.chunks_exact(8) {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        match u64::from_ne_bytes(word) {
            0 => return (ptrs, true),
            p => ptrs.push(p),
        }
    }
    (ptrs, false)
}

fn read_argv_pointers(pid: i32, addr: u64) -> Vec<u64> {
    if addr == 0 {
        return Vec::new();
    }
    let mut raw = vec![0u8; MAX_ARGS * 8];
    let n = read_memory(pid, addr, &mut raw).unwrap_or(0);
    argv_pointers(&raw[..n - n % 8]).0
}

/// The bytes from `addr` to the end of its page, at most `max`: a read that cannot fault
/// halfway when `addr` itself is mapped.
fn to_page_end(addr: u64, max: usize) -> usize {
    const PAGE: u64 = 4096;
    ((PAGE - addr % PAGE) as usize).min(max)
}

/// The string in `chunk` if it is NUL-terminated there.
fn c_string_in(chunk: &[u8]) -> Option<String> {
    let end = chunk.iter().position(|&b| b == 0)?;
    Some(String::from_utf8_lossy(&chunk[..end]).into_owned())
}

/// Most arguments whose text is read in the batched call; later ones are read one by one.
const BATCHED_ARGS: usize = 64;
/// Bytes of each argument read in the batched call (a longer one is read again on its own).
const BATCHED_ARG_BYTES: usize = 256;

/// Reads an exec's path and argv (bounded like [`read_c_string`] and [`MAX_ARGS`] /
/// [`MAX_COMMAND`]) in two `process_vm_readv` calls for the usual exec: one for the path and
/// the argv array, one for the first arguments' text. Whatever a batched read did not settle
/// (a region not mapped, a string or array running past its page) is read again one by one,
/// so the result is the same as reading everything separately.
fn read_path_and_argv(pid: i32, path_ptr: u64, argv_ptr: u64) -> (Option<String>, Vec<String>) {
    let path_len = if path_ptr == 0 {
        0
    } else {
        to_page_end(path_ptr, MAX_PATH)
    };
    let argv_len = if argv_ptr == 0 {
        0
    } else {
        to_page_end(argv_ptr, MAX_ARGS * 8) / 8 * 8
    };
    let mut buf = vec![0u8; path_len + argv_len];
    let regions: Vec<(u64, usize)> = [(path_ptr, path_len), (argv_ptr, argv_len)]
        .into_iter()
        .filter(|&(_, len)| len > 0)
        .collect();
    let complete = crate::sys::notify::read_memory_regions(pid, &regions, &mut buf)
        .is_ok_and(|n| n == buf.len());
    let (path, pointers) = if complete {
        let path = if path_ptr == 0 {
            None
        } else {
            c_string_in(&buf[..path_len]).or_else(|| read_c_string(pid, path_ptr, MAX_PATH))
        };
        let (ptrs, terminated) = argv_pointers(&buf[path_len..]);
        let ptrs = if terminated || argv_len == MAX_ARGS * 8 {
            ptrs
        } else {
            read_argv_pointers(pid, argv_ptr)
        };
        (path, ptrs)
    } else {
        (
            read_c_string(pid, path_ptr, MAX_PATH),
            read_argv_pointers(pid, argv_ptr),
        )
    };
    (path, read_args(pid, &pointers))
}

/// The argument strings at `pointers`, until [`MAX_COMMAND`] bytes of command line.
fn read_args(pid: i32, pointers: &[u64]) -> Vec<String> {
    let batch: Vec<(u64, usize)> = pointers
        .iter()
        .take(BATCHED_ARGS)
        .map(|&p| (p, to_page_end(p, BATCHED_ARG_BYTES)))
        .collect();
    let mut buf = vec![0u8; batch.iter().map(|&(_, len)| len).sum()];
    let complete = !batch.is_empty()
        && crate::sys::notify::read_memory_regions(pid, &batch, &mut buf)
            .is_ok_and(|n| n == buf.len());
    let mut parts: Vec<String> = Vec::new();
    let mut total = 0;
    let mut offset = 0;
    for (i, &ptr) in pointers.iter().enumerate() {
        if total >= MAX_COMMAND {
            break;
        }
        let batched = match batch.get(i) {
            Some(&(_, len)) if complete => {
                let chunk = &buf[offset..offset + len];
                offset += len;
                c_string_in(chunk)
            }
            _ => None,
        };
        let arg = batched
            .or_else(|| read_c_string(pid, ptr, MAX_PATH))
            .unwrap_or_default();
        total += arg.len() + 1;
        parts.push(arg);
    }
    parts
}

fn truncate(s: &mut String, max: usize) {
    if s.len() > max {
        let mut cut = max;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
    }
}

/// Where an exec's path points, seen from the caller.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    /// The absolute path as the caller named it (for audits and deny-list checks).
    pub literal: String,
    /// A path the defender can open to reach the same file (through /proc for relative paths
    /// and descriptors).
    pub fs_path: PathBuf,
}

/// Makes the call's path absolute: relative to the caller's cwd or `execveat`'s directory
/// descriptor, `/proc/self` rewritten to the caller. `None` when the path was unreadable.
pub fn resolve(tid: i32, call: &ExecCall) -> Option<Target> {
    let path = call.path.as_deref()?;
    if path.is_empty() {
        let fd = call.dirfd?;
        if !call.empty_path {
            return None;
        }
        let fs_path = PathBuf::from(format!("/proc/{tid}/fd/{fd}"));
        let literal = std::fs::read_link(&fs_path)
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_else(|_| fs_path.to_string_lossy().into_owned());
        return Some(Target { literal, fs_path });
    }
    if let Some(rest) = path.strip_prefix('/') {
        let fs_path = rewrite_proc_self(tid, rest);
        return Some(Target {
            literal: path.to_string(),
            fs_path,
        });
    }
    let base_link = match call.dirfd {
        Some(fd) => format!("/proc/{tid}/fd/{fd}"),
        None => format!("/proc/{tid}/cwd"),
    };
    let base = std::fs::read_link(&base_link)
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_else(|_| base_link.clone());
    Some(Target {
        literal: normalize(&format!("{}/{}", base.trim_end_matches('/'), path)),
        fs_path: PathBuf::from(format!("{base_link}/{path}")),
    })
}

/// `/proc/self/...` and `/proc/thread-self/...` mean the caller, not the defender.
fn rewrite_proc_self(tid: i32, rest: &str) -> PathBuf {
    let parts: Vec<&str> = rest
        .split('/')
        .filter(|p| !p.is_empty() && *p != ".")
        .collect();
    if parts.first() == Some(&"proc") {
        match parts.get(1) {
            Some(&"self") => {
                return PathBuf::from(format!("/proc/{tid}/{}", parts[2..].join("/")));
            }
            Some(&"thread-self") => {
                return PathBuf::from(format!("/proc/{tid}/task/{tid}/{}", parts[2..].join("/")));
            }
            _ => {}
        }
    }
    PathBuf::from(format!("/{rest}"))
}

/// Removes `.` and empty components and folds `..` lexically (display only).
pub fn normalize(path: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            p => out.push(p),
        }
    }
    format!("/{}", out.join("/"))
}

/// The names a program answers to: its canonical path, plus the classic paths that a merged
/// `/usr` makes equivalent (`/usr/bin/mkdir` is also `/bin/mkdir` when `/bin -> usr/bin`).
pub fn names_of(canonical: &str) -> Vec<String> {
    let mut names = vec![canonical.to_string()];
    for (alias, real) in usr_merge_aliases() {
        if let Some(rest) = canonical.strip_prefix(real.as_str()) {
            if rest.starts_with('/') {
                names.push(format!("{alias}{rest}"));
            }
        }
    }
    names
}

/// `/bin`, `/sbin`, `/lib`, `/lib64` that are symlinks into `/usr`, as (alias, target) pairs
/// (read once: the image's layout does not change under the app).
fn usr_merge_aliases() -> &'static [(String, String)] {
    static ALIASES: std::sync::OnceLock<Vec<(String, String)>> = std::sync::OnceLock::new();
    ALIASES.get_or_init(read_usr_merge_aliases)
}

fn read_usr_merge_aliases() -> Vec<(String, String)> {
    ["/bin", "/sbin", "/lib", "/lib64"]
        .iter()
        .filter_map(|dir| {
            let meta = std::fs::symlink_metadata(dir).ok()?;
            if !meta.file_type().is_symlink() {
                return None;
            }
            let real = std::fs::canonicalize(dir).ok()?;
            Some((dir.to_string(), real.to_string_lossy().into_owned()))
        })
        .collect()
}

/// The canonical path of the file behind `fs_path`, or the errno of the failed lookup. The
/// file is opened (`O_PATH`, following links and `/proc` magic links as exec would) and the
/// kernel's name for the open file is read back, so deleted files and memfds resolve too
/// (`/memfd:name (deleted)`).
pub fn canonical(fs_path: &Path) -> Result<String, i32> {
    use std::os::fd::AsRawFd;
    use std::os::unix::fs::OpenOptionsExt;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_PATH)
        .open(fs_path)
        .map_err(|e| e.raw_os_error().unwrap_or(libc::ENOENT))?;
    std::fs::read_link(format!("/proc/self/fd/{}", file.as_raw_fd()))
        .map(|p| p.to_string_lossy().into_owned())
        .map_err(|e| e.raw_os_error().unwrap_or(libc::ENOENT))
}

/// The executable of process `pid` (`/proc/PID/exe`), e.g. `/usr/bin/dash`.
pub fn exe_of(pid: i32) -> Option<String> {
    std::fs::read_link(format!("/proc/{pid}/exe"))
        .ok()
        .map(|p| p.to_string_lossy().into_owned())
}

/// The thread group (process) id of thread `tid`.
pub fn tgid_of(tid: i32) -> Option<i32> {
    status_field(tid, "Tgid:")
}

/// The parent process id of `pid`.
pub fn ppid_of(pid: i32) -> Option<i32> {
    status_field(pid, "PPid:")
}

fn status_field(pid: i32, key: &str) -> Option<i32> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status_value(&status, key)
}

/// The number after `key` (`"Tgid:"`, `"PPid:"`) in `/proc/PID/status` text.
pub fn status_value(status: &str, key: &str) -> Option<i32> {
    status
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.trim().parse().ok())
}

/// The command line of a process from `/proc/PID/cmdline` (bounded), args split.
pub fn cmdline_of(pid: i32) -> Vec<String> {
    let raw = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let raw = &raw[..raw.len().min(MAX_COMMAND)];
    raw.split(|&b| b == 0)
        .filter(|s| !s.is_empty())
        .map(|s| String::from_utf8_lossy(s).into_owned())
        .collect()
}

/// The command line of a process as audits show it: [`cmdline_of`] joined by spaces.
pub fn command_of(pid: i32) -> String {
    cmdline_of(pid).join(" ")
}

/// For a multi-call binary (busybox, toybox) the applet it will run, chosen like the binary
/// does: the basename of `argv[0]`, or `argv[1]` when `argv[0]` names the binary itself.
pub fn multicall_applet(exe: &str, leading_args: &[String]) -> Option<String> {
    let base = |p: &str| p.rsplit('/').next().unwrap_or(p).to_string();
    if !is_multicall(exe) {
        return None;
    }
    let argv0 = base(leading_args.first()?);
    if MULTICALL.contains(&argv0.as_str()) {
        leading_args.get(1).map(|a| base(a))
    } else {
        Some(argv0)
    }
}

const MULTICALL: &[&str] = &["busybox", "toybox"];

/// Whether `exe` is a multi-call binary (busybox, toybox).
pub fn is_multicall(exe: &str) -> bool {
    MULTICALL.contains(&exe.rsplit('/').next().unwrap_or(exe))
}

/// The names an applet of a multi-call binary answers to: its bare name and the usual
/// absolute paths (`/bin/mkdir`, `/usr/bin/mkdir`, `/sbin/mkdir`, `/usr/sbin/mkdir`).
pub fn applet_names(applet: &str) -> Vec<String> {
    let mut names = vec![applet.to_string()];
    names.extend(
        ["/bin", "/usr/bin", "/sbin", "/usr/sbin"]
            .iter()
            .map(|d| format!("{d}/{applet}")),
    );
    names
}

/// Whether `exe` is a dynamic loader (`ld-linux-x86-64.so.2`, `ld-musl-x86_64.so.1`, `ld.so`).
pub fn is_dynamic_loader(exe: &str) -> bool {
    let base = exe.rsplit('/').next().unwrap_or(exe);
    base.starts_with("ld-linux") || base.starts_with("ld-musl") || base.starts_with("ld.so")
}

/// The program a dynamic loader run directly will load: the first argument after the loader's
/// own options (`ld.so [--library-path P] [--preload L] ... /path/prog args`).
pub fn loader_program(argv: &[String]) -> Option<&str> {
    const WITH_VALUE: &[&str] = &[
        "--library-path",
        "--preload",
        "--audit",
        "--argv0",
        "--inhibit-rpath",
        "--glibc-hwcaps-prefix",
        "--glibc-hwcaps-mask",
    ];
    let mut i = 1;
    while let Some(arg) = argv.get(i) {
        if arg == "--" {
            return argv.get(i + 1).map(String::as_str);
        }
        if WITH_VALUE.contains(&arg.as_str()) {
            i += 2;
        } else if arg.starts_with("--") {
            i += 1;
        } else {
            return Some(arg);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loader_program_skips_options() {
        let argv: Vec<String> = [
            "ld.so",
            "--library-path",
            "/x",
            "--inhibit-cache",
            "/bin/mkdir",
            "a",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        assert_eq!(loader_program(&argv), Some("/bin/mkdir"));
        let only: Vec<String> = vec!["ld.so".into(), "--list".into()];
        assert_eq!(loader_program(&only), None);
    }

    #[test]
    fn multicall_binaries_run_the_applet_named_by_argv() {
        let args = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            multicall_applet("/bin/busybox", &args(&["/bin/mkdir", "x"])),
            Some("mkdir".into())
        );
        assert_eq!(
            multicall_applet("/bin/busybox", &args(&["busybox", "mkdir"])),
            Some("mkdir".into())
        );
        assert_eq!(multicall_applet("/usr/bin/mkdir", &args(&["mkdir"])), None);
        assert_eq!(applet_names("sh")[1], "/bin/sh");
    }

    #[test]
    fn batched_reads_give_what_separate_reads_give() {
        // Real process_vm_readv calls on this process's own memory: short strings, one that
        // runs across a page boundary, one longer than the batched chunk, more arguments than
        // one batch, and an argv array without its terminator in the first page.
        let mut page = vec![0u8; 3 * 4096];
        let base = page.as_ptr() as u64;
        let across = (4096 - base % 4096) as usize + 4096 - 3;
        page[across..across + 10].copy_from_slice(b"across-pg\0");
        let strings: Vec<std::ffi::CString> = std::iter::once("/usr/bin/env".to_string())
            .chain(std::iter::once("x".repeat(300)))
            .chain((0..80).map(|i| format!("arg{i}")))
            .map(|a| std::ffi::CString::new(a).expect("no NUL"))
            .collect();
        let mut ptrs: Vec<u64> = strings.iter().map(|c| c.as_ptr() as u64).collect();
        ptrs.insert(1, base + across as u64);
        ptrs.push(0);
        let expected: Vec<String> = ptrs[..ptrs.len() - 1]
            .iter()
            .map(|&p| read_c_string(std::process::id() as i32, p, MAX_PATH).expect("readable"))
            .collect();
        assert_eq!(expected[1], "across-pg");
        assert_eq!(expected[2].len(), 300);
        let pid = std::process::id() as i32;
        let (path, argv) = read_path_and_argv(pid, base + across as u64, ptrs.as_ptr() as u64);
        assert_eq!(path.as_deref(), Some("across-pg"));
        assert_eq!(argv, expected);
        // The argv array itself laid across a page boundary, its NULL on the second page.
        let mut array = vec![0u8; 3 * 4096];
        let abase = array.as_ptr() as u64;
        let at = (4096 - abase % 4096) as usize + 4096 - 16;
        for (i, p) in ptrs[..2].iter().chain(std::iter::once(&0)).enumerate() {
            array[at + i * 8..at + i * 8 + 8].copy_from_slice(&p.to_ne_bytes());
        }
        let (_, argv) = read_path_and_argv(pid, 0, abase + at as u64);
        assert_eq!(argv, expected[..2].to_vec());
        assert_eq!(read_path_and_argv(pid, 0, 0), (None, Vec::new()));
    }

    #[test]
    fn status_values_by_key() {
        let status = "Name:\tpython3\nUmask:\t0022\nState:\tS (sleeping)\nTgid:\t4242\n\
                      Ngid:\t0\nPid:\t4243\nPPid:\t17\nTracerPid:\t0\n";
        assert_eq!(status_value(status, "Tgid:"), Some(4242));
        assert_eq!(status_value(status, "Pid:"), Some(4243));
        assert_eq!(status_value(status, "PPid:"), Some(17));
        assert_eq!(status_value(status, "Name:"), None);
        assert_eq!(status_value("", "PPid:"), None);
    }

    #[test]
    fn normalize_folds_dots() {
        assert_eq!(normalize("/a/./b/../c//d"), "/a/c/d");
        assert_eq!(normalize("/../x"), "/x");
    }

    #[test]
    fn proc_self_means_the_caller() {
        assert_eq!(
            rewrite_proc_self(42, "proc/self/fd/3"),
            PathBuf::from("/proc/42/fd/3")
        );
        assert_eq!(
            rewrite_proc_self(42, "proc/thread-self/exe"),
            PathBuf::from("/proc/42/task/42/exe")
        );
        assert_eq!(
            rewrite_proc_self(42, "usr/bin/true"),
            PathBuf::from("/usr/bin/true")
        );
    }

    #[test]
    fn usr_merge_aliases_follow_the_real_layout() {
        let names = names_of("/usr/bin/mkdir");
        let bin_is_link = std::fs::symlink_metadata("/bin")
            .map(|m| m.file_type().is_symlink())
            .unwrap_or(false);
        assert_eq!(names.contains(&"/bin/mkdir".to_string()), bin_is_link);
        assert_eq!(names[0], "/usr/bin/mkdir");
    }

    #[test]
    fn dynamic_loaders_are_recognised() {
        assert!(is_dynamic_loader(
            "/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2"
        ));
        assert!(is_dynamic_loader("/lib/ld-musl-x86_64.so.1"));
        assert!(!is_dynamic_loader("/usr/bin/ldd"));
    }
}
