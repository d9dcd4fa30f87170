//! SQL injection, detected the way libinjection does it: tokenize the value as SQL in the three
//! contexts an injection can start from (bare, after `'`, after `"`), then ask whether the token
//! sequence is the shape of an injection (a break-out followed by logic, a UNION SELECT, a
//! stacked statement, a tautology, a time-delay or extraction function...), rather than matching
//! words. English that happens to contain SQL keywords does not have those shapes.

mod breakout;
mod comments;
mod functions;
mod json;
mod lexer;
mod markers;
mod paranoid;
mod probes;
mod statements;

use std::sync::LazyLock;

use aho_corasick::AhoCorasick;

use super::literals;
use breakout::{breakout, elision, quoted_term};
use comments::{comment_as_blank, mysql_comment_code};
use lexer::{tokenize, Kw, Stmt, Tok};
pub use paranoid::paranoid;
use probes::{constant_tautology, lone_call};
use statements::{ddl, dml, stacked, stmt_follows};

/// Words that start the shapes possible without SQL punctuation.
pub(crate) static KEYWORDS: LazyLock<AhoCorasick> = LazyLock::new(|| {
    literals(&[
        "union",
        "select",
        "order",
        "group",
        "having",
        "into",
        "case",
        "waitfor",
        "exec",
        "alter",
        "create",
        "drop",
        "truncate",
        "information_schema",
        "tempdb",
        "msdb",
        "pg_",
        "sys",
        "msys",
        "sqlite_",
        "xp_",
        "sp_",
        "utl_",
        "dbms_",
        "load_file",
        "openrowset",
        "opendatasource",
        "procedure",
        "shutdown",
        "declare",
        "insert",
        "update",
        "delete",
        "values",
        " as ",
        "all_",
        "user_",
        "dba_",
        "v$",
    ])
});

/// Whether `value` (already decoded) is a SQL injection.
pub fn detect(value: &str) -> bool {
    if value.len() < 2 {
        return false;
    }
    // Fast reject: without SQL punctuation, only keyword-led shapes (UNION SELECT, ORDER BY 5,
    // system objects...) can match, so a value with no SQL keyword at all is done.
    let punctuated = value.bytes().any(|b| {
        matches!(
            b,
            b'\'' | b'"' | b'(' | b'=' | b'<' | b'>' | b';' | b'#' | b'|' | b'&' | b'@' | b'`'
        )
    }) // (`str::contains` of these, by a searcher built once: a substring is its bytes)
        || finder!(b"--").find(value.as_bytes()).is_some()
        || finder!(b"::").find(value.as_bytes()).is_some()
        || finder!(b"/*").find(value.as_bytes()).is_some();
    if !punctuated && !KEYWORDS.is_match(value) {
        // `42 like 42`, `1 is not 2`: a tautology spelled with operator words only
        // (without quotes, only numbers can be its operands)
        return value.len() <= 64
            && value.bytes().any(|c| c.is_ascii_digit())
            && constant_tautology(value);
    }
    if let Some(hit) = json::document(value, &detect) {
        return hit;
    }
    let mut toks = Vec::with_capacity(32);
    let mut sig = Vec::with_capacity(32);
    if value.bytes().any(|c| matches!(c, b'=' | b'<' | b'>'))
        && (constant_tautology(value)
            || value
                .split(|c: char| c.is_whitespace() || matches!(c, ',' | ';' | '(' | ')'))
                .any(constant_tautology)
            || value.split(',').any(constant_tautology))
    {
        return true;
    }
    // `'1' not regexp '2'`: operator words only
    if value.len() <= 64 && value.contains(' ') && constant_tautology(value) {
        return true;
    }
    if lone_call(value) {
        return true;
    }
    tokenize(value, None, &mut toks);
    if commented_out(&toks) && bare_comment_end(value) {
        return true;
    }
    strip_comments(&toks, &mut sig);
    if generic(&sig) {
        return true;
    }
    for q in [b'\'', b'"', b'`'] {
        if value.as_bytes().contains(&q) {
            tokenize(value, Some(q), &mut toks);
            strip_comments(&toks, &mut sig);
            let hit = if q == b'`' {
                identifier_breakout(&sig)
            } else {
                breakout(
                    &toks,
                    &sig,
                    q == b'\'' && elision(value),
                    quoted_term(value, q),
                ) || generic(&sig[1..])
            };
            if hit {
                return true;
            }
        }
    }
    if finder!(b"/*").find(value.as_bytes()).is_some()
        && (comment_as_blank(value) || mysql_comment_code(value))
    {
        return true;
    }
    // `\'or'1`: an application that escapes quotes itself turns `\'` into `\\'`, whose
    // backslash is escaped and whose quote closes the string, so read the value once more with
    // such backslashes dropped
    if memchr::memchr(b'\\', value.as_bytes()).is_some() {
        let unescaped = value.replace("\\'", "'").replace("\\\"", "\"");
        if unescaped.len() != value.len() && detect_breakout_only(&unescaped, &mut toks, &mut sig) {
            return true;
        }
    }
    false
}

/// The value, read as starting inside a string, closes that string (`toks[0]` is a context
/// string whose closing quote is in the value): what follows the quote is SQL the value wrote.
pub(super) fn starts_after_closed_quote(toks: &[Tok]) -> bool {
    matches!(
        toks.first(),
        Some(Tok::Str {
            ctx: true,
            closed: true
        })
    )
}

/// A value read as starting inside a back-quoted identifier (`` ORDER BY `<value>` ``, a column
/// name taken from the request): only SQL that continues a column list or a statement counts —
/// `` ` AS `x` FROM ``, `` ` UNION SELECT ``, `` `; DROP TABLE ``, `` ` ORDER BY `` — because back
/// quotes also delimit code in Markdown (`` `--flag` ``), where a quote and a comment-like `--`
/// are ordinary.
fn identifier_breakout(s: &[Tok]) -> bool {
    if !starts_after_closed_quote(s) {
        return false;
    }
    match at(s, 1) {
        Some(Tok::Kw(Kw::As)) => alias_from(s, 1),
        Some(Tok::Union) => union_select(s, 1),
        Some(Tok::Semi) => stacked(s, 2),
        Some(Tok::Kw(Kw::Order | Kw::Group)) => {
            at(s, 2) == Some(Tok::Kw(Kw::By)) && matches!(at(s, 3), Some(Tok::Num | Tok::Word))
        }
        _ => false,
    }
}

/// A statement or condition ended and the query's rest commented out, with nothing else in the
/// value: `DROP sampletable;--`, `OR 1#` (prose ends with no comment marker after a `;`, and opens
/// with no logic word).
fn commented_out(t: &[Tok]) -> bool {
    matches!(
        t,
        [
            Tok::Stmt(Stmt::Drop | Stmt::Truncate | Stmt::Alter),
            Tok::Word | Tok::QuotedIdent,
            Tok::Semi,
            Tok::Comment
        ] | [
            Tok::Logic,
            Tok::Num | Tok::Str { closed: true, .. },
            Tok::Comment
        ]
    )
}

/// The value's comment holds no text (`--`, `-- -`, `#`, `--+`): it only swallows the query's
/// rest (`Or 2 # of them` is prose using `#` for "number").
fn bare_comment_end(value: &str) -> bool {
    let cut = match (value.rfind("--"), value.rfind('#')) {
        (Some(a), Some(b)) => a.max(b),
        (Some(a), None) | (None, Some(a)) => a,
        (None, None) => return false,
    };
    !value[cut..].bytes().any(|c| c.is_ascii_alphanumeric())
}

/// The quoted break-out contexts alone.
fn detect_breakout_only(value: &str, toks: &mut Vec<Tok>, sig: &mut Vec<Tok>) -> bool {
    for q in [b'\'', b'"'] {
        if value.as_bytes().contains(&q) {
            tokenize(value, Some(q), toks);
            strip_comments(toks, sig);
            if breakout(
                toks,
                sig,
                q == b'\'' && elision(value),
                quoted_term(value, q),
            ) {
                return true;
            }
        }
    }
    false
}

fn strip_comments(toks: &[Tok], sig: &mut Vec<Tok>) {
    sig.clear();
    sig.extend(toks.iter().copied().filter(|t| *t != Tok::Comment));
}

fn at(s: &[Tok], i: usize) -> Option<Tok> {
    s.get(i).copied()
}

/// Rules that hold wherever the value starts.
fn generic(s: &[Tok]) -> bool {
    (0..s.len()).any(|i| generic_at(s, i))
}

/// The generic rule led by the token at `i`.
fn generic_at(s: &[Tok], i: usize) -> bool {
    match s[i] {
        Tok::Union => union_select(s, i),
        Tok::Select => select_shape(s, i),
        Tok::Semi => stacked(s, i + 1),
        Tok::Logic if joins_comparisons(s, i) => strong_condition(s, i + 1),
        Tok::Logic => tautology(s, i + 1),
        Tok::Func(2) => at(s, i + 1) == Some(Tok::LParen),
        Tok::Func(1) => {
            // `version()`, `database()`: an argument-less probe, or a nested attack function
            at(s, i + 1) == Some(Tok::LParen)
                && (at(s, i + 2) == Some(Tok::RParen) || strong_call(s, i))
        }
        Tok::Func(0) | Tok::Call => nested_probe(s, i),
        Tok::SysObject => true,
        Tok::Cast => i > 0,
        Tok::Kw(Kw::Having) => comparison(s, i + 1).is_some(),
        Tok::Kw(Kw::Order | Kw::Group) => order_by_number(s, i),
        Tok::Kw(Kw::Into) => at(s, i + 1) == Some(Tok::Kw(Kw::Outfile)),
        // `FROM `db`.`t``, `FROM `t` LIMIT`: MySQL-quoted tables
        Tok::Kw(Kw::From) => {
            from_where(s, i)
                || at(s, i + 1) == Some(Tok::QuotedIdent)
                    && match at(s, i + 2) {
                        // `` from `db`.`t` ``; `` from `dev`. `` ends a sentence
                        Some(Tok::Dot) => {
                            matches!(
                                at(s, i + 3),
                                Some(Tok::QuotedIdent | Tok::Word | Tok::SysObject)
                            )
                        }
                        t => matches!(
                            t,
                            Some(Tok::Kw(
                                Kw::Where | Kw::Limit | Kw::Order | Kw::Group | Kw::Join
                            ))
                        ),
                    }
        }
        Tok::Kw(Kw::Case) => case_when(s, i),
        Tok::Kw(Kw::Values) => {
            at(s, i + 1) == Some(Tok::LParen)
                && matches!(at(s, i + 2), Some(Tok::Str { .. } | Tok::Num))
                && at(s, i + 3) == Some(Tok::Comma)
        }
        Tok::Stmt(Stmt::Waitfor) => matches!(at(s, i + 1), Some(Tok::Kw(Kw::Delay))),
        Tok::Stmt(Stmt::Exec) => {
            matches!(at(s, i + 1), Some(Tok::SysObject | Tok::Func(2)))
                || (at(s, i + 1) == Some(Tok::LParen) && at(s, i + 2) == Some(Tok::Var))
                // `EXECUTE IMMEDIATE 'stmt'`: dynamic SQL
                || (at(s, i + 1) == Some(Tok::Kw(Kw::Immediate))
                    && matches!(at(s, i + 2), Some(Tok::Str { .. } | Tok::Var)))
        }
        // `DECLARE @x varchar(9)`, `;DECLARE @b`: a T-SQL variable declaration (a statement start,
        // then a type or nothing)
        Tok::Stmt(Stmt::Declare) => {
            (i == 0 || at(s, i - 1) == Some(Tok::Semi))
                && at(s, i + 1) == Some(Tok::Var)
                && matches!(
                    at(s, i + 2),
                    None | Some(Tok::Kw(Kw::Other | Kw::As | Kw::Table) | Tok::Func(_) | Tok::Call)
                )
        }
        Tok::Stmt(Stmt::Create | Stmt::Alter | Stmt::Drop | Stmt::Truncate) => ddl(s, i),
        Tok::Stmt(Stmt::Delete | Stmt::Update | Stmt::Insert) => dml(s, i),
        Tok::Kw(Kw::As) => alias_from(s, i),
        Tok::Kw(Kw::Procedure) => {
            matches!(at(s, i + 1), Some(Tok::Call | Tok::Word)) && at(s, i + 2) == Some(Tok::LParen)
        }
        Tok::RParen if i == 0 => paren_breakout(s),
        _ => false,
    }
}

/// `FROM users WHERE name="x"`: a table then a filter (English "from home where it is" has
/// no comparison of that shape).
fn from_where(s: &[Tok], i: usize) -> bool {
    let mut k = i + 1;
    while at(s, k) == Some(Tok::Word) && at(s, k + 1) == Some(Tok::Dot) {
        k += 2;
    }
    at(s, k) == Some(Tok::Word)
        && at(s, k + 1) == Some(Tok::Kw(Kw::Where))
        && comparison(s, k + 2).is_some()
}

/// `) LIKE (`, `)=(`, `') RLIKE '`: the value closes a parenthesised expression it was placed in,
/// then compares it — text does not start with a closing parenthesis and an operator.
fn paren_breakout(s: &[Tok]) -> bool {
    let mut k = 0;
    while at(s, k) == Some(Tok::RParen) {
        k += 1;
    }
    matches!(at(s, k), Some(Tok::Cmp | Tok::CmpWord))
        && matches!(
            at(s, k + 1),
            Some(Tok::LParen | Tok::Str { .. } | Tok::Num | Tok::Select | Tok::Func(1 | 2))
        )
}

/// `) AS total FROM`, `` ` AS `id` from ``, `6 AS "x" FROM`: the end of a select list.
fn alias_from(s: &[Tok], i: usize) -> bool {
    i > 0
        && matches!(
            at(s, i - 1),
            Some(Tok::RParen | Tok::Num | Tok::QuotedIdent | Tok::Str { closed: true, .. })
        )
        && matches!(
            at(s, i + 1),
            Some(Tok::Word | Tok::QuotedIdent | Tok::Str { .. } | Tok::Kw(Kw::Database))
        )
        && at(s, i + 2) == Some(Tok::Kw(Kw::From))
}

/// `CASE WHEN <comparison> THEN`: conditional extraction.
fn case_when(s: &[Tok], i: usize) -> bool {
    if at(s, i + 1) != Some(Tok::Kw(Kw::When)) {
        return false;
    }
    let mut k = i + 2;
    while at(s, k) == Some(Tok::LParen) {
        k += 1;
    }
    comparison(s, k).is_some()
}

/// `concat(0x3a, version(), ...)`: a call whose arguments call an attacker function.
fn nested_probe(s: &[Tok], i: usize) -> bool {
    if at(s, i + 1) != Some(Tok::LParen) {
        return false;
    }
    let end = close_paren(s, i + 1);
    (i + 2..end.saturating_sub(1)).any(|k| {
        matches!(at(s, k), Some(Tok::Func(1 | 2) | Tok::Select))
            && at(s, k + 1) == Some(Tok::LParen)
    })
}

/// `UNION [ALL|DISTINCT] [(...] SELECT`
fn union_select(s: &[Tok], i: usize) -> bool {
    let mut j = i + 1;
    while matches!(
        at(s, j),
        Some(Tok::Kw(Kw::All | Kw::Distinct) | Tok::LParen)
    ) {
        j += 1;
    }
    at(s, j) == Some(Tok::Select)
}

/// `SELECT <sql expression list> FROM <table>` or `SELECT <attack function | @var | (...)>`.
fn select_shape(s: &[Tok], i: usize) -> bool {
    match at(s, i + 1) {
        Some(Tok::Func(1 | 2) | Tok::Var) => return true,
        Some(Tok::LParen)
            if matches!(at(s, i + 2), Some(Tok::Select | Tok::Func(_) | Tok::Num)) =>
        {
            return true
        }
        Some(Tok::Num) if matches!(at(s, i + 2), Some(Tok::Comma)) => return true,
        _ => {}
    }
    let mut j = i + 1;
    let mut items = 0;
    let mut prev_atom = false;
    while let Some(t) = at(s, j) {
        if j > i + 32 {
            return false;
        }
        let atom = matches!(
            t,
            Tok::Num | Tok::Str { .. } | Tok::Word | Tok::Var | Tok::QuotedIdent
        );
        match t {
            Tok::Kw(Kw::From) => break,
            _ if atom && prev_atom => return false,
            Tok::Num
            | Tok::Str { .. }
            | Tok::Word
            | Tok::QuotedIdent
            | Tok::Var
            | Tok::Func(_)
            | Tok::Call
            | Tok::Arith
            | Tok::Cmp
            | Tok::CmpWord
            | Tok::Comma
            | Tok::LParen
            | Tok::RParen
            | Tok::Dot
            | Tok::Select
            | Tok::Logic
            | Tok::Not
            | Tok::Kw(
                Kw::Distinct
                | Kw::All
                | Kw::Top
                | Kw::Null
                | Kw::Other
                | Kw::Database
                | Kw::Case
                | Kw::When
                | Kw::Then
                | Kw::Else
                | Kw::End,
            ) => {}
            Tok::Kw(Kw::As) => {
                // alias: `expr AS name`
                j += 2;
                prev_atom = true;
                items += 1;
                continue;
            }
            _ => return false,
        }
        items += 1;
        prev_atom = atom;
        j += 1;
    }
    if items == 0 || at(s, j) != Some(Tok::Kw(Kw::From)) {
        return false;
    }
    match at(s, j + 1) {
        // `select * from` with the table cut off
        None => items == 1 && at(s, i + 1) == Some(Tok::Arith),
        Some(Tok::LParen | Tok::Var | Tok::QuotedIdent | Tok::SysObject) => true,
        Some(Tok::Word | Tok::Kw(Kw::Database)) => {
            let after = at(s, j + 2);
            if matches!(
                after,
                Some(Tok::Word | Tok::Num | Tok::Str { closed: true, .. } | Tok::Kw(Kw::Database))
            ) {
                return false;
            }
            // `select all shoes from nike` is a search, `select a,b from t`, `select name from
            // users where ...` are SQL: plain words need SQL punctuation in the list or a clause
            // after the table
            let punctuated = s[i + 1..j].iter().any(|t| {
                matches!(
                    t,
                    Tok::Comma
                        | Tok::Arith
                        | Tok::Func(_)
                        | Tok::Call
                        | Tok::Num
                        | Tok::Str { .. }
                        | Tok::Var
                        | Tok::Dot
                        | Tok::LParen
                        | Tok::QuotedIdent
                )
            });
            punctuated
                || matches!(
                    after,
                    Some(
                        Tok::Kw(
                            Kw::Where | Kw::Limit | Kw::Order | Kw::Group | Kw::Having | Kw::Join
                        ) | Tok::Union
                            | Tok::Semi
                            | Tok::RParen
                            | Tok::Dot
                    )
                )
        }
        _ => false,
    }
}

/// `x<y and y>z`, `x + y = 8 and x * y = 15`: the logic joins a comparison written before it
/// (since the value's start or the previous clause) to another — a condition spelled out, as
/// prose maths or a filter does; an injection adds its condition to the data it was placed
/// after (`1 and 1=1`), whose left side is a single operand.
fn joins_comparisons(s: &[Tok], i: usize) -> bool {
    let start = s[..i]
        .iter()
        .rposition(|t| matches!(t, Tok::Logic | Tok::Semi | Tok::Comma | Tok::Kw(Kw::Then)))
        .map_or(0, |p| p + 1);
    // the comparison has operands on both sides (`pay=AND 1=1`: a name and its `=`, no value)
    (start + 1..i.saturating_sub(1)).any(|p| matches!(s[p], Tok::Cmp | Tok::CmpWord))
}

/// After a logic operator: only an attack function or a subquery (`and sleep(5)`,
/// `and (select ...)`).
fn strong_condition(s: &[Tok], j: usize) -> bool {
    let mut k = j;
    while matches!(at(s, k), Some(Tok::Not | Tok::LParen)) {
        k += 1;
    }
    at(s, k) == Some(Tok::Func(2)) || (k > j && at(s, k) == Some(Tok::Select))
}

/// After a logic operator: a comparison (`1=1`, `'a'='a'`, `x LIKE y`) or an attack function.
fn tautology(s: &[Tok], j: usize) -> bool {
    let mut k = j;
    while matches!(at(s, k), Some(Tok::Not)) {
        k += 1;
    }
    match at(s, k) {
        Some(Tok::Func(2)) => return true,
        Some(Tok::LParen) if at(s, k + 1) == Some(Tok::Select) => return true,
        Some(Tok::LParen) if comparison(s, k + 1).is_some() => return true,
        _ => {}
    }
    // `and status != 0 at line 9`, `HAVE_THREAD=0 to disable`, `>= 1.10 (closes...)`: a plain
    // word or an opening parenthesis right after the comparison continues a sentence; no SQL
    // goes on that way after a condition
    comparison(s, k).is_some_and(|e| !matches!(at(s, e), Some(Tok::Word | Tok::LParen)))
}

/// `expr CMP expr` starting at `j`; returns the index after it.
fn comparison(s: &[Tok], j: usize) -> Option<usize> {
    let mut k = expression(s, j)?;
    let left_word = k == j + 1 && at(s, j) == Some(Tok::Word);
    while at(s, k) == Some(Tok::Not) {
        k += 1; // `NOT LIKE`, `NOT IN`
    }
    let worded = match at(s, k) {
        Some(Tok::Cmp) => false,
        Some(Tok::CmpWord) => true,
        _ => return None,
    };
    k += 1;
    while matches!(at(s, k), Some(Tok::Cmp | Tok::CmpWord | Tok::Not)) {
        k += 1; // `IS NOT`, `SOUNDS LIKE`
    }
    let right = k;
    let end = expression(s, k)?;
    // `name LIKE x ESCAPE '!'`: a pattern with its escape character is SQL, whatever the words
    if at(s, end) == Some(Tok::Kw(Kw::Escape)) && matches!(at(s, end + 1), Some(Tok::Str { .. })) {
        return Some(end + 2);
    }
    // `subspecies in zoology`, `things like that`: English, not a comparison
    if worded && left_word && end == right + 1 && at(s, right) == Some(Tok::Word) {
        return None;
    }
    // `'Subtract' in the shape builder`: a word operand with more prose after it
    if worded
        && end == right + 1
        && at(s, right) == Some(Tok::Word)
        && at(s, end) == Some(Tok::Word)
    {
        return None;
    }
    Some(end)
}

/// `operand (ARITH operand)*`
fn expression(s: &[Tok], j: usize) -> Option<usize> {
    let mut k = operand(s, j)?;
    while at(s, k) == Some(Tok::Arith) {
        k = operand(s, k + 1)?;
    }
    Some(k)
}

/// One operand: a literal, a (qualified) name, a variable, a call or a parenthesised group.
fn operand(s: &[Tok], j: usize) -> Option<usize> {
    let mut k = j;
    while matches!(at(s, k), Some(Tok::Not | Tok::Arith)) {
        k += 1; // unary
    }
    match at(s, k)? {
        Tok::Num | Tok::Str { .. } | Tok::Var | Tok::Kw(Kw::Null | Kw::Other) => Some(k + 1),
        Tok::Word | Tok::SysObject | Tok::QuotedIdent => {
            let mut e = k + 1;
            while at(s, e) == Some(Tok::Dot) && matches!(at(s, e + 1), Some(Tok::Word)) {
                e += 2;
            }
            Some(e)
        }
        Tok::Func(_) | Tok::Call | Tok::Kw(Kw::Database) => {
            if at(s, k + 1) == Some(Tok::LParen) {
                Some(close_paren(s, k + 1))
            } else {
                Some(k + 1)
            }
        }
        Tok::LParen => Some(close_paren(s, k)),
        _ => None,
    }
}

/// Index after the `)` matching the `(` at `open` (or the end).
fn close_paren(s: &[Tok], open: usize) -> usize {
    let mut depth = 0usize;
    for (k, t) in s.iter().enumerate().skip(open) {
        match t {
            Tok::LParen => depth += 1,
            Tok::RParen => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    return k + 1;
                }
            }
            _ => {}
        }
    }
    s.len()
}

/// `sleep(5)`, `benchmark(...)`: an attack-only function called with a real argument.
fn strong_call(s: &[Tok], i: usize) -> bool {
    at(s, i + 1) == Some(Tok::LParen)
        && matches!(
            at(s, i + 2),
            Some(
                Tok::Num
                    | Tok::Str { .. }
                    | Tok::Var
                    | Tok::Select
                    | Tok::Func(_)
                    | Tok::LParen
                    | Tok::Word
                    | Tok::Kw(Kw::Database | Kw::Null)
            )
        )
}

/// `ORDER BY 5` / `GROUP BY 1` at the end of a value: column-count probing.
fn order_by_number(s: &[Tok], i: usize) -> bool {
    if at(s, i + 1) == Some(Tok::Kw(Kw::By))
        && (matches!(at(s, i + 2), Some(Tok::Func(1 | 2))) || nested_probe(s, i + 2))
    {
        return true;
    }
    at(s, i + 1) == Some(Tok::Kw(Kw::By))
        && at(s, i + 2) == Some(Tok::Num)
        && matches!(
            at(s, i + 3),
            None | Some(Tok::Semi | Tok::Comma | Tok::Str { .. } | Tok::Logic)
        )
        && i > 0
}

#[cfg(test)]
mod tests;
