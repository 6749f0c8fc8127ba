//! The last failure recorded per service under `.orchestrator/state/<service>.json`: what a
//! non-retryable cause (image unavailable) or a health timeout left behind, for `status` to show.
//! Written atomically (temp file + rename); cleared when the service becomes ready again.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LastFailure {
    pub service: String,
    /// `failed` | `degraded`
    pub state: String,
    /// The exit-code name, e.g. `EXIT_IMAGE_UNAVAILABLE`.
    pub code: String,
    pub reason: String,
    /// RFC 3339 UTC.
    pub at: String,
    /// Whether retrying without a change can help (false for image unavailable).
    pub retryable: bool,
}

pub fn state_file(root: &Path, service: &str) -> PathBuf {
    root.join(".orchestrator")
        .join("state")
        .join(format!("{service}.json"))
}

/// Pure: the record for a failure at `now`.
pub fn failure(
    service: &str,
    state: &str,
    code: &str,
    reason: &str,
    retryable: bool,
    now: chrono::DateTime<chrono::Utc>,
) -> LastFailure {
    LastFailure {
        service: service.into(),
        state: state.into(),
        code: code.into(),
        reason: reason.into(),
        at: now.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        retryable,
    }
}

pub fn record(root: &Path, f: &LastFailure) -> std::io::Result<()> {
    let path = state_file(root, &f.service);
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension(format!("json.{}", std::process::id()));
    std::fs::write(&tmp, serde_json::to_vec_pretty(f).unwrap_or_default())?;
    std::fs::rename(&tmp, &path)
}

pub fn read(root: &Path, service: &str) -> Option<LastFailure> {
    let text = std::fs::read_to_string(state_file(root, service)).ok()?;
    serde_json::from_str(&text).ok()
}

pub fn clear(root: &Path, service: &str) {
    let _ = std::fs::remove_file(state_file(root, service));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_replace_atomically_and_clear() {
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
        record(&dir, &f).unwrap();
        assert_eq!(read(&dir, "db"), Some(f.clone()));
        let g = failure(
            "db",
            "degraded",
            "EXIT_DEPENDENCY_DEGRADED",
            "timeout",
            true,
            now,
        );
        record(&dir, &g).unwrap();
        assert_eq!(read(&dir, "db").unwrap().state, "degraded");
        clear(&dir, "db");
        assert_eq!(read(&dir, "db"), None);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
