//! A new service without `--subnets` / `--security-groups`: the region's default VPC, its
//! default-for-AZ subnets and a security group made for the service (created once, then
//! reused), public IP on. Contract tests against a mocked AWS (wiremock); the end-to-end run
//! against moto (which has a default VPC in every region) is in [`super::deploy_moto`].

use deploy_protected::deploy::{
    DeploySettings, FinalState, GroupOrigin, NetworkSummary, Outcome, ServiceAction,
};
use serde_json::{json, Value};
use wiremock::matchers::{body_partial_json, body_string_contains};
use wiremock::MockServer;

use super::deploy_mock::*;

pub(crate) const GROUP: &str = "fargate-defender-twistlock-fargate-task";

pub(crate) fn default_network_settings() -> DeploySettings {
    DeploySettings {
        network: None,
        ..settings()
    }
}

fn vpcs_xml(ids: &[&str]) -> String {
    let items: String = ids
        .iter()
        .map(|v| format!("<item><vpcId>{v}</vpcId><isDefault>true</isDefault></item>"))
        .collect();
    format!(
        "<DescribeVpcsResponse xmlns=\"{EC2_NS}\"><requestId>r-1</requestId>\
         <vpcSet>{items}</vpcSet></DescribeVpcsResponse>"
    )
}

fn vpc_subnets_xml(items: &[(&str, &str, bool)]) -> String {
    let items: String = items
        .iter()
        .map(|(s, az, default)| {
            format!(
                "<item><subnetId>{s}</subnetId><vpcId>vpc-1</vpcId>\
                 <availabilityZone>{az}</availabilityZone><defaultForAz>{default}</defaultForAz>\
                 </item>"
            )
        })
        .collect();
    format!(
        "<DescribeSubnetsResponse xmlns=\"{EC2_NS}\"><requestId>r-1</requestId>\
         <subnetSet>{items}</subnetSet></DescribeSubnetsResponse>"
    )
}

fn created_group_xml(id: &str) -> String {
    format!(
        "<CreateSecurityGroupResponse xmlns=\"{EC2_NS}\"><requestId>r-1</requestId>\
         <return>true</return><groupId>{id}</groupId></CreateSecurityGroupResponse>"
    )
}

/// The default VPC `vpc-1`: two default-for-AZ subnets (listed out of zone order) and one
/// that is not; the service's group lookup answers `group` (or nothing).
async fn mount_default_vpc(server: &MockServer, group: Option<&str>) {
    ec2("DescribeVpcs")
        .and(body_string_contains("Filter.1.Name=isDefault"))
        .and(body_string_contains("Filter.1.Value.1=true"))
        .respond_with(xml_ok(vpcs_xml(&["vpc-1"])))
        .expect(1)
        .mount(server)
        .await;
    ec2("DescribeSubnets")
        .and(body_string_contains("Filter.1.Name=vpc-id"))
        .and(body_string_contains("Filter.1.Value.1=vpc-1"))
        .respond_with(xml_ok(vpc_subnets_xml(&[
            ("subnet-b", "us-east-1b", true),
            ("subnet-x", "us-east-1a", false),
            ("subnet-a", "us-east-1a", true),
        ])))
        .expect(1)
        .mount(server)
        .await;
    let groups: Vec<(&str, &str)> = group.map(|g| (g, "vpc-1")).into_iter().collect();
    ec2("DescribeSecurityGroups")
        .and(body_string_contains(format!("Value.1={GROUP}")))
        .and(body_string_contains("Value.1=vpc-1"))
        .respond_with(xml_ok(groups_xml(&groups)))
        .expect(1)
        .mount(server)
        .await;
}

/// DescribeServices: missing at first, then steady on revision 2.
async fn mount_new_service(server: &MockServer) {
    ecs("DescribeServices")
        .respond_with(json_ok(json!({"services": [], "failures": [
            {"arn": SERVICE_ARN, "reason": "MISSING"}]})))
        .up_to_n_times(1)
        .mount(server)
        .await;
    ecs("DescribeServices")
        .respond_with(json_ok(json!({"services": [service(
            &td_arn(2), 1, 1, &[&td_arn(2)], json!([]))], "failures": []})))
        .mount(server)
        .await;
    ecs("RegisterTaskDefinition")
        .respond_with(json_ok(json!({"taskDefinition": {
            "taskDefinitionArn": td_arn(2), "revision": 2, "family": "twistlock-fargate-task"}})))
        .mount(server)
        .await;
}

/// CreateService in subnet-a, subnet-b with `group` and a public IP, once.
async fn expect_create_service(server: &MockServer, group: &str) {
    ecs("CreateService")
        .and(body_partial_json(json!({
            "cluster": "c1", "serviceName": "twistlock-fargate-task",
            "taskDefinition": td_arn(2), "launchType": "FARGATE",
            "networkConfiguration": {"awsvpcConfiguration": {"subnets": ["subnet-a", "subnet-b"],
                "securityGroups": [group], "assignPublicIp": "ENABLED"}}
        })))
        .respond_with(json_ok(json!({"service": service(
            &td_arn(2), 0, 1, &[&td_arn(2)], json!([]))})))
        .expect(1)
        .mount(server)
        .await;
}

#[tokio::test]
async fn default_vpc_a_new_group_and_the_service_created_in_them() {
    let server = MockServer::start().await;
    mount_sample(&server).await;
    mount_new_service(&server).await;
    mount_default_vpc(&server, None).await;
    ec2("CreateSecurityGroup")
        .and(body_string_contains(format!("GroupName={GROUP}&")))
        .and(body_string_contains("VpcId=vpc-1"))
        .and(body_string_contains(
            "Description=fargate-defender%3A%20tasks%20of%20ECS%20service%20twistlock-fargate-task",
        ))
        .and(body_string_contains(
            "TagSpecification.1.ResourceType=security-group",
        ))
        .and(body_string_contains(
            "TagSpecification.1.Tag.1.Key=fargate-defender%3Aservice",
        ))
        .and(body_string_contains(
            "TagSpecification.1.Tag.1.Value=twistlock-fargate-task",
        ))
        .respond_with(xml_ok(created_group_xml("sg-new")))
        .expect(1)
        .mount(&server)
        .await;
    ec2("AuthorizeSecurityGroupIngress")
        .and(body_string_contains("GroupId=sg-new"))
        .and(body_string_contains("IpPermissions.1.FromPort=8080"))
        .respond_with(xml_ok(authorize_xml()))
        .expect(1)
        .mount(&server)
        .await;
    expect_create_service(&server, "sg-new").await;
    forbid(&server, &["UpdateService"], &[]).await;

    let (result, progress) = run(&server, &default_network_settings()).await;
    let Ok(Outcome::Deployed(summary)) = result else {
        panic!("{result:?}");
    };
    assert_eq!(summary.service, ServiceAction::Created);
    assert_eq!(summary.final_state, FinalState::Steady);
    assert_eq!(
        summary.default_network,
        Some(NetworkSummary {
            vpc_id: "vpc-1".into(),
            subnets: vec!["subnet-a".into(), "subnet-b".into()],
            security_group_id: "sg-new".into(),
            security_group_name: GROUP.into(),
            security_group: GroupOrigin::Created,
            assign_public_ip: true,
        })
    );
    assert_eq!(summary.security_group_rules[0].group_id, "sg-new");
    assert_eq!(summary.security_group_rules[0].result, "added");
    assert!(
        progress.contains(
            "network: default VPC vpc-1 (subnets subnet-a,subnet-b), security group sg-new \
             (created) for service twistlock-fargate-task; assignPublicIp ENABLED"
        ),
        "{progress}"
    );

    // Every call made is in the IAM policy.
    let requests = server.received_requests().await.expect("recording");
    let policy = policy_actions();
    for action in actions_called(&requests) {
        assert!(policy.contains(&action), "{action} missing from the policy");
    }
}

#[tokio::test]
async fn the_group_made_by_an_earlier_run_is_reused() {
    let server = MockServer::start().await;
    mount_sample(&server).await;
    mount_new_service(&server).await;
    mount_default_vpc(&server, Some("sg-made")).await;
    ec2("AuthorizeSecurityGroupIngress")
        .and(body_string_contains("GroupId=sg-made"))
        .respond_with(ec2_error(
            "InvalidPermission.Duplicate",
            "the specified rule already exists",
        ))
        .expect(1)
        .mount(&server)
        .await;
    expect_create_service(&server, "sg-made").await;
    forbid(&server, &["UpdateService"], &["CreateSecurityGroup"]).await;

    let (result, progress) = run(&server, &default_network_settings()).await;
    let Ok(Outcome::Deployed(summary)) = result else {
        panic!("{result:?}");
    };
    let network = summary.default_network.expect("default network");
    assert_eq!(network.security_group_id, "sg-made");
    assert_eq!(network.security_group, GroupOrigin::Reused);
    assert_eq!(summary.security_group_rules[0].result, "already-present");
    assert!(
        progress.contains("security group sg-made (reused) for service twistlock-fargate-task"),
        "{progress}"
    );
}

#[tokio::test]
async fn dry_run_describes_the_default_network_and_creates_nothing() {
    let server = MockServer::start().await;
    mount_sample(&server).await;
    mount_no_service(&server).await;
    mount_default_vpc(&server, None).await;
    forbid(
        &server,
        &["RegisterTaskDefinition", "CreateService", "UpdateService"],
        &["CreateSecurityGroup", "AuthorizeSecurityGroupIngress"],
    )
    .await;
    let (result, _) = run(
        &server,
        &DeploySettings {
            dry_run: true,
            ..default_network_settings()
        },
    )
    .await;
    let Ok(Outcome::DryRun(plan)) = result else {
        panic!("{result:?}");
    };
    assert_eq!(
        plan.network.as_deref(),
        Some(
            "default VPC vpc-1 (subnets subnet-a,subnet-b), security group \
             fargate-defender-twistlock-fargate-task (would be created) for service \
             twistlock-fargate-task; assignPublicIp ENABLED (tasks in the default VPC's public \
             subnets need it to pull images)"
        )
    );
    assert_eq!(
        plan.calls[1],
        "ec2:CreateSecurityGroup groupName=fargate-defender-twistlock-fargate-task vpcId=vpc-1 \
         description=\"fargate-defender: tasks of ECS service twistlock-fargate-task (made by \
         deploy-protected)\" tags=fargate-defender:service=twistlock-fargate-task"
    );
    assert!(
        plan.calls[2].starts_with("ec2:AuthorizeSecurityGroupIngress groupId=<new group> tcp/8080"),
        "{:?}",
        plan.calls
    );
    assert!(
        plan.calls[3].ends_with(
            "subnets=subnet-a,subnet-b securityGroups=<new group> assignPublicIp=ENABLED"
        ),
        "{:?}",
        plan.calls
    );
}

#[tokio::test]
async fn no_default_vpc_is_a_usage_error_naming_the_flags() {
    let server = MockServer::start().await;
    mount_sample(&server).await;
    mount_no_service(&server).await;
    ec2("DescribeVpcs")
        .respond_with(xml_ok(vpcs_xml(&[])))
        .expect(1)
        .mount(&server)
        .await;
    forbid(
        &server,
        &["RegisterTaskDefinition", "CreateService", "UpdateService"],
        &[
            "DescribeSubnets",
            "CreateSecurityGroup",
            "AuthorizeSecurityGroupIngress",
        ],
    )
    .await;
    let (result, _) = run(&server, &default_network_settings()).await;
    let err = result.expect_err("no default VPC");
    assert_eq!(
        err.to_string(),
        "service `twistlock-fargate-task` does not exist and region us-east-1 has no default VPC \
         to create it in: pass --subnets and --security-groups (subnets and security groups of \
         one VPC)"
    );
    assert_eq!(err.exit_code(), 2);
}

#[tokio::test]
async fn access_denied_on_create_security_group_names_the_action() {
    let server = MockServer::start().await;
    mount_sample(&server).await;
    mount_new_service(&server).await;
    mount_default_vpc(&server, None).await;
    ec2("CreateSecurityGroup")
        .respond_with(ec2_error(
            "UnauthorizedOperation",
            "You are not authorized to perform this operation.",
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
    let (result, _) = run(&server, &default_network_settings()).await;
    let err = result.expect_err("denied");
    assert_eq!(
        err.to_string(),
        "access denied for ec2:CreateSecurityGroup: You are not authorized to perform this \
         operation. (the group is tagged on creation, which also needs `ec2:CreateTags`); grant \
         `ec2:CreateSecurityGroup` to the caller (infra/iam/deploy-protected-policy.json lists \
         every action needed)"
    );
    assert_eq!(err.exit_code(), 1);
}

#[tokio::test]
async fn an_existing_service_keeps_its_network() {
    let server = MockServer::start().await;
    mount_sample(&server).await;
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
    ecs("RegisterTaskDefinition")
        .respond_with(json_ok(json!({"taskDefinition": {
            "taskDefinitionArn": td_arn(2), "revision": 2, "family": "twistlock-fargate-task"}})))
        .expect(1)
        .mount(&server)
        .await;
    ec2("AuthorizeSecurityGroupIngress")
        .and(body_string_contains("GroupId=sg-1"))
        .respond_with(xml_ok(authorize_xml()))
        .expect(1)
        .mount(&server)
        .await;
    ecs("UpdateService")
        .respond_with(json_ok(json!({"service": service(
            &td_arn(2), 1, 1, &[&td_arn(2), &td_arn(1)], json!([]))})))
        .expect(1)
        .mount(&server)
        .await;
    forbid(
        &server,
        &["CreateService"],
        &[
            "DescribeVpcs",
            "DescribeSubnets",
            "DescribeSecurityGroups",
            "CreateSecurityGroup",
        ],
    )
    .await;
    let (result, _) = run(&server, &default_network_settings()).await;
    let Ok(Outcome::Deployed(summary)) = result else {
        panic!("{result:?}");
    };
    assert_eq!(summary.service, ServiceAction::Updated);
    assert_eq!(summary.default_network, None);
    let requests = server.received_requests().await.expect("recording");
    let update = requests
        .iter()
        .find(|r| {
            r.headers
                .get("x-amz-target")
                .is_some_and(|t| t.as_bytes().ends_with(b".UpdateService"))
        })
        .expect("update request");
    let sent: Value = serde_json::from_slice(&update.body).expect("JSON body");
    assert_eq!(sent.get("networkConfiguration"), None, "{sent}");
}
