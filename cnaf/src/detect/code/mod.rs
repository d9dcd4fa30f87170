//! Code injection: PHP, Java expression languages (EL, OGNL, SpEL) and JNDI lookups, Node and
//! Python payloads, server-side template injection, server-side includes, VBScript/ASP, and
//! NoSQL operator/JavaScript injection. Each language is recognised by constructs that only its
//! code has (a call of an execution function, an interpreter tag, an evaluated expression that
//! computes or reaches the runtime), not by bare words.

use std::sync::LazyLock;

use aho_corasick::AhoCorasick;

use super::literals;

mod java;
mod node;
mod orm;
mod paranoid;
mod php;
mod php_ini;
mod php_names;

pub use java::java_gadget_in_base64;
use java::java_name;
use node::{console_call, flight_reference};
use orm::secret_lookup;
pub use paranoid::paranoid;
use php::{
    assembled_callee, calls, obfuscated_call, parenthesised_callee, php_short_tag,
    serialized_object, variable_call, variable_variable,
};
use php_ini::php_ini_assignment;

/// Markers that are code in one of the languages above wherever they appear.
pub(crate) static MARKERS: LazyLock<AhoCorasick> = LazyLock::new(|| {
    literals(&[
        // PHP
        "<?php",
        "<?=",
        "php://",
        "phar://",
        "$_get",
        "$_post",
        "$_request",
        "$_server",
        "$_cookie",
        "$_files",
        "$_env",
        "$_session",
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
        "org.apache.commons",
        "org.omg.corba",
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

/// Whether `value` (already decoded) is code injection.
pub fn detect(value: &str) -> bool {
    if let Some(plain) = mentions_in_prose(value) {
        return detect(&plain);
    }
    let b = value.as_bytes();
    // `<?xml :echo 1;`: a PHP open tag dressed as an XML declaration (one goes on with
    // ` version=`)
    if php_short_tag(b) || (b.contains(&b'?') && xml_dressed_tag(b)) {
        return true;
    }
    // "Fix SpotBugs issues in org.apache.commons.io.FileUtils.": a Java package named in a
    // sentence is documentation, not a gadget chain (which comes serialized, in JSON or in an
    // expression)
    let prose = std::cell::OnceCell::new();
    let marked = MARKERS.find_iter(b).any(|m| {
        let java_package =
            b[m.start()..].starts_with(b"org.") || b[m.start()..].starts_with(b"com.");
        // "`__class__` now works with slotted classes": a dunder named on its own, not an
        // attribute reached through `.` or `[`
        let dunder = b[m.start()..].starts_with(b"__")
            && !(m.start() > 0 && matches!(b[m.start() - 1], b'.' | b'[' | b'\'' | b'"'))
            && !matches!(b.get(m.end()), Some(b'.' | b'[' | b'('));
        !(java_package || dunder)
            || !*prose.get_or_init(|| crate::detect::lfi::prose_sentence(value))
    });
    if marked || finder!(&[0xAC, 0xED, 0x00, 0x05]).find(b).is_some() {
        return true;
    }
    if java_name(b) && !crate::detect::lfi::prose_sentence(value) {
        // "classes like java.io." names a package; a class to load is code's or a payload's
        return true;
    }
    if calls(b)
        || template_expression(b)
        || nosql_operator(b)
        || variable_call(b)
        || (b.contains(&b'{') && serialized_object(b))
        || (b.contains(&b'(') && (assembled_callee(b) || obfuscated_call(b)))
        || (b.contains(&b'$') && variable_variable(b))
        || (b.contains(&b'=') && php_ini_assignment(value))
        || (b.contains(&b'%') && template_block(b))
        || parenthesised_callee(b)
        || js_statement(b)
        || endless_loop(b)
        || perl_interpolation(b)
        || (b.contains(&b'.') && console_call(b))
        || (b.contains(&b'$') && flight_reference(b))
        || secret_lookup(value)
    {
        return true;
    }
    mongo_shell(b)
}

/// "Fix a deadlock in system() when called concurrently", "install the symlink (Closes: #1)":
/// a [`crate::detect::lfi::prose_sentence`] names functions by `name()` and puts asides in
/// parentheses after a blank; no code is a sentence of words, so neither is a call. The value
/// with its empty `()` removed and a blank-gapped `(` before a letter read as a blank, when it
/// is such a sentence and that changes it (`system ('id')` and `exec(ls)` keep their
/// parentheses).
pub(super) fn mentions_in_prose(value: &str) -> Option<String> {
    if !value.contains('(') || !crate::detect::lfi::prose_sentence(value) {
        return None;
    }
    let b = value.as_bytes();
    let mut out = String::with_capacity(value.len());
    let mut last = 0;
    let mut i = 0;
    while i < b.len() {
        let empty = b[i] == b'(' && b.get(i + 1) == Some(&b')');
        let aside = b[i] == b'('
            && i > 0
            && b[i - 1] == b' '
            && b.get(i + 1).is_some_and(u8::is_ascii_alphabetic);
        if empty || aside {
            out.push_str(&value[last..i]);
            if aside {
                out.push(' ');
            }
            i += if empty { 2 } else { 1 };
            last = i;
        } else {
            i += 1;
        }
    }
    if last == 0 {
        return None;
    }
    out.push_str(&value[last..]);
    Some(out)
}

/// `<?xml :echo 1;`, `<?xml\t(`: an open tag that starts like an XML declaration but does not
/// go on the way one does (blank, then `version`).
fn xml_dressed_tag(b: &[u8]) -> bool {
    finder!(b"<?xml").find_iter(b).any(|p| {
        let rest = &b[p + 5..];
        let blank = rest.iter().take_while(|c| c.is_ascii_whitespace()).count();
        let next = &rest[blank..];
        // `<?xml:echo`: no XML declaration puts a colon right after its name either
        (blank > 0 || next.first() == Some(&b':'))
            && !next.is_empty()
            && matches!(next[0], b':' | b'(' | b';' | b'$')
    })
}

/// `{% if True %}49{% endif %}`, `<% if x %>..<% end %>`: a template control block — an opening
/// tag with a control keyword and the tag that ends it. Only template source has both; prose
/// with a stray `{%` has no end tag.
fn template_block(b: &[u8]) -> bool {
    const KEYWORDS: &[&str] = &[
        "if", "for", "set", "macro", "block", "with", "unless", "while",
    ];
    for (open, close) in [(&b"{%"[..], &b"%}"[..]), (b"<%", b"%>")] {
        for p in memchr::memmem::find_iter(b, open) {
            let mut i = p + 2;
            while i < b.len() && matches!(b[i], b' ' | b'=' | b'-' | b'\t') {
                i += 1;
            }
            let start = i;
            while i < b.len() && b[i].is_ascii_alphabetic() {
                i += 1;
            }
            let kw = String::from_utf8_lossy(&b[start..i]).to_ascii_lowercase();
            if !KEYWORDS.contains(&kw.as_str()) || memchr::memmem::find(&b[i..], close).is_none() {
                continue;
            }
            // the end tag: `{% endif %}`, `{%- endfor -%}`, `<% end %>`
            let ends = [format!("end{kw}"), "end".to_string()];
            let rest = b[i..].to_ascii_lowercase();
            let has_end = memchr::memmem::find_iter(&rest, open).any(|q| {
                let mut j = q + 2;
                while j < rest.len() && matches!(rest[j], b' ' | b'-' | b'\t') {
                    j += 1;
                }
                let mut e = j;
                while e < rest.len() && rest[e].is_ascii_alphabetic() {
                    e += 1;
                }
                let w = &rest[j..e];
                ends.iter().any(|x| w == x.as_bytes())
            });
            if has_end {
                return true;
            }
        }
    }
    false
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
    if finder!(b"do{").find(b).is_some() && finder!(b"}while(").find(b).is_some() {
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
    finder!(b"while(").find_iter(b).any(|p| {
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
    finder!(b"@{").find_iter(b).any(|p| {
        b[p + 2..]
            .iter()
            .find(|c| !c.is_ascii_whitespace())
            .is_some_and(|&c| c == b'[')
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
    for p in finder!(b"db.").find_iter(b) {
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
