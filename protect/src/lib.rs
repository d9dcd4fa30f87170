//! `protect`: what the defender, the CLI and the console all speak.
//!
//! - [`policy`]: the runtime policy (processes, DNS, network), its validation with JSON paths,
//!   scope matching and the evaluation API the defender calls.
//! - [`cnaf_policy`]: the CNAF (web application firewall) policy model.
//! - [`pattern`]: case-insensitive `*` wildcard patterns used by scopes, processes and domains.
//! - [`credential`]: the scope of a defender credential (task families, clusters) and the
//!   checks of what a defender claims against it.
//! - [`audit`]: the audit record and its messages.
//! - [`embed`]: the task-definition transform that embeds the defender.
//! - [`api`]: the console HTTP API's request and response bodies (console and defender).
//!
//! No I/O happens here beyond what a caller hands in.

pub mod api;
pub mod audit;
pub mod cnaf_policy;
pub mod credential;
pub mod embed;
pub mod pattern;
pub mod policy;
