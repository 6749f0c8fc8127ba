//! Docker-backed dependencies, composed from the typed client: ensure the image (pull with
//! progress), ensure the container (adopt or recreate), run it under PM2 (forward its output,
//! exit with its code), stop it, wait for healthy. Engine failures become the actionable errors of
//! the exit-code table here, once.

pub mod engine;
pub mod health;
pub mod image;
pub mod replace;

pub use engine::*;
pub use health::*;
pub use image::*;
pub use replace::*;

use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::container::{ContainerSpec, LABEL_SERVICE, LABEL_WORKSPACE};
use crate::docker::{self, Existing};
use crate::error::{Error, Result};
use crate::state;

/// The container runs with this spec: adopted when ours, running and identical; otherwise the
/// staged replacement ([`stage`]) swapped in, or (re)created and started. Refusals are
/// `EXIT_CONTAINER_FAILED` with the engine's status and message, naming host processes that
/// hold a published port.
#[tracing::instrument(level = "debug", skip_all, fields(service = %spec.service, container = %spec.name))]
pub async fn ensure_container(
    spec: &ContainerSpec,
    fresh: bool,
    progress: &mut (dyn FnMut(&str) + Send),
) -> Result<docker::Running> {
    let engine = connect().await?;
    let (image_hc, pulled) = ensure_image(&engine, spec, fresh, progress)
        .await
        .inspect_err(|e| record(spec, e, "failed", false))?;
    let seen = engine
        .inspect(&spec.name)
        .await
        .map_err(|e| docker_err(&spec.service, e))?;
    let has_healthcheck = spec.has_healthcheck(image_hc);
    let failed = |err: Error| {
        // A missing external resource stays missing until someone creates it.
        let retryable = !matches!(err, Error::ExternalMissing { .. });
        record(spec, &err, "failed", retryable);
        err
    };
    let id = match docker::decide_existing(spec, seen.as_ref()) {
        Existing::Adopt => {
            let o = seen.clone().unwrap_or_default();
            return Ok(docker::Running {
                id: o.id,
                name: spec.name.clone(),
                image: spec.image.clone(),
                adopted: true,
                started_at: o.started_at,
                has_healthcheck,
                pulled,
                host_ports: o.host_ports.clone(),
            });
        }
        Existing::Foreign(owner) => return Err(name_taken(spec, owner)),
        Existing::Absent | Existing::Recreate => {
            let staged = engine
                .inspect(&staged_name(&spec.name))
                .await
                .map_err(|e| docker_err(&spec.service, e))?
                .filter(|s| {
                    s.workspace.as_deref() == Some(spec.workspace.as_str())
                        && !s.running
                        && s.hash.as_deref() == Some(spec.config_hash().as_str())
                });
            match staged {
                Some(s) => swap_in(&engine, spec, &s, seen.as_ref())
                    .await
                    .map_err(|e| {
                        record_refusal(spec, &e);
                        e.kept()
                    })?,
                None => engine
                    .create_and_start(spec, seen.as_ref())
                    .await
                    .map_err(|e| failed(create_failed(spec, e)))?,
            }
        }
    };
    let o = engine
        .inspect(&id)
        .await
        .map_err(|e| docker_err(&spec.service, e))?
        .unwrap_or_default();
    Ok(docker::Running {
        id,
        name: spec.name.clone(),
        image: spec.image.clone(),
        adopted: false,
        started_at: o.started_at,
        has_healthcheck,
        pulled,
        host_ports: o.host_ports.clone(),
    })
}

/// What a one-shot job did.
pub struct JobReport {
    pub id: String,
    pub exit_code: i64,
}

/// A one-shot job (some service waits on it with `service_completed_successfully`): runs its
/// container to completion in the command — not supervised, not under PM2 — writes its output to
/// the service's log files, and checks its exit code. A non-zero exit is `JobFailed` with its
/// last lines and the services it blocks (`blocked`); it is recorded as the service's failure.
#[tracing::instrument(level = "debug", skip_all, fields(service = %spec.service, container = %spec.name))]
pub async fn run_job(
    spec: &ContainerSpec,
    blocked: &[String],
    progress: &mut (dyn FnMut(&str) + Send),
) -> Result<JobReport> {
    let engine = connect().await?;
    ensure_image(&engine, spec, true, progress)
        .await
        .inspect_err(|e| record(spec, e, "failed", false))?;
    let seen = engine
        .inspect(&spec.name)
        .await
        .map_err(|e| docker_err(&spec.service, e))?;
    let id = match docker::decide_existing(spec, seen.as_ref()) {
        // The same job still running (another command started it): wait for that run.
        Existing::Adopt => seen.clone().unwrap_or_default().id,
        Existing::Foreign(owner) => return Err(name_taken(spec, owner)),
        Existing::Absent | Existing::Recreate => engine
            .create_and_start(spec, seen.as_ref())
            .await
            .map_err(|e| create_failed(spec, e))?,
    };
    progress(&format!(
        "running one-shot job {} to completion",
        spec.service
    ));
    let code = engine
        .wait_exit(&id)
        .await
        .map_err(|e| docker_err(&spec.service, e))?;
    // Its whole output into the service's files, with the engine's timestamps.
    let logs = crate::layout::log_dir(std::path::Path::new(&spec.workspace), &spec.service);
    let lines = engine.all_logs(&id).await;
    let mut out = crate::sink::Sink::open(logs.join("out.log"));
    let mut err = crate::sink::Sink::open(logs.join("error.log"));
    for (is_err, line) in &lines {
        let text = format!("{line}\n");
        if *is_err {
            err.write(text.as_bytes());
        } else {
            out.write(text.as_bytes());
        }
    }
    let root = std::path::Path::new(&spec.workspace);
    if code != 0 {
        let last: Vec<String> = lines
            .iter()
            .rev()
            .take(20)
            .rev()
            .map(|(_, l)| {
                crate::logs::line::parse_ts(l)
                    .map(|(_, rest)| rest.to_string())
                    .unwrap_or_else(|| l.clone())
            })
            .collect();
        let e = Error::JobFailed {
            service: spec.service.clone(),
            exit_code: code,
            last_lines: last,
            blocked: blocked.to_vec(),
        };
        record(spec, &e, "failed", false);
        return Err(e);
    }
    state::clear(root, &spec.service);
    Ok(JobReport {
        id,
        exit_code: code,
    })
}

/// One line of the container runner's own (`[orchestrator] <line>`), timestamped like the
/// container's, into the service's error.log through the sink (PM2's files for the runner are
/// /dev/null: its writer drops queued lines at a rotation) and on stderr for PM2's bus.
pub fn runner_says(line: &str) {
    let stamped = crate::logs::line::stamp(&format!("[orchestrator] {line}"), chrono::Utc::now());
    crate::sink::write(true, &format!("{stamped}\n"));
}

/// The runner's life: ensure the container, copy its output to ours until it stops, and return
/// its exit code. `None` when a stop was requested (the caller exits 0).
#[tracing::instrument(level = "debug", skip_all, fields(service = %spec.service, container = %spec.name))]
pub async fn run(spec: &ContainerSpec) -> Result<Option<i64>> {
    let say = |line: String| runner_says(&line);
    let mut progress = |line: &str| runner_says(line);
    let running = ensure_container(spec, false, &mut progress).await?;
    say(format!(
        "{} container {} ({}) {}",
        spec.service,
        &running.id[..12.min(running.id.len())],
        spec.image,
        if running.adopted {
            "adopted"
        } else {
            "started"
        }
    ));
    let engine = connect().await?;
    if STOP_REQUESTED.load(Ordering::SeqCst) {
        if let Err(e) = engine
            .stop(&running.id, Some(spec.stop_timeout_seconds))
            .await
        {
            tracing::warn!(service = %spec.service, error = %e, "could not stop the container on the way out");
        }
        return Ok(None);
    }
    let logs = {
        let engine = engine.clone();
        let id = running.id.clone();
        tokio::spawn(async move { engine.forward_logs(&id).await })
    };
    let code = engine
        .wait_exit(&running.id)
        .await
        .map_err(|e| docker_err(&spec.service, e))?;
    // Let the log stream drain what the container wrote last.
    if tokio::time::timeout(Duration::from_secs(2), logs)
        .await
        .is_err()
    {
        tracing::debug!(service = %spec.service, "its log stream did not end within 2 s of the exit");
    }
    if STOP_REQUESTED.load(Ordering::SeqCst) {
        return Ok(None);
    }
    Ok(Some(code))
}

/// Stops the spec's container gracefully (its stop timeout), for the runner's signal handler.
#[tracing::instrument(level = "debug", skip_all, fields(service = %spec.service, container = %spec.name))]
pub async fn stop(spec: &ContainerSpec) -> Result<()> {
    STOP_REQUESTED.store(true, Ordering::SeqCst);
    let engine = connect().await?;
    engine
        .stop(&spec.name, Some(spec.stop_timeout_seconds))
        .await
        .map_err(|e| docker_err(&spec.service, e))
}

/// Stops every running container of this workspace's `service` (by label), e.g. one a killed
/// runner left behind. Returns the ids it stopped.
#[tracing::instrument(level = "debug", skip_all, fields(service = %service))]
pub async fn stop_labelled(workspace: &str, service: &str) -> Result<Vec<String>> {
    let engine = connect().await?;
    let labels = vec![
        format!("{LABEL_WORKSPACE}={workspace}"),
        format!("{LABEL_SERVICE}={service}"),
    ];
    let ids = engine
        .running_with_labels(&labels)
        .await
        .map_err(|e| docker_err(service, e))?;
    for id in &ids {
        engine
            .stop(id, None)
            .await
            .map_err(|e| docker_err(service, e))?;
    }
    Ok(ids)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_conflicts_are_recognised_in_engine_messages() {
        assert!(is_port_conflict("driver failed programming external connectivity on endpoint x: Bind for 0.0.0.0:5432 failed: port is already allocated"));
        assert!(is_port_conflict(
            "Error starting userland proxy: listen tcp4 0.0.0.0:5432: bind: address already in use"
        ));
        assert!(!is_port_conflict("invalid mount config for type \"bind\""));
    }
}
