//! `deploy-protected embed`, run as the built binary: streams, exit codes and messages.

#![allow(clippy::unwrap_used)]

use serde_json::Value;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

const CONSOLE: &str = "http://127.0.0.1:8083";
const IMAGE: &str = "fargate-defender:latest";
const SECRET: &str = "arn:aws:secretsmanager:eu-west-1:111122223333:secret:defender-Xy12Zw";

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn seed() -> PathBuf {
    root().join("examples/fargate-task.json")
}

fn fixture(name: &str) -> PathBuf {
    root().join("protect/tests/fixtures").join(name)
}

/// Runs the binary with `args`, feeding `stdin` (closed when `None`).
fn run(args: &[&str], stdin: Option<&[u8]>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_deploy-protected"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut pipe = child.stdin.take().unwrap();
    if let Some(input) = stdin {
        // The binary may exit before reading everything (oversized input): ignore EPIPE.
        let _ = pipe.write_all(input);
    }
    drop(pipe);
    child.wait_with_output().unwrap()
}

fn embed_args<'a>(extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["embed", "--console-url", CONSOLE, "--defender-image", IMAGE];
    args.extend_from_slice(extra);
    args
}

fn stderr(out: &Output) -> String {
    String::from_utf8(out.stderr.clone()).unwrap()
}

fn library_output(path: &Path, options: &protect::embed::EmbedOptions) -> Value {
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    protect::embed::embed(&doc, options)
        .unwrap()
        .task_definition
}

#[test]
fn embeds_a_file_like_the_demo_does() {
    let seed = seed();
    let out = run(
        &embed_args(&[
            "--file",
            seed.to_str().unwrap(),
            "--token-secret-arn",
            SECRET,
        ]),
        None,
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    // The seed's sample has no execution role, which ECS needs to inject the secret.
    assert_eq!(
        stderr(&out),
        "deploy-protected: warning: executionRoleArn: not set; ECS needs a task execution role \
         allowed to read the token secret (secretsmanager:GetSecretValue or ssm:GetParameters) \
         to start the task\n"
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(
        stdout.starts_with("{\n  \"requiresCompatibilities\""),
        "pretty JSON"
    );
    assert!(stdout.ends_with("}\n"));
    let printed: Value = serde_json::from_str(&stdout).unwrap();
    let mut options = protect::embed::EmbedOptions::new(CONSOLE, IMAGE);
    options.token_secret_arn = Some(SECRET.into());
    let expected = library_output(&seed, &options);
    assert_eq!(printed, expected);
}

#[test]
fn reads_stdin_without_file_or_with_dash() {
    let text = std::fs::read(seed()).unwrap();
    let a = run(&embed_args(&["--token-secret-arn", SECRET]), Some(&text));
    let b = run(
        &embed_args(&["--file", "-", "--token-secret-arn", SECRET]),
        Some(&text),
    );
    assert_eq!(a.status.code(), Some(0), "{}", stderr(&a));
    assert_eq!(b.status.code(), Some(0), "{}", stderr(&b));
    assert_eq!(a.stdout, b.stdout);
    let file = run(
        &embed_args(&["-f", seed().to_str().unwrap(), "--token-secret-arn", SECRET]),
        None,
    );
    assert_eq!(a.stdout, file.stdout);
}

#[test]
fn warnings_go_to_stderr_and_flags_reach_the_transform() {
    let path = fixture("web-firelens.json");
    let arn = "arn:aws:secretsmanager:eu-west-1:111122223333:secret:defender-Ab12Cd";
    let out = run(
        &embed_args(&[
            "--file",
            path.to_str().unwrap(),
            "--token-secret-arn",
            arn,
            "--cnaf-port",
            "8080",
            "--app-port",
            "8000",
            "--cnaf-container",
            "web",
            "--exclude-container",
            "datadog-agent",
            "--offline",
        ]),
        None,
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        stderr(&out),
        "deploy-protected: warning: containerDefinitions[0]: container \"log_router\" is a \
         FireLens log router whose entrypoint is not in the task definition, so it is left \
         unwrapped; to protect it, copy its image's ENTRYPOINT into \"entryPoint\" (and its \
         CMD into \"command\"); to silence this warning, --exclude-container log_router\n\
         deploy-protected: warning: containerDefinitions[1].portMappings: container \"web\" \
         still maps the app port 8000; traffic sent to it bypasses CNAF, so open only port 8080 \
         in the security group\n"
    );
    let mut options = protect::embed::EmbedOptions::new(CONSOLE, IMAGE);
    options.token_secret_arn = Some(arn.into());
    options.cnaf = Some(protect::embed::CnafOptions {
        external_port: 8080,
        app_port: 8000,
        container: Some("web".into()),
    });
    options.exclude_containers = vec!["datadog-agent".into()];
    let printed: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(printed, library_output(&path, &options));
}

#[test]
fn plain_token_needs_the_explicit_flag() {
    let seed = seed();
    let refused = run(
        &embed_args(&["--file", seed.to_str().unwrap(), "--token", "s3cret"]),
        None,
    );
    assert_eq!(refused.status.code(), Some(2));
    assert!(refused.stdout.is_empty());
    assert_eq!(
        stderr(&refused),
        format!(
            "deploy-protected: error: embedding {}: --token: a plain-text token would be \
             readable by anyone who can describe the task definition; store it in Secrets \
             Manager and pass --token-secret-arn ARN, or add --allow-plain-token to accept the \
             risk\n",
            seed.display()
        )
    );
    let allowed = run(
        &embed_args(&[
            "--file",
            seed.to_str().unwrap(),
            "--token",
            "s3cret",
            "--allow-plain-token",
        ]),
        None,
    );
    assert_eq!(allowed.status.code(), Some(0));
    assert!(stderr(&allowed).starts_with("deploy-protected: warning: DEFENDER_TOKEN is stored"));
    let printed: Value = serde_json::from_slice(&allowed.stdout).unwrap();
    let env = printed["containerDefinitions"][1]["environment"]
        .as_array()
        .unwrap();
    assert!(env
        .iter()
        .any(|e| e["name"] == "DEFENDER_TOKEN" && e["value"] == "s3cret"));
}

#[test]
fn bad_task_definition_exits_2_naming_field_and_fix() {
    let doc = br#"{"family":"f","requiresCompatibilities":["FARGATE"],"networkMode":"awsvpc",
        "containerDefinitions":[{"name":"app","image":"i"}]}"#;
    let out = run(&embed_args(&["--offline"]), Some(doc));
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
    assert_eq!(
        stderr(&out),
        "deploy-protected: error: embedding stdin: containerDefinitions[0]: container \"app\" \
         has neither entryPoint nor command; the transform replaces entryPoint, and ECS then \
         drops the image's ENTRYPOINT and CMD, so the container would have nothing to run. Copy \
         the image's ENTRYPOINT into \"entryPoint\" (and its CMD into \"command\"), or exclude \
         the container with --exclude-container app\n"
    );
}

#[test]
fn invalid_json_exits_2() {
    let out = run(&embed_args(&[]), Some(b"{\"family\": "));
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        stderr(&out),
        "deploy-protected: error: stdin: not valid JSON (EOF while parsing a value at line 1 \
         column 11); pass a task definition as JSON, e.g. the output of `aws ecs \
         describe-task-definition --task-definition FAMILY`\n"
    );
}

#[test]
fn oversized_input_exits_2() {
    let big = vec![b' '; 1024 * 1024 + 10];
    let out = run(&embed_args(&[]), Some(&big));
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        stderr(&out),
        "deploy-protected: error: the task definition is larger than 1048576 bytes; ECS task \
         definitions are at most 64 KiB, pass a single task definition\n"
    );
}

#[test]
fn missing_file_exits_1() {
    let out = run(&embed_args(&["--file", "/nonexistent/task.json"]), None);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stderr(&out),
        "deploy-protected: error: reading /nonexistent/task.json: No such file or directory \
         (os error 2)\n"
    );
}

#[test]
fn usage_errors_exit_2() {
    let seed = seed();
    let out = run(
        &[
            "embed",
            "--console-url",
            CONSOLE,
            "-f",
            seed.to_str().unwrap(),
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains("--defender-image is required without a console login"),
        "{err}"
    );
    // No credential and no console login to make one: refused, never a task that cannot start.
    let out = run(&embed_args(&["-f", seed.to_str().unwrap()]), None);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(out.stdout, b"");
    let err = stderr(&out);
    assert!(
        err.starts_with("deploy-protected: error: no defender credential: pass --token-secret-arn"),
        "{err}"
    );
    let out = run(&embed_args(&["--cnaf-port", "8080"]), Some(b"{}"));
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--app-port <APP>"));
    let out = run(
        &embed_args(&["--cnaf-port", "99999", "--app-port", "80"]),
        None,
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("99999"));
    // No subcommand is the deploy mode, which has required flags of its own.
    let out = run(&[], None);
    assert_eq!(out.status.code(), Some(2));
    assert!(!stderr(&out).is_empty());
}

#[test]
fn help_exits_0_on_stdout() {
    let out = run(&["embed", "--help"], None);
    assert_eq!(out.status.code(), Some(0));
    let help = String::from_utf8(out.stdout).unwrap();
    for flag in [
        "--file",
        "--console-url",
        "--defender-image",
        "--token-secret-arn",
        "--token",
        "--allow-plain-token",
        "--cnaf-port",
        "--app-port",
        "--cnaf-container",
        "--exclude-container",
        "--no-image-entrypoint",
        "--offline",
        "--pin-digests",
        "--startup",
        "--console-user",
        "CONSOLE_URL",
    ] {
        assert!(help.contains(flag), "{flag} missing from help");
    }
    assert!(
        help.contains("Transform (console, image, credential, CNAF):"),
        "{help}"
    );
    assert!(
        help.contains("Examples:\n  deploy-protected embed -f task.json"),
        "{help}"
    );
    let out = run(&["--help"], None);
    assert_eq!(out.status.code(), Some(0));
    let help = String::from_utf8(out.stdout).unwrap();
    for part in [
        "Deploy:",
        "Transform (console, image, credential, CNAF):",
        "deploy-protected --family twistlock-fargate-task\n",
        "Exit codes: 0 done",
        "--execution-role",
    ] {
        assert!(help.contains(part), "{part:?} missing from help:\n{help}");
    }
}

#[test]
fn describe_output_on_stdin_errors_name_the_nested_path() {
    let mut doc: Value =
        serde_json::from_str(&std::fs::read_to_string(fixture("describe-worker.json")).unwrap())
            .unwrap();
    doc["taskDefinition"]["containerDefinitions"][1]["linuxParameters"] =
        serde_json::json!({"capabilities": {"drop": ["SYS_PTRACE"]}});
    let out = run(&embed_args(&[]), Some(doc.to_string().as_bytes()));
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        stderr(&out),
        "deploy-protected: error: embedding stdin: \
         taskDefinition.containerDefinitions[1].linuxParameters.capabilities.drop: container \
         \"xray-daemon\" drops SYS_PTRACE, which the defender needs to supervise the app; remove \
         SYS_PTRACE from linuxParameters.capabilities.drop or exclude the container with \
         --exclude-container xray-daemon\n"
    );
    let out = run(
        &embed_args(&[
            "--exclude-container",
            "xray-daemon",
            "--token-secret-arn",
            SECRET,
        ]),
        Some(doc.to_string().as_bytes()),
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let printed: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(printed["tags"], doc["tags"]);
    assert!(printed.get("taskDefinitionArn").is_none());
}
