//! The restart policy (DESIGN §3): how long to wait before restarting a service that exited on
//! its own, and when to give up. Pure: `decide(policy, history, exit, now)`.
//!
//! PM2's own `exp_backoff_restart_delay` is capped at 15 s with a fixed ×1.5 factor, and its
//! `max_restarts` only counts crashes in the first seconds after a start. Ours: a configurable
//! series (default 5 s, 10 s, 20 s, 40 s, 80 s, capped at 120 s) and a sliding window
//! ("5 restarts in 10 minutes"), after which the service is `failed` until an explicit start.

use std::path::Path;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error::{Error, Result};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RestartPolicy {
    /// Restarts allowed inside the window; one more exit and the service is `failed`.
    pub max_restarts: u32,
    pub window_seconds: u64,
    pub backoff_initial_ms: u64,
    pub backoff_max_ms: u64,
    pub backoff_multiplier: f64,
    /// A run at least this long counts as stable: the next exit starts again from the initial backoff.
    pub stable_seconds: u64,
    /// Runs with the `RESTART_THRESHOLD_EXCEEDED` event as JSON on stdin (`sh -c`, workspace root).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alert_command: Option<String>,
    /// Which exits are restarted: compose's `restart:` (`no`, `on-failure`, `always`) or PM2's
    /// `autorestart: false` set it; `always` by default.
    #[serde(default)]
    pub restart: RestartWhen,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RestartWhen {
    /// Every exit it did not ask for (compose `always`, `unless-stopped`).
    #[default]
    Always,
    /// Only a non-zero exit (or a signal); an exit with code 0 stays stopped.
    OnFailure,
    /// Never: an exit with code 0 stays stopped, any other is `failed` at once.
    No,
}

impl Default for RestartPolicy {
    fn default() -> Self {
        RestartPolicy {
            max_restarts: 5,
            window_seconds: 600,
            backoff_initial_ms: 5_000,
            backoff_max_ms: 120_000,
            backoff_multiplier: 2.0,
            stable_seconds: 60,
            alert_command: None,
            restart: RestartWhen::Always,
        }
    }
}

/// The keys a `restartPolicy` object may hold (besides `profiles`).
const FIELDS: [&str; 8] = [
    "restart",
    "maxRestarts",
    "windowSeconds",
    "backoffInitialMs",
    "backoffMaxMs",
    "backoffMultiplier",
    "stableSeconds",
    "alertCommand",
];

fn invalid(file: &Path, key: &str, message: impl Into<String>) -> Error {
    Error::InvalidConfig {
        file: file.to_path_buf(),
        key: key.to_string(),
        message: message.into(),
    }
}

fn whole(v: &Value, file: &Path, key: &str, max: u64) -> Result<u64> {
    match v.as_u64() {
        Some(n) if n <= max => Ok(n),
        Some(_) => Err(invalid(file, key, format!("must be at most {max}"))),
        None => Err(invalid(
            file,
            key,
            format!("must be a non-negative whole number, got {v}"),
        )),
    }
}

/// Applies one `restartPolicy` object (at `key`) over `policy`: only the fields it names.
fn apply(policy: &mut RestartPolicy, layer: &Value, file: &Path, key: &str) -> Result<()> {
    let Some(obj) = layer.as_object() else {
        return Err(invalid(file, key, "must be an object"));
    };
    for (k, v) in obj {
        let at = format!("{key}.{k}");
        match k.as_str() {
            "maxRestarts" => policy.max_restarts = whole(v, file, &at, 10_000)? as u32,
            "windowSeconds" => {
                policy.window_seconds = whole(v, file, &at, 30 * 86_400)?;
                if policy.window_seconds == 0 {
                    return Err(invalid(file, &at, "must be greater than 0"));
                }
            }
            "backoffInitialMs" => policy.backoff_initial_ms = whole(v, file, &at, 86_400_000)?,
            "backoffMaxMs" => policy.backoff_max_ms = whole(v, file, &at, 86_400_000)?,
            "backoffMultiplier" => match v.as_f64() {
                Some(m) if (1.0..=100.0).contains(&m) => policy.backoff_multiplier = m,
                _ => {
                    return Err(invalid(
                        file,
                        &at,
                        format!("must be a number from 1 to 100, got {v}"),
                    ))
                }
            },
            "stableSeconds" => policy.stable_seconds = whole(v, file, &at, 86_400)?,
            "alertCommand" => match v {
                Value::String(s) if !s.trim().is_empty() => policy.alert_command = Some(s.clone()),
                Value::Null => policy.alert_command = None,
                _ => {
                    return Err(invalid(
                        file,
                        &at,
                        "must be a non-empty shell command string",
                    ))
                }
            },
            "restart" => {
                policy.restart = match v.as_str() {
                    Some("always") => RestartWhen::Always,
                    Some("on-failure") => RestartWhen::OnFailure,
                    Some("no") => RestartWhen::No,
                    _ => {
                        return Err(invalid(
                            file,
                            &at,
                            format!("must be \"always\", \"on-failure\" or \"no\", got {v}"),
                        ))
                    }
                }
            }
            "profiles" => {}
            other => {
                return Err(invalid(
                    file,
                    &at,
                    format!(
                        "unknown field \"{other}\" (known: {}, profiles)",
                        FIELDS.join(", ")
                    ),
                ))
            }
        }
    }
    Ok(())
}

fn profile_layer<'a>(
    layer: &'a Value,
    profile: &str,
    file: &Path,
    key: &str,
) -> Result<Option<&'a Value>> {
    match layer.get("profiles") {
        None => Ok(None),
        Some(Value::Object(p)) => Ok(p.get(profile)),
        Some(_) => Err(invalid(
            file,
            &format!("{key}.profiles"),
            "must be an object of profile → policy",
        )),
    }
}

/// Resolves a service's policy for a profile from the plugin section of `nx.json`, most specific
/// last: defaults ← `restartPolicy` ← `restartPolicy.profiles.<profile>` ←
/// `services.<name>.restartPolicy` ← `services.<name>.restartPolicy.profiles.<profile>`.
/// Invalid values are rejected with the file and the field.
pub fn resolve(
    workspace_layer: Option<&Value>,
    service_layer: Option<&Value>,
    service: &str,
    profile: &str,
    file: &Path,
) -> Result<RestartPolicy> {
    resolve_with(workspace_layer, None, service_layer, service, profile, file)
}

/// [`resolve`] with the service's own file between the workspace's and the service's layers
/// in nx.json: what compose's `restart:` or the ecosystem's PM2 options say ([`compose_layer`],
/// [`ecosystem_layer`]).
pub fn resolve_with(
    workspace_layer: Option<&Value>,
    file_layer: Option<&Value>,
    service_layer: Option<&Value>,
    service: &str,
    profile: &str,
    file: &Path,
) -> Result<RestartPolicy> {
    let base = format!("pluginsConfig[\"{}\"]", crate::names::PLUGIN_KEY);
    let mut p = RestartPolicy::default();
    let ws_key = format!("{base}.restartPolicy");
    let svc_key = format!("{base}.services.{service}.restartPolicy");
    if let Some(layer) = workspace_layer {
        apply(&mut p, layer, file, &ws_key)?;
        if let Some(pl) = profile_layer(layer, profile, file, &ws_key)? {
            apply(&mut p, pl, file, &format!("{ws_key}.profiles.{profile}"))?;
        }
    }
    if let Some(layer) = file_layer {
        apply(
            &mut p,
            layer,
            file,
            &format!("{service} (its restart settings)"),
        )?;
    }
    for (layer, key) in [(service_layer, svc_key)] {
        let Some(layer) = layer else { continue };
        apply(&mut p, layer, file, &key)?;
        if let Some(pl) = profile_layer(layer, profile, file, &key)? {
            apply(&mut p, pl, file, &format!("{key}.profiles.{profile}"))?;
        }
    }
    if p.backoff_max_ms < p.backoff_initial_ms {
        return Err(invalid(
            file,
            &svc_key_or_ws(service_layer, &base, service),
            format!(
                "backoffMaxMs ({}) is less than backoffInitialMs ({}) for {service} under profile {profile}",
                p.backoff_max_ms, p.backoff_initial_ms
            ),
        ));
    }
    Ok(p)
}

fn svc_key_or_ws(service_layer: Option<&Value>, base: &str, service: &str) -> String {
    if service_layer.is_some() {
        format!("{base}.services.{service}.restartPolicy.backoffMaxMs")
    } else {
        format!("{base}.restartPolicy.backoffMaxMs")
    }
}

/// Pure: compose's `restart:` as a policy layer: `no`, `on-failure[:N]` (N as maxRestarts),
/// `always` and `unless-stopped` (both: every exit, as the engine does while not stopped).
pub fn compose_layer(restart: &str) -> Value {
    match restart {
        "no" => serde_json::json!({ "restart": "no" }),
        "on-failure" => serde_json::json!({ "restart": "on-failure" }),
        r => match r
            .strip_prefix("on-failure:")
            .and_then(|n| n.parse::<u64>().ok())
        {
            Some(n) => serde_json::json!({ "restart": "on-failure", "maxRestarts": n }),
            None => serde_json::json!({ "restart": "always" }),
        },
    }
}

/// Pure: an ecosystem app's PM2 restart options as a policy layer: `autorestart: false` → no
/// restarts, `max_restarts` → maxRestarts, `restart_delay` → a fixed backoff,
/// `exp_backoff_restart_delay` → a doubling backoff from that delay.
pub fn ecosystem_layer(app: &Map<String, Value>) -> Option<Value> {
    let mut m = Map::new();
    if app.get("autorestart") == Some(&Value::Bool(false)) {
        m.insert("restart".into(), "no".into());
    }
    if let Some(n) = app.get("max_restarts").and_then(Value::as_u64) {
        m.insert("maxRestarts".into(), n.min(10_000).into());
    }
    if let Some(d) = app
        .get("restart_delay")
        .and_then(Value::as_u64)
        .filter(|d| *d > 0)
    {
        m.insert("backoffInitialMs".into(), d.into());
        m.insert("backoffMaxMs".into(), d.into());
        m.insert("backoffMultiplier".into(), 1.into());
    }
    if let Some(d) = app
        .get("exp_backoff_restart_delay")
        .and_then(Value::as_u64)
        .filter(|d| *d > 0)
    {
        m.insert("backoffInitialMs".into(), d.into());
        m.insert("backoffMaxMs".into(), d.max(120_000).into());
        m.insert("backoffMultiplier".into(), 2.into());
    }
    (!m.is_empty()).then_some(Value::Object(m))
}

/// Checks every layer's own fields (also profiles no command uses yet), so a typo fails at once.
pub fn validate_layer(layer: &Value, file: &Path, key: &str) -> Result<()> {
    let mut scratch = RestartPolicy::default();
    apply(&mut scratch, layer, file, key)?;
    if let Some(Value::Object(profiles)) = layer.get("profiles") {
        for (name, pl) in profiles {
            apply(&mut scratch, pl, file, &format!("{key}.profiles.{name}"))?;
        }
    } else if layer.get("profiles").is_some() {
        profile_layer(layer, "", file, key)?;
    }
    Ok(())
}

impl RestartPolicy {
    /// The delay before restart number `attempt + 1` of a crash series (0-based attempt).
    pub fn backoff(&self, attempt: u32) -> Duration {
        let raw =
            self.backoff_initial_ms as f64 * self.backoff_multiplier.powi(attempt.min(1000) as i32);
        let ms = if raw.is_finite() {
            raw.min(self.backoff_max_ms as f64)
        } else {
            self.backoff_max_ms as f64
        };
        Duration::from_millis(ms as u64)
    }

    pub fn window(&self) -> chrono::Duration {
        chrono::Duration::seconds(self.window_seconds as i64)
    }
}

/// What we remember between exits of one service.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct History {
    /// When each restart we performed happened (pruned to the window as it slides).
    pub restarts: Vec<DateTime<Utc>>,
    /// Restarts since the last stable run: the exponent of the next backoff.
    pub attempt: u32,
}

impl History {
    pub fn recent(&self, policy: &RestartPolicy, now: DateTime<Utc>) -> Vec<DateTime<Utc>> {
        let since = now - policy.window();
        self.restarts
            .iter()
            .copied()
            .filter(|t| *t > since)
            .collect()
    }
}

/// Why a process ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "type")]
pub enum Cause {
    /// It exited on its own (any code or signal).
    Crash,
    /// `stop`/`restart`/`delete` asked for it.
    Stopped,
    /// Restarting cannot help: image unavailable, required env missing, port held by another process.
    NonRetryable { code: String, reason: String },
}

#[derive(Debug, Clone, PartialEq)]
pub struct Exit {
    /// The exit code, when it exited with one (not by a signal).
    pub exit_code: Option<i64>,
    pub at: DateTime<Utc>,
    /// When the process that exited had started, if known.
    pub started_at: Option<DateTime<Utc>>,
    pub cause: Cause,
}

#[derive(Debug, Clone, PartialEq)]
pub enum GiveUp {
    ThresholdExceeded {
        restarts: Vec<DateTime<Utc>>,
    },
    /// Its policy restarts no exit of this kind (`restart: no`).
    NoRestart {
        reason: String,
    },
    NonRetryable {
        code: String,
        reason: String,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// Restart after `after`; `attempt` is the backoff exponent used (the next one is `attempt + 1`).
    Restart {
        after: Duration,
        attempt: u32,
    },
    GiveUp(GiveUp),
    Ignore,
}

/// Pure: the answer to one exit.
pub fn decide(
    policy: &RestartPolicy,
    history: &History,
    exit: &Exit,
    now: DateTime<Utc>,
) -> Decision {
    match &exit.cause {
        Cause::Stopped => return Decision::Ignore,
        Cause::NonRetryable { code, reason } => {
            return Decision::GiveUp(GiveUp::NonRetryable {
                code: code.clone(),
                reason: reason.clone(),
            })
        }
        Cause::Crash => {}
    }
    let clean = exit.exit_code == Some(0);
    match policy.restart {
        RestartWhen::OnFailure | RestartWhen::No if clean => return Decision::Ignore,
        RestartWhen::No => {
            return Decision::GiveUp(GiveUp::NoRestart {
                reason: format!(
                    "exited with {}; its restart policy is `no`",
                    exit.exit_code
                        .map(|c| format!("code {c}"))
                        .unwrap_or_else(|| "a signal".into())
                ),
            })
        }
        _ => {}
    }
    let recent = history.recent(policy, now);
    if recent.len() as u64 >= policy.max_restarts as u64 {
        return Decision::GiveUp(GiveUp::ThresholdExceeded { restarts: recent });
    }
    let attempt = if stable_run(policy, exit) {
        0
    } else {
        history.attempt
    };
    Decision::Restart {
        after: policy.backoff(attempt),
        attempt,
    }
}

/// Whether the run that ended lasted the stable period.
pub fn stable_run(policy: &RestartPolicy, exit: &Exit) -> bool {
    exit.started_at
        .is_some_and(|s| exit.at - s >= chrono::Duration::seconds(policy.stable_seconds as i64))
}

/// The policy fields as a JSON object (for events and docs).
pub fn to_json(p: &RestartPolicy) -> Map<String, Value> {
    match serde_json::to_value(p) {
        Ok(Value::Object(m)) => m,
        _ => Map::new(),
    }
}

#[cfg(test)]
mod tests {
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
    fn run_series(p: &RestartPolicy, crashes: usize, up: i64) -> (Vec<Decision>, History, i64) {
        let mut h = History::default();
        let mut now = 0;
        let mut out = Vec::new();
        for _ in 0..crashes {
            now += up;
            let d = decide(p, &h, &crash(now, up), t(now));
            if let Decision::Restart { after, attempt } = &d {
                now += after.as_secs() as i64;
                h.restarts.push(t(now));
                h.attempt = attempt + 1;
            }
            out.push(d);
        }
        (out, h, now)
    }

    fn delays(ds: &[Decision]) -> Vec<u64> {
        ds.iter()
            .filter_map(|d| match d {
                Decision::Restart { after, .. } => Some(after.as_millis() as u64),
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
            Decision::GiveUp(GiveUp::ThresholdExceeded { restarts }) => {
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
            Decision::Restart { attempt: 2, .. }
        ));
        let h = History {
            restarts: vec![t(0), t(1), t(2)],
            attempt: 3,
        };
        assert!(matches!(
            decide(&p, &h, &crash(3, 1), t(3)),
            Decision::GiveUp(GiveUp::ThresholdExceeded { .. })
        ));
        let zero = RestartPolicy {
            max_restarts: 0,
            ..p
        };
        assert!(matches!(
            decide(&zero, &History::default(), &crash(3, 1), t(3)),
            Decision::GiveUp(GiveUp::ThresholdExceeded { .. })
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
            Decision::GiveUp(_)
        ));
        // At exactly 600 s the first is 600 s old: out of the window.
        assert!(matches!(
            decide(&p, &h, &crash(600, 1), t(600)),
            Decision::Restart { .. }
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
            Decision::Restart {
                after: Duration::from_secs(40),
                attempt: 3
            }
        );
        // Up exactly the stable period: back to 5 s.
        assert_eq!(
            decide(&p, &h, &crash(100, 60), t(100)),
            Decision::Restart {
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
            Decision::Restart { attempt: 3, .. }
        ));
        // Crashing every 90 s: each restart comes after 5 s, yet the window still escalates.
        let (ds, _, _) = run_series(&p, 6, 90);
        assert_eq!(delays(&ds), vec![5_000; 5]);
        assert!(matches!(
            ds[5],
            Decision::GiveUp(GiveUp::ThresholdExceeded { .. })
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
            Decision::GiveUp(GiveUp::NonRetryable {
                code: "EXIT_IMAGE_UNAVAILABLE".into(),
                reason: "no such image".into()
            })
        );
        let s = Exit {
            cause: Cause::Stopped,
            ..e
        };
        assert_eq!(decide(&p, &History::default(), &s, t(0)), Decision::Ignore);
        // Even with the window full, a stop is a stop.
        let full = History {
            restarts: vec![t(0); 9],
            attempt: 9,
        };
        assert_eq!(decide(&p, &full, &s, t(0)), Decision::Ignore);
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
            Decision::Ignore,
            "on-failure leaves a clean exit stopped"
        );
        assert!(matches!(
            decide(&f, &h, &exit(Some(2)), t(100)),
            Decision::Restart { .. }
        ));
        assert!(
            matches!(
                decide(&f, &h, &exit(None), t(100)),
                Decision::Restart { .. }
            ),
            "a signal is a failure"
        );
        let no = p("no");
        assert_eq!(decide(&no, &h, &exit(Some(0)), t(100)), Decision::Ignore);
        assert!(matches!(
            decide(&no, &h, &exit(Some(1)), t(100)),
            Decision::GiveUp(GiveUp::NoRestart { .. })
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
}
