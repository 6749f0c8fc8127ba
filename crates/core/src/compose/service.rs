//! Normalization of one service definition (after merging and interpolation) into the model.
//! Every key of the specification is known here: the ones the Engine API takes are mapped, the
//! ones that cannot apply on one host are warnings naming them, and a key the specification
//! does not have is an error — of this service only. Every problem is collected; nothing stops
//! at the first.

use std::collections::BTreeMap;

use serde_yaml_ng::{Mapping, Value};

use super::model::*;

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

pub mod ctx;
pub mod keys;
pub mod mounts;
pub mod ports;

use ctx::*;
pub use ctx::{clean, parse_bytes, parse_duration, scalar, Ctx};
use keys::*;
use mounts::*;
pub use ports::parse_port_short;
use ports::*;

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
        develop: Vec::new(),
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
            "develop" => s.develop = develop(c, v),
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
