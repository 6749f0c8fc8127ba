//! A dependency's image as `pull_policy` and `build:` say: present, built (when its context
//! changed), or pulled with progress.

use std::time::Duration;

use super::engine::*;
use crate::container::ContainerSpec;
use crate::docker::Engine;
use crate::error::{Error, Result};

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
pub(crate) async fn build_if_changed(
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

pub(crate) async fn pull_image(
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
