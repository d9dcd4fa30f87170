//! SQL comments used as syntax: a comment standing for a blank, MySQL's executable comments
//! and optimizer hints.

/// `SELECT/**/password/**/FROM`, `DROP/*x*/t`: an inline comment standing for a blank next to a
/// SQL keyword, with no blank around it — how filters that look for `select ` are evaded. Prose
/// and code comments have blanks or punctuation around them. A comment splitting a keyword
/// (`DR/**/OP`, `UN/*x*/ION`) counts too.
pub(super) fn comment_as_blank(value: &str) -> bool {
    const KEYWORDS: &[&str] = &[
        "select", "union", "from", "where", "insert", "update", "delete", "drop", "exec", "and",
        "or", "having", "into", "values", "table", "order", "group", "limit", "sleep",
    ];
    let b = value.as_bytes();
    let word_before = |end: usize| {
        let mut s = end;
        while s > 0 && (b[s - 1].is_ascii_alphanumeric() || b[s - 1] == b'_') {
            s -= 1;
        }
        &value[s..end]
    };
    let word_after = |start: usize| {
        let mut e = start;
        while e < b.len() && (b[e].is_ascii_alphanumeric() || b[e] == b'_') {
            e += 1;
        }
        &value[start..e]
    };
    let keyword = |w: &str| KEYWORDS.iter().any(|k| w.eq_ignore_ascii_case(k));
    finder!(b"/*").find_iter(b).any(|p| {
        if b.get(p + 2) == Some(&b'!') {
            return false;
        }
        let Some(len) = finder!(b"*/").find(&b[p + 2..]) else {
            return false;
        };
        let before = word_before(p);
        let after = word_after(p + 2 + len + 2);
        !before.is_empty()
            && !after.is_empty()
            && (keyword(before) || keyword(after) || keyword(&[before, after].concat()))
    })
}

/// `/*!50000select*/`, `/*!comment*/`, `/*+ optimizer hint */`: MySQL runs what an executable
/// comment holds, and a hint comment steers its optimizer — syntax no other text has. Only words,
/// digits, blanks, parentheses, `-` and `=` may be inside (a license banner such as
/// `/*! lib v1.2 | MIT */` has other punctuation).
pub(super) fn mysql_comment_code(value: &str) -> bool {
    let b = value.as_bytes();
    finder!(b"/*").find_iter(b).any(|p| {
        let mut i = p + 2;
        while b.get(i).is_some_and(u8::is_ascii_whitespace) {
            i += 1;
        }
        if !matches!(b.get(i), Some(b'!' | b'+')) {
            return false;
        }
        let body = &b[i + 1..];
        let Some(len) = finder!(b"*/").find(body) else {
            return false;
        };
        let inner = &body[..len];
        inner.iter().any(u8::is_ascii_alphanumeric)
            && inner.iter().all(|&c| {
                c.is_ascii_alphanumeric()
                    || c.is_ascii_whitespace()
                    || matches!(c, b'(' | b')' | b'-' | b'=' | b'_')
            })
    })
}
