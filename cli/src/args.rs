//! The raw command line (clap derive). [`Cli`] is the root: `deploy-protected embed ...` runs
//! the transform; the root itself, with no subcommand, is the deploy mode.
//!
//! [`EmbedFlags`] holds the flags shared by `embed` and the deploy mode (console, image,
//! credential, CNAF, exclusions); both `#[command(flatten)]` it, and [`EmbedFlags::resolve`]
//! turns it into the library's [`protect::embed::EmbedOptions`], asking the console for what the
//! flags leave out.

use crate::console::{Console, ConsoleError, Login};
use clap::{Args, Parser, Subcommand};
use protect::embed::{CnafOptions, EmbedOptions};
use protect::policy::Startup;
use std::path::PathBuf;

/// Embed the Fargate defender into an ECS task definition, and deploy it.
#[derive(Debug, Parser)]
#[command(
    name = "deploy-protected",
    version,
    about,
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true,
    after_help = DEPLOY_EXAMPLES
)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Option<Command>,

    /// Deploy mode (no subcommand): the task definition, cluster, service and AWS settings.
    #[command(flatten)]
    pub deploy: crate::deploy::cmd::DeployFlags,

    /// Deploy mode: how the defender is embedded (`--console-url`, `--defender-image`, ...).
    #[command(flatten)]
    pub embed: EmbedFlags,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print the protected task definition (RegisterTaskDefinition JSON) for a task definition
    /// read from --file or stdin; warnings go to stderr.
    #[command(after_help = EMBED_EXAMPLES)]
    Embed(EmbedArgs),
    /// Run a (protected) task definition on the local Docker Engine the way Fargate would:
    /// dependsOn order, one shared network namespace, task volumes, `--cap-drop ALL` plus
    /// the task's capabilities, logs prefixed with the container name; Ctrl-C stops it.
    Local(crate::local::LocalArgs),
}

/// `deploy-protected embed`.
#[derive(Debug, Clone, Args)]
pub struct EmbedArgs {
    /// The task definition to protect: RegisterTaskDefinition input, or the output of
    /// `aws ecs describe-task-definition` (optionally with `--include TAGS`). `-` or no flag
    /// reads stdin.
    #[arg(long, short = 'f', value_name = "FILE")]
    pub file: Option<PathBuf>,

    /// The transform's settings.
    #[command(flatten)]
    pub embed: EmbedFlags,
}

/// How the defender is embedded: shared by `embed` and the deploy mode.
#[derive(Debug, Clone, Args, Default)]
#[command(next_help_heading = "Transform (console, image, credential, CNAF)")]
pub struct EmbedFlags {
    /// Console URL: the defender connects to it (DEFENDER_CONSOLE_URL), and this tool takes
    /// the defender image, the CNAF ports and a defender credential from it when it has the
    /// operator's login (CONSOLE_USER + CONSOLE_PASSWORD, or CONSOLE_TOKEN).
    #[arg(long, value_name = "URL", env = "CONSOLE_URL")]
    pub console_url: Option<String>,

    /// Console user (with CONSOLE_PASSWORD in the environment; role admin or
    /// defender-manager).
    #[arg(long, value_name = "USER", env = "CONSOLE_USER")]
    pub console_user: Option<String>,

    /// Console password; set it in the environment, not on the command line.
    #[arg(
        long,
        value_name = "PASSWORD",
        env = "CONSOLE_PASSWORD",
        hide_env_values = true,
        hide = true
    )]
    pub console_password: Option<String>,

    /// Console bearer token (instead of user and password); best from the environment.
    #[arg(
        long,
        value_name = "TOKEN",
        env = "CONSOLE_TOKEN",
        hide_env_values = true
    )]
    pub console_token: Option<String>,

    /// Defender image run by the `defender` installer container (default: the console's).
    #[arg(long, value_name = "IMAGE")]
    pub defender_image: Option<String>,

    /// Secrets Manager or SSM parameter ARN holding the defender credential; ECS injects it
    /// as DEFENDER_TOKEN through `secrets`. Default: a credential from the console (deploy:
    /// stored in Secrets Manager, one secret per family; embed: in plain environment, with a
    /// warning).
    #[arg(long, value_name = "ARN")]
    pub token_secret_arn: Option<String>,

    /// Defender credential in plain text (stored in the task definition's environment);
    /// needs --allow-plain-token.
    #[arg(long, value_name = "TOKEN")]
    pub token: Option<String>,

    /// Accept storing --token in plain text.
    #[arg(long)]
    pub allow_plain_token: bool,

    /// Startup mode of a fresh container until the first policy arrives: availability (the
    /// app starts at once) or security (the app waits for the console's policy, bounded).
    #[arg(long, value_enum, value_name = "MODE")]
    pub startup: Option<StartupArg>,

    /// CNAF: the external port the proxy listens on (needs --app-port; default: the port of
    /// the console's CNAF rule for the family).
    #[arg(long, value_name = "EXT", requires = "app_port")]
    pub cnaf_port: Option<u16>,

    /// CNAF: the port the web application listens on (needs --cnaf-port).
    #[arg(long, value_name = "APP", requires = "cnaf_port")]
    pub app_port: Option<u16>,

    /// CNAF: the container that serves HTTP (needed when the task has several app containers).
    #[arg(long, value_name = "NAME")]
    pub cnaf_container: Option<String>,

    /// Leave this container unwrapped (repeatable).
    #[arg(long = "exclude-container", value_name = "NAME")]
    pub exclude_containers: Vec<String>,

    /// This container's image has no ENTRYPOINT, so its `command` alone can be wrapped
    /// (repeatable).
    #[arg(long = "no-image-entrypoint", value_name = "NAME")]
    pub no_image_entrypoint: Vec<String>,

    /// Read no registry: a container without entryPoint then needs one written in the task
    /// definition (or --no-image-entrypoint). Without it, the images of such containers are
    /// read from their registries (anonymously; plain HTTP only for loopback registries).
    #[arg(long, conflicts_with = "pin_digests")]
    pub offline: bool,

    /// Reference every container's image by the digest read from its registry, so the task
    /// runs exactly the image whose config was used (tag -> digest is reported).
    #[arg(long)]
    pub pin_digests: bool,
}

/// Examples and environment of the deploy mode (`--help`).
const DEPLOY_EXAMPLES: &str = "\
Examples:
  # the seed's command: the console supplies the image, the CNAF ports and the credential
  export CONSOLE_URL=https://console.example.com CONSOLE_USER=ci CONSOLE_PASSWORD=...
  deploy-protected --family twistlock-fargate-task
  # what would change, without changing it
  deploy-protected --family web --cluster prod --dry-run
  # everything named by hand, no console login
  deploy-protected --family web --cluster prod --subnets subnet-1,subnet-2 --security-groups sg-1 \\
      --console-url https://console.example.com --defender-image REPO/fargate-defender:0.1.0 \\
      --token-secret-arn arn:aws:secretsmanager:REGION:ACCOUNT:secret:NAME --cnaf-port 8080 --app-port 80

Environment:
  CONSOLE_URL, CONSOLE_USER + CONSOLE_PASSWORD or CONSOLE_TOKEN   the console and the login
  AWS_REGION, AWS_PROFILE, AWS_ENDPOINT_URL, ...                 the standard AWS chain

Exit codes: 0 done, 1 runtime failure (AWS, console, I/O), 2 bad usage or input.";

/// Examples of `embed` (`embed --help`).
const EMBED_EXAMPLES: &str = "\
Examples:
  deploy-protected embed -f task.json --console-url https://console.example.com \\
      --defender-image REPO/fargate-defender:0.1.0 --token-secret-arn ARN > protected.json
  aws ecs describe-task-definition --task-definition web --include TAGS \\
      | CONSOLE_URL=https://console.example.com CONSOLE_TOKEN=... deploy-protected embed > protected.json

Without --token-secret-arn or --token, a console login (CONSOLE_USER + CONSOLE_PASSWORD, or
CONSOLE_TOKEN) creates the defender credential and it is written in plain environment, with a
warning; with neither, embed fails rather than print a task that cannot start.

Exit codes: 0 done, 1 I/O or console failure, 2 bad usage or input.";

/// `--startup`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum StartupArg {
    /// The app starts at once with the last cached (or no) policy.
    Availability,
    /// The app waits for the console's policy (bounded), else the container fails.
    Security,
}

impl From<StartupArg> for Startup {
    fn from(s: StartupArg) -> Startup {
        match s {
            StartupArg::Availability => Startup::Availability,
            StartupArg::Security => Startup::Security,
        }
    }
}

/// The transform's options once the console has filled in what the flags left out.
#[derive(Debug)]
pub struct Resolved {
    pub options: EmbedOptions,
    /// The console with the operator's login, when one is set.
    pub console: Option<Console>,
    /// What was taken from the console, for the user.
    pub notes: Vec<String>,
}

impl EmbedFlags {
    /// The console with the operator's login (`None` without a login).
    pub fn console(&self) -> Result<Option<Console>, ConsoleError> {
        let login = Login::from_values(
            self.console_user.as_deref(),
            self.console_password.as_deref(),
            self.console_token.as_deref(),
        )?;
        match (login, self.console_url()) {
            (Some(login), Some(url)) => Ok(Some(Console::new(url, login))),
            (Some(_), None) => Err(ConsoleError::Settings(
                "a console login is set but no console: pass --console-url or set CONSOLE_URL"
                    .into(),
            )),
            (None, _) => Ok(None),
        }
    }

    fn console_url(&self) -> Option<&str> {
        self.console_url
            .as_deref()
            .map(str::trim)
            .filter(|u| !u.is_empty())
    }

    /// The library options these flags stand for, with the defender image and the CNAF ports
    /// of task family `family` taken from the console where the flags name none. The
    /// credential is left to the caller when no flag names one.
    pub fn resolve(&self, family: &str) -> Result<Resolved, ConsoleError> {
        let url = self.console_url().ok_or_else(|| {
            ConsoleError::Settings(
                "--console-url is required (or set CONSOLE_URL): the console address the \
                 defenders reach"
                    .into(),
            )
        })?;
        let console = self.console()?;
        let mut notes = Vec::new();
        let defender_image = match (&self.defender_image, &console) {
            (Some(image), _) => image.clone(),
            (None, Some(c)) => {
                let image = c.defaults()?.defender_image;
                notes.push(format!("defender image {image} (the console's default)"));
                image
            }
            (None, None) => {
                return Err(ConsoleError::Settings(
                    "--defender-image is required without a console login; pass it, or set \
                     CONSOLE_USER and CONSOLE_PASSWORD (or CONSOLE_TOKEN) to use the console's"
                        .into(),
                ))
            }
        };
        let cnaf = match (self.cnaf_port, self.app_port, &console) {
            (Some(external_port), Some(app_port), _) => Some(CnafOptions {
                external_port,
                app_port,
                container: self.cnaf_container.clone(),
            }),
            (None, None, Some(c)) => c.cnaf_rule(family)?.map(|rule| {
                notes.push(format!(
                    "CNAF port {} forwarding to the app's port {} (the console's CNAF rule {:?})",
                    rule.external_port, rule.app_port, rule.name
                ));
                CnafOptions {
                    external_port: rule.external_port,
                    app_port: rule.app_port,
                    container: self.cnaf_container.clone(),
                }
            }),
            _ => None,
        };
        Ok(Resolved {
            options: EmbedOptions {
                console_url: url.to_string(),
                defender_image,
                token_secret_arn: self.token_secret_arn.clone(),
                plain_token: self.token.clone(),
                allow_plain_token: self.allow_plain_token,
                cnaf,
                exclude_containers: self.exclude_containers.clone(),
                no_image_entrypoint: self.no_image_entrypoint.clone(),
                startup: self.startup.map(Startup::from),
                execution_role_arn: None,
                images: Default::default(),
                pin_digests: self.pin_digests,
            },
            console,
            notes,
        })
    }

    /// Whether a flag names the credential.
    pub fn names_credential(&self) -> bool {
        self.token_secret_arn.is_some() || self.token.is_some()
    }
}

/// The error for a task that would get no credential.
pub const NO_CREDENTIAL: &str = "no defender credential: pass --token-secret-arn ARN (a Secrets \
     Manager secret holding a token from POST /api/v1/defenders/install-bundle), or set \
     CONSOLE_USER and CONSOLE_PASSWORD (or CONSOLE_TOKEN) so that one is created; without it \
     the defender cannot reach the console and the app does not start";

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn clap_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn embed_flags_map_to_options() {
        let cli = Cli::try_parse_from([
            "deploy-protected",
            "embed",
            "--console-url",
            "https://c.example",
            "--defender-image",
            "d:1",
            "--token-secret-arn",
            "arn:aws:ssm:us-east-1:123456789012:parameter/t",
            "--cnaf-port",
            "8080",
            "--app-port",
            "80",
            "--cnaf-container",
            "web",
            "--exclude-container",
            "a",
            "--exclude-container",
            "b",
            "--no-image-entrypoint",
            "c",
            "--startup",
            "security",
        ])
        .unwrap();
        let Some(Command::Embed(args)) = cli.command else {
            panic!("not embed");
        };
        assert_eq!(args.file, None);
        let o = args.embed.resolve("fam").unwrap().options;
        assert_eq!(o.startup, Some(Startup::Security));
        assert_eq!(o.console_url, "https://c.example");
        assert_eq!(o.defender_image, "d:1");
        assert_eq!(
            o.token_secret_arn.as_deref(),
            Some("arn:aws:ssm:us-east-1:123456789012:parameter/t")
        );
        assert_eq!(o.plain_token, None);
        assert_eq!(
            o.cnaf,
            Some(CnafOptions {
                external_port: 8080,
                app_port: 80,
                container: Some("web".into())
            })
        );
        assert_eq!(o.exclude_containers, ["a", "b"]);
        assert_eq!(o.no_image_entrypoint, ["c"]);
    }

    #[test]
    fn cnaf_ports_come_in_pairs() {
        let err = Cli::try_parse_from([
            "deploy-protected",
            "embed",
            "--console-url",
            "u",
            "--defender-image",
            "i",
            "--cnaf-port",
            "8080",
        ])
        .unwrap_err();
        assert_eq!(err.kind(), clap::error::ErrorKind::MissingRequiredArgument);
    }
}
