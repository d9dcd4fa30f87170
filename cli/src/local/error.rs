//! [`LocalError`]: why a local run could not start or went wrong.

/// A failed local run.
#[derive(Debug, thiserror::Error)]
pub enum LocalError {
    /// The task definition is not valid JSON, or a field is wrong.
    #[error("task definition: {}", at(path, message))]
    TaskJson {
        /// JSON path of the bad field (empty for the document).
        path: String,
        /// What is wrong and how to fix it.
        message: String,
    },
    /// The task definition file could not be read.
    #[error("--file {path}: cannot read it")]
    ReadFile {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// A secret has no local value.
    #[error(
        "container {container}: secret {name} (valueFrom {value_from:?}) has no value locally \
         (there is no Secrets Manager here); pass --secret {name}=VALUE or set {name} in the \
         environment"
    )]
    MissingSecret {
        /// Container.
        container: String,
        /// Variable name.
        name: String,
        /// The ARN in the task definition.
        value_from: String,
    },
    /// A `--secret` flag is not NAME=VALUE.
    #[error("--secret {0:?}: expected NAME=VALUE")]
    SecretFlag(String),
    /// The docker command is missing or the engine does not answer.
    #[error(
        "the Docker Engine is not available ({0}); install Docker and start it (`docker version` \
         must show a Server), or set DOCKER_HOST"
    )]
    DockerUnavailable(String),
    /// A docker command failed.
    #[error("docker {command}: {message}")]
    Docker {
        /// The subcommand and its main argument.
        command: String,
        /// docker's stderr or the spawn error.
        message: String,
    },
    /// The local pause image could not be built.
    #[error("building the network holder image {image}: {message}")]
    PauseImage {
        /// The tag.
        image: String,
        /// Why.
        message: String,
    },
    /// A dependency can never be met (e.g. SUCCESS on a container that failed).
    #[error("container {container} cannot start: {reason}")]
    DependencyFailed {
        /// The waiting container.
        container: String,
        /// Which dependency failed and how.
        reason: String,
    },
    /// Installing the Ctrl-C / SIGTERM handler failed.
    #[error("installing the signal handler: {0}")]
    Signals(std::io::Error),
    /// `--family F:N` together with `--revision`.
    #[error("--family {0:?} already names a revision; drop --revision or the \":N\"")]
    FamilyWithRevision(String),
    /// `--family` without a region from the flags, the environment or the profile.
    #[error("--family: no AWS region: pass --region, set AWS_REGION, or set one in the profile")]
    NoRegion,
    /// `--family` without credentials.
    #[error(
        "--family: no AWS credentials ({0}): set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, \
         pass --profile (or set AWS_PROFILE), or run `aws sso login`; without AWS, export the \
         definition and use --file"
    )]
    NoCredentials(String),
    /// DescribeTaskDefinition found no ACTIVE revision of the family.
    #[error(
        "task definition family `{family}` has no ACTIVE revision in region {region}: check \
         --family and --region (`aws ecs list-task-definition-families --status ACTIVE \
         --region {region}` lists the families)"
    )]
    UnknownFamily {
        /// The family asked for.
        family: String,
        /// The region searched.
        region: String,
    },
    /// DescribeTaskDefinition found no such revision.
    #[error(
        "task definition `{family}:{revision}` does not exist in region {region}: check \
         --revision (`aws ecs list-task-definitions --family-prefix {family} --region {region}` \
         lists the revisions; without --revision the latest ACTIVE one runs)"
    )]
    UnknownRevision {
        /// The family asked for.
        family: String,
        /// The revision asked for.
        revision: u32,
        /// The region searched.
        region: String,
    },
    /// Another AWS failure (access denied, throttled after retries, no answer).
    #[error(transparent)]
    Aws(#[from] crate::deploy::aws::AwsCallError),
    /// The async runtime for the AWS call could not start.
    #[error("cannot start the async runtime: {0}")]
    Runtime(std::io::Error),
    /// `--require-protected` and the defender does not protect the task.
    #[error(
        "{task} is not protected by the defender ({reason}) and --require-protected is set: \
         protect it with `deploy-protected embed` (or deploy a protected revision with \
         `deploy-protected --family ...`) and run that"
    )]
    Unprotected {
        /// `--file PATH` or `family:revision`.
        task: String,
        /// What is missing.
        reason: String,
    },
}

fn at(path: &str, message: &str) -> String {
    if path.is_empty() {
        message.to_string()
    } else {
        format!("{path}: {message}")
    }
}

impl LocalError {
    /// 2 for bad input (the task definition, flags), 1 for runtime failures.
    pub fn exit_code(&self) -> u8 {
        match self {
            LocalError::TaskJson { .. }
            | LocalError::ReadFile { .. }
            | LocalError::MissingSecret { .. }
            | LocalError::SecretFlag(_)
            | LocalError::FamilyWithRevision(_)
            | LocalError::NoRegion
            | LocalError::NoCredentials(_)
            | LocalError::UnknownFamily { .. }
            | LocalError::UnknownRevision { .. }
            | LocalError::Unprotected { .. } => 2,
            _ => 1,
        }
    }
}
