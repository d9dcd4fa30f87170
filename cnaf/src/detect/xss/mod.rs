//! Cross-site scripting, by context: an HTML tag that runs script (dangerous element, event
//! handler, script URL), an attribute break-out (`" onfocus=`) and a script URL value
//! (`javascript:`) here; JavaScript sinks and DOM properties in `script`; markup written to
//! slip past filters (`<f o r m`, `<style>@\69mport`, `data:,<x>`) in `evasion`; the paranoia
//! level 2-4 fragments in `paranoid`. Markup without script (`<b>`, `<h1>`, `a < b`) and prose
//! about JavaScript pass.

use super::literals;

mod evasion;
mod paranoid;
mod script;

use script::{dom_property, js_sink, jsfuck, split_property};

/// Elements that execute or load active content by themselves.
/// (`svg`, `style`, `link`, `meta`... are dangerous only with a handler or a script URL, which
/// the attribute checks see.)
const DANGEROUS_TAGS: &[&str] = &[
    "script", "iframe", "frame", "frameset", "object", "embed", "applet", "base", "isindex",
    "vmlframe", "portal", "handler", "listener", "xss",
];

/// The cross-site scripting rules of paranoia levels 2 to 4 (the inspector calls this only
/// above level 1; [`detect`] holds the level-1 rules): event attributes and script URLs in any
/// form, then anything tag-like, then markup residue.
pub fn paranoid(value: &str, level: crate::policy::Paranoia) -> bool {
    paranoid::at_level(value.as_bytes(), level.level())
}

/// Whether `value` (already decoded) is cross-site scripting.
pub fn detect(value: &str) -> bool {
    let b = value.as_bytes();
    // every rule needs markup, an attribute, a scheme, a call or a DOM property
    let structural = b
        .iter()
        .any(|c| matches!(c, b'<' | b'(' | b'`' | b'=' | b':' | b'[' | b'"' | b'\''));
    let comment = finder!(b"/*").find(b).is_some();
    if b.contains(&b'!') && evasion::entity_declaration(b) {
        return true;
    }
    if !structural {
        return dom_property(b) || (comment && split_property(b));
    }
    let markup = b.contains(&b'<');
    (markup
        && (html_tags(b)
            || evasion::split_element(b)
            || evasion::escaped_style(b)
            || evasion::import_implementation(b)))
        || (b.contains(&b':') && evasion::data_url_markup(b))
        || (!value.is_ascii() && evasion::high_bit_markup(value, detect))
        || attribute_breakout(b)
        || (b.contains(&b':') && script_url(b))
        || js_sink(b)
        || (b.contains(&b'!') && jsfuck(b))
        || (comment && split_property(b))
        || (b.contains(&b'<') && tag_split_words(b))
}

/// `o<x>nfocus=alert<x>(1)`, `<scr<b>ipt>`: markup that splits a word. A sanitizer that strips
/// tags joins the pieces into an attack, so read the value once more the way it will come out of
/// such a sanitizer (tags standing inside a word removed).
fn tag_split_words(b: &[u8]) -> bool {
    let mut out = Vec::with_capacity(b.len());
    let mut split = false;
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'<' && i > 0 && b[i - 1].is_ascii_alphanumeric() {
            // `<name>` or `</name>` with a short tag name, directly followed by a word character
            // or `(`
            let mut j = i + 1;
            if b.get(j) == Some(&b'/') {
                j += 1;
            }
            let name = j;
            while j < b.len() && b[j].is_ascii_alphabetic() && j - name < 12 {
                j += 1;
            }
            if j > name
                && b.get(j) == Some(&b'>')
                && b.get(j + 1)
                    .is_some_and(|c| c.is_ascii_alphanumeric() || *c == b'(')
            {
                split = true;
                i = j + 1;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    split && std::str::from_utf8(&out).is_ok_and(detect)
}

fn lower_at(b: &[u8], i: usize) -> u8 {
    b.get(i).map_or(0, u8::to_ascii_lowercase)
}

fn starts_with_ci(b: &[u8], at: usize, pat: &[u8]) -> bool {
    b.len() >= at + pat.len() && b[at..at + pat.len()].eq_ignore_ascii_case(pat)
}

/// `<tag ...>`: dangerous element, event handler attribute, script URL attribute.
fn html_tags(b: &[u8]) -> bool {
    for p in memchr::memchr_iter(b'<', b) {
        let mut j = p + 1;
        let closing = b.get(j) == Some(&b'/');
        if closing {
            j += 1;
        }
        let start = j;
        while j < b.len() && (b[j].is_ascii_alphanumeric() || b[j] == b'-' || b[j] == b':') {
            j += 1;
        }
        if j == start || !b[start].is_ascii_alphabetic() {
            continue;
        }
        let full = &b[start..j];
        // `<v:vmlframe`: the element name after a namespace prefix
        let name = full
            .iter()
            .rposition(|&c| c == b':')
            .map_or(full, |c| &full[c + 1..]);
        if closing {
            if name.eq_ignore_ascii_case(b"script") {
                return true;
            }
            continue;
        }
        // the tag name must end the way browsers end it
        if j < b.len() && !matches!(b[j], b' ' | b'\t' | b'\n' | b'\r' | b'\x0c' | b'/' | b'>') {
            continue;
        }
        let dangerous = DANGEROUS_TAGS
            .iter()
            .any(|t| name.eq_ignore_ascii_case(t.as_bytes()));
        let end = memchr::memchr(b'>', &b[j..]).map_or(b.len(), |e| j + e);
        let attrs = &b[j..end.min(j + 4096)];
        if dangerous && (j == b.len() || end < b.len() || !attrs.is_empty()) {
            // `<svg/onload=`, `<script>`, `<iframe src=` (an unterminated bare `<svg` alone
            // at the very end is still enough to start an element)
            return true;
        }
        if handler_in(attrs, true) || script_scheme_in(attrs) || style_expression(attrs) {
            return true;
        }
        if active_element(name, attrs, &b[end.min(b.len())..]) {
            return true;
        }
    }
    false
}

/// Elements that load or redirect by their attributes or content: `<meta http-equiv=refresh>`,
/// `<link href=...>`, `<style>@import`, `<base href>`, `<noscript>` breakouts.
fn active_element(name: &[u8], attrs: &[u8], after: &[u8]) -> bool {
    let has = |hay: &[u8], needle: &[u8]| {
        hay.windows(needle.len())
            .any(|w| w.eq_ignore_ascii_case(needle))
    };
    if name.eq_ignore_ascii_case(b"meta") {
        return has(attrs, b"http-equiv");
    }
    if name.eq_ignore_ascii_case(b"link") {
        return has(attrs, b"href");
    }
    if name.eq_ignore_ascii_case(b"style") {
        let body = &after[..after.len().min(512)];
        return has(body, b"@import")
            || has(body, b"expression")
            || has(body, b"javascript:")
            || has(body, b"url(");
    }
    false
}

/// An `on...=` attribute in `attrs`; `in_tag` accepts any event-like name, otherwise the name
/// must be preceded by a quote (the value broke out of an attribute).
fn handler_in(a: &[u8], in_tag: bool) -> bool {
    let mut i = 0;
    while i + 2 < a.len() {
        if lower_at(a, i) == b'o' && lower_at(a, i + 1) == b'n' {
            let sep_ok = i == 0 && in_tag
                || i > 0
                    && matches!(
                        a[i - 1],
                        b' ' | b'\t' | b'\n' | b'\r' | b'\x0c' | b'/' | b'"' | b'\'' | b'`' | b';'
                    );
            let mut j = i + 2;
            while j < a.len() && a[j].is_ascii_alphabetic() {
                j += 1;
            }
            let letters = j - (i + 2);
            let mut k = j;
            while k < a.len() && matches!(a[k], b' ' | b'\t' | b'\n' | b'\r') {
                k += 1;
            }
            // DOM event names are 3 to 40 letters after `on`
            if sep_ok
                && (3..=40).contains(&letters)
                && a.get(k) == Some(&b'=')
                && a.get(k + 1) != Some(&b'=')
            {
                if in_tag {
                    return true;
                }
                // outside a tag: a quote must close the attribute right before
                let mut q = i;
                while q > 0 && matches!(a[q - 1], b' ' | b'\t' | b'\n' | b'\r' | b'/' | b'\x0c') {
                    q -= 1;
                }
                if q > 0 && matches!(a[q - 1], b'"' | b'\'' | b'`') {
                    return true;
                }
                if is_event_name(&a[i + 2..j]) && k + 1 < a.len() {
                    return true;
                }
            }
            i = j.max(i + 1);
            continue;
        }
        i += 1;
    }
    false
}

/// The most common DOM event names (without `on`).
fn is_event_name(n: &[u8]) -> bool {
    const EVENTS: &[&str] = &[
        "load",
        "error",
        "click",
        "dblclick",
        "mouseover",
        "mouseout",
        "mousemove",
        "mousedown",
        "mouseup",
        "mouseenter",
        "mouseleave",
        "focus",
        "blur",
        "focusin",
        "focusout",
        "change",
        "submit",
        "keydown",
        "keyup",
        "keypress",
        "input",
        "toggle",
        "scroll",
        "wheel",
        "resize",
        "animationstart",
        "animationend",
        "transitionend",
        "pointerover",
        "pointerenter",
        "pointerdown",
        "pointermove",
        "pointerrawupdate",
        "auxclick",
        "beforeprint",
        "afterprint",
        "hashchange",
        "pageshow",
        "message",
        "begin",
        "end",
        "select",
        "copy",
        "paste",
        "cut",
        "drag",
        "dragstart",
        "drop",
        "contextmenu",
        "search",
        "show",
        "start",
        "unload",
        "beforeunload",
        "readystatechange",
        "loadstart",
        "playing",
        "play",
    ];
    EVENTS.iter().any(|e| n.eq_ignore_ascii_case(e.as_bytes()))
}

/// Attribute-value injection outside a tag: `" onfocus=...`, `'onmouseover='`, or an
/// unquoted attribute value starting with blanks then a handler (`  onload=`).
fn attribute_breakout(b: &[u8]) -> bool {
    let lead = b
        .iter()
        .take_while(|c| matches!(c, b' ' | b'\t' | b'\n' | b'\r' | b'/'))
        .count();
    if lead > 0 && handler_in(&b[lead - 1..], true) && {
        let rest = &b[lead..];
        rest.len() > 3 && rest[..2].eq_ignore_ascii_case(b"on")
    } {
        return true;
    }
    (b.contains(&b'"') || b.contains(&b'\'') || b.contains(&b'`') || b.contains(&b'/'))
        && (handler_in(b, false) || url_attribute_breakout(b))
}

/// `'formaction=`, `" srcdoc=`: a quote closing an attribute, then an attribute that loads a
/// script URL or a document of its own.
fn url_attribute_breakout(b: &[u8]) -> bool {
    const NAMES: [&[u8]; 3] = [b"formaction", b"srcdoc", b"xlink:href"];
    b.iter().enumerate().any(|(q, c)| {
        if !matches!(c, b'"' | b'\'' | b'`') {
            return false;
        }
        let mut i = q + 1;
        while i < b.len() && matches!(b[i], b' ' | b'\t' | b'\n' | b'\r' | b'/' | b'\x0c') {
            i += 1;
        }
        NAMES.iter().any(|n| {
            starts_with_ci(b, i, n) && {
                let rest = &b[i + n.len()..];
                let rest = rest.trim_ascii_start();
                rest.first() == Some(&b'=') && rest.get(1) != Some(&b'=')
            }
        })
    })
}

/// Position just after `javascript:`-like schemes, ignoring the tabs, newlines and NULs browsers
/// strip inside a scheme.
/// Whether the scheme at `i` is spelled with characters browsers strip (`ja\tvascript:`).
fn scheme_obfuscated(b: &[u8], i: usize) -> bool {
    scheme_at(b, i).is_some_and(|end| {
        end - i > 11
            || b[i..end]
                .iter()
                .any(|c| matches!(c, b'\t' | b'\n' | b'\r' | 0))
    }) && b[i..].len() > 11
        && !b[i..i + 11].eq_ignore_ascii_case(b"javascript:")
        && !b[i..].starts_with(b"vbscript:")
}

fn scheme_at(b: &[u8], i: usize) -> Option<usize> {
    for scheme in [&b"javascript:"[..], b"vbscript:", b"livescript:"] {
        let mut j = i;
        let mut ok = true;
        for &c in scheme {
            while j < b.len() && matches!(b[j], b'\t' | b'\n' | b'\r' | 0) {
                j += 1;
            }
            if lower_at(b, j) != c {
                ok = false;
                break;
            }
            j += 1;
        }
        if ok {
            return Some(j);
        }
    }
    None
}

fn script_scheme_in(a: &[u8]) -> bool {
    (0..a.len()).any(|i| matches!(lower_at(a, i), b'j' | b'v' | b'l') && scheme_at(a, i).is_some())
        || (0..a.len()).any(|i| data_html_at(a, i))
}

fn data_html_at(b: &[u8], i: usize) -> bool {
    starts_with_ci(b, i, b"data:text/html")
        || starts_with_ci(b, i, b"data:image/svg+xml")
        || starts_with_ci(b, i, b"data:application/x-javascript")
        || starts_with_ci(b, i, b"data:text/javascript")
}

fn style_expression(a: &[u8]) -> bool {
    finder!(b"expression(")
        .find(&a.to_ascii_lowercase())
        .is_some()
}

/// The value is (or starts with) a script URL with code after the scheme.
fn script_url(b: &[u8]) -> bool {
    let mut i = 0;
    while i < b.len()
        && matches!(
            b[i],
            b' ' | b'\t' | b'\n' | b'\r' | b'"' | b'\'' | b'=' | b'('
        )
    {
        i += 1;
    }
    if let Some(after) = scheme_at(b, i) {
        // `javascript:alert(1)`, not `JavaScript: Basics of the language`; an escape after
        // blanks (`javascript: \u0061lert`) is code too
        return after < b.len() && !b[after].is_ascii_whitespace()
            || b[after..].trim_ascii_start().starts_with(b"\\")
            || js_sink(&b[after..])
            || scheme_obfuscated(b, i);
    }
    if data_html_at(b, i) {
        return true;
    }
    // a script URL further in, followed by a sink (`url=javascript:alert(1)`)
    (0..b.len()).any(|k| {
        matches!(lower_at(b, k), b'j' | b'v') && scheme_at(b, k).is_some_and(|a| js_sink(&b[a..]))
    })
}

#[cfg(test)]
mod tests {
    use super::detect;

    #[test]
    fn payloads() {
        for a in [
            "<script>alert(1)</script>",
            "<body onload=alert('test1')>",
            "<IMG SRC=jAvascript:alert('test')>",
            "\"onwheel=ead(111)",
            "sometext<svg onload=alert(document.domain)>",
            "javascript:setInterval('ale'+'rt(document.domain)')",
            "(alert)(1)",
            "confirm.call(null,1)",
            "'>alert(1)</script><script/1='",
            "\"//Onx=\"\"//onfocus=prompt(1)>",
            "\"Onx=() onMouSeoVer=prompt(1)>",
            "<svg/onload=alert(1)>",
            "alert?.(document?.cookie)",
            "<svG/x=\">\"/oNloaD=confirm()//",
            "<xssBypass/onpointermove=(confirm)(1)>MoveMouseHere",
            "<details/open/ontoggle=\"jAvAsCrIpT:alert(/xss/)\">",
            "[1].some(confirm)",
            "<a href=\"javascript:void(0)\">x</a>",
            "document[\"cookie\"]",
            "__proto__[v-if]=_c.constructor('alert(1)')()",
            "data:text/html,<form action=x>",
            "'-alert(1)//",
            "<meta http-equiv=\"refresh\" content=\"0; http://evil\">",
            "<link href=\"xss.js\" rel=stylesheet>",
            "<STYLE>@import'http://xss.rocks/xss.css';</STYLE>",
            "<v:vmlframe src=\"foo.com/sup.fml\"/>",
            "ja\tvascript: ",
            "javascript: \\\\t",
            "javascript:  \\u0061lert(1)",
            "(![]+[])[+!+[]]+(![]+[])[+[]]",
            "document /*foo*/ . cookie",
            "document.body.appendChild(document.createElement(\"h1\"))",
            "new Function`al\\ert\\`1\\``",
            "new Function(\"alert(1)\")()",
            "x=alert;x(1)",
            "onerror=alert;throw 1",
        ] {
            assert!(detect(a), "missed: {a}");
        }
    }

    #[test]
    fn benign() {
        for b in [
            "h2<h1",
            "<b>bold</b> and <i>italic</i>",
            "JavaScript: Basics of JavaScript Language",
            "a < b and c > d",
            "Please confirm (by email) your order",
            "online=true",
            "<?xml version=\"1.0\"?><svg></svg>",
            "/get/javascript-manual/document.cookie",
            "I'd like to turn on notifications",
            "prompt engineering is fun",
            "<a href=\"https://example.com/x\">link</a>",
            "eval is a function name",
            ">url=/pi?mode=<;>",
            "once upon a time, on=off",
            "<meta charset=\"UTF-8\">",
            "Prices (USD) [approx.] + tax!",
            "<style>p { color: red }</style>",
            "I love document.body text",
            "a new function (for sorting) was added",
            "mode=confirm;id=3",
        ] {
            assert!(!detect(b), "false positive: {b}");
        }
    }

    #[test]
    fn tags_splitting_words() {
        for a in [
            "\"autof<x>ocus o<x>nfocus=alert<x>(1)//",
            "<scr<b>ipt>alert(1)</script>",
            "<img src=x o<i>nerror=alert(1)>",
        ] {
            assert!(detect(a), "missed {a}");
        }
        for b in [
            "H<sub>2</sub>O is water",
            "x<sup>2</sup>+y<sup>2</sup>",
            "Click <b>here</b> now",
            "a<br>b",
        ] {
            assert!(!detect(b), "false positive: {b}");
        }
    }
}
