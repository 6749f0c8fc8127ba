//! `logs`: entries as objects for the programmatic API, or printed straight to stdout (fd 1)
//! for the command line, so a large window never becomes a JS array.

use std::io::Write;
use std::path::PathBuf;

use napi::bindgen_prelude::*;
use napi_derive::napi;

use crate::boundary::{self, js_error, Outcome};
use orchestrator_core::logs;

#[napi(object)]
pub struct LogsRequest {
    pub workspace_root: String,
    /// Services to read; empty: every service.
    pub services: Option<Vec<String>>,
    pub ecosystem: serde_json::Value,
    pub ecosystem_file: String,
    /// `30m`, `48h`, `7d`, or an RFC 3339 instant.
    pub since: Option<String>,
    pub until: Option<String>,
    pub tail: Option<u32>,
    /// `out` | `err` | `all`
    pub stream: Option<String>,
    /// A regular expression the line must match.
    pub grep: Option<String>,
    /// Minimum severity: trace, debug, info, warn, error, fatal.
    pub level: Option<String>,
    pub command: String,
}

#[napi(object)]
pub struct LogEntry {
    /// RFC 3339 UTC with milliseconds.
    pub time: String,
    pub service: String,
    /// The PM2 id of a cluster instance that keeps its own files (`merge_logs: false`).
    pub instance: Option<u32>,
    /// `out` | `err`
    pub stream: String,
    /// `trace` | `debug` | `info` | `warn` | `error` | `fatal`
    pub severity: String,
    pub line: String,
}

fn to_core(r: LogsRequest) -> (logs::LogsRequest, String) {
    (
        logs::LogsRequest {
            workspace_root: PathBuf::from(r.workspace_root),
            services: r.services.unwrap_or_default(),
            ecosystem: r.ecosystem,
            ecosystem_file: PathBuf::from(r.ecosystem_file),
            since: r.since,
            until: r.until,
            tail: r.tail,
            stream: r.stream,
            grep: r.grep,
            level: r.level,
        },
        r.command,
    )
}

fn read(req: LogsRequest) -> Outcome<Vec<logs::Entry>> {
    let (req, command) = to_core(req);
    logs::run(&req, chrono::Utc::now()).map_err(|e| js_error(e, &command))
}

fn view(e: logs::Entry) -> LogEntry {
    LogEntry {
        time: e.time.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        service: e.service,
        instance: e.instance,
        stream: e.stream.as_str().into(),
        severity: e.severity.as_str().into(),
        line: e.line,
    }
}

/// The entries of the window, merged in time order across streams and services.
#[napi]
pub fn logs(env: &Env, req: LogsRequest) -> Result<Vec<LogEntry>> {
    boundary::sync(env, || Ok(read(req)?.into_iter().map(view).collect()))
}

/// Prints the window to stdout (text, or one JSON object a line) and returns how many entries.
#[napi]
pub fn print_logs(env: &Env, req: LogsRequest, json: bool) -> Result<u32> {
    boundary::sync(env, || {
        let (req, command) = to_core(req);
        let stdout = std::io::stdout();
        let mut out = std::io::BufWriter::with_capacity(1 << 20, stdout.lock());
        let n = logs::print(&req, chrono::Utc::now(), json, &mut out)
            .map_err(|e| js_error(e, &command))?;
        Ok(n.min(u32::MAX as u64) as u32)
    })
}

/// The programmatic stream: `read(max)` hands out the window in batches (it is never read
/// whole), then, when following, what was written since the last call.
#[napi]
pub struct LogReader {
    inner: logs::Reader,
    command: String,
}

#[napi]
impl LogReader {
    #[napi(constructor)]
    pub fn new(env: &Env, req: LogsRequest, follow: bool) -> Result<Self> {
        boundary::sync(env, || {
            let (req, command) = to_core(req);
            let inner = logs::Reader::open(&req, chrono::Utc::now(), follow)
                .map_err(|e| js_error(e, &command))?;
            Ok(LogReader { inner, command })
        })
    }

    /// Up to `max` entries; empty when done (see `done`) or when nothing new was written yet.
    #[napi]
    pub fn read(&mut self, env: &Env, max: u32) -> Result<Vec<LogEntry>> {
        boundary::sync(env, || {
            let got = self
                .inner
                .read(max.max(1) as usize)
                .map_err(|e| js_error(e, &self.command))?;
            Ok(got.into_iter().map(view).collect())
        })
    }

    /// Every entry was read and nothing is followed.
    #[napi(getter)]
    pub fn done(&self) -> bool {
        self.inner.done()
    }
}

#[napi(object, use_nullable = true)]
pub struct LogSlice {
    pub service: String,
    /// `out` | `err`
    pub stream: String,
    pub file: String,
    pub compressed: bool,
    /// The window's first byte in a plain file (null for a `.gz`).
    pub start: Option<i64>,
    /// One past its last byte (null for a `.gz`).
    pub end: Option<i64>,
    /// The lines of the window as written, timestamps included.
    pub data: Buffer,
}

/// The raw window, file by file in time order: a plain file's part is found by binary search
/// and read at once, without parsing its lines. Time window and streams only.
#[napi]
pub fn log_slice(env: &Env, req: LogsRequest) -> Result<Vec<LogSlice>> {
    boundary::sync(env, || {
        let (req, command) = to_core(req);
        let got = logs::slice(&req, chrono::Utc::now()).map_err(|e| js_error(e, &command))?;
        Ok(got
            .into_iter()
            .map(|s| LogSlice {
                service: s.service,
                stream: s.stream.as_str().into(),
                file: s.path.to_string_lossy().into_owned(),
                compressed: s.compressed,
                start: s.range.map(|r| r.0 as i64),
                end: s.range.map(|r| r.1 as i64),
                data: s.data.into(),
            })
            .collect())
    })
}

/// `--follow`: prints the window's start, then every new line as it is written (across
/// rotations), until stdout goes away or the process is stopped.
#[napi(ts_return_type = "Promise<void>")]
pub fn follow_logs<'env>(
    env: &'env Env,
    req: LogsRequest,
    json: bool,
) -> Result<PromiseRaw<'env, ()>> {
    boundary::promise(env, async move {
        let (req, command) = to_core(req);
        let stdout = std::io::stdout();
        orchestrator_runtime::follow::follow(&req, chrono::Utc::now(), |e| {
            let line = if json {
                serde_json::to_string(e).unwrap_or_default()
            } else {
                logs::format_line(e)
            };
            let mut out = stdout.lock();
            writeln!(out, "{line}").and_then(|_| out.flush()).is_ok()
        })
        .await
        .map_err(|e| js_error(e, &command))
    })
}
