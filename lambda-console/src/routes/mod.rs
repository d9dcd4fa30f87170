//! The HTTP routes; [`app`] assembles them into the console's router.

pub mod audits;
pub mod credentials;
pub mod defenders;
pub mod policies;
pub mod users;

use std::time::Instant;

use axum::extract::Request;
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::Router;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use protect::api::ErrorBody;

use crate::auth::{Auditor, Caller};
use crate::error::ApiError;
use crate::state::AppState;

/// A page of a key-ordered list: `limit` rows after key `after` (from `?limit=&cursor=`, see
/// [`crate::query::PageSize`]).
pub(crate) struct Page {
    pub(crate) limit: usize,
    pub(crate) after: Option<String>,
}

impl Page {
    /// A page of `limit` rows after `cursor` (a `next_cursor` this console issued: the
    /// base64url of the last key of the previous page).
    pub(crate) fn new(limit: usize, cursor: Option<&str>) -> Result<Page, ApiError> {
        let after = match cursor {
            None => None,
            Some(c) => Some(
                URL_SAFE_NO_PAD
                    .decode(c)
                    .ok()
                    .and_then(|b| String::from_utf8(b).ok())
                    .filter(|k| !k.is_empty())
                    .ok_or_else(|| {
                        ApiError::field(
                            "cursor",
                            "not a cursor this console issued; pass next_cursor from the \
                             previous page",
                        )
                    })?,
            ),
        };
        Ok(Page { limit, after })
    }

    /// Cuts `rows` (fetched with `limit + 1`) to the page, with the cursor of the next page
    /// when there is one.
    pub(crate) fn split<T>(
        &self,
        mut rows: Vec<T>,
        key: impl Fn(&T) -> &str,
    ) -> (Vec<T>, Option<String>) {
        if rows.len() <= self.limit {
            return (rows, None);
        }
        rows.truncate(self.limit);
        let next = rows
            .last()
            .map(|r| URL_SAFE_NO_PAD.encode(key(r).as_bytes()));
        (rows, next)
    }
}

/// The whole console: every route of the contract, authenticated, with JSON errors, JSON
/// bodies and the security headers of [`crate::hygiene`].
pub fn app(state: AppState) -> Router {
    let router = Router::new()
        .route("/api/v1/_ping", get(users::ping))
        .route("/api/v1/openapi.json", get(openapi))
        .route("/api/v1/authenticate", post(users::authenticate))
        .route("/api/v1/logout", post(users::logout))
        .route("/api/v1/users", post(users::create_user))
        .route(
            "/api/v1/policies/runtime/app-embedded",
            get(policies::get_runtime).put(policies::put_runtime),
        )
        .route(
            "/api/v1/policies/firewall/app/app-embedded",
            get(policies::get_cnaf).put(policies::put_cnaf),
        )
        .route("/api/v1/defenders", get(defenders::list_defenders))
        .route("/api/v1/defenders/fargate.json", post(defenders::transform))
        .route("/api/v1/defenders/defaults", get(defenders::defaults))
        .route(
            "/api/v1/defenders/install-bundle",
            post(defenders::install_bundle),
        )
        .route(
            "/api/v1/defenders/credentials",
            get(credentials::list_credentials),
        )
        .route(
            "/api/v1/defenders/credentials/{id}",
            delete(credentials::revoke_credential),
        )
        .route(
            "/api/v1/audits/runtime/app-embedded",
            get(audits::runtime_audits),
        )
        .route(
            "/api/v1/audits/firewall/app/app-embedded",
            get(audits::firewall_audits),
        )
        .route("/api/v1/defender/policy", get(policies::defender_policy))
        .route("/api/v1/defender/audits", post(audits::post_audits))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn(crate::hygiene::require_json))
        .layer(middleware::from_fn(access_log));
    crate::hygiene::with_headers(router).with_state(state)
}

/// The OpenAPI document of this API.
#[utoipa::path(get, path = "/api/v1/openapi.json", tag = "console",
    security(("bearer" = []), ("basic" = [])),
    responses((status = 200, description = "OpenAPI 3.1 document", body = Object)))]
pub async fn openapi(_c: Caller<Auditor>) -> Response {
    axum::Json(crate::openapi::document()).into_response()
}

async fn not_found(req: Request) -> Response {
    (
        StatusCode::NOT_FOUND,
        axum::Json(ErrorBody {
            error: format!(
                "no route {}; see GET /api/v1/openapi.json for the API",
                req.uri().path()
            ),
        }),
    )
        .into_response()
}

async fn method_not_allowed(req: Request) -> Response {
    (
        StatusCode::METHOD_NOT_ALLOWED,
        axum::Json(ErrorBody {
            error: format!(
                "{} is not allowed on {}; see GET /api/v1/openapi.json",
                req.method(),
                req.uri().path()
            ),
        }),
    )
        .into_response()
}

/// Logs method, path (never the query or headers, which may carry credentials), status and
/// latency.
async fn access_log(req: Request, next: Next) -> Response {
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let start = Instant::now();
    let resp = next.run(req).await;
    let status = resp.status();
    let micros = start.elapsed().as_micros();
    if status.is_server_error() {
        tracing::warn!(%method, %path, status = status.as_u16(), micros, "request failed");
    } else {
        tracing::debug!(%method, %path, status = status.as_u16(), micros, "request");
    }
    resp
}
