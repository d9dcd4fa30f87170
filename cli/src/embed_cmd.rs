//! `deploy-protected embed`: reads a task definition (a file or stdin), embeds the defender and
//! prints the protected definition as pretty JSON on stdout; warnings go to stderr.

use crate::args::{EmbedArgs, NO_CREDENTIAL};
use crate::console::ConsoleError;
use crate::Failure;
use anyhow::{anyhow, Context};
use protect::embed::EmbedOptions;
use serde_json::Value;
use std::io::{Read, Write};
use std::path::Path;

/// The largest task definition accepted (ECS itself caps a task definition at 64 KiB).
pub const MAX_INPUT_BYTES: u64 = 1024 * 1024;

/// Runs `embed` with the given streams.
pub fn run(
    args: &EmbedArgs,
    stdin: &mut dyn Read,
    stdout: &mut dyn Write,
    stderr: &mut dyn Write,
) -> Result<(), Failure> {
    let (source, text) = match args.file.as_deref() {
        Some(path) if path != Path::new("-") => {
            let shown = path.display().to_string();
            let file = std::fs::File::open(path)
                .with_context(|| format!("reading {shown}"))
                .map_err(Failure::Runtime)?;
            (shown, read_bounded(file)?)
        }
        _ => ("stdin".to_string(), read_bounded(stdin)?),
    };
    let document = parse(&source, &text)?;
    let family = protect::embed::family_of(&document)
        .unwrap_or_default()
        .to_string();
    let console_failure = |e: ConsoleError| {
        if e.is_usage() {
            Failure::BadInput(e.into())
        } else {
            Failure::Runtime(e.into())
        }
    };
    let resolved = args.embed.resolve(&family).map_err(console_failure)?;
    let mut options = resolved.options;
    let mut notes = resolved.notes;
    let mut warnings = Vec::new();
    if !args.embed.offline {
        let reading = read_images(&document, &mut options)?;
        notes.extend(reading.notes);
        warnings.extend(reading.warnings);
    }
    let embed = |options: &EmbedOptions| {
        protect::embed::embed(&document, options)
            .map_err(|e| Failure::BadInput(anyhow!(e).context(format!("embedding {source}"))))
    };
    // A task that cannot be protected fails before any credential is made for it.
    let mut output = embed(&options)?;
    if !args.embed.names_credential() {
        let console = resolved
            .console
            .ok_or_else(|| Failure::BadInput(anyhow!(NO_CREDENTIAL)))?;
        let bundle = console
            .install_bundle(&format!("embed: {family}"), &family)
            .map_err(console_failure)?;
        notes.push(format!(
            "created defender credential {} for task family {family}",
            bundle.id
        ));
        options.plain_token = Some(bundle.token);
        options.allow_plain_token = true;
        output = embed(&options)?;
    }
    for pin in crate::images::pin_lines(&output.pins) {
        notes.push(format!("pinned {pin}"));
    }
    for note in &notes {
        writeln!(stderr, "deploy-protected: {note}")
            .context("writing to stderr")
            .map_err(Failure::Runtime)?;
    }
    for warning in warnings.iter().chain(&output.warnings) {
        writeln!(stderr, "deploy-protected: warning: {warning}")
            .context("writing to stderr")
            .map_err(Failure::Runtime)?;
    }
    let mut pretty = serde_json::to_string_pretty(&output.task_definition)
        .context("serializing the protected task definition")
        .map_err(Failure::Runtime)?;
    pretty.push('\n');
    stdout
        .write_all(pretty.as_bytes())
        .and_then(|()| stdout.flush())
        .context("writing the protected task definition to stdout")
        .map_err(Failure::Runtime)?;
    Ok(())
}

/// Reads the images the document needs (see [`crate::images`]) on a runtime of its own.
fn read_images(
    document: &Value,
    options: &mut EmbedOptions,
) -> Result<crate::images::Reading, Failure> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
        .map_err(Failure::Runtime)?;
    let resolver = image_registry::Resolver::default();
    runtime
        .block_on(crate::images::read_into(document, options, &resolver))
        .map_err(|e| match e.exit_code() {
            2 => Failure::BadInput(e.into()),
            _ => Failure::Runtime(e.into()),
        })
}

/// Reads at most [`MAX_INPUT_BYTES`]; more is bad input, a read error is a runtime failure.
fn read_bounded(reader: impl Read) -> Result<Vec<u8>, Failure> {
    let mut buf = Vec::new();
    reader
        .take(MAX_INPUT_BYTES + 1)
        .read_to_end(&mut buf)
        .context("reading the task definition")
        .map_err(Failure::Runtime)?;
    if buf.len() as u64 > MAX_INPUT_BYTES {
        return Err(Failure::BadInput(anyhow!(
            "the task definition is larger than {MAX_INPUT_BYTES} bytes; ECS task definitions \
             are at most 64 KiB, pass a single task definition"
        )));
    }
    Ok(buf)
}

/// Parses the input as JSON, reporting line and column.
pub fn parse(source: &str, text: &[u8]) -> Result<Value, Failure> {
    serde_json::from_slice(text).map_err(|e| {
        Failure::BadInput(anyhow!(
            "{source}: not valid JSON ({e}); pass a task definition as JSON, e.g. the output \
             of `aws ecs describe-task-definition --task-definition FAMILY`"
        ))
    })
}
