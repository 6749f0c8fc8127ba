//! Readiness after a launch: every declared port listening and the health probe (HTTP 2xx or a
//! TCP connect) answering, while the launched processes stay alive. Nx has no readiness for
//! long-running tasks; `start` returns only once this holds.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::error::{Error, Result};

#[derive(Debug, Clone)]
pub struct ReadyTarget {
    pub service: String,
    pub ports: Vec<u16>,
    pub health_http: Option<String>,
    pub health_tcp: Option<String>,
    pub pids: Vec<u32>,
    /// PM2's pid files of the service's instances: read on every look, so a restart by the agent
    /// (a new pid) is followed. Empty: `pids` are used as given.
    pub pid_files: Vec<PathBuf>,
    /// The workspace root, where the agent's record of the service lives.
    pub workspace: Option<PathBuf>,
    pub timeout: Duration,
    pub error_log: PathBuf,
    /// A process that exits before it is ready fails the wait at once, even while the restart
    /// policy brings it back (`--fail-fast`; `watch` uses it: new code that crashes at start is
    /// said at once, and its next change is not held up by the policy's backoff).
    pub fail_fast: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ReadyReport {
    pub service: String,
    pub ready_ms: u64,
}

/// Pure: split `http://host:port/path` into (host:port, host, path).
pub fn parse_http_url(url: &str) -> Option<(String, String, String)> {
    let rest = url.strip_prefix("http://")?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    if authority.is_empty() {
        return None;
    }
    let addr = if authority
        .rsplit_once(':')
        .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
    {
        authority.to_string()
    } else {
        format!("{authority}:80")
    };
    Some((addr, authority.to_string(), path.to_string()))
}

/// Pure: the status code of an HTTP/1.x response head.
pub fn parse_status_line(head: &str) -> Option<u16> {
    let mut parts = head.split_whitespace();
    let proto = parts.next()?;
    if !proto.starts_with("HTTP/") {
        return None;
    }
    parts.next()?.parse().ok()
}

async fn http_status(url: &str) -> std::result::Result<u16, String> {
    let (addr, host, path) = parse_http_url(url)
        .ok_or_else(|| format!("unsupported health URL {url} (http://host:port/path)"))?;
    let attempt = async {
        let mut s = tokio::net::TcpStream::connect(&addr)
            .await
            .map_err(|e| format!("connect {addr}: {e}"))?;
        let req = format!("GET {path} HTTP/1.0\r\nHost: {host}\r\nUser-Agent: orchestrator\r\nConnection: close\r\n\r\n");
        s.write_all(req.as_bytes())
            .await
            .map_err(|e| e.to_string())?;
        let mut buf = vec![0u8; 256];
        let n = s.read(&mut buf).await.map_err(|e| e.to_string())?;
        let head = String::from_utf8_lossy(&buf[..n]);
        parse_status_line(&head).ok_or_else(|| "no HTTP status line".to_string())
    };
    tokio::time::timeout(Duration::from_secs(2), attempt)
        .await
        .map_err(|_| "timed out".to_string())?
}

/// One look at an app's health probe (for `status`): HTTP 2xx, or a TCP connect, within 1 s.
pub async fn probe(http: Option<&str>, tcp: Option<&str>) -> crate::status::Probe {
    use crate::status::Probe;
    if let Some(url) = http {
        return match http_status(url).await {
            Ok(code) if (200..300).contains(&code) => Probe::Ok,
            Ok(code) => Probe::Failed(format!("GET {url} answered {code}")),
            Err(e) => Probe::Failed(format!("GET {url}: {e}")),
        };
    }
    if let Some(addr) = tcp {
        let attempt =
            tokio::time::timeout(Duration::from_secs(1), tokio::net::TcpStream::connect(addr))
                .await;
        return match attempt {
            Ok(Ok(_)) => Probe::Ok,
            Ok(Err(e)) => Probe::Failed(format!("connect {addr}: {e}")),
            Err(_) => Probe::Failed(format!("connect {addr}: timed out")),
        };
    }
    Probe::NotConfigured
}

fn pid_alive(pid: u32) -> bool {
    match procfs::process::Process::new(pid as i32).and_then(|p| p.stat()) {
        Ok(stat) => stat.state != 'Z' && stat.state != 'X',
        Err(_) => false,
    }
}

fn read_pid(file: &std::path::Path) -> Option<u32> {
    std::fs::read_to_string(file).ok()?.trim().parse().ok()
}

/// The error for a service the agent gave up on while a command waited for it.
pub fn failed_error(service: &str, error_log: &std::path::Path, code: &str, reason: &str) -> Error {
    let code = crate::exit::ExitCode::ALL
        .into_iter()
        .find(|c| c.name() == code)
        .unwrap_or(crate::exit::ExitCode::Failure);
    Error::ServiceFailed {
        service: service.to_string(),
        code,
        reason: reason.to_string(),
        last_stderr: crate::logs::files::tail_lines(error_log, 15),
        events_file: error_log
            .parent()
            .map(|d| d.join("events.jsonl"))
            .unwrap_or_default(),
    }
}

enum Supervision {
    /// No record, or not meant to run: the process exiting fails the start at once.
    None,
    /// The agent gave up.
    Failed(Error),
    /// A restart is scheduled or under way.
    Waiting(String),
    /// Meant to run, and the agent has not answered its exit (yet).
    Unanswered,
}

/// What the agent's record says about the service.
fn supervision(t: &ReadyTarget, now: chrono::DateTime<chrono::Utc>) -> Supervision {
    use crate::supervise::{Desired, Phase};
    let Some(rec) = t
        .workspace
        .as_ref()
        .and_then(|w| crate::state::read(w, &t.service))
    else {
        return Supervision::None;
    };
    if rec.desired != Desired::Running {
        return Supervision::None;
    }
    match &rec.phase {
        Phase::Failed { code, reason, .. } => {
            Supervision::Failed(failed_error(&t.service, &t.error_log, code, reason))
        }
        Phase::Backoff {
            due_at, attempt, ..
        } => Supervision::Waiting(format!(
            "it exited {}; restart {attempt} in {:.1} s",
            crate::supervise::describe_exit(
                rec.last_exit.as_ref().and_then(|x| x["exitCode"].as_i64()),
                rec.last_exit.as_ref().and_then(|x| x["signal"].as_str()),
            ),
            ((*due_at - now).num_milliseconds().max(0) as f64) / 1000.0
        )),
        Phase::Restarting { attempt, .. } => {
            Supervision::Waiting(format!("restart {attempt} under way"))
        }
        Phase::Running { .. } | Phase::Stopped => Supervision::Unanswered,
    }
}

/// Whether the workspace's agent has started at some point and is not alive now.
fn agent_down(root: &Path) -> bool {
    read_pid(&crate::layout::agent_pid_file(root)).is_some_and(|pid| !pid_alive(pid))
}

/// How long a process may stay down with no answer from the agent before `start` gives up.
/// The agent answers an exit within a second.
const AGENT_ANSWER: Duration = Duration::from_secs(5);

/// How long an app with no port and no health probe must stay up to count as started.
pub const MIN_UPTIME: Duration = Duration::from_millis(1000);

async fn wait_one(t: ReadyTarget) -> Result<ReadyReport> {
    let started = Instant::now();
    let mut last_problem: String;
    let mut down_since: Option<Instant> = None;
    let mut up_since: Option<Instant> = None;
    // Looks come quickly at first (most apps listen within a few hundred ms), then every
    // 100 ms: what readiness adds to the app's own start stays small without a busy loop.
    let mut pause = Duration::from_millis(10);
    let mut next_pause = move || {
        let p = pause;
        pause = (pause * 3 / 2).min(Duration::from_millis(100));
        p
    };
    let exited = |t: &ReadyTarget, why: &str| Error::StartFailed {
        service: t.service.clone(),
        reason: why.to_string(),
        last_stderr: crate::logs::files::tail_lines(&t.error_log, 15),
        log_file: t.error_log.clone(),
    };
    loop {
        let pids: Vec<u32> = if t.pid_files.is_empty() {
            t.pids.clone()
        } else {
            t.pid_files.iter().filter_map(|f| read_pid(f)).collect()
        };
        let expect_pids = !t.pids.is_empty() || !t.pid_files.is_empty();
        let down = expect_pids && !pids.iter().any(|p| pid_alive(*p));
        let sup = supervision(&t, chrono::Utc::now());
        if let Supervision::Failed(e) = sup {
            return Err(e);
        }
        if down {
            match sup {
                Supervision::None | Supervision::Failed(_) => {
                    return Err(exited(&t, "its process exited during start"))
                }
                Supervision::Waiting(p) if t.fail_fast => {
                    return Err(exited(
                        &t,
                        &format!(
                        "its process exited during start ({p}; --fail-fast did not wait for it)"
                    ),
                    ))
                }
                Supervision::Waiting(p) => {
                    down_since = None;
                    last_problem = p;
                }
                Supervision::Unanswered if t.workspace.as_deref().is_some_and(agent_down) => {
                    // The agent itself is down (killed, crashed): PM2 brings it back, and it
                    // answers exits that happened meanwhile at its first look. Keep waiting.
                    down_since = None;
                    last_problem =
                        "its process exited while the workspace agent is down (PM2 restarts the agent)"
                            .into();
                }
                Supervision::Unanswered => {
                    if down_since.get_or_insert_with(Instant::now).elapsed() > AGENT_ANSWER {
                        return Err(exited(
                            &t,
                            "its process exited during start and no restart was scheduled (is the workspace's orchestrator-agent online in `pm2 ls`?)",
                        ));
                    }
                    last_problem = "its process is not running".into();
                }
            }
            if started.elapsed() >= t.timeout {
                return Err(exited(
                    &t,
                    &format!("not ready within {} s: {last_problem}", t.timeout.as_secs()),
                ));
            }
            up_since = None;
            tokio::time::sleep(next_pause()).await;
            continue;
        }
        down_since = None;
        let up = *up_since.get_or_insert_with(Instant::now);
        let mut problem = None;
        let listeners = crate::ports::read_listeners();
        if let Some(p) = t
            .ports
            .iter()
            .find(|p| !listeners.iter().any(|l| l.port == **p))
        {
            problem = Some(format!("port {p} is not listening"));
        }
        if problem.is_none() {
            if let Some(url) = &t.health_http {
                match http_status(url).await {
                    Ok(code) if (200..300).contains(&code) => {}
                    Ok(code) => problem = Some(format!("GET {url} answered {code}")),
                    Err(e) => problem = Some(format!("GET {url}: {e}")),
                }
            }
        }
        if problem.is_none() {
            if let Some(addr) = &t.health_tcp {
                if let Err(e) = tokio::net::TcpStream::connect(addr).await {
                    problem = Some(format!("connect {addr}: {e}"));
                }
            }
        }
        // Without a port or a probe, ready means it stayed up for MIN_UPTIME (PM2's min_uptime):
        // an app that crashes at once does not pass.
        let unprobed = t.ports.is_empty() && t.health_http.is_none() && t.health_tcp.is_none();
        if problem.is_none() && unprobed && expect_pids && up.elapsed() < MIN_UPTIME {
            problem = Some(format!("up for less than {} ms", MIN_UPTIME.as_millis()));
        }
        match problem {
            None => {
                return Ok(ReadyReport {
                    service: t.service,
                    ready_ms: started.elapsed().as_millis() as u64,
                })
            }
            Some(p) => last_problem = p,
        }
        if started.elapsed() >= t.timeout {
            return Err(Error::StartFailed {
                service: t.service.clone(),
                reason: format!("not ready within {} s: {last_problem}", t.timeout.as_secs()),
                last_stderr: crate::logs::files::tail_lines(&t.error_log, 15),
                log_file: t.error_log.clone(),
            });
        }
        tokio::time::sleep(next_pause()).await;
    }
}

/// Waits for all targets concurrently; the first failure is returned.
#[tracing::instrument(level = "debug", skip_all, fields(services = targets.len()))]
pub async fn wait_ready(targets: Vec<ReadyTarget>) -> Result<Vec<ReadyReport>> {
    let handles: Vec<_> = targets
        .into_iter()
        .map(|t| tokio::spawn(wait_one(t)))
        .collect();
    let mut out = Vec::new();
    let mut first_err = None;
    for h in handles {
        match h.await {
            Ok(Ok(r)) => out.push(r),
            Ok(Err(e)) => {
                first_err.get_or_insert(e);
            }
            Err(join) => {
                first_err.get_or_insert(Error::Usage {
                    message: format!("readiness task failed: {join}"),
                    remediation: "Report this as a bug".into(),
                });
            }
        }
    }
    match first_err {
        Some(e) => Err(e),
        None => Ok(out),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_health_urls() {
        assert_eq!(
            parse_http_url("http://127.0.0.1:3000/health"),
            Some((
                "127.0.0.1:3000".into(),
                "127.0.0.1:3000".into(),
                "/health".into()
            ))
        );
        assert_eq!(
            parse_http_url("http://localhost"),
            Some(("localhost:80".into(), "localhost".into(), "/".into()))
        );
        assert_eq!(parse_http_url("https://x/"), None);
        assert_eq!(parse_http_url("http:///x"), None);
    }

    #[test]
    fn parses_status_lines() {
        assert_eq!(parse_status_line("HTTP/1.1 200 OK\r\n"), Some(200));
        assert_eq!(
            parse_status_line("HTTP/1.0 503 Service Unavailable"),
            Some(503)
        );
        assert_eq!(parse_status_line("SSH-2.0"), None);
    }

    #[tokio::test]
    async fn ready_when_port_listens_and_failed_when_pid_is_gone() {
        let sock = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = sock.local_addr().unwrap().port();
        let t = ReadyTarget {
            service: "svc".into(),
            ports: vec![port],
            health_http: None,
            health_tcp: Some(format!("127.0.0.1:{port}")),
            pids: vec![std::process::id()],
            pid_files: vec![],
            workspace: None,
            timeout: Duration::from_secs(5),
            error_log: PathBuf::from("/nonexistent"),
            fail_fast: false,
        };
        assert_eq!(wait_ready(vec![t.clone()]).await.unwrap()[0].service, "svc");
        drop(sock);
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        let dead = ReadyTarget {
            pids: vec![pid],
            ..t.clone()
        };
        let err = wait_ready(vec![dead]).await.unwrap_err();
        assert!(
            err.message().contains("exited during start"),
            "{}",
            err.message()
        );
        let slow = ReadyTarget {
            pids: vec![],
            timeout: Duration::from_millis(300),
            ..t
        };
        let err = wait_ready(vec![slow]).await.unwrap_err();
        assert!(
            err.message()
                .contains(&format!("port {port} is not listening")),
            "{}",
            err.message()
        );
    }
    #[tokio::test]
    async fn fail_fast_does_not_wait_for_the_restart_policy() {
        use crate::supervise::{Desired, Phase};
        let root = std::env::temp_dir().join(format!("orch-ready-ff-{}", std::process::id()));
        std::fs::create_dir_all(&root).unwrap();
        let now = chrono::Utc::now();
        crate::state::update(&root, "svc", now, |rec| {
            rec.desired = Desired::Running;
            rec.phase = Phase::Backoff {
                due_at: now + chrono::Duration::seconds(30),
                delay_ms: 30000,
                attempt: 2,
                pm_ids: vec!["0".into()],
            };
            ((), Default::default())
        })
        .unwrap();
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        let t = ReadyTarget {
            service: "svc".into(),
            ports: vec![],
            health_http: None,
            health_tcp: None,
            pids: vec![pid],
            pid_files: vec![],
            workspace: Some(root.clone()),
            timeout: Duration::from_secs(20),
            error_log: PathBuf::from("/nonexistent"),
            fail_fast: true,
        };
        let started = std::time::Instant::now();
        let err = wait_ready(vec![t.clone()]).await.unwrap_err();
        assert!(err.message().contains("--fail-fast"), "{}", err.message());
        assert!(err.message().contains("restart 2 in"), "{}", err.message());
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "it did not wait out the backoff"
        );
        // Without it, the wait goes on while the policy restarts it (here: until the timeout).
        let patient = ReadyTarget {
            fail_fast: false,
            timeout: Duration::from_millis(500),
            ..t
        };
        let err = wait_ready(vec![patient]).await.unwrap_err();
        assert!(
            err.message().contains("not ready within"),
            "{}",
            err.message()
        );
        let _ = std::fs::remove_dir_all(&root);
    }
}
