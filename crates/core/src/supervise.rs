//! What the agent remembers per service and how each fact moves it: a plain state machine over
//! data, with `now` as an argument. The agent (lib/agent.js + `agent.rs`) feeds it PM2's exits
//! and its own timer, persists it atomically after every transition (`state.rs`), and writes
//! the events it returns to `apps/logs/<service>/events.jsonl`.
//!
//! Exactly-once restarts across an agent killed at any point: a due restart first moves to
//! `Restarting` (persisted), then PM2 is asked; whoever finds `Restarting` later (the same agent,
//! or its successor after `kill -9`) looks at PM2: a process started since then means the restart
//! happened, otherwise it is issued again. Exits are deduplicated per PM2 instance and start time.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use crate::policy::{self, Cause, Exit, GiveUp, History, RestartDecision, RestartPolicy};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Desired {
    #[default]
    Running,
    Stopped,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "state")]
pub enum Phase {
    /// Running as far as we know. `stableAt`: after a restart of ours, when it counts as recovered.
    #[serde(rename_all = "camelCase")]
    Running {
        stable_at: Option<DateTime<Utc>>,
    },
    /// Exited; restart `pmIds` at `dueAt`.
    #[serde(rename_all = "camelCase")]
    Backoff {
        due_at: DateTime<Utc>,
        delay_ms: u64,
        attempt: u32,
        pm_ids: Vec<String>,
    },
    /// The restart was decided at `since`; PM2 is (or was) being asked.
    #[serde(rename_all = "camelCase")]
    Restarting {
        since: DateTime<Utc>,
        attempt: u32,
        pm_ids: Vec<String>,
    },
    /// Given up: no restart until an explicit start/restart.
    #[serde(rename_all = "camelCase")]
    Failed {
        code: String,
        reason: String,
        at: DateTime<Utc>,
    },
    Stopped,
}

/// The last failure, as `status` shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LastFailure {
    pub service: String,
    /// `failed` | `degraded` | `exited`
    pub state: String,
    /// The exit-code name, e.g. `EXIT_IMAGE_UNAVAILABLE`.
    pub code: String,
    pub reason: String,
    /// RFC 3339 UTC.
    pub at: String,
    /// Whether retrying without a change can help.
    pub retryable: bool,
    #[serde(default)]
    pub exit_code: Option<i64>,
    #[serde(default)]
    pub signal: Option<String>,
}

/// The facts of one process exit, as PM2 reports them.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ExitReport {
    /// PM2's instance id.
    pub pm_id: String,
    /// PM2's `pm_uptime` of the process that exited (its start), in ms since the epoch.
    pub started_ms: Option<i64>,
    /// PM2's status when it told us: `stopping` means stop/restart/delete was asked for.
    pub status: String,
    pub exit_code: Option<i64>,
    pub signal: Option<String>,
    /// Set by the edge when the exit shows a cause restarting cannot fix.
    pub non_retryable: Option<(String, String)>,
    /// The last lines of the service's stderr.
    pub stderr: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Record {
    pub service: String,
    /// `app` | `dependency`
    pub kind: String,
    pub profile: String,
    pub desired: Desired,
    pub phase: Phase,
    pub policy: RestartPolicy,
    pub history: History,
    /// Restarts we performed since the last explicit start.
    pub total_restarts: u32,
    /// Per PM2 instance, the start time (ms) of the last process whose exit we handled.
    #[serde(default)]
    pub handled: BTreeMap<String, i64>,
    #[serde(default)]
    pub last_exit: Option<Value>,
    #[serde(default)]
    pub last_failure: Option<LastFailure>,
    /// Declared ports, checked after an exit (fork-mode apps): held by another process = non-retryable.
    #[serde(default)]
    pub check_ports: Vec<u16>,
    /// Events decided but not yet known to be in `events.jsonl` (state::update journals them
    /// here, in the same atomic write as the decision, so a kill cannot lose them).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pending_events: Vec<Value>,
    pub updated_at: DateTime<Utc>,
}

fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// One event line: `time`, `event`, `service`, `profile`, then the details.
pub fn event(name: &str, rec: &Record, now: DateTime<Utc>, details: Value) -> Value {
    let mut m = Map::new();
    m.insert("time".into(), Value::String(ts(now)));
    m.insert("event".into(), Value::String(name.into()));
    m.insert("service".into(), Value::String(rec.service.clone()));
    m.insert("profile".into(), Value::String(rec.profile.clone()));
    if let Value::Object(d) = details {
        m.extend(d);
    }
    Value::Object(m)
}

/// What a transition produced: events to append, and the threshold event for the alert command.
#[derive(Debug, Default, PartialEq)]
pub struct Outcome {
    pub events: Vec<Value>,
    pub alert: Option<Value>,
}

/// How a service is launched by an explicit command.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Launch {
    pub service: String,
    pub kind: String,
    pub profile: String,
    pub policy: RestartPolicy,
    #[serde(default)]
    pub check_ports: Vec<u16>,
    /// A profile switch: the profile the service ran under until this launch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub switched_from: Option<String>,
}

impl Record {
    pub fn new(service: &str, now: DateTime<Utc>) -> Record {
        Record {
            service: service.into(),
            kind: "app".into(),
            profile: String::new(),
            desired: Desired::Stopped,
            phase: Phase::Stopped,
            policy: RestartPolicy::default(),
            history: History::default(),
            total_restarts: 0,
            handled: BTreeMap::new(),
            last_exit: None,
            last_failure: None,
            check_ports: Vec::new(),
            pending_events: Vec::new(),
            updated_at: now,
        }
    }

    /// An explicit start/restart: desired running, the failed mark and the history cleared,
    /// the policy of this launch's profile adopted. A profile switch is an event.
    pub fn launched(&mut self, l: &Launch, now: DateTime<Utc>) -> Outcome {
        let mut out = Outcome::default();
        if let Some(from) = l.switched_from.as_ref().filter(|f| **f != l.profile) {
            self.profile = l.profile.clone();
            out.events.push(event(
                "profile_switched",
                self,
                now,
                json!({"from": from, "to": l.profile}),
            ));
        }
        self.kind = l.kind.clone();
        self.profile = l.profile.clone();
        self.policy = l.policy.clone();
        self.check_ports = l.check_ports.clone();
        self.desired = Desired::Running;
        self.phase = Phase::Running { stable_at: None };
        self.history = History::default();
        self.total_restarts = 0;
        self.last_exit = None;
        if self
            .last_failure
            .as_ref()
            .is_some_and(|f| f.state == "failed" || f.state == "refused")
        {
            self.last_failure = None;
        }
        self.updated_at = now;
        out
    }

    /// An explicit stop: never a crash; a pending restart is cancelled.
    pub fn stopped(&mut self, now: DateTime<Utc>) -> Outcome {
        let mut out = Outcome::default();
        if let Phase::Backoff { due_at, .. } = &self.phase {
            out.events.push(event(
                "restart_cancelled",
                self,
                now,
                json!({"reason": "stop requested", "dueAt": ts(*due_at)}),
            ));
        }
        self.desired = Desired::Stopped;
        if !matches!(self.phase, Phase::Failed { .. }) {
            self.phase = Phase::Stopped;
        }
        self.updated_at = now;
        out
    }

    /// A failure found outside the agent (image unavailable at start, health timeout, env
    /// missing, port held): `failed` ones stop the policy, `degraded` ones are only recorded.
    pub fn record_failure(&mut self, f: LastFailure, now: DateTime<Utc>) -> Outcome {
        let mut out = Outcome::default();
        if f.state == "refused" {
            // The service runs on as it was: only the refusal is said.
            out.events.push(event(
                "refused",
                self,
                now,
                json!({"code": f.code, "reason": f.reason}),
            ));
        }
        if f.state == "failed" && !matches!(self.phase, Phase::Failed { .. }) {
            self.phase = Phase::Failed {
                code: f.code.clone(),
                reason: f.reason.clone(),
                at: now,
            };
            out.events.push(event(
                "failed",
                self,
                now,
                json!({"code": f.code, "reason": f.reason, "retryable": f.retryable}),
            ));
        }
        self.last_failure = Some(f);
        self.updated_at = now;
        out
    }

    /// The service became ready: a `degraded` mark is cleared.
    pub fn ready(&mut self, now: DateTime<Utc>) {
        if self
            .last_failure
            .as_ref()
            .is_some_and(|f| f.state == "degraded")
        {
            self.last_failure = None;
        }
        self.updated_at = now;
    }

    /// A process of this service exited.
    pub fn on_exit(&mut self, x: &ExitReport, now: DateTime<Utc>) -> Outcome {
        let mut out = Outcome::default();
        if let Some(started) = x.started_ms {
            if self.handled.get(&x.pm_id) == Some(&started) {
                return out; // this exit was already answered (bus and reconcile both saw it)
            }
            self.handled.insert(x.pm_id.clone(), started);
        }
        self.updated_at = now;
        let started_at = x
            .started_ms
            .and_then(DateTime::<Utc>::from_timestamp_millis);
        let requested = x.status == "stopping" || self.desired == Desired::Stopped;
        let mut details = json!({
            "pmId": x.pm_id,
            "exitCode": x.exit_code,
            "signal": x.signal,
            "uptimeSeconds": started_at.map(|s| ((now - s).num_milliseconds().max(0) as f64) / 1000.0),
        });
        if requested {
            details["requested"] = json!(true);
            out.events.push(event("exited", self, now, details));
            return out;
        }
        if self.kind == "dependency" {
            if let Some(said) = runner_said(&x.stderr, x.exit_code) {
                details["reason"] = json!(said);
            }
        }
        self.last_exit = Some(details.clone());
        out.events.push(event("exited", self, now, details));
        match &mut self.phase {
            Phase::Failed { .. } => return out,
            Phase::Backoff { pm_ids, .. } | Phase::Restarting { pm_ids, .. } => {
                // Another instance of a service already waiting for its restart: restart it too.
                if !pm_ids.contains(&x.pm_id) {
                    pm_ids.push(x.pm_id.clone());
                }
                return out;
            }
            Phase::Running { .. } | Phase::Stopped => {}
        }
        let cause = match &x.non_retryable {
            Some((code, reason)) => Cause::NonRetryable {
                code: code.clone(),
                reason: reason.clone(),
            },
            None => Cause::Crash,
        };
        let exit = Exit {
            exit_code: x.exit_code,
            at: now,
            started_at,
            cause,
        };
        match policy::decide(&self.policy, &self.history, &exit, now) {
            RestartDecision::Ignore => {}
            RestartDecision::Restart { after, attempt } => {
                let delay_ms = after.as_millis() as u64;
                let due_at = now + chrono::Duration::milliseconds(delay_ms as i64);
                self.history.attempt = attempt + 1;
                self.phase = Phase::Backoff {
                    due_at,
                    delay_ms,
                    attempt: attempt + 1,
                    pm_ids: vec![x.pm_id.clone()],
                };
                let recent = self.history.recent(&self.policy, now).len() + 1;
                out.events.push(event(
                    "restart_scheduled",
                    self,
                    now,
                    json!({"delayMs": delay_ms, "dueAt": ts(due_at), "attempt": attempt + 1,
                           "restartInWindow": recent, "maxRestarts": self.policy.max_restarts,
                           "windowSeconds": self.policy.window_seconds}),
                ));
            }
            RestartDecision::GiveUp(GiveUp::ThresholdExceeded { restarts }) => {
                let reason = format!(
                    "{} restarts within {} s (maxRestarts {}); last exit {}",
                    restarts.len(),
                    self.policy.window_seconds,
                    self.policy.max_restarts,
                    describe_exit(x.exit_code, x.signal.as_deref())
                );
                let threshold = event(
                    "RESTART_THRESHOLD_EXCEEDED",
                    self,
                    now,
                    json!({
                        "restarts": restarts.iter().map(|t| ts(*t)).collect::<Vec<_>>(),
                        "maxRestarts": self.policy.max_restarts,
                        "windowSeconds": self.policy.window_seconds,
                        "exitCode": x.exit_code,
                        "signal": x.signal,
                        "stderr": x.stderr,
                    }),
                );
                out.events.push(threshold.clone());
                if self.policy.alert_command.is_some() {
                    out.alert = Some(threshold);
                }
                self.fail(
                    "EXIT_RESTART_THRESHOLD_EXCEEDED",
                    &reason,
                    true,
                    x,
                    now,
                    &mut out,
                );
            }
            RestartDecision::GiveUp(GiveUp::NonRetryable { code, reason }) => {
                self.fail(&code, &reason, false, x, now, &mut out);
            }
            RestartDecision::GiveUp(GiveUp::NoRestart { reason }) => {
                let code = if self.kind == "dependency" {
                    "EXIT_CONTAINER_FAILED"
                } else {
                    "EXIT_FAILURE"
                };
                self.fail(code, &reason, false, x, now, &mut out);
            }
        }
        out
    }

    fn fail(
        &mut self,
        code: &str,
        reason: &str,
        retryable: bool,
        x: &ExitReport,
        now: DateTime<Utc>,
        out: &mut Outcome,
    ) {
        self.phase = Phase::Failed {
            code: code.into(),
            reason: reason.into(),
            at: now,
        };
        self.last_failure = Some(LastFailure {
            service: self.service.clone(),
            state: "failed".into(),
            code: code.into(),
            reason: reason.into(),
            at: ts(now),
            retryable,
            exit_code: x.exit_code,
            signal: x.signal.clone(),
        });
        out.events.push(event(
            "failed",
            self,
            now,
            json!({"code": code, "reason": reason, "exitCode": x.exit_code, "signal": x.signal}),
        ));
    }

    /// The agent's timer: a due backoff becomes `Restarting`; returns the instances to restart.
    pub fn take_due(&mut self, now: DateTime<Utc>) -> Option<Vec<String>> {
        match &self.phase {
            Phase::Backoff {
                due_at,
                attempt,
                pm_ids,
                ..
            } if *due_at <= now && self.desired == Desired::Running => {
                let ids = pm_ids.clone();
                self.phase = Phase::Restarting {
                    since: now,
                    attempt: *attempt,
                    pm_ids: ids.clone(),
                };
                self.updated_at = now;
                Some(ids)
            }
            _ => None,
        }
    }

    /// PM2 started the service again (`started` is when): `Restarting` → `Running`.
    pub fn on_restarted(&mut self, started: DateTime<Utc>, now: DateTime<Utc>) -> Outcome {
        let mut out = Outcome::default();
        let Phase::Restarting { attempt, .. } = self.phase.clone() else {
            return out;
        };
        self.history.restarts.push(started);
        let window_start = now - self.policy.window();
        self.history.restarts.retain(|t| *t > window_start);
        self.total_restarts += 1;
        self.phase = Phase::Running {
            stable_at: Some(started + chrono::Duration::seconds(self.policy.stable_seconds as i64)),
        };
        self.updated_at = now;
        out.events.push(event(
            "restarted",
            self,
            now,
            json!({"attempt": attempt, "restartsInWindow": self.history.restarts.len(),
                   "totalRestarts": self.total_restarts}),
        ));
        out
    }

    /// PM2 refused the restart: counted like a crash of the new process.
    pub fn on_restart_failed(&mut self, message: &str, now: DateTime<Utc>) -> Outcome {
        let ids = match &self.phase {
            Phase::Restarting { pm_ids, .. } => pm_ids.clone(),
            _ => return Outcome::default(),
        };
        let mut out = self.on_restarted(now, now);
        let x = ExitReport {
            pm_id: ids.first().cloned().unwrap_or_default(),
            started_ms: None,
            status: "errored".into(),
            stderr: vec![format!("PM2 could not restart it: {message}")],
            ..Default::default()
        };
        let more = self.on_exit(&x, now);
        out.events.extend(more.events);
        out.alert = more.alert;
        out
    }

    /// The service stayed up through the stable period after our restart: `recovered`.
    pub fn check_stable(&mut self, now: DateTime<Utc>) -> Outcome {
        let mut out = Outcome::default();
        if let Phase::Running {
            stable_at: Some(at),
        } = self.phase
        {
            if at <= now {
                self.phase = Phase::Running { stable_at: None };
                self.history.attempt = 0;
                self.updated_at = now;
                out.events.push(event(
                    "recovered",
                    self,
                    now,
                    json!({"stableSeconds": self.policy.stable_seconds,
                           "restartsInWindow": self.history.recent(&self.policy, now).len()}),
                ));
            }
        }
        out
    }

    /// When the agent must look at this service next.
    pub fn next_wake(&self) -> Option<DateTime<Utc>> {
        match &self.phase {
            Phase::Backoff { due_at, .. } => Some(*due_at),
            Phase::Running { stable_at } => *stable_at,
            _ => None,
        }
    }

    /// `status`'s words for the phase.
    pub fn state_name(&self) -> &'static str {
        match self.phase {
            Phase::Running { .. } => "running",
            Phase::Backoff { .. } => "backoff",
            Phase::Restarting { .. } => "restarting",
            Phase::Failed { .. } => "failed",
            Phase::Stopped => "stopped",
        }
    }
}

/// Pure: what a dependency's runner said when it refused with one of our exit codes (its stderr
/// line `… [orchestrator] <service>: EXIT_PREREQUISITE (13): no Docker engine answers …`), so an
/// exit reads as its cause, not as a bare number.
pub fn runner_said(stderr: &[String], code: Option<i64>) -> Option<String> {
    let code = code?;
    let needle = format!(" ({code}): ");
    stderr.iter().rev().find_map(|l| {
        let (_, said) = l.split_once("[orchestrator] ")?;
        let (_, said) = said.split_once(": ")?;
        let (name, _) = said.split_once(&needle)?;
        (name.starts_with("EXIT_") && !name.contains(' ')).then(|| said.trim_end().to_string())
    })
}

pub fn describe_exit(code: Option<i64>, signal: Option<&str>) -> String {
    match (code, signal) {
        (_, Some(s)) => format!("by signal {s}"),
        (Some(c), None) => format!("with code {c}"),
        (None, None) => "with no code".into(),
    }
}

#[cfg(test)]
mod tests;
