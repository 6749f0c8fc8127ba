//! Docker-backed dependencies, composed from the typed client: ensure the image (pull with
//! progress), ensure the container (adopt or recreate), run it under PM2 (forward its output,
//! exit with its code), stop it, wait for healthy. Engine failures become the actionable errors of
//! the exit-code table here, once.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::container::{ContainerSpec, LABEL_SERVICE, LABEL_WORKSPACE};
use crate::docker::{self, DockerError, Engine, Existing, Op, WaitOutcome};
use crate::error::{Error, Result};
use crate::ports::{self, PortState};
use crate::state;

/// Set by `stop()` in the runner, so a start still in flight gives up instead of leaving a
/// container behind.
pub static STOP_REQUESTED: AtomicBool = AtomicBool::new(false);

pub async fn connect() -> Result<Engine> {
    let engine = Engine::connect()
        .await
        .map_err(|e| Error::EngineUnreachable {
            host: docker::host(),
            cause: e.message.clone(),
        })?;
    if !engine.api_ok() {
        return Err(Error::Prerequisite {
            tool: "Docker Engine API".into(),
            found: Some(engine.api_version.clone()),
            minimum: format!("{}.{}", docker::MIN_API.0, docker::MIN_API.1),
            remediation:
                "Upgrade the Docker engine to 20.10 or newer (Debian 12: apt-get install docker.io)"
                    .into(),
        });
    }
    Ok(engine)
}

fn docker_err(service: &str, e: DockerError) -> Error {
    Error::Docker {
        service: Some(service.into()),
        failure: e,
    }
}

fn record(spec: &ContainerSpec, err: &Error, state_name: &str, retryable: bool) {
    let f = state::failure(
        &spec.service,
        state_name,
        err.exit_code().name(),
        &err.message(),
        retryable,
        chrono::Utc::now(),
    );
    state::record(std::path::Path::new(&spec.workspace), &f);
}

/// The container name is another workspace's (or not the orchestrator's): `EXIT_CONTAINER_FAILED`.
fn name_taken(spec: &ContainerSpec, owner: Option<String>) -> Error {
    Error::ContainerFailed {
        service: spec.service.clone(),
        failure: DockerError {
            op: Op::Create,
            target: spec.name.clone(),
            status: Some(409),
            message: format!(
                "the container name \"{}\" is already in use by a container {}",
                spec.name,
                match owner {
                    Some(w) => format!("of another workspace ({w})"),
                    None => "the orchestrator did not create".into(),
                }
            ),
        },
        holders: Vec::new(),
    }
}

/// An engine refusal to create or start: a missing external volume or network, or the
/// engine's own verdict (with the host processes holding a published port, when that was it).
fn create_failed(spec: &ContainerSpec, e: DockerError) -> Error {
    match e.missing_external() {
        Some((kind, name)) => Error::ExternalMissing {
            service: spec.service.clone(),
            kind,
            name: name.to_string(),
        },
        None => {
            let holders = if is_port_conflict(&e.message) {
                host_holders(spec)
                    .into_iter()
                    .filter(|(_, h)| {
                        h.as_ref()
                            .is_none_or(|h| !h.command.contains("docker-proxy"))
                    })
                    .collect()
            } else {
                Vec::new()
            };
            Error::ContainerFailed {
                service: spec.service.clone(),
                failure: e,
                holders,
            }
        }
    }
}

/// Pure: does an engine refusal name a port conflict?
pub fn is_port_conflict(message: &str) -> bool {
    let m = message.to_lowercase();
    m.contains("port is already allocated") || m.contains("address already in use")
}

/// Host processes (not our own containers' proxies) holding the spec's published ports.
fn host_holders(spec: &ContainerSpec) -> Vec<(u16, Option<ports::PortHolder>)> {
    ports::probe_ports(&spec.host_ports())
        .into_iter()
        .filter_map(|(p, s)| match s {
            PortState::Held(h) => Some((p, h)),
            PortState::Free => None,
        })
        .collect()
}

/// The image, as `pull_policy` and `build:` say (`fresh`: a command's start or restart, as
/// `docker compose up`); built or pulled with progress lines to `progress`. A failure is
/// `EXIT_IMAGE_UNAVAILABLE`; the caller records it ([`record_refusal`] or as `failed`).
#[tracing::instrument(level = "debug", skip_all, fields(service = %spec.service, container = %spec.name))]
pub async fn ensure_image(
    engine: &Engine,
    spec: &ContainerSpec,
    fresh: bool,
    progress: &mut (dyn FnMut(&str) + Send),
) -> Result<(bool, bool)> {
    // The runner (started by PM2 after the command, or by the agent's restart) uses the image
    // that is there: the command built or pulled it for this plan, and a context edited since
    // must not be built behind the user's back (only an absent image is obtained again).
    if !fresh {
        if let Some(hc) = engine
            .image_healthcheck(&spec.image)
            .await
            .map_err(|e| docker_err(&spec.service, e))?
        {
            return Ok((hc, false));
        }
    }
    if let Some(b) = &spec.build {
        if spec.pull_policy != "always" {
            return build_if_changed(engine, spec, b, progress).await;
        }
    }
    let present = engine
        .image_healthcheck(&spec.image)
        .await
        .map_err(|e| docker_err(&spec.service, e))?;
    if spec.pull_policy == "never" && present.is_none() {
        return Err(Error::ImageUnavailable {
            service: spec.service.clone(),
            image: spec.image.clone(),
            cause: "it is not present locally and its pull_policy is `never`".into(),
        });
    }
    if spec.pull_policy == "always" {
        return pull_image(engine, spec, progress).await;
    }
    if let Some(hc) = engine
        .image_healthcheck(&spec.image)
        .await
        .map_err(|e| docker_err(&spec.service, e))?
    {
        return Ok((hc, false));
    }
    pull_image(engine, spec, progress).await
}

/// `build:`: the image is built when absent, when `pull_policy: build`, or when its context or
/// settings changed since we built it (the context hash label differs); an image of that name
/// we did not build is used as it is (pull_policy `missing`). Builder errors are
/// `EXIT_IMAGE_UNAVAILABLE` with the builder's message.
async fn build_if_changed(
    engine: &Engine,
    spec: &ContainerSpec,
    b: &crate::compose::Build,
    progress: &mut (dyn FnMut(&str) + Send),
) -> Result<(bool, bool)> {
    let fail = |cause: String| Error::ImageUnavailable {
        service: spec.service.clone(),
        image: spec.image.clone(),
        cause,
    };
    let hash = crate::build::context_hash(b, &spec.image).map_err(|e| {
        fail(format!(
            "cannot read the build context {}: {e}",
            b.context.display()
        ))
    })?;
    let seen = engine
        .image_context_hash(&spec.image)
        .await
        .map_err(|e| docker_err(&spec.service, e))?;
    let needed = match &seen {
        None => true,
        Some(_) if spec.pull_policy == "build" => true,
        Some(Some(h)) => h != &hash,
        Some(None) => false,
    };
    if needed {
        progress(&format!(
            "building {} from {}",
            spec.image,
            b.remote
                .clone()
                .unwrap_or_else(|| b.context.display().to_string())
        ));
        engine
            .build(&spec.image, b, &hash, progress)
            .await
            .map_err(|e| fail(format!("the build failed: {}", e.message)))?;
        progress(&format!("built {}", spec.image));
    }
    let hc = engine
        .image_healthcheck(&spec.image)
        .await
        .map_err(|e| docker_err(&spec.service, e))?
        .unwrap_or(false);
    Ok((hc, false))
}

async fn pull_image(
    engine: &Engine,
    spec: &ContainerSpec,
    progress: &mut (dyn FnMut(&str) + Send),
) -> Result<(bool, bool)> {
    progress(&format!("pulling {} for {}", spec.image, spec.service));
    let mut attempt = 0;
    loop {
        attempt += 1;
        match engine.pull(&spec.image, progress).await {
            Ok(()) => break,
            // A broken connection is worth exactly one more try; the engine's verdict is not.
            Err(e) if e.is_transient() && attempt < 2 => {
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            Err(e) => {
                return Err(Error::ImageUnavailable {
                    service: spec.service.clone(),
                    image: spec.image.clone(),
                    cause: e.message,
                });
            }
        }
    }
    let hc = engine
        .image_healthcheck(&spec.image)
        .await
        .map_err(|e| docker_err(&spec.service, e))?
        .unwrap_or(false);
    progress(&format!("pulled {}", spec.image));
    Ok((hc, true))
}

/// Records a failure that left the running service as it was: a restart, switch or deploy that
/// was refused before (or rolled back after) the running container was touched. The service
/// stays online; `status` shows the refusal as its last failure until the next launch.
pub fn record_refusal(spec: &ContainerSpec, err: &Error) {
    let f = state::refusal(
        &spec.service,
        err.exit_code().name(),
        &err.message(),
        chrono::Utc::now(),
    );
    state::record(std::path::Path::new(&spec.workspace), &f);
}

/// Records a failure of a service that was not running (a start): `failed`, not retried.
pub fn record_failure(spec: &ContainerSpec, err: &Error) {
    record(spec, err, "failed", false);
}

/// The name a replacement container is created under while the running one is untouched.
pub fn staged_name(name: &str) -> String {
    format!("{name}-next")
}

/// The name a replaced container keeps until its replacement has started.
fn replaced_name(name: &str) -> String {
    format!("{name}-prev")
}

/// Make-before-break, first half. While the service's container runs, the replacement a
/// restart, switch or deploy creates is created, not started, under [`staged_name`]: the engine
/// checks the whole configuration (image, mounts, devices, networks, resources) now, and a
/// refusal leaves the running container untouched. Returns whether a container is staged; none
/// is when nothing of ours runs under that name.
#[tracing::instrument(level = "debug", skip_all, fields(service = %spec.service, container = %spec.name))]
pub async fn stage(spec: &ContainerSpec) -> Result<bool> {
    let engine = connect().await?;
    let seen = engine
        .inspect(&spec.name)
        .await
        .map_err(|e| docker_err(&spec.service, e))?;
    let old = match docker::decide_existing(spec, seen.as_ref()) {
        Existing::Foreign(owner) => return Err(name_taken(spec, owner)),
        Existing::Adopt | Existing::Recreate if seen.as_ref().is_some_and(|o| o.running) => {
            seen.unwrap_or_default()
        }
        _ => return Ok(false),
    };
    let staged = staged_name(&spec.name);
    if let Some(s) = engine
        .inspect(&staged)
        .await
        .map_err(|e| docker_err(&spec.service, e))?
    {
        let ours = s.workspace.as_deref() == Some(spec.workspace.as_str());
        if ours && !s.running && s.hash.as_deref() == Some(spec.config_hash().as_str()) {
            return Ok(true);
        }
        if !ours {
            return Err(name_taken(
                &ContainerSpec {
                    name: staged,
                    ..spec.clone()
                },
                s.workspace,
            ));
        }
        engine
            .remove(&s.id)
            .await
            .map_err(|e| docker_err(&spec.service, e))?;
    }
    engine
        .create(spec, &staged, &old.anonymous_volumes)
        .await
        .map_err(|e| create_failed(spec, e))?;
    Ok(true)
}

/// Removes a staged replacement (a later step of the command was refused).
#[tracing::instrument(level = "debug", skip_all, fields(service = %spec.service, container = %spec.name))]
pub async fn unstage(spec: &ContainerSpec) -> Result<()> {
    let engine = connect().await?;
    engine
        .remove(&staged_name(&spec.name))
        .await
        .map_err(|e| docker_err(&spec.service, e))
}

/// Make-before-break, second half, once the runner has stopped the old container: the staged
/// replacement takes the service's name and starts; the old one is removed only then. If the
/// engine refuses to start it (a port another process took meanwhile), the replacement is
/// removed and the old container runs again under its name, and the refusal is returned.
#[tracing::instrument(level = "debug", skip_all, fields(service = %spec.service, container = %spec.name))]
async fn swap_in(
    engine: &Engine,
    spec: &ContainerSpec,
    staged: &docker::Observed,
    old: Option<&docker::Observed>,
) -> Result<String> {
    let de = |e: DockerError| docker_err(&spec.service, e);
    if let Some(o) = old {
        engine
            .remove(&replaced_name(&spec.name))
            .await
            .map_err(de)?;
        engine
            .rename(&o.id, &replaced_name(&spec.name))
            .await
            .map_err(de)?;
    }
    let started = match engine.rename(&staged.id, &spec.name).await {
        Ok(()) => engine.start(&staged.id, &spec.name).await,
        Err(e) => Err(e),
    };
    match started {
        Ok(()) => {
            if let Some(o) = old {
                engine.remove(&o.id).await.map_err(de)?;
            }
            Ok(staged.id.clone())
        }
        Err(e) => {
            let err = create_failed(spec, e);
            tracing::warn!(service = %spec.service, "the replacement did not start; restoring the previous container");
            if let Err(e) = engine.remove(&staged.id).await {
                tracing::warn!(service = %spec.service, error = %e, "could not remove the replacement");
            }
            if let Some(o) = old {
                engine.rename(&o.id, &spec.name).await.map_err(de)?;
                if let Err(e) = engine.start(&o.id, &spec.name).await {
                    // The runner, restarted with its old definition, starts it again.
                    tracing::warn!(service = %spec.service, error = %e, "could not start the previous container again");
                }
            }
            Err(err)
        }
    }
}

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

/// The runner's life: ensure the container, copy its output to ours until it stops, and return
/// its exit code. `None` when a stop was requested (the caller exits 0).
#[tracing::instrument(level = "debug", skip_all, fields(service = %spec.service, container = %spec.name))]
pub async fn run(spec: &ContainerSpec) -> Result<Option<i64>> {
    // The runner's own lines go to its stderr file, timestamped like the container's.
    let say = |line: String| {
        crate::sink::write(
            true,
            &format!(
                "{}\n",
                crate::logs::line::stamp(&format!("[orchestrator] {line}"), chrono::Utc::now())
            ),
        )
    };
    let mut progress = |line: &str| say(line.to_string());
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
