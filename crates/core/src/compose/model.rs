//! The normalized compose model: what a compose file means on one host once loading, merging,
//! interpolation and normalization are done. One model of each thing; the container spec and
//! the engine calls are built from it.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DiagLevel {
    Error,
    Warning,
}

/// One finding of the loader: where (file, key path, line), what, and what to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diag {
    pub severity: DiagLevel,
    pub file: PathBuf,
    pub key: String,
    pub line: Option<u32>,
    /// The service it belongs to; `None` for the file (or a top-level resource).
    pub service: Option<String>,
    pub message: String,
    pub remediation: String,
    /// A `${VAR:?}` whose variable is missing: the service cannot start until it is set.
    pub var: Option<String>,
}

impl Diag {
    pub fn is_error(&self) -> bool {
        self.severity == DiagLevel::Error
    }

    /// `file:line: key: message`.
    pub fn located(&self) -> String {
        let mut s = self.file.display().to_string();
        if let Some(l) = self.line {
            s.push_str(&format!(":{l}"));
        }
        if !self.key.is_empty() {
            s.push_str(&format!(": {}", self.key));
        }
        format!("{s}: {}", self.message)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PortMapping {
    pub host_ip: Option<String>,
    /// `None`: the engine picks an ephemeral host port (`"3000"`, `"127.0.0.1::80"`).
    pub host_port: Option<u16>,
    /// The end of a host range (`"8000-8010:80"`): the engine picks one port of the range.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_port_end: Option<u16>,
    pub container_port: u16,
    pub protocol: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MountKind {
    Volume,
    Bind,
    Tmpfs,
    Npipe,
    Image,
    Cluster,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Mount {
    pub kind: MountKind,
    /// Bind: the absolute host path. Volume: the volume's key under top-level `volumes`, or
    /// `None` for an anonymous volume. Tmpfs: `None`.
    pub source: Option<String>,
    pub target: String,
    pub read_only: bool,
    /// `z` or `Z`: SELinux relabelling of a bind mount.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selinux: Option<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub nocopy: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subpath: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub propagation: Option<String>,
    /// Bind: create the host directory when missing (compose's default for the short form).
    #[serde(default)]
    pub create_host_path: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tmpfs_size: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tmpfs_mode: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Healthcheck {
    /// `["CMD", …]`, `["CMD-SHELL", "…"]` or `["NONE"]`; `None` keeps the image's test and
    /// overrides only the timings given.
    pub test: Option<Vec<String>>,
    pub interval: Option<Duration>,
    pub timeout: Option<Duration>,
    pub retries: Option<u32>,
    pub start_period: Option<Duration>,
    pub start_interval: Option<Duration>,
}

impl Healthcheck {
    pub fn disabled(&self) -> bool {
        self.test
            .as_ref()
            .and_then(|t| t.first())
            .map(String::as_str)
            == Some("NONE")
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Condition {
    Started,
    Healthy,
    CompletedSuccessfully,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dependency {
    pub name: String,
    pub condition: Condition,
    /// `required: false`: a dependency that is absent or fails to start is skipped with a
    /// warning.
    pub required: bool,
    /// `restart: true`: restarting the dependency restarts this service after it.
    pub restart: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NetworkAttach {
    /// The network's key under top-level `networks` (`default` for the project network).
    pub key: String,
    pub aliases: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipv4_address: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipv6_address: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mac_address: Option<String>,
    #[serde(default)]
    pub priority: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileMount {
    /// The secret's or config's key under the top-level section.
    pub source: String,
    pub target: String,
    pub mode: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvFileRef {
    pub path: PathBuf,
    pub required: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Build {
    pub context: PathBuf,
    /// A remote context (a Git URL or a tarball URL) the engine fetches itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote: Option<String>,
    /// Relative to the context (`Dockerfile` when absent).
    pub dockerfile: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dockerfile_inline: Option<String>,
    #[serde(default)]
    pub args: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<String>,
    #[serde(default)]
    pub no_cache: bool,
    #[serde(default)]
    pub pull: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extra_hosts: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shm_size: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Ulimit {
    pub name: String,
    pub soft: i64,
    pub hard: i64,
}

/// The service keys the Engine API takes as they are (container config and host config).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct EngineOptions {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub domainname: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub working_dir: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mac_address: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stop_signal: Option<String>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub tty: bool,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub stdin_open: bool,
    /// `expose`: container ports, `3000/tcp`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub expose: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub platform: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub cap_add: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub cap_drop: Vec<String>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub privileged: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub init: Option<bool>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub read_only: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shm_size: Option<i64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ulimits: Vec<Ulimit>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub sysctls: BTreeMap<String, String>,
    /// `host:ip`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub extra_hosts: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub dns: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub dns_search: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub dns_opt: Vec<String>,
    /// `path` → mount options (`size=64m,mode=1777`; empty for none).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub tmpfs: BTreeMap<String, String>,
    /// `host:container[:permissions]`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub devices: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub device_cgroup_rules: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub security_opt: Vec<String>,
    /// `host`, or `service:<name>` / `container:<name>` as written (resolved in the spec).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pid: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ipc: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uts: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub userns_mode: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cgroup: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cgroup_parent: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub runtime: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub isolation: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory_reservation: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory_swap: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory_swappiness: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nano_cpus: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu_shares: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu_period: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu_quota: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpuset_cpus: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pids_limit: Option<i64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub group_add: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub oom_score_adj: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub oom_kill_disable: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_driver: Option<String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub log_opts: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub storage_opt: BTreeMap<String, String>,
    /// `links`: `service[:alias]` as written (resolved to container names in the spec).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub links: Vec<String>,
    /// `volumes_from`: `service[:ro]` or `container:<name>[:ro]` as written.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub volumes_from: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ComposeService {
    pub name: String,
    /// `None` with `build`: the image is `<project>-<service>` (as compose names it).
    pub image: Option<String>,
    pub build: Option<Build>,
    /// `always`, `missing` (compose's default), `never`, `build`.
    pub pull_policy: String,
    pub container_name: Option<String>,
    pub command: Option<Vec<String>>,
    pub entrypoint: Option<Vec<String>>,
    /// `KEY: value` after interpolation; a bare `KEY` takes the variable from the environment
    /// compose interpolates from (and is left out when that has none).
    pub environment: BTreeMap<String, String>,
    pub env_files: Vec<EnvFileRef>,
    pub label_files: Vec<PathBuf>,
    pub ports: Vec<PortMapping>,
    pub volumes: Vec<Mount>,
    pub healthcheck: Option<Healthcheck>,
    pub depends_on: Vec<Dependency>,
    pub labels: BTreeMap<String, String>,
    /// `no`, `always`, `on-failure[:N]`, `unless-stopped` (or `deploy.restart_policy`).
    pub restart: Option<String>,
    pub stop_grace_period: Option<Duration>,
    /// Empty with no `network_mode`: the project's `default` network.
    pub networks: Vec<NetworkAttach>,
    pub network_mode: Option<String>,
    pub secrets: Vec<FileMount>,
    pub configs: Vec<FileMount>,
    pub profiles: Vec<String>,
    /// `deploy.replicas` or `scale` (1 when absent).
    pub replicas: u32,
    pub engine: EngineOptions,
    /// `develop.watch`: what `watch` does when files under a rule's path change.
    pub develop: Vec<WatchRule>,
}

/// One `develop.watch` rule of the compose specification's Develop part.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchRule {
    /// The watched directory or file, resolved against the project directory.
    pub path: PathBuf,
    /// `sync`, `rebuild`, `restart`, `sync+restart` or `sync+exec`.
    pub action: String,
    /// Where `sync*` copies the files in the container.
    pub target: Option<String>,
    /// Patterns (`.dockerignore` syntax) relative to `path` that trigger nothing.
    pub ignore: Vec<String>,
    /// When not empty, only files matching one of these patterns trigger the rule.
    pub include: Vec<String>,
    /// `sync+exec`: the command run in the container after the files are copied.
    pub exec: Option<Vec<String>>,
    /// `initial_sync`: the whole path is copied in when `watch` begins.
    pub initial_sync: bool,
}

impl ComposeService {
    pub fn dependency(&self, name: &str) -> Option<&Dependency> {
        self.depends_on.iter().find(|d| d.name == name)
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VolumeDef {
    /// `name:`: the engine-side name as written (not prefixed by the project).
    pub name: Option<String>,
    pub external: bool,
    pub driver: Option<String>,
    pub driver_opts: BTreeMap<String, String>,
    pub labels: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IpamPool {
    pub subnet: Option<String>,
    pub gateway: Option<String>,
    pub ip_range: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NetworkDef {
    pub name: Option<String>,
    pub external: bool,
    pub driver: Option<String>,
    pub driver_opts: BTreeMap<String, String>,
    pub internal: bool,
    pub attachable: bool,
    pub enable_ipv6: bool,
    pub labels: BTreeMap<String, String>,
    pub ipam_driver: Option<String>,
    pub ipam: Vec<IpamPool>,
}

/// A top-level secret or config. File-based ones are mounted read-only; the others are not
/// available on one host without swarm and are reported.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FileDef {
    pub file: Option<PathBuf>,
    /// `environment:` (the variable's value) or `content:` (configs), as text.
    pub content: Option<String>,
    pub external: bool,
}

/// A loaded compose project: the main file, its overrides and includes, normalized.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ComposeFile {
    /// The main file.
    pub file: PathBuf,
    /// The project directory (the main file's).
    pub dir: PathBuf,
    pub name: Option<String>,
    /// Every service name, broken ones included, in file order.
    pub names: Vec<String>,
    /// The services that normalized without an error, in file order.
    pub services: Vec<ComposeService>,
    pub volumes: BTreeMap<String, VolumeDef>,
    pub networks: BTreeMap<String, NetworkDef>,
    pub secrets: BTreeMap<String, FileDef>,
    pub configs: BTreeMap<String, FileDef>,
    /// Compose profiles enabled (`COMPOSE_PROFILES`, the plugin's per-profile setting).
    pub active_profiles: Vec<String>,
    /// Every error and warning, file-level and per service.
    pub diags: Vec<Diag>,
}

impl ComposeFile {
    pub fn service(&self, name: &str) -> Option<&ComposeService> {
        self.services.iter().find(|s| s.name == name)
    }

    pub fn errors(&self) -> impl Iterator<Item = &Diag> {
        self.diags.iter().filter(|d| d.is_error())
    }

    pub fn warnings(&self) -> impl Iterator<Item = &Diag> {
        self.diags.iter().filter(|d| !d.is_error())
    }

    /// Errors that stop `name` from starting: its own and the file's.
    pub fn errors_for(&self, name: &str) -> Vec<&Diag> {
        self.errors()
            .filter(|d| d.service.is_none() || d.service.as_deref() == Some(name))
            .collect()
    }

    /// Whether compose profiles leave `name` out of an unnamed selection.
    pub fn is_active(&self, name: &str) -> bool {
        match self.service(name) {
            Some(s) => {
                s.profiles.is_empty()
                    || s.profiles
                        .iter()
                        .any(|p| self.active_profiles.iter().any(|a| a == p || a == "*"))
            }
            None => true,
        }
    }
}
