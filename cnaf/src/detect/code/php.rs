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
        // reconnaissance of the PHP process and its host, and network clients: no request value
        // calls these (distinctive `_` names)
        "posix_getpwuid",
        "posix_getpwnam",
        "posix_getuid",
        "posix_geteuid",
        "posix_getgid",
        "posix_getegid",
        "posix_uname",
        "posix_kill",
        "posix_setuid",
        "posix_mkfifo",
        "get_defined_functions",
        "get_defined_vars",
        "get_defined_constants",
        "get_current_user",
        "getmypid",
        "curl_init",
        "curl_multi_exec",
        "zlib_decode",
        "assert_options",
        "apache_setenv",
        "stream_get_contents",
        "proc_nice",
        "proc_terminate",
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
    // every call found below has its `(` in the value: without one, skip the automaton
    if !b.contains(&b'(') {
        return false;
    }
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
                k = finder!(b"*/").find(&b[k..]).map_or(b.len(), |p| k + p + 2);
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

/// `$f(1)`, `$$g(2)`, `@$__['o'](3)`, `${'a'}(4)`, `$a[0]{'b'} /*x*/ (5)`: a PHP call through a
/// variable. PHP lets blanks and comments stand between the callee and `(`, and the callee may be
/// indexed (`[...]`, `{...}`) any number of times or be a `${...}` expression.
pub(super) fn variable_call(b: &[u8]) -> bool {
    memchr::memchr_iter(b'$', b).any(|p| {
        let mut i = p + 1;
        while b.get(i) == Some(&b'$') {
            i += 1;
        }
        // blanks after `$` are legal before `{`
        let mut braced = false;
        let mut j = i;
        while j < b.len() && matches!(b[j], b' ' | b'\t') {
            j += 1;
        }
        if b.get(j) == Some(&b'{') {
            // `${'name'}`, `${$a}`: a variable named by an expression
            match balanced(b, j) {
                Some(e) if e > j + 2 => {
                    i = e;
                    braced = true;
                }
                _ => return false,
            }
        } else {
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
        }
        let mut indexed = false;
        let mut gap = false;
        let mut commented = false;
        for _ in 0..8 {
            let (k, c) = skip_blanks_and_comments(b, i);
            gap |= k > i;
            commented |= c;
            match b.get(k) {
                Some(b'[' | b'{') => match balanced(b, k) {
                    // `$a[...]` with an index (`$a[]` is an append, not a callable)
                    Some(e) if e > k + 2 => {
                        i = e;
                        indexed = true;
                    }
                    _ => return false,
                },
                Some(b'(') => {
                    if !gap || commented || indexed {
                        return true;
                    }
                    if braced {
                        // `${name} (x)`: a template placeholder followed by prose
                        return false;
                    }
                    // `$fn (1)`: only blanks between; prose like "$PATH (see below)" has words in
                    // the parentheses, a call here takes one plain argument and ends the value
                    let Some(e) = balanced(b, k) else {
                        return false;
                    };
                    let arg = &b[k + 1..e - 1];
                    return !arg.contains(&b' ') && b[e..].iter().all(|c| matches!(c, b';' | b' '));
                }
                _ => return false,
            }
        }
        false
    })
}

/// Index after the bracket matching the one at `open` (`(`, `[` or `{`), within 128 bytes.
fn balanced(b: &[u8], open: usize) -> Option<usize> {
    let mut depth = 0usize;
    for (k, &c) in b.iter().enumerate().skip(open).take(128) {
        match c {
            b'(' | b'[' | b'{' => depth += 1,
            b')' | b']' | b'}' => {
                depth = depth.checked_sub(1)?;
                if depth == 0 {
                    return Some(k + 1);
                }
            }
            _ => {}
        }
    }
    None
}

/// Skip blanks and PHP comments (`/* */`, `//` and `#` to the end of the line) from `i`; returns
/// the next index and whether a comment was skipped.
fn skip_blanks_and_comments(b: &[u8], mut i: usize) -> (usize, bool) {
    let mut commented = false;
    loop {
        while i < b.len() && matches!(b[i], b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c) {
            i += 1;
        }
        if b.get(i) == Some(&b'/') && b.get(i + 1) == Some(&b'*') {
            match finder!(b"*/").find(&b[i + 2..]) {
                Some(q) => {
                    i += q + 4;
                    commented = true;
                    continue;
                }
                None => return (i, commented),
            }
        }
        if b.get(i) == Some(&b'#') || (b.get(i) == Some(&b'/') && b.get(i + 1) == Some(&b'/')) {
            match memchr::memchr(b'\n', &b[i..]) {
                Some(q) => {
                    i += q + 1;
                    commented = true;
                    continue;
                }
                None => return (i, commented),
            }
        }
        return (i, commented);
    }
}

/// `O:8:"stdClass":1:{...}`, `C:3:"Foo":0:{}`: a PHP serialized object. Handing one to
/// `unserialize()` instantiates an attacker-chosen class (object injection); serialized arrays and
/// scalars (`a:2:{...}`, `s:3:"abc";`) carry no class and pass.
pub(super) fn serialized_object(b: &[u8]) -> bool {
    memchr::memchr_iter(b':', b).any(|p| {
        if p == 0 || !matches!(b[p - 1], b'O' | b'C') {
            return false;
        }
        if p >= 2 && (b[p - 2].is_ascii_alphanumeric() || b[p - 2] == b'_') {
            return false;
        }
        // `O:<len>:"<Class>":<count>:{`
        let digits = |mut i: usize| {
            let s = i;
            while i < b.len() && b[i].is_ascii_digit() {
                i += 1;
            }
            (i > s && i - s <= 4).then_some(i)
        };
        let Some(i) = digits(p + 1) else {
            return false;
        };
        let Ok(len) = std::str::from_utf8(&b[p + 1..i])
            .unwrap_or("")
            .parse::<usize>()
        else {
            return false;
        };
        if b.get(i) != Some(&b':') || b.get(i + 1) != Some(&b'"') {
            return false;
        }
        let name_start = i + 2;
        let name_end = name_start + len;
        if len == 0 || name_end + 2 > b.len() || b[name_end] != b'"' || b[name_end + 1] != b':' {
            return false;
        }
        let name = &b[name_start..name_end];
        let class_name = (name[0].is_ascii_alphabetic() || matches!(name[0], b'_' | b'\\'))
            && name
                .iter()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'\\'));
        class_name
            && digits(name_end + 2)
                .is_some_and(|k| b.get(k) == Some(&b':') && b.get(k + 1) == Some(&b'{'))
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
                k = finder!(b"*/").find(&b[j..]).map_or(b.len(), |q| j + q + 2);
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
            // `(ls/* x */)`: the comment is no part of the argument
            let arg: String =
                crate::detect::without_block_comments(&b[k + 1..b.len().min(k + 129)])
                    .iter()
                    .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'-' | b'/'))
                    .map(|&c| char::from(c).to_ascii_lowercase())
                    .collect();
            !arg.is_empty() && crate::detect::cmdi::is_command_word(&arg) && {
                // the callee must be a PHP function or a variable: `(system)`, `($f)`
                let open = b[..p].iter().rposition(|&c| c == b'(');
                open.is_some_and(|o| {
                    // `(/* x */system)`: blanks and comments around the name are no part of it
                    let callee = crate::detect::without_block_comments(&b[o + 1..p]);
                    let callee = callee.trim_ascii();
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
    finder!(b"<?").find_iter(b).any(|p| {
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

/// `[system][0](ls);`, `("sys"."t"."em")('uname');`, `(['system'])[0]('id');`: a PHP callee
/// assembled from string pieces or taken out of an array literal, then called. Read the value
/// the way PHP evaluates the callee (pieces concatenated, the one-element array indexed) and ask
/// the call rules again.
pub(super) fn assembled_callee(b: &[u8]) -> bool {
    // every concatenation marker has a `.`, every index marker a `[`: most values have
    // neither, and one byte scan answers for all nine markers
    let concat = b.contains(&b'.')
        && [&b"\".\""[..], b"'.'", b"\" .", b"' .", b". \"", b". '"]
            .iter()
            .any(|m| memchr::memmem::find(b, m).is_some());
    let indexed = b.contains(&b'[')
        && [&b"]["[..], b")[", b"] ["]
            .iter()
            .any(|m| memchr::memmem::find(b, m).is_some());
    if !(concat || indexed) || b.len() > 512 {
        return false;
    }
    // comments go first, so `{/* x */0}` reads as the index `{0}`
    let stripped = crate::detect::without_block_comments(b);
    let b = &stripped[..];
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            // `[0]`, `{ 0 }`: the index of a one-element array
            b'[' | b'{' => {
                let close = if b[i] == b'[' { b']' } else { b'}' };
                let inner_end = b[i + 1..].iter().position(|&c| c == close);
                match inner_end {
                    Some(e)
                        if e > 0
                            && b[i + 1..i + 1 + e]
                                .iter()
                                .all(|c| c.is_ascii_digit() || c.is_ascii_whitespace()) =>
                    {
                        i += e + 2;
                    }
                    _ => i += 1,
                }
            }
            b']' | b'}' | b'"' | b'\'' | b'.' => i += 1,
            c if c.is_ascii_whitespace() => i += 1,
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    // `(string)` casts are no-ops on a string
    let folded: Vec<u8> = {
        let lower = out.to_ascii_lowercase();
        let mut v = Vec::with_capacity(lower.len());
        let mut k = 0;
        while k < lower.len() {
            if lower[k..].starts_with(b"(string)") {
                k += 8;
            } else {
                v.push(lower[k]);
                k += 1;
            }
        }
        v
    };
    let with_quotes = requote_args(&folded);
    calls(&with_quotes) || parenthesised_callee(&with_quotes)
}

/// After quotes were dropped, `system(ls);` reads as a call with a command word; put a quote back
/// in front of a plain argument so `(system)(uname)` also reads as a call with a string.
fn requote_args(v: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(v.len() + 2);
    for (k, &c) in v.iter().enumerate() {
        out.push(c);
        if c == b'(' && k > 0 && v[k - 1] == b')' {
            out.push(b'\'');
        }
    }
    out
}

/// `checkdate/*x*/()`, `serialize#c\n()`, `pi\x0b()`, `FILE\r\n()`: a name separated from its
/// argument list by a comment, a vertical tab, or line breaks before an empty `()` — separators
/// only code (PHP, SQL, JS) allows there, used to slip calls past name-then-`(` filters. Prose
/// puts a blank or nothing between a word and a parenthesis.
pub(super) fn obfuscated_call(b: &[u8]) -> bool {
    if !b.contains(&b'(') {
        return false;
    }
    let word = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
    let mut i = 0;
    while i < b.len() {
        if !(b[i].is_ascii_alphabetic() || b[i] == b'_') || (i > 0 && word(b[i - 1])) {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && word(b[i]) {
            i += 1;
        }
        if i - start < 2 {
            continue;
        }
        let gap_start = i;
        // a `#` line comment counts only glued to the name (`Item #3` is prose)
        let glued_hash = b.get(i) == Some(&b'#');
        let (k, commented) = skip_blanks_and_comments(b, i);
        if b.get(k) != Some(&b'(') || k == gap_start {
            continue;
        }
        let gap = &b[gap_start..k];
        let hash_ok = !gap.contains(&b'#') || glued_hash;
        let slash_comment =
            finder!(b"/*").find(gap).is_some() || finder!(b"//").find(gap).is_some();
        if commented && hash_ok && (slash_comment || glued_hash) {
            return true;
        }
        if !commented && gap.contains(&0x0b) {
            return true;
        }
        if !commented
            && gap.iter().any(|c| matches!(c, b'\n' | b'\r'))
            && b.get(k + 1) == Some(&b')')
        {
            return true;
        }
    }
    false
}

/// `$ {'a'}`, `${'_VAR'.'IABLE'}`, `$ { CONSTANT }`: a PHP variable-variable — blanks between `$`
/// and `{` (no template or shell syntax allows them) or a quoted string as the name.
pub(super) fn variable_variable(b: &[u8]) -> bool {
    memchr::memchr_iter(b'$', b).any(|p| {
        let mut i = p + 1;
        let blanks = i;
        while i < b.len() && matches!(b[i], b' ' | b'\t') {
            i += 1;
        }
        if b.get(i) != Some(&b'{') {
            return false;
        }
        let Some(close) = b[i..].iter().take(128).position(|&c| c == b'}') else {
            return false;
        };
        let inner = b[i + 1..i + close].trim_ascii();
        if inner.is_empty() {
            return false;
        }
        let spaced = i > blanks;
        let quoted = matches!(inner.first(), Some(b'\'' | b'"'))
            && matches!(inner.last(), Some(b'\'' | b'"'))
            && inner.len() >= 2;
        quoted
            || (spaced
                && inner
                    .iter()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'$')))
    })
}
