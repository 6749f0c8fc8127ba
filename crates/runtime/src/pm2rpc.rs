//! PM2's process table read straight from its daemon, without loading the `pm2` client (which
//! costs ~0.1 s to load and pings a monitoring socket on every use): one request on
//! `$PM2_HOME/rpc.sock`, the unix socket PM2's own client talks to.
//!
//! The wire format is PM2's: axon req/rep sockets carrying `amp` frames. A frame is one meta
//! byte (`version << 4 | argc`) then, per argument, a 32-bit big-endian length and the bytes;
//! an argument is `s:<string>`, `j:<json>` or a raw blob. A request is
//! `[j:{"type":"call","method":…,"args":[…]}, s:<id>]`; the reply is `[j:{"args":[…]}, s:<id>]`
//! (or `{"error":…}`), which is pm2-axon-rpc's protocol.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::pm2::{LaunchedEnv, Pm2Process};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const VERSION: u8 = 1;

/// Pure: one amp frame of `args`.
pub fn encode(args: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::with_capacity(1 + args.iter().map(|a| 4 + a.len()).sum::<usize>());
    out.push((VERSION << 4) | (args.len() as u8 & 0x0f));
    for a in args {
        out.extend_from_slice(&(a.len() as u32).to_be_bytes());
        out.extend_from_slice(a);
    }
    out
}

/// Pure: the first complete frame in `buf`, and how many bytes it took; `None` if incomplete.
pub fn decode(buf: &[u8]) -> Option<(Vec<Vec<u8>>, usize)> {
    let meta = *buf.first()?;
    let argc = (meta & 0x0f) as usize;
    let mut off = 1;
    let mut args = Vec::with_capacity(argc);
    for _ in 0..argc {
        let len = u32::from_be_bytes(buf.get(off..off + 4)?.try_into().ok()?) as usize;
        off += 4;
        args.push(buf.get(off..off + len)?.to_vec());
        off += len;
    }
    Some((args, off))
}

/// Pure: an amp argument as JSON (`j:`), a string (`s:`), or nothing.
pub fn unpack(arg: &[u8]) -> Option<Value> {
    match arg.get(..2)? {
        b"j:" => serde_json::from_slice(&arg[2..]).ok(),
        b"s:" => Some(Value::String(
            String::from_utf8_lossy(&arg[2..]).into_owned(),
        )),
        _ => None,
    }
}

pub fn rpc_socket(pm2_home: &Path) -> PathBuf {
    pm2_home.join("rpc.sock")
}

/// The pid of PM2's daemon for this PM2_HOME (`pm2.pid`), when it runs. In cluster mode it is
/// the master that holds an app's listening socket.
pub fn daemon_pid() -> Option<u32> {
    let home = crate::layout::pm2_home();
    let pid: u32 = std::fs::read_to_string(home.join("pm2.pid"))
        .ok()?
        .trim()
        .parse()
        .ok()?;
    std::path::Path::new(&format!("/proc/{pid}"))
        .exists()
        .then_some(pid)
}

#[derive(Debug)]
pub enum RpcError {
    /// No daemon: no socket, or nobody listening on it.
    NotRunning,
    Failed(String),
}

/// Calls one method of PM2's daemon with positional `args` (PM2 appends its callback to them)
/// and returns the reply's first argument as it came (`j:` stripped): the caller parses it into
/// what it needs, without building a JSON tree of everything PM2 sends.
#[tracing::instrument(level = "debug", skip(pm2_home, args, timeout))]
pub async fn call(
    pm2_home: &Path,
    method: &str,
    args: Vec<Value>,
    timeout: Duration,
) -> Result<Vec<u8>, RpcError> {
    let path = rpc_socket(pm2_home);
    let attempt = async {
        let mut sock = match tokio::net::UnixStream::connect(&path).await {
            Ok(s) => s,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused
                ) =>
            {
                return Err(RpcError::NotRunning)
            }
            Err(e) => return Err(RpcError::Failed(format!("{}: {e}", path.display()))),
        };
        let id = format!("orchestrator-{}:0", std::process::id());
        let body = json!({"type": "call", "method": method, "args": args});
        let frame = encode(&[
            format!("j:{body}").into_bytes(),
            format!("s:{id}").into_bytes(),
        ]);
        sock.write_all(&frame)
            .await
            .map_err(|e| RpcError::Failed(e.to_string()))?;
        let mut buf = Vec::with_capacity(256 * 1024);
        loop {
            if let Some((mut parts, _)) = decode(&buf) {
                let first = if parts.is_empty() {
                    Vec::new()
                } else {
                    parts.swap_remove(0)
                };
                return match first.get(..2) {
                    Some(b"j:") => Ok(first[2..].to_vec()),
                    _ => Err(RpcError::Failed(format!("unexpected reply to {method}"))),
                };
            }
            let n = sock
                .read_buf(&mut buf)
                .await
                .map_err(|e| RpcError::Failed(e.to_string()))?;
            if n == 0 {
                return Err(RpcError::Failed(
                    "PM2 closed the connection before answering".into(),
                ));
            }
        }
    };
    tokio::time::timeout(timeout, attempt)
        .await
        .unwrap_or_else(|_| {
            Err(RpcError::Failed(format!(
                "PM2 did not answer {method} in time"
            )))
        })
}

/// Only the fields status reads; serde skips the rest of PM2's (large) entries.
#[derive(Debug, Deserialize)]
struct RawProc {
    #[serde(default)]
    name: String,
    #[serde(default)]
    pm_id: Option<u64>,
    #[serde(default)]
    pid: Option<u64>,
    #[serde(default)]
    pm2_env: RawEnv,
    #[serde(default)]
    monit: Option<RawMonit>,
}

#[derive(Debug, Default, Deserialize)]
struct RawEnv {
    status: Option<String>,
    pm_uptime: Option<i64>,
    restart_time: Option<u64>,
    exit_code: Option<i64>,
    pm_pid_path: Option<String>,
    #[serde(rename = "ORCHESTRATOR_WORKSPACE")]
    workspace: Option<String>,
    #[serde(rename = "ORCHESTRATOR_PROFILE")]
    profile: Option<String>,
    #[serde(rename = "ORCHESTRATOR_KIND")]
    kind: Option<String>,
    #[serde(rename = "ORCHESTRATOR_ENV_KEYS")]
    env_keys: Option<String>,
    #[serde(rename = "ORCHESTRATOR_UNSET")]
    unset: Option<String>,
    /// PM2's number of this instance of the app (a replicated dependency's runner: its replica).
    #[serde(rename = "NODE_APP_INSTANCE", default)]
    instance: Option<Value>,
    /// The app's env as PM2 keeps it too (only our own variables are read).
    #[serde(default)]
    env: Option<RawMeta>,
}

#[derive(Debug, Default, Deserialize)]
struct RawMeta {
    #[serde(rename = "ORCHESTRATOR_WORKSPACE")]
    workspace: Option<String>,
    #[serde(rename = "ORCHESTRATOR_PROFILE")]
    profile: Option<String>,
    #[serde(rename = "ORCHESTRATOR_KIND")]
    kind: Option<String>,
    #[serde(rename = "ORCHESTRATOR_ENV_KEYS")]
    env_keys: Option<String>,
    #[serde(rename = "ORCHESTRATOR_UNSET")]
    unset: Option<String>,
}

#[derive(Debug, Deserialize)]
struct RawMonit {
    memory: Option<u64>,
    cpu: Option<f64>,
}

#[derive(Debug, Deserialize)]
struct Reply {
    #[serde(default)]
    args: Option<(Option<Vec<RawProc>>,)>,
    #[serde(default)]
    error: Option<Value>,
}

/// Pure: PM2's `getMonitorData` reply (the JSON after `j:`) → the core's `Pm2Process`es. Our
/// metadata is read from the app's env or the top level of `pm2_env`, where PM2 copies it;
/// env values are never kept (of `ORCHESTRATOR_ENV_KEYS`/`ORCHESTRATOR_UNSET`, only names).
pub fn procs(reply: &[u8]) -> Result<Vec<Pm2Process>, String> {
    let r: Reply = serde_json::from_slice(reply).map_err(|e| format!("unreadable reply: {e}"))?;
    if let Some(e) = r.error {
        return Err(format!("PM2 answered: {e}"));
    }
    let list = r.args.and_then(|(l,)| l).unwrap_or_default();
    Ok(list
        .into_iter()
        .map(|mut p| {
            let meta = p.pm2_env.env.take().unwrap_or_default();
            p.pm2_env.workspace = meta.workspace.or(p.pm2_env.workspace);
            p.pm2_env.profile = meta.profile.or(p.pm2_env.profile);
            p.pm2_env.kind = meta.kind.or(p.pm2_env.kind);
            p.pm2_env.env_keys = meta.env_keys.or(p.pm2_env.env_keys);
            p.pm2_env.unset = meta.unset.or(p.pm2_env.unset);
            p
        })
        .map(|p| Pm2Process {
            name: p.name,
            pm_id: p.pm_id.unwrap_or_default() as u32,
            pid: p.pid.filter(|p| *p > 0).map(|p| p as u32),
            status: p.pm2_env.status.unwrap_or_else(|| "unknown".into()),
            started_ms: p.pm2_env.pm_uptime,
            restart_time: p.pm2_env.restart_time.unwrap_or_default() as u32,
            exit_code: p.pm2_env.exit_code,
            instance: p.pm2_env.instance.as_ref().and_then(|v| {
                v.as_u64()
                    .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
                    .map(|n| n as u32)
            }),
            workspace: p.pm2_env.workspace,
            profile: p.pm2_env.profile,
            kind: p.pm2_env.kind,
            memory: p.monit.as_ref().and_then(|m| m.memory),
            cpu: p.monit.as_ref().and_then(|m| m.cpu),
            env: LaunchedEnv::parse(p.pm2_env.env_keys.as_deref(), p.pm2_env.unset.as_deref()),
            pid_file: p.pm2_env.pm_pid_path,
        })
        .collect())
}

/// PM2's process table, or `None` when no daemon runs for this PM2_HOME (within 5 s: status).
pub async fn list(pm2_home: &Path) -> Result<Option<Vec<Pm2Process>>, String> {
    list_within(pm2_home, Duration::from_secs(5)).await
}

/// The same, waiting up to `timeout` for a busy daemon (a command mid-launch).
pub async fn list_within(
    pm2_home: &Path,
    timeout: Duration,
) -> Result<Option<Vec<Pm2Process>>, String> {
    match call(pm2_home, "getMonitorData", vec![json!({})], timeout).await {
        Ok(reply) => procs(&reply).map(Some),
        Err(RpcError::NotRunning) => Ok(None),
        Err(RpcError::Failed(m)) => Err(m),
    }
}

/// Calls a PM2 method that answers with an error or not (restart, stop, reloadLogs): `Ok` when
/// PM2 did it, `Err` with PM2's message when it refused.
pub async fn act(
    pm2_home: &Path,
    method: &str,
    arg: Value,
    timeout: Duration,
) -> Result<(), String> {
    let reply = call(pm2_home, method, vec![arg], timeout)
        .await
        .map_err(|e| match e {
            RpcError::NotRunning => "PM2's daemon is not running".to_string(),
            RpcError::Failed(m) => m,
        })?;
    match refusal(&reply) {
        Some(m) => Err(m),
        None => Ok(()),
    }
}

/// Pure: PM2's error in a reply, if any: pm2-axon-rpc answers `{"error": <message or object>}`
/// instead of `{"args": […]}`.
pub fn refusal(reply: &[u8]) -> Option<String> {
    let v: Value = serde_json::from_slice(reply).ok()?;
    let err = v.get("error").filter(|e| !e.is_null())?;
    Some(match err {
        Value::String(m) => m.clone(),
        e => e
            .get("message")
            .or_else(|| e.get("msg"))
            .and_then(Value::as_str)
            .map(str::to_string)
            .unwrap_or_else(|| e.to_string()),
    })
}

/// The socket PM2's daemon publishes its events on (axon pub/sub, amp frames of
/// `[s:<event name>, j:<data>]`).
pub fn bus_socket(pm2_home: &Path) -> PathBuf {
    pm2_home.join("pub.sock")
}

/// One event of PM2's bus: its name (`process:event`, `log:out`, …) and its data.
#[derive(Debug, Clone, PartialEq)]
pub struct BusEvent {
    pub name: String,
    pub data: Value,
}

/// Pure: every complete bus frame at the front of `buf` (consumed from it), as events; frames of
/// another shape are skipped.
pub fn bus_events(buf: &mut Vec<u8>) -> Vec<BusEvent> {
    let mut out = Vec::new();
    let mut used = 0;
    while let Some((args, n)) = decode(&buf[used..]) {
        used += n;
        let mut args = args.iter().map(|a| unpack(a));
        if let (Some(Some(Value::String(name))), data) = (args.next(), args.next()) {
            out.push(BusEvent {
                name,
                data: data.flatten().unwrap_or(Value::Null),
            });
        }
    }
    buf.drain(..used);
    out
}

/// A subscription to PM2's bus (what PM2's client calls `launchBus`), read from Rust.
pub struct Bus {
    sock: tokio::net::UnixStream,
    buf: Vec<u8>,
}

impl Bus {
    pub async fn connect(pm2_home: &Path) -> std::io::Result<Bus> {
        Ok(Bus {
            sock: tokio::net::UnixStream::connect(bus_socket(pm2_home)).await?,
            buf: Vec::with_capacity(64 * 1024),
        })
    }

    /// The next events (at least one); `Ok(empty)` never; an error or end of stream when PM2's
    /// daemon went away. Cancel-safe: bytes read stay in the buffer.
    pub async fn next(&mut self) -> std::io::Result<Vec<BusEvent>> {
        loop {
            let events = bus_events(&mut self.buf);
            if !events.is_empty() {
                return Ok(events);
            }
            if self.sock.read_buf(&mut self.buf).await? == 0 {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "PM2's daemon closed its bus",
                ));
            }
        }
    }
}

/// Pure: the process of a `process:event` as the core's `Pm2Process` (PM2 sends the process's
/// `pm2_env` flattened, with the app's env merged in).
pub fn bus_process(p: &Value) -> Pm2Process {
    let s = |k: &str| p.get(k).and_then(Value::as_str).map(str::to_string);
    let meta = |k: &str| {
        p.get("env")
            .and_then(|e| e.get(k))
            .and_then(Value::as_str)
            .map(str::to_string)
            .or_else(|| s(k))
    };
    Pm2Process {
        name: s("name").unwrap_or_default(),
        pm_id: p
            .get("pm_id")
            .and_then(|v| v.as_u64().or_else(|| v.as_str()?.parse().ok()))
            .unwrap_or_default() as u32,
        pid: p
            .get("pid")
            .and_then(Value::as_u64)
            .filter(|n| *n > 0)
            .map(|n| n as u32),
        status: s("status").unwrap_or_default(),
        workspace: meta("ORCHESTRATOR_WORKSPACE"),
        profile: meta("ORCHESTRATOR_PROFILE"),
        kind: meta("ORCHESTRATOR_KIND"),
        started_ms: p.get("pm_uptime").and_then(Value::as_i64),
        restart_time: p
            .get("restart_time")
            .and_then(Value::as_u64)
            .unwrap_or_default() as u32,
        exit_code: p.get("exit_code").and_then(Value::as_i64),
        memory: None,
        cpu: None,
        instance: None,
        pid_file: s("pm_pid_path"),
        env: LaunchedEnv::default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_and_wait_for_all_bytes() {
        let f = encode(&[b"j:{\"a\":1}".to_vec(), b"s:id:0".to_vec()]);
        assert_eq!(f[0], 0x12);
        assert_eq!(&f[1..5], &[0, 0, 0, 9]);
        for cut in 0..f.len() {
            assert_eq!(decode(&f[..cut]), None, "incomplete at {cut}");
        }
        let (args, used) = decode(&f).unwrap();
        assert_eq!(used, f.len());
        assert_eq!(unpack(&args[0]), Some(json!({"a": 1})));
        assert_eq!(unpack(&args[1]), Some(json!("id:0")));
        assert_eq!(unpack(b"raw"), None);
    }

    #[test]
    fn reads_entries_and_our_metadata_from_pm2_env() {
        let l = vec![
            json!({
                "name": "server", "pm_id": 3, "pid": 4242,
                "monit": {"memory": 1000, "cpu": 1.5},
                "pm2_env": {"status": "online", "pm_uptime": 1_800_000_000_000i64, "restart_time": 2,
                            "ORCHESTRATOR_WORKSPACE": "/ws", "env": {"ORCHESTRATOR_PROFILE": "staging", "SECRET": "x", "ORCHESTRATOR_ENV_KEYS": "PORT,SECRET"}}
            }),
            json!({"name": "old", "pm_id": 4, "pid": 0, "pm2_env": {"status": "stopped", "exit_code": 3}}),
        ];
        let reply = json!({ "args": [l] }).to_string();
        let p = procs(reply.as_bytes()).unwrap();
        assert!(procs(br#"{"error": "method missing"}"#)
            .unwrap_err()
            .contains("method missing"));
        assert_eq!(p[0].pid, Some(4242));
        assert_eq!(p[0].workspace.as_deref(), Some("/ws"));
        assert_eq!(p[0].profile.as_deref(), Some("staging"));
        assert_eq!(p[0].restart_time, 2);
        assert_eq!(p[0].env.keys, vec!["PORT", "SECRET"], "names only");
        assert_eq!(p[1].pid, None);
        assert_eq!(p[1].exit_code, Some(3));
    }

    #[tokio::test]
    async fn no_socket_means_no_daemon() {
        let r = list(Path::new("/nonexistent/pm2-home")).await;
        assert!(matches!(r, Ok(None)));
    }

    #[test]
    fn bus_frames_are_read_whole_and_in_order_and_a_partial_one_waits() {
        let ev = |name: &str, data: &str| {
            encode(&[
                format!("s:{name}").into_bytes(),
                format!("j:{data}").into_bytes(),
            ])
        };
        let mut buf = ev(
            "process:event",
            r#"{"event":"exit","process":{"name":"api","pm_id":"3","ORCHESTRATOR_WORKSPACE":"/w","exit_code":1}}"#,
        );
        buf.extend(ev("log:out", r#"{"data":"x"}"#));
        let third = ev("process:event", r#"{"event":"stop"}"#);
        buf.extend(&third[..5]);
        let got = bus_events(&mut buf);
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].name, "process:event");
        assert_eq!(got[1].name, "log:out");
        let p = bus_process(&got[0].data["process"]);
        assert_eq!((p.name.as_str(), p.pm_id, p.exit_code), ("api", 3, Some(1)));
        assert_eq!(p.workspace.as_deref(), Some("/w"));
        assert_eq!(buf.len(), 5, "the partial frame stays for the next read");
        buf.extend(&third[5..]);
        let got = bus_events(&mut buf);
        assert_eq!(got[0].data["event"], "stop");
        assert!(buf.is_empty());
    }

    #[test]
    fn a_refusal_is_pm2s_message_in_either_shape() {
        assert_eq!(refusal(br#"{"args":[{"pm_id":1}]}"#), None);
        assert_eq!(
            refusal(br#"{"error":"God db process id unknown","stack":"at x"}"#).as_deref(),
            Some("God db process id unknown")
        );
        assert_eq!(
            refusal(br#"{"error":{"msg":"id unknown"}}"#).as_deref(),
            Some("id unknown")
        );
    }
}
