//! `why <service>` (issue 19): why a service is not up, as one answer — the chain of what it
//! waits on (compose `depends_on` and the Nx graph, `schedule`), each blocker's state, what a
//! start would refuse now, the health check's or probe's output, who holds its ports, the last
//! lines of its logs, and what to do. Pure: the caller observes (status, the dry-run plan, the
//! port table, the logs) and hands the observations here.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::schedule::{Gate, Wait};
use crate::status::{FailureView, ServiceStatus};

/// One service the asked one waits on, directly or through another.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Blocker {
    pub service: String,
    /// Who waits on it (the asked service, or a blocker further up the chain).
    pub needed_by: String,
    /// `started` | `ready` | `completed`: what the waiter needs of it.
    pub needs: String,
    /// compose `required: false`: its failure does not hold the waiter.
    pub required: bool,
    pub state: String,
    pub health: String,
    /// Whether what the waiter needs of it holds now.
    pub met: bool,
    pub detail: Option<String>,
    pub last_failure: Option<FailureView>,
}

/// A declared port and who holds it, when that is not the service itself.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PortView {
    pub port: u16,
    /// `pid 4242 (python3 -m http.server 3000)`, or `an unknown process` when its owner cannot
    /// be read; `None` when the port is free or the service's own.
    pub held_by: Option<String>,
}

/// What a start of the service would say now (the dry run's refusal), as the CLI says it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Refusal {
    pub code: String,
    pub exit_code: i32,
    pub message: String,
    pub remediation: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Why {
    pub service: String,
    pub kind: String,
    pub state: String,
    pub health: String,
    /// Online and healthy (or without a health check): nothing to explain.
    pub up: bool,
    /// One line: what is wrong, or that nothing is.
    pub summary: String,
    pub blockers: Vec<Blocker>,
    pub refusal: Option<Refusal>,
    /// The health check's output (a dependency) or the probe's failure (an app).
    pub health_output: Option<String>,
    pub ports: Vec<PortView>,
    pub last_failure: Option<FailureView>,
    /// The last lines of its logs (both streams, in time order).
    pub log_tail: Vec<String>,
    pub remediation: Vec<String>,
}

/// Everything observed about the asked service and the workspace.
pub struct Observed<'a> {
    pub service: &'a str,
    /// Every row of the status snapshot (a replicated dependency's rows included).
    pub rows: &'a [ServiceStatus],
    /// What each service waits on before it starts (`schedule::start_waits` over every service).
    pub waits: &'a BTreeMap<String, Vec<Wait>>,
    pub refusal: Option<Refusal>,
    pub ports: Vec<PortView>,
    pub log_tail: Vec<String>,
}

fn gate_word(g: Gate) -> &'static str {
    match g {
        Gate::Started => "started",
        Gate::Ready => "ready",
        Gate::Completed => "completed",
    }
}

/// Pure: whether a service in this row gives what `gate` asks.
pub fn gate_met(gate: Gate, row: &ServiceStatus) -> bool {
    match gate {
        Gate::Started => matches!(row.state.as_str(), "online" | "starting" | "degraded"),
        Gate::Ready => row.state == "online" && row.health != "unhealthy",
        // A one-shot job that ran to completion is stopped without a failure, its exited
        // container kept; one that never ran has no container.
        Gate::Completed => {
            row.state == "stopped" && row.last_failure.is_none() && row.container_id.is_some()
        }
    }
}

/// The row of a service: its worst replica for a replicated dependency.
fn row_of<'a>(rows: &'a [ServiceStatus], name: &str) -> Option<&'a ServiceStatus> {
    let mut mine: Vec<&ServiceStatus> = rows.iter().filter(|r| r.name == name).collect();
    mine.sort_by_key(|r| (r.state == "online", r.replica));
    mine.first().copied()
}

/// Pure: the chain of what `service` waits on, depth first in the order the waits are declared,
/// each service once.
pub fn chain(
    service: &str,
    waits: &BTreeMap<String, Vec<Wait>>,
    rows: &[ServiceStatus],
) -> Vec<Blocker> {
    let mut out = Vec::new();
    let mut seen = BTreeSet::from([service.to_string()]);
    let mut stack: Vec<(String, &Wait)> = waits
        .get(service)
        .map(|ws| ws.iter().rev().map(|w| (service.to_string(), w)).collect())
        .unwrap_or_default();
    while let Some((needed_by, w)) = stack.pop() {
        if !seen.insert(w.on.clone()) {
            continue;
        }
        let row = row_of(rows, &w.on);
        out.push(Blocker {
            service: w.on.clone(),
            needed_by,
            needs: gate_word(w.gate).into(),
            required: w.required,
            state: row.map_or("unknown".into(), |r| r.state.clone()),
            health: row.map_or("none".into(), |r| r.health.clone()),
            met: row.is_some_and(|r| gate_met(w.gate, r)),
            detail: row.and_then(|r| r.detail.clone()),
            last_failure: row.and_then(|r| r.last_failure.clone()),
        });
        if let Some(next) = waits.get(&w.on) {
            stack.extend(next.iter().rev().map(|n| (w.on.clone(), n)));
        }
    }
    out
}

/// Pure: the answer.
pub fn explain(o: Observed<'_>) -> Why {
    let row = row_of(o.rows, o.service);
    let state = row.map_or("stopped".to_string(), |r| r.state.clone());
    let health = row.map_or("none".to_string(), |r| r.health.clone());
    let kind = row.map_or(String::new(), |r| r.kind.clone());
    let up = state == "online" && health != "unhealthy";
    if up {
        let r = row.expect("online comes from a row");
        let mut facts = Vec::new();
        match (&r.container_id, r.pid) {
            (Some(c), _) => facts.push(format!("container {c}")),
            (None, Some(p)) => facts.push(format!("pid {p}")),
            _ => {}
        }
        if let Some(u) = &r.uptime {
            facts.push(format!("up {u}"));
        }
        facts.push(format!("{} restarts", r.restarts));
        return Why {
            service: o.service.into(),
            kind,
            summary: format!(
                "{} is online and {} ({})",
                o.service,
                if health == "healthy" {
                    "healthy"
                } else {
                    "has no health check"
                },
                facts.join(", ")
            ),
            state,
            health,
            up: true,
            blockers: Vec::new(),
            refusal: None,
            health_output: None,
            ports: Vec::new(),
            last_failure: None,
            log_tail: Vec::new(),
            remediation: Vec::new(),
        };
    }
    let blockers = chain(o.service, o.waits, o.rows);
    let holding: Vec<&Blocker> = blockers.iter().filter(|b| !b.met && b.required).collect();
    let health_output = row
        .and_then(|r| r.detail.clone())
        .filter(|_| state == "degraded");
    let held: Vec<&PortView> = o.ports.iter().filter(|p| p.held_by.is_some()).collect();
    let last_failure = row.and_then(|r| r.last_failure.clone());

    let mut remediation = Vec::new();
    let summary = if let Some(r) = &o.refusal {
        remediation.extend(r.remediation.iter().cloned());
        format!(
            "{} cannot start now: {} ({}): {}",
            o.service,
            r.code,
            r.exit_code,
            r.message.lines().next().unwrap_or_default()
        )
    } else if let Some(b) = holding.first() {
        let names: Vec<&str> = holding.iter().map(|b| b.service.as_str()).collect();
        remediation.push(format!(
            "Bring up what it waits on first: {} (`orchestrator why {}` says what holds it; `nx run {}:start` starts what it needs first, through the Nx graph)",
            names.join(", "),
            b.service,
            o.service
        ));
        let more = match holding.len() {
            1 => String::new(),
            n => format!(" (and {} more not up)", n - 1),
        };
        format!(
            "{} is {}: it needs {} {}, and {} is {}{more}",
            o.service, state, b.service, b.needs, b.service, b.state
        )
    } else if let Some(p) = held.first() {
        remediation.push(format!(
            "Stop what holds port {} ({}), or give {} another port, then `nx run {}:start`",
            p.port,
            p.held_by.as_deref().unwrap_or_default(),
            o.service,
            o.service
        ));
        format!(
            "{} is {}: port {} is held by {}",
            o.service,
            state,
            p.port,
            p.held_by.as_deref().unwrap_or_default()
        )
    } else if state == "degraded" {
        remediation.push(format!(
            "Its health check fails: read its output and its last lines below, fix the cause, then `nx run {}:restart`",
            o.service
        ));
        format!(
            "{} runs but is not healthy: {}",
            o.service,
            health_output.as_deref().unwrap_or("its health check fails")
        )
    } else if matches!(state.as_str(), "backoff" | "failed") {
        remediation.push(format!(
            "It exits on its own: its last lines below say why; fix it, then `nx run {}:restart`",
            o.service
        ));
        let how = last_failure
            .as_ref()
            .map(|f| f.reason.lines().next().unwrap_or_default().to_string())
            .unwrap_or_else(|| "it exited".into());
        let detail = row.and_then(|r| r.detail.clone());
        format!(
            "{} is {}{}: {how}",
            o.service,
            state,
            detail.map(|d| format!(" ({d})")).unwrap_or_default()
        )
    } else if state == "starting" {
        remediation.push(format!(
            "Wait for it, or read its last lines below; `orchestrator logs {} --follow` follows them",
            o.service
        ));
        format!("{} is starting and not ready yet", o.service)
    } else {
        remediation.push(format!(
            "Start it: `nx run {}:start` (or `orchestrator start {}`)",
            o.service, o.service
        ));
        match row.and_then(|r| r.detail.clone()) {
            Some(d) => format!("{} is {}: {d}", o.service, state),
            None => format!("{} is {}: nothing started it", o.service, state),
        }
    };
    Why {
        service: o.service.into(),
        kind,
        state,
        health,
        up: false,
        summary,
        blockers,
        refusal: o.refusal,
        health_output,
        ports: o.ports,
        last_failure,
        log_tail: o.log_tail,
        remediation,
    }
}

/// Pure: the answer as text.
pub fn render(w: &Why) -> String {
    let mut out = format!("{}\n", w.summary);
    if w.up {
        return out;
    }
    if let Some(r) = &w.refusal {
        out.push_str(&format!(
            "\nA start now is refused: {} ({})\n",
            r.code, r.exit_code
        ));
        for l in r.message.lines() {
            out.push_str(&format!("  {l}\n"));
        }
    }
    if !w.blockers.is_empty() {
        out.push_str("\nWhat it waits on:\n");
        for b in &w.blockers {
            let mark = if b.met { "ok " } else { "NOT" };
            let optional = if b.required { "" } else { ", optional" };
            let health = match b.health.as_str() {
                "none" => String::new(),
                h => format!(" ({h})"),
            };
            out.push_str(&format!(
                "  [{mark}] {} needs {} {}{optional}: {}{health}\n",
                b.needed_by, b.service, b.needs, b.state
            ));
            if !b.met {
                if let Some(d) = &b.detail {
                    out.push_str(&format!("        {d}\n"));
                }
                if let Some(f) = &b.last_failure {
                    let first = f.reason.lines().next().unwrap_or_default();
                    out.push_str(&format!("        last failure: {}: {first}\n", f.code));
                }
            }
        }
    }
    if let Some(h) = &w.health_output {
        out.push_str(&format!("\nHealth: {h}\n"));
    }
    let held: Vec<&PortView> = w.ports.iter().filter(|p| p.held_by.is_some()).collect();
    if !held.is_empty() {
        out.push_str("\nPorts:\n");
        for p in held {
            out.push_str(&format!(
                "  {} held by {}\n",
                p.port,
                p.held_by.as_deref().unwrap_or_default()
            ));
        }
    }
    if let Some(f) = &w.last_failure {
        out.push_str(&format!(
            "\nLast failure ({}): {}: {}\n",
            f.at, f.code, f.reason
        ));
    }
    if !w.log_tail.is_empty() {
        out.push_str("\nIts last lines:\n");
        for l in &w.log_tail {
            out.push_str(&format!("  {l}\n"));
        }
    }
    if !w.remediation.is_empty() {
        out.push_str("\nWhat to do:\n");
        for r in &w.remediation {
            out.push_str(&format!("  - {r}\n"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(name: &str, state: &str, health: &str) -> ServiceStatus {
        ServiceStatus {
            name: name.into(),
            replica: None,
            kind: "app".into(),
            state: state.into(),
            health: health.into(),
            pid: (state == "online").then_some(42),
            pids: vec![],
            container_id: None,
            uptime_seconds: None,
            uptime: Some("3m05s".into()),
            restarts: 0,
            recent_restarts: 0,
            window_seconds: 600,
            last_failure: None,
            ports: vec![],
            profile: None,
            detail: None,
            cpu_percent: None,
            cpu: None,
            memory_bytes: None,
            memory: None,
            instances: vec![],
        }
    }

    fn wait(on: &str, gate: Gate) -> Wait {
        Wait {
            on: on.into(),
            gate,
            required: true,
        }
    }

    fn observed<'a>(
        service: &'a str,
        rows: &'a [ServiceStatus],
        waits: &'a BTreeMap<String, Vec<Wait>>,
    ) -> Observed<'a> {
        Observed {
            service,
            rows,
            waits,
            refusal: None,
            ports: vec![],
            log_tail: vec![],
        }
    }

    #[test]
    fn a_healthy_service_says_so_in_one_line() {
        let rows = [row("api", "online", "healthy")];
        let w = explain(observed("api", &rows, &BTreeMap::new()));
        assert!(w.up);
        assert_eq!(
            w.summary,
            "api is online and healthy (pid 42, up 3m05s, 0 restarts)"
        );
        assert_eq!(render(&w).lines().count(), 1);
    }

    #[test]
    fn the_chain_goes_through_every_blocker_once_with_its_state() {
        let mut pg = row("postgres", "degraded", "unhealthy");
        pg.detail = Some("health check: pg_isready: no response".into());
        // migrate ran to completion: stopped, its exited container kept.
        let mut migrate = row("migrate", "stopped", "none");
        migrate.container_id = Some("0123456789ab".into());
        let rows = [
            row("web", "stopped", "none"),
            row("api", "online", "healthy"),
            pg,
            migrate,
        ];
        let waits: BTreeMap<String, Vec<Wait>> = [
            ("web".to_string(), vec![wait("api", Gate::Ready)]),
            (
                "api".to_string(),
                vec![
                    wait("postgres", Gate::Ready),
                    wait("migrate", Gate::Completed),
                ],
            ),
            ("migrate".to_string(), vec![wait("postgres", Gate::Ready)]),
        ]
        .into();
        let c = chain("web", &waits, &rows);
        let names: Vec<(&str, &str, bool)> = c
            .iter()
            .map(|b| (b.service.as_str(), b.needed_by.as_str(), b.met))
            .collect();
        assert_eq!(
            names,
            vec![
                ("api", "web", true),
                ("postgres", "api", false),
                ("migrate", "api", true)
            ]
        );
        let w = explain(observed("web", &rows, &waits));
        assert_eq!(
            w.summary,
            "web is stopped: it needs postgres ready, and postgres is degraded"
        );
        let text = render(&w);
        assert!(
            text.contains("[NOT] api needs postgres ready: degraded (unhealthy)"),
            "{text}"
        );
        assert!(
            text.contains("health check: pg_isready: no response"),
            "{text}"
        );
        assert!(
            text.contains("[ok ] web needs api ready: online (healthy)"),
            "{text}"
        );
        assert!(w.remediation[0].contains("orchestrator why postgres"));
        assert!(w.remediation[0].contains("nx run web:start"));
    }

    #[test]
    fn a_refusal_a_held_port_a_crash_loop_and_an_unhealthy_probe_each_lead() {
        let rows = [row("api", "stopped", "none")];
        let none = BTreeMap::new();
        let mut o = observed("api", &rows, &none);
        o.refusal = Some(Refusal {
            code: "EXIT_ENV_MISSING".into(),
            exit_code: 12,
            message: "api needs API_KEY, which the development profile does not set".into(),
            remediation: vec!["Add API_KEY to config/env/development.env".into()],
        });
        let w = explain(o);
        assert!(w
            .summary
            .starts_with("api cannot start now: EXIT_ENV_MISSING (12): api needs API_KEY"));
        assert_eq!(
            w.remediation,
            vec!["Add API_KEY to config/env/development.env"]
        );

        let mut o = observed("api", &rows, &none);
        o.ports = vec![PortView {
            port: 3000,
            held_by: Some("pid 77 (python3 -m http.server 3000)".into()),
        }];
        let w = explain(o);
        assert_eq!(
            w.summary,
            "api is stopped: port 3000 is held by pid 77 (python3 -m http.server 3000)"
        );
        assert!(render(&w).contains("3000 held by pid 77"));

        let mut crashing = row("api", "backoff", "none");
        crashing.detail = Some("restart 2 at 2026-12-02T10:00:00.000Z".into());
        crashing.last_failure = Some(FailureView {
            at: "2026-12-02T09:59:58.000Z".into(),
            code: "exited".into(),
            reason: "exited with code 1".into(),
            exit_code: Some(1),
            signal: None,
        });
        let rows = [crashing];
        let mut o = observed("api", &rows, &none);
        o.log_tail = vec!["2026-12-02T09:59:58.000Z err Error: boom".into()];
        let w = explain(o);
        assert_eq!(
            w.summary,
            "api is backoff (restart 2 at 2026-12-02T10:00:00.000Z): exited with code 1"
        );
        assert!(render(&w).contains("Error: boom"));

        let mut sick = row("api", "degraded", "unhealthy");
        sick.detail = Some("GET http://127.0.0.1:3000/health: 503".into());
        let rows = [sick];
        let w = explain(observed("api", &rows, &none));
        assert_eq!(
            w.health_output.as_deref(),
            Some("GET http://127.0.0.1:3000/health: 503")
        );
        assert!(w.summary.contains("runs but is not healthy"));
    }

    #[test]
    fn an_optional_blocker_does_not_hold_and_a_completed_job_is_met() {
        let mut job = row("migrate", "failed", "none");
        job.last_failure = Some(FailureView {
            at: "x".into(),
            code: "EXIT_CONTAINER_FAILED".into(),
            reason: "migrate exited with code 3".into(),
            exit_code: Some(3),
            signal: None,
        });
        let rows = [
            row("api", "stopped", "none"),
            job,
            row("cache", "stopped", "none"),
        ];
        let waits: BTreeMap<String, Vec<Wait>> = [(
            "api".to_string(),
            vec![
                Wait {
                    on: "cache".into(),
                    gate: Gate::Started,
                    required: false,
                },
                wait("migrate", Gate::Completed),
            ],
        )]
        .into();
        let w = explain(observed("api", &rows, &waits));
        assert_eq!(
            w.summary,
            "api is stopped: it needs migrate completed, and migrate is failed"
        );
        assert!(
            render(&w).contains("last failure: EXIT_CONTAINER_FAILED: migrate exited with code 3")
        );
        let mut ran = row("migrate", "stopped", "none");
        ran.container_id = Some("0123456789ab".into());
        assert!(gate_met(Gate::Completed, &ran));
        assert!(
            !gate_met(Gate::Completed, &row("migrate", "stopped", "none")),
            "a job that never ran (no container) has not completed"
        );
    }
}
