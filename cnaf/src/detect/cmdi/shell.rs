//! How a shell reads a word before running it: expansions, wildcards, functions, and the
//! Windows batch interpreter's control flow.

/// Remove what a shell removes before running a word: empty or unset expansions (`$@`, `$*`,
/// `${X}`), single-character classes (`[n]`) and empty quotes.
pub(super) fn shell_expand(v: &str) -> String {
    if !v.contains(['$', '[', '\'', '"']) {
        return v.to_string();
    }
    let b = v.as_bytes();
    let mut out = String::with_capacity(v.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'$' if matches!(b.get(i + 1), Some(b'@' | b'*')) => i += 2,
            b'$' if b.get(i + 1) == Some(&b'{') => match b[i..].iter().position(|&c| c == b'}') {
                Some(close)
                    if b[i + 2..i + close]
                        .iter()
                        .all(|c| c.is_ascii_alphanumeric() || *c == b'_') =>
                {
                    i += close + 1;
                }
                _ => {
                    out.push('$');
                    i += 1;
                }
            },
            b'[' if b.get(i + 2) == Some(&b']') && b[i + 1].is_ascii_alphanumeric() => {
                out.push(char::from(b[i + 1]));
                i += 3;
            }
            b'\'' | b'"' if b.get(i + 1) == Some(&b[i]) => i += 2,
            _ => {
                let len = v[i..].chars().next().map_or(1, char::len_utf8);
                out.push_str(&v[i..i + len]);
                i += len;
            }
        }
    }
    out
}

/// `:(){ :|:& };:` and its renamings: a shell function that pipes itself into itself in the
/// background.
pub(super) fn fork_bomb(b: &[u8]) -> bool {
    memchr::memmem::find_iter(b, b"()").any(|p| {
        let mut n = p;
        while n > 0 && !b[n - 1].is_ascii_whitespace() && !matches!(b[n - 1], b';' | b'{' | b'}') {
            n -= 1;
        }
        let name = &b[n..p];
        if name.is_empty() || name.len() > 16 {
            return false;
        }
        let body: Vec<u8> = b[p + 2..b.len().min(p + 64)]
            .iter()
            .copied()
            .filter(|c| !c.is_ascii_whitespace())
            .collect();
        let mut call = name.to_vec();
        call.push(b'|');
        call.extend_from_slice(name);
        call.push(b'&');
        body.first() == Some(&b'{') && memchr::memmem::find(&body, &call).is_some()
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
    if !l.contains("if ") && !l.contains("for ") {
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
            }
            _ => {}
        }
    }
    false
}
