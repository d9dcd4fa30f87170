//! Case-insensitive `*` wildcard patterns.
//!
//! A [`Pattern`] is a string where `*` stands for any run of characters (including none, and
//! including `/` and `.`); every other character matches itself, ignoring case. Scopes, process
//! names and domain names all use it. Patterns are checked when built: an empty pattern, a
//! control character or an over-long pattern is a [`PatternError`].

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Longest pattern accepted, in bytes (a long absolute path fits comfortably).
pub const MAX_PATTERN_LEN: usize = 1024;

/// Why a string is not a valid [`Pattern`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatternError {
    /// The pattern is the empty string (use `*` to match everything).
    #[error("empty pattern; use \"*\" to match everything")]
    Empty,
    /// The pattern contains a control character such as a newline or NUL.
    #[error("pattern {pattern:?} contains a control character; remove it")]
    ControlCharacter {
        /// The offending pattern.
        pattern: String,
    },
    /// The pattern is longer than [`MAX_PATTERN_LEN`] bytes.
    #[error("pattern is {len} bytes long; the limit is {max}")]
    TooLong {
        /// Length of the pattern in bytes.
        len: usize,
        /// The limit, [`MAX_PATTERN_LEN`].
        max: usize,
    },
}

/// A case-insensitive pattern with `*` wildcards.
#[derive(Clone)]
pub struct Pattern {
    original: String,
    /// `original` lower-cased once and split at `*`, so matching folds only the subject and
    /// allocates nothing for ASCII subjects.
    pieces: Vec<Box<[u8]>>,
}

fn pieces(lower: &str) -> Vec<Box<[u8]>> {
    lower
        .as_bytes()
        .split(|&b| b == b'*')
        .map(Box::from)
        .collect()
}

/// A JSON Schema `pattern` for text without control characters (Unicode category Cc, as
/// [`char::is_control`]), the rule of every pattern and identity field.
pub const NO_CONTROL_REGEX: &str = r"^[^\u0000-\u001f\u007f-\u009f]*$";

#[cfg(feature = "openapi")]
impl utoipa::PartialSchema for Pattern {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{ObjectBuilder, SchemaType, Type};
        ObjectBuilder::new()
            .schema_type(SchemaType::new(Type::String))
            .description(Some(
                "A case-insensitive pattern; `*` matches any run of characters",
            ))
            .min_length(Some(1))
            .max_length(Some(MAX_PATTERN_LEN))
            .pattern(Some(NO_CONTROL_REGEX))
            .into()
    }
}

#[cfg(feature = "openapi")]
impl utoipa::ToSchema for Pattern {}

impl Pattern {
    /// Builds a pattern, rejecting empty, over-long or control-character patterns.
    pub fn new(p: &str) -> Result<Pattern, PatternError> {
        if p.is_empty() {
            return Err(PatternError::Empty);
        }
        if p.len() > MAX_PATTERN_LEN {
            return Err(PatternError::TooLong {
                len: p.len(),
                max: MAX_PATTERN_LEN,
            });
        }
        if p.chars().any(char::is_control) {
            return Err(PatternError::ControlCharacter {
                pattern: p.to_owned(),
            });
        }
        Ok(Pattern {
            original: p.to_owned(),
            pieces: pieces(&p.to_lowercase()),
        })
    }

    /// The pattern `*`, matching everything.
    pub fn any() -> Pattern {
        Pattern {
            original: "*".to_owned(),
            pieces: pieces("*"),
        }
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.original
    }

    /// True when the pattern is made only of `*` and so matches every string.
    pub fn matches_everything(&self) -> bool {
        self.original.bytes().all(|b| b == b'*')
    }

    /// True when the pattern contains at least one `*`.
    pub fn has_wildcard(&self) -> bool {
        self.original.contains('*')
    }

    /// Whether `s` matches the pattern, ignoring case.
    pub fn matches(&self, s: &str) -> bool {
        if s.is_ascii() {
            wildcard_match(&self.pieces, s.as_bytes())
        } else {
            wildcard_match(&self.pieces, s.to_lowercase().as_bytes())
        }
    }
}

/// Matches `subject` against the lower-cased pattern split at `*` (`pieces`); other bytes
/// compare after ASCII lower-casing of the subject. The first piece must be a prefix, the last a
/// suffix, and the middle pieces are found leftmost-first in order, which is exact for `*`-only
/// patterns.
fn wildcard_match(pieces: &[Box<[u8]>], subject: &[u8]) -> bool {
    let (first, last, middle) = match pieces {
        [] => return subject.is_empty(),
        // No `*` at all: the whole subject must equal the pattern.
        [only] => return eq_fold(only, subject),
        [first, middle @ .., last] => (first, last, middle),
    };
    if subject.len() < first.len() + last.len() {
        return false;
    }
    let (head, tail) = subject.split_at(first.len());
    if !eq_fold(first, head) {
        return false;
    }
    let (mut window, end) = tail.split_at(tail.len() - last.len());
    if !eq_fold(last, end) {
        return false;
    }
    for piece in middle {
        match find_fold(window, piece) {
            Some(at) => window = &window[at + piece.len()..],
            None => return false,
        }
    }
    true
}

/// `pattern` (already lower-case) equals `subject` after ASCII lower-casing.
fn eq_fold(pattern: &[u8], subject: &[u8]) -> bool {
    pattern.len() == subject.len()
        && pattern
            .iter()
            .zip(subject)
            .all(|(p, s)| *p == s.to_ascii_lowercase())
}

/// Leftmost position of `needle` (lower-case) in `haystack`, ignoring ASCII case.
fn find_fold(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() {
        return Some(0);
    }
    haystack
        .windows(needle.len())
        .position(|w| eq_fold(needle, w))
}

impl PartialEq for Pattern {
    fn eq(&self, other: &Self) -> bool {
        self.original == other.original
    }
}

impl Eq for Pattern {}

impl std::hash::Hash for Pattern {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.original.hash(state);
    }
}

impl fmt::Debug for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Pattern({:?})", self.original)
    }
}

impl fmt::Display for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.original)
    }
}

impl std::str::FromStr for Pattern {
    type Err = PatternError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Pattern::new(s)
    }
}

impl Serialize for Pattern {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.original)
    }
}

impl<'de> Deserialize<'de> for Pattern {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        Pattern::new(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn p(s: &str) -> Pattern {
        Pattern::new(s).expect("valid pattern")
    }

    #[test]
    fn literal_patterns_match_whole_string_ignoring_case() {
        assert!(p("mkdir").matches("mkdir"));
        assert!(p("mkdir").matches("MKDIR"));
        assert!(p("MkDir").matches("mkdir"));
        assert!(!p("mkdir").matches("mkdirs"));
        assert!(!p("mkdir").matches("xmkdir"));
        assert!(!p("mkdir").matches(""));
    }

    #[test]
    fn star_matches_any_run_including_empty_slash_and_dot() {
        assert!(p("*").matches(""));
        assert!(p("*").matches("anything/at.all"));
        assert!(p("**").matches("x"));
        assert!(p("twistlock-fargate-task*").matches("twistlock-fargate-task"));
        assert!(p("twistlock-fargate-task*").matches("Twistlock-Fargate-Task-prod"));
        assert!(!p("twistlock-fargate-task*").matches("my-twistlock-fargate-task"));
        assert!(p("*.evil.example").matches("a.evil.example"));
        assert!(p("*.evil.example").matches("x.y.evil.example"));
        assert!(!p("*.evil.example").matches("evil.example"));
        assert!(p("/usr/*/nc").matches("/usr/local/bin/nc"));
        assert!(p("a*b*c").matches("abc"));
        assert!(p("a*b*c").matches("a-b-b-c"));
        assert!(!p("a*b*c").matches("acb"));
        assert!(
            !p("ab*ba").matches("aba"),
            "prefix and suffix must not overlap"
        );
        assert!(p("*ab*ab*").matches("abab"));
        assert!(!p("*ab*ab*").matches("aba"));
    }

    #[test]
    fn non_ascii_subjects_fold_case() {
        assert!(p("ÉCOLE*").matches("école-1"));
        assert!(p("*ü*").matches("MÜNCHEN"));
        assert!(!p("*ü*").matches("munchen"));
    }

    #[test]
    fn rejects_bad_patterns_with_clear_errors() {
        assert_eq!(Pattern::new(""), Err(PatternError::Empty));
        assert_eq!(
            Pattern::new("a\nb").map_err(|e| e.to_string()),
            Err("pattern \"a\\nb\" contains a control character; remove it".to_owned())
        );
        let long = "a".repeat(MAX_PATTERN_LEN + 1);
        assert_eq!(
            Pattern::new(&long),
            Err(PatternError::TooLong {
                len: MAX_PATTERN_LEN + 1,
                max: MAX_PATTERN_LEN
            })
        );
        assert_eq!(
            PatternError::Empty.to_string(),
            "empty pattern; use \"*\" to match everything"
        );
    }

    #[test]
    fn serde_round_trips_as_a_plain_string() {
        let pat = p("*.Evil.example");
        let json = serde_json::to_string(&pat).expect("serialize");
        assert_eq!(json, "\"*.Evil.example\"");
        let back: Pattern = serde_json::from_str(&json).expect("deserialize");
        assert_eq!(back, pat);
        assert_eq!(back.as_str(), "*.Evil.example");
        let err = serde_json::from_str::<Pattern>("\"\"").expect_err("empty rejected");
        assert!(err.to_string().contains("empty pattern"), "{err}");
    }

    #[test]
    fn helpers_describe_the_pattern() {
        assert!(p("***").matches_everything());
        assert!(!p("a*").matches_everything());
        assert!(p("a*").has_wildcard());
        assert!(!p("a").has_wildcard());
        assert_eq!(format!("{:?}", p("x*")), "Pattern(\"x*\")");
        assert_eq!(p("x*").to_string(), "x*");
    }

    /// Reference matcher: plain recursion over characters, lower-casing both sides.
    fn reference(pattern: &[char], subject: &[char]) -> bool {
        match pattern.split_first() {
            None => subject.is_empty(),
            Some(('*', rest)) => (0..=subject.len()).any(|i| reference(rest, &subject[i..])),
            Some((c, rest)) => match subject.split_first() {
                Some((s, srest)) => c == s && reference(rest, srest),
                None => false,
            },
        }
    }

    fn reference_match(pattern: &str, subject: &str) -> bool {
        let p: Vec<char> = pattern.to_lowercase().chars().collect();
        let s: Vec<char> = subject.to_lowercase().chars().collect();
        reference(&p, &s)
    }

    proptest! {
        #[test]
        fn matcher_agrees_with_reference(pattern in "[abAB*./]{1,10}", subject in "[abAB./]{0,12}") {
            let pat = Pattern::new(&pattern).expect("generated patterns are valid");
            prop_assert_eq!(pat.matches(&subject), reference_match(&pattern, &subject));
        }

        #[test]
        fn a_string_matches_itself_in_any_case(s in "[a-zA-Z0-9./_-]{1,20}") {
            let pat = Pattern::new(&s).expect("valid");
            prop_assert!(pat.matches(&s));
            prop_assert!(pat.matches(&s.to_uppercase()));
            prop_assert!(pat.matches(&s.to_lowercase()));
        }

        #[test]
        fn star_prefix_and_suffix_match_any_surrounding(core in "[a-z.]{1,8}", pre in "[a-z.]{0,8}", post in "[a-z.]{0,8}") {
            let pat = Pattern::new(&format!("*{core}*")).expect("valid");
            let subject = format!("{pre}{core}{post}");
            prop_assert!(pat.matches(&subject));
        }
    }
}
