//! The dependencies' exports: a container made to run (image, adoption or creation), one-shot
//! jobs, make-before-break (images first, a replacement staged beside the running container),
//! and the container runner's own calls. `spec` is the JSON text of a plan step's `container`
//! (JSON text keeps 64-bit durations exact).

use napi::bindgen_prelude::*;
use napi_derive::napi;

use crate::boundary::{self, js_error, Outcome};
use orchestrator_core::error::Error as CoreError;

fn parse_spec(spec: &str, command: &str) -> Outcome<orchestrator_core::container::ContainerSpec> {
    serde_json::from_str(spec).map_err(|e| {
        js_error(
            CoreError::Usage {
                message: format!("not a container spec: {e}"),
                remediation: "Pass the `container` of a plan step from prepareStart/prepareRestart"
                    .into(),
            },
            command,
        )
    })
}

#[napi(object)]
pub struct ContainerReport {
    pub service: String,
    pub id: String,
    pub name: String,
    pub image: String,
    /// A running container with the same configuration was kept.
    pub adopted: bool,
    /// The image was pulled for this start.
    pub pulled: bool,
    pub has_healthcheck: bool,
    pub ports: Vec<u32>,
}

/// Makes a dependency's container run: image present (pulled with progress on stderr), then
/// adopted when identical and running, else (re)created and started. `spec` is the JSON text of
/// a plan step's `container` (JSON text keeps 64-bit durations exact). Engine refusals throw
/// `EXIT_IMAGE_UNAVAILABLE` / `EXIT_CONTAINER_FAILED` / `EXIT_PREREQUISITE`.
#[napi]
pub fn ensure_container<'env>(
    env: &'env Env,
    spec: String,
    command: String,
) -> Result<PromiseRaw<'env, ContainerReport>> {
    boundary::promise(env, async move {
        let spec = parse_spec(&spec, &command)?;
        let mut progress = |line: &str| eprintln!("{}: {line}", spec.service);
        // Every replica's container (the first is the one the health wait follows). The image was
        // obtained by `ensureImage` before anything running was stopped.
        let mut reports = Vec::new();
        for replica in spec.replicas() {
            reports.push(
                orchestrator_runtime::deps::ensure_container(&replica, false, &mut progress)
                    .await
                    .map_err(|e| js_error(e, &command))?,
            );
        }
        let mut r = reports.remove(0);
        for other in reports {
            r.host_ports.extend(other.host_ports);
        }
        Ok(ContainerReport {
            service: spec.service.clone(),
            id: r.id,
            name: r.name,
            image: r.image,
            adopted: r.adopted,
            pulled: r.pulled,
            has_healthcheck: r.has_healthcheck,
            ports: r.host_ports.iter().map(|p| *p as u32).collect(),
        })
    })
}

#[napi(object)]
pub struct JobResult {
    pub service: String,
    pub id: String,
    pub exit_code: i64,
}

/// Runs a one-shot job's container to completion (a plan step with `job`), its output into the
/// service's log files; throws `EXIT_CONTAINER_FAILED` with its last lines when it exits non-zero.
#[napi]
pub fn run_job<'env>(
    env: &'env Env,
    spec: String,
    blocked: Vec<String>,
    command: String,
) -> Result<PromiseRaw<'env, JobResult>> {
    boundary::promise(env, async move {
        let spec = parse_spec(&spec, &command)?;
        let mut progress = |line: &str| eprintln!("{}: {line}", spec.service);
        let r = orchestrator_runtime::deps::run_job(&spec, &blocked, &mut progress)
            .await
            .map_err(|e| js_error(e, &command))?;
        Ok(JobResult {
            service: spec.service.clone(),
            id: r.id,
            exit_code: r.exit_code,
        })
    })
}

#[napi(object)]
pub struct ImageReport {
    pub image: String,
    /// Pulled (or built) by this call.
    pub pulled: bool,
}

/// A dependency's image as `pull_policy` and `build:` say (pulled or built with progress on
/// stderr) — called before the running service is stopped, so that a failed pull or build leaves
/// it running. Throws `EXIT_IMAGE_UNAVAILABLE` with the cause; with `replacing` (the step
/// replaces a running service) the failure is recorded as a refusal, and the service stays
/// online in `status`.
#[napi]
pub fn ensure_image<'env>(
    env: &'env Env,
    spec: String,
    replacing: bool,
    command: String,
) -> Result<PromiseRaw<'env, ImageReport>> {
    boundary::promise(env, async move {
        let spec = parse_spec(&spec, &command)?;
        let mut progress = |line: &str| eprintln!("{}: {line}", spec.service);
        let engine = orchestrator_runtime::deps::connect()
            .await
            .map_err(|e| js_error(e, &command))?;
        let (_, pulled) =
            orchestrator_runtime::deps::ensure_image(&engine, &spec, true, &mut progress)
                .await
                .map_err(|e| {
                    if replacing {
                        orchestrator_runtime::deps::record_refusal(&spec, &e);
                        js_error(e.kept(), &command)
                    } else {
                        orchestrator_runtime::deps::record_failure(&spec, &e);
                        js_error(e, &command)
                    }
                })?;
        Ok(ImageReport {
            image: spec.image.clone(),
            pulled,
        })
    })
}

/// Make-before-break: while a dependency's container still runs, creates (does not start) the
/// replacement with the step's configuration for every replica, so the engine's verdict on it
/// comes before anything is stopped. Resolves with whether any replacement was staged; a refusal
/// is recorded as such and leaves the running containers untouched.
#[napi]
pub fn stage_container<'env>(
    env: &'env Env,
    spec: String,
    command: String,
) -> Result<PromiseRaw<'env, bool>> {
    boundary::promise(env, async move {
        let spec = parse_spec(&spec, &command)?;
        let mut staged = false;
        for replica in spec.replicas() {
            staged |= orchestrator_runtime::deps::stage(&replica)
                .await
                .map_err(|e| {
                    orchestrator_runtime::deps::record_refusal(&replica, &e);
                    js_error(e.kept(), &command)
                })?;
        }
        Ok(staged)
    })
}

/// Removes what `stageContainer` created (a later check of the same command refused).
#[napi(ts_return_type = "Promise<void>")]
pub fn unstage_container<'env>(
    env: &'env Env,
    spec: String,
    command: String,
) -> Result<PromiseRaw<'env, ()>> {
    boundary::promise(env, async move {
        let spec = parse_spec(&spec, &command)?;
        for replica in spec.replicas() {
            orchestrator_runtime::deps::unstage(&replica)
                .await
                .map_err(|e| js_error(e, &command))?;
        }
        Ok(())
    })
}

/// A runner's own replica: PM2 numbers the instances of a replicated service's runner
/// (`NODE_APP_INSTANCE` 0, 1, …); replica n + 1 is that runner's container.
fn this_replica(
    spec: orchestrator_core::container::ContainerSpec,
) -> orchestrator_core::container::ContainerSpec {
    let n = std::env::var("NODE_APP_INSTANCE")
        .ok()
        .and_then(|v| v.parse::<u32>().ok())
        .unwrap_or(0);
    spec.replica(n + 1)
}

/// The container runner's main call: ensures the container, forwards its stdout/stderr to this
/// process's, resolves with its exit code once it stops, or `null` after `stopContainer`.
#[napi(ts_return_type = "Promise<number | null>")]
pub fn run_container<'env>(env: &'env Env, spec: String) -> Result<PromiseRaw<'env, Option<i64>>> {
    boundary::promise(env, async move {
        let spec = this_replica(parse_spec(&spec, "container runner")?);
        orchestrator_runtime::deps::run(&spec)
            .await
            .map_err(|e| js_error(e, &format!("runner of {}", spec.service)))
    })
}

/// One of the runner's own lines (already stamped, with its newline): to the service's error.log
/// through the same sink as the container's stderr (the runtime's `sink`), and to stderr for
/// PM2's bus.
#[napi]
pub fn runner_say(line: String) {
    orchestrator_runtime::sink::write(true, &line);
}

/// The runner's SIGINT/SIGTERM: stops the container gracefully with its stop timeout.
#[napi(ts_return_type = "Promise<void>")]
pub fn stop_container<'env>(env: &'env Env, spec: String) -> Result<PromiseRaw<'env, ()>> {
    boundary::promise(env, async move {
        let command = "container runner";
        let spec = this_replica(parse_spec(&spec, command)?);
        orchestrator_runtime::deps::stop(&spec)
            .await
            .map_err(|e| js_error(e, command))
    })
}

/// Stops every running container of a workspace's dependency (by label), e.g. one left behind
/// by a runner that was killed. Resolves with the ids it stopped.
#[napi]
pub fn stop_dependency<'env>(
    env: &'env Env,
    workspace_root: String,
    service: String,
    command: String,
) -> Result<PromiseRaw<'env, Vec<String>>> {
    boundary::promise(env, async move {
        orchestrator_runtime::deps::stop_labelled(&workspace_root, &service)
            .await
            .map_err(|e| js_error(e, &command))
    })
}
