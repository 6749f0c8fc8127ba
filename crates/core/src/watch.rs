//! The development loop's decisions (`orchestrator watch`): the Nx project graph as the watcher
//! reads it, which files each running service depends on, which services a set of changed files
//! reaches, what one cycle builds and reloads (and what it leaves alone, and why), and the one
//! line that sums a cycle up. Pure: the watcher (runtime/src/watch.rs) feeds it file events,
//! build results and the services' states.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use serde_json::{json, Value};

/// The debounce when the ecosystem names no `watch_delay`: edits an editor saves as several
/// writes (and a `git checkout`) make one cycle.
pub const DEFAULT_DELAY_MS: u64 = 200;

/// One Nx project, as `nx graph --file` describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Project {
    pub name: String,
    /// Relative to the workspace root, without a trailing `/`; `""` is the root project.
    pub root: String,
    /// The projects it depends on (its libraries, its implicit dependencies).
    pub deps: Vec<String>,
    /// Whether it has a `build` target (the cycle runs it through Nx).
    pub build: bool,
    /// Where its `build` writes (`outputs`, resolved): never a reason to reload.
    pub outputs: Vec<String>,
}

/// The Nx project graph.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Graph {
    pub projects: BTreeMap<String, Project>,
}

fn clean(p: &str) -> String {
    let p = p.trim().trim_start_matches("./").trim_end_matches('/');
    if p == "." {
        String::new()
    } else {
        p.to_string()
    }
}

/// Whether `path` is `dir` or under it (both workspace-relative; `""` is the root).
pub fn under(path: &str, dir: &str) -> bool {
    dir.is_empty()
        || path == dir
        || (path.len() > dir.len() && path.starts_with(dir) && path.as_bytes()[dir.len()] == b'/')
}

impl Graph {
    /// Reads the output of `nx graph --file=<f>.json` (`{ graph: { nodes, dependencies } }`).
    pub fn parse(text: &str) -> Result<Graph, String> {
        let v: Value =
            serde_json::from_str(text).map_err(|e| format!("not the JSON nx graph writes: {e}"))?;
        let g = v.get("graph").unwrap_or(&v);
        let nodes = g
            .get("nodes")
            .and_then(Value::as_object)
            .ok_or("no `graph.nodes` in nx graph's output")?;
        let deps = g.get("dependencies").and_then(Value::as_object);
        let mut projects = BTreeMap::new();
        for (name, node) in nodes {
            let data = node.get("data").unwrap_or(node);
            let root = clean(data.get("root").and_then(Value::as_str).unwrap_or(""));
            let build_target = data.get("targets").and_then(|t| t.get("build"));
            let outputs = build_target
                .and_then(|b| b.get("outputs"))
                .and_then(Value::as_array)
                .map(|o| {
                    o.iter()
                        .filter_map(Value::as_str)
                        .filter_map(|s| resolve_output(s, &root, name, build_target))
                        .collect()
                })
                .unwrap_or_default();
            let mut on: Vec<String> = deps
                .and_then(|d| d.get(name))
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(|d| d.get("target").and_then(Value::as_str))
                        .filter(|t| nodes.contains_key(*t) && *t != name)
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default();
            on.sort();
            on.dedup();
            projects.insert(
                name.clone(),
                Project {
                    name: name.clone(),
                    root,
                    deps: on,
                    build: build_target.is_some(),
                    outputs,
                },
            );
        }
        Ok(Graph { projects })
    }

    /// The project a workspace-relative path belongs to: the one whose root is its longest
    /// prefix (the root project only when no other holds it).
    pub fn owner(&self, path: &str) -> Option<&Project> {
        self.projects
            .values()
            .filter(|p| under(path, &p.root))
            .max_by_key(|p| p.root.len())
    }

    /// The project itself and everything it depends on, transitively (each once).
    pub fn closure(&self, name: &str) -> Vec<&Project> {
        self.closure_until(name, &|_| false)
    }

    /// The project itself and what it depends on, transitively, without entering a project
    /// `stop` names (another service: it is watched, built and reloaded as itself).
    pub fn closure_until(&self, name: &str, stop: &dyn Fn(&str) -> bool) -> Vec<&Project> {
        let mut seen = BTreeSet::new();
        let mut stack = vec![name.to_string()];
        let mut out = Vec::new();
        while let Some(n) = stack.pop() {
            if !seen.insert(n.clone()) || (n != name && stop(&n)) {
                continue;
            }
            if let Some(p) = self.projects.get(&n) {
                out.push(p);
                stack.extend(p.deps.iter().rev().cloned());
            }
        }
        out
    }
}

/// `{projectRoot}/dist`, `{workspaceRoot}/dist/{projectRoot}`, `{options.outputPath}`: an
/// output as a workspace-relative path (`None` when it names what the target does not say).
fn resolve_output(s: &str, root: &str, name: &str, target: Option<&Value>) -> Option<String> {
    let mut out = s
        .replace("{workspaceRoot}/", "")
        .replace("{workspaceRoot}", "")
        .replace("{projectRoot}", root)
        .replace("{projectName}", name);
    while let Some(start) = out.find("{options.") {
        let end = out[start..].find('}')? + start;
        let key = &out[start + "{options.".len()..end];
        let value = target?
            .get("options")?
            .get(key)?
            .as_str()?
            .replace("{projectRoot}", root);
        out.replace_range(start..=end, &value);
    }
    if out.contains('{') || out.contains('*') {
        return None;
    }
    let out = clean(&out);
    (!out.is_empty()).then_some(out)
}

/// What the watcher watches for one service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Watched {
    pub service: String,
    /// Its Nx project, when one holds its directory (its `build` runs through Nx).
    pub project: Option<String>,
    /// Workspace-relative directories and files whose changes reach it.
    pub paths: Vec<String>,
    /// The quiet time after the last change before a cycle (`watch_delay`).
    pub delay_ms: u64,
    /// PM2's `ignore_watch`, relative to the app's directory (`cwd`).
    pub ignore: Vec<String>,
    /// Its directory, workspace-relative (`ignore` is relative to it).
    pub cwd: String,
}

/// What a service's ecosystem entry says about watching, in PM2's keys.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WatchKeys {
    /// `watch: false`: not watched. `watch: true` or absent: its project and libraries.
    pub off: bool,
    /// `watch: ["src", "config"]` (or a string): only these, relative to its `cwd`.
    pub paths: Vec<String>,
    pub ignore: Vec<String>,
    pub delay_ms: Option<u64>,
}

impl WatchKeys {
    /// PM2's `watch`, `ignore_watch` and `watch_delay` of an ecosystem entry.
    pub fn from_app(app: &serde_json::Map<String, Value>) -> WatchKeys {
        let list = |v: Option<&Value>| -> Vec<String> {
            match v {
                Some(Value::String(s)) => vec![s.clone()],
                Some(Value::Array(a)) => a
                    .iter()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect(),
                _ => Vec::new(),
            }
        };
        let watch = app.get("watch");
        WatchKeys {
            off: matches!(watch, Some(Value::Bool(false))),
            paths: list(watch),
            ignore: list(app.get("ignore_watch").or_else(|| app.get("ignoreWatch"))),
            delay_ms: app
                .get("watch_delay")
                .and_then(|d| d.as_u64().or_else(|| d.as_str()?.trim().parse().ok())),
        }
    }
}

/// Pure: what to watch for a service whose directory is `cwd` (workspace-relative): the paths
/// its ecosystem entry names, else its Nx project's root and those of every project it depends
/// on (the root project's whole tree only when the service lives at the root), else its
/// directory. The graph is not followed into another service's project (`services`: their
/// names): an app that waits on another talks to it, and is not rebuilt when its code changes.
/// `None` with `watch: false`.
pub fn watched(
    graph: &Graph,
    service: &str,
    cwd: &str,
    keys: &WatchKeys,
    services: &BTreeSet<String>,
) -> Option<Watched> {
    if keys.off {
        return None;
    }
    let cwd = clean(cwd);
    let project = graph
        .owner(&cwd)
        .filter(|p| !p.root.is_empty() || cwd.is_empty());
    let mut paths: Vec<String> = if !keys.paths.is_empty() {
        keys.paths.iter().map(|p| clean(&join(&cwd, p))).collect()
    } else if let Some(p) = project {
        graph
            .closure_until(&p.name, &|n| services.contains(n))
            .into_iter()
            .filter(|q| !q.root.is_empty() || q.name == p.name)
            .map(|q| q.root.clone())
            .collect()
    } else {
        vec![cwd.clone()]
    };
    paths.sort();
    paths.dedup();
    // A path under another one adds nothing.
    let all = paths.clone();
    paths.retain(|p| !all.iter().any(|q| q != p && under(p, q)));
    Some(Watched {
        service: service.to_string(),
        project: project.map(|p| p.name.clone()),
        paths,
        delay_ms: keys.delay_ms.unwrap_or(DEFAULT_DELAY_MS),
        ignore: keys.ignore.clone(),
        cwd,
    })
}

fn join(dir: &str, p: &str) -> String {
    let p = p.trim_start_matches("./");
    if dir.is_empty() || p.starts_with('/') {
        p.to_string()
    } else {
        format!("{dir}/{p}")
    }
}

/// Pure: for each watched service, the changed files (workspace-relative) that reach it; a
/// file the service's own ignore rules leave out (`ignored(service, path)`) does not.
pub fn reach(
    watched: &[Watched],
    changed: &BTreeSet<String>,
    ignored: &dyn Fn(&Watched, &str) -> bool,
) -> BTreeMap<String, Vec<String>> {
    let mut out = BTreeMap::new();
    for w in watched {
        let hits: Vec<String> = changed
            .iter()
            .filter(|f| w.paths.iter().any(|p| under(f, p)))
            .filter(|f| !ignored(w, f))
            .cloned()
            .collect();
        if !hits.is_empty() {
            out.insert(w.service.clone(), hits);
        }
    }
    out
}

/// The quiet time a cycle waits for after the last change: the longest `watch_delay` of the
/// services the changes reach.
pub fn delay(watched: &[Watched], reached: &BTreeMap<String, Vec<String>>) -> u64 {
    watched
        .iter()
        .filter(|w| reached.contains_key(&w.service))
        .map(|w| w.delay_ms)
        .max()
        .unwrap_or(DEFAULT_DELAY_MS)
}

/// Whether a cycle is due: the changes have been quiet for `delay_ms`.
pub fn due(last_change: DateTime<Utc>, delay_ms: u64, now: DateTime<Utc>) -> bool {
    now.signed_duration_since(last_change).num_milliseconds() >= delay_ms as i64
}

/// A dependency's `develop.watch` rule (compose), its path workspace-relative.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DepRule {
    pub service: String,
    pub path: String,
    /// `sync`, `rebuild`, `restart`, `sync+restart` or `sync+exec`.
    pub action: String,
    pub target: Option<String>,
    pub exec: Option<Vec<String>>,
}

/// One file a `sync` copies into a dependency's containers (or removes, when it is gone).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncFile {
    pub service: String,
    /// Workspace-relative.
    pub file: String,
    /// Its path in the container.
    pub dest: String,
}

/// What the changes ask of the dependencies.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DepWork {
    /// Files to copy into (or remove from) running containers, before any restart.
    pub sync: Vec<SyncFile>,
    /// `sync+exec`: commands to run in the service's containers after its files are copied.
    pub exec: Vec<(String, Vec<String>)>,
    /// Services to restart (`restart`, `sync+restart`) or rebuild and recreate (`rebuild`):
    /// both go through a restart, which rebuilds an image whose build context changed.
    pub restart: BTreeMap<String, Vec<String>>,
}

/// Pure: what compose's `develop.watch` rules make of the changed files: for each file, every
/// rule whose path holds it and whose ignore rules (`ignored`) leave it in. A service that is
/// rebuilt or restarted gets no sync of its own (its new container has the files).
pub fn dep_work(
    rules: &[DepRule],
    changed: &BTreeSet<String>,
    ignored: &dyn Fn(&DepRule, &str) -> bool,
) -> DepWork {
    let mut w = DepWork::default();
    let mut execs: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut rebuilt: BTreeSet<String> = BTreeSet::new();
    for f in changed {
        for r in rules.iter().filter(|r| under(f, &r.path) && !ignored(r, f)) {
            if r.action == "rebuild" || r.action.ends_with("restart") {
                w.restart
                    .entry(r.service.clone())
                    .or_default()
                    .push(f.clone());
            }
            if r.action == "rebuild" {
                rebuilt.insert(r.service.clone());
            }
            if let (true, Some(target)) = (r.action.starts_with("sync"), &r.target) {
                let inner = f[r.path.len()..].trim_start_matches('/');
                let dest = if inner.is_empty() {
                    target.clone()
                } else {
                    format!("{}/{inner}", target.trim_end_matches('/'))
                };
                w.sync.push(SyncFile {
                    service: r.service.clone(),
                    file: f.clone(),
                    dest,
                });
            }
            if let (true, Some(cmd)) = (r.action == "sync+exec", &r.exec) {
                execs.insert(r.service.clone(), cmd.clone());
            }
        }
    }
    // A service rebuilt in this cycle gets its files through its new image; one that only
    // restarts (`sync+restart`) gets them copied first, as compose copies and then restarts.
    w.sync.retain(|s| !rebuilt.contains(&s.service));
    w.sync.dedup();
    w.exec = execs
        .into_iter()
        .filter(|(s, _)| !rebuilt.contains(s))
        .collect();
    w
}

/// What one cycle does.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cycle {
    /// The services to reload, in the order a restart plan takes them (it waits on each
    /// service's dependencies).
    pub reload: Vec<String>,
    /// The Nx projects whose `build` runs first.
    pub build: Vec<String>,
    /// Services the changes reach that are left alone, with why.
    pub skipped: Vec<(String, String)>,
}

/// Pure: the cycle for the services the changes reach (`reached`), plus `cascade`
/// (services to reload because a dependency they declare `restart: true` on is reloaded).
/// `running`: the services that run now (a stopped one is not started by a change).
/// `crash_looping`: services the restart policy is backing off or gave up on, or whose last
/// reload never became ready: those are reloaded only when their own source changed (in
/// `reached`), never as a cascade.
pub fn plan(
    graph: &Graph,
    watched: &[Watched],
    reached: &BTreeMap<String, Vec<String>>,
    cascade: &BTreeSet<String>,
    running: &BTreeSet<String>,
    crash_looping: &BTreeSet<String>,
) -> Cycle {
    let mut c = Cycle::default();
    let mut build = BTreeSet::new();
    let names: BTreeSet<&String> = reached.keys().chain(cascade.iter()).collect();
    for name in names {
        if !running.contains(name) {
            c.skipped.push((name.clone(), "not running".into()));
            continue;
        }
        let own = reached.contains_key(name);
        if !own && crash_looping.contains(name) {
            c.skipped.push((
                name.clone(),
                "in a crash loop: reloaded when its own source changes".into(),
            ));
            continue;
        }
        if own {
            if let Some(p) = watched
                .iter()
                .find(|w| &w.service == name)
                .and_then(|w| w.project.as_ref())
                .and_then(|p| graph.projects.get(p))
                .filter(|p| p.build)
            {
                build.insert(p.name.clone());
            }
        }
        c.reload.push(name.clone());
    }
    c.build = build.into_iter().collect();
    c
}

/// How a cycle ended, for its summary line and its events.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outcome {
    pub changed: Vec<String>,
    pub built: Vec<String>,
    pub build_ms: Option<u64>,
    /// The build's error (its last lines), when it failed.
    pub build_error: Option<String>,
    pub reloaded: Vec<String>,
    /// Dependencies whose files were copied into their containers (`develop.watch` sync), with
    /// how many files.
    pub synced: Vec<(String, usize)>,
    /// Services whose reload failed, with why (they keep what ran before, when it could).
    pub failed: Vec<(String, String)>,
    pub skipped: Vec<(String, String)>,
    pub total_ms: u64,
    /// The cycle began again this many times because files changed while it ran.
    pub restarts: u32,
}

fn list(items: &[String], max: usize) -> String {
    let mut s = items
        .iter()
        .take(max)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    if items.len() > max {
        s.push_str(&format!(" and {} more", items.len() - max));
    }
    s
}

fn secs(ms: u64) -> String {
    format!("{:.1} s", ms as f64 / 1000.0)
}

/// Pure: the one line a cycle prints: what changed, what rebuilt, what reloaded, how long.
pub fn summary(o: &Outcome) -> String {
    let n = o.changed.len();
    let mut parts = vec![format!(
        "watch: {n} file{} changed ({})",
        if n == 1 { "" } else { "s" },
        list(&o.changed, 3)
    )];
    if o.restarts > 0 {
        parts.push(format!(
            "restarted {} time{} by newer changes",
            o.restarts,
            if o.restarts == 1 { "" } else { "s" }
        ));
    }
    if let Some(e) = &o.build_error {
        let first = e
            .lines()
            .find(|l| is_error_line(l))
            .or_else(|| e.lines().find(|l| !l.trim().is_empty()))
            .unwrap_or("")
            .trim();
        parts.push(format!(
            "build of {} FAILED ({}): {first}",
            list(&o.built, 5),
            secs(o.build_ms.unwrap_or(0))
        ));
        parts.push("the running version keeps serving".into());
    } else if !o.built.is_empty() {
        parts.push(format!(
            "built {} ({})",
            list(&o.built, 5),
            secs(o.build_ms.unwrap_or(0))
        ));
    }
    if !o.synced.is_empty() {
        let s: Vec<String> = o
            .synced
            .iter()
            .map(|(s, n)| format!("{s} ({n} file{})", if *n == 1 { "" } else { "s" }))
            .collect();
        parts.push(format!("synced {}", list(&s, 5)));
    }
    if !o.reloaded.is_empty() {
        parts.push(format!("reloaded {}", list(&o.reloaded, 5)));
    }
    for (s, why) in &o.failed {
        parts.push(format!("{s} FAILED: {why}"));
    }
    for (s, why) in &o.skipped {
        parts.push(format!("{s} skipped ({why})"));
    }
    if o.reloaded.is_empty()
        && o.synced.is_empty()
        && o.failed.is_empty()
        && o.build_error.is_none()
    {
        parts.push("nothing reloaded".into());
    }
    parts.push(secs(o.total_ms));
    parts.join(" · ")
}

/// Pure: the `events.jsonl` lines a cycle leaves, one per service it reloaded, failed or
/// skipped (the dashboard's events pane shows them).
/// `profiles`: each service's running profile (`default` for one not in it).
pub fn events(
    o: &Outcome,
    now: DateTime<Utc>,
    profiles: &BTreeMap<String, String>,
    default: &str,
) -> Vec<(String, Value)> {
    let time = now.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let changed: Vec<&String> = o.changed.iter().take(20).collect();
    let mut out = Vec::new();
    let mut push = |service: &str, event: &str, extra: Value| {
        let mut e = json!({
            "time": time,
            "service": service,
            "event": event,
            "profile": profiles.get(service).map(String::as_str).unwrap_or(default),
            "changed": changed,
            "files": o.changed.len(),
            "ms": o.total_ms,
        });
        if let (Some(m), Value::Object(x)) = (e.as_object_mut(), extra) {
            m.extend(x);
        }
        out.push((service.to_string(), e));
    };
    // The informative part: `build_error` begins where the error does.
    let tail = o
        .build_error
        .as_deref()
        .map(|err| err.lines().take(12).collect::<Vec<_>>().join("\n"));
    for s in &o.reloaded {
        push(s, "watch_reloaded", json!({ "built": o.built }));
    }
    for (s, n) in &o.synced {
        push(s, "watch_synced", json!({ "synced": n }));
    }
    for (s, why) in &o.failed {
        match (&tail, why.starts_with(BUILD_FAILED)) {
            (Some(t), true) => push(s, "watch_build_failed", json!({ "error": t })),
            _ => push(s, "watch_reload_failed", json!({ "reason": why })),
        }
    }
    for (s, why) in &o.skipped {
        push(s, "watch_skipped", json!({ "reason": why }));
    }
    out
}

/// Pure: what of a failed build's output to show: colours removed, from the first line that
/// reads as an error (`SyntaxError: …`, `error TS2322`, `npm ERR!`) and the three before it,
/// for at most 40 lines, else
/// the last 20 lines.
pub fn build_error(output: &str) -> String {
    let ansi = regex::Regex::new(r"\x1b\[[0-9;?]*[A-Za-z]").expect("a valid pattern");
    let text = ansi.replace_all(output, "");
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim_end)
        .filter(|l| !l.trim().is_empty())
        .collect();
    match lines.iter().position(|l| is_error_line(l)) {
        // With the three lines before it: node's `file:line`, the code and its caret.
        Some(i) => lines[i.saturating_sub(3)..lines.len().min(i + 40)].join("\n"),
        None => lines[lines.len().saturating_sub(20)..].join("\n"),
    }
}

fn is_error_line(l: &str) -> bool {
    static RE: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        regex::Regex::new(r"(?i)(\w*error\b|\bERR!|\bfatal\b)").expect("a valid pattern")
    });
    RE.is_match(l) && !l.trim_start().starts_with("at ")
}

/// Pure: what a `restart` of `set` did, from its exit and its `--json` error (the actionable
/// object: `service`, and a message that lists what else failed and what was not started):
/// `(reloaded, failed with why)`. A service the error does not name was carried out.
pub fn reload_result(
    set: &[String],
    error: Option<&Value>,
) -> (Vec<String>, Vec<(String, String)>) {
    let Some(e) = error else {
        return (set.to_vec(), Vec::new());
    };
    let message = e.get("message").and_then(Value::as_str).unwrap_or("failed");
    let first = message.lines().next().unwrap_or("failed").to_string();
    let mut failed: Vec<(String, String)> = Vec::new();
    let mut fail = |s: &str, why: String| {
        if set.iter().any(|x| x == s) && !failed.iter().any(|(f, _)| f == s) {
            failed.push((s.to_string(), why));
        }
    };
    let named = e.get("service").and_then(Value::as_str);
    if let Some(s) = named {
        fail(s, first.clone());
    }
    for line in message.lines() {
        if let Some(rest) = line.strip_prefix("Also failed: ") {
            for s in rest.split(", ") {
                fail(s.trim(), "failed in the same restart".into());
            }
        }
        if let Some((_, rest)) = line.split_once("did not come up: ") {
            for item in rest.split("), ") {
                if let Some((s, on)) = item.split_once(" (waits on ") {
                    fail(
                        s.trim(),
                        format!("not started: waits on {}", on.trim_end_matches(')')),
                    );
                }
            }
        }
    }
    let carried_out = message.contains("Every other service of the command was carried out");
    if named.is_none() || !carried_out {
        // Not an incomplete restart: nothing is known to have been reloaded.
        for s in set {
            fail(s, first.clone());
        }
    }
    let reloaded = set
        .iter()
        .filter(|s| !failed.iter().any(|(f, _)| f == *s))
        .cloned()
        .collect();
    (reloaded, failed)
}

/// The reason a service is in `Outcome::failed` when its build failed.
pub const BUILD_FAILED: &str = "build failed";

#[cfg(test)]
mod tests;
