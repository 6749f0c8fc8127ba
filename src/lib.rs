//! Native core of `@workspace/orchestrator`. Everything here is plain Rust with unit tests beside
//! the code; `binding` is the only module that touches napi.

pub mod agent;
pub mod build;
pub mod catalog;
pub mod compose;
pub mod config;
pub mod container;
pub mod deps;
pub mod docker;
pub mod envfile;
pub mod error;
pub mod exit;
pub mod git_hook;
pub mod infer;
pub mod install;
pub mod layout;
pub mod lock;
pub mod logs;
pub mod names;
pub mod observe;
pub mod ops;
pub mod plan;
pub mod pm2;
pub mod pm2rpc;
pub mod policy;
pub mod ports;
pub mod prereq;
pub mod ready;
pub mod rotate;
pub mod sink;
pub mod state;
pub mod status;
pub mod supervise;
pub mod verify;

pub mod binding;

#[cfg(test)]
mod parsers_never_panic;
