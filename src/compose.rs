//! `docker-compose.yml` for dependency services: the compose-spec keys a dependency like Postgres
//! or Zitadel uses, `${VAR}` interpolation from the profile's env, and `depends_on` ordering.
//! Pure over text + an env lookup; unsupported keys are errors with their key path, never ignored.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_yaml_ng::{Mapping, Value};

use crate::error::{Error, Result};

pub const TOP_LEVEL_KEYS: &[&str] = &["version", "name", "services", "volumes"];
pub const SERVICE_KEYS: &[&str] = &[
    "image",
    "container_name",
    "command",
    "entrypoint",
    "environment",
    "env_file",
    "ports",
    "volumes",
    "healthcheck",
    "depends_on",
    "labels",
    "restart",
    "stop_grace_period",
];
const HEALTHCHECK_KEYS: &[&str] = &[
    "test",
    "interval",
    "timeout",
    "retries",
    "start_period",
    "disable",
];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortMapping {
    pub host_ip: Option<String>,
    pub host_port: u16,
    pub container_port: u16,
    pub protocol: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MountSource {
    Named(String),
    Bind(PathBuf),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    pub source: MountSource,
    pub target: String,
    pub read_only: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Healthcheck {
    /// `["CMD", …]`, `["CMD-SHELL", "…"]` or `["NONE"]`, as the engine takes it.
    pub test: Vec<String>,
    pub interval: Option<Duration>,
    pub timeout: Option<Duration>,
    pub retries: Option<u32>,
    pub start_period: Option<Duration>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Condition {
    Started,
    Healthy,
    CompletedSuccessfully,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ComposeService {
    pub name: String,
    pub image: String,
    pub container_name: Option<String>,
    pub command: Option<Vec<String>>,
    pub entrypoint: Option<Vec<String>>,
    pub environment: BTreeMap<String, String>,
    pub env_files: Vec<PathBuf>,
    pub ports: Vec<PortMapping>,
    pub volumes: Vec<Mount>,
    pub healthcheck: Option<Healthcheck>,
    pub depends_on: Vec<(String, Condition)>,
    pub labels: BTreeMap<String, String>,
    /// Accepted and superseded by the orchestrator's restart policy.
    pub restart: Option<String>,
    pub stop_grace_period: Option<Duration>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ComposeFile {
    pub name: Option<String>,
    pub services: Vec<ComposeService>,
    pub volumes: Vec<String>,
}

struct Ctx<'a> {
    file: &'a Path,
    dir: &'a Path,
}

impl Ctx<'_> {
    fn err(&self, key: impl Into<String>, message: impl Into<String>) -> Error {
        Error::InvalidConfig {
            file: self.file.to_path_buf(),
            key: key.into(),
            message: message.into(),
        }
    }
}

/// Compose interpolation: `$$`, `$VAR`, `${VAR}`, `${VAR:-default}`, `${VAR-default}`,
/// `${VAR:?message}`, `${VAR?message}`, `${VAR:+alt}`, `${VAR+alt}`; defaults nest.
pub fn interpolate(
    s: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> std::result::Result<String, String> {
    let chars: Vec<char> = s.chars().collect();
    let mut out = String::new();
    let mut i = 0;
    while i < chars.len() {
        if chars[i] != '$' {
            out.push(chars[i]);
            i += 1;
            continue;
        }
        match chars.get(i + 1) {
            Some('$') => {
                out.push('$');
                i += 2;
            }
            Some('{') => {
                let mut depth = 1;
                let mut j = i + 2;
                while j < chars.len() && depth > 0 {
                    match chars[j] {
                        '{' => depth += 1,
                        '}' => depth -= 1,
                        _ => {}
                    }
                    j += 1;
                }
                if depth != 0 {
                    return Err(format!("unclosed \"${{\" in \"{s}\""));
                }
                let inner: String = chars[i + 2..j - 1].iter().collect();
                out.push_str(&expand(&inner, lookup)?);
                i = j;
            }
            Some(c) if c.is_ascii_alphabetic() || *c == '_' => {
                let mut j = i + 1;
                while j < chars.len() && (chars[j].is_ascii_alphanumeric() || chars[j] == '_') {
                    j += 1;
                }
                let name: String = chars[i + 1..j].iter().collect();
                out.push_str(&lookup(&name).unwrap_or_default());
                i = j;
            }
            _ => {
                out.push('$');
                i += 1;
            }
        }
    }
    Ok(out)
}

fn expand(
    inner: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> std::result::Result<String, String> {
    let name_end = inner
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(inner.len());
    let (name, op) = inner.split_at(name_end);
    if name.is_empty() {
        return Err(format!("invalid interpolation \"${{{inner}}}\""));
    }
    let value = lookup(name);
    let set = value.is_some();
    let non_empty = value.as_deref().is_some_and(|v| !v.is_empty());
    let arg = |prefix: &str| interpolate(&op[prefix.len()..], lookup);
    match op {
        "" => Ok(value.unwrap_or_default()),
        _ if op.starts_with(":-") => {
            if non_empty {
                Ok(value.unwrap_or_default())
            } else {
                arg(":-")
            }
        }
        _ if op.starts_with('-') => {
            if set {
                Ok(value.unwrap_or_default())
            } else {
                arg("-")
            }
        }
        _ if op.starts_with(":?") => {
            if non_empty {
                Ok(value.unwrap_or_default())
            } else {
                Err(format!("{name}: {}", arg(":?")?))
            }
        }
        _ if op.starts_with('?') => {
            if set {
                Ok(value.unwrap_or_default())
            } else {
                Err(format!("{name}: {}", arg("?")?))
            }
        }
        _ if op.starts_with(":+") => {
            if non_empty {
                arg(":+")
            } else {
                Ok(String::new())
            }
        }
        _ if op.starts_with('+') => {
            if set {
                arg("+")
            } else {
                Ok(String::new())
            }
        }
        _ => Err(format!("invalid interpolation \"${{{inner}}}\"")),
    }
}

fn interpolate_tree(
    v: &mut Value,
    path: &str,
    ctx: &Ctx,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<()> {
    match v {
        Value::String(s) => {
            *s = interpolate(s, lookup).map_err(|m| required_var(s, &m, path, ctx))?;
        }
        Value::Sequence(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                interpolate_tree(item, &format!("{path}[{i}]"), ctx, lookup)?;
            }
        }
        Value::Mapping(m) => {
            for (k, item) in m.iter_mut() {
                let key = k.as_str().unwrap_or("?");
                interpolate_tree(item, &join(path, key), ctx, lookup)?;
            }
        }
        _ => {}
    }
    Ok(())
}

/// `${VAR:?message}` failing is a missing variable (EXIT_ENV_MISSING), not a broken file.
fn required_var(text: &str, message: &str, path: &str, ctx: &Ctx) -> Error {
    if let Some((var, msg)) = message.split_once(": ") {
        let is_name = !var.is_empty() && var.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if is_name
            && (text.contains(&format!("${{{var}:?")) || text.contains(&format!("${{{var}?")))
        {
            return Error::ComposeVarMissing {
                file: ctx.file.to_path_buf(),
                key: path.to_string(),
                var: var.to_string(),
                message: msg.to_string(),
            };
        }
    }
    ctx.err(path, message)
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

fn check_keys(m: &Mapping, allowed: &[&str], path: &str, ctx: &Ctx) -> Result<()> {
    for k in m.keys() {
        let key = k
            .as_str()
            .ok_or_else(|| ctx.err(path, "keys must be strings"))?;
        if !allowed.contains(&key) {
            return Err(ctx.err(
                join(path, key),
                format!("is not supported by the orchestrator (supported here: {}); remove it or run this service outside the orchestrator", allowed.join(", ")),
            ));
        }
    }
    Ok(())
}

fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn string(v: &Value, path: &str, ctx: &Ctx) -> Result<String> {
    scalar(v).ok_or_else(|| ctx.err(path, "must be a string"))
}

fn duration(v: &Value, path: &str, ctx: &Ctx) -> Result<Duration> {
    let s = string(v, path, ctx)?;
    humantime::parse_duration(s.trim()).map_err(|e| {
        ctx.err(
            path,
            format!("\"{s}\" is not a duration like 10s or 1m30s: {e}"),
        )
    })
}

fn words(v: &Value, path: &str, ctx: &Ctx) -> Result<Vec<String>> {
    match v {
        Value::Sequence(items) => items
            .iter()
            .enumerate()
            .map(|(i, x)| string(x, &format!("{path}[{i}]"), ctx))
            .collect(),
        other => {
            let s = string(other, path, ctx)?;
            shlex::split(&s).ok_or_else(|| ctx.err(path, "unbalanced quotes"))
        }
    }
}

/// `KEY: value` mappings or `KEY=value` lists (environment, labels).
fn key_values(
    v: &Value,
    path: &str,
    ctx: &Ctx,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    match v {
        Value::Mapping(m) => {
            for (k, val) in m {
                let key = string(k, path, ctx)?;
                match val {
                    // `KEY:` with no value takes the variable from the profile's env, as compose does.
                    Value::Null => {
                        if let Some(x) = lookup(&key) {
                            out.insert(key, x);
                        }
                    }
                    other => {
                        out.insert(key.clone(), string(other, &join(path, &key), ctx)?);
                    }
                }
            }
        }
        Value::Sequence(items) => {
            for (i, item) in items.iter().enumerate() {
                let s = string(item, &format!("{path}[{i}]"), ctx)?;
                match s.split_once('=') {
                    Some((k, val)) => {
                        out.insert(k.to_string(), val.to_string());
                    }
                    None => {
                        if let Some(x) = lookup(&s) {
                            out.insert(s, x);
                        }
                    }
                }
            }
        }
        Value::Null => {}
        _ => return Err(ctx.err(path, "must be a mapping or a list of KEY=value")),
    }
    Ok(out)
}

fn port_number(s: &str, path: &str, ctx: &Ctx) -> Result<u16> {
    s.parse::<u16>().ok().filter(|p| *p > 0).ok_or_else(|| {
        ctx.err(
            path,
            format!("\"{s}\" is not a port number (ranges are not supported)"),
        )
    })
}

/// Short syntax: `"5432"`, `"5432:5432"`, `"127.0.0.1:5432:5432"`, with an optional `/udp`.
pub fn parse_port(spec: &str, path: &str, ctx_file: &Path) -> Result<PortMapping> {
    let ctx = Ctx {
        file: ctx_file,
        dir: Path::new("."),
    };
    let (spec, protocol) = match spec.rsplit_once('/') {
        Some((s, p)) => (s, p.to_string()),
        None => (spec, "tcp".to_string()),
    };
    let parts: Vec<&str> = spec.rsplitn(3, ':').collect();
    let (host_ip, host, container) = match parts.as_slice() {
        [c] => (None, *c, *c),
        [c, h] => (None, *h, *c),
        [c, h, ip] => (Some(ip.trim_matches(['[', ']']).to_string()), *h, *c),
        _ => return Err(ctx.err(path, format!("\"{spec}\" is not a port mapping"))),
    };
    Ok(PortMapping {
        host_ip,
        host_port: port_number(host, path, &ctx)?,
        container_port: port_number(container, path, &ctx)?,
        protocol,
    })
}

fn mount(v: &Value, path: &str, ctx: &Ctx) -> Result<Mount> {
    let classify = |src: &str| -> MountSource {
        if src.starts_with('.') || src.starts_with('/') || src.starts_with('~') {
            let p = if let Some(rest) = src.strip_prefix("~/") {
                PathBuf::from(std::env::var("HOME").unwrap_or_default()).join(rest)
            } else {
                ctx.dir.join(src.strip_prefix("./").unwrap_or(src))
            };
            MountSource::Bind(p)
        } else {
            MountSource::Named(src.to_string())
        }
    };
    match v {
        Value::Mapping(m) => {
            check_keys(m, &["type", "source", "target", "read_only"], path, ctx)?;
            let get = |k: &str| m.get(Value::String(k.into()));
            let target = get("target")
                .map(|t| string(t, &join(path, "target"), ctx))
                .transpose()?
                .ok_or_else(|| ctx.err(join(path, "target"), "is required"))?;
            let source = get("source")
                .map(|t| string(t, &join(path, "source"), ctx))
                .transpose()?
                .ok_or_else(|| ctx.err(join(path, "source"), "is required"))?;
            let kind = get("type")
                .and_then(scalar)
                .unwrap_or_else(|| "volume".into());
            let source = match kind.as_str() {
                "bind" => MountSource::Bind(ctx.dir.join(&source)),
                "volume" => MountSource::Named(source),
                other => {
                    return Err(ctx.err(
                        join(path, "type"),
                        format!("\"{other}\" is not supported (volume, bind)"),
                    ))
                }
            };
            let read_only = matches!(get("read_only"), Some(Value::Bool(true)));
            Ok(Mount {
                source,
                target,
                read_only,
            })
        }
        other => {
            let s = string(other, path, ctx)?;
            let parts: Vec<&str> = s.split(':').collect();
            match parts.as_slice() {
                [src, target] => Ok(Mount { source: classify(src), target: target.to_string(), read_only: false }),
                [src, target, mode] if matches!(*mode, "ro" | "rw") => {
                    Ok(Mount { source: classify(src), target: target.to_string(), read_only: *mode == "ro" })
                }
                _ => Err(ctx.err(path, format!("\"{s}\" is not SOURCE:TARGET[:ro|rw] (anonymous volumes are not supported)"))),
            }
        }
    }
}

fn healthcheck(v: &Value, path: &str, ctx: &Ctx) -> Result<Option<Healthcheck>> {
    let Value::Mapping(m) = v else {
        return Err(ctx.err(path, "must be a mapping"));
    };
    check_keys(m, HEALTHCHECK_KEYS, path, ctx)?;
    let get = |k: &str| m.get(Value::String(k.into()));
    if matches!(get("disable"), Some(Value::Bool(true))) {
        return Ok(None);
    }
    let test = match get("test") {
        Some(Value::Sequence(_)) => words(
            get("test").unwrap_or(&Value::Null),
            &join(path, "test"),
            ctx,
        )?,
        Some(other) => vec!["CMD-SHELL".into(), string(other, &join(path, "test"), ctx)?],
        None => return Err(ctx.err(join(path, "test"), "is required")),
    };
    if !matches!(
        test.first().map(String::as_str),
        Some("CMD" | "CMD-SHELL" | "NONE")
    ) {
        return Err(ctx.err(
            join(path, "test"),
            "a list must start with CMD, CMD-SHELL or NONE",
        ));
    }
    let dur = |k: &str| get(k).map(|d| duration(d, &join(path, k), ctx)).transpose();
    let retries = match get("retries") {
        Some(Value::Number(n)) => Some(
            n.as_u64()
                .filter(|r| *r <= u32::MAX as u64)
                .ok_or_else(|| ctx.err(join(path, "retries"), "must be a non-negative integer"))?
                as u32,
        ),
        Some(_) => return Err(ctx.err(join(path, "retries"), "must be a non-negative integer")),
        None => None,
    };
    Ok(Some(Healthcheck {
        test,
        interval: dur("interval")?,
        timeout: dur("timeout")?,
        retries,
        start_period: dur("start_period")?,
    }))
}

fn depends_on(v: &Value, path: &str, ctx: &Ctx) -> Result<Vec<(String, Condition)>> {
    match v {
        Value::Sequence(items) => items
            .iter()
            .enumerate()
            .map(|(i, x)| Ok((string(x, &format!("{path}[{i}]"), ctx)?, Condition::Started)))
            .collect(),
        Value::Mapping(m) => {
            let mut out = Vec::new();
            for (k, spec) in m {
                let name = string(k, path, ctx)?;
                let p = join(path, &name);
                let cond = match spec {
                    Value::Mapping(s) => {
                        check_keys(s, &["condition", "required", "restart"], &p, ctx)?;
                        match s
                            .get(Value::String("condition".into()))
                            .and_then(scalar)
                            .as_deref()
                        {
                            None | Some("service_started") => Condition::Started,
                            Some("service_healthy") => Condition::Healthy,
                            Some("service_completed_successfully") => {
                                Condition::CompletedSuccessfully
                            }
                            Some(other) => {
                                return Err(ctx.err(
                                    join(&p, "condition"),
                                    format!("\"{other}\" is not a compose condition"),
                                ))
                            }
                        }
                    }
                    Value::Null => Condition::Started,
                    _ => return Err(ctx.err(p, "must be a mapping with `condition`")),
                };
                out.push((name, cond));
            }
            Ok(out)
        }
        _ => Err(ctx.err(path, "must be a list of services or a mapping")),
    }
}

/// The YAML document, a mapping with only supported top-level keys; parse errors name the line.
fn load_top(text: &str, ctx: &Ctx) -> Result<Value> {
    let doc: Value = serde_yaml_ng::from_str(text).map_err(|e| {
        let key = e
            .location()
            .map(|l| format!("line {} column {}", l.line(), l.column()))
            .unwrap_or_else(|| "(file)".into());
        ctx.err(key, format!("YAML does not parse: {e}"))
    })?;
    let Value::Mapping(top) = &doc else {
        return Err(ctx.err("(file)", "must be a mapping with `services`"));
    };
    check_keys(top, TOP_LEVEL_KEYS, "", ctx)?;
    Ok(doc)
}

/// The service names of a compose file, without interpolating anything (compose does not
/// interpolate keys either): enough to list the catalog before a profile is chosen.
pub fn service_names(text: &str, file: &Path) -> Result<Vec<String>> {
    let ctx = Ctx {
        file,
        dir: file.parent().unwrap_or(Path::new(".")),
    };
    let doc = load_top(text, &ctx)?;
    let Value::Mapping(top) = &doc else {
        unreachable!("load_top checked it")
    };
    match top.get(Value::String("services".into())) {
        Some(Value::Mapping(m)) => m
            .keys()
            .map(|k| {
                let name = string(k, "services", &ctx)?;
                if crate::catalog::is_valid_name(&name) {
                    Ok(name)
                } else {
                    Err(ctx.err(
                        format!("services.{name}"),
                        "is not a valid service name (letters, digits, '.', '_', '-')",
                    ))
                }
            })
            .collect(),
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(_) => Err(ctx.err("services", "must be a mapping of service definitions")),
    }
}

/// Parses compose text. `lookup` answers `${VAR}` from the profile's env.
pub fn parse(
    text: &str,
    file: &Path,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<ComposeFile> {
    let dir = file.parent().unwrap_or(Path::new("."));
    let ctx = Ctx { file, dir };
    let mut doc = load_top(text, &ctx)?;
    interpolate_tree(&mut doc, "", &ctx, lookup)?;
    let Value::Mapping(top) = doc else {
        unreachable!("checked above")
    };
    let get = |k: &str| top.get(Value::String(k.into()));
    let name = get("name").map(|v| string(v, "name", &ctx)).transpose()?;
    let volumes = match get("volumes") {
        Some(Value::Mapping(m)) => m
            .keys()
            .map(|k| string(k, "volumes", &ctx))
            .collect::<Result<Vec<_>>>()?,
        None | Some(Value::Null) => Vec::new(),
        Some(_) => return Err(ctx.err("volumes", "must be a mapping of volume names")),
    };
    let mut services = Vec::new();
    match get("services") {
        Some(Value::Mapping(m)) => {
            for (k, v) in m {
                let svc = string(k, "services", &ctx)?;
                let path = format!("services.{svc}");
                if !crate::catalog::is_valid_name(&svc) {
                    return Err(ctx.err(
                        path,
                        "is not a valid service name (letters, digits, '.', '_', '-')",
                    ));
                }
                let Value::Mapping(s) = v else {
                    return Err(ctx.err(path, "must be a mapping"));
                };
                check_keys(s, SERVICE_KEYS, &path, &ctx)?;
                let f = |k: &str| s.get(Value::String(k.into()));
                let p = |k: &str| join(&path, k);
                let image = f("image")
                    .map(|x| string(x, &p("image"), &ctx))
                    .transpose()?
                    .ok_or_else(|| {
                        ctx.err(p("image"), "is required (building images is not supported)")
                    })?;
                services.push(ComposeService {
                    name: svc.clone(),
                    image,
                    container_name: f("container_name")
                        .map(|x| string(x, &p("container_name"), &ctx))
                        .transpose()?,
                    command: f("command")
                        .map(|x| words(x, &p("command"), &ctx))
                        .transpose()?,
                    entrypoint: f("entrypoint")
                        .map(|x| words(x, &p("entrypoint"), &ctx))
                        .transpose()?,
                    environment: f("environment")
                        .map(|x| key_values(x, &p("environment"), &ctx, lookup))
                        .transpose()?
                        .unwrap_or_default(),
                    env_files: match f("env_file") {
                        None => Vec::new(),
                        Some(Value::Sequence(items)) => items
                            .iter()
                            .enumerate()
                            .map(|(i, x)| {
                                Ok(dir.join(string(x, &format!("{}[{i}]", p("env_file")), &ctx)?))
                            })
                            .collect::<Result<_>>()?,
                        Some(x) => vec![dir.join(string(x, &p("env_file"), &ctx)?)],
                    },
                    ports: match f("ports") {
                        None => Vec::new(),
                        Some(Value::Sequence(items)) => items
                            .iter()
                            .enumerate()
                            .map(|(i, x)| {
                                let pp = format!("{}[{i}]", p("ports"));
                                match x {
                                    Value::Mapping(m) => {
                                        check_keys(
                                            m,
                                            &["target", "published", "host_ip", "protocol"],
                                            &pp,
                                            &ctx,
                                        )?;
                                        let g = |k: &str| {
                                            m.get(Value::String(k.into())).and_then(scalar)
                                        };
                                        let target = g("target").ok_or_else(|| {
                                            ctx.err(join(&pp, "target"), "is required")
                                        })?;
                                        let published =
                                            g("published").unwrap_or_else(|| target.clone());
                                        Ok(PortMapping {
                                            host_ip: g("host_ip"),
                                            host_port: port_number(&published, &pp, &ctx)?,
                                            container_port: port_number(&target, &pp, &ctx)?,
                                            protocol: g("protocol").unwrap_or_else(|| "tcp".into()),
                                        })
                                    }
                                    other => parse_port(&string(other, &pp, &ctx)?, &pp, file),
                                }
                            })
                            .collect::<Result<_>>()?,
                        Some(_) => return Err(ctx.err(p("ports"), "must be a list")),
                    },
                    volumes: match f("volumes") {
                        None => Vec::new(),
                        Some(Value::Sequence(items)) => items
                            .iter()
                            .enumerate()
                            .map(|(i, x)| mount(x, &format!("{}[{i}]", p("volumes")), &ctx))
                            .collect::<Result<_>>()?,
                        Some(_) => return Err(ctx.err(p("volumes"), "must be a list")),
                    },
                    healthcheck: f("healthcheck")
                        .map(|x| healthcheck(x, &p("healthcheck"), &ctx))
                        .transpose()?
                        .flatten(),
                    depends_on: f("depends_on")
                        .map(|x| depends_on(x, &p("depends_on"), &ctx))
                        .transpose()?
                        .unwrap_or_default(),
                    labels: f("labels")
                        .map(|x| key_values(x, &p("labels"), &ctx, &|_| None))
                        .transpose()?
                        .unwrap_or_default(),
                    restart: f("restart")
                        .map(|x| string(x, &p("restart"), &ctx))
                        .transpose()?,
                    stop_grace_period: f("stop_grace_period")
                        .map(|x| duration(x, &p("stop_grace_period"), &ctx))
                        .transpose()?,
                });
            }
        }
        None | Some(Value::Null) => {}
        Some(_) => return Err(ctx.err("services", "must be a mapping of service definitions")),
    }
    for s in &services {
        for m in &s.volumes {
            if let MountSource::Named(v) = &m.source {
                if !volumes.contains(v) {
                    return Err(ctx.err(
                        format!("services.{}.volumes", s.name),
                        format!("named volume \"{v}\" is not declared under top-level `volumes`"),
                    ));
                }
            }
        }
    }
    Ok(ComposeFile {
        name,
        services,
        volumes,
    })
}

/// Pure: dependencies before dependents, in file order otherwise. Unknown names and cycles fail.
pub fn start_order(services: &[ComposeService], file: &Path) -> Result<Vec<String>> {
    let ctx = Ctx {
        file,
        dir: Path::new("."),
    };
    for s in services {
        for (d, _) in &s.depends_on {
            if !services.iter().any(|x| &x.name == d) {
                return Err(ctx.err(
                    format!("services.{}.depends_on", s.name),
                    format!("names \"{d}\", which is not a service in this file"),
                ));
            }
        }
    }
    let mut order: Vec<String> = Vec::new();
    let mut visiting: Vec<String> = Vec::new();
    fn visit(
        name: &str,
        services: &[ComposeService],
        order: &mut Vec<String>,
        visiting: &mut Vec<String>,
        ctx: &Ctx,
    ) -> Result<()> {
        if order.iter().any(|o| o == name) {
            return Ok(());
        }
        if let Some(pos) = visiting.iter().position(|v| v == name) {
            let mut cycle = visiting[pos..].to_vec();
            cycle.push(name.to_string());
            return Err(ctx.err(
                format!("services.{name}.depends_on"),
                format!("dependency cycle: {}", cycle.join(" → ")),
            ));
        }
        visiting.push(name.to_string());
        let svc = services
            .iter()
            .find(|s| s.name == name)
            .expect("validated above");
        for (d, _) in &svc.depends_on {
            visit(d, services, order, visiting, ctx)?;
        }
        visiting.pop();
        order.push(name.to_string());
        Ok(())
    }
    for s in services {
        visit(&s.name, services, &mut order, &mut visiting, &ctx)?;
    }
    Ok(order)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |k: &str| {
            pairs
                .iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        }
    }

    fn file() -> &'static Path {
        Path::new("/ws/docker-compose.yml")
    }

    const EXAMPLE: &str = r#"
name: example
services:
  postgres:
    image: ${POSTGRES_IMAGE:-postgres:16}
    environment:
      POSTGRES_PASSWORD: ${POSTGRES_PASSWORD:?set it in config/env/<profile>.env}
      POSTGRES_DB: app
      FROM_PROFILE:
    ports: ["127.0.0.1:5432:5432"]
    volumes: ["pgdata:/var/lib/postgresql/data", "./initdb:/docker-entrypoint-initdb.d:ro"]
    healthcheck:
      test: ["CMD-SHELL", "pg_isready -U postgres"]
      interval: 2s
      timeout: 5s
      retries: 30
      start_period: 1m30s
    restart: unless-stopped
    stop_grace_period: 30s
    labels: ["tier=db"]
  zitadel:
    image: ghcr.io/zitadel/zitadel:v2
    command: start-from-init --masterkey "a b" --tlsMode disabled
    depends_on:
      postgres: { condition: service_healthy }
    ports:
      - target: 8080
        published: 8081
volumes:
  pgdata: {}
"#;

    #[test]
    fn parses_the_keys_dependencies_use() {
        let c = parse(
            EXAMPLE,
            file(),
            &env(&[("POSTGRES_PASSWORD", "pw"), ("FROM_PROFILE", "x")]),
        )
        .unwrap();
        assert_eq!(c.name.as_deref(), Some("example"));
        let pg = &c.services[0];
        assert_eq!(pg.image, "postgres:16");
        assert_eq!(pg.environment["POSTGRES_PASSWORD"], "pw");
        assert_eq!(pg.environment["FROM_PROFILE"], "x");
        assert_eq!(
            pg.ports,
            vec![PortMapping {
                host_ip: Some("127.0.0.1".into()),
                host_port: 5432,
                container_port: 5432,
                protocol: "tcp".into()
            }]
        );
        assert_eq!(
            pg.volumes[0],
            Mount {
                source: MountSource::Named("pgdata".into()),
                target: "/var/lib/postgresql/data".into(),
                read_only: false
            }
        );
        assert_eq!(
            pg.volumes[1].source,
            MountSource::Bind(PathBuf::from("/ws/initdb"))
        );
        assert!(pg.volumes[1].read_only);
        let hc = pg.healthcheck.as_ref().unwrap();
        assert_eq!(hc.test, vec!["CMD-SHELL", "pg_isready -U postgres"]);
        assert_eq!(
            (hc.interval, hc.retries, hc.start_period),
            (
                Some(Duration::from_secs(2)),
                Some(30),
                Some(Duration::from_secs(90))
            )
        );
        assert_eq!(pg.stop_grace_period, Some(Duration::from_secs(30)));
        assert_eq!(pg.labels["tier"], "db");
        let z = &c.services[1];
        assert_eq!(
            z.command.as_ref().unwrap(),
            &vec![
                "start-from-init",
                "--masterkey",
                "a b",
                "--tlsMode",
                "disabled"
            ]
        );
        assert_eq!(
            z.depends_on,
            vec![("postgres".to_string(), Condition::Healthy)]
        );
        assert_eq!(
            (z.ports[0].host_port, z.ports[0].container_port),
            (8081, 8080)
        );
        assert_eq!(
            start_order(&c.services, file()).unwrap(),
            vec!["postgres", "zitadel"]
        );
    }

    #[test]
    fn interpolation_forms() {
        let e = env(&[("SET", "v"), ("EMPTY", "")]);
        let i = |s: &str| interpolate(s, &e);
        assert_eq!(i("a-$SET-${SET}").unwrap(), "a-v-v");
        assert_eq!(
            i("${UNSET:-d} ${EMPTY:-d} ${EMPTY-d} ${UNSET-d}").unwrap(),
            "d d  d"
        );
        assert_eq!(
            i("${SET:+alt}|${UNSET:+alt}|${EMPTY+alt}").unwrap(),
            "alt||alt"
        );
        assert_eq!(i("$$SET costs $$5").unwrap(), "$SET costs $5");
        assert_eq!(i("${UNSET:-${SET}}").unwrap(), "v");
        assert_eq!(
            i("${UNSET:?needs a value}").unwrap_err(),
            "UNSET: needs a value"
        );
        assert_eq!(i("${EMPTY?x}").unwrap(), "");
        assert!(i("${SET").unwrap_err().contains("unclosed"));
        assert!(i("${:-x}").is_err());
    }

    #[test]
    fn required_variable_error_names_the_key_path() {
        let err = parse(EXAMPLE, file(), &env(&[])).unwrap_err();
        let m = err.message();
        assert!(
            m.contains("services.postgres.environment.POSTGRES_PASSWORD"),
            "{m}"
        );
        assert!(
            m.contains(
                "needs POSTGRES_PASSWORD, which is not set: set it in config/env/<profile>.env"
            ),
            "{m}"
        );
    }

    #[test]
    fn unsupported_keys_are_errors_with_their_path() {
        let cases = [
            (
                "services:\n  db:\n    image: x\n    build: .\n",
                "services.db.build",
            ),
            ("services:\n  db:\n    image: x\nnetworks: {}\n", "networks"),
            (
                "services:\n  db:\n    image: x\n    healthcheck: {test: [CMD, x], bogus: 1}\n",
                "services.db.healthcheck.bogus",
            ),
            (
                "services:\n  db:\n    image: x\n    depends_on: {a: {condition: x, extra: 1}}\n",
                "services.db.depends_on.a.extra",
            ),
        ];
        for (text, key) in cases {
            let err = parse(text, file(), &env(&[])).unwrap_err();
            assert!(
                err.message().contains(&format!("{key}: is not supported")),
                "{key}: {}",
                err.message()
            );
            assert_eq!(err.exit_code(), crate::exit::ExitCode::Usage);
        }
    }

    #[test]
    fn malformed_yaml_names_the_line() {
        let err = parse(
            "services:\n  db:\n   image: x\n  - bad\n",
            file(),
            &env(&[]),
        )
        .unwrap_err();
        assert!(
            err.message().contains("/ws/docker-compose.yml: line"),
            "{}",
            err.message()
        );
    }

    #[test]
    fn bad_values_are_reported() {
        let bad = [
            ("services:\n  db: {}\n", "services.db.image"),
            (
                "services:\n  db: {image: x, ports: [\"1000-1010:1000-1010\"]}\n",
                "services.db.ports[0]",
            ),
            (
                "services:\n  db: {image: x, healthcheck: {test: [x]}}\n",
                "services.db.healthcheck.test",
            ),
            (
                "services:\n  db: {image: x, stop_grace_period: soon}\n",
                "services.db.stop_grace_period",
            ),
            (
                "services:\n  db: {image: x, volumes: [\"data:/d\"]}\n",
                "services.db.volumes",
            ),
            ("services:\n  ../x: {image: x}\n", "services.../x"),
        ];
        for (text, key) in bad {
            let err = parse(text, file(), &env(&[])).unwrap_err();
            assert!(err.message().contains(key), "{key}: {}", err.message());
        }
    }

    #[test]
    fn start_order_rejects_cycles_and_unknown_names() {
        let text = "services:\n  a: {image: x, depends_on: [b]}\n  b: {image: x, depends_on: [c]}\n  c: {image: x, depends_on: [a]}\n";
        let c = parse(text, file(), &env(&[])).unwrap();
        let err = start_order(&c.services, file()).unwrap_err();
        assert!(
            err.message().contains("dependency cycle: a → b → c → a"),
            "{}",
            err.message()
        );
        let text = "services:\n  a: {image: x, depends_on: [ghost]}\n";
        let c = parse(text, file(), &env(&[])).unwrap();
        assert!(start_order(&c.services, file())
            .unwrap_err()
            .message()
            .contains("\"ghost\""));
        let text = "services:\n  web: {image: x, depends_on: [db, cache]}\n  cache: {image: x}\n  db: {image: x}\n";
        let c = parse(text, file(), &env(&[])).unwrap();
        assert_eq!(
            start_order(&c.services, file()).unwrap(),
            vec!["db", "cache", "web"]
        );
    }

    #[test]
    fn short_port_syntax() {
        let p = |s: &str| parse_port(s, "ports[0]", file()).unwrap();
        assert_eq!(
            (p("5432").host_port, p("5432").container_port),
            (5432, 5432)
        );
        assert_eq!(
            (p("15432:5432").host_port, p("15432:5432").container_port),
            (15432, 5432)
        );
        assert_eq!(p("53:53/udp").protocol, "udp");
        assert_eq!(p("[::1]:80:8080").host_ip.as_deref(), Some("::1"));
    }

    #[test]
    fn required_variables_are_env_missing_not_usage() {
        let text = "services:\n  db:\n    image: x\n    environment:\n      PW: ${PW:?set PW in config/env/<profile>.env}\n";
        let err = parse(text, Path::new("/ws/compose.yaml"), &|_| None).unwrap_err();
        let a = err.actionable("t");
        assert_eq!((a.code.as_str(), a.exit_code), ("EXIT_ENV_MISSING", 12));
        assert!(
            a.message.contains("services.db.environment.PW needs PW"),
            "{}",
            a.message
        );
        assert!(
            a.message.contains("set PW in config/env/<profile>.env"),
            "{}",
            a.message
        );
        let bad = parse(
            "services:\n  db:\n    image: ${}\n",
            Path::new("/ws/compose.yaml"),
            &|_| None,
        )
        .unwrap_err();
        assert_eq!(bad.exit_code(), crate::exit::ExitCode::Usage);
    }
}
