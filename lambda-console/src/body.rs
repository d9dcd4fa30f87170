//! [`JsonBody`]: a JSON request body read with a size bound and parsed with the JSON path of
//! any bad field in the error.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// Default bound for request bodies (1 MiB).
pub const DEFAULT_LIMIT: usize = 1 << 20;

/// A JSON body of at most `LIMIT` bytes. Any Content-Type is accepted (pipelines often send
/// `curl -d` without one); the body must be JSON.
pub struct JsonBody<T, const LIMIT: usize = DEFAULT_LIMIT>(pub T);

/// Reads the whole body, refusing more than `limit` bytes.
pub async fn read_bounded(req: Request, limit: usize) -> Result<Bytes, ApiError> {
    axum::body::to_bytes(req.into_body(), limit)
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
        })
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
