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
pub enum RestartDecision {
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
) -> RestartDecision {
    match &exit.cause {
        Cause::Stopped => return RestartDecision::Ignore,
        Cause::NonRetryable { code, reason } => {
            return RestartDecision::GiveUp(GiveUp::NonRetryable {
                code: code.clone(),
                reason: reason.clone(),
            })
        }
        Cause::Crash => {}
    }
    let clean = exit.exit_code == Some(0);
    match policy.restart {
        RestartWhen::OnFailure | RestartWhen::No if clean => return RestartDecision::Ignore,
        RestartWhen::No => {
            return RestartDecision::GiveUp(GiveUp::NoRestart {
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
        return RestartDecision::GiveUp(GiveUp::ThresholdExceeded { restarts: recent });
    }
    let attempt = if stable_run(policy, exit) {
        0
    } else {
        history.attempt
    };
    RestartDecision::Restart {
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
mod tests;
