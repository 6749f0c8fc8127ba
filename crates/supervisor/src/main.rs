//! `orchestrator-supervisor`: the native processes PM2 runs for a workspace, so that neither the
//! agent nor a container runner costs a Node process (~50–60 MiB and ~0.1 s of CPU to start
//! each; 30 dependencies were 30 Node processes). Both are started by the commands, never by
//! hand:
//!
//! - `orchestrator-supervisor agent`: the workspace agent (`orchestrator_runtime::agent_loop`),
//!   for the workspace in `ORCHESTRATOR_WORKSPACE`, PM2 in `PM2_HOME`.
//! - `orchestrator-supervisor runner`: one docker dependency's runner. It makes the container in
//!   `ORCHESTRATOR_CONTAINER` run (adopting one `start` created), copies its stdout/stderr to
//!   the service's logs and to ours (PM2's bus), and exits with the container's code when it
//!   stops. SIGINT/SIGTERM (pm2 stop/restart/delete) stop the container gracefully, then it
//!   exits 0. A refusal exits with its error's number, which the agent reads (a restart cannot
//!   fix an image that is unavailable).

use std::path::PathBuf;
use std::process::ExitCode;

use orchestrator_core::container::ContainerSpec;
use orchestrator_core::error::Error;
use orchestrator_runtime::{agent_loop, deps};

fn main() -> ExitCode {
    orchestrator_runtime::diagnostics::init(env!("CARGO_CRATE_NAME"));
    let mode = std::env::args().nth(1).unwrap_or_default();
    // One thread: the agent and a runner each wait on sockets; a worker pool would only cost
    // memory (compression and the alert command get tokio's blocking threads when they run).
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("orchestrator-supervisor: no async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match mode.as_str() {
        "agent" => rt.block_on(agent()),
        "runner" => rt.block_on(runner()),
        other => {
            eprintln!(
                "orchestrator-supervisor: unknown mode {other:?}: it runs as `agent` or `runner`, started by `orchestrator start` under PM2"
            );
            ExitCode::from(2)
        }
    }
}

async fn agent() -> ExitCode {
    let Some(root) = std::env::var_os("ORCHESTRATOR_WORKSPACE").map(PathBuf::from) else {
        eprintln!("[orchestrator-agent] ORCHESTRATOR_WORKSPACE is not set: the agent is started by `orchestrator start`");
        return ExitCode::from(2);
    };
    let home = orchestrator_runtime::layout::pm2_home();
    match agent_loop::serve(&root, &home).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("[orchestrator-agent] {e}");
            ExitCode::FAILURE
        }
    }
}

/// The runner's own line about `service` (`deps::runner_says`).
fn say(service: &str, text: &str) {
    deps::runner_says(&format!("{service}: {text}"));
}

/// Says why the runner stops and exits with the error's number.
fn fail(service: &str, e: Error) -> ExitCode {
    let a = e.actionable("container runner");
    say(
        service,
        &format!(
            "{} ({}): {}\n  - {}",
            a.code,
            a.exit_code,
            a.message,
            a.remediation.join("\n  - ")
        ),
    );
    ExitCode::from(u8::try_from(a.exit_code).unwrap_or(1))
}

/// The replica this runner runs: PM2 numbers a replicated service's runners
/// (`NODE_APP_INSTANCE` 0, 1, …); replica n + 1 is that runner's container.
fn this_replica(spec: ContainerSpec) -> ContainerSpec {
    let n = std::env::var("NODE_APP_INSTANCE")
        .ok()
        .and_then(|v| v.parse::<u32>().ok())
        .unwrap_or(0);
    spec.replica(n + 1)
}

async fn runner() -> ExitCode {
    use tokio::signal::unix::{signal, SignalKind};
    let service = std::env::var("ORCHESTRATOR_SERVICE").unwrap_or_else(|_| "dependency".into());
    let spec = match std::env::var("ORCHESTRATOR_CONTAINER") {
        Err(_) => {
            say(&service, "ORCHESTRATOR_CONTAINER is not set: the runner is started by `orchestrator start`, not by hand");
            return ExitCode::FAILURE;
        }
        Ok(text) => match serde_json::from_str::<ContainerSpec>(&text) {
            Ok(s) => this_replica(s),
            Err(e) => {
                say(
                    &service,
                    &format!("ORCHESTRATOR_CONTAINER is not a container spec: {e}"),
                );
                return ExitCode::FAILURE;
            }
        },
    };
    let (Ok(mut sigint), Ok(mut sigterm)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) else {
        say(&service, "could not listen for SIGINT/SIGTERM");
        return ExitCode::FAILURE;
    };
    let run_spec = spec.clone();
    let mut run = tokio::spawn(async move { deps::run(&run_spec).await });
    let signalled = tokio::select! {
        r = &mut run => return exited(&service, r),
        _ = sigint.recv() => "SIGINT",
        _ = sigterm.recv() => "SIGTERM",
    };
    say(&service, &format!("{signalled}, stopping the container"));
    if let Err(e) = deps::stop(&spec).await {
        return fail(&service, e);
    }
    // The run ends once the container has stopped and its last lines are copied.
    match run.await {
        Ok(Err(e)) => fail(&service, e),
        _ => ExitCode::SUCCESS,
    }
}

fn exited(
    service: &str,
    r: Result<orchestrator_core::error::Result<Option<i64>>, tokio::task::JoinError>,
) -> ExitCode {
    match r {
        Ok(Ok(None)) => ExitCode::SUCCESS,
        Ok(Ok(Some(code))) => {
            say(service, &format!("container exited with code {code}"));
            match code {
                0 => ExitCode::SUCCESS,
                1..=255 => ExitCode::from(code as u8),
                _ => ExitCode::FAILURE,
            }
        }
        Ok(Err(e)) => fail(service, e),
        Err(e) => {
            say(service, &format!("runner crashed: {e}"));
            ExitCode::FAILURE
        }
    }
}
