//! Make-before-break for a running dependency: the replacement container created beside the
//! running one, swapped in once the old one stopped, rolled back if the engine refuses it.

use super::engine::*;
use crate::container::ContainerSpec;
use crate::docker::{self, DockerError, Engine, Existing};
use crate::error::Result;

/// The name a replacement container is created under while the running one is untouched.
pub fn staged_name(name: &str) -> String {
    format!("{name}-next")
}

/// The name a replaced container keeps until its replacement has started.
pub(crate) fn replaced_name(name: &str) -> String {
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
pub(crate) async fn swap_in(
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
