//! The SQL injection rules of paranoia levels 2 to 4: SQL fragments a legitimate request may
//! send now and then, read with the same lexer as the level-1 rules.
//!
//! - Level 2, fragments rare in real input: a call to a real SQL function (`md5(`, `sin (`,
//!   `length||(`), an operator keyword between SQL literals (`42 LIKE 42`, `x IN (1,2)`,
//!   `IS NULL`), a statement head after `;`, a quote or a comment, logic that opens the value or
//!   ends in a cut-off comparison, select-list shapes (an alias before `FROM`, a list of
//!   literals), glued keywords, SQL-only operators (`<=>`, `RLIKE`, `REGEXP`), system
//!   schema and type names, integer limits.
//! - Level 3, more: lone SQL operators, `ORDER BY`, `EXECUTE(`, `CASE WHEN`, a quote then
//!   `AND`/`OR` or an operator, quote-operator-digit probes, hex literals, back-quoted names,
//!   runs of special characters.
//! - Level 4, anything SQL-ish: comparison and comment residue, loose quotes, English-named
//!   functions called after a blank, quoted words, repeated punctuation.

use super::functions::{english_function, shared_function, sql_function};
use super::lexer::{tokenize, Kw, Stmt, Tok};
use super::literals;
use super::markers::{
    any_level2_literal, backquoted, backslash_quote_logic, bounded, comment_in_word,
    glued_keywords, hex_literal, integer_limit, lone_operator, loose_quote, quote_punct_digit,
    quoted_word, repeated_punct, scientific_glue, special_run, sql_only_operator, SYSTEM_NAMES,
};
use super::probes::constant_comparison;
use super::{at, comparison, operand, starts_after_closed_quote, strip_comments};
use crate::policy::Paranoia;
use aho_corasick::AhoCorasick;
use std::sync::LazyLock;

/// The SQL injection rules of paranoia levels 2 to 4 (the inspector calls this only above level
/// 1; [`detect`](super::detect) holds the level-1 rules).
pub fn paranoid(value: &str, level: Paranoia) -> bool {
    let n = level.level();
    if n < 2 || value.is_empty() {
        return false;
    }
    if let Some(hit) = super::json::document(value, &|v| paranoid(v, level)) {
        return hit;
    }
    // `1 is not 1`, `'1' not regexp '1'`, `1=2`: two constants compared, always false. A probe
    // needs logic around it (`and 1=2`) to change a query; alone it filters nothing out and is
    // not read as SQL at level 2 (level 3 flags the operator itself). A string left open for the
    // application's quote to close (`'2040'='20`) is a break-out probe, not a constant
    let balanced = |q: char| value.matches(q).count().is_multiple_of(2);
    if n == 2 && constant_comparison(value) == Some(false) && balanced('\'') && balanced('"') {
        return false;
    }
    let mut toks = Vec::with_capacity(32);
    let mut sig = Vec::with_capacity(32);
    tokenize(value, None, &mut toks);
    strip_comments(&toks, &mut sig);
    if level2(value, &toks, &sig, n) {
        return true;
    }
    // Level 2 reads the value after a quote only for `opening_quote2` (a value opening with a
    // quote) and `after_quote2` (a `Select`, `Union` or `Stmt` token right after the closed
    // string; the lexer makes those only of the words in `STATEMENT_WORDS`): without either,
    // tokenizing again is wasted.
    // (a byte search finds these ASCII characters exactly where a `char` search would)
    let quote_rules = memchr::memchr3(b'\'', b'"', b'`', value.as_bytes()).is_some()
        && (n >= 3 || value.starts_with(['\'', '"', '`']) || STATEMENT_WORDS.is_match(value));
    let mut quoted = Vec::new();
    for q in [b'\'', b'"', b'`'] {
        if quote_rules && value.as_bytes().contains(&q) {
            tokenize(value, Some(q), &mut toks);
            strip_comments(&toks, &mut quoted);
            let elided = q == b'\'' && super::elision(value);
            if after_quote2(&quoted, elided)
                || opening_quote2(value, &quoted)
                || (n >= 3 && after_quote3(&quoted))
            {
                return true;
            }
        }
    }
    if n < 3 {
        return false;
    }
    if level3(value, &sig) {
        return true;
    }
    // the quote loop above overwrote `toks`: level 4 reads the value's own tokens again
    tokenize(value, None, &mut toks);
    n >= 4 && level4(value, &toks)
}

// ---------------------------------------------------------------- level 2

/// The words the lexer reads as a statement (`Tok::Stmt`), `Tok::Select` or `Tok::Union` (see
/// `lexer::classify`; `exec` covers `execute`), found in any case as [`literals`] are.
static STATEMENT_WORDS: LazyLock<AhoCorasick> = LazyLock::new(|| {
    literals(&[
        "union",
        "except",
        "intersect",
        "select",
        "insert",
        "update",
        "delete",
        "drop",
        "create",
        "alter",
        "truncate",
        "exec",
        "declare",
        "shutdown",
        "waitfor",
        "grant",
        "print",
    ])
});

/// Whether `word` holds one of [`STATEMENT_WORDS`] (for the test that keeps it in step with the
/// lexer).
#[cfg(test)]
pub(super) fn statement_word(word: &str) -> bool {
    STATEMENT_WORDS.is_match(word)
}

fn level2(value: &str, toks: &[Tok], s: &[Tok], n: u8) -> bool {
    function_call(value, false)
        // `any_level2_literal` is false only when none of the next three rules can hold
        || any_level2_literal(value)
            && (glued_keywords(value)
                || sql_only_operator(value)
                || SYSTEM_NAMES
                    .find_iter(value)
                    .any(|m| bounded(value, m.start(), m.end())))
        || integer_limit(value)
        || scientific_glue(value)
        || backslash_quote_logic(value)
        || comment_in_word(value)
        || toks2(toks)
        || compared_string(value, s)
        || lone_fragment(value)
        || {
            // the only comparison written is `>`: menus and paths, not a SQL chain
            let seen = Seen {
                // (a byte search finds these ASCII characters exactly where a `char` search
                // would)
                breadcrumb: memchr::memchr3(b'<', b'=', b'!', value.as_bytes()).is_none(),
                // read by `at_2` only after an operator word (`Tok::CmpWord`): without one the
                // text scan would be wasted
                worded_false: n == 2 && s.contains(&Tok::CmpWord) && worded_contradictions(value),
            };
            (0..s.len()).any(|i| at_2(s, i, seen) || list_or_alias(s, i))
        }
}

/// The whole value is one SQL fragment that no text is: a function or operator word opening a
/// call and nothing else (`IN (`, `values (`, `day. (`, `Execute(`, `md5 (`). (`ORDER BY` alone or
/// `execute <name>` are searches too: "group by", "exec chair".)
fn lone_fragment(value: &str) -> bool {
    let v = value.trim();
    // lowercasing keeps the `(` the rule needs at the end: without one, no need to lowercase
    if v.len() > 40 || !v.ends_with('(') {
        return false;
    }
    let lower = v.to_ascii_lowercase();
    if let Some(head) = lower.strip_suffix('(') {
        let word = head.trim_end_matches(|c: char| c.is_ascii_whitespace() || ".!'\"$".contains(c));
        // an English name (`time (`, search-as-you-type) or `exec (` (PHP's and a shell's
        // word too) only glued or with SQL junk between (`day. (`)
        let loose = head[word.len()..].bytes().all(|c| c.is_ascii_whitespace());
        let english = english_function(word) || matches!(word, "exec" | "execute");
        return !word.is_empty()
            && word.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'_')
            && (sql_function(word) || matches!(word, "in" | "values" | "if" | "exec" | "execute"))
            && !(english && loose && word.len() < head.len());
    }
    false
}

/// `'1001'='10`: the value opens with a quoted literal compared to another literal (a boolean
/// probe whose last quote the application supplies).
fn compared_string(value: &str, s: &[Tok]) -> bool {
    value.starts_with(['\'', '"'])
        && matches!(s.first(), Some(Tok::Str { closed: true, .. }))
        && at(s, 1) == Some(Tok::Cmp)
        && matches!(at(s, 2), Some(Tok::Num | Tok::Str { .. }))
}

/// Rules over the raw tokens (comments kept).
fn toks2(t: &[Tok]) -> bool {
    t.windows(2).any(|w| {
        match w {
            // `;--`, `; #`: a statement ended and the rest commented out
            [Tok::Semi, Tok::Comment] => true,
            _ => false,
        }
    }) || t.windows(3).any(|w| {
        // `OR 1#`: logic, a literal, and a comment swallowing the rest
        matches!(
            w,
            [
                Tok::Logic,
                Tok::Num | Tok::Str { .. } | Tok::Kw(Kw::Other | Kw::Null),
                Tok::Comment
            ]
        )
    })
}

/// What the level-2 token rules need to know of the value's text.
#[derive(Clone, Copy)]
struct Seen {
    /// The only comparison written is `>`: menus and paths, not a SQL chain.
    breadcrumb: bool,
    /// Every literal compared by an operator word is a comparison that never holds (read so at
    /// level 2 only; level 3 flags any such comparison).
    worded_false: bool,
}

fn at_2(s: &[Tok], i: usize, seen: Seen) -> bool {
    let literal = |t: Option<Tok>| matches!(t, Some(Tok::Num | Tok::Str { .. }));
    match s[i] {
        // `IS NULL`, `LIKE NULL`, `IS NOT NULL`
        Tok::CmpWord => {
            let mut k = i + 1;
            while at(s, k) == Some(Tok::Not) {
                k += 1;
            }
            (at(s, k) == Some(Tok::Kw(Kw::Null))
                // `parent is not null before use`, `input is null. Then`: a sentence goes on
                && !matches!(at(s, k + 1), Some(Tok::Word | Tok::Other | Tok::Dot)))
                // `IN (0,1)`: a list of literals
                || (at(s, i + 1) == Some(Tok::LParen)
                    && literal(at(s, i + 2))
                    && matches!(at(s, i + 3), Some(Tok::Comma | Tok::RParen)))
                // `something LIKE '`: an operator word opening a string
                || (i == 1
                    && matches!(at(s, 0), Some(Tok::Word))
                    && matches!(at(s, i + 1), Some(Tok::Str { closed: false, .. }))
                    && at(s, i + 2).is_none())
        }
        // `42 LIKE 42`, `1 IS NOT 2`, `'1' NOT REGEXP '2'`: literals compared by an operator
        // word
        Tok::Num | Tok::Str { .. } => {
            let mut k = i + 1;
            while at(s, k) == Some(Tok::Not) {
                k += 1;
            }
            let worded = at(s, k) == Some(Tok::CmpWord);
            let mut r = k + 1;
            while matches!(at(s, r), Some(Tok::Not | Tok::CmpWord)) {
                r += 1;
            }
            ((worded && !seen.worded_false) || (k > i + 1 && at(s, k) == Some(Tok::Cmp)))
                && literal(at(s, r))
                // `'{..}' < '$.c' = 7`: a chain of compared literals (one written with `>`
                // alone is a path through a UI: `'Settings' > 'Account' > 'Billing'`)
                || (matches!(s[i], Tok::Str { .. })
                    && !seen.breadcrumb
                    && at(s, i + 1) == Some(Tok::Cmp)
                    && matches!(at(s, i + 2), Some(Tok::Str { .. }))
                    && at(s, i + 3) == Some(Tok::Cmp)
                    && literal(at(s, i + 4)))
        }
        // `xor 2 <`, `or 'a' <`, `|| langCode ==`, `&&(e===`: logic and a comparison cut off by
        // the value's end; `and '5'x`, `or 88`: logic opening the value with a literal
        Tok::Logic => {
            let mut j = i + 1;
            while matches!(at(s, j), Some(Tok::Not | Tok::LParen)) {
                j += 1;
            }
            let Some(e) = operand(s, j) else {
                return false;
            };
            let cut = matches!(at(s, e), Some(Tok::Cmp))
                && s[e + 1..].iter().all(|t| matches!(t, Tok::Cmp | Tok::Not));
            let opens = i == 0
                && literal(at(s, j))
                && match at(s, e) {
                    None | Some(Tok::Cmp | Tok::CmpWord) => true,
                    // `or 1-`, `and 1-sleep(5)`; `and 64-bit nonce` is a quantity in a sentence
                    Some(Tok::Arith) => {
                        super::expression(s, j).is_none_or(|x| at(s, x) != Some(Tok::Word))
                    }
                    // `and '5'x`: a string glued to what follows (`and 7 oranges` is English)
                    Some(Tok::Word) => matches!(at(s, j), Some(Tok::Str { .. })),
                    _ => false,
                };
            cut || opens
        }
        // `;drop`, `;update users`, `; select`: a statement after `;`
        Tok::Semi => match at(s, i + 1) {
            Some(Tok::Stmt(_)) => statement_head(s, i + 1),
            t => matches!(t, Some(Tok::Select | Tok::Union)),
        },
        // `CREATE TABLE Persons`, `DROP DATABASE x`
        Tok::Stmt(Stmt::Create | Stmt::Alter | Stmt::Drop | Stmt::Truncate) => {
            matches!(
                at(s, i + 1),
                Some(Tok::Kw(Kw::Table | Kw::Database | Kw::Procedure))
            ) && matches!(at(s, i + 2), Some(Tok::Word | Tok::QuotedIdent))
        }
        // `exec master.`: a qualified procedure
        Tok::Stmt(Stmt::Exec) => at(s, i + 1) == Some(Tok::Word) && at(s, i + 2) == Some(Tok::Dot),
        // `SET @OLD_SQL_NOTES`
        Tok::Kw(Kw::Set) => at(s, i + 1) == Some(Tok::Var),
        // `SELECT (CASE`, `select 0x616263`, `select *`, `select 'a',`
        // (`select()` with nothing inside is the system call of C and Python)
        Tok::Select => {
            !(at(s, i + 1) == Some(Tok::LParen) && at(s, i + 2) == Some(Tok::RParen))
                && matches!(
                    at(s, i + 1),
                    Some(Tok::LParen | Tok::Num | Tok::Var | Tok::Func(_) | Tok::Kw(Kw::Distinct))
                )
                || (matches!(at(s, i + 1), Some(Tok::Str { .. })) && select_item_ends(s, i + 2))
                || (at(s, i + 1) == Some(Tok::Arith)
                    && match at(s, i + 2) {
                        None => true,
                        Some(Tok::Kw(Kw::From)) => table_reference(s, i + 3),
                        _ => false,
                    })
        }
        // `=(select`: a subquery
        Tok::LParen => at(s, i + 1) == Some(Tok::Select),
        // `FROM t WHERE name="x"`, `FROM t GROUP BY c`
        Tok::Kw(Kw::From) => {
            let mut k = i + 1;
            while matches!(at(s, k), Some(Tok::Word | Tok::Dot | Tok::QuotedIdent)) {
                k += 1;
            }
            k > i + 1
                && match at(s, k) {
                    Some(Tok::Kw(Kw::Where)) => comparison(s, k + 1).is_some(),
                    Some(Tok::Kw(Kw::Group | Kw::Order)) => at(s, k + 1) == Some(Tok::Kw(Kw::By)),
                    Some(Tok::Kw(Kw::Limit)) => at(s, k + 1) == Some(Tok::Num),
                    _ => false,
                }
        }
        // `HAVING 1=`
        Tok::Kw(Kw::Having) => {
            operand(s, i + 1).is_some_and(|e| matches!(at(s, e), Some(Tok::Cmp | Tok::CmpWord)))
        }
        // `2 union all`, `UNION SELECT`, `') union` cut off by the value's end; a word after
        // the union is English (`123 Union Street`, `l'union de`, `the 'Union Jack'`)
        Tok::Union => {
            matches!(
                at(s, i + 1),
                Some(Tok::Kw(Kw::All | Kw::Distinct) | Tok::Select | Tok::LParen)
            ) || (i > 0
                && matches!(
                    at(s, i - 1),
                    Some(Tok::Num | Tok::Str { .. } | Tok::RParen | Tok::QuotedIdent)
                )
                && !matches!(at(s, i + 1), Some(Tok::Word | Tok::Kw(_) | Tok::Str { .. })))
        }
        // `) when 234 then`, `case when condition1 then result1`
        Tok::Kw(Kw::When) => operand(s, i + 1).is_some_and(|e| {
            at(s, e) == Some(Tok::Kw(Kw::Then)) && (e + 1 == s.len() || operand(s, e + 1).is_some())
        }),
        _ => false,
    }
}

/// Every comparison of two literals by an operator word in the value (`12 is 8`, `'a' not like
/// 'a'`) is one that never holds, and there is at least one: prose stating numbers (`The average
/// of 4, 8 and 12 is 8.`), not a tautology. A `LIKE`/`REGEXP`/`GLOB` pattern with wildcards
/// (`'a' like '%'`) may match anything and keeps the rule.
fn worded_contradictions(value: &str) -> bool {
    let lower = value.to_ascii_lowercase();
    let words: Vec<&str> = lower.split_ascii_whitespace().collect();
    fn literal(w: &str) -> Option<&str> {
        let w = w.trim_end_matches(['.', ',', '?', '!', ';', ')']);
        let quoted = w.len() >= 2
            && ['\'', '"']
                .iter()
                .any(|q| w.starts_with(*q) && w.ends_with(*q));
        let number = !w.is_empty()
            && w.bytes().all(|c| c.is_ascii_digit() || c == b'.')
            && w.bytes().any(|c| c.is_ascii_digit());
        (quoted || number).then_some(w)
    }
    let mut found = false;
    for (i, w) in words.iter().enumerate() {
        if !matches!(*w, "is" | "like" | "regexp" | "rlike" | "glob") || i == 0 {
            continue;
        }
        let negated_before = words[i - 1] == "not";
        let left_at = if negated_before {
            i.checked_sub(2)
        } else {
            Some(i - 1)
        };
        let negated_after = words.get(i + 1) == Some(&"not");
        let right_at = i + 1 + usize::from(negated_after);
        let (Some(left), Some(right)) = (
            left_at.and_then(|l| literal(words[l])),
            words.get(right_at).and_then(|r| literal(r)),
        ) else {
            continue;
        };
        if *w != "is" && right.contains(['%', '_', '.', '*', '^', '[', '?', '$']) {
            return false;
        }
        let op = if negated_before {
            format!("not {w}")
        } else if negated_after {
            format!("{w} not")
        } else {
            w.to_string()
        };
        let text = format!("{left} {op} {right}");
        if constant_comparison(&text) != Some(false) {
            return false;
        }
        found = true;
    }
    found
}

/// What may follow a selected string in SQL (`select 'a'` then the end, `,`, `FROM`, `;`, `)`,
/// `UNION`, an alias or a concatenation); prose goes on with words or `>` (`Select 'Settings' >
/// 'Account'`).
fn select_item_ends(s: &[Tok], k: usize) -> bool {
    matches!(
        at(s, k),
        None | Some(
            Tok::Comma
                | Tok::Kw(Kw::From | Kw::As | Kw::Into | Kw::Limit | Kw::Where)
                | Tok::Semi
                | Tok::RParen
                | Tok::Union
                | Tok::Comment
                | Tok::Arith
        )
    )
}

/// After `FROM`: a table (`users`, `db.users`, `` `t` ``), an optional alias, then what SQL
/// puts after a table: the end, `;`, `,`, `)`, a comment or a clause keyword. `from the menu?
/// No` goes on as English.
fn table_reference(s: &[Tok], k: usize) -> bool {
    let name = |t: Option<Tok>| matches!(t, Some(Tok::Word | Tok::QuotedIdent));
    if !name(at(s, k)) {
        return false;
    }
    let mut e = k + 1;
    while at(s, e) == Some(Tok::Dot) && name(at(s, e + 1)) {
        e += 2;
    }
    if name(at(s, e)) {
        e += 1; // an alias
    }
    matches!(
        at(s, e),
        None | Some(Tok::Semi | Tok::Comma | Tok::RParen | Tok::Comment | Tok::Union | Tok::Kw(_))
    )
}

/// A value read as starting inside a string: a statement or union right after the quote
/// (`'alter a`, `" ALTER A`, `'select H`) — not an elided article (`l'union`) nor a quoted word
/// (`Press 'Execute' to run`, `Click 'Select all' then`), whose own closing quote follows the
/// words.
fn after_quote2(s: &[Tok], elided: bool) -> bool {
    starts_after_closed_quote(s)
        && match at(s, 1) {
            Some(Tok::Stmt(_)) => statement_head(s, 1),
            t => matches!(t, Some(Tok::Select | Tok::Union)),
        }
        && !elided
        && !s[2..]
            .iter()
            .find(|t| !matches!(t, Tok::Word | Tok::Kw(_)))
            .is_some_and(|t| matches!(t, Tok::Str { .. } | Tok::QuotedIdent))
}

/// The statement word at `s[k]` goes on the way its statement does, or is cut off right after
/// its first name: `;update users`, `'alter a`, `;drop table t`, `;update t set`, `; delete
/// from`. A data or schema statement's word followed by English (`; update gnulib to latest`,
/// `; alter the names:`, `"Drop Requires, use ..."`, `"update-passwd"`, `update and rename`) is
/// the verb of a sentence or part of a compound name; so is `"Print the object"` (T-SQL's `PRINT`
/// shows one value), and `exec 9>&2`.
fn statement_head(s: &[Tok], k: usize) -> bool {
    // `exec 9>&2`: a shell redirection (a procedure has a name)
    if at(s, k) == Some(Tok::Stmt(Stmt::Exec)) && at(s, k + 1) == Some(Tok::Num) {
        return false;
    }
    if !matches!(
        at(s, k),
        Some(Tok::Stmt(
            Stmt::Update
                | Stmt::Delete
                | Stmt::Insert
                | Stmt::Drop
                | Stmt::Create
                | Stmt::Alter
                | Stmt::Truncate
                | Stmt::Print
        ))
    ) {
        return true;
    }
    match at(s, k + 1) {
        None | Some(Tok::Comment | Tok::Semi) => true,
        Some(Tok::Word) => matches!(
            at(s, k + 2),
            None | Some(Tok::Kw(_) | Tok::Dot | Tok::Comment | Tok::Semi | Tok::LParen)
        ),
        // `delete * from` (Access), `' alter/` cut off (`update-passwd` is a compound name)
        Some(Tok::Arith) => matches!(at(s, k + 2), None | Some(Tok::Kw(Kw::From))),
        Some(Tok::Logic | Tok::Comma | Tok::Num | Tok::Not | Tok::Cmp) => false,
        Some(_) => true,
    }
}

/// A value opening with a quote that closes the application's string (or name), then a
/// comparison with a literal (`` `>65 ``), a list of literals (`', 2, 1`), a JSON value
/// (`":60`), a select list's end (`' * from`), or logic, one operand and an operator, a list or
/// a number cut off by the value's end (`' or xyz!`, `' xor abc-`, `' or 3,4,2@!`).
fn opening_quote2(value: &str, s: &[Tok]) -> bool {
    if !value.starts_with(['\'', '"', '`']) {
        return false;
    }
    // `":60`, `":"65`, `":["00`: a JSON key closed and a value of the attacker's choosing
    if let Some(rest) = value.strip_prefix("\":") {
        if rest.starts_with(|c: char| c.is_ascii_digit() || c == '"' || c == '[') {
            return true;
        }
    }
    match (s.first(), at(s, 1)) {
        // `` `>65 ``, `` ` < 0) AND ` ``: the closed name compared to a literal
        (Some(Tok::Str { closed: true, .. }), Some(Tok::Cmp)) => {
            matches!(at(s, 2), Some(Tok::Num | Tok::Str { .. }))
        }
        // `', 2, 1`: the string was the first item of a list that goes on with literals
        (Some(Tok::Str { closed: true, .. }), Some(Tok::Comma)) => {
            matches!(at(s, 2), Some(Tok::Num | Tok::Str { .. })) && at(s, 3) == Some(Tok::Comma)
        }
        // `' * from`: a select list closing on the string
        (Some(Tok::Str { closed: true, .. }), Some(Tok::Arith)) => {
            at(s, 2) == Some(Tok::Kw(Kw::From))
        }
        (Some(Tok::Str { closed: true, .. }), Some(Tok::Logic)) => operand(s, 2).is_some_and(|e| {
            matches!(
                at(s, e),
                Some(Tok::Cmp | Tok::Not | Tok::Arith | Tok::Comma | Tok::Num)
            ) && s[e..].len() <= 6
        }),
        _ => false,
    }
}

/// Words that call a SQL function: a known function name, then `(`, glued or after a little junk
/// punctuation (`md5(`, `length||(`, `password?(`), after blanks too for names that are not
/// English words (`sin (`); with `loose` (level 4), English names after blanks (`time (`), which
/// prose does.
fn function_call(value: &str, loose: bool) -> bool {
    let b = value.as_bytes();
    // every call found below has its `(`
    if memchr::memchr(b'(', b).is_none() {
        return false;
    }
    let mut i = 0;
    let mut buf = [0u8; 32];
    let mut math = None;
    while i < b.len() {
        if !(b[i].is_ascii_alphabetic() || b[i] == b'_') {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
            i += 1;
        }
        let len = i - start;
        if len > buf.len() || (start > 0 && (b[start - 1].is_ascii_digit() || b[start - 1] >= 0x80))
        {
            continue;
        }
        // the `(` after the name, looked for first: it depends on the bytes alone and is
        // cheaper than looking the name up
        let mut k = i;
        let mut blanks = 0;
        while k < b.len() && b[k] != b'(' && k - i < 8 {
            if b[k].is_ascii_whitespace() {
                blanks += 1;
            } else if b[k].is_ascii_alphanumeric() || b[k] == b'_' || b[k] >= 0x80 {
                break;
            }
            k += 1;
        }
        if b.get(k) != Some(&b'(') {
            continue;
        }
        for (d, c) in buf.iter_mut().zip(&b[start..i]) {
            *d = c.to_ascii_lowercase();
        }
        let word = std::str::from_utf8(&buf[..len]).unwrap_or("");
        let div = matches!(word, "div" | "mod");
        if !div && !sql_function(word) {
            continue;
        }
        let english = english_function(word);
        // prose puts blanks between a word and `(`: English names only count glued
        let hit = (loose || blanks == 0 || !english)
            && (super::functions::dangerous_function(word) || !word_aside(b, k, blanks));
        if hit
            && !(shared_function(word) && other_language_call(b, start, k, &mut math))
            && !(super::functions::function_level(word) == 0 && method_call(b, start))
        {
            return true;
        }
    }
    false
}

/// The parenthesis at `b[open]` after a function's name is prose's, not a call's: an issue
/// reference (`default(ISSUE#66)`), a plural
/// marker (`field(s)`), a manual page section (`crypt(3)`, `sha2(5)`, `ssl(3ssl)`), or, after a
/// blank, an aside in English words (`compress (some systems lack it)`): no SQL argument list
/// puts two plain words side by side unless one is a keyword (`x AS y`, `DISTINCT x`).
fn word_aside(b: &[u8], open: usize, blanks: usize) -> bool {
    let args = args_of(b, open);
    let closed = b.len() > open + 1 + args.len();
    if closed && super::lexer::issue_reference(args) {
        return true;
    }
    if blanks == 0 && closed {
        if matches!(args, b"s" | b"es") {
            return true;
        }
        if args.first().is_some_and(|c| (b'1'..=b'9').contains(c))
            && args.len() <= 4
            && args[1..].iter().all(u8::is_ascii_lowercase)
        {
            return true;
        }
    }
    if blanks == 0 {
        return false;
    }
    let words: Vec<&[u8]> = args
        .split(|c| c.is_ascii_whitespace())
        .filter(|w| !w.is_empty())
        .collect();
    let plain = |w: &[u8]| {
        w.len() > 1
            && w.iter().all(u8::is_ascii_alphabetic)
            && !matches!(
                w.to_ascii_lowercase().as_slice(),
                b"as"
                    | b"using"
                    | b"from"
                    | b"distinct"
                    | b"separator"
                    | b"and"
                    | b"or"
                    | b"xor"
                    | b"not"
                    | b"is"
                    | b"null"
                    | b"like"
                    | b"in"
                    | b"between"
                    | b"when"
                    | b"then"
                    | b"else"
                    | b"case"
                    | b"end"
                    | b"select"
                    | b"interval"
                    | b"order"
                    | b"group"
                    | b"by"
                    | b"asc"
                    | b"desc"
                    | b"div"
                    | b"mod"
                    | b"binary"
                    | b"all"
                    | b"where"
                    | b"limit"
                    | b"union"
                    | b"char"
                    | b"unsigned"
                    | b"signed"
                    | b"regexp"
                    | b"rlike"
                    | b"collate"
                    | b"escape"
                    | b"leading"
                    | b"trailing"
                    | b"both"
                    | b"for"
                    | b"over"
                    | b"partition"
            )
    };
    words.windows(2).any(|w| plain(w[0]) && plain(w[1]))
}

/// `attr.field(`, `FileUtils.concat(`: a method of an object named by a word (a schema-qualified
/// SQL call that matters names an attack function: `dbms_lock.sleep(`, level 1 or 2).
fn method_call(b: &[u8], start: usize) -> bool {
    start >= 2 && b[start - 1] == b'.' && b[start - 2].is_ascii_alphabetic()
}

/// A call of a name SQL shares with math, spreadsheets and code, read as one of those: a method
/// (`Cart.total(`, `Math.max(`), a declaration (`int max(int a`), a spreadsheet formula over cells
/// (`=SUM(A1:A10)`), or a statement of arithmetic that opens the value (`sqrt(16) = 4`, then
/// `cos(60°)` after it). `name` starts at `b[start]`, its `(` is `b[open]`; `math` is the
/// value's verdict on the last, once computed.
fn other_language_call(b: &[u8], start: usize, open: usize, math: &mut Option<bool>) -> bool {
    let before = &b[..start];
    // `Cart.total(`: a method of an object, not a schema-qualified SQL call of a common name
    if before.len() >= 2
        && before[before.len() - 1] == b'.'
        && before[before.len() - 2].is_ascii_alphanumeric()
    {
        return true;
    }
    // `int max(`, `def total(`: the name declared
    let prev = before.trim_ascii_end();
    let prev_word = &prev[prev
        .iter()
        .rposition(|c| !c.is_ascii_alphanumeric())
        .map_or(0, |p| p + 1)..];
    if prev.len() < before.len()
        && matches!(
            prev_word.to_ascii_lowercase().as_slice(),
            b"int" | b"long" | b"double" | b"float" | b"void" | b"def" | b"function" | b"fn"
        )
    {
        return true;
    }
    let args = args_of(b, open);
    // `=SUM(A1:A10)`: a formula over cells
    if b.trim_ascii_start().starts_with(b"=")
        && args.split(|c| matches!(c, b':' | b',' | b';')).all(cell)
    {
        return true;
    }
    numeric(args) && *math.get_or_insert_with(|| arithmetic_statement(b))
}

/// The argument text of the call whose `(` is `b[open]`: up to the matching `)`, or the value's
/// end.
fn args_of(b: &[u8], open: usize) -> &[u8] {
    let mut depth = 0usize;
    for (k, c) in b.iter().enumerate().skip(open) {
        match c {
            b'(' => depth += 1,
            b')' => {
                depth -= 1;
                if depth == 0 {
                    return &b[open + 1..k];
                }
            }
            _ => {}
        }
    }
    &b[(open + 1).min(b.len())..]
}

/// A spreadsheet cell reference: letters then a row number (`A1`, ` $B$12`).
fn cell(t: &[u8]) -> bool {
    let t: Vec<u8> = t
        .trim_ascii()
        .iter()
        .copied()
        .filter(|c| *c != b'$')
        .collect();
    let letters = t.iter().take_while(|c| c.is_ascii_alphabetic()).count();
    (1..=3).contains(&letters) && t.len() > letters && t[letters..].iter().all(u8::is_ascii_digit)
}

/// Numbers only, with the blanks, signs, separators and units arithmetic writes (`30°`, `2, 8`).
fn numeric(args: &[u8]) -> bool {
    !args.is_empty()
        && args.iter().any(u8::is_ascii_digit)
        && std::str::from_utf8(args).is_ok_and(|a| {
            a.chars()
                .all(|c| c.is_ascii_digit() || " .,+-*/^°π%".contains(c))
        })
}

/// The value opens with a call on numbers stated equal to a number: `log(100) = 2`,
/// `sqrt(16) = 4, right?`, `sin(30°) = 0.5 and cos(60°) = 0.5`.
fn arithmetic_statement(b: &[u8]) -> bool {
    let v = b.trim_ascii_start();
    let name = v.iter().take_while(|c| c.is_ascii_alphanumeric()).count();
    if name == 0 || v.get(name) != Some(&b'(') {
        return false;
    }
    let args = args_of(v, name);
    let rest = &v[(name + args.len() + 2).min(v.len())..];
    let rest = rest.trim_ascii_start();
    numeric(args)
        && rest.first() == Some(&b'=')
        && rest[1..]
            .trim_ascii_start()
            .first()
            .is_some_and(|c| c.is_ascii_digit() || *c == b'-')
}

// ---------------------------------------------------------------- level 3

fn level3(value: &str, s: &[Tok]) -> bool {
    lone_operator(value)
        || special_run(value, 12)
        || quote_punct_digit(value)
        || hex_literal(value)
        || backquoted(value)
        || (0..s.len()).any(|i| at_3(s, i))
}

fn at_3(s: &[Tok], i: usize) -> bool {
    match s[i] {
        // `ORDER BY`, `GROUP BY`
        Tok::Kw(Kw::Order | Kw::Group) => at(s, i + 1) == Some(Tok::Kw(Kw::By)),
        // `Execute(`, `exec @x`
        Tok::Stmt(Stmt::Exec) => matches!(
            at(s, i + 1),
            Some(Tok::LParen | Tok::Var | Tok::Str { .. } | Tok::Call | Tok::Func(_))
        ),
        // `CASE WHEN`
        Tok::Kw(Kw::Case) => at(s, i + 1) == Some(Tok::Kw(Kw::When)),
        _ => false,
    }
}

/// The shapes of a select list: an alias before `FROM`, a list of literals.
fn list_or_alias(s: &[Tok], i: usize) -> bool {
    match s[i] {
        // `! As' from`, `6 As" from`: an alias closing a select list
        Tok::Kw(Kw::As) => match at(s, i + 1) {
            Some(Tok::Str { closed: false, .. }) => true,
            Some(Tok::Not | Tok::Str { .. } | Tok::QuotedIdent) => {
                at(s, i + 2) == Some(Tok::Kw(Kw::From))
            }
            _ => false,
        },
        // `'abc', 0x1a`, `'', '', 13`: a list of literals ending in a number (a JSON array of
        // strings is not one)
        Tok::Str { .. } => {
            let mut k = i;
            while matches!(at(s, k), Some(Tok::Str { .. })) && at(s, k + 1) == Some(Tok::Comma) {
                k += 2;
            }
            k > i && matches!(at(s, k), Some(Tok::Num | Tok::LParen))
        }
        _ => false,
    }
}

/// `parents' or yours`, `'x' || `: a closing quote then logic.
fn after_quote3(s: &[Tok]) -> bool {
    if !starts_after_closed_quote(s) {
        return false;
    }
    match at(s, 1) {
        Some(Tok::Cmp | Tok::Semi) => true,
        // `parents' or yours?`, `' or xyz-`, `' or 3,4`, `' or homer 9`: logic then one operand
        // ending the value, or followed by an operator, a list or a number
        Some(Tok::Logic) => operand(s, 2).is_some_and(|e| {
            matches!(
                at(s, e),
                None | Some(Tok::Other | Tok::Cmp | Tok::Not | Tok::Arith | Tok::Comma | Tok::Num)
            )
        }),
        // `' * from`, `' * 12344`: arithmetic on the closed string
        Some(Tok::Arith) => matches!(at(s, 2), Some(Tok::Num | Tok::Kw(Kw::From))),
        _ => false,
    }
}

// ---------------------------------------------------------------- level 4

/// Any SQL residue: a comment after a literal, a comparison that is no `key=value`, a quote that
/// is not an apostrophe inside a word, an `EXECUTE` of a name, logic opening a group or ending
/// the value, an English-named function called after a blank, a quoted word, repeated
/// punctuation, special characters.
fn level4(value: &str, toks: &[Tok]) -> bool {
    special_run(value, 6)
        || function_call(value, true)
        || quoted_word(value)
        || toks.windows(2).any(|w| {
            matches!(
                w,
                [Tok::Stmt(Stmt::Exec), Tok::Word] | [Tok::Logic, Tok::LParen]
            )
        })
        || toks.last() == Some(&Tok::Logic)
        || comparison_residue(toks)
        || toks.windows(2).any(|w| {
            matches!(
                w,
                [
                    Tok::Str { .. } | Tok::Num | Tok::RParen | Tok::Semi,
                    Tok::Comment
                ]
            )
        })
        || loose_quote(value)
        || repeated_punct(value)
}

/// A comparison operator that is not the `=` of a `key=value` pair (`<>`, `'1'='1`, `) =`).
fn comparison_residue(toks: &[Tok]) -> bool {
    toks.iter().enumerate().any(|(i, t)| {
        *t == Tok::Cmp
            && !(i > 0
                && toks[i - 1] == Tok::Word
                && matches!(toks.get(i + 1), Some(Tok::Word | Tok::Num)))
    })
}
