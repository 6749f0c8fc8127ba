//! The consolidated status snapshot (DESIGN §3): one row per managed service, merged from PM2's
//! table, the Docker engine, the agent's records and app health probes. `compute_status` is the
//! pure merge; `render_table` draws the table from the same snapshot, so both show one truth.

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::supervise::{Desired, Phase, Record};

/// One PM2 instance of a service (ours).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Pm2Obs {
    pub pm_id: u32,
    pub pid: Option<u32>,
    pub status: String,
    pub started_ms: Option<i64>,
    pub profile: Option<String>,
    pub exit_code: Option<i64>,
}

/// A dependency's container as the engine reports it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ContainerObs {
    pub id: String,
    pub running: bool,
    /// The engine's state: `running`, `exited`, `created`, `restarting`, `paused`, `dead`.
    pub status: String,
    /// `healthy` | `unhealthy` | `starting`; `None` without a healthcheck.
    pub health: Option<String>,
    pub health_output: Option<String>,
    pub exit_code: Option<i64>,
    pub oom_killed: bool,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Engine {
    NotNeeded,
    Reachable,
    Unreachable(String),
}

#[derive(Debug, Clone, PartialEq)]
pub enum Probe {
    NotConfigured,
    /// Not probed (nothing runs).
    Skipped,
    Ok,
    Failed(String),
}

#[derive(Debug, Clone, PartialEq)]
pub struct ServiceObs {
    pub name: String,
    /// Which replica of a replicated dependency this row is (1-based); `None` otherwise.
    pub replica: Option<u32>,
    /// `app` | `dependency`
    pub kind: String,
    pub ports: Vec<u16>,
    pub pm2: Vec<Pm2Obs>,
    /// Whether PM2's daemon answered at all.
    pub pm2_daemon: bool,
    pub container: Option<ContainerObs>,
    pub engine: Engine,
    pub record: Option<Record>,
    pub probe: Probe,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FailureView {
    pub at: String,
    /// The exit-code name of the cause, e.g. `EXIT_IMAGE_UNAVAILABLE`.
    pub code: String,
    pub reason: String,
    pub exit_code: Option<i64>,
    pub signal: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceStatus {
    pub name: String,
    /// A replicated dependency has a row per replica (1-based); `None` for everything else.
    pub replica: Option<u32>,
    pub kind: String,
    /// `online` | `starting` | `backoff` | `stopped` | `degraded` | `failed` | `unknown`
    pub state: String,
    /// `healthy` | `unhealthy` | `starting` | `none`
    pub health: String,
    pub pid: Option<u32>,
    pub pids: Vec<u32>,
    pub container_id: Option<String>,
    pub uptime_seconds: Option<u64>,
    /// `uptimeSeconds` as the table shows it (`3h04m`).
    pub uptime: Option<String>,
    /// Restarts by the restart policy since the last explicit start.
    pub restarts: u32,
    /// Of those, inside the policy window now.
    pub recent_restarts: u32,
    pub window_seconds: u64,
    pub last_failure: Option<FailureView>,
    pub ports: Vec<u16>,
    pub profile: Option<String>,
    /// Why the state is what it is, when that is not obvious (`restart 2 at …`, `container missing`).
    pub detail: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Snapshot {
    pub workspace: String,
    pub profile: String,
    pub generated_at: String,
    /// `online` | `not running`
    pub pm2: String,
    /// `reachable` | `unreachable: <cause>` | `not used`
    pub docker: String,
    pub services: Vec<ServiceStatus>,
}

fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// Pure: `3h04m`, `2m05s`, `42s`, `3d04h`.
pub fn human_duration(s: u64) -> String {
    let (d, h, m, sec) = (s / 86_400, (s / 3600) % 24, (s / 60) % 60, s % 60);
    if d > 0 {
        format!("{d}d{h:02}h")
    } else if h > 0 {
        format!("{h}h{m:02}m")
    } else if m > 0 {
        format!("{m}m{sec:02}s")
    } else {
        format!("{sec}s")
    }
}

fn live(status: &str) -> bool {
    matches!(
        status,
        "online" | "launching" | "waiting restart" | "stopping"
    )
}

/// Pure: one service's row from what was observed at `now`.
pub fn compute_service(o: &ServiceObs, now: DateTime<Utc>) -> ServiceStatus {
    let rec = o.record.as_ref();
    let wanted = rec.is_some_and(|r| r.desired == Desired::Running);
    let online: Vec<&Pm2Obs> = o.pm2.iter().filter(|p| p.status == "online").collect();
    let any_live = o.pm2.iter().any(|p| live(&p.status));
    let mut detail = None;
    let mut health = "none".to_string();
    let container_health = |c: &ContainerObs| c.health.clone().unwrap_or_else(|| "none".into());

    let state = match rec.map(|r| &r.phase) {
        Some(phase) if !o.pm2_daemon && wanted => {
            if matches!(phase, Phase::Failed { .. }) {
                "failed"
            } else {
                detail = Some(
                    "meant to run, but PM2's daemon is not running (killed?): `nx run workspace:start` brings it back"
                        .into(),
                );
                "stopped"
            }
        }
        Some(Phase::Failed { .. }) if wanted || !any_live => {
            if let Some(c) = &o.container {
                health = container_health(c);
            }
            "failed"
        }
        Some(Phase::Backoff {
            due_at, attempt, ..
        }) if wanted => {
            detail = Some(format!("restart {attempt} at {}", ts(*due_at)));
            "backoff"
        }
        Some(Phase::Restarting { attempt, .. }) if wanted => {
            detail = Some(format!("restart {attempt} under way"));
            "backoff"
        }
        _ if !any_live => {
            if o.pm2.iter().any(|p| p.status == "errored") {
                detail = Some("PM2 marked it errored".into());
                "failed"
            } else {
                if wanted && !o.pm2.is_empty() {
                    detail = Some(
                        "exited; no restart scheduled (is the workspace agent online?)".into(),
                    );
                }
                "stopped"
            }
        }
        _ if online.is_empty() => "starting",
        _ => match o.kind.as_str() {
            "dependency" => match (&o.engine, &o.container) {
                (Engine::Unreachable(m), _) => {
                    detail = Some(format!(
                        "Docker engine unreachable (the container cannot be seen): {m}"
                    ));
                    "degraded"
                }
                (_, None) => {
                    detail = Some("the runner is online but its container is missing".into());
                    "degraded"
                }
                (_, Some(c)) if !c.running => {
                    detail = Some(format!(
                        "the runner is online but its container is {}{}",
                        c.status,
                        c.exit_code
                            .map(|x| format!(" (exit code {x})"))
                            .unwrap_or_default()
                    ));
                    "degraded"
                }
                (_, Some(c)) => {
                    health = container_health(c);
                    match health.as_str() {
                        "healthy" | "none" => "online",
                        "starting" => "starting",
                        _ => {
                            detail = c
                                .health_output
                                .clone()
                                .map(|h| format!("health check: {h}"));
                            "degraded"
                        }
                    }
                }
            },
            _ => match &o.probe {
                Probe::Ok => {
                    health = "healthy".into();
                    "online"
                }
                Probe::Failed(why) => {
                    health = "unhealthy".into();
                    detail = Some(why.clone());
                    "degraded"
                }
                Probe::NotConfigured | Probe::Skipped => "online",
            },
        },
    };

    let pids: Vec<u32> = online.iter().filter_map(|p| p.pid).collect();
    let uptime_seconds = if state == "online" || state == "degraded" || state == "starting" {
        match (&o.container, o.kind.as_str()) {
            (Some(c), "dependency") if c.running => c.started_at,
            _ => online
                .iter()
                .filter_map(|p| p.started_ms)
                .min()
                .and_then(DateTime::<Utc>::from_timestamp_millis),
        }
        .map(|s| (now - s).num_seconds().max(0) as u64)
    } else {
        None
    };

    let mut last_failure = rec
        .and_then(|r| r.last_failure.as_ref())
        .map(|f| FailureView {
            at: f.at.clone(),
            code: f.code.clone(),
            reason: f.reason.clone(),
            exit_code: f.exit_code,
            signal: f.signal.clone(),
        });
    if last_failure.is_none() {
        if let Some(c) = o.container.as_ref().filter(|c| !c.running && c.oom_killed) {
            last_failure = Some(FailureView {
                at: c.finished_at.map(ts).unwrap_or_default(),
                code: "EXIT_CONTAINER_FAILED".into(),
                reason: "killed by the kernel: out of memory (OOMKilled)".into(),
                exit_code: c.exit_code,
                signal: Some("SIGKILL".into()),
            });
        } else if let Some(x) = rec.and_then(|r| r.last_exit.as_ref()) {
            // The last crash the agent answered (restarted since), as the last failure seen.
            last_failure = Some(FailureView {
                at: rec.map(|r| ts(r.updated_at)).unwrap_or_default(),
                code: "exited".into(),
                reason: format!(
                    "exited {}{}",
                    crate::supervise::describe_exit(x["exitCode"].as_i64(), x["signal"].as_str()),
                    x["reason"]
                        .as_str()
                        .map(|r| format!(": {r}"))
                        .unwrap_or_default()
                ),
                exit_code: x["exitCode"].as_i64(),
                signal: x["signal"].as_str().map(str::to_string),
            });
        }
    }
    // A dependency waiting for its restart while the engine is away is degraded, and says why:
    // the restart will only succeed once the engine answers again.
    let state = match (&o.engine, state) {
        (Engine::Unreachable(m), "backoff") if o.kind == "dependency" => {
            detail = Some(format!(
                "Docker engine unreachable: {m}; {}",
                detail.as_deref().unwrap_or("a restart is pending")
            ));
            "degraded"
        }
        (_, s) => s,
    };
    if state == "failed" && last_failure.is_none() {
        last_failure = Some(FailureView {
            at: ts(now),
            code: "EXIT_FAILURE".into(),
            reason: detail.clone().unwrap_or_else(|| "failed".into()),
            exit_code: o.pm2.iter().find_map(|p| p.exit_code),
            signal: None,
        });
    }

    ServiceStatus {
        name: o.name.clone(),
        replica: o.replica,
        kind: o.kind.clone(),
        state: state.into(),
        health,
        pid: pids.first().copied(),
        pids,
        container_id: o
            .container
            .as_ref()
            .map(|c| c.id.chars().take(12).collect()),
        uptime: uptime_seconds.map(human_duration),
        uptime_seconds,
        restarts: rec.map(|r| r.total_restarts).unwrap_or(0),
        recent_restarts: rec
            .map(|r| r.history.recent(&r.policy, now).len() as u32)
            .unwrap_or(0),
        window_seconds: rec.map(|r| r.policy.window_seconds).unwrap_or(600),
        last_failure,
        ports: o.ports.clone(),
        profile: o
            .pm2
            .iter()
            .find_map(|p| p.profile.clone())
            .or_else(|| rec.map(|r| r.profile.clone()).filter(|p| !p.is_empty())),
        detail,
    }
}

/// Pure: the rows, in the order given (dependency order).
pub fn compute_status(obs: &[ServiceObs], now: DateTime<Utc>) -> Vec<ServiceStatus> {
    obs.iter().map(|o| compute_service(o, now)).collect()
}

/// Services that make `--strict` fail.
pub fn unhealthy(s: &Snapshot) -> Vec<&ServiceStatus> {
    s.services
        .iter()
        .filter(|r| r.state == "failed" || r.state == "degraded")
        .collect()
}

/// Pure: the table cells of a row, each a value of the JSON (or a prefix of one, cut with `…`).
pub fn row_cells(r: &ServiceStatus) -> Vec<String> {
    let dash = || "-".to_string();
    let failure = r
        .last_failure
        .as_ref()
        .map(|f| {
            let mut how = Vec::new();
            if let Some(c) = f.exit_code {
                how.push(format!("exit {c}"));
            }
            if let Some(s) = &f.signal {
                how.push(s.clone());
            }
            how.push(f.at.clone());
            let reason = f.reason.lines().next().unwrap_or_default();
            let reason = if reason.chars().count() > 60 {
                format!("{}…", reason.chars().take(59).collect::<String>())
            } else {
                reason.to_string()
            };
            // A crash the agent answered carries no exit-code name: its reason says it.
            if f.code == "exited" {
                format!("{reason} ({})", how.join(", "))
            } else {
                format!("{}: {reason} ({})", f.code, how.join(", "))
            }
        })
        .unwrap_or_else(dash);
    vec![
        match r.replica {
            Some(n) => format!("{}[{n}]", r.name),
            None => r.name.clone(),
        },
        r.kind.clone(),
        r.state.clone(),
        r.health.clone(),
        match (&r.container_id, r.pids.is_empty()) {
            (Some(c), _) => c.clone(),
            (None, false) => r
                .pids
                .iter()
                .map(u32::to_string)
                .collect::<Vec<_>>()
                .join(","),
            (None, true) => dash(),
        },
        r.uptime.clone().unwrap_or_else(dash),
        format!(
            "{} ({} in {}s)",
            r.restarts, r.recent_restarts, r.window_seconds
        ),
        if r.ports.is_empty() {
            dash()
        } else {
            r.ports
                .iter()
                .map(u16::to_string)
                .collect::<Vec<_>>()
                .join(",")
        },
        r.profile.clone().unwrap_or_else(dash),
        failure,
    ]
}

pub const HEADERS: [&str; 10] = [
    "SERVICE",
    "KIND",
    "STATE",
    "HEALTH",
    "PID/CONTAINER",
    "UPTIME",
    "RESTARTS",
    "PORTS",
    "PROFILE",
    "LAST FAILURE",
];

fn paint(state: &str, text: &str) -> String {
    let code = match state {
        "online" | "healthy" => "32",
        "starting" | "backoff" | "degraded" | "unhealthy" | "unknown" => "33",
        "failed" => "31",
        _ => "2",
    };
    format!("\x1b[{code}m{text}\x1b[0m")
}

/// Pure: the table (with ANSI colours only when `color`), one row per service, then the
/// details that explain a state.
pub fn render_table(s: &Snapshot, color: bool) -> String {
    let rows: Vec<Vec<String>> = s.services.iter().map(row_cells).collect();
    let mut widths: Vec<usize> = HEADERS.iter().map(|h| h.chars().count()).collect();
    for r in &rows {
        for (i, c) in r.iter().enumerate() {
            widths[i] = widths[i].max(c.chars().count());
        }
    }
    let line = |cells: &[String], painted: bool| {
        let mut out = String::new();
        for (i, c) in cells.iter().enumerate() {
            let pad = " ".repeat(widths[i] - c.chars().count());
            let text = if painted && (i == 2 || i == 3) {
                paint(c, c)
            } else {
                c.clone()
            };
            if i + 1 == cells.len() {
                out.push_str(&text);
            } else {
                out.push_str(&format!("{text}{pad}  "));
            }
        }
        out.trim_end().to_string()
    };
    let mut out = format!(
        "workspace {} · profile {} · PM2 {} · Docker {}\n",
        s.workspace, s.profile, s.pm2, s.docker
    );
    let head: Vec<String> = HEADERS.iter().map(|h| h.to_string()).collect();
    out.push_str(&line(&head, false));
    out.push('\n');
    for r in &rows {
        out.push_str(&line(r, color));
        out.push('\n');
    }
    for r in s.services.iter().filter(|r| r.detail.is_some()) {
        out.push_str(&format!(
            "  {}: {}\n",
            r.name,
            r.detail.as_deref().unwrap_or_default()
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::RestartPolicy;
    use crate::supervise::{LastFailure, Launch};

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-11-26T12:00:00Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    fn rec(kind: &str) -> Record {
        let mut r = Record::new("svc", now());
        r.launched(
            &Launch {
                switched_from: None,
                service: "svc".into(),
                kind: kind.into(),
                profile: "staging".into(),
                policy: RestartPolicy::default(),
                check_ports: vec![],
            },
            now(),
        );
        r
    }

    fn pm2(status: &str) -> Pm2Obs {
        Pm2Obs {
            pm_id: 1,
            pid: (status == "online").then_some(4242),
            status: status.into(),
            started_ms: Some((now() - chrono::Duration::seconds(3725)).timestamp_millis()),
            profile: Some("staging".into()),
            exit_code: None,
        }
    }

    fn app(pm: Vec<Pm2Obs>, record: Option<Record>, probe: Probe) -> ServiceObs {
        ServiceObs {
            name: "svc".into(),
            replica: None,
            kind: "app".into(),
            ports: vec![3000],
            pm2: pm,
            pm2_daemon: true,
            container: None,
            engine: Engine::NotNeeded,
            record,
            probe,
        }
    }

    fn container(running: bool, health: Option<&str>) -> ContainerObs {
        ContainerObs {
            id: "0123456789abcdef".into(),
            running,
            status: if running { "running" } else { "exited" }.into(),
            health: health.map(Into::into),
            health_output: Some("pg_isready: no response".into()),
            exit_code: (!running).then_some(1),
            oom_killed: false,
            started_at: Some(now() - chrono::Duration::seconds(90)),
            finished_at: None,
        }
    }

    fn dep(pm: Vec<Pm2Obs>, c: Option<ContainerObs>, engine: Engine) -> ServiceObs {
        ServiceObs {
            kind: "dependency".into(),
            container: c,
            engine,
            record: Some(rec("dependency")),
            probe: Probe::NotConfigured,
            ..app(pm, None, Probe::NotConfigured)
        }
    }

    fn st(o: &ServiceObs) -> (String, String) {
        let s = compute_service(o, now());
        (s.state, s.health)
    }

    #[test]
    fn never_started_is_stopped_not_an_error() {
        let s = compute_service(&app(vec![], None, Probe::Skipped), now());
        assert_eq!((s.state.as_str(), s.health.as_str()), ("stopped", "none"));
        assert_eq!(
            (s.pid, s.uptime_seconds, s.last_failure),
            (None, None, None)
        );
    }

    #[test]
    fn apps_online_healthy_degraded_starting() {
        let ok = app(vec![pm2("online")], Some(rec("app")), Probe::Ok);
        let s = compute_service(&ok, now());
        assert_eq!((s.state.as_str(), s.health.as_str()), ("online", "healthy"));
        assert_eq!((s.pid, s.uptime_seconds), (Some(4242), Some(3725)));
        assert_eq!(s.uptime.as_deref(), Some("1h02m"));
        assert_eq!(s.profile.as_deref(), Some("staging"));
        let bad = app(
            vec![pm2("online")],
            Some(rec("app")),
            Probe::Failed("GET http://127.0.0.1:3000/health answered 503".into()),
        );
        assert_eq!(st(&bad), ("degraded".into(), "unhealthy".into()));
        assert!(compute_service(&bad, now()).detail.unwrap().contains("503"));
        assert_eq!(
            st(&app(vec![pm2("online")], None, Probe::NotConfigured)),
            ("online".into(), "none".into())
        );
        assert_eq!(
            st(&app(vec![pm2("launching")], None, Probe::Skipped)),
            ("starting".into(), "none".into())
        );
        assert_eq!(
            st(&app(vec![pm2("errored")], None, Probe::Skipped)),
            ("failed".into(), "none".into())
        );
    }

    #[test]
    fn agent_backoff_and_failed_with_reason() {
        let mut r = rec("app");
        r.phase = Phase::Backoff {
            due_at: now() + chrono::Duration::seconds(20),
            delay_ms: 20_000,
            attempt: 3,
            pm_ids: vec!["1".into()],
        };
        r.history.restarts = vec![
            now() - chrono::Duration::seconds(700),
            now() - chrono::Duration::seconds(30),
        ];
        r.total_restarts = 2;
        r.last_exit = Some(serde_json::json!({"exitCode": 3, "signal": null}));
        let s = compute_service(
            &app(vec![pm2("stopped")], Some(r.clone()), Probe::Skipped),
            now(),
        );
        assert_eq!(s.state, "backoff");
        assert_eq!(
            (s.restarts, s.recent_restarts),
            (2, 1),
            "one restart fell out of the window"
        );
        assert_eq!(
            s.detail.as_deref(),
            Some("restart 3 at 2026-11-26T12:00:20.000Z")
        );
        assert_eq!(s.last_failure.as_ref().unwrap().exit_code, Some(3));

        r.phase = Phase::Failed {
            code: "EXIT_RESTART_THRESHOLD_EXCEEDED".into(),
            reason: "5 restarts within 600 s".into(),
            at: now(),
        };
        r.last_failure = Some(LastFailure {
            service: "svc".into(),
            state: "failed".into(),
            code: "EXIT_RESTART_THRESHOLD_EXCEEDED".into(),
            reason: "5 restarts within 600 s (maxRestarts 5); last exit by signal SIGKILL".into(),
            at: "2026-11-26T11:59:00.000Z".into(),
            retryable: true,
            exit_code: None,
            signal: Some("SIGKILL".into()),
        });
        let s = compute_service(&app(vec![pm2("stopped")], Some(r), Probe::Skipped), now());
        assert_eq!(s.state, "failed");
        let f = s.last_failure.unwrap();
        assert_eq!(
            (f.code.as_str(), f.signal.as_deref()),
            ("EXIT_RESTART_THRESHOLD_EXCEEDED", Some("SIGKILL"))
        );
    }

    #[test]
    fn a_dead_pm2_daemon_is_said_plainly() {
        let mut r = rec("app");
        r.phase = Phase::Backoff {
            due_at: now(),
            delay_ms: 1,
            attempt: 1,
            pm_ids: vec![],
        };
        let mut o = app(vec![], Some(r), Probe::Skipped);
        o.pm2_daemon = false;
        let s = compute_service(&o, now());
        assert_eq!(s.state, "stopped");
        assert!(s.detail.unwrap().contains("PM2's daemon is not running"));
        // Never started, daemon down: plain stopped, no alarm.
        let mut o = app(vec![], None, Probe::Skipped);
        o.pm2_daemon = false;
        assert_eq!(compute_service(&o, now()).detail, None);
    }

    #[test]
    fn stop_wins_over_an_old_failed_mark_only_when_nothing_runs() {
        let mut r = rec("app");
        r.phase = Phase::Failed {
            code: "X".into(),
            reason: "y".into(),
            at: now(),
        };
        r.desired = Desired::Stopped;
        assert_eq!(st(&app(vec![], Some(r), Probe::Skipped)).0, "failed");
    }

    #[test]
    fn dependencies_merge_runner_and_container() {
        let on = || vec![pm2("online")];
        assert_eq!(
            st(&dep(
                on(),
                Some(container(true, Some("healthy"))),
                Engine::Reachable
            )),
            ("online".into(), "healthy".into())
        );
        assert_eq!(
            st(&dep(
                on(),
                Some(container(true, Some("starting"))),
                Engine::Reachable
            )),
            ("starting".into(), "starting".into())
        );
        // PM2 online + container unhealthy.
        let s = compute_service(
            &dep(
                on(),
                Some(container(true, Some("unhealthy"))),
                Engine::Reachable,
            ),
            now(),
        );
        assert_eq!(
            (s.state.as_str(), s.health.as_str()),
            ("degraded", "unhealthy")
        );
        assert_eq!(
            s.detail.as_deref(),
            Some("health check: pg_isready: no response")
        );
        assert_eq!(s.container_id.as_deref(), Some("0123456789ab"));
        assert_eq!(s.uptime_seconds, Some(90), "the container's uptime");
        // Runner online + container missing, or exited.
        let s = compute_service(&dep(on(), None, Engine::Reachable), now());
        assert_eq!(s.state, "degraded");
        assert!(s.detail.unwrap().contains("container is missing"));
        assert_eq!(
            st(&dep(on(), Some(container(false, None)), Engine::Reachable)).0,
            "degraded"
        );
        assert_eq!(
            st(&dep(on(), Some(container(true, None)), Engine::Reachable)),
            ("online".into(), "none".into())
        );
        // Engine away: the runner is up but its container cannot be seen.
        let s = compute_service(
            &dep(on(), None, Engine::Unreachable("connection refused".into())),
            now(),
        );
        assert_eq!(s.state, "degraded");
        assert!(s.detail.unwrap().contains("Docker engine unreachable"));
        // Engine away while the runner waits for its restart: degraded, with the cause and the
        // pending restart, and the runner's own words as the last failure.
        let mut r = rec("dependency");
        r.phase = Phase::Backoff {
            due_at: now() + chrono::Duration::seconds(2),
            delay_ms: 2_000,
            attempt: 2,
            pm_ids: vec!["1".into()],
        };
        r.last_exit = Some(serde_json::json!({"exitCode": 13, "signal": null,
            "reason": "EXIT_PREREQUISITE (13): no Docker engine answers"}));
        let mut o = dep(
            vec![pm2("stopped")],
            None,
            Engine::Unreachable("socket not found".into()),
        );
        o.record = Some(r);
        let s = compute_service(&o, now());
        assert_eq!(s.state, "degraded");
        let d = s.detail.unwrap();
        assert!(
            d.contains("socket not found") && d.contains("restart 2 at"),
            "{d}"
        );
        assert_eq!(
            s.last_failure.unwrap().reason,
            "exited with code 13: EXIT_PREREQUISITE (13): no Docker engine answers"
        );
        // OOM kill shows as the last failure.
        let mut c = container(false, None);
        c.oom_killed = true;
        c.exit_code = Some(137);
        let s = compute_service(
            &dep(vec![pm2("stopped")], Some(c), Engine::Reachable),
            now(),
        );
        let f = s.last_failure.unwrap();
        assert!(f.reason.contains("OOMKilled"));
        assert_eq!(f.exit_code, Some(137));
    }

    #[test]
    fn image_unavailable_is_failed_with_the_engine_message() {
        let mut r = rec("dependency");
        r.record_failure(
            LastFailure {
                service: "db".into(),
                state: "failed".into(),
                code: "EXIT_IMAGE_UNAVAILABLE".into(),
                reason: "image x:1 for db is not present locally and could not be pulled: manifest unknown".into(),
                at: "2026-11-26T11:00:00.000Z".into(),
                retryable: false,
                exit_code: None,
                signal: None,
            },
            now(),
        );
        let o = ServiceObs {
            record: Some(r),
            ..dep(vec![], None, Engine::Reachable)
        };
        let s = compute_service(&o, now());
        assert_eq!(s.state, "failed");
        assert!(s.last_failure.unwrap().reason.contains("manifest unknown"));
    }

    #[test]
    fn every_table_cell_is_a_json_value() {
        let mut r = rec("app");
        r.total_restarts = 4;
        let rows = [
            compute_service(&app(vec![pm2("online")], Some(r), Probe::Ok), now()),
            compute_service(
                &dep(
                    vec![pm2("online")],
                    Some(container(true, Some("unhealthy"))),
                    Engine::Reachable,
                ),
                now(),
            ),
            compute_service(&app(vec![], None, Probe::Skipped), now()),
        ];
        for row in &rows {
            let json = serde_json::to_string(row).unwrap();
            for (i, cell) in row_cells(row).iter().enumerate() {
                match i {
                    6 => assert!(json.contains(&format!("\"restarts\":{}", row.restarts))),
                    9 => {
                        if let Some(f) = &row.last_failure {
                            assert!(cell.contains(&f.at), "{cell}");
                            assert!(
                                cell.starts_with(&f.code) || cell.starts_with(&f.reason),
                                "{cell}"
                            );
                        } else {
                            assert_eq!(cell, "-");
                        }
                    }
                    _ if cell == "-" => {}
                    _ => assert!(
                        json.contains(cell.trim_end_matches('…')),
                        "{cell} in {json}"
                    ),
                }
            }
        }
        let snap = Snapshot {
            workspace: "/ws".into(),
            profile: "staging".into(),
            generated_at: ts(now()),
            pm2: "online".into(),
            docker: "reachable".into(),
            services: rows.to_vec(),
        };
        let plain = render_table(&snap, false);
        assert!(!plain.contains('\x1b'), "no colour unless asked");
        assert!(plain.lines().nth(1).unwrap().starts_with("SERVICE"));
        assert!(render_table(&snap, true).contains("\x1b[32monline"));
        assert_eq!(unhealthy(&snap).len(), 1);
    }

    #[test]
    fn durations_read_like_pm2s() {
        assert_eq!(human_duration(42), "42s");
        assert_eq!(human_duration(125), "2m05s");
        assert_eq!(human_duration(3 * 3600 + 4 * 60), "3h04m");
        assert_eq!(human_duration(2 * 86_400 + 3600), "2d01h");
    }
}
