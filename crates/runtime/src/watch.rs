//! `watch`: the development loop. It watches the files of every service that runs (its Nx
//! project and the libraries it depends on, from Nx's project graph; or what its ecosystem
//! entry's `watch` names), with the OS's file events and the workspace's `.gitignore`,
//! `.nxignore` and each app's `ignore_watch`. After a quiet moment (the debounce, or the
//! entry's `watch_delay`) one cycle: the `build` targets of the projects that changed, through
//! Nx (its cache and `dependsOn` apply); then one `restart` of the services the changes reach,
//! which reloads cluster apps with zero downtime and takes them in dependency order, each ready
//! before what waits on it goes. One summary line per cycle, and an event per service in its
//! `events.jsonl` (the dashboard's events pane).
//!
//! A change while the build runs stops the build and starts the cycle again with every change
//! so far; a change during the reload waits for it (a half-done make-before-break helps no one)
//! and makes the next cycle at once. A failed build reloads nothing: the running versions keep
//! serving, the build's error is printed, and the services are owed a reload that the next good
//! build pays. The decisions are `orchestrator_core::watch`; this is the I/O around them.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use ignore::gitignore::{Gitignore, GitignoreBuilder};
use notify::{EventKind, RecursiveMode, Watcher};
use orchestrator_core::catalog::{self, Kind};
use orchestrator_core::error::{Error, Result};
use orchestrator_core::watch::{self as decide, DepRule, Graph, Outcome, WatchKeys, Watched};
use tokio::io::AsyncReadExt;
use tokio::sync::mpsc;

use crate::observe::StatusRequest;

/// What `watch` needs: the workspace as `status` reads it, and the CLI (argv: `node`, its bin)
/// whose `restart` a cycle runs, exactly as a user would (its lock, PM2, readiness).
pub struct WatchRequest {
    pub status: StatusRequest,
    pub cli: Vec<String>,
    /// Where the summary lines and the build's errors go (the binding prints them).
    pub report: Arc<dyn Fn(&str) + Send + Sync>,
}

enum Input {
    Fs(notify::Result<notify::Event>),
    Quit,
}

static RUNNING: std::sync::Mutex<Option<mpsc::UnboundedSender<Input>>> =
    std::sync::Mutex::new(None);

/// Ends the running watch after what it is doing (a build is stopped; a reload finishes).
pub fn quit() {
    if let Some(tx) = RUNNING.lock().ok().and_then(|g| g.clone()) {
        let _ = tx.send(Input::Quit);
    }
}

/// How many times in a row newer changes may stop a build and begin the cycle again.
const MAX_RESTARTS: u32 = 3;

/// Directories never watched whatever the ignore files say: dependencies, git, Nx's cache.
const NEVER: [&str; 4] = ["node_modules", ".git", ".nx", ".orchestrator"];

/// Files whose change means the graph or the services may have changed: read again.
fn is_meta(rel: &str) -> bool {
    let base = rel.rsplit('/').next().unwrap_or(rel);
    matches!(
        base,
        "project.json" | "package.json" | "nx.json" | ".gitignore" | ".nxignore"
    ) || base.starts_with("ecosystem.config.")
}

/// The ignore rules: `.gitignore` and `.nxignore` files (each relative to its directory, the
/// deepest that matches decides, as git does), the build outputs and the log directories.
struct Ignores {
    root: PathBuf,
    files: Vec<(PathBuf, Gitignore)>,
    fixed: Vec<PathBuf>,
}

impl Ignores {
    fn new(root: &Path, fixed: Vec<PathBuf>) -> Ignores {
        let mut me = Ignores {
            root: root.to_path_buf(),
            files: Vec::new(),
            fixed,
        };
        me.add_dir(root);
        me
    }

    /// Reads the ignore files of `dir` (once).
    fn add_dir(&mut self, dir: &Path) {
        if self.files.iter().any(|(d, _)| d == dir) {
            return;
        }
        let mut b = GitignoreBuilder::new(dir);
        let mut any = false;
        for name in [".gitignore", ".nxignore"] {
            let f = dir.join(name);
            if f.is_file() {
                any = true;
                if let Some(e) = b.add(&f) {
                    tracing::debug!(file = %f.display(), error = %e, "an ignore rule not read");
                }
            }
        }
        if any {
            if let Ok(gi) = b.build() {
                self.files.push((dir.to_path_buf(), gi));
                self.files.sort_by_key(|(d, _)| d.components().count());
            }
        }
    }

    fn ignored(&self, path: &Path, is_dir: bool) -> bool {
        let Ok(rel) = path.strip_prefix(&self.root) else {
            return true;
        };
        if !is_dir && is_editor_temp(path) {
            return true;
        }
        if rel
            .components()
            .any(|c| NEVER.iter().any(|n| c.as_os_str() == *n))
        {
            return true;
        }
        if self.fixed.iter().any(|f| path.starts_with(f)) {
            return true;
        }
        let mut out = false;
        for (dir, gi) in &self.files {
            if path.starts_with(dir) && path != dir {
                match gi.matched_path_or_any_parents(path, is_dir) {
                    ignore::Match::Ignore(_) => out = true,
                    ignore::Match::Whitelist(_) => out = false,
                    ignore::Match::None => {}
                }
            }
        }
        out
    }
}

/// Files editors write beside the one being saved (vim's swap files and its `4913` probe,
/// emacs's lock and autosave files, JetBrains' safe-write temporaries, backups ending in `~`):
/// never a change of the source, as compose's watch ignores them too.
fn is_editor_temp(path: &Path) -> bool {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    name == "4913"
        || name.ends_with('~')
        || name.ends_with(".swp")
        || name.ends_with(".swx")
        || name.ends_with(".swo")
        || name.starts_with(".#")
        || (name.starts_with('#') && name.ends_with('#'))
        || name.ends_with("___jb_tmp___")
        || name.ends_with("___jb_old___")
}

/// One app's `ignore_watch`, relative to its directory: gitignore-style globs (`node_modules`,
/// `*.log`, `tmp/`), and what reads as a regular expression (`\.git`, `^dist`) as one.
struct AppIgnore {
    globs: Gitignore,
    regexes: Vec<regex::Regex>,
}

fn looks_like_regex(p: &str) -> bool {
    p.contains('\\') || p.starts_with('^') || p.ends_with('$') || p.contains('|') || p.contains('(')
}

impl AppIgnore {
    fn new(root: &Path, w: &Watched) -> AppIgnore {
        let dir = root.join(&w.cwd);
        let mut b = GitignoreBuilder::new(&dir);
        let mut regexes = Vec::new();
        for p in &w.ignore {
            if looks_like_regex(p) {
                match regex::Regex::new(p) {
                    Ok(r) => regexes.push(r),
                    Err(e) => tracing::debug!(pattern = %p, error = %e, "ignore_watch not a regex"),
                }
            } else if let Err(e) = b.add_line(None, p) {
                tracing::debug!(pattern = %p, error = %e, "ignore_watch not a glob");
            }
        }
        AppIgnore {
            globs: b.build().unwrap_or_else(|_| Gitignore::empty()),
            regexes,
        }
    }

    fn ignored(&self, root: &Path, w: &Watched, rel: &str) -> bool {
        let path = root.join(rel);
        let dir = root.join(&w.cwd);
        if path.starts_with(&dir)
            && path != dir
            && self
                .globs
                .matched_path_or_any_parents(&path, false)
                .is_ignore()
        {
            return true;
        }
        let local = path
            .strip_prefix(&dir)
            .map(Path::to_path_buf)
            .unwrap_or(path);
        let local = local.to_string_lossy();
        self.regexes.iter().any(|r| r.is_match(&local))
    }
}

/// One `develop.watch` rule's filters: its `ignore` patterns (relative to its path), its
/// `include` patterns, and the `.dockerignore` of the service's build context (compose applies
/// it to watch rules too).
struct RuleFilter {
    ignore: Gitignore,
    include: Option<Gitignore>,
    context: Option<(PathBuf, crate::build::Ignore)>,
}

impl RuleFilter {
    fn new(
        root: &Path,
        r: &DepRule,
        rule: &orchestrator_core::compose::WatchRule,
        build: Option<&orchestrator_core::compose::Build>,
    ) -> RuleFilter {
        let base = root.join(&r.path);
        let patterns = |list: &[String]| {
            let mut b = GitignoreBuilder::new(&base);
            for p in list {
                let _ = b.add_line(None, p);
            }
            b.build().unwrap_or_else(|_| Gitignore::empty())
        };
        let context = build.filter(|b| b.remote.is_none()).map(|b| {
            let text = std::fs::read_to_string(b.context.join(".dockerignore")).unwrap_or_default();
            (b.context.clone(), crate::build::Ignore::parse(&text))
        });
        RuleFilter {
            ignore: patterns(&rule.ignore),
            include: (!rule.include.is_empty()).then(|| patterns(&rule.include)),
            context,
        }
    }

    fn ignored(&self, root: &Path, rel: &str) -> bool {
        let path = root.join(rel);
        if self
            .ignore
            .matched_path_or_any_parents(&path, false)
            .is_ignore()
        {
            return true;
        }
        if let Some(inc) = &self.include {
            if !inc.matched_path_or_any_parents(&path, false).is_ignore() {
                return true;
            }
        }
        if let Some((ctx, di)) = &self.context {
            if let Ok(inner) = path.strip_prefix(ctx) {
                if di.excludes(&inner.to_string_lossy()) {
                    return true;
                }
            }
        }
        false
    }
}

/// The workspace as the watcher sees it: the graph, what each service watches, the rules.
struct Scope {
    graph: Graph,
    watched: Vec<Watched>,
    app_ignores: BTreeMap<String, AppIgnore>,
    ignores: Ignores,
    /// Services a reload of the key restarts after it (compose `depends_on: {restart: true}`).
    cascades: BTreeMap<String, Vec<String>>,
    /// The dependencies' `develop.watch` rules, and each one's filters (same order).
    dep_rules: Vec<DepRule>,
    rule_filters: Vec<RuleFilter>,
    /// `initial_sync` rules: (service, host path, target), copied in when the watch begins.
    initial: Vec<(String, PathBuf, String)>,
}

impl Scope {
    /// What the changed files reach, each app's own `ignore_watch` applied.
    fn reach(&self, root: &Path, files: &BTreeSet<String>) -> BTreeMap<String, Vec<String>> {
        decide::reach(&self.watched, files, &|w, f| {
            self.app_ignores
                .get(&w.service)
                .is_some_and(|i| i.ignored(root, w, f))
        })
    }

    /// What the changed files ask of the dependencies, each rule's filters applied.
    fn dep_work(&self, root: &Path, files: &BTreeSet<String>) -> decide::DepWork {
        decide::dep_work(&self.dep_rules, files, &|r, f| {
            self.dep_rules
                .iter()
                .position(|x| std::ptr::eq(x, r))
                .is_some_and(|i| self.rule_filters[i].ignored(root, f))
        })
    }
}

/// `nx graph --file`: Nx's own project graph (inferred dependencies included). `None` when
/// the workspace has no Nx (each app then watches its directory and nothing is built).
async fn nx_graph(root: &Path) -> std::result::Result<Option<Graph>, String> {
    let nx = root.join("node_modules/.bin/nx");
    if !nx.exists() {
        return Ok(None);
    }
    let file = std::env::temp_dir().join(format!("orchestrator-graph-{}.json", std::process::id()));
    let out = tokio::process::Command::new(&nx)
        .arg("graph")
        .arg(format!("--file={}", file.display()))
        .current_dir(root)
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output()
        .await
        .map_err(|e| format!("{}: {e}", nx.display()))?;
    let text = std::fs::read_to_string(&file);
    let _ = std::fs::remove_file(&file);
    if !out.status.success() {
        return Err(format!(
            "`nx graph` failed ({}): {}",
            out.status,
            tail(&String::from_utf8_lossy(&out.stderr), 5)
        ));
    }
    let text = text.map_err(|e| format!("{}: {e}", file.display()))?;
    Graph::parse(&text).map(Some)
}

fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

fn rel(root: &Path, p: &Path) -> String {
    p.strip_prefix(root)
        .map(|r| r.to_string_lossy().into_owned())
        .unwrap_or_default()
}

async fn scope(req: &StatusRequest, report: &(dyn Fn(&str) + Send + Sync)) -> Result<Scope> {
    let root = &req.workspace_root;
    let cat = catalog::load(root, &req.ecosystem, &req.ecosystem_file)?;
    let graph = match nx_graph(root).await {
        Ok(Some(g)) => g,
        Ok(None) => {
            report("watch: no Nx in this workspace (node_modules/.bin/nx): each app's directory is watched and nothing is built");
            Graph::default()
        }
        Err(e) => {
            return Err(Error::Usage {
                message: format!("watch reads Nx's project graph, and {e}"),
                remediation:
                    "Run `nx graph --file=/tmp/g.json` to see Nx's error, fix it, then watch again"
                        .into(),
            })
        }
    };
    let mut watched = Vec::new();
    let services: BTreeSet<String> = cat.services.iter().map(|s| s.name.clone()).collect();
    for spec in cat.services.iter().filter(|s| s.kind == Kind::App) {
        let keys = WatchKeys::from_app(&spec.app);
        if let Some(w) =
            decide::watched(&graph, &spec.name, &rel(root, &spec.cwd), &keys, &services)
        {
            watched.push(w);
        }
    }
    let mut fixed: Vec<PathBuf> = graph
        .projects
        .values()
        .flat_map(|p| p.outputs.iter().map(|o| root.join(o)))
        .collect();
    fixed.push(orchestrator_core::layout::logs_root(root));
    fixed.extend(cat.services.iter().map(|s| cat.log_dir(&s.name)));
    let app_ignores = watched
        .iter()
        .map(|w| (w.service.clone(), AppIgnore::new(root, w)))
        .collect();
    let mut cascades: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut dep_rules = Vec::new();
    let mut rule_filters = Vec::new();
    let mut initial = Vec::new();
    if let Some(compose) = &cat.compose {
        for s in &compose.services {
            for d in s.depends_on.iter().filter(|d| d.restart) {
                cascades
                    .entry(d.name.clone())
                    .or_default()
                    .push(s.name.clone());
            }
            if !s.develop.is_empty() && s.build.is_none() {
                report(&format!(
                    "watch: services.{}.develop.watch: the service has no `build:`, so a rebuild is a restart of the same image (as compose watches only services built from local source)",
                    s.name
                ));
            }
            for (i, rule) in s.develop.iter().enumerate() {
                if rule.action == "restart" || rule.action == "sync+restart" {
                    report(&format!(
                        "watch: services.{}.develop.watch[{i}]: `{}` restarts by replacing the container (make-before-break, its image rebuilt when its build context changed), not in place as compose does; the synced files are copied into the new container once it runs",
                        s.name, rule.action
                    ));
                }
                let r = DepRule {
                    service: s.name.clone(),
                    path: rel(root, &rule.path),
                    action: rule.action.clone(),
                    target: rule.target.clone(),
                    exec: rule.exec.clone(),
                };
                if rule.initial_sync && rule.action.starts_with("sync") {
                    if let Some(t) = &rule.target {
                        initial.push((s.name.clone(), rule.path.clone(), t.clone()));
                    }
                }
                rule_filters.push(RuleFilter::new(root, &r, rule, s.build.as_ref()));
                dep_rules.push(r);
            }
        }
    }
    Ok(Scope {
        graph,
        watched,
        app_ignores,
        ignores: Ignores::new(root, fixed),
        cascades,
        dep_rules,
        rule_filters,
        initial,
    })
}

/// The directories under watch, one non-recursive OS watch each (an ignored `dist/` or
/// `node_modules/` costs nothing).
struct Tree {
    watcher: notify::RecommendedWatcher,
    dirs: BTreeSet<PathBuf>,
}

impl Tree {
    /// Watches every directory under `from` that the rules leave in, reading the ignore files it
    /// meets on the way (and those of the directories above it).
    fn add(&mut self, root: &Path, scope: &mut Scope, from: &Path) {
        if from.is_file() {
            if !self.dirs.contains(from)
                && self
                    .watcher
                    .watch(from, RecursiveMode::NonRecursive)
                    .is_ok()
            {
                self.dirs.insert(from.to_path_buf());
            }
            return;
        }
        let mut up = from.parent();
        while let Some(d) = up.filter(|d| d.starts_with(root)) {
            scope.ignores.add_dir(d);
            up = d.parent();
        }
        let mut stack = vec![from.to_path_buf()];
        while let Some(dir) = stack.pop() {
            if (dir != root && scope.ignores.ignored(&dir, true)) || self.dirs.contains(&dir) {
                continue;
            }
            scope.ignores.add_dir(&dir);
            if let Err(e) = self.watcher.watch(&dir, RecursiveMode::NonRecursive) {
                tracing::debug!(dir = %dir.display(), error = %e, "not watched");
                continue;
            }
            self.dirs.insert(dir.clone());
            if let Ok(rd) = std::fs::read_dir(&dir) {
                for e in rd.flatten() {
                    if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                        stack.push(e.path());
                    }
                }
            }
        }
    }

    /// Everything the scope names, afresh: its services' paths, its rules' paths, and the
    /// root's own files (nx.json, the ecosystem file), whose change reads the workspace again.
    fn all(&mut self, root: &Path, scope: &mut Scope) {
        for d in std::mem::take(&mut self.dirs) {
            let _ = self.watcher.unwatch(&d);
        }
        let _ = self.watcher.watch(root, RecursiveMode::NonRecursive);
        let paths: BTreeSet<String> = scope
            .watched
            .iter()
            .flat_map(|w| w.paths.iter().cloned())
            .chain(scope.dep_rules.iter().map(|r| r.path.clone()))
            .collect();
        for p in paths {
            self.add(root, scope, &root.join(p));
        }
    }

    /// Directories that appeared (or came back): watched afresh, and the files already in them —
    /// written before their watch was in place (`mkdir -p a/b && echo > a/b/c.js`) — added to
    /// `pending` as changes.
    fn appeared(
        &mut self,
        root: &Path,
        scope: &mut Scope,
        new_dirs: &mut Vec<PathBuf>,
        pending: &mut BTreeSet<String>,
        last_change: &mut chrono::DateTime<Utc>,
    ) {
        for dir in new_dirs.drain(..) {
            // Watches under a directory that was removed went with it (inotify drops them).
            self.dirs.retain(|d| !d.starts_with(&dir));
            self.add(root, scope, &dir);
            for d in self.dirs.iter().filter(|d| d.starts_with(&dir)) {
                for e in std::fs::read_dir(d).into_iter().flatten().flatten() {
                    let p = e.path();
                    if e.file_type().map(|t| t.is_file()).unwrap_or(false)
                        && !scope.ignores.ignored(&p, false)
                    {
                        pending.insert(rel(root, &p));
                        *last_change = Utc::now();
                    }
                }
            }
        }
    }
}

/// The services as one status look sees them.
#[derive(Default)]
struct States {
    /// Those that run now.
    running: BTreeSet<String>,
    /// Those the restart policy is backing off or gave up on.
    looping: BTreeSet<String>,
    /// Each one's running profile, and the workspace's.
    profiles: BTreeMap<String, String>,
    profile: String,
}

async fn states(req: &StatusRequest) -> States {
    let mut out = States {
        profile: req.profile.clone().unwrap_or_else(|| "development".into()),
        ..Default::default()
    };
    if let Ok(snap) = crate::observe::status(req.clone()).await {
        out.profile = snap.profile;
        for s in snap.services {
            if s.state != "stopped" {
                out.running.insert(s.name.clone());
            }
            if s.state == "backoff" || s.state == "failed" {
                out.looping.insert(s.name.clone());
            }
            if let Some(p) = s.profile {
                out.profiles.insert(s.name, p);
            }
        }
    }
    out
}

/// Copies files into every running container of a dependency (`develop.watch` sync) and runs
/// its `sync+exec` command there. Returns why it could not, if it could not.
async fn sync_into(
    root: &Path,
    service: &str,
    files: &[(PathBuf, String)],
    exec: Option<&[String]>,
) -> std::result::Result<(), String> {
    let engine = crate::docker::Engine::connect()
        .await
        .map_err(|e| e.to_string())?;
    let labels = vec![
        format!(
            "{}={}",
            orchestrator_core::container::LABEL_WORKSPACE,
            root.display()
        ),
        format!("{}={service}", orchestrator_core::container::LABEL_SERVICE),
    ];
    let ids = engine
        .running_with_labels(&labels)
        .await
        .map_err(|e| e.to_string())?;
    if ids.is_empty() {
        return Err("no running container".into());
    }
    for id in ids {
        if !files.is_empty() {
            engine
                .copy_in(&id, files)
                .await
                .map_err(|e| e.to_string())?;
        }
        if let Some(cmd) = exec {
            let (code, out) = engine.exec(&id, cmd).await.map_err(|e| e.to_string())?;
            if code != 0 {
                return Err(format!(
                    "`{}` exited {code}: {}",
                    cmd.join(" "),
                    tail(&out, 3)
                ));
            }
        }
    }
    Ok(())
}

/// How a child process ended: its exit, and its output (stdout and stderr, in order of lines
/// as far as two pipes allow).
struct Ran {
    ok: bool,
    stdout: String,
    stderr: String,
}

/// Runs a command to its end, unless a file event comes first: then the command is killed
/// (its process group: Nx's workers too) and `None` comes back with the events kept.
async fn run_or_interrupt(
    mut cmd: tokio::process::Command,
    rx: &mut mpsc::UnboundedReceiver<Input>,
    interrupt: &mut (dyn FnMut(Input) -> bool + Send),
) -> std::result::Result<Option<Ran>, String> {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    let mut child = cmd.spawn().map_err(|e| e.to_string())?;
    let pid = child.id();
    let mut out = child.stdout.take();
    let mut err = child.stderr.take();
    let read = async {
        let (mut a, mut b) = (Vec::new(), Vec::new());
        let ra = async {
            if let Some(o) = out.as_mut() {
                let _ = o.read_to_end(&mut a).await;
            }
        };
        let rb = async {
            if let Some(e) = err.as_mut() {
                let _ = e.read_to_end(&mut b).await;
            }
        };
        tokio::join!(ra, rb);
        (a, b)
    };
    tokio::pin!(read);
    let mut collected: Option<(Vec<u8>, Vec<u8>)> = None;
    loop {
        tokio::select! {
            r = &mut read, if collected.is_none() => collected = Some(r),
            status = child.wait(), if collected.is_some() => {
                let (a, b) = collected.take().unwrap_or_default();
                return Ok(Some(Ran {
                    ok: status.map(|s| s.success()).unwrap_or(false),
                    stdout: String::from_utf8_lossy(&a).into_owned(),
                    stderr: String::from_utf8_lossy(&b).into_owned(),
                }));
            }
            input = rx.recv() => {
                let Some(input) = input else { continue };
                if interrupt(input) {
                    if let Some(pid) = pid {
                        // SAFETY: kill(2) on the process group this child leads.
                        unsafe { libc::kill(-(pid as i32), libc::SIGTERM) };
                    }
                    let _ = child.kill().await;
                    return Ok(None);
                }
            }
        }
    }
}

/// Runs `watch` until `quit` (or the host's signal) ends it. The services keep running.
pub async fn run(req: WatchRequest) -> Result<()> {
    let root = req.status.workspace_root.clone();
    let report = req.report.clone();
    let (tx, mut rx) = mpsc::unbounded_channel::<Input>();
    if let Ok(mut g) = RUNNING.lock() {
        *g = Some(tx.clone());
    }
    let fs_tx = tx.clone();
    let watcher = notify::recommended_watcher(move |ev| {
        let _ = fs_tx.send(Input::Fs(ev));
    })
    .map_err(|e| Error::Usage {
        message: format!("the OS's file events are not available: {e}"),
        remediation: "On Linux, raise fs.inotify.max_user_instances (sysctl) and watch again"
            .into(),
    })?;
    let mut scope = scope(&req.status, &*report).await?;
    let mut tree = Tree {
        watcher,
        dirs: BTreeSet::new(),
    };
    tree.all(&root, &mut scope);
    for (service, host, target) in scope.initial.clone() {
        match sync_into(&root, &service, &[(host.clone(), target.clone())], None).await {
            Ok(()) => report(&format!(
                "watch: {service}: {} copied to {target} (initial_sync)",
                rel(&root, &host)
            )),
            Err(e) => report(&format!(
                "watch: {service}: initial_sync of {} not done: {e}",
                rel(&root, &host)
            )),
        }
    }
    let mut names: Vec<String> = scope.watched.iter().map(|w| w.service.clone()).collect();
    for r in &scope.dep_rules {
        if !names.contains(&r.service) {
            names.push(r.service.clone());
        }
    }
    report(&format!(
        "watch: watching {} ({} directories); a change is built through Nx and reloads what it reaches, in dependency order. Ctrl-C stops watching; the services keep running.",
        if names.is_empty() { "no app".to_string() } else { names.join(", ") },
        tree.dirs.len()
    ));

    let mut pending: BTreeSet<String> = BTreeSet::new();
    let mut last_change = Utc::now();
    // Services a failed build kept from reloading, and what reached them: the next cycle owes it.
    let mut owed: BTreeMap<String, Vec<String>> = BTreeMap::new();
    // Services whose last reload never became ready: cascades leave them alone.
    let mut broken: BTreeSet<String> = BTreeSet::new();
    let mut restarts = 0u32;
    let mut quit = false;

    // Takes one input into the loop's state: whether it is a change that matters (or quit).
    let take = |input: Input,
                pending: &mut BTreeSet<String>,
                last_change: &mut chrono::DateTime<Utc>,
                scope: &Scope,
                new_dirs: &mut Vec<PathBuf>,
                quit: &mut bool|
     -> bool {
        match input {
            Input::Quit => {
                *quit = true;
                true
            }
            Input::Fs(Err(e)) => {
                tracing::debug!(error = %e, "file event error");
                false
            }
            Input::Fs(Ok(ev)) => {
                let counts = matches!(
                    ev.kind,
                    EventKind::Create(_)
                        | EventKind::Remove(_)
                        | EventKind::Modify(notify::event::ModifyKind::Data(_))
                        | EventKind::Modify(notify::event::ModifyKind::Name(_))
                        | EventKind::Modify(notify::event::ModifyKind::Any)
                        | EventKind::Access(notify::event::AccessKind::Close(
                            notify::event::AccessMode::Write
                        ))
                );
                if !counts {
                    return false;
                }
                let mut any = false;
                for p in ev.paths {
                    let is_dir = p.is_dir();
                    if scope.ignores.ignored(&p, is_dir) {
                        continue;
                    }
                    if is_dir {
                        if matches!(ev.kind, EventKind::Create(_) | EventKind::Modify(_)) {
                            new_dirs.push(p.clone());
                        }
                        continue;
                    }
                    let r = rel(&root, &p);
                    if r.is_empty() {
                        continue;
                    }
                    pending.insert(r);
                    any = true;
                }
                if any {
                    *last_change = Utc::now();
                }
                any
            }
        }
    };

    loop {
        // Wait for a change, then for the quiet time after the last one.
        let mut new_dirs = Vec::new();
        if pending.is_empty() {
            match rx.recv().await {
                Some(i) => {
                    take(
                        i,
                        &mut pending,
                        &mut last_change,
                        &scope,
                        &mut new_dirs,
                        &mut quit,
                    );
                }
                None => break,
            }
        }
        tree.appeared(
            &root,
            &mut scope,
            &mut new_dirs,
            &mut pending,
            &mut last_change,
        );
        if quit {
            break;
        }
        if pending.is_empty() {
            continue;
        }
        let reach_now = scope.reach(&root, &pending);
        let wait = decide::delay(&scope.watched, &reach_now);
        let now = Utc::now();
        if !decide::due(last_change, wait, now) {
            let left = wait as i64 - now.signed_duration_since(last_change).num_milliseconds();
            tokio::select! {
                i = rx.recv() => {
                    if let Some(i) = i {
                        take(i, &mut pending, &mut last_change, &scope, &mut new_dirs, &mut quit);
                    }
                }
                _ = tokio::time::sleep(Duration::from_millis(left.max(1) as u64)) => {}
            }
            tree.appeared(
                &root,
                &mut scope,
                &mut new_dirs,
                &mut pending,
                &mut last_change,
            );
            if quit {
                break;
            }
            continue;
        }

        // One cycle.
        let started = Instant::now();
        let files = std::mem::take(&mut pending);
        if files.iter().any(|f| is_meta(f)) {
            match self::scope(&req.status, &*report).await {
                Ok(s) => {
                    scope = s;
                    tree.all(&root, &mut scope);
                }
                Err(e) => report(&format!(
                    "watch: the workspace could not be read again ({}); watching as before",
                    e.message()
                )),
            }
        }
        let mut reached = scope.reach(&root, &files);
        for (s, f) in std::mem::take(&mut owed) {
            reached.entry(s).or_default().extend(f);
        }
        // compose `develop.watch`: the syncs now; the restarts and rebuilds join the reload.
        let work = scope.dep_work(&root, &files);
        let mut synced = Vec::new();
        let mut sync_failed = Vec::new();
        let mut by_service: BTreeMap<String, Vec<(PathBuf, String)>> = BTreeMap::new();
        let work_files: Vec<String> = work.sync.iter().map(|f| f.file.clone()).collect();
        for f in &work.sync {
            by_service
                .entry(f.service.clone())
                .or_default()
                .push((root.join(&f.file), f.dest.clone()));
        }
        for (service, _) in &work.exec {
            by_service.entry(service.clone()).or_default();
        }
        // Files a restart-type rule copied in: the restart replaces the container, so they are
        // copied again into its successor once it runs.
        let mut resync: BTreeMap<String, Vec<(PathBuf, String)>> = BTreeMap::new();
        for (service, list) in &by_service {
            if work.restart.contains_key(service) && !list.is_empty() {
                resync.insert(service.clone(), list.clone());
            }
        }
        for (service, list) in by_service {
            let exec = work
                .exec
                .iter()
                .find(|(s, _)| *s == service)
                .map(|(_, c)| c.as_slice());
            match sync_into(&root, &service, &list, exec).await {
                Ok(()) => synced.push((service, list.len())),
                Err(e) => sync_failed.push((service, format!("sync: {e}"))),
            }
        }
        for (s, f) in work.restart {
            reached.entry(s).or_default().extend(f);
        }
        // What the changes reach, and what restarts with it (compose `restart: true`).
        let cascade: BTreeSet<String> = reached
            .keys()
            .flat_map(|s| scope.cascades.get(s).cloned().unwrap_or_default())
            .filter(|s| !reached.contains_key(s))
            .collect();
        if reached.is_empty() && cascade.is_empty() && synced.is_empty() && sync_failed.is_empty() {
            tracing::debug!(files = files.len(), "changes reach no service");
            restarts = 0;
            continue;
        }
        let t_states = Instant::now();
        let mut seen = states(&req.status).await;
        tracing::debug!(
            ms = t_states.elapsed().as_millis() as u64,
            "watch: status look"
        );
        seen.looping.extend(broken.iter().cloned());
        let cycle = decide::plan(
            &scope.graph,
            &scope.watched,
            &reached,
            &cascade,
            &seen.running,
            &seen.looping,
        );
        // What changed, as far as this cycle is concerned: the files that reached a service
        // (a file beside the projects, e.g. a log at the root, is not news).
        let mut relevant: BTreeSet<String> = reached.values().flatten().cloned().collect();
        relevant.extend(work_files.iter().cloned());
        relevant.extend(files.iter().filter(|f| is_meta(f)).cloned());
        if relevant.is_empty() {
            relevant = files.clone();
        }
        let mut outcome = Outcome {
            changed: relevant.into_iter().collect(),
            skipped: cycle.skipped.clone(),
            synced,
            failed: sync_failed,
            restarts,
            ..Default::default()
        };

        // The build, through Nx (a change while it runs starts the cycle again).
        if !cycle.build.is_empty() {
            let t = Instant::now();
            let mut cmd = tokio::process::Command::new(root.join("node_modules/.bin/nx"));
            cmd.args(["run-many", "-t", "build", "--outputStyle=static"])
                .arg(format!("--projects={}", cycle.build.join(",")))
                .current_dir(&root);
            let mut more = BTreeSet::new();
            // A change stops the build only when it reaches a service, and only so many times
            // in a row: a build that writes into its own sources (an undeclared output) must
            // not be stopped forever. Past that, it finishes and the changes make the next cycle.
            let may_stop = restarts < MAX_RESTARTS;
            if !may_stop {
                report(&format!(
                    "watch: files kept changing while the build ran ({restarts} restarts): letting this build finish. A build that writes into the watched sources starts the next cycle itself: declare its outputs, or ignore those files"
                ));
            }
            let mut interrupt = |i: Input| {
                let mattered = take(
                    i,
                    &mut more,
                    &mut last_change,
                    &scope,
                    &mut new_dirs,
                    &mut quit,
                );
                if quit {
                    return true;
                }
                mattered
                    && may_stop
                    && (!scope.reach(&root, &more).is_empty()
                        || !scope.dep_work(&root, &more).restart.is_empty())
            };
            let ran = run_or_interrupt(cmd, &mut rx, &mut interrupt).await;
            outcome.built = cycle.build.clone();
            outcome.build_ms = Some(t.elapsed().as_millis() as u64);
            match ran {
                Ok(None) => {
                    // Newer changes: the cycle begins again with all of them.
                    pending = files;
                    pending.extend(more);
                    restarts += 1;
                    if quit {
                        break;
                    }
                    tree.appeared(
                        &root,
                        &mut scope,
                        &mut new_dirs,
                        &mut pending,
                        &mut last_change,
                    );
                    continue;
                }
                Ok(Some(r)) if r.ok => {}
                Ok(Some(r)) => {
                    let text = format!("{}\n{}", r.stdout, r.stderr);
                    outcome.build_error = Some(decide::build_error(&text));
                }
                Err(e) => outcome.build_error = Some(format!("nx could not be run: {e}")),
            }
            pending.extend(more);
        }

        if let Some(err) = &outcome.build_error {
            report(&format!(
                "watch: the build failed; its output ends with:\n{err}"
            ));
            for s in &cycle.reload {
                outcome.failed.push((
                    s.clone(),
                    format!(
                        "{}: the running version keeps serving",
                        decide::BUILD_FAILED
                    ),
                ));
                owed.insert(s.clone(), reached.get(s).cloned().unwrap_or_default());
            }
        } else if !cycle.reload.is_empty() {
            let (program, args) = req.cli.split_first().ok_or_else(|| Error::Usage {
                message: "watch was given no CLI to restart services with".into(),
                remediation: "Run it through `orchestrator watch` or `nx run workspace:watch`"
                    .into(),
            })?;
            let mut cmd = tokio::process::Command::new(program);
            cmd.args(args)
                .arg("restart")
                .args(&cycle.reload)
                .args(["--json", "--fail-fast"])
                .current_dir(&root);
            let t_restart = Instant::now();
            let out = cmd.stdin(Stdio::null()).output().await;
            tracing::debug!(ms = t_restart.elapsed().as_millis() as u64, services = ?cycle.reload, "watch: restart");
            let error = match out {
                Ok(o) if o.status.success() => None,
                Ok(o) => {
                    let text = String::from_utf8_lossy(&o.stdout);
                    // `--json` prints the actionable error as `{"error": {...}}`.
                    Some(
                        text.lines()
                            .rev()
                            .find_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
                            .map(|v| v.get("error").cloned().unwrap_or(v))
                            .filter(|v| v.get("code").is_some())
                            .unwrap_or_else(|| {
                                serde_json::json!({ "message": tail(&String::from_utf8_lossy(&o.stderr), 3) })
                            }),
                    )
                }
                Err(e) => Some(serde_json::json!({ "message": format!("{program}: {e}") })),
            };
            let (ok, failed) = decide::reload_result(&cycle.reload, error.as_ref());
            for s in &ok {
                broken.remove(s);
            }
            for (s, _) in &failed {
                broken.insert(s.clone());
            }
            for s in ok.iter().filter(|s| resync.contains_key(*s)) {
                if let Err(e) = sync_into(&root, s, &resync[s], None).await {
                    outcome
                        .failed
                        .push((s.clone(), format!("sync after the restart: {e}")));
                }
            }
            outcome.reloaded = ok;
            outcome.failed.extend(failed);
        }
        outcome.total_ms = started.elapsed().as_millis() as u64;
        restarts = 0;
        report(&decide::summary(&outcome));
        let now = Utc::now();
        for (service, event) in decide::events(&outcome, now, &seen.profiles, &seen.profile) {
            if let Err(e) = crate::state::append_events(&root, &service, &[event]) {
                tracing::debug!(service = %service, error = %e.message(), "watch event not kept");
            }
        }
        tree.appeared(
            &root,
            &mut scope,
            &mut new_dirs,
            &mut pending,
            &mut last_change,
        );
        if quit {
            break;
        }
    }
    if let Ok(mut g) = RUNNING.lock() {
        *g = None;
    }
    report("watch: stopped watching; the services keep running");
    Ok(())
}
