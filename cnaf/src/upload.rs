//! Names of uploaded files (a multipart `filename=`, an `X-Filename`-style header) that put code
//! or configuration where the server runs or trusts it:
//! - a server-side script: `shell.php`, `a.php7`, `x.phtml`, `a.jsp`, `b.aspx`, also with the
//!   tricks Windows and Apache accept (`x.php....`, `x. php`, `x.php .png`, `x.php.jpg`: Apache's
//!   multiple extensions run the inner one);
//! - a PHP session file (`sess_` and a session id), which an upload can plant or overwrite to
//!   inject serialized objects;
//! - a file that configures the web server, the runtime or the shell, or holds credentials
//!   (`.htaccess`, `web.config`, `.user.ini`, `wp-config.php`, `.bashrc`, `authorized_keys`).

/// Extensions a web server executes, as the last extension.
const SCRIPT_EXTENSIONS: &[&str] = &[
    "php", "pht", "phtml", "phar", "phps", "jsp", "jspx", "jsw", "jsv", "jspf", "asp", "aspx",
    "asa", "asax", "ascx", "ashx", "asmx", "cer", "cfm", "cgi", "shtml",
];

/// Extensions that still run when followed by another one (`x.php.jpg`); words that are
/// plausible inside an ordinary file name (`cer`, `cgi`) are left out.
const INNER_SCRIPT_EXTENSIONS: &[&str] = &["php", "phtml", "phar", "jsp", "jspx", "asp", "aspx"];

/// Base names (lower case) of configuration and credential files.
const CONFIG_FILES: &[&str] = &[
    ".htaccess",
    ".htpasswd",
    ".user.ini",
    "php.ini",
    "web.config",
    "settings.php",
    "configuration.php",
    "localsettings.php",
    ".env",
    ".bashrc",
    ".bash_profile",
    ".bash_login",
    ".bash_logout",
    ".bash_history",
    ".profile",
    ".zshrc",
    ".netrc",
    ".npmrc",
    ".pypirc",
    ".gitconfig",
    ".git-credentials",
    ".boto",
    ".s3cfg",
    "authorized_keys",
    "id_rsa",
    "id_ed25519",
    "crontab",
];

/// Why `name` is a dangerous upload, if it is.
pub(crate) fn dangerous(name: &str) -> Option<&'static str> {
    // Windows drops trailing dots and blanks; blanks around a dot do not stop Apache either
    let n: String = name
        .trim()
        .trim_end_matches(['.', ' ', '\0'])
        .to_ascii_lowercase()
        .split('.')
        .map(str::trim)
        .collect::<Vec<_>>()
        .join(".");
    let base = n.rsplit(['/', '\\']).next().unwrap_or(&n);
    if script_extension(base) {
        return Some("server-side script");
    }
    if session_file(base) {
        return Some("PHP session file");
    }
    if CONFIG_FILES.contains(&base) || base.starts_with("wp-config") {
        return Some("server or credential configuration file");
    }
    None
}

/// `x.php`, `x.php7`, `x.php.jpg`: a script extension last, or a runnable one inside.
fn script_extension(base: &str) -> bool {
    let mut exts = base.split('.').skip(1).collect::<Vec<_>>();
    let Some(last) = exts.pop() else {
        return false;
    };
    let php_digits = |e: &str| {
        e.strip_prefix("php")
            .is_some_and(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()))
    };
    SCRIPT_EXTENSIONS.contains(&last)
        || php_digits(last)
        || exts
            .iter()
            .any(|e| INNER_SCRIPT_EXTENSIONS.contains(e) || php_digits(e))
}

/// `sess_` and a PHP session id (at least 20 of `[a-z0-9,-]`, PHP's alphabet).
fn session_file(base: &str) -> bool {
    base.strip_prefix("sess_").is_some_and(|id| {
        id.len() >= 20
            && id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b',' || b == b'-')
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scripts_with_the_tricks_servers_accept() {
        for name in [
            "shell.php",
            "a.PHP7",
            "x.php907.............",
            "settings. php",
            "test.phar .png",
            "avatar.php.jpg",
            "up/load.aspx",
            "C:\\inetpub\\x.asp;.jpg.asp",
            "x.jsp ",
        ] {
            assert_eq!(dangerous(name), Some("server-side script"), "{name}");
        }
    }

    #[test]
    fn sessions_and_configuration() {
        for name in [
            "sess_d8ew88tqmabdcokhumchy8htqm",
            "/tmp/sess_abc123def456ghi789jkl",
            "C:\\temp\\SESS_abc-123-def-456-ghij",
        ] {
            assert_eq!(dangerous(name), Some("PHP session file"), "{name}");
        }
        for name in [
            ".htaccess",
            "web.config",
            "wp-config-php.bak",
            "wp-config_php.txt",
            ".boto",
            "home/.ssh/authorized_keys",
            ".user.ini",
        ] {
            assert_eq!(
                dangerous(name),
                Some("server or credential configuration file"),
                "{name}"
            );
        }
    }

    #[test]
    fn ordinary_uploads_pass() {
        for name in [
            "document.pdf",
            "IMG_2024-05-01.jpg",
            "my_sess_data.txt",
            "session_report.txt",
            "sess_short",
            "mydata.sess",
            "abc.botox.jpg",
            "JACpic.jpg",
            "report.final.v2.docx",
            "phpinfo-notes.txt",
            "certificate.cer.pem",
            "config.yml",
            "Profile picture.png",
            "archive.tar.gz",
            ".",
            "",
        ] {
            assert_eq!(dangerous(name), None, "{name}");
        }
    }
}
