//! The deploy mode's wait against a mocked AWS: a service that never stabilises (timeout,
//! "unable" events surfaced once, rollback) and a deployment ECS marks FAILED.

use std::time::Duration;

use deploy_protected::deploy::{DeployError, FinalState, WaitFailure, WaitSettings};
use serde_json::json;
use wiremock::matchers::body_partial_json;
use wiremock::MockServer;

use super::deploy_mock::*;

#[tokio::test]
async fn a_service_that_never_stabilises_times_out_and_rolls_back() {
    let server = MockServer::start().await;
    mount_sample(&server).await;
    let unable = "(service twistlock-fargate-task) was unable to place a task because no \
                  container instance met all of its requirements.";
    ecs("DescribeServices")
        .respond_with(json_ok(json!({"services": [service(
            &td_arn(1), 1, 1, &[&td_arn(1)], json!([]))], "failures": []})))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    ecs("DescribeServices")
        .respond_with(json_ok(json!({"services": [service(
            &td_arn(2), 0, 1, &[&td_arn(2), &td_arn(1)], json!([
                {"id": "e2", "createdAt": now() + 1.0, "message": unable},
                {"id": "e1", "createdAt": now() - 3600.0,
                 "message": "(service x) was unable to do an old thing."}
            ]))], "failures": []})))
        .mount(&server)
        .await;
    mount_network(&server).await;
    ecs("RegisterTaskDefinition")
        .respond_with(json_ok(json!({"taskDefinition": {
            "taskDefinitionArn": td_arn(2), "revision": 2}})))
        .expect(1)
        .mount(&server)
        .await;
    ec2("AuthorizeSecurityGroupIngress")
        .respond_with(xml_ok(authorize_xml()))
        .mount(&server)
        .await;
    ecs("UpdateService")
        .and(body_partial_json(json!({"taskDefinition": td_arn(2)})))
        .respond_with(json_ok(json!({"service": service(
            &td_arn(2), 0, 1, &[&td_arn(2), &td_arn(1)], json!([]))})))
        .expect(1)
        .mount(&server)
        .await;
    ecs("UpdateService")
        .and(body_partial_json(json!({"taskDefinition": td_arn(1)})))
        .respond_with(json_ok(json!({"service": service(
            &td_arn(1), 0, 1, &[&td_arn(1), &td_arn(2)], json!([]))})))
        .expect(1)
        .mount(&server)
        .await;
    let mut s = settings();
    s.network = None;
    s.rollback = true;
    s.wait = Some(WaitSettings {
        timeout: Duration::from_millis(300),
        poll_interval: Duration::from_millis(30),
    });
    let (result, progress) = run(&server, &s).await;
    let err = result.expect_err("never steady");
    let DeployError::NotSteady { reason, summary } = &err else {
        panic!("{err:?}");
    };
    assert_eq!(
        *reason,
        WaitFailure::Timeout {
            service: "twistlock-fargate-task".into(),
            timeout: Duration::from_millis(300),
            status: "running 0/1, pending 1, 2 deployments, rollout IN_PROGRESS".into(),
            rolled_back_to: Some(td_arn(1)),
        }
    );
    assert_eq!(summary.final_state, FinalState::TimedOut);
    assert_eq!(summary.rolled_back_to, Some(td_arn(1)));
    assert_eq!(summary.events, vec![unable.to_string()]);
    assert_eq!(err.exit_code(), 1);
    assert_eq!(progress.matches("service event:").count(), 1, "{progress}");
    assert!(progress.contains(&format!(
        "rolled service twistlock-fargate-task back to {}",
        td_arn(1)
    )));
    // Polled several times, every few tens of milliseconds.
    let polls = actions_called(&server.received_requests().await.expect("recording"))
        .iter()
        .filter(|a| *a == "ecs:DescribeServices")
        .count();
    assert!((4..=15).contains(&polls), "{polls} polls");
}

#[tokio::test]
async fn a_failed_deployment_ends_the_wait_and_rolls_back() {
    let server = MockServer::start().await;
    mount_sample(&server).await;
    ecs("DescribeServices")
        .respond_with(json_ok(json!({"services": [service(
            &td_arn(1), 1, 1, &[&td_arn(1)], json!([]))], "failures": []})))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    let mut failed = service(&td_arn(2), 0, 1, &[&td_arn(2), &td_arn(1)], json!([]));
    failed["deployments"][0]["rolloutState"] = json!("FAILED");
    failed["deployments"][0]["rolloutStateReason"] =
        json!("ECS deployment circuit breaker: tasks failed to start.");
    ecs("DescribeServices")
        .respond_with(json_ok(json!({"services": [failed], "failures": []})))
        .expect(1)
        .mount(&server)
        .await;
    ecs("RegisterTaskDefinition")
        .respond_with(json_ok(
            json!({"taskDefinition": {"taskDefinitionArn": td_arn(2)}}),
        ))
        .mount(&server)
        .await;
    ec2("AuthorizeSecurityGroupIngress")
        .respond_with(xml_ok(authorize_xml()))
        .mount(&server)
        .await;
    ecs("UpdateService")
        .and(body_partial_json(json!({"taskDefinition": td_arn(2)})))
        .respond_with(json_ok(json!({"service": service(
            &td_arn(2), 0, 1, &[&td_arn(2), &td_arn(1)], json!([]))})))
        .expect(1)
        .mount(&server)
        .await;
    ecs("UpdateService")
        .and(body_partial_json(json!({"taskDefinition": td_arn(1)})))
        .respond_with(json_ok(json!({"service": service(
            &td_arn(1), 0, 1, &[&td_arn(1)], json!([]))})))
        .expect(1)
        .mount(&server)
        .await;
    let mut s = settings();
    s.network = None;
    s.rollback = true;
    let (result, _) = run(&server, &s).await;
    let err = result.expect_err("failed deployment");
    assert_eq!(
        err.to_string(),
        format!(
            "deployment of service `twistlock-fargate-task` failed: ECS deployment circuit \
             breaker: tasks failed to start.; rolled back to {}",
            td_arn(1)
        )
    );
    assert_eq!(
        err.summary().map(|s| s.final_state),
        Some(FinalState::Failed)
    );
    assert_eq!(err.exit_code(), 1);
}
