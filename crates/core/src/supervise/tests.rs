use super::*;
use std::time::Duration;

fn t(ms: i64) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-11-26T10:00:00Z")
        .unwrap()
        .with_timezone(&Utc)
        + chrono::Duration::milliseconds(ms)
}

fn policy() -> RestartPolicy {
    RestartPolicy {
        max_restarts: 3,
        window_seconds: 60,
        backoff_initial_ms: 200,
        backoff_max_ms: 1000,
        backoff_multiplier: 2.0,
        stable_seconds: 2,
        alert_command: Some("cat".into()),
        restart: crate::policy::RestartWhen::Always,
    }
}

fn launched(now: DateTime<Utc>) -> Record {
    let mut r = Record::new("api", now);
    r.launched(
        &Launch {
            switched_from: None,
            service: "api".into(),
            kind: "app".into(),
            profile: "staging".into(),
            policy: policy(),
            check_ports: vec![],
        },
        now,
    );
    r
}

fn crash(started: DateTime<Utc>) -> ExitReport {
    ExitReport {
        pm_id: "0".into(),
        started_ms: Some(started.timestamp_millis()),
        status: "stopped".into(),
        exit_code: Some(3),
        signal: None,
        non_retryable: None,
        stderr: vec!["boom".into()],
    }
}

fn names(o: &Outcome) -> Vec<String> {
    o.events
        .iter()
        .map(|e| e["event"].as_str().unwrap().to_string())
        .collect()
}

/// Crash → backoff → due → restarted, as the agent drives it; returns the delays seen.
fn crash_loop(r: &mut Record, mut now: i64, crashes: usize, up_ms: i64) -> (Vec<u64>, i64) {
    let mut delays = Vec::new();
    let mut started = now;
    for _ in 0..crashes {
        now = started + up_ms;
        r.on_exit(&crash(t(started)), t(now));
        match r.phase.clone() {
            Phase::Backoff {
                due_at, delay_ms, ..
            } => {
                delays.push(delay_ms);
                // Not due a millisecond early.
                assert_eq!(r.take_due(due_at - chrono::Duration::milliseconds(1)), None);
                assert_eq!(r.take_due(due_at), Some(vec!["0".to_string()]));
                now = due_at.timestamp_millis() - t(0).timestamp_millis();
                started = now + 50;
                r.on_restarted(t(started), t(started));
            }
            _ => break,
        }
    }
    (delays, now)
}

#[test]
fn crash_loop_backs_off_then_fails_with_the_threshold_event_and_alert() {
    let mut r = launched(t(0));
    let (delays, _) = crash_loop(&mut r, 0, 4, 100);
    assert_eq!(delays, vec![200, 400, 800]);
    assert_eq!(r.state_name(), "failed");
    assert_eq!(r.total_restarts, 3);
    let lf = r.last_failure.clone().unwrap();
    assert_eq!(
        (lf.code.as_str(), lf.exit_code, lf.retryable),
        ("EXIT_RESTART_THRESHOLD_EXCEEDED", Some(3), true)
    );
    // Replaying the last crash (a fourth) would be a duplicate; a new instance start is not.
    let mut again = r.clone();
    let o = again.on_exit(&crash(t(99_999)), t(100_000));
    assert_eq!(names(&o), vec!["exited"], "failed: no decision, no restart");
    assert_eq!(again.take_due(t(10_000_000)), None);
}

#[test]
fn the_threshold_event_carries_times_exit_and_stderr() {
    let mut r = launched(t(0));
    r.history.restarts = vec![t(1000), t(2000), t(3000)];
    let mut x = crash(t(3500));
    x.exit_code = None;
    x.signal = Some("SIGKILL".into());
    let o = r.on_exit(&x, t(4000));
    assert_eq!(
        names(&o),
        vec!["exited", "RESTART_THRESHOLD_EXCEEDED", "failed"]
    );
    let ev = &o.events[1];
    assert_eq!(ev["service"], "api");
    assert_eq!(ev["profile"], "staging");
    assert_eq!(ev["restarts"].as_array().unwrap().len(), 3);
    assert_eq!(ev["signal"], "SIGKILL");
    assert_eq!(ev["stderr"], json!(["boom"]));
    assert_eq!(ev["time"], "2026-11-26T10:00:04.000Z");
    assert_eq!(o.alert.as_ref(), Some(ev));
    assert!(r.last_failure.unwrap().reason.contains("by signal SIGKILL"));
}

#[test]
fn explicit_stop_is_not_a_crash_and_cancels_a_pending_restart() {
    let mut r = launched(t(0));
    let mut x = crash(t(0));
    x.status = "stopping".into();
    let o = r.on_exit(&x, t(500));
    assert_eq!(names(&o), vec!["exited"]);
    assert_eq!(o.events[0]["requested"], true);
    assert_eq!(r.state_name(), "running");
    // Crash → backoff, then stop during the backoff: nothing is due any more.
    let mut r = launched(t(0));
    r.on_exit(&crash(t(0)), t(100));
    assert_eq!(r.state_name(), "backoff");
    let o = r.stopped(t(150));
    assert_eq!(names(&o), vec!["restart_cancelled"]);
    assert_eq!(r.take_due(t(10_000)), None);
    assert_eq!(r.next_wake(), None);
    // The exit PM2 reports for the stop itself changes nothing.
    let o = r.on_exit(&crash(t(120)), t(200));
    assert_eq!(o.events[0]["requested"], true);
    assert_eq!(r.state_name(), "stopped");
}

#[test]
fn duplicate_exit_reports_are_answered_once() {
    let mut r = launched(t(0));
    let first = r.on_exit(&crash(t(0)), t(100));
    assert_eq!(names(&first), vec!["exited", "restart_scheduled"]);
    let second = r.on_exit(&crash(t(0)), t(120));
    assert!(second.events.is_empty());
    assert_eq!(r.history.attempt, 1);
}

#[test]
fn a_killed_agent_resumes_from_the_persisted_record_without_losing_or_doubling() {
    let mut r = launched(t(0));
    r.on_exit(&crash(t(0)), t(100));
    // Persisted, agent killed in the backoff; the successor reads the same JSON.
    let mut back: Record = serde_json::from_str(&serde_json::to_string(&r).unwrap()).unwrap();
    assert_eq!(back, r);
    assert_eq!(back.next_wake(), Some(t(300)));
    assert_eq!(back.take_due(t(400)), Some(vec!["0".into()]));
    // Killed again after deciding, before PM2 confirmed: still Restarting, nothing new due.
    let mut again: Record = serde_json::from_str(&serde_json::to_string(&back).unwrap()).unwrap();
    assert_eq!(again.take_due(t(500)), None);
    assert_eq!(again.state_name(), "restarting");
    let o = again.on_restarted(t(450), t(600));
    assert_eq!(names(&o), vec!["restarted"]);
    // A second confirmation (the old agent's and the new one's) counts once.
    assert!(again.on_restarted(t(450), t(650)).events.is_empty());
    assert_eq!(again.history.restarts, vec![t(450)]);
    assert_eq!(again.total_restarts, 1);
}

#[test]
fn a_stable_run_then_a_crash_starts_again_from_the_initial_backoff() {
    let mut r = launched(t(0));
    let (delays, now) = crash_loop(&mut r, 0, 2, 100);
    assert_eq!(delays, vec![200, 400]);
    // Up past the stable period (2 s): recovered, and the next crash waits 200 ms again.
    let started = now + 50;
    assert!(r.check_stable(t(started + 1999)).events.is_empty());
    let o = r.check_stable(t(started + 2000));
    assert_eq!(names(&o), vec!["recovered"]);
    assert_eq!(r.history.attempt, 0);
    r.on_exit(&crash(t(started)), t(started + 2500));
    match r.phase {
        Phase::Backoff { delay_ms, .. } => assert_eq!(delay_ms, 200),
        ref p => panic!("{p:?}"),
    }
    // Even without the recovered tick (agent down), the exit's uptime resets it.
    let mut r = launched(t(0));
    crash_loop(&mut r, 0, 2, 100);
    r.phase = Phase::Running { stable_at: None };
    r.on_exit(&crash(t(10_000)), t(13_000));
    assert!(matches!(r.phase, Phase::Backoff { delay_ms: 200, .. }));
}

#[test]
fn a_runner_refusal_is_named_by_what_it_said() {
    let stderr = vec![
        "2026-11-26T10:00:00.000Z [orchestrator] box container 68cf (img) started".to_string(),
        "2026-11-26T10:00:05.000Z [orchestrator] box: EXIT_PREREQUISITE (13): no Docker engine answers at unix:///var/run/docker.sock".to_string(),
        "  - Start the Docker engine".to_string(),
    ];
    assert_eq!(
        runner_said(&stderr, Some(13)).as_deref(),
        Some("EXIT_PREREQUISITE (13): no Docker engine answers at unix:///var/run/docker.sock")
    );
    assert_eq!(runner_said(&stderr, Some(16)), None, "another code");
    assert_eq!(runner_said(&stderr, None), None);
    let container = vec!["2026-11-26T10:00:00Z app: oops (13): not ours".to_string()];
    assert_eq!(
        runner_said(&container, Some(13)),
        None,
        "only the runner's own lines"
    );
}

#[test]
fn non_retryable_exits_fail_at_once() {
    let mut r = launched(t(0));
    let mut x = crash(t(0));
    x.non_retryable = Some((
        "EXIT_PORT_IN_USE".into(),
        "port 3000 is held by pid 7 (nc -l 3000)".into(),
    ));
    let o = r.on_exit(&x, t(100));
    assert_eq!(names(&o), vec!["exited", "failed"]);
    assert_eq!(o.alert, None);
    let lf = r.last_failure.clone().unwrap();
    assert_eq!(
        (lf.code.as_str(), lf.retryable),
        ("EXIT_PORT_IN_USE", false)
    );
    assert_eq!(r.next_wake(), None);
}

#[test]
fn an_explicit_start_clears_the_failed_mark_and_the_history() {
    let mut r = launched(t(0));
    crash_loop(&mut r, 0, 4, 100);
    assert_eq!(r.state_name(), "failed");
    let mut l = Launch {
        switched_from: None,
        service: "api".into(),
        kind: "app".into(),
        profile: "staging".into(),
        policy: policy(),
        check_ports: vec![],
    };
    l.policy.backoff_initial_ms = 50;
    r.launched(&l, t(100_000));
    assert_eq!(r.state_name(), "running");
    assert_eq!(r.history, History::default());
    assert_eq!(r.last_failure, None);
    let o = r.on_exit(&crash(t(100_100)), t(100_200));
    assert_eq!(names(&o), vec!["exited", "restart_scheduled"]);
    assert_eq!(o.events[1]["delayMs"], 50);
}

#[test]
fn failures_recorded_from_commands() {
    let mut r = launched(t(0));
    let f = LastFailure {
        service: "db".into(),
        state: "degraded".into(),
        code: "EXIT_DEPENDENCY_DEGRADED".into(),
        reason: "not healthy in 90 s".into(),
        at: ts(t(0)),
        retryable: true,
        exit_code: None,
        signal: None,
    };
    assert!(r.record_failure(f.clone(), t(0)).events.is_empty());
    assert_eq!(r.state_name(), "running");
    r.ready(t(1));
    assert_eq!(r.last_failure, None);
    let img = LastFailure {
        state: "failed".into(),
        code: "EXIT_IMAGE_UNAVAILABLE".into(),
        retryable: false,
        ..f
    };
    assert_eq!(names(&r.record_failure(img, t(2))), vec!["failed"]);
    assert_eq!(r.state_name(), "failed");
}

#[test]
fn a_refused_restart_counts_as_a_crash() {
    let mut r = launched(t(0));
    r.on_exit(&crash(t(0)), t(100));
    r.take_due(t(300));
    let o = r.on_restart_failed("process name not found", t(310));
    assert_eq!(names(&o), vec!["restarted", "exited", "restart_scheduled"]);
    assert!(matches!(r.phase, Phase::Backoff { delay_ms: 400, .. }));
    let _ = Duration::ZERO;
}
