//! Our own wait for a steady state (the SDK waiter polls no faster than every 15 s): poll
//! DescribeServices until the service has one deployment, runs the target revision and has
//! running = desired; surface new service events that say "unable".

use std::collections::HashSet;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use aws_sdk_ecs::types::{DeploymentRolloutState, Service};

use super::aws::{AwsCallError, AwsClients};
use super::progress::{Progress, WaitStatus};

/// How long and how often to poll.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WaitSettings {
    /// Give up after this long (`--wait-timeout`, default 10 minutes).
    pub timeout: Duration,
    /// Time between two DescribeServices calls (default 5 s).
    pub poll_interval: Duration,
}

impl Default for WaitSettings {
    fn default() -> Self {
        WaitSettings {
            timeout: Duration::from_secs(600),
            poll_interval: Duration::from_secs(5),
        }
    }
}

/// How the wait ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum WaitOutcome {
    /// One deployment, on the target revision, running = desired.
    Steady(WaitStatus),
    /// The limit passed; the last status seen.
    TimedOut(WaitStatus),
    /// ECS marked the primary deployment FAILED, with its reason.
    Failed(String),
    /// The service is gone.
    Vanished,
}

/// The wait's outcome and the service events surfaced on the way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct WaitReport {
    pub outcome: WaitOutcome,
    pub events: Vec<String>,
}

/// The status of a described service.
pub(crate) fn status_of(service: &Service) -> WaitStatus {
    let primary = service
        .deployments()
        .iter()
        .find(|d| d.status() == Some("PRIMARY"));
    WaitStatus {
        running: service.running_count(),
        desired: service.desired_count(),
        pending: service.pending_count(),
        deployments: service.deployments().len(),
        rollout: primary
            .and_then(|d| d.rollout_state())
            .map(|r| r.as_str().to_string()),
    }
}

fn is_steady(service: &Service, target: &str, status: &WaitStatus) -> bool {
    status.deployments <= 1
        && service.task_definition() == Some(target)
        && status.running == status.desired
        && status.pending == 0
}

/// Polls until steady, failed or out of time.
pub(crate) async fn wait_for_steady(
    clients: &AwsClients,
    cluster: &str,
    service_name: &str,
    target: &str,
    settings: WaitSettings,
    progress: &mut dyn Progress,
) -> Result<WaitReport, AwsCallError> {
    let start = Instant::now();
    // Events older than the deployment are history, not news (a second of slack for clocks).
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64() - 1.0)
        .unwrap_or(0.0);
    let mut seen = HashSet::new();
    let mut events = Vec::new();
    loop {
        let Some(service) = clients.describe_service(cluster, service_name).await? else {
            return Ok(WaitReport {
                outcome: WaitOutcome::Vanished,
                events,
            });
        };
        for event in service.events().iter().rev() {
            let message = event.message().unwrap_or_default();
            let recent = event.created_at().is_none_or(|t| t.as_secs_f64() >= since);
            let key = event.id().unwrap_or(message).to_string();
            if recent && message.to_ascii_lowercase().contains("unable") && seen.insert(key) {
                progress.event(message);
                events.push(message.to_string());
            }
        }
        let status = status_of(&service);
        progress.status(&status);
        if is_steady(&service, target, &status) {
            return Ok(WaitReport {
                outcome: WaitOutcome::Steady(status),
                events,
            });
        }
        let failed = service
            .deployments()
            .iter()
            .find(|d| d.status() == Some("PRIMARY"))
            .filter(|d| d.rollout_state() == Some(&DeploymentRolloutState::Failed));
        if let Some(primary) = failed {
            let reason = primary
                .rollout_state_reason()
                .unwrap_or("rollout state FAILED")
                .to_string();
            return Ok(WaitReport {
                outcome: WaitOutcome::Failed(reason),
                events,
            });
        }
        let elapsed = start.elapsed();
        if elapsed >= settings.timeout {
            return Ok(WaitReport {
                outcome: WaitOutcome::TimedOut(status),
                events,
            });
        }
        tokio::time::sleep(settings.poll_interval.min(settings.timeout - elapsed)).await;
    }
}
