//! `docker-compose.yml` as `docker compose` reads it on one host, in the stages compose-go has:
//! find the files (main, override, `COMPOSE_FILE`) → parse YAML (anchors, merge keys) →
//! interpolate from the shell, the profile's env file and the project's `.env` → drop `x-*`
//! extensions → `include` → merge the override files → `extends` → normalize every service and
//! resource → cross-check references. Each stage collects its problems instead of stopping: a
//! problem belongs to one service (which alone cannot start) or to the file, and every one is
//! reported with its file, key path and line. What cannot apply on one host is a warning.

pub mod interp;
pub mod merge;
pub mod model;
pub mod service;
pub mod yaml;

#[cfg(test)]
mod conformance;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_yaml_ng::{Mapping, Value};

pub use interp::interpolate;
pub use model::*;

use crate::error::Error;
use yaml::LineIndex;

/// The compose file names compose itself looks for, in its order of preference.
pub const COMPOSE_FILES: &[&str] = &[
    "compose.yaml",
    "compose.yml",
    "docker-compose.yml",
    "docker-compose.yaml",
];

const TOP_LEVEL_KEYS: &[&str] = &[
    "version", "name", "services", "networks", "volumes", "secrets", "configs", "include", "models",
];

/// Where the loader reads files from: the disk, or (tests) a map of paths to texts.
pub trait Files {
    fn read(&self, path: &Path) -> std::io::Result<String>;
    fn is_file(&self, path: &Path) -> bool {
        self.read(path).is_ok()
    }
}

pub struct Disk;

impl Files for Disk {
    fn read(&self, path: &Path) -> std::io::Result<String> {
        std::fs::read_to_string(path)
    }
    fn is_file(&self, path: &Path) -> bool {
        path.is_file()
    }
}

/// Files in memory, by absolute path.
#[derive(Debug, Default, Clone)]
pub struct MemFiles(pub BTreeMap<PathBuf, String>);

impl Files for MemFiles {
    fn read(&self, path: &Path) -> std::io::Result<String> {
        self.0
            .get(path)
            .cloned()
            .ok_or_else(|| std::io::Error::from(std::io::ErrorKind::NotFound))
    }
}

/// The main file and its override files: `COMPOSE_FILE` when set (paths separated by `:`),
/// else the first of [`COMPOSE_FILES`] plus its `.override` sibling.
pub fn find_files(
    fs: &dyn Files,
    root: &Path,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Option<Vec<PathBuf>> {
    if let Some(list) = lookup("COMPOSE_FILE").filter(|l| !l.trim().is_empty()) {
        let sep = lookup("COMPOSE_PATH_SEPARATOR").unwrap_or_else(|| ":".into());
        let files: Vec<PathBuf> = list
            .split(sep.as_str())
            .filter(|f| !f.is_empty())
            .map(|f| root.join(f))
            .collect();
        if !files.is_empty() {
            return Some(files);
        }
    }
    let main = COMPOSE_FILES
        .iter()
        .map(|f| root.join(f))
        .find(|p| fs.is_file(p))?;
    let stem = main
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| n.rsplit_once('.'))
        .map(|(s, _)| s.to_string())
        .unwrap_or_default();
    let mut files = vec![main];
    if let Some(o) = ["yaml", "yml"]
        .iter()
        .map(|ext| root.join(format!("{stem}.override.{ext}")))
        .find(|p| fs.is_file(p))
    {
        files.push(o);
    }
    Some(files)
}

/// The main compose file of a directory, if any.
pub fn main_file(root: &Path) -> Option<PathBuf> {
    COMPOSE_FILES
        .iter()
        .map(|f| root.join(f))
        .find(|p| p.is_file())
}

/// The project's `.env` (beside the main file), read as compose reads it: the shell's
/// variables answer `${VAR}` inside it.
pub fn project_dotenv(
    fs: &dyn Files,
    dir: &Path,
    shell: &dyn Fn(&str) -> Option<String>,
) -> std::result::Result<Vec<(String, String)>, Error> {
    let file = dir.join(".env");
    match fs.read(&file) {
        Ok(text) => crate::envfile::parse_dotenv(&text, &file, shell),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(source) => Err(Error::ReadFile { path: file, source }),
    }
}

pub struct LoadRequest<'a> {
    pub fs: &'a dyn Files,
    /// Where the files are looked for (the workspace root).
    pub root: &'a Path,
    /// The shell's environment (`std::env::var` outside tests).
    pub shell: &'a dyn Fn(&str) -> Option<String>,
    /// The orchestrator profile's env file (`config/env/<profile>.env`), already read.
    pub profile_vars: &'a [(String, String)],
    /// Compose profiles the orchestrator profile enables (nx.json `composeProfiles`).
    pub compose_profiles: &'a [String],
}

/// One file's tree after parsing, interpolation and dropping extensions.
struct Loaded {
    file: PathBuf,
    lines: LineIndex,
    tree: Mapping,
}

struct Loader<'a> {
    fs: &'a dyn Files,
    lookup: &'a dyn Fn(&str) -> Option<String>,
    diags: Vec<Diag>,
    /// Which file (and its line index) each service was defined in first.
    origin: BTreeMap<String, (PathBuf, LineIndex)>,
    main_dir: PathBuf,
}

impl Loader<'_> {
    fn file_diag(
        &mut self,
        sev: Severity,
        file: &Path,
        lines: Option<&LineIndex>,
        key: &str,
        message: String,
        remediation: String,
    ) {
        let service = key
            .strip_prefix("services.")
            .map(|r| r.split(['.', '[']).next().unwrap_or(r).to_string());
        self.diags.push(Diag {
            severity: sev,
            file: file.to_path_buf(),
            line: lines.and_then(|l| l.line(key)),
            key: key.to_string(),
            service,
            message,
            remediation,
            var: None,
        });
    }

    /// Reads, parses and interpolates one file. `None` when it cannot be read or parsed.
    fn read(&mut self, file: &Path) -> Option<Loaded> {
        let text = match self.fs.read(file) {
            Ok(t) => t,
            Err(e) => {
                self.file_diag(
                    Severity::Error,
                    file,
                    None,
                    "",
                    format!("cannot be read: {e}"),
                    format!("Check that {} exists and is readable", file.display()),
                );
                return None;
            }
        };
        self.parse_text(&text, file, &[])
    }

    /// [`Self::read`] with the defaults of an included project's own env files: the project's
    /// variables win, the included one's `.env` (or its `env_file`s) fill in the rest.
    fn read_with_defaults(&mut self, file: &Path, defaults: &[(String, String)]) -> Option<Loaded> {
        let text = match self.fs.read(file) {
            Ok(t) => t,
            Err(_) => return self.read(file),
        };
        self.parse_text(&text, file, defaults)
    }

    fn parse_text(
        &mut self,
        text: &str,
        file: &Path,
        defaults: &[(String, String)],
    ) -> Option<Loaded> {
        let lines = LineIndex::build(text);
        let mut doc = match yaml::parse(text) {
            Ok(v) => v,
            Err((line, message)) => {
                self.diags.push(Diag {
                    severity: Severity::Error,
                    file: file.to_path_buf(),
                    key: String::new(),
                    line,
                    service: None,
                    message,
                    remediation: format!(
                        "Fix the YAML of {}; `docker compose config` shows the same error",
                        file.display()
                    ),
                    var: None,
                });
                return None;
            }
        };
        let mut unset = Vec::new();
        let mut failures = Vec::new();
        let base = self.lookup;
        let lookup = |k: &str| {
            base(k).or_else(|| {
                defaults
                    .iter()
                    .rev()
                    .find(|(n, _)| n == k)
                    .map(|(_, v)| v.clone())
            })
        };
        interp::tree(&mut doc, "", &lookup, &mut unset, &mut failures);
        for f in failures {
            let mut d = Diag {
                severity: Severity::Error,
                file: file.to_path_buf(),
                line: lines.line(&f.path),
                service: f
                    .path
                    .strip_prefix("services.")
                    .map(|r| r.split(['.', '[']).next().unwrap_or(r).to_string()),
                key: f.path.clone(),
                message: if f.var.is_empty() {
                    f.message.clone()
                } else {
                    format!("needs {}, which is not set: {}", f.var, f.message)
                },
                remediation: if f.var.is_empty() {
                    format!("Fix the ${{…}} expression at `{}`", f.path)
                } else {
                    format!(
                        "Set {} in the shell, in config/env/<profile>.env or in the project's .env",
                        f.var
                    )
                },
                var: (!f.var.is_empty()).then(|| f.var.clone()),
            };
            if f.path.starts_with("x-") {
                d.severity = Severity::Warning;
            }
            self.diags.push(d);
        }
        for (var, path) in unset {
            if path.starts_with("x-") || path.contains(".x-") {
                continue;
            }
            self.file_diag(
                Severity::Warning,
                file,
                Some(&lines),
                &path,
                format!("the {var} variable is not set; it is an empty string here (as in docker compose)"),
                format!("Set {var} in the shell, in config/env/<profile>.env or in the project's .env, or give a default: ${{{var}:-value}}"),
            );
        }
        yaml::strip_extensions(&mut doc);
        match doc {
            Value::Mapping(tree) => Some(Loaded {
                file: file.to_path_buf(),
                lines,
                tree,
            }),
            Value::Null => Some(Loaded {
                file: file.to_path_buf(),
                lines,
                tree: Mapping::new(),
            }),
            _ => {
                self.file_diag(
                    Severity::Error,
                    file,
                    None,
                    "",
                    "must be a mapping with `services`".into(),
                    "Start the file with `services:`".into(),
                );
                None
            }
        }
    }

    fn note_origins(&mut self, l: &Loaded) {
        if let Some(Value::Mapping(services)) = l.tree.get("services") {
            for name in services.keys().filter_map(Value::as_str) {
                self.origin
                    .entry(name.to_string())
                    .or_insert_with(|| (l.file.clone(), l.lines.clone()));
            }
        }
    }

    /// `include`: each file (or list of files) is loaded as a project of its own directory and
    /// its resources added; a name defined twice is an error.
    fn includes(&mut self, l: &mut Loaded, depth: usize, seen: &mut Vec<PathBuf>) {
        let Some(inc) = l.tree.remove("include") else {
            return;
        };
        let dir = l.file.parent().unwrap_or(Path::new(".")).to_path_buf();
        let items = match inc {
            Value::Sequence(items) => items,
            Value::Null => Vec::new(),
            other => vec![other],
        };
        for (i, item) in items.iter().enumerate() {
            let key = format!("include[{i}]");
            let (paths, project_dir, env_files) = match item {
                Value::String(p) => (vec![p.clone()], None, Vec::new()),
                Value::Mapping(m) => {
                    let paths = match m.get("path") {
                        Some(Value::Sequence(ps)) => {
                            ps.iter().filter_map(service::scalar).collect()
                        }
                        Some(p) => service::scalar(p).into_iter().collect(),
                        None => Vec::new(),
                    };
                    let env_files: Vec<String> = match m.get("env_file") {
                        Some(Value::Sequence(fs)) => {
                            fs.iter().filter_map(service::scalar).collect()
                        }
                        Some(f) => service::scalar(f).into_iter().collect(),
                        None => Vec::new(),
                    };
                    (
                        paths,
                        m.get("project_directory").and_then(service::scalar),
                        env_files,
                    )
                }
                _ => (Vec::new(), None, Vec::new()),
            };
            if paths.is_empty() {
                self.file_diag(
                    Severity::Error,
                    &l.file,
                    Some(&l.lines),
                    &key,
                    "must be a path or a mapping with `path`".into(),
                    "Write `- path: other/compose.yaml`".into(),
                );
                continue;
            }
            for p in paths {
                let file = service::clean(&dir.join(&p));
                if seen.contains(&file) || depth > 16 {
                    self.file_diag(
                        Severity::Error,
                        &l.file,
                        Some(&l.lines),
                        &key,
                        format!("include cycle through {}", file.display()),
                        "Remove the include that leads back to this file".into(),
                    );
                    continue;
                }
                if !self.fs.is_file(&file) {
                    self.file_diag(
                        Severity::Error,
                        &l.file,
                        Some(&l.lines),
                        &key,
                        format!("includes {}, which does not exist", file.display()),
                        "Fix the path (relative to this file)".into(),
                    );
                    continue;
                }
                // Its own defaults: its `env_file`s, else the `.env` of its project directory
                // (the including project's variables win, as the specification says).
                let own_dir = project_dir
                    .as_ref()
                    .map(|d| service::clean(&dir.join(d)))
                    .unwrap_or_else(|| file.parent().unwrap_or(Path::new(".")).to_path_buf());
                let candidates: Vec<PathBuf> = if env_files.is_empty() {
                    vec![own_dir.join(".env")]
                } else {
                    env_files
                        .iter()
                        .map(|f| service::clean(&dir.join(f)))
                        .collect()
                };
                let mut defaults = Vec::new();
                for f in candidates {
                    if let Ok(text) = self.fs.read(&f) {
                        match crate::envfile::parse_dotenv(&text, &f, self.lookup) {
                            Ok(vars) => defaults.extend(vars),
                            Err(e) => self.file_diag(
                                Severity::Error,
                                &f,
                                None,
                                "",
                                e.message(),
                                "Fix the dotenv file (NAME=value per line)".into(),
                            ),
                        }
                    } else if !env_files.is_empty() {
                        self.file_diag(
                            Severity::Error,
                            &l.file,
                            Some(&l.lines),
                            &format!("{key}.env_file"),
                            format!("{} does not exist", f.display()),
                            "Fix the path (relative to this file)".into(),
                        );
                    }
                }
                let Some(mut inc) = self.read_with_defaults(&file, &defaults) else {
                    continue;
                };
                seen.push(file.clone());
                self.includes(&mut inc, depth + 1, seen);
                seen.pop();
                let inc_dir = project_dir
                    .as_ref()
                    .map(|d| service::clean(&dir.join(d)))
                    .unwrap_or_else(|| file.parent().unwrap_or(Path::new(".")).to_path_buf());
                rebase_tree(&mut inc.tree, &inc_dir);
                self.note_origins(&inc);
                for section in ["services", "volumes", "networks", "secrets", "configs"] {
                    let Some(Value::Mapping(add)) = inc.tree.remove(section) else {
                        continue;
                    };
                    let target = l
                        .tree
                        .entry(Value::from(section))
                        .or_insert_with(|| Value::Mapping(Mapping::new()));
                    if !target.is_mapping() {
                        *target = Value::Mapping(Mapping::new());
                    }
                    let Value::Mapping(t) = target else {
                        unreachable!()
                    };
                    for (k, v) in add {
                        if let Some(own) = t.get(&k) {
                            // The specification: a warning, and no merge (this file's wins).
                            if *own != v {
                                let name = k.as_str().unwrap_or("?").to_string();
                                self.file_diag(
                                    Severity::Warning,
                                    &l.file,
                                    Some(&l.lines),
                                    &format!("{section}.{name}"),
                                    format!(
                                        "is defined here and in the included {}; this definition is used",
                                        file.display()
                                    ),
                                    "Rename one of them, or extend the included one with `extends`"
                                        .into(),
                                );
                            }
                        } else {
                            t.insert(k, v);
                        }
                    }
                }
            }
        }
    }

    /// `extends` of every service, recursively, across files.
    fn extends(&mut self, tree: &mut Mapping, file: &Path, lines: &LineIndex) {
        let Some(Value::Mapping(services)) = tree.get("services").cloned() else {
            return;
        };
        let mut out = Mapping::new();
        for (k, v) in &services {
            let name = k.as_str().unwrap_or("?").to_string();
            let resolved = match v {
                Value::Mapping(m) => Value::Mapping(self.resolve_extends(
                    &name,
                    m.clone(),
                    &services,
                    file,
                    lines,
                    &mut vec![(file.to_path_buf(), name.clone())],
                )),
                other => other.clone(),
            };
            out.insert(k.clone(), resolved);
        }
        tree.insert("services".into(), Value::Mapping(out));
    }

    fn resolve_extends(
        &mut self,
        name: &str,
        mut svc: Mapping,
        siblings: &Mapping,
        file: &Path,
        lines: &LineIndex,
        chain: &mut Vec<(PathBuf, String)>,
    ) -> Mapping {
        let Some(ext) = svc.remove("extends") else {
            return svc;
        };
        let key = format!("services.{name}.extends");
        let (base_name, base_file) = match &ext {
            Value::String(s) => (s.clone(), None),
            Value::Mapping(m) => (
                m.get("service")
                    .and_then(service::scalar)
                    .unwrap_or_default(),
                m.get("file").and_then(service::scalar),
            ),
            _ => (String::new(), None),
        };
        if base_name.is_empty() {
            self.file_diag(
                Severity::Error,
                file,
                Some(lines),
                &key,
                "needs `service`".into(),
                "Write `extends: {service: base}` or `extends: {file: common.yml, service: base}`"
                    .into(),
            );
            return svc;
        }
        let (base_tree_services, base_path, base_lines) = match &base_file {
            None => (siblings.clone(), file.to_path_buf(), lines.clone()),
            Some(f) => {
                // Relative to the file that says `extends` (the main file's directory for its
                // own services, as the specification says; another file's for its services).
                let from = file.parent().unwrap_or(&self.main_dir);
                let path = service::clean(&from.join(f));
                let readable = self.fs.is_file(&path);
                let Some(l) = readable.then(|| self.read(&path)).flatten() else {
                    self.file_diag(
                        Severity::Error,
                        file,
                        Some(lines),
                        &format!("{key}.file"),
                        if readable {
                            format!(
                                "{} cannot be loaded (its problems are listed too)",
                                path.display()
                            )
                        } else {
                            format!("names {}, which does not exist", path.display())
                        },
                        "Check the path (relative to the file that says `extends`)".into(),
                    );
                    return svc;
                };
                let mut t = l.tree;
                rebase_tree(&mut t, path.parent().unwrap_or(Path::new(".")));
                match t.get("services") {
                    Some(Value::Mapping(s)) => (s.clone(), path, l.lines),
                    _ => (Mapping::new(), path, l.lines),
                }
            }
        };
        if chain
            .iter()
            .any(|(f, n)| *f == base_path && *n == base_name)
        {
            let cycle: Vec<String> = chain
                .iter()
                .map(|(_, n)| n.clone())
                .chain([base_name.clone()])
                .collect();
            self.file_diag(
                Severity::Error,
                file,
                Some(lines),
                &key,
                format!("extends cycle: {}", cycle.join(" → ")),
                "Remove one of the extends".into(),
            );
            return svc;
        }
        let Some(Value::Mapping(base)) = base_tree_services.get(base_name.as_str()).cloned() else {
            self.file_diag(
                Severity::Error,
                file,
                Some(lines),
                &key,
                format!(
                    "names service \"{base_name}\", which {} does not define",
                    base_path.display()
                ),
                "Name a service of that file".into(),
            );
            return svc;
        };
        chain.push((base_path.clone(), base_name.clone()));
        let base = self.resolve_extends(
            &base_name,
            base,
            &base_tree_services,
            &base_path,
            &base_lines,
            chain,
        );
        chain.pop();
        if let (Some(Value::Mapping(h)), Some(Value::Mapping(bh))) =
            (svc.get("healthcheck"), base.get("healthcheck"))
        {
            let disables = |m: &Mapping| matches!(m.get("disable"), Some(Value::Bool(true)));
            if disables(h) && !disables(bh) {
                self.file_diag(
                    Severity::Error,
                    file,
                    Some(lines),
                    &format!("services.{name}.healthcheck.disable"),
                    "cannot disable a healthcheck the extended service enables".into(),
                    "Use `healthcheck: !reset {}` or `test: [\"NONE\"]`".into(),
                );
            }
        }
        svc = merge::merge_service(base, svc);
        svc
    }
}

/// Relative paths of a tree loaded from another directory, made absolute against `dir`: build
/// contexts, env and label files, bind sources, secret and config files.
fn rebase_tree(tree: &mut Mapping, dir: &Path) {
    let abs = |p: &str| -> String {
        if p.starts_with('/') || p.starts_with('~') || p.contains("://") {
            p.to_string()
        } else {
            service::clean(&dir.join(p)).display().to_string()
        }
    };
    if let Some(Value::Mapping(services)) = tree.get_mut("services") {
        for (_, s) in services.iter_mut() {
            let Value::Mapping(s) = s else { continue };
            match s.get_mut("build") {
                Some(Value::String(c)) => *c = abs(c),
                Some(Value::Mapping(b)) => {
                    let c = b
                        .get("context")
                        .and_then(service::scalar)
                        .unwrap_or_else(|| ".".into());
                    b.insert("context".into(), Value::from(abs(&c)));
                }
                _ => {}
            }
            for k in ["env_file", "label_file"] {
                match s.get_mut(k) {
                    Some(Value::String(f)) => *f = abs(f),
                    Some(Value::Sequence(items)) => {
                        for i in items.iter_mut() {
                            match i {
                                Value::String(f) => *f = abs(f),
                                Value::Mapping(m) => {
                                    if let Some(p) = m.get("path").and_then(service::scalar) {
                                        m.insert("path".into(), Value::from(abs(&p)));
                                    }
                                }
                                _ => {}
                            }
                        }
                    }
                    _ => {}
                }
            }
            if let Some(Value::Sequence(vols)) = s.get_mut("volumes") {
                for v in vols.iter_mut() {
                    match v {
                        Value::String(spec) => {
                            if let Some((src, rest)) = spec.split_once(':') {
                                if src.starts_with('.') {
                                    *spec = format!("{}:{rest}", abs(src));
                                }
                            }
                        }
                        Value::Mapping(m)
                            if m.get("type").and_then(service::scalar).as_deref()
                                == Some("bind") =>
                        {
                            if let Some(src) = m.get("source").and_then(service::scalar) {
                                m.insert("source".into(), Value::from(abs(&src)));
                            }
                        }
                        _ => {}
                    }
                }
            }
        }
    }
    for section in ["secrets", "configs"] {
        if let Some(Value::Mapping(defs)) = tree.get_mut(section) {
            for (_, d) in defs.iter_mut() {
                if let Value::Mapping(d) = d {
                    if let Some(f) = d.get("file").and_then(service::scalar) {
                        d.insert("file".into(), Value::from(abs(&f)));
                    }
                }
            }
        }
    }
}

fn kv(v: Option<&Value>) -> BTreeMap<String, String> {
    v.and_then(merge::key_value_mapping)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| {
                    Some((service::scalar(k)?, service::scalar(v).unwrap_or_default()))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// A top-level volume's or network's `external` (`true`, or the older `external: {name}`) and
/// its engine-side `name`.
fn external_and_name(m: &Mapping) -> (bool, Option<String>) {
    let external = flag(m, "external") || matches!(m.get("external"), Some(Value::Mapping(_)));
    let name = m
        .get("name")
        .and_then(service::scalar)
        .or_else(|| match m.get("external") {
            Some(Value::Mapping(e)) => e.get("name").and_then(service::scalar),
            _ => None,
        });
    (external, name)
}

fn flag(m: &Mapping, k: &str) -> bool {
    matches!(m.get(k), Some(Value::Bool(true)))
        || matches!(m.get(k).and_then(service::scalar).as_deref(), Some("true"))
}

/// Loads the workspace's compose project. `None` when it has no compose file.
pub fn load(req: &LoadRequest) -> Option<ComposeFile> {
    let pre = |k: &str| -> Option<String> {
        (req.shell)(k).or_else(|| {
            req.profile_vars
                .iter()
                .rev()
                .find(|(n, _)| n == k)
                .map(|(_, v)| v.clone())
        })
    };
    let files = find_files(req.fs, req.root, &pre)?;
    let main = files[0].clone();
    let dir = main.parent().unwrap_or(req.root).to_path_buf();
    let mut diags = Vec::new();
    let dotenv = match project_dotenv(req.fs, &dir, req.shell) {
        Ok(v) => v,
        Err(e) => {
            let (file, key, message) = match &e {
                Error::InvalidConfig { file, key, message } => {
                    (file.clone(), key.clone(), message.clone())
                }
                other => (dir.join(".env"), String::new(), other.message()),
            };
            diags.push(Diag {
                severity: Severity::Error,
                line: key.strip_prefix("line ").and_then(|n| n.parse().ok()),
                file,
                key,
                service: None,
                message,
                remediation: "Fix the project's .env (dotenv: NAME=value per line)".into(),
                var: None,
            });
            Vec::new()
        }
    };
    // compose's order: the shell, then (ours) the profile's env file, then the project's .env.
    let lookup = |k: &str| -> Option<String> {
        pre(k).or_else(|| {
            dotenv
                .iter()
                .rev()
                .find(|(n, _)| n == k)
                .map(|(_, v)| v.clone())
        })
    };
    let mut l = Loader {
        fs: req.fs,
        lookup: &lookup,
        diags,
        origin: BTreeMap::new(),
        main_dir: dir.clone(),
    };
    let mut out = ComposeFile {
        file: main.clone(),
        dir: dir.clone(),
        ..Default::default()
    };
    let Some(mut first) = l.read(&main) else {
        out.diags = l.diags;
        return Some(out);
    };
    l.note_origins(&first);
    l.includes(&mut first, 0, &mut vec![main.clone()]);
    let main_lines = first.lines.clone();
    let mut tree = first.tree;
    for f in &files[1..] {
        if let Some(mut o) = l.read(f) {
            l.note_origins(&o);
            l.includes(&mut o, 0, &mut vec![f.clone()]);
            tree = merge::merge_files(tree, o.tree);
        }
    }
    l.extends(&mut tree, &main, &main_lines);
    let mut tree_v = Value::Mapping(tree);
    yaml::drop_tags(&mut tree_v);
    let Value::Mapping(tree) = tree_v else {
        unreachable!()
    };

    for k in tree.keys() {
        match k.as_str() {
            Some("models") => l.file_diag(
                Severity::Warning,
                &main,
                Some(&main_lines),
                "models",
                "`models` (AI models) are not provided".into(),
                "Run model services outside the orchestrator".into(),
            ),
            Some(key) if TOP_LEVEL_KEYS.contains(&key) => {}
            Some(key) => l.file_diag(Severity::Error, &main, Some(&main_lines), key, "is not a top-level key of the compose specification (services, networks, volumes, secrets, configs, include, name, x-…)".into(), format!("Remove `{key}`, or rename it `x-{key}` to keep it as an extension")),
            None => {}
        }
    }
    out.name = tree.get("name").and_then(service::scalar);
    // Top-level resources.
    let section = |k: &str| match tree.get(k) {
        Some(Value::Mapping(m)) => m.clone(),
        _ => Mapping::new(),
    };
    for (k, v) in section("volumes") {
        let Some(name) = service::scalar(&k) else {
            continue;
        };
        let m = match v {
            Value::Mapping(m) => m,
            _ => Mapping::new(),
        };
        let (external, explicit) = external_and_name(&m);
        out.volumes.insert(
            name,
            VolumeDef {
                name: explicit,
                external,
                driver: m.get("driver").and_then(service::scalar),
                driver_opts: kv(m.get("driver_opts")),
                labels: kv(m.get("labels")),
            },
        );
    }
    for (k, v) in section("networks") {
        let Some(name) = service::scalar(&k) else {
            continue;
        };
        let m = match v {
            Value::Mapping(m) => m,
            _ => Mapping::new(),
        };
        let mut ipam = Vec::new();
        let mut ipam_driver = None;
        if let Some(Value::Mapping(i)) = m.get("ipam") {
            ipam_driver = i.get("driver").and_then(service::scalar);
            if let Some(Value::Sequence(cfgs)) = i.get("config") {
                for c in cfgs {
                    if let Value::Mapping(c) = c {
                        ipam.push(IpamPool {
                            subnet: c.get("subnet").and_then(service::scalar),
                            gateway: c.get("gateway").and_then(service::scalar),
                            ip_range: c.get("ip_range").and_then(service::scalar),
                        });
                    }
                }
            }
        }
        let (external, explicit) = external_and_name(&m);
        out.networks.insert(
            name,
            NetworkDef {
                name: explicit,
                external,
                driver: m.get("driver").and_then(service::scalar),
                driver_opts: kv(m.get("driver_opts")),
                internal: flag(&m, "internal"),
                attachable: flag(&m, "attachable"),
                enable_ipv6: flag(&m, "enable_ipv6"),
                labels: kv(m.get("labels")),
                ipam_driver,
                ipam,
            },
        );
    }
    for (sec, is_secret) in [("secrets", true), ("configs", false)] {
        for (k, v) in section(sec) {
            let Some(name) = service::scalar(&k) else {
                continue;
            };
            let m = match v {
                Value::Mapping(m) => m,
                _ => Mapping::new(),
            };
            let key = format!("{sec}.{name}");
            let mut def = FileDef {
                external: flag(&m, "external"),
                ..Default::default()
            };
            if let Some(f) = m.get("file").and_then(service::scalar) {
                def.file = Some(service::clean(&dir.join(f)));
            } else if let Some(var) = m.get("environment").and_then(service::scalar) {
                match lookup(&var) {
                    Some(val) => def.content = Some(val),
                    None => l.file_diag(Severity::Error, &main, Some(&main_lines), &format!("{key}.environment"), format!("names {var}, which is not set"), format!("Set {var} in the shell, config/env/<profile>.env or the project's .env")),
                }
            } else if let Some(c) = m
                .get("content")
                .and_then(service::scalar)
                .filter(|_| !is_secret)
            {
                def.content = Some(c);
            } else if !def.external {
                l.file_diag(
                    Severity::Error,
                    &main,
                    Some(&main_lines),
                    &key,
                    format!(
                        "needs `file` or `environment`{}",
                        if is_secret { "" } else { " or `content`" }
                    ),
                    "Point it at a file: `file: ./secret.txt`".into(),
                );
            }
            if def.external {
                l.file_diag(
                    Severity::Warning,
                    &main,
                    Some(&main_lines),
                    &key,
                    format!("external {sec} live in swarm; services using it start without it"),
                    format!("Use `file:` for {sec} on one host"),
                );
            }
            if is_secret {
                out.secrets.insert(name, def);
            } else {
                out.configs.insert(name, def);
            }
        }
    }

    // Services.
    let services = match tree.get("services") {
        Some(Value::Mapping(m)) => m.clone(),
        None | Some(Value::Null) => Mapping::new(),
        Some(_) => {
            l.file_diag(
                Severity::Error,
                &main,
                Some(&main_lines),
                "services",
                "must be a mapping of service definitions".into(),
                "Write `services:` followed by one mapping per service".into(),
            );
            Mapping::new()
        }
    };
    let mut diags = std::mem::take(&mut l.diags);
    for (k, v) in &services {
        let Some(name) = service::scalar(k) else {
            continue;
        };
        out.names.push(name.clone());
        let (file, lines) = l
            .origin
            .get(&name)
            .cloned()
            .unwrap_or_else(|| (main.clone(), main_lines.clone()));
        if !crate::names::is_valid_name(&name) {
            diags.push(Diag { severity: Severity::Error, line: lines.line(&format!("services.{name}")), key: format!("services.{name}"), file, service: Some(name.clone()), message: "is not a service name the orchestrator can use (letters, digits, '.', '_', '-', at most 64)".into(), remediation: "Rename the service".into(), var: None });
            continue;
        }
        let empty = Mapping::new();
        let m = match v {
            Value::Mapping(m) => m,
            // `name:` with nothing under it is an empty definition (which then lacks an image).
            Value::Null => &empty,
            _ => {
                diags.push(Diag {
                    severity: Severity::Error,
                    line: lines.line(&format!("services.{name}")),
                    key: format!("services.{name}"),
                    file,
                    service: Some(name.clone()),
                    message: "must be a mapping".into(),
                    remediation: "Give the service at least `image:`".into(),
                    var: None,
                });
                continue;
            }
        };
        let mut c = service::Ctx {
            file: &file,
            dir: &dir,
            lines: &lines,
            service: &name,
            diags: &mut diags,
            lookup: &lookup,
        };
        let s = service::normalize(&mut c, m);
        out.services.push(s);
    }
    // compose profiles: COMPOSE_PROFILES, then the plugin's per-profile list.
    out.active_profiles = lookup("COMPOSE_PROFILES")
        .map(|p| {
            p.split(',')
                .map(|x| x.trim().to_string())
                .filter(|x| !x.is_empty())
                .collect()
        })
        .unwrap_or_default();
    for p in req.compose_profiles {
        if !out.active_profiles.contains(p) {
            out.active_profiles.push(p.clone());
        }
    }
    cross_check(&mut out, &mut diags, &main, &main_lines);
    // Services with an error are not in `services` (they cannot start); `names` keeps them.
    let broken: Vec<String> = diags
        .iter()
        .filter(|d| d.is_error())
        .filter_map(|d| d.service.clone())
        .collect();
    out.services.retain(|s| !broken.contains(&s.name));
    out.diags = diags;
    Some(out)
}

/// References between services and resources: `depends_on`, named volumes, networks, secrets,
/// configs, `network_mode: service:…`, `extends` cycles in `depends_on`.
fn cross_check(out: &mut ComposeFile, diags: &mut Vec<Diag>, file: &Path, lines: &LineIndex) {
    let names = out.names.clone();
    let mut push =
        |sev: Severity, service: &str, key: String, message: String, remediation: String| {
            diags.push(Diag {
                severity: sev,
                file: file.to_path_buf(),
                line: lines.line(&key),
                key,
                service: Some(service.to_string()),
                message,
                remediation,
                var: None,
            });
        };
    let volumes = out.volumes.clone();
    let networks = out.networks.clone();
    for s in out.services.iter_mut() {
        let n = s.name.clone();
        s.depends_on.retain(|d| {
            if names.contains(&d.name) && d.name != n {
                return true;
            }
            let key = format!("services.{n}.depends_on.{}", d.name);
            if d.required {
                push(
                    Severity::Error,
                    &n,
                    key,
                    format!(
                        "names \"{}\", which is not another service of this project",
                        d.name
                    ),
                    "Name a service of the compose file, or add `required: false`".into(),
                );
            } else {
                push(
                    Severity::Warning,
                    &n,
                    key,
                    format!(
                        "optional dependency \"{}\" is not defined; it is skipped",
                        d.name
                    ),
                    "Nothing to do if that is expected".into(),
                );
            }
            false
        });
        for (i, m) in s.volumes.iter().enumerate() {
            if m.kind == MountKind::Volume {
                if let Some(v) = &m.source {
                    if !volumes.contains_key(v) {
                        push(Severity::Error, &n, format!("services.{n}.volumes[{i}]"), format!("named volume \"{v}\" is not declared under top-level `volumes`"), format!("Add `volumes: {{ {v}: {{}} }}` at the top level, or use a path (./{v}) for a bind mount"));
                    }
                }
            }
        }
        for a in &s.networks {
            if a.key != "default" && !networks.contains_key(&a.key) {
                push(
                    Severity::Error,
                    &n,
                    format!("services.{n}.networks.{}", a.key),
                    format!(
                        "network \"{}\" is not declared under top-level `networks`",
                        a.key
                    ),
                    format!("Add `networks: {{ {}: {{}} }}` at the top level", a.key),
                );
            }
        }
        for (sec, list, defs) in [
            ("secrets", &s.secrets, &out.secrets),
            ("configs", &s.configs, &out.configs),
        ] {
            for (i, f) in list.iter().enumerate() {
                if !defs.contains_key(&f.source) {
                    push(
                        Severity::Error,
                        &n,
                        format!("services.{n}.{sec}[{i}]"),
                        format!(
                            "{} \"{}\" is not declared under top-level `{sec}`",
                            &sec[..sec.len() - 1],
                            f.source
                        ),
                        format!(
                            "Declare it: `{sec}: {{ {}: {{ file: ./{} }} }}`",
                            f.source, f.source
                        ),
                    );
                }
            }
        }
        for (k, v) in [
            ("network_mode", s.network_mode.clone()),
            ("pid", s.engine.pid.clone()),
            ("ipc", s.engine.ipc.clone()),
        ] {
            if let Some(other) = v.as_deref().and_then(|x| x.strip_prefix("service:")) {
                if !names.contains(&other.to_string()) {
                    push(
                        Severity::Error,
                        &n,
                        format!("services.{n}.{k}"),
                        format!("names service \"{other}\", which this project does not define"),
                        "Name a service of the compose file".into(),
                    );
                }
            }
        }
        if s.replicas > 1 && s.container_name.is_some() {
            push(
                Severity::Error,
                &n,
                format!("services.{n}.container_name"),
                "a fixed container_name cannot have more than one replica".into(),
                "Remove container_name or set replicas to 1".into(),
            );
        }
    }
    // Dependency cycles.
    let graph: BTreeMap<String, Vec<String>> = out
        .services
        .iter()
        .map(|s| {
            (
                s.name.clone(),
                s.depends_on.iter().map(|d| d.name.clone()).collect(),
            )
        })
        .collect();
    fn visit(
        n: &str,
        g: &BTreeMap<String, Vec<String>>,
        stack: &mut Vec<String>,
        done: &mut Vec<String>,
        cycles: &mut Vec<Vec<String>>,
    ) {
        if done.iter().any(|d| d == n) {
            return;
        }
        if let Some(p) = stack.iter().position(|s| s == n) {
            let mut c = stack[p..].to_vec();
            c.push(n.to_string());
            cycles.push(c);
            return;
        }
        stack.push(n.to_string());
        for d in g.get(n).into_iter().flatten() {
            visit(d, g, stack, done, cycles);
        }
        stack.pop();
        done.push(n.to_string());
    }
    let mut cycles = Vec::new();
    let mut done = Vec::new();
    for n in graph.keys() {
        visit(n, &graph, &mut Vec::new(), &mut done, &mut cycles);
    }
    for c in cycles {
        let first = c[0].clone();
        diags.push(Diag {
            severity: Severity::Error,
            file: file.to_path_buf(),
            line: lines.line(&format!("services.{first}.depends_on")),
            key: format!("services.{first}.depends_on"),
            service: Some(first.clone()),
            message: format!("dependency cycle: {}", c.join(" → ")),
            remediation: "Remove one depends_on of the cycle".into(),
            var: None,
        });
    }
    // A service depending on a broken one cannot start either.
    loop {
        let broken: Vec<String> = diags
            .iter()
            .filter(|d| d.is_error())
            .filter_map(|d| d.service.clone())
            .collect();
        let mut added = false;
        for s in &out.services {
            if broken.contains(&s.name) {
                continue;
            }
            if let Some(d) = s
                .depends_on
                .iter()
                .find(|d| d.required && broken.contains(&d.name))
            {
                diags.push(Diag {
                    severity: Severity::Error,
                    file: file.to_path_buf(),
                    line: lines.line(&format!("services.{}.depends_on", s.name)),
                    key: format!("services.{}.depends_on.{}", s.name, d.name),
                    service: Some(s.name.clone()),
                    message: format!("depends on \"{}\", which has errors of its own", d.name),
                    remediation: format!("Fix \"{}\" first", d.name),
                    var: None,
                });
                added = true;
            }
        }
        if !added {
            break;
        }
    }
}

/// The error that stops `name` from starting, if any: every one of its problems at once.
pub fn service_error(c: &ComposeFile, name: &str) -> Option<Error> {
    let errs = c.errors_for(name);
    if errs.is_empty() {
        return None;
    }
    Some(Error::Compose {
        service: Some(name.to_string()),
        problems: errs.into_iter().cloned().collect(),
    })
}

/// Pure: dependencies before dependents, in file order otherwise (over services that loaded).
pub fn start_order(services: &[ComposeService]) -> Vec<String> {
    let mut order: Vec<String> = Vec::new();
    fn visit(name: &str, services: &[ComposeService], order: &mut Vec<String>, depth: usize) {
        if order.iter().any(|o| o == name) || depth > services.len() {
            return;
        }
        let Some(svc) = services.iter().find(|s| s.name == name) else {
            return;
        };
        for d in &svc.depends_on {
            visit(&d.name, services, order, depth + 1);
        }
        if !order.iter().any(|o| o == name) {
            order.push(name.to_string());
        }
    }
    for s in services {
        visit(&s.name, services, &mut order, 0);
    }
    order
}

/// The service names of a project (broken ones too), for the catalog.
pub fn names(c: &ComposeFile) -> Vec<String> {
    c.names.clone()
}

/// A compose project from one text at `file` (tests, benchmarks, fixtures in memory).
pub fn from_text(text: &str, file: &Path, lookup: &dyn Fn(&str) -> Option<String>) -> ComposeFile {
    let mut fs = MemFiles::default();
    fs.0.insert(file.to_path_buf(), text.to_string());
    let name = file
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("compose.yaml")
        .to_string();
    let with_file = |k: &str| {
        if k == "COMPOSE_FILE" {
            Some(name.clone())
        } else {
            lookup(k)
        }
    };
    load_mem(&fs, file.parent().unwrap_or(Path::new("/")), &with_file)
}

/// Loads from in-memory files rooted at `root`.
pub fn load_mem(
    fs: &MemFiles,
    root: &Path,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> ComposeFile {
    load(&LoadRequest {
        fs,
        root,
        shell: lookup,
        profile_vars: &[],
        compose_profiles: &[],
    })
    .unwrap_or_default()
}
