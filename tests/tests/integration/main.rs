//! Cross-crate integration tests, one module per area.
mod demo;
mod deploy_credential;
mod deploy_default_network;
mod deploy_journey;
mod deploy_mock;
mod deploy_moto;
mod deploy_wait;
mod deploy_wiremock;
mod iam;
mod image_config;
mod local_docker;
mod local_family;
mod package;
mod transform_moto;
