//! The detectors and the inspector that runs them over every decoded value.

/// A substring searcher for a constant needle, built once per call site on first use:
/// `memchr::memmem::find(hay, needle)` builds a new searcher on every call, which costs more
/// than the search itself on the short values detectors see. Same results as `memmem::find`
/// / `memmem::find_iter` with that needle.
macro_rules! finder {
    ($needle:expr) => {{
        static FINDER: std::sync::LazyLock<memchr::memmem::Finder<'static>> =
            std::sync::LazyLock::new(|| memchr::memmem::Finder::new($needle));
        &*FINDER
    }};
}

#[cfg(test)]
pub(crate) mod test_support;

pub mod cmdi;
pub mod code;
pub mod graphql;
pub mod ldap;
pub mod lfi;
pub mod malformed;
pub mod sqli;
pub mod tools;
pub mod xss;

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};

use crate::decode::{base64_decoded, normalize};
use crate::model::{sanitize_snippet, Attack, Finding, Location};
use crate::policy::{CnafEffect, Paranoia, Protections};

thread_local! {
    /// Header values found clean, with what they were checked under: the protections mask and
    /// the paranoia level (a value clean at level 1 may not be at level 2).
    static CLEAN: std::cell::RefCell<((u16, Paranoia), std::collections::HashSet<String>)> =
        std::cell::RefCell::new(((0, Paranoia::DEFAULT), std::collections::HashSet::new()));
}

/// A case-insensitive, leftmost-longest automaton over a fixed literal list.
pub(crate) fn literals(patterns: &[&str]) -> AhoCorasick {
    #[allow(clippy::expect_used)]
    AhoCorasickBuilder::new()
        .ascii_case_insensitive(true)
        .match_kind(MatchKind::LeftmostLongest)
        .build(patterns)
        .expect("a fixed list of short literals always builds")
}

/// `b` without its `/* ... */` comments (an unclosed one runs to the end): how C-family
/// languages (PHP, JavaScript) read code that hides names behind comments.
pub(crate) fn without_block_comments(b: &[u8]) -> std::borrow::Cow<'_, [u8]> {
    if finder!(b"/*").find(b).is_none() {
        return std::borrow::Cow::Borrowed(b);
    }
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'/' && b.get(i + 1) == Some(&b'*') {
            i = finder!(b"*/")
                .find(&b[i + 2..])
                .map_or(b.len(), |p| i + 2 + p + 2);
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    std::borrow::Cow::Owned(out)
}

/// How a value is to be decoded and which extra checks apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ValueKind {
    /// Query string or form body: `+` means space.
    FormEncoded,
    /// Anything else (path, JSON, XML, multipart, cookies, headers).
    Plain,
    /// The `User-Agent` header: also matched against scanner names.
    UserAgent,
}

/// Runs the enabled detectors, remembering at most one finding per attack class.
pub(crate) struct Inspector<'p> {
    protections: &'p Protections,
    findings: Vec<Finding>,
    found: u16,
    enabled: u16,
    paranoia: Paranoia,
}

fn bit(a: Attack) -> u16 {
    1 << (a as u16)
}

impl<'p> Inspector<'p> {
    pub(crate) fn new(protections: &'p Protections) -> Inspector<'p> {
        let enabled = Attack::ALL
            .iter()
            .filter(|a| a.effect_in(protections) != CnafEffect::Disable)
            .fold(0, |m, a| m | bit(*a));
        Inspector {
            protections,
            findings: Vec::new(),
            found: 0,
            enabled,
            paranoia: protections.paranoia,
        }
    }

    /// Whether detector `a` still has to run.
    pub(crate) fn wants(&self, a: Attack) -> bool {
        self.enabled & bit(a) != 0 && self.found & bit(a) == 0
    }

    /// Whether every enabled detector has already found something.
    pub(crate) fn done(&self) -> bool {
        self.enabled & !self.found == 0
    }

    pub(crate) fn record(&mut self, attack: Attack, location: Location, excerpt: &str) {
        if !self.wants(attack) {
            return;
        }
        self.found |= bit(attack);
        self.findings.push(Finding {
            attack,
            location,
            effect: attack.effect_in(self.protections),
            snippet: sanitize_snippet(excerpt),
        });
    }

    pub(crate) fn into_findings(self) -> Vec<Finding> {
        self.findings
    }

    /// [`scan`](Self::scan) for header values that repeat across requests (`User-Agent`): a
    /// value found clean before under the same protections and paranoia level is not inspected
    /// again. The memory
    /// is per thread (the proxy runs one), exact (whole strings), and bounded.
    pub(crate) fn scan_repeated(
        &mut self,
        location: &dyn Fn() -> Location,
        raw: &str,
        kind: ValueKind,
    ) {
        const MAX_ENTRIES: usize = 512;
        const MAX_LEN: usize = 512;
        if raw.len() > MAX_LEN {
            return self.scan(location, raw, kind);
        }
        let under = (self.enabled, self.paranoia);
        let known = CLEAN.with(|c| {
            let c = c.borrow();
            c.0 == under && c.1.contains(raw)
        });
        if known {
            return;
        }
        let before = self.findings.len();
        self.scan(location, raw, kind);
        if self.findings.len() == before && self.found == 0 {
            CLEAN.with(|c| {
                let mut c = c.borrow_mut();
                if c.0 != under || c.1.len() >= MAX_ENTRIES {
                    c.0 = under;
                    c.1.clear();
                }
                c.1.insert(raw.to_string());
            });
        }
    }

    /// The rules that judge a value by the parameter it is sent in (a query or form field, a
    /// JSON member): an absolute URL in a parameter named like a file, page or template is a
    /// remote file inclusion ([`lfi::remote_include`]). `form`: `name` and `raw` are
    /// URL-encoded with `+` for space.
    /// `decoded`: `raw` as [`scan_decoding`](Self::scan_decoding) decoded it, if the caller has
    /// it (decoding is not repeated).
    pub(crate) fn scan_named(
        &mut self,
        location: &dyn Fn() -> Location,
        name: &str,
        raw: &str,
        decoded: Option<&str>,
        form: bool,
    ) {
        // every URL has a `:`, raw or percent-encoded
        if !self.wants(Attack::Lfi) || !raw.contains([':', '%']) {
            return;
        }
        let value = match decoded {
            Some(d) => std::borrow::Cow::Borrowed(d),
            None => std::borrow::Cow::Owned(normalize(raw, form)),
        };
        if value.contains(':') && lfi::remote_include(&normalize(name, form), &value) {
            self.record(Attack::Lfi, location(), &value);
        }
    }

    /// Decode `raw` every way an application might and run the value detectors on each form.
    pub(crate) fn scan(&mut self, location: &dyn Fn() -> Location, raw: &str, kind: ValueKind) {
        self.scan_decoding(location, raw, kind);
    }

    /// [`scan`](Self::scan), handing back the value's main decoding (`None` when nothing was
    /// left to inspect), for a caller that judges it again with the parameter's name.
    pub(crate) fn scan_decoding(
        &mut self,
        location: &dyn Fn() -> Location,
        raw: &str,
        kind: ValueKind,
    ) -> Option<String> {
        if self.done() || raw.is_empty() {
            return None;
        }
        if kind == ValueKind::UserAgent
            && self.wants(Attack::AttackTools)
            && tools::scanner_agent(raw)
        {
            self.record(Attack::AttackTools, location(), raw);
        }
        let decoded = normalize(raw, kind == ValueKind::FormEncoded);
        if kind == ValueKind::FormEncoded && raw.contains('+') && raw.contains(['[', '(', '`']) {
            // a literal `+` the client did not encode (`(![]+[])`) is still code to a lax parser
            self.scan_decoded(location, &normalize(raw, false));
        }
        self.scan_decoded(location, &decoded);
        if decoded.contains('+') && !decoded.contains(' ') {
            // `+` left as-is by a JSON or path decoder may still be a space to a backend
            self.scan_decoded(location, &decoded.replace('+', " "));
        }
        let b64 = base64_decoded(raw).or_else(|| {
            if decoded != raw {
                base64_decoded(&decoded)
            } else {
                None
            }
        });
        if self.wants(Attack::CodeInjection) && code::java_gadget_in_base64(raw) {
            self.record(Attack::CodeInjection, location(), raw);
        }
        if let Some(b64) = b64 {
            let inner = normalize(&b64, false);
            self.scan_decoded(location, &inner);
        }
        Some(decoded)
    }

    fn scan_decoded(&mut self, loc: &dyn Fn() -> Location, v: &str) {
        // A GraphQL document with arguments or directives (`{ user(id: 7) { name } }`):
        // `name(args)` is a field, not a function call, and braces are selection sets, not shell
        // groups. Only its string literals are free text; GraphQL's alphabet has no `'`, `;`,
        // `<` or `/` to break out of anything with. So the document is judged as GraphQL and its
        // strings as values. A document without `(` or `@` (`{id,}`, which is also a bash brace
        // expansion) goes through the detectors as it is: nothing in it looks like a call.
        if v.len() > 2
            && v.trim_start().starts_with(['{', 'q', 'm', 's', 'f'])
            && v.contains(['(', '@'])
            && graphql::is_document(v)
        {
            if self.wants(Attack::Graphql)
                && (graphql::detect(v)
                    || self.paranoia > Paranoia::MIN && graphql::paranoid(v, self.paranoia))
            {
                self.record(Attack::Graphql, loc(), v);
            }
            for text in graphql::string_literals(v) {
                if self.done() {
                    return;
                }
                self.scan_decoded(loc, &normalize(text, false));
            }
            return;
        }
        if self.paranoia > Paranoia::MIN {
            self.scan_paranoid(loc, v);
        }
        // Identifiers and numbers (`red`, `42`, `price_asc`, `abc123`): only keyword- and
        // marker-led rules can match them, so skip the rest when neither is present.
        if v.len() <= 256
            && v.bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b'-')
            && !sqli::KEYWORDS.is_match(v)
            && !code::MARKERS.is_match(v)
            // ORM lookups (`password__startswith`) are identifiers a code rule reads
            && !v.contains("__")
        {
            return;
        }
        type Check = fn(&str) -> bool;
        const CHECKS: [(Attack, Check); 10] = [
            (Attack::Shellshock, tools::shellshock),
            (Attack::Sqli, sqli::detect),
            (Attack::Xss, xss::detect),
            (Attack::Cmdi, cmdi::detect),
            (Attack::CodeInjection, code::detect),
            (Attack::Lfi, lfi::detect),
            (Attack::Ldap, ldap::detect),
            (Attack::Graphql, graphql::detect),
            (Attack::AttackTools, tools::oob_callback),
            (Attack::Malformed, malformed::injected_crlf),
        ];
        for (attack, check) in CHECKS {
            if self.wants(attack) && check(v) {
                self.record(attack, loc(), v);
            }
        }
    }

    /// The rules of paranoia levels 2 to 4: each detector's fragment rules at the policy's
    /// level. They run before the level-1 rules so a plain identifier reaches them too.
    fn scan_paranoid(&mut self, loc: &dyn Fn() -> Location, v: &str) {
        type Check = fn(&str, Paranoia) -> bool;
        const CHECKS: [(Attack, Check); 7] = [
            (Attack::Sqli, sqli::paranoid),
            (Attack::Xss, xss::paranoid),
            (Attack::Cmdi, cmdi::paranoid),
            (Attack::CodeInjection, code::paranoid),
            (Attack::Lfi, lfi::paranoid),
            (Attack::Ldap, ldap::paranoid),
            (Attack::Graphql, graphql::paranoid),
        ];
        for (attack, check) in CHECKS {
            if self.wants(attack) && check(v, self.paranoia) {
                self.record(attack, loc(), v);
            }
        }
    }
}
