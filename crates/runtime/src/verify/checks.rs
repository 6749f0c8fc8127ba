//! The checks `verify` runs, each on its own: the ecosystem, a profile's plan (env, ports, the
//! container spec or PM2 app it would use, masked), scripts that shadow our targets, log
//! directories, the targets' options against their schemas.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use super::model::{
    Collector, DryRun, ProfilePlan, MASK, MAX_HEALTH_INTERVAL_SECS, PM2_SUPERSEDED,
};
use crate::catalog::{self, Catalog, Kind};
use crate::config::{self};

/// The ecosystem's own rules beyond parsing: restart options left to our policy, and an
/// `env_<profile>` block or an env file for every checked profile.
pub(super) fn check_ecosystem(
    c: &mut Collector,
    eco: &Value,
    file: &Path,
    root: &Path,
    profiles: &[String],
) {
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
pub(super) fn check_profile(
    c: &mut Collector,
    cat: &Catalog,
    profile: &str,
) -> Option<ProfilePlan> {
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
    let mut steps = Vec::new();
    for name in &order {
        let Ok(spec) = cat.get(name) else { continue };
        // The step a start under this profile would carry out, from an empty PM2 table: the
        // plan's own (`step::plan_service`), rendered masked.
        let planned = crate::step::plan_service(&crate::step::ServiceInput {
            cat,
            spec,
            verb: crate::step::Verb::Start,
            profile,
            pm2: &[],
            file_vars: &file_vars,
            compose: compose.as_ref(),
            supervisor: Path::new("orchestrator-supervisor"),
        });
        let step = match planned {
            Ok(step) => step,
            Err(e) => {
                // What keeps a service from being defined is reported where it is written,
                // each with its line: its compose entry and the file's problems above, its
                // ecosystem entry (`check_ecosystem`), its restart policy (`verify`).
                let reported = match spec.kind {
                    Kind::Dependency => compose
                        .as_ref()
                        .is_none_or(|cf| !cf.errors_for(name).is_empty()),
                    Kind::App => cat.app_error(spec).is_some(),
                } || matches!(&e, crate::error::Error::InvalidConfig { key, .. } if key.contains("restartPolicy"));
                if !reported {
                    match spec.kind {
                        Kind::App => c.error("ecosystem", &e, &cat.ecosystem_file, Some(profile)),
                        Kind::Dependency => c.error("compose", &e, &compose_file, Some(profile)),
                    }
                }
                continue;
            }
        };
        if !step.missing_env.is_empty() {
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
                    step.missing_env.join(", ")
                ),
                format!(
                    "Add {} to {} or to the app's env_{profile}",
                    step.missing_env.join(", "),
                    env_file.display()
                ),
            );
        }
        let (file, at) = match spec.kind {
            Kind::App => (&cat.ecosystem_file, None),
            Kind::Dependency => (&compose_file, Some(format!("services.{name}.ports"))),
        };
        for p in &step.ports {
            let at = at.clone().unwrap_or_else(|| format!("{name}: PORT {p}"));
            port_clash(c, *p, name, file, at);
        }
        let definition = match (&step.container, &step.app) {
            (Some(cs), _) => masked_container(cs),
            (None, Some(app)) => masked_app(app.clone()),
            (None, None) => continue,
        };
        services.push(DryRun {
            name: name.clone(),
            kind: spec.kind.as_str(),
            definition,
            waits_on: Vec::new(),
        });
        steps.push(step);
    }
    // What waits on what when every service starts: as `start --all` schedules it.
    let nodes = crate::step::schedule_nodes(cat, &steps, &|_| compose.as_ref());
    let waits = crate::schedule::start_waits(&nodes);
    if let Some(cycle) = crate::schedule::cycle(&nodes, &waits) {
        let e = crate::step::cycle_error(cat, &cycle);
        c.error(
            "nx-json",
            &e,
            &config::nx_json_path(&cat.root),
            Some(profile),
        );
    }
    for (d, w) in services.iter_mut().zip(&waits) {
        d.waits_on = w.iter().map(crate::step::wait_label).collect();
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
pub(super) fn check_shadowed_scripts(c: &mut Collector, cat: &Catalog) {
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
pub(super) fn masked_app(mut app: Value) -> Value {
    if let Some(Value::Object(env)) = app.get_mut("env") {
        for v in env.values_mut() {
            *v = Value::String(MASK.into());
        }
    }
    app
}

/// A container spec with every `NAME=value` masked.
pub(super) fn masked_container(cs: &crate::container::ContainerSpec) -> Value {
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
pub(super) fn check_log_dirs(c: &mut Collector, cat: &Catalog) {
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

pub(super) fn writable(dir: &Path) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let Ok(c) = std::ffi::CString::new(dir.as_os_str().as_bytes()) else {
        return false;
    };
    // SAFETY: access(2) reads a NUL-terminated path and has no other effect.
    unsafe { libc::access(c.as_ptr(), libc::W_OK) == 0 }
}

/// Every `@workspace/orchestrator:<executor>` target in a `project.json` names one of our
/// executors and its options fit that executor's schema (known keys, types, enums).
pub(super) fn check_targets(c: &mut Collector, root: &Path, plugin_root: &Path) {
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
pub(super) fn project_files(root: &Path) -> Vec<PathBuf> {
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
