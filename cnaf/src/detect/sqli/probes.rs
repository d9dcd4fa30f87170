//! Whole-value probes: a lone SQL function call, a tautology of constants.

use super::functions::{english_function, sql_function};
use super::lexer;

/// A built-in SQL function whose name is no everyday word (`sin`, `rtrim`, `sysdate`).
fn rare_function(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    sql_function(&lower) && !english_function(&lower)
}

/// The whole value is one SQL function call, or its opening (`IFNULL(`, `substring(x,1,1)`,
/// `version()`): a probe, not data.
pub(super) fn lone_call(value: &str) -> bool {
    let v = value.trim();
    let Some(open) = v.find('(') else {
        return false;
    };
    let name = v[..open].trim_end();
    if name.is_empty()
        || name.len() > 32
        || !name.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'_')
        || !(lexer::is_function(name) || rare_function(name))
    {
        return false;
    }
    let rest = &v[open..];
    let close = rest.rfind(')');
    match close {
        None => true,
        Some(c) => rest[c + 1..]
            .trim_matches(|ch: char| ch == ';' || ch.is_whitespace())
            .is_empty(),
    }
}

/// The whole value is a tautology of constants: `1=1`, `'a'='a'`, `11!=1`, `1 is not 2`,
/// `42<=>42`, `'1' not regexp '2'` (equal operands compared equal, different ones compared unequal).
pub(super) fn constant_tautology(value: &str) -> bool {
    constant_comparison(value) == Some(true)
}

/// The whole value compares two constants: `Some(true)` when the comparison always holds (a
/// tautology), `Some(false)` when it never does (`1 is not 1`, `'1' not regexp '1'`, `1=2`),
/// `None` when the value is anything else.
pub(super) fn constant_comparison(value: &str) -> Option<bool> {
    // the left operand is the value's start and must be a literal: a quote or a number
    if !value
        .trim_start()
        .starts_with(|c: char| matches!(c, '\'' | '"' | '.') || c.is_ascii_digit())
    {
        return None;
    }
    // every operator below holds a `<`, `!`, `=` or a blank, and lowercasing makes none of them:
    // a trimmed value without one holds no operator (cheap exit before the lowercase copy)
    if !value
        .trim()
        .bytes()
        .any(|c| matches!(c, b'<' | b'!' | b'=' | b' '))
    {
        return None;
    }
    let v = value.trim().to_ascii_lowercase();
    const OPS: [(&str, bool); 15] = [
        ("<=>", true),
        ("!=", false),
        ("<>", false),
        (" is not ", false),
        (" not like ", false),
        (" not regexp ", false),
        (" not rlike ", false),
        (" not glob ", false),
        (" regexp ", true),
        (" rlike ", true),
        (" glob ", true),
        ("==", true),
        ("=", true),
        (" is ", true),
        (" like ", true),
    ];
    // a spaced operator is a word between two blanks; a value without such a word (`12 Main
    // St`) skips their substring searches, which matching them one by one would cost
    let worded = {
        let mut words = v.split(' ').skip(1).peekable();
        let mut found = false;
        while let Some(w) = words.next() {
            if words.peek().is_some() && matches!(w, "is" | "like" | "regexp" | "rlike" | "glob") {
                found = true;
                break;
            }
        }
        found
    };
    for (op, equal) in OPS {
        if op.starts_with(' ') && !worded {
            continue;
        }
        if let Some((a, b)) = v.split_once(op) {
            let lit = |x: &str, open_end: bool| {
                let x = x.trim();
                let unq = ['\'', '"'].into_iter().find_map(|q| {
                    let inner = x.strip_prefix(q)?;
                    // `'x'!='y`: the application's own closing quote ends the right operand
                    // one string: a quote inside (`'{..}' < '$.c'`) makes it an expression
                    inner
                        .strip_suffix(q)
                        .filter(|x| !x.contains(q))
                        .or_else(|| (open_end && !inner.contains(q)).then_some(inner))
                });
                match unq {
                    Some(q) => Some(q.to_string()),
                    None => (!x.is_empty() && x.bytes().all(|c| c.is_ascii_digit() || c == b'.'))
                        .then(|| x.to_string()),
                }
            };
            let quoted_left = a.trim_start().starts_with(['\'', '"']);
            return match (lit(a, false), lit(b, quoted_left)) {
                (Some(x), Some(y)) => Some((x == y) == equal),
                _ => None,
            };
        }
    }
    None
}
