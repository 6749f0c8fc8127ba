//! The catalog: every service of a workspace, read from its standard files (DESIGN §1) and
//! validated. Apps come from `ecosystem.config.js` (evaluated by the JS side, handed over as
//! data); docker dependencies join from `docker-compose.yml` in the Docker issue.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::{Map, Value};

use crate::config::{PluginConfig, ServiceConfig};
use crate::envfile::{self, ResolvedEnv};
use crate::error::{Error, Result};
use crate::names::{is_valid_name, validate_name};

pub const META_WORKSPACE: &str = "ORCHESTRATOR_WORKSPACE";
pub const META_PROFILE: &str = "ORCHESTRATOR_PROFILE";
pub const META_KIND: &str = "ORCHESTRATOR_KIND";
pub const META_SERVICE: &str = "ORCHESTRATOR_SERVICE";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    App,
    Dependency,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::App => "app",
            Kind::Dependency => "dependency",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct ServiceSpec {
    pub name: String,
    /// Problems of its definition (`key`, `message`) in its file: it cannot start until they
    /// are fixed, and nothing else is affected.
    pub problems: Vec<(String, String)>,
    pub kind: Kind,
    /// The ecosystem entry as written (apps).
    pub app: Map<String, Value>,
    pub config: ServiceConfig,
    pub cwd: PathBuf,
    pub cluster: bool,
}

#[derive(Debug, Clone)]
pub struct Catalog {
    pub root: PathBuf,
    pub workspace_name: String,
    pub ecosystem_file: PathBuf,
    pub config: PluginConfig,
    pub services: Vec<ServiceSpec>,
    /// The compose project as loaded without a profile (its service names, its file-level
    /// problems), when the workspace has a compose file.
    pub compose: Option<crate::compose::ComposeFile>,
}

pub use crate::compose::COMPOSE_FILES;

/// The workspace's name: its package.json `name`, else its directory's (PM2 namespace, compose
/// project).
pub fn workspace_name(root: &Path) -> String {
    std::fs::read_to_string(root.join("package.json"))
        .ok()
        .and_then(|t| serde_json::from_str::<Value>(&t).ok())
        .and_then(|v| v.get("name").and_then(Value::as_str).map(str::to_string))
        .unwrap_or_else(|| {
            root.file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| "workspace".into())
        })
        .replace(['/', '@'], "-")
        .trim_matches('-')
        .to_string()
}

/// The compose project without a profile: its service names (broken ones included) for the
/// catalog; a problem of one service never hides the others, nor the apps.
pub fn load_compose(root: &Path) -> Option<crate::compose::ComposeFile> {
    crate::compose::load(&crate::compose::LoadRequest {
        fs: &crate::compose::Disk,
        root,
        shell: &|k| std::env::var(k).ok(),
        profile_vars: &[],
        compose_profiles: &[],
    })
}

/// The workspace's services: its ecosystem apps and compose dependencies, with nx.json's settings.
pub fn load(root: &Path, ecosystem: &Value, ecosystem_file: &Path) -> Result<Catalog> {
    let cfg = crate::config::load_plugin_config(root)?;
    let compose = load_compose(root);
    build(
        root,
        &workspace_name(root),
        ecosystem_file,
        ecosystem,
        cfg,
        compose,
    )
}

fn invalid(file: &Path, key: String, message: impl Into<String>) -> Error {
    Error::InvalidConfig {
        file: file.to_path_buf(),
        key,
        message: message.into(),
    }
}

/// Extracts the app list from an evaluated ecosystem module: `{ apps: [...] }`, an array, or one
/// app. The first problem is an error (see [`parse_ecosystem_lenient`] for all of them).
pub fn parse_ecosystem(module: &Value, file: &Path) -> Result<Vec<Map<String, Value>>> {
    let (apps, mut problems) = parse_ecosystem_lenient(module, file)?;
    if problems.is_empty() {
        Ok(apps.into_iter().map(|(a, _)| a).collect())
    } else {
        Err(problems.remove(0).1)
    }
}

/// Every app of the ecosystem with the problems of each: an app with a usable name is kept
/// (its problems stop only it); `(index, error)` for every problem. The module itself not being
/// an app list is the only error that stops everything.
#[allow(clippy::type_complexity)]
pub fn parse_ecosystem_lenient(
    module: &Value,
    file: &Path,
) -> Result<(
    Vec<(Map<String, Value>, Vec<(String, String)>)>,
    Vec<(usize, Error)>,
)> {
    let apps = match module {
        Value::Object(o) if o.contains_key("apps") => o["apps"].clone(),
        Value::Array(_) => module.clone(),
        Value::Object(_) => Value::Array(vec![module.clone()]),
        _ => {
            return Err(invalid(
                file,
                "(module)".into(),
                "must export { apps: [...] }",
            ))
        }
    };
    let Value::Array(items) = apps else {
        return Err(invalid(
            file,
            "apps".into(),
            "must be an array of app definitions",
        ));
    };
    let mut out: Vec<(Map<String, Value>, Vec<(String, String)>)> = Vec::new();
    let mut problems: Vec<(usize, Error)> = Vec::new();
    for (i, item) in items.into_iter().enumerate() {
        let mut mine: Vec<(String, String)> = Vec::new();
        let Value::Object(app) = item else {
            problems.push((i, invalid(file, format!("apps[{i}]"), "must be an object")));
            continue;
        };
        let name = match app.get("name") {
            Some(Value::String(s)) => s.clone(),
            _ => {
                problems.push((
                    i,
                    invalid(
                        file,
                        format!("apps[{i}].name"),
                        "is required and must be a string",
                    ),
                ));
                continue;
            }
        };
        if !is_valid_name(&name) {
            problems.push((
                i,
                invalid(
                    file,
                    format!("apps[{i}].name"),
                    format!(
                        "\"{name}\" is not a valid service name (letters, digits, '.', '_', '-')"
                    ),
                ),
            ));
            continue;
        }
        if out
            .iter()
            .any(|(a, _)| a.get("name") == Some(&Value::String(name.clone())))
        {
            problems.push((
                i,
                invalid(
                    file,
                    format!("apps[{i}].name"),
                    format!("duplicate app name \"{name}\""),
                ),
            ));
            continue;
        }
        if !matches!(app.get("script"), Some(Value::String(s)) if !s.is_empty()) {
            mine.push((
                format!("apps[{i}].script"),
                "is required and must be a string".into(),
            ));
        }
        for (k, v) in &app {
            if (k == "env" || k.starts_with("env_")) && !v.is_object() {
                mine.push((
                    format!("apps[{i}].{k}"),
                    "must be an object of NAME: value".into(),
                ));
            }
        }
        for (key, message) in &mine {
            problems.push((i, invalid(file, key.clone(), message.clone())));
        }
        out.push((app, mine));
    }
    Ok((out, problems))
}

fn is_cluster(app: &Map<String, Value>) -> bool {
    matches!(
        app.get("exec_mode").and_then(Value::as_str),
        Some("cluster" | "cluster_mode")
    )
}

pub fn build(
    root: &Path,
    workspace_name: &str,
    ecosystem_file: &Path,
    ecosystem: &Value,
    config: PluginConfig,
    compose: Option<crate::compose::ComposeFile>,
) -> Result<Catalog> {
    let (apps, _) = parse_ecosystem_lenient(ecosystem, ecosystem_file)?;
    let mut services = Vec::new();
    for (app, problems) in apps {
        let name = app["name"].as_str().unwrap_or_default().to_string();
        let cwd = match app.get("cwd").and_then(Value::as_str) {
            Some(c) => root.join(c),
            None => root.to_path_buf(),
        };
        services.push(ServiceSpec {
            problems,
            cluster: is_cluster(&app),
            config: config.services.get(&name).cloned().unwrap_or_default(),
            name,
            kind: Kind::App,
            app,
            cwd,
        });
    }
    if let Some(c) = &compose {
        let file = &c.file;
        for name in c.names.iter().cloned() {
            if !is_valid_name(&name) {
                continue; // reported by the compose loader, for that service only
            }
            if services.iter().any(|s| s.name == name) {
                return Err(invalid(
                    file,
                    format!("services.{name}"),
                    format!(
                        "\"{name}\" is also an app in {}; service names must be unique",
                        ecosystem_file.display()
                    ),
                ));
            }
            services.push(ServiceSpec {
                problems: Vec::new(),
                config: config.services.get(&name).cloned().unwrap_or_default(),
                name,
                kind: Kind::Dependency,
                app: Map::new(),
                cwd: root.to_path_buf(),
                cluster: false,
            });
        }
    }
    let nx_json = crate::config::nx_json_path(root);
    // A compose file whose services cannot be listed (it does not parse) may hold the names
    // nx.json refers to: those references wait for the file to be fixed.
    let compose_unreadable = compose
        .as_ref()
        .is_some_and(|c| c.names.is_empty() && c.errors().next().is_some());
    let known = |n: &String| services.iter().any(|s| &s.name == n) || compose_unreadable;
    if let Some(defaults) = &config.default_services {
        for d in defaults {
            if !known(d) {
                return Err(invalid(
                    &nx_json,
                    format!(
                        "pluginsConfig[\"{}\"].defaultServices",
                        crate::names::PLUGIN_KEY
                    ),
                    format!("names \"{d}\", which is not a service of this workspace"),
                ));
            }
        }
    }
    for (name, svc) in &config.services {
        for d in svc.depends_on.iter().flatten() {
            if !known(d) || d == name {
                return Err(invalid(
                    &nx_json,
                    format!(
                        "pluginsConfig[\"{}\"].services.{name}.dependsOn",
                        crate::names::PLUGIN_KEY
                    ),
                    format!("names \"{d}\", which is not another service of this workspace"),
                ));
            }
        }
    }
    for name in config.services.keys() {
        if !known(name) {
            return Err(invalid(
                &nx_json,
                format!(
                    "pluginsConfig[\"{}\"].services.{name}",
                    crate::names::PLUGIN_KEY
                ),
                "configures a service that no ecosystem app or compose service declares",
            ));
        }
    }
    Ok(Catalog {
        root: root.to_path_buf(),
        workspace_name: workspace_name.to_string(),
        ecosystem_file: ecosystem_file.to_path_buf(),
        config,
        services,
        compose,
    })
}

/// Pure: whether `name` matches an Nx project pattern (`*` matches any run of characters).
fn nx_pattern_matches(pattern: &str, name: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == name;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !name.starts_with(first) || name.len() < first.len() + last.len() || !name.ends_with(last) {
        return false;
    }
    let mut rest = &name[first.len()..name.len() - last.len()];
    for mid in &parts[1..parts.len() - 1] {
        match rest.find(mid) {
            Some(i) => rest = &rest[i + mid.len()..],
            None => return false,
        }
    }
    true
}

/// Pure: the services an Nx project.json names in `implicitDependencies` (Nx's graph: the
/// project needs them), in the catalog's order: names and `*` patterns, minus `!` exclusions;
/// projects that are not services (libraries) are not waits. `None` when it names no service.
pub fn implicit_services(
    project_json: &str,
    services: &[String],
    own: &str,
) -> Option<Vec<String>> {
    let v: Value = serde_json::from_str(project_json).ok()?;
    let patterns: Vec<&str> = v
        .get("implicitDependencies")?
        .as_array()?
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let (exclude, include): (Vec<&str>, Vec<&str>) =
        patterns.iter().partition(|p| p.starts_with('!'));
    let waits: Vec<String> = services
        .iter()
        .filter(|s| s.as_str() != own)
        .filter(|s| include.iter().any(|p| nx_pattern_matches(p, s)))
        .filter(|s| !exclude.iter().any(|p| nx_pattern_matches(&p[1..], s)))
        .cloned()
        .collect();
    (!waits.is_empty()).then_some(waits)
}

impl Catalog {
    /// What an app waits on by the Nx graph when nx.json declares no `dependsOn` for it: the
    /// services its project.json (in the app's directory) names in `implicitDependencies`.
    pub fn implicit_waits(&self, spec: &ServiceSpec) -> Option<Vec<String>> {
        // An app without a directory of its own runs in the workspace root, whose project.json
        // is the workspace's, not the app's.
        if spec.kind != Kind::App || spec.cwd == self.root {
            return None;
        }
        let text = std::fs::read_to_string(spec.cwd.join("project.json")).ok()?;
        implicit_services(&text, &self.names(), &spec.name)
    }

    pub fn names(&self) -> Vec<String> {
        self.services.iter().map(|s| s.name.clone()).collect()
    }

    pub fn get(&self, name: &str) -> Result<&ServiceSpec> {
        validate_name(name, "service")?;
        if let Some(s) = self.services.iter().find(|s| s.name == name) {
            return Ok(s);
        }
        // Unknown because the compose file cannot be read: that is the error to show.
        if let Some(c) = self.compose.as_ref().filter(|c| c.names.is_empty()) {
            let problems: Vec<crate::compose::Diag> = c.errors().cloned().collect();
            if !problems.is_empty() {
                return Err(Error::Compose {
                    service: None,
                    problems,
                });
            }
        }
        Err(Error::ServiceUnknown {
            service: name.to_string(),
            known: self.names(),
        })
    }

    /// The error that stops an app from starting: the problems of its ecosystem entry.
    pub fn app_error(&self, spec: &ServiceSpec) -> Option<Error> {
        let (key, message) = spec.problems.first()?;
        let mut message = message.clone();
        for (k, m) in spec.problems.iter().skip(1) {
            message.push_str(&format!("; {k}: {m}"));
        }
        Some(invalid(&self.ecosystem_file, key.clone(), message))
    }

    /// Explicit names, else every service with `all`, else the default set (all when unset).
    pub fn select(&self, requested: &[String], all: bool) -> Result<Vec<&ServiceSpec>> {
        if !requested.is_empty() {
            let mut out: Vec<&ServiceSpec> = Vec::new();
            for r in requested {
                let s = self.get(r)?;
                if !out.iter().any(|o| o.name == s.name) {
                    out.push(s);
                }
            }
            return Ok(out);
        }
        match (&self.config.default_services, all) {
            (Some(defaults), false) => defaults.iter().map(|d| self.get(d)).collect(),
            _ => Ok(self.services.iter().collect()),
        }
    }

    /// The compose project loaded for a profile: interpolated from the shell, then the
    /// profile's env file, then the project's `.env`, with the compose profiles the
    /// orchestrator profile enables. Problems are in its `diags`, per service.
    pub fn compose_for(
        &self,
        profile: &str,
        profile_vars: &[(String, String)],
    ) -> Option<crate::compose::ComposeFile> {
        self.compose.as_ref()?;
        let none = Vec::new();
        let compose_profiles = self.config.compose_profiles.get(profile).unwrap_or(&none);
        crate::compose::load(&crate::compose::LoadRequest {
            fs: &crate::compose::Disk,
            root: &self.root,
            shell: &|k| std::env::var(k).ok(),
            profile_vars,
            compose_profiles,
        })
    }

    /// The main compose file, when there is one.
    pub fn compose_file(&self) -> Option<&Path> {
        self.compose.as_ref().map(|c| c.file.as_path())
    }

    pub fn env_file(&self, profile: &str) -> PathBuf {
        envfile::env_file_path(&self.root, profile)
    }

    pub fn log_dir(&self, service: &str) -> PathBuf {
        crate::layout::log_dir(&self.root, service)
    }
}

fn string_pairs(v: Option<&Value>) -> Vec<(String, String)> {
    let Some(Value::Object(o)) = v else {
        return Vec::new();
    };
    o.iter()
        .map(|(k, v)| {
            let s = match v {
                Value::String(s) => s.clone(),
                Value::Null => String::new(),
                other => other.to_string(),
            };
            (k.clone(), s)
        })
        .collect()
}

/// Pure: the service's env for a profile, given the env file's parsed variables.
pub fn resolve_env(
    spec: &ServiceSpec,
    profile: &str,
    file_vars: Vec<(String, String)>,
    file: &Path,
) -> ResolvedEnv {
    envfile::resolve(
        string_pairs(spec.app.get("env")),
        string_pairs(spec.app.get(&format!("env_{profile}"))),
        profile,
        file_vars,
        file,
    )
}

/// Ports a service declares: `services.<name>.ports` plus `PORT` from its resolved env.
pub fn declared_ports(spec: &ServiceSpec, env: &ResolvedEnv) -> Vec<u16> {
    let mut ports = spec.config.ports.clone();
    if let Some(p) = env.get("PORT").and_then(|p| p.trim().parse::<u16>().ok()) {
        if !ports.contains(&p) {
            ports.push(p);
        }
    }
    ports
}

/// Pure: the PM2 app definition we hand to PM2 — the ecosystem entry with the profile's env
/// resolved, our metadata attached, paths made absolute, and logs in `apps/logs/<service>/`.
pub fn pm2_app(catalog: &Catalog, spec: &ServiceSpec, profile: &str, env: &ResolvedEnv) -> Value {
    let mut app: Map<String, Value> = spec
        .app
        .iter()
        .filter(|(k, _)| !k.starts_with("env_") && !WATCH_KEYS.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let mut vars: BTreeMap<String, String> = env.values();
    vars.insert(META_WORKSPACE.into(), catalog.root.display().to_string());
    vars.insert(META_PROFILE.into(), profile.into());
    vars.insert(META_KIND.into(), spec.kind.as_str().into());
    vars.insert(META_SERVICE.into(), spec.name.clone());
    app.insert("env".into(), serde_json::to_value(vars).unwrap_or_default());
    app.insert("cwd".into(), Value::String(spec.cwd.display().to_string()));
    if !app.contains_key("namespace") {
        app.insert(
            "namespace".into(),
            Value::String(catalog.workspace_name.clone()),
        );
    }
    let logs = catalog.log_dir(&spec.name);
    app.insert(
        "out_file".into(),
        Value::String(logs.join("out.log").display().to_string()),
    );
    app.insert(
        "error_file".into(),
        Value::String(logs.join("error.log").display().to_string()),
    );
    // One file per stream, also for cluster apps, unless the ecosystem entry asks for one per
    // instance (`merge_logs: false`: PM2 writes `out-<pm_id>.log`, and `logs` reads them all).
    if app.get("merge_logs") != Some(&Value::Bool(false)) {
        app.insert("merge_logs".into(), Value::Bool(true));
    }
    // One watcher, ours (`orchestrator watch`: a build through Nx, then a reload gated on
    // readiness): PM2's restart-on-change is off, whatever the entry says.
    app.insert("watch".into(), Value::Bool(false));
    // One restart policy, ours: the workspace agent restarts crashed services (policy.rs).
    app.insert("autorestart".into(), Value::Bool(false));
    // Every line PM2 writes starts with an RFC 3339 timestamp with milliseconds and the UTC
    // offset (PM2 formats in its daemon's zone; the offset keeps the instant exact anywhere).
    app.insert(
        "log_date_format".into(),
        Value::String(LOG_DATE_FORMAT.into()),
    );
    Value::Object(app)
}

/// PM2's watch keys: they configure our watcher (`watch::WatchKeys`), never PM2's.
pub const WATCH_KEYS: [&str; 5] = [
    "watch",
    "ignore_watch",
    "ignoreWatch",
    "watch_delay",
    "watch_options",
];

pub const META_CONTAINER: &str = "ORCHESTRATOR_CONTAINER";
/// The variables of an app's env that we set (names only, comma-separated).
pub const META_ENV_KEYS: &str = "ORCHESTRATOR_ENV_KEYS";
/// Variables PM2 still holds for an app that its current env does not have: the preload
/// (lib/preload.js) removes them before the app's code runs.
pub const META_UNSET: &str = "ORCHESTRATOR_UNSET";

/// Pure: records in an app definition which variables this launch sets, and which ones the app
/// must no longer see. PM2 merges the env of a reload or restart into the one it holds
/// (`pm2 startOrReload --env staging` keeps a variable only `development` had); `previous` is
/// what our last launch left in that entry, so a variable we once set and no longer do is
/// removed, however many launches ago it was dropped. Variables we never set (the shell's) are
/// left alone.
pub fn unset_stale(app: &mut Value, previous: crate::pm2::LaunchedEnv) {
    let Some(env) = app.get_mut("env").and_then(Value::as_object_mut) else {
        return;
    };
    let keys: Vec<String> = env
        .keys()
        .filter(|k| k.as_str() != META_ENV_KEYS && k.as_str() != META_UNSET)
        .cloned()
        .collect();
    let mut unset: Vec<String> = previous
        .keys
        .into_iter()
        .chain(previous.unset)
        .filter(|k| !env.contains_key(k) && k != META_ENV_KEYS && k != META_UNSET)
        .collect();
    unset.sort();
    unset.dedup();
    env.insert(META_ENV_KEYS.into(), Value::String(keys.join(",")));
    if unset.is_empty() {
        env.remove(META_UNSET);
    } else {
        env.insert(META_UNSET.into(), Value::String(unset.join(",")));
    }
}

/// PM2's (dayjs) format for the timestamp it puts before every app line.
pub const LOG_DATE_FORMAT: &str = "YYYY-MM-DDTHH:mm:ss.SSSZ";

/// Pure: the PM2 app of a docker dependency — our container runner (the native supervisor in its
/// `runner` mode, no Node process), carrying the resolved container spec. PM2 waits the container's stop timeout (plus margin) before it kills the runner.
pub fn runner_app(
    catalog: &Catalog,
    spec: &ServiceSpec,
    profile: &str,
    container: &crate::container::ContainerSpec,
    supervisor: &Path,
) -> Value {
    let mut env: BTreeMap<String, String> = BTreeMap::new();
    env.insert(META_WORKSPACE.into(), catalog.root.display().to_string());
    env.insert(META_PROFILE.into(), profile.into());
    env.insert(META_KIND.into(), spec.kind.as_str().into());
    env.insert(META_SERVICE.into(), spec.name.clone());
    env.insert(
        META_CONTAINER.into(),
        serde_json::to_string(container).unwrap_or_default(),
    );
    let logs = catalog.log_dir(&spec.name);
    // The runner writes its files itself (crate::sink): PM2's writer drops queued lines when it
    // reopens them for a rotation. PM2 still gets every line on stdout/stderr, for its bus.
    env.insert(
        crate::layout::OUT_ENV.into(),
        logs.join("out.log").display().to_string(),
    );
    env.insert(
        crate::layout::ERR_ENV.into(),
        logs.join("error.log").display().to_string(),
    );
    serde_json::json!({
        "name": spec.name,
        "script": supervisor.display().to_string(),
        "args": ["runner"],
        "interpreter": "none",
        "exec_mode": "fork",
        // A replicated service: one runner per container (PM2 numbers them NODE_APP_INSTANCE).
        "instances": container.replicas.max(1),
        "cwd": catalog.root.display().to_string(),
        "namespace": catalog.workspace_name,
        "env": env,
        "kill_timeout": (container.stop_timeout_seconds + 5) * 1000,
        // One restart policy, ours: the agent restarts a runner whose container died, and gives
        // up at once when it exits with a cause restarting cannot fix (image unavailable…).
        "autorestart": false,
        "out_file": "/dev/null",
        "error_file": "/dev/null",
        "merge_logs": true,
    })
}

#[cfg(test)]
mod tests;
