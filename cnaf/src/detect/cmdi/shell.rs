//! How a shell reads a word before running it: expansions, wildcards, functions, and the
//! Windows batch interpreter's control flow.

use std::borrow::Cow;

/// Remove what a shell removes before running a word: empty or unset expansions (`$@`, `$*`,
/// `${X}`), single-character classes (`[n]`) and empty quotes. The value itself (borrowed, no
/// copy) when there is nothing to remove.
pub(super) fn shell_expand(v: &str) -> Cow<'_, str> {
    let b = v.as_bytes();
    let special = |c: &u8| matches!(c, b'$' | b'[' | b'\'' | b'"' | b'`' | b'<' | b'>');
    // `out` holds v[..copied] as the shell reads it; v[copied..i] is still to be copied as is.
    // Every byte that starts an expansion is ASCII, so each cut is at a char boundary.
    let mut out: Option<String> = None;
    let mut copied = 0;
    let mut i = 0;
    while let Some(k) = b[i..].iter().position(special) {
        i += k;
        // (bytes the shell drops from i on, what it puts in their place)
        let edit: Option<(usize, Option<char>)> = match b[i] {
            // `$@`, `$*`, `$!` and the positional parameters are empty in a fresh `sh -c`
            b'$' if matches!(b.get(i + 1), Some(b'@' | b'*' | b'!' | b'1'..=b'9')) => {
                Some((2, None))
            }
            // `$?`, `$-`, `$$`, `$_`, `$#`, `$0` stand for short runtime values that payloads
            // splice into a word (`c$?at`, `una$$me`) only to break its spelling
            b'$' if matches!(b.get(i + 1), Some(b'?' | b'-' | b'$' | b'_' | b'#' | b'0')) => {
                Some((2, None))
            }
            // `cat$u`, `/etc$u/passwd`: an unset variable glued to the end of a word
            b'$' if i > 0
                && (b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'/')
                && b.get(i + 1).is_some_and(u8::is_ascii_alphabetic) =>
            {
                let len = b[i + 1..]
                    .iter()
                    .take_while(|c| c.is_ascii_alphanumeric() || **c == b'_')
                    .count();
                Some((len + 1, None))
            }
            // `pi<()ng`: an empty process substitution
            b'<' | b'>' if b.get(i + 1) == Some(&b'(') && b.get(i + 2) == Some(&b')') => {
                Some((3, None))
            }
            // an empty command substitution (`` `` ``, `$()`) expands to nothing
            b'`' if b.get(i + 1) == Some(&b'`') => Some((2, None)),
            b'$' if b.get(i + 1) == Some(&b'(') && b.get(i + 2) == Some(&b')') => Some((3, None)),
            b'$' if b.get(i + 1) == Some(&b'{') => match b[i..].iter().position(|&c| c == b'}') {
                Some(close)
                    if b[i + 2..i + close]
                        .iter()
                        .all(|c| c.is_ascii_alphanumeric() || *c == b'_') =>
                {
                    Some((close + 1, None))
                }
                _ => None,
            },
            b'[' if b.get(i + 2) == Some(&b']') && b[i + 1].is_ascii_alphanumeric() => {
                Some((3, Some(char::from(b[i + 1]))))
            }
            b'\'' | b'"' if b.get(i + 1) == Some(&b[i]) => Some((2, None)),
            _ => None,
        };
        match edit {
            Some((len, put)) => {
                let o = out.get_or_insert_with(|| String::with_capacity(v.len()));
                o.push_str(&v[copied..i]);
                if let Some(c) = put {
                    o.push(c);
                }
                i += len;
                copied = i;
            }
            None => i += 1,
        }
    }
    match out {
        Some(mut o) => {
            o.push_str(&v[copied..]);
            Cow::Owned(o)
        }
        None => Cow::Borrowed(v),
    }
}

/// `:(){ :|:& };:`, `f(){ f & f; };f`: a shell function that starts two copies of itself at
/// once (piped into itself or in the background) — a fork bomb.
pub(super) fn fork_bomb(b: &[u8]) -> bool {
    finder!(b"()").find_iter(b).any(|p| {
        let mut n = p;
        while n > 0 && !b[n - 1].is_ascii_whitespace() && !matches!(b[n - 1], b';' | b'{' | b'}') {
            n -= 1;
        }
        let name = &b[n..p];
        if name.is_empty() || name.len() > 16 {
            return false;
        }
        // the body read without blanks, `()` and `;`: `{ f() | f(); }` is `{f|f}`
        let mut body: Vec<u8> = b[p + 2..b.len().min(p + 64)]
            .iter()
            .copied()
            .filter(|c| !c.is_ascii_whitespace() && *c != b';')
            .collect();
        while let Some(k) = finder!(b"()").find(&body) {
            body.drain(k..k + 2);
        }
        // the function runs two copies of itself at once: piped into itself or backgrounded
        let twice = |sep: u8| {
            let mut call = name.to_vec();
            call.push(sep);
            call.extend_from_slice(name);
            memchr::memmem::find(&body, &call).is_some()
        };
        body.first() == Some(&b'{') && (twice(b'|') || twice(b'&'))
    })
}

/// A path with shell wildcards that expands to a shell or a sensitive file
/// (`/???/b??h`, `/bin/ca? /et*/passwd`).
pub(super) fn glob_path(v: &str) -> bool {
    const TARGETS: &[&str] = &[
        "/usr/bin/bash",
        "/usr/bin/sh",
        "/bin/bash",
        "/bin/sh",
        "/bin/dash",
        "/bin/zsh",
        "/bin/cat",
        "/bin/nc",
        "/usr/bin/nc",
        "/usr/bin/wget",
        "/usr/bin/curl",
        "/usr/bin/id",
        "/usr/bin/whoami",
        "/bin/busybox",
        "/etc/passwd",
        "/etc/shadow",
        "/etc/hosts",
        "/usr/bin/python3",
        "/usr/bin/perl",
        "/bin/ls",
        "/usr/bin/ls",
        "/bin/ps",
        "/bin/rm",
        "/usr/bin/env",
    ];
    if !v.contains(['?', '*', '[']) {
        return false;
    }
    v.split(|c: char| c.is_whitespace() || matches!(c, ';' | '|' | '&' | '`' | '=' | '+'))
        .filter(|w| w.starts_with('/') && w.contains(['?', '*', '[']) && w.len() <= 40)
        .any(|w| {
            TARGETS
                .iter()
                .any(|t| glob_match(w.as_bytes(), t.as_bytes()))
        })
}

pub(super) fn glob_match(p: &[u8], s: &[u8]) -> bool {
    match (p.first(), s.first()) {
        (None, None) => true,
        (Some(b'['), Some(c)) => {
            // `[abc]`, `[a-z]`, `[!abc]`
            let Some(close) = p.iter().position(|&x| x == b']') else {
                return false;
            };
            let class = &p[1..close];
            let (negate, class) = match class.first() {
                Some(b'!' | b'^') => (true, &class[1..]),
                _ => (false, class),
            };
            let mut hit = false;
            let mut k = 0;
            while k < class.len() {
                if k + 2 < class.len() && class[k + 1] == b'-' {
                    hit |= (class[k]..=class[k + 2]).contains(c);
                    k += 3;
                } else {
                    hit |= class[k] == *c;
                    k += 1;
                }
            }
            hit != negate && *c != b'/' && glob_match(&p[close + 1..], &s[1..])
        }
        (Some(b'*'), _) => {
            glob_match(&p[1..], s) || (!s.is_empty() && s[0] != b'/' && glob_match(p, &s[1..]))
        }
        (Some(b'?'), Some(c)) if *c != b'/' => glob_match(&p[1..], &s[1..]),
        (Some(a), Some(c)) if a == c => glob_match(&p[1..], &s[1..]),
        _ => false,
    }
}

/// Windows batch control flow: `FOR /F %i IN (...) DO ...`, `IF [/I] [NOT] EXIST ...`,
/// `IF %var% EQU 2 ...`, `IF "%a%"=="b" (...)`.
pub(super) fn windows_batch(l: &str) -> bool {
    if !l.contains("if ") && !l.contains("if/") && !l.contains("for ") {
        return false;
    }
    let words: Vec<&str> = l
        .split(|c: char| c.is_whitespace() || matches!(c, '&' | '|' | ';'))
        .filter(|w| !w.is_empty())
        .collect();
    for (i, w) in words.iter().enumerate() {
        let rest = &words[i + 1..words.len().min(i + 12)];
        match *w {
            "for" => {
                let mut k = 0;
                while rest.get(k).is_some_and(|f| f.starts_with('/')) {
                    k += 1;
                }
                if k > 0 && !rest.get(k).is_some_and(|v| v.starts_with('%')) {
                    // `FOR /R C:\dir %G`, `FOR /F "tokens=1" %i`: the switch's own argument
                    k += 1;
                }
                let var = rest.get(k).is_some_and(|v| v.starts_with('%'));
                let has_in = rest.iter().any(|x| *x == "in" || x.starts_with("in("));
                let has_do = rest
                    .iter()
                    .any(|x| *x == "do" || x.ends_with(")do") || x.starts_with("do"));
                if var && has_in && has_do {
                    return true;
                }
            }
            "if" => {
                let mut k = 0;
                while matches!(rest.get(k), Some(&("/i" | "not"))) {
                    k += 1;
                }
                match rest.get(k) {
                    Some(&("exist" | "defined" | "errorlevel" | "cmdextversion")) => return true,
                    Some(v) if v.contains('%') => {
                        let cmp = rest.iter().any(|x| {
                            x.contains("==")
                                || matches!(*x, "equ" | "neq" | "lss" | "leq" | "gtr" | "geq")
                        });
                        if cmp {
                            return true;
                        }
                    }
                    _ => {}
                }
                if (i == 0 || words[i - 1] == "@") && batch_if_compare(rest) {
                    return true;
                }
            }
            "if/i" if i == 0 && batch_if_compare(&words[1..words.len().min(12)]) => return true,
            _ => {}
        }
    }
    false
}

/// After a value-leading `IF [/I] [NOT]`: `a==b cmd`, `"x" == "y" cmd`, `2 GEQ 15 cmd` — the batch
/// interpreter's comparison followed by the command it runs. Other languages' `if` differs:
/// `if (a == b)` (C family), `if a == b:` (Python), `if a == b then` (Lua, Ruby, shell `]; then`),
/// `if a == b {` (Go, Rust, Perl) are not read as batch.
fn batch_if_compare(rest: &[&str]) -> bool {
    let mut w: Vec<String> = Vec::with_capacity(rest.len());
    // re-join quoted operands split at blanks: `"A A"`
    let mut open: Option<String> = None;
    for x in rest {
        match open.take() {
            Some(mut o) => {
                o.push(' ');
                o.push_str(x);
                if x.ends_with('"') {
                    w.push(o);
                } else {
                    open = Some(o);
                }
            }
            None if x.starts_with('"') && (x.len() == 1 || !x.ends_with('"')) => {
                open = Some((*x).to_string())
            }
            None => w.push((*x).to_string()),
        }
    }
    let mut k = 0;
    while matches!(w.get(k).map(String::as_str), Some("/i" | "not")) {
        k += 1;
    }
    if w.get(k)
        .is_some_and(|x| x.starts_with('(') && !x.contains("=="))
        && k == 0
    {
        return false;
    }
    const OPS: [&str; 6] = ["equ", "neq", "lss", "leq", "gtr", "geq"];
    let is_op = |x: &str| x.bytes().all(|c| c == b'=') && x.len() >= 2 || OPS.contains(&x);
    let attached = |x: &str| {
        x.find("==")
            .is_some_and(|p| p > 0 && !x[p..].trim_start_matches('=').is_empty())
    };
    let right_end = match (w.get(k), w.get(k + 1), w.get(k + 2)) {
        (Some(a), _, _) if attached(a) => k + 1,
        (Some(_), Some(op), Some(_)) if is_op(op) => k + 3,
        (Some(a), Some(b), _) if a.ends_with("==") || (b.starts_with("==") && b.len() > 2) => k + 2,
        _ => return false,
    };
    let right = &w[right_end - 1];
    if right.ends_with(':') || right.ends_with('{') {
        return false;
    }
    match w.get(right_end) {
        Some(cmd) => {
            !matches!(cmd.as_str(), "then" | "{" | ":" | "]" | "];" | "and" | "or")
                && !cmd.starts_with(']')
                && cmd
                    .trim_start_matches('@')
                    .bytes()
                    .next()
                    .is_some_and(|c| c.is_ascii_alphabetic())
        }
        None => false,
    }
}

/// `{,ifconfig}`, `{id,}`, `{,cd,/etc,}`, `{,/?s?/?i?/c?t,/e??/p??s??,}`: a bash brace expansion
/// with an empty first or last element (a form only bash reads, not JSON or templates) whose
/// first word is a command or a wildcard path — bash expands it into a command line.
pub(super) fn brace_command(v: &str) -> bool {
    let b = v.as_bytes();
    memchr::memchr_iter(b'{', b).any(|p| {
        let Some(len) = b[p + 1..].iter().take(128).position(|&c| c == b'}') else {
            return false;
        };
        let inner = &v[p + 1..p + 1 + len];
        // the group stands as a shell word of its own
        let word_edge = |c: Option<&u8>| {
            matches!(
                c,
                None | Some(b' ' | b'\t' | b'\n' | b';' | b'|' | b'&' | b'`' | b'(' | b')' | b'=')
            )
        };
        if !word_edge(p.checked_sub(1).map(|k| &b[k])) || !word_edge(b.get(p + len + 2)) {
            return false;
        }
        if !inner.contains(',') || inner.contains([' ', '\t', '{', ':']) {
            return false;
        }
        // quotes only as bash's `$"..."` strings (`{,$"whoami",}`), not JSON's `{"id",}`
        if inner.contains('"')
            && inner
                .split(',')
                .any(|e| e.contains('"') && !e.starts_with("$\""))
        {
            return false;
        }
        let leading = inner.starts_with(',');
        let trailing = inner.ends_with(',');
        // `{n$u\c$u,-nlvp,777}`, `{ls,-la}`: no empty element, but the first is spelled only the
        // shell's way or the next is an option
        let flagged = inner.split(',').nth(1).is_some_and(|e| {
            e.len() > 1 && e.starts_with('-') && e.as_bytes()[1].is_ascii_alphabetic()
        });
        let spliced = inner
            .split(',')
            .next()
            .is_some_and(|e| e.contains(['$', '\\']));
        if !leading && !trailing && !flagged && !spliced {
            return false;
        }
        let first = inner.split(',').find(|e| !e.is_empty()).unwrap_or("");
        let unquoted = first
            .trim_start_matches('$')
            .trim_matches(|c| c == '\'' || c == '"');
        // `n$u\c$u`: what the shell makes of the word (unset variables, backslashes dropped)
        let word: String = shell_expand(unquoted)
            .chars()
            .filter(|c| !matches!(c, '\\' | '\'' | '"'))
            .collect::<String>()
            .to_ascii_lowercase();
        super::is_command_word(&word)
            || matches!(word.as_str(), "source" | "exec" | "eval")
            || (unquoted.starts_with('/') && unquoted.contains('?'))
    })
}

/// `;.shell nc ...`, `1;.system id`, `;\n.databases`: a sqlite3 shell dot-command at the start of
/// a statement. The sqlite3 command-line tool runs `.shell`/`.system` as OS commands and accepts
/// unambiguous prefixes (`.sh`).
pub(super) fn sqlite_dot_command(v: &str) -> bool {
    const CMDS: &[&str] = &[
        "shell",
        "system",
        "databases",
        "tables",
        "dump",
        "schema",
        "read",
        "import",
        "output",
        "once",
        "load",
    ];
    let b = v.as_bytes();
    memchr::memchr_iter(b';', b).any(|p| {
        let mut i = p + 1;
        loop {
            if b.get(i).is_some_and(u8::is_ascii_whitespace) {
                i += 1;
            } else if b.get(i) == Some(&b'\\') && matches!(b.get(i + 1), Some(b'n' | b'r' | b't')) {
                // `;\n.shell`: the line break written as an escape inside a quoted string
                i += 2;
            } else {
                break;
            }
        }
        if b.get(i) != Some(&b'.') {
            return false;
        }
        i += 1;
        while i < b.len() && matches!(b[i], b' ' | b'"' | b'\'' | b'\\') {
            i += 1;
        }
        let start = i;
        while i < b.len() && b[i].is_ascii_alphabetic() {
            i += 1;
        }
        let word = v[start..i].to_ascii_lowercase();
        let ends = matches!(b.get(i), None | Some(b' ' | b'\t' | b'\n' | b'\r' | b';'));
        word.len() >= 2 && ends && CMDS.iter().any(|c| c.starts_with(word.as_str()))
    })
}

/// `${PATH:0:1}`, `${x#{}}`, `${HOME##*/}`: a bash parameter expansion that cuts a variable's
/// value (substring or prefix removal; `%` is left out, templates use it as modulo) — how payloads conjure `/` or a command name out
/// of the environment without writing it. Templates (`${name}`, `${a + b}`) have no such
/// operator right after a bare name.
pub(super) fn param_expansion_trick(v: &str) -> bool {
    let b = v.as_bytes();
    finder!(b"${").find_iter(b).any(|p| {
        let mut i = p + 2;
        let start = i;
        while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
            i += 1;
        }
        if i == start || b[start].is_ascii_digit() {
            return false;
        }
        match (b.get(i), b.get(i + 1)) {
            // `${PATH:0:1}`, `${PATH: -1}`, `${x:~0}`
            (Some(b':'), Some(c)) => c.is_ascii_digit() || matches!(c, b' ' | b'~'),
            // `${x#pat}`, `${x##pat}` closed by `}`
            (Some(b'#'), _) => b[i..].iter().take(64).any(|&c| c == b'}'),
            _ => false,
        }
    })
}
