//! `logs`: entries as objects for the programmatic API, or printed straight to stdout (fd 1)
//! for the command line, so a large window never becomes a JS array.

use std::io::Write;
use std::path::PathBuf;

use napi::bindgen_prelude::*;
use napi_derive::napi;

use super::js_error;
use crate::logs;

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

fn read(req: LogsRequest) -> Result<Vec<logs::Entry>> {
    let (req, command) = to_core(req);
    logs::run(&req, chrono::Utc::now()).map_err(|e| js_error(e, &command))
}

/// The entries of the window, merged in time order across streams and services.
#[napi]
pub fn logs(req: LogsRequest) -> Result<Vec<LogEntry>> {
    Ok(read(req)?
        .into_iter()
        .map(|e| LogEntry {
            time: e.time.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            service: e.service,
            stream: e.stream.as_str().into(),
            severity: serde_json::to_value(e.severity)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default(),
            line: e.line,
        })
        .collect())
}

/// Prints the window to stdout (text, or one JSON object a line) and returns how many entries.
#[napi]
pub fn print_logs(req: LogsRequest, json: bool) -> Result<u32> {
    let entries = read(req)?;
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::with_capacity(1 << 20, stdout.lock());
    for e in &entries {
        let line = if json {
            serde_json::to_string(e).unwrap_or_default()
        } else {
            logs::format_line(e)
        };
        if writeln!(out, "{line}").is_err() {
            break; // the reader went away (| head)
        }
    }
    let _ = out.flush();
    Ok(entries.len().min(u32::MAX as usize) as u32)
}

/// `--follow`: prints the window's start, then every new line as it is written (across
/// rotations), until stdout goes away or the process is stopped.
#[napi]
pub async fn follow_logs(req: LogsRequest, json: bool) -> Result<()> {
    let (req, command) = to_core(req);
    let stdout = std::io::stdout();
    logs::follow(&req, chrono::Utc::now(), |e| {
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
}
