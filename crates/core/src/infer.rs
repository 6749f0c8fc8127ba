//! Inferred Nx projects (`createNodesV2`): from the workspace's own files, every app whose `cwd`
//! is an Nx project gets `start`/`stop`/`restart`/`logs`/`setup`/`test`/`deploy`/`why`, every
//! compose dependency a project with `start`/`stop`/`restart`/`logs`/`why`, and the workspace's root project
//! the `workspace:*` targets, so a workspace that adopts the plugin writes no target by hand.
//! Explicit `project.json` targets win (Nx applies them over inferred ones). Edges
//! (`createDependencies`) follow compose `depends_on` and `services.<name>.dependsOn` in nx.json.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Serialize;
use serde_json::{json, Map, Value};

use crate::catalog::{Catalog, Kind};

const APP_TARGETS: [(&str, &str); 8] = [
    (
        "setup",
        "Install the app's dependencies and check its environment (idempotent)",
    ),
    (
        "start",
        "Start under PM2 with the profile's env and wait until ready",
    ),
    ("stop", "Stop this service"),
    (
        "restart",
        "Restart (cluster apps reload with zero downtime)",
    ),
    ("test", "Run the app's test script with the profile's env"),
    (
        "logs",
        "Log lines in time order (--since, --tail, --grep, --json)",
    ),
    (
        "deploy",
        "Build (Nx graph), verify, reload under the profile with zero downtime, wait until healthy",
    ),
    ("why", WHY),
];
/// The names of the targets inferred for an app.
pub const APP_TARGET_NAMES: [&str; 8] = [
    "setup", "start", "stop", "restart", "test", "logs", "deploy", "why",
];
const WHY: &str = "Why it is not up: what it waits on, a start's refusal, health output, port holders, its last lines";
const DEP_TARGETS: [(&str, &str); 5] = [
    (
        "start",
        "Start the container under PM2 and wait until healthy",
    ),
    ("stop", "Stop the container gracefully"),
    ("restart", "Restart the container and wait until healthy"),
    ("logs", "The container's log lines in time order"),
    ("why", WHY),
];

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Inferred {
    /// Project root (relative to the Nx workspace root) → project configuration.
    pub projects: BTreeMap<String, Value>,
    /// (source, target) service names.
    pub edges: Vec<(String, String)>,
}

/// `--configuration=<profile>` for every registered profile (as `--profile <profile>`).
fn with_profiles(mut t: Value, profiles: &[String]) -> Value {
    let confs: Map<String, Value> = profiles
        .iter()
        .map(|p| (p.clone(), json!({ "profile": p })))
        .collect();
    t["configurations"] = Value::Object(confs);
    t
}

fn target(executor: &str, options: Value, description: &str) -> Value {
    json!({
        "executor": format!("{}:{executor}", crate::names::PLUGIN_KEY),
        "options": options,
        "cache": false,
        // They act on processes, not files: nothing to hash (and a dependency's project root
        // need not exist, which Nx's hasher would otherwise look up).
        "inputs": [],
        "metadata": { "technologies": ["pm2"], "description": description },
    })
}

fn join(a: &str, b: &str) -> String {
    let b = b.trim_start_matches("./").trim_end_matches('/');
    match (a, b) {
        (".", "") | ("", "") => ".".into(),
        (".", b) | ("", b) => b.into(),
        (a, "") => a.into(),
        (a, b) => format!("{a}/{b}"),
    }
}

/// An app's project: its targets, and its name when the project is new.
fn app_project(cat: &Catalog, options: &Value, name: Option<&str>) -> Value {
    let mut targets = Map::new();
    for (t, d) in APP_TARGETS {
        let mut x = with_profiles(target(t, options.clone(), d), &cat.config.profiles);
        if t == "deploy" {
            // The app's own build first (when it has one), through the Nx graph.
            x["dependsOn"] = json!(["build"]);
        }
        targets.insert(t.into(), x);
    }
    let mut p =
        json!({ "projectType": "application", "tags": ["orchestrator:app"], "targets": targets });
    if let Some(n) = name {
        p["name"] = json!(n);
    }
    p
}

/// The name Nx gives a project at `dir` from its own files (`project.json`, then
/// `package.json`), if any.
fn own_name(dir: &Path) -> Option<Option<String>> {
    for f in ["project.json", "package.json"] {
        if let Ok(text) = std::fs::read_to_string(dir.join(f)) {
            let name = serde_json::from_str::<Value>(&text)
                .ok()
                .and_then(|v| v.get("name").and_then(Value::as_str).map(str::to_string));
            return Some(name);
        }
    }
    None
}

/// The projects for a workspace whose files sit at `rel` (relative to the Nx root; `.` for the
/// Nx root itself). `compose_deps` are the compose services with their `depends_on`.
/// `existing` maps the names the workspace's project.json files define to their roots: a
/// service's project, or the `workspace` project, that is already defined somewhere gets the
/// inferred targets there (its own targets win), and is never defined a second time.
pub fn infer(
    cat: &Catalog,
    rel: &str,
    compose_deps: &[(String, Vec<String>)],
    existing: &BTreeMap<String, String>,
) -> Inferred {
    let mut projects = BTreeMap::new();
    let mut app_projects: Vec<String> = Vec::new();
    let root = &cat.root;
    for s in cat.services.iter().filter(|s| s.kind == Kind::App) {
        if let Some(at) = existing.get(&s.name) {
            projects.insert(at.clone(), app_project(cat, &json!({}), None));
            app_projects.push(s.name.clone());
            continue;
        }
        let Ok(cwd) = s.cwd.strip_prefix(root) else {
            continue; // outside the workspace
        };
        let cwd = cwd.to_string_lossy();
        if cwd.is_empty() {
            continue; // the root project is the workspace's
        }
        // "whose cwd is an Nx project": it has its own project.json or package.json.
        let Some(name) = own_name(&s.cwd) else {
            continue;
        };
        let options = match &name {
            Some(n) if n != &s.name => json!({ "service": s.name }),
            _ => json!({}),
        };
        app_projects.push(name.clone().unwrap_or_else(|| s.name.clone()));
        let new_name = name.is_none().then_some(s.name.as_str());
        projects.insert(join(rel, &cwd), app_project(cat, &options, new_name));
    }
    for s in cat.services.iter().filter(|s| s.kind == Kind::Dependency) {
        let mut targets = Map::new();
        for (t, d) in DEP_TARGETS {
            let x = with_profiles(target(t, json!({}), d), &cat.config.profiles);
            targets.insert(t.into(), x);
        }
        if let Some(at) = existing.get(&s.name) {
            let p = json!({ "tags": ["type:dependency", "orchestrator:dependency"], "targets": targets });
            projects.insert(at.clone(), p);
            continue;
        }
        let dir = format!("deps/{}", s.name);
        let own = own_name(&root.join(&dir));
        let mut p = json!({ "projectType": "application", "tags": ["type:dependency", "orchestrator:dependency"], "targets": targets });
        if !matches!(own, Some(Some(_))) {
            p["name"] = json!(s.name);
        }
        projects.insert(join(rel, &dir), p);
    }
    let mut targets = Map::new();
    let all = json!({ "all": true });
    let deps = json!({ "dependencies": true });
    for (name, exe, options, d) in [
        (
            "start",
            "start",
            json!({}),
            "Start the default services (nx.json defaultServices)",
        ),
        ("stop", "stop", json!({}), "Stop the default services"),
        ("start-all", "start", all.clone(), "Start every service"),
        (
            "stop-all",
            "stop",
            all,
            "Stop every service and the workspace agent",
        ),
        (
            "restart",
            "restart",
            json!({}),
            "Restart services (-- --service=<name>)",
        ),
        (
            "deps:start",
            "start",
            deps.clone(),
            "Start every docker dependency",
        ),
        (
            "deps:restart",
            "restart",
            deps.clone(),
            "Restart every docker dependency",
        ),
        ("deps:stop", "stop", deps, "Stop every docker dependency"),
        ("setup", "setup", json!({}), "Set up every app"),
        ("test", "test", json!({}), "Test every app"),
        (
            "status",
            "status",
            json!({}),
            "One health snapshot of every service (-- --json)",
        ),
        (
            "logs",
            "logs",
            json!({}),
            "Log lines of every service in time order",
        ),
        (
            "why",
            "why",
            json!({}),
            "Why a service is not up (-- --service=<name>)",
        ),
        (
            "dashboard",
            "dashboard",
            json!({}),
            "A live terminal view: every service, CPU and memory, logs, events, actions",
        ),
        (
            "watch",
            "watch",
            json!({}),
            "Keep the running services in step with the source: build through Nx, reload what changed",
        ),
        (
            "verify",
            "verify",
            json!({}),
            "Lint and dry-run the workflow (a CI gate)",
        ),
        (
            "deploy",
            "deploy",
            json!({}),
            "Build, verify and reload the default set in dependency order",
        ),
    ] {
        let mut x = with_profiles(target(exe, options, d), &cat.config.profiles);
        if name == "deploy" && !app_projects.is_empty() {
            x["dependsOn"] = json!([{ "target": "build", "projects": app_projects }]);
        }
        targets.insert(name.into(), x);
    }
    let mut ws = json!({ "targets": targets, "tags": ["orchestrator:workspace"] });
    let ws_name = if rel == "." {
        "workspace".to_string()
    } else {
        format!("{}-workspace", rel.rsplit('/').next().unwrap_or(rel))
    };
    match existing.get(&ws_name) {
        // The workspace project is defined elsewhere (e.g. tools/workspace-cli/project.json).
        Some(at) => {
            projects.insert(at.clone(), ws);
        }
        None => {
            if !matches!(own_name(root), Some(Some(_)))
                || rel == "." && !root.join("project.json").is_file()
            {
                ws["name"] = json!(ws_name);
            }
            projects.insert(join(rel, ""), ws);
        }
    }
    let mut edges = Vec::new();
    for (name, ds) in compose_deps {
        for d in ds {
            edges.push((name.clone(), d.clone()));
        }
    }
    for (name, cfg) in &cat.config.services {
        for d in cfg.depends_on.iter().flatten() {
            edges.push((name.clone(), d.clone()));
        }
    }
    edges.sort();
    edges.dedup();
    Inferred { projects, edges }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roots_join_relative_to_the_nx_root() {
        assert_eq!(join(".", ""), ".");
        assert_eq!(join(".", "apps/api"), "apps/api");
        assert_eq!(join(".", "./apps/api/"), "apps/api");
        assert_eq!(join("ws", ""), "ws");
        assert_eq!(join("ws", "apps/api"), "ws/apps/api");
    }

    #[test]
    fn targets_carry_our_executor_no_cache_and_a_description() {
        let t = target("start", json!({ "service": "web" }), "Start");
        assert_eq!(t["executor"], "@workspace/orchestrator:start");
        assert_eq!(t["cache"], false);
        assert_eq!(t["options"]["service"], "web");
        assert_eq!(t["metadata"]["description"], "Start");
    }
}
