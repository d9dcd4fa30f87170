//! The code injection rules of paranoia levels 2 to 4 (PHP fragments a legitimate request may
//! send now and then), gated by level the way CRS gates them.
//!
//! - 2: a dangerous PHP function called, also with blanks or comments before `(` (`exec  (x)`,
//!   `fopen/**/(x)`), a dangerous function named without a call (`shell_exec`), a whole-value
//!   php.ini assignment of a core directive with an ordinary name (`engine=true`), a PHP open
//!   tag dressed as an XML declaration (`<?xml :echo`).
//! - 3: any PHP function of the runtime's dictionary called (`strrev( )`, `unpack($x)`, an
//!   extension function such as `pg_query(`, English-word names such as `crypt(x)`), a
//!   superglobal spelt with blanks (`$_S ERVER[`), `${name}` variable-variables, a value ending
//!   in an open tag (`x<?`).
//! - 4: PHP syntax residue: `$name[`, `$name->`, `Class::`, `<?` anywhere.

use std::sync::LazyLock;

use aho_corasick::AhoCorasick;

use super::php::CALLS;
use crate::detect::literals;
use crate::policy::Paranoia;

/// The code injection rules of paranoia levels 2 to 4 (the inspector calls this only above
/// level 1; [`super::detect`] holds the level-1 rules).
pub fn paranoid(value: &str, level: Paranoia) -> bool {
    let n = level.level();
    if n < 2 || value.is_empty() {
        return false;
    }
    let b = value.as_bytes();
    let b = &b[..b.len().min(2048)];
    if level2(value, b) {
        return true;
    }
    if n >= 3 && level3(b) {
        return true;
    }
    n >= 4 && level4(b)
}

/// PHP functions no prose names (the runtime's string, array, file, date and variable
/// functions), called at level 2.
const FUNCTIONS: &[&str] = &[
    "strrev",
    "strlen",
    "strtolower",
    "strtoupper",
    "strpos",
    "stripos",
    "strstr",
    "stristr",
    "strrchr",
    "strtr",
    "strcmp",
    "strcasecmp",
    "strncmp",
    "substr",
    "substr_count",
    "ucfirst",
    "ucwords",
    "lcfirst",
    "nl2br",
    "htmlspecialchars",
    "htmlentities",
    "html_entity_decode",
    "strip_tags",
    "addslashes",
    "stripslashes",
    "quotemeta",
    "chunk_split",
    "wordwrap",
    "sprintf",
    "vsprintf",
    "printf",
    "vprintf",
    "fprintf",
    "sscanf",
    "number_format",
    "intval",
    "floatval",
    "boolval",
    "strval",
    "settype",
    "gettype",
    "var_export",
    "serialize",
    "unpack",
    "implode",
    "explode",
    "str_split",
    "preg_split",
    "preg_match",
    "preg_match_all",
    "preg_quote",
    "preg_grep",
    "urlencode",
    "urldecode",
    "rawurlencode",
    "rawurldecode",
    "http_build_query",
    "parse_str",
    "parse_url",
    "base64_encode",
    "bin2hex",
    "hex2bin",
    "dechex",
    "hexdec",
    "octdec",
    "decoct",
    "bindec",
    "decbin",
    "uniqid",
    "mt_rand",
    "random_bytes",
    "random_int",
    "crc32",
    "sha1",
    "hash_hmac",
    "password_hash",
    "password_verify",
    "json_encode",
    "json_decode",
    "in_array",
    "is_array",
    "is_string",
    "is_numeric",
    "is_int",
    "is_object",
    "is_null",
    "is_file",
    "is_dir",
    "is_readable",
    "is_writable",
    "is_executable",
    "is_callable",
    "isset",
    "array_diff",
    "array_merge",
    "array_keys",
    "array_values",
    "array_search",
    "array_slice",
    "array_splice",
    "array_walk",
    "array_reduce",
    "array_combine",
    "array_flip",
    "array_unique",
    "array_pop",
    "array_push",
    "array_shift",
    "array_unshift",
    "array_key_exists",
    "ksort",
    "krsort",
    "asort",
    "arsort",
    "uasort",
    "uksort",
    "file_exists",
    "filegroup",
    "fileowner",
    "fileperms",
    "filesize",
    "filemtime",
    "fileatime",
    "filetype",
    "fgets",
    "fgetc",
    "fread",
    "fputs",
    "fputcsv",
    "fgetcsv",
    "fclose",
    "feof",
    "fflush",
    "fseek",
    "ftell",
    "rewind",
    "ftruncate",
    "flock",
    "fpassthru",
    "tmpfile",
    "tempnam",
    "opendir",
    "readdir",
    "scandir",
    "mkdir",
    "rmdir",
    "unlink",
    "chown",
    "chgrp",
    "lchown",
    "umask",
    "realpath",
    "basename",
    "dirname",
    "pathinfo",
    "getcwd",
    "chdir",
    "date_add",
    "date_create",
    "date_diff",
    "date_format",
    "mktime",
    "strtotime",
    "gmdate",
    "checkdate",
    "gethostbyname",
    "gethostbynamel",
    "gethostbyaddr",
    "dns_get_record",
    "getmxrr",
    "ip2long",
    "long2ip",
    "getenv",
    "setcookie",
    "headers_list",
    "http_response_code",
    "ob_start",
    "ob_get_clean",
    "error_reporting",
    "set_error_handler",
    "set_exception_handler",
    "spl_autoload_register",
    "class_exists",
    "function_exists",
    "method_exists",
    "property_exists",
    "get_class",
    "get_object_vars",
    "iterator_to_array",
    "func_get_args",
    "debug_backtrace",
    "debug_zval_refcount",
    "error_log",
    "highlight_string",
    "php_uname",
    "phpversion",
    "php_sapi_name",
    "getmyuid",
    "getmygid",
    "getmyinode",
    "getlastmod",
    "sys_get_temp_dir",
    "set_time_limit",
    "ignore_user_abort",
    "connection_status",
    "mb_substr",
    "mb_strlen",
    "iconv",
    "utf8_encode",
    "utf8_decode",
    "ctype_alpha",
    "ctype_digit",
    "escapeshellarg",
    "escapeshellcmd",
    "filter_var",
    "simplexml_load_string",
    "simplexml_load_file",
    "dom_import_simplexml",
    "libxml_disable_entity_loader",
];

/// Extension prefixes of PHP function names (`pg_`, `ldap_`, `sodium_crypto_`): a name with one
/// of them, called, is PHP.
const EXTENSION_PREFIXES: &[&str] = &[
    "pg_",
    "ldap_",
    "odbc_",
    "sodium_",
    "tidy_",
    "zend_",
    "mysqli_",
    "mysql_",
    "sqlite_",
    "oci_",
    "sqlsrv_",
    "posix_",
    "pcntl_",
    "openssl_",
    "mcrypt_",
    "mb_",
    "iconv_",
    "array_",
    "str_",
    "preg_",
    "ctype_",
    "date_",
    "timezone_",
    "file_",
    "stream_",
    "socket_",
    "ftp_",
    "imap_",
    "session_",
    "ob_",
    "proc_",
    "xml_",
    "xmlrpc_",
    "libxml_",
    "gz",
    "bz",
    "curl_",
    "json_",
    "hash_",
    "gmp_",
    "bc",
    "intl_",
    "grapheme_",
    "idn_",
    "exif_",
    "image",
    "gd_",
    "apache_",
    "apcu_",
    "opcache_",
    "readline_",
    "shmop_",
    "sem_",
    "msg_",
    "shm_",
    "snmp",
    "soap_",
    "spl_",
    "dba_",
    "finfo_",
    "fastcgi_",
    "inotify_",
    "mhash",
    "zip_",
    "rar_",
    "ssh2_",
    "expect_",
    "yaml_",
    "get_",
    "set_",
    "is_",
    "func_",
    "call_",
    "create_",
    "define",
    "ini_",
    "php_",
    "sys_",
    "dl_",
    "fsockopen",
    "forward_static_",
    "register_",
    "restore_",
];

/// PHP functions named like English words (`date`, `crypt`, `count`): called, level 3.
const WORD_FUNCTIONS: &[&str] = &[
    "date",
    "time",
    "count",
    "list",
    "file",
    "key",
    "next",
    "reset",
    "end",
    "each",
    "current",
    "max",
    "min",
    "round",
    "floor",
    "ceil",
    "abs",
    "link",
    "copy",
    "rename",
    "touch",
    "sleep",
    "print",
    "echo",
    "crypt",
    "chroot",
    "define",
    "constant",
    "sort",
    "shuffle",
    "compact",
    "trim",
    "join",
    "split",
    "stat",
    "header",
    "flush",
    "exit",
    "die",
    "usleep",
    "sizeof",
    "checkdate",
    "fopen",
    "exec",
    "system",
    "mail",
    "assert",
    "range",
    "extract",
    "hash",
    "pack",
    "empty",
    "glob",
    "rand",
    "unset",
];

/// Dangerous PHP function names whose spelling (an underscore, a compression or encoding name)
/// prose never has: named at all, level 2.
static DANGEROUS_NAMES: LazyLock<AhoCorasick> = LazyLock::new(|| {
    literals(&[
        "shell_exec",
        "proc_open",
        "pcntl_exec",
        "zlib_decode",
        "base64_decode",
        "gzinflate",
        "gzuncompress",
        "gzdecode",
        "bzdecompress",
        "str_rot13",
        "call_user_func",
        "create_function",
        "assert_options",
        "file_put_contents",
        "file_get_contents",
        "move_uploaded_file",
        "register_shutdown_function",
        "register_tick_function",
        "stream_socket_client",
        "posix_getpwuid",
        "get_defined_vars",
        "show_source",
        "highlight_file",
        "passthru",
        "fsockopen",
        "popen",
        "preg_replace",
    ])
});

/// What stands between a name and its `(`.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Gap {
    /// `name(`
    None,
    /// `name (`: how prose puts a parenthesis after a word
    Blank,
    /// `name  (`, `name\t(`, `name/**/(`, `name\n(`: only code (or a filter bypass) does this
    Tricky,
}

/// Whether the name ending at `e` is called: the next byte after blanks and comments is `(`.
fn called_at(b: &[u8], e: usize) -> Option<Gap> {
    let mut k = e;
    let mut commented = false;
    loop {
        while k < b.len() && b[k].is_ascii_whitespace() {
            k += 1;
        }
        if b.get(k) == Some(&b'/') && b.get(k + 1) == Some(&b'*') {
            k = finder!(b"*/").find(&b[k..]).map_or(b.len(), |p| k + p + 2);
            commented = true;
            continue;
        }
        break;
    }
    if b.get(k) != Some(&b'(') {
        return None;
    }
    Some(match k - e {
        0 => Gap::None,
        1 if !commented && b[e] == b' ' => Gap::Blank,
        _ => Gap::Tricky,
    })
}

/// Every identifier in `b` (ASCII letters, digits, `_`) with where it starts and ends.
fn identifiers(b: &[u8]) -> impl Iterator<Item = (usize, usize)> + '_ {
    let ident = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
    let mut i = 0;
    std::iter::from_fn(move || {
        while i < b.len() {
            if (b[i].is_ascii_alphabetic() || b[i] == b'_') && (i == 0 || !ident(b[i - 1])) {
                let s = i;
                while i < b.len() && ident(b[i]) && i - s < 64 {
                    i += 1;
                }
                return Some((s, i));
            }
            i += 1;
        }
        None
    })
}

fn level2(value: &str, b: &[u8]) -> bool {
    if b.contains(&b'(') {
        for (s, e) in identifiers(b) {
            let Some(gap) = called_at(b, e) else {
                continue;
            };
            let name = String::from_utf8_lossy(&b[s..e]).to_ascii_lowercase();
            let dangerous = CALLS
                .find(name.as_bytes())
                .is_some_and(|m| m.start() == 0 && m.end() == name.len());
            // an argument list that goes on (`eval(` alone at the end is no call)
            let goes_on = b[e..].iter().skip_while(|c| **c != b'(').nth(1).is_some();
            // `exec  (x)`, `fopen/**/(x)`: blanks or comments before the parenthesis; a single
            // blank only after a name prose never writes (`shell_exec (`) or before code
            let spelled = match gap {
                Gap::None | Gap::Tricky => true,
                Gap::Blank => {
                    // `system ("id")`, `exec ($c)`: a string or a variable as the argument
                    let arg = b[e..].iter().skip_while(|c| **c != b'(').nth(1);
                    name.contains('_') || matches!(arg, Some(b'\'' | b'"' | b'$'))
                }
            };
            if dangerous && goes_on && spelled {
                return true;
            }
        }
    }
    DANGEROUS_NAMES.find_iter(b).any(|m| {
        let edge = |c: Option<&u8>| !c.is_some_and(|c| c.is_ascii_alphanumeric() || *c == b'_');
        edge(m.start().checked_sub(1).map(|k| &b[k])) && edge(b.get(m.end()))
    }) || ini_assignment(value)
        || xml_dressed_tag(b)
}

/// A PHP function of the runtime's dictionary called: `strrev( )`, `unpack($x)`, an extension
/// function (`pg_query(`, `sodium_crypto_box(`), a function named like an English word
/// (`crypt(x)`, `date()`).
fn php_function_call(b: &[u8]) -> bool {
    b.contains(&b'(')
        && identifiers(b).any(|(s, e)| {
            let Some(gap) = called_at(b, e) else {
                return false;
            };
            let name = String::from_utf8_lossy(&b[s..e]).to_ascii_lowercase();
            let known = FUNCTIONS.contains(&name.as_str())
                || ((name.contains('_') || name.len() > 6)
                    && EXTENSION_PREFIXES
                        .iter()
                        .any(|p| name.starts_with(p) && name.len() > p.len() + 2));
            let word = WORD_FUNCTIONS.contains(&name.as_str())
                || CALLS
                    .find(name.as_bytes())
                    .is_some_and(|m| m.start() == 0 && m.end() == name.len());
            (known && (gap != Gap::Blank || name.contains('_'))) || (word && gap != Gap::Blank)
        })
}

/// `$_S ERVER['x']`, `$_ GET[0]`: a superglobal whose name is broken by blanks.
fn spaced_superglobal(b: &[u8]) -> bool {
    const NAMES: &[&[u8]] = &[
        b"server", b"get", b"post", b"request", b"cookie", b"files", b"env", b"session",
    ];
    finder!(b"$_").find_iter(b).any(|p| {
        let rest = &b[p + 2..b.len().min(p + 40)];
        let end = rest.iter().position(|c| *c == b'[').unwrap_or(rest.len());
        let letters: Vec<u8> = rest[..end]
            .iter()
            .filter(|c| !c.is_ascii_whitespace())
            .map(u8::to_ascii_lowercase)
            .collect();
        end < rest.len()
            && rest[..end].iter().any(u8::is_ascii_whitespace)
            && NAMES.iter().any(|n| letters == *n)
    })
}

/// `engine=true`, `precision=14`: the whole value a php.ini assignment of a core directive whose
/// name is an ordinary word (level 1 knows the distinctive ones).
fn ini_assignment(v: &str) -> bool {
    const NAMES: &[&str] = &[
        "engine",
        "extension",
        "precision",
        "serialize_precision",
        "smtp",
        "smtp_port",
        "variables_order",
        "request_order",
        "output_buffering",
        "output_handler",
        "implicit_flush",
        "html_errors",
        "error_reporting",
        "default_charset",
        "default_mimetype",
        "sys_temp_dir",
        "date.timezone",
        "arg_separator.input",
        "arg_separator.output",
        "auto_detect_line_endings",
        "default_socket_timeout",
        "user_agent",
        "from",
        "realpath_cache_size",
        "max_input_time",
        "max_input_vars",
        "zend.assertions",
    ];
    let Some((name, value)) = v.split_once('=') else {
        return false;
    };
    let name = name.trim().to_ascii_lowercase();
    let value = value.trim();
    !value.is_empty() && !value.contains(['&', '=', ' ']) && NAMES.contains(&name.as_str())
}

/// `<?xml :echo 1;`, `<?xml\t(`: an open tag that starts like an XML declaration but does not
/// go on the way one does (blank, then `version`).
fn xml_dressed_tag(b: &[u8]) -> bool {
    finder!(b"<?xml").find_iter(b).any(|p| {
        let rest = &b[p + 5..];
        let blank = rest.iter().take_while(|c| c.is_ascii_whitespace()).count();
        let next = &rest[blank..];
        blank > 0 && !next.is_empty() && matches!(next[0], b':' | b'(' | b';' | b'$')
    })
}

fn level3(b: &[u8]) -> bool {
    // `${name}`, a value ending in `<?`
    php_function_call(b)
        || spaced_superglobal(b)
        || finder!(b"${").find_iter(b).any(|p| {
            let rest = &b[p + 2..];
            let n = rest
                .iter()
                .take_while(|c| c.is_ascii_alphanumeric() || **c == b'_')
                .count();
            n > 0 && rest.get(n) == Some(&b'}')
        })
        || b.trim_ascii_end().ends_with(b"<?")
}

/// PHP syntax residue: `$name[`, `$name->`, `Name::x`, `<?`.
fn level4(b: &[u8]) -> bool {
    if finder!(b"<?").find(b).is_some() || finder!(b"->").find(b).is_some() {
        return true;
    }
    let scoped = finder!(b"::").find_iter(b).any(|p| {
        p > 0
            && b[p - 1].is_ascii_alphanumeric()
            && b.get(p + 2)
                .is_some_and(|c| c.is_ascii_alphabetic() || *c == b'$')
    });
    scoped
        || memchr::memchr_iter(b'$', b).any(|p| {
            let rest = &b[p + 1..];
            let n = rest
                .iter()
                .take_while(|c| c.is_ascii_alphanumeric() || **c == b'_')
                .count();
            n > 0
                && (rest[0].is_ascii_alphabetic() || rest[0] == b'_')
                && matches!(rest.get(n), Some(b'[' | b'(' | b'=' | b';'))
        })
}
