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

pub mod dashboard;
pub mod infer;
pub mod launch;
pub mod logs;
pub mod status;
pub mod verify;
pub mod watch;
pub mod why;

/// Our own diagnostics (`orchestrator_runtime::diagnostics`: `ORCHESTRATOR_LOG`).
#[napi_derive::module_init]
fn init() {
    orchestrator_runtime::diagnostics::init(env!("CARGO_CRATE_NAME"));
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

/// One PM2 process of a `PrepareRequest` (the commands that launch or stop read PM2's table
/// themselves, over its RPC socket): the DTO of the core's `pm2::Pm2Process`.
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
    /// PM2's pid file of the process (`pm_pid_path`).
    pub pid_file: Option<String>,
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
            pid_file: e.pid_file,
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
    /// Absolute path of the native `orchestrator-supervisor`, which PM2 runs as each
    /// dependency's container runner (`orchestrator-supervisor runner`).
    pub supervisor: String,
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
    /// Launching dependency steps: the container spec to hand to `ensureContainer`.
    pub container: Option<serde_json::Value>,
    /// What the step waits on while the command runs: `service` (started), `service:ready`,
    /// `service:completed` (`orchestrator_core::schedule`).
    pub waits: Vec<String>,
    /// A one-shot job: `runJob` runs its container to completion instead of PM2 launching it.
    pub job: bool,
    /// For a job: the services that wait for it to complete successfully.
    pub blocked: Vec<String>,
    /// What its compose definition asks that cannot be honoured here, `file:line: key: …`.
    pub warnings: Vec<String>,
    /// Launching steps: what the agent supervises (service, kind, profile, restart policy) as
    /// JSON, recorded before PM2 launches it.
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
        supervisor: PathBuf::from(r.supervisor),
    }
}

/// The status look at the workspace `prepare` names, every service (`dashboard`, `watch`):
/// PM2_HOME as given, else `$PM2_HOME`, else `~/.pm2`.
fn status_of(
    prepare: &step::Request,
    pm2_home: Option<String>,
) -> orchestrator_runtime::observe::StatusRequest {
    orchestrator_runtime::observe::StatusRequest {
        workspace_root: prepare.workspace_root.clone(),
        profile: prepare.profile.clone(),
        service: None,
        ecosystem: prepare.ecosystem.clone(),
        ecosystem_file: prepare.ecosystem_file.clone(),
        pm2_home: pm2_home
            .map(PathBuf::from)
            .unwrap_or_else(orchestrator_core::layout::pm2_home),
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
                waits: s.waits.iter().map(step::wait_label).collect(),
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
