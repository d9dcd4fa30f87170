//! The SQL injection rules of paranoia levels 2 to 4: SQL fragments a legitimate request may
//! send now and then, read with the same lexer as the level-1 rules.
//!
//! - Level 2, fragments rare in real input: a call to a real SQL function, an operator keyword
//!   between SQL literals (`42 LIKE 42`, `x IN (1,2)`, `IS NULL`), a statement head after `;`,
//!   a quote or a comment, logic that opens the value or ends in a cut-off comparison, system
//!   schema and type names, integer limits, hex literals.
//! - Level 3, more: lone SQL operators, English-named functions with a blank or junk before `(`,
//!   `ORDER BY`, `EXECUTE x`, a quote then `AND`/`OR`, literal lists, runs of special characters.
//! - Level 4, anything SQL-ish: any quote, comment or operator residue.

use std::sync::LazyLock;

use aho_corasick::AhoCorasick;

use super::functions::{english_function, sql_function};
use super::lexer::{tokenize, Kw, Stmt, Tok};
use super::{at, comparison, literals, operand, strip_comments};
use crate::policy::Paranoia;

/// The SQL injection rules of paranoia levels 2 to 4 (the inspector calls this only above level
/// 1; [`detect`](super::detect) holds the level-1 rules).
pub fn paranoid(value: &str, level: Paranoia) -> bool {
    let n = level.level();
    if n < 2 || value.is_empty() {
        return false;
    }
    let mut toks = Vec::with_capacity(32);
    let mut sig = Vec::with_capacity(32);
    tokenize(value, None, &mut toks);
    strip_comments(&toks, &mut sig);
    if level2(value, &toks, &sig) {
        return true;
    }
    let mut quoted = Vec::new();
    for q in [b'\'', b'"', b'`'] {
        if value.as_bytes().contains(&q) {
            tokenize(value, Some(q), &mut toks);
            strip_comments(&toks, &mut quoted);
            if after_quote2(&quoted) || (n >= 3 && after_quote3(&quoted)) {
                return true;
            }
        }
    }
    tokenize(value, None, &mut toks);
    if n < 3 {
        return false;
    }
    if level3(value, &sig) {
        return true;
    }
    n >= 4 && level4(value, &toks)
}

// ---------------------------------------------------------------- level 2

fn level2(value: &str, toks: &[Tok], s: &[Tok]) -> bool {
    function_call(value, 2)
        || SYSTEM_NAMES
            .find_iter(value)
            .any(|m| bounded(value, m.start(), m.end()))
        || integer_limit(value)
        || scientific_glue(value)
        || backslash_quote_logic(value)
        || comment_in_word(value)
        || toks2(toks)
        || (0..s.len()).any(|i| at_2(s, i))
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

fn at_2(s: &[Tok], i: usize) -> bool {
    let literal = |t: Option<Tok>| matches!(t, Some(Tok::Num | Tok::Str { .. }));
    match s[i] {
        // `IS NULL`, `LIKE NULL`, `IS NOT NULL`
        Tok::CmpWord => {
            let mut k = i + 1;
            while at(s, k) == Some(Tok::Not) {
                k += 1;
            }
            at(s, k) == Some(Tok::Kw(Kw::Null))
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
            (worded || (k > i + 1 && at(s, k) == Some(Tok::Cmp))) && literal(at(s, r))
                // `'{..}' < '$.c' = 7`: a chain of compared literals
                || (matches!(s[i], Tok::Str { .. })
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
                    None | Some(Tok::Cmp | Tok::CmpWord | Tok::Arith) => true,
                    // `and '5'x`: a string glued to what follows (`and 7 oranges` is English)
                    Some(Tok::Word) => matches!(at(s, j), Some(Tok::Str { .. })),
                    _ => false,
                };
            cut || opens
        }
        // `;drop`, `;update users`, `; select`: a statement after `;`
        Tok::Semi => matches!(at(s, i + 1), Some(Tok::Stmt(_) | Tok::Select | Tok::Union)),
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
        // `SELECT (CASE`, `select 0x616263`, `select *`
        Tok::Select => {
            matches!(
                at(s, i + 1),
                Some(
                    Tok::LParen
                        | Tok::Num
                        | Tok::Str { .. }
                        | Tok::Var
                        | Tok::Func(_)
                        | Tok::Kw(Kw::Distinct)
                )
            ) || (at(s, i + 1) == Some(Tok::Arith)
                && matches!(at(s, i + 2), None | Some(Tok::Kw(Kw::From))))
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
        // `2 union all`, `UNION SELECT`, `') union`
        Tok::Union => {
            matches!(
                at(s, i + 1),
                Some(Tok::Kw(Kw::All | Kw::Distinct) | Tok::Select | Tok::LParen)
            ) || (i > 0
                && matches!(
                    at(s, i - 1),
                    Some(Tok::Num | Tok::Str { .. } | Tok::RParen | Tok::QuotedIdent)
                ))
        }
        // `) when 234 then`, `case when condition1 then result1`
        Tok::Kw(Kw::When) => operand(s, i + 1).is_some_and(|e| {
            at(s, e) == Some(Tok::Kw(Kw::Then)) && (e + 1 == s.len() || operand(s, e + 1).is_some())
        }),
        _ => false,
    }
}

/// A value read as starting inside a string: a statement or union right after the quote
/// (`'alter a`, `" ALTER A`, `'select H`).
fn after_quote2(s: &[Tok]) -> bool {
    matches!(
        s.first(),
        Some(Tok::Str {
            ctx: true,
            closed: true
        })
    ) && matches!(at(s, 1), Some(Tok::Stmt(_) | Tok::Select | Tok::Union))
}

/// Words that call a SQL function: a known function name, then `(` — at level 2 glued or, for
/// names that are not English words, after blanks; at level 3 also after a little junk
/// punctuation (`length||(`, `password?(`); at level 4 English names after blanks too
/// (`time (`), which prose does.
fn function_call(value: &str, level: u8) -> bool {
    let b = value.as_bytes();
    let mut i = 0;
    let mut buf = [0u8; 32];
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
        for (d, c) in buf.iter_mut().zip(&b[start..i]) {
            *d = c.to_ascii_lowercase();
        }
        let word = std::str::from_utf8(&buf[..len]).unwrap_or("");
        let div = matches!(word, "div" | "mod");
        if !div && !sql_function(word) {
            continue;
        }
        let english = english_function(word);
        let mut k = i;
        let mut blanks = 0;
        let mut junk = 0;
        while k < b.len() && b[k] != b'(' && k - i < 8 {
            if b[k].is_ascii_whitespace() {
                blanks += 1;
            } else if b[k].is_ascii_alphanumeric() || b[k] == b'_' || b[k] >= 0x80 {
                break;
            } else {
                junk += 1;
            }
            k += 1;
        }
        if b.get(k) != Some(&b'(') {
            continue;
        }
        let hit = match level {
            2 => junk == 0 && (blanks == 0 || !english),
            3 => blanks == 0 || !english,
            _ => true,
        };
        if hit {
            return true;
        }
    }
    false
}

/// Catalog, sample-database, provider and type names an application does not take from a
/// request: `information_schema` and `mysql.user` are level 1; these are their rarer kin.
static SYSTEM_NAMES: LazyLock<AhoCorasick> = LazyLock::new(|| {
    literals(&[
        "mysql.db",
        "mysql.user",
        "mysql.tables_priv",
        "northwind",
        "schema_name",
        "schemata",
        "table_schema",
        "table_name",
        "column_name",
        "master..sysdatabases",
        "master.dbo",
        "sysibm",
        "syscat.",
        "sysdummy1",
        "pg_toast",
        "pg_namespace",
        "pg_class",
        "pg_proc",
        "pg_database",
        "pg_roles",
        "pg_authid",
        "sqlite_temp_master",
        "msysaccessstorage",
        "msysaccessxml",
        "msysmodules",
        "msysrelationships",
        "sysaux",
        "sysfilegroups",
        "syscomments",
        "sysprocesses",
        "sysservers",
        "sys.objects",
        "sys.tables",
        "sys.databases",
        "sys.sql_logins",
        "msdasql",
        "sqloledb",
        "sqlncli",
        "microsoft.jet.oledb",
        "varchar",
        "nvarchar",
        "varchar2",
        "nvarchar2",
        "varbinary",
        "dbms_java",
        "dbms_lock",
        "dbms_output",
        "dbms_sql",
        "autonomous_transaction",
        "sql_variant",
    ])
});

/// Whether `value[start..end]` is a whole word: no identifier character before it, nor after it
/// when it ends in a letter or digit.
fn bounded(value: &str, start: usize, end: usize) -> bool {
    let b = value.as_bytes();
    let ident = |c: &u8| c.is_ascii_alphanumeric() || *c == b'_';
    let before = start > 0 && b.get(start - 1).is_some_and(ident);
    let after = end > 0 && b.get(end - 1).is_some_and(ident) && b.get(end).is_some_and(ident);
    !(before || after)
}

/// Numbers at the limits of SQL integer types, and the double that hangs naive float parsers:
/// overflow probes.
fn integer_limit(value: &str) -> bool {
    const LIMITS: &[&str] = &[
        "2147483647",
        "2147483648",
        "4294967295",
        "4294967296",
        "9223372036854775807",
        "9223372036854775808",
        "18446744073709551615",
        "18446744073709551616",
        "2.2250738585072011e-308",
        "2.2250738585072012e-308",
    ];
    let v = value.trim();
    v.len() >= 10 && LIMITS.contains(&v)
}

/// `0x616263`: a hex literal of at least three digits, standing alone.
fn hex_literal(value: &str) -> bool {
    let b = value.as_bytes();
    finder!(b"0x").find_iter(b).any(|p| {
        (p == 0 || !b[p - 1].is_ascii_alphanumeric())
            && b[p + 2..]
                .iter()
                .take_while(|c| c.is_ascii_hexdigit())
                .count()
                >= 3
    })
}

/// `1.e(ascii)`, `1.e.tables`: MySQL reads `1.e` as a number glued to what follows, hiding a
/// keyword from word-boundary filters.
fn scientific_glue(value: &str) -> bool {
    let b = value.as_bytes();
    (1..b.len().saturating_sub(2)).any(|i| {
        b[i] == b'.'
            && b[i - 1].is_ascii_digit()
            && matches!(b[i + 1], b'e' | b'E')
            && match b.get(i + 2) {
                Some(b'(' | b')' | b',') => true,
                Some(b'.') => b.get(i + 3).is_some_and(u8::is_ascii_alphabetic),
                _ => false,
            }
    })
}

/// `\'and`, `` \`or`1 ``: an escaped quote then logic (the backslash is meant to be escaped
/// itself, letting the quote close the string).
fn backslash_quote_logic(value: &str) -> bool {
    let b = value.as_bytes();
    memchr::memchr_iter(b'\\', b).any(|p| {
        matches!(b.get(p + 1), Some(b'\'' | b'"' | b'`')) && {
            let rest = value[p + 2..].trim_start_matches([' ', '\t', '`', '\'', '"']);
            let word: String = rest
                .chars()
                .take_while(char::is_ascii_alphabetic)
                .collect::<String>()
                .to_ascii_lowercase();
            matches!(word.as_str(), "and" | "or" | "xor") || rest.starts_with("||")
        }
    })
}

/// `DR/**/OP`: a comment splitting a word.
fn comment_in_word(value: &str) -> bool {
    let b = value.as_bytes();
    finder!(b"/*").find_iter(b).any(|p| {
        p > 0
            && b[p - 1].is_ascii_alphabetic()
            && finder!(b"*/")
                .find(&b[p + 2..])
                .is_some_and(|len| b.get(p + 2 + len + 2).is_some_and(u8::is_ascii_alphabetic))
    })
}

// ---------------------------------------------------------------- level 3

fn level3(value: &str, s: &[Tok]) -> bool {
    function_call(value, 3)
        || lone_operator(value)
        || special_run(value, 12)
        || quote_punct_digit(value)
        || hex_literal(value)
        || backquoted(value)
        || glued_keywords(value)
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
        // `CASE WHEN`
        Tok::Kw(Kw::Case) => at(s, i + 1) == Some(Tok::Kw(Kw::When)),
        _ => false,
    }
}

/// `parents' or yours`, `'x' || `: a closing quote then logic.
fn after_quote3(s: &[Tok]) -> bool {
    if !matches!(
        s.first(),
        Some(Tok::Str {
            ctx: true,
            closed: true
        })
    ) {
        return false;
    }
    match at(s, 1) {
        Some(Tok::Cmp | Tok::Semi) => true,
        // `parents' or yours?`: logic then one operand ending the value or compared
        Some(Tok::Logic) => operand(s, 2)
            .is_some_and(|e| matches!(at(s, e), None | Some(Tok::Other | Tok::Cmp | Tok::Not))),
        _ => false,
    }
}

/// Operators only SQL (or code) spells this way, standing alone: `||`, `&&`, `<=>`, `!=`, `<>`,
/// `<=`, `>=`, `<<`, `>>`, `XOR`, `RLIKE`, `REGEXP`, `IN (`.
fn lone_operator(value: &str) -> bool {
    static OPS: LazyLock<AhoCorasick> = LazyLock::new(|| {
        literals(&[
            "||", "&&", "<=>", "!=", "<>", "<=", ">=", "<<", ">>", "xor", "rlike", "regexp",
            "in (", "in(",
        ])
    });
    OPS.find_iter(value).any(|m| {
        !value.as_bytes()[m.start()].is_ascii_alphabetic() || bounded(value, m.start(), m.end())
    })
}

/// At least `n` special characters, making up a third of the value or more (a document has
/// many, but spread out).
fn special_run(value: &str, n: usize) -> bool {
    if value.starts_with("{\"") || value.starts_with("[\"") {
        return false; // JSON: quotes, colons and braces are its syntax
    }
    let count = special_chars(value);
    count >= n && count * 3 >= value.len()
}

/// Characters SQL injections lean on (quotes, operators, brackets, comment and statement marks).
fn special_chars(value: &str) -> usize {
    value
        .bytes()
        .filter(|c| {
            matches!(
                c,
                b'~' | b'!'
                    | b'@'
                    | b'#'
                    | b'$'
                    | b'%'
                    | b'^'
                    | b'&'
                    | b'*'
                    | b'('
                    | b')'
                    | b'-'
                    | b'+'
                    | b'='
                    | b'{'
                    | b'}'
                    | b'['
                    | b']'
                    | b'|'
                    | b':'
                    | b';'
                    | b'"'
                    | b'\''
                    | b'`'
                    | b'<'
                    | b'>'
            )
        })
        .count()
}

/// `'1001'='10`, `` `>65 ``, `"2562*23`, `'16/17`: a quote, then an operator, then a number —
/// probing how a quote and arithmetic land in a query.
fn quote_punct_digit(value: &str) -> bool {
    let b = value.as_bytes();
    b.iter().enumerate().any(|(p, c)| {
        if !matches!(c, b'\'' | b'"' | b'`') {
            return false;
        }
        let mut k = p + 1;
        while k < b.len() && (b[k] == b' ' || b[k].is_ascii_digit()) {
            k += 1;
        }
        let punct_start = k;
        while k < b.len()
            && !b[k].is_ascii_alphanumeric()
            && !b[k].is_ascii_whitespace()
            && b[k] < 0x80
        {
            k += 1;
        }
        k > punct_start
            && b[punct_start..k].iter().any(|c| {
                matches!(
                    c,
                    b'=' | b'<'
                        | b'>'
                        | b'*'
                        | b'/'
                        | b'+'
                        | b'%'
                        | b'|'
                        | b'&'
                        | b'^'
                        | b'!'
                        | b'~'
                )
            })
            && b.get(k).is_some_and(u8::is_ascii_digit)
    })
}

/// `` `bla` ``: a back-quoted identifier (closed).
fn backquoted(value: &str) -> bool {
    let b = value.as_bytes();
    memchr::memchr(b'`', b).is_some_and(|p| {
        let rest = &b[p + 1..];
        memchr::memchr(b'`', rest).is_some_and(|len| {
            len > 0
                && rest[..len]
                    .iter()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'$' | b'.'))
        })
    })
}

/// `'bla'`: the whole value one quoted word.
fn quoted_word(value: &str) -> bool {
    let v = value.trim();
    v.len() > 2
        && ['\'', '"']
            .iter()
            .any(|q| v.starts_with(*q) && v.ends_with(*q))
        && v[1..v.len() - 1]
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'_')
}

/// `Xunionselectfrom`: SQL keywords glued together.
fn glued_keywords(value: &str) -> bool {
    static GLUED: LazyLock<AhoCorasick> =
        LazyLock::new(|| literals(&["unionselect", "unionall", "selectfrom", "fromwhere"]));
    GLUED.is_match(value)
}

// ---------------------------------------------------------------- level 4

/// Any SQL residue: a comment or comparison token, a quote that is not an apostrophe inside a
/// word, an `EXECUTE` of a name, logic opening a group or ending the value, an English-named
/// function called after a blank, a quoted word, repeated punctuation, special characters.
fn level4(value: &str, toks: &[Tok]) -> bool {
    special_run(value, 6)
        || function_call(value, 4)
        || quoted_word(value)
        || toks.windows(2).any(|w| {
            matches!(
                w,
                [Tok::Stmt(Stmt::Exec), Tok::Word] | [Tok::Logic, Tok::LParen]
            )
        })
        || toks.last() == Some(&Tok::Logic)
        || toks.iter().any(|t| matches!(t, Tok::Comment | Tok::Cmp))
        || loose_quote(value)
        || repeated_punct(value)
}

/// A quote or back quote that is not an apostrophe between two letters (`O'Brien`).
fn loose_quote(value: &str) -> bool {
    let b = value.as_bytes();
    b.iter().enumerate().any(|(p, c)| match c {
        b'`' => true,
        b'\'' => {
            !(p > 0
                && b[p - 1].is_ascii_alphabetic()
                && b.get(p + 1).is_some_and(u8::is_ascii_alphabetic))
        }
        _ => false,
    })
}

/// `foo....`, `!!!!`: four non-word characters in a row.
fn repeated_punct(value: &str) -> bool {
    value
        .as_bytes()
        .windows(4)
        .any(|w| w.iter().all(|c| c.is_ascii_punctuation()))
}
