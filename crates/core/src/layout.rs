//! Where things live in a workspace, every path spelled once: the orchestrator's own directory
//! (`.orchestrator/`: records, the lock, the agent, files written for containers) and the logs
//! (`apps/logs/<service>/`: the streams, rotated files, events). Pure: paths only (PM2_HOME is read from the environment), no I/O.

use std::path::{Path, PathBuf};

/// `.orchestrator/`: what the orchestrator keeps for a workspace (git-ignored).
pub fn own_dir(root: &Path) -> PathBuf {
    root.join(".orchestrator")
}

/// The supervision records, one JSON file a service.
pub fn state_dir(root: &Path) -> PathBuf {
    own_dir(root).join("state")
}

/// The workspace lock every command takes.
pub fn lock_file(root: &Path) -> PathBuf {
    own_dir(root).join("lock")
}

/// The agent's own output (its PM2 log files).
pub fn agent_dir(root: &Path) -> PathBuf {
    own_dir(root).join("agent")
}

/// The last CPU and memory readings `status` took (`resources::Readings`), so the next look
/// measures the CPU between the two.
pub fn usage_file(root: &Path) -> PathBuf {
    own_dir(root).join("usage.json")
}

/// What inspections told of the running containers (their first process, when they started),
/// so the next `status` need not inspect a settled container again.
pub fn containers_file(root: &Path) -> PathBuf {
    own_dir(root).join("containers.json")
}

/// The running agent's pid, which `start`'s readiness wait reads.
pub fn agent_pid_file(root: &Path) -> PathBuf {
    own_dir(root).join("agent.pid")
}

/// Files written for a service's containers (`environment:` secrets, `content:` configs).
pub fn files_dir(root: &Path, service: &str) -> PathBuf {
    own_dir(root).join("files").join(service)
}

/// `apps/logs/`: every service's log directory.
pub fn logs_root(root: &Path) -> PathBuf {
    root.join("apps").join("logs")
}

/// `apps/logs/<service>/`.
pub fn log_dir(root: &Path, service: &str) -> PathBuf {
    logs_root(root).join(service)
}

/// A service's live stderr file, whose tail explains a failure.
pub fn error_log(root: &Path, service: &str) -> PathBuf {
    log_dir(root, service).join("error.log")
}

/// A service's supervision events, one JSON object a line.
pub fn events_file(root: &Path, service: &str) -> PathBuf {
    log_dir(root, service).join("events.jsonl")
}

/// PM2_HOME as PM2 resolves it: the variable, else `~/.pm2`.
pub fn pm2_home() -> PathBuf {
    match std::env::var_os("PM2_HOME") {
        Some(h) => PathBuf::from(h),
        None => PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".pm2"),
    }
}

/// Env vars a container runner's PM2 entry carries (catalog::runner_app): the files its lines
/// go to, written by the runner itself (the runtime's `sink`).
pub const OUT_ENV: &str = "ORCHESTRATOR_LOG_OUT";
pub const ERR_ENV: &str = "ORCHESTRATOR_LOG_ERR";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_layout_of_a_workspace() {
        let r = Path::new("/ws");
        assert_eq!(state_dir(r), Path::new("/ws/.orchestrator/state"));
        assert_eq!(lock_file(r), Path::new("/ws/.orchestrator/lock"));
        assert_eq!(agent_pid_file(r), Path::new("/ws/.orchestrator/agent.pid"));
        assert_eq!(files_dir(r, "db"), Path::new("/ws/.orchestrator/files/db"));
        assert_eq!(error_log(r, "db"), Path::new("/ws/apps/logs/db/error.log"));
        assert_eq!(
            events_file(r, "db"),
            Path::new("/ws/apps/logs/db/events.jsonl")
        );
    }
}
