//! The per-container half of the transform: wrapping an app container (or a log router) and
//! building the `defender` installer container.

use super::json::{array_mut, item_object, join, object_mut, opt_str, opt_string_array, strings};
use super::options::{Settings, Token};
use super::{
    TransformError, CNAF_FROM_CONSOLE, DEFENDER_CONTAINER, DEFENDER_MOUNT_PATH, DEFENDER_VOLUME,
    ENV_CNAF, ENV_CNAF_LISTEN, ENV_CNAF_UPSTREAM, ENV_CONSOLE_URL, ENV_CONTAINER_NAME, ENV_IMAGE,
    ENV_STARTUP, ENV_TASK_FAMILY, ENV_TOKEN, INSTALL_ENTRYPOINT, WRAPPER_PREFIX,
};
use serde_json::{json, Map, Value};

/// What one app container needs to know about the rest of the task.
pub(crate) struct AppContext<'a> {
    pub settings: &'a Settings<'a>,
    pub family: &'a str,
    /// This container runs the CNAF proxy: with the ports given to the transform, or (the
    /// task's only app container) when the console's CNAF rule names them.
    pub cnaf_target: bool,
}

/// Whether a container's entryPoint already starts with the defender wrapper.
pub(crate) fn is_wrapped(container: &Map<String, Value>) -> bool {
    match container.get("entryPoint") {
        Some(Value::Array(items)) => {
            items.len() >= WRAPPER_PREFIX.len()
                && items
                    .iter()
                    .zip(WRAPPER_PREFIX)
                    .all(|(item, want)| item.as_str() == Some(want))
        }
        _ => false,
    }
}

/// Whether a container is the transform's defender installer (recognised by its entryPoint).
pub(crate) fn is_defender_installer(container: &Map<String, Value>) -> bool {
    match container.get("entryPoint") {
        Some(Value::Array(items)) => {
            items.len() == INSTALL_ENTRYPOINT.len()
                && items
                    .iter()
                    .zip(INSTALL_ENTRYPOINT)
                    .all(|(item, want)| item.as_str() == Some(want))
        }
        _ => false,
    }
}

/// A new `defender` installer container, logging with `logs` when given (the caller passes an
/// `awslogs` configuration only: an `awsfirelens` one would make the installer wait for the log
/// router, a deadlock once the router is wrapped).
pub(crate) fn new_defender(image: &str, needs_memory: bool, logs: Option<Value>) -> Value {
    let mut container = json!({
        "name": DEFENDER_CONTAINER,
        "image": image,
        "essential": false,
        "entryPoint": strings(INSTALL_ENTRYPOINT),
        "mountPoints": [
            {"sourceVolume": DEFENDER_VOLUME, "containerPath": DEFENDER_MOUNT_PATH, "readOnly": false}
        ],
    });
    if needs_memory {
        container["memory"] = json!(DEFENDER_MEMORY_MIB);
    }
    if let Some(logs) = logs {
        container["logConfiguration"] = logs;
    }
    container
}

/// Memory limit (MiB) of the installer when the task has no task-level memory (EC2 launch
/// type), because ECS then requires a container-level value. A hard limit rather than a
/// reservation: the installer only copies one binary and exits, and EC2 task definitions
/// registered with `requiresCompatibilities: ["EC2"]` need `memory` on every container.
pub(crate) const DEFENDER_MEMORY_MIB: u64 = 64;

/// Brings an existing installer container up to date: image, essential, entryPoint, mount.
/// Anything else the user added to it (e.g. logConfiguration) is kept.
pub(crate) fn update_defender(
    container: &mut Map<String, Value>,
    path: &str,
    image: &str,
) -> Result<(), TransformError> {
    container.insert("image".into(), json!(image));
    container.insert("essential".into(), json!(false));
    container.insert("entryPoint".into(), strings(INSTALL_ENTRYPOINT));
    ensure_mount(container, path, DEFENDER_CONTAINER, false)
}

/// Refuses an existing installer that waits for a container the transform wraps (which waits
/// for the installer's SUCCESS): through a `dependsOn` entry, or by logging through FireLens
/// (`awsfirelens`), which makes ECS start it after the log router. `wrapped` lists the wrapped
/// containers' names and whether each is a log router. The installer the transform creates has
/// neither (see [`new_defender`]); this catches a hand-edited one.
pub(crate) fn check_installer_order(
    installer: &Map<String, Value>,
    path: &str,
    wrapped: &[(&str, bool)],
) -> Result<(), TransformError> {
    let deps = installer.get("dependsOn").and_then(Value::as_array);
    for (i, dep) in deps.into_iter().flatten().enumerate() {
        let waits_for = dep.get("containerName").and_then(Value::as_str);
        if let Some(&(name, _)) = wrapped.iter().find(|(n, _)| Some(*n) == waits_for) {
            return Err(TransformError::InstallerWaitsForWrapped {
                path: format!("{}[{i}]", join(path, "dependsOn")),
                container: name.to_string(),
            });
        }
    }
    let driver = installer
        .get("logConfiguration")
        .and_then(|l| l.get("logDriver"))
        .and_then(Value::as_str);
    if driver == Some("awsfirelens") {
        if let Some(&(router, _)) = wrapped.iter().find(|(_, is_router)| *is_router) {
            return Err(TransformError::InstallerLogsThroughRouter {
                path: join(&join(path, "logConfiguration"), "logDriver"),
                router: router.to_string(),
            });
        }
    }
    Ok(())
}

/// Wraps one app container or log router (or refreshes an earlier wrapping). Returns warnings.
pub(crate) fn wrap_app(
    container: &mut Map<String, Value>,
    path: &str,
    name: &str,
    ctx: &AppContext<'_>,
) -> Result<Vec<String>, TransformError> {
    let mut warnings = Vec::new();
    let image = opt_str(container, "image", path)?
        .filter(|i| !i.is_empty())
        .ok_or_else(|| TransformError::MissingImage {
            path: join(path, "image"),
            container: name.to_string(),
        })?
        .to_string();
    let confirmed = ctx.settings.no_image_entrypoint.iter().any(|n| n == name);
    if !is_wrapped(container) {
        let entry_point = opt_string_array(container, "entryPoint", path)?;
        let command = opt_string_array(container, "command", path)?;
        let mut wrapped: Vec<String> = WRAPPER_PREFIX.iter().map(|s| s.to_string()).collect();
        let read = ctx.settings.images.get(&image).map(|info| &info.config);
        match (entry_point, command, read) {
            (Some(original), _, _) => {
                if confirmed {
                    warnings.push(format!(
                        "{path}: container \"{name}\" has an entryPoint, so \
                         --no-image-entrypoint {name} changes nothing"
                    ));
                }
                wrapped.extend(original);
            }
            // Docker's rules with the image's config: its ENTRYPOINT, then the task's command
            // or else the image's CMD (which ECS drops once entryPoint is set, so it is copied).
            (None, command, Some(config)) => {
                let image_cmd = config.cmd().map(<[String]>::to_vec);
                if config.entrypoint().is_none() && command.is_none() && image_cmd.is_none() {
                    return Err(TransformError::ImageHasNothingToRun {
                        path: path.to_string(),
                        container: name.to_string(),
                        image: image.clone(),
                    });
                }
                if let (true, Some(entrypoint)) = (confirmed, config.entrypoint()) {
                    warnings.push(format!(
                        "{path}: --no-image-entrypoint {name}: image {image} has the \
                         ENTRYPOINT {}, which is kept after the defender wrapper; drop the flag",
                        serde_json::to_string(entrypoint).unwrap_or_default()
                    ));
                }
                wrapped.extend(config.entrypoint().unwrap_or_default().iter().cloned());
                if let (None, Some(cmd)) = (command, image_cmd) {
                    container.insert("command".into(), strings(cmd));
                }
            }
            (None, Some(_), None) => {
                if !confirmed {
                    return Err(TransformError::CommandWithoutEntryPoint {
                        path: path.to_string(),
                        container: name.to_string(),
                    });
                }
            }
            (None, None, None) => {
                return Err(TransformError::NoEntryPointNorCommand {
                    path: path.to_string(),
                    container: name.to_string(),
                })
            }
        }
        container.insert("entryPoint".into(), strings(wrapped));
    }
    ensure_mount(container, path, name, true)?;
    ensure_depends_on(container, path)?;
    ensure_ptrace(container, path, name)?;
    set_environment(container, path, name, &image, ctx)?;
    if let Some(cnaf) = ctx.settings.cnaf.filter(|_| ctx.cnaf_target) {
        warnings.extend(ensure_cnaf_port(
            container,
            path,
            name,
            cnaf.external_port,
            cnaf.app_port,
        )?);
    }
    Ok(warnings)
}

/// Mounts the `defender` volume at `/var/lib/defender` (read-only for app containers).
fn ensure_mount(
    container: &mut Map<String, Value>,
    path: &str,
    name: &str,
    read_only: bool,
) -> Result<(), TransformError> {
    let list_path = join(path, "mountPoints");
    let mounts = array_mut(container, "mountPoints", path)?;
    for (i, mount) in mounts.iter_mut().enumerate() {
        item_object(mount, &list_path, i)?;
        let Value::Object(mount) = mount else {
            continue;
        };
        let item_path = format!("{list_path}[{i}]");
        if opt_str(mount, "containerPath", &item_path)?
            .is_some_and(|p| p.trim_end_matches('/') == DEFENDER_MOUNT_PATH)
        {
            let volume = opt_str(mount, "sourceVolume", &item_path)?.unwrap_or_default();
            if volume != DEFENDER_VOLUME {
                return Err(TransformError::DefenderMountConflict {
                    path: item_path,
                    container: name.to_string(),
                    volume: volume.to_string(),
                });
            }
            mount.insert("containerPath".into(), json!(DEFENDER_MOUNT_PATH));
            mount.insert("readOnly".into(), json!(read_only));
            return Ok(());
        }
    }
    mounts.push(json!({
        "sourceVolume": DEFENDER_VOLUME,
        "containerPath": DEFENDER_MOUNT_PATH,
        "readOnly": read_only,
    }));
    Ok(())
}

/// `dependsOn` gains `{containerName: defender, condition: SUCCESS}` (an existing entry for the
/// defender gets the SUCCESS condition).
fn ensure_depends_on(container: &mut Map<String, Value>, path: &str) -> Result<(), TransformError> {
    let list_path = join(path, "dependsOn");
    let deps = array_mut(container, "dependsOn", path)?;
    let mut found = false;
    for (i, dep) in deps.iter_mut().enumerate() {
        item_object(dep, &list_path, i)?;
        let Value::Object(dep) = dep else {
            continue;
        };
        let item_path = format!("{list_path}[{i}]");
        if opt_str(dep, "containerName", &item_path)? == Some(DEFENDER_CONTAINER) {
            dep.insert("condition".into(), json!("SUCCESS"));
            found = true;
        }
    }
    if !found {
        deps.push(json!({"containerName": DEFENDER_CONTAINER, "condition": "SUCCESS"}));
    }
    // Two entries for the defender (possible in a hand-edited document) collapse to one.
    let mut seen = false;
    deps.retain(|dep| {
        let ours = dep.get("containerName").and_then(Value::as_str) == Some(DEFENDER_CONTAINER);
        let keep = !(ours && seen);
        seen |= ours;
        keep
    });
    Ok(())
}

fn is_ptrace(cap: &Value) -> bool {
    cap.as_str().is_some_and(|c| {
        let c = c.to_ascii_uppercase();
        c == "SYS_PTRACE" || c == "CAP_SYS_PTRACE"
    })
}

/// `linuxParameters.capabilities.add` gains `SYS_PTRACE`; a drop of it is an error.
fn ensure_ptrace(
    container: &mut Map<String, Value>,
    path: &str,
    name: &str,
) -> Result<(), TransformError> {
    let linux_path = join(path, "linuxParameters");
    let linux = object_mut(container, "linuxParameters", path)?;
    let caps_path = join(&linux_path, "capabilities");
    let caps = object_mut(linux, "capabilities", &linux_path)?;
    if let Some(drop) = caps.get("drop") {
        let Value::Array(drop) = drop else {
            return Err(TransformError::WrongType {
                path: join(&caps_path, "drop"),
                expected: "an array of strings",
                found: super::json::kind(drop),
            });
        };
        if drop.iter().any(is_ptrace) {
            return Err(TransformError::PtraceDropped {
                path: join(&caps_path, "drop"),
                container: name.to_string(),
            });
        }
    }
    let add = array_mut(caps, "add", &caps_path)?;
    if !add.iter().any(is_ptrace) {
        add.push(json!("SYS_PTRACE"));
    }
    Ok(())
}

/// The image the defender reports (`DEFENDER_IMAGE`, matched by policy scopes): the image,
/// except that an image pinned by an earlier embedding keeps the reference it was pinned from
/// (`nginx:1.27`, not `nginx@sha256:...`), so embedding a pinned definition again changes
/// nothing and scopes written for tags still match.
fn scope_image(env: &[Value], image: &str) -> String {
    let Some((_, digest)) = image.split_once('@') else {
        return image.to_string();
    };
    env.iter()
        .filter(|e| e.get("name").and_then(Value::as_str) == Some(ENV_IMAGE))
        .filter_map(|e| e.get("value").and_then(Value::as_str))
        .find(|before| super::image::pinned_reference(before, digest) == image)
        .unwrap_or(image)
        .to_string()
}

/// Removes entries named in `names` from a `[{name, ...}]` list.
fn remove_named(list: &mut Vec<Value>, names: &[&str]) {
    list.retain(|item| {
        !item
            .get("name")
            .and_then(Value::as_str)
            .is_some_and(|n| names.contains(&n))
    });
}

/// Checks that every item of a `[{name, ...}]` list is an object.
fn check_items(list: &[Value], list_path: &str) -> Result<(), TransformError> {
    for (i, item) in list.iter().enumerate() {
        item_object(item, list_path, i)?;
    }
    Ok(())
}

/// The defender's environment (and the credential in `secrets`), replacing earlier values.
fn set_environment(
    container: &mut Map<String, Value>,
    path: &str,
    name: &str,
    image: &str,
    ctx: &AppContext<'_>,
) -> Result<(), TransformError> {
    let settings = ctx.settings;
    let env_path = join(path, "environment");
    let env = array_mut(container, "environment", path)?;
    check_items(env, &env_path)?;
    let image = scope_image(env, image);
    let mut replaced = vec![
        ENV_CONSOLE_URL,
        ENV_TASK_FAMILY,
        ENV_CONTAINER_NAME,
        ENV_IMAGE,
        ENV_CNAF,
    ];
    if settings.startup.is_some() {
        replaced.push(ENV_STARTUP);
    }
    if settings.token.is_some() {
        replaced.push(ENV_TOKEN);
    }
    if settings.cnaf.is_some() {
        replaced.extend([ENV_CNAF_LISTEN, ENV_CNAF_UPSTREAM]);
    }
    remove_named(env, &replaced);
    let mut add = vec![
        (ENV_CONSOLE_URL, settings.console_url.to_string()),
        (ENV_TASK_FAMILY, ctx.family.to_string()),
        (ENV_CONTAINER_NAME, name.to_string()),
        (ENV_IMAGE, image),
    ];
    if let Some(Token::Plain(token)) = &settings.token {
        add.push((ENV_TOKEN, token.clone()));
    }
    if let Some(startup) = settings.startup {
        add.push((ENV_STARTUP, startup.as_str().to_string()));
    }
    if ctx.cnaf_target {
        add.push((ENV_CNAF, CNAF_FROM_CONSOLE.to_string()));
    }
    if let Some(cnaf) = settings.cnaf.filter(|_| ctx.cnaf_target) {
        add.push((ENV_CNAF_LISTEN, format!("0.0.0.0:{}", cnaf.external_port)));
        add.push((ENV_CNAF_UPSTREAM, format!("127.0.0.1:{}", cnaf.app_port)));
    }
    env.extend(
        add.into_iter()
            .map(|(name, value)| json!({"name": name, "value": value})),
    );

    match &settings.token {
        Some(Token::Secret(arn)) => {
            let secrets_path = join(path, "secrets");
            let secrets = array_mut(container, "secrets", path)?;
            check_items(secrets, &secrets_path)?;
            remove_named(secrets, &[ENV_TOKEN]);
            secrets.push(json!({"name": ENV_TOKEN, "valueFrom": arn}));
        }
        Some(Token::Plain(_)) if container.contains_key("secrets") => {
            let secrets_path = join(path, "secrets");
            let secrets = array_mut(container, "secrets", path)?;
            check_items(secrets, &secrets_path)?;
            remove_named(secrets, &[ENV_TOKEN]);
        }
        _ => {}
    }
    Ok(())
}

/// The port number of a portMapping, if it has one.
pub(crate) fn mapped_port(mapping: &Value) -> Option<u64> {
    mapping.get("containerPort").and_then(Value::as_u64)
}

fn is_tcp(mapping: &Value) -> bool {
    mapping
        .get("protocol")
        .and_then(Value::as_str)
        .is_none_or(|p| p.eq_ignore_ascii_case("tcp"))
}

/// The CNAF container maps the external port (tcp), once. Warns when the app port stays mapped.
fn ensure_cnaf_port(
    container: &mut Map<String, Value>,
    path: &str,
    name: &str,
    external: u16,
    app: u16,
) -> Result<Vec<String>, TransformError> {
    let list_path = join(path, "portMappings");
    let mappings = array_mut(container, "portMappings", path)?;
    check_items(mappings, &list_path)?;
    if !mappings
        .iter()
        .any(|m| mapped_port(m) == Some(u64::from(external)) && is_tcp(m))
    {
        mappings.push(json!({"containerPort": external, "protocol": "tcp"}));
    }
    let mut warnings = Vec::new();
    if mappings
        .iter()
        .any(|m| mapped_port(m) == Some(u64::from(app)))
    {
        warnings.push(format!(
            "{list_path}: container \"{name}\" still maps the app port {app}; traffic sent \
             to it bypasses CNAF, so open only port {external} in the security group"
        ));
    }
    Ok(warnings)
}
