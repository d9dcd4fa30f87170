//! Malformed and smuggling-prone HTTP: bodies on methods that carry none, conflicting or
//! invalid framing headers, a missing `Host`, multipart without a boundary, NUL bytes, and CRLF
//! sequences that would inject headers (response splitting).

use crate::model::{Location, RequestParts};

/// A protocol problem found in the request head: where, and an excerpt.
pub fn check_parts(parts: &RequestParts, body_len: usize) -> Option<(Location, String)> {
    let method = parts.method.to_ascii_uppercase();
    let cls: Vec<&str> = parts.header_values("content-length").collect();
    let tes: Vec<&str> = parts.header_values("transfer-encoding").collect();
    if !tes.is_empty() && !cls.is_empty() {
        return Some((
            Location::Header("transfer-encoding".into()),
            "Content-Length and Transfer-Encoding both present".into(),
        ));
    }
    if cls.len() > 1 && cls.iter().any(|v| v.trim() != cls[0].trim()) {
        return Some((
            Location::Header("content-length".into()),
            format!("conflicting Content-Length values {}", cls.join(", ")),
        ));
    }
    if let Some(cl) = cls.first() {
        if cl.trim().is_empty() || !cl.trim().bytes().all(|b| b.is_ascii_digit()) {
            return Some((
                Location::Header("content-length".into()),
                format!("invalid Content-Length {cl:?}"),
            ));
        }
    }
    if let Some(te) = tes
        .iter()
        .find(|te| !te.trim().eq_ignore_ascii_case("chunked"))
    {
        return Some((
            Location::Header("transfer-encoding".into()),
            format!("unsupported Transfer-Encoding {te:?}"),
        ));
    }
    let declared_body = cls.first().is_some_and(|v| v.trim() != "0") || !tes.is_empty();
    if matches!(method.as_str(), "GET" | "HEAD") && (body_len > 0 || declared_body) {
        return Some((
            Location::RequestLine,
            format!("{method} request with a body"),
        ));
    }
    if parts.version == "HTTP/1.1" && parts.first_header("host").is_none() {
        return Some((
            Location::Header("host".into()),
            "HTTP/1.1 request without Host".into(),
        ));
    }
    if let Some(ct) = parts.first_header("content-type") {
        let l = ct.to_ascii_lowercase();
        if l.starts_with("multipart/") && !l.contains("boundary=") {
            return Some((
                Location::Header("content-type".into()),
                format!("multipart without boundary: {ct}"),
            ));
        }
    }
    if parts.target.contains('\0') || parts.headers.iter().any(|(_, v)| v.contains('\0')) {
        return Some((Location::RequestLine, "NUL byte in the request head".into()));
    }
    None
}

/// A decoded value that would inject a header or split a response: CR/LF followed by a header
/// field (`Set-Cookie:`, `Location:`...), or a NUL byte (truncation attacks).
pub fn injected_crlf(value: &str) -> bool {
    let b = value.as_bytes();
    if b.contains(&0) {
        return true;
    }
    if !value.is_ascii() {
        // `嘍` (U+560D), `嘊` (U+560A): servers that truncate characters to a byte turn them into
        // CR/LF, so read them the way those servers will
        let folded: String = value
            .chars()
            .map(|c| match c as u32 {
                cp if cp > 0xFF && cp & 0xFF == 0x0D => '\r',
                cp if cp > 0xFF && cp & 0xFF == 0x0A => '\n',
                _ => c,
            })
            .collect();
        if folded != value {
            return injected_crlf(&folded);
        }
    }
    for p in memchr::memchr2_iter(b'\r', b'\n', b) {
        let mut i = p;
        while i < b.len() && matches!(b[i], b'\r' | b'\n') {
            i += 1;
        }
        let start = i;
        while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'-') {
            i += 1;
        }
        if i > start && b.get(i) == Some(&b':') {
            let name = &value[start..i];
            if HEADERS.iter().any(|h| name.eq_ignore_ascii_case(h)) {
                return true;
            }
        }
        if mail_command(&b[start_of_line(b, p)..]) {
            return true;
        }
    }
    false
}

fn start_of_line(b: &[u8], p: usize) -> usize {
    let mut i = p;
    while i < b.len() && matches!(b[i], b'\r' | b'\n') {
        i += 1;
    }
    i
}

/// A mail protocol command on its own line (SMTP, IMAP with its tag, POP3): mail-header and
/// mail-protocol injection through a field the app passes to a mail server.
fn mail_command(line: &[u8]) -> bool {
    const VERBS: &[&[u8]] = &[
        b"MAIL FROM:",
        b"RCPT TO:",
        b"DATA",
        b"QUIT",
        b"HELO ",
        b"EHLO ",
        b"AUTH ",
        b"RSET",
        b"CAPABILITY",
        b"FETCH ",
        b"EXAMINE ",
        b"SELECT ",
        b"LOGIN ",
        b"LOGOUT",
        b"APOP ",
        b"RETR ",
        b"USER ",
        b"PASS ",
        b"STARTTLS",
        b"VRFY ",
        b"EXPN ",
    ];
    let verb_at = |l: &[u8]| {
        VERBS.iter().any(|v| {
            l.starts_with(v)
                && (v.ends_with(b" ")
                    || v.ends_with(b":")
                    || matches!(l.get(v.len()), None | Some(b'\r' | b'\n')))
        })
    };
    if verb_at(line) {
        return true;
    }
    // IMAP: `a001 LOGIN ...`, `V100 CAPABILITY`
    let tag = line.iter().take(12).position(|&c| c == b' ');
    if tag.is_some_and(|t| {
        t > 0
            && line[..t].iter().all(u8::is_ascii_alphanumeric)
            && (verb_at(&line[t + 1..]) || imap_command(&line[t + 1..]))
    }) {
        return true;
    }
    pop3_command(line)
}

/// The rest of a tagged IMAP line: a verb and arguments in IMAP syntax (a sequence set `2:4`, a
/// flag list `(\Seen)`, `+FLAGS`, a literal `{310}`, a quoted mailbox, an upper-case atom such as
/// `PLAIN` or `INBOX`). A line of prose that starts with a word like "list" or "copy" has none.
fn imap_command(rest: &[u8]) -> bool {
    const VERBS: &[&str] = &[
        "append",
        "status",
        "uid",
        "copy",
        "move",
        "list",
        "lsub",
        "store",
        "search",
        "create",
        "delete",
        "rename",
        "subscribe",
        "expunge",
        "authenticate",
        "idle",
        "namespace",
    ];
    let line_end = memchr::memchr2(b'\r', b'\n', rest).unwrap_or(rest.len());
    let line = &rest[..line_end];
    let verb_end = line.iter().position(|&c| c == b' ').unwrap_or(line.len());
    let verb = String::from_utf8_lossy(&line[..verb_end]).to_ascii_lowercase();
    if !VERBS.contains(&verb.as_str()) {
        return false;
    }
    let args = &line[verb_end..];
    let text = String::from_utf8_lossy(args);
    let seqset = text.split([' ', ',']).any(|w| {
        w.split_once(':').is_some_and(|(a, b)| {
            !a.is_empty()
                && a.bytes().all(|c| c.is_ascii_digit())
                && !b.is_empty()
                && b.bytes().all(|c| c.is_ascii_digit() || c == b'*')
        })
    });
    let literal = text.contains('{') && text.contains('}');
    let flags = text.contains("(\\") || text.contains("+FLAGS") || text.contains("-FLAGS");
    let quoted = text.matches('"').count() >= 2;
    let atom = text.split([' ', '(', ')']).any(|w| {
        w.len() >= 4
            && w.bytes().all(|c| c.is_ascii_uppercase() || c == b'-')
            && w.bytes().any(|c| c.is_ascii_uppercase())
    });
    seqset || literal || flags || quoted || atom
}

/// `LIST 3`, `TOP 1 2`, `RETR 1`: a POP3 command that takes message numbers, alone on its line
/// with numeric arguments only.
fn pop3_command(line: &[u8]) -> bool {
    let line_end = memchr::memchr2(b'\r', b'\n', line).unwrap_or(line.len());
    let text = String::from_utf8_lossy(&line[..line_end]).to_ascii_lowercase();
    let mut words = text.split(' ');
    let verb = words.next().unwrap_or("");
    let args: Vec<&str> = words.collect();
    let numeric = !args.is_empty()
        && args.len() <= 2
        && args
            .iter()
            .all(|a| !a.is_empty() && a.len() <= 6 && a.bytes().all(|c| c.is_ascii_digit()));
    numeric
        && match verb {
            "list" | "retr" | "dele" | "uidl" => args.len() == 1,
            "top" => args.len() == 2,
            _ => false,
        }
}

/// Header fields worth injecting.
const HEADERS: &[&str] = &[
    "set-cookie",
    "location",
    "content-type",
    "content-length",
    "refresh",
    "x-xss-protection",
    "access-control-allow-origin",
    "host",
    "transfer-encoding",
    "content-security-policy",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mail_protocol_lines() {
        for a in [
            "\r\nA003 APPEND saved-messages (\\Seen) {310}",
            "\r\na001 authenticate PLAIN\r\n",
            "\r\na001 STATUS INBOX (MESSAGES)",
            "\r\na001 uid store 231:233\r\n",
            "\r\nA1 list \"INBOX/\" \"*\"",
            "\r\nd store 2 +FLAGS (\\Deleted)",
            "\r\nA282 SEARCH FLAGGED SINCE 1-Feb-1994",
            "\r\nlist 3",
            "\r\nTOP 1 2",
        ] {
            assert!(injected_crlf(a), "missed {a:?}");
        }
        for b in [
            "Shopping:\r\nlist of things to buy",
            "Notes\r\n1 copy of the book",
            "Top 10 movies\r\ntop picks for you",
            "line one\r\nlist 3 items",
            "a\r\nA1 search for a house",
        ] {
            assert!(!injected_crlf(b), "flagged {b:?}");
        }
    }

    #[test]
    fn framing() {
        let get_body = RequestParts::new("GET", "/")
            .header("host", "x")
            .header("content-length", "5");
        assert!(check_parts(&get_body, 5).is_some());
        let both = RequestParts::new("POST", "/")
            .header("host", "x")
            .header("content-length", "5")
            .header("transfer-encoding", "chunked");
        assert!(check_parts(&both, 5).is_some());
        let ok = RequestParts::new("POST", "/")
            .header("host", "x")
            .header("content-length", "5");
        assert_eq!(check_parts(&ok, 5), None);
        let no_host = RequestParts::new("GET", "/");
        assert!(check_parts(&no_host, 0).is_some());
    }

    #[test]
    fn crlf() {
        assert!(injected_crlf("\r\nSet-Cookie:crlf=injection"));
        assert!(injected_crlf("x\nLocation: http://evil"));
        assert!(!injected_crlf("line one\nline two: yes"));
        assert!(injected_crlf("\r\nV100 CAPABILITY\r\nV101 FETCH 4791"));
        assert!(injected_crlf("\nRCPT TO: test@evil.com\n"));
        assert!(injected_crlf("x\r\nQUIT\r\n"));
        assert!(!injected_crlf(
            "Dear team,\nQuit worrying about it.\nData is fine."
        ));
        assert!(injected_crlf("\u{560d}Set-cookie:crlf=injection"));
    }
}
