//! The IAM documents in `infra/` grant exactly what the code calls: no wildcard actions, no
//! action the code never uses, no call the policy forgets.

use serde_json::Value;
use std::collections::BTreeSet;
use std::path::PathBuf;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(root().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// All actions of an IAM policy document.
fn actions(doc: &Value) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for st in doc["Statement"].as_array().expect("Statement list") {
        match &st["Action"] {
            Value::String(a) => {
                out.insert(a.clone());
            }
            Value::Array(list) => out.extend(
                list.iter()
                    .map(|a| a.as_str().expect("action is a string").to_string()),
            ),
            other => panic!("bad Action {other}"),
        }
    }
    out
}

/// `DescribeTaskDefinition` -> `describe_task_definition`.
fn snake(pascal: &str) -> String {
    let mut s = String::new();
    for (i, c) in pascal.chars().enumerate() {
        if c.is_ascii_uppercase() {
            if i > 0 {
                s.push('_');
            }
            s.push(c.to_ascii_lowercase());
        } else {
            s.push(c);
        }
    }
    s
}

/// SDK operations called in the Rust files under `dir` (`.operation_name()` on a client).
fn called(dir: &str, candidates: &[&str]) -> BTreeSet<String> {
    let mut text = String::new();
    for entry in walk(&root().join(dir)) {
        text.push_str(&std::fs::read_to_string(entry).expect("readable source file"));
    }
    candidates
        .iter()
        .filter(|op| text.contains(&format!(".{}()", snake(op))))
        .map(|op| op.to_string())
        .collect()
}

fn walk(dir: &std::path::Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).expect("readable source directory") {
        let p = e.expect("directory entry").path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
    out
}

#[test]
fn no_policy_grants_a_wildcard_action() {
    for rel in [
        "infra/iam/console-policy.json",
        "infra/iam/deploy-protected-policy.json",
    ] {
        let doc: Value = serde_json::from_str(&read(rel)).unwrap();
        for a in actions(&doc) {
            assert!(!a.contains('*'), "{rel}: wildcard action {a}");
        }
    }
    for line in read("infra/template.yaml").lines() {
        let l = line.trim();
        if l.starts_with("- ") && l.contains(':') {
            assert!(!l.contains('*'), "infra/template.yaml: wildcard in {l}");
        }
    }
}

#[test]
fn the_console_policy_matches_the_dynamodb_calls_and_the_template() {
    let doc: Value = serde_json::from_str(&read("infra/iam/console-policy.json")).unwrap();
    let granted: BTreeSet<String> = actions(&doc)
        .into_iter()
        .filter_map(|a| a.strip_prefix("dynamodb:").map(String::from))
        .collect();
    let all_ops = [
        "GetItem",
        "PutItem",
        "UpdateItem",
        "DeleteItem",
        "Query",
        "Scan",
        "BatchWriteItem",
        "BatchGetItem",
        "TransactWriteItems",
        "TransactGetItems",
        "DescribeTable",
    ];
    // (`create_table` exists for tests and first-time local setup; on AWS the template creates
    // the table, so the function's role does not need CreateTable.)
    let used = called("lambda-console/src", &all_ops);
    assert_eq!(
        granted, used,
        "console-policy.json vs calls in lambda-console/src"
    );
    let in_template: BTreeSet<String> = read("infra/template.yaml")
        .lines()
        .filter_map(|l| l.trim().strip_prefix("- dynamodb:").map(String::from))
        .collect();
    assert_eq!(
        in_template, used,
        "infra/template.yaml vs calls in lambda-console/src"
    );
    // Secrets Manager: the admin password and the transform's credentials (TagResource is
    // also what CreateSecret with tags needs).
    let secrets_ops = [
        "GetSecretValue",
        "CreateSecret",
        "PutSecretValue",
        "PutResourcePolicy",
        "DescribeSecret",
        "UpdateSecret",
        "DeleteSecret",
        "GetResourcePolicy",
        "TagResource",
    ];
    let secrets_used = called("lambda-console/src", &secrets_ops);
    let granted: BTreeSet<String> = actions(&doc)
        .into_iter()
        .filter_map(|a| a.strip_prefix("secretsmanager:").map(String::from))
        .collect();
    assert_eq!(
        granted, secrets_used,
        "console-policy.json vs Secrets Manager calls"
    );
    let in_template: BTreeSet<String> = read("infra/template.yaml")
        .lines()
        .filter_map(|l| l.trim().strip_prefix("- secretsmanager:").map(String::from))
        .collect();
    assert_eq!(
        in_template, secrets_used,
        "infra/template.yaml vs Secrets Manager calls"
    );
}

#[test]
fn the_deploy_policy_grants_only_what_deploy_protected_calls() {
    let doc: Value = serde_json::from_str(&read("infra/iam/deploy-protected-policy.json")).unwrap();
    for action in actions(&doc) {
        let (service, op) = action.split_once(':').unwrap();
        // Implicit permissions: tags on RegisterTaskDefinition, CreateSecret, CreateRole and
        // CreateSecurityGroup (`ec2:CreateTags`, only with `ec2:CreateAction`
        // CreateSecurityGroup), roles passed to ECS.
        if matches!(
            action.as_str(),
            "ecs:TagResource"
                | "secretsmanager:TagResource"
                | "iam:TagRole"
                | "ec2:CreateTags"
                | "iam:PassRole"
        ) {
            continue;
        }
        assert!(
            matches!(service, "ecs" | "ec2" | "secretsmanager" | "iam"),
            "unexpected service in {action}"
        );
        assert!(
            !called("cli/src", &[op]).is_empty(),
            "{action} is granted but deploy-protected never calls {}",
            snake(op)
        );
    }
}
