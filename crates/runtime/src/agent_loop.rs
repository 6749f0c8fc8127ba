//! The workspace agent's loop, run by the native `orchestrator-supervisor agent` process that PM2
//! supervises (one per workspace, started by any start command, stopped by stop-all). It reads
//! PM2's bus and calls PM2's RPC socket itself (`pm2rpc`), so the agent needs neither Node nor
//! PM2's client: its footprint is a few MiB, not a Node process's ~60 (docs/benchmarks.md).
//!
//! What it does, one thing at a time (exits, looks and restarts never interleave):
//! - an exit on the bus is answered at once (`agent::on_exit`: the record, the events, the
//!   backoff), then PM2's table is looked at once for the exits that arrived within 20 ms;
//! - a look (`agent::tick`) restarts what is due, by PM2 id, and looks again to confirm;
//! - it looks anyway every 2 s while something moves and every 30 s when all is quiet
//!   (`Watch::reconcile_in`: the net under a lost bus message; exits missed while it was down
//!   are seen on its first look, backoffs and stability checks wake it at their own time);
//! - every 2 s it rotates the logs (daily and by size), PM2 reopening its files in a quiet
//!   moment and compression running beside the loop.
//!
//! It opens no network port: PM2's bus and RPC are unix sockets in PM2_HOME.

use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{SecondsFormat, Utc};
use orchestrator_core::pm2::Pm2Process;
use serde_json::json;
use tokio::time::Instant;

use crate::agent::{self, ExitEvent, Watch};
use crate::pm2rpc::{self, Bus, BusEvent};

const ROTATE: Duration = Duration::from_secs(2);
const CALL: Duration = Duration::from_secs(30);
/// After an exit, the look at PM2's table waits this long for the exits that come with it (a
/// stop of 100 services is 100 exits): one look for the burst, not one each.
const BURST: Duration = Duration::from_millis(20);

/// One line of the agent's log (its stdout, which PM2 keeps in the agent's out.log).
pub fn say(line: &str) {
    use std::io::Write;
    let stamp = Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true);
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{stamp} {line}");
    let _ = out.flush();
}

/// Pure: the line the agent logs for one event `on_exit` wrote.
pub fn event_line(e: &serde_json::Value) -> String {
    let mut line = format!(
        "{}: {}",
        e["service"].as_str().unwrap_or("?"),
        e["event"].as_str().unwrap_or("?")
    );
    if let Some(ms) = e.get("delayMs").and_then(serde_json::Value::as_u64) {
        line.push_str(&format!(" in {ms} ms"));
    }
    if let Some(code) = e.get("code").and_then(serde_json::Value::as_str) {
        line.push_str(&format!(" ({code})"));
    }
    line
}

/// Pure: which bus events matter to the agent. Every exit, stop or delete makes PM2 reopen its
/// logs later (`Watch::exit_seen`); an `exit` of one of this workspace's services is answered.
pub fn exit_of(root: &Path, ev: &BusEvent) -> (bool, Option<Pm2Process>) {
    if ev.name != "process:event" {
        return (false, None);
    }
    let kind = ev.data["event"].as_str().unwrap_or_default();
    let seen = matches!(kind, "exit" | "stop" | "delete");
    if kind != "exit" {
        return (seen, None);
    }
    let p = pm2rpc::bus_process(&ev.data["process"]);
    let raw_id = &ev.data["process"]["pm_id"];
    // A worker replaced by a reload is `_old_<id>`: not ours to answer.
    let replaced = raw_id.as_str().is_some_and(|s| s.starts_with("_old_"));
    (seen, (is_ours(root, &p) && !replaced).then_some(p))
}

/// Pure: a service of this workspace (not its agent), the processes the agent answers for.
fn is_ours(root: &Path, p: &Pm2Process) -> bool {
    p.workspace.as_deref() == Some(&*root.to_string_lossy()) && p.kind.as_deref() != Some("agent")
}

struct Agent {
    root: PathBuf,
    home: PathBuf,
    watch: Watch,
    reopen_pending: bool,
    policy: agent::LogPolicyCache,
    compressing: Option<tokio::task::JoinHandle<()>>,
}

impl Agent {
    async fn table(&self) -> Result<Vec<Pm2Process>, String> {
        Ok(pm2rpc::list(&self.home).await?.unwrap_or_default())
    }

    fn on_exit(&mut self, p: Pm2Process) {
        let e = ExitEvent {
            process: p,
            pm2_home: Some(self.home.display().to_string()),
        };
        match agent::on_exit(&self.root, &e, Utc::now()) {
            Ok(o) => o.events.iter().for_each(|ev| say(&event_line(ev))),
            Err(err) => say(&format!(
                "{}: could not record its exit: {err}",
                e.process.name
            )),
        }
    }

    /// One look at PM2's table, the restarts it calls for, and one more look to confirm them.
    /// Returns when to look again at the latest.
    async fn tick(&mut self) -> Option<Duration> {
        let mut again = false;
        loop {
            let list = match self.table().await {
                Ok(l) => l
                    .into_iter()
                    .filter(|p| is_ours(&self.root, p))
                    .collect::<Vec<_>>(),
                Err(e) => {
                    say(&format!("could not read PM2's table: {e}"));
                    return None;
                }
            };
            let confirmed = self.watch.confirm(&list);
            let t = match agent::tick(&self.root, &list, confirmed, Utc::now()) {
                Ok(t) => t,
                Err(e) => {
                    say(&format!("reconcile failed: {e}"));
                    return None;
                }
            };
            for (service, ids) in &t.restart {
                for id in ids {
                    say(&format!("{service}: restarting (pm2 id {id})"));
                    let pm_id = id.parse::<u64>().map(|n| json!(n)).unwrap_or(json!(id));
                    let done = pm2rpc::act(
                        &self.home,
                        "restartProcessId",
                        json!({"id": pm_id, "env": {}}),
                        CALL,
                    )
                    .await;
                    match done {
                        // A stop that came while PM2 restarted it wins: the stop command marks
                        // the record before it asks PM2, so either its stop follows ours or
                        // we see the mark here.
                        Ok(()) if !crate::state::wanted(&self.root, service) => {
                            say(&format!("{service}: stopped meanwhile, stopping it again"));
                            if let Err(e) =
                                pm2rpc::act(&self.home, "stopProcessId", pm_id, CALL).await
                            {
                                say(&format!("{service}: PM2 could not stop it: {e}"));
                            }
                        }
                        Ok(()) => {}
                        Err(e) => {
                            say(&format!("{service}: PM2 could not restart it: {e}"));
                            if let Err(err) =
                                agent::restart_failed(&self.root, service, &e, Utc::now())
                            {
                                say(&format!("{service}: could not record it: {err}"));
                            }
                        }
                    }
                }
            }
            if t.restart.is_empty() || again {
                return t.wake_in;
            }
            again = true; // confirm the restarts: the next look writes `restarted`
        }
    }

    /// Rotation and retention: rename (PM2 reopens its files in a quiet moment), then compress
    /// what nobody writes to any more, beside the loop (a large file takes seconds).
    async fn rotate(&mut self) {
        match agent::rotate(&self.root, Utc::now(), &mut self.policy) {
            Ok((renamed, done)) => {
                done.iter().for_each(|d| say(&format!("rotate: {d}")));
                self.reopen_pending |= renamed;
            }
            Err(e) => say(&format!("rotate: {e}")),
        }
        if self.reopen_pending {
            let statuses = match self.table().await {
                Ok(l) => l.into_iter().map(|p| p.status).collect::<Vec<_>>(),
                Err(_) => return,
            };
            if self
                .watch
                .may_reopen(statuses.iter().map(String::as_str), Utc::now())
            {
                match pm2rpc::act(&self.home, "reloadLogs", json!({}), CALL).await {
                    Ok(()) => self.reopen_pending = false,
                    Err(e) => say(&format!("rotate: PM2 could not reopen its logs: {e}")),
                }
            }
        }
        if self.compressing.as_ref().is_some_and(|h| !h.is_finished()) {
            return;
        }
        let dir = orchestrator_core::layout::logs_root(&self.root);
        self.compressing = Some(tokio::task::spawn_blocking(move || {
            for d in crate::rotation::compress_ready(&dir) {
                say(&format!("rotate: {d}"));
            }
        }));
    }
}

/// The agent: runs until PM2's daemon goes away (an error) or a SIGINT/SIGTERM (Ok).
pub async fn serve(root: &Path, pm2_home: &Path) -> Result<(), String> {
    use tokio::signal::unix::{signal, SignalKind};
    agent::started(root, std::process::id()).map_err(|e| e.to_string())?;
    let mut bus = Bus::connect(pm2_home).await.map_err(|e| {
        format!(
            "PM2's bus ({}): {e}",
            pm2rpc::bus_socket(pm2_home).display()
        )
    })?;
    let mut sigint = signal(SignalKind::interrupt()).map_err(|e| e.to_string())?;
    let mut sigterm = signal(SignalKind::terminate()).map_err(|e| e.to_string())?;
    let mut a = Agent {
        root: root.to_path_buf(),
        home: pm2_home.to_path_buf(),
        watch: Watch::default(),
        reopen_pending: false,
        policy: agent::LogPolicyCache::default(),
        compressing: None,
    };
    say(&format!(
        "agent for {} online (pid {})",
        root.display(),
        std::process::id()
    ));
    let far = || Instant::now() + Duration::from_secs(3600);
    // The next look: now (the first), after exits, at the reconcile period, or when a backoff
    // falls due — whichever is first.
    let mut look_at = Instant::now();
    let mut reconcile_at = Instant::now() + agent::RECONCILE_BUSY;
    let mut rotate_at = Instant::now() + ROTATE;
    loop {
        tokio::select! {
            // Timers before the bus: PM2 publishes every log line on the bus too, and a chatty
            // app must not hold the looks and the rotation back. They fire only when due.
            biased;
            _ = sigint.recv() => { say("SIGINT: agent stopping"); return Ok(()); }
            _ = sigterm.recv() => { say("SIGTERM: agent stopping"); return Ok(()); }
            _ = tokio::time::sleep_until(look_at.min(reconcile_at)) => {
                let wake = a.tick().await;
                let period = a.watch.reconcile_in(Utc::now());
                reconcile_at = Instant::now() + period;
                look_at = match wake {
                    Some(w) if w < period => Instant::now() + w,
                    _ => far(),
                };
            }
            _ = tokio::time::sleep_until(rotate_at) => {
                a.rotate().await;
                rotate_at = Instant::now() + ROTATE;
            }
            events = bus.next() => {
                let events = events.map_err(|e| format!("PM2's bus: {e}"))?;
                for ev in &events {
                    let (seen, exited) = exit_of(root, ev);
                    if seen {
                        a.watch.exit_seen(Utc::now());
                        reconcile_at = reconcile_at.min(Instant::now() + agent::RECONCILE_BUSY);
                    }
                    if let Some(p) = exited {
                        a.on_exit(p);
                        look_at = look_at.min(Instant::now() + BURST);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exit(pm_id: serde_json::Value, ws: &str, kind: &str) -> BusEvent {
        BusEvent {
            name: "process:event".into(),
            data: json!({"event": "exit", "process": {"name": "api", "pm_id": pm_id, "status": "stopped",
                "ORCHESTRATOR_WORKSPACE": ws, "ORCHESTRATOR_KIND": kind, "exit_code": 1, "pm_uptime": 5}}),
        }
    }

    #[test]
    fn only_exits_of_this_workspaces_services_are_answered() {
        let root = Path::new("/w");
        let (seen, p) = exit_of(root, &exit(json!(3), "/w", "app"));
        assert!(seen);
        let p = p.expect("ours");
        assert_eq!((p.pm_id, p.exit_code, p.started_ms), (3, Some(1), Some(5)));
        assert_eq!(
            exit_of(root, &exit(json!(3), "/other", "app")),
            (true, None)
        );
        assert_eq!(exit_of(root, &exit(json!(3), "/w", "agent")), (true, None));
        assert_eq!(
            exit_of(root, &exit(json!("_old_3"), "/w", "app")),
            (true, None),
            "a worker a reload replaced"
        );
        let stop = BusEvent {
            name: "process:event".into(),
            data: json!({"event": "stop", "process": {}}),
        };
        assert_eq!(exit_of(root, &stop), (true, None));
        let log = BusEvent {
            name: "log:out".into(),
            data: json!({"data": "x"}),
        };
        assert_eq!(exit_of(root, &log), (false, None));
    }

    #[test]
    fn event_lines_say_the_delay_and_the_cause() {
        let e = json!({"service": "api", "event": "restart-scheduled", "delayMs": 250});
        assert_eq!(event_line(&e), "api: restart-scheduled in 250 ms");
        let e = json!({"service": "db", "event": "failed", "code": "IMAGE_UNAVAILABLE"});
        assert_eq!(event_line(&e), "db: failed (IMAGE_UNAVAILABLE)");
    }
}
