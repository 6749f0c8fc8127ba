//! What every part of `deps` shares: the engine connection, the one place an engine failure
//! becomes an actionable error, and the records a failure or a refusal leaves.

use std::sync::atomic::AtomicBool;

use crate::container::ContainerSpec;
use crate::docker::{self, DockerError, Engine, Op};
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

pub(crate) fn docker_err(service: &str, e: DockerError) -> Error {
    Error::Docker {
        service: Some(service.into()),
        failure: e,
    }
}

pub(crate) fn record(spec: &ContainerSpec, err: &Error, state_name: &str, retryable: bool) {
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
pub(crate) fn name_taken(spec: &ContainerSpec, owner: Option<String>) -> Error {
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
pub(crate) fn create_failed(spec: &ContainerSpec, e: DockerError) -> Error {
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
pub(crate) fn host_holders(spec: &ContainerSpec) -> Vec<(u16, Option<ports::PortHolder>)> {
    ports::probe_ports(&spec.host_ports())
        .into_iter()
        .filter_map(|(p, s)| match s {
            PortState::Held(h) => Some((p, h)),
            PortState::Free => None,
        })
        .collect()
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
