//! `status`: the snapshot as typed objects (null, not undefined, where a value is absent, so the
//! JSON matches the contract), the table drawn from it, and `--strict`'s verdict.

use std::path::PathBuf;

use napi::bindgen_prelude::*;
use napi_derive::napi;

use crate::boundary::{self, js_error};
use orchestrator_core::status;

#[napi(object)]
pub struct StatusRequest {
    pub workspace_root: String,
    pub profile: Option<String>,
    pub service: Option<String>,
    /// The evaluated `ecosystem.config.js` export.
    pub ecosystem: serde_json::Value,
    pub ecosystem_file: String,
    /// PM2_HOME (default: `$PM2_HOME`, else `~/.pm2`).
    pub pm2_home: Option<String>,
    /// Fail with `EXIT_UNHEALTHY` when a service is failed or degraded.
    pub strict: Option<bool>,
    /// Draw the table with ANSI colours.
    pub color: Option<bool>,
    pub command: String,
}

#[napi(object, use_nullable = true)]
pub struct LastFailureView {
    /// RFC 3339 UTC.
    pub at: String,
    /// The exit-code name of the cause, e.g. `EXIT_IMAGE_UNAVAILABLE`.
    pub code: String,
    pub reason: String,
    pub exit_code: Option<i64>,
    pub signal: Option<String>,
}

#[napi(object, use_nullable = true)]
pub struct ServiceStatus {
    pub name: String,
    /// A replicated dependency's row: which replica (1-based); null otherwise.
    pub replica: Option<u32>,
    /// `app` | `dependency`
    pub kind: String,
    /// `online` | `starting` | `backoff` | `stopped` | `degraded` | `failed` | `unknown`
    pub state: String,
    /// `healthy` | `unhealthy` | `starting` | `none`
    pub health: String,
    pub pid: Option<u32>,
    pub pids: Vec<u32>,
    pub container_id: Option<String>,
    pub uptime_seconds: Option<u32>,
    pub uptime: Option<String>,
    pub restarts: u32,
    pub recent_restarts: u32,
    pub window_seconds: u32,
    pub last_failure: Option<LastFailureView>,
    pub ports: Vec<u32>,
    pub profile: Option<String>,
    pub detail: Option<String>,
    /// CPU (100 = one core) of its processes together, or of its container: since the previous
    /// look, else since it started.
    pub cpu_percent: Option<f64>,
    /// `cpuPercent` as the table shows it (`0.3%`).
    pub cpu: Option<String>,
    /// Resident memory of its processes together, or its container's (without page cache).
    pub memory_bytes: Option<i64>,
    /// `memoryBytes` as the table shows it (`42.1M`).
    pub memory: Option<String>,
    /// A cluster app's figures per process.
    pub instances: Vec<InstanceUsage>,
}

/// One process of a cluster app.
#[napi(object, use_nullable = true)]
pub struct InstanceUsage {
    pub pm_id: u32,
    pub pid: u32,
    pub cpu_percent: Option<f64>,
    pub memory_bytes: Option<i64>,
}

#[napi(object)]
pub struct StatusSnapshot {
    pub workspace: String,
    pub profile: String,
    pub generated_at: String,
    /// `online` | `not running` | `unreachable: …`
    pub pm2: String,
    /// `reachable` | `unreachable: …` | `not used`
    pub docker: String,
    pub services: Vec<ServiceStatus>,
}

#[napi(object, use_nullable = true)]
pub struct StatusReport {
    pub snapshot: StatusSnapshot,
    /// The same snapshot as a table.
    pub table: String,
    /// With `strict`: the actionable `EXIT_UNHEALTHY` error when a service is failed or
    /// degraded.
    pub unhealthy: Option<boundary::ActionableError>,
}

/// Bytes as a JS number (exact up to 2^53; i64 is what napi carries).
fn bytes(b: u64) -> i64 {
    b.min(i64::MAX as u64) as i64
}

fn to_js(s: &status::Snapshot) -> StatusSnapshot {
    StatusSnapshot {
        workspace: s.workspace.clone(),
        profile: s.profile.clone(),
        generated_at: s.generated_at.clone(),
        pm2: s.pm2.clone(),
        docker: s.docker.clone(),
        services: s
            .services
            .iter()
            .map(|r| ServiceStatus {
                name: r.name.clone(),
                replica: r.replica,
                kind: r.kind.clone(),
                state: r.state.clone(),
                health: r.health.clone(),
                pid: r.pid,
                pids: r.pids.clone(),
                container_id: r.container_id.clone(),
                uptime_seconds: r.uptime_seconds.map(|u| u.min(u32::MAX as u64) as u32),
                uptime: r.uptime.clone(),
                restarts: r.restarts,
                recent_restarts: r.recent_restarts,
                window_seconds: r.window_seconds.min(u32::MAX as u64) as u32,
                last_failure: r.last_failure.as_ref().map(|f| LastFailureView {
                    at: f.at.clone(),
                    code: f.code.clone(),
                    reason: f.reason.clone(),
                    exit_code: f.exit_code,
                    signal: f.signal.clone(),
                }),
                ports: r.ports.iter().map(|p| *p as u32).collect(),
                profile: r.profile.clone(),
                detail: r.detail.clone(),
                cpu_percent: r.cpu_percent,
                cpu: r.cpu.clone(),
                memory_bytes: r.memory_bytes.map(bytes),
                memory: r.memory.clone(),
                instances: r
                    .instances
                    .iter()
                    .map(|i| InstanceUsage {
                        pm_id: i.pm_id,
                        pid: i.pid,
                        cpu_percent: i.cpu_percent,
                        memory_bytes: i.memory_bytes.map(bytes),
                    })
                    .collect(),
            })
            .collect(),
    }
}

/// One health snapshot of every app and dependency (PM2 read over its socket, the engine, the
/// agent's records, health probes), the table drawn from it, and `--strict`'s verdict.
#[napi]
pub fn status<'env>(env: &'env Env, req: StatusRequest) -> Result<PromiseRaw<'env, StatusReport>> {
    boundary::promise(env, async move {
        let command = req.command.clone();
        let strict = req.strict.unwrap_or(false);
        let color = req.color.unwrap_or(false);
        let snapshot =
            orchestrator_runtime::observe::status(orchestrator_runtime::observe::StatusRequest {
                workspace_root: PathBuf::from(req.workspace_root),
                profile: req.profile,
                service: req.service,
                ecosystem: req.ecosystem,
                ecosystem_file: PathBuf::from(req.ecosystem_file),
                pm2_home: req
                    .pm2_home
                    .map(PathBuf::from)
                    .unwrap_or_else(orchestrator_core::layout::pm2_home),
            })
            .await
            .map_err(|e| js_error(e, &command))?;
        let unhealthy = if strict {
            orchestrator_runtime::observe::strict(&snapshot)
                .err()
                .map(|e| boundary::ActionableError::of(e, &command))
        } else {
            None
        };
        Ok(StatusReport {
            table: status::render_table(&snapshot, color),
            snapshot: to_js(&snapshot),
            unhealthy,
        })
    })
}
