//! Cross-crate integration tests, one module per area.
mod deploy_mock;
mod deploy_moto;
mod deploy_wait;
mod deploy_wiremock;
mod local_docker;
mod iam;
mod package;
mod transform_moto;
