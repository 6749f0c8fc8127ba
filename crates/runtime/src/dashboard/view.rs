//! The dashboard's frame, drawn from the model alone (ratatui): a header, the services, the log
//! pane, the events, the action line and the keys. No colour at all under `NO_COLOR`: the
//! selection is then reversed and states are words only, as they always are.

use orchestrator_core::dashboard::{Mode, Model};
use orchestrator_core::logs::Stream;
use orchestrator_core::status::ServiceStatus;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span, Text};
use ratatui::widgets::{Block, Borders, Cell, Clear, Paragraph, Row, Table, TableState, Wrap};
use ratatui::Frame;

/// The keys, as the help bar lists them (most used first: a narrow terminal cuts the tail).
pub const KEYS: &str = "↑↓ select  r restart  x stop  u start  w why  / search  n/N next/prev  p pause  PgUp/PgDn scroll  a all/one  o stream  l level  ? help  q quit";

const HELP: &str = "\
Services
  ↑ ↓ (k j)      select a service
  r              restart it (asks first)
  x              stop it (asks first)
  u              start it
  w              why is it not up? (↑ ↓ PgUp PgDn scroll, Esc closes)
Logs
  a, Tab         every service merged / the selected one
  o              stream: out+err, out, err
  l              level: all, info+, warn+, error+
  /              search as you type (Enter keeps it, Esc drops it)
  n N            older / newer match
  p, Space       pause / follow
  PgUp PgDn      scroll back / forward (End follows, Home goes to the oldest)
  q, Ctrl-C      quit (the terminal is restored)";

/// Colours or none (`NO_COLOR`).
#[derive(Debug, Clone, Copy)]
pub struct Palette {
    pub color: bool,
}

impl Palette {
    fn fg(self, c: Color) -> Style {
        if self.color {
            Style::default().fg(c)
        } else {
            Style::default()
        }
    }

    /// A state's colour, as the status table means it.
    fn state(self, state: &str) -> Style {
        self.fg(match state {
            "online" => Color::Green,
            "starting" | "backoff" | "degraded" => Color::Yellow,
            "failed" | "unknown" => Color::Red,
            _ => Color::DarkGray,
        })
    }

    fn health(self, health: &str) -> Style {
        self.fg(match health {
            "healthy" => Color::Green,
            "starting" => Color::Yellow,
            "unhealthy" => Color::Red,
            _ => Color::DarkGray,
        })
    }

    /// A colour per service in the merged log pane (stable: from its name).
    fn service(self, name: &str) -> Style {
        const COLORS: [Color; 6] = [
            Color::Cyan,
            Color::Magenta,
            Color::Blue,
            Color::Green,
            Color::Yellow,
            Color::LightRed,
        ];
        let h = name
            .bytes()
            .fold(0u32, |h, b| h.wrapping_mul(31).wrapping_add(b as u32));
        self.fg(COLORS[h as usize % COLORS.len()])
    }

    fn selected(self) -> Style {
        if self.color {
            Style::default()
                .bg(Color::DarkGray)
                .add_modifier(Modifier::BOLD)
        } else {
            Style::default().add_modifier(Modifier::REVERSED)
        }
    }

    fn found(self) -> Style {
        if self.color {
            Style::default().bg(Color::Yellow).fg(Color::Black)
        } else {
            Style::default().add_modifier(Modifier::REVERSED)
        }
    }
}

/// How many log lines the pane holds at this terminal size (the model's page).
pub fn log_height(area: Rect, m: &Model) -> usize {
    areas(area, m).2.height.saturating_sub(2) as usize
}

/// The header, services, logs, events, action line and help bar.
fn areas(area: Rect, m: &Model) -> (Rect, Rect, Rect, Rect, Rect, Rect) {
    let rows = m.rows().len();
    let events = if area.height >= 30 { 6 } else { 4 };
    // A failed action shows its error whole (up to 4 lines: what failed, the command, what to do).
    let action = match m.action.as_ref().and_then(|a| a.outcome.as_ref()) {
        Some(Err(lines)) => lines.len().clamp(1, 4) as u16,
        _ => 1,
    };
    // The services take what their rows need, up to 40 % of the height.
    let services = (rows as u16 + 3).min(area.height * 2 / 5).max(5);
    let [header, services, logs, events, action, keys] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(services),
        Constraint::Min(4),
        Constraint::Length(events),
        Constraint::Length(action),
        Constraint::Length(1),
    ])
    .areas(area);
    (header, services, logs, events, action, keys)
}

pub fn draw(f: &mut Frame, m: &Model, p: Palette) {
    let (header, services, logs, events, action, keys) = areas(f.area(), m);
    draw_header(f, header, m, p);
    draw_services(f, services, m, p);
    draw_logs(f, logs, m, p);
    draw_events(f, events, m, p);
    draw_action(f, action, m, p);
    let bar = match &m.mode {
        Mode::Search => format!("search: {}▏  Enter keep  Esc drop", m.search),
        Mode::Confirm { verb, service } => {
            format!("{} {service}? y yes, any other key no", verb.as_str())
        }
        _ => KEYS.to_string(),
    };
    f.render_widget(
        Paragraph::new(bar).style(Style::default().add_modifier(Modifier::BOLD)),
        keys,
    );
    match &m.mode {
        Mode::Why {
            service,
            text,
            scroll,
        } => {
            let body = text.clone().unwrap_or_else(|| "looking…".into());
            popup(f, &format!(" why {service} — Esc closes "), &body, *scroll);
        }
        Mode::Help => popup(f, " keys — any key closes ", HELP, 0),
        _ => {}
    }
}

fn draw_header(f: &mut Frame, area: Rect, m: &Model, p: Palette) {
    let line = match &m.snapshot {
        Some(s) => Line::from(vec![
            Span::styled(
                "orchestrator ",
                Style::default().add_modifier(Modifier::BOLD),
            ),
            Span::raw(format!("{}  profile {}  pm2 ", s.workspace, s.profile)),
            Span::styled(
                s.pm2.clone(),
                p.state(if s.pm2 == "online" {
                    "online"
                } else {
                    "failed"
                }),
            ),
            Span::raw("  docker "),
            Span::styled(
                s.docker.clone(),
                p.state(if s.docker.starts_with("unreachable") {
                    "failed"
                } else {
                    "online"
                }),
            ),
        ]),
        None => Line::from("orchestrator  reading status…"),
    };
    f.render_widget(Paragraph::new(line), area);
}

/// The columns, widest terminal first: a narrower one drops from the right.
fn columns(width: u16) -> usize {
    match width {
        0..=79 => 7,
        80..=99 => 8,
        100..=129 => 10,
        _ => 11,
    }
}

fn cells(r: &ServiceStatus) -> Vec<String> {
    let dash = || "-".to_string();
    let name = match r.replica {
        Some(n) => format!("{}#{n}", r.name),
        None => r.name.clone(),
    };
    vec![
        name,
        r.state.clone(),
        r.health.clone(),
        r.cpu.clone().unwrap_or_else(dash),
        r.memory.clone().unwrap_or_else(dash),
        format!("{}/{}", r.recent_restarts, r.restarts),
        r.uptime.clone().unwrap_or_else(dash),
        if r.ports.is_empty() {
            dash()
        } else {
            r.ports
                .iter()
                .map(|p| p.to_string())
                .collect::<Vec<_>>()
                .join(",")
        },
        r.profile.clone().unwrap_or_else(dash),
        r.pid.map(|p| p.to_string()).unwrap_or_else(dash),
        r.last_failure
            .as_ref()
            .map(|f| format!("{} {}", f.code, f.reason))
            .or_else(|| r.detail.clone())
            .unwrap_or_default(),
    ]
}

fn draw_services(f: &mut Frame, area: Rect, m: &Model, p: Palette) {
    let n = columns(area.width);
    let head = [
        "SERVICE",
        "STATE",
        "HEALTH",
        "CPU",
        "MEM",
        "RESTARTS",
        "UPTIME",
        "PORTS",
        "PROFILE",
        "PID",
        "LAST FAILURE",
    ];
    let widths = [
        Constraint::Min(10),
        Constraint::Length(9),
        Constraint::Length(10),
        Constraint::Length(7),
        Constraint::Length(7),
        Constraint::Length(9),
        Constraint::Length(8),
        Constraint::Length(12),
        Constraint::Length(12),
        Constraint::Length(8),
        Constraint::Fill(2),
    ];
    let rows: Vec<Row> = m
        .rows()
        .iter()
        .map(|r| {
            let c = cells(r);
            Row::new(c.into_iter().take(n).enumerate().map(|(i, text)| {
                let style = match i {
                    1 => p.state(&r.state),
                    2 => p.health(&r.health),
                    10 => p.fg(Color::Red),
                    _ => Style::default(),
                };
                Cell::from(text).style(style)
            }))
        })
        .collect();
    let title = match &m.status_error {
        Some(e) => format!(" services — status failed: {e} "),
        None => format!(" services ({}) ", m.rows().len()),
    };
    let table = Table::new(rows, widths.into_iter().take(n))
        .header(
            Row::new(head.into_iter().take(n)).style(Style::default().add_modifier(Modifier::BOLD)),
        )
        .block(Block::default().borders(Borders::TOP).title(title))
        .row_highlight_style(p.selected());
    let mut state =
        TableState::default().with_selected((!m.rows().is_empty()).then_some(m.selected));
    f.render_stateful_widget(table, area, &mut state);
}

fn draw_logs(f: &mut Frame, area: Rect, m: &Model, p: Palette) {
    let height = area.height.saturating_sub(2) as usize;
    let which = if m.all_logs {
        "every service".to_string()
    } else {
        m.selected_name().unwrap_or("-").to_string()
    };
    let mut title = format!(" logs: {which} · {}", m.stream.label());
    if let Some(l) = m.level {
        title.push_str(&format!(" · {}+", l.as_str()));
    }
    if !m.search.is_empty() {
        title.push_str(&format!(" · /{} ({} found)", m.search, m.match_count()));
    }
    title.push_str(if m.anchor.is_some() {
        " · PAUSED (p follows) "
    } else {
        " "
    });
    let lines: Vec<Line> = m
        .visible_logs(height)
        .into_iter()
        .map(|l| {
            let e = &l.entry;
            let mut spans = vec![
                Span::styled(
                    e.time.format("%H:%M:%S ").to_string(),
                    p.fg(Color::DarkGray),
                ),
                Span::styled(format!("{:<10} ", e.service), p.service(&e.service)),
            ];
            let text_style = if e.stream == Stream::Err {
                p.fg(Color::Red)
            } else {
                Style::default()
            };
            match orchestrator_core::dashboard::find_ci(&e.line, &m.search) {
                Some((a, b)) if m.is_match(l) => {
                    spans.push(Span::styled(e.line[..a].to_string(), text_style));
                    spans.push(Span::styled(e.line[a..b].to_string(), p.found()));
                    spans.push(Span::styled(e.line[b..].to_string(), text_style));
                }
                _ => spans.push(Span::styled(e.line.clone(), text_style)),
            }
            Line::from(spans)
        })
        .collect();
    f.render_widget(
        Paragraph::new(Text::from(lines)).block(
            Block::default()
                .borders(Borders::TOP | Borders::BOTTOM)
                .title(title),
        ),
        area,
    );
}

fn draw_events(f: &mut Frame, area: Rect, m: &Model, p: Palette) {
    let height = area.height.saturating_sub(1) as usize;
    let skip = m.events.len().saturating_sub(height);
    let lines: Vec<Line> = m
        .events
        .iter()
        .skip(skip)
        .map(|e| {
            Line::from(vec![
                Span::styled(
                    e.time.format("%H:%M:%S ").to_string(),
                    p.fg(Color::DarkGray),
                ),
                Span::styled(format!("{:<10} ", e.service), p.service(&e.service)),
                Span::raw(e.text.clone()),
            ])
        })
        .collect();
    f.render_widget(
        Paragraph::new(Text::from(lines))
            .block(Block::default().borders(Borders::NONE).title(" events ")),
        area,
    );
}

fn draw_action(f: &mut Frame, area: Rect, m: &Model, p: Palette) {
    let Some(a) = &m.action else {
        return;
    };
    let line = match &a.outcome {
        None => Line::from(vec![
            Span::styled(
                format!("… {} {} ", a.verb.as_str(), a.service),
                p.fg(Color::Yellow),
            ),
            Span::raw(a.progress.clone().unwrap_or_default()),
        ]),
        Some(Ok(s)) => Line::styled(format!("✔ {s}"), p.fg(Color::Green)),
        Some(Err(lines)) => {
            let shown: Vec<Line> = lines
                .iter()
                .filter(|l| !l.trim_start().starts_with("command:"))
                .take(area.height as usize)
                .map(|l| Line::styled(l.clone(), p.fg(Color::Red)))
                .collect();
            f.render_widget(Paragraph::new(Text::from(shown)), area);
            return;
        }
    };
    f.render_widget(Paragraph::new(line), area);
}

/// A centred box over the panes, scrolled by `scroll` lines.
fn popup(f: &mut Frame, title: &str, body: &str, scroll: u16) {
    let area = f.area();
    let w = area.width.saturating_sub(4).min(100);
    let h = area.height.saturating_sub(4);
    let r = Rect {
        x: area.x + (area.width - w) / 2,
        y: area.y + 2,
        width: w,
        height: h,
    };
    f.render_widget(Clear, r);
    f.render_widget(
        Paragraph::new(body.to_string())
            .block(
                Block::default()
                    .borders(Borders::ALL)
                    .title(title.to_string()),
            )
            .wrap(Wrap { trim: false })
            .scroll((scroll, 0)),
        r,
    );
}

#[cfg(test)]
mod tests;
