//! Every place a request carries data, as (location, raw value) pairs handed to the inspector:
//! path, query parameters (names and values), cookies, headers, and the body by its declared
//! (or evident) type: URL-encoded form, JSON (keys and values), multipart (names, filenames,
//! contents), XML (text, attributes, DTD) or plain text.

use std::fmt::Write as _;

use crate::detect::{Inspector, ValueKind};
use crate::model::{Attack, Location, RequestParts};
use crate::xml_refs;

/// Headers whose values are protocol structure, not application data.
const STRUCTURAL_HEADERS: &[&str] = &[
    "host",
    "accept",
    "accept-encoding",
    "accept-language",
    "accept-charset",
    "content-type",
    "content-length",
    "content-encoding",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "cache-control",
    "pragma",
    "if-modified-since",
    "if-none-match",
    "if-match",
    "if-unmodified-since",
    "upgrade-insecure-requests",
    "te",
    "dnt",
    "sec-fetch-site",
    "sec-fetch-mode",
    "sec-fetch-dest",
    "sec-fetch-user",
    "sec-ch-ua",
    "sec-ch-ua-mobile",
    "sec-ch-ua-platform",
    "priority",
    "authorization",
    "date",
    "range",
    "expect",
];

/// Headers upload helpers use to name the uploaded file.
const FILENAME_HEADERS: &[&str] = &[
    "x-filename",
    "x_filename",
    "x-file-name",
    "x-file",
    "x.filename",
];

/// Deepest JSON/XML nesting walked.
const MAX_DEPTH: usize = 64;

/// Every location of the request into `insp`; a compressed body is decompressed into at most
/// `body_limit` bytes first.
pub(crate) fn walk(parts: &RequestParts, body: &[u8], insp: &mut Inspector<'_>, body_limit: usize) {
    let path = parts.path();
    if insp.wants(Attack::Lfi) {
        let decoded = crate::decode::normalize(path, false);
        if crate::detect::lfi::restricted_path(&decoded) {
            insp.record(Attack::Lfi, Location::Path, &decoded);
        }
    }
    insp.scan(&|| Location::Path, path, ValueKind::Plain);
    let tail = path.trim_start_matches('/');
    if crate::decode::base64_decoded(tail).is_some() {
        // the whole path may be one base64 value with `/` in its alphabet
        insp.scan(&|| Location::Path, tail, ValueKind::Plain);
    }
    for seg in path.split('/').filter(|s| s.len() >= 8) {
        // a segment may be a base64 or otherwise encoded value of its own
        if crate::decode::base64_decoded(seg).is_some() {
            insp.scan(&|| Location::Path, seg, ValueKind::Plain);
        }
    }
    if let Some(q) = parts.query() {
        pairs(
            q,
            insp,
            |n| Location::Query(n.to_string()),
            |n| Location::QueryName(n.to_string()),
        );
    }
    for (name, value) in &parts.headers {
        if insp.done() {
            return;
        }
        // names arrive lower-case from the proxy (HTTP/1 names are case-insensitive): compare
        // them as such, folding only names that are not
        let lower = if name.bytes().any(|b| b.is_ascii_uppercase()) {
            std::borrow::Cow::Owned(name.to_ascii_lowercase())
        } else {
            std::borrow::Cow::Borrowed(name.as_str())
        };
        let lower = lower.as_ref();
        let loc = || Location::Header(lower.to_string());
        let is = |h: &str| lower == h;
        if crate::detect::tools::scanner_header(name) {
            insp.record(Attack::AttackTools, loc(), name);
        }
        if FILENAME_HEADERS.contains(&lower) && crate::upload::dangerous(value).is_some() {
            insp.record(Attack::CodeInjection, loc(), value);
        }
        if is("cookie") {
            cookies(value, insp);
        } else if is("user-agent") {
            insp.scan_repeated(&loc, value, ValueKind::UserAgent);
        } else if is("referer") || is("origin") {
            // a URL this site's pages produced: its host (often this site's own IP address) is
            // not data; its path and query are
            let rest = value
                .split_once("://")
                .map_or(value.as_str(), |(_, r)| r.find('/').map_or("", |i| &r[i..]));
            insp.scan(&loc, rest, ValueKind::Plain);
            // and its query parameters one by one, as the page that sent them received them
            if let Some((_, query)) = rest.split_once('?') {
                let query = query.split('#').next().unwrap_or("");
                pairs(query, insp, |_| loc(), |_| loc());
            }
        } else if STRUCTURAL_HEADERS.contains(&lower) {
            // still: Shellshock hides in any header
            if insp.wants(Attack::Shellshock) && crate::detect::tools::shellshock(value) {
                insp.record(Attack::Shellshock, loc(), value);
            }
        } else {
            insp.scan(&loc, value, ValueKind::Plain);
        }
    }
    if !body.is_empty() && !insp.done() {
        let ct = parts.first_header("content-type").unwrap_or("");
        let decoded = parts
            .first_header("content-encoding")
            .and_then(crate::decode::Coding::of)
            .and_then(|coding| crate::decode::decompress(coding, body, body_limit));
        // a body that is not in the coding it claims is inspected as sent
        walk_body(ct, decoded.as_deref().unwrap_or(body), insp);
    }
}

/// `a=1&b=2` (query string or form body); names are inspected too.
fn pairs(
    s: &str,
    insp: &mut Inspector<'_>,
    value_loc: impl Fn(&str) -> Location,
    name_loc: impl Fn(&str) -> Location,
) {
    for pair in s.split('&') {
        if insp.done() {
            return;
        }
        if pair.is_empty() {
            continue;
        }
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        let shown = || crate::decode::normalize(name, true);
        if worth_scanning_name(name) {
            insp.scan(&|| name_loc(&shown()), name, ValueKind::FormEncoded);
        }
        let decoded = insp.scan_decoding(&|| value_loc(&shown()), value, ValueKind::FormEncoded);
        insp.scan_named(
            &|| value_loc(&shown()),
            name,
            value,
            decoded.as_deref(),
            true,
        );
    }
}

/// Parameter and cookie names of one or two word characters (`id`, `q`) cannot hold anything a
/// detector looks for; anything longer, or with punctuation (`||`, `<>`), can.
fn worth_scanning_name(name: &str) -> bool {
    name.len() > 2 || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

fn cookies(header: &str, insp: &mut Inspector<'_>) {
    for c in header.split(';') {
        let (name, value) = c.trim().split_once('=').unwrap_or((c.trim(), ""));
        if worth_scanning_name(name) {
            let loc = || Location::Cookie(name.to_string());
            insp.scan(&loc, name, ValueKind::Plain);
        }
        insp.scan(
            &|| Location::Cookie(name.to_string()),
            value,
            ValueKind::Plain,
        );
    }
}

fn walk_body(content_type: &str, body: &[u8], insp: &mut Inspector<'_>) {
    let ct = content_type.to_ascii_lowercase();
    if ct.starts_with("multipart/") {
        if let Some(b) = boundary(content_type) {
            multipart(body, &b, insp);
            return;
        }
    }
    if binary(&ct, body) {
        strings(body, insp, &|| Location::Body);
        return;
    }
    let text = utf8_lossy(body);
    let trimmed = text.trim_start();
    if ct.contains("json")
        || (ct.is_empty() || ct.starts_with("text/plain")) && trimmed.starts_with(['{', '['])
    {
        if json(&text, insp) {
            return;
        }
        lenient_strings(&text, insp);
        insp.scan(&|| Location::Body, &text, ValueKind::Plain);
        return;
    }
    if ct.contains("xml") || (!ct.contains("form-urlencoded") && trimmed.starts_with('<')) {
        // markup sent without an XML content type may be HTML to the app: inspect it whole too
        if xml(&text, insp) && ct.contains("xml") {
            return;
        }
        insp.scan(&|| Location::Body, &text, ValueKind::Plain);
        return;
    }
    if ct.contains("form-urlencoded") {
        pairs(
            &text,
            insp,
            |n| Location::Form(n.to_string()),
            |n| Location::Form(n.to_string()),
        );
        return;
    }
    insp.scan(&|| Location::Body, &text, ValueKind::Plain);
}

/// Media types whose bytes are not text.
const BINARY_TYPES: &[&str] = &[
    "image/",
    "audio/",
    "video/",
    "font/",
    "application/octet-stream",
    "application/zip",
    "application/gzip",
    "application/x-gzip",
    "application/pdf",
    "application/x-protobuf",
    "application/protobuf",
    "application/grpc",
    "application/x-tar",
    "application/x-7z",
    "application/vnd.",
];

/// Whether a body (or multipart part) is binary: declared so, or carrying NUL bytes or mostly
/// non-UTF-8 in its first KiB. Binary data is inspected by its printable strings only.
fn binary(ct: &str, bytes: &[u8]) -> bool {
    if BINARY_TYPES.iter().any(|t| ct.starts_with(t)) && !ct.contains("json") && !ct.contains("xml")
    {
        return true;
    }
    let head = &bytes[..bytes.len().min(1024)];
    if head.contains(&0) {
        return true;
    }
    let text = utf8_lossy(head);
    let bad = text.chars().filter(|&c| c == '\u{FFFD}').count();
    bad * 20 > text.chars().count().max(1)
}

/// [`String::from_utf8_lossy`], with valid UTF-8 (nearly every body) checked by the faster
/// validator and borrowed.
fn utf8_lossy(bytes: &[u8]) -> std::borrow::Cow<'_, str> {
    match std::str::from_utf8(bytes) {
        Ok(s) => std::borrow::Cow::Borrowed(s),
        Err(_) => String::from_utf8_lossy(bytes),
    }
}

/// Runs of at least 16 printable ASCII characters in binary data, each inspected
/// as a value (protobuf, gRPC and serialized formats carry text this way).
fn strings(bytes: &[u8], insp: &mut Inspector<'_>, loc: &dyn Fn() -> Location) {
    const MIN_STRING: usize = 16;
    const MAX_STRINGS: usize = 4096;
    let mut start = None;
    let mut found = 0;
    for (i, &b) in bytes.iter().chain(std::iter::once(&0u8)).enumerate() {
        if (0x20..0x7f).contains(&b) || b == b'\t' {
            start.get_or_insert(i);
            continue;
        }
        if let Some(s) = start.take() {
            if i - s >= MIN_STRING {
                // printable ASCII: always valid UTF-8
                if let Ok(run) = std::str::from_utf8(&bytes[s..i]) {
                    insp.scan(loc, run, ValueKind::Plain);
                }
                found += 1;
                if found >= MAX_STRINGS || insp.done() {
                    return;
                }
            }
        }
    }
}

fn boundary(ct: &str) -> Option<String> {
    ct.split(';').find_map(|p| {
        let (k, v) = p.trim().split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case("boundary")
            .then(|| v.trim().trim_matches('"').to_string())
            .filter(|b| !b.is_empty())
    })
}

/// Walk a JSON document; false when it does not parse (e.g. truncated at the body limit).
fn json(text: &str, insp: &mut Inspector<'_>) -> bool {
    let Ok(v) = serde_json::from_str::<serde_json::Value>(text) else {
        return false;
    };
    let mut walk = JsonWalk {
        path: String::from("$"),
        seen: std::collections::HashSet::new(),
        insp,
    };
    walk.value(&v, 0);
    true
}

/// State of one JSON walk. `seen` holds the keys and values already inspected: arrays of
/// objects repeat their keys (and often values), and inspecting the same string again cannot
/// find anything new (detection is a function of the string; each class is reported once).
struct JsonWalk<'v, 'i, 'p> {
    path: String,
    seen: std::collections::HashSet<&'v str>,
    insp: &'i mut Inspector<'p>,
}

impl<'v> JsonWalk<'v, '_, '_> {
    fn scan(&mut self, s: &'v str, key: bool) {
        // bounded: past this many distinct strings, the rest are inspected without the check
        const MAX_SEEN: usize = 4096;
        let repeated = if self.seen.len() < MAX_SEEN {
            !self.seen.insert(s)
        } else {
            self.seen.contains(s)
        };
        if repeated {
            return;
        }
        let path = &self.path;
        self.insp.scan(
            &|| Location::Json {
                path: path.clone(),
                key,
            },
            s,
            ValueKind::Plain,
        );
    }

    fn value(&mut self, v: &'v serde_json::Value, depth: usize) {
        if depth > MAX_DEPTH || self.insp.done() {
            return;
        }
        match v {
            serde_json::Value::String(s) => self.scan(s, false),
            serde_json::Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    let len = self.path.len();
                    let _ = write!(self.path, "[{i}]");
                    self.value(item, depth + 1);
                    self.path.truncate(len);
                }
            }
            serde_json::Value::Object(map) => {
                for (k, item) in map {
                    let len = self.path.len();
                    self.path.push('.');
                    self.path.push_str(k);
                    self.scan(k, true);
                    if let serde_json::Value::String(s) = item {
                        let path = &self.path;
                        self.insp.scan_named(
                            &|| Location::Json {
                                path: path.clone(),
                                key: false,
                            },
                            k,
                            s,
                            None,
                            false,
                        );
                    }
                    self.value(item, depth + 1);
                    self.path.truncate(len);
                }
            }
            _ => {}
        }
    }
}

/// For JSON-looking bodies that do not parse: every double-quoted string in them.
fn lenient_strings(text: &str, insp: &mut Inspector<'_>) {
    let b = text.as_bytes();
    let mut i = 0;
    let mut n = 0;
    while i < b.len() && n < 4096 {
        if b[i] == b'"' {
            let start = i + 1;
            let mut j = start;
            while j < b.len() && b[j] != b'"' {
                j += if b[j] == b'\\' { 2 } else { 1 };
            }
            let end = j.min(b.len());
            if let Some(s) = text.get(start..end) {
                insp.scan(
                    &|| Location::Json {
                        path: format!("$string[{n}]"),
                        key: false,
                    },
                    s,
                    ValueKind::Plain,
                );
            }
            n += 1;
            i = end + 1;
            continue;
        }
        i += 1;
    }
}

/// Parts of a `multipart/form-data` body: field names, filenames and contents.
fn multipart(body: &[u8], boundary: &str, insp: &mut Inspector<'_>) {
    let delim = format!("--{boundary}");
    let finder = memchr::memmem::Finder::new(delim.as_bytes());
    let starts: Vec<usize> = finder.find_iter(body).collect();
    for (k, &s) in starts.iter().enumerate() {
        if insp.done() {
            return;
        }
        let part_start = s + delim.len();
        let part_end = starts.get(k + 1).copied().unwrap_or(body.len());
        if part_start >= part_end || body[part_start..].starts_with(b"--") {
            continue;
        }
        let part = &body[part_start..part_end];
        let (head, content) = match memchr::memmem::find(part, b"\r\n\r\n") {
            Some(p) => (&part[..p], &part[p + 4..]),
            None => match memchr::memmem::find(part, b"\n\n") {
                Some(p) => (&part[..p], &part[p + 2..]),
                None => (part, &b""[..]),
            },
        };
        let head = String::from_utf8_lossy(head);
        let content = content
            .strip_suffix(b"\r\n")
            .or_else(|| content.strip_suffix(b"\n"))
            .unwrap_or(content);
        let mut name = String::from("?");
        for line in head.lines() {
            let Some((hname, hval)) = line.split_once(':') else {
                continue;
            };
            if !hname.trim().eq_ignore_ascii_case("content-disposition") {
                continue;
            }
            for param in hval.split(';').skip(1) {
                let Some((pk, pv)) = param.trim().split_once('=') else {
                    continue;
                };
                let pv = pv.trim().trim_matches('"');
                if pk.trim().eq_ignore_ascii_case("name") {
                    name = pv.to_string();
                    insp.scan(&|| Location::Multipart(name.clone()), pv, ValueKind::Plain);
                } else if pk.trim().eq_ignore_ascii_case("filename") {
                    let loc = || Location::Multipart(format!("{name} filename"));
                    if crate::upload::dangerous(pv).is_some() {
                        insp.record(Attack::CodeInjection, loc(), pv);
                    }
                    insp.scan(&loc, pv, ValueKind::Plain);
                }
            }
        }
        let part_type = head
            .lines()
            .find_map(|l| {
                let (n, v) = l.split_once(':')?;
                n.trim()
                    .eq_ignore_ascii_case("content-type")
                    .then(|| v.trim().to_ascii_lowercase())
            })
            .unwrap_or_default();
        if binary(&part_type, content) {
            strings(content, insp, &|| Location::Multipart(name.clone()));
        } else {
            insp.scan(
                &|| Location::Multipart(name.clone()),
                &String::from_utf8_lossy(content),
                ValueKind::Plain,
            );
        }
    }
}

/// Walk an XML document: text, CDATA, attribute values, comments and the DTD, plus the
/// external schema and XInclude references of its elements ([`xml_refs`]); false when it does
/// not parse.
fn xml(text: &str, insp: &mut Inspector<'_>) -> bool {
    use xmlparser::{ElementEnd, Token};
    let mut stack: Vec<String> = Vec::new();
    let mut depth = 0usize;
    let mut values: Vec<(Location, String)> = Vec::new();
    // the element whose start tag is open, and its attributes, for external schema references
    let mut namespaces = xml_refs::Namespaces::default();
    let mut element: (&str, &str) = ("", "");
    let mut attrs: Vec<xml_refs::Attr<'_>> = Vec::new();
    let mut external: Option<(Location, String)> = None;
    for tok in xmlparser::Tokenizer::from(text) {
        let Ok(tok) = tok else {
            return false;
        };
        let here = || format!("/{}", stack.join("/"));
        match tok {
            Token::ElementStart { prefix, local, .. } => {
                depth += 1;
                if depth <= MAX_DEPTH {
                    stack.push(local.as_str().to_string());
                }
                element = (prefix.as_str(), local.as_str());
                attrs.clear();
            }
            Token::ElementEnd { end, .. } => {
                if matches!(end, ElementEnd::Open | ElementEnd::Empty) {
                    namespaces.declare(&attrs);
                    if external.is_none() {
                        if let Some(a) =
                            xml_refs::external_reference(&namespaces, element.0, element.1, &attrs)
                        {
                            external = Some((
                                Location::Xml(format!("{}/@{}", here(), a.local)),
                                a.value.to_string(),
                            ));
                        }
                    }
                    attrs.clear();
                }
                if matches!(end, ElementEnd::Close(..) | ElementEnd::Empty) {
                    if depth <= MAX_DEPTH {
                        stack.pop();
                    }
                    depth = depth.saturating_sub(1);
                }
            }
            Token::Attribute {
                prefix,
                local,
                value,
                ..
            } => {
                attrs.push(xml_refs::Attr {
                    prefix: prefix.as_str(),
                    local: local.as_str(),
                    value: value.as_str(),
                });
                values.push((
                    Location::Xml(format!("{}/@{}", here(), local.as_str())),
                    value.as_str().to_string(),
                ));
            }
            Token::Text { text } | Token::Cdata { text, .. }
                if !text.as_str().trim().is_empty() =>
            {
                values.push((Location::Xml(here()), text.as_str().to_string()));
            }
            Token::Comment { text, .. } => {
                values.push((Location::Xml("comment".into()), text.as_str().to_string()))
            }
            Token::DtdStart { span, .. }
            | Token::EmptyDtd { span, .. }
            | Token::EntityDeclaration { span, .. } => {
                values.push((Location::Xml("!DOCTYPE".into()), span.as_str().to_string()));
            }
            Token::ProcessingInstruction { span, .. } => {
                values.push((
                    Location::Xml("processing instruction".into()),
                    span.as_str().to_string(),
                ));
            }
            _ => {}
        }
    }
    if let Some((loc, v)) = external {
        insp.record(Attack::Lfi, loc, &v);
    }
    for (loc, v) in values {
        insp.scan(&|| loc.clone(), &v, ValueKind::Plain);
    }
    true
}
