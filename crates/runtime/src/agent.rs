//! The agent's edges: turn what PM2 reports into `supervise` transitions on the persisted
//! records, find causes restarting cannot fix, read the signal PM2 logged, and run the alert
//! command. `lib/agent.js` is the process (it holds the PM2 bus connection and does the
//! restarts PM2's API offers); every decision is made here, every record written here.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use tokio::io::AsyncWriteExt;

use crate::exit::ExitCode;
use crate::pm2::Pm2Process;
use crate::ports::{self, PortState};
use crate::state;
use crate::supervise::{Desired, ExitReport, Launch, Outcome, Phase, Record};

/// The agent's PM2 name: one per workspace (a short hash of the root keeps two checkouts of the
/// same package apart in one PM2 daemon).
pub fn agent_name(root: &Path, workspace_name: &str) -> String {
    use sha2::Digest;
    let h = sha2::Sha256::digest(root.display().to_string().as_bytes());
    format!(
        "orchestrator-agent-{workspace_name}-{:02x}{:02x}{:02x}",
        h[0], h[1], h[2]
    )
}

/// An exit: the process as PM2 reported it (from its bus, or its table when the bus missed it;
/// `status` is `stopping` when a stop or restart was asked for), and the PM2_HOME whose log says
/// the signal (the environment's when `None`).
#[derive(Debug, Clone)]
pub struct ExitEvent {
    pub process: Pm2Process,
    pub pm2_home: Option<String>,
}

/// Pure: the signal PM2 logged for the last exit of `name:pm_id` (it keeps no signal in its
/// process table): `App [name:id] exited with code [null] via signal [SIGKILL]`.
pub fn signal_from_pm2_log(text: &str, name: &str, pm_id: &str) -> Option<String> {
    let prefix = format!("App [{name}:{pm_id}] exited with code [");
    let line = text.lines().rev().find(|l| l.contains(&prefix))?;
    let rest = &line[line.find(&prefix)? + prefix.len()..];
    let (code, rest) = rest.split_once(']')?;
    let sig = rest.split_once("via signal [")?.1.split_once(']')?.0;
    // PM2 prints SIGINT when there was no signal: SIGINT counts only without an exit code.
    // (Cluster workers report code 0 with the real signal: `[0] via signal [SIGKILL]`.)
    (!sig.is_empty() && (code == "null" || sig != "SIGINT")).then(|| sig.to_string())
}

/// Pure: the signal a container's exit code reports (`128 + n`, Docker's convention).
pub fn container_signal(code: i64) -> Option<String> {
    let name = match code - 128 {
        1 => "SIGHUP",
        2 => "SIGINT",
        3 => "SIGQUIT",
        6 => "SIGABRT",
        9 => "SIGKILL",
        11 => "SIGSEGV",
        13 => "SIGPIPE",
        15 => "SIGTERM",
        _ => return None,
    };
    Some(name.into())
}

/// Pure: the non-retryable cause a runner's exit code names (it exits with our table's number).
pub fn runner_cause(code: Option<i64>) -> Option<&'static str> {
    match code? {
        16 => Some(ExitCode::ImageUnavailable.name()),
        12 => Some(ExitCode::EnvMissing.name()),
        14 => Some(ExitCode::PortInUse.name()),
        _ => None,
    }
}

fn tail_pm2_log(home: &str) -> String {
    crate::logs::files::tail_lines(&Path::new(home).join("pm2.log"), 200).join("\n")
}

/// A declared port of an app now held by another process: restarting cannot help.
fn port_taken(ports: &[u16]) -> Option<String> {
    ports::probe_ports(ports)
        .into_iter()
        .find_map(|(port, st)| match st {
            PortState::Held(Some(h)) => Some(format!(
                "port {port} is held by pid {} ({})",
                h.pid, h.command
            )),
            PortState::Held(None) => Some(format!("port {port} is held by another process")),
            _ => None,
        })
}

fn report(rec: &Record, root: &Path, exit: &ExitEvent) -> ExitReport {
    let e = &exit.process;
    let dependency = rec.kind == "dependency" || e.kind.as_deref() == Some("dependency");
    let signal = match e.exit_code {
        Some(c) if dependency => container_signal(c),
        _ => exit
            .pm2_home
            .clone()
            .or_else(|| Some(crate::layout::pm2_home().display().to_string()))
            .and_then(|h| signal_from_pm2_log(&tail_pm2_log(&h), &e.name, &e.pm_id.to_string())),
    };
    let stderr = crate::logs::files::tail_lines(&crate::layout::error_log(root, &e.name), 15);
    let requested = e.status == "stopping" || rec.desired == Desired::Stopped;
    let non_retryable = if requested {
        None
    } else if dependency {
        // Only the runner's own refusal counts (it prints `[orchestrator] <service>: <CODE> (n)`),
        // not a container that happens to exit with the same number.
        runner_cause(e.exit_code).and_then(|code| {
            let said = crate::supervise::runner_said(&stderr, e.exit_code)
                .filter(|s| s.starts_with(code))?;
            let reason = rec
                .last_failure
                .as_ref()
                .filter(|f| f.code == code)
                .map(|f| f.reason.clone())
                .unwrap_or_else(|| said.clone());
            Some((code.to_string(), reason))
        })
    } else {
        port_taken(&rec.check_ports).map(|r| (ExitCode::PortInUse.name().to_string(), r))
    };
    ExitReport {
        pm_id: e.pm_id.to_string(),
        started_ms: e.started_ms,
        status: e.status.clone(),
        exit_code: e.exit_code,
        signal,
        non_retryable,
        stderr,
    }
}

/// A record for a service of ours the agent has no record of (started before the agent
/// existed): the default policy, desired running.
fn adopt(rec: &mut Record, e: &Pm2Process, now: DateTime<Utc>) {
    if rec.profile.is_empty() && rec.desired == Desired::Stopped && rec.phase == Phase::Stopped {
        rec.launched(
            &Launch {
                service: e.name.clone(),
                kind: e.kind.clone().unwrap_or_else(|| "app".into()),
                profile: e.profile.clone().unwrap_or_default(),
                policy: Default::default(),
                check_ports: Vec::new(),
                switched_from: None,
            },
            now,
        );
    }
}

/// Answers one exit PM2 reported.
pub fn on_exit(root: &Path, exit: &ExitEvent, now: DateTime<Utc>) -> crate::error::Result<Outcome> {
    let e = &exit.process;
    let known = state::read(root, &e.name);
    let (_, out) = state::update(root, &e.name, now, |rec| {
        if known.is_none() {
            adopt(rec, e, now);
        }
        let x = report(rec, root, exit);
        ((), rec.on_exit(&x, now))
    })?;
    let events: Vec<&str> = out
        .events
        .iter()
        .filter_map(|v| v["event"].as_str())
        .collect();
    tracing::debug!(service = %e.name, pm_id = %e.pm_id, exit_code = ?e.exit_code, ?events, "exit handled");
    if let Some(alert) = &out.alert {
        spawn_alert(root, alert.clone());
    }
    Ok(out)
}

/// What the agent remembers between its looks at PM2, for the decisions that take more than one.
#[derive(Debug, Default)]
pub struct Watch {
    looked: bool,
    last_down: std::collections::BTreeSet<String>,
    unconfirmed: bool,
    last_exit_at: Option<DateTime<Utc>>,
}

/// How often the agent looks at PM2's table unasked while something moves (an exit within the
/// last [`SETTLE`], an exit seen in the table only and not yet confirmed)…
pub const RECONCILE_BUSY: std::time::Duration = std::time::Duration::from_secs(2);
/// …and while everything is quiet. Exits come on PM2's bus and backoffs and stability checks
/// wake the agent at their own time (`Record::next_wake`); the quiet look is only the net under
/// a lost bus message. Each look costs PM2's daemon a pidusage pass over every process.
pub const RECONCILE_QUIET: std::time::Duration = std::time::Duration::from_secs(30);
/// How long after an exit the agent keeps looking at the busy period.
pub const SETTLE: std::time::Duration = std::time::Duration::from_secs(30);

impl Watch {
    /// Pure: an exit seen in PM2's table but not (yet) on the bus is answered only once it has
    /// been seen on two looks in a row (the bus is normally faster, and answers it first), or on
    /// the agent's first look (exits that happened while it was down).
    pub fn confirm(&mut self, instances: &[Pm2Process]) -> bool {
        let down: std::collections::BTreeSet<String> = instances
            .iter()
            .filter(|i| is_down(&i.status))
            .map(|i| format!("{}@{}", i.pm_id, i.started_ms.unwrap_or(0)))
            .collect();
        let confirmed = !self.looked || down.iter().all(|k| self.last_down.contains(k));
        self.last_down = down;
        self.looked = true;
        self.unconfirmed = !confirmed;
        confirmed
    }

    /// Pure: when the agent looks at PM2's table again unasked, at `now`: soon while something
    /// moves (an exit within [`SETTLE`], an exit seen in the table only and awaiting its second
    /// look), else at the quiet period.
    pub fn reconcile_in(&self, now: DateTime<Utc>) -> std::time::Duration {
        let settle = chrono::Duration::from_std(SETTLE).unwrap_or_default();
        let recent = self.last_exit_at.is_some_and(|t| now - t < settle);
        if self.unconfirmed || recent {
            RECONCILE_BUSY
        } else {
            RECONCILE_QUIET
        }
    }

    /// A process of PM2's exited, stopped or was deleted at `now`.
    pub fn exit_seen(&mut self, now: DateTime<Utc>) {
        self.last_exit_at = Some(now);
    }

    /// Pure: whether PM2 may reopen its log files now. Its daemon throws (a global error that
    /// leaves it unable to fork cluster workers) when it reopens the logs of a process that is
    /// exiting at that moment; until it reopens, writers append to the renamed file (nothing is
    /// lost, compression waits), so the reopen waits for a quiet moment: no process stopping or
    /// launching, no exit within the last second.
    pub fn may_reopen<'a>(
        &self,
        statuses: impl IntoIterator<Item = &'a str>,
        now: DateTime<Utc>,
    ) -> bool {
        let recent = self
            .last_exit_at
            .is_some_and(|t| now - t < chrono::Duration::seconds(1));
        !recent
            && !statuses
                .into_iter()
                .any(|s| s == "stopping" || s == "launching")
    }
}

/// The agent started: its pid is written where `start`'s readiness wait looks (an exit
/// unanswered while that pid is dead means the agent is down, not that no restart will come).
pub fn started(root: &Path, pid: u32) -> crate::error::Result<()> {
    let file = crate::layout::agent_pid_file(root);
    file.parent()
        .map_or(Ok(()), std::fs::create_dir_all)
        .and_then(|_| std::fs::write(&file, pid.to_string()))
        .map_err(|source| crate::error::Error::Io {
            op: crate::error::IoOp::Write,
            path: file.clone(),
            source,
        })
}

/// Pure: the agent's PM2 definition. PM2 restarts the agent itself (its autorestart is on, and
/// the one thing PM2's own policy decides): a killed agent comes back at once (a run of 300 ms
/// counts as stable), one that cannot start at all is given up after 50 tries 100 ms apart.
pub fn pm2_app(
    root: &Path,
    workspace_name: &str,
    supervisor: &Path,
    pm2_home: &str,
) -> serde_json::Value {
    let dir = crate::layout::agent_dir(root);
    serde_json::json!({
        "name": agent_name(root, workspace_name),
        "script": supervisor,
        "args": ["agent"],
        "interpreter": "none",
        "exec_mode": "fork",
        "instances": 1,
        "cwd": root,
        "namespace": workspace_name,
        "autorestart": true,
        "min_uptime": 300,
        "max_restarts": 50,
        "restart_delay": 100,
        "kill_timeout": 3000,
        "out_file": dir.join("out.log"),
        "error_file": dir.join("error.log"),
        "merge_logs": true,
        "env": {
            crate::catalog::META_WORKSPACE: root,
            crate::catalog::META_KIND: "agent",
            "PM2_HOME": pm2_home,
        },
    })
}

/// What the agent must do after a look at PM2: restart these instances, and look again in
/// `wake_in` at the latest.
#[derive(Debug, Default, PartialEq)]
pub struct Tick {
    pub restart: Vec<(String, Vec<String>)>,
    pub wake_in: Option<Duration>,
}

fn is_down(status: &str) -> bool {
    matches!(status, "stopped" | "errored")
}

/// Reconciles every record with PM2's table at `now`: confirms restarts PM2 carried out,
/// re-issues restarts a killed agent decided but never asked for, takes due backoffs, answers
/// exits the agent missed while it was down (`confirmed`: the caller has seen them twice or
/// just started), and marks stable runs recovered.
pub fn tick(
    root: &Path,
    instances: &[Pm2Process],
    confirmed: bool,
    now: DateTime<Utc>,
) -> crate::error::Result<Tick> {
    let mut out = Tick::default();
    let mut wake: Option<DateTime<Utc>> = None;
    for rec in state::all(root) {
        let entries: Vec<&Pm2Process> =
            instances.iter().filter(|i| i.name == rec.service).collect();
        let (restart, outcome) = state::update(root, &rec.service, now, |r| {
            let mut o = Outcome::default();
            if let Phase::Restarting { since, pm_ids, .. } = r.phase.clone() {
                let since_ms = since.timestamp_millis();
                let started: Vec<&&Pm2Process> = entries
                    .iter()
                    .filter(|i| pm_ids.contains(&i.pm_id.to_string()))
                    .filter(|i| i.started_ms.is_some_and(|s| s >= since_ms))
                    .collect();
                if entries.is_empty() {
                    // Deleted from PM2 meanwhile: nothing to restart.
                    r.phase = Phase::Stopped;
                } else if !started.is_empty() {
                    let at = started
                        .iter()
                        .filter_map(|i| i.started_ms)
                        .min()
                        .and_then(DateTime::<Utc>::from_timestamp_millis)
                        .unwrap_or(now);
                    o = r.on_restarted(at, now);
                } else {
                    return (Some(pm_ids), o);
                }
            }
            if let Some(ids) = r.take_due(now) {
                return (Some(ids), o);
            }
            if confirmed && r.desired == Desired::Running {
                for i in entries.iter().filter(|i| is_down(&i.status)) {
                    if i.started_ms.is_some()
                        && r.handled.get(&i.pm_id.to_string()) != i.started_ms.as_ref()
                    {
                        // Seen in the table only: no stop was asked for (that comes on the bus).
                        let e = ExitEvent {
                            process: Pm2Process {
                                status: "stopped".into(),
                                profile: None,
                                kind: None,
                                ..(*i).clone()
                            },
                            pm2_home: None,
                        };
                        let x = report(r, root, &e);
                        let more = r.on_exit(&x, now);
                        o.events.extend(more.events);
                        o.alert = o.alert.take().or(more.alert);
                    }
                }
            }
            if entries.iter().any(|i| i.status == "online") {
                let more = r.check_stable(now);
                o.events.extend(more.events);
            }
            if let Some(ids) = r.take_due(now) {
                return (Some(ids), o);
            }
            (None, o)
        })?;
        if let Some(alert) = &outcome.alert {
            spawn_alert(root, alert.clone());
        }
        if let Some(ids) = restart {
            out.restart.push((rec.service.clone(), ids));
        } else if let Some(next) = state::read(root, &rec.service).and_then(|r| r.next_wake()) {
            wake = Some(wake.map_or(next, |w| w.min(next)));
        }
    }
    out.wake_in = wake.map(|w| (w - now).to_std().unwrap_or_default());
    Ok(out)
}

/// PM2 refused a restart the agent asked for.
pub fn restart_failed(
    root: &Path,
    service: &str,
    message: &str,
    now: DateTime<Utc>,
) -> crate::error::Result<()> {
    let (_, out) = state::update(root, service, now, |r| {
        ((), r.on_restart_failed(message, now))
    })?;
    if let Some(alert) = &out.alert {
        spawn_alert(root, alert.clone());
    }
    Ok(())
}

/// The workspace's logs policy (nx.json), read again only when the file changes: the agent
/// runs a rotation pass every 2 s and nx.json changes rarely.
#[derive(Debug, Default)]
pub struct LogPolicyCache {
    seen: Option<(Option<std::time::SystemTime>, u64)>,
    policy: Option<orchestrator_core::rotate::LogPolicy>,
}

impl LogPolicyCache {
    /// The policy as nx.json says it now (its modification time and length tell a change).
    pub fn get(
        &mut self,
        root: &Path,
    ) -> crate::error::Result<&orchestrator_core::rotate::LogPolicy> {
        let file = orchestrator_core::config::nx_json_path(root);
        let seen = std::fs::metadata(&file)
            .ok()
            .map(|m| (m.modified().ok(), m.len()));
        let policy = match self.policy.take() {
            Some(p) if seen.is_some() && seen == self.seen => p,
            _ => {
                let cfg = orchestrator_core::config::load_plugin_config(root)?;
                orchestrator_core::rotate::policy(cfg.logs.as_ref(), &file)?
            }
        };
        self.seen = seen;
        Ok(self.policy.insert(policy))
    }
}

/// Log rotation and retention for the whole workspace at `now` (daily and by size, by the
/// workspace's policy): whether live files were renamed (PM2 must then reopen its logs) and
/// what was done, one line each.
pub fn rotate(
    root: &Path,
    now: DateTime<Utc>,
    policy: &mut LogPolicyCache,
) -> crate::error::Result<(bool, Vec<String>)> {
    let policy = policy.get(root)?;
    let pass = crate::rotation::run(&orchestrator_core::layout::logs_root(root), now, policy);
    Ok((
        pass.reopen,
        pass.done.iter().map(ToString::to_string).collect(),
    ))
}

/// Explicit start/restart of these services (before PM2 launches them).
pub fn launched(root: &Path, launches: &[Launch], now: DateTime<Utc>) -> crate::error::Result<()> {
    for l in launches {
        state::update(root, &l.service, now, |r| ((), r.launched(l, now)))?;
    }
    Ok(())
}

/// Explicit stop of these services (before PM2 stops them): a pending restart is cancelled.
pub fn stopped(root: &Path, services: &[String], now: DateTime<Utc>) -> crate::error::Result<()> {
    for s in services {
        if state::read(root, s).is_some() {
            state::update(root, s, now, |r| ((), r.stopped(now)))?;
        }
    }
    Ok(())
}

/// Runs the service's alert command (`sh -c`, in the workspace root) with the event as JSON
/// on stdin; its exit status and output are recorded as an `alert` event. At most 60 s.
fn spawn_alert(root: &Path, event: Value) {
    let root = root.to_path_buf();
    let service = event["service"].as_str().unwrap_or_default().to_string();
    let Some(command) = state::read(&root, &service).and_then(|r| r.policy.alert_command) else {
        return;
    };
    let run = async move {
        let result = async {
            let mut child = tokio::process::Command::new("sh")
                .arg("-c")
                .arg(&command)
                .current_dir(&root)
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .kill_on_drop(true)
                .spawn()?;
            if let Some(mut stdin) = child.stdin.take() {
                // An alert command that does not read its stdin is not a failure of ours.
                if let Err(e) = stdin.write_all(format!("{event}\n").as_bytes()).await {
                    tracing::debug!(error = %e, "the alert command did not take the event on stdin");
                }
            }
            tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
                .await
                .map_err(|_| std::io::Error::other("timed out after 60 s"))?
        }
        .await;
        let details = match result {
            Ok(o) => {
                let mut text = String::from_utf8_lossy(&o.stdout).into_owned();
                text.push_str(&String::from_utf8_lossy(&o.stderr));
                text.truncate(2048);
                json!({"command": command, "exitCode": o.status.code(), "output": text})
            }
            Err(e) => json!({"command": command, "error": e.to_string()}),
        };
        if let Some(rec) = state::read(&root, &service) {
            let ev = crate::supervise::event("alert", &rec, Utc::now(), details);
            if let Err(e) = state::append_events(&root, &service, &[ev]) {
                tracing::warn!(service, error = %e, "could not write the alert event");
            }
        }
    };
    match tokio::runtime::Handle::try_current() {
        Ok(h) => {
            h.spawn(run);
        }
        Err(_) => {
            if let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                rt.block_on(run);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_signal_pm2_logged() {
        let log = "2026-11-26T10:00:00: PM2 log: App [api:0] exited with code [1] via signal [SIGINT]\n\
                   2026-11-26T10:00:01: PM2 log: App [api:0] exited with code [null] via signal [SIGKILL]\n\
                   2026-11-26T10:00:02: PM2 log: App [web:1] exited with code [0] via signal [SIGINT]";
        assert_eq!(signal_from_pm2_log(log, "api", "0"), Some("SIGKILL".into()));
        assert_eq!(signal_from_pm2_log(log, "web", "1"), None);
        let cluster = "PM2 log: App [server:3] exited with code [0] via signal [SIGKILL]";
        assert_eq!(
            signal_from_pm2_log(cluster, "server", "3"),
            Some("SIGKILL".into())
        );
        let ctrl_c = "PM2 log: App [server:3] exited with code [null] via signal [SIGINT]";
        assert_eq!(
            signal_from_pm2_log(ctrl_c, "server", "3"),
            Some("SIGINT".into())
        );
        assert_eq!(signal_from_pm2_log(log, "db", "2"), None);
        assert_eq!(container_signal(137), Some("SIGKILL".into()));
        assert_eq!(container_signal(143), Some("SIGTERM".into()));
        assert_eq!(container_signal(3), None);
    }

    #[test]
    fn runner_exit_codes_name_the_causes_restarting_cannot_fix() {
        assert_eq!(runner_cause(Some(16)), Some("EXIT_IMAGE_UNAVAILABLE"));
        assert_eq!(runner_cause(Some(12)), Some("EXIT_ENV_MISSING"));
        assert_eq!(runner_cause(Some(14)), Some("EXIT_PORT_IN_USE"));
        assert_eq!(runner_cause(Some(18)), None);
        assert_eq!(runner_cause(None), None);
    }

    #[test]
    fn agent_names_differ_per_checkout() {
        let a = agent_name(Path::new("/a/ws"), "ws");
        assert!(a.starts_with("orchestrator-agent-ws-"));
        assert_ne!(a, agent_name(Path::new("/b/ws"), "ws"));
    }

    fn at(ms: i64) -> DateTime<Utc> {
        DateTime::<Utc>::from_timestamp_millis(1_800_000_000_000 + ms).unwrap()
    }

    fn inst(status: &str, started: i64, code: Option<i64>) -> Pm2Process {
        Pm2Process {
            name: "api".into(),
            pm_id: 0,
            status: status.into(),
            started_ms: Some(at(started).timestamp_millis()),
            exit_code: code,
            ..Default::default()
        }
    }

    /// The reconcile loop on real files: a crash the agent missed is answered once, the
    /// restart is issued once, a restart PM2 already carried out is confirmed, not repeated.
    #[test]
    fn tick_answers_missed_exits_once_and_never_doubles_a_restart() {
        let root = std::env::temp_dir().join(format!("orch-agent-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let policy = crate::policy::RestartPolicy {
            backoff_initial_ms: 200,
            max_restarts: 2,
            ..Default::default()
        };
        let l = Launch {
            switched_from: None,
            service: "api".into(),
            kind: "app".into(),
            profile: "development".into(),
            policy,
            check_ports: vec![],
        };
        launched(&root, &[l], at(0)).unwrap();
        let crashed = [inst("stopped", 0, Some(1))];
        // Seen once only: not yet answered (the bus may still deliver it).
        let t = tick(&root, &crashed, false, at(100)).unwrap();
        assert_eq!(t, Tick::default());
        let t = tick(&root, &crashed, true, at(100)).unwrap();
        assert_eq!(t.restart, vec![]);
        assert_eq!(t.wake_in, Some(Duration::from_millis(200)));
        // The bus delivers the same exit late: a duplicate.
        let e = ExitEvent {
            process: crashed[0].clone(),
            pm2_home: None,
        };
        assert!(on_exit(&root, &e, at(150)).unwrap().events.is_empty());
        // Due: restart once; a second look before PM2 shows it re-issues (agent killed).
        let t = tick(&root, &crashed, true, at(300)).unwrap();
        assert_eq!(t.restart, vec![("api".into(), vec!["0".into()])]);
        let t = tick(&root, &crashed, true, at(310)).unwrap();
        assert_eq!(t.restart, vec![("api".into(), vec!["0".into()])]);
        // PM2 shows it started after the decision: confirmed, counted once.
        let up = [inst("online", 320, None)];
        assert_eq!(tick(&root, &up, true, at(330)).unwrap().restart, vec![]);
        assert_eq!(tick(&root, &up, true, at(340)).unwrap().restart, vec![]);
        let rec = state::read(&root, "api").unwrap();
        assert_eq!((rec.total_restarts, rec.state_name()), (1, "running"));
        let events = std::fs::read_to_string(crate::layout::events_file(&root, "api")).unwrap();
        let names: Vec<String> = events
            .lines()
            .map(|l| {
                serde_json::from_str::<Value>(l).unwrap()["event"]
                    .as_str()
                    .unwrap()
                    .to_string()
            })
            .collect();
        assert_eq!(names, vec!["exited", "restart_scheduled", "restarted"]);
        // Stop during a backoff: nothing is restarted afterwards.
        tick(&root, &[inst("stopped", 320, Some(1))], true, at(400)).unwrap();
        assert_eq!(state::read(&root, "api").unwrap().state_name(), "backoff");
        stopped(&root, &["api".into()], at(450)).unwrap();
        let t = tick(&root, &[inst("stopped", 320, Some(1))], true, at(10_000)).unwrap();
        assert_eq!(t, Tick::default());
        let _ = std::fs::remove_dir_all(&root);
    }

    #[test]
    fn an_exit_only_in_the_table_is_answered_on_the_second_look_or_the_first_after_a_start() {
        let mut w = Watch::default();
        assert!(
            w.confirm(&[inst("stopped", 10, Some(1))]),
            "the first look: missed while down"
        );
        let mut w = Watch::default();
        assert!(w.confirm(&[inst("online", 10, None)]));
        assert!(
            !w.confirm(&[inst("stopped", 10, Some(1))]),
            "seen once: the bus may still bring it"
        );
        assert!(w.confirm(&[inst("stopped", 10, Some(1))]), "seen twice");
        assert!(
            !w.confirm(&[inst("stopped", 20, Some(1))]),
            "another run of it: once again"
        );
    }

    #[test]
    fn the_table_is_looked_at_often_only_while_something_moves() {
        let now = chrono::DateTime::parse_from_rfc3339("2026-12-01T10:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let mut w = Watch::default();
        assert_eq!(w.reconcile_in(now), RECONCILE_QUIET, "nothing seen: quiet");
        w.confirm(&[inst("online", 10, None)]);
        assert_eq!(w.reconcile_in(now), RECONCILE_QUIET);
        w.confirm(&[inst("stopped", 10, Some(1))]);
        assert_eq!(
            w.reconcile_in(now),
            RECONCILE_BUSY,
            "a table-only exit waits for its second look"
        );
        w.confirm(&[inst("stopped", 10, Some(1))]);
        assert_eq!(
            w.reconcile_in(now),
            RECONCILE_QUIET,
            "confirmed: quiet again"
        );
        w.exit_seen(now);
        assert_eq!(
            w.reconcile_in(now + chrono::Duration::seconds(29)),
            RECONCILE_BUSY
        );
        assert_eq!(
            w.reconcile_in(now + chrono::Duration::seconds(30)),
            RECONCILE_QUIET,
            "settled"
        );
    }

    #[test]
    fn the_logs_policy_is_read_again_only_when_nx_json_changes() {
        let root = std::env::temp_dir().join(format!("orch-agent-policy-{}", std::process::id()));
        std::fs::create_dir_all(&root).unwrap();
        let nx = root.join("nx.json");
        let with = |days: u32| {
            format!(
                r#"{{"pluginsConfig":{{"@workspace/orchestrator":{{"logs":{{"retainDays":{days}}}}}}}}}"#
            )
        };
        let mut cache = LogPolicyCache::default();
        assert_eq!(
            cache.get(&root).unwrap().retain_days,
            14,
            "no nx.json: defaults"
        );
        std::fs::write(&nx, with(3)).unwrap();
        assert_eq!(cache.get(&root).unwrap().retain_days, 3, "created");
        assert_eq!(cache.get(&root).unwrap().retain_days, 3, "kept");
        std::fs::write(&nx, with(30)).unwrap();
        assert_eq!(cache.get(&root).unwrap().retain_days, 30, "changed");
        std::fs::write(&nx, "{ not json").unwrap();
        assert!(
            cache.get(&root).is_err(),
            "a broken nx.json is said, not hidden by the cache"
        );
        std::fs::remove_file(&nx).unwrap();
        assert_eq!(
            cache.get(&root).unwrap().retain_days,
            14,
            "removed: defaults again"
        );
        let _ = std::fs::remove_dir_all(&root);
    }

    #[test]
    fn logs_are_reopened_only_in_a_quiet_moment() {
        let now = chrono::DateTime::parse_from_rfc3339("2026-12-01T10:00:05Z")
            .unwrap()
            .with_timezone(&Utc);
        let mut w = Watch::default();
        assert!(w.may_reopen(["online", "stopped"], now));
        assert!(!w.may_reopen(["online", "stopping"], now));
        assert!(!w.may_reopen(["launching"], now));
        w.exit_seen(now - chrono::Duration::milliseconds(400));
        assert!(!w.may_reopen(["online"], now), "an exit 400 ms ago");
        assert!(w.may_reopen(["online"], now + chrono::Duration::seconds(1)));
    }

    #[test]
    fn the_agent_is_restarted_by_pm2_with_its_own_settings() {
        let app = pm2_app(
            Path::new("/ws"),
            "acme",
            Path::new("/pkg/lib/agent.js"),
            "/home/u/.pm2",
        );
        assert_eq!(app["autorestart"], true);
        assert_eq!(app["min_uptime"], 300);
        assert_eq!(app["env"]["ORCHESTRATOR_KIND"], "agent");
        assert_eq!(app["out_file"], "/ws/.orchestrator/agent/out.log");
        assert_eq!(app["name"], agent_name(Path::new("/ws"), "acme"));
    }
}
