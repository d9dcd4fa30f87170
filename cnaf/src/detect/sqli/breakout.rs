//! Rules for a value read as starting inside a quoted string: what follows the closing quote.

use super::lexer::{Kw, Tok};
use super::{
    alias_from, at, comparison, operand, starts_after_closed_quote, stmt_follows, tautology,
};

/// Rules for a value read as starting inside a string (`toks[0]` is that string): what comes
/// right after the closing quote decides. `elision`: that quote is an apostrophe inside a word
/// (`l'union`, `sull'union`, `qu'or`), see [`elision`].
pub(super) fn breakout(toks: &[Tok], s: &[Tok], elision: bool, term: bool) -> bool {
    if term || !starts_after_closed_quote(toks) {
        return false;
    }
    // `admin'--`, `x'#`, `x'/*`
    if toks.get(1) == Some(&Tok::Comment) {
        return true;
    }
    let mut k = 1;
    let mut parens = 0;
    while at(s, k) == Some(Tok::RParen) {
        k += 1;
        parens += 1;
    }
    let Some(next) = at(s, k) else {
        return false;
    };
    // `x'/email--`, `id'is not-id--`, `'sounds like rowid--`: an operator right after the
    // quote and a comment swallowing the rest
    if matches!(
        next,
        Tok::Logic | Tok::Cmp | Tok::CmpWord | Tok::Arith | Tok::Not | Tok::Semi
    ) && toks.last() == Some(&Tok::Comment)
        && sql_before_comment(s, k)
    {
        return true;
    }
    // `test' or 1=`, `'or 12356789<`: a comparison cut off by the value's end
    if next == Tok::Logic
        && matches!(at(s, k + 1), Some(Tok::Num | Tok::Str { .. }))
        && matches!(at(s, k + 2), Some(Tok::Cmp))
        && at(s, k + 3).is_none()
    {
        return true;
    }
    // `'||true`, `' or 1`: logic and a bare literal closing the value
    if next == Tok::Logic
        && matches!(at(s, k + 1), Some(Tok::Num | Tok::Kw(Kw::Other | Kw::Null)))
        && at(s, k + 2).is_none()
    {
        return true;
    }
    match next {
        Tok::Logic => {
            let mut j = k + 1;
            while matches!(at(s, j), Some(Tok::Not | Tok::LParen)) {
                j += 1;
            }
            match at(s, j) {
                Some(Tok::Str { .. }) => true,
                Some(Tok::Func(1 | 2) | Tok::Select) => true,
                Some(_) => {
                    tautology(s, k + 1)
                        || operand(s, j).is_some_and(|e| {
                            at(s, e).is_none()
                                && toks.last() == Some(&Tok::Comment)
                                && !matches!(at(s, j), Some(Tok::Word))
                        })
                        // `' and(f(x));`: an operand, the groups it opened closed, and `;`
                        || operand(s, j).is_some_and(|mut e| {
                            while at(s, e) == Some(Tok::RParen) {
                                e += 1;
                            }
                            matches!(at(s, e), Some(Tok::Semi))
                        })
                        // `' and f(x) and '`: a call, then logic reopening a string the
                        // application's own quote closes
                        || (matches!(at(s, j), Some(Tok::Call | Tok::Func(_)))
                            && operand(s, j).is_some_and(|e| {
                                at(s, e) == Some(Tok::Logic)
                                    && matches!(at(s, e + 1), Some(Tok::Str { closed: false, .. }))
                                    && at(s, e + 2).is_none()
                            }))
                }
                None => false,
            }
        }
        // `'union select`, `' union all (select`, `'UNION A` (cut off); an elided article's
        // apostrophe (`L'union fait la force`) or a quoted word (`Choose 'Union' in the
        // panel`) needs the SELECT
        Tok::Union => {
            super::union_select(s, k) || !elision && !matches!(at(s, k + 1), Some(Tok::Str { .. }))
        }
        Tok::Semi => {
            matches!(
                at(s, k + 1),
                None | Some(Tok::Stmt(_) | Tok::Select | Tok::Kw(Kw::Set))
            ) || toks.get(2) == Some(&Tok::Comment)
        }
        Tok::Arith => {
            matches!(
                at(s, k + 1),
                Some(Tok::Func(1 | 2) | Tok::Select | Tok::Var)
            ) || (at(s, k + 1) == Some(Tok::LParen) && at(s, k + 2) == Some(Tok::Select))
        }
        Tok::Cmp | Tok::CmpWord => {
            matches!(
                at(s, k + 1),
                Some(Tok::Str { .. } | Tok::Func(1 | 2) | Tok::Select)
            ) || (at(s, k + 1) == Some(Tok::Num) && comparison(s, k + 2).is_some())
                // `'glob 1;`, `'=id;`: an operator no prose uses, its operand, and the
                // statement's end
                || (next == Tok::Cmp
                    && operand(s, k + 1).is_some_and(|e| at(s, e) == Some(Tok::Semi)))
        }
        Tok::Kw(Kw::Order | Kw::Group) => at(s, k + 1) == Some(Tok::Kw(Kw::By)),
        // `` ` AS `id` FROM ``: the quoted value was a column, and a select list goes on
        Tok::Kw(Kw::As) => alias_from(s, k),
        Tok::Kw(Kw::Having | Kw::Where) => comparison(s, k + 1).is_some(),
        Tok::Kw(Kw::Limit | Kw::Procedure) => matches!(at(s, k + 1), Some(Tok::Num | Tok::Word)),
        Tok::Kw(Kw::Into) => matches!(at(s, k + 1), Some(Tok::Kw(Kw::Outfile))),
        Tok::Stmt(st) => stmt_follows(s, k, st) && !quoted_words(s, k),
        _ => parens > 0 && matches!(next, Tok::Comma) && at(s, k + 1) == Some(Tok::Select),
    }
}

/// What follows the break-out quote up to the trailing comment reads as SQL: a `!` has an
/// operand (`x"!#` is a password's punctuation: `!` then a comment is no expression), and no
/// number is followed by a name (`6'2" and 90 kg -- should I`: a quantity and its unit, prose
/// whose `--` is a dash, not a comment swallowing the query's rest).
fn sql_before_comment(s: &[Tok], k: usize) -> bool {
    if s[k] == Tok::Not && at(s, k + 1).is_none() {
        return false;
    }
    !s[k..]
        .windows(2)
        .any(|w| w[0] == Tok::Num && w[1] == Tok::Word)
}

/// `'Exec' means`, `Press 'Execute' to run`, `Tap 'Grant access' when`: the statement word and
/// any plain words after it sit inside quotes of their own (the next string, opened right after
/// them, runs to the value's end, where the application's quote closes it) — a quoted UI word,
/// not a statement with arguments.
fn quoted_words(s: &[Tok], k: usize) -> bool {
    let mut e = k + 1;
    while at(s, e) == Some(Tok::Word) {
        e += 1;
    }
    matches!(
        at(s, e),
        Some(Tok::Str {
            ctx: false,
            closed: false
        })
    ) && at(s, e + 1).is_none()
}

/// The value's first `'` is an elision's apostrophe: inside a word, after a short run of letters
/// that starts the word (French `l'`, `d'`, `qu'`, Italian `sull'`, `dell'`), and before a
/// letter. An injection's quote follows the data it closes (`admin'`, `1'`, `x' `).
pub(super) fn elision(value: &str) -> bool {
    let b = value.as_bytes();
    let Some(q) = memchr::memchr(b'\'', b) else {
        return false;
    };
    if !b.get(q + 1).is_some_and(u8::is_ascii_alphabetic) {
        return false;
    }
    let letters = b[..q]
        .iter()
        .rev()
        .take_while(|c| c.is_ascii_alphabetic())
        .count();
    (1..=4).contains(&letters) && (letters == q || !b[q - letters - 1].is_ascii_alphanumeric())
}

/// The value's first `q` opens a quoted term in prose rather than closing a string, so the value
/// is no break-out: an option or directive (it starts the value or follows a blank or `(`, a `-`
/// or `#` glued to a letter or digit comes next, and the same quote closes the term later:
/// `'--enable-debug'`, `"-b"`, `"#define x"`), or, after a blank inside the text, a short term
/// without blanks closed by the same quote before a blank or punctuation (`the '=' key`, `the
/// "||" operator`, `not "and".`). An injection's quote follows the data it closes (`admin'--`),
/// its comment marker is bare (`'-- -`, `'#`), and its logic stands between blanks (`x ' or '1`).
pub(super) fn quoted_term(value: &str, q: u8) -> bool {
    let b = value.as_bytes();
    let Some(p) = memchr::memchr(q, b) else {
        return false;
    };
    if p > 0 && !(b[p - 1].is_ascii_whitespace() || b[p - 1] == b'(') {
        return false;
    }
    let rest = &b[p + 1..];
    if p > 0 && b[p - 1].is_ascii_whitespace() {
        if let Some(e) = memchr::memchr(q, rest) {
            if (1..=12).contains(&e)
                && !rest[..e].iter().any(u8::is_ascii_whitespace)
                && rest.get(e + 1).is_none_or(|c| {
                    !(c.is_ascii_alphanumeric() || matches!(c, b'\'' | b'"' | b'`'))
                })
            {
                return true;
            }
        }
    }
    let marks = rest.iter().take_while(|c| matches!(c, b'-' | b'#')).count();
    (1..=2).contains(&marks)
        && rest.get(marks).is_some_and(u8::is_ascii_alphanumeric)
        && memchr::memchr(q, &rest[marks..])
            .is_some_and(|e| !rest[marks + e - 1].is_ascii_whitespace())
}
