//! The task-definition transform: embeds the defender into an ECS task definition.
//!
//! [`embed`] is a pure function from a task definition (JSON, either the RegisterTaskDefinition
//! input or the DescribeTaskDefinition output `{"taskDefinition": {...}, "tags": [...]}`) and
//! [`EmbedOptions`] to a RegisterTaskDefinition input ([`EmbedOutput`]) or a [`TransformError`]
//! that names the JSON path, the container and the fix.
//!
//! What it does (see the README's "transform" section for the user-facing reference):
//! - drops the read-only fields DescribeTaskDefinition adds and every `null` member;
//! - adds a task-scoped volume `defender` and a non-essential container `defender` that copies
//!   the defender binary into it (`/defender install /var/lib/defender`);
//! - wraps every app container, and every FireLens log router whose entrypoint is known (an
//!   `entryPoint`, or a `command` confirmed with `no_image_entrypoint`): read-only mount of the
//!   volume, `dependsOn` the installer's SUCCESS, `SYS_PTRACE`, entryPoint
//!   `/var/lib/defender/defender run -- <entryPoint...>` (command unchanged), the `DEFENDER_*`
//!   environment and the credential in `secrets`;
//! - CNAF, in an app container (never a log router): the external port mapping and
//!   `DEFENDER_CNAF_LISTEN` / `DEFENDER_CNAF_UPSTREAM`;
//! - leaves excluded containers untouched, and log routers whose entrypoint is unknown (with a
//!   warning that says how to protect them);
//! - wraps a container without `entryPoint` with its image's own ENTRYPOINT and CMD when the
//!   caller read the image ([`EmbedOptions::images`], Docker's rules in [`image`]), and with
//!   [`EmbedOptions::pin_digests`] references every image by the digest that was read;
//! - is idempotent: embedding its own output again only refreshes image and environment.

mod container;
mod error;
pub mod image;
mod json;
mod options;

pub use error::TransformError;
pub use image::{ImageConfig, ImageInfo, Pin};
pub use options::{CnafOptions, EmbedOptions};

use container::{is_defender_installer, is_wrapped, mapped_port, AppContext};
use json::{join, kind, named_items, opt_str, strip_nulls};
use serde_json::{json, Map, Value};

/// Name of the installer container the transform adds.
pub const DEFENDER_CONTAINER: &str = "defender";
/// Name of the task-scoped volume the defender binary is installed into.
pub const DEFENDER_VOLUME: &str = "defender";
/// Where the volume is mounted in every container.
pub const DEFENDER_MOUNT_PATH: &str = "/var/lib/defender";
/// The installer container's entryPoint (also how an earlier embedding is recognised).
pub const INSTALL_ENTRYPOINT: [&str; 3] = ["/defender", "install", DEFENDER_MOUNT_PATH];
/// What every wrapped entryPoint starts with.
pub const WRAPPER_PREFIX: [&str; 3] = ["/var/lib/defender/defender", "run", "--"];
/// Fields DescribeTaskDefinition returns that RegisterTaskDefinition does not accept.
pub const READ_ONLY_FIELDS: [&str; 8] = [
    "taskDefinitionArn",
    "revision",
    "status",
    "requiresAttributes",
    "compatibilities",
    "registeredAt",
    "registeredBy",
    "deregisteredAt",
];

/// Environment variables the transform writes (the defender reads them).
pub const ENV_CONSOLE_URL: &str = "DEFENDER_CONSOLE_URL";
/// See [`ENV_CONSOLE_URL`].
pub const ENV_TASK_FAMILY: &str = "DEFENDER_TASK_FAMILY";
/// See [`ENV_CONSOLE_URL`].
pub const ENV_CONTAINER_NAME: &str = "DEFENDER_CONTAINER_NAME";
/// See [`ENV_CONSOLE_URL`].
pub const ENV_IMAGE: &str = "DEFENDER_IMAGE";
/// The defender credential (a `secrets` entry, or plain `environment` when opted in).
pub const ENV_TOKEN: &str = "DEFENDER_TOKEN";
/// See [`ENV_CONSOLE_URL`].
pub const ENV_CNAF_LISTEN: &str = "DEFENDER_CNAF_LISTEN";
/// See [`ENV_CONSOLE_URL`].
pub const ENV_CNAF_UPSTREAM: &str = "DEFENDER_CNAF_UPSTREAM";
/// Which container runs the CNAF proxy for the console's CNAF rule: `console` on that one
/// container (the task's only app container, or the one chosen with `--cnaf-container`). Its
/// defender starts, moves or stops the proxy as the task's CNAF rule names ports or not; any
/// other value, or unset, leaves the proxy to `DEFENDER_CNAF_LISTEN`.
pub const ENV_CNAF: &str = "DEFENDER_CNAF";
/// The value of [`ENV_CNAF`] that hands the proxy's ports to the console's CNAF rule.
pub const CNAF_FROM_CONSOLE: &str = "console";
/// The startup mode while no policy is known yet (`availability` or `security`); a fetched or
/// cached rule's `startup` wins.
pub const ENV_STARTUP: &str = "DEFENDER_STARTUP";

/// The `family` of a task definition in either input shape (RegisterTaskDefinition input or
/// DescribeTaskDefinition output), if it has one; callers use it before the transform runs.
pub fn family_of(input: &Value) -> Option<&str> {
    input
        .get("taskDefinition")
        .unwrap_or(input)
        .get("family")
        .and_then(Value::as_str)
}

/// The defender image a console or CLI of this version uses when none is named: the tag
/// `cargo xtask package --image` builds (`fargate-defender:VERSION`). Push it to a registry the
/// tasks can pull from under the same name, or name another with `CONSOLE_DEFENDER_IMAGE` /
/// `--defender-image`.
pub fn default_defender_image() -> String {
    format!("fargate-defender:{}", env!("CARGO_PKG_VERSION"))
}

/// The Secrets Manager secret that holds the defender credential of task family `family`, as
/// both `deploy-protected` and the console's transform keep it (one per family, reused).
pub fn credential_secret_name(family: &str) -> String {
    format!("fargate-defender/{family}/defender-token")
}

/// Tag keys on the credential secrets (the family, the console's credential id).
pub const SECRET_TAG_FAMILY: &str = "fargate-defender:family";
/// See [`SECRET_TAG_FAMILY`].
pub const SECRET_TAG_CREDENTIAL: &str = "fargate-defender:credential-id";

/// The protected task definition and what the caller should know about it.
#[derive(Debug, Clone, PartialEq)]
pub struct EmbedOutput {
    /// A RegisterTaskDefinition input.
    pub task_definition: Value,
    /// Things that work but deserve attention (plain-text token, unwrapped log routers, ...).
    pub warnings: Vec<String>,
    /// The image references replaced by digests (`pin_digests`), in container order.
    pub pins: Vec<Pin>,
}

/// Embeds the defender into `input` (see the module docs for the rules).
pub fn embed(input: &Value, options: &EmbedOptions) -> Result<EmbedOutput, TransformError> {
    let settings = options.validate()?;
    let (mut td, root) = unwrap_document(input)?;
    let mut warnings = Vec::new();
    if matches!(settings.token, Some(options::Token::Plain(_))) {
        warnings.push(format!(
            "{ENV_TOKEN} is stored in plain text in the task definition's environment; anyone \
             who can describe the task definition can read it (use --token-secret-arn)"
        ));
    }

    let family = opt_str(&td, "family", &root)?
        .filter(|f| !f.is_empty())
        .ok_or_else(|| TransformError::MissingFamily {
            path: join(&root, "family"),
        })?
        .to_string();
    check_platform(&td, &root)?;

    let containers_path = join(&root, "containerDefinitions");
    let names = container_names(&td, &root)?;
    let known = names
        .iter()
        .filter(|n| n.as_str() != DEFENDER_CONTAINER)
        .cloned()
        .collect::<Vec<_>>();
    for (flag, list) in [
        ("--exclude-container", settings.exclude),
        ("--no-image-entrypoint", settings.no_image_entrypoint),
    ] {
        for name in list {
            check_known(flag, name, &known)?;
        }
    }
    if let Some(name) = settings.cnaf.and_then(|c| c.container.as_ref()) {
        check_known("--cnaf-container", name, &known)?;
    }

    // Classify: our installer; app containers and FireLens log routers whose entrypoint is
    // known (both wrapped, but only app containers may run the CNAF proxy); the rest (excluded
    // containers, log routers whose entrypoint is unknown) stay as they are.
    let containers = container_list(&td);
    let mut installer = None;
    let mut apps = Vec::new();
    let mut wrapped = Vec::new();
    for (i, (c, name)) in containers.iter().zip(&names).enumerate() {
        let path = format!("{containers_path}[{i}]");
        if name == DEFENDER_CONTAINER {
            if !is_defender_installer(c) {
                return Err(TransformError::ForeignDefenderContainer {
                    path: join(&path, "entryPoint"),
                });
            }
            installer = Some(i);
        } else if settings.exclude.contains(name) {
            if is_wrapped(c) {
                return Err(TransformError::ExcludedButWrapped {
                    path: join(&path, "entryPoint"),
                    container: name.clone(),
                });
            }
        } else if is_log_router(c) {
            // An entryPoint (wrapped or not), the user's word that a command is the whole
            // program, or the image's config; wrap_app then checks the rest as for any
            // container.
            let image_read = c
                .get("image")
                .and_then(Value::as_str)
                .is_some_and(|i| settings.images.contains_key(i));
            if c.contains_key("entryPoint")
                || settings.no_image_entrypoint.contains(name)
                || image_read
            {
                wrapped.push(i);
            } else {
                warnings.push(unwrapped_router_warning(&path, name, c));
            }
        } else {
            apps.push(i);
            wrapped.push(i);
        }
    }
    if apps.is_empty() {
        return Err(TransformError::NothingToProtect {
            path: containers_path,
        });
    }
    if let Some(i) = installer {
        let waited_for = |j: &usize| (names[*j].as_str(), is_log_router(&containers[*j]));
        container::check_installer_order(
            &containers[i],
            &format!("{containers_path}[{i}]"),
            &wrapped.iter().map(waited_for).collect::<Vec<_>>(),
        )?;
    }
    // With no ports given, the only app container still runs the proxy once the console's
    // CNAF rule names ports (`DEFENDER_CNAF=console`).
    let cnaf_target = match (settings.cnaf, apps.as_slice()) {
        (Some(cnaf), _) => Some(cnaf_target(cnaf, &apps, &names)?),
        (None, [only]) => Some(*only),
        (None, _) => None,
    };
    if let (Some(target), Some(cnaf)) = (cnaf_target, settings.cnaf) {
        for (i, c) in containers.iter().enumerate() {
            let maps_port = c
                .get("portMappings")
                .and_then(Value::as_array)
                .is_some_and(|m| {
                    m.iter()
                        .any(|m| mapped_port(m) == Some(u64::from(cnaf.external_port)))
                });
            if i != target && maps_port {
                return Err(TransformError::CnafPortInUse {
                    path: format!("{containers_path}[{i}].portMappings"),
                    container: names[i].clone(),
                    port: cnaf.external_port,
                });
            }
        }
    }

    if let Some(role) = &options.execution_role_arn {
        td.insert("executionRoleArn".into(), Value::String(role.clone()));
    }
    if matches!(settings.token, Some(options::Token::Secret(_)))
        && !td.contains_key("executionRoleArn")
    {
        warnings.push(format!(
            "{}: not set; ECS needs a task execution role allowed to read the token secret \
             (secretsmanager:GetSecretValue or ssm:GetParameters) to start the task",
            join(&root, "executionRoleArn")
        ));
    }

    ensure_volume(&mut td, &root)?;
    let needs_memory = !td.contains_key("memory");
    let list = json::array_mut(&mut td, "containerDefinitions", &root)?;
    for &i in &wrapped {
        let path = format!("{containers_path}[{i}]");
        let ctx = AppContext {
            settings: &settings,
            family: &family,
            cnaf_target: cnaf_target == Some(i),
        };
        if let Some(Value::Object(c)) = list.get_mut(i) {
            warnings.extend(container::wrap_app(c, &path, &names[i], &ctx)?);
        }
    }
    let pins = pin_digests(list, &containers_path, &names, installer, &settings)?;
    match installer.and_then(|i| list.get_mut(i).map(|c| (i, c))) {
        Some((i, Value::Object(c))) => {
            let path = format!("{containers_path}[{i}]");
            container::update_defender(c, &path, settings.defender_image)?;
        }
        _ => {
            // The installer logs where the first app container does, when that is CloudWatch
            // (awslogs needs no other container; a FireLens route would make it wait for the
            // log router, which waits for the installer once it is wrapped).
            let logs = apps
                .iter()
                .filter_map(|&i| list.get(i)?.get("logConfiguration"))
                .find(|l| l.get("logDriver").and_then(Value::as_str) == Some("awslogs"))
                .cloned();
            let installer = container::new_defender(settings.defender_image, needs_memory, logs);
            list.insert(0, installer);
        }
    }

    Ok(EmbedOutput {
        task_definition: Value::Object(td),
        warnings,
        pins,
    })
}

/// `pin_digests`: every container but the installer references its image by the digest that
/// was read (an image already named by digest stays).
fn pin_digests(
    list: &mut [Value],
    containers_path: &str,
    names: &[String],
    installer: Option<usize>,
    settings: &options::Settings<'_>,
) -> Result<Vec<Pin>, TransformError> {
    let mut pins = Vec::new();
    if !settings.pin_digests {
        return Ok(pins);
    }
    for (i, c) in list.iter_mut().enumerate() {
        let Value::Object(c) = c else { continue };
        let Some(image) = c.get("image").and_then(Value::as_str).map(String::from) else {
            continue;
        };
        if Some(i) == installer || image::is_digest_reference(&image) {
            continue;
        }
        let info = settings
            .images
            .get(&image)
            .ok_or_else(|| TransformError::ImageNotRead {
                path: format!("{containers_path}[{i}].image"),
                container: names[i].clone(),
                image: image.clone(),
            })?;
        let pinned = image::pinned_reference(&image, &info.digest);
        c.insert("image".into(), Value::String(pinned.clone()));
        pins.push(Pin {
            container: names[i].clone(),
            from: image,
            to: pinned,
        });
    }
    Ok(pins)
}

/// The task definition object (nulls and read-only fields removed, DescribeTaskDefinition tags
/// moved in) and the path prefix of its fields in the caller's document.
fn unwrap_document(input: &Value) -> Result<(Map<String, Value>, String), TransformError> {
    let Value::Object(doc) = input else {
        return Err(TransformError::NotAnObject {
            path: "$".into(),
            found: kind(input),
        });
    };
    let (mut td, root) = match doc.get("taskDefinition") {
        Some(Value::Object(inner)) if !doc.contains_key("containerDefinitions") => {
            let mut td = inner.clone();
            if let Some(tags) = doc.get("tags").filter(|t| !t.is_null()) {
                match tags {
                    Value::Array(items) if items.is_empty() => {}
                    Value::Array(_) => {
                        td.insert("tags".into(), tags.clone());
                    }
                    other => {
                        return Err(TransformError::WrongType {
                            path: "tags".into(),
                            expected: "an array",
                            found: kind(other),
                        })
                    }
                }
            }
            (td, "taskDefinition".to_string())
        }
        Some(other) if !other.is_null() && !doc.contains_key("containerDefinitions") => {
            return Err(TransformError::NotAnObject {
                path: "taskDefinition".into(),
                found: kind(other),
            })
        }
        _ => (doc.clone(), String::new()),
    };
    for field in READ_ONLY_FIELDS {
        td.remove(field);
    }
    let mut value = Value::Object(td);
    strip_nulls(&mut value);
    match value {
        Value::Object(td) => Ok((td, root)),
        other => Err(TransformError::NotAnObject {
            path: "$".into(),
            found: kind(&other),
        }),
    }
}

/// Windows tasks and non-awsvpc Fargate tasks are refused.
fn check_platform(td: &Map<String, Value>, root: &str) -> Result<(), TransformError> {
    if let Some(platform) = td.get("runtimePlatform") {
        let path = join(root, "runtimePlatform");
        let Value::Object(platform) = platform else {
            return Err(TransformError::WrongType {
                path,
                expected: "an object",
                found: kind(platform),
            });
        };
        if let Some(family) = opt_str(platform, "operatingSystemFamily", &path)? {
            if family.to_ascii_uppercase().starts_with("WINDOWS") {
                return Err(TransformError::WindowsTask {
                    path: join(&path, "operatingSystemFamily"),
                    family: family.to_string(),
                });
            }
        }
    }
    let fargate = json::opt_array(td, "requiresCompatibilities", root)?
        .is_some_and(|c| c.iter().any(|c| c.as_str() == Some("FARGATE")));
    if fargate {
        let mode = opt_str(td, "networkMode", root)?;
        if mode != Some("awsvpc") {
            return Err(TransformError::FargateNetworkMode {
                path: join(root, "networkMode"),
                mode: mode.map_or_else(|| "missing".to_string(), |m| format!("\"{m}\"")),
            });
        }
    }
    Ok(())
}

/// Container names, checked: an array of objects, each with a unique non-empty name.
fn container_names(td: &Map<String, Value>, root: &str) -> Result<Vec<String>, TransformError> {
    let path = join(root, "containerDefinitions");
    match td.get("containerDefinitions") {
        Some(Value::Array(items)) if !items.is_empty() => {}
        Some(Value::Array(_)) | None => return Err(TransformError::NoContainers { path }),
        Some(other) => {
            return Err(TransformError::WrongType {
                path,
                expected: "an array of container definitions",
                found: kind(other),
            })
        }
    }
    let names = named_items(td, "containerDefinitions", root)?;
    for (i, name) in names.iter().enumerate() {
        let item = format!("{path}[{i}].name");
        if name.is_empty() {
            return Err(TransformError::MissingName { path: item });
        }
        if let Some(first) = names[..i].iter().position(|n| n == name) {
            return Err(TransformError::DuplicateContainer {
                path: item,
                container: name.clone(),
                first: format!("{path}[{first}]"),
            });
        }
    }
    Ok(names)
}

/// Whether a container is a FireLens log router.
fn is_log_router(container: &Map<String, Value>) -> bool {
    container.contains_key("firelensConfiguration")
}

/// What the user reads about a log router left unwrapped, and how to protect or silence it. A
/// warning, not an error: the router's image entrypoint is rarely in the task definition, and
/// the app containers' logs depend on it.
fn unwrapped_router_warning(path: &str, name: &str, container: &Map<String, Value>) -> String {
    let how = if container.contains_key("command") {
        format!(
            "copy its image's ENTRYPOINT into \"entryPoint\", or, if the image has no \
             ENTRYPOINT, confirm it with --no-image-entrypoint {name}"
        )
    } else {
        "copy its image's ENTRYPOINT into \"entryPoint\" (and its CMD into \"command\")".into()
    };
    format!(
        "{path}: container \"{name}\" is a FireLens log router whose entrypoint is not in the \
         task definition, so it is left unwrapped; to protect it, {how}; to silence this \
         warning, --exclude-container {name}"
    )
}

/// The container objects (already checked by [`container_names`]).
fn container_list(td: &Map<String, Value>) -> Vec<Map<String, Value>> {
    td.get("containerDefinitions")
        .and_then(Value::as_array)
        .map(|items| {
            items
                .iter()
                .filter_map(|c| c.as_object().cloned())
                .collect()
        })
        .unwrap_or_default()
}

fn check_known(flag: &'static str, name: &str, known: &[String]) -> Result<(), TransformError> {
    if known.iter().any(|k| k == name) {
        return Ok(());
    }
    Err(TransformError::UnknownContainer {
        flag,
        container: name.to_string(),
        known: known.join(", "),
    })
}

/// The index of the container that runs the CNAF proxy.
fn cnaf_target(
    cnaf: &CnafOptions,
    apps: &[usize],
    names: &[String],
) -> Result<usize, TransformError> {
    match (&cnaf.container, apps) {
        (Some(wanted), _) => apps
            .iter()
            .copied()
            .find(|&i| &names[i] == wanted)
            .ok_or_else(|| TransformError::CnafContainerNotWrapped {
                container: wanted.clone(),
            }),
        (None, [only]) => Ok(*only),
        (None, _) => Err(TransformError::CnafContainerRequired {
            candidates: apps
                .iter()
                .map(|&i| names[i].as_str())
                .collect::<Vec<_>>()
                .join(", "),
        }),
    }
}

/// Adds the task-scoped `defender` volume (no host), or checks an existing one is ours.
fn ensure_volume(td: &mut Map<String, Value>, root: &str) -> Result<(), TransformError> {
    let list_path = join(root, "volumes");
    let names = named_items(td, "volumes", root)?;
    if let Some(i) = names.iter().position(|n| n == DEFENDER_VOLUME) {
        let foreign = td
            .get("volumes")
            .and_then(|v| v.get(i))
            .and_then(Value::as_object)
            .is_some_and(is_foreign_volume);
        if foreign {
            return Err(TransformError::ForeignDefenderVolume {
                path: format!("{list_path}[{i}]"),
            });
        }
        return Ok(());
    }
    json::array_mut(td, "volumes", root)?.push(json!({"name": DEFENDER_VOLUME}));
    Ok(())
}

/// A `defender` volume that is not task-scoped storage without a host (ECS describes ours as
/// `{"name": "defender"}` or `{"name": "defender", "host": {}}`).
fn is_foreign_volume(volume: &Map<String, Value>) -> bool {
    volume.iter().any(|(key, value)| match key.as_str() {
        "name" => false,
        "host" => value.get("sourcePath").is_some(),
        "configuredAtLaunch" => value.as_bool() == Some(true),
        _ => true,
    })
}
