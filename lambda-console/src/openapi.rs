//! The OpenAPI document, generated from the route annotations and the API types. The answers
//! every route shares (401/403 where credentials are needed, 400/413/415 where a body is taken, 429/503
//! where a password may be checked) are added by [`CommonResponses`], so no route can miss them.

use utoipa::openapi::path::Operation;
use utoipa::openapi::security::{Http, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{Content, Ref, ResponseBuilder};
use utoipa::{Modify, OpenApi};

use crate::routes::{audits, defenders, policies, users};

#[derive(OpenApi)]
#[openapi(
    info(title = "Fargate runtime-defense console", description = "Policies, audits, defenders and the task-definition transform. Every route but _ping and authenticate needs `Authorization: Bearer TOKEN` or Basic credentials; /api/v1/defender/* take a defender token."),
    paths(
        users::ping, users::authenticate, users::logout, users::create_user,
        crate::routes::openapi,
        policies::get_runtime, policies::put_runtime, policies::get_cnaf, policies::put_cnaf,
        policies::defender_policy,
        audits::post_audits, audits::runtime_audits, audits::firewall_audits,
        defenders::list_defenders, defenders::install_bundle, defenders::transform,
        defenders::defaults, crate::routes::credentials::list_credentials,
        crate::routes::credentials::revoke_credential,
    ),
    components(schemas(
        protect::api::ErrorBody, protect::api::Role, protect::api::AuthenticateRequest,
        protect::api::TokenResponse, protect::api::NewUser, protect::api::UserInfo,
        protect::api::InstallBundleRequest, protect::api::InstallBundle,
        protect::api::CredentialScope, protect::api::CredentialInfo, protect::api::CredentialList,
        protect::api::DefenderIdentity, protect::api::AuditBatch, protect::api::AuditBatchAck,
        protect::api::PolicyBundle, protect::api::DefenderInfo, protect::api::DefenderStatus,
        protect::api::DefenderList, protect::api::DefenderDefaults,
        protect::api::AuditPage, protect::audit::AuditKind, protect::policy::Effect,
        protect::policy::Startup, protect::pattern::Pattern,
    )),
    modifiers(&Security, &CommonResponses),
)]
struct ApiDoc;

/// Adds the shared error answers to every operation that lacks them.
struct CommonResponses;

impl CommonResponses {
    fn add(op: &mut Operation, status: &str, description: &str) {
        op.responses
            .responses
            .entry(status.to_string())
            .or_insert_with(|| {
                ResponseBuilder::new()
                    .description(description)
                    .content(
                        "application/json",
                        Content::new(Some(Ref::from_schema_name("ErrorBody"))),
                    )
                    .build()
                    .into()
            });
    }
}

impl Modify for CommonResponses {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        for (path, item) in doc.paths.paths.iter_mut() {
            let defender_only = path.starts_with("/api/v1/defender/");
            let checks_passwords = path == "/api/v1/authenticate";
            for op in [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
                &mut item.patch,
            ]
            .into_iter()
            .flatten()
            {
                let secured = op.security.as_ref().is_some_and(|s| !s.is_empty());
                if op.request_body.is_some() {
                    Self::add(
                        op,
                        "415",
                        "The body is not sent as `Content-Type: application/json`",
                    );
                    Self::add(op, "413", "The body is larger than the route accepts");
                    Self::add(
                        op,
                        "400",
                        "The body is not valid; the error names the bad field",
                    );
                }
                if secured {
                    Self::add(op, "401", "No, unknown or expired credentials");
                    Self::add(op, "403", "The caller's role or token kind is not enough");
                }
                if (secured && !defender_only) || checks_passwords {
                    Self::add(
                        op,
                        "429",
                        "Too many failed logins for the user or the source address; see \
                         Retry-After",
                    );
                    Self::add(
                        op,
                        "503",
                        "Every password check slot is busy; see Retry-After",
                    );
                }
            }
        }
    }
}

struct Security;

impl Modify for Security {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
        components.add_security_scheme(
            "defender",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "A defender token (from POST /api/v1/defenders/install-bundle), sent as \
                         `Authorization: Bearer TOKEN`",
                    ))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "basic",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Basic)),
        );
    }
}

/// The document.
pub fn document() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}
