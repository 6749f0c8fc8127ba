//! The dashboard's state and every decision it makes, pure: what a key does, which log lines a
//! pane of a given height shows (filters, scrollback, search), what changed between two status
//! looks, what an action's end says. The terminal, the clock and the reads are the runtime's
//! (`orchestrator_runtime::dashboard`); it hands them in as data.

use std::collections::VecDeque;

use chrono::{DateTime, Utc};

use crate::logs::{Entry, Severity, Stream};
use crate::status::{ServiceStatus, Snapshot};

/// The log pane keeps this many lines, whatever it runs for (the oldest go first).
pub const LOG_CAPACITY: usize = 5000;
/// The events pane keeps this many.
pub const EVENT_CAPACITY: usize = 200;

/// A key, as the terminal reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Key {
    Char(char),
    Up,
    Down,
    PageUp,
    PageDown,
    Home,
    End,
    Enter,
    Esc,
    Backspace,
    Tab,
    /// Ctrl-C: in raw mode it is a key, not a signal.
    Interrupt,
}

/// An operation on a service, run as the CLI runs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    Start,
    Stop,
    Restart,
}

impl Verb {
    pub fn as_str(self) -> &'static str {
        match self {
            Verb::Start => "start",
            Verb::Stop => "stop",
            Verb::Restart => "restart",
        }
    }

    /// Stop and restart interrupt a running service: they ask first.
    pub fn destructive(self) -> bool {
        !matches!(self, Verb::Start)
    }
}

/// What the runtime is asked to do after a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    Quit,
    Run { verb: Verb, service: String },
    Why(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    Normal,
    /// Typing a search (`/`): every key edits the query, which applies as it is typed.
    Search,
    Confirm {
        verb: Verb,
        service: String,
    },
    /// The "why" of a service, scrolled by `scroll` lines; `None` text while it is computed.
    Why {
        service: String,
        text: Option<String>,
        scroll: u16,
    },
    Help,
}

/// Which stream the log pane shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamFilter {
    All,
    Out,
    Err,
}

impl StreamFilter {
    fn next(self) -> Self {
        match self {
            StreamFilter::All => StreamFilter::Out,
            StreamFilter::Out => StreamFilter::Err,
            StreamFilter::Err => StreamFilter::All,
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            StreamFilter::All => "out+err",
            StreamFilter::Out => "out",
            StreamFilter::Err => "err",
        }
    }
}

/// A log line the pane holds, numbered in arrival order (`seq`), so a paused or scrolled view
/// stays on the same lines while new ones arrive and old ones leave.
#[derive(Debug, Clone, PartialEq)]
pub struct LogLine {
    pub seq: u64,
    pub entry: Entry,
}

/// One line of the events pane.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventLine {
    pub time: DateTime<Utc>,
    pub service: String,
    pub text: String,
}

/// A running or finished action and what it says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActionView {
    pub verb: Verb,
    pub service: String,
    pub started: DateTime<Utc>,
    /// The last line it printed while it runs.
    pub progress: Option<String>,
    /// `None` while it runs; then `Ok(summary)` or `Err(the actionable error's lines)`.
    pub outcome: Option<Result<String, Vec<String>>>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Model {
    pub snapshot: Option<Snapshot>,
    /// The status look's own failure (its actionable message), shown above the services.
    pub status_error: Option<String>,
    pub selected: usize,
    /// The log pane follows every service merged (`true`) or the selected one.
    pub all_logs: bool,
    pub logs: VecDeque<LogLine>,
    next_seq: u64,
    pub stream: StreamFilter,
    /// Only lines at least this severe (`None`: every line).
    pub level: Option<Severity>,
    pub search: String,
    /// The bottom line of a paused or scrolled view (`None`: following the newest).
    pub anchor: Option<u64>,
    pub events: VecDeque<EventLine>,
    pub action: Option<ActionView>,
    pub mode: Mode,
}

impl Default for Model {
    fn default() -> Self {
        Model {
            snapshot: None,
            status_error: None,
            selected: 0,
            all_logs: true,
            logs: VecDeque::new(),
            next_seq: 0,
            stream: StreamFilter::All,
            level: None,
            search: String::new(),
            anchor: None,
            events: VecDeque::new(),
            action: None,
            mode: Mode::Normal,
        }
    }
}

const LEVELS: [Option<Severity>; 4] = [
    None,
    Some(Severity::Info),
    Some(Severity::Warn),
    Some(Severity::Error),
];

impl Model {
    pub fn rows(&self) -> &[ServiceStatus] {
        self.snapshot
            .as_ref()
            .map(|s| s.services.as_slice())
            .unwrap_or(&[])
    }

    /// The selected service's name.
    pub fn selected_name(&self) -> Option<&str> {
        self.rows().get(self.selected).map(|r| r.name.as_str())
    }

    /// A new status look: the rows, and an event for every state or health that changed since
    /// the previous look. The selection stays on the same service when it still has a row.
    pub fn on_status(&mut self, snap: Snapshot, now: DateTime<Utc>) {
        let keep = self.selected_name().map(str::to_string);
        if let Some(prev) = &self.snapshot {
            for e in changes(&prev.services, &snap.services, now) {
                self.push_event(e);
            }
        }
        self.snapshot = Some(snap);
        self.status_error = None;
        if let Some(name) = keep {
            if let Some(i) = self.rows().iter().position(|r| r.name == name) {
                self.selected = i;
            }
        }
        self.selected = self.selected.min(self.rows().len().saturating_sub(1));
    }

    /// New log lines (in time order), keeping at most `LOG_CAPACITY`.
    pub fn on_logs(&mut self, entries: Vec<Entry>) {
        for entry in entries {
            self.logs.push_back(LogLine {
                seq: self.next_seq,
                entry,
            });
            self.next_seq += 1;
        }
        while self.logs.len() > LOG_CAPACITY {
            self.logs.pop_front();
        }
    }

    pub fn push_event(&mut self, e: EventLine) {
        self.events.push_back(e);
        while self.events.len() > EVENT_CAPACITY {
            self.events.pop_front();
        }
    }

    /// Whether a line passes the pane's filters (service, stream, level).
    fn shown(&self, l: &LogLine) -> bool {
        let e = &l.entry;
        if !self.all_logs && Some(e.service.as_str()) != self.selected_name() {
            return false;
        }
        let stream_ok = match self.stream {
            StreamFilter::All => true,
            StreamFilter::Out => e.stream == Stream::Out,
            StreamFilter::Err => e.stream == Stream::Err,
        };
        stream_ok && self.level.is_none_or(|min| e.severity >= min)
    }

    /// Whether a line holds the search (the pane highlights it).
    pub fn is_match(&self, l: &LogLine) -> bool {
        !self.search.is_empty() && contains_ci(&l.entry.line, &self.search)
    }

    /// The lines a pane `height` lines high shows, oldest first: the newest ones, or those up to
    /// the anchor of a paused or scrolled view.
    pub fn visible_logs(&self, height: usize) -> Vec<&LogLine> {
        let mut out: Vec<&LogLine> = self
            .logs
            .iter()
            .rev()
            .filter(|l| self.anchor.is_none_or(|a| l.seq <= a))
            .filter(|l| self.shown(l))
            .take(height)
            .collect();
        out.reverse();
        out
    }

    /// How many shown lines hold the search.
    pub fn match_count(&self) -> usize {
        self.logs
            .iter()
            .filter(|l| self.shown(l) && self.is_match(l))
            .count()
    }

    /// Moves the view `n` shown lines back (`older`) or forward; forward past the newest
    /// follows again.
    fn scroll(&mut self, n: usize, older: bool) {
        let shown: Vec<u64> = self
            .logs
            .iter()
            .filter(|l| self.shown(l))
            .map(|l| l.seq)
            .collect();
        let Some(&newest) = shown.last() else {
            return;
        };
        let at = self
            .anchor
            .map(|a| shown.partition_point(|s| *s <= a).saturating_sub(1))
            .unwrap_or(shown.len() - 1);
        if older {
            self.anchor = Some(shown[at.saturating_sub(n)]);
        } else {
            let to = at + n;
            self.anchor = (to < shown.len() - 1).then(|| shown[to]);
            if self.anchor == Some(newest) {
                self.anchor = None;
            }
        }
    }

    /// Puts the view's bottom on the nearest match older (`older`) or newer than the current
    /// bottom; the latest match when `from_newest`.
    fn jump_to_match(&mut self, older: bool, from_newest: bool) -> bool {
        let bottom = if from_newest {
            u64::MAX
        } else {
            self.anchor.unwrap_or(u64::MAX)
        };
        let found = if older {
            self.logs
                .iter()
                .rev()
                .filter(|l| if from_newest { true } else { l.seq < bottom })
                .find(|l| self.shown(l) && self.is_match(l))
        } else {
            self.logs
                .iter()
                .filter(|l| l.seq > bottom)
                .find(|l| self.shown(l) && self.is_match(l))
        }
        .map(|l| l.seq);
        if let Some(seq) = found {
            self.anchor = Some(seq);
        }
        found.is_some()
    }

    /// What `key` does. Pure: the state changes here; what needs the world is returned.
    pub fn on_key(&mut self, key: Key, page: usize) -> Option<Effect> {
        if key == Key::Interrupt {
            return Some(Effect::Quit);
        }
        match self.mode.clone() {
            Mode::Search => {
                match key {
                    Key::Esc => {
                        self.search.clear();
                        self.anchor = None;
                        self.mode = Mode::Normal;
                    }
                    Key::Enter => self.mode = Mode::Normal,
                    Key::Backspace => {
                        self.search.pop();
                        self.jump_to_match(true, true);
                    }
                    Key::Char(c) => {
                        self.search.push(c);
                        self.jump_to_match(true, true);
                    }
                    _ => {}
                }
                None
            }
            Mode::Confirm { verb, service } => {
                self.mode = Mode::Normal;
                matches!(key, Key::Char('y') | Key::Char('Y'))
                    .then_some(Effect::Run { verb, service })
            }
            Mode::Why {
                service,
                text,
                scroll,
            } => {
                let scroll = match key {
                    Key::Down | Key::Char('j') => scroll.saturating_add(1),
                    Key::Up | Key::Char('k') => scroll.saturating_sub(1),
                    Key::PageDown => scroll.saturating_add(page as u16),
                    Key::PageUp => scroll.saturating_sub(page as u16),
                    Key::Char('q') | Key::Esc | Key::Enter | Key::Char('w') => {
                        self.mode = Mode::Normal;
                        return None;
                    }
                    _ => scroll,
                };
                self.mode = Mode::Why {
                    service,
                    text,
                    scroll,
                };
                None
            }
            Mode::Help => {
                self.mode = Mode::Normal;
                (key == Key::Char('q')).then_some(Effect::Quit)
            }
            Mode::Normal => self.on_normal_key(key, page),
        }
    }

    fn on_normal_key(&mut self, key: Key, page: usize) -> Option<Effect> {
        let rows = self.rows().len();
        match key {
            Key::Char('q') => return Some(Effect::Quit),
            Key::Up | Key::Char('k') => self.selected = self.selected.saturating_sub(1),
            Key::Down | Key::Char('j') => {
                self.selected = (self.selected + 1).min(rows.saturating_sub(1))
            }
            Key::Home | Key::Char('g') => self.anchor = self.logs.front().map(|l| l.seq),
            Key::End | Key::Char('G') => self.anchor = None,
            Key::PageUp => self.scroll(page.max(1), true),
            Key::PageDown => self.scroll(page.max(1), false),
            Key::Char('p') | Key::Char(' ') => {
                self.anchor = match self.anchor {
                    Some(_) => None,
                    None => self.logs.back().map(|l| l.seq),
                }
            }
            Key::Char('a') | Key::Tab => self.all_logs = !self.all_logs,
            Key::Char('o') => self.stream = self.stream.next(),
            Key::Char('l') => {
                let at = LEVELS.iter().position(|l| *l == self.level).unwrap_or(0);
                self.level = LEVELS[(at + 1) % LEVELS.len()];
            }
            Key::Char('/') => {
                self.search.clear();
                self.mode = Mode::Search;
            }
            Key::Char('n') => {
                self.jump_to_match(true, false);
            }
            Key::Char('N') => {
                self.jump_to_match(false, false);
            }
            Key::Esc => {
                self.search.clear();
                self.anchor = None;
            }
            Key::Char('?') => self.mode = Mode::Help,
            Key::Char(c @ ('r' | 'x' | 'u' | 'w')) => {
                let service = self.selected_name()?.to_string();
                if c == 'w' {
                    self.mode = Mode::Why {
                        service: service.clone(),
                        text: None,
                        scroll: 0,
                    };
                    return Some(Effect::Why(service));
                }
                if self.action.as_ref().is_some_and(|a| a.outcome.is_none()) {
                    return None; // one action at a time
                }
                let verb = match c {
                    'r' => Verb::Restart,
                    'x' => Verb::Stop,
                    _ => Verb::Start,
                };
                if verb.destructive() {
                    self.mode = Mode::Confirm { verb, service };
                    return None;
                }
                return Some(Effect::Run { verb, service });
            }
            _ => {}
        }
        None
    }

    /// An action began (the runtime started it).
    pub fn on_action_started(&mut self, verb: Verb, service: &str, now: DateTime<Utc>) {
        self.action = Some(ActionView {
            verb,
            service: service.to_string(),
            started: now,
            progress: None,
            outcome: None,
        });
    }

    /// A line the running action printed.
    pub fn on_action_line(&mut self, line: &str) {
        if let Some(a) = self.action.as_mut() {
            let line = line.trim();
            if !line.is_empty() {
                a.progress = Some(line.to_string());
            }
        }
    }

    /// The action ended with `code`; `errors` are the lines it wrote on stderr (the CLI's
    /// actionable error when it failed).
    pub fn on_action_done(&mut self, code: i32, errors: &[String], now: DateTime<Utc>) {
        let Some(a) = self.action.as_mut() else {
            return;
        };
        a.outcome = Some(outcome(a.verb, &a.service, code, errors, now - a.started));
        let text = match &a.outcome {
            Some(Ok(s)) => s.clone(),
            Some(Err(lines)) => lines.first().cloned().unwrap_or_default(),
            None => String::new(),
        };
        let service = a.service.clone();
        self.push_event(EventLine {
            time: now,
            service,
            text,
        });
    }

    /// The answer to a "why" that is still open.
    pub fn on_why(&mut self, service: &str, text: String) {
        if let Mode::Why {
            service: s,
            text: t,
            ..
        } = &mut self.mode
        {
            if s == service {
                *t = Some(text);
            }
        }
    }
}

/// Pure: the summary of an action's end: `Ok` when it exited 0, else the CLI's actionable error
/// as it printed it (`✖ CODE (n) — service: message`, the command, what to do), without the
/// blank lines; its exit code alone when it printed nothing.
pub fn outcome(
    verb: Verb,
    service: &str,
    code: i32,
    errors: &[String],
    took: chrono::Duration,
) -> Result<String, Vec<String>> {
    if code == 0 {
        return Ok(format!(
            "{} {service}: done in {:.1} s",
            verb.as_str(),
            took.num_milliseconds() as f64 / 1000.0
        ));
    }
    let lines: Vec<String> = errors
        .iter()
        .map(|l| l.trim_end().to_string())
        .filter(|l| !l.trim().is_empty())
        .collect();
    // The error starts at its `✖` line; anything before it was progress.
    let from = lines.iter().position(|l| l.starts_with('✖')).unwrap_or(0);
    let lines = lines[from..].to_vec();
    if lines.is_empty() {
        return Err(vec![format!(
            "{} {service}: exited with code {code}",
            verb.as_str()
        )]);
    }
    Err(lines)
}

/// Pure: an event for every service whose state or health differs between two looks (and one
/// for a row that appeared with a state other than stopped).
pub fn changes(
    before: &[ServiceStatus],
    after: &[ServiceStatus],
    now: DateTime<Utc>,
) -> Vec<EventLine> {
    let key = |r: &ServiceStatus| (r.name.clone(), r.replica);
    let mut out = Vec::new();
    for r in after {
        let label = match r.replica {
            Some(n) => format!("{}#{n}", r.name),
            None => r.name.clone(),
        };
        match before.iter().find(|b| key(b) == key(r)) {
            Some(b) if b.state != r.state => out.push(EventLine {
                time: now,
                service: label,
                text: format!(
                    "{} → {}{}",
                    b.state,
                    r.state,
                    r.detail
                        .as_deref()
                        .map(|d| format!(" ({d})"))
                        .unwrap_or_default()
                ),
            }),
            Some(b) if b.health != r.health => out.push(EventLine {
                time: now,
                service: label,
                text: format!("health {} → {}", b.health, r.health),
            }),
            Some(_) => {}
            None if r.state != "stopped" => out.push(EventLine {
                time: now,
                service: label,
                text: r.state.clone(),
            }),
            None => {}
        }
    }
    out
}

/// Pure: one supervision event of `events.jsonl` as the pane shows it (`None`: not an event).
pub fn event_line(json: &str) -> Option<EventLine> {
    let v: serde_json::Value = serde_json::from_str(json).ok()?;
    let time = v.get("time")?.as_str()?.parse::<DateTime<Utc>>().ok()?;
    let service = v.get("service")?.as_str()?.to_string();
    let event = v.get("event")?.as_str()?;
    let s = |k: &str| {
        v.get(k)
            .map(|x| x.as_str().map(str::to_string).unwrap_or(x.to_string()))
    };
    let text = match event {
        "exited" => format!(
            "exited{}{}",
            s("exitCode")
                .map(|c| format!(" code {c}"))
                .unwrap_or_default(),
            s("signal")
                .filter(|x| x != "null")
                .map(|c| format!(" ({c})"))
                .unwrap_or_default()
        ),
        "restart_scheduled" => format!(
            "restart {} in {} ms",
            s("attempt").unwrap_or_default(),
            s("delayMs").unwrap_or_default()
        ),
        "restarted" => format!(
            "restarted ({} in window)",
            s("restartsInWindow").unwrap_or_default()
        ),
        "profile_switched" => format!(
            "profile {} → {}",
            s("from").unwrap_or_default(),
            s("to").unwrap_or_default()
        ),
        "failed" | "refused" => format!(
            "{event}: {} {}",
            s("code").unwrap_or_default(),
            s("reason").unwrap_or_default()
        ),
        "RESTART_THRESHOLD_EXCEEDED" => format!(
            "restart threshold exceeded: {} restarts in {} s",
            s("restarts").unwrap_or_default(),
            s("windowSeconds").unwrap_or_default()
        ),
        "watch_reloaded" => format!(
            "watch: reloaded ({} changed)",
            s("files").unwrap_or_default()
        ),
        "watch_build_failed" => format!("watch: build failed, previous version kept: {}", {
            let e = s("error").unwrap_or_default();
            e.lines()
                .find(|l| l.to_ascii_lowercase().contains("error"))
                .or_else(|| e.lines().next())
                .unwrap_or("")
                .trim()
                .to_string()
        }),
        "watch_reload_failed" | "watch_skipped" => format!(
            "watch: {}: {}",
            if event == "watch_skipped" {
                "not reloaded"
            } else {
                "reload failed"
            },
            s("reason").unwrap_or_default()
        ),
        other => other.replace('_', " "),
    };
    Some(EventLine {
        time,
        service,
        text,
    })
}

/// Pure: whether `hay` contains `needle`, ignoring ASCII case.
pub fn contains_ci(hay: &str, needle: &str) -> bool {
    find_ci(hay, needle).is_some()
}

/// Pure: the byte range of the first occurrence of `needle` in `hay`, ignoring ASCII case.
pub fn find_ci(hay: &str, needle: &str) -> Option<(usize, usize)> {
    if needle.is_empty() || needle.len() > hay.len() {
        return None;
    }
    let (h, n) = (hay.as_bytes(), needle.as_bytes());
    (0..=h.len() - n.len())
        .filter(|i| hay.is_char_boundary(*i) && hay.is_char_boundary(*i + n.len()))
        .find(|i| h[*i..*i + n.len()].eq_ignore_ascii_case(n))
        .map(|i| (i, i + n.len()))
}

#[cfg(test)]
mod tests;
