//! `dashboard`: the live terminal view (`orchestrator_runtime::dashboard`), in Rust as Nx's own
//! terminal UI is. The promise settles when the user quits (`q`, Ctrl-C) or a signal ends it;
//! the terminal is restored either way. Not a terminal: one status table, printed.

use napi::bindgen_prelude::*;
use napi_derive::napi;

use crate::boundary::{self, js_error};
use crate::{status_of, to_request, PrepareRequest};

/// The dashboard of the workspace `req` names (its services, profile and ecosystem, as a start
/// would see them). `pm2Home` defaults to `$PM2_HOME`, else `~/.pm2`. `cli` is the CLI as argv
/// (`[node, bin]`): start, stop and restart run it, exactly as a user would. `color`: false
/// under `NO_COLOR`.
#[napi(ts_args_type = "req: PrepareRequest, pm2Home: string | null, cli: string[], color: boolean")]
pub fn dashboard<'env>(
    env: &'env Env,
    req: PrepareRequest,
    pm2_home: Option<String>,
    cli: Vec<String>,
    color: bool,
) -> Result<PromiseRaw<'env, ()>> {
    boundary::promise(env, async move {
        let command = req.command.clone();
        let prepare = to_request(req);
        let status = status_of(&prepare, pm2_home);
        orchestrator_runtime::dashboard::run(orchestrator_runtime::dashboard::DashboardRequest {
            status,
            prepare,
            cli,
            color,
        })
        .await
        .map_err(|e| js_error(e, &command))
    })
}

/// Ends the running dashboard as `q` does (the terminal restored). The JS side calls it from its
/// SIGTERM, SIGINT and SIGHUP handlers.
#[napi(js_name = "dashboardQuit")]
pub fn dashboard_quit() {
    orchestrator_runtime::dashboard::quit();
}
