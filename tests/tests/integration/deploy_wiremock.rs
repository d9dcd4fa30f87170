//! Contract tests of the deploy mode against a mocked AWS (wiremock, see [`super::deploy_mock`]):
//! every ECS and EC2 call the deploy mode makes, its failure modes and retries. The real SDK
//! signs, retries and parses; the real transform runs.

use deploy_protected::deploy::{
    AwsVpc, DeploySettings, FinalState, Outcome, Registration, ServiceAction,
};
use serde_json::{json, Value};
use wiremock::matchers::{body_partial_json, body_string_contains};
use wiremock::{MockServer, ResponseTemplate};

use super::deploy_mock::*;

#[tokio::test]
async fn new_service_registers_opens_cnaf_port_creates_and_waits() {
    let server = MockServer::start().await;
    ecs("DescribeTaskDefinition")
        .and(body_partial_json(json!({
            "taskDefinition": "twistlock-fargate-task", "include": ["TAGS"]
        })))
        .respond_with(json_ok(described(&seed(), 1)))
        .expect(1)
        .mount(&server)
        .await;
    // First look: the service does not exist yet; afterwards it is steady.
    ecs("DescribeServices")
        .and(body_partial_json(
            json!({"cluster": "c1", "services": ["twistlock-fargate-task"]}),
        ))
        .respond_with(json_ok(json!({"services": [], "failures": [
            {"arn": SERVICE_ARN, "reason": "MISSING"}]})))
        .up_to_n_times(1)
        .expect(1)
        .mount(&server)
        .await;
    ecs("DescribeServices")
        .respond_with(json_ok(json!({"services": [service(
            &td_arn(2), 1, 1, &[&td_arn(2)], json!([]))], "failures": []})))
        .mount(&server)
        .await;
    mount_network(&server).await;
    // What ECS described (defaults and tags included), protected by the real transform.
    let expected = protect::embed::embed(&described(&seed(), 1), &options())
        .expect("transform")
        .task_definition;
    assert_eq!(expected["tags"], json!([{"key": "team", "value": "web"}]));
    ecs("RegisterTaskDefinition")
        .and(body_partial_json(expected.clone()))
        .respond_with(json_ok(json!({"taskDefinition": {
            "taskDefinitionArn": td_arn(2), "revision": 2, "family": "twistlock-fargate-task"}})))
        .expect(1)
        .mount(&server)
        .await;
    ec2("AuthorizeSecurityGroupIngress")
        .and(body_string_contains("GroupId=sg-1"))
        .and(body_string_contains("IpPermissions.1.IpProtocol=tcp"))
        .and(body_string_contains("IpPermissions.1.FromPort=8080"))
        .and(body_string_contains("IpPermissions.1.ToPort=8080"))
        .and(body_string_contains(
            "IpPermissions.1.IpRanges.1.CidrIp=0.0.0.0%2F0",
        ))
        .respond_with(xml_ok(authorize_xml()))
        .expect(1)
        .mount(&server)
        .await;
    ecs("CreateService")
        .and(body_partial_json(json!({
            "cluster": "c1", "serviceName": "twistlock-fargate-task",
            "taskDefinition": td_arn(2), "desiredCount": 1, "launchType": "FARGATE",
            "networkConfiguration": {"awsvpcConfiguration": {"subnets": ["subnet-1"],
                "securityGroups": ["sg-1"], "assignPublicIp": "ENABLED"}}
        })))
        .respond_with(json_ok(json!({"service": service(
            &td_arn(2), 0, 1, &[&td_arn(2)], json!([]))})))
        .expect(1)
        .mount(&server)
        .await;
    forbid(&server, &["UpdateService"], &[]).await;

    let (result, progress) = run(&server, &settings()).await;
    let Ok(Outcome::Deployed(summary)) = result else {
        panic!("{result:?}");
    };
    assert_eq!(summary.task_definition_arn, td_arn(2));
    assert_eq!(summary.task_definition, Registration::Registered);
    assert_eq!(summary.service, ServiceAction::Created);
    assert_eq!(summary.service_arn, SERVICE_ARN);
    assert_eq!(summary.final_state, FinalState::Steady);
    assert_eq!(summary.security_group_rules.len(), 1);
    assert_eq!(summary.security_group_rules[0].result, "added");
    assert!(
        progress.contains("registered task definition"),
        "{progress}"
    );

    // The request body of RegisterTaskDefinition is exactly the transform's output (+ tags).
    let requests = server.received_requests().await.expect("recording");
    let register = requests
        .iter()
        .find(|r| {
            r.headers
                .get("x-amz-target")
                .is_some_and(|t| t.as_bytes().ends_with(b".RegisterTaskDefinition"))
        })
        .expect("register request");
    let sent: Value = serde_json::from_slice(&register.body).expect("JSON body");
    assert_eq!(sent, expected);
    assert!(register.headers.get("authorization").is_some(), "signed");

    // Every call made is in the IAM policy.
    let policy = policy_actions();
    for action in actions_called(&requests) {
        assert!(policy.contains(&action), "{action} missing from the policy");
    }
}

#[tokio::test]
async fn throttling_is_retried_by_the_sdk() {
    let server = MockServer::start().await;
    ecs("DescribeTaskDefinition")
        .respond_with(ecs_error(400, "ThrottlingException", "Rate exceeded"))
        .up_to_n_times(2)
        .expect(2)
        .mount(&server)
        .await;
    ecs("DescribeTaskDefinition")
        .respond_with(json_ok(described(&seed(), 1)))
        .expect(1)
        .mount(&server)
        .await;
    mount_no_service(&server).await;
    mount_network(&server).await;
    forbid(
        &server,
        &["RegisterTaskDefinition", "CreateService", "UpdateService"],
        &["AuthorizeSecurityGroupIngress"],
    )
    .await;
    let (result, _) = run(
        &server,
        &DeploySettings {
            dry_run: true,
            ..settings()
        },
    )
    .await;
    let Ok(Outcome::DryRun(plan)) = result else {
        panic!("{result:?}");
    };
    assert_eq!(plan.source_task_definition_arn, td_arn(1));
    assert!(
        plan.diff.contains("+      \"name\": \"defender\""),
        "{}",
        plan.diff
    );
    assert!(plan.calls[0].starts_with("ecs:RegisterTaskDefinition"));
    assert!(plan.calls[1].starts_with("ec2:AuthorizeSecurityGroupIngress groupId=sg-1 tcp/8080"));
    assert!(plan.calls[2].starts_with("ecs:CreateService cluster=c1"));
}

#[tokio::test]
async fn server_errors_are_retried_then_reported_with_the_action() {
    let server = MockServer::start().await;
    mount_sample(&server).await;
    ecs("DescribeServices")
        .respond_with(ecs_error(
            500,
            "ServerException",
            "Service unavailable, try again",
        ))
        .expect(3)
        .mount(&server)
        .await;
    forbid(
        &server,
        &["RegisterTaskDefinition", "CreateService", "UpdateService"],
        &["AuthorizeSecurityGroupIngress"],
    )
    .await;
    let (result, _) = run(&server, &settings()).await;
    let err = result.expect_err("5xx after retries");
    assert_eq!(
        err.to_string(),
        "ecs:DescribeServices failed: ServerException: Service unavailable, try again"
    );
    assert_eq!(err.exit_code(), 1);
}

#[tokio::test]
async fn a_transient_5xx_then_success_deploys() {
    let server = MockServer::start().await;
    ecs("DescribeTaskDefinition")
        .respond_with(ResponseTemplate::new(503).set_body_string("unavailable"))
        .up_to_n_times(1)
        .expect(1)
        .mount(&server)
        .await;
    ecs("DescribeTaskDefinition")
        .respond_with(json_ok(described(&seed(), 1)))
        .expect(1)
        .mount(&server)
        .await;
    mount_no_service(&server).await;
    mount_network(&server).await;
    let (result, _) = run(
        &server,
        &DeploySettings {
            dry_run: true,
            ..settings()
        },
    )
    .await;
    assert!(matches!(result, Ok(Outcome::DryRun(_))), "{result:?}");
}

#[tokio::test]
async fn access_denied_names_the_iam_action_and_stops() {
    let server = MockServer::start().await;
    mount_sample(&server).await;
    mount_no_service(&server).await;
    mount_network(&server).await;
    ecs("RegisterTaskDefinition")
        .respond_with(ecs_error(
            400,
            "AccessDeniedException",
            "User: arn:aws:iam::123456789012:user/ci is not authorized to perform: \
             ecs:RegisterTaskDefinition on resource: *",
        ))
        .expect(1)
        .mount(&server)
        .await;
    forbid(
        &server,
        &["CreateService", "UpdateService"],
        &["AuthorizeSecurityGroupIngress"],
    )
    .await;
    let (result, _) = run(&server, &settings()).await;
    let err = result.expect_err("denied");
    assert_eq!(
        err.to_string(),
        "access denied for ecs:RegisterTaskDefinition: User: \
         arn:aws:iam::123456789012:user/ci is not authorized to perform: \
         ecs:RegisterTaskDefinition on resource: *; grant `ecs:RegisterTaskDefinition` to the \
         caller (infra/iam/deploy-protected-policy.json lists every action needed)"
    );
    assert_eq!(err.exit_code(), 1);
}

#[tokio::test]
async fn ec2_unauthorized_operation_names_the_ec2_action() {
    let server = MockServer::start().await;
    mount_sample(&server).await;
    mount_no_service(&server).await;
    ec2("DescribeSubnets")
        .respond_with(ec2_error(
            "UnauthorizedOperation",
            "You are not authorized to perform this operation.",
        ))
        .mount(&server)
        .await;
    forbid(
        &server,
        &["RegisterTaskDefinition", "CreateService", "UpdateService"],
        &["AuthorizeSecurityGroupIngress"],
    )
    .await;
    let (result, _) = run(&server, &settings()).await;
    let err = result.expect_err("denied");
    assert!(
        err.to_string()
            .starts_with("access denied for ec2:DescribeSubnets: You are not authorized"),
        "{err}"
    );
}

#[tokio::test]
async fn unknown_family_is_named_and_nothing_else_is_called() {
    let server = MockServer::start().await;
    ecs("DescribeTaskDefinition")
        .respond_with(ecs_error(
            400,
            "ClientException",
            "Unable to describe task definition.",
        ))
        .expect(1)
        .mount(&server)
        .await;
    forbid(
        &server,
        &[
            "DescribeServices",
            "RegisterTaskDefinition",
            "CreateService",
            "UpdateService",
        ],
        &["DescribeSubnets", "AuthorizeSecurityGroupIngress"],
    )
    .await;
    let (result, _) = run(
        &server,
        &DeploySettings {
            family: "no-such-family".into(),
            ..settings()
        },
    )
    .await;
    let err = result.expect_err("unknown family");
    assert_eq!(
        err.to_string(),
        "task definition family `no-such-family` has no ACTIVE revision in region us-east-1: \
         check --family and --region (or AWS_REGION / the profile's region)"
    );
    assert_eq!(err.exit_code(), 2);
}

#[tokio::test]
async fn missing_cluster_is_reported_with_region() {
    let server = MockServer::start().await;
    mount_sample(&server).await;
    ecs("DescribeServices")
        .respond_with(ecs_error(
            400,
            "ClusterNotFoundException",
            "Cluster not found.",
        ))
        .expect(1)
        .mount(&server)
        .await;
    forbid(
        &server,
        &["RegisterTaskDefinition", "CreateService", "UpdateService"],
        &["AuthorizeSecurityGroupIngress"],
    )
    .await;
    let (result, _) = run(&server, &settings()).await;
    let err = result.expect_err("no cluster");
    assert_eq!(
        err.to_string(),
        "cluster `c1` was not found in region us-east-1 (ClusterNotFoundException): check \
         --cluster and --region"
    );
    assert_eq!(err.exit_code(), 2);
}

#[tokio::test]
async fn subnets_and_security_groups_in_different_vpcs_stop_before_any_change() {
    let server = MockServer::start().await;
    mount_sample(&server).await;
    mount_no_service(&server).await;
    ec2("DescribeSubnets")
        .respond_with(xml_ok(subnets_xml(&[("subnet-1", "vpc-1")])))
        .mount(&server)
        .await;
    ec2("DescribeSecurityGroups")
        .respond_with(xml_ok(groups_xml(&[("sg-1", "vpc-2")])))
        .mount(&server)
        .await;
    forbid(
        &server,
        &["RegisterTaskDefinition", "CreateService", "UpdateService"],
        &["AuthorizeSecurityGroupIngress"],
    )
    .await;
    let (result, _) = run(&server, &settings()).await;
    let err = result.expect_err("vpc mismatch");
    assert_eq!(
        err.to_string(),
        "subnet `subnet-1` is in vpc-1 but security group `sg-1` is in vpc-2: a Fargate task's \
         subnets and security groups must be in one VPC; fix --subnets or --security-groups"
    );
    assert_eq!(err.exit_code(), 2);

    // An unknown subnet id is named too.
    let server = MockServer::start().await;
    mount_sample(&server).await;
    mount_no_service(&server).await;
    ec2("DescribeSubnets")
        .respond_with(ec2_error(
            "InvalidSubnetID.NotFound",
            "The subnet ID 'subnet-9' does not exist",
        ))
        .mount(&server)
        .await;
    let (result, _) = run(&server, &settings()).await;
    assert_eq!(
        result.expect_err("unknown subnet").to_string(),
        "subnet `subnet-9` does not exist in region us-east-1: check --subnets"
    );
}

#[tokio::test]
async fn update_with_duplicate_rule_and_reused_revision() {
    // The latest revision already is the protected definition: no RegisterTaskDefinition; the
    // service runs revision 1 and is updated; the CNAF rule already exists.
    let server = MockServer::start().await;
    ecs("DescribeTaskDefinition")
        .respond_with(json_ok(described(&protected_seed(), 2)))
        .mount(&server)
        .await;
    ecs("DescribeServices")
        .respond_with(json_ok(json!({"services": [service(
            &td_arn(1), 1, 1, &[&td_arn(1)], json!([]))], "failures": []})))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    ecs("DescribeServices")
        .respond_with(json_ok(json!({"services": [service(
            &td_arn(2), 1, 1, &[&td_arn(2)], json!([]))], "failures": []})))
        .mount(&server)
        .await;
    mount_network(&server).await;
    ec2("AuthorizeSecurityGroupIngress")
        .respond_with(ec2_error(
            "InvalidPermission.Duplicate",
            "the specified rule \"peer: 0.0.0.0/0, TCP, from port: 8080, to port: 8080, ALLOW\" \
             already exists",
        ))
        .expect(1)
        .mount(&server)
        .await;
    ecs("UpdateService")
        .and(body_partial_json(json!({
            "cluster": "c1", "service": "twistlock-fargate-task", "taskDefinition": td_arn(2)
        })))
        .respond_with(json_ok(json!({"service": service(
            &td_arn(2), 1, 1, &[&td_arn(2), &td_arn(1)], json!([]))})))
        .expect(1)
        .mount(&server)
        .await;
    forbid(&server, &["RegisterTaskDefinition", "CreateService"], &[]).await;
    let mut s = settings();
    s.network = Some(AwsVpc {
        assign_public_ip: false,
        ..s.network.clone().expect("network")
    });
    let (result, progress) = run(&server, &s).await;
    let Ok(Outcome::Deployed(summary)) = result else {
        panic!("{result:?}");
    };
    assert_eq!(summary.task_definition, Registration::Reused);
    assert_eq!(summary.task_definition_arn, td_arn(2));
    assert_eq!(summary.service, ServiceAction::Updated);
    assert_eq!(summary.security_group_rules[0].result, "already-present");
    assert_eq!(summary.final_state, FinalState::Steady);
    assert!(
        progress.contains("already is the protected definition"),
        "{progress}"
    );
}

#[test]
fn the_iam_policy_lists_exactly_the_actions_the_cli_needs() {
    let mut policy = policy_actions();
    policy.sort();
    let mut needed: Vec<String> = deploy_protected::deploy::aws::API_ACTIONS
        .iter()
        .map(|a| a.to_string())
        .chain(
            [
                "iam:PassRole",
                "ecs:TagResource",
                "ec2:CreateTags",
                "iam:TagRole",
            ]
            .map(String::from),
        )
        .collect();
    needed.sort();
    assert_eq!(policy, needed);
}

#[tokio::test]
async fn an_older_revision_protected_equal_to_the_latest_reuses_the_latest() {
    // --revision 1; the latest (2) already is protect(1): reuse 2, register nothing.
    let server = MockServer::start().await;
    let source = described(&seed(), 1);
    let protected = protect::embed::embed(&source, &options())
        .expect("transform")
        .task_definition;
    ecs("DescribeTaskDefinition")
        .and(body_partial_json(
            json!({"taskDefinition": "twistlock-fargate-task:1"}),
        ))
        .respond_with(json_ok(source))
        .expect(1)
        .mount(&server)
        .await;
    ecs("DescribeTaskDefinition")
        .and(body_partial_json(
            json!({"taskDefinition": "twistlock-fargate-task"}),
        ))
        .respond_with(json_ok(described(&protected, 2)))
        .expect(1)
        .mount(&server)
        .await;
    ecs("DescribeTaskDefinition")
        .and(body_partial_json(
            json!({"taskDefinition": "twistlock-fargate-task:7"}),
        ))
        .respond_with(ecs_error(
            400,
            "ClientException",
            "Unable to describe task definition.",
        ))
        .mount(&server)
        .await;
    ecs("DescribeServices")
        .respond_with(json_ok(json!({"services": [service(
            &td_arn(2), 1, 1, &[&td_arn(2)], json!([]))], "failures": []})))
        .mount(&server)
        .await;
    ec2("AuthorizeSecurityGroupIngress")
        .respond_with(xml_ok(authorize_xml()))
        .mount(&server)
        .await;
    forbid(
        &server,
        &["RegisterTaskDefinition", "CreateService", "UpdateService"],
        &[],
    )
    .await;
    let mut s = settings();
    s.network = None;
    s.revision = Some(1);
    let (result, _) = run(&server, &s).await;
    let Ok(Outcome::Deployed(summary)) = result else {
        panic!("{result:?}");
    };
    assert_eq!(summary.task_definition, Registration::Reused);
    assert_eq!(summary.task_definition_arn, td_arn(2));
    assert_eq!(summary.service, ServiceAction::Unchanged);
    assert_eq!(summary.final_state, FinalState::Steady);

    s.revision = Some(7);
    let (result, _) = run(&server, &s).await;
    let err = result.expect_err("unknown revision");
    assert_eq!(
        err.to_string(),
        "task definition `twistlock-fargate-task:7` does not exist in region us-east-1: check \
         --revision (omit it to use the latest ACTIVE revision)"
    );
    assert_eq!(err.exit_code(), 2);
}
