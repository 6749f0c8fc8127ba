//! Normalization of one service definition (after merging and interpolation) into the model.
//! Every key of the specification is known here: the ones the Engine API takes are mapped, the
//! ones that cannot apply on one host are warnings naming them, and a key the specification
//! does not have is an error — of this service only. Every problem is collected; nothing stops
//! at the first.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_yaml_ng::{Mapping, Value};

use super::merge::key_value_mapping;
use super::model::*;
use super::yaml::LineIndex;

/// Every service key of the compose specification.
pub const SERVICE_KEYS: &[&str] = &[
    "annotations",
    "attach",
    "blkio_config",
    "build",
    "cap_add",
    "cap_drop",
    "cgroup",
    "cgroup_parent",
    "command",
    "configs",
    "container_name",
    "cpu_count",
    "cpu_percent",
    "cpu_period",
    "cpu_quota",
    "cpu_rt_period",
    "cpu_rt_runtime",
    "cpu_shares",
    "cpus",
    "cpuset",
    "credential_spec",
    "depends_on",
    "deploy",
    "develop",
    "device_cgroup_rules",
    "devices",
    "dns",
    "dns_opt",
    "dns_search",
    "domainname",
    "entrypoint",
    "env_file",
    "environment",
    "expose",
    "extends",
    "external_links",
    "extra_hosts",
    "gpus",
    "group_add",
    "healthcheck",
    "hostname",
    "image",
    "init",
    "ipc",
    "isolation",
    "label_file",
    "labels",
    "links",
    "logging",
    "mac_address",
    "mem_limit",
    "mem_reservation",
    "mem_swappiness",
    "memswap_limit",
    "models",
    "network_mode",
    "networks",
    "oom_kill_disable",
    "oom_score_adj",
    "pid",
    "pids_limit",
    "platform",
    "ports",
    "post_start",
    "pre_stop",
    "privileged",
    "profiles",
    "provider",
    "pull_policy",
    "pull_refresh_after",
    "read_only",
    "restart",
    "runtime",
    "scale",
    "secrets",
    "security_opt",
    "shm_size",
    "stdin_open",
    "stop_grace_period",
    "stop_signal",
    "storage_opt",
    "sysctls",
    "tmpfs",
    "tty",
    "ulimits",
    "use_api_socket",
    "user",
    "userns_mode",
    "uts",
    "volumes",
    "volumes_from",
    "working_dir",
];

/// Keys that have no effect here, with the reason the warning gives.
const NOT_APPLIED: &[(&str, &str)] = &[
    (
        "annotations",
        "OCI annotations need Engine API 1.43; they are not set",
    ),
    (
        "attach",
        "every service's output is captured in its log files",
    ),
    (
        "blkio_config",
        "block-IO weights and limits are not applied",
    ),
    ("cpu_count", "a Windows-only key"),
    ("cpu_percent", "a Windows-only key"),
    (
        "cpu_rt_period",
        "real-time scheduler settings are not applied",
    ),
    (
        "cpu_rt_runtime",
        "real-time scheduler settings are not applied",
    ),
    ("credential_spec", "a Windows-only key"),
    ("develop", "`docker compose watch` settings are not used"),
    (
        "external_links",
        "legacy links to containers outside the project are not created",
    ),
    ("gpus", "GPU device requests are not applied"),
    ("models", "AI model services are not provided"),
    ("post_start", "lifecycle hooks are not run"),
    ("pre_stop", "lifecycle hooks are not run"),
    ("provider", "provider services are not run"),
    (
        "pull_refresh_after",
        "images are pulled by pull_policy only",
    ),
    ("use_api_socket", "the engine's socket is not mounted"),
];

pub struct Ctx<'a> {
    pub file: &'a Path,
    /// The directory relative paths of this service resolve against.
    pub dir: &'a Path,
    pub lines: &'a LineIndex,
    pub service: &'a str,
    pub diags: &'a mut Vec<Diag>,
    /// What bare `environment` entries take their value from.
    pub lookup: &'a dyn Fn(&str) -> Option<String>,
}

impl Ctx<'_> {
    fn at(&self, key: &str) -> String {
        format!("services.{}.{key}", self.service)
    }

    fn push(&mut self, severity: Severity, key: &str, message: String, remediation: String) {
        let path = if key.is_empty() {
            format!("services.{}", self.service)
        } else {
            self.at(key)
        };
        self.diags.push(Diag {
            severity,
            file: self.file.to_path_buf(),
            line: self.lines.line(&path),
            key: path,
            service: Some(self.service.to_string()),
            message,
            remediation,
            var: None,
        });
    }

    pub fn error(&mut self, key: &str, message: impl Into<String>) {
        let key_shown = self.at(key);
        self.push(
            Severity::Error,
            key,
            message.into(),
            format!("Fix `{key_shown}` in {}", self.file.display()),
        );
    }

    pub fn warn(&mut self, key: &str, message: impl Into<String>) {
        self.push(
            Severity::Warning,
            key,
            message.into(),
            "Nothing to do if that is acceptable; otherwise run this service with docker compose"
                .into(),
        );
    }

    fn resolve(&self, p: &str) -> PathBuf {
        if let Some(rest) = p.strip_prefix("~/") {
            return PathBuf::from(std::env::var("HOME").unwrap_or_default()).join(rest);
        }
        if p == "~" {
            return PathBuf::from(std::env::var("HOME").unwrap_or_default());
        }
        let joined = self.dir.join(p.strip_prefix("./").unwrap_or(p));
        clean(&joined)
    }
}

/// `a/./b/../c` → `a/c` without touching the file system.
pub fn clean(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir => {
                if !out.pop() {
                    out.push("..");
                }
            }
            other => out.push(other.as_os_str()),
        }
    }
    out
}

pub fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn string(c: &mut Ctx, v: &Value, key: &str) -> Option<String> {
    let s = scalar(v);
    if s.is_none() {
        c.error(key, "must be a string");
    }
    s
}

fn boolean(c: &mut Ctx, v: &Value, key: &str) -> Option<bool> {
    match v {
        Value::Bool(b) => Some(*b),
        Value::String(s) if matches!(s.as_str(), "true" | "True" | "TRUE" | "yes") => Some(true),
        Value::String(s) if matches!(s.as_str(), "false" | "False" | "FALSE" | "no") => Some(false),
        _ => {
            c.error(key, "must be true or false");
            None
        }
    }
}

fn integer(c: &mut Ctx, v: &Value, key: &str) -> Option<i64> {
    let n = match v {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse::<i64>().ok(),
        _ => None,
    };
    if n.is_none() {
        c.error(key, "must be an integer");
    }
    n
}

/// Go's duration syntax, as compose takes it: `1m30s`, `1.5s`, `300ms`, `2h`, `0`.
pub fn parse_duration(s: &str) -> Option<Duration> {
    let s = s.trim();
    if s == "0" {
        return Some(Duration::ZERO);
    }
    if s.is_empty() {
        return None;
    }
    let mut total = 0f64;
    let mut rest = s;
    while !rest.is_empty() {
        let num_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if num_end == 0 {
            return None;
        }
        let n: f64 = rest[..num_end].parse().ok()?;
        rest = &rest[num_end..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let factor = match &rest[..unit_end] {
            "ns" => 1e-9,
            "us" | "µs" | "μs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return None,
        };
        total += n * factor;
        rest = &rest[unit_end..];
    }
    Some(Duration::from_secs_f64(total))
}

fn duration(c: &mut Ctx, v: &Value, key: &str) -> Option<Duration> {
    let s = string(c, v, key)?;
    let d = parse_duration(&s);
    if d.is_none() {
        c.error(
            key,
            format!("\"{s}\" is not a duration like 10s, 1m30s or 500ms"),
        );
    }
    d
}

/// Byte sizes as the engine reads them: `512m`, `1g`, `1gb`, `64M`, `1024` (binary units).
pub fn parse_bytes(s: &str) -> Option<i64> {
    let t = s.trim().to_ascii_lowercase();
    let num_end = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let n: f64 = t[..num_end].parse().ok()?;
    let unit = t[num_end..].trim();
    let f: f64 = match unit.trim_end_matches('b') {
        "" => 1.0,
        "k" => 1024.0,
        "m" => 1024.0 * 1024.0,
        "g" => 1024.0 * 1024.0 * 1024.0,
        "t" => 1024f64.powi(4),
        "p" => 1024f64.powi(5),
        _ => return None,
    };
    Some((n * f) as i64)
}

fn bytes(c: &mut Ctx, v: &Value, key: &str) -> Option<i64> {
    let s = string(c, v, key)?;
    let b = parse_bytes(&s);
    if b.is_none() {
        c.error(key, format!("\"{s}\" is not a size like 512m or 1g"));
    }
    b
}

fn words(c: &mut Ctx, v: &Value, key: &str) -> Option<Vec<String>> {
    match v {
        Value::Sequence(items) => {
            let mut out = Vec::new();
            for (i, x) in items.iter().enumerate() {
                out.push(string(c, x, &format!("{key}[{i}]"))?);
            }
            Some(out)
        }
        Value::Null => None,
        other => {
            let s = string(c, other, key)?;
            let w = shlex::split(&s);
            if w.is_none() {
                c.error(key, "has unbalanced quotes");
            }
            w
        }
    }
}

fn strings(c: &mut Ctx, v: &Value, key: &str) -> Vec<String> {
    match v {
        Value::Sequence(items) => items
            .iter()
            .enumerate()
            .filter_map(|(i, x)| string(c, x, &format!("{key}[{i}]")))
            .collect(),
        Value::Null => Vec::new(),
        other => string(c, other, key).into_iter().collect(),
    }
}

fn key_values(c: &mut Ctx, v: &Value, key: &str, from_env: bool) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let Some(m) = key_value_mapping(v) else {
        if !v.is_null() {
            c.error(key, "must be a mapping or a list of KEY=value");
        }
        return out;
    };
    for (k, val) in &m {
        let Some(name) = scalar(k) else {
            c.error(key, "keys must be strings");
            continue;
        };
        match val {
            Value::Null => {
                if from_env {
                    if let Some(x) = (c.lookup)(&name) {
                        out.insert(name, x);
                    }
                } else {
                    out.insert(name, String::new());
                }
            }
            other => {
                if let Some(s) = string(c, other, &format!("{key}.{name}")) {
                    out.insert(name, s);
                }
            }
        }
    }
    out
}

fn port_number(s: &str) -> Option<u16> {
    s.trim().parse::<u16>().ok()
}

fn port_range(s: &str) -> Option<(u16, u16)> {
    match s.split_once('-') {
        Some((a, b)) => {
            let (a, b) = (port_number(a)?, port_number(b)?);
            (a <= b).then_some((a, b))
        }
        None => port_number(s).map(|p| (p, p)),
    }
}

/// The short port syntax: `[[IP:](HOST|RANGE):](CONTAINER|RANGE)[/PROTOCOL]`, IPv6 with or
/// without brackets, an empty host part for an ephemeral port (`127.0.0.1::80`).
pub fn parse_port_short(spec: &str) -> Result<Vec<PortMapping>, String> {
    let (body, protocol) = match spec.rsplit_once('/') {
        Some((s, p)) => (s, p.to_string()),
        None => (spec, "tcp".to_string()),
    };
    if !matches!(protocol.as_str(), "tcp" | "udp" | "sctp") {
        return Err(format!("\"{protocol}\" is not a protocol (tcp, udp, sctp)"));
    }
    let (host_ip, host, container) = match body.rsplit_once(':') {
        None => (None, None, body),
        Some((rest, container)) => match rest.rsplit_once(':') {
            None => (None, Some(rest), container),
            Some((ip, host)) => {
                let ip = ip.trim_start_matches('[').trim_end_matches(']');
                (Some(ip.to_string()), Some(host), container)
            }
        },
    };
    let host = host.filter(|h| !h.is_empty());
    mappings(host_ip, host, container, &protocol).ok_or_else(|| {
        format!("\"{spec}\" is not a port mapping like 8080:80, 127.0.0.1:5432:5432 or 3000")
    })
}

fn mappings(
    host_ip: Option<String>,
    host: Option<&str>,
    container: &str,
    protocol: &str,
) -> Option<Vec<PortMapping>> {
    let (c0, c1) = port_range(container)?;
    let one = |host_port: Option<u16>, end: Option<u16>, cp: u16| PortMapping {
        host_ip: host_ip.clone().filter(|i| !i.is_empty()),
        host_port,
        host_port_end: end,
        container_port: cp,
        protocol: protocol.to_string(),
    };
    match host {
        None => Some((c0..=c1).map(|cp| one(None, None, cp)).collect()),
        Some(h) => {
            let (h0, h1) = port_range(h)?;
            if c0 == c1 {
                Some(vec![one(Some(h0), (h1 != h0).then_some(h1), c0)])
            } else if h1 - h0 == c1 - c0 {
                Some(
                    (0..=(c1 - c0))
                        .map(|i| one(Some(h0 + i), None, c0 + i))
                        .collect(),
                )
            } else {
                None
            }
        }
    }
}

fn ports(c: &mut Ctx, v: &Value) -> Vec<PortMapping> {
    let Value::Sequence(items) = v else {
        c.error("ports", "must be a list");
        return Vec::new();
    };
    let mut out = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let key = format!("ports[{i}]");
        match item {
            Value::Mapping(m) => {
                for k in m.keys().filter_map(Value::as_str) {
                    if ![
                        "target",
                        "published",
                        "host_ip",
                        "protocol",
                        "mode",
                        "name",
                        "app_protocol",
                    ]
                    .contains(&k)
                    {
                        c.error(
                            &format!("{key}.{k}"),
                            "is not a key of the long port syntax",
                        );
                    }
                }
                let Some(target) = m.get("target").and_then(scalar) else {
                    c.error(&format!("{key}.target"), "is required");
                    continue;
                };
                let protocol = m
                    .get("protocol")
                    .and_then(scalar)
                    .unwrap_or_else(|| "tcp".into());
                let published = m
                    .get("published")
                    .and_then(scalar)
                    .filter(|p| !p.is_empty());
                let host_ip = m.get("host_ip").and_then(scalar);
                match mappings(host_ip, published.as_deref(), &target, &protocol) {
                    Some(ms) => out.extend(ms),
                    None => c.error(
                        &key,
                        format!(
                            "target {target} / published {} do not form a port mapping",
                            published.unwrap_or_default()
                        ),
                    ),
                }
            }
            other => match scalar(other) {
                Some(s) => match parse_port_short(&s) {
                    Ok(ms) => out.extend(ms),
                    Err(m) => c.error(&key, m),
                },
                None => c.error(&key, "must be a string like \"8080:80\" or a mapping"),
            },
        }
    }
    out
}

const SHORT_VOLUME_OPTIONS: &[&str] = &[
    "ro",
    "rw",
    "z",
    "Z",
    "consistent",
    "cached",
    "delegated",
    "nocopy",
    "shared",
    "rshared",
    "slave",
    "rslave",
    "private",
    "rprivate",
];

fn is_path(s: &str) -> bool {
    s.starts_with('.') || s.starts_with('/') || s.starts_with('~')
}

fn mount(c: &mut Ctx, v: &Value, key: &str) -> Option<Mount> {
    match v {
        Value::Mapping(m) => {
            for k in m.keys().filter_map(Value::as_str) {
                if ![
                    "type",
                    "source",
                    "target",
                    "read_only",
                    "bind",
                    "volume",
                    "tmpfs",
                    "image",
                    "consistency",
                ]
                .contains(&k)
                {
                    c.error(
                        &format!("{key}.{k}"),
                        "is not a key of the long volume syntax",
                    );
                }
            }
            let kind = match m.get("type").and_then(scalar).as_deref() {
                Some("volume") | None => MountKind::Volume,
                Some("bind") => MountKind::Bind,
                Some("tmpfs") => MountKind::Tmpfs,
                Some("npipe") => MountKind::Npipe,
                Some("image") => MountKind::Image,
                Some("cluster") => MountKind::Cluster,
                Some(other) => {
                    c.error(&format!("{key}.type"), format!("\"{other}\" is not a mount type (volume, bind, tmpfs, npipe, image, cluster)"));
                    return None;
                }
            };
            let Some(target) = m.get("target").and_then(scalar) else {
                c.error(&format!("{key}.target"), "is required");
                return None;
            };
            let source = m.get("source").and_then(scalar).filter(|s| !s.is_empty());
            let sub = |k: &str| match m.get(k) {
                Some(Value::Mapping(x)) => Some(x.clone()),
                _ => None,
            };
            let mut mt = Mount {
                kind,
                source: None,
                target,
                read_only: m
                    .get("read_only")
                    .and_then(|x| boolean(c, x, &format!("{key}.read_only")))
                    .unwrap_or(false),
                selinux: None,
                nocopy: false,
                subpath: None,
                propagation: None,
                create_host_path: true,
                tmpfs_size: None,
                tmpfs_mode: None,
            };
            match kind {
                MountKind::Bind => {
                    let Some(src) = source else {
                        c.error(&format!("{key}.source"), "is required for a bind mount");
                        return None;
                    };
                    mt.source = Some(c.resolve(&src).display().to_string());
                    if let Some(b) = sub("bind") {
                        mt.propagation = b.get("propagation").and_then(scalar);
                        mt.selinux = b.get("selinux").and_then(scalar);
                        if let Some(x) = b.get("create_host_path") {
                            mt.create_host_path =
                                boolean(c, x, &format!("{key}.bind.create_host_path"))
                                    .unwrap_or(true);
                        }
                    }
                }
                MountKind::Volume => {
                    mt.source = source;
                    if let Some(vo) = sub("volume") {
                        if let Some(x) = vo.get("nocopy") {
                            mt.nocopy =
                                boolean(c, x, &format!("{key}.volume.nocopy")).unwrap_or(false);
                        }
                        mt.subpath = vo.get("subpath").and_then(scalar);
                    }
                }
                MountKind::Tmpfs => {
                    if let Some(t) = sub("tmpfs") {
                        if let Some(x) = t.get("size") {
                            mt.tmpfs_size = bytes(c, x, &format!("{key}.tmpfs.size"));
                        }
                        if let Some(x) = t.get("mode") {
                            mt.tmpfs_mode = integer(c, x, &format!("{key}.tmpfs.mode"));
                        }
                    }
                }
                MountKind::Npipe | MountKind::Cluster | MountKind::Image => {
                    c.warn(key, format!("a mount of type {kind:?} is not made on this engine (Linux, Engine API 1.41)").to_lowercase());
                    return None;
                }
            }
            Some(mt)
        }
        other => {
            let s = string(c, other, key)?;
            let parts: Vec<&str> = s.split(':').collect();
            let (src, target, opts) = match parts.as_slice() {
                [t] => (None, *t, ""),
                [s0, t] => (Some(*s0), *t, ""),
                [s0, t, o] => (Some(*s0), *t, *o),
                _ => {
                    c.error(key, format!("\"{s}\" is not SOURCE:TARGET[:OPTIONS]"));
                    return None;
                }
            };
            if target.is_empty() || !target.starts_with('/') {
                c.error(key, format!("\"{s}\": the container path must be absolute"));
                return None;
            }
            let mut mt = Mount {
                kind: MountKind::Volume,
                source: None,
                target: target.to_string(),
                read_only: false,
                selinux: None,
                nocopy: false,
                subpath: None,
                propagation: None,
                create_host_path: true,
                tmpfs_size: None,
                tmpfs_mode: None,
            };
            for o in opts.split(',').filter(|o| !o.is_empty()) {
                match o {
                    "ro" => mt.read_only = true,
                    "rw" => mt.read_only = false,
                    "z" | "Z" => mt.selinux = Some(o.to_string()),
                    "nocopy" => mt.nocopy = true,
                    "consistent" | "cached" | "delegated" => {}
                    p if SHORT_VOLUME_OPTIONS.contains(&p) => mt.propagation = Some(p.to_string()),
                    other => {
                        c.error(
                            key,
                            format!(
                                "\"{other}\" is not a volume option ({})",
                                SHORT_VOLUME_OPTIONS.join(", ")
                            ),
                        );
                        return None;
                    }
                }
            }
            match src {
                Some(p) if is_path(p) => {
                    mt.kind = MountKind::Bind;
                    mt.source = Some(c.resolve(p).display().to_string());
                }
                Some(name) => mt.source = Some(name.to_string()),
                None => {}
            }
            Some(mt)
        }
    }
}

fn healthcheck(c: &mut Ctx, v: &Value) -> Option<Healthcheck> {
    let Value::Mapping(m) = v else {
        c.error("healthcheck", "must be a mapping");
        return None;
    };
    for k in m.keys().filter_map(Value::as_str) {
        if ![
            "test",
            "interval",
            "timeout",
            "retries",
            "start_period",
            "start_interval",
            "disable",
        ]
        .contains(&k)
        {
            c.error(&format!("healthcheck.{k}"), "is not a healthcheck key");
        }
    }
    let disable = m
        .get("disable")
        .and_then(|x| boolean(c, x, "healthcheck.disable"))
        .unwrap_or(false);
    let dur = |c: &mut Ctx, k: &str| {
        m.get(k)
            .and_then(|d| duration(c, d, &format!("healthcheck.{k}")))
    };
    let test = if disable {
        Some(vec!["NONE".to_string()])
    } else {
        match m.get("test") {
            Some(Value::Sequence(_)) => {
                let t = words(c, &m["test"], "healthcheck.test")?;
                match t.first().map(String::as_str) {
                    Some("CMD" | "CMD-SHELL" | "NONE") => Some(t),
                    _ => {
                        c.error(
                            "healthcheck.test",
                            "a list must start with CMD, CMD-SHELL or NONE",
                        );
                        return None;
                    }
                }
            }
            Some(Value::Null) | None => None,
            Some(other) => Some(vec![
                "CMD-SHELL".into(),
                string(c, other, "healthcheck.test")?,
            ]),
        }
    };
    let retries = match m.get("retries") {
        Some(x) => match integer(c, x, "healthcheck.retries") {
            Some(n) if (0..=u32::MAX as i64).contains(&n) => Some(n as u32),
            Some(_) => {
                c.error("healthcheck.retries", "must be a non-negative integer");
                None
            }
            None => None,
        },
        None => None,
    };
    Some(Healthcheck {
        test,
        interval: dur(c, "interval"),
        timeout: dur(c, "timeout"),
        retries,
        start_period: dur(c, "start_period"),
        start_interval: dur(c, "start_interval"),
    })
}

fn depends_on(c: &mut Ctx, v: &Value) -> Vec<Dependency> {
    let mut out = Vec::new();
    match v {
        Value::Sequence(items) => {
            for (i, x) in items.iter().enumerate() {
                if let Some(name) = string(c, x, &format!("depends_on[{i}]")) {
                    out.push(Dependency {
                        name,
                        condition: Condition::Started,
                        required: true,
                        restart: false,
                    });
                }
            }
        }
        Value::Mapping(m) => {
            for (k, spec) in m {
                let Some(name) = scalar(k) else { continue };
                let key = format!("depends_on.{name}");
                let mut d = Dependency {
                    name: name.clone(),
                    condition: Condition::Started,
                    required: true,
                    restart: false,
                };
                match spec {
                    Value::Mapping(s) => {
                        for sk in s.keys().filter_map(Value::as_str) {
                            if !["condition", "required", "restart"].contains(&sk) {
                                c.error(
                                    &format!("{key}.{sk}"),
                                    "is not a depends_on key (condition, required, restart)",
                                );
                            }
                        }
                        d.condition = match s.get("condition").and_then(scalar).as_deref() {
                            None | Some("service_started") => Condition::Started,
                            Some("service_healthy") => Condition::Healthy,
                            Some("service_completed_successfully") => {
                                Condition::CompletedSuccessfully
                            }
                            Some(other) => {
                                c.error(&format!("{key}.condition"), format!("\"{other}\" is not a condition (service_started, service_healthy, service_completed_successfully)"));
                                continue;
                            }
                        };
                        if let Some(x) = s.get("required") {
                            d.required = boolean(c, x, &format!("{key}.required")).unwrap_or(true);
                        }
                        if let Some(x) = s.get("restart") {
                            d.restart = boolean(c, x, &format!("{key}.restart")).unwrap_or(false);
                        }
                    }
                    Value::Null => {}
                    _ => {
                        c.error(&key, "must be a mapping with `condition`");
                        continue;
                    }
                }
                out.push(d);
            }
        }
        _ => c.error("depends_on", "must be a list of services or a mapping"),
    }
    out
}

fn networks(c: &mut Ctx, v: &Value) -> Vec<NetworkAttach> {
    let mut out = Vec::new();
    let attach = |key: String| NetworkAttach {
        key,
        aliases: Vec::new(),
        ipv4_address: None,
        ipv6_address: None,
        mac_address: None,
        priority: 0,
    };
    match v {
        Value::Sequence(items) => {
            for (i, x) in items.iter().enumerate() {
                if let Some(n) = string(c, x, &format!("networks[{i}]")) {
                    out.push(attach(n));
                }
            }
        }
        Value::Mapping(m) => {
            for (k, spec) in m {
                let Some(name) = scalar(k) else { continue };
                let key = format!("networks.{name}");
                let mut a = attach(name);
                if let Value::Mapping(s) = spec {
                    for sk in s.keys().filter_map(Value::as_str) {
                        match sk {
                            "aliases" => {
                                a.aliases = strings(c, &s["aliases"], &format!("{key}.aliases"))
                            }
                            "ipv4_address" => a.ipv4_address = s.get(sk).and_then(scalar),
                            "ipv6_address" => a.ipv6_address = s.get(sk).and_then(scalar),
                            "mac_address" => a.mac_address = s.get(sk).and_then(scalar),
                            "priority" => {
                                a.priority =
                                    integer(c, &s[sk], &format!("{key}.priority")).unwrap_or(0)
                            }
                            "link_local_ips" | "driver_opts" | "gw_priority" | "interface_name" => {
                                c.warn(&format!("{key}.{sk}"), format!("`{sk}` is not applied"))
                            }
                            other => c.error(
                                &format!("{key}.{other}"),
                                "is not a key of a service's network",
                            ),
                        }
                    }
                } else if !spec.is_null() {
                    c.error(
                        &key,
                        "must be a mapping (aliases, ipv4_address, …) or empty",
                    );
                }
                out.push(a);
            }
        }
        _ => c.error("networks", "must be a list of networks or a mapping"),
    }
    // The engine attaches the highest priority first.
    out.sort_by_key(|a| std::cmp::Reverse(a.priority));
    out
}

fn file_mounts(c: &mut Ctx, v: &Value, key: &str, default_dir: &str) -> Vec<FileMount> {
    let Value::Sequence(items) = v else {
        c.error(key, "must be a list");
        return Vec::new();
    };
    let mut out = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let k = format!("{key}[{i}]");
        let (source, target, mode) = match item {
            Value::Mapping(m) => {
                let Some(source) = m.get("source").and_then(scalar) else {
                    c.error(&format!("{k}.source"), "is required");
                    continue;
                };
                let mode = match m.get("mode") {
                    Some(Value::Number(n)) => n.as_u64().map(|x| x as u32),
                    Some(Value::String(s)) => {
                        u32::from_str_radix(s.trim_start_matches("0o").trim_start_matches('0'), 8)
                            .ok()
                            .or(Some(0))
                    }
                    _ => None,
                };
                for w in ["uid", "gid"] {
                    if m.contains_key(w) {
                        c.warn(
                            &format!("{k}.{w}"),
                            format!("`{w}` needs swarm; the file keeps its owner on the host"),
                        );
                    }
                }
                (source, m.get("target").and_then(scalar), mode)
            }
            other => match scalar(other) {
                Some(s) => (s, None, None),
                None => {
                    c.error(&k, "must be a name or a mapping with source");
                    continue;
                }
            },
        };
        let target = match target {
            Some(t) if t.starts_with('/') => t,
            Some(t) => format!("{default_dir}/{t}"),
            None => format!("{default_dir}/{source}"),
        };
        out.push(FileMount {
            source,
            target: target.replace("//", "/"),
            mode,
        });
    }
    out
}

fn env_files(c: &mut Ctx, v: &Value) -> Vec<EnvFileRef> {
    let items = match v {
        Value::Sequence(items) => items.clone(),
        Value::Null => Vec::new(),
        other => vec![other.clone()],
    };
    let mut out = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let key = format!("env_file[{i}]");
        match item {
            Value::Mapping(m) => {
                let Some(p) = m.get("path").and_then(scalar) else {
                    c.error(&format!("{key}.path"), "is required");
                    continue;
                };
                let required = m
                    .get("required")
                    .and_then(|x| boolean(c, x, &format!("{key}.required")))
                    .unwrap_or(true);
                if let Some(f) = m.get("format").and_then(scalar) {
                    if f != "raw" {
                        c.warn(
                            &format!("{key}.format"),
                            format!("format \"{f}\" is read as a dotenv file"),
                        );
                    }
                }
                out.push(EnvFileRef {
                    path: c.resolve(&p),
                    required,
                });
            }
            other => {
                if let Some(p) = string(c, other, &key) {
                    out.push(EnvFileRef {
                        path: c.resolve(&p),
                        required: true,
                    });
                }
            }
        }
    }
    out
}

fn ulimits(c: &mut Ctx, v: &Value) -> Vec<Ulimit> {
    let Value::Mapping(m) = v else {
        c.error("ulimits", "must be a mapping");
        return Vec::new();
    };
    let mut out = Vec::new();
    for (k, x) in m {
        let Some(name) = scalar(k) else { continue };
        let key = format!("ulimits.{name}");
        match x {
            Value::Mapping(l) => {
                let soft = l
                    .get("soft")
                    .and_then(|y| integer(c, y, &format!("{key}.soft")));
                let hard = l
                    .get("hard")
                    .and_then(|y| integer(c, y, &format!("{key}.hard")));
                match (soft, hard) {
                    (Some(s), Some(h)) => out.push(Ulimit {
                        name,
                        soft: s,
                        hard: h,
                    }),
                    _ => c.error(&key, "needs soft and hard"),
                }
            }
            other => {
                if let Some(n) = integer(c, other, &key) {
                    out.push(Ulimit {
                        name,
                        soft: n,
                        hard: n,
                    });
                }
            }
        }
    }
    out
}

fn extra_hosts(c: &mut Ctx, v: &Value) -> Vec<String> {
    let mut out = Vec::new();
    match v {
        Value::Mapping(m) => {
            for (k, x) in m {
                let Some(host) = scalar(k) else { continue };
                for ip in strings(c, x, &format!("extra_hosts.{host}")) {
                    out.push(format!("{host}:{ip}"));
                }
            }
        }
        other => {
            for (i, e) in strings(c, other, "extra_hosts").into_iter().enumerate() {
                // compose accepts `host=ip` and `host:ip`; the engine takes `host:ip`.
                match e.split_once('=').or_else(|| e.split_once(':')) {
                    Some((h, ip)) => out.push(format!(
                        "{h}:{}",
                        ip.trim_start_matches('[').trim_end_matches(']')
                    )),
                    None => c.error(
                        &format!("extra_hosts[{i}]"),
                        format!("\"{e}\" is not host:ip"),
                    ),
                }
            }
        }
    }
    out
}

fn devices(c: &mut Ctx, v: &Value) -> Vec<String> {
    let Value::Sequence(items) = v else {
        c.error("devices", "must be a list");
        return Vec::new();
    };
    let mut out = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let key = format!("devices[{i}]");
        match item {
            Value::Mapping(m) => match m.get("source").and_then(scalar) {
                Some(src) => {
                    let target = m
                        .get("target")
                        .and_then(scalar)
                        .unwrap_or_else(|| src.clone());
                    let perms = m
                        .get("permissions")
                        .and_then(scalar)
                        .unwrap_or_else(|| "rwm".into());
                    out.push(format!("{src}:{target}:{perms}"));
                }
                None => c.error(&format!("{key}.source"), "is required"),
            },
            other => {
                if let Some(s) = string(c, other, &key) {
                    if !s.starts_with('/') {
                        c.warn(&key, format!("CDI device \"{s}\" is not requested"));
                    } else {
                        out.push(s);
                    }
                }
            }
        }
    }
    out
}

fn deploy(c: &mut Ctx, v: &Value, s: &mut ComposeService) {
    let Value::Mapping(m) = v else {
        c.error("deploy", "must be a mapping");
        return;
    };
    for (k, x) in m {
        let Some(key) = k.as_str() else { continue };
        let at = format!("deploy.{key}");
        match key {
            "replicas" => {
                if let Some(n) = integer(c, x, &at) {
                    s.replicas = n.max(0) as u32;
                }
            }
            "resources" => {
                let Value::Mapping(r) = x else {
                    c.error(&at, "must be a mapping");
                    continue;
                };
                if let Some(Value::Mapping(l)) = r.get("limits") {
                    for (lk, lv) in l {
                        match lk.as_str() {
                            Some("cpus") => {
                                s.engine.nano_cpus = cpus(c, lv, "deploy.resources.limits.cpus")
                            }
                            Some("memory") => {
                                s.engine.memory = bytes(c, lv, "deploy.resources.limits.memory")
                            }
                            Some("pids") => {
                                s.engine.pids_limit = integer(c, lv, "deploy.resources.limits.pids")
                            }
                            Some(o) => c.warn(
                                &format!("deploy.resources.limits.{o}"),
                                format!("limit `{o}` is not applied"),
                            ),
                            None => {}
                        }
                    }
                }
                if let Some(Value::Mapping(rv)) = r.get("reservations") {
                    for (rk, rvv) in rv {
                        match rk.as_str() {
                            Some("memory") => {
                                s.engine.memory_reservation =
                                    bytes(c, rvv, "deploy.resources.reservations.memory")
                            }
                            Some(o) => c.warn(
                                &format!("deploy.resources.reservations.{o}"),
                                format!("reservation `{o}` is not applied on one host"),
                            ),
                            None => {}
                        }
                    }
                }
            }
            "restart_policy" => {
                let Value::Mapping(r) = x else {
                    c.error(&at, "must be a mapping");
                    continue;
                };
                let cond = r
                    .get("condition")
                    .and_then(scalar)
                    .unwrap_or_else(|| "any".into());
                let max = r
                    .get("max_attempts")
                    .and_then(|y| integer(c, y, "deploy.restart_policy.max_attempts"));
                let policy = match (cond.as_str(), max) {
                    ("none", _) => "no".to_string(),
                    ("on-failure", Some(n)) => format!("on-failure:{n}"),
                    ("on-failure", None) => "on-failure".into(),
                    ("any", _) => "always".into(),
                    (other, _) => {
                        c.error(
                            "deploy.restart_policy.condition",
                            format!("\"{other}\" is not none, on-failure or any"),
                        );
                        continue;
                    }
                };
                for w in ["delay", "window"] {
                    if r.contains_key(w) {
                        c.warn(&format!("deploy.restart_policy.{w}"), format!("`{w}` is superseded by the workspace agent's backoff (restartPolicy in nx.json)"));
                    }
                }
                if s.restart.is_none() {
                    s.restart = Some(policy);
                }
            }
            "mode" => match scalar(x).as_deref() {
                Some("replicated") | None => {}
                Some(other) => c.warn(
                    &at,
                    format!("mode \"{other}\" needs swarm; one container per replica runs"),
                ),
            },
            "labels" => c.warn(
                &at,
                "deploy.labels label a swarm service; they are not put on the container",
            ),
            "placement" | "update_config" | "rollback_config" | "endpoint_mode" => c.warn(
                &at,
                format!("`{key}` needs swarm; it is not applied on one host"),
            ),
            other => c.error(&format!("deploy.{other}"), "is not a deploy key"),
        }
    }
}

fn cpus(c: &mut Ctx, v: &Value, key: &str) -> Option<i64> {
    let s = string(c, v, key)?;
    match s.trim().parse::<f64>() {
        Ok(f) if f >= 0.0 => Some((f * 1e9) as i64),
        _ => {
            c.error(key, format!("\"{s}\" is not a number of CPUs like 0.5"));
            None
        }
    }
}

fn build(c: &mut Ctx, v: &Value) -> Option<Build> {
    let m = match v {
        Value::String(ctx) => {
            let mut m = Mapping::new();
            m.insert("context".into(), Value::from(ctx.as_str()));
            m
        }
        Value::Mapping(m) => m.clone(),
        _ => {
            c.error("build", "must be a path or a mapping");
            return None;
        }
    };
    let context = m
        .get("context")
        .and_then(scalar)
        .unwrap_or_else(|| ".".into());
    let remote = (context.contains("://") || context.starts_with("git@")).then(|| context.clone());
    let mut b = Build {
        context: if remote.is_some() {
            c.dir.to_path_buf()
        } else {
            c.resolve(&context)
        },
        remote,
        dockerfile: None,
        dockerfile_inline: None,
        args: BTreeMap::new(),
        target: None,
        labels: BTreeMap::new(),
        network: None,
        no_cache: false,
        pull: false,
        extra_hosts: Vec::new(),
        shm_size: None,
    };
    for (k, x) in &m {
        let Some(key) = k.as_str() else { continue };
        let at = format!("build.{key}");
        match key {
            "context" => {}
            "dockerfile" => b.dockerfile = string(c, x, &at),
            "dockerfile_inline" => b.dockerfile_inline = string(c, x, &at),
            "args" => b.args = key_values(c, x, &at, true),
            "target" => b.target = string(c, x, &at),
            "labels" => b.labels = key_values(c, x, &at, false),
            "network" => b.network = string(c, x, &at),
            "no_cache" => b.no_cache = boolean(c, x, &at).unwrap_or(false),
            "pull" => b.pull = boolean(c, x, &at).unwrap_or(false),
            "extra_hosts" => b.extra_hosts = extra_hosts(c, x),
            "shm_size" => b.shm_size = bytes(c, x, &at),
            "cache_from"
            | "cache_to"
            | "ssh"
            | "secrets"
            | "tags"
            | "platforms"
            | "additional_contexts"
            | "isolation"
            | "privileged"
            | "entitlements"
            | "ulimits"
            | "provenance"
            | "sbom" => c.warn(
                &at,
                format!("`build.{key}` needs BuildKit; the engine's classic builder ignores it"),
            ),
            other => c.error(&format!("build.{other}"), "is not a build key"),
        }
    }
    Some(b)
}

/// Normalizes one service mapping. Problems go to `c.diags`; the result is `None` only when
/// nothing usable is left (the caller then treats the service as broken either way).
pub fn normalize(c: &mut Ctx, m: &Mapping) -> ComposeService {
    let mut s = ComposeService {
        name: c.service.to_string(),
        image: None,
        build: None,
        pull_policy: "missing".into(),
        container_name: None,
        command: None,
        entrypoint: None,
        environment: BTreeMap::new(),
        env_files: Vec::new(),
        label_files: Vec::new(),
        ports: Vec::new(),
        volumes: Vec::new(),
        healthcheck: None,
        depends_on: Vec::new(),
        labels: BTreeMap::new(),
        restart: None,
        stop_grace_period: None,
        networks: Vec::new(),
        network_mode: None,
        secrets: Vec::new(),
        configs: Vec::new(),
        profiles: Vec::new(),
        replicas: 1,
        engine: EngineOptions::default(),
    };
    let mut deploy_value = None;
    for (k, v) in m {
        let Some(key) = k.as_str() else {
            c.error("", "keys must be strings");
            continue;
        };
        let e = &mut s.engine;
        match key {
            "image" => s.image = string(c, v, key).filter(|i| !i.is_empty()),
            "build" => s.build = build(c, v),
            "pull_policy" => match scalar(v).as_deref() {
                Some(p @ ("always" | "missing" | "never" | "build")) => s.pull_policy = p.into(),
                Some("if_not_present") => s.pull_policy = "missing".into(),
                Some(p) if p.starts_with("every_") || p == "daily" || p == "weekly" || p == "refresh" => {
                    c.warn(key, format!("\"{p}\" is read as `missing`: the image is pulled when absent"));
                }
                _ => c.error(key, "must be always, missing, never, build, if_not_present, daily, weekly or every_<duration>"),
            },
            "container_name" => s.container_name = string(c, v, key),
            "command" => s.command = words(c, v, key),
            "entrypoint" => s.entrypoint = words(c, v, key),
            "environment" => s.environment = key_values(c, v, key, true),
            "env_file" => s.env_files = env_files(c, v),
            "label_file" => s.label_files = strings(c, v, key).iter().map(|p| c.resolve(p)).collect(),
            "labels" => s.labels = key_values(c, v, key, false),
            "ports" => s.ports = ports(c, v),
            "expose" => {
                for (i, x) in strings(c, v, key).into_iter().enumerate() {
                    let (p, proto) = x.split_once('/').map(|(a, b)| (a.to_string(), b.to_string())).unwrap_or((x.clone(), "tcp".into()));
                    match port_range(&p) {
                        Some((a, b)) => e.expose.extend((a..=b).map(|n| format!("{n}/{proto}"))),
                        None => c.error(&format!("expose[{i}]"), format!("\"{x}\" is not a port or range")),
                    }
                }
            }
            "volumes" => match v {
                Value::Sequence(items) => {
                    for (i, x) in items.iter().enumerate() {
                        if let Some(mt) = mount(c, x, &format!("volumes[{i}]")) {
                            s.volumes.push(mt);
                        }
                    }
                }
                _ => c.error(key, "must be a list"),
            },
            "tmpfs" => {
                for t in strings(c, v, key) {
                    let (path, opts) = t.split_once(':').map(|(a, b)| (a.to_string(), b.to_string())).unwrap_or((t.clone(), String::new()));
                    s.engine.tmpfs.insert(path, opts);
                }
            }
            "healthcheck" => s.healthcheck = healthcheck(c, v),
            "depends_on" => s.depends_on = depends_on(c, v),
            "restart" => match scalar(v) {
                Some(r) if matches!(r.as_str(), "no" | "always" | "unless-stopped" | "on-failure") || r.strip_prefix("on-failure:").is_some_and(|n| n.parse::<u32>().is_ok()) => s.restart = Some(r),
                Some(r) if r == "false" => s.restart = Some("no".into()),
                _ => c.error(key, "must be no, always, on-failure[:N] or unless-stopped"),
            },
            "stop_grace_period" => s.stop_grace_period = duration(c, v, key),
            "stop_signal" => e.stop_signal = string(c, v, key),
            "networks" => s.networks = networks(c, v),
            "network_mode" => s.network_mode = string(c, v, key),
            "secrets" => s.secrets = file_mounts(c, v, key, "/run/secrets"),
            "configs" => s.configs = file_mounts(c, v, key, ""),
            "profiles" => s.profiles = strings(c, v, key),
            "scale" => {
                if let Some(n) = integer(c, v, key) {
                    s.replicas = n.max(0) as u32;
                }
            }
            "deploy" => deploy_value = Some(v.clone()),
            "extends" => {} // resolved by the loader
            "hostname" => e.hostname = string(c, v, key),
            "domainname" => e.domainname = string(c, v, key),
            "user" => e.user = string(c, v, key),
            "working_dir" => e.working_dir = string(c, v, key),
            "mac_address" => e.mac_address = string(c, v, key),
            "tty" => e.tty = boolean(c, v, key).unwrap_or(false),
            "stdin_open" => e.stdin_open = boolean(c, v, key).unwrap_or(false),
            "platform" => e.platform = string(c, v, key),
            "cap_add" => e.cap_add = strings(c, v, key),
            "cap_drop" => e.cap_drop = strings(c, v, key),
            "privileged" => e.privileged = boolean(c, v, key).unwrap_or(false),
            "init" => e.init = boolean(c, v, key),
            "read_only" => e.read_only = boolean(c, v, key).unwrap_or(false),
            "shm_size" => e.shm_size = bytes(c, v, key),
            "ulimits" => e.ulimits = ulimits(c, v),
            "sysctls" => e.sysctls = key_values(c, v, key, false),
            "extra_hosts" => e.extra_hosts = extra_hosts(c, v),
            "dns" => e.dns = strings(c, v, key),
            "dns_search" => e.dns_search = strings(c, v, key),
            "dns_opt" => e.dns_opt = strings(c, v, key),
            "devices" => e.devices = devices(c, v),
            "device_cgroup_rules" => e.device_cgroup_rules = strings(c, v, key),
            "security_opt" => e.security_opt = strings(c, v, key),
            "pid" => e.pid = string(c, v, key),
            "ipc" => e.ipc = string(c, v, key),
            "uts" => e.uts = string(c, v, key),
            "userns_mode" => e.userns_mode = string(c, v, key),
            "cgroup" => e.cgroup = string(c, v, key),
            "cgroup_parent" => e.cgroup_parent = string(c, v, key),
            "runtime" => e.runtime = string(c, v, key),
            "isolation" => e.isolation = string(c, v, key),
            "mem_limit" => e.memory = bytes(c, v, key),
            "mem_reservation" => e.memory_reservation = bytes(c, v, key),
            "memswap_limit" => e.memory_swap = match scalar(v).as_deref() {
                Some("-1") => Some(-1),
                _ => bytes(c, v, key),
            },
            "mem_swappiness" => e.memory_swappiness = integer(c, v, key),
            "cpus" => e.nano_cpus = cpus(c, v, key),
            "cpu_shares" => e.cpu_shares = integer(c, v, key),
            "cpu_period" => e.cpu_period = integer(c, v, key),
            "cpu_quota" => e.cpu_quota = integer(c, v, key),
            "cpuset" => e.cpuset_cpus = string(c, v, key),
            "pids_limit" => e.pids_limit = integer(c, v, key),
            "group_add" => e.group_add = strings(c, v, key),
            "oom_score_adj" => e.oom_score_adj = integer(c, v, key),
            "oom_kill_disable" => e.oom_kill_disable = boolean(c, v, key),
            "storage_opt" => e.storage_opt = key_values(c, v, key, false),
            "links" => e.links = strings(c, v, key),
            "volumes_from" => e.volumes_from = strings(c, v, key),
            "logging" => match v {
                Value::Mapping(l) => {
                    e.log_driver = l.get("driver").and_then(scalar);
                    if let Some(o) = l.get("options") {
                        e.log_opts = key_values(c, o, "logging.options", false);
                    }
                    if let Some(d) = &e.log_driver {
                        if !matches!(d.as_str(), "json-file" | "local" | "journald") {
                            let d = d.clone();
                            c.warn("logging.driver", format!("with log driver \"{d}\" the engine cannot stream the container's output, so its log files stay empty (json-file, local and journald can)"));
                        }
                    }
                }
                _ => c.error(key, "must be a mapping with driver and options"),
            },
            other => {
                if let Some((_, why)) = NOT_APPLIED.iter().find(|(k, _)| *k == other) {
                    c.warn(key, format!("`{other}` is not applied: {why}"));
                } else if !SERVICE_KEYS.contains(&other) {
                    c.error(key, format!("is not a service key of the compose specification{}", suggestion(other)));
                }
            }
        }
    }
    if let Some(d) = deploy_value {
        deploy(c, &d, &mut s);
    }
    if s.image.is_none() && s.build.is_none() {
        c.error("image", "is required (or `build`)");
    }
    if s.network_mode.is_some() && !s.networks.is_empty() {
        c.error("network_mode", "cannot be used together with `networks`");
    }
    s
}

/// ` (did you mean "x"?)` for a key one edit away from a real one.
fn suggestion(key: &str) -> String {
    SERVICE_KEYS
        .iter()
        .find(|k| strsim::levenshtein(k, key) <= 1)
        .map(|k| format!(" (did you mean `{k}`?)"))
        .unwrap_or_default()
}
