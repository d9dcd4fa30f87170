//! OS command injection: a shell command where the shell would start one — after a command
//! separator (`;`, `|`, `&`, `&&`, `||`, newline), inside a substitution (`` `...` ``, `$(...)`),
//! or at the start of the value with shell-style arguments — read the way the shell reads it
//! (quotes and backslashes removed, `$IFS` as a space, `/bin/x` as `x`).
//! Prose that starts with a command name ("echo in the mirror", "ls 300 lexus") passes.

use std::sync::LazyLock;

use aho_corasick::AhoCorasick;

use super::literals;

mod commands;
mod evasion;
mod paranoid;
mod shell;

use commands::{is_cmd, tool_subcommand, PREFIXES};
use evasion::{assigned_expand, bin_path_command, brace_spliced, spliced_command};
pub use paranoid::paranoid;

use shell::{
    brace_command, fork_bomb, glob_path, param_expansion_trick, shell_expand, sqlite_dot_command,
    windows_batch,
};

/// Whether `value` (already decoded) is an OS command injection.
pub fn detect(value: &str) -> bool {
    if value.contains('`') {
        if let Some(plain) = quoted_code_in_prose(value) {
            return detect(&plain);
        }
    }
    if detect_plain(value)
        || (value.contains("${") && param_expansion_trick(value))
        || fork_bomb(value.as_bytes())
        || glob_path(value)
        || (value.contains('{') && brace_command(value))
        || (value.contains(";") && sqlite_dot_command(value))
        || (bin_path_command(value) && !super::lfi::path_in_prose(value))
        || (value.contains(['\'', '"', '$', '\\', '<', '>']) && spliced_command(value))
        || (value.contains('{') && brace_spliced(value))
    {
        return true;
    }
    // what the shell makes of `c$@at`, `c${KK}url`, `/bi[n]/bash`, `c''at`
    let unquoted = shell_expand(value);
    if *unquoted != *value && (detect_plain(&unquoted) || super::lfi::detect(&unquoted)) {
        return true;
    }
    // `a=nc&&$a -nlvp 1`: the variables the value assigns, expanded where it uses them
    assigned_expand(value).is_some_and(|e| {
        let e = shell_expand(&e);
        detect_plain(&e) || super::lfi::detect(&e)
    })
}

/// "To read the changelog use `apt changelog gzip`.", "``yq`` takes YAML input", "`zcat' is
/// called `zcat'": Markdown and reStructuredText quote code between runs of backticks, GNU text
/// between a backtick and an apostrophe. When every run pairs with the next
/// run of the same length, a span opens at the start or after a blank, bracket or quote and
/// closes before the end, a blank or punctuation, and the text outside the spans is a
/// [`super::lfi::prose_sentence`], the spans are named, not substituted: the value with its
/// backticks as blanks (what the spans hold is still read, separators included).
pub(super) fn quoted_code_in_prose(value: &str) -> Option<String> {
    let b = value.as_bytes();
    let mut outside = String::with_capacity(value.len());
    let mut i = 0;
    let mut last = 0;
    while i < b.len() {
        if b[i] != b'`' {
            i += 1;
            continue;
        }
        let run = b[i..].iter().take_while(|c| **c == b'`').count();
        let open_ok = i == 0 || matches!(b[i - 1], b' ' | b'\t' | b'(' | b'[' | b'"' | b'\'');
        let body = i + run;
        if !open_ok || b.get(body).is_none_or(u8::is_ascii_whitespace) {
            return None;
        }
        // the closing run of the same length
        let close = b[body..]
            .iter()
            .position(|c| *c == b'`')
            .map_or(b.len(), |p| body + p);
        // `zcat': the quotation marks of GNU text, a backtick closed by an apostrophe
        let tex = (run == 1)
            .then(|| b[body..close].iter().position(|c| *c == b'\''))
            .flatten()
            .map(|p| body + p);
        let (close, run) = match tex {
            Some(q) => (q, 1),
            None if close < b.len()
                && b[close..].iter().take_while(|c| **c == b'`').count() == run =>
            {
                (close, run)
            }
            None => return None,
        };
        let j = close + run;
        if b[close - 1].is_ascii_whitespace()
            || b.get(j)
                .is_some_and(|c| c.is_ascii_alphanumeric() && *c != b's')
        {
            return None;
        }
        outside.push_str(&value[last..i]);
        outside.push(' ');
        last = j;
        i = j;
    }
    outside.push_str(&value[last..]);
    super::lfi::prose_sentence(&outside).then(|| value.replace('`', " "))
}

fn detect_plain(value: &str) -> bool {
    let b = value.as_bytes();
    if MARKERS.is_match(b) {
        return true;
    }
    let separators = b.iter().any(|c| {
        matches!(
            c,
            b';' | b'|' | b'&' | b'`' | b'$' | b'\n' | b'\r' | b'<' | b'>' | b'%'
        )
    });
    if !separators {
        // only the value's own first word can be a command
        let head = value
            .get(..value.len().min(512))
            .unwrap_or(value)
            .to_ascii_lowercase();
        return command_at(head.as_bytes(), 0, false) || windows_batch(&head);
    }
    let lower = value.to_ascii_lowercase();
    let l = lower.as_bytes();
    // at the start: `cat /etc/passwd`, `wget http://x/s.sh`
    if command_at(l, 0, false) || windows_batch(&lower) {
        return true;
    }
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        let (after, substitution) = match c {
            b';' | b'\n' | b'\r' => (i + 1, false),
            b'|' | b'&' => {
                let j = if b.get(i + 1) == Some(&c) {
                    i + 2
                } else {
                    i + 1
                };
                (j, false)
            }
            b'`' => (i + 1, true),
            b'$' if matches!(b.get(i + 1), Some(b'(')) => (i + 2, true),
            b'<' | b'>' if b.get(i + 1) == Some(&b'(') => (i + 2, true),
            _ => {
                i += 1;
                continue;
            }
        };
        if command_at(l, after, !substitution) {
            return true;
        }
        i = after.max(i + 1);
    }
    false
}

/// Read a shell word starting at `i` (after optional blanks) and decide whether it is a command
/// that would run. `need_args_for_weak`: English-looking commands need a shell-style argument.
fn command_at(l: &[u8], mut i: usize, need_args_for_weak: bool) -> bool {
    while i < l.len() && matches!(l[i], b' ' | b'\t' | b'{' | b'(' | b'!') {
        i += 1;
    }
    if l.get(i) == Some(&b'$') && !at_value_start(l, i) {
        // `;$u wget x`: an unset variable in command position expands to nothing and the next
        // word runs
        let mut j = i + 1;
        while j < l.len() && (l[j].is_ascii_alphanumeric() || l[j] == b'_') {
            j += 1;
        }
        if j > i + 1 && matches!(l.get(j), Some(b' ' | b'\t')) {
            let mut k = j;
            while k < l.len() && matches!(l[k], b' ' | b'\t') {
                k += 1;
            }
            let (w, _) = shell_word(l, k);
            if is_cmd(&w) == Some(false) {
                return true;
            }
        }
    }
    let (word, end) = shell_word(l, i);
    if word.is_empty() || l.get(end) == Some(&b'=') || label(l, i, end) {
        // `&id=123`: a URL parameter, not a command
        return false;
    }
    let Some(weak) = is_cmd(&word) else {
        // `&bcdboot/r x`: a Windows command with its switch glued on
        return !at_value_start(l, i)
            && word.split_once('/').is_some_and(|(head, switch)| {
                !head.is_empty()
                    && is_cmd(head) == Some(false)
                    && (1..=8).contains(&switch.len())
                    && switch.bytes().all(|c| c.is_ascii_alphabetic())
            });
    };
    let at_start = i == 0
        || l[..i]
            .iter()
            .all(|c| matches!(c, b' ' | b'\t' | b'{' | b'(' | b'!'));
    // `'-'9`: an argument is read after quote removal too
    let mut spliced_flag = false;
    let arg = next_arg(l, end).map(|a| {
        let q = a.bytes().filter(|c| matches!(c, b'\'' | b'"')).count();
        if q > 0 && q % 2 == 0 {
            let bare = a.replace(['\'', '"'], "");
            // `'-'9`: an option spelt through quotes is one only a shell reads
            spliced_flag = bare.len() > 1 && bare.starts_with('-') && !a.starts_with('-');
            bare
        } else {
            a
        }
    });
    // "Date & Time": a separator after an English-word command is no argument of it when a
    // plain word follows (the separator loop judges what comes after it); `id;`, `date;`
    // at the end and `echo | ${x}` still count
    let arg = arg.filter(|a| {
        let prose_follows = || {
            l[end..]
                .iter()
                .skip_while(|c| !matches!(c, b'&' | b'|' | b';'))
                .find(|c| !matches!(c, b'&' | b'|' | b';' | b' ' | b'\t'))
                .is_some_and(u8::is_ascii_alphanumeric)
        };
        !(weak && matches!(a.as_str(), "&" | "|" | ";" | "&&" | "||") && prose_follows())
    });
    let quotes = l[i..end]
        .iter()
        .filter(|c| matches!(c, b'\'' | b'"'))
        .count();
    let obfuscated = (quotes > 0 && quotes % 2 == 0) || l[i..end].contains(&b'\\');
    if obfuscated && !weak && word.len() > 2 {
        // `'i'fconfig`, `w\hoami`: quote removal only a shell performs
        return true;
    }
    if word == "alias"
        && std::str::from_utf8(&l[end..])
            .unwrap_or("")
            .split_whitespace()
            .take(3)
            .any(|a| a.contains('='))
    {
        // `alias e=env&e whoami`, `alias +m a=b`: a new name for a command
        return true;
    }
    if PREFIXES.contains(&word.as_str()) {
        // `nohup ifconfig`, `sudo rm`: a command that runs the next word as a command
        if let Some(a) = &arg {
            if is_cmd(a).is_some() {
                return true;
            }
        }
    }
    if at_start && word == "cd" {
        // `cd` only matters before another command: `cd /;cd etc;cat passwd`, `cd /tmp && x`
        // ("CD /DVD drive" has no second command)
        let rest = &l[end..];
        return rest
            .iter()
            .position(|c| matches!(c, b';' | b'&' | b'|' | b'\n'))
            .is_some_and(|p| rest[p + 1..].iter().any(u8::is_ascii_alphabetic));
    }
    if at_start {
        // a command at the very start of a value needs a shell-style argument (one of its
        // first few), whatever the command
        if spliced_flag
            || arg
                .as_deref()
                .is_some_and(|a| shell_arg(a, word.contains('/')))
        {
            return true;
        }
        if arg.is_some() && tool_subcommand(&word) {
            // `ansible-playbook site.yml`, `chef-client -z`: a tool family's own command line
            return true;
        }
        let later = std::str::from_utf8(&l[end..]).unwrap_or("");
        return !weak
            && later.split_whitespace().take(4).any(|a| {
                a.len() > 1 && a.starts_with('-') && a.as_bytes()[1].is_ascii_alphabetic()
            });
    }
    if need_args_for_weak && sentence_after_semicolon(l, i) {
        return false;
    }
    if !weak || !need_args_for_weak {
        return true;
    }
    spliced_flag || arg.is_some_and(|a| shell_arg(&a, true))
}

/// `ps: document the -o option`, `* top: fix -b`: a line's first word (after blanks and a
/// list bullet) followed by `:` and a blank is the label of a changelog or log line; the shell
/// would look for a program named `ps:`.
fn label(l: &[u8], start: usize, end: usize) -> bool {
    l[..start]
        .iter()
        .all(|c| matches!(c, b' ' | b'\t' | b'*' | b'-'))
        && l.get(end) == Some(&b':')
        && l.get(end + 1).is_some_and(u8::is_ascii_whitespace)
}

/// "the variable is obsolescent; gzip now warns if it is set": after a semicolon and a blank,
/// the way prose joins two clauses, a command word whose words up to the end make a
/// [`super::lfi::prose_sentence`] with no option, path, digit or quote among them: whatever
/// such a command line runs, it runs with English words as its only arguments.
fn sentence_after_semicolon(l: &[u8], i: usize) -> bool {
    let before = &l[..i];
    let trimmed = before.trim_ascii_end();
    if trimmed.len() == before.len() || !trimmed.ends_with(b";") {
        return false;
    }
    let Ok(rest) = std::str::from_utf8(&l[i..]) else {
        return false;
    };
    rest.split_ascii_whitespace().all(|t| {
        !t.starts_with('-')
            && !t.contains(['/', '\\', '\'', '"', '`', '~', '*', '?', '['])
            && !t.bytes().any(|c| c.is_ascii_digit())
    }) && super::lfi::prose_sentence(rest)
}

fn at_value_start(l: &[u8], i: usize) -> bool {
    l[..i]
        .iter()
        .all(|c| matches!(c, b' ' | b'\t' | b'{' | b'(' | b'!'))
}

/// Constructs only a command line has.
static MARKERS: LazyLock<AhoCorasick> = LazyLock::new(|| {
    literals(&[
        "$ifs",
        "${ifs",
        "/dev/tcp/",
        "/dev/udp/",
        "%comspec%",
        "%errorlevel%",
        "errorlevel ",
        "for /f ",
        "\"delims=",
        "cmd /c",
        "cmd.exe /c",
        "powershell -",
        "-encodedcommand",
        "invoke-expression",
        "iex(",
        "/bin/sh -c",
        "/bin/bash -c",
        "$shell -c",
        "$((",
        "$[",
        "${shell} -c",
        "$bash -c",
    ])
});

/// Whether `word` names a shell command CNAF knows.
pub fn is_command_word(word: &str) -> bool {
    is_cmd(word).is_some()
}

/// One shell word with quote removal: `c'a't` → `cat`, `\l\s` → `ls`.
fn shell_word(l: &[u8], start: usize) -> (String, usize) {
    // at most one char per byte left and at most 64 (the loop stops there): room for the
    // whole word at once instead of growing it byte by byte (same word)
    let mut w = String::with_capacity(l.len().saturating_sub(start).min(64));
    let mut i = start;
    while i < l.len() && w.len() < 64 {
        match l[i] {
            b'\'' | b'"' | b'\\' => {}
            c if c.is_ascii_alphanumeric() || matches!(c, b'/' | b'.' | b'_' | b'-') => {
                w.push(char::from(c));
            }
            _ => break,
        }
        i += 1;
    }
    (w, i)
}

/// The next argument after a command (skipping blanks and `$IFS`-style separators).
fn next_arg(l: &[u8], mut i: usize) -> Option<String> {
    if i >= l.len() || !matches!(l[i], b' ' | b'\t' | b'+' | b'<' | b'>' | b'|' | b';' | b'&') {
        return None;
    }
    // an argument ends at any blank, a line end included (`code=time ifconfig\n`)
    if matches!(l[i], b'<' | b'>') {
        // a redirection needs a target: `date>=2024-01-01` (an API filter's `field>=value`)
        // and a `date>` with nothing after it redirect nothing
        let mut j = i;
        while j < l.len() && matches!(l[j], b'<' | b'>' | b'&' | b'|') {
            j += 1;
        }
        return matches!(l.get(j), Some(c) if *c != b'=').then(|| char::from(l[i]).to_string());
    }
    if matches!(l[i], b'|' | b';' | b'&') {
        return Some(char::from(l[i]).to_string());
    }
    while i < l.len() && matches!(l[i], b' ' | b'\t' | b'+') {
        i += 1;
    }
    let start = i;
    while i < l.len() && !l[i].is_ascii_whitespace() && i - start < 128 {
        i += 1;
    }
    (i > start).then(|| String::from_utf8_lossy(&l[start..i]).into_owned())
}

/// An argument only a shell command line has: a path, a flag, a URL, a redirection, a variable,
/// an IP address, a Windows switch.
fn shell_arg(a: &str, loose: bool) -> bool {
    let b = a.as_bytes();
    let Some(&first) = b.first() else {
        return false;
    };
    match first {
        b'/' | b'~' | b'$' | b'>' | b'<' | b'|' | b'&' | b';' | b'`' | b'\\' => true,
        b'-' => {
            b.len() > 1
                && (b[1].is_ascii_alphabetic()
                    || (b[1] == b'-' && b.get(2).is_some_and(u8::is_ascii_alphabetic)))
        }
        b'.' => b.get(1) == Some(&b'/') || b.get(1) == Some(&b'.'),
        _ => {
            a.contains("://")
                || a.contains("/etc/")
                || (loose && a.contains('/') && !a.contains(' '))
                || is_ipv4ish(a)
                || (loose && a.contains('\'') && a.len() > 2)
        }
    }
}

fn is_ipv4ish(a: &str) -> bool {
    let parts: Vec<&str> = a.split('.').collect();
    parts.len() == 4
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.len() <= 3 && p.bytes().all(|c| c.is_ascii_digit()))
}

#[cfg(test)]
mod tests;
