//! GraphQL introspection: a GraphQL document that selects the schema meta-fields `__schema`
//! or `__type(…)`, which map the whole API for an attacker (introspection is meant for
//! development tools and is turned off in production deployments).
//!
//! A value is a GraphQL document when it lexes completely as GraphQL (names, punctuators, `...`,
//! numbers, strings, block strings, `#` comments; commas are white space) and its selection sets
//! are nested properly: `{` never closes more than it opened, though a document cut short may
//! leave sets open. It is sent as a POST JSON body `{"query": …}` (the JSON walker hands over
//! the `query` string), an `application/graphql` body or a GET `query=` parameter; a parameter
//! that holds the JSON envelope itself is unwrapped here. The meta-field must sit where a field
//! sits, inside a selection set and outside arguments (after `{`, another field, or an alias
//! `name:`), and be followed by what the field takes: `__schema {`, `__type(`. Prose, JSON that
//! merely names `__schema` in a string, and ordinary queries (`__typename` included) pass.

use crate::policy::Paranoia;

/// Meta-fields that expose the schema.
const META_FIELDS: [&str; 2] = ["__schema", "__type"];

/// Largest document lexed (the introspection query tools send is about 1.5 KiB).
const MAX_DOCUMENT: usize = 64 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Token<'a> {
    /// `! $ & ( ) : = @ [ ] { | }`
    Punct(u8),
    /// `...`
    Spread,
    Name(&'a str),
    /// A number or a string.
    Literal,
}

/// Whether `value` (already decoded) is a GraphQL document asking for introspection.
pub fn detect(value: &str) -> bool {
    if finder!("__").find(value.as_bytes()).is_none() {
        return false;
    }
    if let Some(queries) = json_envelope(value) {
        return queries.iter().any(|q| introspects(q, false));
    }
    introspects(value, false)
}

/// Level 2 and up: a meta-field followed by its selection set or arguments anywhere, even in a
/// value that does not lex as GraphQL as a whole (a document with stray characters, a fragment
/// of one).
pub fn paranoid(value: &str, level: Paranoia) -> bool {
    if level <= Paranoia::DEFAULT || finder!("__").find(value.as_bytes()).is_none() {
        return false;
    }
    introspects(value, true)
}

/// The documents of a `{"query": "…"}` envelope, or a batch `[{"query": …}, …]` of them, given
/// whole as a value (a GET parameter holding the POST envelope); `None` when it is not one.
fn json_envelope(value: &str) -> Option<Vec<String>> {
    let t = value.trim_start();
    if !t.starts_with(['{', '[']) || finder!("\"query\"").find(t.as_bytes()).is_none() {
        return None;
    }
    let query = |v: serde_json::Value| match v {
        serde_json::Value::Object(mut map) => match map.remove("query") {
            Some(serde_json::Value::String(q)) => Some(q),
            _ => None,
        },
        _ => None,
    };
    match serde_json::from_str::<serde_json::Value>(t).ok()? {
        serde_json::Value::Array(batch) => Some(batch.into_iter().filter_map(query).collect()),
        one => query(one).map(|q| vec![q]),
    }
}

/// Whether `doc` selects a meta-field. `lenient`: characters that are not GraphQL are skipped
/// instead of ending the judgement.
fn introspects(doc: &str, lenient: bool) -> bool {
    if doc.len() > MAX_DOCUMENT {
        return false;
    }
    let Some(tokens) = lex(doc, lenient) else {
        return false;
    };
    let mut braces = 0usize;
    let mut parens = 0usize;
    for (k, t) in tokens.iter().enumerate() {
        match t {
            Token::Punct(b'{') => braces += 1,
            Token::Punct(b'}') => {
                if braces == 0 {
                    if lenient {
                        continue;
                    }
                    return false;
                }
                braces -= 1;
            }
            Token::Punct(b'(') => parens += 1,
            Token::Punct(b')') => parens = parens.saturating_sub(1),
            Token::Name(n) if braces > 0 && parens == 0 && META_FIELDS.contains(n) => {
                let prev = k.checked_sub(1).map(|p| tokens[p]);
                let in_field_position = match prev {
                    Some(Token::Punct(b'{' | b')' | b'}')) => true,
                    // an alias `x: __type(…)`
                    Some(Token::Punct(b':')) => k >= 2 && matches!(tokens[k - 2], Token::Name(_)),
                    // after another field, but not as the type condition `... on __type`
                    Some(Token::Name(p)) => {
                        !(p == "on" && k >= 2 && tokens[k - 2] == Token::Spread)
                    }
                    _ => false,
                };
                let takes = matches!(
                    (*n, tokens.get(k + 1)),
                    ("__schema", Some(Token::Punct(b'{'))) | ("__type", Some(Token::Punct(b'(')))
                );
                if in_field_position && takes {
                    return true;
                }
            }
            _ => {}
        }
    }
    false
}

/// The tokens of `doc`, or `None` when a character is not GraphQL (unless `lenient`).
fn lex(doc: &str, lenient: bool) -> Option<Vec<Token<'_>>> {
    let b = doc.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        match c {
            b' ' | b'\t' | b'\r' | b'\n' | b',' => i += 1,
            b'#' => {
                while i < b.len() && b[i] != b'\n' && b[i] != b'\r' {
                    i += 1;
                }
            }
            b'!' | b'$' | b'&' | b'(' | b')' | b':' | b'=' | b'@' | b'[' | b']' | b'{' | b'|'
            | b'}' => {
                out.push(Token::Punct(c));
                i += 1;
            }
            b'.' if b.get(i + 1) == Some(&b'.') && b.get(i + 2) == Some(&b'.') => {
                out.push(Token::Spread);
                i += 3;
            }
            b'_' | b'a'..=b'z' | b'A'..=b'Z' => {
                let s = i;
                while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                    i += 1;
                }
                out.push(Token::Name(&doc[s..i]));
            }
            b'-' | b'0'..=b'9' => {
                i += 1;
                while i < b.len() && (b[i].is_ascii_digit() || matches!(b[i], b'.' | b'e' | b'E')) {
                    i += 1;
                }
                out.push(Token::Literal);
            }
            b'"' => {
                i = string_end(b, i)?;
                out.push(Token::Literal);
            }
            0xEF if b[i..].starts_with(&[0xEF, 0xBB, 0xBF]) => i += 3,
            _ if lenient => i += 1,
            _ => return None,
        }
    }
    Some(out)
}

/// Index after the string (or block string) starting at the `"` at `i`; `None` if unterminated
/// or broken by a line end.
fn string_end(b: &[u8], i: usize) -> Option<usize> {
    if b[i..].starts_with(b"\"\"\"") {
        let mut j = i + 3;
        while j < b.len() {
            if b[j] == b'\\' && b[j..].starts_with(b"\\\"\"\"") {
                j += 4;
            } else if b[j..].starts_with(b"\"\"\"") {
                return Some(j + 3);
            } else {
                j += 1;
            }
        }
        return None;
    }
    let mut j = i + 1;
    while j < b.len() {
        match b[j] {
            b'\\' => j += 2,
            b'"' => return Some(j + 1),
            b'\n' | b'\r' => return None,
            _ => j += 1,
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Action, Attack, RequestParts};
    use crate::policy::{all, CnafEffect};

    #[test]
    fn introspection_documents_are_caught() {
        for v in [
            "{__schema{types{name}}}",
            "query { __schema { queryType { name } } }",
            "query Intro { __schema { types { name fields { name } } } }",
            "{ __type(name: \"User\") { name fields { name type { name } } } }",
            "query($n: String!) { t: __type(name: $n) { kind } }",
            "{ me { id } __schema { directives { name } } }",
            "# tools\nquery IntrospectionQuery {\n  __schema {\n    queryType { name }\n",
            "Intro{__schema {queryType { name }}",
            "{\"query\": \"{ __schema { types { name } } }\"}",
            "{\"query\":\"query { __type(name: \\\"Query\\\") { name } }\",\"variables\":{}}",
            "[{\"query\": \"{ me { id } }\"}, {\"query\": \"{ __schema { types { name } } }\"}]",
        ] {
            assert!(detect(v), "{v:?} not caught");
        }
    }

    #[test]
    fn ordinary_queries_and_prose_pass() {
        for v in [
            "query GetUser($id: ID!) { user(id: $id) { id name email __typename } }",
            "mutation { addItem(sku: \"A-1\", qty: 2) { id __typename } }",
            "{ search(term: \"__schema\") { id } }",
            "{ search(filter: __schema) { id } }",
            "query { items { ... on __Type { name } } }",
            "fragment F on __Type { kind }",
            "the __schema field is disabled in production",
            "{\"__schema\": {\"types\": []}}",
            "{\"query\": \"{ user { name } }\", \"note\": \"__schema { x }\"}",
            "db.__schema",
            "}} __schema { x }",
            "select * from __schema {x}; -- not graphql",
        ] {
            assert!(!detect(v), "{v:?} caught");
        }
    }

    #[test]
    fn level_2_finds_meta_fields_in_documents_that_do_not_lex() {
        let l2 = Paranoia::new(2).expect("a level");
        let v = "{ __schema { types { name } } } <!-- x -->";
        assert!(!detect(v));
        assert!(!paranoid(v, Paranoia::DEFAULT));
        assert!(paranoid(v, l2));
        assert!(!paranoid("the __schema field is disabled", l2));
        assert!(!paranoid("{ user { __typename } }", l2));
    }

    #[test]
    fn inspect_blocks_on_prevent_and_not_on_disable() {
        let body = r#"{"query":"query { __schema { types { name } } }"}"#;
        let parts = RequestParts::new("POST", "/graphql")
            .header("Host", "app")
            .header("Content-Type", "application/json");
        let mut p = all(CnafEffect::Disable);
        p.graphql = CnafEffect::Prevent;
        let v = crate::inspect(&parts, body.as_bytes(), &p);
        assert_eq!(v.action(), Action::Block, "{v:?}");
        let f = v.primary().expect("a finding");
        assert_eq!(f.attack, Attack::Graphql);
        assert_eq!(f.attack.key(), "graphql");
        p.graphql = CnafEffect::Disable;
        assert_eq!(
            crate::inspect(&parts, body.as_bytes(), &p).action(),
            Action::Allow
        );
        // GET query parameter and application/graphql body
        p.graphql = CnafEffect::Prevent;
        let get = RequestParts::new(
            "GET",
            "/graphql?query=%7B__type(name%3A%22User%22)%7Bname%7D%7D",
        )
        .header("Host", "app");
        assert!(crate::inspect(&get, b"", &p).has(Attack::Graphql));
        let raw = RequestParts::new("POST", "/graphql")
            .header("Host", "app")
            .header("Content-Type", "application/graphql");
        assert!(crate::inspect(&raw, b"{ __schema { types { name } } }", &p).has(Attack::Graphql));
        let benign = r#"{"query":"query($id: ID!) { user(id: $id) { name __typename } }","variables":{"id":"7"}}"#;
        let v = crate::inspect(&parts, benign.as_bytes(), &p);
        assert_eq!(v.action(), Action::Allow, "{v:?}");
    }
}
