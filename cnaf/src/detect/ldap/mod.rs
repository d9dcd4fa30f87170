//! LDAP filter injection: a value that, pasted into an RFC 4515 search filter such as
//! `(uid=` + value + `)`, changes the filter's structure.
//!
//! The value is read left to right as filter syntax, keeping the balance of its parentheses:
//! from each `(` a small recursive-descent parser tries a filter (`(&…)`, `(|…)`, `(!…)`, or an
//! item `attr=value`, `attr~=`, `attr>=`, `attr<=`, `attr=*`, `attr:dn:rule:=value`). A value
//! that is itself one or more complete filters is what a directory tool legitimately sends
//! (`(&(objectCategory=computer)(cn=web*))`); an injection is a value that works on the filter
//! it is pasted into:
//!
//! - it closes a parenthesis it did not open and starts filter syntax: another filter
//!   (`*)(uid=*`, `x)(cn>=a`), an operator (`x)(|`, `*)(&`, `x)!(sn=*`, `) ( & `), or a NUL
//!   that truncates the rest (`admin)\0`);
//! - it applies an operator right after value characters (`*(|(objectclass=*))`, `x(&(a=b)`)
//!   or leaves an operator filter open for the template to close (`(|(uid=*)(cn=a`);
//! - its operator filter holds constant items, the LDAP `1=1`: an item on a bare number, which
//!   is no attribute (`(!(&(1=0)(…)))`), or the absolute `(&)` / `(|)`;
//! - it is a bare extensible-match assertion with a matching rule (`userPassword:2.5.13.18:=x`,
//!   `cn:dn:=Sales`, `sn:caseExactMatch:=Smith`), written for a template's item position.
//!
//! Prose and maths with parentheses and `=` (`(see above)`, `(a+b)*(c)`, `x=(1)`, `(n=42)`,
//! `f(x)(y=2)`, `1) a-b=c`, `:-)`, markdown links) do not have these shapes.

use crate::policy::Paranoia;

/// Deepest filter nesting parsed (real filters stay far below).
const MAX_DEPTH: usize = 32;

/// The shape of a filter parsed from a `(`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    /// `(&`, `(|` or `(!` followed by at least one filter.
    Operator,
    /// `(&)` / `(|)` (absolute true / false), or `(&` / `(|` / `(!` at the end of the value.
    BareOperator,
    /// `(attr=*)`: every entry that has the attribute.
    Present,
    /// `(attr=value)`, `(attr~=value)`, `(attr>=value)`, `(attr<=value)`, substrings.
    Simple,
    /// `(attr:dn:rule:=value)`.
    Extensible,
}

/// A filter parsed from a `(`.
#[derive(Debug, Clone, Copy)]
struct Filter {
    shape: Shape,
    /// Index after the filter's `)`, or the end of the value when it is left open.
    end: usize,
    /// Whether it (and every filter in it) ends with its own `)`.
    closed: bool,
    /// Whether it is or holds a constant item: a bare-number attribute, `(&)`, `(|)`.
    constant: bool,
    /// Whether it is or holds an item with a wildcard (`=*`, `=a*`).
    wildcard: bool,
    /// For items: whether the attribute is a common directory attribute (`uid`, `cn`, ...).
    known_attr: bool,
}

/// Whether `value` (already decoded) injects LDAP filter syntax.
pub fn detect(value: &str) -> bool {
    let b = value.as_bytes();
    if !b.contains(&b'(') && !b.contains(&b')') {
        return b.contains(&b':') && extensible_assertion(b, false);
    }
    walk(b, |event| match event {
        Event::BreakOut { at } => after_break_out(b, at),
        Event::Filter {
            start,
            filter: f,
            right_after_break_out,
        } => {
            let after_value = start > 0 && value_char(b[start - 1]);
            match f.shape {
                _ if right_after_break_out => true,
                Shape::Operator => after_value || !f.closed || f.constant,
                Shape::Present => after_value && b[start - 1] == b'*',
                Shape::BareOperator | Shape::Simple | Shape::Extensible => false,
            }
        }
    })
}

/// What a left-to-right reading of a value meets.
#[derive(Debug, Clone, Copy)]
enum Event {
    /// A `)` that closed a parenthesis the value did not open; `at` is the index after it.
    BreakOut { at: usize },
    /// A filter parsed from the `(` at `start` (outside any filter parsed before it).
    Filter {
        start: usize,
        filter: Filter,
        right_after_break_out: bool,
    },
}

/// Reads `b` left to right, keeping its parenthesis balance, and hands every break-out and
/// every outermost filter to `judge`; true as soon as `judge` says so. A filter's interior is
/// not visited again, and a filter left open ends the reading.
fn walk(b: &[u8], mut judge: impl FnMut(Event) -> bool) -> bool {
    let mut depth = 0isize;
    let mut broke_out_at: Option<usize> = None;
    let mut i = 0;
    // from one parenthesis to the next: nothing else changes the reading
    while let Some(at) = memchr::memchr2(b'(', b')', &b[i..]) {
        i += at;
        if b[i] == b')' {
            depth -= 1;
            if depth < 0 {
                broke_out_at = Some(i + 1);
                if judge(Event::BreakOut { at: i + 1 }) {
                    return true;
                }
            }
            i += 1;
            continue;
        }
        let Some(f) = filter(b, i, 0) else {
            depth += 1;
            i += 1;
            continue;
        };
        let event = Event::Filter {
            start: i,
            filter: f,
            right_after_break_out: broke_out_at == Some(i),
        };
        if judge(event) {
            return true;
        }
        if !f.closed {
            return false;
        }
        i = f.end;
    }
    false
}

/// After a `)` that broke out at `i`: another operator filter (after white space, as evasions
/// send it), an operator written before its `(` (`)!(`, `)&(`), or a NUL.
fn after_break_out(b: &[u8], i: usize) -> bool {
    match b.get(i) {
        Some(0) => true,
        // the operator's operand must parse: `)|(?:` in a regex is no filter
        Some(b'&' | b'|' | b'!') => b.get(i + 1) == Some(&b'(') && filter(b, i + 1, 0).is_some(),
        Some(c) if c.is_ascii_whitespace() => {
            let j = skip_spaces(b, i);
            b.get(j) == Some(&b'(')
                && filter(b, j, 0)
                    .is_some_and(|f| matches!(f.shape, Shape::Operator | Shape::BareOperator))
        }
        _ => false,
    }
}

/// A character of an assertion value, as opposed to filter syntax or white space.
fn value_char(c: u8) -> bool {
    !c.is_ascii_whitespace() && !matches!(c, b'(' | b')' | b'&' | b'|' | b'!' | b'"' | b'\'')
}

/// The rules of paranoia levels 2 to 4, over the outermost filters of the value: level 2 adds
/// a complete operator filter with a wildcard item (`(|(uid=*)(cn=a*))`), a standalone item on
/// a common directory attribute (`(uid=admin)`), a wildcard-only match (`(objectClass=*)`),
/// absolute filters `(&)` / `(|)`, a bare extensible match with any rule name (`cn:myRule:=x`)
/// and a wildcard closing the filter (`admin*)`); level 3 any complete filter (`(n=42)`,
/// `(&(a=b)(c=d))`, `(cn:dn:2.5.13.5:=x)`); level 4 any `)(` and any item left open (`(cn=`).
pub fn paranoid(value: &str, level: Paranoia) -> bool {
    let l = level.level();
    if l < 2 {
        return false;
    }
    let b = value.as_bytes();
    if !b.contains(&b'(') && b.contains(&b':') && extensible_assertion(b, true) {
        return true;
    }
    if l >= 4 && memchr::memmem::find(b, b")(").is_some() {
        return true;
    }
    walk(b, |event| match event {
        // a wildcard right before a `)` the value did not open, closing the filter there
        Event::BreakOut { at } => {
            at >= 2 && b[at - 2] == b'*' && matches!(b.get(at), None | Some(b')' | 0))
        }
        Event::Filter { filter: f, .. } => match f.shape {
            _ if !f.closed => l >= 4,
            Shape::Operator => f.wildcard || l >= 3,
            Shape::BareOperator | Shape::Present => true,
            Shape::Simple => f.known_attr || l >= 3,
            Shape::Extensible => l >= 3,
        },
    })
}

fn skip_spaces(b: &[u8], mut i: usize) -> usize {
    while b.get(i).is_some_and(u8::is_ascii_whitespace) {
        i += 1;
    }
    i
}

/// Parses a filter from the `(` at `start`: an operator filter whole (every operand), or an
/// item.
fn filter(b: &[u8], start: usize, depth: usize) -> Option<Filter> {
    if depth > MAX_DEPTH {
        return None;
    }
    let i = skip_spaces(b, start + 1);
    let op = *b.get(i)?;
    if !matches!(op, b'&' | b'|' | b'!') {
        return item(b, i);
    }
    let mut j = skip_spaces(b, i + 1);
    let mut operands = 0;
    let mut constant = false;
    let mut wildcard = false;
    loop {
        match b.get(j) {
            None => {
                // left open at the end of the value
                return Some(Filter {
                    shape: if operands == 0 {
                        Shape::BareOperator
                    } else {
                        Shape::Operator
                    },
                    end: j,
                    closed: false,
                    constant,
                    wildcard,
                    known_attr: false,
                });
            }
            Some(b')') if operands > 0 || op != b'!' => {
                return Some(Filter {
                    shape: if operands == 0 {
                        Shape::BareOperator
                    } else {
                        Shape::Operator
                    },
                    end: j + 1,
                    closed: true,
                    constant: constant || operands == 0,
                    wildcard,
                    known_attr: false,
                });
            }
            Some(b'(') => {
                let sub = filter(b, j, depth + 1)?;
                operands += 1;
                constant |= sub.constant;
                wildcard |= sub.wildcard;
                if !sub.closed {
                    return Some(Filter {
                        shape: Shape::Operator,
                        end: sub.end,
                        closed: false,
                        constant,
                        wildcard,
                        known_attr: false,
                    });
                }
                j = skip_spaces(b, sub.end);
            }
            _ => return None,
        }
    }
}

/// An item (`attr=value`, `attr~=value`, `attr:dn:rule:=value`, ...) from `i` up to its `)`.
fn item(b: &[u8], i: usize) -> Option<Filter> {
    let attr_end = attribute(b, i);
    let attr = &b[i..attr_end];
    let mut j = attr_end;
    let shape = match *b.get(j)? {
        b'=' => {
            j += 1;
            Shape::Simple
        }
        b'~' | b'>' | b'<' if b.get(j + 1) == Some(&b'=') && !attr.is_empty() => {
            j += 2;
            Shape::Simple
        }
        b':' => {
            j = extensible_tail(b, j, !attr.is_empty())?;
            Shape::Extensible
        }
        _ => return None,
    };
    if attr.is_empty() && shape != Shape::Extensible {
        return None;
    }
    let value_start = j;
    while let Some(&c) = b.get(j) {
        match c {
            b')' => break,
            // an unescaped `(` is not part of a value; NUL ends a C string
            b'(' => return None,
            0 => break,
            _ => j += 1,
        }
    }
    let value = &b[value_start..j];
    let closed = b.get(j) == Some(&b')');
    let shape = if shape == Shape::Simple && value == b"*" {
        Shape::Present
    } else {
        shape
    };
    Some(Filter {
        shape,
        end: if closed { j + 1 } else { j },
        closed,
        // a bare number (`1=0`) is no attribute description: numeric OIDs have two arcs
        constant: !attr.is_empty() && attr.iter().all(u8::is_ascii_digit),
        wildcard: value.contains(&b'*'),
        known_attr: known_attribute(attr),
    })
}

/// End of an attribute description at `i`: a name (`uid`, `x-attr`) or a numeric OID (`2.5.4.3`,
/// and a bare number, which servers reject but attackers send), with `;options`. `i` when none.
fn attribute(b: &[u8], i: usize) -> usize {
    let mut j = i;
    match b.get(i) {
        Some(c) if c.is_ascii_alphabetic() => {
            while b
                .get(j)
                .is_some_and(|c| c.is_ascii_alphanumeric() || *c == b'-')
            {
                j += 1;
            }
        }
        Some(c) if c.is_ascii_digit() => {
            while b.get(j).is_some_and(|c| c.is_ascii_digit() || *c == b'.') {
                j += 1;
            }
            if b[j - 1] == b'.' {
                return i;
            }
        }
        _ => return i,
    }
    while b.get(j) == Some(&b';') {
        let opt = j + 1;
        let mut k = opt;
        while b
            .get(k)
            .is_some_and(|c| c.is_ascii_alphanumeric() || *c == b'-')
        {
            k += 1;
        }
        if k == opt {
            break;
        }
        j = k;
    }
    j
}

/// After an attribute, at the `:` at `i`: `[:dn][:rule]:=`; the index after `=`. Without an
/// attribute a rule is required (RFC 4515).
fn extensible_tail(b: &[u8], mut i: usize, has_attr: bool) -> Option<usize> {
    let mut dn = false;
    let mut rule = false;
    for _ in 0..2 {
        if b.get(i) != Some(&b':') {
            return None;
        }
        if b.get(i + 1) == Some(&b'=') {
            break;
        }
        let start = i + 1;
        let end = attribute(b, start);
        if end == start || b[start..end].contains(&b';') {
            return None;
        }
        if !dn && !rule && b[start..end].eq_ignore_ascii_case(b"dn") {
            dn = true;
        } else if !rule {
            rule = true;
        } else {
            return None;
        }
        i = end;
    }
    if b.get(i) != Some(&b':') || b.get(i + 1) != Some(&b'=') {
        return None;
    }
    (has_attr || rule).then_some(i + 2)
}

/// An extensible-match assertion anywhere in the value, parenthesised or not:
/// `attr[:dn][:rule]:=`. With `any_rule` false (level 1) it needs `:dn` or a rule that can only
/// be a matching rule: a numeric OID of at least two arcs or a name ending in `Match`
/// (RFC 4517 names every rule so).
fn extensible_assertion(b: &[u8], any_rule: bool) -> bool {
    for eq in memchr::memmem::find_iter(b, b":=") {
        // the run of attribute/rule characters before `:=`
        let mut s = eq;
        while s > 0
            && (b[s - 1].is_ascii_alphanumeric() || matches!(b[s - 1], b'.' | b'-' | b';' | b':'))
        {
            s -= 1;
        }
        let run = &b[s..eq];
        let mut parts = run.split(|c| *c == b':');
        let attr = parts.next().unwrap_or_default();
        let rest: Vec<&[u8]> = parts.collect();
        if rest.is_empty() || rest.len() > 2 || rest.iter().any(|p| p.is_empty()) {
            continue;
        }
        if !attr.is_empty() && attribute(attr, 0) != attr.len() {
            continue;
        }
        let (dn, rule) = match rest.as_slice() {
            [one] if one.eq_ignore_ascii_case(b"dn") => (true, None),
            [one] => (false, Some(*one)),
            [d, r] if d.eq_ignore_ascii_case(b"dn") => (true, Some(*r)),
            _ => continue,
        };
        if let Some(r) = rule {
            if attribute(r, 0) != r.len() || r.contains(&b';') {
                continue;
            }
        }
        if attr.is_empty() && rule.is_none() {
            continue;
        }
        let strong_rule = rule.is_some_and(|r| {
            (r[0].is_ascii_digit() && r.contains(&b'.'))
                || (r.len() > 5 && r[r.len() - 5..].eq_ignore_ascii_case(b"match"))
        });
        if (dn && !attr.is_empty()) || strong_rule || (any_rule && rule.is_some()) {
            return true;
        }
    }
    false
}

/// Attributes every directory has (RFC 4519, RFC 2307, Active Directory), compared
/// case-insensitively.
const KNOWN_ATTRIBUTES: &[&str] = &[
    "uid",
    "cn",
    "sn",
    "ou",
    "o",
    "dc",
    "c",
    "l",
    "st",
    "mail",
    "objectclass",
    "objectcategory",
    "userpassword",
    "unicodepwd",
    "givenname",
    "displayname",
    "member",
    "memberof",
    "memberuid",
    "uniquemember",
    "samaccountname",
    "userprincipalname",
    "uidnumber",
    "gidnumber",
    "homedirectory",
    "loginshell",
    "telephonenumber",
    "description",
    "distinguishedname",
    "useraccountcontrol",
    "admincount",
    "serviceprincipalname",
    "employeeid",
    "title",
    "manager",
];

fn known_attribute(attr: &[u8]) -> bool {
    let name = attr.split(|c| *c == b';').next().unwrap_or_default();
    KNOWN_ATTRIBUTES
        .iter()
        .any(|k| k.as_bytes().eq_ignore_ascii_case(name))
}

#[cfg(test)]
mod tests;
