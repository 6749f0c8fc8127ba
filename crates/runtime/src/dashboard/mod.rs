//! `orchestrator dashboard`'s edges: the terminal (crossterm, raw mode on the alternate screen,
//! always restored: `q`, Ctrl-C, a signal (through `quit`), a panic), the status look every
//! second (in memory, `observe::status_with`), the log follower every 250 ms (the same reader as
//! `logs --follow`: rotation loses no line), the services' `events.jsonl`, the actions (the CLI
//! itself, run as a child: the same operations, their own lock and output) and "why". Every
//! decision is the pure `orchestrator_core::dashboard::Model`; this file only feeds it.

mod view;

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::time::Duration;

use chrono::Utc;
use orchestrator_core::dashboard::{self, Effect, EventLine, Key, Model, Verb};
use orchestrator_core::logs::LogsRequest;
use ratatui::crossterm::{cursor, event, execute, terminal};
use ratatui::{backend::CrosstermBackend, Terminal};
use tokio::io::AsyncBufReadExt;
use tokio::sync::mpsc;

use crate::error::{Error, Result};
use crate::observe::{self, Memory, StatusRequest};

pub use view::{Palette, KEYS};

pub struct DashboardRequest {
    pub status: StatusRequest,
    /// The request a start would make: `why` explains against it.
    pub prepare: crate::step::Request,
    /// The CLI as argv (`node`, its bin): an action runs `<cli…> <verb> <service>`.
    pub cli: Vec<String>,
    pub color: bool,
}

/// What the loop hears.
enum Input {
    Key(Key),
    Resize,
    /// A signal asked us to end.
    Signal,
    Status(std::result::Result<crate::status::Snapshot, String>, Memory),
    ActionLine(String),
    ActionDone(i32, Vec<String>),
    Why(String, String),
}

/// Puts the terminal back however the dashboard ends (an error or a panic included).
struct Restore;

impl Drop for Restore {
    fn drop(&mut self) {
        restore();
    }
}

fn restore() {
    let _ = terminal::disable_raw_mode();
    let _ = execute!(
        std::io::stdout(),
        terminal::LeaveAlternateScreen,
        cursor::Show
    );
}

fn io_error(e: std::io::Error) -> Error {
    Error::Usage {
        message: format!("the terminal refused: {e}"),
        remediation: "Run `orchestrator status` instead, or the dashboard in another terminal"
            .into(),
    }
}

/// Runs until `q`, Ctrl-C or a signal. Not a terminal: prints one status table and returns.
pub async fn run(req: DashboardRequest) -> Result<()> {
    if !std::io::stdout().is_terminal() {
        let snap = observe::status(req.status).await?;
        let mut out = std::io::stdout();
        let _ = out.write_all(crate::status::render_table(&snap, false).as_bytes());
        let _ = out.flush();
        return Ok(());
    }
    let root = req.status.workspace_root.clone();
    let cat = crate::catalog::load(&root, &req.status.ecosystem, &req.status.ecosystem_file)?;
    let names: Vec<String> = cat.services.iter().map(|s| s.name.clone()).collect();
    let (tx, mut rx) = mpsc::unbounded_channel::<Input>();

    terminal::enable_raw_mode().map_err(io_error)?;
    let _restore = Restore;
    execute!(
        std::io::stdout(),
        terminal::EnterAlternateScreen,
        cursor::Hide
    )
    .map_err(io_error)?;
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        restore();
        previous(info);
    }));
    let mut term = Terminal::new(CrosstermBackend::new(std::io::stdout())).map_err(io_error)?;

    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    spawn_key_reader(tx.clone(), stop.clone());
    if let Ok(mut g) = RUNNING.lock() {
        *g = Some(tx.clone());
    }

    let mut model = Model::default();
    let mut logs = open_logs(&req, &mut model);
    let mut events = Events::open(&root, &names, &mut model);
    let palette = Palette { color: req.color };
    let mut memory = Memory::default();
    let mut status_running = false;
    let mut status_tick = tokio::time::interval(Duration::from_secs(1));
    let mut log_tick = tokio::time::interval(Duration::from_millis(250));
    let mut page = 10usize;
    let mut dirty = true;

    loop {
        if dirty {
            term.draw(|f| {
                page = view::log_height(f.area(), &model).max(1);
                view::draw(f, &model, palette)
            })
            .map_err(io_error)?;
            dirty = false;
        }
        tokio::select! {
            _ = status_tick.tick(), if !status_running => {
                // The look's memory goes to the task and comes back with its answer: a look
                // never runs twice at once, and the loop keeps drawing meanwhile.
                status_running = true;
                let req = req.status.clone();
                let tx = tx.clone();
                let mut mem = std::mem::take(&mut memory);
                tokio::spawn(async move {
                    let r = observe::status_with(req, &mut mem).await.map_err(|e| e.to_string());
                    let _ = tx.send(Input::Status(r, mem));
                });
            }
            _ = log_tick.tick() => {
                if let Some(f) = logs.as_mut() {
                    let new = f.poll();
                    if !new.is_empty() {
                        model.on_logs(new);
                        dirty = true;
                    }
                }
                if events.poll(&mut model) {
                    dirty = true;
                }
            }
            input = rx.recv() => {
                let Some(input) = input else { break };
                dirty = true;
                match input {
                    Input::Key(k) => match model.on_key(k, page) {
                        Some(Effect::Quit) => break,
                        Some(Effect::Run { verb, service }) => {
                            model.on_action_started(verb, &service, Utc::now());
                            spawn_action(&req.cli, &root, verb, &service, tx.clone());
                        }
                        Some(Effect::Why(service)) => spawn_why(&req, &service, tx.clone()),
                        None => {}
                    },
                    Input::Resize => {}
                    Input::Signal => break,
                    Input::Status(r, mem) => {
                        status_running = false;
                        memory = mem;
                        match r {
                            Ok(s) => model.on_status(s, Utc::now()),
                            Err(e) => model.status_error = Some(e),
                        }
                    }
                    Input::ActionLine(l) => model.on_action_line(&l),
                    Input::ActionDone(code, errors) => {
                        model.on_action_done(code, &errors, Utc::now());
                        // Show the result of the action at once.
                        status_tick.reset_immediately();
                    }
                    Input::Why(service, text) => model.on_why(&service, text),
                }
            }
        }
    }
    if let Ok(mut g) = RUNNING.lock() {
        *g = None;
    }
    // The reader sees `stop` within 100 ms; it is not waited for (a terminal that is gone may
    // hold it in a read), the process ends with the promise.
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    drop(term);
    Ok(())
}

/// The terminal's state for the key reader, from `poll(2)` on stdin.
#[derive(Debug, PartialEq)]
enum Tty {
    Input,
    Quiet,
    /// Hung up (its terminal closed: a killed tmux, a closed ssh session): nobody is there.
    Gone,
}

fn wait_tty(ms: i32) -> Tty {
    let mut p = libc::pollfd {
        fd: 0,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd for the duration of the call.
    let n = unsafe { libc::poll(&mut p, 1, ms) };
    if n < 0 {
        return Tty::Quiet; // EINTR: look again
    }
    if p.revents & (libc::POLLHUP | libc::POLLERR | libc::POLLNVAL) != 0 {
        Tty::Gone
    } else if n > 0 {
        Tty::Input
    } else {
        Tty::Quiet
    }
}

/// The keys, read on a thread of their own until `stop`. A terminal that hangs up ends the
/// dashboard: crossterm reads an end of file from it as "no event yet" forever (measured: a
/// killed tmux left the reader at 10 000 empty reads a second), so stdin is polled here first.
fn spawn_key_reader(
    tx: mpsc::UnboundedSender<Input>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
) {
    std::thread::spawn(move || {
        use event::{Event, KeyCode, KeyEventKind, KeyModifiers};
        while !stop.load(std::sync::atomic::Ordering::SeqCst) {
            // Events crossterm already parsed first; then wait for the terminal.
            match event::poll(Duration::ZERO) {
                Ok(true) => {}
                Ok(false) => {
                    match wait_tty(100) {
                        Tty::Gone => {
                            let _ = tx.send(Input::Signal);
                            break;
                        }
                        Tty::Quiet => continue,
                        Tty::Input => {}
                    }
                    match event::poll(Duration::from_millis(10)) {
                        Ok(true) => {}
                        Ok(false) => continue,
                        Err(_) => break,
                    }
                }
                Err(_) => break,
            }
            let input = match event::read() {
                Ok(Event::Key(k)) if k.kind != KeyEventKind::Release => {
                    let key = match k.code {
                        KeyCode::Char('c') if k.modifiers.contains(KeyModifiers::CONTROL) => {
                            Key::Interrupt
                        }
                        KeyCode::Char(c) => Key::Char(c),
                        KeyCode::Up => Key::Up,
                        KeyCode::Down => Key::Down,
                        KeyCode::PageUp => Key::PageUp,
                        KeyCode::PageDown => Key::PageDown,
                        KeyCode::Home => Key::Home,
                        KeyCode::End => Key::End,
                        KeyCode::Enter => Key::Enter,
                        KeyCode::Esc => Key::Esc,
                        KeyCode::Backspace => Key::Backspace,
                        KeyCode::Tab => Key::Tab,
                        _ => continue,
                    };
                    Input::Key(key)
                }
                Ok(Event::Resize(..)) => Input::Resize,
                Ok(_) => continue,
                Err(_) => break,
            };
            if tx.send(input).is_err() {
                break;
            }
        }
    });
}

/// The running dashboard's inbox, for `quit`.
static RUNNING: std::sync::Mutex<Option<mpsc::UnboundedSender<Input>>> =
    std::sync::Mutex::new(None);

/// Ends the running dashboard the way `q` does (the terminal restored); nothing when none runs.
/// The host's signal handlers call it: Node owns SIGTERM, SIGINT and SIGHUP in its process (a
/// second handler of our own left Node's loop spinning after the signal, measured here).
pub fn quit() {
    if let Some(tx) = RUNNING.lock().ok().and_then(|g| g.clone()) {
        let _ = tx.send(Input::Signal);
    }
}

/// Every service's log, followed from its last 200 lines (the reader of `logs --follow`).
fn open_logs(
    req: &DashboardRequest,
    model: &mut Model,
) -> Option<orchestrator_core::logs::Follower> {
    let r = LogsRequest {
        workspace_root: req.status.workspace_root.clone(),
        services: Vec::new(),
        ecosystem: req.status.ecosystem.clone(),
        ecosystem_file: req.status.ecosystem_file.clone(),
        since: None,
        until: None,
        tail: Some(200),
        stream: None,
        grep: None,
        level: None,
    };
    match crate::logs::follow_open(&r, Utc::now()) {
        Ok((first, follower)) => {
            model.on_logs(first);
            Some(follower)
        }
        Err(e) => {
            model.push_event(EventLine {
                time: Utc::now(),
                service: "logs".into(),
                text: format!("cannot follow the logs: {e}"),
            });
            None
        }
    }
}

/// The services' `events.jsonl`, read from where the last poll stopped.
struct Events {
    files: Vec<(PathBuf, u64)>,
}

impl Events {
    /// The last 20 events of each service, in time order.
    fn open(root: &std::path::Path, names: &[String], model: &mut Model) -> Events {
        let mut first: Vec<EventLine> = Vec::new();
        let files = names
            .iter()
            .map(|n| {
                let path = orchestrator_core::layout::events_file(root, n);
                first.extend(
                    crate::logs::files::tail_lines(&path, 20)
                        .iter()
                        .filter_map(|l| dashboard::event_line(l)),
                );
                let len = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
                (path, len)
            })
            .collect();
        first.sort_by_key(|e| e.time);
        for e in first {
            model.push_event(e);
        }
        Events { files }
    }

    /// Whether new events arrived.
    fn poll(&mut self, model: &mut Model) -> bool {
        use std::io::{Read, Seek, SeekFrom};
        let mut new: Vec<EventLine> = Vec::new();
        for (path, at) in &mut self.files {
            let len = std::fs::metadata(&*path).map(|m| m.len()).unwrap_or(0);
            if len < *at {
                *at = 0; // a new file
            }
            if len == *at {
                continue;
            }
            let Ok(mut f) = std::fs::File::open(&*path) else {
                continue;
            };
            let mut text = String::new();
            if f.seek(SeekFrom::Start(*at)).is_err() || f.read_to_string(&mut text).is_err() {
                continue;
            }
            // Only whole lines: a line being written waits for the next poll.
            let whole = text.rfind('\n').map(|i| i + 1).unwrap_or(0);
            *at += whole as u64;
            new.extend(text[..whole].lines().filter_map(dashboard::event_line));
        }
        new.sort_by_key(|e| e.time);
        let any = !new.is_empty();
        for e in new {
            model.push_event(e);
        }
        any
    }
}

/// Runs `<cli…> <verb> <service>` in the workspace, its stdout lines as progress, its stderr
/// kept for the error it prints when it fails.
fn spawn_action(
    cli: &[String],
    root: &std::path::Path,
    verb: Verb,
    service: &str,
    tx: mpsc::UnboundedSender<Input>,
) {
    let Some((program, args)) = cli.split_first() else {
        let _ = tx.send(Input::ActionDone(
            2,
            vec!["✖ no CLI to run the action with".into()],
        ));
        return;
    };
    let mut cmd = tokio::process::Command::new(program);
    cmd.args(args)
        .arg(verb.as_str())
        .arg(service)
        .current_dir(root)
        .env("NO_COLOR", "1")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    tokio::spawn(async move {
        let mut child = match cmd.spawn() {
            Ok(c) => c,
            Err(e) => {
                let _ = tx.send(Input::ActionDone(
                    127,
                    vec![format!("✖ could not run the CLI: {e}")],
                ));
                return;
            }
        };
        let out = child.stdout.take().map(tokio::io::BufReader::new);
        let err = child.stderr.take().map(tokio::io::BufReader::new);
        let progress = {
            let tx = tx.clone();
            async move {
                if let Some(out) = out {
                    let mut lines = out.lines();
                    while let Ok(Some(l)) = lines.next_line().await {
                        let _ = tx.send(Input::ActionLine(l));
                    }
                }
            }
        };
        let errors = async move {
            let mut kept = Vec::new();
            if let Some(err) = err {
                let mut lines = err.lines();
                while let Ok(Some(l)) = lines.next_line().await {
                    kept.push(l);
                }
            }
            kept
        };
        let ((), errors) = tokio::join!(progress, errors);
        let code = child.wait().await.ok().and_then(|s| s.code()).unwrap_or(1);
        let _ = tx.send(Input::ActionDone(code, errors));
    });
}

/// "Why" of a service, as `orchestrator why` answers it.
fn spawn_why(req: &DashboardRequest, service: &str, tx: mpsc::UnboundedSender<Input>) {
    let prepare = req.prepare.clone();
    let home = req.status.pm2_home.clone();
    let service = service.to_string();
    tokio::spawn(async move {
        let text = match crate::why::why(&service, prepare, &home).await {
            Ok(w) => orchestrator_core::why::render(&w),
            Err(e) => format!("why failed: {e}"),
        };
        let _ = tx.send(Input::Why(service, text));
    });
}
