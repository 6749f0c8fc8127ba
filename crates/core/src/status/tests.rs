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

fn pm2(status: &str) -> Pm2Process {
    Pm2Process {
        name: "svc".into(),
        pm_id: 1,
        pid: (status == "online").then_some(4242),
        status: status.into(),
        started_ms: Some((now() - chrono::Duration::seconds(3725)).timestamp_millis()),
        profile: Some("staging".into()),
        exit_code: None,
        ..Default::default()
    }
}

fn app(pm: Vec<Pm2Process>, record: Option<Record>, probe: Probe) -> ServiceObs {
    ServiceObs {
        name: "svc".into(),
        replica: None,
        kind: "app".into(),
        ports: vec![3000],
        pm2: pm,
        pm2_daemon: true,
        container: None,
        engine: EngineObs::NotNeeded,
        record,
        probe,
        usage: Default::default(),
        container_usage: None,
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

fn dep(pm: Vec<Pm2Process>, c: Option<ContainerObs>, engine: EngineObs) -> ServiceObs {
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
            EngineObs::Reachable
        )),
        ("online".into(), "healthy".into())
    );
    assert_eq!(
        st(&dep(
            on(),
            Some(container(true, Some("starting"))),
            EngineObs::Reachable
        )),
        ("starting".into(), "starting".into())
    );
    // PM2 online + container unhealthy.
    let s = compute_service(
        &dep(
            on(),
            Some(container(true, Some("unhealthy"))),
            EngineObs::Reachable,
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
    let s = compute_service(&dep(on(), None, EngineObs::Reachable), now());
    assert_eq!(s.state, "degraded");
    assert!(s.detail.unwrap().contains("container is missing"));
    assert_eq!(
        st(&dep(
            on(),
            Some(container(false, None)),
            EngineObs::Reachable
        ))
        .0,
        "degraded"
    );
    assert_eq!(
        st(&dep(
            on(),
            Some(container(true, None)),
            EngineObs::Reachable
        )),
        ("online".into(), "none".into())
    );
    // Engine away: the runner is up but its container cannot be seen.
    let s = compute_service(
        &dep(
            on(),
            None,
            EngineObs::Unreachable("connection refused".into()),
        ),
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
        EngineObs::Unreachable("socket not found".into()),
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
        &dep(vec![pm2("stopped")], Some(c), EngineObs::Reachable),
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
            reason:
                "image x:1 for db is not present locally and could not be pulled: manifest unknown"
                    .into(),
            at: "2026-11-26T11:00:00.000Z".into(),
            retryable: false,
            exit_code: None,
            signal: None,
        },
        now(),
    );
    let o = ServiceObs {
        record: Some(r),
        ..dep(vec![], None, EngineObs::Reachable)
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
                EngineObs::Reachable,
            ),
            now(),
        ),
        compute_service(&app(vec![], None, Probe::Skipped), now()),
    ];
    for row in &rows {
        let json = serde_json::to_string(row).unwrap();
        for (i, cell) in row_cells(row).iter().enumerate() {
            match i {
                8 => assert!(json.contains(&format!("\"restarts\":{}", row.restarts))),
                11 => {
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

#[test]
fn cpu_and_memory_sum_a_clusters_workers_and_come_from_a_dependencys_container() {
    let u = |cpu: f64, mem: u64| Usage {
        cpu_percent: Some(cpu),
        memory_bytes: Some(mem),
    };
    let worker = |pm_id: u32, pid: u32| Pm2Process {
        pm_id,
        pid: Some(pid),
        ..pm2("online")
    };
    let mut o = app(vec![worker(1, 101), worker(2, 102)], None, Probe::Ok);
    o.usage = [(101, u(1.5, 40 << 20)), (102, u(2.0, 2 << 20))].into();
    let s = compute_service(&o, now());
    assert_eq!(s.cpu_percent, Some(3.5));
    assert_eq!(s.memory_bytes, Some(42 << 20));
    assert_eq!(s.cpu.as_deref(), Some("3.5%"));
    assert_eq!(s.memory.as_deref(), Some("42.0M"));
    assert_eq!(s.instances.len(), 2, "per worker for a cluster");
    assert_eq!((s.instances[1].pm_id, s.instances[1].pid), (2, 102));
    assert_eq!(s.instances[1].cpu_percent, Some(2.0));

    let mut one = app(vec![pm2("online")], None, Probe::Ok);
    one.usage = [(4242, u(0.3, 1 << 20))].into();
    let s = compute_service(&one, now());
    assert_eq!(s.cpu_percent, Some(0.3));
    assert!(s.instances.is_empty(), "one process: the row says it");

    let stopped = compute_service(&app(vec![pm2("stopped")], None, Probe::Skipped), now());
    assert_eq!((stopped.cpu_percent, stopped.memory_bytes), (None, None));

    let mut d = dep(
        vec![pm2("online")],
        Some(container(true, Some("healthy"))),
        EngineObs::Reachable,
    );
    d.usage = [(4242, u(0.1, 6 << 20))].into(); // the runner: not the service's figure
    d.container_usage = Some(u(12.5, 300 << 20));
    let s = compute_service(&d, now());
    assert_eq!(
        (s.cpu_percent, s.memory_bytes),
        (Some(12.5), Some(300 << 20))
    );
    let mut gone = d.clone();
    gone.container = Some(container(false, None));
    let s = compute_service(&gone, now());
    assert_eq!(
        (s.cpu_percent, s.memory_bytes),
        (None, None),
        "not running: no figures"
    );
}
