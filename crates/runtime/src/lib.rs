//! The orchestrator's runtime: everything that does I/O on the core's decisions. The Docker
//! Engine client and the dependency lifecycle (`docker`, `deps`, `build`), PM2's RPC socket
//! (`pm2rpc`), the workspace's records and lock (`state`, `lock`), ports and readiness (`ports`,
//! `ready`), the agent's decisions and its loop (`agent`, `agent_loop`), our own diagnostics, rotation passes, the runner's log sink, npm installs
//! (`npm`) and prerequisites, the git hook, a command's plan (`step`) and the commands that
//! join them (`ops`, `observe`, `verify`, `follow`).
//!
//! The core's modules are re-exported under their own names, so a module here writes
//! `crate::compose` for the core's compose loader as it writes `crate::docker` for its own
//! client: the paths say what a module uses, the crate boundary says which side does I/O.

pub use orchestrator_core::{
    catalog, compose, config, container, decide, engine, envfile, error, exit, infer, layout, logs,
    names, pm2, policy, rotate, schedule, status, supervise,
};

pub mod agent;
pub mod agent_loop;
pub mod build;
pub mod dashboard;
pub mod deps;
pub mod diagnostics;
pub mod docker;
pub mod follow;
pub mod git_hook;
pub mod launch;
pub mod lock;
pub mod npm;
pub mod observe;
pub mod ops;
pub mod pm2_socket;
pub mod pm2rpc;
pub mod ports;
pub mod prereq;
pub mod proc;
pub mod ready;
pub mod rotation;
pub mod sink;
pub mod state;
pub mod step;
pub mod usage;
pub mod verify;
pub mod watch;
pub mod why;
