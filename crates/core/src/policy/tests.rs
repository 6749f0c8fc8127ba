use super::*;
use serde_json::json;

fn t(s: i64) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-11-26T10:00:00Z")
        .unwrap()
        .with_timezone(&Utc)
        + chrono::Duration::seconds(s)
}

fn crash(at: i64, up: i64) -> Exit {
    Exit {
        exit_code: Some(1),
        at: t(at),
        started_at: Some(t(at - up)),
        cause: Cause::Crash,
    }
}

/// Drives a crash series the way the agent does: restart after the backoff, run `up` seconds, crash.
fn run_series(p: &RestartPolicy, crashes: usize, up: i64) -> (Vec<RestartDecision>, History, i64) {
    let mut h = History::default();
    let mut now = 0;
    let mut out = Vec::new();
    for _ in 0..crashes {
        now += up;
        let d = decide(p, &h, &crash(now, up), t(now));
        if let RestartDecision::Restart { after, attempt } = &d {
            now += after.as_secs() as i64;
            h.restarts.push(t(now));
            h.attempt = attempt + 1;
        }
        out.push(d);
    }
    (out, h, now)
}

fn delays(ds: &[RestartDecision]) -> Vec<u64> {
    ds.iter()
        .filter_map(|d| match d {
            RestartDecision::Restart { after, .. } => Some(after.as_millis() as u64),
            _ => None,
        })
        .collect()
}

#[test]
fn default_series_is_5_10_20_40_80_then_the_sixth_crash_gives_up() {
    let p = RestartPolicy::default();
    let (ds, h, _) = run_series(&p, 6, 1);
    assert_eq!(delays(&ds), vec![5_000, 10_000, 20_000, 40_000, 80_000]);
    match &ds[5] {
        RestartDecision::GiveUp(GiveUp::ThresholdExceeded { restarts }) => {
            assert_eq!(restarts, &h.restarts)
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn backoff_is_capped_at_the_maximum() {
    let p = RestartPolicy {
        max_restarts: 10,
        window_seconds: 3600,
        ..Default::default()
    };
    let (ds, _, _) = run_series(&p, 8, 1);
    assert_eq!(
        delays(&ds),
        vec![5_000, 10_000, 20_000, 40_000, 80_000, 120_000, 120_000, 120_000]
    );
    let odd = RestartPolicy {
        backoff_initial_ms: 300,
        backoff_max_ms: 1000,
        backoff_multiplier: 1.5,
        ..Default::default()
    };
    assert_eq!(
        (0..5)
            .map(|a| odd.backoff(a).as_millis() as u64)
            .collect::<Vec<_>>(),
        vec![300, 450, 675, 1000, 1000]
    );
    assert_eq!(odd.backoff(u32::MAX), Duration::from_millis(1000));
}

#[test]
fn boundary_at_exactly_max_restarts() {
    let p = RestartPolicy {
        max_restarts: 3,
        backoff_initial_ms: 200,
        window_seconds: 60,
        ..Default::default()
    };
    let h = History {
        restarts: vec![t(0), t(1)],
        attempt: 2,
    };
    assert!(matches!(
        decide(&p, &h, &crash(2, 1), t(2)),
        RestartDecision::Restart { attempt: 2, .. }
    ));
    let h = History {
        restarts: vec![t(0), t(1), t(2)],
        attempt: 3,
    };
    assert!(matches!(
        decide(&p, &h, &crash(3, 1), t(3)),
        RestartDecision::GiveUp(GiveUp::ThresholdExceeded { .. })
    ));
    let zero = RestartPolicy {
        max_restarts: 0,
        ..p
    };
    assert!(matches!(
        decide(&zero, &History::default(), &crash(3, 1), t(3)),
        RestartDecision::GiveUp(GiveUp::ThresholdExceeded { .. })
    ));
}

#[test]
fn an_old_restart_falling_out_of_the_window_allows_a_new_one() {
    let p = RestartPolicy {
        max_restarts: 2,
        window_seconds: 600,
        ..Default::default()
    };
    let h = History {
        restarts: vec![t(0), t(300)],
        attempt: 2,
    };
    // At 599 s both restarts are inside the window.
    assert!(matches!(
        decide(&p, &h, &crash(599, 1), t(599)),
        RestartDecision::GiveUp(_)
    ));
    // At exactly 600 s the first is 600 s old: out of the window.
    assert!(matches!(
        decide(&p, &h, &crash(600, 1), t(600)),
        RestartDecision::Restart { .. }
    ));
    assert_eq!(h.recent(&p, t(600)), vec![t(300)]);
    assert!(h.recent(&p, t(900)).is_empty());
}

#[test]
fn a_stable_run_resets_the_backoff_but_not_the_window() {
    let p = RestartPolicy {
        stable_seconds: 60,
        ..Default::default()
    };
    let h = History {
        restarts: vec![t(0), t(10), t(30)],
        attempt: 3,
    };
    // Up 59 s: still unstable, the series continues at 40 s.
    assert_eq!(
        decide(&p, &h, &crash(100, 59), t(100)),
        RestartDecision::Restart {
            after: Duration::from_secs(40),
            attempt: 3
        }
    );
    // Up exactly the stable period: back to 5 s.
    assert_eq!(
        decide(&p, &h, &crash(100, 60), t(100)),
        RestartDecision::Restart {
            after: Duration::from_secs(5),
            attempt: 0
        }
    );
    // Unknown start time: not stable.
    let e = Exit {
        started_at: None,
        ..crash(100, 60)
    };
    assert!(matches!(
        decide(&p, &h, &e, t(100)),
        RestartDecision::Restart { attempt: 3, .. }
    ));
    // Crashing every 90 s: each restart comes after 5 s, yet the window still escalates.
    let (ds, _, _) = run_series(&p, 6, 90);
    assert_eq!(delays(&ds), vec![5_000; 5]);
    assert!(matches!(
        ds[5],
        RestartDecision::GiveUp(GiveUp::ThresholdExceeded { .. })
    ));
}

#[test]
fn non_retryable_causes_give_up_at_once_and_stops_are_ignored() {
    let p = RestartPolicy::default();
    let e = Exit {
        exit_code: Some(1),
        at: t(0),
        started_at: Some(t(-1)),
        cause: Cause::NonRetryable {
            code: "EXIT_IMAGE_UNAVAILABLE".into(),
            reason: "no such image".into(),
        },
    };
    assert_eq!(
        decide(&p, &History::default(), &e, t(0)),
        RestartDecision::GiveUp(GiveUp::NonRetryable {
            code: "EXIT_IMAGE_UNAVAILABLE".into(),
            reason: "no such image".into()
        })
    );
    let s = Exit {
        cause: Cause::Stopped,
        ..e
    };
    assert_eq!(
        decide(&p, &History::default(), &s, t(0)),
        RestartDecision::Ignore
    );
    // Even with the window full, a stop is a stop.
    let full = History {
        restarts: vec![t(0); 9],
        attempt: 9,
    };
    assert_eq!(decide(&p, &full, &s, t(0)), RestartDecision::Ignore);
}

#[test]
fn zero_backoff_restarts_at_once() {
    let p = RestartPolicy {
        backoff_initial_ms: 0,
        backoff_max_ms: 0,
        ..Default::default()
    };
    let (ds, _, _) = run_series(&p, 3, 1);
    assert_eq!(delays(&ds), vec![0, 0, 0]);
}

fn file() -> &'static Path {
    Path::new("/ws/nx.json")
}

#[test]
fn layers_resolve_most_specific_last() {
    let ws = json!({"backoffInitialMs": 1000, "profiles": {"production": {"maxRestarts": 10}}});
    let svc = json!({"windowSeconds": 60, "alertCommand": "cat > alert.json",
                      "profiles": {"production": {"backoffInitialMs": 2000}}});
    let dev = resolve(Some(&ws), Some(&svc), "server", "development", file()).unwrap();
    assert_eq!(
        (dev.backoff_initial_ms, dev.max_restarts, dev.window_seconds),
        (1000, 5, 60)
    );
    assert_eq!(dev.alert_command.as_deref(), Some("cat > alert.json"));
    let prod = resolve(Some(&ws), Some(&svc), "server", "production", file()).unwrap();
    assert_eq!((prod.backoff_initial_ms, prod.max_restarts), (2000, 10));
    assert_eq!(
        resolve(None, None, "s", "p", file()).unwrap(),
        RestartPolicy::default()
    );
}

#[test]
fn invalid_values_are_rejected_with_file_and_field() {
    let cases = [
        (
            json!({"maxRestarts": -1}),
            "services.server.restartPolicy.maxRestarts",
            "non-negative",
        ),
        (
            json!({"windowSeconds": 0}),
            "services.server.restartPolicy.windowSeconds",
            "greater than 0",
        ),
        (
            json!({"backoffInitialMs": "5s"}),
            "services.server.restartPolicy.backoffInitialMs",
            "whole number",
        ),
        (
            json!({"backoffInitialMs": 5000, "backoffMaxMs": 1000}),
            "services.server.restartPolicy.backoffMaxMs",
            "less than backoffInitialMs",
        ),
        (
            json!({"backoffMultiplier": 0.5}),
            "services.server.restartPolicy.backoffMultiplier",
            "from 1 to 100",
        ),
        (
            json!({"maxRestart": 3}),
            "services.server.restartPolicy.maxRestart",
            "unknown field",
        ),
        (
            json!({"alertCommand": 3}),
            "services.server.restartPolicy.alertCommand",
            "shell command",
        ),
        (
            json!({"profiles": {"staging": {"windowSeconds": 0}}}),
            "services.server.restartPolicy.profiles.staging.windowSeconds",
            "greater than 0",
        ),
        (
            json!("fast"),
            "services.server.restartPolicy",
            "must be an object",
        ),
    ];
    for (layer, key, msg) in cases {
        let err = resolve(None, Some(&layer), "server", "staging", file()).unwrap_err();
        let a = err.actionable("x");
        assert_eq!(a.code, "EXIT_USAGE", "{layer}");
        assert!(
            a.message.contains("/ws/nx.json") && a.message.contains(key),
            "{layer}: {}",
            a.message
        );
        assert!(a.message.contains(msg), "{layer}: {}", a.message);
    }
    // A bad profile layer is caught even when no command uses that profile.
    let bad = json!({"profiles": {"qa": {"maxRestarts": -2}}});
    assert!(validate_layer(&bad, file(), "k").is_err());
    assert!(validate_layer(&json!({"maxRestarts": 2}), file(), "k").is_ok());
}

#[test]
fn compose_restart_maps_onto_the_policy() {
    let p = |r: &str| {
        resolve_with(
            None,
            Some(&compose_layer(r)),
            None,
            "db",
            "development",
            file(),
        )
        .unwrap()
    };
    assert_eq!(p("no").restart, RestartWhen::No);
    assert_eq!(p("always").restart, RestartWhen::Always);
    assert_eq!(p("unless-stopped").restart, RestartWhen::Always);
    let f = p("on-failure:3");
    assert_eq!((f.restart, f.max_restarts), (RestartWhen::OnFailure, 3));
    // nx.json's per-service layer wins over the file.
    let svc = json!({"restart": "always", "maxRestarts": 9});
    let w = resolve_with(
        None,
        Some(&compose_layer("on-failure:3")),
        Some(&svc),
        "db",
        "development",
        file(),
    )
    .unwrap();
    assert_eq!((w.restart, w.max_restarts), (RestartWhen::Always, 9));
    let exit = |code: Option<i64>| Exit {
        exit_code: code,
        at: t(100),
        started_at: Some(t(0)),
        cause: Cause::Crash,
    };
    let h = History::default();
    assert_eq!(
        decide(&f, &h, &exit(Some(0)), t(100)),
        RestartDecision::Ignore,
        "on-failure leaves a clean exit stopped"
    );
    assert!(matches!(
        decide(&f, &h, &exit(Some(2)), t(100)),
        RestartDecision::Restart { .. }
    ));
    assert!(
        matches!(
            decide(&f, &h, &exit(None), t(100)),
            RestartDecision::Restart { .. }
        ),
        "a signal is a failure"
    );
    let no = p("no");
    assert_eq!(
        decide(&no, &h, &exit(Some(0)), t(100)),
        RestartDecision::Ignore
    );
    assert!(matches!(
        decide(&no, &h, &exit(Some(1)), t(100)),
        RestartDecision::GiveUp(GiveUp::NoRestart { .. })
    ));
}

#[test]
fn pm2_restart_options_map_onto_the_policy() {
    let app = |v: Value| v.as_object().unwrap().clone();
    assert_eq!(ecosystem_layer(&app(json!({"name": "a"}))), None);
    let l = ecosystem_layer(&app(
        json!({"autorestart": false, "max_restarts": 3, "restart_delay": 2000}),
    ))
    .unwrap();
    let p = resolve_with(None, Some(&l), None, "a", "development", file()).unwrap();
    assert_eq!(p.restart, RestartWhen::No);
    assert_eq!(
        (p.max_restarts, p.backoff_initial_ms, p.backoff_multiplier),
        (3, 2000, 1.0)
    );
    let e = ecosystem_layer(&app(json!({"exp_backoff_restart_delay": 100}))).unwrap();
    let p = resolve_with(None, Some(&e), None, "a", "development", file()).unwrap();
    assert_eq!((p.backoff_initial_ms, p.backoff_multiplier), (100, 2.0));
}
