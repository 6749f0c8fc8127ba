//! Docker control through the Engine API (bollard), behind a small typed client: one error
//! variant per operation, each knowing whether it is worth retrying. Decisions (adopt or recreate,
//! what an event means for a wait) are pure functions below the client, unit-tested.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use bollard::errors::Error as BollardError;
use bollard::models::{
    ContainerCreateBody, ContainerInspectResponse, EndpointSettings, EventMessage, HealthConfig,
    HostConfig, Mount as EngineMount, MountType, NetworkCreateRequest, NetworkingConfig,
    PortBinding,
};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, CreateImageOptionsBuilder, EventsOptionsBuilder,
    InspectContainerOptions, LogsOptionsBuilder, RemoveContainerOptionsBuilder,
    StopContainerOptionsBuilder, WaitContainerOptions,
};
use bollard::Docker;
use futures_util::StreamExt;

use crate::container::{ContainerSpec, LABEL_HASH, LABEL_WORKSPACE};

/// The oldest Engine API we support (Docker Engine 20.10).
pub const MIN_API: (u64, u64) = (1, 41);

pub mod error;

pub use error::{DResult, DockerError, Op};

impl DockerError {
    fn from(op: Op, target: &str, e: BollardError) -> Self {
        let (status, message) = match e {
            BollardError::DockerResponseServerError {
                status_code,
                message,
            } => (Some(status_code), message),
            BollardError::DockerContainerWaitError { error, code } => {
                (None, format!("{error} (exit code {code})"))
            }
            other => (None, other.to_string()),
        };
        DockerError {
            op,
            target: target.into(),
            status,
            message: message.trim().to_string(),
        }
    }
}

/// Where the client connects: `DOCKER_HOST`, else the default socket.
pub fn host() -> String {
    std::env::var("DOCKER_HOST").unwrap_or_else(|_| "unix:///var/run/docker.sock".into())
}

/// Pure: "1.41" → (1, 41).
pub fn parse_api(v: &str) -> Option<(u64, u64)> {
    let (a, b) = v.trim().split_once('.')?;
    Some((a.parse().ok()?, b.parse().ok()?))
}

#[derive(Clone)]
pub struct Engine {
    docker: Docker,
    pub api_version: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Running {
    pub id: String,
    pub name: String,
    pub image: String,
    /// Adopted a running container with the same configuration instead of creating one.
    pub adopted: bool,
    pub started_at: Option<chrono::DateTime<chrono::Utc>>,
    pub has_healthcheck: bool,
    pub pulled: bool,
    /// Host ports the engine bound for it.
    pub host_ports: Vec<u16>,
}

/// What the engine said about a container, reduced to what decisions need.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Observed {
    pub id: String,
    pub running: bool,
    pub workspace: Option<String>,
    pub hash: Option<String>,
    pub health: Option<String>,
    pub last_health_output: Option<String>,
    pub exit_code: Option<i64>,
    pub started_at: Option<chrono::DateTime<chrono::Utc>>,
    /// Anonymous volumes (engine-generated names) and where they are mounted.
    pub anonymous_volumes: Vec<(String, String)>,
    /// The engine's state word: `running`, `exited`, `created`, `restarting`, `paused`, `dead`.
    pub status: String,
    pub oom_killed: bool,
    pub finished_at: Option<chrono::DateTime<chrono::Utc>>,
    /// Our service label.
    pub service: Option<String>,
    pub name: String,
    /// Host ports the engine actually bound (ephemeral ones included), sorted.
    pub host_ports: Vec<u16>,
    /// compose's container number (the replica).
    pub number: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Existing {
    Absent,
    /// Ours, running, same configuration: keep it.
    Adopt,
    /// Ours but stopped or configured differently: remove and create anew.
    Recreate,
    /// A container of that name that another workspace (or nobody of ours) created.
    Foreign(Option<String>),
}

/// Pure: what to do with a container already carrying the spec's name.
pub fn decide_existing(spec: &ContainerSpec, seen: Option<&Observed>) -> Existing {
    let Some(o) = seen else {
        return Existing::Absent;
    };
    if o.workspace.as_deref() != Some(spec.workspace.as_str()) {
        return Existing::Foreign(o.workspace.clone());
    }
    if o.running && o.hash.as_deref() == Some(spec.config_hash().as_str()) {
        Existing::Adopt
    } else {
        Existing::Recreate
    }
}

fn observe(c: &ContainerInspectResponse) -> Observed {
    let labels = c
        .config
        .as_ref()
        .and_then(|x| x.labels.clone())
        .unwrap_or_default();
    let state = c.state.clone().unwrap_or_default();
    let health = state.health.clone();
    let anonymous = c
        .mounts
        .clone()
        .unwrap_or_default()
        .into_iter()
        .filter_map(|m| {
            let name = m.name?;
            let dest = m.destination?;
            // Engine-generated anonymous volume names are 64 hex characters.
            (name.len() == 64 && name.chars().all(|c| c.is_ascii_hexdigit()))
                .then_some((name, dest))
        })
        .collect();
    Observed {
        id: c.id.clone().unwrap_or_default(),
        running: state.running.unwrap_or(false),
        workspace: labels.get(LABEL_WORKSPACE).cloned(),
        hash: labels.get(LABEL_HASH).cloned(),
        health: health
            .as_ref()
            .and_then(|h| h.status)
            .map(|s| s.to_string()),
        last_health_output: health
            .and_then(|h| h.log)
            .and_then(|l| l.last().cloned())
            .and_then(|r| r.output)
            .map(|o| o.trim().to_string()),
        exit_code: state.exit_code,
        started_at: state
            .started_at
            .as_deref()
            .and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok())
            .map(|d| d.with_timezone(&chrono::Utc))
            .filter(|d| d.timestamp() > 0),
        anonymous_volumes: anonymous,
        status: state
            .status
            .map(|s| s.to_string())
            .unwrap_or_else(|| "unknown".into()),
        oom_killed: state.oom_killed.unwrap_or(false),
        finished_at: state
            .finished_at
            .as_deref()
            .and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok())
            .map(|d| d.with_timezone(&chrono::Utc))
            .filter(|d| d.timestamp() > 0),
        service: labels.get(crate::container::LABEL_SERVICE).cloned(),
        number: labels
            .get(crate::container::COMPOSE_NUMBER)
            .and_then(|n| n.parse().ok()),
        host_ports: {
            let mut ports: Vec<u16> = c
                .network_settings
                .as_ref()
                .and_then(|n| n.ports.clone())
                .unwrap_or_default()
                .values()
                .flatten()
                .flatten()
                .filter_map(|b| b.host_port.as_deref().and_then(|p| p.parse().ok()))
                .collect();
            ports.sort_unstable();
            ports.dedup();
            ports
        },
        name: c
            .name
            .clone()
            .unwrap_or_default()
            .trim_start_matches('/')
            .to_string(),
    }
}

fn some_vec<T: Clone>(v: &[T]) -> Option<Vec<T>> {
    (!v.is_empty()).then(|| v.to_vec())
}

fn some_map(m: &std::collections::BTreeMap<String, String>) -> Option<HashMap<String, String>> {
    (!m.is_empty()).then(|| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
}

fn endpoint(n: &crate::container::NetworkSpec) -> EndpointSettings {
    let ipam = (n.ipv4_address.is_some() || n.ipv6_address.is_some()).then(|| {
        bollard::models::EndpointIpamConfig {
            ipv4_address: n.ipv4_address.clone(),
            ipv6_address: n.ipv6_address.clone(),
            ..Default::default()
        }
    });
    EndpointSettings {
        aliases: Some(n.aliases.clone()),
        ipam_config: ipam,
        mac_address: n.mac_address.clone(),
        ..Default::default()
    }
}

/// Pure: the engine's create body for a spec (plus anonymous volumes carried over). The
/// container is created on its first network; [`Engine::create_and_start`] connects the others
/// before it starts (Engine API 1.41 takes one endpoint at create time).
pub fn create_body(spec: &ContainerSpec, carry: &[(String, String)]) -> ContainerCreateBody {
    let e = &spec.engine;
    let mut exposed: Vec<String> = Vec::new();
    let mut bindings: HashMap<String, Option<Vec<PortBinding>>> = HashMap::new();
    for p in &spec.ports {
        let key = format!("{}/{}", p.container_port, p.protocol);
        if !exposed.contains(&key) {
            exposed.push(key.clone());
        }
        let host_port = match (p.host_port, p.host_port_end) {
            (Some(a), Some(b)) => Some(format!("{a}-{b}")),
            (Some(a), None) => Some(a.to_string()),
            (None, _) => Some(String::new()),
        };
        bindings
            .entry(key)
            .or_insert_with(|| Some(Vec::new()))
            .get_or_insert_with(Vec::new)
            .push(PortBinding {
                host_ip: p.host_ip.clone(),
                host_port,
            });
    }
    for x in &e.expose {
        if !exposed.contains(x) {
            exposed.push(x.clone());
        }
    }
    let mut mounts: Vec<EngineMount> = spec
        .volumes
        .iter()
        .map(|v| EngineMount {
            typ: Some(MountType::VOLUME),
            source: Some(v.name.clone()),
            target: Some(v.target.clone()),
            read_only: Some(v.read_only),
            volume_options: (v.nocopy || v.subpath.is_some()).then(|| {
                bollard::models::MountVolumeOptions {
                    no_copy: v.nocopy.then_some(true),
                    subpath: v.subpath.clone(),
                    ..Default::default()
                }
            }),
            ..Default::default()
        })
        .collect();
    for b in &spec.bind_mounts {
        mounts.push(EngineMount {
            typ: Some(MountType::BIND),
            source: Some(b.source.clone()),
            target: Some(b.target.clone()),
            read_only: Some(b.read_only),
            bind_options: b.propagation.as_deref().and_then(|p| {
                p.parse::<bollard::models::MountBindOptionsPropagationEnum>()
                    .ok()
                    .map(|propagation| bollard::models::MountBindOptions {
                        propagation: Some(propagation),
                        ..Default::default()
                    })
            }),
            ..Default::default()
        });
    }
    let covered = |dest: &str| {
        spec.volumes.iter().any(|v| v.target == dest)
            || spec.bind_mounts.iter().any(|b| b.target == dest)
            || spec.binds.iter().any(|b| b.split(':').nth(1) == Some(dest))
    };
    for (name, dest) in carry {
        if !covered(dest) {
            mounts.push(EngineMount {
                typ: Some(MountType::VOLUME),
                source: Some(name.clone()),
                target: Some(dest.clone()),
                ..Default::default()
            });
        }
    }
    let fresh_anonymous: Vec<String> = spec
        .anonymous
        .iter()
        .filter(|t| !carry.iter().any(|(_, d)| d == *t))
        .cloned()
        .collect();
    let network_mode = spec
        .network_mode
        .clone()
        .or_else(|| spec.primary_network().map(|n| n.name.clone()));
    let endpoints = spec.primary_network().map(|n| {
        let mut m = HashMap::new();
        m.insert(n.name.clone(), endpoint(n));
        m
    });
    let devices: Vec<bollard::models::DeviceMapping> = e
        .devices
        .iter()
        .map(|d| {
            let parts: Vec<&str> = d.split(':').collect();
            bollard::models::DeviceMapping {
                path_on_host: parts.first().map(|s| s.to_string()),
                path_in_container: Some(parts.get(1).unwrap_or(&parts[0]).to_string()),
                cgroup_permissions: Some(parts.get(2).unwrap_or(&"rwm").to_string()),
            }
        })
        .collect();
    ContainerCreateBody {
        image: Some(spec.image.clone()),
        env: Some(spec.env.clone()),
        cmd: spec.cmd.clone(),
        entrypoint: spec.entrypoint.clone(),
        exposed_ports: (!exposed.is_empty()).then_some(exposed),
        labels: Some(spec.container_labels().into_iter().collect()),
        stop_timeout: Some(spec.stop_timeout_seconds as i64),
        stop_signal: e.stop_signal.clone(),
        hostname: e.hostname.clone(),
        domainname: e.domainname.clone(),
        user: e.user.clone(),
        working_dir: e.working_dir.clone(),
        tty: e.tty.then_some(true),
        open_stdin: e.stdin_open.then_some(true),
        volumes: some_vec(&fresh_anonymous),
        healthcheck: spec.healthcheck.as_ref().map(|h| HealthConfig {
            test: h.test.clone(),
            interval: h.interval_ns,
            timeout: h.timeout_ns,
            retries: h.retries,
            start_period: h.start_period_ns,
            start_interval: h.start_interval_ns,
        }),
        host_config: Some(HostConfig {
            port_bindings: (!bindings.is_empty()).then_some(bindings),
            binds: some_vec(&spec.binds),
            mounts: (!mounts.is_empty()).then_some(mounts),
            network_mode,
            cap_add: some_vec(&e.cap_add),
            cap_drop: some_vec(&e.cap_drop),
            privileged: e.privileged.then_some(true),
            init: e.init,
            readonly_rootfs: e.read_only.then_some(true),
            shm_size: e.shm_size,
            ulimits: (!e.ulimits.is_empty()).then(|| {
                e.ulimits
                    .iter()
                    .map(|u| bollard::models::ResourcesUlimits {
                        name: Some(u.name.clone()),
                        soft: Some(u.soft),
                        hard: Some(u.hard),
                    })
                    .collect()
            }),
            sysctls: some_map(&e.sysctls),
            extra_hosts: some_vec(&e.extra_hosts),
            dns: some_vec(&e.dns),
            dns_search: some_vec(&e.dns_search),
            dns_options: some_vec(&e.dns_opt),
            tmpfs: some_map(&e.tmpfs),
            devices: some_vec(&devices),
            device_cgroup_rules: some_vec(&e.device_cgroup_rules),
            security_opt: some_vec(&e.security_opt),
            pid_mode: e.pid.clone(),
            ipc_mode: e.ipc.clone(),
            uts_mode: e.uts.clone(),
            userns_mode: e.userns_mode.clone(),
            cgroupns_mode: match e.cgroup.as_deref() {
                Some("host") => Some(bollard::models::HostConfigCgroupnsModeEnum::HOST),
                Some("private") => Some(bollard::models::HostConfigCgroupnsModeEnum::PRIVATE),
                _ => None,
            },
            cgroup_parent: e.cgroup_parent.clone(),
            runtime: e.runtime.clone(),
            memory: e.memory,
            memory_reservation: e.memory_reservation,
            memory_swap: e.memory_swap,
            memory_swappiness: e.memory_swappiness,
            nano_cpus: e.nano_cpus,
            cpu_shares: e.cpu_shares,
            cpu_period: e.cpu_period,
            cpu_quota: e.cpu_quota,
            cpuset_cpus: e.cpuset_cpus.clone(),
            pids_limit: e.pids_limit,
            group_add: some_vec(&e.group_add),
            oom_score_adj: e.oom_score_adj,
            oom_kill_disable: e.oom_kill_disable,
            log_config: e
                .log_driver
                .as_ref()
                .map(|d| bollard::models::HostConfigLogConfig {
                    typ: Some(d.clone()),
                    config: some_map(&e.log_opts),
                }),
            storage_opt: some_map(&e.storage_opt),
            links: some_vec(&e.links),
            volumes_from: some_vec(&e.volumes_from),
            ..Default::default()
        }),
        networking_config: endpoints.map(|m| NetworkingConfig {
            endpoints_config: Some(m),
        }),
        ..Default::default()
    }
}

/// Pure: the engine's request to create a network of the project.
pub fn network_request(n: &crate::container::NetworkSpec, workspace: &str) -> NetworkCreateRequest {
    let mut labels: HashMap<String, String> = n
        .labels
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    labels.insert(LABEL_WORKSPACE.to_string(), workspace.to_string());
    NetworkCreateRequest {
        name: n.name.clone(),
        driver: Some(n.driver.clone().unwrap_or_else(|| "bridge".into())),
        internal: n.internal.then_some(true),
        attachable: n.attachable.then_some(true),
        enable_ipv6: n.enable_ipv6.then_some(true),
        options: some_map(&n.driver_opts),
        labels: Some(labels),
        ipam: (!n.ipam.is_empty() || n.ipam_driver.is_some()).then(|| bollard::models::Ipam {
            driver: n.ipam_driver.clone(),
            config: Some(
                n.ipam
                    .iter()
                    .map(|(subnet, gateway, ip_range)| bollard::models::IpamConfig {
                        subnet: subnet.clone(),
                        gateway: gateway.clone(),
                        ip_range: ip_range.clone(),
                        ..Default::default()
                    })
                    .collect(),
            ),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// What a container event means for a health wait on container `id`.
#[derive(Debug, Clone, PartialEq)]
pub enum WaitSignal {
    Healthy,
    Unhealthy,
    Died(Option<i64>),
    Ignore,
}

/// Pure: classify one engine event for the container being waited on.
pub fn classify(ev: &EventMessage, id: &str) -> WaitSignal {
    let actor = ev.actor.as_ref();
    if actor.and_then(|a| a.id.as_deref()) != Some(id) {
        return WaitSignal::Ignore;
    }
    match ev.action.as_deref().map(str::trim) {
        Some("health_status: healthy") => WaitSignal::Healthy,
        Some("health_status: unhealthy") => WaitSignal::Unhealthy,
        Some("die") => WaitSignal::Died(
            actor
                .and_then(|a| a.attributes.as_ref())
                .and_then(|a| a.get("exitCode"))
                .and_then(|c| c.parse().ok()),
        ),
        _ => WaitSignal::Ignore,
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum WaitOutcome {
    Healthy {
        after: Duration,
    },
    /// No healthcheck: running is as ready as the engine can tell.
    Running,
    Died {
        exit_code: Option<i64>,
        last_lines: Vec<String>,
    },
    TimedOut {
        health: Option<String>,
        last_output: Option<String>,
    },
}

/// Shortens a progress line's layer id and drops the bar: "a1b2c3: Downloading 3.1MB/10MB".
pub fn progress_line(
    id: Option<&str>,
    status: Option<&str>,
    current: Option<i64>,
    total: Option<i64>,
) -> Option<String> {
    let status = status?;
    let mut s = match id {
        Some(id) if !id.is_empty() => format!("{id}: {status}"),
        _ => status.to_string(),
    };
    if let (Some(c), Some(t)) = (current, total) {
        if t > 0 {
            s.push_str(&format!(" {:.1}/{:.1} MB", c as f64 / 1e6, t as f64 / 1e6));
        }
    }
    Some(s)
}

impl Engine {
    /// Connects and checks the API version against [`MIN_API`].
    pub async fn connect() -> DResult<Engine> {
        let target = host();
        let docker = Docker::connect_with_defaults()
            .map_err(|e| DockerError::from(Op::Connect, &target, e))?;
        let version = docker
            .version()
            .await
            .map_err(|e| DockerError::from(Op::Connect, &target, e))?;
        let api = version.api_version.clone().unwrap_or_default();
        let docker = docker
            .negotiate_version()
            .await
            .map_err(|e| DockerError::from(Op::Version, &target, e))?;
        Ok(Engine {
            docker,
            api_version: api,
        })
    }

    /// A client pinned at our minimum API version, without the two `/version` round trips
    /// `connect` makes (about 6 ms each on this engine): for `status`, which is polled. An engine
    /// older than the pin answers the first request with an error, reported as such.
    pub fn connect_pinned() -> DResult<Engine> {
        let target = host();
        let Some(path) = target.strip_prefix("unix://") else {
            return Err(DockerError {
                op: Op::Connect,
                target,
                status: None,
                message: "not a unix socket".into(),
            });
        };
        let v = bollard::ClientVersion {
            major_version: MIN_API.0 as usize,
            minor_version: MIN_API.1 as usize,
        };
        let docker = Docker::connect_with_unix(path, 120, &v)
            .map_err(|e| DockerError::from(Op::Connect, &target, e))?;
        Ok(Engine {
            docker,
            api_version: format!("{}.{}", MIN_API.0, MIN_API.1),
        })
    }

    pub fn api_ok(&self) -> bool {
        parse_api(&self.api_version).is_some_and(|v| v >= MIN_API)
    }

    pub async fn inspect(&self, name: &str) -> DResult<Option<Observed>> {
        match self
            .docker
            .inspect_container(name, None::<InspectContainerOptions>)
            .await
        {
            Ok(c) => Ok(Some(observe(&c))),
            Err(e) => {
                let e = DockerError::from(Op::Inspect, name, e);
                if e.not_found() {
                    Ok(None)
                } else {
                    Err(e)
                }
            }
        }
    }

    /// Whether the image has a HEALTHCHECK; `None` when the image is absent.
    /// A local image's inspection; `None` when the engine has no such image.
    async fn inspect_image_opt(
        &self,
        image: &str,
    ) -> DResult<Option<bollard::models::ImageInspect>> {
        match self.docker.inspect_image(image).await {
            Ok(i) => Ok(Some(i)),
            Err(e) => {
                let e = DockerError::from(Op::InspectImage, image, e);
                if e.not_found() {
                    Ok(None)
                } else {
                    Err(e)
                }
            }
        }
    }

    pub async fn image_healthcheck(&self, image: &str) -> DResult<Option<bool>> {
        Ok(self.inspect_image_opt(image).await?.map(|i| {
            i.config
                .and_then(|c| c.healthcheck)
                .and_then(|h| h.test)
                .is_some_and(|t| t.first().map(String::as_str) != Some("NONE"))
        }))
    }

    /// The context hash label of a local image (`None`: absent; `Some(None)`: present, not built
    /// by us).
    pub async fn image_context_hash(&self, image: &str) -> DResult<Option<Option<String>>> {
        Ok(self.inspect_image_opt(image).await?.map(|i| {
            i.config
                .and_then(|c| c.labels)
                .and_then(|l| l.get(crate::container::LABEL_CONTEXT_HASH).cloned())
        }))
    }

    /// Builds `image` from `b` through the build API, the builder's output lines to `progress`;
    /// the image carries `hash` as its context-hash label.
    #[tracing::instrument(level = "debug", skip_all, fields(image = %image))]
    pub async fn build(
        &self,
        image: &str,
        b: &crate::compose::Build,
        hash: &str,
        progress: &mut (dyn FnMut(&str) + Send),
    ) -> DResult<()> {
        let fail = |m: String| DockerError {
            op: Op::Build,
            target: image.into(),
            status: None,
            message: m,
        };
        let mut labels: HashMap<String, String> = b
            .labels
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        labels.insert(crate::container::LABEL_CONTEXT_HASH.into(), hash.into());
        let mut opts = bollard::query_parameters::BuildImageOptionsBuilder::new()
            .t(image)
            .dockerfile(&crate::build::dockerfile_of(b))
            .rm(true)
            // A failed step leaves no intermediate container behind either.
            .forcerm(true)
            .nocache(b.no_cache)
            .buildargs(&b.args.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .labels(&labels);
        if let Some(t) = &b.target {
            opts = opts.target(t);
        }
        if b.pull {
            opts = opts.pull("1");
        }
        if let Some(n) = &b.network {
            opts = opts.networkmode(n);
        }
        if !b.extra_hosts.is_empty() {
            opts = opts.extrahosts(&b.extra_hosts.join(","));
        }
        if let Some(sz) = b.shm_size {
            opts = opts.shmsize(sz.min(i32::MAX as i64) as i32);
        }
        let body = match &b.remote {
            Some(url) => {
                opts = opts.remote(url);
                None
            }
            None => {
                let tar = crate::build::context_tar(b).map_err(|e| {
                    fail(format!(
                        "cannot read the build context {}: {e}",
                        b.context.display()
                    ))
                })?;
                Some(bollard::body_full(bytes::Bytes::from(tar)))
            }
        };
        let mut stream = self.docker.build_image(opts.build(), None, body);
        while let Some(item) = stream.next().await {
            let info = item.map_err(|e| DockerError::from(Op::Build, image, e))?;
            if let Some(m) = info.error_detail.and_then(|d| d.message) {
                return Err(fail(m));
            }
            if let Some(line) = info
                .stream
                .as_deref()
                .map(str::trim_end)
                .filter(|l| !l.is_empty())
            {
                progress(line);
            }
        }
        Ok(())
    }

    #[tracing::instrument(level = "debug", skip_all, fields(image = %image))]
    pub async fn pull(&self, image: &str, progress: &mut (dyn FnMut(&str) + Send)) -> DResult<()> {
        let (repo, tag) = split_image(image);
        let opts = CreateImageOptionsBuilder::new()
            .from_image(&repo)
            .tag(&tag)
            .build();
        let mut stream = self.docker.create_image(Some(opts), None, None);
        let mut last: HashMap<String, (String, Instant)> = HashMap::new();
        while let Some(item) = stream.next().await {
            let info = item.map_err(|e| DockerError::from(Op::Pull, image, e))?;
            if let Some(err) = info.error_detail.and_then(|d| d.message) {
                return Err(DockerError {
                    op: Op::Pull,
                    target: image.into(),
                    status: None,
                    message: err,
                });
            }
            let pd = info.progress_detail.unwrap_or_default();
            let key = info.id.clone().unwrap_or_default();
            let status = info.status.clone().unwrap_or_default();
            // One line per layer and status, plus at most one per second while downloading.
            let show = match last.get(&key) {
                Some((s, t)) => s != &status || t.elapsed() >= Duration::from_secs(1),
                None => true,
            };
            if show {
                if let Some(line) = progress_line(
                    info.id.as_deref(),
                    info.status.as_deref(),
                    pd.current,
                    pd.total,
                ) {
                    progress(&line);
                }
                last.insert(key, (status, Instant::now()));
            }
        }
        Ok(())
    }

    /// The spec's networks and volumes: external ones must exist (a missing one is an error
    /// naming it, never created); the project's are created when absent, with compose's labels.
    #[tracing::instrument(level = "debug", skip_all, fields(container = %spec.name))]
    pub async fn ensure_resources(&self, spec: &ContainerSpec) -> DResult<()> {
        for n in &spec.networks {
            let found = self
                .docker
                .inspect_network(
                    &n.name,
                    None::<bollard::query_parameters::InspectNetworkOptions>,
                )
                .await
                .is_ok();
            if found {
                continue;
            }
            if n.external {
                return Err(DockerError::missing(
                    Op::Network,
                    &n.name,
                    "external network",
                ));
            }
            if let Err(e) = self
                .docker
                .create_network(network_request(n, &spec.workspace))
                .await
            {
                let e = DockerError::from(Op::Network, &n.name, e);
                // Another command created it in between.
                if e.status != Some(409) {
                    return Err(e);
                }
            }
        }
        for v in &spec.volumes {
            match self.docker.inspect_volume(&v.name).await {
                Ok(_) => continue,
                Err(e) => {
                    let e = DockerError::from(Op::Volume, &v.name, e);
                    if !e.not_found() {
                        return Err(e);
                    }
                }
            }
            if v.external {
                return Err(DockerError::missing(Op::Volume, &v.name, "external volume"));
            }
            let mut labels: HashMap<String, String> = v
                .labels
                .iter()
                .map(|(k, x)| (k.clone(), x.clone()))
                .collect();
            labels.insert(LABEL_WORKSPACE.to_string(), spec.workspace.clone());
            let req = bollard::models::VolumeCreateRequest {
                name: Some(v.name.clone()),
                driver: v.driver.clone(),
                driver_opts: some_map(&v.driver_opts),
                labels: Some(labels),
                ..Default::default()
            };
            if let Err(e) = self.docker.create_volume(req).await {
                let e = DockerError::from(Op::Volume, &v.name, e);
                if e.status != Some(409) {
                    return Err(e);
                }
            }
        }
        Ok(())
    }

    #[tracing::instrument(level = "debug", skip_all, fields(container = %name))]
    pub async fn remove(&self, name: &str) -> DResult<()> {
        let opts = RemoveContainerOptionsBuilder::new().force(true).build();
        match self.docker.remove_container(name, Some(opts)).await {
            Ok(()) => Ok(()),
            Err(e) => {
                let e = DockerError::from(Op::Remove, name, e);
                if e.not_found() {
                    Ok(())
                } else {
                    Err(e)
                }
            }
        }
    }

    /// Creates and starts the container (after removing a stale one of ours). The image must be
    /// present.
    pub async fn create_and_start(
        &self,
        spec: &ContainerSpec,
        seen: Option<&Observed>,
    ) -> DResult<String> {
        let carry = seen
            .map(|o| o.anonymous_volumes.clone())
            .unwrap_or_default();
        if seen.is_some() {
            self.remove(&spec.name).await?;
        }
        let id = self.create(spec, &spec.name, &carry).await?;
        self.start(&id, &spec.name).await?;
        Ok(id)
    }

    /// Creates (does not start) the spec's container under `name`, its networks and volumes
    /// made first; `carry` are anonymous volumes a replaced container used. The engine checks
    /// the whole configuration here: image, mounts, devices, networks, resources.
    #[tracing::instrument(level = "debug", skip_all, fields(container = %name))]
    pub async fn create(
        &self,
        spec: &ContainerSpec,
        name: &str,
        carry: &[(String, String)],
    ) -> DResult<String> {
        self.ensure_resources(spec).await?;
        let mut opts = CreateContainerOptionsBuilder::new().name(name);
        if let Some(p) = &spec.engine.platform {
            opts = opts.platform(p);
        }
        let created = self
            .docker
            .create_container(Some(opts.build()), create_body(spec, carry))
            .await
            .map_err(|e| DockerError::from(Op::Create, name, e))?;
        for n in spec.networks.iter().skip(1) {
            let req = bollard::models::NetworkConnectRequest {
                container: created.id.clone(),
                endpoint_config: Some(endpoint(n)),
            };
            if let Err(e) = self.docker.connect_network(&n.name, req).await {
                if let Err(r) = self.remove(&created.id).await {
                    tracing::warn!(container = %name, error = %r.message, "could not remove a container its network refused");
                }
                return Err(DockerError::from(Op::Network, &n.name, e));
            }
        }
        Ok(created.id)
    }

    /// Starts a created or stopped container (`name` is for the error).
    #[tracing::instrument(level = "debug", skip_all, fields(container = %name))]
    pub async fn start(&self, id: &str, name: &str) -> DResult<()> {
        self.docker
            .start_container(id, None::<bollard::query_parameters::StartContainerOptions>)
            .await
            .map_err(|e| DockerError::from(Op::Start, name, e))
    }

    #[tracing::instrument(level = "debug", skip_all, fields(container = %name))]
    pub async fn rename(&self, id: &str, name: &str) -> DResult<()> {
        let opts = bollard::query_parameters::RenameContainerOptionsBuilder::new()
            .name(name)
            .build();
        self.docker
            .rename_container(id, opts)
            .await
            .map_err(|e| DockerError::from(Op::Rename, name, e))
    }

    /// Stops a container gracefully (its stop signal, then SIGKILL after `timeout_s`, or after
    /// the container's own stop timeout with `None`). Absent or already stopped is fine.
    #[tracing::instrument(level = "debug", skip_all, fields(container = %name))]
    pub async fn stop(&self, name: &str, timeout_s: Option<u64>) -> DResult<()> {
        let opts = timeout_s.map(|t| {
            StopContainerOptionsBuilder::new()
                .t(t.min(i32::MAX as u64) as i32)
                .build()
        });
        match self.docker.stop_container(name, opts).await {
            Ok(()) => Ok(()),
            Err(e) => {
                let e = DockerError::from(Op::Stop, name, e);
                if e.not_found() || e.status == Some(304) {
                    Ok(())
                } else {
                    Err(e)
                }
            }
        }
    }

    /// Every container (running or not) carrying every `key=value` label, inspected.
    pub async fn observe_labelled(&self, labels: &[String]) -> DResult<Vec<Observed>> {
        let inspections = self
            .labelled(labels, true)
            .await?
            .into_iter()
            .map(|id| async move { self.inspect(&id).await });
        let seen = futures_util::future::try_join_all(inspections).await?;
        Ok(seen.into_iter().flatten().collect())
    }

    /// Running containers carrying every `key=value` label.
    pub async fn running_with_labels(&self, labels: &[String]) -> DResult<Vec<String>> {
        self.labelled(labels, false).await
    }

    /// Ids of the containers carrying every `key=value` label (`all`: stopped ones too).
    async fn labelled(&self, labels: &[String], all: bool) -> DResult<Vec<String>> {
        let mut filters = HashMap::new();
        filters.insert("label".to_string(), labels.to_vec());
        let opts = bollard::query_parameters::ListContainersOptionsBuilder::new()
            .all(all)
            .filters(&filters)
            .build();
        let list = self
            .docker
            .list_containers(Some(opts))
            .await
            .map_err(|e| DockerError::from(Op::Inspect, &labels.join(","), e))?;
        Ok(list.into_iter().filter_map(|c| c.id).collect())
    }

    /// Copies the container's stdout/stderr to this process's stdout/stderr until it stops.
    pub async fn forward_logs(&self, id: &str) -> DResult<()> {
        // With the engine's own timestamps: every line keeps the instant the container wrote it.
        let opts = LogsOptionsBuilder::new()
            .follow(true)
            .stdout(true)
            .stderr(true)
            .timestamps(true)
            .build();
        let mut stream = self.docker.logs(id, Some(opts));
        let stamped = |message: &[u8]| {
            let now = chrono::Utc::now();
            let mut out = String::new();
            for line in String::from_utf8_lossy(message).lines() {
                out.push_str(&crate::logs::line::stamp(line, now));
                out.push('\n');
            }
            out
        };
        // The lines go to the service's files directly (crate::sink: PM2's writer drops queued
        // lines when it reopens for a rotation) and to our stdout/stderr for PM2's bus; a
        // renamed file is let go within a second even when the container is quiet.
        let mut idle = tokio::time::interval(std::time::Duration::from_secs(1));
        loop {
            let item = tokio::select! {
                item = stream.next() => item,
                _ = idle.tick() => {
                    crate::sink::tick();
                    continue;
                }
            };
            let Some(item) = item else { break };
            match item.map_err(|e| DockerError::from(Op::Logs, id, e))? {
                bollard::container::LogOutput::StdErr { message } => {
                    crate::sink::write(true, &stamped(&message));
                }
                bollard::container::LogOutput::StdOut { message }
                | bollard::container::LogOutput::Console { message } => {
                    crate::sink::write(false, &stamped(&message));
                }
                bollard::container::LogOutput::StdIn { .. } => {}
            }
        }
        Ok(())
    }

    /// The container's exit code once it has stopped.
    #[tracing::instrument(level = "debug", skip_all, fields(container = %id))]
    pub async fn wait_exit(&self, id: &str) -> DResult<i64> {
        let mut stream = self.docker.wait_container(id, None::<WaitContainerOptions>);
        match stream.next().await {
            Some(Ok(r)) => Ok(r.status_code),
            Some(Err(BollardError::DockerContainerWaitError { code, .. })) => Ok(code),
            Some(Err(e)) => Err(DockerError::from(Op::Wait, id, e)),
            None => Ok(self
                .inspect(id)
                .await?
                .and_then(|o| o.exit_code)
                .unwrap_or(0)),
        }
    }

    /// The last `n` lines the container wrote (both streams).
    /// Everything a (stopped) container wrote, each line stamped with the engine's time:
    /// `(from stderr, line)`.
    pub async fn all_logs(&self, id: &str) -> Vec<(bool, String)> {
        let opts = LogsOptionsBuilder::new()
            .stdout(true)
            .stderr(true)
            .timestamps(true)
            .build();
        let mut out = Vec::new();
        let mut stream = self.docker.logs(id, Some(opts));
        let now = chrono::Utc::now();
        while let Some(Ok(item)) = stream.next().await {
            let (is_err, message) = match item {
                bollard::container::LogOutput::StdErr { message } => (true, message),
                bollard::container::LogOutput::StdOut { message }
                | bollard::container::LogOutput::Console { message } => (false, message),
                bollard::container::LogOutput::StdIn { .. } => continue,
            };
            for line in String::from_utf8_lossy(&message).lines() {
                out.push((is_err, crate::logs::line::stamp(line, now)));
            }
        }
        out
    }

    pub async fn tail(&self, id: &str, n: usize) -> Vec<String> {
        let opts = LogsOptionsBuilder::new()
            .stdout(true)
            .stderr(true)
            .tail(&n.to_string())
            .build();
        let mut out = Vec::new();
        let mut stream = self.docker.logs(id, Some(opts));
        while let Some(Ok(item)) = stream.next().await {
            let text = String::from_utf8_lossy(&item.into_bytes()).to_string();
            out.extend(text.lines().map(str::to_string));
        }
        let skip = out.len().saturating_sub(n);
        out.into_iter().skip(skip).collect()
    }

    /// Waits for container `id` to become healthy (or, without a healthcheck, to run), using the
    /// engine's events stream: `health_status` and `die` events end the wait, not polling.
    #[tracing::instrument(level = "debug", skip_all, fields(container = %id))]
    pub async fn wait_healthy(
        &self,
        id: &str,
        has_healthcheck: bool,
        timeout: Duration,
    ) -> DResult<WaitOutcome> {
        let began = Instant::now();
        let mut filters = HashMap::new();
        filters.insert("type", vec!["container"]);
        filters.insert("container", vec![id]);
        // Subscribe first, then look: nothing that happens in between is missed.
        let since = (chrono::Utc::now() - chrono::Duration::seconds(1))
            .timestamp()
            .to_string();
        let opts = EventsOptionsBuilder::new()
            .since(&since)
            .filters(&filters)
            .build();
        let mut events = self.docker.events(Some(opts));
        let first = self.inspect(id).await?;
        let started = first.as_ref().and_then(|o| o.started_at);
        let after = |started: Option<chrono::DateTime<chrono::Utc>>| match started {
            Some(s) => (chrono::Utc::now() - s).to_std().unwrap_or_default(),
            None => began.elapsed(),
        };
        match &first {
            None => {
                return Ok(WaitOutcome::Died {
                    exit_code: None,
                    last_lines: vec![format!("container {id} no longer exists")],
                })
            }
            Some(o) if !o.running => {
                return Ok(WaitOutcome::Died {
                    exit_code: o.exit_code,
                    last_lines: self.tail(id, 20).await,
                })
            }
            Some(o) if !has_healthcheck => {
                let _ = o;
                return Ok(WaitOutcome::Running);
            }
            Some(o) if o.health.as_deref() == Some("healthy") => {
                return Ok(WaitOutcome::Healthy {
                    after: after(started),
                })
            }
            _ => {}
        }
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let next = tokio::time::timeout_at(deadline, events.next()).await;
            match next {
                Err(_) => {
                    let o = self.inspect(id).await?.unwrap_or_default();
                    return Ok(WaitOutcome::TimedOut {
                        health: o.health,
                        last_output: o.last_health_output,
                    });
                }
                Ok(None) => {
                    // The stream ended (engine restart?): resubscribe from now.
                    let since = chrono::Utc::now().timestamp().to_string();
                    let opts = EventsOptionsBuilder::new()
                        .since(&since)
                        .filters(&filters)
                        .build();
                    events = self.docker.events(Some(opts));
                    if let Some(o) = self.inspect(id).await? {
                        if o.health.as_deref() == Some("healthy") {
                            return Ok(WaitOutcome::Healthy {
                                after: after(started),
                            });
                        }
                    }
                }
                Ok(Some(Err(e))) => {
                    let e = DockerError::from(Op::Events, id, e);
                    if !e.is_transient() {
                        return Err(e);
                    }
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Ok(Some(Ok(ev))) => match classify(&ev, id) {
                    WaitSignal::Healthy => {
                        return Ok(WaitOutcome::Healthy {
                            after: after(started),
                        })
                    }
                    WaitSignal::Died(code) => {
                        return Ok(WaitOutcome::Died {
                            exit_code: code,
                            last_lines: self.tail(id, 20).await,
                        })
                    }
                    WaitSignal::Unhealthy | WaitSignal::Ignore => {}
                },
            }
        }
    }
}

/// Pure: "host:5000/a/b:tag" → ("host:5000/a/b", "tag"); digests stay whole; default tag latest.
pub fn split_image(image: &str) -> (String, String) {
    if image.contains('@') {
        return (image.to_string(), String::new());
    }
    let last_slash = image.rfind('/').map(|i| i + 1).unwrap_or(0);
    match image[last_slash..].rfind(':') {
        Some(i) => (
            image[..last_slash + i].to_string(),
            image[last_slash + i + 1..].to_string(),
        ),
        None => (image.to_string(), "latest".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bollard::models::EventActor;

    fn spec() -> ContainerSpec {
        let text = "services:\n  db:\n    image: localhost:5000/db:1\n    ports: ['15432:5432', '127.0.0.1:15433:5433/udp']\n    volumes: [data:/data, ./conf:/conf:ro]\nvolumes: { data: {} }\n";
        let c =
            crate::compose::from_text(text, std::path::Path::new("/ws/compose.yaml"), &|_| None);
        crate::container::spec(crate::container::SpecInput {
            workspace_root: std::path::Path::new("/ws"),
            workspace_name: "ws",
            profile: "development",
            compose: &c,
            service: &c.services[0],
            env_file_vars: vec![],
            health_timeout_seconds: None,
            replica: 1,
        })
    }

    #[test]
    fn image_references_split_like_the_engine() {
        assert_eq!(split_image("postgres:16"), ("postgres".into(), "16".into()));
        assert_eq!(
            split_image("postgres"),
            ("postgres".into(), "latest".into())
        );
        assert_eq!(
            split_image("localhost:5000/a/b:2"),
            ("localhost:5000/a/b".into(), "2".into())
        );
        assert_eq!(
            split_image("localhost:5000/a/b"),
            ("localhost:5000/a/b".into(), "latest".into())
        );
        assert_eq!(split_image("x@sha256:ab").1, "");
    }

    #[test]
    fn existing_containers_are_adopted_recreated_or_refused() {
        let s = spec();
        assert_eq!(decide_existing(&s, None), Existing::Absent);
        let mut o = Observed {
            id: "c1".into(),
            running: true,
            workspace: Some("/ws".into()),
            hash: Some(s.config_hash()),
            ..Default::default()
        };
        assert_eq!(decide_existing(&s, Some(&o)), Existing::Adopt);
        o.running = false;
        assert_eq!(decide_existing(&s, Some(&o)), Existing::Recreate);
        o.running = true;
        o.hash = Some("other".into());
        assert_eq!(decide_existing(&s, Some(&o)), Existing::Recreate);
        o.workspace = Some("/elsewhere".into());
        assert_eq!(
            decide_existing(&s, Some(&o)),
            Existing::Foreign(Some("/elsewhere".into()))
        );
        o.workspace = None;
        assert_eq!(decide_existing(&s, Some(&o)), Existing::Foreign(None));
    }

    #[test]
    fn create_body_maps_ports_mounts_network_and_carries_anonymous_volumes() {
        let s = spec();
        let b = create_body(
            &s,
            &[
                ("a".repeat(64), "/var/lib/x".into()),
                ("b".repeat(64), "/data".into()),
            ],
        );
        let hc = b.host_config.unwrap();
        let pb = hc.port_bindings.unwrap();
        assert_eq!(
            pb["5432/tcp"].as_ref().unwrap()[0].host_port.as_deref(),
            Some("15432")
        );
        assert_eq!(
            pb["5433/udp"].as_ref().unwrap()[0].host_ip.as_deref(),
            Some("127.0.0.1")
        );
        assert_eq!(hc.binds.unwrap(), vec!["/ws/conf:/conf:ro"]);
        let mounts = hc.mounts.unwrap();
        assert_eq!(
            mounts.len(),
            2,
            "the /data anonymous volume is covered by the named one"
        );
        assert_eq!(mounts[0].source.as_deref(), Some("ws_data"));
        assert_eq!(mounts[1].target.as_deref(), Some("/var/lib/x"));
        assert_eq!(hc.network_mode.as_deref(), Some("ws_default"));
        assert_eq!(b.labels.unwrap()[LABEL_HASH], s.config_hash());
        let ep = b.networking_config.unwrap().endpoints_config.unwrap();
        assert_eq!(ep["ws_default"].aliases, Some(vec!["db".to_string()]));
    }

    fn event(id: &str, action: &str, exit: Option<&str>) -> EventMessage {
        let mut attrs = HashMap::new();
        if let Some(c) = exit {
            attrs.insert("exitCode".to_string(), c.to_string());
        }
        EventMessage {
            action: Some(action.into()),
            actor: Some(EventActor {
                id: Some(id.into()),
                attributes: Some(attrs),
            }),
            ..Default::default()
        }
    }

    #[test]
    fn events_are_classified_for_the_awaited_container_only() {
        assert_eq!(
            classify(&event("c1", "health_status: healthy", None), "c1"),
            WaitSignal::Healthy
        );
        assert_eq!(
            classify(&event("c1", "health_status: unhealthy", None), "c1"),
            WaitSignal::Unhealthy
        );
        assert_eq!(
            classify(&event("c1", "die", Some("137")), "c1"),
            WaitSignal::Died(Some(137))
        );
        assert_eq!(
            classify(&event("c2", "die", Some("1")), "c1"),
            WaitSignal::Ignore
        );
        assert_eq!(
            classify(&event("c1", "start", None), "c1"),
            WaitSignal::Ignore
        );
    }

    #[test]
    fn transient_errors_are_transport_or_try_later() {
        let e = |status, message: &str| DockerError {
            op: Op::Pull,
            target: "x".into(),
            status,
            message: message.into(),
        };
        assert!(e(None, "connection reset by peer").is_transient());
        assert!(e(Some(503), "busy").is_transient());
        assert!(!e(Some(404), "manifest unknown").is_transient());
        assert!(!e(Some(500), "port is already allocated").is_transient());
        assert!(!e(None, "No such file or directory (os error 2)").is_transient());
        assert_eq!(parse_api("1.41"), Some((1, 41)));
        assert!(parse_api("1.40").unwrap() < MIN_API);
        assert_eq!(
            progress_line(
                Some("abc"),
                Some("Downloading"),
                Some(1_500_000),
                Some(3_000_000)
            ),
            Some("abc: Downloading 1.5/3.0 MB".into())
        );
    }
}
