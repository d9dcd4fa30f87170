//! File inclusion: path traversal (`../` climbing out of the web root), references to files
//! only an attacker asks for (`/etc/passwd`, `win.ini`, `/proc/self/environ`), stream wrappers
//! and UNC paths here; remote inclusion by address in `address`, XML external entities in
//! `xml`, URLs in file-naming parameters in `remote`, internal host names (SSRF) in `ssrf`,
//! and the paranoia level 2-4 fragments in `paranoid`.

use std::sync::LazyLock;

use aho_corasick::AhoCorasick;

use super::literals;

mod address;
mod paranoid;
mod remote;
mod ssrf;
mod xml;

use address::{ip_literal, metadata_host, remote_by_ip, slashless_url_to_ip};
pub use remote::remote_include;
use xml::external_entity;

/// Files and directories no request value legitimately names (matched on a normalised path:
/// lower-case, `\` as `/`, `//` and `/./` collapsed).
static SENSITIVE: LazyLock<AhoCorasick> = LazyLock::new(|| {
    literals(&[
        "etc/passwd",
        "etc/shadow",
        "etc/group",
        "etc/hosts",
        "etc/issue",
        "etc/motd",
        "etc/crontab",
        "etc/sudoers",
        "etc/master.passwd",
        "etc/security/",
        "etc/httpd/",
        "etc/apache2/",
        "etc/nginx/",
        "etc/mysql/",
        "etc/ssh/",
        "/proc/",
        "/sys/class",
        "/sys/kernel",
        "/sys/devices",
        "/sys/firmware",
        "/sys/module",
        ".ssh/id_",
        ".ssh/authorized_keys",
        "/root/",
        ".bash_history",
        ".bashrc",
        "/var/log/",
        "/var/run/secrets",
        "win.ini",
        "boot.ini",
        "system.ini",
        "windows/system32",
        "winnt/system32",
        "system32/drivers",
        "web-inf/web.xml",
        "web-inf/classes",
        "meta-inf/",
        "web.config",
        ".htaccess",
        ".htpasswd",
        ".git/config",
        ".git/head",
        ".svn/entries",
        "wp-config.php",
        "ntuser.dat",
        "sam/sam",
        "/config/sam",
        "/.aws/credentials",
        "/.docker/",
        "/.kube/",
        "/.gnupg/",
        "/.git-credentials",
        "/.netrc",
        "/.pgpass",
        "/.npmrc",
        "localconfiguration.php",
        "/.env",
        "/httpd.conf",
        "/apache2.conf",
        "/nginx.conf",
        "/php.ini",
        "/my.cnf",
        "etc/kubernetes/",
    ])
});

/// Stream wrappers and schemes that read local files or reach internal services.
static WRAPPERS: LazyLock<AhoCorasick> = LazyLock::new(|| {
    literals(&[
        "file://",
        "file:/",
        "php://",
        "zip://",
        "phar://",
        "expect://",
        "glob://",
        "data://",
        "netdoc:",
        "jar:file:",
        "jar:http",
        "gopher://",
        "dict://",
        "ldap://",
        "tftp://",
        "compress.zlib://",
        "compress.bzip2://",
        "ogg://",
        "rar://",
        "ssh2.",
    ])
});

/// The file inclusion rules of paranoia levels 2 to 4 (the inspector calls this only above
/// level 1; [`detect`] holds the level-1 rules): URLs to IP literals and `?`-cut URLs anywhere,
/// operating-system and backup file names without traversal, then any absolute URL or `..`,
/// then drive and home-directory paths.
pub fn paranoid(value: &str, level: crate::policy::Paranoia) -> bool {
    paranoid::at_level(value, level.level())
}

/// "Fix /etc/init.d/rc error message on systems without it", "(/usr/local, /home) without
/// root": a sentence of words that names paths. A file is included when the path is the value
/// (or is reached by traversal or a wrapper); a path mentioned in a [`prose_sentence`] with no
/// `..` and no command word right before it (`cat /etc/passwd`, `copy /etc/group`) is prose.
pub(crate) fn path_in_prose(value: &str) -> bool {
    // `/dev/tcp/host/port` opens a connection wherever bash reads it
    if value.contains("..")
        || value.contains("/dev/tcp/")
        || value.contains("/dev/udp/")
        || !prose_sentence(value)
    {
        return false;
    }
    let mut prev_command = false;
    for tok in value.split_ascii_whitespace() {
        let t = tok.trim_start_matches(['(', '[', '"', '\'', '`', '*']);
        if t.starts_with('/') && prev_command {
            return false;
        }
        let t = t.trim_end_matches([')', ']', '"', '\'', '`', '.', ',', ':', '!', '?']);
        prev_command = super::cmdi::is_command_word(&t.to_ascii_lowercase());
    }
    true
}

/// A sentence of words: at least four plain words (letters, `-` and `'`, with the quotes,
/// brackets and punctuation around them stripped), which outnumber the other tokens (list
/// bullets and `#1234` references aside) two to one, and no shell, assignment or template
/// syntax (`;`, `|`, `&`, `$`, `<`, `>`, an `=` outside `==`, `{`, `%`, a line break, a NUL,
/// a backtick span longer than one token). What it mentions (a path, a command, a function)
/// is named, not run.
pub(crate) fn prose_sentence(value: &str) -> bool {
    if value.len() > 4096
        || value.contains(['\n', '\r', ';', '|', '&', '$', '<', '>', '\0', '{', '%'])
        || assigns(value)
    {
        return false;
    }
    let (mut words, mut others) = (0usize, 0usize);
    for tok in value.split_ascii_whitespace() {
        if tok.matches('`').count() % 2 == 1 {
            // a backtick span longer than one token
            return false;
        }
        let t = tok.trim_start_matches(['(', '[', '"', '\'', '`', '*']);
        let t = t.trim_end_matches([')', ']', '"', '\'', '`', '.', ',', ':', '!', '?']);
        // list bullets and dashes (`*`, `-`, `--`) and bug references (`#1234`) are neither
        let reference = t
            .strip_prefix('#')
            .is_some_and(|n| n.bytes().all(|c| c.is_ascii_digit()));
        if reference || !t.bytes().any(|c| c.is_ascii_alphanumeric()) {
            continue;
        }
        let word = t.as_bytes().first().is_some_and(u8::is_ascii_alphabetic)
            && t.bytes()
                .all(|c| c.is_ascii_alphabetic() || c == b'-' || c == b'\'');
        if word {
            words += 1;
        } else {
            others += 1;
        }
    }
    words >= 4 && words >= 2 * others
}

/// An `=` that is not half of a comparison's `==` (`offset==0` states a condition; `x=1`,
/// `file=/etc/passwd` assign).
fn assigns(value: &str) -> bool {
    let b = value.as_bytes();
    memchr::memchr_iter(b'=', b).any(|p| {
        !(b.get(p + 1) == Some(&b'=') || (p > 0 && b[p - 1] == b'=')) || b.get(p + 2) == Some(&b'=')
    })
}

/// Whether `value` (already decoded) is a file inclusion or traversal.
pub fn detect(value: &str) -> bool {
    if value.len() >= 8
        && finder!(b"0x").find(value.as_bytes()).is_some()
        && hex_text_traversal(value.as_bytes())
    {
        return true;
    }
    if value.contains('>') && redirect_into_system_dir(value.as_bytes()) {
        return true;
    }
    // paths, file names, schemes, UNC paths and DTDs all need one of these
    if !value
        .bytes()
        .any(|c| matches!(c, b'/' | b'\\' | b'.' | b':' | b'<'))
    {
        return false;
    }
    let b = value.as_bytes();
    if b.contains(&b':') && slashless_url_to_ip(b) {
        return true;
    }
    if ssrf::internal_reference(b) {
        return true;
    }
    let tricky = b.contains(&b'\\')
        || !value.is_ascii()
        || finder!(b"..").find(b).is_some()
        || finder!(b"//").find(b).is_some()
        || finder!(b"/./").find(b).is_some()
        || b.contains(&b'<');
    if !tricky {
        // nothing to normalise: the case-insensitive sets match the value as it is
        return (SENSITIVE.is_match(b) && !path_in_prose(value))
            || WRAPPERS
                .find(b)
                .is_some_and(|m| m.start() == 0 || !b[m.start() - 1].is_ascii_alphanumeric());
    }
    let norm = normalize_path(value);
    let n = norm.as_bytes();
    let climbs = traversals(n);
    if climbs >= 2 || (climbs == 1 && (n.starts_with(b"../") || n.starts_with(b"..;"))) {
        return true;
    }
    if SENSITIVE.is_match(n) && looks_like_path_ref(n) && !path_in_prose(value) {
        return true;
    }
    let lower = value.to_ascii_lowercase();
    let l = lower.as_bytes();
    if WRAPPERS
        .find(l)
        .is_some_and(|m| m.start() == 0 || !l[m.start() - 1].is_ascii_alphanumeric())
    {
        return true;
    }
    unc_path(value.as_bytes()) || remote_by_ip(l) || external_entity(n)
}

/// `>/tmp/x`, `>> /dev/shm/.s`, `>/var/www/html/sh.php`: shell output redirected into a file in a
/// world-writable or served directory (a dropped script or payload). A bare `>/tmp` names no
/// file and passes.
fn redirect_into_system_dir(b: &[u8]) -> bool {
    const DIRS: [&[u8]; 5] = [
        b"/tmp/",
        b"/var/tmp/",
        b"/dev/shm/",
        b"/var/www/",
        b"/srv/www/",
    ];
    memchr::memchr_iter(b'>', b).any(|p| {
        let rest = b[p + 1..].strip_prefix(b">").unwrap_or(&b[p + 1..]);
        let rest = rest.trim_ascii_start();
        DIRS.iter().any(|d| {
            rest.len() > d.len()
                && rest[..d.len()].eq_ignore_ascii_case(d)
                && (rest[d.len()].is_ascii_alphanumeric()
                    || matches!(rest[d.len()], b'.' | b'_' | b'-'))
        })
    })
}

/// Extensions of backups, dumps, logs and local databases, which a web server must not serve
/// from a URL path (level 1) and which a file-name parameter rarely names (level 2, with a few
/// more in `paranoid`).
pub(super) const BACKUP_EXTENSIONS: &[&str] = &[
    ".sql",
    ".sql.gz",
    ".sql.zip",
    ".sql.bz2",
    ".sql.tar.gz",
    ".bak",
    ".backup",
    ".swp",
    ".swo",
    ".old",
    ".orig",
    ".save",
    ".log",
    ".db",
    ".sqlite",
    ".sqlite3",
    ".mdb",
    ".ini",
    ".dump",
    "~",
];

/// A URL path that asks for what web servers must not serve: hidden files and directories
/// (`/.git/`, `/.env`, `/.claude/settings.json`; `/.well-known/` excepted) and backups, dumps
/// and logs (`.sql`, `.bak`, `.swp`, `.log`...).
pub fn restricted_path(path: &str) -> bool {
    let lower = path.to_ascii_lowercase();
    // Vite's dev server: `/@fs/` reads any file, `__x00__` names its virtual modules
    if lower.starts_with("/@fs/") || lower.contains("/@id/__x00__") {
        return true;
    }
    // a hidden name is made of file-name characters: `/search/.net core` is a search slug
    // (and `.NET` the framework, as in `/questions/tagged/.net`)
    let hidden = lower.split('/').any(|seg| {
        seg.len() > 1
            && seg.starts_with('.')
            && !seg.starts_with("..")
            && !matches!(seg, ".well-known" | ".net")
            && seg
                .trim_end_matches([' ', '.'])
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b'~'))
    });
    let last = lower.rsplit('/').next().unwrap_or("");
    hidden
        || BACKUP_EXTENSIONS
            .iter()
            .any(|ext| last.len() > ext.len() && last.ends_with(ext))
}

/// Lower-case, `\` (and Unicode slashes: `∕`, `⁄`) → `/`, `․` → `.`, `//` → `/`, `/./` → `/`, `..;/` → `../` (Tomcat), and `.../`
/// sequences seen in filters bypasses kept as `../`.
fn normalize_path(v: &str) -> String {
    let mut s: String =
        v.chars()
            .map(|c| match c {
                // `\` and the slashes and dots that Unicode-folding decoders (IIS `%u2215`,
                // best-fit mappings) turn into path separators
                '\\' | '\u{2215}' | '\u{2044}' | '\u{29f8}' | '\u{2216}' | '\u{fe68}'
                | '\u{29f5}' => '/',
                '\u{2024}' | '\u{fe52}' => '.',
                _ => c.to_ascii_lowercase(),
            })
            .collect();
    if !s.contains('/') {
        return s;
    }
    for (from, to) in [
        ("..;/", "../"),
        ("/./", "/"),
        ("//", "/"),
        ("....//", "../"),
    ] {
        let mut rounds = 0;
        while s.contains(from) && rounds < 8 {
            s = s.replace(from, to);
            rounds += 1;
        }
    }
    s
}

/// `0x2e0x2e/`, `0x5c0x2e./`: dots and slashes written as `0x..` hex text, which some
/// decoders turn back into bytes. A value whose spelled-out path characters climb a directory
/// (`..` as a segment) once decoded is a traversal: the spelling has no other purpose.
fn hex_text_traversal(b: &[u8]) -> bool {
    let hex_char = |w: &[u8]| -> Option<u8> {
        if w.len() < 4 || !w[..2].eq_ignore_ascii_case(b"0x") {
            return None;
        }
        match (w[2], w[3].to_ascii_lowercase()) {
            (b'2', b'e') => Some(b'.'),
            (b'2', b'f') => Some(b'/'),
            (b'5', b'c') => Some(b'\\'),
            _ => None,
        }
    };
    if b.len() > 4096 || !(0..b.len().saturating_sub(3)).any(|i| hex_char(&b[i..]).is_some()) {
        return false;
    }
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if let Some(c) = hex_char(&b[i..]) {
            out.push(c);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    let norm = normalize_path(&String::from_utf8_lossy(&out));
    traversals(norm.as_bytes()) >= 1
}

/// Number of `../` (or a trailing `..`) path segments; Tomcat's `..;` (a `..` segment with a
/// path parameter) counts.
fn traversals(n: &[u8]) -> usize {
    let mut count = 0;
    for p in finder!(b"..").find_iter(n) {
        let before_ok = p == 0 || matches!(n[p - 1], b'/' | b'=' | b' ' | b'"' | b'\'' | b':');
        let after = n.get(p + 2).copied();
        if before_ok
            && matches!(after, Some(b'/' | b';') | None)
            && n.get(p.wrapping_sub(1)) != Some(&b'.')
        {
            count += 1;
        }
    }
    count
}

/// A sensitive name counts when it is a path, not a word in prose ("edit the .htaccess file"
/// still counts: the name is a file).
fn looks_like_path_ref(n: &[u8]) -> bool {
    n.contains(&b'/') || n.contains(&b'.')
}

/// `\\host\share\...`, `\\?\C:\...`
fn unc_path(b: &[u8]) -> bool {
    let t = b
        .iter()
        .position(|c| !c.is_ascii_whitespace())
        .map_or(&b[..0], |p| &b[p..]);
    t.starts_with(b"\\\\")
        && t.len() > 3
        && t[2..].iter().take(256).any(|&c| c == b'\\')
        && !t[2..].starts_with(b"\\")
        || t.starts_with(b"\\\\?\\")
}

#[cfg(test)]
mod tests {
    use super::detect;

    /// A sensitive path mentioned in a sentence of words is prose; the path as the value, in
    /// traversal, after a command or among shell syntax stays an inclusion.
    #[test]
    fn paths_named_in_sentences() {
        for b in [
            "The account list in /etc/passwd is now generated by the installer",
            "We no longer read /proc/meminfo when the cgroup limit is known.",
            "Old entries in /var/log/messages are rotated every week now",
            "(see /etc/group) for the names that the package reserves",
            "/proc/meminfo is unreadable here.  Reported in https://bugs.example.org/1",
            "Skip the /proc/meminfo check when limit==0 on the old kernels",
        ] {
            let lowest = crate::detect::test_support::lowest_level(b, detect, super::paranoid);
            assert!(lowest > 2, "false positive at level {lowest}: {b}");
        }
        for a in [
            "/etc/passwd",
            "../../etc/shadow",
            "file=/etc/passwd",
            "cat /etc/passwd and send the result to me",
            "copy /etc/shadow into the public folder right now",
            "the file==/etc/passwd and the name=/etc/shadow for all users here",
            "the file===/etc/passwd and some more words for all users here",
            "read ../../../etc/passwd from the server for me",
            "/proc/self/environ",
            "x; less /etc/passwd and then more words here",
        ] {
            assert!(detect(a), "missed {a}");
        }
    }

    #[test]
    fn payloads() {
        for a in [
            "../etc/passwd",
            "../../../../etc/passwd",
            "/static/img/../../etc/passwd",
            "..\\..\\windows\\win.ini",
            "file:///etc/./passwd",
            "\\\\::1\\c$\\users\\default\\ntuser.dat",
            "/etc/passwd",
            "....//....//etc/hosts",
            "php://filter/convert.base64-encode/resource=index.php",
            "http://192.168.1.10/shell.txt",
            "<!DOCTYPE foo [ <!ELEMENT foo ANY ><!ENTITY xxe SYSTEM \"file:///etc/passwd\" >]>",
            "<!DOCTYPE x [ <!ENTITY % y SYSTEM \"//y/y\" > %y; ]><x>a</x>",
            "/proc/self/environ",
            "https://[2001:41d0:701:1100::29c8]/gecko.php",
            "ftp://1.1.1.1",
            "https://foo.bar?",
            "http://2852039166/",
            "http://0xA9.0xFE.0xA9.0xFE/",
            "ssh://0177.00.00.01",
            "xri://[0:0:0:0:0:ffff:169.254.169.254]",
            "https://metadata.packet.net/userdata",
            "http://evil.example/shell.txt\0",
            "/usr/local/apache2/conf/httpd.conf",
            "/etc/kubernetes/admin.conf",
            "0x5c0x2e./",
            "0x2e0x2e0x2fetc",
            "..;.\\.;\\.",
            "..;/admin",
            "/path/to/.docker/secrets",
            "/home/u/.git-credentials",
            "..\u{2215}..\u{2215}etc\u{2215}passwd",
            "\u{2024}\u{2024}/\u{2024}\u{2024}/app/.env",
            ">/tmp/curl",
            "x >> /dev/shm/.s",
            "echo x>/var/www/html/sh.php",
        ] {
            assert!(detect(a), "missed: {a}");
        }
    }

    #[test]
    fn restricted_paths() {
        for p in [
            "/.git/config",
            "/.env",
            "/app/.claude/settings.local.json",
            "/backup.sql.zip",
            "/wp-content/debug.log",
            "/index.php~",
            "/@fs/etc/passwd",
            "/@id/__x00__virtual:x",
            "/.env ",
            "/.htpasswd.",
        ] {
            assert!(super::restricted_path(p), "{p}");
        }
        for p in [
            "/.well-known/acme-challenge/x",
            "/static/app.js",
            "/docs/../index.html",
            "/a/b.c/d",
            "/catalog",
            "/get/..foo",
            "/search/.net core",
            "/questions/tagged/.net",
        ] {
            assert!(!super::restricted_path(p), "{p}");
        }
    }

    #[test]
    fn benign() {
        for b in [
            "images/logo.png",
            "See you... later",
            "https://example.com/page?x=1",
            "a..b",
            "/api/v1/items/..hidden",
            "The password file is important",
            "url=http://www.example.com/tan?usp=4#8",
            "version 1.2.3.4",
            "https://example.com:8443/x",
            "see https://www.example.com/a?b=c for details",
            "0x2e is a dot",
            "0x2f0x2e",
            "wait..; really",
            "docker/config",
            ">/tmp",
            "a > /tmp is a comparison",
            "5 >/ 3",
        ] {
            assert!(!detect(b), "false positive: {b}");
        }
    }

    #[test]
    fn slashless_urls_to_internal_addresses() {
        for a in [
            "http:2852039166",
            "http:0xA9FEA9FE",
            "http:/2852039166",
            "http:0251.0376.0251.0376",
            "http:[::ffff:a9fe:a9fe]",
            "https:127.1",
            "http:10.0.0.5:8080/admin",
            "http:169.254.170.2/v2/credentials",
        ] {
            assert!(detect(a), "missed {a}");
        }
        for b in [
            "http:8.8.8.8",
            "http:0xABCDEF",
            "https:example.com",
            "http:123456789",
            "ratio 127:1",
            "time http:later",
        ] {
            assert!(!detect(b), "false positive: {b}");
        }
    }

    #[test]
    fn ambiguous_url_authorities() {
        for a in [
            "http://google.com:80 &@127.88.23.245:22/#",
            "http://google.com:80 &@google.com:80# @127.88.23.245:22/",
            "http://a.com#@10.0.0.1/",
        ] {
            assert!(detect(a), "missed {a}");
        }
        for b in [
            "http://user@example.com/x",
            "http://example.com/#section @ 10.0.0.1",
            "mailto: a&b@example.com",
        ] {
            assert!(!detect(b), "false positive: {b}");
        }
    }

    #[test]
    fn schema_inclusions() {
        for a in [
            "<xs:schema xmlns:xs=\"http://www.w3.org/2001/XMLSchema\"><xs:include namespace=\"http://x.example.com/\"/></xs:schema>",
            "<xsd:import schemaLocation='http://evil.example/a.xsd'/>",
        ] {
            assert!(detect(a), "missed {a}");
        }
        for b in [
            "<project xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" xsi:schemaLocation=\"http://maven.apache.org/POM/4.0.0 http://maven.apache.org/xsd/maven-4.0.0.xsd\"></project>",
            "<xs:include schemaLocation=\"common.xsd\"/>",
            "<xs:element name=\"import\"/>",
        ] {
            assert!(!detect(b), "false positive: {b}");
        }
    }
}
