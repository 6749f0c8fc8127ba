//! Pure: the container a compose service becomes for one workspace and profile — name, image
//! (or the build that makes it), env, ports, mounts, secrets, healthcheck, networks, the Engine
//! API options compose takes, and the labels that make it recognisable (compose's own plus
//! ours). The spec travels as JSON to the container runner, and its hash decides whether a
//! running container can be adopted or must be recreated.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::compose::{
    Build, ComposeFile, ComposeService, Condition, EngineOptions, MountKind, PortMapping,
};

pub const LABEL_WORKSPACE: &str = "dev.orchestrator.workspace";
pub const LABEL_PROFILE: &str = "dev.orchestrator.profile";
pub const LABEL_SERVICE: &str = "dev.orchestrator.service";
pub const LABEL_HASH: &str = "dev.orchestrator.config-hash";
/// On an image we built: the hash of its build context and settings.
pub const LABEL_CONTEXT_HASH: &str = "dev.orchestrator.context-hash";
pub const COMPOSE_PROJECT: &str = "com.docker.compose.project";
pub const COMPOSE_SERVICE: &str = "com.docker.compose.service";
pub const COMPOSE_ONEOFF: &str = "com.docker.compose.oneoff";
pub const COMPOSE_NUMBER: &str = "com.docker.compose.container-number";
pub const COMPOSE_NETWORK: &str = "com.docker.compose.network";
pub const COMPOSE_VOLUME: &str = "com.docker.compose.volume";

/// compose's default `stop_grace_period`.
pub const DEFAULT_STOP_SECONDS: u64 = 10;
pub const DEFAULT_HEALTH_TIMEOUT_SECONDS: u64 = 90;

pub type PortSpec = PortMapping;

/// A bind mount whose host path must already exist (compose `bind.create_host_path: false`):
/// sent as a mount, which the engine refuses when the path is missing, where a `binds` entry
/// would create it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BindMount {
    pub source: String,
    pub target: String,
    pub read_only: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub propagation: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VolumeSpec {
    /// Engine-side volume name: `name:` as written, else `<project>_<key>` as compose names it.
    pub name: String,
    pub target: String,
    pub read_only: bool,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub nocopy: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subpath: Option<String>,
    /// Used exactly as named, never created: missing is an error.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub external: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub driver: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub driver_opts: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NetworkSpec {
    /// Engine-side name: `name:` as written, else `<project>_<key>`.
    pub name: String,
    pub aliases: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipv4_address: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipv6_address: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mac_address: Option<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub external: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub driver: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub driver_opts: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub internal: bool,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub attachable: bool,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub enable_ipv6: bool,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipam_driver: Option<String>,
    /// `(subnet, gateway, ip_range)`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ipam: Vec<(Option<String>, Option<String>, Option<String>)>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HealthSpec {
    /// `None`: the image's test, with the timings below.
    pub test: Option<Vec<String>>,
    pub interval_ns: Option<i64>,
    pub timeout_ns: Option<i64>,
    pub retries: Option<i64>,
    pub start_period_ns: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_interval_ns: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerSpec {
    pub service: String,
    pub workspace: String,
    pub profile: String,
    pub project: String,
    /// Container name: `container_name`, else `<project>-<service>-<n>` as compose names it.
    pub name: String,
    pub image: String,
    /// Set when the image is built from a context (`build:`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub build: Option<Build>,
    /// `always`, `missing`, `never`, `build`.
    #[serde(default = "missing")]
    pub pull_policy: String,
    /// `NAME=value`, sorted by name (env_file first, `environment` wins).
    pub env: Vec<String>,
    pub cmd: Option<Vec<String>>,
    pub entrypoint: Option<Vec<String>>,
    pub ports: Vec<PortSpec>,
    /// Bind mounts as the engine takes them: `/abs/src:/target[:ro][,z]`, secrets and configs
    /// included (read-only).
    pub binds: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub bind_mounts: Vec<BindMount>,
    pub volumes: Vec<VolumeSpec>,
    /// Anonymous volumes (`- /data`): created by the engine, carried over on recreate.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub anonymous: Vec<String>,
    /// `None`: the image's own healthcheck applies (if any). `["NONE"]` disables it.
    pub healthcheck: Option<HealthSpec>,
    pub labels: BTreeMap<String, String>,
    /// The networks to attach, the first at create time; empty with a `network_mode`.
    pub networks: Vec<NetworkSpec>,
    /// `host`, `none`, `container:<name>`, when the service has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network_mode: Option<String>,
    pub stop_timeout_seconds: u64,
    /// How long `start` waits for healthy (not part of the container's identity).
    #[serde(default)]
    pub health_timeout_seconds: u64,
    /// Engine options as compose gives them, `service:` references resolved.
    #[serde(default)]
    pub engine: EngineOptions,
    /// What `restart:` says (`no`, `always`, `on-failure[:N]`, `unless-stopped`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restart: Option<String>,
    /// Other services' containers it waits on to run to completion first (one-shot jobs).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub completes_before: Vec<String>,
    /// `deploy.replicas` / `scale`: this many containers, one runner (PM2 instance) each.
    #[serde(default = "one", skip_serializing_if = "is_one")]
    pub replicas: u32,
}

fn one() -> u32 {
    1
}

fn is_one(n: &u32) -> bool {
    *n == 1
}

fn missing() -> String {
    "missing".into()
}

impl ContainerSpec {
    /// Identity of what the engine would run: everything but the wait limit.
    pub fn config_hash(&self) -> String {
        let mut s = self.clone();
        s.health_timeout_seconds = 0;
        let bytes = serde_json::to_vec(&s).unwrap_or_default();
        let digest = Sha256::digest(&bytes);
        digest.iter().take(12).map(|b| format!("{b:02x}")).collect()
    }

    /// Labels on the created container: ours + compose's + the config hash.
    pub fn container_labels(&self) -> BTreeMap<String, String> {
        let mut l = self.labels.clone();
        l.insert(LABEL_HASH.into(), self.config_hash());
        l
    }

    pub fn has_healthcheck(&self, image_has_one: bool) -> bool {
        match self.healthcheck.as_ref().and_then(|h| h.test.as_ref()) {
            Some(t) => t.first().map(String::as_str) != Some("NONE"),
            None => image_has_one,
        }
    }

    /// Host ports fixed by the file (ephemeral and ranged ones are the engine's choice).
    pub fn host_ports(&self) -> Vec<u16> {
        self.ports
            .iter()
            .filter(|p| p.host_port_end.is_none())
            .filter_map(|p| p.host_port)
            .collect()
    }

    /// Replica `n` (1-based) of a replicated service: its own container name
    /// (`<project>-<service>-<n>`, as compose numbers them) and container-number label.
    pub fn replica(&self, n: u32) -> ContainerSpec {
        let mut r = self.clone();
        if n > 1 || self.replicas > 1 {
            r.name = format!("{}-{}-{n}", self.project, self.service);
            r.labels.insert(COMPOSE_NUMBER.into(), n.to_string());
        }
        r
    }

    /// Every replica's spec, in order.
    pub fn replicas(&self) -> Vec<ContainerSpec> {
        (1..=self.replicas.max(1))
            .map(|n| self.replica(n))
            .collect()
    }

    /// The network the container is created on (its `NetworkMode`).
    pub fn primary_network(&self) -> Option<&NetworkSpec> {
        self.networks.first()
    }
}

/// compose's project-name rule: lowercase letters, digits, `_`, `-`.
pub fn project_name(compose: &ComposeFile, workspace_name: &str) -> String {
    let raw = compose
        .name
        .clone()
        .unwrap_or_else(|| workspace_name.into());
    let mut s: String = raw
        .to_lowercase()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect();
    s = s.trim_matches(|c| c == '-' || c == '_').to_string();
    if s.is_empty() {
        "workspace".into()
    } else {
        s
    }
}

/// The container name of replica `n` of a service (what `service:<name>` references resolve to).
pub fn container_name(project: &str, s: &ComposeService, n: u32) -> String {
    s.container_name
        .clone()
        .unwrap_or_else(|| format!("{project}-{}-{n}", s.name))
}

fn nanos(d: Option<std::time::Duration>) -> Option<i64> {
    d.map(|d| d.as_nanos().min(i64::MAX as u128) as i64)
}

pub struct SpecInput<'a> {
    pub workspace_root: &'a Path,
    pub workspace_name: &'a str,
    pub profile: &'a str,
    pub compose: &'a ComposeFile,
    pub service: &'a ComposeService,
    /// Variables read from the service's `env_file`s, in order.
    pub env_file_vars: Vec<(String, String)>,
    pub health_timeout_seconds: Option<u64>,
    /// Which replica (1-based).
    pub replica: u32,
}

/// Where the text of an `environment:` secret or a `content:` config is written for a bind
/// mount: under the workspace's private state directory, never in the spec itself.
pub fn secret_file(root: &Path, service: &str, kind: &str, name: &str) -> PathBuf {
    crate::layout::files_dir(root, service).join(format!("{kind}-{name}"))
}

/// Pure: the files a service's secrets and configs need written first (`environment:` secrets,
/// `content:` configs): path and text.
pub fn secret_contents(
    root: &Path,
    compose: &ComposeFile,
    s: &ComposeService,
) -> Vec<(PathBuf, String)> {
    let mut out = Vec::new();
    for (kind, list, defs) in [
        ("secret", &s.secrets, &compose.secrets),
        ("config", &s.configs, &compose.configs),
    ] {
        for f in list {
            if let Some(text) = defs.get(&f.source).and_then(|d| d.content.clone()) {
                out.push((secret_file(root, &s.name, kind, &f.source), text));
            }
        }
    }
    out
}

fn resolve_ref(v: &Option<String>, project: &str, compose: &ComposeFile) -> Option<String> {
    let v = v.as_ref()?;
    match v.strip_prefix("service:") {
        Some(other) => Some(format!(
            "container:{}",
            compose
                .service(other)
                .map(|o| container_name(project, o, 1))
                .unwrap_or_else(|| format!("{project}-{other}-1"))
        )),
        None => Some(v.clone()),
    }
}

/// Pure: the container for a compose service.
pub fn spec(input: SpecInput) -> ContainerSpec {
    let s = input.service;
    let c = input.compose;
    let root = input.workspace_root;
    let project = project_name(c, input.workspace_name);
    let mut env: BTreeMap<String, String> = input.env_file_vars.into_iter().collect();
    for (k, v) in &s.environment {
        env.insert(k.clone(), v.clone());
    }
    let mut binds = Vec::new();
    let mut bind_mounts = Vec::new();
    let mut volumes = Vec::new();
    let mut anonymous = Vec::new();
    let mut engine = s.engine.clone();
    for m in &s.volumes {
        match (m.kind, &m.source) {
            // The mount API has no SELinux relabelling: with `z`/`Z` it stays a bind.
            (MountKind::Bind, Some(p)) if !m.create_host_path && m.selinux.is_none() => {
                bind_mounts.push(BindMount {
                    source: p.clone(),
                    target: m.target.clone(),
                    read_only: m.read_only,
                    propagation: m.propagation.clone(),
                });
            }
            (MountKind::Bind, Some(p)) => {
                let mut opts: Vec<&str> = Vec::new();
                if m.read_only {
                    opts.push("ro");
                }
                if let Some(z) = &m.selinux {
                    opts.push(z);
                }
                if let Some(p) = &m.propagation {
                    opts.push(p);
                }
                binds.push(if opts.is_empty() {
                    format!("{p}:{}", m.target)
                } else {
                    format!("{p}:{}:{}", m.target, opts.join(","))
                });
            }
            (MountKind::Volume, Some(key)) => {
                let def = c.volumes.get(key).cloned().unwrap_or_default();
                let mut labels = def.labels.clone();
                if !def.external {
                    labels.insert(COMPOSE_PROJECT.into(), project.clone());
                    labels.insert(COMPOSE_VOLUME.into(), key.clone());
                }
                volumes.push(VolumeSpec {
                    name: def
                        .name
                        .clone()
                        .unwrap_or_else(|| format!("{project}_{key}")),
                    target: m.target.clone(),
                    read_only: m.read_only,
                    nocopy: m.nocopy,
                    subpath: m.subpath.clone(),
                    external: def.external,
                    driver: def.driver.clone(),
                    driver_opts: def.driver_opts.clone(),
                    labels,
                });
            }
            (MountKind::Volume, None) => anonymous.push(m.target.clone()),
            (MountKind::Tmpfs, _) => {
                let mut o = Vec::new();
                if let Some(sz) = m.tmpfs_size {
                    o.push(format!("size={sz}"));
                }
                if let Some(md) = m.tmpfs_mode {
                    o.push(format!("mode={md:o}"));
                }
                engine.tmpfs.insert(m.target.clone(), o.join(","));
            }
            _ => {}
        }
    }
    for (kind, list, defs) in [
        ("secret", &s.secrets, &c.secrets),
        ("config", &s.configs, &c.configs),
    ] {
        for f in list {
            let Some(def) = defs.get(&f.source) else {
                continue;
            };
            let host = match (&def.file, &def.content) {
                (Some(p), _) => p.clone(),
                (None, Some(_)) => secret_file(root, &s.name, kind, &f.source),
                _ => continue,
            };
            binds.push(format!("{}:{}:ro", host.display(), f.target));
        }
    }
    // Networks: the service's, or the project's `default`; aliases include the service name.
    let mut networks = Vec::new();
    let network_mode = match s.network_mode.as_deref() {
        Some(m) => resolve_ref(&Some(m.to_string()), &project, c),
        None => None,
    };
    if network_mode.is_none() {
        let attach: Vec<crate::compose::NetworkAttach> = if s.networks.is_empty() {
            vec![crate::compose::NetworkAttach {
                key: "default".into(),
                aliases: Vec::new(),
                ipv4_address: None,
                ipv6_address: None,
                mac_address: engine.mac_address.clone(),
                priority: 0,
            }]
        } else {
            s.networks.clone()
        };
        for a in attach {
            let def = c.networks.get(&a.key).cloned().unwrap_or_default();
            let mut aliases = vec![s.name.clone()];
            for al in &a.aliases {
                if !aliases.contains(al) {
                    aliases.push(al.clone());
                }
            }
            let mut labels = def.labels.clone();
            if !def.external {
                labels.insert(COMPOSE_PROJECT.into(), project.clone());
                labels.insert(COMPOSE_NETWORK.into(), a.key.clone());
            }
            networks.push(NetworkSpec {
                name: def
                    .name
                    .clone()
                    .unwrap_or_else(|| format!("{project}_{}", a.key)),
                aliases,
                ipv4_address: a.ipv4_address.clone(),
                ipv6_address: a.ipv6_address.clone(),
                mac_address: a.mac_address.clone(),
                external: def.external,
                driver: def.driver.clone(),
                driver_opts: def.driver_opts.clone(),
                internal: def.internal,
                attachable: def.attachable,
                enable_ipv6: def.enable_ipv6,
                labels,
                ipam_driver: def.ipam_driver.clone(),
                ipam: def
                    .ipam
                    .iter()
                    .map(|p| (p.subnet.clone(), p.gateway.clone(), p.ip_range.clone()))
                    .collect(),
            });
        }
    }
    engine.mac_address = None; // carried on the primary network's endpoint
    engine.pid = resolve_ref(&engine.pid, &project, c);
    engine.ipc = resolve_ref(&engine.ipc, &project, c);
    engine.links = engine
        .links
        .iter()
        .map(|l| {
            let (svc, alias) = l.split_once(':').unwrap_or((l, l));
            let target = c
                .service(svc)
                .map(|o| container_name(&project, o, 1))
                .unwrap_or_else(|| svc.to_string());
            format!("{target}:{alias}")
        })
        .collect();
    engine.volumes_from = engine
        .volumes_from
        .iter()
        .map(|v| match v.strip_prefix("container:") {
            Some(rest) => rest.to_string(),
            None => {
                let (svc, mode) = v
                    .split_once(':')
                    .map(|(a, b)| (a, Some(b)))
                    .unwrap_or((v, None));
                let name = c
                    .service(svc)
                    .map(|o| container_name(&project, o, 1))
                    .unwrap_or_else(|| svc.to_string());
                match mode {
                    Some(m) => format!("{name}:{m}"),
                    None => name,
                }
            }
        })
        .collect();
    let mut labels = s.labels.clone();
    labels.insert(COMPOSE_PROJECT.into(), project.clone());
    labels.insert(COMPOSE_SERVICE.into(), s.name.clone());
    labels.insert(COMPOSE_ONEOFF.into(), "False".into());
    labels.insert(COMPOSE_NUMBER.into(), input.replica.to_string());
    labels.insert(LABEL_WORKSPACE.into(), root.display().to_string());
    labels.insert(LABEL_PROFILE.into(), input.profile.into());
    labels.insert(LABEL_SERVICE.into(), s.name.clone());
    let completes_before = s
        .depends_on
        .iter()
        .filter(|d| d.condition == Condition::CompletedSuccessfully)
        .map(|d| d.name.clone())
        .collect();
    ContainerSpec {
        service: s.name.clone(),
        workspace: root.display().to_string(),
        profile: input.profile.into(),
        name: container_name(&project, s, input.replica),
        image: s
            .image
            .clone()
            .unwrap_or_else(|| format!("{project}-{}", s.name)),
        build: s.build.clone(),
        pull_policy: s.pull_policy.clone(),
        project,
        env: env.into_iter().map(|(k, v)| format!("{k}={v}")).collect(),
        cmd: s.command.clone(),
        entrypoint: s.entrypoint.clone(),
        ports: s.ports.clone(),
        binds,
        bind_mounts,
        volumes,
        anonymous,
        healthcheck: s.healthcheck.as_ref().map(|h| HealthSpec {
            test: h.test.clone(),
            interval_ns: nanos(h.interval),
            timeout_ns: nanos(h.timeout),
            retries: h.retries.map(i64::from),
            start_period_ns: nanos(h.start_period),
            start_interval_ns: nanos(h.start_interval),
        }),
        labels,
        networks,
        network_mode,
        stop_timeout_seconds: s
            .stop_grace_period
            .map(|d| d.as_secs().max(1))
            .unwrap_or(DEFAULT_STOP_SECONDS),
        health_timeout_seconds: input
            .health_timeout_seconds
            .unwrap_or(DEFAULT_HEALTH_TIMEOUT_SECONDS),
        engine,
        restart: s.restart.clone(),
        completes_before,
        replicas: s.replicas.max(1),
    }
}

/// Whether some service depends on `name` with a condition that needs `name` up first.
pub fn gates(compose: &ComposeFile, name: &str) -> bool {
    compose
        .services
        .iter()
        .any(|s| s.depends_on.iter().any(|d| d.name == name))
}

/// Whether `name` is a one-shot job: some service waits for it to complete successfully.
pub fn is_one_shot(compose: &ComposeFile, name: &str) -> bool {
    compose.services.iter().any(|s| {
        s.depends_on
            .iter()
            .any(|d| d.name == name && d.condition == Condition::CompletedSuccessfully)
    })
}

/// Pure: the services that restart because one of `restarted` does (`depends_on` with
/// `restart: true`), transitively, not already in `restarted`.
pub fn restart_cascade(compose: &ComposeFile, restarted: &[String]) -> Vec<String> {
    let mut all: Vec<String> = restarted.to_vec();
    let mut added = Vec::new();
    loop {
        let next: Vec<String> = compose
            .services
            .iter()
            .filter(|s| !all.contains(&s.name))
            .filter(|s| {
                s.depends_on
                    .iter()
                    .any(|d| d.restart && all.contains(&d.name))
            })
            .map(|s| s.name.clone())
            .collect();
        if next.is_empty() {
            return added;
        }
        all.extend(next.iter().cloned());
        added.extend(next);
    }
}

/// Pure: `wanted` plus everything it depends on (transitively), in `order`.
pub fn with_dependencies(
    compose: &ComposeFile,
    wanted: &[String],
    order: &[String],
) -> Vec<String> {
    let mut set: Vec<String> = Vec::new();
    let mut stack: Vec<String> = wanted.to_vec();
    while let Some(n) = stack.pop() {
        if set.contains(&n) {
            continue;
        }
        if let Some(s) = compose.service(&n) {
            for d in &s.depends_on {
                stack.push(d.name.clone());
            }
        }
        set.push(n);
    }
    order.iter().filter(|o| set.contains(o)).cloned().collect()
}

#[cfg(test)]
mod tests;
