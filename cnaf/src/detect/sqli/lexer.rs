//! A forgiving SQL tokenizer: it never fails, it folds whitespace and MySQL executable comments
//! away, and it classifies words into the few roles the grammar needs.

use super::functions::{function_level, known_function};

/// Keyword roles (what a word does in a statement).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kw {
    From,
    Where,
    Into,
    Limit,
    Order,
    Group,
    By,
    Having,
    Procedure,
    All,
    Distinct,
    Top,
    As,
    Table,
    Database,
    Set,
    Delay,
    Values,
    Case,
    When,
    Then,
    Else,
    End,
    Null,
    Outfile,
    /// `IMMEDIATE` (Oracle `EXECUTE IMMEDIATE`: run a string as a statement).
    Immediate,
    Offset,
    Join,
    /// `ESCAPE` (the escape character of a `LIKE` pattern).
    Escape,
    Other,
}

/// Statement starters that change data or run code (stacked-query payloads).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stmt {
    Insert,
    Update,
    Delete,
    Drop,
    Create,
    Alter,
    Truncate,
    Exec,
    Declare,
    Shutdown,
    Waitfor,
    Grant,
    /// T-SQL `PRINT` (shows a value: a probe when stacked).
    Print,
}

/// One token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tok {
    /// A string literal; `ctx` when it was opened by the injection context (the value started
    /// inside a quoted string), `closed` when its closing quote was seen.
    Str {
        ctx: bool,
        closed: bool,
    },
    Num,
    /// A bare identifier that is not a keyword.
    Word,
    /// A PostgreSQL cast to a type (`::int`, `::jsonb`).
    Cast,
    /// A back-quoted identifier (`` `users` ``): MySQL syntax, not prose.
    QuotedIdent,
    /// A function known to SQL dialects, followed by `(`: level 2 = only attackers call it from
    /// a request (delays, file access, error-based extraction), 1 = useful to attackers, 0 = common.
    Func(u8),
    /// Any other identifier directly followed by `(`.
    Call,
    /// A catalog or system object only an attacker names from a request
    /// (`information_schema`, `pg_catalog`, `xp_cmdshell`, `sp_executesql`...).
    SysObject,
    Union,
    Select,
    Stmt(Stmt),
    Kw(Kw),
    /// `AND`, `OR`, `XOR`, `&&`, `||`.
    Logic,
    /// `NOT`, `!`.
    Not,
    /// A comparison no prose uses: `=`, `<`, `>`, `<=`, `>=`, `<>`, `!=`, `<=>`, and the
    /// pattern operators `RLIKE`, `REGEXP`, `GLOB`.
    Cmp,
    /// A comparison spelled as an English word: `LIKE`, `IS`, `IN`, `BETWEEN`, `SOUNDS` (judged
    /// more strictly).
    CmpWord,
    /// Arithmetic and bit operators: `+ - * / % ^ | & ~ DIV MOD :=`.
    Arith,
    /// `@var`, `@@var`.
    Var,
    Comment,
    LParen,
    RParen,
    Comma,
    Semi,
    Dot,
    /// Anything else (punctuation SQL does not use).
    Other,
}

/// Whether a PostgreSQL type name starts at `i` (after `::`).
fn cast_type_at(b: &[u8], i: usize) -> bool {
    let end = b[i.min(b.len())..]
        .iter()
        .position(|c| !c.is_ascii_alphanumeric())
        .map_or(b.len(), |p| i + p);
    let word = std::str::from_utf8(&b[i.min(b.len())..end])
        .unwrap_or("")
        .to_ascii_lowercase();
    matches!(
        word.as_str(),
        "int"
            | "int4"
            | "int8"
            | "integer"
            | "bigint"
            | "smallint"
            | "text"
            | "varchar"
            | "char"
            | "bool"
            | "boolean"
            | "json"
            | "jsonb"
            | "numeric"
            | "float"
            | "float8"
            | "double"
            | "real"
            | "regclass"
            | "regproc"
            | "oid"
            | "bytea"
            | "date"
            | "timestamp"
            | "inet"
            | "uuid"
            | "xml"
            | "money"
    )
}

/// Whether `word` names a SQL function (at any danger level).
pub fn is_function(word: &str) -> bool {
    matches!(classify(word, true), Tok::Func(_))
}

fn classify(word: &str, next_is_paren: bool) -> Tok {
    let mut buf = [0u8; 32];
    if word.len() > buf.len() {
        return if next_is_paren { Tok::Call } else { Tok::Word };
    }
    for (d, s) in buf.iter_mut().zip(word.bytes()) {
        *d = s.to_ascii_lowercase();
    }
    let lower = std::str::from_utf8(&buf[..word.len()]).unwrap_or("");
    // every word made `Union`, `Select` or `Stmt` here must also be in
    // `paranoid::STATEMENT_WORDS`, which decides whether a value is worth re-reading after a quote
    let t = match lower {
        "union" | "except" | "intersect" => Tok::Union,
        "information_schema" | "pg_catalog" | "pg_shadow" | "pg_user" | "sysobjects"
        | "syscolumns" | "sysusers" | "sysdatabases" | "sqlite_master" | "sqlite_schema"
        | "msysaccessobjects" | "msysobjects" | "msysqueries" | "all_tables" | "all_users"
        | "user_tables" | "dba_users" | "v$version" | "xp_cmdshell" | "xp_dirtree"
        | "xp_regread" | "xp_fileexist" | "xp_servicecontrol" | "sp_executesql" | "sp_oacreate"
        | "sp_makewebtask" | "sp_addlogin" | "sp_password" | "sp_configure" | "openrowset"
        | "opendatasource" | "utl_http" | "utl_inaddr" | "dbms_pipe" | "dbms_ldap"
        | "dbms_xmlgen" | "load_file" | "tempdb" | "msdb" | "pg_sleep" => Tok::SysObject,
        "select" => Tok::Select,
        "insert" => Tok::Stmt(Stmt::Insert),
        "update" => Tok::Stmt(Stmt::Update),
        "delete" => Tok::Stmt(Stmt::Delete),
        "drop" => Tok::Stmt(Stmt::Drop),
        "create" => Tok::Stmt(Stmt::Create),
        "alter" => Tok::Stmt(Stmt::Alter),
        "truncate" => Tok::Stmt(Stmt::Truncate),
        "exec" | "execute" => Tok::Stmt(Stmt::Exec),
        "declare" => Tok::Stmt(Stmt::Declare),
        "shutdown" => Tok::Stmt(Stmt::Shutdown),
        "waitfor" => Tok::Stmt(Stmt::Waitfor),
        "grant" => Tok::Stmt(Stmt::Grant),
        "and" | "or" | "xor" => Tok::Logic,
        "not" => Tok::Not,
        // SQL-only pattern operators compare like `=` does; the English-looking ones are judged
        // more strictly
        // (SQLite's function forms `glob(pattern, x)`, `regexp(p, x)` are calls)
        "rlike" | "regexp" | "glob" if !next_is_paren => Tok::Cmp,
        "like" | "is" | "in" | "between" | "sounds" => Tok::CmpWord,
        // postfix operators (`x COLLATE nocase`, `x NOTNULL`): a column expression continues
        "collate" | "notnull" | "isnull" if !next_is_paren => Tok::CmpWord,
        "immediate" => Tok::Kw(Kw::Immediate),
        "div" | "mod" => Tok::Arith,
        "from" => Tok::Kw(Kw::From),
        "where" => Tok::Kw(Kw::Where),
        "into" => Tok::Kw(Kw::Into),
        "limit" => Tok::Kw(Kw::Limit),
        "order" => Tok::Kw(Kw::Order),
        "group" => Tok::Kw(Kw::Group),
        "by" => Tok::Kw(Kw::By),
        "having" => Tok::Kw(Kw::Having),
        "procedure" => Tok::Kw(Kw::Procedure),
        "all" => Tok::Kw(Kw::All),
        "distinct" | "distinctrow" => Tok::Kw(Kw::Distinct),
        "top" => Tok::Kw(Kw::Top),
        "as" => Tok::Kw(Kw::As),
        "table" | "tables" => Tok::Kw(Kw::Table),
        "database" | "schema" | "user" | "view" | "index" | "function" | "trigger" => {
            if next_is_paren {
                Tok::Func(1)
            } else {
                Tok::Kw(Kw::Database)
            }
        }
        "set" => Tok::Kw(Kw::Set),
        "delay" => Tok::Kw(Kw::Delay),
        "values" => Tok::Kw(Kw::Values),
        "case" => Tok::Kw(Kw::Case),
        "when" => Tok::Kw(Kw::When),
        "then" => Tok::Kw(Kw::Then),
        "else" => Tok::Kw(Kw::Else),
        "end" => Tok::Kw(Kw::End),
        "null" => Tok::Kw(Kw::Null),
        "outfile" | "dumpfile" => Tok::Kw(Kw::Outfile),
        "offset" => Tok::Kw(Kw::Offset),
        "join" => Tok::Kw(Kw::Join),
        "escape" if !next_is_paren => Tok::Kw(Kw::Escape),
        "print" if !next_is_paren => Tok::Stmt(Stmt::Print),
        "asc" | "desc" | "on" | "using" | "binary" | "ascii" | "char" | "varchar" | "nvarchar"
        | "int" | "integer" | "cast" | "convert" | "true" | "false"
            if !next_is_paren =>
        {
            Tok::Kw(Kw::Other)
        }
        _ if next_is_paren => Tok::Func(function_level(lower)),
        _ => Tok::Word,
    };
    if t == Tok::Func(0) && !known_function(lower) {
        return Tok::Call;
    }
    t
}

/// Whether a collation name starts at `i`: a quoted name (`"C"`, `` `utf8mb4_bin` ``,
/// `U&"..."`), SQLite's `BINARY`/`NOCASE`/`RTRIM`, or a MySQL `charset_...` name.
fn collation_at(b: &[u8], i: usize) -> bool {
    match b.get(i) {
        Some(b'"' | b'`' | b'\'') => return true,
        Some(b'u' | b'U') if b.get(i + 1) == Some(&b'&') => return true,
        _ => {}
    }
    let end = b[i.min(b.len())..]
        .iter()
        .position(|c| !(c.is_ascii_alphanumeric() || *c == b'_'))
        .map_or(b.len(), |p| i + p);
    let word = std::str::from_utf8(&b[i.min(b.len())..end])
        .unwrap_or("")
        .to_ascii_lowercase();
    const CHARSETS: &[&str] = &[
        "utf8", "utf8mb3", "utf8mb4", "utf16", "utf16le", "utf32", "latin1", "latin2", "ascii",
        "ucs2", "binary", "cp1250", "cp1251", "cp1256", "cp1257", "gbk", "gb2312", "big5", "sjis",
        "euckr", "koi8r",
    ];
    matches!(word.as_str(), "binary" | "nocase" | "rtrim")
        || word
            .split_once('_')
            .is_some_and(|(cs, rest)| !rest.is_empty() && CHARSETS.contains(&cs))
}

/// The arguments at `b[open]` (a `(`) are ones the SQL function `word` takes: the niladic
/// probes (`version()`, `user()`, `database()`) take none (with something inside, the
/// parenthesis is an aside: `version (no changes)`, `user (CVE-...)`), nor do `index`,
/// `function`, `view`, `trigger` outside a definition (`function (fcfree)`); `EXP`/`FLOOR` are
/// the error-based probes only around a query, a call or a bit-flip (`exp(~(select...))`,
/// `floor(rand(0)*2)`), while `exp(-t)` or `floor(x)` is arithmetic.
fn sql_arguments(word: &str, b: &[u8], open: usize) -> bool {
    let lower = word.to_ascii_lowercase();
    // the argument text up to the matching `)` (or the value's end), and whether it closed
    let mut depth = 0usize;
    let mut end = b.len();
    let mut quote: Option<u8> = None;
    for (p, &c) in b.iter().enumerate().skip(open) {
        if let Some(q) = quote {
            if c == q {
                quote = None;
            }
            continue;
        }
        match c {
            b'\'' | b'"' | b'`' => quote = Some(c),
            b'(' => depth += 1,
            b')' => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    end = p;
                    break;
                }
            }
            _ => {}
        }
    }
    let args = &b[(open + 1).min(end)..end];
    let empty = args.iter().all(|c| c.is_ascii_whitespace());
    if issue_reference(args) && !super::functions::strong_function(&lower) {
        return false;
    }
    match lower.as_str() {
        "version" | "database" | "schema" | "user" | "current_user" | "system_user"
        | "session_user" | "row_count" | "sqlite_version" | "view" | "index" | "function"
        | "trigger" => empty,
        "exp" | "floor" => args
            .iter()
            .any(|c| matches!(c, b'(' | b'~' | b'@' | b'\'' | b'"' | b'`')),
        _ => true,
    }
}

/// The operand after the operator word `word` (`IN`, `IS`, ...; `b[end]` is just after it) is
/// one SQL's grammar allows: `IN` needs `(` (`x in putpwent` is English), `IS` a literal, a
/// keyword of its own (`NULL`, `NOT`, `TRUE`, `FALSE`, `UNKNOWN`, `DISTINCT`) or a symbol — not
/// a plain English word (`-o is specified`).
fn operator_word_operand(word: &str, b: &[u8], end: usize) -> bool {
    let mut k = end;
    while k < b.len() && b[k].is_ascii_whitespace() {
        k += 1;
    }
    if word.eq_ignore_ascii_case("in") {
        // cut off right after the operator, or a comment hiding the blank (`in/**/(`)
        return k >= b.len()
            || matches!(b[k], b'(' | b'#')
            || b[k..].starts_with(b"--")
            || b[k..].starts_with(b"/*");
    }
    if word.eq_ignore_ascii_case("is") && b.get(k).is_some_and(u8::is_ascii_alphabetic) {
        let next: Vec<u8> = b[k..]
            .iter()
            .take_while(|c| c.is_ascii_alphanumeric() || **c == b'_')
            .map(u8::to_ascii_lowercase)
            .collect();
        return matches!(
            next.as_slice(),
            b"null" | b"not" | b"true" | b"false" | b"unknown" | b"distinct"
        );
    }
    true
}

/// Text in parentheses that cites an issue or a ticket (`(#123)`, `(ITS#9668)`, `(Apple #58)`):
/// a `#` glued to a number, on one line. In SQL that `#` would comment out the closing
/// parenthesis, so no argument list is written that way.
pub(super) fn issue_reference(args: &[u8]) -> bool {
    !args.contains(&b'\n')
        && args
            .windows(2)
            .any(|w| w[0] == b'#' && w[1].is_ascii_digit())
}

fn two_is(b: &[u8], i: usize, next: u8) -> bool {
    b.get(i + 1) == Some(&next)
}

fn is_word_start(b: u8) -> bool {
    b.is_ascii_alphabetic() || b == b'_' || b >= 0x80
}

fn is_word_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'$' || b >= 0x80
}

/// Tokenize `s`. With `ctx_quote` set, the input is read as if it began inside a string opened
/// by that quote (the classic `...'` break-out context).
pub fn tokenize(s: &str, ctx_quote: Option<u8>, out: &mut Vec<Tok>) {
    out.clear();
    let b = s.as_bytes();
    let mut i = 0;
    if let Some(q) = ctx_quote {
        let (end, closed) = scan_string(b, 0, q);
        out.push(Tok::Str { ctx: true, closed });
        i = end;
    }
    while i < b.len() {
        let c = b[i];
        if c.is_ascii_whitespace() || c == 0x0b || c == 0 || c == 0xa0 {
            i += 1;
            continue;
        }
        // MySQL executable comment `/*!50000 ... */`: its content is code.
        if c == b'/' && b.get(i + 1) == Some(&b'*') && b.get(i + 2) == Some(&b'!') {
            i += 3;
            while i < b.len() && b[i].is_ascii_digit() {
                i += 1;
            }
            continue;
        }
        if c == b'*' && b.get(i + 1) == Some(&b'/') {
            // end of an executable comment (or stray): whitespace
            i += 2;
            continue;
        }
        if c == b'/' && b.get(i + 1) == Some(&b'*') {
            let end = finder!(b"*/")
                .find(&b[i + 2..])
                .map_or(b.len(), |p| i + 2 + p + 2);
            out.push(Tok::Comment);
            i = end;
            continue;
        }
        if (c == b'-' && b.get(i + 1) == Some(&b'-')) || c == b'#' {
            out.push(Tok::Comment);
            i = memchr::memchr(b'\n', &b[i..]).map_or(b.len(), |p| i + p + 1);
            continue;
        }
        if c == b'\'' || c == b'"' {
            let (end, closed) = scan_string(b, i + 1, c);
            out.push(Tok::Str { ctx: false, closed });
            i = end;
            continue;
        }
        if c == b'`' {
            // MySQL quoted identifier (a quoted system catalog is still the catalog)
            let close = memchr::memchr(b'`', &b[i + 1..]).map(|p| i + 1 + p);
            let end = close.map_or(b.len(), |c| c + 1);
            let inner = &s[i + 1..close.unwrap_or(b.len())];
            out.push(if classify(inner, false) == Tok::SysObject {
                Tok::SysObject
            } else {
                Tok::QuotedIdent
            });
            i = end;
            continue;
        }
        if c.is_ascii_digit() || (c == b'.' && b.get(i + 1).is_some_and(u8::is_ascii_digit)) {
            i = scan_number(b, i);
            out.push(Tok::Num);
            continue;
        }
        if c == b'@' && two_is(b, i, b'>') {
            out.push(Tok::Cmp);
            i += 2;
            continue;
        }
        // `select@example.com`: an e-mail address, whose local part may be a keyword (a
        // variable needs an operator or a blank before it; `select@@version` still reads so)
        if c == b'@'
            && i > 0
            && b[i - 1].is_ascii_alphanumeric()
            && b.get(i + 1).is_some_and(|n| n.is_ascii_alphanumeric())
        {
            let mut j = i + 1;
            while j < b.len() && (b[j].is_ascii_alphanumeric() || matches!(b[j], b'-' | b'_')) {
                j += 1;
            }
            if b.get(j) == Some(&b'.') && b.get(j + 1).is_some_and(u8::is_ascii_alphabetic) {
                while j < b.len() && (b[j].is_ascii_alphanumeric() || matches!(b[j], b'-' | b'.')) {
                    j += 1;
                }
                out.pop();
                out.push(Tok::Word);
                i = j;
                continue;
            }
        }
        if c == b'@' {
            let mut j = i + 1;
            if b.get(j) == Some(&b'@') {
                j += 1;
            }
            while j < b.len() && (is_word_byte(b[j]) || b[j] == b'.') {
                j += 1;
            }
            out.push(if j > i + 1 { Tok::Var } else { Tok::Other });
            i = j.max(i + 1);
            continue;
        }
        if is_word_start(c) {
            let mut j = i + 1;
            while j < b.len() && is_word_byte(b[j]) {
                j += 1;
            }
            let word = &s[i..j];
            let mut k = j;
            while k < b.len() && b[k].is_ascii_whitespace() {
                k += 1;
            }
            // `func/**/(` counts as a call too
            if b.get(k) == Some(&b'/') && b.get(k + 1) == Some(&b'*') {
                if let Some(p) = finder!(b"*/").find(&b[k + 2..]) {
                    k = k + 2 + p + 2;
                    while k < b.len() && b[k].is_ascii_whitespace() {
                        k += 1;
                    }
                }
            }
            let mut t = classify(word, b.get(k) == Some(&b'('));
            if matches!(t, Tok::Func(1 | 2)) && !sql_arguments(word, b, k) {
                // `version (X11R7.1)`, `if (p)`, `exp(x^2/2)`: the name is not that SQL function
                t = Tok::Call;
            }
            if t == Tok::CmpWord && !operator_word_operand(word, b, j) {
                // `gid in putpwent`, `-o is specified`: IN takes a parenthesised list, IS a
                // literal, NULL, TRUE/FALSE/UNKNOWN, NOT or DISTINCT FROM
                t = Tok::Word;
            }
            if t == Tok::CmpWord && word.eq_ignore_ascii_case("collate") && !collation_at(b, k) {
                // `COLLATE` takes a collation; "collate foo" is not SQL any engine runs
                t = Tok::Kw(Kw::Other);
            }
            out.push(t);
            i = j;
            continue;
        }
        let two = b.get(i + 1).copied();
        // JSON operators (MySQL/PostgreSQL): `->`, `->>` extract; `?`, `?|`, `?&`, `@>`, `<@`
        // test keys and containment (`?` only before a string, else it is prose punctuation)
        let json_op = match (c, two) {
            (b'-', Some(b'>')) => {
                Some((Tok::Arith, if b.get(i + 2) == Some(&b'>') { 3 } else { 2 }))
            }
            (b'?', Some(b'|' | b'&')) | (b'@', Some(b'>')) | (b'<', Some(b'@')) => {
                Some((Tok::Cmp, 2))
            }
            (b'?', _) => {
                let mut k = i + 1;
                while k < b.len() && b[k] == b' ' {
                    k += 1;
                }
                (k > i + 1 && matches!(b.get(k), Some(b'\'' | b'"'))).then_some((Tok::Cmp, 1))
            }
            _ => None,
        };
        if let Some((tok, len)) = json_op {
            out.push(tok);
            i += len;
            continue;
        }
        let (tok, len) = match (c, two) {
            (b'&', Some(b'&')) | (b'|', Some(b'|')) => (Tok::Logic, 2),
            (b'<', Some(b'=')) if b.get(i + 2) == Some(&b'>') => (Tok::Cmp, 3),
            (b'<', Some(b'=' | b'>')) | (b'>', Some(b'=')) | (b'!', Some(b'=')) => (Tok::Cmp, 2),
            (b':', Some(b'=')) => (Tok::Arith, 2),
            (b':', Some(b':')) if cast_type_at(b, i + 2) => (Tok::Cast, 2),
            // `=>` is an arrow (Perl, PHP, JavaScript, Rust, a mapping in prose), no comparison
            (b'=', Some(b'>')) => (Tok::Other, 2),
            (b'=' | b'<' | b'>', _) => (Tok::Cmp, 1),
            (b'!', _) => (Tok::Not, 1),
            (b'+' | b'-' | b'*' | b'/' | b'%' | b'^' | b'|' | b'&' | b'~', _) => (Tok::Arith, 1),
            (b'(', _) => (Tok::LParen, 1),
            (b')', _) => (Tok::RParen, 1),
            (b',', _) => (Tok::Comma, 1),
            (b';', _) => (Tok::Semi, 1),
            // a full stop (a blank after it) ends a sentence; SQL's `.` joins the parts of a
            // name (a value may end right after one: `exec master.`, blanks or not)
            (b'.', Some(b' ' | b'\t' | b'\n' | b'\r'))
                if i > 0 && b[i + 1..].iter().any(|c| !c.is_ascii_whitespace()) =>
            {
                (Tok::Other, 1)
            }
            (b'.', _) => (Tok::Dot, 1),
            _ => (Tok::Other, 1),
        };
        out.push(tok);
        i += len;
    }
}

/// Scan a string body starting at `start` (just after the opening quote); returns the index
/// after the closing quote and whether one was found. Doubled quotes and backslash escapes are
/// part of the string.
fn scan_string(b: &[u8], start: usize, q: u8) -> (usize, bool) {
    let mut i = start;
    while i < b.len() {
        if b[i] == b'\\' {
            i += 2;
            continue;
        }
        if b[i] == q {
            if b.get(i + 1) == Some(&q) {
                i += 2;
                continue;
            }
            return (i + 1, true);
        }
        i += 1;
    }
    (b.len(), false)
}

fn scan_number(b: &[u8], start: usize) -> usize {
    let mut i = start;
    if b[i] == b'0' && matches!(b.get(i + 1), Some(b'x' | b'X' | b'b' | b'B')) {
        i += 2;
        while i < b.len() && b[i].is_ascii_hexdigit() {
            i += 1;
        }
        return i;
    }
    while i < b.len() && (b[i].is_ascii_digit() || b[i] == b'.') {
        i += 1;
    }
    if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
        let mut j = i + 1;
        if j < b.len() && (b[j] == b'+' || b[j] == b'-') {
            j += 1;
        }
        if j < b.len() && b[j].is_ascii_digit() {
            i = j;
            while i < b.len() && b[i].is_ascii_digit() {
                i += 1;
            }
        }
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(s: &str, q: Option<u8>) -> Vec<Tok> {
        let mut v = Vec::new();
        tokenize(s, q, &mut v);
        v
    }

    #[test]
    fn union_select_with_executable_comments() {
        assert_eq!(
            toks("/*!UNiOn*/ /*!50000SeLEct*/ 1", None),
            [Tok::Union, Tok::Select, Tok::Num]
        );
        assert_eq!(toks("1 UNION ALL SELECT", None)[1], Tok::Union);
    }

    #[test]
    fn context_string_and_comment() {
        assert_eq!(
            toks("admin'--", Some(b'\'')),
            [
                Tok::Str {
                    ctx: true,
                    closed: true
                },
                Tok::Comment
            ]
        );
        assert_eq!(
            toks("x' OR '1", Some(b'\'')),
            [
                Tok::Str {
                    ctx: true,
                    closed: true
                },
                Tok::Logic,
                Tok::Str {
                    ctx: false,
                    closed: false
                }
            ]
        );
    }

    #[test]
    fn functions_and_calls() {
        assert_eq!(toks("sleep (5)", None)[0], Tok::Func(2));
        assert_eq!(toks("substr(1)", None)[0], Tok::Func(1));
        assert_eq!(toks("concat(1)", None)[0], Tok::Func(0));
        assert_eq!(toks("frobnicate(1)", None)[0], Tok::Call);
        assert_eq!(toks("0x3a 1e5 .5", None), [Tok::Num, Tok::Num, Tok::Num]);
    }
}
