//! The code injection rules of paranoia levels 2 to 4 (PHP fragments a legitimate request may
//! send now and then), gated by level the way CRS gates them.
//!
//! - 2: a dangerous PHP function called, also with blanks or comments before `(` (`exec  (x)`,
//!   `fopen/**/(x)`), a dangerous function named without a call (`shell_exec`), a whole-value
//!   php.ini assignment of a core directive with an ordinary name (`engine=true`), an ORM
//!   oracle lookup key (`username__startswith`), a PHP function of the runtime's dictionary
//!   called the way only code calls it (`strrev( )`, `is_array()`, `array_diff (` left open,
//!   `filegroup  (x)`).
//! - 3: any PHP function of the runtime's dictionary called (`unpack($x)`, an extension
//!   function such as `pg_query(x)`, English-word names such as `crypt(x)`), a superglobal
//!   spelt with blanks (`$_S ERVER[`), `${name}` variable-variables, a value ending in an open
//!   tag (`x<?`).
//! - 4: PHP syntax residue: `$name[`, `$name->`, `Class::`, `<?` anywhere, a parenthesised
//!   expression called with a value (`(x)(@y)`).

use super::php::CALLS;
use super::php_names::{DANGEROUS_NAMES, EXTENSION_PREFIXES, FUNCTIONS, WORD_FUNCTIONS};
use crate::policy::Paranoia;

/// The code injection rules of paranoia levels 2 to 4 (the inspector calls this only above
/// level 1; [`super::detect`] holds the level-1 rules).
pub fn paranoid(value: &str, level: Paranoia) -> bool {
    let n = level.level();
    if n < 2 || value.is_empty() {
        return false;
    }
    let b = value.as_bytes();
    let b = &b[..b.len().min(2048)];
    // functions named in a sentence (`readdir()`) are mentions at level 2 (level 3 still
    // reads the calls)
    let plain = super::mentions_in_prose(value);
    let v2 = plain.as_deref().unwrap_or(value);
    let b2 = if plain.is_some() { v2.as_bytes() } else { b };
    if level2(v2, b2) {
        return true;
    }
    if n >= 3 && level3(b) {
        return true;
    }
    n >= 4 && level4(b)
}

/// What stands between a name and its `(`.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Gap {
    /// `name(`
    None,
    /// `name (`: how prose puts a parenthesis after a word
    Blank,
    /// `name  (`, `name\t(`, `name/**/(`, `name\n(`: only code (or a filter bypass) does this
    Tricky,
}

/// Whether the name ending at `e` is called: the next byte after blanks and comments is `(`.
fn called_at(b: &[u8], e: usize) -> Option<Gap> {
    let mut k = e;
    let mut commented = false;
    loop {
        while k < b.len() && b[k].is_ascii_whitespace() {
            k += 1;
        }
        if b.get(k) == Some(&b'/') && b.get(k + 1) == Some(&b'*') {
            k = finder!(b"*/").find(&b[k..]).map_or(b.len(), |p| k + p + 2);
            commented = true;
            continue;
        }
        break;
    }
    if b.get(k) != Some(&b'(') {
        return None;
    }
    Some(match k - e {
        0 => Gap::None,
        1 if !commented && b[e] == b' ' => Gap::Blank,
        _ => Gap::Tricky,
    })
}

/// Every identifier in `b` (ASCII letters, digits, `_`) with where it starts and ends.
fn identifiers(b: &[u8]) -> impl Iterator<Item = (usize, usize)> + '_ {
    let ident = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
    let mut i = 0;
    std::iter::from_fn(move || {
        while i < b.len() {
            if (b[i].is_ascii_alphabetic() || b[i] == b'_') && (i == 0 || !ident(b[i - 1])) {
                let s = i;
                while i < b.len() && ident(b[i]) && i - s < 64 {
                    i += 1;
                }
                return Some((s, i));
            }
            i += 1;
        }
        None
    })
}

fn level2(value: &str, b: &[u8]) -> bool {
    if b.contains(&b'(') {
        for (s, e) in identifiers(b) {
            let Some(gap) = called_at(b, e) else {
                continue;
            };
            let name = String::from_utf8_lossy(&b[s..e]).to_ascii_lowercase();
            let dangerous = CALLS
                .find(name.as_bytes())
                .is_some_and(|m| m.start() == 0 && m.end() == name.len());
            // an argument list that goes on (`eval(` alone at the end is no call)
            let goes_on = b[e..].iter().skip_while(|c| **c != b'(').nth(1).is_some();
            // `exec  (x)`, `fopen/**/(x)`: blanks or comments before the parenthesis; a single
            // blank only after a name prose never writes (`shell_exec (`) or before code
            let spelled = match gap {
                Gap::None | Gap::Tricky => true,
                Gap::Blank => {
                    // `system ("id")`, `exec ($c)`: a string or a variable as the argument
                    let arg = b[e..].iter().skip_while(|c| **c != b'(').nth(1);
                    name.contains('_') || matches!(arg, Some(b'\'' | b'"' | b'$'))
                }
            };
            if dangerous && goes_on && spelled {
                return true;
            }
        }
    }
    DANGEROUS_NAMES.find_iter(b).any(|m| {
        let edge = |c: Option<&u8>| !c.is_some_and(|c| c.is_ascii_alphanumeric() || *c == b'_');
        edge(m.start().checked_sub(1).map(|k| &b[k])) && edge(b.get(m.end()))
    }) || php_function_call(b, CallShape::CodeOnly)
        || super::php_ini::core_ini_assignment(value)
        || super::orm::any_lookup(value)
}

/// How a call must look for [`php_function_call`] to count it.
#[derive(Clone, Copy, PartialEq, Eq)]
enum CallShape {
    /// Level 2: a call only code writes — empty parentheses (`strrev( )`, `is_array()`: prose
    /// puts words inside parentheses), a snake_case name's parenthesis left open at the end
    /// (`array_diff (`), or a gap only code or a filter bypass leaves before the parenthesis
    /// (`filegroup  (x)`, `file_exists/**/(`).
    CodeOnly,
    /// Level 3: any call, names spelt like English words included (`crypt(x)`, `date()`).
    Any,
}

/// A PHP function of the runtime's dictionary called: `strrev( )`, `unpack($x)`, an extension
/// function (`pg_query(`, `sodium_crypto_box(`), and at [`CallShape::Any`] a function named
/// like an English word (`crypt(x)`, `date()`).
fn php_function_call(b: &[u8], shape: CallShape) -> bool {
    b.contains(&b'(')
        && identifiers(b).any(|(s, e)| {
            let Some(gap) = called_at(b, e) else {
                return false;
            };
            let name = String::from_utf8_lossy(&b[s..e]).to_ascii_lowercase();
            let known = FUNCTIONS.contains(&name.as_str())
                || ((name.contains('_') || name.len() > 6)
                    && EXTENSION_PREFIXES
                        .iter()
                        .any(|p| name.starts_with(p) && name.len() > p.len() + 2));
            if shape == CallShape::CodeOnly {
                let open = b[e..]
                    .iter()
                    .position(|c| *c == b'(')
                    .map_or(b.len(), |p| e + p);
                let inside = b.get(open + 1..).unwrap_or_default();
                let next = inside.iter().find(|c| !c.is_ascii_whitespace());
                // a snake_case name is never prose: its parenthesis may also be left open at
                // the end of the value (`pg_query (`), after one blank too
                let snake = name.contains('_');
                let empty = next == Some(&b')') || (snake && next.is_none());
                return known && (gap == Gap::Tricky || (empty && (gap == Gap::None || snake)));
            }
            let word = WORD_FUNCTIONS.contains(&name.as_str())
                || CALLS
                    .find(name.as_bytes())
                    .is_some_and(|m| m.start() == 0 && m.end() == name.len());
            (known && (gap != Gap::Blank || name.contains('_'))) || (word && gap != Gap::Blank)
        })
}

/// `$_S ERVER['x']`, `$_ GET[0]`: a superglobal whose name is broken by blanks.
fn spaced_superglobal(b: &[u8]) -> bool {
    const NAMES: &[&[u8]] = &[
        b"server", b"get", b"post", b"request", b"cookie", b"files", b"env", b"session",
    ];
    finder!(b"$_").find_iter(b).any(|p| {
        let rest = &b[p + 2..b.len().min(p + 40)];
        let end = rest.iter().position(|c| *c == b'[').unwrap_or(rest.len());
        let letters: Vec<u8> = rest[..end]
            .iter()
            .filter(|c| !c.is_ascii_whitespace())
            .map(u8::to_ascii_lowercase)
            .collect();
        end < rest.len()
            && rest[..end].iter().any(u8::is_ascii_whitespace)
            && NAMES.iter().any(|n| letters == *n)
    })
}

fn level3(b: &[u8]) -> bool {
    // `${name}`, a value ending in `<?`
    php_function_call(b, CallShape::Any)
        || spaced_superglobal(b)
        || finder!(b"${").find_iter(b).any(|p| {
            let rest = &b[p + 2..];
            let n = rest
                .iter()
                .take_while(|c| c.is_ascii_alphanumeric() || **c == b'_')
                .count();
            n > 0 && rest.get(n) == Some(&b'}')
        })
        || b.trim_ascii_end().ends_with(b"<?")
}

/// PHP syntax residue: `$name[`, `$name->`, `Name::x`, `<?`.
fn level4(b: &[u8]) -> bool {
    // `(sy.(st).em)(@id)`: a parenthesised expression called with a value
    let called_group = finder!(b")(")
        .find_iter(b)
        .any(|p| matches!(b.get(p + 2), Some(b'@' | b'$' | b'\'' | b'"')));
    if called_group {
        return true;
    }
    if finder!(b"<?").find(b).is_some() || finder!(b"->").find(b).is_some() {
        return true;
    }
    let scoped = finder!(b"::").find_iter(b).any(|p| {
        p > 0
            && b[p - 1].is_ascii_alphanumeric()
            && b.get(p + 2)
                .is_some_and(|c| c.is_ascii_alphabetic() || *c == b'$')
    });
    scoped
        || memchr::memchr_iter(b'$', b).any(|p| {
            let rest = &b[p + 1..];
            let n = rest
                .iter()
                .take_while(|c| c.is_ascii_alphanumeric() || **c == b'_')
                .count();
            n > 0
                && (rest[0].is_ascii_alphabetic() || rest[0] == b'_')
                && matches!(rest.get(n), Some(b'[' | b'(' | b'=' | b';'))
        })
}
