//! php.ini directives assigned in a value: what `ini_set`-style parameter injection and
//! `.user.ini` / `-d` smuggling send.

/// `allow_url_include=1`, `memory_limit = 512M`, `opcache.jit=1235`, `zend_extension=x.so`: the whole
/// value is one php.ini directive assignment — what `ini_set`-style parameter injection and
/// `.user.ini`/`-d` smuggling send. Directives are recognised by PHP's extension prefixes
/// (`opcache.`, `session.`...) or by the list of security-relevant core names (generic words
/// such as `engine` or `extension` left out: `extension=pdf` is an ordinary filter).
pub(super) fn php_ini_assignment(v: &str) -> bool {
    const PREFIXES: &[&str] = &[
        "opcache.",
        "session.",
        "mbstring.",
        "zend.",
        "pcre.",
        "mail.",
        "phar.",
        "assert.",
        "xdebug.",
        "apc.",
        "mysqli.",
        "pdo_mysql.",
        "sqlite3.",
        "curl.",
        "openssl.",
        "soap.",
    ];
    const NAMES: &[&str] = &[
        "allow_url_include",
        "allow_url_fopen",
        "auto_prepend_file",
        "auto_append_file",
        "open_basedir",
        "disable_functions",
        "disable_classes",
        "include_path",
        "extension_dir",
        "zend_extension",
        "memory_limit",
        "max_execution_time",
        "error_log",
        "display_errors",
        "log_errors",
        "upload_tmp_dir",
        "sendmail_path",
        "sendmail_from",
        "unserialize_max_depth",
        "unserialize_callback_func",
        "short_open_tag",
        "expose_php",
        "register_globals",
        "safe_mode",
        "file_uploads",
        "post_max_size",
        "upload_max_filesize",
        "user_ini.filename",
        "doc_root",
        "user_dir",
        "cgi.force_redirect",
        "enable_dl",
    ];
    let Some((name, value)) = v.split_once('=') else {
        return false;
    };
    let name = name.trim().to_ascii_lowercase();
    let value = value.trim();
    if value.is_empty() || value.contains(['&', '=']) || name.is_empty() {
        return false;
    }
    NAMES.contains(&name.as_str())
        || PREFIXES.iter().any(|p| {
            name.strip_prefix(p).is_some_and(|rest| {
                !rest.is_empty() && rest.bytes().all(|c| c.is_ascii_lowercase() || c == b'_')
            })
        })
}

/// `engine=true`, `precision=14`: the whole value a php.ini assignment of a core directive whose
/// name is an ordinary word (level 1 knows the distinctive ones).
pub(super) fn core_ini_assignment(v: &str) -> bool {
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
