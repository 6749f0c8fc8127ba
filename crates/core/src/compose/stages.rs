//! The loader's stages over the parsed files: interpolation, `x-` extensions, `include`, the
//! override merge and `extends`, paths rebased to the file that wrote them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_yaml_ng::{Mapping, Value};

use super::files::*;
use super::model::*;
use super::yaml::LineIndex;
use super::{interp, merge, service, yaml};

/// The top-level keys of the specification.
pub(crate) const TOP_LEVEL_KEYS: &[&str] = &[
    "version", "name", "services", "networks", "volumes", "secrets", "configs", "include", "models",
];

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
pub(crate) struct Loaded {
    pub(crate) file: PathBuf,
    pub(crate) lines: LineIndex,
    pub(crate) tree: Mapping,
}

pub(crate) struct Loader<'a> {
    pub(crate) fs: &'a dyn Files,
    pub(crate) lookup: &'a dyn Fn(&str) -> Option<String>,
    pub(crate) diags: Vec<Diag>,
    /// Which file (and its line index) each service was defined in first.
    pub(crate) origin: BTreeMap<String, (PathBuf, LineIndex)>,
    pub(crate) main_dir: PathBuf,
}

impl Loader<'_> {
    pub(crate) fn file_diag(
        &mut self,
        sev: DiagLevel,
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
    pub(crate) fn read(&mut self, file: &Path) -> Option<Loaded> {
        let text = match self.fs.read(file) {
            Ok(t) => t,
            Err(e) => {
                self.file_diag(
                    DiagLevel::Error,
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
    pub(crate) fn read_with_defaults(
        &mut self,
        file: &Path,
        defaults: &[(String, String)],
    ) -> Option<Loaded> {
        let text = match self.fs.read(file) {
            Ok(t) => t,
            Err(_) => return self.read(file),
        };
        self.parse_text(&text, file, defaults)
    }

    pub(crate) fn parse_text(
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
                    severity: DiagLevel::Error,
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
                severity: DiagLevel::Error,
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
                d.severity = DiagLevel::Warning;
            }
            self.diags.push(d);
        }
        for (var, path) in unset {
            if path.starts_with("x-") || path.contains(".x-") {
                continue;
            }
            self.file_diag(
                DiagLevel::Warning,
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
                    DiagLevel::Error,
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

    pub(crate) fn note_origins(&mut self, l: &Loaded) {
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
    pub(crate) fn includes(&mut self, l: &mut Loaded, depth: usize, seen: &mut Vec<PathBuf>) {
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
                    DiagLevel::Error,
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
                        DiagLevel::Error,
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
                        DiagLevel::Error,
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
                                DiagLevel::Error,
                                &f,
                                None,
                                "",
                                e.message(),
                                "Fix the dotenv file (NAME=value per line)".into(),
                            ),
                        }
                    } else if !env_files.is_empty() {
                        self.file_diag(
                            DiagLevel::Error,
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
                                    DiagLevel::Warning,
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
    pub(crate) fn extends(&mut self, tree: &mut Mapping, file: &Path, lines: &LineIndex) {
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

    pub(crate) fn resolve_extends(
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
                DiagLevel::Error,
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
                        DiagLevel::Error,
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
                DiagLevel::Error,
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
                DiagLevel::Error,
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
                    DiagLevel::Error,
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
pub(crate) fn rebase_tree(tree: &mut Mapping, dir: &Path) {
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

pub(crate) fn kv(v: Option<&Value>) -> BTreeMap<String, String> {
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
pub(crate) fn external_and_name(m: &Mapping) -> (bool, Option<String>) {
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

pub(crate) fn flag(m: &Mapping, k: &str) -> bool {
    matches!(m.get(k), Some(Value::Bool(true)))
        || matches!(m.get(k).and_then(service::scalar).as_deref(), Some("true"))
}
