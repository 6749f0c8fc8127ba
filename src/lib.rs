//! The napi binding, the top crate of three (docs/architecture.md, "Crates"): plain-object DTOs,
//! conversions in one place, and thin exports that delegate to `orchestrator_runtime` (I/O) and
//! `orchestrator_core` (pure decisions). Errors cross as JS errors with the fields of
//! DESIGN §3's actionable error as properties (`boundary.rs`).

use std::path::PathBuf;
use std::time::Duration;

use napi::bindgen_prelude::*;
use napi_derive::napi;

use orchestrator_core::exit::ExitCode;
use orchestrator_core::pm2::Pm2Process;
use orchestrator_runtime::{ops, step};

mod boundary;
use boundary::{js_error, Outcome};

pub mod agent;
pub mod deps;
pub mod infer;
pub mod logs;
pub mod status;
pub mod verify;

/// Our own diagnostics: nothing unless `ORCHESTRATOR_LOG` names a filter (`debug`,
/// `orchestrator_runtime::deps=trace`, … as tracing's `EnvFilter` reads it). Spans of the
/// plan, the engine calls and the waits then go to stderr with their durations; names of
/// services, containers and images only, never an env value.
#[napi_derive::module_init]
fn init() {
    let Ok(filter) = std::env::var("ORCHESTRATOR_LOG") else {
        return;
    };
    // A bare level is ours only (our three crates): other crates' diagnostics (an HTTP
    // client's, say) could carry what we never print.
    let scoped = if filter.contains('=') {
        filter.clone()
    } else {
        let level = filter.trim();
        format!(
            "orchestrator_core={level},orchestrator_runtime={level},{}={level}",
            env!("CARGO_CRATE_NAME")
        )
    };
    match tracing_subscriber::EnvFilter::try_new(&scoped) {
        Ok(f) => {
            tracing_subscriber::fmt()
                .with_env_filter(f)
                .with_writer(std::io::stderr)
                .with_ansi(false)
                .with_span_events(tracing_subscriber::fmt::format::FmtSpan::CLOSE)
                .try_init()
                .ok();
        }
        Err(e) => eprintln!(
            "orchestrator: ORCHESTRATOR_LOG={filter:?} is not a filter ({e}); no diagnostics"
        ),
    }
}

#[napi(object)]
pub struct ExitCodeInfo {
    pub name: String,
    pub code: i32,
}

/// The exit-code table (names and numbers are a contract).
#[napi]
pub fn exit_codes() -> Vec<ExitCodeInfo> {
    ExitCode::ALL
        .iter()
        .map(|c| ExitCodeInfo {
            name: c.name().into(),
            code: c.number(),
        })
        .collect()
}

/// One PM2 process as the JS side reads it (`pm2.list()`, or an exit on PM2's bus): the DTO of
/// the core's `pm2::Pm2Process`, for the plans, the readiness wait and the agent alike.
#[napi(object)]
#[derive(Clone)]
pub struct Pm2Entry {
    pub name: String,
    pub pm_id: u32,
    pub pid: Option<u32>,
    /// PM2's status; in an exit event `stopping` when a stop/restart/delete was asked for.
    pub status: String,
    /// `ORCHESTRATOR_WORKSPACE` from the entry's env, when we started it.
    pub workspace: Option<String>,
    pub profile: Option<String>,
    pub kind: Option<String>,
    /// `ORCHESTRATOR_ENV_KEYS` and `ORCHESTRATOR_UNSET` from the entry's env (comma-separated).
    pub env_keys: Option<String>,
    pub unset: Option<String>,
    /// PM2's `pm_uptime`: when the process started (ms since the epoch).
    pub started_ms: Option<f64>,
    /// How its last process ended.
    pub exit_code: Option<f64>,
}

impl From<Pm2Entry> for Pm2Process {
    fn from(e: Pm2Entry) -> Self {
        Pm2Process {
            name: e.name,
            pm_id: e.pm_id,
            pid: e.pid,
            status: e.status,
            workspace: e.workspace,
            profile: e.profile,
            kind: e.kind,
            started_ms: e.started_ms.map(|v| v as i64),
            exit_code: e.exit_code.map(|v| v as i64),
            env: orchestrator_core::pm2::LaunchedEnv::parse(
                e.env_keys.as_deref(),
                e.unset.as_deref(),
            ),
            ..Default::default()
        }
    }
}

#[napi(object)]
pub struct PrepareRequest {
    pub workspace_root: String,
    /// Absent means `development` (for `restart`: the profile the service runs under).
    pub profile: Option<String>,
    /// Explicit services; empty means the default set (or every service with `all`).
    pub services: Option<Vec<String>>,
    pub all: Option<bool>,
    /// The evaluated `ecosystem.config.js` export.
    pub ecosystem: serde_json::Value,
    pub ecosystem_file: String,
    pub pm2: Vec<Pm2Entry>,
    pub node_version: String,
    /// `null` when PM2 cannot be resolved.
    pub pm2_version: Option<String>,
    /// The command as the user typed it, for error messages.
    pub command: String,
    /// Select every docker dependency instead of `services`.
    pub dependencies: Option<bool>,
    /// Absolute path of the container runner script (`lib/runner.js`).
    pub runner_script: String,
}

#[napi(object)]
pub struct ReadySpec {
    pub service: String,
    pub ports: Vec<u32>,
    pub health_http: Option<String>,
    pub health_tcp: Option<String>,
    pub timeout_ms: u32,
    pub error_log: String,
    /// Filled by the caller after the launch: the pids PM2 reports for the service.
    pub pids: Option<Vec<u32>>,
    /// PM2's pid files of the service's instances (`pm_pid_path`), re-read while waiting so a
    /// restart by the agent is followed.
    pub pid_files: Option<Vec<String>>,
    /// Dependencies: the container to wait on (from `ensureContainer`), filled by the caller.
    pub container_id: Option<String>,
    pub has_healthcheck: Option<bool>,
    pub workspace: Option<String>,
}

#[napi(object)]
pub struct PlanStep {
    pub service: String,
    /// `app` | `dependency`
    pub kind: String,
    /// `start` | `replace` | `keep` | `reload` | `restart` | `stop` | `already-stopped`
    pub action: String,
    pub profile: String,
    /// A profile switch: the profile the service ran under until this step.
    pub switched_from: Option<String>,
    /// The step replaces something of ours that runs: its image is obtained and its
    /// replacement container staged before it is touched, and a refusal leaves it running.
    pub replacing: bool,
    /// PM2 app definition for launching actions (env resolved, metadata attached).
    pub app: Option<serde_json::Value>,
    pub ports: Vec<u32>,
    /// `installed` | `up-to-date` | `not-needed`, for launching actions.
    pub install: Option<String>,
    /// What readiness means for this step, for launching actions.
    pub ready: Option<ReadySpec>,
    /// Launching dependency steps: the container spec to hand to `ensureContainer`.
    pub container: Option<serde_json::Value>,
    /// Wait for this step to be ready before carrying out the next ones (dependencies).
    pub gate: bool,
    /// A one-shot job: `runJob` runs its container to completion instead of PM2 launching it.
    pub job: bool,
    /// For a job: the services that wait for it to complete successfully.
    pub blocked: Vec<String>,
    /// What its compose definition asks that cannot be honoured here, `file:line: key: …`.
    pub warnings: Vec<String>,
    /// Launching steps: what the agent supervises (service, kind, profile, restart policy) as
    /// JSON, handed to `markLaunched` before PM2 launches it.
    pub supervision: Option<String>,
}

#[napi(object)]
pub struct Plan {
    pub workspace_root: String,
    pub workspace_name: String,
    pub profile: String,
    pub steps: Vec<PlanStep>,
    /// The PM2 name of this workspace's agent.
    pub agent_name: String,
}

fn to_request(r: PrepareRequest) -> step::Request {
    step::Request {
        workspace_root: PathBuf::from(r.workspace_root),
        profile: r.profile,
        services: r.services.unwrap_or_default(),
        all: r.all.unwrap_or(false),
        ecosystem: r.ecosystem,
        ecosystem_file: PathBuf::from(r.ecosystem_file),
        pm2: r.pm2.into_iter().map(Into::into).collect(),
        node_version: r.node_version,
        pm2_version: r.pm2_version,
        dependencies: r.dependencies.unwrap_or(false),
        runner_script: PathBuf::from(r.runner_script),
    }
}

fn to_plan(p: step::Plan) -> Plan {
    let workspace_root = p.workspace_root.display().to_string();
    Plan {
        workspace_root: workspace_root.clone(),
        agent_name: orchestrator_runtime::agent::agent_name(&p.workspace_root, &p.workspace_name),
        workspace_name: p.workspace_name,
        profile: p.profile,
        steps: p
            .steps
            .into_iter()
            .map(|s| PlanStep {
                kind: s.kind.as_str().into(),
                action: s.action.as_str().into(),
                profile: s.profile.clone(),
                switched_from: s.switched_from.clone(),
                replacing: s.replacing,
                app: s.app.clone(),
                ports: s.ports.iter().map(|p| *p as u32).collect(),
                install: s.install.map(|i| i.as_str().into()),
                ready: (s.action.launches() && !s.job).then(|| ReadySpec {
                    service: s.service.clone(),
                    ports: s.ports.iter().map(|p| *p as u32).collect(),
                    health_http: s.health_http.clone(),
                    health_tcp: s.health_tcp.clone(),
                    timeout_ms: s.ready_timeout_ms.min(u32::MAX as u64) as u32,
                    error_log: s.error_log.display().to_string(),
                    pids: None,
                    pid_files: None,
                    container_id: None,
                    has_healthcheck: None,
                    workspace: Some(workspace_root.clone()),
                }),
                gate: s.kind == orchestrator_core::catalog::Kind::Dependency
                    && s.action.launches()
                    && !s.job,
                job: s.job,
                blocked: s.blocked.clone(),
                warnings: s.warnings.clone(),
                container: s
                    .container
                    .as_ref()
                    .and_then(|c| serde_json::to_value(c).ok()),
                supervision: s
                    .launch
                    .as_ref()
                    .and_then(|l| serde_json::to_string(l).ok()),
                service: s.service,
            })
            .collect(),
    }
}

async fn prepare(verb: step::Verb, req: PrepareRequest) -> Outcome<Plan> {
    let command = req.command.clone();
    ops::prepare(verb, to_request(req))
        .await
        .map(to_plan)
        .map_err(|e| js_error(e, &command))
}

/// Guards + plan for `start` (idempotent), then installs what launching services need.
#[napi]
pub fn prepare_start<'env>(env: &'env Env, req: PrepareRequest) -> Result<PromiseRaw<'env, Plan>> {
    boundary::promise(env, async move { prepare(step::Verb::Start, req).await })
}

/// Guards + plan for `restart`: cluster apps reload with zero downtime, fork apps restart.
#[napi]
pub fn prepare_restart<'env>(
    env: &'env Env,
    req: PrepareRequest,
) -> Result<PromiseRaw<'env, Plan>> {
    boundary::promise(env, async move { prepare(step::Verb::Restart, req).await })
}

/// Guards + plan for `deploy` (after `verify`): dependencies started if needed, apps restarted
/// under the profile (cluster apps reload with zero downtime).
#[napi]
pub fn prepare_deploy<'env>(env: &'env Env, req: PrepareRequest) -> Result<PromiseRaw<'env, Plan>> {
    boundary::promise(env, async move { prepare(step::Verb::Deploy, req).await })
}

/// Plan for `stop`: only this workspace's entries are touched.
#[napi]
pub fn prepare_stop<'env>(env: &'env Env, req: PrepareRequest) -> Result<PromiseRaw<'env, Plan>> {
    boundary::promise(env, async move { prepare(step::Verb::Stop, req).await })
}

#[napi(object)]
pub struct ReadyReport {
    pub service: String,
    /// Apps: from launch to ready. Dependencies: from container start to healthy.
    pub ready_ms: u32,
    pub container_id: Option<String>,
    /// Dependencies: `healthy`, or `none` without a healthcheck.
    pub health: Option<String>,
}

fn ms(v: u64) -> u32 {
    v.min(u32::MAX as u64) as u32
}

/// Waits until every target is ready: apps when their ports listen and their health probe
/// answers while their pids live; dependencies when Docker reports their container healthy
/// (engine events, not polling). A dependency that times out is marked degraded.
#[napi]
pub fn wait_ready<'env>(
    env: &'env Env,
    targets: Vec<ReadySpec>,
    command: String,
) -> Result<PromiseRaw<'env, Vec<ReadyReport>>> {
    boundary::promise(env, async move {
        let (deps, apps): (Vec<ReadySpec>, Vec<ReadySpec>) =
            targets.into_iter().partition(|t| t.container_id.is_some());
        let apps = apps
            .into_iter()
            .map(|t| orchestrator_runtime::ready::ReadyTarget {
                service: t.service,
                ports: t
                    .ports
                    .iter()
                    .filter_map(|p| u16::try_from(*p).ok())
                    .collect(),
                health_http: t.health_http,
                health_tcp: t.health_tcp,
                pids: t.pids.unwrap_or_default(),
                pid_files: t
                    .pid_files
                    .unwrap_or_default()
                    .into_iter()
                    .map(PathBuf::from)
                    .collect(),
                workspace: t.workspace.as_ref().map(PathBuf::from),
                timeout: Duration::from_millis(t.timeout_ms as u64),
                error_log: PathBuf::from(t.error_log),
            })
            .collect();
        let dep_waits = deps.into_iter().map(|t| async move {
            orchestrator_runtime::deps::wait_healthy(
                t.workspace.as_deref().unwrap_or_default(),
                &t.service,
                t.container_id.as_deref().unwrap_or_default(),
                t.has_healthcheck.unwrap_or(true),
                Duration::from_millis(t.timeout_ms as u64),
            )
            .await
        });
        let (app_res, dep_res) = tokio::join!(
            orchestrator_runtime::ready::wait_ready(apps),
            futures_util::future::try_join_all(dep_waits)
        );
        let dep_res = dep_res.map_err(|e| js_error(e, &command))?;
        let app_res = app_res.map_err(|e| js_error(e, &command))?;
        let mut out: Vec<ReadyReport> = dep_res
            .into_iter()
            .map(|h| ReadyReport {
                service: h.service,
                ready_ms: ms(h.ready_ms),
                container_id: Some(h.container_id),
                health: Some(h.health),
            })
            .collect();
        out.extend(app_res.into_iter().map(|r| ReadyReport {
            service: r.service,
            ready_ms: ms(r.ready_ms),
            container_id: None,
            health: None,
        }));
        Ok(out)
    })
}

#[napi(object)]
pub struct ServiceRequest {
    pub workspace_root: String,
    pub profile: Option<String>,
    pub service: String,
    pub ecosystem: serde_json::Value,
    pub ecosystem_file: String,
    pub command: String,
}

fn to_service_request(r: ServiceRequest) -> ops::ServiceRequest {
    ops::ServiceRequest {
        workspace_root: PathBuf::from(r.workspace_root),
        profile: r.profile,
        service: r.service,
        ecosystem: r.ecosystem,
        ecosystem_file: PathBuf::from(r.ecosystem_file),
    }
}

#[napi(object)]
pub struct SetupReport {
    pub service: String,
    pub profile: String,
    /// `installed` | `up-to-date` | `not-needed`
    pub install: String,
    pub ran_setup_script: bool,
}

/// Installs an app's dependencies (idempotent), checks its env, runs its `setup` script if any.
#[napi]
pub fn setup_service<'env>(
    env: &'env Env,
    req: ServiceRequest,
) -> Result<PromiseRaw<'env, SetupReport>> {
    boundary::promise(env, async move {
        let command = req.command.clone();
        ops::setup(to_service_request(req))
            .await
            .map(|r| SetupReport {
                service: r.service,
                profile: r.profile,
                install: r.install.as_str().into(),
                ran_setup_script: r.ran_setup_script,
            })
            .map_err(|e| js_error(e, &command))
    })
}

/// Runs an app's `test` script with the profile's env loaded. Resolves to the profile used.
#[napi]
pub fn test_service<'env>(env: &'env Env, req: ServiceRequest) -> Result<PromiseRaw<'env, String>> {
    boundary::promise(env, async move {
        let command = req.command.clone();
        ops::test(to_service_request(req))
            .await
            .map_err(|e| js_error(e, &command))
    })
}

/// The workspace lock; `release()` it in a `finally`. The kernel releases it if the process dies.
#[napi]
pub struct WorkspaceLock {
    inner: Option<orchestrator_runtime::lock::WorkspaceLock>,
}

#[napi]
impl WorkspaceLock {
    #[napi]
    pub fn release(&mut self) {
        if let Some(mut l) = self.inner.take() {
            l.release();
        }
    }
}

/// Takes the workspace lock, waiting up to `timeoutMs` for another command to finish.
#[napi]
pub fn acquire_lock<'env>(
    env: &'env Env,
    workspace_root: String,
    timeout_ms: u32,
    command: String,
) -> Result<PromiseRaw<'env, WorkspaceLock>> {
    boundary::promise(env, async move {
        let root = PathBuf::from(workspace_root);
        let res = tokio::task::spawn_blocking(move || {
            orchestrator_runtime::lock::acquire(&root, Duration::from_millis(timeout_ms as u64))
        })
        .await
        .map_err(|e| Error::from_reason(e.to_string()))?;
        res.map(|l| WorkspaceLock { inner: Some(l) })
            .map_err(|e| js_error(e, &command))
    })
}

/// Validates a service or profile name (no path tricks); throws `EXIT_USAGE` otherwise.
#[napi]
pub fn validate_name(env: &Env, name: String, what: String, command: String) -> Result<()> {
    boundary::sync(env, || {
        orchestrator_core::names::validate_name(&name, &what).map_err(|e| js_error(e, &command))
    })
}

#[napi(object)]
pub struct SelectRequest {
    pub workspace_root: String,
    pub services: Option<Vec<String>>,
    pub all: Option<bool>,
    pub ecosystem: serde_json::Value,
    pub ecosystem_file: String,
    pub command: String,
}

#[napi(object)]
pub struct ServiceInfo {
    pub name: String,
    /// `app` | `dependency`
    pub kind: String,
}

/// The services a command acts on: the named ones (validated), else the default set, or every
/// service with `all`.
#[napi]
pub fn select_services(env: &Env, req: SelectRequest) -> Result<Vec<ServiceInfo>> {
    boundary::sync(env, || {
        let root = PathBuf::from(&req.workspace_root);
        let cat = orchestrator_core::catalog::load(
            &root,
            &req.ecosystem,
            &PathBuf::from(&req.ecosystem_file),
        )
        .map_err(|e| js_error(e, &req.command))?;
        let selected = cat
            .select(&req.services.unwrap_or_default(), req.all.unwrap_or(false))
            .map_err(|e| js_error(e, &req.command))?;
        Ok(selected
            .into_iter()
            .map(|s| ServiceInfo {
                name: s.name.clone(),
                kind: s.kind.as_str().into(),
            })
            .collect())
    })
}

/// Checks node and PM2 against the supported minimums; throws `EXIT_PREREQUISITE` otherwise.
/// Called before PM2 is loaded, so an old or missing PM2 is reported instead of crashing.
#[napi]
pub fn check_prerequisites(
    env: &Env,
    workspace_root: String,
    node_version: String,
    pm2_version: Option<String>,
    command: String,
) -> Result<()> {
    boundary::sync(env, || {
        orchestrator_runtime::prereq::check_node_and_pm2(
            &node_version,
            pm2_version.as_deref(),
            std::path::Path::new(&workspace_root),
        )
        .map_err(|e| js_error(e, &command))
    })
}
