//! Decoders applied to every inspected value before detection.
//!
//! Attackers hide payloads behind encodings the application will undo: percent-encoding (once or
//! several times, `%uXXXX`, overlong UTF-8), HTML entities, JavaScript/unicode escapes, and base64.
//! [`normalize`] undoes all of them repeatedly until the value stops changing (bounded), then
//! folds full-width and enclosed alphanumerics to ASCII. [`base64_decoded`] decodes a value only
//! when it is plainly base64 and decodes to readable text.

use base64::Engine;

/// How many decoding rounds [`normalize`] runs at most (enough for triple encoding).
const MAX_ROUNDS: usize = 4;

/// Undo every supported encoding, repeatedly. `plus_is_space` applies the form-encoding rule
/// (`+` means space) in the first round, for query strings and form bodies.
pub fn normalize(raw: &str, plus_is_space: bool) -> String {
    // most values (names, numbers, words) carry nothing any decoder below acts on
    if raw
        .bytes()
        .all(|b| b.is_ascii() && !matches!(b, b'%' | b'&' | b'\\' | b'+'))
    {
        return raw.to_string();
    }
    let mut cur = if plus_is_space && raw.contains('+') {
        raw.replace('+', " ")
    } else {
        raw.to_string()
    };
    for _ in 0..MAX_ROUNDS {
        let mut changed = false;
        if cur.contains('%') {
            let next = url_decode(&cur);
            changed |= next != cur;
            cur = next;
        }
        if cur.contains('&') {
            let next = html_decode(&cur);
            changed |= next != cur;
            cur = next;
        }
        if cur.contains('\\') {
            let next = js_unescape(&cur);
            changed |= next != cur;
            cur = next;
        }
        if cur.contains("+A") {
            let next = utf7_decode(&cur);
            changed |= next != cur;
            cur = next;
        }
        if !changed {
            break;
        }
    }
    if !cur.is_ascii() {
        cur = fold_unicode(&cur);
    }
    cur
}

fn hex_val(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

fn hex_num(s: &[u8]) -> Option<u32> {
    if s.is_empty() {
        return None;
    }
    let mut v: u32 = 0;
    for &b in s {
        v = v.checked_mul(16)?.checked_add(u32::from(hex_val(b)?))?;
    }
    Some(v)
}

/// Percent-decoding that never fails: `%XX`, IIS-style `%uXXXX`, invalid escapes kept literally,
/// overlong two-byte UTF-8 (`%C0%AE` = `.`) folded to ASCII, other invalid UTF-8 replaced.
pub fn url_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out: Vec<u8> = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            if matches!(b.get(i + 1), Some(b'u' | b'U')) {
                if let Some(cp) = b.get(i + 2..i + 6).and_then(hex_num) {
                    push_char(&mut out, cp);
                    i += 6;
                    continue;
                }
            }
            if let (Some(h), Some(l)) = (
                b.get(i + 1).copied().and_then(hex_val),
                b.get(i + 2).copied().and_then(hex_val),
            ) {
                out.push(h * 16 + l);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    bytes_to_string(out)
}

fn push_char(out: &mut Vec<u8>, cp: u32) {
    let c = char::from_u32(cp).unwrap_or('\u{FFFD}');
    let mut buf = [0u8; 4];
    out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
}

/// Bytes to text, folding overlong 2-byte sequences (`C0 AE`, `C1 9C`) to the ASCII they encode
/// (old decoders accepted them and attackers still use them for `../`).
fn bytes_to_string(bytes: Vec<u8>) -> String {
    match String::from_utf8(bytes) {
        Ok(s) => s,
        Err(e) => {
            let bytes = e.into_bytes();
            let mut fixed = Vec::with_capacity(bytes.len());
            let mut i = 0;
            while i < bytes.len() {
                let b0 = bytes[i];
                if (b0 == 0xC0 || b0 == 0xC1) && i + 1 < bytes.len() && bytes[i + 1] & 0xC0 == 0x80
                {
                    fixed.push(((b0 & 0x1F) << 6) | (bytes[i + 1] & 0x3F));
                    i += 2;
                    continue;
                }
                fixed.push(b0);
                i += 1;
            }
            String::from_utf8_lossy(&fixed).into_owned()
        }
    }
}

/// Named entities attackers use to hide markup and JavaScript punctuation.
const ENTITIES: &[(&str, char)] = &[
    ("lt", '<'),
    ("gt", '>'),
    ("amp", '&'),
    ("quot", '"'),
    ("apos", '\''),
    ("nbsp", ' '),
    ("colon", ':'),
    ("lpar", '('),
    ("rpar", ')'),
    ("lsqb", '['),
    ("rsqb", ']'),
    ("lbrack", '['),
    ("rbrack", ']'),
    ("lcub", '{'),
    ("rcub", '}'),
    ("lbrace", '{'),
    ("rbrace", '}'),
    ("tab", '\t'),
    ("newline", '\n'),
    ("sol", '/'),
    ("bsol", '\\'),
    ("equals", '='),
    ("comma", ','),
    ("period", '.'),
    ("semi", ';'),
    ("excl", '!'),
    ("quest", '?'),
    ("num", '#'),
    ("grave", '`'),
    ("plus", '+'),
    ("ast", '*'),
    ("dollar", '$'),
    ("percnt", '%'),
    ("hat", '^'),
    ("lowbar", '_'),
    ("verbar", '|'),
    ("vert", '|'),
    ("commat", '@'),
    ("apos", '\''),
];

/// HTML entity decoding: named entities above, `&#NN;` and `&#xHH;`, with or without the `;`
/// (browsers accept both).
pub fn html_decode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(pos) = rest.find('&') {
        out.push_str(&rest[..pos]);
        let after = &rest[pos + 1..];
        if let Some((c, used)) = decode_entity(after) {
            out.push(c);
            rest = &after[used..];
        } else {
            out.push('&');
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

/// Decode one entity body (after `&`); returns the char and the bytes consumed.
fn decode_entity(after: &str) -> Option<(char, usize)> {
    let b = after.as_bytes();
    if b.first() == Some(&b'#') {
        let (hex, start) = match b.get(1) {
            Some(b'x' | b'X') => (true, 2),
            _ => (false, 1),
        };
        let mut end = start;
        while end < b.len() && end - start < 8 {
            let ok = if hex {
                b[end].is_ascii_hexdigit()
            } else {
                b[end].is_ascii_digit()
            };
            if !ok {
                break;
            }
            end += 1;
        }
        if end == start {
            return None;
        }
        let digits = &after[start..end];
        let cp = if hex {
            u32::from_str_radix(digits, 16).ok()?
        } else {
            digits.parse::<u32>().ok()?
        };
        let c = char::from_u32(cp).unwrap_or('\u{FFFD}');
        let used = if b.get(end) == Some(&b';') {
            end + 1
        } else {
            end
        };
        return Some((c, used));
    }
    let mut end = 0;
    while end < b.len() && end < 10 && b[end].is_ascii_alphabetic() {
        end += 1;
    }
    if end == 0 {
        return None;
    }
    let name = &after[..end];
    let (_, c) = ENTITIES
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))?;
    let used = if b.get(end) == Some(&b';') {
        end + 1
    } else {
        end
    };
    Some((*c, used))
}

/// JavaScript and unicode escapes: `\uXXXX`, `\u{X..}`, `\xHH`.
pub fn js_unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out: Vec<u8> = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 1 < b.len() {
            match b[i + 1] {
                b'u' | b'U' => {
                    if b.get(i + 2) == Some(&b'{') {
                        if let Some(close) = b[i + 3..].iter().take(8).position(|&c| c == b'}') {
                            if let Some(cp) = hex_num(&b[i + 3..i + 3 + close]) {
                                push_char(&mut out, cp);
                                i += 4 + close;
                                continue;
                            }
                        }
                    } else if let Some(cp) = b.get(i + 2..i + 6).and_then(hex_num) {
                        push_char(&mut out, cp);
                        i += 6;
                        continue;
                    }
                }
                b'x' | b'X' => {
                    if let Some(cp) = b.get(i + 2..i + 4).and_then(hex_num) {
                        push_char(&mut out, cp);
                        i += 4;
                        continue;
                    }
                }
                _ => {}
            }
        }
        out.push(b[i]);
        i += 1;
    }
    bytes_to_string(out)
}

/// UTF-7 runs that encode ASCII (`+ADw-script+AD4-` = `<script>`), the charset trick old
/// browsers and XML parsers honour; runs that decode to anything else are left alone.
pub fn utf7_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'+' {
            let start = i + 1;
            let mut j = start;
            while j < b.len() && (b[j].is_ascii_alphanumeric() || b[j] == b'+' || b[j] == b'/') {
                j += 1;
            }
            if let Some(text) = utf7_run(&s[start..j]) {
                out.push_str(&text);
                i = if b.get(j) == Some(&b'-') { j + 1 } else { j };
                continue;
            }
        }
        out.push(char::from(b[i]));
        if b[i] >= 0x80 {
            // copy the rest of a multi-byte character untouched
            out.pop();
            let ch_len = s[i..].chars().next().map_or(1, char::len_utf8);
            out.push_str(&s[i..i + ch_len]);
            i += ch_len;
            continue;
        }
        i += 1;
    }
    out
}

fn utf7_run(run: &str) -> Option<String> {
    if run.len() < 3 {
        return None;
    }
    // a run of 4n+1 symbols carries a dangling symbol of padding bits: drop it
    let keep = if run.len() % 4 == 1 {
        run.len() - 1
    } else {
        run.len()
    };
    let bytes = base64::engine::general_purpose::STANDARD_NO_PAD
        .decode(&run.as_bytes()[..keep])
        .ok()?;
    let units: Vec<u16> = bytes
        .chunks_exact(2)
        .map(|c| u16::from_be_bytes([c[0], c[1]]))
        .collect();
    if units.is_empty()
        || units
            .iter()
            .any(|&u| u >= 0x80 || (u < 0x20 && u != 0x0a && u != 0x0d && u != 0x09))
    {
        return None;
    }
    Some(units.iter().map(|&u| char::from(u as u8)).collect())
}

/// Fold full-width ASCII (`＜`), enclosed alphanumerics (`Ⓖ`) and a few look-alike quotes and
/// spaces to plain ASCII, as best-fit code-page mappings in servers do.
fn fold_unicode(s: &str) -> String {
    s.chars()
        .map(|c| match c as u32 {
            0xFF01..=0xFF5E => char::from_u32(c as u32 - 0xFF01 + 0x21).unwrap_or(c),
            0x24B6..=0x24CF => char::from_u32(c as u32 - 0x24B6 + u32::from(b'A')).unwrap_or(c),
            0x24D0..=0x24E9 => char::from_u32(c as u32 - 0x24D0 + u32::from(b'a')).unwrap_or(c),
            0x2460..=0x2468 => char::from_u32(c as u32 - 0x2460 + u32::from(b'1')).unwrap_or(c),
            0x24EA | 0x24FF => '0',
            0x3002 | 0xFF61 => '.',
            0x2018 | 0x2019 | 0x02BC => '\'',
            0x201C | 0x201D => '"',
            0x00A0 | 0x2000..=0x200A | 0x3000 => ' ',
            0xFEFF | 0x200B..=0x200D => '\u{0}',
            _ => c,
        })
        .filter(|&c| c != '\u{0}')
        .collect()
}

/// Minimum length of a value worth trying as base64.
const BASE64_MIN: usize = 8;

/// Decode `s` when it is plainly base64 (standard or URL-safe alphabet, sane padding, at least
/// [`BASE64_MIN`] characters) and the result is readable text; `None` otherwise.
pub fn base64_decoded(s: &str) -> Option<String> {
    let t = s.trim();
    if t.len() < BASE64_MIN || t.len() > 1 << 20 {
        return None;
    }
    let body = t.trim_end_matches('=');
    if t.len() - body.len() > 2 {
        return None;
    }
    let mut has_digit_or_sym = false;
    let mut has_upper = false;
    let mut has_lower = false;
    for b in body.bytes() {
        match b {
            b'A'..=b'Z' => has_upper = true,
            b'a'..=b'z' => has_lower = true,
            b'0'..=b'9' | b'+' | b'/' | b'-' | b'_' | b' ' => has_digit_or_sym = true,
            _ => return None,
        }
    }
    // Real base64 of text mixes cases; a plain word or number is not worth decoding.
    if !(has_upper && has_lower) && !(has_digit_or_sym && (has_upper || has_lower)) {
        return None;
    }
    // (each character maps to one below: a length base64 cannot have is known now)
    if body.len() % 4 == 1 {
        return None;
    }
    // `+` may have become a space through form decoding; `-`/`_` are the URL-safe alphabet.
    let std: String = body
        .chars()
        .map(|c| match c {
            ' ' => '+',
            '-' => '+',
            '_' => '/',
            c => c,
        })
        .collect();
    if std.len() % 4 == 1 {
        return None;
    }
    let bytes = base64::engine::general_purpose::STANDARD_NO_PAD
        .decode(std.as_bytes())
        .ok()?;
    let text = String::from_utf8(bytes).ok()?;
    let printable = text
        .chars()
        .filter(|c| !c.is_control() || matches!(c, '\n' | '\r' | '\t'))
        .count();
    if printable * 100 < text.chars().count() * 95 {
        return None;
    }
    Some(text)
}

/// A `Content-Encoding` CNAF undoes before inspecting a body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Coding {
    /// `gzip` / `x-gzip` (RFC 1952), members concatenated or not.
    Gzip,
    /// `deflate`: zlib-wrapped (RFC 1950) as the standard says, or raw deflate (RFC 1951) as
    /// some clients send it.
    Deflate,
    /// `br` (RFC 7932, windows up to the standard 16 MiB).
    Brotli,
    /// `zstd` (RFC 8878; frames whose window is larger than 128 MiB, the reference decoder's
    /// default limit, are refused as that decoder refuses them).
    Zstd,
}

impl Coding {
    /// The one coding a `Content-Encoding` value names (`identity` entries ignored); `None`
    /// for none, an unknown coding, or codings applied on top of each other.
    pub(crate) fn of(header: &str) -> Option<Coding> {
        let mut found = None;
        for c in header.split(',').map(str::trim).filter(|c| !c.is_empty()) {
            let coding = if c.eq_ignore_ascii_case("gzip") || c.eq_ignore_ascii_case("x-gzip") {
                Coding::Gzip
            } else if c.eq_ignore_ascii_case("deflate") {
                Coding::Deflate
            } else if c.eq_ignore_ascii_case("br") {
                Coding::Brotli
            } else if c.eq_ignore_ascii_case("zstd") {
                Coding::Zstd
            } else if c.eq_ignore_ascii_case("identity") {
                continue;
            } else {
                return None;
            };
            if found.replace(coding).is_some() {
                return None;
            }
        }
        found
    }
}

/// Decompress `data` (which may be cut short, as a body prefix is) into at most `limit` bytes:
/// output past `limit` is never produced, so a decompression bomb costs at most `limit` bytes
/// of memory (plus the decoder's window: 32 KiB for gzip and deflate, at most 16 MiB for
/// brotli, at most `limit` touched for zstd) and the time to produce them. A stream
/// cut short or corrupt midway gives what decoded before that point; `None` when `data` does
/// not start as that coding at all.
pub(crate) fn decompress(coding: Coding, data: &[u8], limit: usize) -> Option<Vec<u8>> {
    use std::io::Read;
    fn run(r: impl Read, limit: usize) -> Option<Vec<u8>> {
        let mut out = Vec::new();
        let result = r.take(limit as u64).read_to_end(&mut out);
        (result.is_ok() || !out.is_empty()).then_some(out)
    }
    match coding {
        Coding::Gzip => run(flate2::read::MultiGzDecoder::new(data), limit),
        Coding::Deflate => run(flate2::read::ZlibDecoder::new(data), limit)
            .or_else(|| run(flate2::read::DeflateDecoder::new(data), limit)),
        Coding::Brotli => run(brotli_decompressor::Decompressor::new(data, 4096), limit),
        Coding::Zstd => {
            let decoder = ruzstd::decoding::StreamingDecoder::new(data).ok()?;
            run(decoder, limit)
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    #[test]
    fn url_single_double_and_unicode() {
        assert_eq!(normalize("%27%20OR%201", false), "' OR 1");
        assert_eq!(normalize("%2527%2520OR", false), "' OR");
        assert_eq!(normalize("%u003cscript%u003e", false), "<script>");
        assert_eq!(normalize("a+b", true), "a b");
        assert_eq!(normalize("a+b", false), "a+b");
        assert_eq!(normalize("100%", false), "100%");
        assert_eq!(normalize("%zz%4", false), "%zz%4");
        for plain in ["price_asc", "42", "Running shoe (blue)", "", "a=b;c"] {
            assert_eq!(normalize(plain, true), plain);
        }
    }

    #[test]
    fn overlong_utf8_dots() {
        assert_eq!(
            normalize("%C0%AE%C0%AE%C0%AFetc%C0%AFpasswd", false),
            "../etc/passwd"
        );
    }

    #[test]
    fn html_entities_with_and_without_semicolon() {
        assert_eq!(
            normalize("&lt;svg/onload&equals;alert(1)&gt;", false),
            "<svg/onload=alert(1)>"
        );
        assert_eq!(normalize("j&#X41vascript&#58;", false), "jAvascript:");
        assert_eq!(normalize("a & b &unknown;", false), "a & b &unknown;");
        assert_eq!(normalize("&amp;lt;", false), "<");
    }

    #[test]
    fn js_escapes_and_folding() {
        assert_eq!(normalize("\\u003cimg\\x3e", false), "<img>");
        assert_eq!(normalize("\\u{3c}b", false), "<b");
        assert_eq!(normalize("＜script＞", false), "<script>");
        assert_eq!(normalize("ⒼⓄⓄ", false), "GOO");
        assert_eq!(normalize("trailing \\", false), "trailing \\");
        assert_eq!(normalize("+ADw-script+AD4-", false), "<script>");
        assert_eq!(normalize("C+ABC and +A", false), "C+ABC and +A");
        assert_eq!(normalize("é+ADw-", false), "é<");
    }

    #[test]
    fn base64_only_when_plain() {
        assert_eq!(
            base64_decoded("PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==").as_deref(),
            Some("<script>alert(1)</script>")
        );
        assert_eq!(base64_decoded("password"), None);
        assert_eq!(base64_decoded("hello world"), None);
        assert_eq!(base64_decoded("12345678"), None);
        assert_eq!(base64_decoded("Zm9v"), None, "too short to be worth it");
    }

    fn gzip(data: &[u8]) -> Vec<u8> {
        use std::io::Write;
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn content_codings() {
        assert_eq!(Coding::of("gzip"), Some(Coding::Gzip));
        assert_eq!(Coding::of("X-GZIP"), Some(Coding::Gzip));
        assert_eq!(Coding::of(" deflate , identity"), Some(Coding::Deflate));
        assert_eq!(Coding::of("identity"), None);
        assert_eq!(Coding::of("br"), Some(Coding::Brotli));
        assert_eq!(Coding::of("ZSTD"), Some(Coding::Zstd));
        assert_eq!(Coding::of("compress"), None, "unknown coding");
        assert_eq!(Coding::of("br, zstd"), None, "stacked codings");
        assert_eq!(Coding::of("gzip, gzip"), None, "stacked codings");
        assert_eq!(Coding::of("deflate, gzip"), None);
    }

    #[test]
    fn decompression_is_bounded_and_keeps_a_truncated_stream() {
        let text = b"name=alice&note=hello".repeat(1000);
        let z = gzip(&text);
        assert_eq!(decompress(Coding::Gzip, &z, 1 << 20).unwrap(), text);
        // a bomb: 8 MiB of zeros in a few KiB, decoded only up to the limit
        let bomb = gzip(&vec![0u8; 8 << 20]);
        assert!(bomb.len() < 16 * 1024, "{}", bomb.len());
        assert_eq!(decompress(Coding::Gzip, &bomb, 4096).unwrap().len(), 4096);
        // cut short (a body prefix): what decoded so far
        let part = decompress(Coding::Gzip, &z[..z.len() / 2], 1 << 20).unwrap();
        assert!(
            !part.is_empty() && text.starts_with(&part),
            "{}",
            part.len()
        );
        // not compressed at all
        assert_eq!(
            decompress(Coding::Gzip, b"plain text, not gzip", 1024),
            None
        );
        assert_eq!(decompress(Coding::Deflate, b"plain text", 1024), None);
    }

    #[test]
    fn deflate_zlib_wrapped_and_raw() {
        use std::io::Write;
        let text = b"cmd=;cat /etc/passwd";
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        z.write_all(text).unwrap();
        let zlib = z.finish().unwrap();
        let mut d = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
        d.write_all(text).unwrap();
        let raw = d.finish().unwrap();
        assert_eq!(decompress(Coding::Deflate, &zlib, 1024).unwrap(), text);
        assert_eq!(decompress(Coding::Deflate, &raw, 1024).unwrap(), text);
    }

    pub(crate) fn brotli(data: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        let params = brotli::enc::BrotliEncoderParams::default();
        brotli::BrotliCompress(&mut &data[..], &mut out, &params).unwrap();
        out
    }

    pub(crate) fn zstd(data: &[u8]) -> Vec<u8> {
        ruzstd::encoding::compress_to_vec(data, ruzstd::encoding::CompressionLevel::Fastest)
    }

    #[test]
    fn brotli_and_zstd_round_trip_bounded_and_truncated() {
        let text = b"q=1' union select password from users--&note=hello".repeat(500);
        for (coding, pack) in [
            (Coding::Brotli, brotli as fn(&[u8]) -> Vec<u8>),
            (Coding::Zstd, zstd),
        ] {
            let z = pack(&text);
            assert!(z.len() < text.len() / 4, "{coding:?}: {}", z.len());
            assert_eq!(decompress(coding, &z, 1 << 20).unwrap(), text, "{coding:?}");
            // a bomb decodes only up to the limit
            let bomb = pack(&vec![b'a'; 8 << 20]);
            assert!(bomb.len() < 64 * 1024, "{coding:?}: {}", bomb.len());
            assert_eq!(
                decompress(coding, &bomb, 4096).unwrap().len(),
                4096,
                "{coding:?}"
            );
            // a body prefix gives what decoded before the cut
            let part = decompress(coding, &z[..z.len() / 2], 1 << 20).unwrap_or_default();
            assert!(text.starts_with(&part), "{coding:?}");
            // not that coding at all
            let plain = decompress(coding, b"plain text that is not compressed", 1024);
            assert!(
                plain.as_deref().is_none_or(|p| p.len() < 8),
                "{coding:?}: {plain:?}"
            );
        }
    }

    #[test]
    fn zstd_frames_with_an_oversized_window_are_refused() {
        // frame header: magic, descriptor with a window descriptor byte asking for 2^41 bytes
        let frame = [0x28, 0xb5, 0x2f, 0xfd, 0x00, 0xf8, 0x00, 0x00, 0x00];
        assert_eq!(decompress(Coding::Zstd, &frame, 4096), None);
    }
}
