use super::*;

fn t(s: u32) -> DateTime<Utc> {
    DateTime::from_timestamp(1_800_000_000 + s as i64, 0).unwrap()
}

fn row(name: &str, state: &str, health: &str) -> ServiceStatus {
    ServiceStatus {
        name: name.into(),
        replica: None,
        kind: "app".into(),
        state: state.into(),
        health: health.into(),
        pid: Some(1),
        pids: vec![1],
        container_id: None,
        uptime_seconds: None,
        uptime: None,
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

fn snap(rows: Vec<ServiceStatus>) -> Snapshot {
    Snapshot {
        workspace: "/ws".into(),
        profile: "development".into(),
        generated_at: "now".into(),
        pm2: "online".into(),
        docker: "reachable".into(),
        services: rows,
    }
}

fn entry(service: &str, stream: Stream, severity: Severity, line: &str, s: u32) -> Entry {
    Entry {
        time: t(s),
        service: service.into(),
        instance: None,
        stream,
        severity,
        line: line.into(),
    }
}

fn model() -> Model {
    let mut m = Model::default();
    m.on_status(
        snap(vec![
            row("api", "online", "healthy"),
            row("db", "online", "healthy"),
        ]),
        t(0),
    );
    m
}

fn texts(m: &Model, h: usize) -> Vec<String> {
    m.visible_logs(h)
        .iter()
        .map(|l| l.entry.line.clone())
        .collect()
}

#[test]
fn the_log_pane_follows_the_newest_lines_and_stays_bounded() {
    let mut m = model();
    m.on_logs(
        (0..LOG_CAPACITY as u32 + 10)
            .map(|i| entry("api", Stream::Out, Severity::Info, &format!("line {i}"), i))
            .collect(),
    );
    assert_eq!(m.logs.len(), LOG_CAPACITY);
    assert_eq!(m.logs.front().unwrap().entry.line, "line 10");
    let n = LOG_CAPACITY + 9;
    assert_eq!(
        texts(&m, 2),
        vec![format!("line {}", n - 1), format!("line {n}")]
    );
}

#[test]
fn filters_by_service_stream_and_level() {
    let mut m = model();
    m.on_logs(vec![
        entry("api", Stream::Out, Severity::Info, "api info", 1),
        entry("db", Stream::Err, Severity::Error, "db error", 2),
        entry("api", Stream::Err, Severity::Warn, "api warn", 3),
        entry("db", Stream::Out, Severity::Debug, "db debug", 4),
    ]);
    assert_eq!(texts(&m, 10).len(), 4);
    // One service: the selected one (api is first).
    m.on_key(Key::Char('a'), 10);
    assert_eq!(texts(&m, 10), vec!["api info", "api warn"]);
    m.on_key(Key::Down, 10);
    assert_eq!(texts(&m, 10), vec!["db error", "db debug"]);
    m.on_key(Key::Char('a'), 10);
    // Streams: out, then err, then both.
    m.on_key(Key::Char('o'), 10);
    assert_eq!(texts(&m, 10), vec!["api info", "db debug"]);
    m.on_key(Key::Char('o'), 10);
    assert_eq!(texts(&m, 10), vec!["db error", "api warn"]);
    m.on_key(Key::Char('o'), 10);
    // Levels: info and above, warn and above, error and above, all.
    m.on_key(Key::Char('l'), 10);
    assert_eq!(texts(&m, 10), vec!["api info", "db error", "api warn"]);
    m.on_key(Key::Char('l'), 10);
    assert_eq!(texts(&m, 10), vec!["db error", "api warn"]);
    m.on_key(Key::Char('l'), 10);
    assert_eq!(texts(&m, 10), vec!["db error"]);
    m.on_key(Key::Char('l'), 10);
    assert_eq!(texts(&m, 10).len(), 4);
}

#[test]
fn a_paused_view_stays_on_its_lines_while_new_ones_arrive_and_scrolls_back() {
    let mut m = model();
    m.on_logs(
        (0..10)
            .map(|i| entry("api", Stream::Out, Severity::Info, &format!("l{i}"), i))
            .collect(),
    );
    m.on_key(Key::Char('p'), 3);
    m.on_logs(vec![entry("api", Stream::Out, Severity::Info, "new", 11)]);
    assert_eq!(
        texts(&m, 3),
        vec!["l7", "l8", "l9"],
        "paused: the new line waits"
    );
    m.on_key(Key::PageUp, 3);
    assert_eq!(texts(&m, 3), vec!["l4", "l5", "l6"]);
    m.on_key(Key::PageDown, 3);
    assert_eq!(texts(&m, 3), vec!["l7", "l8", "l9"]);
    m.on_key(Key::PageDown, 3);
    assert_eq!(m.anchor, None, "past the newest: following again");
    assert_eq!(texts(&m, 3), vec!["l8", "l9", "new"]);
    // Home goes to the oldest, End follows.
    m.on_key(Key::Home, 3);
    assert_eq!(texts(&m, 3), vec!["l0"]);
    m.on_key(Key::End, 3);
    assert_eq!(texts(&m, 3), vec!["l8", "l9", "new"]);
    // Scrolling up from following, then pausing again resumes.
    m.on_key(Key::PageUp, 3);
    assert_eq!(texts(&m, 3), vec!["l5", "l6", "l7"]);
    m.on_key(Key::Char('p'), 3);
    assert_eq!(m.anchor, None);
}

#[test]
fn search_is_incremental_and_n_walks_the_matches() {
    let mut m = model();
    m.on_logs(vec![
        entry("api", Stream::Out, Severity::Info, "GET /a 200", 1),
        entry("api", Stream::Out, Severity::Info, "payment Failed id=1", 2),
        entry("api", Stream::Out, Severity::Info, "GET /b 200", 3),
        entry("api", Stream::Out, Severity::Info, "payment failed id=2", 4),
        entry("api", Stream::Out, Severity::Info, "GET /c 200", 5),
    ]);
    m.on_key(Key::Char('/'), 2);
    assert_eq!(m.mode, Mode::Search);
    for c in "FAIL".chars() {
        m.on_key(Key::Char(c), 2);
    }
    assert_eq!(m.search, "FAIL");
    assert_eq!(m.match_count(), 2, "case-insensitive");
    assert_eq!(
        texts(&m, 2),
        vec!["GET /b 200", "payment failed id=2"],
        "the latest match at the bottom"
    );
    m.on_key(Key::Enter, 2);
    assert_eq!(m.mode, Mode::Normal);
    m.on_key(Key::Char('n'), 2);
    assert_eq!(texts(&m, 2), vec!["GET /a 200", "payment Failed id=1"]);
    m.on_key(Key::Char('n'), 2);
    assert_eq!(
        texts(&m, 2),
        vec!["GET /a 200", "payment Failed id=1"],
        "no older match: stays"
    );
    m.on_key(Key::Char('N'), 2);
    assert_eq!(texts(&m, 2), vec!["GET /b 200", "payment failed id=2"]);
    assert!(m.is_match(m.visible_logs(2)[1]));
    assert!(!m.is_match(m.visible_logs(2)[0]));
    // Backspace edits; Esc drops the search and follows again.
    m.on_key(Key::Char('/'), 2);
    m.on_key(Key::Char('x'), 2);
    assert_eq!(m.match_count(), 0);
    m.on_key(Key::Esc, 2);
    assert_eq!((m.search.as_str(), m.anchor), ("", None));
    assert_eq!(find_ci("naïve FAIL", "fail"), Some((7, 11)));
    assert_eq!(find_ci("x", ""), None);
}

#[test]
fn destructive_actions_ask_first_and_start_does_not() {
    let mut m = model();
    assert_eq!(m.on_key(Key::Char('r'), 5), None);
    assert_eq!(
        m.mode,
        Mode::Confirm {
            verb: Verb::Restart,
            service: "api".into()
        }
    );
    assert_eq!(m.on_key(Key::Char('n'), 5), None, "anything but y declines");
    assert_eq!(m.mode, Mode::Normal);
    m.on_key(Key::Down, 5);
    m.on_key(Key::Char('x'), 5);
    assert_eq!(
        m.on_key(Key::Char('y'), 5),
        Some(Effect::Run {
            verb: Verb::Stop,
            service: "db".into()
        })
    );
    assert_eq!(
        m.on_key(Key::Char('u'), 5),
        Some(Effect::Run {
            verb: Verb::Start,
            service: "db".into()
        })
    );
    // One action at a time.
    m.on_action_started(Verb::Start, "db", t(1));
    assert_eq!(m.on_key(Key::Char('u'), 5), None);
    m.on_action_line("  ✔ db  online  ");
    assert_eq!(
        m.action.as_ref().unwrap().progress.as_deref(),
        Some("✔ db  online")
    );
    m.on_action_done(0, &[], t(3));
    assert_eq!(
        m.action.as_ref().unwrap().outcome,
        Some(Ok("start db: done in 2.0 s".into()))
    );
    assert_eq!(m.events.back().unwrap().text, "start db: done in 2.0 s");
    assert!(
        m.on_key(Key::Char('u'), 5).is_some(),
        "the next one may start"
    );
}

#[test]
fn a_failed_action_shows_the_actionable_error() {
    let printed: Vec<String> = [
        "starting api…",
        "✖ EXIT_PORT_IN_USE (13) — api: port 3000 is held by nginx (pid 7)",
        "  command: orchestrator start api",
        "",
        "  what to do:",
        "    - Stop nginx",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let o = outcome(
        Verb::Start,
        "api",
        13,
        &printed,
        chrono::Duration::seconds(1),
    );
    assert_eq!(
        o,
        Err(vec![
            "✖ EXIT_PORT_IN_USE (13) — api: port 3000 is held by nginx (pid 7)".to_string(),
            "  command: orchestrator start api".to_string(),
            "  what to do:".to_string(),
            "    - Stop nginx".to_string(),
        ])
    );
    let bare = outcome(Verb::Stop, "api", 1, &[], chrono::Duration::seconds(1));
    assert_eq!(bare, Err(vec!["stop api: exited with code 1".to_string()]));
    let mut m = model();
    m.on_action_started(Verb::Start, "api", t(0));
    m.on_action_done(13, &printed, t(1));
    assert_eq!(
        m.events.back().unwrap().text,
        "✖ EXIT_PORT_IN_USE (13) — api: port 3000 is held by nginx (pid 7)"
    );
}

#[test]
fn why_opens_scrolls_and_closes_and_q_quits_from_normal_and_help() {
    let mut m = model();
    assert_eq!(m.on_key(Key::Char('w'), 5), Some(Effect::Why("api".into())));
    m.on_why("db", "not this one".into());
    m.on_why("api", "api is up".into());
    m.on_key(Key::Down, 5);
    assert_eq!(
        m.mode,
        Mode::Why {
            service: "api".into(),
            text: Some("api is up".into()),
            scroll: 1
        }
    );
    assert_eq!(m.on_key(Key::Char('q'), 5), None, "q closes the why first");
    assert_eq!(m.mode, Mode::Normal);
    m.on_key(Key::Char('?'), 5);
    assert_eq!(m.mode, Mode::Help);
    assert_eq!(m.on_key(Key::Char('x'), 5), None);
    assert_eq!(m.mode, Mode::Normal);
    assert_eq!(m.on_key(Key::Char('q'), 5), Some(Effect::Quit));
    m.on_key(Key::Char('/'), 5);
    assert_eq!(
        m.on_key(Key::Interrupt, 5),
        Some(Effect::Quit),
        "Ctrl-C quits from anywhere"
    );
}

#[test]
fn the_selection_follows_its_service_and_changes_become_events() {
    let mut m = model();
    m.on_key(Key::Down, 5);
    assert_eq!(m.selected_name(), Some("db"));
    let mut db = row("db", "backoff", "none");
    db.detail = Some("restart 1 at 10:00:01".into());
    m.on_status(
        snap(vec![
            row("web", "starting", "none"),
            row("api", "online", "unhealthy"),
            db,
        ]),
        t(5),
    );
    assert_eq!(
        m.selected_name(),
        Some("db"),
        "still db although rows moved"
    );
    let ev: Vec<(String, String)> = m
        .events
        .iter()
        .map(|e| (e.service.clone(), e.text.clone()))
        .collect();
    assert_eq!(
        ev,
        vec![
            ("web".to_string(), "starting".to_string()),
            ("api".to_string(), "health healthy → unhealthy".to_string()),
            (
                "db".to_string(),
                "online → backoff (restart 1 at 10:00:01)".to_string()
            ),
        ]
    );
    m.on_status(snap(vec![row("api", "online", "healthy")]), t(6));
    assert_eq!(m.selected, 0, "clamped when its row is gone");
    for i in 0..EVENT_CAPACITY + 5 {
        m.push_event(EventLine {
            time: t(i as u32),
            service: "x".into(),
            text: i.to_string(),
        });
    }
    assert_eq!(m.events.len(), EVENT_CAPACITY);
}

#[test]
fn supervision_events_read_as_short_lines() {
    let e = event_line(r#"{"time":"2026-12-03T01:00:00.000Z","event":"exited","service":"api","profile":"development","exitCode":1,"signal":null}"#).unwrap();
    assert_eq!(
        (e.service.as_str(), e.text.as_str()),
        ("api", "exited code 1")
    );
    let e = event_line(r#"{"time":"2026-12-03T01:00:00.000Z","event":"profile_switched","service":"api","from":"development","to":"staging"}"#).unwrap();
    assert_eq!(e.text, "profile development → staging");
    let e = event_line(r#"{"time":"2026-12-03T01:00:00.000Z","event":"RESTART_THRESHOLD_EXCEEDED","service":"api","restarts":5,"windowSeconds":600}"#).unwrap();
    assert_eq!(e.text, "restart threshold exceeded: 5 restarts in 600 s");
    let e = event_line(
        r#"{"time":"2026-12-03T01:00:00.000Z","event":"restart_cancelled","service":"api"}"#,
    )
    .unwrap();
    assert_eq!(e.text, "restart cancelled");
    let e = event_line(
        r#"{"time":"2026-12-03T01:00:00.000Z","event":"watch_reloaded","service":"api","files":3}"#,
    )
    .unwrap();
    assert_eq!(e.text, "watch: reloaded (3 changed)");
    let e = event_line(r#"{"time":"2026-12-03T01:00:00.000Z","event":"watch_build_failed","service":"api","error":"x.js:1\nSyntaxError: y\n    at z"}"#).unwrap();
    assert_eq!(
        e.text,
        "watch: build failed, previous version kept: SyntaxError: y"
    );
    let e = event_line(r#"{"time":"2026-12-03T01:00:00.000Z","event":"watch_skipped","service":"api","reason":"not running"}"#).unwrap();
    assert_eq!(e.text, "watch: not reloaded: not running");
    assert_eq!(event_line("not json"), None);
    assert_eq!(event_line(r#"{"event":"exited"}"#), None);
}
