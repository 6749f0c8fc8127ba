use super::*;
use orchestrator_core::dashboard::{Key, Model};
use orchestrator_core::logs::{Entry, Severity};
use orchestrator_core::status::Snapshot;
use ratatui::backend::TestBackend;
use ratatui::Terminal;

fn row(name: &str, state: &str) -> ServiceStatus {
    ServiceStatus {
        name: name.into(),
        replica: None,
        kind: "app".into(),
        state: state.into(),
        health: "healthy".into(),
        pid: Some(4242),
        pids: vec![4242],
        container_id: None,
        uptime_seconds: Some(65),
        uptime: Some("1m05s".into()),
        restarts: 3,
        recent_restarts: 1,
        window_seconds: 600,
        last_failure: None,
        ports: vec![3000],
        profile: Some("development".into()),
        detail: None,
        cpu_percent: Some(12.5),
        cpu: Some("12.5%".into()),
        memory_bytes: Some(44 << 20),
        memory: Some("44.0M".into()),
        instances: vec![],
    }
}

fn model() -> Model {
    let mut m = Model::default();
    m.on_status(
        Snapshot {
            workspace: "/ws".into(),
            profile: "development".into(),
            generated_at: "now".into(),
            pm2: "online".into(),
            docker: "reachable".into(),
            services: vec![row("api", "online"), row("postgres", "backoff")],
        },
        chrono::Utc::now(),
    );
    m.on_logs(vec![Entry {
        time: chrono::Utc::now(),
        service: "api".into(),
        instance: None,
        stream: Stream::Out,
        severity: Severity::Info,
        line: "GET /health 200".into(),
    }]);
    m
}

fn screen(m: &Model, w: u16, h: u16, color: bool) -> (String, ratatui::buffer::Buffer) {
    let mut t = Terminal::new(TestBackend::new(w, h)).unwrap();
    t.draw(|f| draw(f, m, Palette { color })).unwrap();
    let buf = t.backend().buffer().clone();
    let text = (0..h)
        .map(|y| {
            (0..w)
                .map(|x| buf[(x, y)].symbol().to_string())
                .collect::<String>()
        })
        .collect::<Vec<_>>()
        .join("\n");
    (text, buf)
}

#[test]
fn at_80_by_24_every_pane_and_the_key_bar_fit() {
    let (text, _) = screen(&model(), 80, 24, true);
    for want in [
        "SERVICE",
        "STATE",
        "CPU",
        "MEM",
        "RESTARTS",
        "12.5%",
        "44.0M",
        "1/3",
        "api",
        "postgres",
        "backoff",
        "GET /health 200",
        "events",
        "r restart",
    ] {
        assert!(text.contains(want), "{want} missing at 80x24:\n{text}");
    }
    // A wide terminal shows the rest of the columns.
    let (wide, _) = screen(&model(), 160, 40, true);
    for want in ["PORTS", "PROFILE", "3000", "development", "PID", "4242"] {
        assert!(wide.contains(want), "{want} missing at 160x40:\n{wide}");
    }
}

#[test]
fn no_color_draws_no_colour_at_all() {
    let (_, buf) = screen(&model(), 100, 30, false);
    for c in buf.content() {
        assert_eq!((c.fg, c.bg), (Color::Reset, Color::Reset), "{c:?}");
    }
    let (_, coloured) = screen(&model(), 100, 30, true);
    assert!(
        coloured.content().iter().any(|c| c.fg == Color::Green),
        "online is green"
    );
}

#[test]
fn search_confirm_why_and_help_show_where_they_belong() {
    let mut m = model();
    m.on_key(Key::Char('/'), 5);
    for c in "health".chars() {
        m.on_key(Key::Char(c), 5);
    }
    let (text, _) = screen(&m, 80, 24, true);
    assert!(text.contains("search: health"), "{text}");
    assert!(text.contains("/health (1 found)"), "{text}");
    m.on_key(Key::Enter, 5);
    m.on_key(Key::Char('r'), 5);
    let (text, _) = screen(&m, 80, 24, true);
    assert!(text.contains("restart api? y yes"), "{text}");
    m.on_key(Key::Char('n'), 5);
    m.on_key(Key::Char('w'), 5);
    m.on_why("api", "api is online and healthy".into());
    let (text, _) = screen(&m, 80, 24, true);
    assert!(
        text.contains("why api") && text.contains("api is online and healthy"),
        "{text}"
    );
    m.on_key(Key::Esc, 5);
    m.on_key(Key::Char('?'), 5);
    let (text, _) = screen(&m, 80, 24, true);
    assert!(text.contains("restart it (asks first)"), "{text}");
}

#[test]
fn an_action_shows_its_progress_then_its_actionable_error() {
    let mut m = model();
    m.on_action_started(
        orchestrator_core::dashboard::Verb::Start,
        "api",
        chrono::Utc::now(),
    );
    m.on_action_line("starting api…");
    let (text, _) = screen(&m, 80, 24, true);
    assert!(text.contains("… start api starting api…"), "{text}");
    let printed: Vec<String> = [
        "✖ EXIT_PORT_IN_USE (13) — api: port 3000 is held",
        "  command: orchestrator start api",
        "  what to do:",
        "    - Stop the holder",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    m.on_action_done(13, &printed, chrono::Utc::now());
    let (text, _) = screen(&m, 80, 24, true);
    for want in ["EXIT_PORT_IN_USE (13)", "what to do:", "- Stop the holder"] {
        assert!(text.contains(want), "{want}:\n{text}");
    }
}
