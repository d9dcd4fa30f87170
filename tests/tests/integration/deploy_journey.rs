//! The seed's journey as a user walks it, against moto server and a real local console: a CNAF
//! rule in the console, then `deploy-protected --family twistlock-fargate-task` with nothing
//! but environment settings. The console supplies the defender image, the CNAF ports and a
//! defender credential, which lands in a Secrets Manager secret of the family's own; a second
//! run changes nothing.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};

use aws_sdk_ec2::types::IpPermission;
use integration_tests::moto::MotoServer;
use serde_json::{json, Value};

use super::deploy_mock::{sdk_config, SAMPLE};
use super::local_docker::binary;

const FAMILY: &str = "twistlock-fargate-task";
const ADMIN_PASSWORD: &str = "journey-admin-password-1";
const SECRET_NAME: &str = "fargate-defender/twistlock-fargate-task/defender-token";

/// `lambda-console serve` on a free loopback port, killed on drop.
struct Console {
    child: Child,
    url: String,
}

impl Drop for Console {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Console {
    fn start(dir: &Path) -> Console {
        let bin = binary().with_file_name("lambda-console");
        let mut child = Command::new(&bin)
            .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(dir)
            .env("CONSOLE_ADMIN_USER", "admin")
            .env("CONSOLE_ADMIN_PASSWORD", ADMIN_PASSWORD)
            .env_remove("CONSOLE_DEFENDER_IMAGE")
            .env_remove("AWS_LAMBDA_RUNTIME_API")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", bin.display()));
        let stderr = child.stderr.take().expect("stderr");
        let mut lines = BufReader::new(stderr).lines();
        let addr = loop {
            let line = lines
                .next()
                .expect("the console announced its address")
                .expect("console stderr");
            if let Some(rest) = line.split("listening on http://").nth(1) {
                break rest.split_whitespace().next().expect("addr").to_string();
            }
        };
        // Keep draining the log so the console never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        Console {
            child,
            url: format!("http://{addr}"),
        }
    }
}

fn basic(user: &str, password: &str) -> String {
    use base64::Engine;
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
    )
}

fn deploy(moto: &str, console: &Console, extra: &[&str]) -> Output {
    Command::new(binary())
        .args(["--family", FAMILY, "--no-wait", "--output", "json"])
        .args(extra)
        .env_clear()
        .env("AWS_ENDPOINT_URL", moto)
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "AKIDTEST")
        .env("AWS_SECRET_ACCESS_KEY", "secret")
        .env("AWS_CONFIG_FILE", "/nonexistent/config")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/credentials")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("CONSOLE_URL", &console.url)
        .env("CONSOLE_USER", "admin")
        .env("CONSOLE_PASSWORD", ADMIN_PASSWORD)
        .output()
        .expect("run deploy-protected")
}

fn cnaf_ports(permissions: &[IpPermission]) -> Vec<i32> {
    permissions.iter().filter_map(|p| p.from_port()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deploy_with_only_environment_settings_takes_everything_from_the_console() {
    // moto knows AWS managed policies (the ECS task execution one) only when asked to.
    let moto =
        MotoServer::start(&[("MOTO_IAM_LOAD_MANAGED_POLICIES", "true")]).expect("moto server");
    let config = sdk_config(&moto.endpoint());
    let ecs = aws_sdk_ecs::Client::new(&config);
    let ec2 = aws_sdk_ec2::Client::new(&config);
    let secrets = aws_sdk_secretsmanager::Client::new(&config);
    let dir = tempfile::tempdir().expect("tempdir");
    let console = Console::start(dir.path());

    // AWS before: the `default` cluster, moto's default VPC, the seed's sample task.
    ecs.create_cluster()
        .cluster_name("default")
        .send()
        .await
        .expect("cluster");
    let sample: Value = serde_json::from_str(SAMPLE).expect("sample");
    deploy_protected::deploy::AwsClients::new(&config)
        .register_task_definition(&sample)
        .await
        .expect("seed the sample");

    // Step 1, in the console: the CNAF rule for the family.
    let cnaf = json!({"rules": [{"name": "web", "scope": {"tasks": ["twistlock-fargate-*"]},
        "external_port": 8080, "app_port": 80,
        "protections": {"sqli": "prevent", "xss": "prevent"}}]});
    let url = console.url.clone();
    let put = tokio::task::spawn_blocking(move || {
        ureq::put(&format!("{url}/api/v1/policies/firewall/app/app-embedded"))
            .set("Authorization", &basic("admin", ADMIN_PASSWORD))
            .set("Content-Type", "application/json")
            .send_string(&cnaf.to_string())
            .map(|r| r.status())
            .map_err(|e| e.to_string())
    })
    .await
    .expect("join");
    assert_eq!(put.expect("PUT the CNAF policy"), 200);

    // Step 2: the seed's command as written, with only environment settings.
    let endpoint = moto.endpoint();
    let first = deploy(&endpoint, &console, &[]);
    let stderr = String::from_utf8_lossy(&first.stderr).to_string();
    assert_eq!(first.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "deploy-protected: defender image fargate-defender:{} (the console's default)",
            env!("CARGO_PKG_VERSION")
        )),
        "{stderr}"
    );
    assert!(
        stderr.contains(
            "deploy-protected: CNAF port 8080 forwarding to the app's port 80 (the console's \
             CNAF rule \"web\")"
        ),
        "{stderr}"
    );
    assert!(
        stderr.contains("deploy-protected: defender credential: created ")
            && stderr.contains(&format!("stored it in secret {SECRET_NAME}")),
        "{stderr}"
    );
    let summary: Value = serde_json::from_slice(&first.stdout).expect("json summary");

    // The secret exists, is tagged, and holds a token the console accepts from a defender.
    let secret = secrets
        .get_secret_value()
        .secret_id(SECRET_NAME)
        .send()
        .await
        .expect("the family's secret");
    let token = secret.secret_string().expect("token").to_string();
    let arn = secret.arn().expect("arn").to_string();
    let described = secrets
        .describe_secret()
        .secret_id(SECRET_NAME)
        .send()
        .await
        .expect("describe");
    assert!(
        described
            .tags()
            .iter()
            .any(|t| t.key() == Some("fargate-defender:family") && t.value() == Some(FAMILY)),
        "{described:?}"
    );
    let url = console.url.clone();
    let policy = tokio::task::spawn_blocking(move || {
        ureq::get(&format!(
            "{url}/api/v1/defender/policy?task={FAMILY}&container={FAMILY}&image=x"
        ))
        .set("Authorization", &format!("Bearer {token}"))
        .call()
        .map(|r| r.status())
        .map_err(|e| e.to_string())
    })
    .await
    .expect("join");
    assert_eq!(policy.expect("the defender credential works"), 200);

    // The protected revision references that secret, runs the console's image, maps 8080.
    let td = ecs
        .describe_task_definition()
        .task_definition(FAMILY)
        .send()
        .await
        .expect("describe")
        .task_definition
        .expect("task definition");
    assert_eq!(td.revision(), 2);
    let installer = td
        .container_definitions()
        .iter()
        .find(|c| c.name() == Some("defender"))
        .expect("installer");
    assert_eq!(
        installer.image(),
        Some(format!("fargate-defender:{}", env!("CARGO_PKG_VERSION")).as_str())
    );
    let app = td
        .container_definitions()
        .iter()
        .find(|c| c.name() == Some(FAMILY))
        .expect("app");
    let secret_ref: Vec<(&str, &str)> = app
        .secrets()
        .iter()
        .map(|s| (s.name(), s.value_from()))
        .collect();
    assert_eq!(secret_ref, vec![("DEFENDER_TOKEN", arn.as_str())]);
    assert!(
        app.port_mappings()
            .iter()
            .any(|m| m.container_port() == Some(8080)),
        "{:?}",
        app.port_mappings()
    );
    assert!(
        !app.environment()
            .iter()
            .any(|e| e.name() == Some("DEFENDER_TOKEN")),
        "no plain token"
    );

    // The sample has no execution role: one of the family's own reads exactly that secret.
    let iam = aws_sdk_iam::Client::new(&config);
    let role_name = "fargate-defender-exec-twistlock-fargate-task";
    let role = iam
        .get_role()
        .role_name(role_name)
        .send()
        .await
        .expect("the family's execution role")
        .role
        .expect("role");
    assert_eq!(td.execution_role_arn(), Some(role.arn.as_str()));
    assert!(
        stderr.contains(&format!(
            "deploy-protected: execution role: the task had none; created {}",
            role.arn
        )),
        "{stderr}"
    );
    let attached = iam
        .list_attached_role_policies()
        .role_name(role_name)
        .send()
        .await
        .expect("attached");
    assert_eq!(
        attached
            .attached_policies()
            .iter()
            .filter_map(|p| p.policy_arn())
            .collect::<Vec<_>>(),
        vec!["arn:aws:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy"]
    );
    let inline = iam
        .get_role_policy()
        .role_name(role_name)
        .policy_name("read-defender-token")
        .send()
        .await
        .expect("inline policy");
    let doc: Value =
        serde_json::from_str(&percent_decode(inline.policy_document())).expect("policy JSON");
    assert_eq!(
        doc["Statement"][0]["Action"],
        "secretsmanager:GetSecretValue"
    );
    assert_eq!(doc["Statement"][0]["Resource"], arn.as_str());

    // The service exists and the group is open on the console's CNAF port.
    assert_eq!(summary["service"], "created", "{summary}");
    assert_eq!(summary["task_definition"], "registered", "{summary}");
    assert_eq!(
        summary["default_network"]["security_group"], "created",
        "{summary}"
    );
    let group_id = summary["default_network"]["security_group_id"]
        .as_str()
        .unwrap_or_else(|| panic!("a group made for the service: {summary}"))
        .to_string();
    let group = ec2
        .describe_security_groups()
        .group_ids(&group_id)
        .send()
        .await
        .expect("groups");
    assert_eq!(
        group.security_groups()[0].group_name(),
        Some("fargate-defender-twistlock-fargate-task")
    );
    let perms = group.security_groups()[0].ip_permissions();
    assert_eq!(cnaf_ports(perms), vec![8080]);

    // A second run changes nothing: same secret, same revision, same rule.
    let second = deploy(&endpoint, &console, &[]);
    let stderr = String::from_utf8_lossy(&second.stderr).to_string();
    assert_eq!(second.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "deploy-protected: defender credential: reusing secret {SECRET_NAME}"
        )),
        "{stderr}"
    );
    let summary: Value = serde_json::from_slice(&second.stdout).expect("json summary");
    assert_eq!(summary["task_definition"], "reused", "{summary}");
    assert_eq!(summary["service"], "unchanged", "{summary}");
    let again = secrets
        .get_secret_value()
        .secret_id(SECRET_NAME)
        .send()
        .await
        .expect("secret");
    assert_eq!(again.arn(), Some(arn.as_str()));
    assert!(
        stderr.contains(&format!(
            "deploy-protected: execution role: reusing {}",
            role.arn
        )),
        "{stderr}"
    );
    let group = ec2
        .describe_security_groups()
        .group_ids(&group_id)
        .send()
        .await
        .expect("groups");
    assert_eq!(
        cnaf_ports(group.security_groups()[0].ip_permissions()),
        vec![8080]
    );

    // The credential revoked in the console: the next run puts a fresh one in the same secret
    // (the registered revision, which references the secret by ARN, stays).
    let tag = |d: &aws_sdk_secretsmanager::operation::describe_secret::DescribeSecretOutput| {
        d.tags()
            .iter()
            .find(|t| t.key() == Some("fargate-defender:credential-id"))
            .and_then(|t| t.value())
            .map(String::from)
            .expect("the credential tag")
    };
    let old_id = tag(&described);
    let url = console.url.clone();
    let id = old_id.clone();
    let revoked = tokio::task::spawn_blocking(move || {
        // A session token: Basic credentials are for the pipeline routes only.
        let login: Value = ureq::post(&format!("{url}/api/v1/authenticate"))
            .set("Content-Type", "application/json")
            .send_string(&json!({"username": "admin", "password": ADMIN_PASSWORD}).to_string())
            .map_err(|e| e.to_string())?
            .into_json()
            .map_err(|e| e.to_string())?;
        let token = login["token"].as_str().unwrap_or_default().to_string();
        ureq::delete(&format!("{url}/api/v1/defenders/credentials/{id}"))
            .set("Authorization", &format!("Bearer {token}"))
            .call()
            .map(|r| r.status())
            .map_err(|e| e.to_string())
    })
    .await
    .expect("join");
    assert_eq!(revoked.expect("revoke"), 204);
    let third = deploy(&endpoint, &console, &[]);
    let stderr = String::from_utf8_lossy(&third.stderr).to_string();
    assert_eq!(third.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "defender credential: {old_id} in secret {SECRET_NAME} is revoked"
        )),
        "{stderr}"
    );
    let summary: Value = serde_json::from_slice(&third.stdout).expect("json summary");
    assert_eq!(summary["task_definition"], "reused", "{summary}");
    let renewed = secrets
        .get_secret_value()
        .secret_id(SECRET_NAME)
        .send()
        .await
        .expect("secret");
    assert_eq!(renewed.arn(), Some(arn.as_str()));
    let fresh = renewed.secret_string().expect("token").to_string();
    assert_ne!(Some(fresh.as_str()), again.secret_string());
    let retagged = secrets
        .describe_secret()
        .secret_id(SECRET_NAME)
        .send()
        .await
        .expect("describe");
    assert_ne!(tag(&retagged), old_id);
    let url = console.url.clone();
    let works = tokio::task::spawn_blocking(move || {
        ureq::get(&format!(
            "{url}/api/v1/defender/policy?task={FAMILY}&container={FAMILY}&image=x"
        ))
        .set("Authorization", &format!("Bearer {fresh}"))
        .call()
        .map(|r| r.status())
        .map_err(|e| e.to_string())
    })
    .await
    .expect("join");
    assert_eq!(works.expect("the fresh credential works"), 200);
}

/// IAM returns policy documents URL-encoded (as the query API does).
fn percent_decode(text: &str) -> String {
    percent_encoding::percent_decode_str(text)
        .decode_utf8_lossy()
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_named_secret_is_checked_against_the_named_role_before_any_change() {
    let moto = MotoServer::start(&[]).expect("moto server");
    let config = sdk_config(&moto.endpoint());
    let ecs = aws_sdk_ecs::Client::new(&config);
    let iam = aws_sdk_iam::Client::new(&config);
    let secrets = aws_sdk_secretsmanager::Client::new(&config);
    let dir = tempfile::tempdir().expect("tempdir");
    let console = Console::start(dir.path());
    ecs.create_cluster()
        .cluster_name("default")
        .send()
        .await
        .expect("cluster");
    let sample: Value = serde_json::from_str(SAMPLE).expect("sample");
    deploy_protected::deploy::AwsClients::new(&config)
        .register_task_definition(&sample)
        .await
        .expect("seed the sample");
    // The team's own secret and execution role; the role can read other secrets only.
    let secret = secrets
        .create_secret()
        .name("team/defender-token")
        .secret_string("cdt_team")
        .send()
        .await
        .expect("secret");
    let secret_arn = secret.arn().expect("arn").to_string();
    let trust = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
        "Principal": {"Service": "ecs-tasks.amazonaws.com"}, "Action": "sts:AssumeRole"}]});
    let role = iam
        .create_role()
        .role_name("team-exec")
        .assume_role_policy_document(trust.to_string())
        .send()
        .await
        .expect("role");
    let role_arn = role.role().map(|r| r.arn().to_string()).expect("role arn");
    let put_policy = |resource: &str| {
        iam.put_role_policy()
            .role_name("team-exec")
            .policy_name("secrets")
            .policy_document(
                json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
                    "Action": "secretsmanager:GetSecretValue", "Resource": resource}]})
                .to_string(),
            )
            .send()
    };
    put_policy("arn:aws:secretsmanager:*:*:secret:other/*")
        .await
        .expect("policy");

    let endpoint = moto.endpoint();
    let flags = [
        "--token-secret-arn",
        &secret_arn,
        "--execution-role",
        &role_arn,
    ];
    let refused = deploy(&endpoint, &console, &flags);
    let stderr = String::from_utf8_lossy(&refused.stderr).to_string();
    assert_eq!(refused.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "execution role {role_arn} cannot read the defender credential {secret_arn}"
        )) && stderr.contains("\"Action\":\"secretsmanager:GetSecretValue\""),
        "{stderr}"
    );
    let revisions = ecs
        .list_task_definitions()
        .family_prefix(FAMILY)
        .send()
        .await
        .expect("list");
    assert_eq!(
        revisions.task_definition_arns().len(),
        1,
        "nothing registered"
    );

    // The statement the error named, added: the deployment goes ahead.
    put_policy(&secret_arn).await.expect("policy");
    let ok = deploy(&endpoint, &console, &flags);
    let stderr = String::from_utf8_lossy(&ok.stderr).to_string();
    assert_eq!(ok.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "execution role {role_arn} may read the defender credential (inline policy secrets)"
        )),
        "{stderr}"
    );
    let summary: Value = serde_json::from_slice(&ok.stdout).expect("json summary");
    let registered = ecs
        .describe_task_definition()
        .task_definition(summary["task_definition_arn"].as_str().expect("arn"))
        .send()
        .await
        .expect("describe");
    let td = registered.task_definition().expect("td");
    assert_eq!(td.execution_role_arn(), Some(role_arn.as_str()));
    let value_from: Vec<&str> = td
        .container_definitions()
        .iter()
        .flat_map(|c| c.secrets())
        .map(|s| s.value_from())
        .collect();
    assert!(value_from.contains(&secret_arn.as_str()), "{value_from:?}");
}
