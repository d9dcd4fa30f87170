//! ORM lookup injection: a filter key the way Django-style ORMs spell one (`field__lookup`,
//! `relation__field__lookup`), sent by a client to turn a filter endpoint into an oracle.

/// Lookups that compare part of a value or test its shape: each answer leaks a little of the
/// field (`startswith` one prefix at a time). Equality (`exact`, `in`) is left out.
const ORACLE_LOOKUPS: &[&str] = &[
    "startswith",
    "istartswith",
    "endswith",
    "iendswith",
    "contains",
    "icontains",
    "regex",
    "iregex",
    "gt",
    "gte",
    "lt",
    "lte",
    "isnull",
    "range",
    "search",
    "has_key",
    "has_keys",
    "has_any_keys",
    "contained_by",
    "trigram_similar",
];

/// Fields no client filters on legitimately: secrets and their digests.
const SECRET_FIELDS: &[&str] = &[
    "password",
    "passwd",
    "password_hash",
    "secret",
    "token",
    "api_key",
    "apikey",
    "salt",
    "otp",
    "private_key",
    "session_key",
    "reset_token",
];

/// The value is one ORM lookup key (`username__startswith`): the field path and the lookup.
/// `None` for anything else, prose that mentions one included.
fn lookup_key(v: &str) -> Option<Vec<&str>> {
    let v = v.trim();
    if v.len() > 256 || !v.contains("__") {
        return None;
    }
    let segments: Vec<&str> = v.split("__").collect();
    let ident = |s: &str| {
        s.bytes().next().is_some_and(|c| c.is_ascii_alphabetic())
            && s.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'_')
    };
    let last = segments.last()?.to_ascii_lowercase();
    (segments.len() >= 2
        && segments.iter().all(|s| ident(s))
        && ORACLE_LOOKUPS.contains(&last.as_str()))
    .then_some(segments)
}

/// `password__startswith`, `user__token__regex`: an oracle lookup on a secret field (level 1).
pub(super) fn secret_lookup(v: &str) -> bool {
    lookup_key(v).is_some_and(|segments| {
        segments[..segments.len() - 1]
            .iter()
            .any(|s| SECRET_FIELDS.contains(&s.to_ascii_lowercase().as_str()))
    })
}

/// `username__startswith`, `user__profile__icontains`: any oracle lookup key (level 2).
pub(super) fn any_lookup(v: &str) -> bool {
    lookup_key(v).is_some()
}
