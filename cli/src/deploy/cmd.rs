//! The deploy mode's flags ([`DeployFlags`], flattened into the root command line) and the
//! glue that turns them into [`DeploySettings`], runs [`deploy`] and prints the result.

use std::io::Write;
use std::time::Duration;

use crate::args::{EmbedFlags, NO_CREDENTIAL};
use crate::images;
use clap::{Args, ValueEnum};
use image_registry::Resolver;
use ipnet::IpNet;
use protect::embed::{EmbedOptions, Pin};
use serde_json::Value;
use std::sync::Mutex;

use super::aws::{load_sdk_config, AwsClients, AwsVpc};
use super::output::{render_plan, render_summary, OutputFormat};
use super::progress::{self, Progress};
use super::{
    credential, deploy, exec_role, read_check, CnafIngress, DeployError, DeploySettings, Outcome,
    Transform, TransformFailure, WaitSettings,
};

/// `--output`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum OutputArg {
    /// Aligned lines.
    #[default]
    Text,
    /// One JSON object (for pipelines).
    Json,
}

/// Flags of the deploy mode (the root command without a subcommand).
#[derive(Debug, Clone, Args, Default)]
#[command(next_help_heading = "Deploy")]
pub struct DeployFlags {
    /// Task definition family to protect (its latest ACTIVE revision unless --revision).
    #[arg(long, value_name = "FAMILY", required = true)]
    pub family: Option<String>,

    /// Revision of the family to protect instead of the latest ACTIVE one.
    #[arg(long, value_name = "N")]
    pub revision: Option<i64>,

    /// ECS cluster (name or ARN).
    #[arg(long, value_name = "CLUSTER", default_value = "default")]
    pub cluster: Option<String>,

    /// Service name (default: the family).
    #[arg(long, value_name = "SERVICE")]
    pub service: Option<String>,

    /// Subnet ids, comma-separated (default for a new service: the default VPC's).
    #[arg(long, value_name = "SUBNET,...", value_delimiter = ',')]
    pub subnets: Vec<String>,

    /// Security group ids, comma-separated (default for a new service: a group made for it);
    /// the CNAF port is opened on them.
    #[arg(long, value_name = "SG,...", value_delimiter = ',')]
    pub security_groups: Vec<String>,

    /// Give tasks a public IP (assignPublicIp ENABLED).
    #[arg(long)]
    pub assign_public_ip: bool,

    /// Desired task count (default 1 for a new service; unchanged on update).
    #[arg(long, value_name = "N")]
    pub desired_count: Option<i32>,

    /// Task execution role for the protected revision (default: the task's own; a task with
    /// none gets a role of the family's own that can read the defender credential).
    #[arg(long, value_name = "ARN", value_parser = execution_role_arn)]
    pub execution_role: Option<String>,

    /// Source CIDR allowed to reach the CNAF port.
    #[arg(long, value_name = "CIDR", default_value = "0.0.0.0/0")]
    pub cnaf_cidr: IpNet,

    /// Print the definition diff and the AWS calls that would be made; change nothing.
    #[arg(long)]
    pub dry_run: bool,

    /// Return once the service is created or updated, without waiting for a steady state.
    #[arg(long)]
    pub no_wait: bool,

    /// How long to wait for a steady state (e.g. 90s, 10m, 1h).
    #[arg(long, value_name = "DURATION", default_value = "10m", value_parser = humantime::parse_duration)]
    pub wait_timeout: Duration,

    /// Time between two service polls while waiting.
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = humantime::parse_duration, hide = true)]
    pub poll_interval: Duration,

    /// When the wait fails, put the service back on the revision it ran before.
    #[arg(long, conflicts_with = "no_wait")]
    pub rollback: bool,

    /// Summary format on stdout.
    #[arg(long, value_enum, default_value_t = OutputArg::Text)]
    pub output: OutputArg,

    /// AWS region (default: the standard chain: AWS_REGION, the profile, ...).
    #[arg(long, value_name = "REGION")]
    pub region: Option<String>,

    /// AWS profile from the shared config files.
    #[arg(long, value_name = "PROFILE")]
    pub profile: Option<String>,
}

impl DeployFlags {
    /// The validated settings; `cnaf_port` comes from the transform flags (`--cnaf-port`).
    pub fn to_settings(&self, cnaf_port: Option<u16>) -> Result<DeploySettings, DeployError> {
        let missing = |flag: &str, what: &str| {
            DeployError::InvalidSettings(format!("{flag} is required: {what}"))
        };
        let family = self
            .family
            .clone()
            .ok_or_else(|| missing("--family", "name the task definition family to protect"))?;
        let cluster = self
            .cluster
            .clone()
            .ok_or_else(|| missing("--cluster", "name the ECS cluster to deploy to"))?;
        let network = match (self.subnets.is_empty(), self.security_groups.is_empty()) {
            (true, true) => None,
            (false, false) => Some(AwsVpc {
                subnets: self.subnets.clone(),
                security_groups: self.security_groups.clone(),
                assign_public_ip: self.assign_public_ip,
            }),
            (true, false) => {
                return Err(missing("--subnets", "it goes with --security-groups"));
            }
            (false, true) => {
                return Err(missing("--security-groups", "it goes with --subnets"));
            }
        };
        if self.assign_public_ip && network.is_none() {
            return Err(missing(
                "--subnets",
                "--assign-public-ip is part of the network configuration",
            ));
        }
        Ok(DeploySettings {
            family,
            revision: self.revision,
            cluster,
            service: self.service.clone(),
            network,
            desired_count: self.desired_count,
            cnaf: cnaf_port.map(|port| CnafIngress {
                port,
                cidr: self.cnaf_cidr,
            }),
            dry_run: self.dry_run,
            wait: (!self.no_wait).then_some(WaitSettings {
                timeout: self.wait_timeout,
                poll_interval: self.poll_interval,
            }),
            rollback: self.rollback,
        })
    }

    fn format(&self) -> OutputFormat {
        match self.output {
            OutputArg::Text => OutputFormat::Text,
            OutputArg::Json => OutputFormat::Json,
        }
    }
}

/// The transform the CLI uses: `protect::embed` with `options`, warnings printed on `warn`.
pub fn embed_transform<'a>(
    options: &'a EmbedOptions,
) -> impl Fn(&Value) -> Result<Value, TransformFailure> + Sync + 'a {
    move |input: &Value| {
        let out = protect::embed::embed(input, options)?;
        for warning in &out.warnings {
            eprintln!("deploy-protected: warning: {warning}");
        }
        Ok(out.task_definition)
    }
}

/// The deploy mode's transform: reads the images the task definition needs from their
/// registries (unless offline: no resolver), then `protect::embed`. What was read, the
/// warnings and the pins go to stderr; the pins are kept for the summary.
pub struct ImageTransform<'a> {
    options: &'a EmbedOptions,
    resolver: Option<&'a Resolver>,
    pins: Mutex<Vec<Pin>>,
}

impl<'a> ImageTransform<'a> {
    /// `resolver: None` reads nothing (`--offline`).
    pub fn new(options: &'a EmbedOptions, resolver: Option<&'a Resolver>) -> Self {
        ImageTransform {
            options,
            resolver,
            pins: Mutex::new(Vec::new()),
        }
    }

    /// The image references the last run replaced by digests.
    pub fn pins(&self) -> Vec<Pin> {
        self.pins.lock().map(|p| p.clone()).unwrap_or_default()
    }
}

#[async_trait::async_trait]
impl Transform for ImageTransform<'_> {
    async fn apply(&self, input: &Value) -> Result<Value, TransformFailure> {
        let mut options = self.options.clone();
        if let Some(resolver) = self.resolver {
            let reading = images::read_into(input, &mut options, resolver).await?;
            for note in &reading.notes {
                eprintln!("deploy-protected: {note}");
            }
            for warning in &reading.warnings {
                eprintln!("deploy-protected: warning: {warning}");
            }
        }
        let out = protect::embed::embed(input, &options)?;
        for warning in &out.warnings {
            eprintln!("deploy-protected: warning: {warning}");
        }
        for pin in images::pin_lines(&out.pins) {
            eprintln!("deploy-protected: pinned {pin}");
        }
        if let Ok(mut pins) = self.pins.lock() {
            *pins = out.pins;
        }
        Ok(out.task_definition)
    }
}

/// Runs a deployment against `clients` and prints the summary (or the plan) on `out`; the
/// summary is printed for a failed wait too, so pipelines see what was changed.
pub async fn execute(
    clients: &AwsClients,
    settings: &DeploySettings,
    transform: &ImageTransform<'_>,
    format: OutputFormat,
    out: &mut dyn Write,
    progress: &mut dyn Progress,
) -> Result<(), DeployError> {
    let mut result = deploy(clients, settings, transform, progress).await;
    let pins = transform.pins();
    match &mut result {
        Ok(Outcome::Deployed(summary)) => summary.pinned_images = pins,
        Ok(Outcome::DryRun(plan)) => plan.pinned_images = pins,
        Err(DeployError::NotSteady { summary, .. }) => summary.pinned_images = pins,
        Err(_) => {}
    }
    let text = match &result {
        Ok(Outcome::Deployed(summary)) => render_summary(summary, None, format),
        Ok(Outcome::DryRun(plan)) => render_plan(plan, format),
        Err(e) => match e.summary() {
            Some(summary) => render_summary(summary, Some(&e.to_string()), format),
            None => String::new(),
        },
    };
    let _ = out.write_all(text.as_bytes());
    let _ = out.flush();
    result.map(|_| ())
}

/// `--execution-role`: an IAM role ARN.
fn execution_role_arn(value: &str) -> Result<String, String> {
    let ok = value.starts_with("arn:")
        && value.split(':').nth(2) == Some("iam")
        && value.contains(":role/");
    if ok {
        Ok(value.to_string())
    } else {
        Err("expected an IAM role ARN, arn:aws:iam::ACCOUNT:role/NAME".to_string())
    }
}

/// The source revision's `executionRoleArn`, if it has one.
async fn task_execution_role(
    clients: &AwsClients,
    settings: &DeploySettings,
) -> Result<Option<String>, DeployError> {
    let reference = match settings.revision {
        Some(rev) => format!("{}:{rev}", settings.family),
        None => settings.family.clone(),
    };
    let current = super::service::describe(clients, settings, &reference).await?;
    Ok(current.definition["executionRoleArn"]
        .as_str()
        .filter(|r| !r.is_empty())
        .map(String::from))
}

/// The deploy mode end to end: the console fills in what the flags leave out (defender image,
/// CNAF ports, a credential kept in Secrets Manager), AWS settings come from the standard chain
/// and the flags, progress goes to stderr and the summary to stdout.
pub fn run(flags: &DeployFlags, embed: &EmbedFlags) -> Result<(), DeployError> {
    let family = flags.family.clone().unwrap_or_default();
    let resolved = embed.resolve(&family)?;
    let console = match (embed.names_credential(), resolved.console) {
        (true, _) => None,
        (false, Some(console)) => Some(console),
        (false, None) => return Err(DeployError::InvalidSettings(NO_CREDENTIAL.to_string())),
    };
    let mut options = resolved.options;
    let settings = flags.to_settings(options.cnaf.as_ref().map(|c| c.external_port))?;
    for note in &resolved.notes {
        eprintln!("deploy-protected: {note}");
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| {
            DeployError::InvalidSettings(format!("cannot start the async runtime: {e}"))
        })?;
    runtime.block_on(async {
        let config = load_sdk_config(flags.region.as_deref(), flags.profile.as_deref()).await;
        if config.region().is_none() {
            return Err(DeployError::InvalidSettings(
                "no AWS region: pass --region, set AWS_REGION, or set one in the profile"
                    .to_string(),
            ));
        }
        let clients = AwsClients::new(&config);
        options.execution_role_arn.clone_from(&flags.execution_role);
        if let Some(console) = &console {
            let secret =
                credential::ensure_secret(&clients, &settings.family, console, settings.dry_run)
                    .await?;
            eprintln!("deploy-protected: {}", secret.describe());
            options.token_secret_arn = Some(secret.arn().to_string());
            let role = match &flags.execution_role {
                Some(role) => Some(role.clone()),
                None => task_execution_role(&clients, &settings).await?,
            };
            let role = exec_role::ensure(
                &clients,
                &settings.family,
                role.as_deref(),
                secret.arn(),
                settings.dry_run,
            )
            .await?;
            eprintln!("deploy-protected: {}", role.describe());
            options.execution_role_arn = Some(role.arn().to_string());
        } else if let Some(secret) = embed.token_secret_arn.as_deref() {
            // The user's own secret: left as it is. A given role must already be able to read
            // it (checked before any change); a task with no role gets the family's role,
            // allowed to read that secret.
            let role = match &flags.execution_role {
                Some(role) => Some(role.clone()),
                None => task_execution_role(&clients, &settings).await?,
            };
            let own = exec_role::role_name(&settings.family);
            match role.filter(|arn| read_check::role_name_of(arn) != Some(own.as_str())) {
                Some(arn) => {
                    let note = read_check::check(&clients, &arn, secret).await?;
                    eprintln!("deploy-protected: {note}");
                    options.execution_role_arn = Some(arn);
                }
                None => {
                    let role = exec_role::ensure(
                        &clients,
                        &settings.family,
                        None,
                        secret,
                        settings.dry_run,
                    )
                    .await?;
                    eprintln!("deploy-protected: {}", role.describe());
                    options.execution_role_arn = Some(role.arn().to_string());
                }
            }
        }
        let mut progress = progress::for_stderr();
        let resolver = Resolver::default();
        let transform = ImageTransform::new(&options, (!embed.offline).then_some(&resolver));
        execute(
            &clients,
            &settings,
            &transform,
            flags.format(),
            &mut std::io::stdout().lock(),
            progress.as_mut(),
        )
        .await
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::args::{Cli, Command};
    use clap::Parser;

    #[test]
    fn root_without_subcommand_is_the_deploy_mode() {
        let cli = Cli::try_parse_from([
            "deploy-protected",
            "--family",
            "web",
            "--cluster",
            "c",
            "--subnets",
            "subnet-1,subnet-2",
            "--security-groups",
            "sg-1",
            "--console-url",
            "https://console.example",
            "--defender-image",
            "defender:1",
            "--cnaf-port",
            "8080",
            "--app-port",
            "80",
            "--wait-timeout",
            "90s",
            "--rollback",
            "--output",
            "json",
        ])
        .expect("parses");
        assert!(cli.command.is_none());
        let options = cli.embed.resolve("web").expect("embed flags").options;
        let s = cli
            .deploy
            .to_settings(options.cnaf.as_ref().map(|c| c.external_port))
            .expect("settings");
        assert_eq!(s.family, "web");
        assert_eq!(s.network.as_ref().map(|n| n.subnets.len()), Some(2));
        assert_eq!(
            s.cnaf.map(|c| (c.port, c.cidr.to_string())),
            Some((8080, "0.0.0.0/0".into()))
        );
        assert_eq!(s.wait.map(|w| w.timeout), Some(Duration::from_secs(90)));
        assert!(s.rollback);
        assert_eq!(cli.deploy.output, OutputArg::Json);
    }

    #[test]
    fn embed_subcommand_needs_no_deploy_flags_and_bare_root_is_a_usage_error() {
        let cli = Cli::try_parse_from([
            "deploy-protected",
            "embed",
            "--console-url",
            "https://console.example",
            "--defender-image",
            "defender:1",
        ])
        .expect("parses");
        assert!(matches!(cli.command, Some(Command::Embed(_))));
        let err = Cli::try_parse_from(["deploy-protected"]).expect_err("family and cluster");
        assert_eq!(err.kind(), clap::error::ErrorKind::MissingRequiredArgument);
        let err = Cli::try_parse_from([
            "deploy-protected",
            "--family",
            "web",
            "--cluster",
            "c",
            "--wait-timeout",
            "soon",
        ])
        .expect_err("bad duration");
        assert_eq!(err.kind(), clap::error::ErrorKind::ValueValidation);
    }

    #[test]
    fn flags_become_settings() {
        let flags = DeployFlags {
            family: Some("web".into()),
            cluster: Some("c".into()),
            subnets: vec!["subnet-1".into()],
            security_groups: vec!["sg-1".into()],
            cnaf_cidr: "10.0.0.0/8".parse().expect("cidr"),
            wait_timeout: Duration::from_secs(90),
            poll_interval: Duration::from_secs(5),
            ..DeployFlags::default()
        };
        let s = flags.to_settings(Some(8080)).expect("settings");
        assert_eq!(s.service_name(), "web");
        assert_eq!(
            s.cnaf,
            Some(CnafIngress {
                port: 8080,
                cidr: "10.0.0.0/8".parse().expect("cidr")
            })
        );
        assert_eq!(s.wait.map(|w| w.timeout), Some(Duration::from_secs(90)));
        let err = DeployFlags {
            security_groups: vec![],
            ..flags
        }
        .to_settings(None)
        .expect_err("half a network");
        assert_eq!(
            err.to_string(),
            "--security-groups is required: it goes with --subnets"
        );
    }
}
