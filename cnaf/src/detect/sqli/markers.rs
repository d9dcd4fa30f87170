//! Raw-text markers of SQL the paranoid rules use beside the token rules: special characters,
//! quote and operator residue, system names, numeric limits, glued and commented keywords.

use std::sync::LazyLock;

use aho_corasick::AhoCorasick;

use super::literals;

/// Catalog, sample-database, provider and type names an application does not take from a
/// request: `information_schema` and `mysql.user` are level 1; these are their rarer kin.
pub(super) static SYSTEM_NAMES: LazyLock<AhoCorasick> =
    LazyLock::new(|| literals(SYSTEM_NAME_LIST));

/// The literals of [`SYSTEM_NAMES`].
const SYSTEM_NAME_LIST: &[&str] = &[
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
];

/// The literals of [`glued_keywords`].
const GLUED_LIST: &[&str] = &["unionselect", "unionall", "selectfrom", "fromwhere"];

/// The literals of [`sql_only_operator`].
const SQL_ONLY_OPS: &[&str] = &["<=>", "rlike", "regexp"];

/// Whether `value` holds (in any case) any literal of [`glued_keywords`], [`sql_only_operator`]
/// or [`SYSTEM_NAMES`]: one pass instead of three for the common value that holds none. Each of
/// those three rules is true only on a match of its own case-insensitive automaton, that is on
/// an occurrence of one of its literals; this automaton (case-insensitive too, standard
/// semantics) matches whenever any of those literals occurs anywhere. So when this is false,
/// all three are false (same verdicts).
pub(super) fn any_level2_literal(value: &str) -> bool {
    static ALL: LazyLock<AhoCorasick> = LazyLock::new(|| {
        let patterns: Vec<&str> = GLUED_LIST
            .iter()
            .chain(SQL_ONLY_OPS)
            .chain(SYSTEM_NAME_LIST)
            .copied()
            .collect();
        #[allow(clippy::expect_used)]
        aho_corasick::AhoCorasickBuilder::new()
            .ascii_case_insensitive(true)
            .build(patterns)
            .expect("a fixed list of short literals always builds")
    });
    ALL.is_match(value)
}

/// Whether `value[start..end]` is a whole word: no identifier character before it, nor after it
/// when it ends in a letter or digit.
pub(super) fn bounded(value: &str, start: usize, end: usize) -> bool {
    let b = value.as_bytes();
    let ident = |c: &u8| c.is_ascii_alphanumeric() || *c == b'_';
    let before = start > 0 && b.get(start - 1).is_some_and(ident);
    let after = end > 0 && b.get(end - 1).is_some_and(ident) && b.get(end).is_some_and(ident);
    !(before || after)
}

/// Numbers at the limits of SQL integer types, and the double that hangs naive float parsers:
/// overflow probes.
pub(super) fn integer_limit(value: &str) -> bool {
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

/// `x = 0x616263`, `\0xf00d`: a hex literal of at least three digits inside other text (a value
/// that is only a hex number is an ID, a colour or an address; after `:` it is part of a URL
/// or an IPv6 address).
pub(super) fn hex_literal(value: &str) -> bool {
    let b = value.as_bytes();
    let v = value.trim();
    if v.len() > 2 && v.as_bytes()[2..].iter().all(u8::is_ascii_hexdigit) {
        return false;
    }
    finder!(b"0x").find_iter(b).any(|p| {
        (p == 0 || !(b[p - 1].is_ascii_alphanumeric() || b[p - 1] == b':'))
            && b[p + 2..]
                .iter()
                .take_while(|c| c.is_ascii_hexdigit())
                .count()
                >= 3
    })
}

/// `1.e(ascii)`, `1.e.tables`: MySQL reads `1.e` as a number glued to what follows, hiding a
/// keyword from word-boundary filters.
pub(super) fn scientific_glue(value: &str) -> bool {
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
pub(super) fn backslash_quote_logic(value: &str) -> bool {
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
pub(super) fn comment_in_word(value: &str) -> bool {
    let b = value.as_bytes();
    finder!(b"/*").find_iter(b).any(|p| {
        p > 0
            && b[p - 1].is_ascii_alphabetic()
            && finder!(b"*/")
                .find(&b[p + 2..])
                .is_some_and(|len| b.get(p + 2 + len + 2).is_some_and(u8::is_ascii_alphabetic))
    })
}

/// Operators only SQL (or code) spells this way, standing alone: `||`, `&&`, `<=>`, `!=`, `<>`,
/// `<=`, `>=`, `<<`, `>>`, `XOR`, `RLIKE`, `REGEXP`, `IN (`.
pub(super) fn lone_operator(value: &str) -> bool {
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

/// `regexp` is also the noun of technical prose (`fix the regexp for dates`): as SQL's operator
/// it ends the value after nothing or a symbol (`REGEXP`, `NOT REGEXP`, `` ` REGEXP ``) or has a
/// right operand SQL writes — a
/// string, a number, a group, a variable, a name in back quotes, a call (`regexp '^a'`,
/// `regexp 0x5e`, `regexp (select`, `regexp binary 'a'`) — not an English word.
fn regexp_operand(value: &str, start: usize, end: usize) -> bool {
    let before = value[..start].trim();
    // the value ends with the operator after nothing, `NOT`, or a symbol closing an operand
    // (`` ` REGEXP ``, `') rlike`)
    if value[end..].trim().is_empty()
        && (before.is_empty()
            || before.eq_ignore_ascii_case("not")
            || before.ends_with(|c: char| !c.is_ascii_alphabetic()))
    {
        return true;
    }
    let rest = value[end..].trim_start();
    let b = rest.as_bytes();
    match b.first() {
        Some(b'\'' | b'"' | b'`' | b'(' | b'@' | b'-' | b'~' | b'!' | b'^') => true,
        Some(c) if c.is_ascii_digit() => true,
        Some(c) if c.is_ascii_alphabetic() => {
            let w = b
                .iter()
                .take_while(|c| c.is_ascii_alphanumeric() || **c == b'_')
                .count();
            // a call glued to its parenthesis (`rlike sleep(5)`), a typed string
            rest[w..].starts_with('(') || rest[w..].trim_start().starts_with(['\'', '"'])
        }
        _ => false,
    }
}

/// Operators no other language or prose uses, standing alone: `<=>`, `RLIKE`, `REGEXP` (`XOR`
/// is also a logic word of code and cryptography: level 3).
pub(super) fn sql_only_operator(value: &str) -> bool {
    static OPS: LazyLock<AhoCorasick> = LazyLock::new(|| literals(SQL_ONLY_OPS));
    OPS.find_iter(value).any(|m| {
        !value.as_bytes()[m.start()].is_ascii_alphabetic()
            || bounded(value, m.start(), m.end())
                && (!value[m.start()..m.end()].eq_ignore_ascii_case("regexp")
                    || regexp_operand(value, m.start(), m.end()))
    })
}

/// At least `n` special characters, making up a third of the value or more (a document has
/// many, but spread out).
pub(super) fn special_run(value: &str, n: usize) -> bool {
    if value.starts_with("{\"") || value.starts_with("[\"") {
        return false; // JSON: quotes, colons and braces are its syntax
    }
    let count = special_chars(value);
    count >= n && count * 3 >= value.len()
}

/// Characters SQL injections lean on (quotes, operators, brackets, comment and statement marks).
pub(super) fn special_chars(value: &str) -> usize {
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
pub(super) fn quote_punct_digit(value: &str) -> bool {
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
pub(super) fn backquoted(value: &str) -> bool {
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
pub(super) fn quoted_word(value: &str) -> bool {
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
pub(super) fn glued_keywords(value: &str) -> bool {
    static GLUED: LazyLock<AhoCorasick> = LazyLock::new(|| literals(GLUED_LIST));
    GLUED.is_match(value)
}

/// A quote or back quote that is not an apostrophe between two letters (`O'Brien`).
pub(super) fn loose_quote(value: &str) -> bool {
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
pub(super) fn repeated_punct(value: &str) -> bool {
    value
        .as_bytes()
        .windows(4)
        .any(|w| w.iter().all(|c| c.is_ascii_punctuation()))
}
