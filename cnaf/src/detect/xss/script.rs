//! Script in a value: JavaScript sinks called or referenced the ways payloads do (`alert(1)`,
//! ``alert`1` ``, `(alert)(1)`, `alert.call(...)`, `new Function("...")`), DOM properties
//! payloads read or write (`document.cookie`, also split by comments), and JSFuck.

use std::sync::LazyLock;

use aho_corasick::AhoCorasick;

use super::{literals, starts_with_ci};

/// Script sinks: a call of one of these from request data is an injection.
static SINKS: LazyLock<AhoCorasick> = LazyLock::new(|| {
    literals(&[
        "alert",
        "prompt",
        "confirm",
        "eval",
        "settimeout",
        "setinterval",
        "execscript",
        "fromcharcode",
        "atob",
        "btoa",
        "msgbox",
        "constructor",
        "importscripts",
        "showmodaldialog",
    ])
});

/// DOM properties payloads read or write.
static DOM: LazyLock<AhoCorasick> = LazyLock::new(|| literals(DOM_WORDS));

/// Every word of `DOM_WORDS` holds one of these bytes (none of which ASCII case folding
/// changes): a value without any of them cannot match `DOM`.
fn dom_trigger(c: &u8) -> bool {
    matches!(c, b'.' | b'[' | b'(' | b'-' | b'@' | b'_' | b'=')
}

const DOM_WORDS: &[&str] = &[
    "document.cookie",
    "document.domain",
    "document.write",
    "document.location",
    "document[",
    "window.location",
    "window[",
    "self[",
    "top[",
    "parent[",
    "this[\"src\"]",
    ".innerhtml",
    ".outerhtml",
    "createelement(",
    ".appendchild(",
    "-moz-binding",
    "expression(",
    "document.queryselector",
    "document.getelementby",
    "document.body.",
    "url(javascript",
    "document)[",
    ".call`",
    ".apply`",
    "@import'",
    "@import\"",
    "@import url(",
    "constructor.constructor",
    "__proto__",
    "srcdoc=",
    "window.onerror",
    "location.hash",
    "location.href=",
    "location=",
];

/// JSFuck: code written with only `[]()!+` (`(![]+[])[+!+[]]`).
pub(super) fn jsfuck(b: &[u8]) -> bool {
    let mut run = 0usize;
    let mut best = 0usize;
    for &c in b {
        if matches!(c, b'[' | b']' | b'(' | b')' | b'!' | b'+') {
            run += 1;
            best = best.max(run);
        } else {
            run = 0;
        }
    }
    // `!![]`, `!+[]`: the booleans JSFuck builds everything from
    b.windows(4).any(|w| w == b"!![]" || w == b"!+[]")
        || best >= 10 && b.windows(2).any(|w| w == b"![") && b.windows(2).any(|w| w == b"[]")
}

/// `document /*x*/ . cookie`: property access split by comments and blanks.
pub(super) fn split_property(b: &[u8]) -> bool {
    if b.len() > 4096 || !b.windows(2).any(|w| w == b"/*") {
        return false;
    }
    let compact: Vec<u8> = crate::detect::without_block_comments(b)
        .iter()
        .copied()
        .filter(|c| !c.is_ascii_whitespace())
        .collect();
    DOM.is_match(&compact)
}

pub(super) fn dom_property(b: &[u8]) -> bool {
    if !b.iter().any(dom_trigger) {
        return false;
    }
    // a DOM property named as a path segment (`/manual/document.cookie`) is not code
    DOM.find_iter(b)
        .any(|m| m.start() == 0 || !matches!(b[m.start() - 1], b'/' | b'-'))
}

/// The global objects a payload reaches a sink through by name.
const GLOBALS: &[&[u8]] = &[
    b"window",
    b"self",
    b"top",
    b"parent",
    b"this",
    b"globalthis",
    b"frames",
    b"opener",
    b"content",
    b"document",
];

/// `self ['alert'](1)`, `top ["al"+"ert"](1)`, ``globalThis[`alert`]`1` ``: a global object
/// indexed by a string, then called.
fn global_member_call(b: &[u8]) -> bool {
    memchr::memchr_iter(b'[', b).any(|p| {
        let before = b[..p].trim_ascii_end();
        let named = GLOBALS.iter().any(|g| {
            before.len() >= g.len()
                && before[before.len() - g.len()..].eq_ignore_ascii_case(g)
                && (before.len() == g.len()
                    || !before[before.len() - g.len() - 1].is_ascii_alphanumeric())
        });
        if !named {
            return false;
        }
        let inside = b[p + 1..].trim_ascii_start();
        if !matches!(inside.first(), Some(b'"' | b'\'' | b'`')) {
            return false;
        }
        let Some(close) = memchr::memchr(b']', inside) else {
            return false;
        };
        let after = inside[close + 1..].trim_ascii_start();
        after.first() == Some(&b'(') || (after.first() == Some(&b'`') && after.len() > 1)
    })
}

/// ``alert`1` ``: the backtick at `k` opens a template literal the name before it is called
/// with, not the end of a Markdown code span (`` `window.alert` is `` , `` `alert`, ``).
pub(super) fn tagged_template(b: &[u8], k: usize) -> bool {
    b.get(k + 1).is_some_and(|c| {
        !c.is_ascii_whitespace() && !matches!(c, b',' | b'.' | b';' | b':' | b')' | b'!' | b'?')
    }) && b[k + 1..].contains(&b'`')
}

/// `new Function("...")`, ``new Function`...` ``: code compiled from a string literal.
fn function_constructor(b: &[u8]) -> bool {
    if b.len() < 14 {
        return false;
    }
    (0..b.len() - 12).any(|i| {
        if (i > 0 && b[i - 1].is_ascii_alphanumeric()) || !starts_with_ci(b, i, b"new") {
            return false;
        }
        let rest = b[i + 3..].trim_ascii_start();
        if rest.len() == b.len() - i - 3 || !starts_with_ci(rest, 0, b"function") {
            return false;
        }
        let args = rest[8..].trim_ascii_start();
        args.first() == Some(&b'`')
            || (args.first() == Some(&b'(')
                && matches!(
                    args[1..].trim_ascii_start().first(),
                    Some(b'"' | b'\'' | b'`')
                ))
    })
}

/// Sinks called (`alert(`, ``alert` ``, `alert?.(`, `alert.call(`), wrapped (`(alert)`,
/// `(confirm)`), or dangerous DOM properties.
pub(super) fn js_sink(b: &[u8]) -> bool {
    if dom_property(b) || function_constructor(b) || (b.contains(&b'[') && global_member_call(b)) {
        return true;
    }
    for m in SINKS.find_iter(b) {
        let (s, e) = (m.start(), m.end());
        if s > 0 && (b[s - 1].is_ascii_alphanumeric() || b[s - 1] == b'_' || b[s - 1] == b'$') {
            continue;
        }
        let mut k = e;
        while k < b.len() && matches!(b[k], b'\t' | b'\n' | b'\r' | 0) {
            k += 1;
        }
        let next = b.get(k).copied();
        let called = match next {
            Some(b'(') => k + 1 < b.len(),
            Some(b'`') => tagged_template(b, k),
            Some(b'?') => b.get(k + 1) == Some(&b'.') && b.get(k + 2) == Some(&b'('),
            Some(b'.') => {
                starts_with_ci(b, k + 1, b"call(")
                    || starts_with_ci(b, k + 1, b"apply(")
                    || starts_with_ci(b, k + 1, b"bind(")
            }
            // `${alert}` in a template literal
            Some(b'}') if b[..s].trim_ascii_end().ends_with(b"${") => true,
            Some(b' ') => {
                b[k..].trim_ascii_start().starts_with(b"}")
                    && b[..s].trim_ascii_end().ends_with(b"${")
            }
            Some(b')' | b']' | b',' | b'}') => {
                s > 0 && matches!(b[s - 1], b'(' | b'[' | b'=' | b',')
            }
            // `x=alert;x(1)`, `onerror=alert;throw 1`: the sink taken as a value, then called
            Some(b';') => {
                s > 0
                    && b[s - 1] == b'='
                    && (b[k..].contains(&b'(') || finder!(b"throw").find(&b[k..]).is_some())
            }
            _ => false,
        };
        if called {
            return true;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::super::detect;
    use super::{dom_trigger, DOM_WORDS};

    /// `dom_property` skips values without a trigger byte: that is exact only while every
    /// DOM word holds one.
    #[test]
    fn every_dom_word_has_a_trigger_byte() {
        for w in DOM_WORDS {
            assert!(w.as_bytes().iter().any(dom_trigger), "{w}");
        }
        assert!(!b"document cookie".iter().any(dom_trigger));
        assert!(detect("x=document.cookie"));
        assert!(!detect("it's the document cookie"));
    }

    #[test]
    fn global_objects_indexed_then_called() {
        for a in [
            "self ['alert'](1)",
            "top [\"al\"+\"ert\"](1)",
            "globalThis[\"alert\"](1)",
            "frames[`alert`]`1`",
        ] {
            assert!(detect(a), "missed {a}");
        }
        for b in [
            "see the top [here](https://example.com)",
            "window ['a', 'b'] list",
            "this [\"quote\"] is mine",
        ] {
            assert!(!detect(b), "false positive: {b}");
        }
    }

    #[test]
    fn tagged_templates_not_code_spans() {
        for a in [
            "alert`1`",
            "x=prompt`${document.domain}`",
            "setTimeout`alert\\x281\\x29`",
        ] {
            assert!(detect(a), "missed {a}");
        }
        for b in [
            "`window.alert` to be included in the bindings",
            "use `alert`, `confirm` or `prompt` sparingly",
            "the `eval` function",
        ] {
            assert!(!detect(b), "false positive: {b}");
        }
    }
}
