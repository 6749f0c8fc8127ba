//! The container runner's exports (`lib/runner.js`, which PM2 runs for each dependency): its
//! container made to run and followed, its own log lines, its graceful stop. `spec` is the JSON
//! text of a plan step's `container` (JSON text keeps 64-bit durations exact). The command's
//! side (images, staging, jobs, health waits) is `orchestrator_runtime::launch`'s.

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
