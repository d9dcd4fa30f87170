//! `lambda-console`: the console API — policies, audits, defenders and the transform.
//!
//! - [`app`]: the whole console as one axum [`axum::Router`]; [`server`] serves it locally
//!   (`lambda-console serve`, SQLite) or on AWS Lambda (`lambda_http`, DynamoDB).
//! - [`state`]: [`AppState`] (store + settings + small caches) and [`Settings`].
//! - [`store`]: the [`store::Store`] trait with its SQLite and DynamoDB implementations and
//!   the conformance suite both pass.
//! - [`auth`]: Argon2 passwords, hashed bearer and defender tokens, role extractors;
//!   [`guard`]: login throttling, bounded Argon2 work, remembered checks.
//! - [`hygiene`]: what every response and request body goes through (security headers,
//!   `Content-Type`); [`serve`]: the local HTTP server's limits.
//! - [`routes`]: the handlers, one module per area; [`query`]: their typed query strings;
//!   [`openapi`]: the generated document.
//! - [`error`]: [`ApiError`], the one error type of every handler; [`body`]: bounded JSON bodies.
//! - [`bootstrap`]: the first admin on an empty store; [`vault`]: Secrets Manager for the
//!   credentials the transform creates.

pub mod auth;
pub mod body;
pub mod bootstrap;
pub mod error;
pub mod guard;
pub mod hygiene;
pub mod openapi;
pub mod query;
pub mod routes;
pub mod serve;
pub mod server;
pub mod state;
pub mod store;
pub mod vault;

pub use error::ApiError;
pub use routes::app;
pub use state::{AppState, Settings, TransformSecrets};
