//! What `verify` finds and shows: a problem (rule, file, key or line, profile, message,
//! remediation), the dry run per profile, the report; the collector the checks add to.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::Value;

use crate::error::Error;

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Problem {
    /// Which rule: `nx-json`, `ecosystem`, `autorestart`, `profile-env`, `env-file`,
    /// `required-env`, `compose`, `healthcheck`, `depends-on`, `port-conflict`, `log-dir`,
    /// `nx-target`.
    pub rule: &'static str,
    pub file: PathBuf,
    /// The key (`apps[1].env_staging`, `services.postgres.healthcheck.interval`) or `line N`.
    pub at: String,
    /// The line in `file`, when known.
    pub line: Option<u32>,
    /// The profile the problem belongs to, when it depends on one.
    pub profile: Option<String>,
    pub message: String,
    pub remediation: String,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DryRun {
    pub name: String,
    pub kind: &'static str,
    /// The PM2 app definition (apps, and the runner of a dependency) or the container spec,
    /// environment values masked.
    pub definition: Value,
    /// What it waits on when started with the others (`schedule`): `name`, `name:ready`,
    /// `name:completed`.
    pub waits_on: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ProfilePlan {
    pub profile: String,
    /// Dependencies first (compose `depends_on` order), then apps.
    pub order: Vec<String>,
    pub services: Vec<DryRun>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    pub workspace: PathBuf,
    pub ok: bool,
    pub profiles: Vec<ProfilePlan>,
    /// Errors: each stops what it names from running. `ok` is false when there is one.
    pub problems: Vec<Problem>,
    /// What is accepted but not honoured as written (a swarm-only key, an unset variable, a
    /// dependency without a healthcheck): never a failure.
    pub warnings: Vec<Problem>,
}

pub struct VerifyRequest {
    pub workspace_root: PathBuf,
    /// The evaluated ecosystem module, or why loading it failed (syntax error, throw).
    pub ecosystem: std::result::Result<Value, String>,
    pub ecosystem_file: PathBuf,
    pub profile: Option<String>,
    pub all_profiles: bool,
    /// The plugin's package directory (its `executors.json` and schemas).
    pub plugin_root: PathBuf,
}

pub const MASK: &str = "***";
/// Compose healthchecks slower than this make a dependency's health visible too late.
pub const MAX_HEALTH_INTERVAL_SECS: u64 = 30;
/// PM2 options the orchestrator supersedes, and what it does with each (docs/restart-policy.md).
pub const PM2_SUPERSEDED: [(&str, &str); 8] = [
    ("autorestart", "the workspace agent restarts crashed apps by the restart policy; PM2's own restart is turned off (`autorestart: false` becomes maxRestarts 0)"),
    ("max_restarts", "taken as the restart policy's maxRestarts"),
    ("restart_delay", "taken as the restart policy's backoffInitialMs (with no growth)"),
    ("exp_backoff_restart_delay", "taken as the restart policy's backoffInitialMs (doubling)"),
    ("min_uptime", "a run shorter than min_uptime counts as a crash anyway; the policy's window decides"),
    ("out_file", "logs are written to apps/logs/<service>/out.log (rotation and `logs` read them there)"),
    ("error_file", "logs are written to apps/logs/<service>/error.log"),
    ("log_date_format", "every line is stamped with an RFC 3339 UTC timestamp (the format `logs` reads)"),
];

#[derive(Default)]
pub struct Collector {
    pub(crate) problems: Vec<Problem>,
    pub(crate) warnings: Vec<Problem>,
    /// Line indexes of files problems point into, built once.
    lines: BTreeMap<PathBuf, crate::compose::yaml::LineIndex>,
}

impl Collector {
    pub(crate) fn new() -> Collector {
        Collector {
            problems: Vec::new(),
            warnings: Vec::new(),
            lines: BTreeMap::new(),
        }
    }

    /// The line of a key path in a YAML file (ecosystem keys have none we can find).
    pub(crate) fn line_of(&mut self, file: &Path, at: &str) -> Option<u32> {
        if let Some(n) = at
            .strip_prefix("line ")
            .and_then(|n| n.split_whitespace().next()?.parse().ok())
        {
            return Some(n);
        }
        let is_yaml = file.extension().is_some_and(|e| e == "yml" || e == "yaml");
        if !is_yaml || at.is_empty() {
            return None;
        }
        let ix = self.lines.entry(file.to_path_buf()).or_insert_with(|| {
            crate::compose::yaml::LineIndex::build(
                &std::fs::read_to_string(file).unwrap_or_default(),
            )
        });
        ix.line(at)
    }

    pub(crate) fn warn(
        &mut self,
        rule: &'static str,
        file: &Path,
        at: impl Into<String>,
        profile: Option<&str>,
        message: impl Into<String>,
        remediation: impl Into<String>,
    ) {
        let p = self.problem(
            rule,
            file,
            at.into(),
            profile,
            message.into(),
            remediation.into(),
        );
        push_once(&mut self.warnings, p);
    }

    pub(crate) fn problem(
        &mut self,
        rule: &'static str,
        file: &Path,
        at: String,
        profile: Option<&str>,
        message: String,
        remediation: String,
    ) -> Problem {
        let line = self.line_of(file, &at);
        Problem {
            rule,
            file: file.to_path_buf(),
            at,
            line,
            profile: profile.map(str::to_string),
            message,
            remediation,
        }
    }

    /// A loader finding: an error or a warning, as the loader said.
    pub(crate) fn diag(&mut self, d: &crate::compose::Diag, profile: Option<&str>) {
        let rule = if d.key.contains(".depends_on") {
            "depends-on"
        } else {
            "compose"
        };
        let p = Problem {
            rule,
            file: d.file.clone(),
            at: d.key.clone(),
            line: d.line,
            profile: profile.map(str::to_string),
            message: d.message.clone(),
            remediation: d.remediation.clone(),
        };
        if d.is_error() {
            push_once(&mut self.problems, p);
        } else {
            push_once(&mut self.warnings, p);
        }
    }

    pub(crate) fn add(
        &mut self,
        rule: &'static str,
        file: &Path,
        at: impl Into<String>,
        profile: Option<&str>,
        message: impl Into<String>,
        remediation: impl Into<String>,
    ) {
        let p = self.problem(
            rule,
            file,
            at.into(),
            profile,
            message.into(),
            remediation.into(),
        );
        push_once(&mut self.problems, p);
    }

    /// An error of one of our parsers as a problem of `rule`.
    pub(crate) fn error(
        &mut self,
        rule: &'static str,
        e: &Error,
        fallback: &Path,
        profile: Option<&str>,
    ) {
        let (file, at, message) = match e {
            Error::InvalidConfig { file, key, message } => {
                (file.clone(), key.clone(), message.clone())
            }
            Error::Io { path, source, .. } => (path.clone(), String::new(), source.to_string()),
            other => (fallback.to_path_buf(), String::new(), other.message()),
        };
        let remediation = e
            .remediation()
            .into_iter()
            .next()
            .unwrap_or_else(|| "Fix the file, then run verify again".into());
        self.add(rule, &file, at, profile, message, remediation);
    }
}

/// The same problem in several profiles is one problem (of no single profile).
pub(crate) fn push_once(list: &mut Vec<Problem>, p: Problem) {
    let same = |q: &Problem| {
        q.rule == p.rule && q.file == p.file && q.at == p.at && q.message == p.message
    };
    match list.iter_mut().find(|q| same(q)) {
        Some(q) if q.profile != p.profile => q.profile = None,
        Some(_) => {}
        None => list.push(p),
    }
}
