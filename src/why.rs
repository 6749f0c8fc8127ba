//! `why <service>`: why a service is not up (`orchestrator_runtime::why`), as the JSON object
//! and the text the CLI prints.

use std::path::PathBuf;

use napi::bindgen_prelude::*;
use napi_derive::napi;

use crate::boundary::{self, js_error};
use crate::{to_request, PrepareRequest};

/// Why `service` is not up: the chain of what it waits on and each blocker's state, what a start
/// would refuse now, the health output, who holds its ports, its last lines and what to do. `req`
/// is the request a start would make (its services are replaced by `service`); `pm2Home`
/// defaults to `$PM2_HOME`, else `~/.pm2`. Nothing is started, installed or recorded.
#[napi(
    ts_args_type = "req: PrepareRequest, service: string, pm2Home: string | null",
    ts_return_type = "Promise<{ why: { service: string; kind: string; state: string; health: string; up: boolean; summary: string; blockers: Array<{ service: string; neededBy: string; needs: 'started' | 'ready' | 'completed'; required: boolean; state: string; health: string; met: boolean; detail: string | null; lastFailure: { at: string; code: string; reason: string; exitCode: number | null; signal: string | null } | null }>; refusal: { code: string; exitCode: number; message: string; remediation: string[] } | null; healthOutput: string | null; ports: Array<{ port: number; heldBy: string | null }>; lastFailure: { at: string; code: string; reason: string; exitCode: number | null; signal: string | null } | null; logTail: string[]; remediation: string[] }; text: string }>"
)]
pub fn why<'env>(
    env: &'env Env,
    req: PrepareRequest,
    service: String,
    pm2_home: Option<String>,
) -> Result<PromiseRaw<'env, serde_json::Value>> {
    boundary::promise(env, async move {
        let command = req.command.clone();
        let home = pm2_home
            .map(PathBuf::from)
            .unwrap_or_else(orchestrator_core::layout::pm2_home);
        let w = orchestrator_runtime::why::why(&service, to_request(req), &home)
            .await
            .map_err(|e| js_error(e, &command))?;
        let text = orchestrator_core::why::render(&w);
        let why = serde_json::to_value(&w).map_err(|e| Error::from_reason(e.to_string()))?;
        Ok(serde_json::json!({ "why": why, "text": text }))
    })
}
