//! The structured keys of a service: healthcheck, depends_on, networks, env_file, ulimits,
//! extra_hosts, devices, deploy, build.

use std::collections::BTreeMap;

use serde_yaml_ng::{Mapping, Value};

use super::ctx::*;
use crate::compose::model::*;

pub(crate) fn healthcheck(c: &mut Ctx, v: &Value) -> Option<Healthcheck> {
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

pub(crate) fn depends_on(c: &mut Ctx, v: &Value) -> Vec<Dependency> {
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

pub(crate) fn networks(c: &mut Ctx, v: &Value) -> Vec<NetworkAttach> {
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

pub(crate) fn env_files(c: &mut Ctx, v: &Value) -> Vec<EnvFileRef> {
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

pub(crate) fn ulimits(c: &mut Ctx, v: &Value) -> Vec<Ulimit> {
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

pub(crate) fn extra_hosts(c: &mut Ctx, v: &Value) -> Vec<String> {
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

pub(crate) fn devices(c: &mut Ctx, v: &Value) -> Vec<String> {
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

pub(crate) fn deploy(c: &mut Ctx, v: &Value, s: &mut ComposeService) {
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

pub(crate) fn cpus(c: &mut Ctx, v: &Value, key: &str) -> Option<i64> {
    let s = string(c, v, key)?;
    match s.trim().parse::<f64>() {
        Ok(f) if f >= 0.0 => Some((f * 1e9) as i64),
        _ => {
            c.error(key, format!("\"{s}\" is not a number of CPUs like 0.5"));
            None
        }
    }
}

pub(crate) fn build(c: &mut Ctx, v: &Value) -> Option<Build> {
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

/// `develop`: its `watch` rules (the Develop part of the specification). A rule with a problem
/// is an error of this service and left out.
pub(crate) fn develop(c: &mut Ctx, v: &Value) -> Vec<WatchRule> {
    let Value::Mapping(m) = v else {
        c.error("develop", "must be a mapping");
        return Vec::new();
    };
    for k in m.keys().filter_map(Value::as_str) {
        if k != "watch" && !k.starts_with("x-") {
            c.error(&format!("develop.{k}"), "is not a develop key (watch)");
        }
    }
    let mut out = Vec::new();
    let rules = match m.get("watch") {
        None | Some(Value::Null) => return out,
        Some(Value::Sequence(items)) => items,
        Some(_) => {
            c.error("develop.watch", "must be a list of rules");
            return out;
        }
    };
    for (i, r) in rules.iter().enumerate() {
        let key = format!("develop.watch[{i}]");
        let Value::Mapping(r) = r else {
            c.error(&key, "must be a mapping with path and action");
            continue;
        };
        for k in r.keys().filter_map(Value::as_str) {
            if ![
                "path",
                "action",
                "target",
                "ignore",
                "include",
                "exec",
                "initial_sync",
            ]
            .contains(&k)
                && !k.starts_with("x-")
            {
                c.error(
                    &format!("{key}.{k}"),
                    "is not a watch rule key (path, action, target, ignore, include, exec, initial_sync)",
                );
            }
        }
        let path = r
            .get("path")
            .and_then(|p| string(c, p, &format!("{key}.path")));
        let action = r
            .get("action")
            .and_then(|a| string(c, a, &format!("{key}.action")));
        let Some(path) = path.filter(|p| !p.is_empty()) else {
            c.error(&format!("{key}.path"), "is required");
            continue;
        };
        let action = match action.as_deref() {
            Some(a @ ("sync" | "rebuild" | "restart" | "sync+restart" | "sync+exec")) => {
                a.to_string()
            }
            Some(other) => {
                c.error(
                    &format!("{key}.action"),
                    format!("\"{other}\" is not an action (sync, rebuild, restart, sync+restart, sync+exec)"),
                );
                continue;
            }
            None => {
                c.error(&format!("{key}.action"), "is required");
                continue;
            }
        };
        let target = r
            .get("target")
            .and_then(|t| string(c, t, &format!("{key}.target")));
        if action.starts_with("sync") && target.as_deref().is_none_or(str::is_empty) {
            c.error(
                &format!("{key}.target"),
                format!("is required for `{action}` (where the files go in the container)"),
            );
            continue;
        }
        let exec = match r.get("exec") {
            Some(Value::Mapping(e)) => e
                .get("command")
                .and_then(|x| words(c, x, &format!("{key}.exec.command"))),
            Some(_) => {
                c.error(&format!("{key}.exec"), "must be a mapping with command");
                continue;
            }
            None => None,
        };
        if action == "sync+exec" && exec.is_none() {
            c.error(
                &format!("{key}.exec.command"),
                "is required for `sync+exec`",
            );
            continue;
        }
        let list = |c: &mut Ctx, k: &str| match r.get(k) {
            Some(x) => strings(c, x, &format!("{key}.{k}")),
            None => Vec::new(),
        };
        let ignore = list(c, "ignore");
        let include = list(c, "include");
        let initial_sync = r
            .get("initial_sync")
            .and_then(|x| boolean(c, x, &format!("{key}.initial_sync")))
            .unwrap_or(false);
        out.push(WatchRule {
            path: c.resolve(&path),
            action,
            target,
            ignore,
            include,
            exec,
            initial_sync,
        });
    }
    out
}
