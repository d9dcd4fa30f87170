//! `--family`: the task definition read from ECS (DescribeTaskDefinition) with the same AWS
//! settings as the deploy mode: the standard chain (`AWS_REGION`, `AWS_PROFILE`,
//! `AWS_ENDPOINT_URL`, ...) overridden by `--region` / `--profile`.

use super::error::LocalError;
use crate::deploy::aws::{load_sdk_config, AwsClients};
use aws_sdk_ecs::config::{ProvideCredentials, SharedCredentialsProvider};

/// Which revision to read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FamilyRef {
    /// The family (or a full task definition ARN).
    pub family: String,
    /// A revision; `None` is the latest ACTIVE one.
    pub revision: Option<u32>,
    /// `--region`.
    pub region: Option<String>,
    /// `--profile`.
    pub profile: Option<String>,
}

/// A revision as read from ECS.
#[derive(Debug, Clone, PartialEq)]
pub struct Fetched {
    /// `family:revision`, for messages.
    pub name: String,
    /// The `taskDefinition` object exactly as ECS sent it.
    pub definition: serde_json::Value,
}

impl FamilyRef {
    /// What DescribeTaskDefinition is asked for: `family` or `family:revision`.
    pub fn reference(&self) -> Result<String, LocalError> {
        match self.revision {
            None => Ok(self.family.clone()),
            Some(_) if self.family.contains(':') => {
                Err(LocalError::FamilyWithRevision(self.family.clone()))
            }
            Some(n) => Ok(format!("{}:{n}", self.family)),
        }
    }
}

/// Reads the revision from ECS. Nothing local is touched.
pub fn fetch(r: &FamilyRef) -> Result<Fetched, LocalError> {
    let reference = r.reference()?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(LocalError::Runtime)?;
    runtime.block_on(async {
        let config = load_sdk_config(r.region.as_deref(), r.profile.as_deref()).await;
        let Some(region) = config.region().map(|r| r.to_string()) else {
            return Err(LocalError::NoRegion);
        };
        // Resolve the credentials once, up front: a missing chain gets its own message
        // instead of a dispatch failure, and the call below reuses what was resolved.
        let provider = config
            .credentials_provider()
            .ok_or_else(|| LocalError::NoCredentials("no credentials provider".into()))?;
        let credentials = provider
            .provide_credentials()
            .await
            .map_err(|e| LocalError::NoCredentials(error_chain(&e)))?;
        let config = config
            .into_builder()
            .credentials_provider(SharedCredentialsProvider::new(credentials))
            .build();
        let clients = AwsClients::new(&config);
        let described = clients
            .describe_task_definition(&reference)
            .await
            .map_err(|e| match (e.code(), r.revision) {
                (Some("ClientException"), None) => LocalError::UnknownFamily {
                    family: r.family.clone(),
                    region: region.clone(),
                },
                (Some("ClientException"), Some(revision)) => LocalError::UnknownRevision {
                    family: r.family.clone(),
                    revision,
                    region: region.clone(),
                },
                _ => LocalError::Aws(e),
            })?;
        let family = described
            .definition
            .get("family")
            .and_then(serde_json::Value::as_str)
            .unwrap_or(&r.family)
            .to_string();
        Ok(Fetched {
            name: format!("{family}:{}", described.revision),
            definition: described.definition,
        })
    })
}

/// `error: cause: cause` on one line.
fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let next = s.to_string();
        if !text.contains(&next) {
            text.push_str(": ");
            text.push_str(&next);
        }
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn family(family: &str, revision: Option<u32>) -> FamilyRef {
        FamilyRef {
            family: family.into(),
            revision,
            region: None,
            profile: None,
        }
    }

    #[test]
    fn reference_is_the_family_or_family_colon_revision() {
        assert_eq!(family("web", None).reference().unwrap(), "web");
        assert_eq!(family("web", Some(7)).reference().unwrap(), "web:7");
        assert_eq!(family("web:3", None).reference().unwrap(), "web:3");
        assert_eq!(
            family("web:3", Some(7))
                .reference()
                .unwrap_err()
                .to_string(),
            "--family \"web:3\" already names a revision; drop --revision or the \":N\""
        );
    }
}
