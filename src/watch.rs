//! `watch`: the development loop (`orchestrator_runtime::watch`). The promise settles when a
//! signal ends it (`watchQuit`); the services keep running. Its lines (one per cycle) go to
//! stdout as they come.

use std::sync::Arc;

use napi::bindgen_prelude::*;
use napi_derive::napi;

use crate::boundary::{self, js_error};
use crate::{status_of, to_request, PrepareRequest};

/// Watches the workspace `req` names (its services and ecosystem, as a start would see them).
/// `pm2Home` defaults to `$PM2_HOME`, else `~/.pm2`. `cli` is the CLI as argv (`[node, bin]`):
/// a cycle's reload runs its `restart`, exactly as a user would.
#[napi(ts_args_type = "req: PrepareRequest, pm2Home: string | null, cli: string[]")]
pub fn watch<'env>(
    env: &'env Env,
    req: PrepareRequest,
    pm2_home: Option<String>,
    cli: Vec<String>,
) -> Result<PromiseRaw<'env, ()>> {
    boundary::promise(env, async move {
        let command = req.command.clone();
        let status = status_of(&to_request(req), pm2_home);
        orchestrator_runtime::watch::run(orchestrator_runtime::watch::WatchRequest {
            status,
            cli,
            report: Arc::new(|line: &str| println!("{line}")),
        })
        .await
        .map_err(|e| js_error(e, &command))
    })
}

/// Ends the running watch (a build in progress is stopped; a reload finishes first). The JS
/// side calls it from its SIGTERM, SIGINT and SIGHUP handlers.
#[napi(js_name = "watchQuit")]
pub fn watch_quit() {
    orchestrator_runtime::watch::quit();
}
