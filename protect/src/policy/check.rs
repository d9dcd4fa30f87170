//! Validation over the JSON tree, so that every bad field is reported with its path instead of
//! stopping at the first one (which is all serde can do). The same walk checks hand-built
//! policies: `validate()` serializes the typed value and walks the result.

use std::collections::HashMap;
use std::fmt;

use serde::Serialize;
use serde_json::{Map, Value};

use super::{NetTarget, PolicyError};
use crate::pattern::Pattern;

/// One bad field: its JSON path (`rules[0].processes.effect`) and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    /// JSON path of the field; empty for the document itself.
    pub path: String,
    /// What is wrong and how to fix it.
    pub message: String,
}

impl FieldError {
    pub(crate) fn new(path: impl Into<String>, message: impl Into<String>) -> FieldError {
        FieldError {
            path: path.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

/// All errors, one per line.
pub(crate) fn render(errors: &[FieldError]) -> String {
    errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

/// `path.key`, or `key` at the top level.
pub(crate) fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

/// `path[i]`.
pub(crate) fn index(path: &str, i: usize) -> String {
    format!("{path}[{i}]")
}

/// Longest string echoed back in an error message, in characters.
const ECHO_LIMIT: usize = 64;
/// Longest list entry (pattern, destination) accepted, in bytes.
pub(crate) const MAX_ENTRY_LEN: usize = crate::pattern::MAX_PATTERN_LEN;

/// `s`, cut to [`ECHO_LIMIT`] characters (with `…`) so errors stay readable and bounded.
pub(crate) fn short(s: &str) -> String {
    match s.char_indices().nth(ECHO_LIMIT) {
        Some((at, _)) => format!("{}…", &s[..at]),
        None => s.to_owned(),
    }
}

/// A short description of a JSON value for "found ..." messages.
fn describe(v: &Value) -> String {
    match v {
        Value::Null => "null".to_owned(),
        Value::Bool(b) => format!("boolean {b}"),
        Value::Number(n) => format!("number {n}"),
        Value::String(s) => format!("string {:?}", short(s)),
        Value::Array(_) => "an array".to_owned(),
        Value::Object(_) => "an object".to_owned(),
    }
}

/// Lower-case without `_` and `-`, to suggest `allowed_outbound` for `allowedOutbound`.
fn loose(s: &str) -> String {
    s.chars()
        .filter(|c| *c != '_' && *c != '-')
        .flat_map(char::to_lowercase)
        .collect()
}

/// Edit distance between two short strings (field names), for "did you mean" hints.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitute = diagonal + usize::from(ca != *cb);
            diagonal = row[j + 1];
            row[j + 1] = substitute.min(row[j] + 1).min(diagonal + 1);
        }
    }
    row[b.len()]
}

/// The known field a mistyped key most likely meant: same letters ignoring case, `_` and `-`,
/// or at most two edits away.
fn suggestion<'f>(fields: &[&'f str], key: &str) -> Option<&'f str> {
    let key = loose(key);
    fields
        .iter()
        .map(|f| (edit_distance(&loose(f), &key), *f))
        .filter(|(d, _)| *d <= 2)
        .min_by_key(|(d, _)| *d)
        .map(|(_, f)| f)
}

/// Collects field errors during a walk.
#[derive(Default)]
pub(crate) struct Walker {
    errors: Vec<FieldError>,
}

impl Walker {
    pub(crate) fn error(&mut self, path: &str, message: impl Into<String>) {
        self.errors.push(FieldError::new(path, message));
    }

    pub(crate) fn finish(self) -> Result<(), PolicyError> {
        if self.errors.is_empty() {
            Ok(())
        } else {
            Err(PolicyError::Invalid {
                errors: self.errors,
            })
        }
    }

    fn wrong_type(&mut self, path: &str, expected: &str, v: &Value) {
        self.error(path, format!("expected {expected}, found {}", describe(v)));
    }

    /// An object whose keys must all be in `fields`; unknown keys are reported by path.
    pub(crate) fn object<'v>(
        &mut self,
        v: &'v Value,
        path: &str,
        fields: &[&str],
    ) -> Option<&'v Map<String, Value>> {
        let Value::Object(map) = v else {
            self.wrong_type(path, "an object", v);
            return None;
        };
        for key in map.keys() {
            if fields.contains(&key.as_str()) {
                continue;
            }
            let hint = suggestion(fields, key)
                .map(|f| format!("did you mean {f}? "))
                .unwrap_or_default();
            self.error(
                &join(path, &short(key)),
                format!("unknown field; {hint}expected one of {}", fields.join(", ")),
            );
        }
        Some(map)
    }

    /// A field that must be present.
    pub(crate) fn required<'v>(
        &mut self,
        map: &'v Map<String, Value>,
        path: &str,
        key: &str,
        expected: &str,
    ) -> Option<&'v Value> {
        let v = map.get(key);
        if v.is_none() {
            self.error(
                &join(path, key),
                format!("missing field; expected {expected}"),
            );
        }
        v
    }

    pub(crate) fn array<'v>(&mut self, v: &'v Value, path: &str) -> Option<&'v Vec<Value>> {
        match v {
            Value::Array(a) => Some(a),
            _ => {
                self.wrong_type(path, "an array", v);
                None
            }
        }
    }

    pub(crate) fn string<'v>(&mut self, v: &'v Value, path: &str) -> Option<&'v str> {
        match v {
            Value::String(s) => Some(s),
            _ => {
                self.wrong_type(path, "a string", v);
                None
            }
        }
    }

    pub(crate) fn boolean(&mut self, v: &Value, path: &str) -> Option<bool> {
        match v {
            Value::Bool(b) => Some(*b),
            _ => {
                self.wrong_type(path, "true or false", v);
                None
            }
        }
    }

    pub(crate) fn unsigned(&mut self, v: &Value, path: &str) -> Option<u64> {
        match v.as_u64() {
            Some(n) => Some(n),
            None => {
                self.wrong_type(path, "a non-negative integer", v);
                None
            }
        }
    }

    /// A TCP/UDP port: an integer from 1 to 65535.
    pub(crate) fn port(&mut self, v: &Value, path: &str) -> Option<u16> {
        match v.as_u64() {
            Some(0) => {
                self.error(path, "port 0 is not valid; ports are 1 to 65535");
                None
            }
            Some(n) => match u16::try_from(n) {
                Ok(p) => Some(p),
                Err(_) => {
                    self.error(
                        path,
                        format!("port {n} is out of range; ports are 1 to 65535"),
                    );
                    None
                }
            },
            None => {
                self.wrong_type(path, "a port number (1 to 65535)", v);
                None
            }
        }
    }

    /// A string that must be one of `options`; `what` names the kind ("effect").
    pub(crate) fn one_of<'v>(
        &mut self,
        v: &'v Value,
        path: &str,
        what: &str,
        options: &[&str],
    ) -> Option<&'v str> {
        let list = options.join(", ");
        match v {
            Value::String(s) if options.contains(&s.as_str()) => Some(s),
            Value::String(s) => {
                self.error(
                    path,
                    format!("unknown {what} {:?}; expected one of {list}", short(s)),
                );
                None
            }
            _ => {
                self.wrong_type(path, &format!("a string, one of {list}"), v);
                None
            }
        }
    }

    /// A list of strings, each checked by `item`; entries equal to an earlier one are reported.
    pub(crate) fn string_list(
        &mut self,
        v: &Value,
        path: &str,
        mut item: impl FnMut(&str) -> Result<(), String>,
    ) -> Vec<String> {
        let mut good = Vec::new();
        let Some(items) = self.array(v, path) else {
            return good;
        };
        for (i, entry) in items.iter().enumerate() {
            let p = index(path, i);
            let Some(s) = self.string(entry, &p) else {
                continue;
            };
            if s.len() > MAX_ENTRY_LEN {
                self.error(
                    &p,
                    format!(
                        "entry is {} bytes long; the limit is {MAX_ENTRY_LEN}",
                        s.len()
                    ),
                );
                continue;
            }
            match item(s) {
                Ok(()) => good.push(s.to_owned()),
                Err(msg) => self.error(&p, msg),
            }
        }
        good
    }

    /// A rule name: non-empty, printable, at most 200 characters, unique in `seen`.
    pub(crate) fn rule_name(
        &mut self,
        map: &Map<String, Value>,
        path: &str,
        seen: &mut HashMap<String, String>,
    ) {
        let Some(v) = self.required(map, path, "name", "a unique rule name") else {
            return;
        };
        let p = join(path, "name");
        let Some(name) = self.string(v, &p) else {
            return;
        };
        if name.trim().is_empty() {
            self.error(&p, "empty rule name; give the rule a unique name");
        } else if name.chars().any(char::is_control) {
            self.error(
                &p,
                format!("rule name {name:?} contains a control character"),
            );
        } else if name.chars().count() > 200 {
            self.error(&p, "rule name is longer than 200 characters");
        } else if let Some(first) = seen.get(name) {
            self.error(
                &p,
                format!("duplicate rule name {name:?} (also used by {first}); rule names must be unique"),
            );
        } else {
            seen.insert(name.to_owned(), path.to_owned());
        }
    }

    /// A list of scope patterns (`tasks`, `containers`, `images`).
    pub(crate) fn scope_patterns(&mut self, v: &Value, path: &str) {
        self.string_list(v, path, |s| {
            Pattern::new(s).map(drop).map_err(|e| e.to_string())
        });
    }
}

const EFFECTS: [&str; 4] = ["disable", "alert", "prevent", "block"];

/// Checks a whole runtime policy document.
pub(crate) fn runtime_policy(w: &mut Walker, v: &Value) {
    let Some(map) = w.object(v, "", &["revision", "rules"]) else {
        return;
    };
    if let Some(r) = map.get("revision") {
        w.unsigned(r, "revision");
    }
    let Some(rules) = map.get("rules") else {
        return;
    };
    let Some(rules) = w.array(rules, "rules") else {
        return;
    };
    let mut seen = HashMap::new();
    for (i, r) in rules.iter().enumerate() {
        rule(w, r, &index("rules", i), &mut seen);
    }
}

fn rule(w: &mut Walker, v: &Value, path: &str, seen: &mut HashMap<String, String>) {
    let fields = [
        "name",
        "disabled",
        "scope",
        "startup",
        "processes",
        "dns",
        "network",
    ];
    let Some(map) = w.object(v, path, &fields) else {
        return;
    };
    w.rule_name(map, path, seen);
    if let Some(d) = map.get("disabled") {
        w.boolean(d, &join(path, "disabled"));
    }
    if let Some(s) = map.get("scope") {
        let sp = join(path, "scope");
        if let Some(scope) = w.object(s, &sp, &["tasks", "containers", "images"]) {
            for (key, list) in scope {
                w.scope_patterns(list, &join(&sp, key));
            }
        }
    }
    if let Some(s) = map.get("startup") {
        w.one_of(
            s,
            &join(path, "startup"),
            "startup",
            &["availability", "security"],
        );
    }
    if let Some(s) = map.get("processes") {
        pattern_section(w, s, &join(path, "processes"), process_pattern);
    }
    if let Some(s) = map.get("dns") {
        pattern_section(w, s, &join(path, "dns"), domain_pattern);
    }
    if let Some(s) = map.get("network") {
        network(w, s, &join(path, "network"));
    }
}

fn effect(w: &mut Walker, map: &Map<String, Value>, path: &str) {
    let expected = format!("an effect, one of {}", EFFECTS.join(", "));
    if let Some(e) = w.required(map, path, "effect", &expected) {
        w.one_of(e, &join(path, "effect"), "effect", &EFFECTS);
    }
}

/// Reports entries of `denied` that also appear in `allowed` (at the denied entry's path).
fn conflicts(w: &mut Walker, path: &str, allowed: (&str, &[String]), denied: (&str, &[String])) {
    for (i, d) in denied.1.iter().enumerate() {
        if allowed.1.contains(d) {
            w.error(
                &index(&join(path, denied.0), i),
                format!(
                    "{d} is also in {}; remove it from one of the lists",
                    allowed.0
                ),
            );
        }
    }
}

fn pattern_section(w: &mut Walker, v: &Value, path: &str, item: fn(&str) -> Result<(), String>) {
    let Some(map) = w.object(v, path, &["effect", "allowed", "denied"]) else {
        return;
    };
    effect(w, map, path);
    let allowed = map
        .get("allowed")
        .map(|a| w.string_list(a, &join(path, "allowed"), item))
        .unwrap_or_default();
    let denied = map
        .get("denied")
        .map(|d| w.string_list(d, &join(path, "denied"), item))
        .unwrap_or_default();
    conflicts(w, path, ("allowed", &allowed), ("denied", &denied));
}

/// A process pattern: a basename (`mkdir`, `python*`) or an absolute path glob (`/usr/bin/*`).
pub(crate) fn process_pattern(s: &str) -> Result<(), String> {
    Pattern::new(s).map_err(|e| e.to_string())?;
    if s.contains('/') && !s.starts_with('/') && !s.starts_with('*') {
        return Err(format!(
            "{s:?} contains \"/\" but is not an absolute path; write an absolute path such as /{s} or a basename such as {}",
            s.rsplit('/').next().filter(|b| !b.is_empty()).unwrap_or("mkdir")
        ));
    }
    if s.ends_with('/') {
        return Err(format!(
            "{s:?} ends with \"/\" and can never match an executable; add a name or \"*\""
        ));
    }
    Ok(())
}

/// A domain pattern: a name (`yahoo.com`) or a wildcard (`*.evil.example`); one trailing dot is
/// allowed; ASCII letters, digits, `-`, `_`, `.` and `*` only.
pub(crate) fn domain_pattern(s: &str) -> Result<(), String> {
    Pattern::new(s).map_err(|e| e.to_string())?;
    let name = s.strip_suffix('.').unwrap_or(s);
    let hint = "write names like yahoo.com or *.evil.example";
    if let Some(bad) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '*')))
    {
        let extra = if bad.is_ascii() {
            ""
        } else {
            " (use the xn-- punycode form for international names)"
        };
        return Err(format!(
            "{s:?} is not a domain name pattern: {bad:?} is not allowed{extra}; {hint}"
        ));
    }
    if name.is_empty() || name.split('.').any(str::is_empty) {
        return Err(format!(
            "{s:?} has an empty label (a leading dot or \"..\"); {hint}"
        ));
    }
    if name.len() > 253 {
        return Err(format!(
            "{s:?} is longer than 253 characters, the DNS limit"
        ));
    }
    Ok(())
}

fn network(w: &mut Walker, v: &Value, path: &str) {
    let fields = [
        "effect",
        "allowed_outbound",
        "denied_outbound",
        "allowed_listening_ports",
        "denied_listening_ports",
    ];
    let Some(map) = w.object(v, path, &fields) else {
        return;
    };
    effect(w, map, path);
    let targets = |w: &mut Walker, key: &str| -> Vec<String> {
        map.get(key)
            .map(|l| {
                w.string_list(l, &join(path, key), |s| {
                    NetTarget::parse(s).map(drop).map_err(|e| e.to_string())
                })
            })
            .unwrap_or_default()
    };
    let allowed = targets(w, "allowed_outbound");
    let denied = targets(w, "denied_outbound");
    conflicts(
        w,
        path,
        ("allowed_outbound", &allowed),
        ("denied_outbound", &denied),
    );
    let ports = |w: &mut Walker, key: &str| -> Vec<String> {
        let mut good = Vec::new();
        let lp = join(path, key);
        if let Some(list) = map.get(key).and_then(|l| w.array(l, &lp)) {
            for (i, p) in list.iter().enumerate() {
                if let Some(p) = w.port(p, &index(&lp, i)) {
                    good.push(p.to_string());
                }
            }
        }
        good
    };
    let allowed = ports(w, "allowed_listening_ports");
    let denied = ports(w, "denied_listening_ports");
    conflicts(
        w,
        path,
        ("allowed_listening_ports", &allowed),
        ("denied_listening_ports", &denied),
    );
}
