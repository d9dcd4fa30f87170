//! What every request and response of the console goes through, on Lambda and locally:
//!
//! - [`require_json`]: a request body on `POST`/`PUT`/`PATCH` must be sent with one
//!   `Content-Type: application/json` (or a `+json` type), else 415; an empty body needs none.
//! - [`with_headers`]: `X-Content-Type-Options: nosniff`, `Content-Security-Policy:
//!   default-src 'none'; frame-ancestors 'none'`, `Referrer-Policy: no-referrer`,
//!   `X-Frame-Options: DENY` on every response, and `Cache-Control: no-store` (tokens, policies
//!   and audits must not land in a shared or browser cache; defenders revalidate with their own
//!   `If-None-Match`, not an HTTP cache).

use axum::body::HttpBody;
use axum::extract::Request;
use axum::http::header::{
    CACHE_CONTROL, CONTENT_LENGTH, CONTENT_SECURITY_POLICY, CONTENT_TYPE, REFERRER_POLICY,
    TRANSFER_ENCODING, X_CONTENT_TYPE_OPTIONS, X_FRAME_OPTIONS,
};
use axum::http::{HeaderValue, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Router;
use tower_http::set_header::SetResponseHeaderLayer;

use crate::error::ApiError;

/// The `Content-Security-Policy` of the API: nothing may be loaded or framed.
pub const CSP: &str = "default-src 'none'; frame-ancestors 'none'";

/// Whether a `Content-Type` value is JSON: `application/json` or `application/*+json`, any
/// parameters (`; charset=utf-8`) allowed.
pub fn is_json(content_type: &str) -> bool {
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || essence
            .strip_prefix("application/")
            .is_some_and(|s| s.ends_with("+json"))
}

/// 415 for a request body that is not sent as JSON.
pub async fn require_json(req: Request, next: Next) -> Response {
    let writes = matches!(*req.method(), Method::POST | Method::PUT | Method::PATCH);
    // HTTP/1 frames a request body with Content-Length or Transfer-Encoding; a Lambda event's
    // body has a known size.
    let headers = req.headers();
    let has_body = match headers.get(CONTENT_LENGTH) {
        Some(len) => len.as_bytes() != b"0",
        None => headers.contains_key(TRANSFER_ENCODING) || req.body().size_hint().lower() > 0,
    };
    if writes && has_body {
        let values: Vec<_> = req.headers().get_all(CONTENT_TYPE).iter().collect();
        let ok = matches!(values[..], [v] if v.to_str().is_ok_and(is_json));
        if !ok {
            let sent = match &values[..] {
                [] => "none".to_string(),
                [v] => v
                    .to_str()
                    .map_or_else(|_| "an unreadable value".to_string(), |t| format!("{t:?}")),
                many => format!("{} Content-Type headers", many.len()),
            };
            return ApiError::UnsupportedMediaType(format!(
                "Content-Type: the body must be sent as `Content-Type: application/json` \
                 (got {sent}); with curl add -H 'Content-Type: application/json'"
            ))
            .into_response();
        }
    }
    next.run(req).await
}

/// Adds the security and cache headers to every response of `router`.
pub fn with_headers<S: Clone + Send + Sync + 'static>(router: Router<S>) -> Router<S> {
    let fixed = [
        (X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (CONTENT_SECURITY_POLICY, CSP),
        (REFERRER_POLICY, "no-referrer"),
        (X_FRAME_OPTIONS, "DENY"),
        (CACHE_CONTROL, "no-store"),
    ];
    fixed.into_iter().fold(router, |r, (name, value)| {
        r.layer(SetResponseHeaderLayer::overriding(
            name,
            HeaderValue::from_static(value),
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::is_json;

    #[test]
    fn json_content_types() {
        for t in [
            "application/json",
            "Application/JSON; charset=utf-8",
            "application/merge-patch+json",
        ] {
            assert!(is_json(t), "{t}");
        }
        for t in [
            "",
            "text/plain",
            "application/x-www-form-urlencoded",
            "application/jsonp",
            "text/json+x",
        ] {
            assert!(!is_json(t), "{t}");
        }
    }
}
