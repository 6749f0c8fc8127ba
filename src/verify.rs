//! `verify` (FR-012): lints and dry-runs everything the workflow would do, without starting
//! anything. Every check is independent (one broken file does not hide the others'
//! problems); each problem names its file, its key (or line), what is wrong and what to do.
//! The dry run shows, per profile, the start order and what would run for each service — the
//! PM2 app definition or the container spec — with every environment value masked.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::{Map, Value};

use crate::catalog::{self, Catalog, Kind};
use crate::config::{self, PluginConfig};
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

struct Collector {
    problems: Vec<Problem>,
    warnings: Vec<Problem>,
    /// Line indexes of files problems point into, built once.
    lines: BTreeMap<PathBuf, crate::compose::yaml::LineIndex>,
}

impl Collector {
    fn new() -> Collector {
        Collector {
            problems: Vec::new(),
            warnings: Vec::new(),
            lines: BTreeMap::new(),
        }
    }

    /// The line of a key path in a YAML file (ecosystem keys have none we can find).
    fn line_of(&mut self, file: &Path, at: &str) -> Option<u32> {
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

    fn warn(
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

    fn problem(
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
    fn diag(&mut self, d: &crate::compose::Diag, profile: Option<&str>) {
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

    fn add(
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
    fn error(&mut self, rule: &'static str, e: &Error, fallback: &Path, profile: Option<&str>) {
        let (file, at, message) = match e {
            Error::InvalidConfig { file, key, message } => {
                (file.clone(), key.clone(), message.clone())
            }
            Error::ReadFile { path, source } => (path.clone(), String::new(), source.to_string()),
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
fn push_once(list: &mut Vec<Problem>, p: Problem) {
    let same = |q: &Problem| {
        q.rule == p.rule && q.file == p.file && q.at == p.at && q.message == p.message
    };
    match list.iter_mut().find(|q| same(q)) {
        Some(q) if q.profile != p.profile => q.profile = None,
        Some(_) => {}
        None => list.push(p),
    }
}

/// Runs every check and the dry run. Never changes anything. An unregistered `--profile` is
/// bad input, not a problem of the workspace: `EXIT_PROFILE_UNDEFINED`.
pub fn verify(req: &VerifyRequest) -> crate::error::Result<Report> {
    let root = &req.workspace_root;
    let nx_json = config::nx_json_path(root);
    let mut c = Collector::new();
    let cfg = match config::load_plugin_config(root) {
        Ok(cfg) => cfg,
        Err(e) => {
            c.error("nx-json", &e, &nx_json, None);
            PluginConfig::default()
        }
    };
    let profiles: Vec<String> = if req.all_profiles {
        cfg.profiles.clone()
    } else {
        vec![config::resolve_profile(
            req.profile.as_deref(),
            &cfg,
            &nx_json,
        )?]
    };
    check_targets(&mut c, root, &req.plugin_root);
    let ecosystem = match &req.ecosystem {
        Ok(v) => Some(v.clone()),
        Err(message) => {
            c.add(
                "ecosystem",
                &req.ecosystem_file,
                "(module)",
                None,
                // The loader's message already names the file and says it could not be loaded.
                if message.contains("could not be loaded") {
                    message.clone()
                } else {
                    format!("could not be loaded: {message}")
                },
                format!(
                    "Run node -e \"require('{}')\" to see the error, and fix it",
                    req.ecosystem_file.display()
                ),
            );
            None
        }
    };
    let compose = compose_project(root);
    // The catalog: the ecosystem (an empty one when it could not be loaded, so compose is
    // still checked), compose service names, nx.json's references to both.
    let eco = ecosystem
        .clone()
        .unwrap_or(serde_json::json!({ "apps": [] }));
    let cat = match catalog::build(
        root,
        &crate::catalog::workspace_name(root),
        &req.ecosystem_file,
        &eco,
        cfg.clone(),
        compose.clone(),
    ) {
        Ok(cat) => Some(cat),
        Err(e) => {
            c.error("ecosystem", &e, &req.ecosystem_file, None);
            None
        }
    };
    if let Some(eco) = &ecosystem {
        check_ecosystem(&mut c, eco, &req.ecosystem_file, root, &profiles);
    }
    let mut plans = Vec::new();
    if let Some(cat) = &cat {
        for profile in &profiles {
            for s in &cat.services {
                if let Err(e) = cfg.restart_policy_for(&s.name, profile, &nx_json) {
                    c.error("restart-policy", &e, &nx_json, Some(profile));
                }
            }
            if let Some(plan) = check_profile(&mut c, cat, profile) {
                plans.push(plan);
            }
        }
        check_log_dirs(&mut c, cat);
        check_shadowed_scripts(&mut c, cat);
    }
    Ok(Report {
        workspace: root.clone(),
        ok: c.problems.is_empty(),
        profiles: plans,
        problems: c.problems,
        warnings: c.warnings,
    })
}

/// The compose project without a profile; its problems are reported per profile below.
fn compose_project(root: &Path) -> Option<crate::compose::ComposeFile> {
    crate::catalog::load_compose(root)
}

/// The ecosystem's own rules beyond parsing: restart options left to our policy, and an
/// `env_<profile>` block or an env file for every checked profile.
fn check_ecosystem(c: &mut Collector, eco: &Value, file: &Path, root: &Path, profiles: &[String]) {
    let apps = match catalog::parse_ecosystem_lenient(eco, file) {
        Ok((apps, problems)) => {
            // Every problem of every app (the catalog keeps the apps that have a name).
            for (_, e) in &problems {
                c.error("ecosystem", e, file, None);
            }
            apps.into_iter().map(|(a, _)| a).collect::<Vec<_>>()
        }
        Err(_) => return, // reported by the catalog
    };
    for (i, app) in apps.iter().enumerate() {
        for (key, what) in PM2_SUPERSEDED {
            if app.contains_key(key) {
                c.warn(
                    "autorestart",
                    file,
                    format!("apps[{i}].{key}"),
                    None,
                    format!("\"{key}\" is PM2's own; the orchestrator supersedes it: {what}"),
                    "Nothing to do; restartPolicy in nx.json says the same explicitly (docs/restart-policy.md)",
                );
            }
        }
        for profile in profiles {
            let block = format!("env_{profile}");
            if !app.contains_key(&block) && !crate::envfile::env_file_path(root, profile).is_file()
            {
                c.add(
                    "profile-env",
                    file,
                    format!("apps[{i}].{block}"),
                    Some(profile),
                    format!(
                        "app \"{}\" has no {block} block and config/env/{profile}.env does not exist",
                        app.get("name").and_then(Value::as_str).unwrap_or("?")
                    ),
                    format!("Add {block} to the app, or create config/env/{profile}.env"),
                );
            }
        }
    }
}

/// Env file, required variables, compose for the profile, healthchecks, `depends_on`, ports,
/// and the dry run.
fn check_profile(c: &mut Collector, cat: &Catalog, profile: &str) -> Option<ProfilePlan> {
    let env_file = cat.env_file(profile);
    let file_vars = if env_file.is_file() {
        match crate::envfile::read_env_file(&env_file) {
            Ok(v) => v,
            Err(e) => {
                c.error("env-file", &e, &env_file, Some(profile));
                Vec::new()
            }
        }
    } else {
        Vec::new()
    };
    let compose = cat.compose_for(profile, &file_vars);
    let compose_file = cat
        .compose_file()
        .map(Path::to_path_buf)
        .unwrap_or_default();
    let mut order: Vec<String> = Vec::new();
    if let Some(cf) = &compose {
        for d in &cf.diags {
            c.diag(d, Some(profile));
        }
        order = crate::compose::start_order(&cf.services);
        for s in &cf.services {
            let at = format!("services.{}.healthcheck", s.name);
            if !cf.is_active(&s.name) {
                c.warn(
                    "compose",
                    &compose_file,
                    format!("services.{}.profiles", s.name),
                    Some(profile),
                    format!("\"{}\" belongs to compose profiles {} that are not enabled: it starts only when named", s.name, s.profiles.join(", ")),
                    format!("Enable them with COMPOSE_PROFILES, or composeProfiles.{profile} in nx.json"),
                );
            }
            match &s.healthcheck {
                None if !crate::container::is_one_shot(cf, &s.name) => c.warn(
                    "healthcheck",
                    &compose_file,
                    at,
                    Some(profile),
                    format!("dependency \"{}\" has no healthcheck in the compose file: it counts as ready once running (or by its image's own healthcheck)", s.name),
                    "Add a healthcheck (test, interval ≤ 30s) so that start waits until it is really ready (docs/dependencies.md)",
                ),
                Some(h) if h.interval.is_some_and(|i| i.as_secs() > MAX_HEALTH_INTERVAL_SECS) => c.warn(
                    "healthcheck",
                    &compose_file,
                    format!("{at}.interval"),
                    Some(profile),
                    format!(
                        "interval {}s is longer than {MAX_HEALTH_INTERVAL_SECS}s: health changes are seen late",
                        h.interval.map(|i| i.as_secs()).unwrap_or(0)
                    ),
                    format!("Set healthcheck.interval to {MAX_HEALTH_INTERVAL_SECS}s or less"),
                ),
                _ => {}
            }
        }
    }
    order.extend(
        cat.services
            .iter()
            .filter(|s| s.kind == Kind::App)
            .map(|s| s.name.clone()),
    );
    let mut ports: BTreeMap<u16, String> = BTreeMap::new();
    let mut port_clash = |c: &mut Collector, port: u16, service: &str, file: &Path, at: String| {
        if let Some(other) = ports.get(&port) {
            if other != service {
                c.add(
                    "port-conflict",
                    file,
                    at,
                    Some(profile),
                    format!("host port {port} is published by both \"{other}\" and \"{service}\""),
                    format!("Give \"{service}\" another port for profile {profile}"),
                );
            }
        } else {
            ports.insert(port, service.to_string());
        }
    };
    let mut services = Vec::new();
    for name in &order {
        let Ok(spec) = cat.get(name) else { continue };
        let env = catalog::resolve_env(spec, profile, file_vars.clone(), &env_file);
        let missing = crate::envfile::missing_required(&spec.config.required_env, &env);
        if !missing.is_empty() {
            c.add(
                "required-env",
                &env_file,
                format!(
                    "pluginsConfig[\"{}\"].services.{name}.requiredEnv",
                    crate::names::PLUGIN_KEY
                ),
                Some(profile),
                format!(
                    "\"{name}\" needs {} (not set for profile {profile})",
                    missing.join(", ")
                ),
                format!(
                    "Add {} to {} or to the app's env_{profile}",
                    missing.join(", "),
                    env_file.display()
                ),
            );
        }
        let definition = match spec.kind {
            Kind::App => {
                for p in catalog::declared_ports(spec, &env) {
                    port_clash(c, p, name, &cat.ecosystem_file, format!("{name}: PORT {p}"));
                }
                masked_app(catalog::pm2_app(cat, spec, profile, &env))
            }
            Kind::Dependency => {
                let Some(cf) = &compose else { continue };
                if cf.errors_for(name).iter().any(|_| true) {
                    continue; // its problems are reported above, each with its line
                }
                match crate::ops::container_spec(cat, spec, profile, cf) {
                    Ok(cs) => {
                        for p in cs.host_ports() {
                            port_clash(c, p, name, &compose_file, format!("services.{name}.ports"));
                        }
                        masked_container(&cs)
                    }
                    Err(e) => {
                        c.error("compose", &e, &compose_file, Some(profile));
                        continue;
                    }
                }
            }
        };
        services.push(DryRun {
            name: name.clone(),
            kind: spec.kind.as_str(),
            definition,
        });
    }
    Some(ProfilePlan {
        profile: profile.into(),
        order,
        services,
    })
}

/// With the plugin in nx.json `plugins`, an app's `package.json` script named like an inferred
/// target (Nx exposes scripts as targets and they win over inferred ones) would run without the
/// profile's env: `nx.includedScripts` must leave it out.
fn check_shadowed_scripts(c: &mut Collector, cat: &Catalog) {
    let nx_json = config::nx_json_path(&cat.root);
    let inferring = std::fs::read_to_string(&nx_json)
        .ok()
        .and_then(|t| serde_json::from_str::<Value>(&t).ok())
        .and_then(|v| v.get("plugins").cloned())
        .and_then(|p| p.as_array().cloned())
        .is_some_and(|ps| {
            ps.iter().any(|p| {
                p.as_str() == Some(crate::names::PLUGIN_KEY)
                    || p.get("plugin").and_then(Value::as_str) == Some(crate::names::PLUGIN_KEY)
            })
        });
    if !inferring {
        return;
    }
    for s in cat
        .services
        .iter()
        .filter(|s| s.kind == Kind::App && s.cwd != cat.root)
    {
        let file = s.cwd.join("package.json");
        let Some(pkg) = std::fs::read_to_string(&file)
            .ok()
            .and_then(|t| serde_json::from_str::<Value>(&t).ok())
        else {
            continue;
        };
        let Some(scripts) = pkg.get("scripts").and_then(Value::as_object) else {
            continue;
        };
        let included: Option<Vec<&str>> = pkg
            .pointer("/nx/includedScripts")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_str).collect());
        for name in crate::infer::APP_TARGET_NAMES {
            let exposed = scripts.contains_key(name)
                && included.as_ref().is_none_or(|inc| inc.contains(&name));
            if exposed {
                c.add(
                    "nx-target",
                    &file,
                    format!("scripts.{name}"),
                    None,
                    format!(
                        "Nx exposes the \"{name}\" script as {}:{name}, over the inferred orchestrator target: it would run without the profile's env",
                        s.name
                    ),
                    format!("Add \"nx\": {{ \"includedScripts\": [...] }} to {} listing the scripts Nx should expose, without \"{name}\" (the orchestrator's {name} runs the script with the profile's env)", file.display()),
                );
            }
        }
    }
}

/// An app definition with every `env` value masked.
fn masked_app(mut app: Value) -> Value {
    if let Some(Value::Object(env)) = app.get_mut("env") {
        for v in env.values_mut() {
            *v = Value::String(MASK.into());
        }
    }
    app
}

/// A container spec with every `NAME=value` masked.
fn masked_container(cs: &crate::container::ContainerSpec) -> Value {
    let mut v = serde_json::to_value(cs).unwrap_or(Value::Null);
    if let Some(Value::Array(env)) = v.get_mut("env") {
        for e in env.iter_mut() {
            if let Some(s) = e.as_str() {
                let name = s.split('=').next().unwrap_or_default();
                *e = Value::String(format!("{name}={MASK}"));
            }
        }
    }
    // Build args carry tokens as often as env does.
    if let Some(Value::Object(args)) = v.get_mut("build").and_then(|b| b.get_mut("args")) {
        for a in args.values_mut() {
            *a = Value::String(MASK.into());
        }
    }
    v
}

/// Every service's log directory can be written: it, or its nearest existing ancestor, is a
/// writable directory.
fn check_log_dirs(c: &mut Collector, cat: &Catalog) {
    for s in &cat.services {
        let dir = cat.log_dir(&s.name);
        let mut probe = dir.clone();
        while !probe.exists() {
            if !probe.pop() {
                break;
            }
        }
        let ok = probe.is_dir() && writable(&probe);
        if !ok {
            c.add(
                "log-dir",
                &dir,
                String::new(),
                None,
                format!(
                    "logs of \"{}\" cannot be written ({} is not a writable directory)",
                    s.name,
                    probe.display()
                ),
                format!("Make {} a directory this user can write", dir.display()),
            );
        }
    }
}

fn writable(dir: &Path) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let Ok(c) = std::ffi::CString::new(dir.as_os_str().as_bytes()) else {
        return false;
    };
    // SAFETY: access(2) reads a NUL-terminated path and has no other effect.
    unsafe { libc::access(c.as_ptr(), libc::W_OK) == 0 }
}

/// Every `@workspace/orchestrator:<executor>` target in a `project.json` names one of our
/// executors and its options fit that executor's schema (known keys, types, enums).
fn check_targets(c: &mut Collector, root: &Path, plugin_root: &Path) {
    let executors = std::fs::read_to_string(plugin_root.join("executors.json"))
        .ok()
        .and_then(|t| serde_json::from_str::<Value>(&t).ok())
        .and_then(|v| v.get("executors").cloned())
        .unwrap_or(Value::Null);
    for file in project_files(root) {
        let Ok(text) = std::fs::read_to_string(&file) else {
            continue;
        };
        let project: Value = match serde_json::from_str(&text) {
            Ok(v) => v,
            Err(e) => {
                c.add(
                    "nx-target",
                    &file,
                    format!("line {}", e.line()),
                    None,
                    format!("is not valid JSON: {e}"),
                    "Fix the JSON syntax",
                );
                continue;
            }
        };
        let Some(Value::Object(targets)) = project.get("targets") else {
            continue;
        };
        for (tname, t) in targets {
            let Some(exe) = t.get("executor").and_then(Value::as_str) else {
                continue;
            };
            let Some(name) = exe.strip_prefix(&format!("{}:", crate::names::PLUGIN_KEY)) else {
                continue;
            };
            let at = format!("targets.{tname}");
            let Some(entry) = executors.get(name) else {
                let known: Vec<&String> = executors
                    .as_object()
                    .map(|o| o.keys().collect())
                    .unwrap_or_default();
                c.add(
                    "nx-target",
                    &file,
                    format!("{at}.executor"),
                    None,
                    format!("\"{exe}\" is not an executor of this plugin"),
                    format!(
                        "Use one of {}",
                        known
                            .iter()
                            .map(|k| format!("{}:{k}", crate::names::PLUGIN_KEY))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                );
                continue;
            };
            let schema = entry
                .get("schema")
                .and_then(Value::as_str)
                .and_then(|s| std::fs::read_to_string(plugin_root.join(s)).ok())
                .and_then(|t| serde_json::from_str::<Value>(&t).ok())
                .unwrap_or(Value::Null);
            let mut option_sets: Vec<(String, &Map<String, Value>)> = Vec::new();
            if let Some(Value::Object(o)) = t.get("options") {
                option_sets.push((format!("{at}.options"), o));
            }
            if let Some(Value::Object(confs)) = t.get("configurations") {
                for (cn, cv) in confs {
                    if let Value::Object(o) = cv {
                        option_sets.push((format!("{at}.configurations.{cn}"), o));
                    }
                }
            }
            for (path, opts) in option_sets {
                for (k, v) in opts {
                    if let Some(msg) = schema_mismatch(&schema, k, v) {
                        c.add(
                            "nx-target",
                            &file,
                            format!("{path}.{k}"),
                            None,
                            msg,
                            format!(
                                "See executors/{name}/schema.json (nx run <project>:{tname} --help)"
                            ),
                        );
                    }
                }
            }
        }
    }
}

/// Pure: what is wrong with option `k` = `v` for an executor schema (the subset our schemas
/// use: properties with type, enum; additionalProperties false).
pub fn schema_mismatch(schema: &Value, k: &str, v: &Value) -> Option<String> {
    let props = schema.get("properties").and_then(Value::as_object);
    let Some(prop) = props.and_then(|p| p.get(k)) else {
        if schema.get("additionalProperties") == Some(&Value::Bool(false)) {
            let known: Vec<&String> = props.map(|p| p.keys().collect()).unwrap_or_default();
            return Some(format!(
                "unknown option \"{k}\" (known: {})",
                known
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        return None;
    };
    let types: Vec<&str> = match prop.get("type") {
        Some(Value::String(t)) => vec![t.as_str()],
        Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    let fits = |t: &str| match t {
        "string" => v.is_string(),
        "boolean" => v.is_boolean(),
        "number" => v.is_number(),
        "integer" => v.is_i64() || v.is_u64(),
        "array" => v.is_array(),
        "object" => v.is_object(),
        "null" => v.is_null(),
        _ => true,
    };
    if !types.is_empty() && !types.iter().any(|t| fits(t)) {
        return Some(format!(
            "option \"{k}\" must be {} (got {v})",
            types.join(" or ")
        ));
    }
    if let Some(Value::Array(allowed)) = prop.get("enum") {
        if !allowed.contains(v) {
            return Some(format!(
                "option \"{k}\" must be one of {} (got {v})",
                allowed
                    .iter()
                    .map(Value::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
    }
    None
}

/// `project.json` files of the workspace (not under `node_modules`, dot directories, build
/// output or our log directories).
fn project_files(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&dir) else {
            continue;
        };
        let mut entries: Vec<_> = rd.flatten().collect();
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            let name = e.file_name();
            let name = name.to_string_lossy();
            let Ok(ft) = e.file_type() else { continue };
            if ft.is_dir() {
                let skip = name.starts_with('.')
                    || matches!(name.as_ref(), "node_modules" | "dist" | "tmp" | "coverage")
                    || e.path() == crate::layout::logs_root(root);
                if !skip {
                    stack.push(e.path());
                }
            } else if name == "project.json" {
                out.push(e.path());
            }
        }
    }
    out.sort();
    out
}

/// Pure: the report as text: per profile the start order and what would run, then the
/// problems (or that there are none).
pub fn render(r: &Report) -> String {
    let mut s = String::new();
    for p in &r.profiles {
        s += &format!(
            "profile {}: start order {}\n",
            p.profile,
            p.order.join(" → ")
        );
        for d in &p.services {
            s += &format!(
                "  {:<12} {:<10} {}\n",
                d.name,
                d.kind,
                summary(&d.definition)
            );
        }
    }
    let item = |mark: &str, p: &Problem| {
        let at = if p.at.is_empty() {
            String::new()
        } else {
            format!(" {}", p.at)
        };
        let line = p.line.map(|l| format!(":{l}")).unwrap_or_default();
        let profile = p
            .profile
            .as_ref()
            .map(|x| format!(" [{x}]"))
            .unwrap_or_default();
        format!(
            "{mark} {}{profile}: {}{line}{at}\n    {}\n    → {}\n",
            p.rule,
            p.file.display(),
            p.message,
            p.remediation
        )
    };
    for p in &r.warnings {
        s += &item("⚠", p);
    }
    for p in &r.problems {
        s += &item("✗", p);
    }
    let plural = |n: usize, w: &str| format!("{n} {w}{}", if n == 1 { "" } else { "s" });
    s += &match (r.problems.len(), r.warnings.len()) {
        (0, 0) => "verify: no problems\n".to_string(),
        (0, w) => format!("verify: no problems ({})\n", plural(w, "warning")),
        (p, 0) => format!("verify: {}\n", plural(p, "problem")),
        (p, w) => format!(
            "verify: {} ({})\n",
            plural(p, "problem"),
            plural(w, "warning")
        ),
    };
    s
}

/// One line about a dry-run definition.
fn summary(d: &Value) -> String {
    let str_of = |k: &str| d.get(k).and_then(Value::as_str).unwrap_or_default();
    let env_names = |v: Option<&Value>| -> String {
        match v {
            Some(Value::Object(o)) => o
                .keys()
                .filter(|k| !k.starts_with("ORCHESTRATOR_"))
                .map(|k| format!("{k}={MASK}"))
                .collect::<Vec<_>>()
                .join(" "),
            Some(Value::Array(a)) => a
                .iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join(" "),
            _ => String::new(),
        }
    };
    if d.get("image").is_some() {
        let ports: Vec<String> = d
            .get("ports")
            .and_then(Value::as_array)
            .map(|ps| {
                ps.iter()
                    .map(|p| {
                        format!(
                            "{}:{}",
                            p.get("hostPort").map(Value::to_string).unwrap_or_default(),
                            p.get("containerPort")
                                .map(Value::to_string)
                                .unwrap_or_default()
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        format!(
            "container {} image {} ports [{}] env {}",
            str_of("name"),
            str_of("image"),
            ports.join(", "),
            env_names(d.get("env"))
        )
    } else {
        let mode = str_of("exec_mode");
        format!(
            "pm2 {} {}{} env {}",
            str_of("script"),
            if mode.is_empty() { "fork" } else { mode },
            d.get("instances")
                .map(|i| format!(" ×{i}"))
                .unwrap_or_default(),
            env_names(d.get("env"))
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_are_checked_against_the_schema_subset_we_use() {
        let schema = serde_json::json!({
            "properties": {
                "profile": { "type": "string" },
                "json": { "type": "boolean" },
                "format": { "type": "string", "enum": ["table", "json"] },
                "tail": { "type": ["integer", "string"] }
            },
            "additionalProperties": false
        });
        let m = |k: &str, v: Value| schema_mismatch(&schema, k, &v);
        assert_eq!(m("profile", "staging".into()), None);
        assert_eq!(m("tail", 5.into()), None);
        assert_eq!(m("tail", "5".into()), None);
        assert!(m("json", "yes".into()).unwrap().contains("must be boolean"));
        assert!(m("format", "yaml".into())
            .unwrap()
            .contains("one of \"table\", \"json\""));
        assert!(m("colour", true.into())
            .unwrap()
            .contains("unknown option \"colour\""));
        let open = serde_json::json!({ "properties": {} });
        assert_eq!(schema_mismatch(&open, "anything", &Value::Null), None);
    }

    #[test]
    fn masks_build_args_like_env() {
        let c = crate::compose::from_text(
            "services:\n  api:\n    build:\n      context: .\n      args: {NPM_TOKEN: s3cr3t}\n    environment: {A: s3cr3t}\n",
            Path::new("/ws/compose.yaml"),
            &|_| None,
        );
        let spec = crate::container::spec(crate::container::SpecInput {
            workspace_root: Path::new("/ws"),
            workspace_name: "ws",
            profile: "development",
            compose: &c,
            service: &c.services[0],
            env_file_vars: vec![],
            health_timeout_seconds: None,
            replica: 1,
        });
        let v = masked_container(&spec);
        assert!(!v.to_string().contains("s3cr3t"), "{v}");
        assert_eq!(v["build"]["args"]["NPM_TOKEN"], MASK);
    }

    #[test]
    fn masks_every_environment_value() {
        let app = masked_app(
            serde_json::json!({ "name": "a", "env": { "SECRET": "s3cr3t", "PORT": "1" } }),
        );
        assert_eq!(app["env"]["SECRET"], MASK);
        assert_eq!(app["env"]["PORT"], MASK);
        assert!(!app.to_string().contains("s3cr3t"));
    }

    #[test]
    fn the_text_report_lists_problems_with_file_key_and_remediation() {
        let r = Report {
            workspace: "/ws".into(),
            ok: false,
            profiles: vec![],
            problems: vec![Problem {
                rule: "compose",
                file: "/ws/docker-compose.yml".into(),
                at: "services.db.ports[0]".into(),
                line: Some(7),
                profile: Some("staging".into()),
                message: "\"99999:1\" is not a port mapping".into(),
                remediation: "Fix `services.db.ports[0]`".into(),
            }],
            warnings: vec![Problem {
                rule: "healthcheck",
                file: "/ws/docker-compose.yml".into(),
                at: "services.db.healthcheck.interval".into(),
                line: None,
                profile: Some("staging".into()),
                message: "interval 60s is longer than 30s".into(),
                remediation: "Set healthcheck.interval to 30s or less".into(),
            }],
        };
        let t = render(&r);
        assert!(
            t.contains("✗ compose [staging]: /ws/docker-compose.yml:7 services.db.ports[0]"),
            "{t}"
        );
        assert!(t.contains(
            "⚠ healthcheck [staging]: /ws/docker-compose.yml services.db.healthcheck.interval"
        ));
        assert!(t.contains("→ Set healthcheck.interval"));
        assert!(t.ends_with("verify: 1 problem (1 warning)\n"));
    }
}

/// The first line after the shebang of the hook we install: how we recognise our own.
pub const HOOK_MARKER: &str = "# @workspace/orchestrator pre-commit hook";

/// Pure: the pre-commit hook for a workspace at `ws_from_git_root` inside its repository
/// (`.` when it is the root): when the commit touches the workflow's files, it runs
/// `orchestrator verify --all-profiles` and refuses the commit on a problem.
pub fn hook_script(ws_from_git_root: &str) -> String {
    format!(
        r#"#!/bin/sh
{HOOK_MARKER} (installed by `orchestrator verify --install-hook`;
# remove it with `orchestrator verify --remove-hook`). Runs verify when the commit touches the
# workflow's files; `git commit --no-verify` skips it.
ws='{ws}'
prefix=''
[ "$ws" = '.' ] || prefix="$ws/"
git diff --cached --name-only --diff-filter=ACMRD | while IFS= read -r f; do
  case "$f" in
    "$prefix"*) rel="${{f#"$prefix"}}" ;;
    *) continue ;;
  esac
  case "$rel" in
    ecosystem.config.*|docker-compose.yml|docker-compose.yaml|compose.yml|compose.yaml|nx.json|config/env/*|*project.json) echo yes; break ;;
  esac
done | grep -q yes || exit 0
cd "$(git rev-parse --show-toplevel)/$ws" || exit 1
echo "pre-commit: the workflow's files changed; running orchestrator verify --all-profiles"
exec npx --no-install orchestrator verify --all-profiles
"#,
        ws = ws_from_git_root.replace('\'', "")
    )
}

/// Where the repository holding `root` keeps its hooks, and `root` relative to its top.
fn hooks_dir(root: &Path) -> crate::error::Result<(PathBuf, String)> {
    let mut dir = root.to_path_buf();
    loop {
        let git = dir.join(".git");
        if git.is_dir() {
            let rel = root
                .strip_prefix(&dir)
                .map(|p| p.to_string_lossy().into_owned())
                .unwrap_or_default();
            let rel = if rel.is_empty() { ".".into() } else { rel };
            return Ok((git.join("hooks"), rel));
        }
        if !dir.pop() {
            return Err(Error::Usage {
                message: format!("{} is not inside a git repository (no .git directory)", root.display()),
                remediation: "Run `git init` first, or call `orchestrator verify --all-profiles` from your own hook manager".into(),
            });
        }
    }
}

/// Installs the pre-commit hook; refuses to replace a hook that is not ours.
pub fn install_hook(root: &Path) -> crate::error::Result<PathBuf> {
    let (hooks, rel) = hooks_dir(root)?;
    let path = hooks.join("pre-commit");
    if let Ok(existing) = std::fs::read_to_string(&path) {
        if !existing.contains(HOOK_MARKER) {
            return Err(Error::Usage {
                message: format!("{} exists and is not ours; it was left as it is", path.display()),
                remediation: "Add `npx --no-install orchestrator verify --all-profiles` to that hook (or your hook manager: husky, lefthook)".into(),
            });
        }
    }
    let io = |source| Error::ReadFile {
        path: path.clone(),
        source,
    };
    std::fs::create_dir_all(&hooks).map_err(io)?;
    std::fs::write(&path, hook_script(&rel)).map_err(io)?;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).map_err(io)?;
    Ok(path)
}

/// Removes our pre-commit hook (a hook that is not ours is left alone); `None`: there was none.
pub fn remove_hook(root: &Path) -> crate::error::Result<Option<PathBuf>> {
    let (hooks, _) = hooks_dir(root)?;
    let path = hooks.join("pre-commit");
    match std::fs::read_to_string(&path) {
        Ok(text) if text.contains(HOOK_MARKER) => {
            std::fs::remove_file(&path).map_err(|source| Error::ReadFile {
                path: path.clone(),
                source,
            })?;
            Ok(Some(path))
        }
        Ok(_) => Err(Error::Usage {
            message: format!("{} is not ours; it was left as it is", path.display()),
            remediation: "Edit that hook yourself".into(),
        }),
        Err(_) => Ok(None),
    }
}

#[cfg(test)]
mod hook_tests {
    use super::*;

    #[test]
    fn the_hook_checks_only_the_workspace_s_workflow_files() {
        let s = hook_script("examples/workspace");
        assert!(s.starts_with("#!/bin/sh\n# @workspace/orchestrator pre-commit hook"));
        assert!(s.contains("ws='examples/workspace'"));
        assert!(s.contains("exec npx --no-install orchestrator verify --all-profiles"));
        assert!(hook_script(".").contains("ws='.'"));
        assert!(
            hook_script("a'b").contains("ws='ab'"),
            "no quote breaks out"
        );
    }
}
