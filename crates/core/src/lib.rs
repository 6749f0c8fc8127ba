//! The orchestrator's core: what the workspace says and what to do about it, as plain functions
//! over data. The config readers (nx.json, ecosystem, env files, compose), the catalog of
//! services, the plan of each step, the restart policy and the supervision records, status,
//! logs (lines, files, windows, the merge), rotation, inference and the one error type.
//!
//! No napi, no tokio, no Docker client, no /proc: nothing here starts a process or talks to a
//! daemon. Files are read (and rotated) through `std`; a decision takes `now` as an argument.
//! Tests beside the code, and in `tests/` as an ordinary integration-test crate.

pub mod catalog;
pub mod compose;
pub mod config;
pub mod container;
pub mod dashboard;
pub mod decide;
pub mod engine;
pub mod envfile;
pub mod error;
pub mod exit;
pub mod infer;
pub mod layout;
pub mod logs;
pub mod names;

pub mod pm2;
pub mod policy;
pub mod resources;
pub mod rotate;
pub mod schedule;
pub mod status;
pub mod supervise;
pub mod watch;
pub mod why;
