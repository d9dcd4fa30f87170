//! PHP: execution functions called (also through comments, strings, variables and
//! parenthesised callees) and open tags.

use std::sync::LazyLock;

use aho_corasick::AhoCorasick;

use crate::detect::literals;

/// Functions that execute code or commands or read files: attack when called.
pub(super) static CALLS: LazyLock<AhoCorasick> = LazyLock::new(|| {
    literals(&[
        "phpinfo",
        "bzdecompress",
        "gzdecode",
        "fsockopen",
        "pfsockopen",
        "stream_socket_client",
        "curl_exec",
        "array_map",
        "array_filter",
        "usort",
        "register_shutdown_function",
        "register_tick_function",
        "ini_set",
        "ini_get_all",
        "putenv",
        "dl",
        "mail",
        "symlink",
        "chmod",
        "move_uploaded_file",
        "system",
        "passthru",
        "shell_exec",
        "exec",
        "popen",
        "proc_open",
        "pcntl_exec",
        "assert",
        "eval",
        "create_function",
        "call_user_func",
        "call_user_func_array",
        "base64_decode",
        "gzinflate",
        "gzuncompress",
        "str_rot13",
        "file_get_contents",
        "file_put_contents",
        "fopen",
        "fwrite",
        "readfile",
        "highlight_file",
        "show_source",
        "include",
        "include_once",
        "require",
        "require_once",
        "preg_replace",
        "unserialize",
        "print_r",
        "var_dump",
        "md5",
        "execute",
        "runtime.exec",
        "processbuilder",
    ])
});

/// Calls that are too common in prose/code discussion to count without a PHP-ish context.
pub(super) const CALLS_NEED_CONTEXT: &[&str] = &[
    "mail",
    "dl",
    "chmod",
    "usort",
    "array_map",
    "array_filter",
    "md5",
    "include",
    "require",
    "exec",
    "eval",
    "execute",
    "assert",
    "fopen",
    "system",
];

pub(super) fn calls(b: &[u8]) -> bool {
    for m in CALLS.find_iter(b) {
        let (s, e) = (m.start(), m.end());
        // short names need a word boundary; long ones are distinctive on their own
        if e - s < 8 && s > 0 && (b[s - 1].is_ascii_alphanumeric() || b[s - 1] == b'_') {
            continue;
        }
        let mut k = e;
        let mut spaced = false;
        let mut commented = false;
        // `"system"(...)`: a PHP variable-function call through a string
        if s > 0 && matches!(b[s - 1], b'"' | b'\'') && b.get(k) == Some(&b[s - 1]) {
            k += 1;
        }
        loop {
            while k < b.len() && matches!(b[k], b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c) {
                spaced |= b[k] == b' ';
                k += 1;
            }
            if b.get(k) == Some(&b'/') && b.get(k + 1) == Some(&b'*') {
                k = memchr::memmem::find(&b[k..], b"*/").map_or(b.len(), |p| k + p + 2);
                commented = true;
                continue;
            }
            if b.get(k) == Some(&b'#') || (b.get(k) == Some(&b'/') && b.get(k + 1) == Some(&b'/')) {
                // PHP line comment up to the newline
                match memchr::memchr(b'\n', &b[k..]) {
                    Some(p) => {
                        k += p + 1;
                        commented = true;
                        continue;
                    }
                    None => break,
                }
            }
            break;
        }
        if b.get(k) != Some(&b'(') {
            continue;
        }
        let name = String::from_utf8_lossy(&b[s..e]).to_ascii_lowercase();
        if !CALLS_NEED_CONTEXT.contains(&name.as_str()) {
            return true;
        }
        // `system($_GET[..])`, `eval("...")`, `exec('id')`, `@eval(`: a string, variable or
        // nested call as the argument, and no space before `(`
        let arg = b.get(k + 1).copied();
        if !spaced
            && k == e
            && arg == Some(b')')
            && !matches!(name.as_str(), "md5" | "include" | "require")
        {
            // `system()`, `phpinfo()`: a call probe with no argument
            return true;
        }
        if commented || (!spaced && (k > e || matches!(arg, Some(b'"' | b'\'' | b'$' | b'`')))) {
            // `exec\t(`, `exec/**/(`: no prose puts tabs or comments before a parenthesis
            return true;
        }
        if s > 0
            && matches!(b[s - 1], b'@' | b';' | b'{' | b'.' | b'(' | b'"' | b'\'')
            && k == e + 1
        {
            return true;
        }
        if s > 0 && matches!(b[s - 1], b'@' | b';' | b'{' | b'.' | b'(') && k == e {
            return true;
        }
        // `system(whoami)`, `exec(id)`: a shell command as the argument
        if matches!(name.as_str(), "system" | "exec" | "eval" | "execute") && k == e {
            let arg: String = b[k + 1..]
                .iter()
                .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'-' | b'/' | b'.'))
                .map(|&c| char::from(c))
                .collect();
            if !arg.is_empty() && crate::detect::cmdi::is_command_word(&arg.to_ascii_lowercase()) {
                return true;
            }
        }
    }
    false
}

/// `$f(1)`, `$$g(2)`, `@$__['o'](3)`: a PHP call through a variable.
pub(super) fn variable_call(b: &[u8]) -> bool {
    memchr::memchr_iter(b'$', b).any(|p| {
        let mut i = p + 1;
        while b.get(i) == Some(&b'$') {
            i += 1;
        }
        let start = i;
        if !b
            .get(i)
            .is_some_and(|c| c.is_ascii_alphabetic() || *c == b'_')
        {
            return false;
        }
        while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') && i - start < 64 {
            i += 1;
        }
        if b.get(i) == Some(&b'[') {
            // `$a[...]` with an index (`$a[]` is an append, not a callable)
            match b[i..].iter().take(40).position(|&c| c == b']') {
                Some(close) if close > 1 => i += close + 1,
                _ => return false,
            }
        }
        b.get(i) == Some(&b'(')
    })
}

/// `(system)('uname')`, `($y)("id")`, `(x)/**/('id')`: a parenthesised callee called with a
/// string.
pub(super) fn parenthesised_callee(b: &[u8]) -> bool {
    memchr::memchr_iter(b')', b).any(|p| {
        let mut k = p + 1;
        let mut commented = false;
        loop {
            let mut j = k;
            while j < b.len() && b[j].is_ascii_whitespace() {
                j += 1;
            }
            if b.get(j) == Some(&b'/') && b.get(j + 1) == Some(&b'*') {
                k = memchr::memmem::find(&b[j..], b"*/").map_or(b.len(), |q| j + q + 2);
                commented = true;
                continue;
            }
            if commented {
                k = j; // blanks around a comment are part of the obfuscation
            }
            break;
        }
        if b.get(k) != Some(&b'(') {
            return false;
        }
        // `(system)('uname')`, or `(system)(ls)`: the argument a string or a shell command
        matches!(b.get(k + 1), Some(b'\'' | b'"')) || {
            let arg: String = b[k + 1..]
                .iter()
                .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'-' | b'/'))
                .map(|&c| char::from(c).to_ascii_lowercase())
                .collect();
            !arg.is_empty() && crate::detect::cmdi::is_command_word(&arg) && {
                // the callee must be a PHP function or a variable: `(system)`, `($f)`
                let open = b[..p].iter().rposition(|&c| c == b'(');
                open.is_some_and(|o| {
                    let callee = &b[o + 1..p];
                    callee.first() == Some(&b'$')
                        || CALLS
                            .find(callee)
                            .is_some_and(|m| m.start() == 0 && m.end() == callee.len())
                })
            }
        }
    })
}

/// `<? echo 1; ?>`, `<?=$x?>`: a PHP open tag (not `<?xml`).
pub(super) fn php_short_tag(b: &[u8]) -> bool {
    memchr::memmem::find_iter(b, b"<?").any(|p| {
        let rest = &b[p + 2..];
        if !matches!(
            rest.first(),
            Some(b' ' | b'\t' | b'\n' | b'\r' | b'=' | b'$')
        ) {
            return false;
        }
        // `<? php echo`, `<?\tphp`, `<?  echo x`: a statement keyword after the blanks
        let word_start = rest
            .iter()
            .position(|c| !c.is_ascii_whitespace())
            .unwrap_or(rest.len());
        let word = &rest[word_start..rest.len().min(word_start + 6)];
        let keyword = [&b"php"[..], b"echo", b"print", b"eval", b"system", b"$"]
            .iter()
            .any(|k| word.len() >= k.len() && word[..k.len()].eq_ignore_ascii_case(k));
        keyword || rest.iter().any(|c| *c == b';' || *c == b'(')
    })
}
