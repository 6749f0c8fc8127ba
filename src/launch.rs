//! The commands that change what runs (`start`, `restart`, `deploy`, `stop`), whole: the plan,
//! then `orchestrator_runtime::launch` carries it out. PM2's table and its calls by id go to its
//! RPC socket (`Pm2Socket`); the calls that need its client's configuration steps (a start, a
//! restart with a new definition, a reload) go to the JS side, whose programmatic API is a JS
//! library: the command hands over `act` (one PM2 call; resolves with `null`, or PM2's message
//! when it failed), which the runtime calls from its own threads through a threadsafe function.

use std::path::PathBuf;

use napi::bindgen_prelude::*;
use napi::threadsafe_function::ThreadsafeFunction;
use napi_derive::napi;

use orchestrator_core::pm2::Pm2Process;
use orchestrator_runtime::launch::{self, BoxFuture, Pm2Call};
use orchestrator_runtime::pm2_socket::{Client, Pm2Socket};
use orchestrator_runtime::{ops, step};

use crate::boundary::{self, js_error, Outcome};
use crate::{to_request, PrepareRequest};

#[napi(object)]
pub struct LaunchOptions {
    /// The native `orchestrator-supervisor`, which PM2 runs as the workspace's agent
    /// (`orchestrator-supervisor agent`), and the PM2_HOME it serves.
    pub supervisor: String,
    pub pm2_home: String,
    /// `lib/preload.js`: Node apps are launched with it.
    pub preload: Option<String>,
    /// At most this many services are launched or stopped at once (default: cores × 4 for a
    /// launch, every service for a stop).
    pub concurrency: Option<u32>,
    /// An app whose new process exits before it is ready fails at once (`--fail-fast`), without
    /// waiting for the restart policy's restarts.
    pub fail_fast: Option<bool>,
}

/// One PM2 call, for `act`: `op` is `start` | `delete` | `stop` | `restart` | `reload`; `app`
/// the definition (start, restart, reload), else `name` and the entries' PM2 `ids` (call by
/// id when there are any: PM2's client reads its whole table to look a name up).
#[napi(object)]
pub struct Pm2Action {
    pub op: String,
    pub name: Option<String>,
    pub ids: Option<Vec<u32>>,
    pub app: Option<serde_json::Value>,
}

type ActFn = ThreadsafeFunction<Pm2Action, Promise<Option<String>>, Pm2Action, Status, false>;

struct JsPm2 {
    act: ActFn,
}

impl Client for JsPm2 {
    fn call(&self, call: Pm2Call) -> BoxFuture<'_, std::result::Result<(), String>> {
        let op = call.op().to_string();
        let (target, app) = match call {
            Pm2Call::Start(a) | Pm2Call::Restart(a) | Pm2Call::Reload(a) => (None, Some(a)),
            Pm2Call::Delete(t) | Pm2Call::Stop(t) | Pm2Call::RestartName(t) => (Some(t), None),
        };
        let (name, ids) = match target {
            Some(t) => (Some(t.name), Some(t.ids)),
            None => (None, None),
        };
        Box::pin(async move {
            let pending = self
                .act
                .call_async_catch(Pm2Action { op, name, ids, app })
                .await
                .map_err(|e| e.reason.clone())?;
            match pending.await {
                Ok(None) => Ok(()),
                Ok(Some(message)) => Err(message),
                Err(e) => Err(e.reason.clone()),
            }
        })
    }
}

fn options(o: LaunchOptions) -> launch::Options {
    launch::Options {
        concurrency: o.concurrency.filter(|c| *c > 0).map(|c| c as usize),
        supervisor: PathBuf::from(o.supervisor),
        pm2_home: o.pm2_home,
        preload: o.preload.map(PathBuf::from),
        progress: std::sync::Arc::new(|line: &str| eprintln!("{line}")),
        fail_fast: o.fail_fast.unwrap_or(false),
    }
}

/// PM2's table, for the plan.
async fn table(pm2: &dyn launch::Pm2, command: &str) -> Outcome<Vec<Pm2Process>> {
    launch::Pm2::list(pm2).await.map_err(|cause| {
        js_error(
            orchestrator_core::error::Error::Pm2 {
                service: None,
                call: "list its processes".into(),
                cause,
                definition: None,
            },
            command,
        )
    })
}

fn summary(s: launch::Summary) -> Outcome<serde_json::Value> {
    serde_json::to_value(s).map_err(|e| Error::from_reason(e.to_string()).into())
}

fn verb_of(verb: &str, command: &str) -> Outcome<step::Verb> {
    match verb {
        "start" => Ok(step::Verb::Start),
        "restart" => Ok(step::Verb::Restart),
        "deploy" => Ok(step::Verb::Deploy),
        other => Err(js_error(
            orchestrator_core::error::Error::Usage {
                message: format!("`{other}` is not a command that launches services"),
                remediation: "Pass start, restart or deploy".into(),
            },
            command,
        )),
    }
}

/// `start`, `restart` or `deploy`, carried out: the plan against PM2's table, then
/// make-before-break, the agent, and every service as soon as what it waits on is there, PM2's
/// calls made through `act`. Resolves with what was done per service; rejects with the
/// actionable error (`Incomplete` when some services came up and others did not).
#[napi(
    ts_args_type = "verb: 'start' | 'restart' | 'deploy', req: PrepareRequest, options: LaunchOptions, act: (action: Pm2Action) => Promise<string | null>",
    ts_return_type = "Promise<{ workspace: string; profile: string; services: Array<{ service: string; kind: string; action: string; profile: string; switchedFrom?: string; status: string; pids: number[]; ports: number[]; install: string | null; readyMs: number | null; containerId?: string | null; image?: string | null; health?: string | null; exitCode?: number | null; adopted?: boolean | null; pulled?: boolean | null }> }>"
)]
pub fn launch<'env>(
    env: &'env Env,
    verb: String,
    req: PrepareRequest,
    options: LaunchOptions,
    act: ActFn,
) -> Result<PromiseRaw<'env, serde_json::Value>> {
    boundary::promise(env, async move {
        let command = req.command.clone();
        let verb = verb_of(&verb, &command)?;
        let js = JsPm2 { act };
        let opts = self::options(options);
        let pm2 = Pm2Socket {
            client: &js,
            home: PathBuf::from(&opts.pm2_home),
        };
        let mut request = to_request(req);
        request.pm2 = table(&pm2, &command).await?;
        let plan = ops::prepare(verb, request)
            .await
            .map_err(|e| js_error(e, &command))?;
        let done = launch::carry_out(&plan, &pm2, &opts)
            .await
            .map_err(|e| js_error(e, &command))?;
        summary(done)
    })
}

/// `stop`: the plan (only this workspace's entries), then every service stopped once what uses
/// it has stopped; each container with its own grace period. `act` is `null` when no
/// PM2 daemon runs (containers a killed runner left are stopped all the same). With `all`, the
/// workspace's agent goes too.
#[napi(
    ts_args_type = "req: PrepareRequest, options: LaunchOptions, all: boolean, act: ((action: Pm2Action) => Promise<string | null>) | null",
    ts_return_type = "Promise<{ workspace: string; profile: string; services: Array<{ service: string; kind: string; action: string; profile: string; status: string; pids: number[]; ports: number[] }> }>"
)]
pub fn stop_services<'env>(
    env: &'env Env,
    req: PrepareRequest,
    options: LaunchOptions,
    all: bool,
    act: Option<ActFn>,
) -> Result<PromiseRaw<'env, serde_json::Value>> {
    boundary::promise(env, async move {
        let command = req.command.clone();
        let js = act.map(|act| JsPm2 { act });
        let opts = self::options(options);
        let pm2 = js.as_ref().map(|js| Pm2Socket {
            client: js as &dyn Client,
            home: PathBuf::from(&opts.pm2_home),
        });
        let mut request = to_request(req);
        if let Some(pm2) = &pm2 {
            request.pm2 = table(pm2, &command).await?;
        }
        let plan = ops::prepare(step::Verb::Stop, request)
            .await
            .map_err(|e| js_error(e, &command))?;
        let pm2: Option<&dyn launch::Pm2> = pm2.as_ref().map(|p| p as &dyn launch::Pm2);
        let done = launch::stop(&plan, pm2, &opts, all)
            .await
            .map_err(|e| js_error(e, &command))?;
        summary(done)
    })
}
