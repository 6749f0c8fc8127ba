//! Readiness after a launch: every declared port listening and the health probe (HTTP 2xx or a
//! TCP connect) answering, while the launched processes stay alive. Nx has no readiness for
//! long-running tasks; `start` returns only once this holds.

use std::path::PathBuf;
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
    pub timeout: Duration,
    pub error_log: PathBuf,
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

fn pid_alive(pid: u32) -> bool {
    match procfs::process::Process::new(pid as i32).and_then(|p| p.stat()) {
        Ok(stat) => stat.state != 'Z' && stat.state != 'X',
        Err(_) => false,
    }
}

/// Last `n` lines of a log file (reads at most the final 64 KiB).
pub fn tail_lines(path: &std::path::Path, n: usize) -> Vec<String> {
    use std::io::{Read, Seek, SeekFrom};
    let Ok(mut f) = std::fs::File::open(path) else {
        return Vec::new();
    };
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    let start = len.saturating_sub(64 * 1024);
    if f.seek(SeekFrom::Start(start)).is_err() {
        return Vec::new();
    }
    let mut buf = Vec::new();
    let _ = f.read_to_end(&mut buf);
    let text = String::from_utf8_lossy(&buf);
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(n)..]
        .iter()
        .map(|s| s.to_string())
        .collect()
}

async fn wait_one(t: ReadyTarget) -> Result<ReadyReport> {
    let started = Instant::now();
    let mut last_problem;
    loop {
        if !t.pids.is_empty() && !t.pids.iter().any(|p| pid_alive(*p)) {
            return Err(Error::StartFailed {
                service: t.service.clone(),
                reason: format!(
                    "its process{} exited during start",
                    if t.pids.len() > 1 { "es" } else { "" }
                ),
                last_stderr: tail_lines(&t.error_log, 15),
                log_file: t.error_log.clone(),
            });
        }
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
                last_stderr: tail_lines(&t.error_log, 15),
                log_file: t.error_log.clone(),
            });
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits for all targets concurrently; the first failure is returned.
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
            timeout: Duration::from_secs(5),
            error_log: PathBuf::from("/nonexistent"),
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
}
