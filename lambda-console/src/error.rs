//! [`ApiError`]: every way a request fails, turned into a status and a JSON
//! `{"error": "..."}` body. Internal failures are logged and answered with a generic text.

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use protect::api::ErrorBody;

use crate::store::StoreError;

/// A failed request.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// No or bad credentials.
    #[error("{0}")]
    Unauthorized(&'static str),
    /// Valid credentials without the right.
    #[error("{0}")]
    Forbidden(String),
    /// A field of the request is wrong; the text names it and the fix.
    #[error("{field}: {message}")]
    BadField { field: String, message: String },
    /// The body or query could not be read; the text comes from the parser and names the field.
    #[error("{0}")]
    BadRequest(String),
    /// The body is larger than the route accepts.
    #[error("request body too large: at most {limit} bytes; send smaller batches")]
    TooLarge { limit: usize },
    /// No such thing (e.g. a credential id).
    #[error("{0}")]
    NotFound(String),
    /// The thing already exists.
    #[error("{0}")]
    Conflict(String),
    /// A limit on how much a caller may add was reached.
    #[error("{0}")]
    TooMany(String),
    /// `If-Match` named another revision.
    #[error("{0}")]
    PreconditionFailed(String),
    /// An AWS service the console depends on refused or failed; the text names the call and
    /// the fix (never a secret).
    #[error("{0}")]
    Upstream(String),
    /// Too many failed logins for the user or the source address.
    #[error(
        "too many failed logins for this user or from this address; retry after {retry_after} s"
    )]
    TooManyRequests { retry_after: u64 },
    /// Every password check slot stayed busy.
    #[error("the console is busy checking passwords; retry after {retry_after} s")]
    Busy { retry_after: u64 },
    /// The body is not sent as JSON.
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// The storage failed; details are logged, not returned.
    #[error("storage failed")]
    Store(#[from] StoreError),
    /// Anything else that is the console's fault; details are logged, not returned.
    #[error("internal error")]
    Internal(String),
}

impl ApiError {
    /// A bad field with its fix.
    pub fn field(field: impl Into<String>, message: impl Into<String>) -> ApiError {
        ApiError::BadField {
            field: field.into(),
            message: message.into(),
        }
    }

    fn status(&self) -> StatusCode {
        match self {
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::BadField { .. } | ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::TooMany(_) => StatusCode::TOO_MANY_REQUESTS,
            ApiError::PreconditionFailed(_) => StatusCode::PRECONDITION_FAILED,
            ApiError::Upstream(_) => StatusCode::BAD_GATEWAY,
            ApiError::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Busy { .. } => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::Store(_) | ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let text = match &self {
            ApiError::Store(e) => {
                tracing::error!(error = %e, "storage failure");
                "internal error: the console's storage failed; retry later or see the console log"
                    .to_string()
            }
            ApiError::Internal(detail) => {
                tracing::error!(error = %detail, "internal failure");
                "internal error; see the console log".to_string()
            }
            other => other.to_string(),
        };
        let mut resp = (status, axum::Json(ErrorBody { error: text })).into_response();
        if let ApiError::TooManyRequests { retry_after } | ApiError::Busy { retry_after } = self {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
        }
        if status == StatusCode::UNAUTHORIZED {
            resp.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"console\", Basic realm=\"console\""),
            );
        }
        resp
    }
}

impl From<JsonRejection> for ApiError {
    fn from(r: JsonRejection) -> ApiError {
        ApiError::BadRequest(format!("body: {}", r.body_text()))
    }
}

impl From<QueryRejection> for ApiError {
    fn from(r: QueryRejection) -> ApiError {
        ApiError::BadRequest(format!("query: {}", r.body_text()))
    }
}
