//! The OpenAPI document, generated from the route annotations and the API types.

use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::routes::{audits, defenders, policies, users};

#[derive(OpenApi)]
#[openapi(
    info(title = "Fargate runtime-defense console", description = "Policies, audits, defenders and the task-definition transform. Every route but _ping and authenticate needs `Authorization: Bearer TOKEN` or Basic credentials; /api/v1/defender/* take a defender token."),
    paths(
        users::ping, users::authenticate, users::create_user, crate::routes::openapi,
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
    )),
    modifiers(&Security),
)]
struct ApiDoc;

struct Security;

impl Modify for Security {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
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
