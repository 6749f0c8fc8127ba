//! The supervision record of each service under `.orchestrator/state/<service>.json` (desired
//! state, phase, policy, history, last failure) and its events in
//! `apps/logs/<service>/events.jsonl`. The agent and the commands both change records, always as
//! read-modify-write under one OS file lock (`.orchestrator/state/.lock`, released by the kernel
//! if the holder dies), and every write is atomic (temp file + rename): a killed writer leaves the
//! old record or the new one, never half of one.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::error::{Error, IoOp, Result};
use crate::layout::{events_file, state_dir};
pub use crate::supervise::LastFailure;
use crate::supervise::{Outcome, Record};

pub fn state_file(root: &Path, service: &str) -> PathBuf {
    state_dir(root).join(format!("{service}.json"))
}

/// Pure: the record of a failure at `now`.
pub fn failure(
    service: &str,
    state: &str,
    code: &str,
    reason: &str,
    retryable: bool,
    now: DateTime<Utc>,
) -> LastFailure {
    LastFailure {
        service: service.into(),
        state: state.into(),
        code: code.into(),
        reason: reason.into(),
        at: now.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        retryable,
        exit_code: None,
        signal: None,
    }
}

/// A restart, switch or deploy refused while the service runs on as it was: recorded as its last
/// failure (state `refused`, which `status` shows without taking the service for failed).
pub fn refusal(service: &str, code: &str, message: &str, now: DateTime<Utc>) -> LastFailure {
    failure(
        service,
        "refused",
        code,
        &format!("not replaced, still running as before: {message}"),
        true,
        now,
    )
}

pub fn read(root: &Path, service: &str) -> Option<Record> {
    let text = std::fs::read_to_string(state_file(root, service)).ok()?;
    serde_json::from_str(&text).ok()
}

/// Whether the service is still meant to run (a stop may have come while the agent restarted it).
pub fn wanted(root: &Path, service: &str) -> bool {
    read(root, service).is_some_and(|r| r.desired == orchestrator_core::supervise::Desired::Running)
}

/// Every record of the workspace.
pub fn all(root: &Path) -> Vec<Record> {
    let Ok(dir) = std::fs::read_dir(state_dir(root)) else {
        return Vec::new();
    };
    let mut out: Vec<Record> = dir
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let service = name.strip_suffix(".json")?;
            read(root, service)
        })
        .collect();
    out.sort_by(|a, b| a.service.cmp(&b.service));
    out
}

/// A failed write of `path`, as the crate's error.
fn written(path: &Path) -> impl Fn(std::io::Error) -> Error + '_ {
    move |source| Error::Io {
        op: IoOp::Write,
        path: path.to_path_buf(),
        source,
    }
}

fn write(root: &Path, rec: &Record) -> Result<()> {
    let path = state_file(root, &rec.service);
    let tmp = path.with_extension(format!("json.{}.tmp", std::process::id()));
    (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(&serde_json::to_vec_pretty(rec).unwrap_or_default())?;
        f.sync_all()
    })()
    .map_err(written(&tmp))?;
    std::fs::rename(&tmp, &path).map_err(written(&path))
}

/// A measuring aid written whole under a temporary name, so a concurrent reader never sees half
/// a file (no fsync: losing it only costs the next look some work). A failure is only traced.
pub fn write_whole<T: serde::Serialize>(file: &Path, value: &T) {
    let Ok(text) = serde_json::to_vec(value) else {
        return;
    };
    let tmp = file.with_extension(format!("json.{}", std::process::id()));
    if let Err(e) = std::fs::write(&tmp, text).and_then(|_| std::fs::rename(&tmp, file)) {
        let _ = std::fs::remove_file(&tmp);
        tracing::debug!(file = %file.display(), error = %e, "not kept");
    }
}

/// Runs `f` on the service's record (a fresh one when there is none) under the state lock,
/// writes the result atomically, then appends the events it produced.
///
/// Exactly once across a kill (the fault suite SIGKILLs the agent in a loop, and once lost a
/// `RESTART_THRESHOLD_EXCEEDED` that way): the events are journalled in the record
/// (`pending_events`) in the same atomic write as the decision, then appended to `events.jsonl`
/// and cleared. A process killed in between leaves them in the record; the next update of that
/// service (the agent's reconcile touches every record every 2 s) appends those the file does not
/// already end with.
pub fn update<T>(
    root: &Path,
    service: &str,
    now: DateTime<Utc>,
    f: impl FnOnce(&mut Record) -> (T, Outcome),
) -> Result<(T, Outcome)> {
    let dir = state_dir(root);
    std::fs::create_dir_all(&dir).map_err(written(&dir))?;
    let lock_path = dir.join(".lock");
    let lock = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(written(&lock_path))?;
    lock.lock().map_err(written(&lock_path))?;
    let mut rec = read(root, service).unwrap_or_else(|| Record::new(service, now));
    let before = rec.clone();
    let (value, outcome) = f(&mut rec);
    rec.pending_events.extend(outcome.events.iter().cloned());
    if rec != before {
        write(root, &rec)?;
    }
    if !rec.pending_events.is_empty() {
        append_new_events(root, service, &rec.pending_events)?;
        rec.pending_events.clear();
        write(root, &rec)?;
    }
    drop(lock);
    Ok((value, outcome))
}

/// Appends the events the file does not already hold among its last lines (an event is its
/// whole JSON text: time to the millisecond, service, kind, details).
fn append_new_events(root: &Path, service: &str, events: &[Value]) -> Result<()> {
    let tail = crate::logs::files::tail_lines(&events_file(root, service), 1000);
    let missing: Vec<Value> = events
        .iter()
        .filter(|e| !tail.contains(&e.to_string()))
        .cloned()
        .collect();
    append_events(root, service, &missing)
}

/// Appends events, one JSON object a line, in one write (O_APPEND: lines never interleave).
pub fn append_events(root: &Path, service: &str, events: &[Value]) -> Result<()> {
    if events.is_empty() {
        return Ok(());
    }
    let path = events_file(root, service);
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(written(dir))?;
    }
    let mut text = String::new();
    for e in events {
        text.push_str(&e.to_string());
        text.push('\n');
    }
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .and_then(|mut f| f.write_all(text.as_bytes()))
        .map_err(written(&path))
}

/// Records a failure found by a command (image unavailable, health timeout, env missing…). The
/// command reports the failure itself; a record that cannot be written is only traced.
pub fn record(root: &Path, f: &LastFailure) {
    let now = Utc::now();
    if let Err(e) = update(root, &f.service, now, |r| {
        ((), r.record_failure(f.clone(), now))
    }) {
        tracing::warn!(service = %f.service, error = %e, "could not record the failure");
    }
}

/// The service became ready: a degraded mark is cleared.
pub fn clear(root: &Path, service: &str) {
    let now = Utc::now();
    if let Err(e) = update(root, service, now, |r| {
        r.ready(now);
        ((), Outcome::default())
    }) {
        tracing::warn!(service, error = %e, "could not clear the degraded mark");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A record that cannot be written is the crate's error naming the write and the path (it
    /// used to be an `io::Error` the binding called a read of the state directory).
    #[test]
    fn a_failed_write_names_the_write_and_its_path() {
        let file = std::env::temp_dir().join(format!("orch-state-file-{}", std::process::id()));
        std::fs::write(&file, "not a directory").unwrap();
        let now = Utc::now();
        let e = update(&file, "api", now, |_| ((), Outcome::default())).unwrap_err();
        match &e {
            Error::Io { op, path, .. } => {
                assert_eq!(*op, IoOp::Write);
                assert_eq!(path, &state_dir(&file));
            }
            other => panic!("{other:?}"),
        }
        let a = e.actionable("orchestrator agent");
        assert!(a.message.starts_with("cannot write "), "{}", a.message);
        assert!(
            a.remediation[0].contains("can be written"),
            "{:?}",
            a.remediation
        );
        let e = append_events(&file, "api", &[serde_json::json!({"event": "x"})]).unwrap_err();
        assert!(
            matches!(
                e,
                Error::Io {
                    op: IoOp::Write,
                    ..
                }
            ),
            "{e:?}"
        );
        let _ = std::fs::remove_file(&file);
    }

    #[test]
    fn records_update_atomically_and_events_append() {
        let dir = std::env::temp_dir().join(format!("orch-state-{}", std::process::id()));
        let now = chrono::DateTime::parse_from_rfc3339("2026-11-26T10:00:00.5Z")
            .unwrap()
            .with_timezone(&chrono::Utc);
        let f = failure(
            "db",
            "failed",
            "EXIT_IMAGE_UNAVAILABLE",
            "no such tag",
            false,
            now,
        );
        assert_eq!(f.at, "2026-11-26T10:00:00.500Z");
        record(&dir, &f);
        let r = read(&dir, "db").unwrap();
        assert_eq!(r.last_failure, Some(f.clone()));
        assert_eq!(r.state_name(), "failed");
        let lines = std::fs::read_to_string(events_file(&dir, "db")).unwrap();
        let ev: Value = serde_json::from_str(lines.lines().next().unwrap()).unwrap();
        assert_eq!(
            (ev["event"].as_str(), ev["code"].as_str()),
            (Some("failed"), Some("EXIT_IMAGE_UNAVAILABLE"))
        );
        let g = failure(
            "db",
            "degraded",
            "EXIT_DEPENDENCY_DEGRADED",
            "timeout",
            true,
            now,
        );
        record(&dir, &g);
        assert_eq!(
            read(&dir, "db").unwrap().last_failure.unwrap().state,
            "degraded"
        );
        clear(&dir, "db");
        assert_eq!(read(&dir, "db").unwrap().last_failure, None);
        assert_eq!(all(&dir).len(), 1);
        // No temp file is left beside the record.
        let leftovers: Vec<_> = std::fs::read_dir(state_dir(&dir))
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
            .collect();
        assert!(leftovers.is_empty());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn events_journalled_in_the_record_survive_a_kill_once() {
        let dir = std::env::temp_dir().join(format!("orch-journal-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let now = chrono::Utc::now();
        let ev = |n: u32| serde_json::json!({"time": "2026-11-26T10:00:00.000Z", "event": "restarted", "service": "api", "n": n});
        let count = || {
            std::fs::read_to_string(events_file(&dir, "api"))
                .unwrap_or_default()
                .lines()
                .count()
        };
        // A decision with events: journalled, appended, cleared.
        update(&dir, "api", now, |_| {
            (
                (),
                Outcome {
                    events: vec![ev(1)],
                    ..Default::default()
                },
            )
        })
        .unwrap();
        assert_eq!(count(), 1);
        assert!(read(&dir, "api").unwrap().pending_events.is_empty());
        // Killed after the record was written, before the append: the next update appends it.
        let mut rec = read(&dir, "api").unwrap();
        rec.pending_events = vec![ev(2)];
        write(&dir, &rec).unwrap();
        update(&dir, "api", now, |_| ((), Outcome::default())).unwrap();
        assert_eq!(count(), 2);
        // Killed after the append, before the clear: not appended again.
        let mut rec = read(&dir, "api").unwrap();
        rec.pending_events = vec![ev(2)];
        write(&dir, &rec).unwrap();
        update(&dir, "api", now, |_| ((), Outcome::default())).unwrap();
        assert_eq!(count(), 2);
        assert!(read(&dir, "api").unwrap().pending_events.is_empty());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
