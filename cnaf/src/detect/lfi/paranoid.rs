//! File inclusion fragments for paranoia levels 2 to 4: 2 = a URL to an IP literal anywhere
//! (`://` or slashless `http:123456789`), a `data:` URL of text or an application type,
//! a URL (or a bare scheme) ending in `?`, operating-system file and directory names and
//! backup or dump files without any traversal, a single `../`; 3 = any absolute or
//! protocol-relative URL, any `..` segment; 4 = Windows drive paths, home-directory paths (`~/`).

use std::sync::LazyLock;

use aho_corasick::AhoCorasick;

use super::address::{loopback_redirect_host, slashless_url_to_number, whole_web_url};
use super::{ip_literal, literals, metadata_host, normalize_path, traversals};

static OS_DIR_SET: LazyLock<AhoCorasick> = LazyLock::new(|| literals(OS_DIRS));
static OS_FILE_SET: LazyLock<AhoCorasick> = LazyLock::new(|| literals(OS_FILES));
/// [`OS_DIRS`] without their trailing `/`.
static OS_DIR_NAMES: LazyLock<AhoCorasick> = LazyLock::new(|| {
    let names: Vec<&str> = OS_DIRS.iter().map(|d| d.trim_end_matches('/')).collect();
    literals(&names)
});

/// Operating-system directories, matched at the start of the value (after blanks, `>` or
/// `file:`) or after a character that cannot belong to a URL path.
const OS_DIRS: &[&str] = &[
    "/etc/", "/tmp/", "/var/", "/usr/", "/bin/", "/sbin/", "/opt/", "/boot/", "/lib/", "/root",
    "/srv/",
];

/// Operating-system files and directories anywhere in the value.
const OS_FILES: &[&str] = &[
    "/etc/",
    "/dev/null",
    "/dev/tcp/",
    "/dev/udp/",
    "/dev/shm",
    "/dev/zero",
    "/dev/random",
    "/dev/urandom",
    "/dev/stdin",
    "/dev/fd/",
    "c:/windows",
    "c:/winnt",
    "c:/boot",
    "c:/inetpub",
    "%systemroot%",
    "%windir%",
    "system32",
    ".bash_profile",
    ".profile",
    ".zshrc",
    "id_rsa",
    "id_dsa",
    "id_ecdsa",
    "id_ed25519",
    "known_hosts",
    "httpd.conf",
    "php.ini",
    "my.cnf",
    ".user.ini",
];

/// Configuration and key files by their extension; with [`super::BACKUP_EXTENSIONS`], what a
/// value that is a file name or path must not name at level 2.
const CONFIG_EXTENSIONS: &[&str] = &[".conf", ".cnf", ".pem", ".key", ".env"];

/// The fragment rules at `level` (2 to 4; lower levels' rules included).
pub(super) fn at_level(value: &str, level: u8) -> bool {
    let b = value.as_bytes();
    // every rule needs a path, a scheme or a file name
    if !b
        .iter()
        .any(|c| matches!(c, b'/' | b'\\' | b'.' | b':' | b'?' | b'%' | b'~'))
    {
        return false;
    }
    let norm = normalize_path(value);
    let n = norm.as_bytes();
    (level >= 2
        && (level2(n, value)
            || slashless_url_to_number(b)
            || text_data_url(b)
            || super::ssrf::single_label_url(b)))
        || (level >= 3 && level3(b, n))
        || (level >= 4 && level4(n))
}

/// `data:text/plain,<?php ...`, `data:application/x-php;base64,...`: a `data:` URL (without
/// `//`, which the level-1 wrappers catch) whose content is text or an application type, what
/// an include or a fetcher given a URL runs or reflects. Uploads read as data URLs are images,
/// audio, video or fonts and pass.
fn text_data_url(b: &[u8]) -> bool {
    let t = b.trim_ascii_start();
    let Some(rest) = t
        .get(..5)
        .filter(|p| p.eq_ignore_ascii_case(b"data:"))
        .map(|_| &t[5..])
    else {
        return false;
    };
    let kind = |k: &[u8]| {
        rest.len() > k.len()
            && rest[..k.len()].eq_ignore_ascii_case(k)
            && rest[k.len()].is_ascii_alphabetic()
    };
    kind(b"text/") || kind(b"application/")
}

/// `value` is the raw value: an operating-system path mentioned in a sentence
/// ([`super::path_in_prose`]) names no file to include.
fn level2(n: &[u8], value: &str) -> bool {
    urls(n).any(|u| u.host_is_ip || u.trailing_question)
        || bare_scheme_question(n)
        || ((os_file(n) || restricted_file_name(n)) && !super::path_in_prose(value))
        || climbs(n)
}

/// One `../` is enough at level 2; a path that merely ends in `/..` (which clients resolve
/// before sending) is not.
fn climbs(n: &[u8]) -> bool {
    let t = traversals(n);
    t >= 2 || (t == 1 && !n.ends_with(b"/.."))
}

fn level3(raw: &[u8], n: &[u8]) -> bool {
    urls(n).next().is_some()
        || protocol_relative(raw)
        || finder!(b"..").find_iter(n).any(|p| {
            (p == 0 || matches!(n[p - 1], b'/' | b'=' | b' '))
                && n.get(p + 2)
                    .is_none_or(|c| matches!(c, b'/' | b' ' | b';' | b'?' | b'#'))
        })
        || os_dir_named(n)
}

/// `/etc`, `go to /var`: an operating-system directory named as a whole path segment.
fn os_dir_named(n: &[u8]) -> bool {
    OS_DIR_NAMES
        .find_iter(n)
        .any(|m| n.get(m.end()).is_none_or(|c| !c.is_ascii_alphanumeric()))
}

/// `~/`, `~root/`: a path in a user's home directory.
fn home_path(t: &[u8]) -> bool {
    t.first() == Some(&b'~') && {
        let user = t[1..]
            .iter()
            .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'-'))
            .count();
        t.get(1 + user) == Some(&b'/') && user <= 32
    }
}

/// `//evil.example/x`: a URL without a scheme, which takes the page's own.
fn protocol_relative(raw: &[u8]) -> bool {
    let t = raw.trim_ascii_start();
    t.starts_with(b"//") && t.get(2).is_some_and(u8::is_ascii_alphanumeric)
}

fn level4(n: &[u8]) -> bool {
    let t = n.trim_ascii_start();
    // `c:/...` (backslashes are already `/`), `~/`, `~root/`, `//host/...`
    (t.len() > 3 && t[0].is_ascii_alphabetic() && t[1] == b':' && t[2] == b'/')
        || home_path(t)
        || memchr::memchr_iter(b'~', n).any(|p| p > 0 && n[p - 1] == b' ' && home_path(&n[p..]))
}

/// An absolute URL in the value: whether its host is an IP literal (or a metadata host) and
/// whether the whole URL ends in `?`.
struct Url {
    host_is_ip: bool,
    trailing_question: bool,
}

fn urls(n: &[u8]) -> impl Iterator<Item = Url> + '_ {
    finder!(b":/").find_iter(n).filter_map(move |p| {
        // `normalize_path` folded `://` into `:/`
        let mut s = p;
        while s > 0 && (n[s - 1].is_ascii_alphanumeric() || matches!(n[s - 1], b'+' | b'-' | b'.'))
        {
            s -= 1;
        }
        // a one-letter "scheme" is a drive (`c:/users`)
        if p - s < 2 || p - s > 16 || !n[s].is_ascii_alphabetic() {
            return None;
        }
        let rest = &n[p + 2..];
        let end = rest
            .iter()
            .position(|c| matches!(c, b' ' | b'"' | b'\'' | b'<' | b'>'))
            .unwrap_or(rest.len());
        let url = &rest[..end];
        let host_end = url
            .iter()
            .position(|c| matches!(c, b'/' | b'?' | b'#'))
            .unwrap_or(url.len());
        let host = &url[..host_end];
        let host = host.rsplit(|&c| c == b'@').next().unwrap_or(host);
        if host.is_empty() && !n[s..p].eq_ignore_ascii_case(b"file") {
            return None;
        }
        // a loopback redirect URI is judged by its parameter's name (`ssrf`), as at level 1
        let web = whole_web_url(n, s, p);
        Some(Url {
            host_is_ip: !host.is_empty()
                && (ip_literal(host) || metadata_host(host))
                && !(web && loopback_redirect_host(host)),
            trailing_question: url.ends_with(b"?"),
        })
    })
}

/// `http?`, `ftp:x?`, `file?`: a value that starts with a file-fetching scheme name and ends in
/// `?`, the shape of a probe for remote inclusion with the suffix cut off.
fn bare_scheme_question(n: &[u8]) -> bool {
    let t = n.trim_ascii();
    t.ends_with(b"?")
        && !t.contains(&b' ')
        && [&b"file"[..], b"ftp", b"http"]
            .iter()
            .any(|s| t.starts_with(s))
}

fn os_file(n: &[u8]) -> bool {
    OS_FILE_SET.find_iter(n).any(|m| {
        // a dotfile (`.profile`) is a file when it starts a name, not a property access
        // (`user.profile`, `user?.profile`)
        n[m.start()] != b'.'
            || m.start() == 0
            || matches!(
                n[m.start() - 1],
                b'/' | b'~' | b'=' | b' ' | b'"' | b'\'' | b'>'
            )
    }) || OS_DIR_SET.find_iter(n).any(|m| {
        let lead = n[..m.start()].trim_ascii_end();
        lead.is_empty()
            || lead.ends_with(b">")
            || lead.ends_with(b"file:")
            || lead.ends_with(b"=")
            || lead
                .last()
                .is_some_and(|c| matches!(c, b' ' | b'"' | b'\'' | b'(' | b';' | b'|' | b'&'))
    })
}

/// `backup.sql.zip`, `/srv/app/debug.log`: a value that is a file name (no blanks) ending in a
/// backup, dump, log or configuration extension.
fn restricted_file_name(n: &[u8]) -> bool {
    let t = n.trim_ascii();
    if t.is_empty() || t.len() > 512 || t.contains(&b' ') {
        return false;
    }
    let last = t.rsplit(|&c| c == b'/').next().unwrap_or(t);
    super::BACKUP_EXTENSIONS
        .iter()
        .chain(CONFIG_EXTENSIONS)
        .any(|e| last.len() > e.len() && last.ends_with(e.as_bytes()))
        && (last.last() != Some(&b'~') || editor_backup(t, &last[..last.len() - 1]))
}

/// `index.php~`, `.env~`, `src/Makefile~`: an editor's backup appends `~` to the name of a
/// file, one with an extension, a dotfile or one named in a directory; a word that merely ends
/// in `~` ("tilde~wave~", "hello~") names no file.
fn editor_backup(path: &[u8], stem: &[u8]) -> bool {
    path.contains(&b'/')
        || stem
            .windows(2)
            .any(|w| w[0] == b'.' && w[1].is_ascii_alphanumeric())
}

#[cfg(test)]
mod tests {
    use super::at_level;

    fn level(v: &str) -> Option<u8> {
        (2..=4).find(|l| at_level(v, *l))
    }

    #[test]
    fn level_2_fragments() {
        for a in [
            "see http://10.0.0.1/x.txt",
            "x=http://192.168.0.1",
            "https://foo.bar/inc.php?",
            "http?",
            "file?",
            "ftps?",
            ">/tmp/curl",
            "/etc/nginx.conf",
            "/usr/local/bin/x",
            "C:\\Windows\\System32\\drivers",
            "backup.sql.zip",
            "site/debug.log",
            "/static/../secret",
            "cat ~/.bash_profile",
            "source .profile",
            "/home/u/.zshrc",
            "/dev/tcp/1.2.3.4/80",
            "http:123456789",
            "https:8.8.8.8/x",
            "index.php~",
            ".env~",
            "src/Makefile~",
            "config.inc~",
            "~/.ssh/id_rsa",
            "http:/0x7f.1",
            "data:text/plain",
            "data:text/plain;base64,SGVsbG8=",
            "DATA:application/x-httpd-php,x",
            "http://redis:6379/",
            "gopher://db/_x",
            "go to http://127.0.0.1/admin",
            "http://127.0.0.1:8080/ x",
            "http://0x7f.1/",
        ] {
            assert_eq!(level(a), Some(2), "{a}");
        }
    }

    #[test]
    fn level_2_loopback_redirect_uris() {
        // RFC 8252 loopback redirect URIs, as native apps send them: judged by the parameter's
        // name at level 1, like there; at level 3 any absolute URL counts
        for b in [
            "http://127.0.0.1:53682/",
            "http://127.0.0.1:8400/callback?x=1",
            "https://[::1]:3000/cb",
        ] {
            assert_eq!(level(b), Some(3), "{b}");
        }
    }

    #[test]
    fn level_3_and_4_fragments() {
        for (v, l) in [
            ("https://foo.bar", 3),
            ("http://example.com/@evil.com/", 3),
            ("file:///x", 3),
            ("/get/https://example.com/", 3),
            ("..", 2),
            ("..?x", 3),
            ("go to /var", 3),
            ("ls /usr", 3),
            ("C:\\Users\\me\\file.txt", 4),
            ("~root/x", 4),
            ("//evil.com/x", 3),
        ] {
            assert_eq!(level(v), Some(l), "{v}");
        }
    }

    /// System paths mentioned in a sentence pass level 2; a path as the value, after a command
    /// word, with shell syntax or in an assignment stays caught.
    #[test]
    fn system_paths_in_sentences_pass_level_2() {
        for b in [
            "Move the helper to /usr/libexec so that users do not run it directly.",
            "Reads entropy from /dev/urandom when the getrandom call is missing.",
            "(/opt, /srv) can now be chosen without any extra privileges.",
            "* Fix a typo in the comment at the top of /etc/default/locale",
            "The daemon keeps its socket in `/run/example.sock` by default now.",
            "* [0a1b2c3d] Trim the comment at the top of /etc/default/locale (Closes: #12345)",
        ] {
            assert!(!at_level(b, 2), "false positive: {b}");
        }
        for a in [
            "/etc/nginx.conf",
            "/usr/local/bin/x",
            ">/tmp/curl",
            "path=/etc/app/settings in the config file for the service",
            "cat /etc/app.conf and show me every line of it",
            "see /dev/tcp/10.0.0.1/80 now and then for me",
            "echo hi >/tmp/x and then run it for me please",
            "/opt/app/../../etc/x is where the file lives now",
            "ls /etc/app to list every file there for me",
        ] {
            assert!(at_level(a, 2), "missed {a}");
        }
    }

    /// Home-directory files and editor backups stay caught by level 2 (level 1's rules
    /// included).
    #[test]
    fn home_files_and_backups_stay_caught() {
        for a in [
            "~/.ssh/id_rsa",
            "~root/.bashrc",
            "index.php~",
            "wp-config.php~",
            "site/Makefile~",
        ] {
            assert!(super::super::detect(a) || at_level(a, 2), "missed {a}");
        }
    }

    /// Prose, URLs without an IP host, prices, emails and ordinary paths pass level 2; plain
    /// words and prices pass every level.
    #[test]
    fn ordinary_values_pass_level_2() {
        for b in [
            "https://example.com/path?x=1&y=2#frag",
            "http://localhost:3000/callback",
            "next=https://example.com/a",
            "Is it true? http is a protocol",
            "report_2024.pdf",
            "/api/v1/users/42",
            "/cgi-bin/test",
            "images/logo.png",
            "I live in /var street",
            "What is a .log file?",
            "john@example.com",
            "Price: $12.99.",
            "/dev/api/items",
            "/get/..",
            "x tmp y and etc",
            "version 1.2.3.4",
            "http:8080",
            "https:443",
            "http:later",
            "http:0xABCDEF",
            "https://example.com",
            "It works on http://app:3000 but not on staging",
            "file:///x",
            "gid://shop/Product/42",
            "data:image/png;base64,iVBORw0KGgo=",
            "let name = user?.profile?.name ?? \"anonymous\";",
            "user.profile.zshrc_path",
            "Data: text/plain below",
            "metadata:text/x",
            // a word ending in `~` names no editor backup
            "tilde~wave~",
            "hello~",
            "~wave~",
            "a~b~c~",
        ] {
            assert!(!at_level(b, 2), "false positive: {b}");
        }
        for b in [
            "email@example.com",
            "Price: $12.99",
            "red",
            "a.b",
            "see you... later",
        ] {
            assert!(!at_level(b, 4), "false positive at 4: {b}");
        }
    }
}
