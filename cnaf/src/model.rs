//! The inspection vocabulary: the request handed in, the attack classes, where a finding was
//! made, and the verdict handed back.

use std::fmt;

use crate::policy::{CnafEffect, Protections};

/// The parts of an HTTP request the inspector looks at (everything but the body).
///
/// Header values are kept as received, decoded lossily as UTF-8 (a WAF must inspect bytes that
/// are not valid UTF-8 rather than skip them).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RequestParts {
    /// Request method as sent (`GET`, `POST`, ...).
    pub method: String,
    /// Request target as sent: path plus optional `?query` (origin form), or an absolute URI.
    pub target: String,
    /// `HTTP/1.0`, `HTTP/1.1`, `HTTP/2.0`.
    pub version: String,
    /// Header fields in order; names are compared case-insensitively.
    pub headers: Vec<(String, String)>,
}

impl RequestParts {
    /// A request with no headers, for tests and tools.
    pub fn new(method: &str, target: &str) -> RequestParts {
        RequestParts {
            method: method.to_string(),
            target: target.to_string(),
            version: "HTTP/1.1".to_string(),
            headers: Vec::new(),
        }
    }

    /// Builder-style: append one header.
    pub fn header(mut self, name: &str, value: &str) -> RequestParts {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    /// Every value of header `name` (case-insensitive).
    pub fn header_values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.headers
            .iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The first value of header `name` (case-insensitive).
    pub fn first_header<'a>(&'a self, name: &'a str) -> Option<&'a str> {
        self.header_values(name).next()
    }

    /// Path part of the target (before `?`), without scheme/authority for absolute URIs.
    pub fn path(&self) -> &str {
        let t = self.target.split('?').next().unwrap_or("");
        if let Some(rest) = t
            .strip_prefix("http://")
            .or_else(|| t.strip_prefix("https://"))
        {
            return rest.find('/').map_or("/", |i| &rest[i..]);
        }
        t
    }

    /// Query part of the target (after the first `?`), if any.
    pub fn query(&self) -> Option<&str> {
        self.target.split_once('?').map(|(_, q)| q)
    }
}

impl From<&http::request::Parts> for RequestParts {
    fn from(p: &http::request::Parts) -> RequestParts {
        RequestParts {
            method: p.method.as_str().to_string(),
            target: p
                .uri
                .path_and_query()
                .map_or_else(|| p.uri.to_string(), |pq| pq.as_str().to_string()),
            version: match p.version {
                http::Version::HTTP_10 => "HTTP/1.0".to_string(),
                http::Version::HTTP_11 => "HTTP/1.1".to_string(),
                http::Version::HTTP_2 => "HTTP/2.0".to_string(),
                other => format!("{other:?}"),
            },
            headers: p
                .headers
                .iter()
                .map(|(n, v)| {
                    (
                        n.as_str().to_string(),
                        match std::str::from_utf8(v.as_bytes()) {
                            Ok(text) => text.to_string(),
                            Err(_) => String::from_utf8_lossy(v.as_bytes()).into_owned(),
                        },
                    )
                })
                .collect(),
        }
    }
}

/// The attack classes, one per protection of the CNAF policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Attack {
    /// SQL injection (`sqli`).
    Sqli,
    /// Cross-site scripting (`xss`).
    Xss,
    /// OS command injection (`cmdi`).
    Cmdi,
    /// Code injection: PHP, Java EL/OGNL, Node/JS, Python, template and server-side includes
    /// (`code_injection`).
    CodeInjection,
    /// Local/remote file inclusion, path traversal and XML external entities (`lfi`).
    Lfi,
    /// LDAP search filter injection (`ldap`).
    Ldap,
    /// GraphQL introspection (`graphql`).
    Graphql,
    /// Attack tools and vulnerability scanners (`attack_tools`).
    AttackTools,
    /// Shellshock (CVE-2014-6271) function definitions (`shellshock`).
    Shellshock,
    /// Malformed or smuggling-prone HTTP (`malformed`).
    Malformed,
}

impl Attack {
    /// Every class, in policy order.
    pub const ALL: [Attack; 10] = [
        Attack::Sqli,
        Attack::Xss,
        Attack::Cmdi,
        Attack::CodeInjection,
        Attack::Lfi,
        Attack::Ldap,
        Attack::Graphql,
        Attack::AttackTools,
        Attack::Shellshock,
        Attack::Malformed,
    ];

    /// The protection key in the CNAF policy JSON (`sqli`, `xss`, ...); also the audit `attack`.
    pub fn key(self) -> &'static str {
        match self {
            Attack::Sqli => "sqli",
            Attack::Xss => "xss",
            Attack::Cmdi => "cmdi",
            Attack::CodeInjection => "code_injection",
            Attack::Lfi => "lfi",
            Attack::Ldap => "ldap",
            Attack::Graphql => "graphql",
            Attack::AttackTools => "attack_tools",
            Attack::Shellshock => "shellshock",
            Attack::Malformed => "malformed",
        }
    }

    /// Human wording used in audit messages ("SQL injection detected in ...").
    pub fn describe(self) -> &'static str {
        match self {
            Attack::Sqli => "SQL injection",
            Attack::Xss => "Cross-site scripting",
            Attack::Cmdi => "OS command injection",
            Attack::CodeInjection => "Code injection",
            Attack::Lfi => "File inclusion / path traversal",
            Attack::Ldap => "LDAP injection",
            Attack::Graphql => "GraphQL introspection",
            Attack::AttackTools => "Attack tool",
            Attack::Shellshock => "Shellshock",
            Attack::Malformed => "Malformed HTTP request",
        }
    }

    /// The effect `protections` assigns to this class.
    pub fn effect_in(self, p: &Protections) -> CnafEffect {
        match self {
            Attack::Sqli => p.sqli,
            Attack::Xss => p.xss,
            Attack::Cmdi => p.cmdi,
            Attack::CodeInjection => p.code_injection,
            Attack::Lfi => p.lfi,
            Attack::Ldap => p.ldap,
            Attack::Graphql => p.graphql,
            Attack::AttackTools => p.attack_tools,
            Attack::Shellshock => p.shellshock,
            Attack::Malformed => p.malformed,
        }
    }
}

impl fmt::Display for Attack {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.key())
    }
}

/// Where in the request a finding was made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// The request line itself (method, version, target form).
    RequestLine,
    /// The URL path.
    Path,
    /// A query parameter value (the parameter name is carried).
    Query(String),
    /// A query parameter name.
    QueryName(String),
    /// An `application/x-www-form-urlencoded` field value.
    Form(String),
    /// A JSON value at a path like `$.user.name` or a key (`key` is true).
    Json { path: String, key: bool },
    /// A multipart part: its field name, filename or content.
    Multipart(String),
    /// XML text, attribute or markup at a path like `/root/item`.
    Xml(String),
    /// A cookie value (the cookie name is carried).
    Cookie(String),
    /// A header value (the header name is carried, lower-case).
    Header(String),
    /// A body that could not be parsed as its declared type (inspected as text).
    Body,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::RequestLine => f.write_str("request line"),
            Location::Path => f.write_str("URL path"),
            Location::Query(n) => write!(f, "query parameter {n}"),
            Location::QueryName(n) => write!(f, "query parameter name {n}"),
            Location::Form(n) => write!(f, "form field {n}"),
            Location::Json { path, key: false } => write!(f, "JSON value {path}"),
            Location::Json { path, key: true } => write!(f, "JSON key {path}"),
            Location::Multipart(n) => write!(f, "multipart part {n}"),
            Location::Xml(p) => write!(f, "XML {p}"),
            Location::Cookie(n) => write!(f, "cookie {n}"),
            Location::Header(n) => write!(f, "header {n}"),
            Location::Body => f.write_str("request body"),
        }
    }
}

/// One detection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// What was detected.
    pub attack: Attack,
    /// Where.
    pub location: Location,
    /// The effect the protections assign (`Alert` or `Prevent`, never `Disable`).
    pub effect: CnafEffect,
    /// A short, sanitised excerpt of the offending (decoded) value: at most
    /// [`SNIPPET_MAX`] characters, control characters replaced by `?`.
    pub snippet: String,
}

/// Longest snippet carried in a finding.
pub const SNIPPET_MAX: usize = 120;

/// Make a value safe for logs and the console: printable, single-line, bounded.
pub fn sanitize_snippet(s: &str) -> String {
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i >= SNIPPET_MAX {
            out.push('…');
            break;
        }
        out.push(if c.is_control() { '?' } else { c });
    }
    out
}

/// What the proxy should do with the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Nothing detected (or every detection disabled): forward.
    Allow,
    /// Something detected in `alert` mode only: forward and audit.
    Alert,
    /// At least one detection in `prevent` mode: answer 403 and audit.
    Block,
}

/// The result of [`crate::inspect`]: every finding, at most one per attack class.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Verdict {
    /// Findings in the order they were made.
    pub findings: Vec<Finding>,
}

impl Verdict {
    /// The action the findings call for.
    pub fn action(&self) -> Action {
        if self
            .findings
            .iter()
            .any(|f| f.effect == CnafEffect::Prevent)
        {
            Action::Block
        } else if self.findings.is_empty() {
            Action::Allow
        } else {
            Action::Alert
        }
    }

    /// The finding that decides the action: the first `prevent` one, else the first one.
    pub fn primary(&self) -> Option<&Finding> {
        self.findings
            .iter()
            .find(|f| f.effect == CnafEffect::Prevent)
            .or_else(|| self.findings.first())
    }

    /// Whether `attack` was found.
    pub fn has(&self, attack: Attack) -> bool {
        self.findings.iter().any(|f| f.attack == attack)
    }
}
