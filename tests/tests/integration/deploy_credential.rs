//! Wiremock contracts of the deploy mode's credential calls: the console's install bundle,
//! Secrets Manager (DescribeSecret, CreateSecret with tags, PutResourcePolicy), and their
//! faults (AccessDenied names the IAM action, throttling is retried, a found secret makes no
//! new credential).

use deploy_protected::console::{Console, Login};
use deploy_protected::deploy::credential::{ensure_secret, CredentialSecret};
use deploy_protected::deploy::{exec_role, read_check, AwsClients};
use serde_json::json;
use wiremock::matchers::{body_string_contains, header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use super::deploy_mock::{ecs_error, json_ok, sdk_config};

const FAMILY: &str = "twistlock-fargate-task";
const NAME: &str = "fargate-defender/twistlock-fargate-task/defender-token";
const ARN: &str =
    "arn:aws:secretsmanager:us-east-1:123456789012:secret:fargate-defender/twistlock-fargate-task/defender-token-AbCdEf";

fn secrets(op: &str) -> wiremock::MockBuilder {
    Mock::given(method("POST")).and(header("x-amz-target", format!("secretsmanager.{op}")))
}

/// A console that hands out one credential per install-bundle call, `expected` times.
async fn console(expected: u64) -> (MockServer, Console) {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/api/v1/defenders/install-bundle"))
        .and(header("authorization", "Bearer ops-token"))
        .and(body_string_contains("deploy: twistlock-fargate-task"))
        .respond_with(ResponseTemplate::new(201).set_body_json(
            json!({"token": "cdt_fresh", "id": "cred-1", "name": "deploy: twistlock-fargate-task"}),
        ))
        .expect(expected)
        .mount(&server)
        .await;
    let console = Console::new(&server.uri(), Login::Token("ops-token".into()));
    (server, console)
}

fn not_found() -> ResponseTemplate {
    ecs_error(
        400,
        "ResourceNotFoundException",
        "Secrets Manager can't find the specified secret.",
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_secret_gets_a_fresh_credential_tagged_with_the_family() {
    let aws = MockServer::start().await;
    let (_c, console) = console(1).await;
    secrets("DescribeSecret")
        .and(body_string_contains(NAME))
        .respond_with(not_found())
        .expect(1)
        .mount(&aws)
        .await;
    secrets("CreateSecret")
        .and(body_string_contains("\"SecretString\":\"cdt_fresh\""))
        .and(body_string_contains("fargate-defender:family"))
        .and(body_string_contains("cred-1"))
        .respond_with(json_ok(json!({"ARN": ARN, "Name": NAME})))
        .expect(1)
        .mount(&aws)
        .await;
    let clients = AwsClients::new(&sdk_config(&aws.uri()));
    let got = ensure_secret(&clients, FAMILY, &console, false)
        .await
        .expect("created");
    assert_eq!(
        got,
        CredentialSecret::Created {
            name: NAME.into(),
            arn: ARN.into(),
            id: "cred-1".into()
        }
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_found_secret_is_reused_after_throttling_and_makes_no_credential() {
    let aws = MockServer::start().await;
    let (_c, console) = console(0).await;
    secrets("DescribeSecret")
        .respond_with(ecs_error(400, "ThrottlingException", "Rate exceeded"))
        .up_to_n_times(2)
        .with_priority(1)
        .expect(2)
        .mount(&aws)
        .await;
    secrets("DescribeSecret")
        .respond_with(json_ok(json!({"ARN": ARN, "Name": NAME})))
        .expect(1)
        .mount(&aws)
        .await;
    secrets("CreateSecret")
        .respond_with(json_ok(json!({})))
        .expect(0)
        .mount(&aws)
        .await;
    let clients = AwsClients::new(&sdk_config(&aws.uri()));
    let got = ensure_secret(&clients, FAMILY, &console, false)
        .await
        .expect("reused");
    assert_eq!(
        got,
        CredentialSecret::Reused {
            name: NAME.into(),
            arn: ARN.into()
        }
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn access_denied_on_create_secret_names_the_action() {
    let aws = MockServer::start().await;
    let (_c, console) = console(1).await;
    secrets("DescribeSecret")
        .respond_with(not_found())
        .mount(&aws)
        .await;
    secrets("CreateSecret")
        .respond_with(ecs_error(
            400,
            "AccessDeniedException",
            "User: arn:aws:iam::123456789012:user/ci is not authorized to perform: \
             secretsmanager:CreateSecret",
        ))
        .expect(1)
        .mount(&aws)
        .await;
    let clients = AwsClients::new(&sdk_config(&aws.uri()));
    let err = ensure_secret(&clients, FAMILY, &console, false)
        .await
        .expect_err("denied");
    let text = err.to_string();
    assert!(text.contains("secretsmanager:CreateSecret"), "{text}");
    assert!(text.contains("user/ci"), "{text}");
    assert_eq!(err.exit_code(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dry_run_creates_nothing() {
    let aws = MockServer::start().await;
    let (_c, console) = console(0).await;
    secrets("DescribeSecret")
        .respond_with(not_found())
        .mount(&aws)
        .await;
    let clients = AwsClients::new(&sdk_config(&aws.uri()));
    let got = ensure_secret(&clients, FAMILY, &console, true)
        .await
        .expect("dry run");
    assert!(
        matches!(got, CredentialSecret::WouldCreate { .. }),
        "{got:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tasks_own_execution_role_is_granted_by_the_secrets_resource_policy() {
    let aws = MockServer::start().await;
    let role = "arn:aws:iam::123456789012:role/web-execution";
    secrets("PutResourcePolicy")
        .and(body_string_contains(ARN))
        .and(body_string_contains("web-execution"))
        .and(body_string_contains("secretsmanager:GetSecretValue"))
        .respond_with(json_ok(json!({"ARN": ARN, "Name": NAME})))
        .expect(1)
        .mount(&aws)
        .await;
    let clients = AwsClients::new(&sdk_config(&aws.uri()));
    let got = exec_role::ensure(&clients, FAMILY, Some(role), ARN, false)
        .await
        .expect("granted");
    assert_eq!(got.arn(), role);

    // Denied: the error names the action, and exit code 1.
    let aws = MockServer::start().await;
    secrets("PutResourcePolicy")
        .respond_with(ecs_error(
            400,
            "AccessDeniedException",
            "not authorized to perform: secretsmanager:PutResourcePolicy",
        ))
        .mount(&aws)
        .await;
    let clients = AwsClients::new(&sdk_config(&aws.uri()));
    let err = exec_role::ensure(&clients, FAMILY, Some(role), ARN, false)
        .await
        .expect_err("denied");
    assert!(
        err.to_string().contains("secretsmanager:PutResourcePolicy"),
        "{err}"
    );
}

// --- A credential the user names: the execution role must already be able to read it. ---

const USER_SECRET: &str = "arn:aws:secretsmanager:us-east-1:123456789012:secret:team/token-XyZ123";
const EXEC: &str = "arn:aws:iam::123456789012:role/app-exec";

fn iam(action: &str) -> wiremock::MockBuilder {
    Mock::given(method("POST")).and(body_string_contains(format!("Action={action}&")))
}

fn iam_ok(action: &str, result: &str) -> ResponseTemplate {
    ResponseTemplate::new(200)
        .insert_header("content-type", "text/xml")
        .set_body_string(format!(
            "<{action}Response xmlns=\"https://iam.amazonaws.com/doc/2010-05-08/\">\
             <{action}Result>{result}</{action}Result><ResponseMetadata><RequestId>r\
             </RequestId></ResponseMetadata></{action}Response>"
        ))
}

fn encoded(doc: serde_json::Value) -> String {
    percent_encoding::utf8_percent_encode(&doc.to_string(), percent_encoding::NON_ALPHANUMERIC)
        .to_string()
}

/// The role `app-exec` with `inline` policies, `managed` (ARN, document) policies, an optional
/// boundary, and the secret's resource policy.
async fn role(
    aws: &MockServer,
    inline: &[(&str, serde_json::Value)],
    managed: &[(&str, serde_json::Value)],
    boundary: Option<(&str, serde_json::Value)>,
    resource_policy: Option<serde_json::Value>,
) {
    let boundary_xml = boundary
        .as_ref()
        .map(|(arn, _)| {
            format!(
                "<PermissionsBoundary><PermissionsBoundaryType>Policy</PermissionsBoundaryType>\
                 <PermissionsBoundaryArn>{arn}</PermissionsBoundaryArn></PermissionsBoundary>"
            )
        })
        .unwrap_or_default();
    iam("GetRole")
        .and(body_string_contains("RoleName=app-exec"))
        .respond_with(iam_ok(
            "GetRole",
            &format!(
                "<Role><Path>/</Path><RoleName>app-exec</RoleName><RoleId>AROA1</RoleId>\
                 <Arn>{EXEC}</Arn><CreateDate>2026-01-01T00:00:00Z</CreateDate>{boundary_xml}\
                 </Role>"
            ),
        ))
        .mount(aws)
        .await;
    let names: String = inline
        .iter()
        .map(|(n, _)| format!("<member>{n}</member>"))
        .collect();
    iam("ListRolePolicies")
        .respond_with(iam_ok(
            "ListRolePolicies",
            &format!("<PolicyNames>{names}</PolicyNames><IsTruncated>false</IsTruncated>"),
        ))
        .mount(aws)
        .await;
    for (name, doc) in inline {
        iam("GetRolePolicy")
            .and(body_string_contains(format!("PolicyName={name}")))
            .respond_with(iam_ok(
                "GetRolePolicy",
                &format!(
                    "<RoleName>app-exec</RoleName><PolicyName>{name}</PolicyName>\
                     <PolicyDocument>{}</PolicyDocument>",
                    encoded(doc.clone())
                ),
            ))
            .mount(aws)
            .await;
    }
    let attached: String = managed
        .iter()
        .map(|(arn, _)| {
            format!("<member><PolicyName>p</PolicyName><PolicyArn>{arn}</PolicyArn></member>")
        })
        .collect();
    iam("ListAttachedRolePolicies")
        .respond_with(iam_ok(
            "ListAttachedRolePolicies",
            &format!(
                "<AttachedPolicies>{attached}</AttachedPolicies><IsTruncated>false</IsTruncated>"
            ),
        ))
        .mount(aws)
        .await;
    for (arn, doc) in managed.iter().chain(boundary.iter()) {
        // Form encoding as the SDK writes it (RFC 3986 unreserved characters stay).
        const FORM: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
            .remove(b'-')
            .remove(b'_')
            .remove(b'.')
            .remove(b'~');
        let arn_q = percent_encoding::utf8_percent_encode(arn, FORM).to_string();
        iam("GetPolicy")
            .and(body_string_contains(format!("PolicyArn={arn_q}")))
            .respond_with(iam_ok(
                "GetPolicy",
                &format!(
                    "<Policy><Arn>{arn}</Arn><DefaultVersionId>v3</DefaultVersionId></Policy>"
                ),
            ))
            .mount(aws)
            .await;
        iam("GetPolicyVersion")
            .and(body_string_contains(format!("PolicyArn={arn_q}")))
            .and(body_string_contains("VersionId=v3"))
            .respond_with(iam_ok(
                "GetPolicyVersion",
                &format!(
                    "<PolicyVersion><Document>{}</Document><VersionId>v3</VersionId>\
                     <IsDefaultVersion>true</IsDefaultVersion></PolicyVersion>",
                    encoded(doc.clone())
                ),
            ))
            .mount(aws)
            .await;
    }
    let mut body = json!({"ARN": USER_SECRET, "Name": "team/token"});
    if let Some(rp) = resource_policy {
        body["ResourcePolicy"] = json!(rp.to_string());
    }
    secrets("GetResourcePolicy")
        .and(body_string_contains(USER_SECRET))
        .respond_with(json_ok(body))
        .mount(aws)
        .await;
}

fn allow_read(resource: &str) -> serde_json::Value {
    json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
        "Action": ["secretsmanager:GetSecretValue", "kms:Decrypt"], "Resource": resource}]})
}

async fn check(aws: &MockServer) -> Result<String, deploy_protected::deploy::DeployError> {
    let clients = AwsClients::new(&sdk_config(&aws.uri()));
    read_check::check(&clients, EXEC, USER_SECRET).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_role_reading_the_secret_through_any_of_its_policies_passes() {
    // Inline, managed, or the secret's own resource policy naming the role.
    let aws = MockServer::start().await;
    role(
        &aws,
        &[(
            "read",
            allow_read("arn:aws:secretsmanager:*:*:secret:team/*"),
        )],
        &[],
        None,
        None,
    )
    .await;
    let note = check(&aws).await.expect("inline");
    assert!(note.contains("inline policy read"), "{note}");

    let aws = MockServer::start().await;
    let managed = "arn:aws:iam::123456789012:policy/secrets-reader";
    role(&aws, &[], &[(managed, allow_read("*"))], None, None).await;
    let note = check(&aws).await.expect("managed");
    assert!(note.contains(managed), "{note}");

    let aws = MockServer::start().await;
    let rp = json!({"Statement": [{"Effect": "Allow", "Principal": {"AWS": EXEC},
        "Action": "secretsmanager:GetSecretValue", "Resource": "*"}]});
    role(&aws, &[], &[], None, Some(rp)).await;
    let note = check(&aws).await.expect("resource policy");
    assert!(note.contains("resource policy"), "{note}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_role_that_cannot_read_the_secret_gets_the_missing_statement() {
    let exec_policy = "arn:aws:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy";
    let ecr_only =
        json!({"Statement": [{"Effect": "Allow", "Action": ["ecr:*", "logs:*"], "Resource": "*"}]});
    let aws = MockServer::start().await;
    role(
        &aws,
        &[(
            "other",
            allow_read("arn:aws:secretsmanager:*:*:secret:other/*"),
        )],
        &[(exec_policy, ecr_only.clone())],
        None,
        None,
    )
    .await;
    let err = check(&aws).await.expect_err("cannot read");
    assert_eq!(err.exit_code(), 2);
    let text = err.to_string();
    assert!(text.contains(EXEC) && text.contains(USER_SECRET), "{text}");
    assert!(
        text.contains(&format!(
            "{{\"Effect\":\"Allow\",\"Action\":\"secretsmanager:GetSecretValue\",\"Resource\":\"{USER_SECRET}\"}}"
        )),
        "{text}"
    );

    // An explicit deny names the policy that denies.
    let aws = MockServer::start().await;
    let deny =
        json!({"Statement": [{"Effect": "Deny", "Action": "secretsmanager:*", "Resource": "*"}]});
    role(
        &aws,
        &[("read", allow_read("*")), ("guard", deny)],
        &[],
        None,
        None,
    )
    .await;
    let text = check(&aws).await.expect_err("denied").to_string();
    assert!(text.contains("inline policy guard denies"), "{text}");

    // A permissions boundary without secrets access cancels the inline grant.
    let aws = MockServer::start().await;
    role(
        &aws,
        &[("read", allow_read("*"))],
        &[],
        Some(("arn:aws:iam::123456789012:policy/boundary", ecr_only)),
        None,
    )
    .await;
    let text = check(&aws).await.expect_err("boundary").to_string();
    assert!(text.contains("permissions boundary"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_role_or_a_denied_iam_read_is_named() {
    let aws = MockServer::start().await;
    iam("GetRole")
        .respond_with(
            ResponseTemplate::new(404)
                .insert_header("content-type", "text/xml")
                .set_body_string(
                    "<ErrorResponse><Error><Type>Sender</Type><Code>NoSuchEntity</Code>\
                     <Message>The role with name app-exec cannot be found.</Message></Error>\
                     <RequestId>r</RequestId></ErrorResponse>",
                ),
        )
        .mount(&aws)
        .await;
    let text = check(&aws).await.expect_err("no role").to_string();
    assert!(
        text.contains("does not exist") && text.contains("--execution-role"),
        "{text}"
    );

    let aws = MockServer::start().await;
    role(&aws, &[], &[], None, None).await;
    iam("ListRolePolicies")
        .respond_with(
            ResponseTemplate::new(403)
                .insert_header("content-type", "text/xml")
                .set_body_string(
                    "<ErrorResponse><Error><Type>Sender</Type><Code>AccessDenied</Code>\
                     <Message>User ci is not authorized to perform: iam:ListRolePolicies</Message>\
                     </Error><RequestId>r</RequestId></ErrorResponse>",
                ),
        )
        .with_priority(1)
        .mount(&aws)
        .await;
    let err = check(&aws).await.expect_err("denied");
    assert_eq!(err.exit_code(), 1);
    assert!(
        err.to_string()
            .contains("access denied for iam:ListRolePolicies"),
        "{err}"
    );
}
