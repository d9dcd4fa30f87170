//! The command injection rules of paranoia levels 2 to 4: fragments a legitimate request may
//! send now and then, gated by level the way CRS gates them.
//!
//! - 2: a known command in command position with an argument (`cscli alerts list`), any known
//!   command glued to a separator (`;who`, `&aptitude`), quoted or escaped command names
//!   (`'ll' /var`, `\ls`), `at` glued to a separator with a time (`;at 2:00`), an unset
//!   variable before a command (`;$a cat x`), bash tilde expansions (`~+`, `~-2`), brace
//!   groups naming a command (`{,ip,a}`), numbered history expansions (`!1`, `!-2`), a
//!   hyphenated command name as the whole value (`chef-shell`).
//! - 3: a bare command name as the whole value (`visudo`, `'id'`), any known command after a
//!   separator or line break, the history expansion `!!`, shell metacharacter sequences
//!   (`$(`, `` `x` ``, `2>&1`, `<(`), mail protocol verbs at the start of a line.
//! - 4: any known command word in command position, and any shell metacharacter residue: a
//!   separator or redirection glued to a word, `$name`, backticks, a word broken by two quotes.

use super::commands::{paranoid_cmd, NO_OPERANDS, PREFIXES};
use super::{next_arg, shell_arg, shell_word};
use crate::policy::Paranoia;

/// The command injection rules of paranoia levels 2 to 4 (the inspector calls this only above
/// level 1; [`super::detect`] holds the level-1 rules).
pub fn paranoid(value: &str, level: Paranoia) -> bool {
    let n = level.level();
    if n < 2 || value.is_empty() {
        return false;
    }
    let head = value.get(..value.len().min(1024)).unwrap_or(value);
    let lower = head.to_ascii_lowercase();
    let l = lower.as_bytes();
    // code quoted in backticks inside a sentence is named, not substituted (level 3 still
    // reads the backticks)
    let spans = head
        .contains('`')
        .then(|| super::quoted_code_in_prose(&lower))
        .flatten();
    let plain = spans.as_deref().unwrap_or(&lower);
    if level2(plain, plain.as_bytes()) {
        return true;
    }
    if n >= 3 && level3(&lower, l) {
        return true;
    }
    n >= 4 && level4(l)
}

/// Where a command could start: the value's start and after every separator, with whether the
/// word is glued to its separator (`;who`) and whether a separator precedes it at all.
fn positions(l: &[u8]) -> impl Iterator<Item = (usize, bool, bool)> + '_ {
    let seps = l.iter().enumerate().filter_map(|(i, c)| {
        let after = match c {
            b';' | b'\n' | b'\r' | b'|' | b'&' | b'`' => i + 1,
            b'(' if i > 0 && matches!(l[i - 1], b'$' | b'<' | b'>') => i + 1,
            _ => return None,
        };
        // `&&`, `||`, `;;`: the second byte starts the word, not a new position
        if l.get(after) == Some(c) {
            return None;
        }
        // a line break is glued to the next line's first word in any text
        let glued = !matches!(c, b'\n' | b'\r')
            && l.get(after).is_some_and(|b| {
                b.is_ascii_alphanumeric() || matches!(b, b'\'' | b'"' | b'\\' | b'/')
            });
        Some((after, glued, true))
    });
    std::iter::once((0, true, false)).chain(seps)
}

/// The word at `i` after blanks and opening `{ ( !`, quote-removed, with where it ends and
/// whether it was quoted or escaped (`'ll'`, `\ls`).
fn word_at(l: &[u8], mut i: usize) -> (String, usize, usize, bool) {
    while i < l.len() && matches!(l[i], b' ' | b'\t' | b'{' | b'(' | b'!') {
        i += 1;
    }
    let (w, end) = shell_word(l, i);
    // quotes that pair up (`'ll'`, not the apostrophe of `I'd`) or a backslash
    let quotes = l[i..end]
        .iter()
        .filter(|c| matches!(c, b'\'' | b'"'))
        .count();
    let disguised = (quotes > 0 && quotes % 2 == 0) || l[i..end].contains(&b'\\');
    (w, i, end, disguised)
}

fn level2(lower: &str, l: &[u8]) -> bool {
    for (at, glued, separated) in positions(l) {
        let (word, start, end, disguised) = word_at(l, at);
        let Some(weak) = paranoid_cmd(&word) else {
            if separated && l.get(start) == Some(&b'$') {
                // `;$a cat x`: an unset variable expands to nothing and the next word runs
                let mut k = start + 1;
                while k < l.len() && (l[k].is_ascii_alphanumeric() || l[k] == b'_') {
                    k += 1;
                }
                if k > start + 1 && l.get(k) == Some(&b' ') {
                    let (next, ..) = word_at(l, k);
                    if paranoid_cmd(&next).is_some() {
                        return true;
                    }
                }
            }
            continue;
        };
        if l.get(end) == Some(&b'=') || super::label(l, start, end) || word.len() < 2 && weak {
            continue;
        }
        let arg = next_arg(l, end);
        // a separator right after the word (`AT&T`) is no argument of it
        let arg = arg.filter(|a| !matches!(a.as_str(), "&" | "|" | ";"));
        let has_arg = arg.is_some();
        let shellish = arg.as_deref().is_some_and(|a| {
            let bare: String = a.chars().filter(|c| !matches!(c, '\'' | '"')).collect();
            shell_arg(&bare, true)
        });
        // `;at 2:00 "x"`, `|at now + 1 minute`: `at` reads a time of day as its argument
        let scheduled = word == "at" && arg.as_deref().is_some_and(time_spec);
        if separated && glued && (!weak || !has_arg || shellish || scheduled) {
            // `;who`, `&aptitude`, `|more -f`: prose puts a blank after its punctuation (an
            // English word glued to one needs no argument or a shell-style one)
            return true;
        }
        // `'i'p a`: a quote inside the word, not around it
        let spliced = l[start + 1..end.saturating_sub(1).max(start + 1)]
            .iter()
            .any(|c| matches!(c, b'\'' | b'"'));
        // `"ps" is now faster`: a command name in quotation marks at the head of a sentence,
        // with no shell-style argument, is the name's mention
        let mentioned = || !shellish && !spliced && super::super::lfi::prose_sentence(lower);
        if disguised && (!weak || shellish || spliced) && !mentioned() {
            // `'ll' /var`, `\ls`, `"cscli" alerts`
            return true;
        }
        // "ls 300 lexus", "nc 8000 controller": a model number, not an argument
        let numbered = arg
            .as_deref()
            .is_some_and(|a| a.bytes().all(|c| c.is_ascii_digit()));
        let prose = numbered
            || arg.as_deref().is_some_and(prose_arg)
            || l.split(u8::is_ascii_whitespace).count() > 6;
        // `/search/id`: a path outside the directories that hold programs is a URL's, and
        // its last segment reads by its name like any word at the value's start
        let name = spoken_name(&word);
        // two-letter names ("id card holder", "ls 300") read as words at the value's start,
        // and so do languages' and products' names ("python is great")
        let wordlike = weak || (!separated && (name.len() <= 2 || ORDINARY_VALUES.contains(&name)));
        // "whoami game": a plain word is no operand of a command that takes none (an option
        // still is: `whoami --help`)
        // "env shoes", "time travel": a command that runs its operand as a command (`env`,
        // `nohup`, `time`...) runs nothing when the word after it is no command (an option or
        // anything but a plain word, such as a `VAR=value` assignment, still belongs to it)
        let operand = arg.as_deref().is_some_and(|a| {
            let option = a.len() > 1 && a.starts_with('-');
            let word = a.trim_matches(|c| matches!(c, '\'' | '"'));
            let runs = !PREFIXES.contains(&name)
                || !word.bytes().all(|c| c.is_ascii_alphabetic())
                || paranoid_cmd(word).is_some();
            option || (!NO_OPERANDS.contains(&name) && runs)
        });
        // "python (programming language)": a `(` after a command word is a shell syntax
        // error (only `name()` defines a function), so the words before it run nothing
        let group = arg
            .as_deref()
            .is_some_and(|a| a.starts_with('(') && !a.starts_with("()"));
        if shellish || (has_arg && operand && !group && !wordlike && !prose) {
            // `cscli alerts list`, `pip3 install x`, `kill -9`
            return true;
        }
    }
    tilde_expansion(lower.trim())
        || brace_group(l)
        || history_expansion(l, false)
        || hyphenated_command(lower)
}

/// The name a command word is spoken by: `/search/python` is `python`, a path whose
/// directory holds no programs; `/usr/bin/id`, `bin/id`, `./id` and `../id` stay the program
/// paths they are.
fn spoken_name(word: &str) -> &str {
    let Some((dir, name)) = word.rsplit_once('/') else {
        return word;
    };
    let programs = dir.starts_with('.') || dir.split('/').any(|d| d.ends_with("bin"));
    if programs {
        word
    } else {
        name
    }
}

/// The whole value a hyphenated command name (`chef-shell`, `ansible-console`, `ssh-keygen`,
/// `run-parts`): no word of prose is spelt like a tool's own command, while a bare name such
/// as `shutdown` or `lastlog` is also a search term or a setting (level 3).
fn hyphenated_command(lower: &str) -> bool {
    // the name below is a part of `lower` that must hold a `-`: without one anywhere, skip the
    // trimming and splitting (same verdicts)
    if !lower.as_bytes().contains(&b'-') {
        return false;
    }
    let bare = lower
        .trim()
        .trim_matches(|c| matches!(c, '\'' | '"' | ';' | '&' | '|'));
    // one word whose own name (not a directory or a list bullet before it) carries the hyphen:
    // "- debian/control" is a bullet and a path
    let name = bare.rsplit('/').next().unwrap_or(bare);
    !bare.contains(char::is_whitespace)
        && name.contains('-')
        && !ORDINARY_VALUES.contains(&bare)
        && paranoid_cmd(bare).is_some()
}

/// Command names that are also ordinary values: languages and shells, encodings and archive
/// formats, products (a skill, a file type, a setting, a tag).
const ORDINARY_VALUES: &[&str] = &[
    "php",
    "perl",
    "python",
    "python2",
    "python3",
    "ruby",
    "node",
    "bash",
    "java",
    "lua",
    "base64",
    "base32",
    "gzip",
    "bzip2",
    "zip",
    "tar",
    "zstd",
    "docker",
    "kubectl",
    "git",
    "npm",
    "pip",
    "ansible",
    "terraform",
    "helm",
    "mysql",
    "psql",
    "mongo",
    "sqlite3",
    "redis-cli",
    "openssl",
    "ssh",
    "sftp",
    "ftp",
    "telnet",
    "jq",
];

/// The first argument reads as prose: "python is great", "bash away in the gym".
fn prose_arg(a: &str) -> bool {
    const WORDS: &[&str] = &[
        "is", "are", "was", "were", "be", "the", "a", "an", "and", "or", "in", "on", "of", "to",
        "for", "with", "away", "it", "has", "have", "can", "will", "my", "your", "our", "at", "by",
        "me", "you", "we", "i", "not", "no", "so", "as", "but", "if", "from", "up", "out", "he",
        "she", "they", "them", "his", "her", "its", "than", "that", "this", "these", "those",
        "there", "here", "what", "when", "where", "how", "why", "should", "would", "could", "must",
        "may", "might", "all", "some", "any", "more", "less", "again", "then", "too",
    ];
    WORDS.contains(&a.trim_end_matches([',', '.', '!', '?']))
}

/// A time as `at` reads one: `2:00`, `14:30`, `9am`, `now`, `noon`, `midnight`, `teatime`.
fn time_spec(a: &str) -> bool {
    let a = a.trim_end_matches(['a', 'p', 'm']);
    if matches!(a, "now" | "noon" | "midnight" | "teatime" | "tomorrow") {
        return true;
    }
    let (h, m) = a.split_once(':').unwrap_or((a, "00"));
    (1..=2).contains(&h.len())
        && m.len() == 2
        && h.bytes().chain(m.bytes()).all(|c| c.is_ascii_digit())
}

/// `~+`, `~-`, `~+2`, `~-1`: bash tilde expansions (the working directories) as the whole value.
fn tilde_expansion(v: &str) -> bool {
    v.strip_prefix('~')
        .and_then(|r| r.strip_prefix(['+', '-']))
        .is_some_and(|d| d.bytes().all(|c| c.is_ascii_digit()))
}

/// `{,ip,a}`, `{top,}`: a brace group with an empty first or last element naming a command the
/// paranoid dictionary knows.
fn brace_group(l: &[u8]) -> bool {
    memchr::memchr_iter(b'{', l).any(|p| {
        let Some(len) = l[p + 1..].iter().take(64).position(|&c| c == b'}') else {
            return false;
        };
        let inner = &l[p + 1..p + 1 + len];
        if !inner.contains(&b',') || inner.iter().any(|c| matches!(c, b' ' | b'"' | b':' | b'{')) {
            return false;
        }
        let (lead, trail) = (inner.first() == Some(&b','), inner.last() == Some(&b','));
        let first = inner
            .split(|c| *c == b',')
            .find(|e| !e.is_empty())
            .unwrap_or(&[]);
        (lead || trail) && paranoid_cmd(&String::from_utf8_lossy(first)).is_some()
    })
}

fn level3(lower: &str, l: &[u8]) -> bool {
    // the whole value a command name: `visudo`, `'id'`, `"chef-shell"` (not a two-letter word
    // such as initials, nor a language's name)
    let bare = lower
        .trim()
        .trim_matches(|c| matches!(c, '\'' | '"' | ';' | '&' | '|'));
    if bare.len() >= 4 && !ORDINARY_VALUES.contains(&bare) && paranoid_cmd(bare) == Some(false) {
        return true;
    }
    let sentence = l.split(u8::is_ascii_whitespace).count() > 6;
    for (at, _, separated) in positions(l) {
        if !separated {
            continue;
        }
        let (word, _, end, _) = word_at(l, at);
        // the word must end where a shell word ends (`vol` is not read out of `voló`)
        let ends = l.get(end).is_none_or(|c| c.is_ascii());
        if word.len() < 2 || l.get(end) == Some(&b'=') || !ends {
            continue;
        }
        let Some(weak) = paranoid_cmd(&word) else {
            continue;
        };
        // `; top x`, `\nat 2:00 x`: any known command after a separator or line break; an
        // English one not in a sentence ("a hero; more than that, she ...")
        // "Date & Time", "Less & More": a lone `&` between blanks is the English "and"
        let conjunction = at >= 1
            && l[at - 1] == b'&'
            && l.get(at) == Some(&b' ')
            && (at < 2 || l[at - 2] == b' ');
        let prose = sentence || conjunction || next_arg(l, end).as_deref().is_some_and(prose_arg);
        if !weak || !prose {
            return true;
        }
    }
    history_expansion(l, true)
        || metachar_sequence(l)
        || mail_verb(l)
        || (lower.starts_with('~')
            && lower.len() > 1
            && lower[1..].bytes().all(|c| c.is_ascii_digit()))
}

/// `!!`, `!-2`, `!1`: bash history expansion, standing as a word of its own; without `bang`
/// only the numbered forms (`!1`, `!-2`: prose writes no number right after `!`), not `!!`
/// (French typography writes "Bravo !!").
fn history_expansion(l: &[u8], bang: bool) -> bool {
    memchr::memchr_iter(b'!', l).any(|p| {
        // the run's first `!` stands at a word edge ("Loved it!!!" is an exclamation)
        let edge = p == 0 || matches!(l[p - 1], b' ' | b';' | b'&' | b'|' | b'\n');
        let rest = &l[p + 1..];
        let n = match rest.first() {
            Some(b'!') if bang => 1,
            Some(b'!') => return false,
            Some(b'-') => 1 + rest[1..].iter().take_while(|c| c.is_ascii_digit()).count(),
            _ => rest.iter().take_while(|c| c.is_ascii_digit()).count(),
        };
        let digits_after_minus = rest.first() != Some(&b'-') || n > 1;
        edge && n > 0
            && digits_after_minus
            && matches!(
                rest.get(n),
                None | Some(b' ' | b';' | b'&' | b'|' | b'!' | b'\n')
            )
    })
}

/// `$(`, `` `x` ``, `<(`, `>(`, `2>&1`, `&>`, `|&`, `>/dev/`: sequences only a shell reads.
fn metachar_sequence(l: &[u8]) -> bool {
    const SEQS: &[&[u8]] = &[
        b"$(", b"<(", b">(", b">&", b"&>", b"|&", b">/dev/", b"<<<", b"$'",
    ];
    if SEQS.iter().any(|s| memchr::memmem::find(l, s).is_some()) {
        return true;
    }
    // a backtick pair around a command (`` `bla` `` is a MySQL identifier)
    let ticks: Vec<usize> = memchr::memchr_iter(b'`', l).collect();
    ticks.windows(2).any(|w| {
        let (word, ..) = word_at(l, w[0] + 1);
        w[1] > w[0] + 1 && paranoid_cmd(&word).is_some()
    })
}

/// `\r\nHELP x`, `\nRCPT TO:<a>`, `\nA1 SELECT inbox`: a mail protocol command (SMTP, POP3,
/// IMAP) at the start of an injected line.
fn mail_verb(l: &[u8]) -> bool {
    const VERBS: &[&str] = &[
        "helo",
        "ehlo",
        "mail from",
        "rcpt to",
        "data",
        "vrfy",
        "expn",
        "help",
        "quit",
        "rset",
        "noop",
        "auth",
        "starttls",
        "retr",
        "dele",
        "stat",
        "list",
        "uidl",
        "top",
        "capa",
        "user",
        "pass",
        "apop",
        "login",
        "select",
        "examine",
        "create",
        "delete",
        "rename",
        "subscribe",
        "unsubscribe",
        "append",
        "fetch",
        "store",
        "copy",
        "uid",
        "logout",
        "capability",
    ];
    memchr::memchr_iter(b'\n', l).any(|p| {
        let line = &l[p + 1..];
        let line = std::str::from_utf8(line).unwrap_or("");
        // IMAP commands carry a tag first: `a1 select`
        let untagged = match line.split_once(' ') {
            Some((tag, rest))
                if tag.len() <= 6
                    && tag.bytes().all(|c| c.is_ascii_alphanumeric())
                    && tag.bytes().any(|c| c.is_ascii_digit()) =>
            {
                rest
            }
            _ => line,
        };
        let line_words = untagged
            .split(['\r', '\n'])
            .next()
            .unwrap_or("")
            .split_whitespace()
            .count();
        VERBS.iter().any(|v| {
            untagged.starts_with(v)
                && untagged[v.len()..]
                    .bytes()
                    .next()
                    .is_none_or(|c| matches!(c, b' ' | b':' | b'\r' | b'\n'))
                // a verb and its argument, not a line of prose that opens with the same word
                && (v.contains(' ') || untagged.len() < line.len() || line_words <= 2)
        })
    })
}

/// Any shell metacharacter residue: a separator or redirection glued to a word, a `$name`
/// variable, a backtick, a word broken by two quotes (`O'keefe's` spelled the shell's way).
fn level4(l: &[u8]) -> bool {
    // any known command word in command position (`&w (x`, "mount it"), unless prose reads on
    // ("echo in the mirror", "time he came") or it is a lone English word (`test`, `file`); at
    // the start of a long sentence the first word is prose's own
    let sentence = l.split(u8::is_ascii_whitespace).count() > 6;
    let command = positions(l).any(|(at, _, separated)| {
        let (word, _, end, _) = word_at(l, at);
        if word.is_empty() || (!separated && sentence) {
            return false;
        }
        if !l.get(end).is_none_or(|c| c.is_ascii() && *c != b'=') {
            return false;
        }
        let Some(weak) = paranoid_cmd(&word) else {
            return false;
        };
        let arg = next_arg(l, end).filter(|a| !matches!(a.as_str(), "&" | "|" | ";"));
        let prose = arg
            .as_deref()
            .is_some_and(|a| prose_arg(a) || a.bytes().all(|c| c.is_ascii_digit()));
        !prose && (!weak || arg.is_some() || separated)
    });
    if command {
        return true;
    }
    let word = |c: &u8| c.is_ascii_alphanumeric() || matches!(c, b'/' | b'.' | b'-' | b'_');
    if l.contains(&b'`') {
        return true;
    }
    let glued = l.windows(2).any(|w| match w[0] {
        b';' | b'|' => word(&w[1]),
        b'>' => matches!(w[1], b'/' | b'&' | b'>'),
        b'<' => matches!(w[1], b'(' | b'<'),
        b'$' => w[1].is_ascii_alphabetic() || matches!(w[1], b'{' | b'(' | b'_'),
        _ => false,
    });
    glued
        || l.split(|c| c.is_ascii_whitespace()).any(|w| {
            // `O'keefe's`, `8"x11"`: two quotes, one of them inside the word (JSON's `"key":`
            // has its quotes at the edges)
            let inside = (1..w.len().saturating_sub(1)).any(|k| {
                matches!(w[k], b'\'' | b'"')
                    && w[k - 1].is_ascii_alphanumeric()
                    && w[k + 1].is_ascii_alphanumeric()
            });
            inside && w.iter().filter(|c| matches!(c, b'\'' | b'"')).count() >= 2
        })
}
