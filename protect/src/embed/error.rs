//! [`TransformError`]: why a task definition could not be protected, where, and how to fix it.
//!
//! Every variant carries the JSON path of the offending field (`containerDefinitions[1].command`,
//! prefixed with `taskDefinition.` for a DescribeTaskDefinition document) or, for a bad option,
//! the command-line flag; container errors also carry the container's name.

/// A task definition (or an option) the transform cannot work with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransformError {
    /// The document is not a JSON object.
    #[error(
        "{path}: expected a JSON object (a RegisterTaskDefinition input or a \
         DescribeTaskDefinition output), found {found}"
    )]
    NotAnObject { path: String, found: &'static str },

    /// A field has the wrong JSON type.
    #[error("{path}: expected {expected}, found {found}")]
    WrongType {
        path: String,
        expected: &'static str,
        found: &'static str,
    },

    /// `containerDefinitions` is missing or empty.
    #[error(
        "{path}: missing or empty; a task definition needs at least one container in \
         \"containerDefinitions\""
    )]
    NoContainers { path: String },

    /// `family` is missing or empty.
    #[error(
        "{path}: missing or empty; set \"family\" to the task definition family name \
         (the defender reports it as DEFENDER_TASK_FAMILY)"
    )]
    MissingFamily { path: String },

    /// A container or volume has no `name`.
    #[error("{path}: missing or empty; every container and volume needs a unique \"name\"")]
    MissingName { path: String },

    /// Two containers share a name.
    #[error(
        "{path}: container name \"{container}\" is already used by {first}; container names \
         must be unique within a task definition"
    )]
    DuplicateContainer {
        path: String,
        container: String,
        first: String,
    },

    /// A Windows task (`runtimePlatform.operatingSystemFamily` is `WINDOWS_*`).
    #[error(
        "{path}: \"{family}\" is a Windows task; the defender runs in Linux containers only \
         (remove runtimePlatform.operatingSystemFamily or set it to \"LINUX\")"
    )]
    WindowsTask { path: String, family: String },

    /// A Fargate task whose network mode is not `awsvpc`.
    #[error(
        "{path}: is {mode} but requiresCompatibilities includes FARGATE; Fargate tasks must \
         use \"networkMode\": \"awsvpc\""
    )]
    FargateNetworkMode { path: String, mode: String },

    /// A container named `defender` that the transform did not create.
    #[error(
        "{path}: a container is already named \"defender\" but it is not the defender \
         installer (its entryPoint is not [\"/defender\",\"install\",\"/var/lib/defender\"]); \
         rename that container, the transform needs the name \"defender\""
    )]
    ForeignDefenderContainer { path: String },

    /// A volume named `defender` that is not the transform's task-scoped volume.
    #[error(
        "{path}: a volume is already named \"defender\" but it has a host path or a \
         Docker/EFS/FSx configuration; rename that volume, the transform needs the name \
         \"defender\" for a task-scoped volume"
    )]
    ForeignDefenderVolume { path: String },

    /// A container without an image.
    #[error(
        "{path}: container \"{container}\" has no image; set \"image\" (the defender reports it \
         as DEFENDER_IMAGE and ECS needs it to start the container)"
    )]
    MissingImage { path: String, container: String },

    /// A container with neither `entryPoint` nor `command`.
    #[error(
        "{path}: container \"{container}\" has neither entryPoint nor command; the transform \
         replaces entryPoint, and ECS then drops the image's ENTRYPOINT and CMD, so the \
         container would have nothing to run. Copy the image's ENTRYPOINT into \"entryPoint\" \
         (and its CMD into \"command\"), or exclude the container with \
         --exclude-container {container}"
    )]
    NoEntryPointNorCommand { path: String, container: String },

    /// A container with a `command` but no `entryPoint`, not confirmed by the user.
    #[error(
        "{path}: container \"{container}\" has a command but no entryPoint; if its image has \
         an ENTRYPOINT, overriding entryPoint would drop it. Copy the image's ENTRYPOINT into \
         \"entryPoint\", or, if the image has no ENTRYPOINT, confirm it with \
         --no-image-entrypoint {container}"
    )]
    CommandWithoutEntryPoint { path: String, container: String },

    /// A container with neither `entryPoint` nor `command` whose image, as read from its
    /// registry, has neither ENTRYPOINT nor CMD.
    #[error(
        "{path}: container \"{container}\" has neither entryPoint nor command, and its image \
         {image} has neither ENTRYPOINT nor CMD, so the container has nothing to run; set \
         \"entryPoint\" (or \"command\") to the program to start, or exclude the container \
         with --exclude-container {container}"
    )]
    ImageHasNothingToRun {
        path: String,
        container: String,
        image: String,
    },

    /// `--pin-digests` for an image whose digest was not read.
    #[error(
        "{path}: --pin-digests: the digest of image {image} (container \"{container}\") was \
         not read from its registry; let deploy-protected read it (without --offline), or \
         reference the image by digest (REPOSITORY@sha256:...)"
    )]
    ImageNotRead {
        path: String,
        container: String,
        image: String,
    },

    /// A container mounts something else at `/var/lib/defender`.
    #[error(
        "{path}: container \"{container}\" already mounts volume \"{volume}\" at \
         /var/lib/defender, where the defender is installed; move that mount elsewhere"
    )]
    DefenderMountConflict {
        path: String,
        container: String,
        volume: String,
    },

    /// A container drops `SYS_PTRACE`, which the defender needs.
    #[error(
        "{path}: container \"{container}\" drops SYS_PTRACE, which the defender needs to \
         supervise the app; remove SYS_PTRACE from linuxParameters.capabilities.drop or \
         exclude the container with --exclude-container {container}"
    )]
    PtraceDropped { path: String, container: String },

    /// An excluded container that an earlier embedding already wrapped.
    #[error(
        "{path}: container \"{container}\" is excluded but an earlier embedding already wrapped \
         it (its entryPoint starts with the defender); embed the unprotected task definition \
         to leave it unwrapped, or stop excluding it"
    )]
    ExcludedButWrapped { path: String, container: String },

    /// An option names a container that is not in the task definition.
    #[error(
        "{flag} {container}: no such container in the task definition; the containers are: \
         {known}"
    )]
    UnknownContainer {
        flag: &'static str,
        container: String,
        known: String,
    },

    /// No app container is left to wrap (every one is excluded, or a log router).
    #[error(
        "{path}: every container is excluded or is a FireLens log router, so there is nothing \
         to protect; exclude fewer containers"
    )]
    NothingToProtect { path: String },

    /// CNAF is requested but several containers could receive it.
    #[error(
        "--cnaf-container: required because the task has several app containers ({candidates}); \
         name the web container that listens on the app port"
    )]
    CnafContainerRequired { candidates: String },

    /// The CNAF container is not a wrapped app container (CNAF runs inside the wrapper of an app
    /// container, never in a log router).
    #[error(
        "--cnaf-container {container}: that container is not a wrapped app container (it is \
         excluded or a FireLens log router); CNAF runs inside the defender wrapper of the web \
         container, name a wrapped app container"
    )]
    CnafContainerNotWrapped { container: String },

    /// The existing installer depends on a container the transform wraps: a cycle.
    #[error(
        "{path}: the defender installer depends on container \"{container}\", which is wrapped \
         and waits for the installer to succeed, so the task would never start; remove this \
         dependsOn entry from the installer, or leave the container unwrapped with \
         --exclude-container {container}"
    )]
    InstallerWaitsForWrapped { path: String, container: String },

    /// The existing installer logs through FireLens while the log router is wrapped: a cycle.
    #[error(
        "{path}: the defender installer logs through FireLens, so ECS starts it after the log \
         router \"{router}\", which is wrapped and waits for the installer to succeed, so the \
         task would never start; give the installer an awslogs logConfiguration (or none), or \
         leave the log router unwrapped with --exclude-container {router}"
    )]
    InstallerLogsThroughRouter { path: String, router: String },

    /// Another container already maps the CNAF external port.
    #[error(
        "{path}: container \"{container}\" already maps port {port}, the CNAF external port; in \
         awsvpc mode containers share the network, so choose another --cnaf-port"
    )]
    CnafPortInUse {
        path: String,
        container: String,
        port: u16,
    },

    /// External and app port are the same.
    #[error(
        "--cnaf-port {port}: equals --app-port; the CNAF proxy and the app share the network, \
         so the external port must differ from the app port"
    )]
    CnafPortsEqual { port: u16 },

    /// A port option is out of range.
    #[error("{flag} {value}: not a TCP port; use 1-65535")]
    InvalidPort { flag: &'static str, value: u32 },

    /// The console URL is not an http(s) URL.
    #[error("--console-url {value:?}: {reason}; use http(s)://HOST[:PORT][/PATH]")]
    InvalidConsoleUrl { value: String, reason: &'static str },

    /// The defender image reference is empty or malformed.
    #[error(
        "--defender-image {value:?}: not an image reference; use REPOSITORY[:TAG] or \
         REPOSITORY@sha256:DIGEST"
    )]
    InvalidImage { value: String },

    /// The token secret is not a Secrets Manager or SSM parameter ARN.
    #[error(
        "--token-secret-arn {value:?}: not a Secrets Manager or SSM parameter ARN; use \
         arn:aws:secretsmanager:REGION:ACCOUNT:secret:NAME or \
         arn:aws:ssm:REGION:ACCOUNT:parameter/NAME"
    )]
    InvalidSecretArn { value: String },

    /// A plain-text token without the explicit opt-in.
    #[error(
        "--token: a plain-text token would be readable by anyone who can describe the task \
         definition; store it in Secrets Manager and pass --token-secret-arn ARN, or add \
         --allow-plain-token to accept the risk"
    )]
    PlainTokenNotAllowed,

    /// Both a token secret and a plain token.
    #[error("--token and --token-secret-arn: give one of them, not both")]
    TokenConflict,

    /// An empty plain token.
    #[error("--token: empty; pass the defender credential, or omit --token")]
    EmptyToken,
}
