//! The command dictionaries: names a shell runs, which of them are also English words, and
//! the larger list only the paranoid levels read.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::LazyLock;

/// FNV-1a, for the name maps below: every value's words are looked up in them, and SipHash (the
/// default) costs more than the lookup itself on such short keys. Flooding is no concern: the
/// maps hold only our fixed names, so a lookup's probe length is bounded by their layout
/// whatever word is looked up.
struct Fnv(u64);

impl Default for Fnv {
    fn default() -> Self {
        Fnv(0xcbf2_9ce4_8422_2325) // the FNV-1a offset basis
    }
}

impl Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3);
        }
    }
}

/// A map of names hashed with [`Fnv`].
type Names = HashMap<&'static str, bool, BuildHasherDefault<Fnv>>;

/// Commands an attacker runs and prose rarely contains after a separator.
pub(super) const STRONG: &[&str] = &[
    "wget",
    "curl",
    "nc",
    "ncat",
    "netcat",
    "bash",
    "sh",
    "zsh",
    "ksh",
    "csh",
    "tcsh",
    "dash",
    "powershell",
    "pwsh",
    "cmd",
    "cmd.exe",
    "perl",
    "python",
    "python2",
    "python3",
    "ruby",
    "php",
    "lua",
    "node",
    "nslookup",
    "getent",
    "whoami",
    "uname",
    "ifconfig",
    "ipconfig",
    "netstat",
    "chmod",
    "chown",
    "passwd",
    "useradd",
    "telnet",
    "tftp",
    "scp",
    "ssh",
    "base64",
    "xxd",
    "nohup",
    "crontab",
    "sudo",
    "su",
    "systeminfo",
    "tasklist",
    "taskkill",
    "certutil",
    "bitsadmin",
    "rundll32",
    "regsvr32",
    "mshta",
    "wmic",
    "shutdown",
    "reboot",
    "halt",
    "poweroff",
    "killall",
    "pkill",
    "ls",
    "id",
    "pwd",
    "printenv",
    "hostname",
    "dig",
    "ping",
    "traceroute",
    "awk",
    "gawk",
    "sed",
    "xargs",
    "rm",
    "mkdir",
    "rmdir",
    "touch",
    "dd",
    "mkfifo",
    "busybox",
    "socat",
    "lwp-download",
    "uptime",
    "ps",
    "net",
    "reg",
    "vssadmin",
    "icacls",
    "cscript",
    "wscript",
    "ftp",
    "sftp",
    "openssl",
    "chattr",
    "iptables",
    "tcpdump",
    "nmap",
    "tar",
    "zip",
    "unzip",
    "gzip",
    "gunzip",
    "bzip2",
    "cp",
    "mv",
    "ln",
    "lsof",
    "w",
    "sleep",
    "cat",
    "tac",
    "nl",
    "od",
    "strings",
    "grep",
    "egrep",
    "fgrep",
    "find",
    "head",
    "tail",
    "more",
    "less",
    "sort",
    "uniq",
    "wc",
    "cut",
    "tr",
    "env",
    "export",
    "eval",
    "exec",
    "set",
    "echo",
    "printf",
    "type",
    "dir",
    "del",
    "copy",
    "move",
    "ren",
    "rename",
    "start",
    "timeout",
    "kill",
    "chroot",
    "mount",
    "umount",
    "systemctl",
    "service",
    "apt",
    "apt-get",
    "yum",
    "apk",
    "pip",
    "npm",
    "git",
    "docker",
    "kubectl",
    "who",
    "last",
    "date",
    "time",
    "ansible",
    "ansible-playbook",
    "ansible-galaxy",
    "ansible-config",
    "ansible-pull",
    "bsdtar",
    "perf",
    "gdb",
    "strace",
    "ltrace",
    "alias",
    "iwr",
    "iwmi",
    "irm",
    "iex",
    "invoke-webrequest",
    "invoke-restmethod",
    "invoke-wmimethod",
    "start-process",
    "new-object",
    "vi",
    "vim",
    "nano",
    "c89",
    "c99",
    "gcc",
    "tee",
    "cd",
    // services, package and configuration managers, account tools
    "irb",
    "jshell",
    "jrunscript",
    "rmt",
    "rmt-tar",
    "rmt-dump",
    "flock",
    "trap",
    "cpulimit",
    "lastlog",
    "lastlogin",
    "aptitude",
    "htop",
    "visudo",
    "adduser",
    "addgroup",
    "userdel",
    "usermod",
    "groupadd",
    "chpasswd",
    "cscli",
    "ansible-console",
    "ansible-doc",
    "ansible-inventory",
    "ansible-vault",
    "chef-client",
    "chef-shell",
    "chef-run",
    "chef-vault",
    "chef-solo",
    "pip3",
    "pipx",
    "ssh-copy-id",
    "ssh-keygen",
    "sshpass",
    "aa-disable",
    "aa-enforce",
    "aa-complain",
    "aa-status",
    "rsync",
    "whois",
    "modprobe",
    "insmod",
    "dmesg",
    "sysctl",
    "setenforce",
    "nsenter",
    "unshare",
    "setsid",
    "pkexec",
    "doas",
    "runuser",
    "run-parts",
    "zcat",
    "bzcat",
    "xzcat",
    "base32",
    "shred",
    "cpan",
    "tmux",
    "arp",
    // Windows
    "regedit",
    "bcdboot",
    "bcdedit",
    "schtasks",
    "diskpart",
    "netsh",
    "wevtutil",
    "fsutil",
    "cacls",
    "takeown",
    "attrib",
    "xcopy",
    "robocopy",
    "findstr",
    "forfiles",
    "msiexec",
    "psexec",
    "runas",
    "ntdsutil",
    "esentutl",
    "nltest",
    "dsquery",
    "qwinsta",
    "quser",
    "tracert",
    "nbtstat",
    "klist",
];

/// Of [`STRONG`], the words that are also common English: they need a shell-style argument.
const WEAK: &[&str] = &[
    "sleep", "cat", "find", "head", "tail", "more", "less", "sort", "cut", "set", "echo", "type",
    "dir", "copy", "move", "start", "kill", "who", "last", "date", "time", "w", "net", "reg",
    "ping", "export", "eval", "exec", "del", "ren", "rename", "timeout", "service", "git", "apt",
    "tar", "zip", "cp", "mv", "ln", "touch", "dd", "printf", "nl", "od", "tr", "wc", "strings",
    "grep", "w", "halt", "node", "mount", "perf", "cd", "flock", "shred", "attrib", "trap",
];

/// Command name → whether it is also an English word (needs a shell-style argument).
static COMMANDS: LazyLock<Names> =
    LazyLock::new(|| STRONG.iter().map(|c| (*c, WEAK.contains(c))).collect());

pub(super) fn is_cmd(word: &str) -> Option<bool> {
    let w = last_segment(word);
    let w = w.strip_suffix(".exe").unwrap_or(w);
    if let Some(weak) = COMMANDS.get(w) {
        // `c89`, `python3`: names that end in digits themselves
        return Some(*weak);
    }
    // `python3.10`, `php7.4`: the interpreter with its version
    let t = w.trim_end_matches(|c: char| c.is_ascii_digit() || c == '.');
    // nothing trimmed: the same lookup as above, which found nothing
    if t.len() == w.len() {
        return None;
    }
    COMMANDS.get(t).copied()
}

/// What `word.rsplit(['/', '\\']).next().unwrap_or(word)` gives (the text after the last `/` or
/// `\`, or all of it), found by a byte search instead of a string splitter (both are ASCII, so
/// the cut is a character boundary).
fn last_segment(word: &str) -> &str {
    memchr::memrchr2(b'/', b'\\', word.as_bytes()).map_or(word, |p| &word[p + 1..])
}

/// Commands that take options but no operand: `whoami game` or `uname linux` is not how they
/// are run (they stop at "extra operand"), so a plain word after one is no argument of it.
pub(super) const NO_OPERANDS: &[&str] = &["whoami", "pwd", "uname", "uptime"];

/// Commands that run their argument as a command.
pub(super) const PREFIXES: &[&str] = &[
    "nohup", "sudo", "xargs", "busybox", "env", "timeout", "nice", "strace", "exec", "eval",
    "time", "watch", "chroot", "su",
];

/// Commands the paranoid levels also know that are common English words or short
/// abbreviations: like the weak level-1 names they need a shell-style argument unless glued to a
/// separator.
const PARANOID_WORDS: &[&str] = &[
    "ip", "at", "ab", "ex", "ss", "top", "chef", "knife", "screen", "script", "host", "route",
    "expect", "gem", "rev", "trap", "man", "file", "which", "locate", "watch", "yes", "test",
    "read", "source", "help", "wait", "jobs", "history", "logout", "exit", "clear", "reset",
    "diff", "patch", "make", "join", "paste", "split", "fold", "look", "column", "finger", "write",
    "wall", "users", "groups", "free", "stat", "factor", "cal", "sync", "nice", "logger", "fetch",
    "links", "john", "sc", "ver", "vol", "tree", "call", "goto", "pause", "title", "color",
    "prompt", "path", "label", "format", "query", "recover", "replace", "verify", "where",
    "explorer", "notepad", "control", "shift", "choice", "clip", "comp", "compact", "convert",
    "expand", "print", "ar", "pr", "fmt", "seq", "rc",
];

/// Administration and attack tools only the paranoid levels know (not English words).
const PARANOID_TOOLS: &[&str] = &[
    "htop",
    "ll",
    "la",
    "whereis",
    "fg",
    "bg",
    "df",
    "du",
    "lsattr",
    "basename",
    "dirname",
    "realpath",
    "readlink",
    "mktemp",
    "shuf",
    "expr",
    "bc",
    "dc",
    "xz",
    "unxz",
    "7z",
    "zstd",
    "rar",
    "unrar",
    "cpio",
    "pax",
    "lsmod",
    "rmmod",
    "lspci",
    "lsusb",
    "lsblk",
    "fdisk",
    "mkfs",
    "losetup",
    "journalctl",
    "sestatus",
    "getenforce",
    "auditctl",
    "nft",
    "ufw",
    "firewall-cmd",
    "tshark",
    "ngrep",
    "masscan",
    "terraform",
    "helm",
    "pip2",
    "conda",
    "gcloud",
    "mysql",
    "psql",
    "sqlite3",
    "mongo",
    "redis-cli",
    "ldapsearch",
    "smbclient",
    "rpcclient",
    "snmpwalk",
    "showmount",
    "exportfs",
    "mkswap",
    "swapon",
    "renice",
    "ionice",
    "taskset",
    "stdbuf",
    "wget2",
    "aria2c",
    "w3m",
    "elinks",
    "jq",
    "yq",
    "uudecode",
    "uuencode",
    "zip2john",
    "hashcat",
    "cls",
    "assoc",
    "ftype",
    "pushd",
    "popd",
    "chkdsk",
    "defrag",
    "driverquery",
    "gpresult",
    "gpupdate",
    "mountvol",
    "openfiles",
    "pnputil",
    "powercfg",
    "reagentc",
    "sfc",
    "subst",
    "tscon",
    "tskill",
    "typeperf",
    "waitfor",
    "winrm",
    "winrs",
    "wusa",
    "mstsc",
    "mmc",
    "cmdkey",
    "dnscmd",
    "dsget",
    "dsmod",
    "setx",
    "fc",
];

/// What the paranoid levels make of `word`: `Some(weak)` when it names a command (the level-1
/// dictionary, the paranoid lists, a tool family's subcommand such as `ansible-config`), `weak`
/// when it is also an English word.
pub(super) fn paranoid_cmd(word: &str) -> Option<bool> {
    static EXTRA: LazyLock<Names> = LazyLock::new(|| {
        PARANOID_TOOLS
            .iter()
            .map(|c| (*c, false))
            .chain(PARANOID_WORDS.iter().map(|c| (*c, true)))
            .collect()
    });
    if let Some(weak) = is_cmd(word) {
        return Some(weak);
    }
    let w = last_segment(word);
    let w = w.strip_suffix(".exe").unwrap_or(w);
    if let Some(weak) = EXTRA.get(w) {
        return Some(*weak);
    }
    let t = w.trim_end_matches(|c: char| c.is_ascii_digit() || c == '.');
    // nothing trimmed: the same lookup as above, which found nothing
    if t.len() != w.len() {
        if let Some(weak) = EXTRA.get(t) {
            return Some(*weak);
        }
    }
    tool_subcommand(w).then_some(false)
}

/// `ansible-config`, `chef-run`, `aa-disable`: a command of a tool family that names its
/// commands `tool-verb`. Such a name with an argument is that tool's command line.
pub(super) fn tool_subcommand(word: &str) -> bool {
    let w = last_segment(word);
    w.split_once('-').is_some_and(|(tool, rest)| {
        rest.len() >= 2
            && rest.bytes().all(|c| c.is_ascii_lowercase() || c == b'-')
            && matches!(tool, "ansible" | "chef" | "aa" | "ssh" | "rmt")
    })
}
