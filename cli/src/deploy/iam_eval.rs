//! Does a role's IAM policy allow one action on one resource? A pure, conservative reading of
//! IAM policy documents, used to check before any change that a task's execution role can read
//! the defender credential the task definition will reference.
//!
//! What it reads: `Effect`, `Action` / `NotAction`, `Resource` / `NotResource`, and for resource
//! policies `Principal` / `NotPrincipal`; `*` and `?` wildcards (actions match ignoring case,
//! resources exactly, as IAM does). An explicit `Deny` wins. A statement with a `Condition`
//! counts, but the decision says so ([`Decision::Allowed::conditional`]): conditions depend on
//! the request, which only AWS sees. Not read: service control policies and session policies;
//! a permissions boundary is applied when given.

use serde_json::Value;

/// One policy document and where it came from (for the user).
#[derive(Debug, Clone)]
pub struct NamedPolicy {
    /// E.g. `inline policy read-token` or `managed policy arn:aws:iam::aws:policy/...`.
    pub source: String,
    /// The policy document (JSON).
    pub document: Value,
}

/// The answer for one action on one resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// A statement allows it and none denies it.
    Allowed {
        /// The policy whose statement allows it.
        by: String,
        /// The allowing statement has a `Condition` (AWS decides at request time).
        conditional: bool,
    },
    /// A `Deny` statement matches.
    Denied {
        /// The policy whose statement denies it.
        by: String,
    },
    /// No statement allows it (or the permissions boundary does not).
    NotAllowed {
        /// Why, for the user.
        reason: String,
    },
}

/// Matches `text` against an IAM wildcard pattern (`*` any run, `?` one character).
pub fn glob(pattern: &str, text: &str, ignore_case: bool) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let eq = |a: char, b: char| {
        if ignore_case {
            a.to_lowercase().eq(b.to_lowercase())
        } else {
            a == b
        }
    };
    // Classic two-pointer wildcard match with backtracking to the last `*`.
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || (p[pi] != '*' && eq(p[pi], t[ti]))) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

/// A string or a list of strings, as IAM writes them; anything else reads as none.
fn strings(v: &Value) -> Vec<&str> {
    match v {
        Value::String(s) => vec![s.as_str()],
        Value::Array(items) => items.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    }
}

fn statements(doc: &Value) -> Vec<&Value> {
    match &doc["Statement"] {
        Value::Array(items) => items.iter().collect(),
        st @ Value::Object(_) => vec![st],
        _ => Vec::new(),
    }
}

/// `key` / `NotKey` of a statement against `value`.
fn element_matches(st: &Value, key: &str, value: &str, ignore_case: bool) -> bool {
    let not_key = format!("Not{key}");
    if !st[key].is_null() {
        strings(&st[key])
            .iter()
            .any(|p| glob(p, value, ignore_case))
    } else if !st[&not_key].is_null() {
        !strings(&st[&not_key])
            .iter()
            .any(|p| glob(p, value, ignore_case))
    } else {
        false
    }
}

/// The account id in an ARN (`arn:PARTITION:SERVICE:REGION:ACCOUNT:...`).
pub fn account_of(arn: &str) -> Option<&str> {
    arn.split(':').nth(4).filter(|a| !a.is_empty())
}

/// Whether a resource policy's `Principal` names `principal` (a role ARN): `*`, the role, or
/// its account (`ACCOUNT` or `arn:...:iam::ACCOUNT:root`).
fn principal_matches(st: &Value, principal: &str) -> bool {
    let names_it = |p: &Value| -> bool {
        if p.as_str() == Some("*") {
            return true;
        }
        let account = account_of(principal).unwrap_or_default();
        strings(&p["AWS"]).iter().any(|a| {
            *a == "*"
                || *a == principal
                || *a == account
                || (account_of(a) == Some(account) && a.ends_with(":root"))
        })
    };
    if !st["Principal"].is_null() {
        names_it(&st["Principal"])
    } else if !st["NotPrincipal"].is_null() {
        !names_it(&st["NotPrincipal"])
    } else {
        false
    }
}

#[derive(Default)]
struct Found {
    allow: Option<(String, bool)>,
    deny: Option<String>,
}

fn scan(
    found: &mut Found,
    policy: &NamedPolicy,
    action: &str,
    resource: &str,
    principal: Option<&str>,
) {
    for st in statements(&policy.document) {
        if !element_matches(st, "Action", action, true)
            || !element_matches(st, "Resource", resource, false)
        {
            continue;
        }
        if let Some(p) = principal {
            if !principal_matches(st, p) {
                continue;
            }
        }
        match st["Effect"].as_str() {
            Some("Deny") if found.deny.is_none() => found.deny = Some(policy.source.clone()),
            Some("Allow") => {
                let conditional = !st["Condition"].is_null();
                // An unconditional allow is the better answer.
                if found.allow.as_ref().is_none_or(|(_, c)| *c && !conditional) {
                    found.allow = Some((policy.source.clone(), conditional));
                }
            }
            _ => {}
        }
    }
}

/// Whether `principal` (a role ARN) may perform `action` on `resource`, given its identity
/// policies, an optional permissions boundary and the resource's own policy (same account).
pub fn evaluate(
    principal: &str,
    identity: &[NamedPolicy],
    boundary: Option<&NamedPolicy>,
    resource_policy: Option<&NamedPolicy>,
    action: &str,
    resource: &str,
) -> Decision {
    let mut found = Found::default();
    for p in identity {
        scan(&mut found, p, action, resource, None);
    }
    let mut from_resource = Found::default();
    if let Some(rp) = resource_policy {
        scan(&mut from_resource, rp, action, resource, Some(principal));
    }
    if let Some(by) = found.deny.or(from_resource.deny) {
        return Decision::Denied { by };
    }
    if let Some(b) = boundary {
        let mut within = Found::default();
        scan(&mut within, b, action, resource, None);
        if let Some(by) = within.deny {
            return Decision::Denied { by };
        }
        // A boundary limits identity policies; a same-account resource policy naming the role
        // still grants on its own.
        if within.allow.is_none() {
            found.allow = None;
        }
    }
    match found.allow.or(from_resource.allow) {
        Some((by, conditional)) => Decision::Allowed { by, conditional },
        None => Decision::NotAllowed {
            reason: if boundary.is_some() {
                "no statement of its policies allows it within its permissions boundary".to_string()
            } else {
                "no statement of its policies or of the resource's policy allows it".to_string()
            },
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const ROLE: &str = "arn:aws:iam::123456789012:role/exec";
    const SECRET: &str = "arn:aws:secretsmanager:us-east-1:123456789012:secret:app/token-AbCdEf";
    const READ: &str = "secretsmanager:GetSecretValue";

    fn policy(doc: Value) -> NamedPolicy {
        NamedPolicy {
            source: "inline policy p".to_string(),
            document: doc,
        }
    }

    fn allow(action: Value, resource: Value) -> NamedPolicy {
        policy(json!({"Statement": [{"Effect": "Allow", "Action": action, "Resource": resource}]}))
    }

    #[test]
    fn globs_follow_iam() {
        assert!(glob(
            "secretsmanager:Get*",
            "secretsmanager:GetSecretValue",
            true
        ));
        assert!(glob("SecretsManager:getsecretvalue", READ, true));
        assert!(!glob(
            "arn:aws:secretsmanager:*:secret:APP/*",
            SECRET,
            false
        ));
        assert!(glob(
            "arn:aws:secretsmanager:*:secret:app/token-??????",
            SECRET,
            false
        ));
        assert!(!glob(
            "arn:aws:secretsmanager:*:secret:app/token-?????",
            SECRET,
            false
        ));
        assert!(glob("*", "", false));
        assert!(glob("a*b*c", "aXXbYYc", false));
        assert!(!glob("a*b*c", "aXXbYY", false));
    }

    #[test]
    fn an_allow_on_the_secret_or_a_wildcard_grants() {
        for p in [
            allow(json!(READ), json!(SECRET)),
            allow(json!(["s3:GetObject", "secretsmanager:*"]), json!("*")),
            allow(
                json!("*"),
                json!("arn:aws:secretsmanager:us-east-1:123456789012:secret:app/*"),
            ),
        ] {
            assert!(matches!(
                evaluate(ROLE, &[p], None, None, READ, SECRET),
                Decision::Allowed {
                    conditional: false,
                    ..
                }
            ));
        }
    }

    #[test]
    fn other_secrets_and_actions_do_not_grant() {
        for p in [
            allow(
                json!(READ),
                json!("arn:aws:secretsmanager:us-east-1:123456789012:secret:other-*"),
            ),
            allow(json!("secretsmanager:DescribeSecret"), json!(SECRET)),
            allow(json!({"bad": 1}), json!(SECRET)),
        ] {
            assert!(matches!(
                evaluate(ROLE, &[p], None, None, READ, SECRET),
                Decision::NotAllowed { .. }
            ));
        }
        assert!(matches!(
            evaluate(ROLE, &[], None, None, READ, SECRET),
            Decision::NotAllowed { .. }
        ));
    }

    #[test]
    fn not_action_and_not_resource_invert() {
        let p = policy(
            json!({"Statement": {"Effect": "Allow", "NotAction": "iam:*", "NotResource": "arn:aws:s3:::*"}}),
        );
        assert!(matches!(
            evaluate(ROLE, &[p], None, None, READ, SECRET),
            Decision::Allowed { .. }
        ));
        let p = policy(
            json!({"Statement": {"Effect": "Allow", "NotAction": "secretsmanager:*", "Resource": "*"}}),
        );
        assert!(matches!(
            evaluate(ROLE, &[p], None, None, READ, SECRET),
            Decision::NotAllowed { .. }
        ));
    }

    #[test]
    fn an_explicit_deny_wins() {
        let deny = policy(
            json!({"Statement": [{"Effect": "Deny", "Action": "secretsmanager:*", "Resource": "*"}]}),
        );
        let d = evaluate(
            ROLE,
            &[allow(json!(READ), json!(SECRET)), deny],
            None,
            None,
            READ,
            SECRET,
        );
        assert!(matches!(d, Decision::Denied { .. }));
    }

    #[test]
    fn conditions_are_reported() {
        let p = policy(
            json!({"Statement": [{"Effect": "Allow", "Action": READ, "Resource": SECRET,
            "Condition": {"StringEquals": {"aws:SourceVpce": "vpce-1"}}}]}),
        );
        assert_eq!(
            evaluate(ROLE, &[p], None, None, READ, SECRET),
            Decision::Allowed {
                by: "inline policy p".to_string(),
                conditional: true
            }
        );
    }

    #[test]
    fn a_resource_policy_naming_the_role_or_its_account_grants() {
        for principal in [
            json!({"AWS": ROLE}),
            json!({"AWS": "arn:aws:iam::123456789012:root"}),
            json!({"AWS": ["x", "123456789012"]}),
            json!("*"),
        ] {
            let rp = policy(
                json!({"Statement": [{"Effect": "Allow", "Principal": principal, "Action": READ, "Resource": "*"}]}),
            );
            assert!(matches!(
                evaluate(ROLE, &[], None, Some(&rp), READ, SECRET),
                Decision::Allowed { .. }
            ));
        }
        let other = policy(
            json!({"Statement": [{"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::123456789012:role/other"}, "Action": READ, "Resource": "*"}]}),
        );
        assert!(matches!(
            evaluate(ROLE, &[], None, Some(&other), READ, SECRET),
            Decision::NotAllowed { .. }
        ));
    }

    #[test]
    fn a_boundary_limits_identity_policies() {
        let boundary =
            policy(json!({"Statement": [{"Effect": "Allow", "Action": "ecr:*", "Resource": "*"}]}));
        assert!(matches!(
            evaluate(
                ROLE,
                &[allow(json!(READ), json!(SECRET))],
                Some(&boundary),
                None,
                READ,
                SECRET
            ),
            Decision::NotAllowed { .. }
        ));
        let wide =
            policy(json!({"Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}));
        assert!(matches!(
            evaluate(
                ROLE,
                &[allow(json!(READ), json!(SECRET))],
                Some(&wide),
                None,
                READ,
                SECRET
            ),
            Decision::Allowed { .. }
        ));
    }

    #[test]
    fn account_ids_come_from_arns() {
        assert_eq!(account_of(ROLE), Some("123456789012"));
        assert_eq!(account_of("arn:aws:s3:::bucket"), None);
        assert_eq!(account_of("nonsense"), None);
    }

    proptest::proptest! {
        #[test]
        fn glob_agrees_with_its_definition(text in "[a-c/:*?]{0,12}", pattern in "[a-c*?]{0,8}") {
            // Literal patterns match only themselves; `*` everything; a pattern matches its
            // own text with every `*` and `?` filled in.
            let literal = text.replace(['*', '?'], "");
            proptest::prop_assert!(glob(&literal, &literal, false));
            proptest::prop_assert!(glob("*", &text, false));
            let filled = pattern.replace('*', "ab").replace('?', "c");
            proptest::prop_assert!(glob(&pattern, &filled, false));
            let _ = glob(&pattern, &text, true);
        }

        #[test]
        fn any_document_evaluates_without_panicking(doc in proptest::arbitrary::any::<Vec<(String, String)>>()) {
            let document: Value = doc.into_iter().map(|(k, v)| (k, Value::String(v))).collect::<serde_json::Map<_, _>>().into();
            let p = policy(json!({"Statement": [document.clone()], "Other": document}));
            let _ = evaluate(ROLE, std::slice::from_ref(&p), Some(&p), Some(&p), READ, SECRET);
        }
    }
}
