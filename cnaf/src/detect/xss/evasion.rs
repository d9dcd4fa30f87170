//! Level-1 cross-site scripting written to slip past filters: element names spelled out with
//! separators or behind a namespace (`<f o r m`, `< x: script`), escaped style sheets
//! (`<style>@\69mport`), IE's `<?import implementation=`, `data:` URLs carrying markup, XML
//! entity declarations outside a document, and markup in US-ASCII with the high bit set
//! (`¼script¾`, which a 7-bit decoder reads as `<script>`).

/// Elements an injection wants, matched when their name is written in pieces.
const SPLIT_NAMES: &[&[u8]] = &[
    b"script",
    b"iframe",
    b"frameset",
    b"frame",
    b"object",
    b"embed",
    b"applet",
    b"form",
    b"dialog",
    b"style",
    b"link",
    b"meta",
    b"base",
    b"svg",
    b"math",
    b"img",
    b"image",
    b"video",
    b"audio",
    b"body",
    b"input",
    b"button",
    b"textarea",
    b"isindex",
    b"marquee",
    b"details",
    b"template",
    b"vmlframe",
    b"noscript",
    b"portal",
];

/// What may stand between the letters of a split element name: anything but a word
/// character or markup.
fn separator(c: u8) -> bool {
    !c.is_ascii_alphanumeric() && !matches!(c, b'<' | b'>' | b'=' | b'"' | b'\'' | b'_')
}

/// `<f o r m`, `<s/c/r/i/p/t`, `< x: script`, `<:vmlframe`: an element name split by
/// separators or led by a namespace prefix. A plain `<form` is markup and passes; one written in
/// pieces has no purpose but to get past a filter.
pub(super) fn split_element(b: &[u8]) -> bool {
    memchr::memchr_iter(b'<', b).any(|p| split_element_at(b, p + 1))
}

fn split_element_at(b: &[u8], mut i: usize) -> bool {
    let blank = |c: u8| matches!(c, b' ' | b'\t' | b'\n' | b'\r' | b'\x0c' | 0);
    let start = i;
    while i < b.len() && (blank(b[i]) || b[i] == b'/') {
        i += 1;
    }
    // `a < i m g` is prose: a blank after `<` is allowed only before a namespace prefix
    let spaced = b[start..i].iter().any(|&c| c != b'/');
    // an optional namespace prefix (`x:`, or an empty one, `:`)
    let mut namespaced = false;
    let mut k = i;
    while k < b.len() && b[k].is_ascii_alphanumeric() && k - i < 16 {
        k += 1;
    }
    if b.get(k) == Some(&b':') && b.get(k + 1) != Some(&b'/') {
        namespaced = true;
        i = k + 1;
        while i < b.len() && blank(b[i]) {
            i += 1;
        }
    }
    SPLIT_NAMES.iter().any(|name| {
        let mut j = i;
        let mut splits = 0;
        for (n, &letter) in name.iter().enumerate() {
            if n > 0 {
                let gap = j;
                while j < b.len() && separator(b[j]) && j - gap < 4 {
                    j += 1;
                }
                if j > gap {
                    splits += 1;
                }
            }
            if b.get(j).map(u8::to_ascii_lowercase) != Some(letter) {
                return false;
            }
            j += 1;
        }
        // the name ends the way a tag name ends
        let ends = b
            .get(j)
            .is_none_or(|c| matches!(c, b' ' | b'\t' | b'\n' | b'\r' | b'\x0c' | b'/' | b'>' | 0));
        ends && (namespaced || (splits > 0 && !spaced))
    })
}

/// `<style>@\69mport`, `<style>x:\65xpression`: a style sheet in the request that escapes an
/// at-rule or a property value with CSS backslash escapes.
pub(super) fn escaped_style(b: &[u8]) -> bool {
    let lower = b.to_ascii_lowercase();
    finder!(b"<style").find_iter(&lower).any(|p| {
        let rest = &lower[p + 6..];
        let Some(close) = memchr::memchr(b'>', rest) else {
            return false;
        };
        let body = &rest[close + 1..rest.len().min(close + 1 + 1024)];
        body.windows(2).any(|w| w == b"@\\")
            || body
                .iter()
                .position(|&c| matches!(c, b':' | b'='))
                .is_some_and(|q| body[q..].contains(&b'\\'))
    })
}

/// `<?import implementation="x.htc">` (also without the `?` or the blank): IE's element
/// behaviours, which load script from a URL.
pub(super) fn import_implementation(b: &[u8]) -> bool {
    let lower = b.to_ascii_lowercase();
    finder!(b"import").find_iter(&lower).any(|p| {
        let lead = &lower[..p];
        let tagged = lead.ends_with(b"<") || lead.ends_with(b"<?");
        let rest = &lower[p + 6..];
        let tag = &rest[..memchr::memchr(b'>', rest).unwrap_or(rest.len()).min(512)];
        tagged
            && finder!(b"implementation")
                .find_iter(tag)
                .any(|q| tag[q + 14..].trim_ascii_start().starts_with(b"="))
    })
}

/// `data:,<x>`, `data: text/html ; , <svg onload=...>`: a `data:` URL whose content, after the
/// comma, is markup.
pub(super) fn data_url_markup(b: &[u8]) -> bool {
    let t = b.trim_ascii_start();
    let t = t.strip_prefix(b"\"").unwrap_or(t);
    if t.len() < 6 || !t[..5].eq_ignore_ascii_case(b"data:") {
        return false;
    }
    let Some(comma) = memchr::memchr(b',', t) else {
        return false;
    };
    // the media type part is short and holds no markup
    let media = &t[5..comma];
    if media.len() > 64 || media.contains(&b'<') {
        return false;
    }
    let content = &t[comma + 1..];
    memchr::memchr_iter(b'<', content).any(|p| {
        let after = &content[p + 1..];
        after
            .first()
            .is_some_and(|c| c.is_ascii_alphabetic() || *c == b'/')
            && after.contains(&b'>')
    })
}

/// `!ENTITY % x SYSTEM "..."`: an XML entity declaration reaching out to a file or URL, even
/// without its `<`.
pub(super) fn entity_declaration(b: &[u8]) -> bool {
    let lower = b.to_ascii_lowercase();
    finder!(b"!entity").find_iter(&lower).any(|p| {
        let decl = &lower[p + 7..lower.len().min(p + 7 + 256)];
        decl.first().is_some_and(u8::is_ascii_whitespace)
            && decl
                .split(|c| c.is_ascii_whitespace())
                .skip(1)
                .take(4)
                .any(|w| w == b"system" || w == b"public")
    })
}

/// `¼script¾alert(¢XSS¢)¼/script¾`: markup written with the high bit set, which a decoder that
/// keeps 7 bits reads as `<script>alert("XSS")</script>`. A `¼` directly followed by a name and
/// `¾` is such a tag; anything else is read once more with the high bits dropped.
pub(super) fn high_bit_markup(v: &str, detect: fn(&str) -> bool) -> bool {
    if !v.contains('\u{bc}') {
        return false;
    }
    let folded: String = v
        .chars()
        .map(|c| match u32::from(c) {
            0xa0..=0xff => char::from((u32::from(c) & 0x7f) as u8),
            _ => c,
        })
        .collect();
    let b = folded.as_bytes();
    let tag = memchr::memchr_iter(b'<', b).any(|p| {
        let mut j = p + 1;
        if b.get(j) == Some(&b'/') {
            j += 1;
        }
        let name = j;
        while j < b.len() && b[j].is_ascii_alphanumeric() && j - name < 16 {
            j += 1;
        }
        j > name && b[name].is_ascii_alphabetic() && b.get(j) == Some(&b'>')
    });
    // a `¼` in the original followed by a letter then a `¾` with no blank: only then is the
    // folded `<name>` a tag rather than fractions in a recipe
    let original_tag = v.split('\u{bc}').skip(1).any(|s| {
        let name: String = s.chars().take_while(|c| *c != '\u{be}').collect();
        s.contains('\u{be}')
            && !name.is_empty()
            && name.len() <= 16
            && name
                .trim_start_matches('/')
                .starts_with(|c: char| c.is_ascii_alphabetic())
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '/')
    });
    (tag && original_tag) || detect(&folded)
}

#[cfg(test)]
mod tests {
    use super::super::detect;

    #[test]
    fn split_and_namespaced_elements() {
        for a in [
            "<f o r m",
            "$<d i a l o g",
            "< x: script",
            "foo=bar<s/c/r/i/p/t>",
            "<:vmlframe src=",
            "PHPSESSID=1234<i f r a m e src=x>",
        ] {
            assert!(detect(a), "missed {a}");
        }
        for b in [
            "<form action=\"/search\">",
            "a < form factor of 2",
            "<b>bold</b>",
            "if a<b or c>d then",
            "price < i m g",
            "time 10:30 < 11:00",
            "<https://image.example.com/a.png>",
            "<mailto:form@example.com>",
        ] {
            assert!(!detect(b), "false positive: {b}");
        }
    }

    #[test]
    fn escaped_styles_and_behaviours() {
        for a in [
            "<STYLE>@\\\\\\\\",
            "<style>=\\\\",
            "<style>@\\69mport 'x.css';</style>",
            "<?import implementation =",
            "<importimplementation=",
            "<?import namespace=\"t\" implementation=\"#default#time2\">",
        ] {
            assert!(detect(a), "missed {a}");
        }
        for b in [
            "<style>p { color: red }</style>",
            "import implementation details later",
            "we import the implementation = done",
        ] {
            assert!(!detect(b), "false positive: {b}");
        }
    }

    #[test]
    fn data_urls_entities_and_high_bits() {
        for a in [
            " data: , <x>",
            "data:,<svg onload=1>",
            "foo!ENTITY % bar SYSTEM",
            "!ENTITY xxe PUBLIC \"x\" \"http://x/\"",
            "\u{bc}test\u{be}test(\u{a2}XSS\u{a2})\u{bc}/test\u{be}",
            "\u{bc}script\u{be}alert(1)\u{bc}/script\u{be}",
        ] {
            assert!(detect(a), "missed {a}");
        }
        for b in [
            "data: 1, 2, 3",
            "data:image/png;base64,iVBORw0KGgo=",
            "the entity system is public",
            "!entity",
            "\u{bc} cup sugar, \u{be} cup flour",
            "\u{bc}tsp salt",
        ] {
            assert!(!detect(b), "false positive: {b}");
        }
    }
}
