//! [`JsonBody`]: a JSON request body read with a size bound and parsed with the JSON path of
//! any bad field in the error. Every body read here ([`read_bounded`]) is refused when an
//! object repeats a key ([`reject_duplicate_keys`]): parsers disagree on which copy wins, so a
//! document that means one thing to a reviewer and another to the console is not accepted.
//! (`Content-Type: application/json` is checked for every route by
//! [`crate::hygiene::require_json`].)

use std::collections::HashSet;
use std::fmt;

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use serde::de::{DeserializeOwned, DeserializeSeed, Error as _, MapAccess, SeqAccess, Visitor};

use crate::error::ApiError;

/// Default bound for request bodies (1 MiB).
pub const DEFAULT_LIMIT: usize = 1 << 20;

/// A JSON body of at most `LIMIT` bytes.
pub struct JsonBody<T, const LIMIT: usize = DEFAULT_LIMIT>(pub T);

/// Reads the whole body, refusing more than `limit` bytes and JSON with a repeated key.
pub async fn read_bounded(req: Request, limit: usize) -> Result<Bytes, ApiError> {
    let bytes = axum::body::to_bytes(req.into_body(), limit)
        .await
        .map_err(|e| {
            let too_large = std::error::Error::source(&e)
                .map(|s| s.is::<http_body_util::LengthLimitError>())
                .unwrap_or(false)
                || e.to_string().contains("length limit");
            if too_large {
                ApiError::TooLarge { limit }
            } else {
                ApiError::BadRequest("body: could not read the request body".to_string())
            }
        })?;
    reject_duplicate_keys(&bytes)?;
    Ok(bytes)
}

/// 400 naming the key and the object (JSON path) when an object of `bytes` repeats a key.
/// Anything that is not JSON passes: the parser of the route reports that.
pub fn reject_duplicate_keys(bytes: &[u8]) -> Result<(), ApiError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    match Walk("$").deserialize(&mut de) {
        Err(e) if e.classify() == serde_json::error::Category::Data => Err(ApiError::BadRequest(
            format!("body: {e}; send each key once"),
        )),
        _ => Ok(()),
    }
}

/// Visits a JSON value whose path is `.0`, failing on the first repeated key.
struct Walk<'p>(&'p str);

impl<'de> DeserializeSeed<'de> for Walk<'_> {
    type Value = ();

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Walk<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut i = 0usize;
        while seq
            .next_element_seed(Walk(&format!("{}[{i}]", self.0)))?
            .is_some()
        {
            i += 1;
        }
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut seen = HashSet::new();
        while let Some(key) = map.next_key::<String>()? {
            if seen.contains(&key) {
                return Err(A::Error::custom(format!(
                    "duplicate key {key:?} in {}",
                    self.0
                )));
            }
            map.next_value_seed(Walk(&format!("{}.{key}", self.0)))?;
            seen.insert(key);
        }
        Ok(())
    }
}

/// Parses JSON, naming the path of the first bad field.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::BadRequest(
            "body: empty; send a JSON document".to_string(),
        ));
    }
    axum::Json::<T>::from_bytes(bytes)
        .map(|j| j.0)
        .map_err(ApiError::from)
}

impl<S, T, const LIMIT: usize> FromRequest<S> for JsonBody<T, LIMIT>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, _state: &S) -> Result<Self, ApiError> {
        let bytes = read_bounded(req, LIMIT).await?;
        parse_json(&bytes).map(JsonBody)
    }
}

#[cfg(test)]
mod tests {
    use super::reject_duplicate_keys;

    #[test]
    fn a_repeated_key_is_named_with_its_object() {
        let err = reject_duplicate_keys(br#"{"a": [{"b": 1, "c": {"d": 1}, "b": 2}]}"#)
            .expect_err("duplicate");
        assert_eq!(
            err.to_string(),
            "body: duplicate key \"b\" in $.a[0] at line 1 column 34; send each key once"
        );
        assert!(reject_duplicate_keys(br#"{"a": {"b": 1}, "b": {"a": 1}}"#).is_ok());
        // Not JSON: left to the route's parser.
        assert!(reject_duplicate_keys(b"{\"a\": ").is_ok());
        assert!(reject_duplicate_keys(b"").is_ok());
    }
}
