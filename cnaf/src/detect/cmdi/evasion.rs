//! Spellings of a command only the shell reads back into its name: variables assigned and
//! then expanded, words broken by quotes or expansions, brace groups glued inside a word, and
//! commands named by their path in a system binary directory.

use super::commands::{is_cmd, paranoid_cmd};
use super::shell::shell_expand;

/// `a=nc&&$a -nlvp 1`, `c1=c;c2=at;$c1$c2 /etc/passwd`: the value with every variable it assigns
/// (`name=word` as a statement of its own) expanded where it is used, or `None` when it assigns
/// nothing it later uses.
pub(super) fn assigned_expand(v: &str) -> Option<String> {
    if !v.contains('=') || !v.contains('$') || v.len() > 2048 {
        return None;
    }
    let mut vars: Vec<(&str, String)> = Vec::new();
    for stmt in v.split([';', '\n', '&', '|']) {
        let stmt = stmt.trim_start();
        let Some((name, value)) = stmt.split_once('=') else {
            continue;
        };
        let ident = name
            .bytes()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == b'_')
            && name.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'_');
        if !ident || value.len() > 64 {
            continue;
        }
        // the word the shell assigns: quotes removed, `\ ` an escaped blank
        let escaped_blank = value.starts_with("\\ ");
        let value = value.trim_end();
        if value.contains(char::is_whitespace) {
            continue;
        }
        let word: String = value
            .chars()
            .filter(|c| !matches!(c, '\'' | '"' | '\\'))
            .collect();
        vars.push((name, if escaped_blank { " ".into() } else { word }));
    }
    if vars.is_empty() {
        return None;
    }
    // longest names first, so `$c12` is not read as `$c1` followed by `2`
    vars.sort_by_key(|(n, _)| std::cmp::Reverse(n.len()));
    let mut out = v.to_string();
    let mut used = false;
    for (name, word) in &vars {
        for form in [format!("${{{name}}}"), format!("${name}")] {
            if out.contains(&form) {
                out = out.replace(&form, word);
                used = true;
            }
        }
    }
    used.then_some(out)
}

/// `cu$@rl`, `'i'p a`, `c''at`, `w\hoami`: a word in command position (first of the value or
/// of a statement) whose spelling is broken inside by quotes, an expansion or a backslash and
/// that the shell reads back as a command name. Prose has no such words.
pub(super) fn spliced_command(v: &str) -> bool {
    v.split([';', '\n', '&', '|', '`'])
        .filter_map(|stmt| stmt.split_whitespace().next())
        .any(|word| {
            let b = word.as_bytes();
            if b.len() > 64
                || !b
                    .iter()
                    .any(|c| matches!(c, b'\'' | b'"' | b'$' | b'\\' | b'<' | b'>'))
            {
                return false;
            }
            // quotes must pair up (`l's` is a plural, not a spliced `ls`)
            let paired = |q: u8| b.iter().filter(|c| **c == q).count() % 2 == 0;
            if !paired(b'\'') || !paired(b'"') {
                return false;
            }
            // a break with letters on both sides: `'i'p`, `cu$@rl` (not `'ls'`)
            let inside = (1..b.len()).any(|k| {
                matches!(b[k], b'\'' | b'"' | b'$' | b'\\' | b'<' | b'>')
                    && b[..k].iter().any(u8::is_ascii_alphanumeric)
                    && b[k + 1..].iter().any(u8::is_ascii_alphanumeric)
            });
            if !inside {
                return false;
            }
            let read: String = shell_expand(word)
                .chars()
                .filter(|c| !matches!(c, '\'' | '"' | '\\'))
                .collect::<String>()
                .to_ascii_lowercase();
            read.len() >= 2
                && read
                    .bytes()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.' | b'/'))
                && is_cmd(&read).is_some()
        })
}

/// `c{a,oun}t`, `{l,-lh}s`: a brace group glued inside a word; bash expands it into one word per
/// element, and the first of them is a command name.
pub(super) fn brace_spliced(v: &str) -> bool {
    let b = v.as_bytes();
    memchr::memchr_iter(b'{', b).any(|p| {
        let Some(len) = b[p + 1..].iter().take(64).position(|&c| c == b'}') else {
            return false;
        };
        let inner = &v[p + 1..p + 1 + len];
        if !inner.contains(',')
            || !inner
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, b',' | b'-' | b'_' | b'.' | b'/'))
        {
            return false;
        }
        let edge = |c: &u8| !(c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.' | b'/'));
        let start = b[..p].iter().rposition(edge).map_or(0, |k| k + 1);
        let end = b[p + len + 2..]
            .iter()
            .position(edge)
            .map_or(b.len(), |k| p + len + 2 + k);
        let (prefix, suffix) = (&v[start..p], &v[p + len + 2..end]);
        if prefix.is_empty() && suffix.is_empty() {
            return false;
        }
        let first = inner.split(',').next().unwrap_or("");
        let word = format!("{prefix}{first}{suffix}").to_ascii_lowercase();
        word.len() >= 2 && is_cmd(&word).is_some()
    })
}

/// `/bin/ab`, `/usr/sbin/visudo`, `bin/ansible`: a command named by its path in a system binary
/// directory, the way a payload spells what to run.
pub(super) fn bin_path_command(v: &str) -> bool {
    const DIRS: &[&str] = &[
        "/usr/local/sbin/",
        "/usr/local/bin/",
        "/usr/sbin/",
        "/usr/bin/",
        "/sbin/",
        "/bin/",
        "bin/",
    ];
    // "/usr/bin/python is old": a sentence about the program, not a command line
    const PROSE: &[&str] = &[
        "is", "was", "are", "has", "and", "or", "not", "in", "on", "the",
    ];
    if !v.contains("bin/") {
        return false;
    }
    let sep = |c: char| {
        c.is_whitespace() || matches!(c, ';' | '|' | '&' | '`' | '=' | '(' | ')' | '\'' | '"')
    };
    let words: Vec<&str> = v.split(sep).filter(|w| !w.is_empty()).collect();
    words.iter().enumerate().any(|(k, w)| {
        let lower = w.to_ascii_lowercase();
        let named = DIRS.iter().any(|d| {
            lower
                .strip_prefix(d)
                .is_some_and(|name| !name.contains('/') && paranoid_cmd(name).is_some())
        });
        named
            && !words
                .get(k + 1)
                .is_some_and(|n| PROSE.contains(&n.to_ascii_lowercase().as_str()))
            && !named_last(v, &words, k)
    })
}

/// "Port the scripts to Solaris 10's /bin/sh.": the program path is the value's last word
/// (punctuation aside), after a plain word or a number that is no command and no option, and
/// the value has no shell syntax: the sentence names the program, nothing runs it.
fn named_last(v: &str, words: &[&str], k: usize) -> bool {
    let last = k + 1 == words.len()
        || words[k + 1..]
            .iter()
            .all(|w| w.bytes().all(|c| c.is_ascii_punctuation()));
    let prev_plain = k > 0
        && words[k - 1]
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'\'')
        && is_cmd(&words[k - 1].to_ascii_lowercase()).is_none();
    last && prev_plain && !v.contains(['\n', '\r', ';', '|', '&', '`', '$', '<', '>', '='])
}
