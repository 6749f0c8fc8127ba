//! Waiting for a dependency to become healthy, on the engine's events, following the agent's
//! restarts while a command waits.

use std::time::{Duration, Instant};

use super::engine::*;
use crate::container::{LABEL_SERVICE, LABEL_WORKSPACE};
use crate::docker::{Engine, WaitOutcome};
use crate::error::{Error, Result};
use crate::state;

#[derive(Debug, Clone, PartialEq)]
pub struct Healthy {
    pub service: String,
    pub container_id: String,
    /// Milliseconds from the container's start to healthy (or running, without a healthcheck).
    pub ready_ms: u64,
    /// `healthy` | `none`
    pub health: String,
}

/// What the agent did about a dependency whose container died while a command waited for it.
enum AgentAnswer {
    /// Not supervised, or no answer in time: the death fails the wait.
    None,
    Failed(Error),
    /// Restarted: wait on the service's container (a restart creates a new one) again.
    Running(String),
}

async fn agent_answer(
    root: &std::path::Path,
    service: &str,
    engine: &Engine,
    deadline: Instant,
    err_log: std::path::PathBuf,
) -> AgentAnswer {
    use crate::supervise::{Desired, Phase};
    let asked = Instant::now();
    loop {
        let Some(rec) = state::read(root, service).filter(|r| r.desired == Desired::Running) else {
            return AgentAnswer::None;
        };
        match &rec.phase {
            Phase::Failed { code, reason, .. } => {
                return AgentAnswer::Failed(crate::ready::failed_error(
                    service, &err_log, code, reason,
                ));
            }
            Phase::Backoff { .. } | Phase::Restarting { .. } => {}
            Phase::Running { .. } | Phase::Stopped => {
                // A restart creates the service's container anew: follow it by our labels.
                let labels = [
                    format!("{LABEL_WORKSPACE}={}", root.display()),
                    format!("{LABEL_SERVICE}={service}"),
                ];
                if let Some(id) = engine
                    .running_with_labels(&labels)
                    .await
                    .ok()
                    .and_then(|ids| ids.into_iter().next())
                {
                    return AgentAnswer::Running(id);
                }
                if asked.elapsed() > Duration::from_secs(5) {
                    return AgentAnswer::None;
                }
            }
        }
        if Instant::now() >= deadline {
            return AgentAnswer::None;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until the container is healthy. A timeout marks the service degraded
/// (`EXIT_DEPENDENCY_DEGRADED` with the last health output). A death is answered by the agent:
/// the wait follows its restart, fails with its give-up (`EXIT_RESTART_THRESHOLD_EXCEEDED`, or
/// the cause), or, unsupervised, fails as `EXIT_CONTAINER_FAILED`.
#[tracing::instrument(level = "debug", skip_all, fields(service = %service))]
pub async fn wait_healthy(
    workspace: &str,
    service: &str,
    container_id: &str,
    has_healthcheck: bool,
    timeout: Duration,
) -> Result<Healthy> {
    let engine = connect().await?;
    let root = std::path::Path::new(workspace);
    let deadline = Instant::now() + timeout;
    let record_failure = |err: &Error, st: &str| {
        let f = state::failure(
            service,
            st,
            err.exit_code().name(),
            &err.message(),
            true,
            chrono::Utc::now(),
        );
        state::record(root, &f);
    };
    let mut current = Some(container_id.to_string());
    loop {
        let owned = current.take().unwrap_or_default();
        let container_id = owned.as_str();
        let outcome = engine
            .wait_healthy(
                container_id,
                has_healthcheck,
                deadline.saturating_duration_since(Instant::now()),
            )
            .await
            .map_err(|e| docker_err(service, e))?;
        match outcome {
            WaitOutcome::Healthy { after } => {
                state::clear(root, service);
                return Ok(Healthy {
                    service: service.into(),
                    container_id: container_id.into(),
                    ready_ms: after.as_millis() as u64,
                    health: "healthy".into(),
                });
            }
            WaitOutcome::Running => {
                state::clear(root, service);
                let started = engine
                    .inspect(container_id)
                    .await
                    .ok()
                    .flatten()
                    .and_then(|o| o.started_at);
                return Ok(Healthy {
                    service: service.into(),
                    container_id: container_id.into(),
                    ready_ms: started
                        .and_then(|s| (chrono::Utc::now() - s).to_std().ok())
                        .map(|d| d.as_millis() as u64)
                        .unwrap_or(0),
                    health: "none".into(),
                });
            }
            WaitOutcome::Died {
                exit_code,
                last_lines,
            } => {
                let log = crate::layout::error_log(root, service);
                match agent_answer(root, service, &engine, deadline, log).await {
                    AgentAnswer::Running(id) if Instant::now() < deadline => {
                        current = Some(id);
                        continue;
                    }
                    AgentAnswer::Failed(e) => return Err(e),
                    _ => {}
                }
                let err = Error::ContainerExited {
                    service: service.into(),
                    container: container_id.into(),
                    exit_code,
                    last_lines,
                };
                record_failure(&err, "failed");
                return Err(err);
            }
            WaitOutcome::TimedOut {
                health,
                last_output,
            } => {
                let err = Error::DependencyDegraded {
                    service: service.into(),
                    container: container_id.into(),
                    waited_s: timeout.as_secs(),
                    health,
                    last_output,
                };
                record_failure(&err, "degraded");
                return Err(err);
            }
        }
    }
}
