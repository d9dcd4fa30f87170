//! [`EmbedOptions`]: what the caller chooses (console, image, credential, CNAF, exclusions), and
//! their validation into the settings the transform applies.

use super::image::ImageInfo;
use super::TransformError;
use crate::policy::Startup;
use std::collections::BTreeMap;

/// How the transform embeds the defender. Build one with [`EmbedOptions::new`] and set the
/// optional fields; [`crate::embed::embed`] validates it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EmbedOptions {
    /// Where the defender reaches the console (`DEFENDER_CONSOLE_URL`).
    pub console_url: String,
    /// The defender image run by the `defender` installer container.
    pub defender_image: String,
    /// A Secrets Manager or SSM parameter ARN holding the defender credential
    /// (`DEFENDER_TOKEN`, injected by ECS through `secrets`).
    pub token_secret_arn: Option<String>,
    /// A plain-text defender credential; refused unless `allow_plain_token` is set, and then
    /// reported as a warning.
    pub plain_token: Option<String>,
    /// The explicit opt-in for `plain_token`.
    pub allow_plain_token: bool,
    /// CNAF (web application firewall) ports, when the task serves HTTP.
    pub cnaf: Option<CnafOptions>,
    /// Containers that stay unwrapped.
    pub exclude_containers: Vec<String>,
    /// Containers whose image has no ENTRYPOINT, so a `command` without `entryPoint` is the
    /// whole program and can be wrapped.
    pub no_image_entrypoint: Vec<String>,
    /// The startup mode a fresh container uses while no policy is known yet
    /// (`DEFENDER_STARTUP`); `None` leaves the defender's default (`availability`) or the value
    /// an earlier embedding wrote.
    pub startup: Option<Startup>,
    /// The task execution role to set (`executionRoleArn`), replacing the task's own.
    pub execution_role_arn: Option<String>,
    /// Images read from their registries, by reference as written in the containers' `image`:
    /// a container without `entryPoint` whose image is here is wrapped with the image's own
    /// ENTRYPOINT and CMD (Docker's rules, see [`super::image`]).
    pub images: BTreeMap<String, ImageInfo>,
    /// Reference every container's image by the digest in `images` (an image already named
    /// by digest stays as it is; one missing from `images` is an error).
    pub pin_digests: bool,
}

/// The CNAF proxy's ports: it listens on `external_port` and forwards to the app on
/// `127.0.0.1:app_port`, inside `container` (needed when the task has several app containers).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CnafOptions {
    /// The port clients connect to (mapped in the task, opened in the security group).
    pub external_port: u16,
    /// The port the web application listens on.
    pub app_port: u16,
    /// The container the proxy runs in; optional when the task has one app container.
    pub container: Option<String>,
}

impl EmbedOptions {
    /// Options with the two required settings and nothing else.
    pub fn new(console_url: impl Into<String>, defender_image: impl Into<String>) -> Self {
        EmbedOptions {
            console_url: console_url.into(),
            defender_image: defender_image.into(),
            ..EmbedOptions::default()
        }
    }
}

/// Where the defender's credential comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Token {
    /// `secrets: [{name: DEFENDER_TOKEN, valueFrom: ARN}]`.
    Secret(String),
    /// `environment: [{name: DEFENDER_TOKEN, value: TOKEN}]` (opted in).
    Plain(String),
}

/// Validated options.
#[derive(Debug, Clone)]
pub(crate) struct Settings<'a> {
    pub console_url: &'a str,
    pub defender_image: &'a str,
    pub token: Option<Token>,
    pub cnaf: Option<&'a CnafOptions>,
    pub exclude: &'a [String],
    pub no_image_entrypoint: &'a [String],
    pub startup: Option<Startup>,
    pub images: &'a BTreeMap<String, ImageInfo>,
    pub pin_digests: bool,
}

impl EmbedOptions {
    pub(crate) fn validate(&self) -> Result<Settings<'_>, TransformError> {
        check_console_url(&self.console_url)?;
        if !is_image_reference(&self.defender_image) {
            return Err(TransformError::InvalidImage {
                value: self.defender_image.clone(),
            });
        }
        let token = match (&self.token_secret_arn, &self.plain_token) {
            (Some(_), Some(_)) => return Err(TransformError::TokenConflict),
            (Some(arn), None) => {
                if !is_secret_arn(arn) {
                    return Err(TransformError::InvalidSecretArn { value: arn.clone() });
                }
                Some(Token::Secret(arn.clone()))
            }
            (None, Some(plain)) => {
                if plain.is_empty() {
                    return Err(TransformError::EmptyToken);
                }
                if !self.allow_plain_token {
                    return Err(TransformError::PlainTokenNotAllowed);
                }
                Some(Token::Plain(plain.clone()))
            }
            (None, None) => None,
        };
        if let Some(cnaf) = &self.cnaf {
            if cnaf.external_port == 0 {
                return Err(TransformError::InvalidPort {
                    flag: "--cnaf-port",
                    value: 0,
                });
            }
            if cnaf.app_port == 0 {
                return Err(TransformError::InvalidPort {
                    flag: "--app-port",
                    value: 0,
                });
            }
            if cnaf.external_port == cnaf.app_port {
                return Err(TransformError::CnafPortsEqual {
                    port: cnaf.external_port,
                });
            }
        }
        Ok(Settings {
            console_url: &self.console_url,
            defender_image: &self.defender_image,
            token,
            cnaf: self.cnaf.as_ref(),
            exclude: &self.exclude_containers,
            no_image_entrypoint: &self.no_image_entrypoint,
            startup: self.startup,
            images: &self.images,
            pin_digests: self.pin_digests,
        })
    }
}

fn check_console_url(url: &str) -> Result<(), TransformError> {
    let bad = |reason| TransformError::InvalidConsoleUrl {
        value: url.to_string(),
        reason,
    };
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .ok_or_else(|| bad("must start with http:// or https://"))?;
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(bad("contains whitespace"));
    }
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host = match authority.rsplit_once(':') {
        Some((host, port)) if !host.ends_with(']') || authority.starts_with('[') => {
            if !port.is_empty() && port.parse::<u16>().is_err() {
                return Err(bad("has a port that is not a number from 0 to 65535"));
            }
            host
        }
        _ => authority,
    };
    if host.is_empty() {
        return Err(bad("has no host"));
    }
    Ok(())
}

/// A loose check of an OCI image reference: non-empty, no whitespace, and no empty name part.
fn is_image_reference(image: &str) -> bool {
    let name = image.split('@').next().unwrap_or_default();
    !image.is_empty()
        && !image.chars().any(|c| c.is_whitespace() || c.is_control())
        && !name.is_empty()
        && !name.starts_with(['/', ':'])
        && !name.ends_with(['/', ':'])
        && image.matches('@').count() <= 1
}

/// `arn:PARTITION:secretsmanager:REGION:ACCOUNT:secret:NAME[:json-key:stage:version]` or
/// `arn:PARTITION:ssm:REGION:ACCOUNT:parameter/NAME` (what ECS accepts as `valueFrom`).
pub(crate) fn is_secret_arn(arn: &str) -> bool {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    let [scheme, partition, service, region, account, resource] = parts.as_slice() else {
        return false;
    };
    let region_ok = !region.is_empty()
        && region
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    let account_ok = account.len() == 12 && account.chars().all(|c| c.is_ascii_digit());
    let resource_ok = match *service {
        "secretsmanager" => resource
            .strip_prefix("secret:")
            .and_then(|rest| rest.split(':').next())
            .is_some_and(|name| !name.is_empty() && name.chars().all(secret_name_char)),
        "ssm" => resource
            .strip_prefix("parameter/")
            .is_some_and(|name| !name.is_empty() && name.chars().all(parameter_name_char)),
        _ => false,
    };
    *scheme == "arn" && partition.starts_with("aws") && region_ok && account_ok && resource_ok
}

fn secret_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "/_+=.@-".contains(c)
}

fn parameter_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "/_.-".contains(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_arns() {
        for ok in [
            "arn:aws:secretsmanager:us-east-1:123456789012:secret:defender-token-AbCdEf",
            "arn:aws:secretsmanager:eu-west-3:123456789012:secret:prod/defender:token::",
            "arn:aws-us-gov:secretsmanager:us-gov-west-1:123456789012:secret:t",
            "arn:aws:ssm:us-east-1:123456789012:parameter/defender/token",
            "arn:aws-cn:ssm:cn-north-1:123456789012:parameter/t",
        ] {
            assert!(is_secret_arn(ok), "{ok}");
        }
        for bad in [
            "",
            "defender-token",
            "arn:aws:secretsmanager:us-east-1:123:secret:t",
            "arn:aws:secretsmanager:us-east-1:123456789012:secret:",
            "arn:aws:secretsmanager:us-east-1:123456789012:parameter/t",
            "arn:aws:ssm:us-east-1:123456789012:parameter/",
            "arn:aws:s3:::bucket",
            "arn:aws:kms:us-east-1:123456789012:key/abc",
            "arn:gcp:ssm:us-east-1:123456789012:parameter/t",
            "arn:aws:ssm::123456789012:parameter/t",
            "arn:aws:ssm:US-EAST-1:123456789012:parameter/t",
            "arn:aws:ssm:us-east-1:123456789012:parameter/has space",
        ] {
            assert!(!is_secret_arn(bad), "{bad}");
        }
    }

    #[test]
    fn console_urls() {
        for ok in [
            "http://127.0.0.1:8083",
            "https://console.example.com",
            "https://console.example.com/prefix/",
            "http://[::1]:8083",
        ] {
            assert_eq!(check_console_url(ok), Ok(()), "{ok}");
        }
        let reason = |url: &str| match check_console_url(url) {
            Err(TransformError::InvalidConsoleUrl { reason, .. }) => reason,
            other => panic!("{url}: {other:?}"),
        };
        assert_eq!(
            reason("console:8083"),
            "must start with http:// or https://"
        );
        assert_eq!(reason("http://"), "has no host");
        assert_eq!(reason("http://:80/"), "has no host");
        assert_eq!(
            reason("http://host:99999"),
            "has a port that is not a number from 0 to 65535"
        );
        assert_eq!(reason("http://a b"), "contains whitespace");
    }

    #[test]
    fn image_references() {
        for ok in [
            "fargate-defender:latest",
            "123456789012.dkr.ecr.us-east-1.amazonaws.com/defender@sha256:0123abcd",
            "localhost:5000/defender",
        ] {
            assert!(is_image_reference(ok), "{ok}");
        }
        for bad in ["", " ", "a b", "/x", "x:", "a@b@c"] {
            assert!(!is_image_reference(bad), "{bad:?}");
        }
    }
}
