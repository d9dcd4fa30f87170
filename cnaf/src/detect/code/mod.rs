//! Code injection: PHP, Java expression languages (EL, OGNL, SpEL) and JNDI lookups, Node and
//! Python payloads, server-side template injection, server-side includes, VBScript/ASP, and
//! NoSQL operator/JavaScript injection. Each language is recognised by constructs that only its
//! code has (a call of an execution function, an interpreter tag, an evaluated expression that
//! computes or reaches the runtime), not by bare words.

use std::sync::LazyLock;

use aho_corasick::AhoCorasick;

use super::literals;

/// Markers that are code in one of the languages above wherever they appear.
pub(crate) static MARKERS: LazyLock<AhoCorasick> = LazyLock::new(|| {
    literals(&[
        // PHP
        "<?php",
        "<?=",
        "php://",
        "phar://",
        "$_get[",
        "$_post[",
        "$_request[",
        "$_server[",
        "$_cookie[",
        "$_files[",
        "$_env[",
        "$globals[",
        "${@",
        // Java / EL / OGNL / SpEL / JNDI
        "java.lang.runtime",
        "java.lang.processbuilder",
        "java.lang.system",
        "getruntime()",
        ".getclass()",
        "class.forname(",
        "#_memberaccess",
        "@java.lang",
        "new java.",
        "t(java.",
        "javax.script",
        "${jndi:",
        "${${",
        "${::-",
        "${lower:",
        "${upper:",
        "${env:",
        "${sys:",
        "${base64:",
        "#context[",
        "freemarker.template",
        "<#assign",
        "?new()",
        "${class.",
        "$class.inspect",
        "#set(",
        "#{t(",
        // Java deserialization: the stream magic AC ED 00 05 in hex and in its three base64
        // alignments, and the commons-collections / groovy gadget classes
        "aced0005",
        "ro0ab",
        "kztaau",
        "cs7qaf",
        "clonetransformer",
        "forclosure",
        "instantiatefactory",
        "instantiatetransformer",
        "invokertransformer",
        "prototypeclonefactory",
        "prototypeserializationfactory",
        "whileclosure",
        "chainedtransformer",
        "constanttransformer",
        "convertedclosure",
        "methodclosure",
        "templatesimpl",
        "com.opensymphony.xwork2",
        "org.apache.commons.collections",
        "org.codehaus.groovy.runtime",
        "org.springframework.context.support",
        "com.sun.org.apache",
        "com.sun.rowset",
        "ognl.ognlcontext",
        // Perl
        "@{[",
        // Node / JS runtime, prototype pollution
        "_$$nd_func$$_",
        "__js_function",
        "__proto__",
        "constructor.prototype",
        "constructor[prototype]",
        "module.exports",
        "process[",
        "require[",
        "console[",
        "new function(",
        "new function (",
        "process.spawn(",
        "for(;;)",
        "process.binding(",
        "process.env",
        "console.log(",
        "console.info(",
        "child_process",
        "process.mainmodule",
        "global.process",
        "require('fs')",
        "require(\"fs\")",
        // Python / Jinja / YAML
        "__import__(",
        "__class__",
        "__mro__",
        "__subclasses__",
        "__globals__",
        "__builtins__",
        "os.system(",
        "os.popen(",
        "subprocess.",
        "!!python/",
        "pickle.loads",
        "{{config",
        "{{self",
        "{{request",
        "{{lipsum",
        "{{cycler",
        "{{joiner",
        "{{namespace",
        "{php}",
        "[php]",
        "[/php]",
        "[\\php]",
        "{/php}",
        "{{constructor",
        // server-side includes
        "<!--#exec",
        "<!--#include",
        "<!--#echo",
        "<!--#config",
        "<!--#printenv",
        // VBScript / ASP
        "wscript.shell",
        "createobject(",
        "on error resume next",
        "server.scripttimeout",
        "response.write(",
        // NoSQL (MongoDB JavaScript and operators)
        "$where",
        "db.getcollection",
        "this.constructor",
    ])
});

/// Functions that execute code or commands or read files: attack when called.
static CALLS: LazyLock<AhoCorasick> = LazyLock::new(|| {
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
const CALLS_NEED_CONTEXT: &[&str] = &[
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

/// Whether `value` (already decoded) is code injection.
pub fn detect(value: &str) -> bool {
    let b = value.as_bytes();
    if php_short_tag(b) {
        return true;
    }
    if MARKERS.is_match(b) || b.windows(4).any(|w| w == [0xAC, 0xED, 0x00, 0x05]) {
        return true;
    }
    if java_name(b) {
        return true;
    }
    if calls(b)
        || template_expression(b)
        || nosql_operator(b)
        || variable_call(b)
        || parenthesised_callee(b)
        || js_statement(b)
        || endless_loop(b)
        || perl_interpolation(b)
    {
        return true;
    }
    mongo_shell(b)
}

fn calls(b: &[u8]) -> bool {
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
            if !arg.is_empty() && super::cmdi::is_command_word(&arg.to_ascii_lowercase()) {
                return true;
            }
        }
    }
    false
}

/// `<? echo 1; ?>`, `<?=$x?>`: a PHP open tag (not `<?xml`).
fn php_short_tag(b: &[u8]) -> bool {
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

/// A fully qualified name in the Java platform's packages (`java.io.File`, `javax.script.x`,
/// `java.Runtime`): request data has no business naming runtime classes.
fn java_name(b: &[u8]) -> bool {
    static PACKAGES: LazyLock<AhoCorasick> =
        LazyLock::new(|| literals(&["java.", "javax.", "jdk.", "sun."]));
    PACKAGES.find_iter(b).any(|m| {
        let p = m.start();
        let boundary =
            p == 0 || !(b[p - 1].is_ascii_alphanumeric() || matches!(b[p - 1], b'_' | b'-' | b'.'));
        boundary && b.get(m.end()).is_some_and(u8::is_ascii_alphabetic)
    })
}

/// `{{7*7}}`, `${7*7}`, `#{16*8787}`, `%{...}`, `<%= 7*7 %>`: an evaluated expression that
/// computes, or one that reaches objects the way template payloads do.
fn template_expression(b: &[u8]) -> bool {
    let mut i = 0;
    while i + 1 < b.len() {
        let open = match (b[i], b[i + 1]) {
            (b'{', b'{') => Some((i + 2, &b"}}"[..])),
            (b'$' | b'#' | b'%' | b'*' | b'@', b'{') => Some((i + 2, &b"}"[..])),
            (b'<', b'%') => Some((i + 2, &b"%>"[..])),
            _ => None,
        };
        if let Some((start, close)) = open {
            let end = memchr::memmem::find(&b[start..], close).map_or(b.len(), |p| start + p);
            let inner = &b[start..end.min(start + 512)];
            if evaluates(inner) {
                return true;
            }
            i = start;
            continue;
        }
        i += 1;
    }
    false
}

fn evaluates(inner: &[u8]) -> bool {
    let t: Vec<u8> = inner
        .iter()
        .copied()
        .filter(|c| !c.is_ascii_whitespace())
        .collect();
    if t.is_empty() {
        return false;
    }
    // arithmetic on numbers: 7*7, 1337*1338, 16*8787
    let has_digit_op_digit = t.windows(3).any(|w| {
        w[0].is_ascii_digit()
            && matches!(w[1], b'*' | b'+' | b'-' | b'/' | b'%')
            && w[2].is_ascii_digit()
    });
    let all_arith = t.iter().all(|c| {
        c.is_ascii_digit() || matches!(c, b'*' | b'+' | b'-' | b'/' | b'%' | b'(' | b')' | b'.')
    });
    if has_digit_op_digit && (all_arith || t.contains(&b'*')) {
        return true;
    }
    let lower = t.to_ascii_lowercase();
    [
        &b"runtime"[..],
        b"getclass",
        b"forname",
        b"exec(",
        b"processbuilder",
        b"constructor",
        b"__proto__",
        b"import",
        b"popen",
        b"system(",
        b"request.",
        b"config.",
        b"session.",
        b"application.",
        b"facescontext",
        b"beans",
        b"classloader",
        b"getenv",
        b"@java",
    ]
    .iter()
    .any(|m| memchr::memmem::find(&lower, m).is_some())
}

/// JavaScript statements smuggled after a `;` (server-side JS such as MongoDB `$where`):
/// `;var d = new Date();`, `do{...}while(`.
fn js_statement(b: &[u8]) -> bool {
    if memchr::memmem::find(b, b"do{").is_some() && memchr::memmem::find(b, b"}while(").is_some() {
        return true;
    }
    memchr::memchr_iter(b';', b).any(|p| {
        let rest = &b[p + 1..];
        let rest = &rest[rest
            .iter()
            .position(|c| !c.is_ascii_whitespace())
            .unwrap_or(rest.len())..];
        ["var ", "let ", "const "].iter().any(|kw| {
            rest.len() > kw.len() && rest[..kw.len()].eq_ignore_ascii_case(kw.as_bytes()) && {
                let decl = &rest[kw.len()..];
                let name_len = decl
                    .iter()
                    .position(|c| !(c.is_ascii_alphanumeric() || *c == b'_' || *c == b'$'))
                    .unwrap_or(decl.len());
                let after = &decl[name_len..];
                let after = &after[after.iter().position(|c| *c != b' ').unwrap_or(after.len())..];
                name_len > 0 && after.first() == Some(&b'=') && after.get(1) != Some(&b'=')
            }
        })
    })
}

/// `while(true)`, `while(!0);`: a JavaScript loop statement (server-side JS denial of service).
fn endless_loop(b: &[u8]) -> bool {
    memchr::memmem::find_iter(b, b"while(").any(|p| {
        if p > 0 && b[p - 1].is_ascii_alphanumeric() {
            return false;
        }
        let Some(close) = b[p + 6..].iter().take(24).position(|&c| c == b')') else {
            return false;
        };
        // a loop whose condition is literally false never runs
        let cond = &b[p + 6..p + 6 + close];
        const NEVER: &[&[u8]] = &[
            b"false",
            b"0",
            b"!true",
            b"!1",
            b"null",
            b"undefined",
            b"nan",
            b"\"\"",
            b"''",
        ];
        !NEVER.iter().any(|n| cond.eq_ignore_ascii_case(n))
    })
}

/// `@{[ system "id" ]}`: Perl code interpolated into a string.
fn perl_interpolation(b: &[u8]) -> bool {
    memchr::memmem::find_iter(b, b"@{").any(|p| {
        b[p + 2..]
            .iter()
            .find(|c| !c.is_ascii_whitespace())
            .is_some_and(|&c| c == b'[')
    })
}

/// `$f(1)`, `$$g(2)`, `@$__['o'](3)`: a PHP call through a variable.
fn variable_call(b: &[u8]) -> bool {
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
fn parenthesised_callee(b: &[u8]) -> bool {
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
        b.get(k) == Some(&b'(') && matches!(b.get(k + 1), Some(b'\'' | b'"'))
    })
}

/// Java gadget classes hidden in base64 at any byte alignment (the value is base64 of a
/// longer serialized stream, so the class name rarely starts on a 3-byte boundary).
pub fn java_gadget_in_base64(value: &str) -> bool {
    static GADGETS: LazyLock<AhoCorasick> = LazyLock::new(|| {
        literals(&[
            "processbuilder",
            "clonetransformer",
            "forclosure",
            "instantiatefactory",
            "instantiatetransformer",
            "invokertransformer",
            "prototypeclonefactory",
            "prototypeserializationfactory",
            "whileclosure",
            "chainedtransformer",
            "templatesimpl",
        ])
    });
    let t = value.trim().trim_end_matches('=');
    if t.len() < 8
        || !t
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'+' | b'/' | b'-' | b'_'))
    {
        return false;
    }
    let std: String = t
        .chars()
        .map(|c| match c {
            '-' => '+',
            '_' => '/',
            c => c,
        })
        .collect();
    (0..3).any(|shift| {
        let mut s = "A".repeat(shift);
        s.push_str(&std);
        let keep = if s.len() % 4 == 1 {
            s.len() - 1
        } else {
            s.len()
        };
        base64::Engine::decode(
            &base64::engine::general_purpose::STANDARD_NO_PAD,
            &s[..keep],
        )
        .is_ok_and(|bytes| GADGETS.is_match(&bytes))
    })
}

/// `{"$ne": 1}`, `[$gt]=`, `$or: [` — MongoDB query operators smuggled into values or keys.
fn nosql_operator(b: &[u8]) -> bool {
    const OPS: &[&[u8]] = &[
        b"$ne",
        b"$gt",
        b"$gte",
        b"$lt",
        b"$lte",
        b"$regex",
        b"$or",
        b"$and",
        b"$nin",
        b"$in",
        b"$exists",
        b"$expr",
        b"$function",
        b"$accumulator",
        b"$not",
        b"$nor",
        b"$elemmatch",
        b"$text",
        b"$size",
        b"$all",
        b"$mod",
        b"$type",
        b"$jsonschema",
        b"$where",
    ];
    // a JSON key (or form field) that is exactly an operator: `{"$ne": 1}`, `user[$gt]=`
    let t = std::str::from_utf8(b).unwrap_or("").trim().as_bytes();
    if t.first() == Some(&b'$') && OPS.iter().any(|op| t.eq_ignore_ascii_case(op)) {
        return true;
    }
    for p in memchr::memchr_iter(b'$', b) {
        for op in OPS {
            if b.len() >= p + op.len() && b[p..p + op.len()].eq_ignore_ascii_case(op) {
                let after = b.get(p + op.len()).copied();
                let before = if p > 0 { b[p - 1] } else { b' ' };
                if matches!(after, Some(b'"' | b'\'' | b':' | b']'))
                    && matches!(before, b'"' | b'\'' | b'[' | b'{' | b' ' | b',')
                {
                    return true;
                }
            }
        }
    }
    false
}

/// `db.users.insert(...)`, `db.x.find(`: MongoDB shell statements.
fn mongo_shell(b: &[u8]) -> bool {
    for p in memchr::memmem::find_iter(b, b"db.") {
        if p > 0 && b[p - 1].is_ascii_alphanumeric() {
            continue;
        }
        let rest = &b[p + 3..];
        let Some(dot) = rest.iter().take(64).position(|&c| c == b'.') else {
            continue;
        };
        let method = &rest[dot + 1..];
        for m in [
            &b"insert"[..],
            b"find",
            b"remove",
            b"update",
            b"drop",
            b"delete",
            b"aggregate",
        ] {
            if method.len() > m.len() && method[..m.len()].eq_ignore_ascii_case(m) {
                return true;
            }
        }
    }
    false
}

#[cfg(test)]
mod tests;
