//! The agent's exports: `lib/agent.js` hands over what PM2 reports and carries out the restarts
//! these return; the commands mark explicit starts and stops. Every decision is the runtime's
//! (`orchestrator_runtime::agent`).

use std::path::Path;

use napi::bindgen_prelude::*;
use napi_derive::napi;

use super::Pm2Entry;
use crate::boundary::{self, js_error};
use orchestrator_core::pm2::Pm2Process;

/// PM2's name for the workspace's agent.
#[napi]
pub fn agent_name(workspace_root: String, workspace_name: String) -> String {
    orchestrator_runtime::agent::agent_name(Path::new(&workspace_root), &workspace_name)
}

/// Answers an exit on PM2's bus (the process as the event describes it; `pm2Home`: whose log
/// says the signal); the events written (one line each in events.jsonl) are returned.
#[napi]
pub fn agent_exit(
    env: &Env,
    workspace_root: String,
    process: Pm2Entry,
    pm2_home: Option<String>,
) -> Result<Vec<serde_json::Value>> {
    boundary::sync(env, || {
        let e = orchestrator_runtime::agent::ExitEvent {
            process: process.into(),
            pm2_home,
        };
        orchestrator_runtime::agent::on_exit(Path::new(&workspace_root), &e, chrono::Utc::now())
            .map(|o| o.events)
            .map_err(|err| js_error(err, "orchestrator agent"))
    })
}

#[napi(object)]
pub struct AgentRestart {
    pub service: String,
    pub pm_ids: Vec<String>,
}

#[napi(object)]
pub struct AgentTick {
    /// Restart these instances now (`pm2 restart <pm_id>`), then tick again.
    pub restart: Vec<AgentRestart>,
    /// Look again within this many ms at the latest (absent: only on the next event).
    pub wake_in_ms: Option<u32>,
}

/// What the agent remembers between its looks at PM2, and the decisions that take more than
/// one look (`agent::Watch`): the JS side only subscribes to PM2's bus and calls PM2.
#[napi]
pub struct AgentWatch {
    inner: orchestrator_runtime::agent::Watch,
}

impl Default for AgentWatch {
    fn default() -> Self {
        Self::new()
    }
}

#[napi]
impl AgentWatch {
    #[napi(constructor)]
    pub fn new() -> Self {
        AgentWatch {
            inner: orchestrator_runtime::agent::Watch::default(),
        }
    }

    /// Reconciles the records with PM2's table (`agent::tick`), answering exits seen only in
    /// the table once the two-look rule confirms them.
    #[napi]
    pub fn tick(
        &mut self,
        env: &Env,
        workspace_root: String,
        instances: Vec<Pm2Entry>,
    ) -> Result<AgentTick> {
        boundary::sync(env, || {
            let list: Vec<Pm2Process> = instances.into_iter().map(Into::into).collect();
            let confirmed = self.inner.confirm(&list);
            let t = orchestrator_runtime::agent::tick(
                Path::new(&workspace_root),
                &list,
                confirmed,
                chrono::Utc::now(),
            )
            .map_err(|e| js_error(e, "orchestrator agent"))?;
            Ok(AgentTick {
                restart: t
                    .restart
                    .into_iter()
                    .map(|(service, pm_ids)| AgentRestart { service, pm_ids })
                    .collect(),
                wake_in_ms: t
                    .wake_in
                    .map(|d| d.as_millis().min(u32::MAX as u128) as u32),
            })
        })
    }

    /// A process of PM2's exited, stopped or was deleted (a `process:event` on the bus).
    #[napi]
    pub fn exit_seen(&mut self) {
        self.inner.exit_seen(chrono::Utc::now());
    }

    /// Whether PM2 may reopen its log files now (`agent::Watch::may_reopen`), given the
    /// statuses in its table.
    #[napi]
    pub fn may_reopen(&self, statuses: Vec<String>) -> bool {
        self.inner
            .may_reopen(statuses.iter().map(String::as_str), chrono::Utc::now())
    }
}

/// The agent started: its pid file is written.
#[napi]
pub fn agent_started(env: &Env, workspace_root: String, pid: u32) -> Result<()> {
    boundary::sync(env, || {
        orchestrator_runtime::agent::started(Path::new(&workspace_root), pid)
            .map_err(|e| js_error(e, "orchestrator agent"))
    })
}

/// PM2 refused a restart the agent asked for: counted like a crash.
#[napi]
pub fn agent_restart_failed(
    env: &Env,
    workspace_root: String,
    service: String,
    message: String,
) -> Result<()> {
    boundary::sync(env, || {
        orchestrator_runtime::agent::restart_failed(
            Path::new(&workspace_root),
            &service,
            &message,
            chrono::Utc::now(),
        )
        .map_err(|e| js_error(e, "orchestrator agent"))
    })
}

/// Whether the service is still meant to run (a stop may have come while the agent restarted it).
#[napi]
pub fn agent_wanted(workspace_root: String, service: String) -> bool {
    orchestrator_runtime::state::read(Path::new(&workspace_root), &service)
        .is_some_and(|r| r.desired == orchestrator_core::supervise::Desired::Running)
}

/// Log rotation and retention for the whole workspace (`rotate.rs`): returns whether live files
/// were renamed, in which case PM2 must reopen its logs before `agentCompress`.
#[napi]
pub fn agent_rotate(env: &Env, workspace_root: String) -> Result<bool> {
    boundary::sync(env, || {
        let root = Path::new(&workspace_root);
        let cfg = orchestrator_core::config::load_plugin_config(root)
            .map_err(|e| js_error(e, "orchestrator agent"))?;
        let policy = orchestrator_core::rotate::policy(
            cfg.logs.as_ref(),
            &orchestrator_core::config::nx_json_path(root),
        )
        .map_err(|e| js_error(e, "orchestrator agent"))?;
        let pass = orchestrator_runtime::rotation::run(
            &orchestrator_core::layout::logs_root(root),
            chrono::Utc::now(),
            &policy,
        );
        for d in &pass.done {
            println!(
                "{} rotate: {d}",
                chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
            );
        }
        Ok(pass.reopen)
    })
}

/// Compresses rotated files their writer has let go of (off the JS thread).
#[napi]
pub fn agent_compress<'env>(
    env: &'env Env,
    workspace_root: String,
) -> Result<PromiseRaw<'env, u32>> {
    boundary::promise(env, async move {
        let dir = orchestrator_core::layout::logs_root(Path::new(&workspace_root));
        let done = tokio::task::spawn_blocking(move || {
            orchestrator_runtime::rotation::compress_ready(&dir)
        })
        .await
        .map_err(|e| Error::from_reason(e.to_string()))?;
        for d in &done {
            println!(
                "{} rotate: {d}",
                chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
            );
        }
        Ok(done.len() as u32)
    })
}
