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
//! `name:`), and be followed by what the field takes (`__schema {`, `__type(`) or a directive.
//! Prose, JSON that merely names `__schema` in a string, and ordinary queries (`__typename`
//! included) pass.

use crate::policy::Paranoia;

/// Meta-fields that expose the schema.
const META_FIELDS: [&str; 2] = ["__schema", "__type"];

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
    if level <= Paranoia::MIN || finder!("__").find(value.as_bytes()).is_none() {
        return false;
    }
    introspects(value, true)
}

/// Whether `value` is a whole GraphQL executable document, strictly: it lexes as GraphQL,
/// opens with `{` or `query` / `mutation` / `subscription` / `fragment`, every selection set it
/// opens is closed, and only another definition follows a closed one (`{php}echo "x"` and
/// `{l,-lh}s` are not documents). For other detectors: in such a value `name(arg: …)` is a field with
/// arguments, not a function call (`{ user(id: 7) { name } }`).
pub fn is_document(value: &str) -> bool {
    let lexer = Lexer {
        doc: value,
        i: 0,
        lenient: false,
    };
    let mut braces = 0usize;
    let mut sets = 0usize;
    let mut prev = None;
    let mut prev_closed = false;
    for (k, t) in lexer.enumerate() {
        let Ok(t) = t else {
            return false;
        };
        // a selection set holds fields and fragments, never a literal or `}` first
        if prev == Some(Token::Punct(b'{')) && !matches!(t, Token::Name(_) | Token::Spread) {
            return false;
        }
        prev = Some(t);
        if k == 0
            && !matches!(
                t,
                Token::Punct(b'{')
                    | Token::Name("query" | "mutation" | "subscription" | "fragment")
            )
        {
            return false;
        }
        // at the top level, after a definition's closing `}`, only another definition starts
        if braces == 0
            && k > 0
            && prev_closed
            && !matches!(
                t,
                Token::Punct(b'{')
                    | Token::Name("query" | "mutation" | "subscription" | "fragment")
            )
        {
            return false;
        }
        prev_closed = false;
        match t {
            Token::Punct(b'{') => {
                braces += 1;
                sets += 1;
            }
            Token::Punct(b'}') => match braces.checked_sub(1) {
                Some(n) => {
                    braces = n;
                    prev_closed = n == 0;
                }
                None => return false,
            },
            _ => {}
        }
    }
    sets > 0 && braces == 0
}

/// The contents of the string and block-string literals of `doc` (a value [`is_document`]
/// accepted), escapes left as sent: in a GraphQL document they are the only free text that
/// reaches the resolvers; everything else is names, numbers and punctuation.
pub fn string_literals(doc: &str) -> Vec<&str> {
    let b = doc.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'#' => {
                while i < b.len() && b[i] != b'\n' && b[i] != b'\r' {
                    i += 1;
                }
            }
            b'"' => {
                let Some(end) = string_end(b, i) else {
                    return out;
                };
                let quotes = if b[i..].starts_with(b"\"\"\"") { 3 } else { 1 };
                // quotes are ASCII: both ends are character boundaries
                if let Some(text) = doc.get(i + quotes..end - quotes) {
                    if !text.is_empty() {
                        out.push(text);
                    }
                }
                i = end;
            }
            _ => i += 1,
        }
    }
    out
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
/// and stray `}` ignored instead of ending the judgement. Tokens are judged as they are lexed
/// (the last two and the next one are all a meta-field's position needs), so any length of
/// document costs no memory.
fn introspects(doc: &str, lenient: bool) -> bool {
    let mut braces = 0usize;
    let mut parens = 0usize;
    let (mut p2, mut p1): (Option<Token<'_>>, Option<Token<'_>>) = (None, None);
    // a meta-field in field position, waiting for the token that says what it takes
    let mut pending: Option<&str> = None;
    let mut found = false;
    let lexer = Lexer { doc, i: 0, lenient };
    for t in lexer {
        let Ok(t) = t else {
            return false;
        };
        if let Some(n) = pending.take() {
            // what the field takes next, or a directive on it (`__schema @include(if: $x) {`)
            found |= matches!(
                (n, t),
                ("__schema", Token::Punct(b'{' | b'@')) | ("__type", Token::Punct(b'('))
            );
            if found && lenient {
                return true;
            }
        }
        match t {
            Token::Punct(b'{') => braces += 1,
            Token::Punct(b'}') => match braces.checked_sub(1) {
                Some(n) => braces = n,
                None if lenient => {}
                None => return false,
            },
            Token::Punct(b'(') => parens += 1,
            Token::Punct(b')') => parens = parens.saturating_sub(1),
            Token::Name(n) if braces > 0 && parens == 0 && META_FIELDS.contains(&n) => {
                let in_field_position = match p1 {
                    Some(Token::Punct(b'{' | b')' | b'}')) => true,
                    // an alias `x: __type(…)`
                    Some(Token::Punct(b':')) => matches!(p2, Some(Token::Name(_))),
                    // after another field, but not as the type condition `... on __type`
                    Some(Token::Name(p)) => !(p == "on" && p2 == Some(Token::Spread)),
                    _ => false,
                };
                if in_field_position {
                    pending = Some(n);
                }
            }
            _ => {}
        }
        (p2, p1) = (p1, Some(t));
    }
    found
}

/// A character that is not GraphQL, or a string left open: the value is no GraphQL document.
#[derive(Debug)]
struct NotGraphql;

/// The tokens of a document, one at a time.
struct Lexer<'a> {
    doc: &'a str,
    i: usize,
    /// Skip what is not GraphQL instead of failing.
    lenient: bool,
}

impl<'a> Iterator for Lexer<'a> {
    type Item = Result<Token<'a>, NotGraphql>;

    fn next(&mut self) -> Option<Self::Item> {
        let b = self.doc.as_bytes();
        while self.i < b.len() {
            let i = self.i;
            let c = b[i];
            match c {
                b' ' | b'\t' | b'\r' | b'\n' | b',' => self.i += 1,
                b'#' => {
                    while self.i < b.len() && b[self.i] != b'\n' && b[self.i] != b'\r' {
                        self.i += 1;
                    }
                }
                b'!' | b'$' | b'&' | b'(' | b')' | b':' | b'=' | b'@' | b'[' | b']' | b'{'
                | b'|' | b'}' => {
                    self.i += 1;
                    return Some(Ok(Token::Punct(c)));
                }
                b'.' if b.get(i + 1) == Some(&b'.') && b.get(i + 2) == Some(&b'.') => {
                    self.i += 3;
                    return Some(Ok(Token::Spread));
                }
                b'_' | b'a'..=b'z' | b'A'..=b'Z' => {
                    let mut j = i;
                    while j < b.len() && (b[j].is_ascii_alphanumeric() || b[j] == b'_') {
                        j += 1;
                    }
                    self.i = j;
                    // ASCII on both sides: `i` and `j` are character boundaries
                    return Some(Ok(Token::Name(&self.doc[i..j])));
                }
                b'-' | b'0'..=b'9' => {
                    let mut j = i + 1;
                    while j < b.len()
                        && (b[j].is_ascii_digit() || matches!(b[j], b'.' | b'e' | b'E'))
                    {
                        j += 1;
                    }
                    self.i = j;
                    return Some(Ok(Token::Literal));
                }
                b'"' => match string_end(b, i) {
                    Some(end) => {
                        self.i = end;
                        return Some(Ok(Token::Literal));
                    }
                    None if self.lenient => self.i += 1,
                    None => {
                        self.i = b.len();
                        return Some(Err(NotGraphql));
                    }
                },
                0xEF if b[i..].starts_with(&[0xEF, 0xBB, 0xBF]) => self.i += 3,
                _ if self.lenient => self.i += 1,
                _ => {
                    self.i = b.len();
                    return Some(Err(NotGraphql));
                }
            }
        }
        None
    }
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

    #[test]
    fn string_literals_of_a_document() {
        let doc = "query Q($id: ID!) { # a \"comment\" with quotes\n  user(id: $id, note: \"x' or 1=1--\") { name }\n  search(text: \"\"\"multi\nline \\\"\"\" stays\"\"\", empty: \"\") { id }\n}";
        assert!(is_document(doc), "{doc}");
        assert_eq!(
            string_literals(doc),
            vec!["x' or 1=1--", "multi\nline \\\"\"\" stays"]
        );
        assert!(string_literals("{ a }").is_empty());
    }

    #[test]
    fn introspection_documents_are_caught() {
        for v in [
            "{__schema{types{name}}}",
            "query { __schema { queryType { name } } }",
            "query Intro { __schema { types { name fields { name } } } }",
            "{ __type(name: \"User\") { name fields { name type { name } } } }",
            "query($n: String!) { t: __type(name: $n) { kind } }",
            "{ me { id } __schema { directives { name } } }",
            "query($x: Boolean!) { __schema @include(if: $x) { types { name } } }",
            "{ ...F } fragment F on Query { s: __schema { types { name } } }",
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
    fn any_length_is_judged_and_random_input_never_panics() {
        let padded = format!(
            "{}{{ __schema {{ types {{ name }} }} }}",
            "# pad\n".repeat(40_000)
        );
        assert!(detect(&padded));
        let long = format!("{{ {} }}", "items { id name } ".repeat(20_000));
        assert!(!detect(&format!("{long} __x")));
        let alphabet = b"{}()[]:,.\"\\#$@!=|&_ ab_schema__type\n\xc3\xa9";
        for v in
            crate::detect::test_support::random_values(alphabet, 40, 20_000, 0x2545_f491_4f6c_dd1d)
        {
            let _ = detect(&v);
            let _ = paranoid(&v, Paranoia::MAX);
        }
    }

    #[test]
    fn whole_documents_are_recognised() {
        for v in [
            "{ user(id: 7) { name } }",
            "query GetUser($id: ID!) { user(id: $id) { name } }",
            "mutation { sleep(seconds: 1) { ok } }",
            "fragment F on User { id } query { me { ...F } }",
            "query A { a } query B { b }",
        ] {
            assert!(is_document(v), "{v:?}");
        }
        for v in [
            "user(id: 7)",
            "{ user(id: 7) { name }",
            "select user() from dual",
            "{ a } }",
            "query",
            "{\"query\": 1}",
            "{}",
            "{ a } ; drop table x",
            // a definition must start after a closed one: Smarty and bash, not GraphQL
            "{php}echo \"test\"",
            "{l,-lh}s",
            "{ a } b",
        ] {
            assert!(!is_document(v), "{v:?}");
        }
    }

    #[test]
    fn level_2_finds_meta_fields_in_documents_that_do_not_lex() {
        let l2 = Paranoia::new(2).expect("a level");
        let v = "{ __schema { types { name } } } <!-- x -->";
        assert!(!detect(v));
        assert!(!paranoid(v, Paranoia::MIN));
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
        let p = crate::detect::test_support::blocks_on_prevent_only(
            Attack::Graphql,
            &parts,
            body,
            "GraphQL introspection detected in JSON value $.query from 203.0.113.9; request blocked",
        );
        // GET query parameter and application/graphql body
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
