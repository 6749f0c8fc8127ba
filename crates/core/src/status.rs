//! The consolidated status snapshot (DESIGN §3): one row per managed service, merged from PM2's
//! table, the Docker engine, the agent's records and app health probes. `compute_status` is the
//! pure merge; `render_table` draws the table from the same snapshot, so both show one truth.

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::pm2::Pm2Process;
use crate::resources::{self, Usage};
use crate::supervise::{Desired, Phase, Record};

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
pub enum EngineObs {
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
    pub pm2: Vec<Pm2Process>,
    /// Whether PM2's daemon answered at all.
    pub pm2_daemon: bool,
    pub container: Option<ContainerObs>,
    pub engine: EngineObs,
    pub record: Option<Record>,
    pub probe: Probe,
    /// CPU and memory of its processes, by pid (`/proc`).
    pub usage: std::collections::BTreeMap<u32, Usage>,
    /// CPU and memory of its running container (the engine's stats).
    pub container_usage: Option<Usage>,
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
    /// CPU (100 = one core) of its processes together (a cluster's workers) or of its container,
    /// since the previous look, else since it started (`resources`).
    pub cpu_percent: Option<f64>,
    /// `cpuPercent` as the table shows it (`0.3%`).
    pub cpu: Option<String>,
    /// Resident memory of its processes together, or its container's (without page cache).
    pub memory_bytes: Option<u64>,
    /// `memoryBytes` as the table shows it (`42.1M`).
    pub memory: Option<String>,
    /// A cluster app's (or an app with several processes') figures per process.
    pub instances: Vec<InstanceUsage>,
}

/// One process of a cluster app: its own CPU and memory.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct InstanceUsage {
    pub pm_id: u32,
    pub pid: u32,
    pub cpu_percent: Option<f64>,
    pub memory_bytes: Option<u64>,
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
    let online: Vec<&Pm2Process> = o.pm2.iter().filter(|p| p.status == "online").collect();
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
                (EngineObs::Unreachable(m), _) => {
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
        (EngineObs::Unreachable(m), "backoff") if o.kind == "dependency" => {
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

    // CPU and memory: a dependency's container, an app's processes (every worker of a cluster).
    let mut instances: Vec<InstanceUsage> = online
        .iter()
        .filter_map(|p| {
            let pid = p.pid?;
            let u = o.usage.get(&pid)?;
            Some(InstanceUsage {
                pm_id: p.pm_id,
                pid,
                cpu_percent: u.cpu_percent,
                memory_bytes: u.memory_bytes,
            })
        })
        .collect();
    let usage = match (o.kind.as_str(), &o.container) {
        ("dependency", Some(c)) if c.running => o.container_usage.unwrap_or_default(),
        ("dependency", _) => Usage::default(),
        _ => Usage::sum(
            &instances
                .iter()
                .map(|i| Usage {
                    cpu_percent: i.cpu_percent,
                    memory_bytes: i.memory_bytes,
                })
                .collect::<Vec<_>>(),
        ),
    };
    if instances.len() < 2 || o.kind != "app" {
        instances.clear();
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
        cpu_percent: usage.cpu_percent,
        cpu: usage.cpu_percent.map(resources::human_cpu),
        memory_bytes: usage.memory_bytes,
        memory: usage.memory_bytes.map(resources::human_bytes),
        instances,
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
        r.cpu.clone().unwrap_or_else(dash),
        r.memory.clone().unwrap_or_else(dash),
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

pub const HEADERS: [&str; 12] = [
    "SERVICE",
    "KIND",
    "STATE",
    "HEALTH",
    "PID/CONTAINER",
    "UPTIME",
    "CPU",
    "MEM",
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
mod tests;
