//! Typed query strings. A route's query is one `#[derive(Deserialize, IntoParams)]` struct read
//! by [`Params`], so the parameters the OpenAPI document lists are the fields the handler gets,
//! with the types it parses: [`PageSize`] (an integer with its bounds), closed sets as enums
//! ([`RuntimeKind`], [`FirewallKind`], `Effect`, `DefenderStatus`, `Startup`). A value that does
//! not parse is a 400 naming the parameter (`limit: "0" is not a whole number from 1 to 1000`).

use std::fmt::Display;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use protect::api::DefenderStatus;
use protect::audit::AuditKind;
use protect::policy::{Effect, Startup};
use serde::de::{DeserializeOwned, Error as _};
use serde::{Deserialize, Deserializer};
use utoipa::openapi::schema::{ObjectBuilder, Schema, SchemaType, Type};
use utoipa::openapi::RefOr;

use crate::error::ApiError;

/// The query string parsed into `T`; a bad parameter is a 400 naming it.
pub struct Params<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for Params<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        let query = parts.uri.query().unwrap_or_default();
        let de = serde_urlencoded::Deserializer::new(form_urlencoded::parse(query.as_bytes()));
        serde_path_to_error::deserialize(de)
            .map(Params)
            .map_err(|e| {
                let field = e.path().to_string();
                ApiError::field(field, e.into_inner().to_string())
            })
    }
}

/// A query parameter's value type: parsed from the text (trimmed), with an error that says
/// what was expected.
pub trait QueryValue: Sized {
    fn from_query(text: &str) -> Result<Self, String>;
}

/// `deserialize_with` for a `QueryValue` field (`Option` fields also need `#[serde(default)]`).
pub fn value<'de, D: Deserializer<'de>, T: QueryValue>(d: D) -> Result<Option<T>, D::Error> {
    let text = String::deserialize(d)?;
    T::from_query(text.trim())
        .map(Some)
        .map_err(D::Error::custom)
}

/// "one of a, b, c" for error messages.
fn one_of<T: Display>(all: impl IntoIterator<Item = T>) -> String {
    all.into_iter()
        .map(|x| x.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// A string enum schema of `values`.
fn enum_schema<'a>(values: impl IntoIterator<Item = &'a str>) -> RefOr<Schema> {
    ObjectBuilder::new()
        .schema_type(SchemaType::new(Type::String))
        .enum_values(Some(values))
        .into()
}

/// A page size from 1 to `MAX` (`DEFAULT` when absent).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PageSize<const DEFAULT: usize, const MAX: usize>(usize);

impl<const DEFAULT: usize, const MAX: usize> PageSize<DEFAULT, MAX> {
    /// The size asked for, or the default.
    pub fn get(page: Option<Self>) -> usize {
        page.map_or(DEFAULT, |p| p.0)
    }
}

impl<const DEFAULT: usize, const MAX: usize> QueryValue for PageSize<DEFAULT, MAX> {
    fn from_query(text: &str) -> Result<Self, String> {
        match text.parse::<usize>() {
            Ok(n) if (1..=MAX).contains(&n) && !text.starts_with('+') => Ok(PageSize(n)),
            _ => Err(format!("{text:?} is not a whole number from 1 to {MAX}")),
        }
    }
}

impl<const DEFAULT: usize, const MAX: usize> PageSize<DEFAULT, MAX> {
    /// Its OpenAPI schema (`#[param(schema_with = ...)]`): an integer from 1 to `MAX`.
    pub fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(SchemaType::new(Type::Integer))
            .minimum(Some(1))
            .maximum(Some(MAX as f64))
            .default(Some(DEFAULT.into()))
            .into()
    }
}

/// A TCP port, 1 to 65535.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Port(pub u16);

impl QueryValue for Port {
    fn from_query(text: &str) -> Result<Self, String> {
        match text.parse::<u16>() {
            Ok(p) if p > 0 && !text.starts_with('+') => Ok(Port(p)),
            _ => Err(format!("{text:?} is not a port from 1 to 65535")),
        }
    }
}

impl QueryValue for Effect {
    fn from_query(text: &str) -> Result<Self, String> {
        Effect::ALL
            .into_iter()
            .find(|e| e.as_str() == text)
            .ok_or_else(|| {
                format!(
                    "unknown effect {text:?}; expected one of {}",
                    one_of(Effect::ALL)
                )
            })
    }
}

impl QueryValue for DefenderStatus {
    fn from_query(text: &str) -> Result<Self, String> {
        DefenderStatus::parse(text).ok_or_else(|| {
            format!(
                "unknown status {text:?}; expected one of {}",
                one_of(DefenderStatus::ALL.map(DefenderStatus::as_str))
            )
        })
    }
}

impl QueryValue for Startup {
    fn from_query(text: &str) -> Result<Self, String> {
        Startup::parse(text).ok_or_else(|| {
            "must be availability (start at once) or security (wait for the policy)".to_string()
        })
    }
}

/// Whether an audit kind is a CNAF (firewall) audit; all others are runtime audits.
pub fn is_firewall(kind: AuditKind) -> bool {
    matches!(kind, AuditKind::Cnaf)
}

/// Every audit kind, in the order error messages list them.
pub const KINDS: [AuditKind; 5] = [
    AuditKind::Process,
    AuditKind::Dns,
    AuditKind::Network,
    AuditKind::Listen,
    AuditKind::Cnaf,
];

/// An audit kind of the route's category (`FIREWALL`: the CNAF route).
fn route_kind(text: &str, firewall: bool) -> Result<AuditKind, String> {
    let kind: AuditKind = text.parse()?;
    if is_firewall(kind) == firewall {
        return Ok(kind);
    }
    let on_route: Vec<&str> = KINDS
        .iter()
        .filter(|k| is_firewall(**k) == firewall)
        .map(|k| k.as_str())
        .collect();
    let expected = match on_route.split_last() {
        Some((last, [])) => last.to_string(),
        Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
        None => String::new(),
    };
    Err(format!(
        "{text:?} audits are not on this route; expected {expected}"
    ))
}

fn kinds_schema(firewall: bool) -> RefOr<Schema> {
    enum_schema(
        KINDS
            .iter()
            .filter(|k| is_firewall(**k) == firewall)
            .map(|k| k.as_str()),
    )
}

/// A `kind` of the runtime audits route (every kind but `cnaf`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RuntimeKind(pub AuditKind);

impl QueryValue for RuntimeKind {
    fn from_query(text: &str) -> Result<Self, String> {
        route_kind(text, false).map(RuntimeKind)
    }
}

impl RuntimeKind {
    /// Its OpenAPI schema: the kinds of the route.
    pub fn schema() -> RefOr<Schema> {
        kinds_schema(false)
    }
}

/// A `kind` of the CNAF audits route (`cnaf`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FirewallKind(pub AuditKind);

impl QueryValue for FirewallKind {
    fn from_query(text: &str) -> Result<Self, String> {
        route_kind(text, true).map(FirewallKind)
    }
}

impl FirewallKind {
    /// Its OpenAPI schema: the kinds of the route.
    pub fn schema() -> RefOr<Schema> {
        kinds_schema(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_sizes() {
        type P = PageSize<100, 500>;
        assert_eq!(P::from_query("500"), Ok(PageSize(500)));
        assert_eq!(P::get(None), 100);
        for bad in ["0", "501", "", "+5", "-1", "1.0", "x"] {
            assert_eq!(
                P::from_query(bad),
                Err(format!("{bad:?} is not a whole number from 1 to 500"))
            );
        }
    }

    #[test]
    fn kinds_by_route() {
        assert_eq!(
            RuntimeKind::from_query("cnaf"),
            Err(
                "\"cnaf\" audits are not on this route; expected process, dns, network or listen"
                    .to_string()
            )
        );
        assert_eq!(
            FirewallKind::from_query("dns"),
            Err("\"dns\" audits are not on this route; expected cnaf".to_string())
        );
        for k in KINDS {
            let runtime = RuntimeKind::from_query(k.as_str()).is_ok();
            let firewall = FirewallKind::from_query(k.as_str()).is_ok();
            assert!(runtime != firewall, "{k} is on exactly one route");
        }
    }
}
