//! The raw command line (clap derive). [`Cli`] is the root: `deploy-protected embed ...` runs
//! the transform; the root itself, with no subcommand, is the deploy mode.
//!
//! [`EmbedFlags`] holds the flags shared by `embed` and the deploy mode (console, image,
//! credential, CNAF, exclusions); both `#[command(flatten)]` it, and
//! [`EmbedFlags::to_options`] turns it into the library's [`protect::embed::EmbedOptions`].

use clap::{Args, Parser, Subcommand};
use protect::embed::{CnafOptions, EmbedOptions};
use std::path::PathBuf;

/// Embed the Fargate defender into an ECS task definition, and deploy it.
#[derive(Debug, Parser)]
#[command(
    name = "deploy-protected",
    version,
    about,
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true
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
    pub embed: Option<EmbedFlags>,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print the protected task definition (RegisterTaskDefinition JSON) for a task definition
    /// read from --file or stdin; warnings go to stderr.
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
#[derive(Debug, Clone, Args)]
pub struct EmbedFlags {
    /// Console URL the defender connects to (DEFENDER_CONSOLE_URL).
    #[arg(long, value_name = "URL")]
    pub console_url: String,

    /// Defender image run by the `defender` installer container.
    #[arg(long, value_name = "IMAGE")]
    pub defender_image: String,

    /// Secrets Manager or SSM parameter ARN holding the defender credential; ECS injects it
    /// as DEFENDER_TOKEN through `secrets`.
    #[arg(long, value_name = "ARN")]
    pub token_secret_arn: Option<String>,

    /// Defender credential in plain text (stored in the task definition's environment);
    /// needs --allow-plain-token.
    #[arg(long, value_name = "TOKEN")]
    pub token: Option<String>,

    /// Accept storing --token in plain text.
    #[arg(long)]
    pub allow_plain_token: bool,

    /// CNAF: the external port the proxy listens on (needs --app-port).
    #[arg(long, value_name = "EXT", requires = "app_port")]
    pub cnaf_port: Option<u16>,

    /// CNAF: the port the web application listens on (needs --cnaf-port).
    #[arg(long, value_name = "APP", requires = "cnaf_port")]
    pub app_port: Option<u16>,

    /// CNAF: the container that serves HTTP (needed when the task has several app containers).
    #[arg(long, value_name = "NAME", requires = "cnaf_port")]
    pub cnaf_container: Option<String>,

    /// Leave this container unwrapped (repeatable).
    #[arg(long = "exclude-container", value_name = "NAME")]
    pub exclude_containers: Vec<String>,

    /// This container's image has no ENTRYPOINT, so its `command` alone can be wrapped
    /// (repeatable).
    #[arg(long = "no-image-entrypoint", value_name = "NAME")]
    pub no_image_entrypoint: Vec<String>,
}

impl EmbedFlags {
    /// The library options these flags stand for (validated by `protect::embed::embed`).
    pub fn to_options(&self) -> EmbedOptions {
        EmbedOptions {
            console_url: self.console_url.clone(),
            defender_image: self.defender_image.clone(),
            token_secret_arn: self.token_secret_arn.clone(),
            plain_token: self.token.clone(),
            allow_plain_token: self.allow_plain_token,
            cnaf: match (self.cnaf_port, self.app_port) {
                (Some(external_port), Some(app_port)) => Some(CnafOptions {
                    external_port,
                    app_port,
                    container: self.cnaf_container.clone(),
                }),
                _ => None,
            },
            exclude_containers: self.exclude_containers.clone(),
            no_image_entrypoint: self.no_image_entrypoint.clone(),
            // No `--startup` flag yet: the defender's default (or an earlier embedding's value).
            startup: None,
        }
    }
}

#[cfg(test)]
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
        ])
        .unwrap();
        let Some(Command::Embed(args)) = cli.command else {
            panic!("not embed");
        };
        assert_eq!(args.file, None);
        let o = args.embed.to_options();
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
