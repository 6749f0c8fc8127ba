//! Pure decisions beside the Engine client: what a container the engine already has means for a
//! spec (adopt or recreate), what an inspect says, the create body and network request a spec
//! becomes, what an event means for a wait, a progress line, an image's name and tag.

use std::collections::HashMap;
use std::time::Duration;

use bollard::models::{
    ContainerCreateBody, ContainerInspectResponse, ContainerSummary, ContainerSummaryStateEnum,
    EndpointSettings, EventMessage, HealthConfig, HostConfig, Mount as EngineMount, MountType,
    NetworkCreateRequest, NetworkingConfig, PortBinding,
};

use crate::container::{ContainerSpec, LABEL_HASH, LABEL_WORKSPACE};

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
    /// The host pid of its first process while it runs (its cgroup tells its CPU and memory).
    pub pid: Option<u32>,
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

pub(super) fn observe(c: &ContainerInspectResponse) -> Observed {
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
            anonymous(&name).then_some((name, dest))
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
        pid: state
            .pid
            .filter(|p| *p > 0)
            .and_then(|p| u32::try_from(p).ok()),
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

/// What an inspection told of a running container that its list entry does not: its first
/// process and when it started. Kept between looks (`.orchestrator/containers.json`), so a
/// status of many settled containers asks the engine for its list only.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Kept {
    pub pid: u32,
    /// The process's start in clock ticks since boot (`/proc/<pid>/stat`, field 22): a pid the
    /// kernel gave to another process since does not match.
    pub pid_start: u64,
    pub started_at: chrono::DateTime<chrono::Utc>,
    pub has_healthcheck: bool,
}

/// Pure: the health a list entry states — the `Health` field of newer engines, else the words of
/// its status (`Up 5 minutes (healthy)`, `Up 2 seconds (health: starting)`). `None`: no
/// healthcheck (no words in parentheses); any other word (`Paused`) is returned as it is.
pub fn listed_health(c: &ContainerSummary) -> Option<String> {
    if let Some(h) = c.health.as_ref().and_then(|h| h.status) {
        let word = h.to_string();
        return (word != "none" && !word.is_empty()).then_some(word);
    }
    let status = c.status.as_deref().unwrap_or("");
    let inner = status.strip_suffix(')')?.rsplit_once('(')?.1;
    Some(inner.strip_prefix("health: ").unwrap_or(inner).to_string())
}

/// Pure: the container a list entry describes, completed by what an earlier inspection kept —
/// only when nothing a status shows can differ from a fresh inspection: it runs and is healthy
/// (or has no healthcheck, as before), and the kept process is still its first process
/// (`same_process`, which the caller read from `/proc`). `None`: inspect it.
pub fn from_list(
    c: &ContainerSummary,
    kept: Option<&Kept>,
    same_process: bool,
) -> Option<Observed> {
    let kept = kept.filter(|_| same_process)?;
    if c.state != Some(ContainerSummaryStateEnum::RUNNING) {
        return None;
    }
    let health = listed_health(c);
    match (health.as_deref(), kept.has_healthcheck) {
        (Some("healthy"), true) | (None, false) => {}
        _ => return None,
    }
    let labels = c.labels.clone().unwrap_or_default();
    let mut host_ports: Vec<u16> = c
        .ports
        .iter()
        .flatten()
        .filter_map(|p| p.public_port)
        .collect();
    host_ports.sort_unstable();
    host_ports.dedup();
    Some(Observed {
        id: c.id.clone()?,
        running: true,
        workspace: labels.get(LABEL_WORKSPACE).cloned(),
        hash: labels.get(LABEL_HASH).cloned(),
        health,
        last_health_output: None,
        exit_code: None,
        started_at: Some(kept.started_at),
        anonymous_volumes: c
            .mounts
            .iter()
            .flatten()
            .filter_map(|m| {
                let name = m.name.clone()?;
                let dest = m.destination.clone()?;
                anonymous(&name).then_some((name, dest))
            })
            .collect(),
        status: "running".into(),
        oom_killed: false,
        finished_at: None,
        service: labels.get(crate::container::LABEL_SERVICE).cloned(),
        name: c
            .names
            .iter()
            .flatten()
            .next()
            .map(|n| n.trim_start_matches('/').to_string())
            .unwrap_or_default(),
        host_ports,
        number: labels
            .get(crate::container::COMPOSE_NUMBER)
            .and_then(|n| n.parse().ok()),
        pid: Some(kept.pid),
    })
}

/// Pure: an engine-generated (anonymous) volume name: 64 hex characters.
fn anonymous(name: &str) -> bool {
    name.len() == 64 && name.chars().all(|c| c.is_ascii_hexdigit())
}

fn some_vec<T: Clone>(v: &[T]) -> Option<Vec<T>> {
    (!v.is_empty()).then(|| v.to_vec())
}

pub(super) fn some_map(
    m: &std::collections::BTreeMap<String, String>,
) -> Option<HashMap<String, String>> {
    (!m.is_empty()).then(|| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
}

pub(super) fn endpoint(n: &crate::container::NetworkSpec) -> EndpointSettings {
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
    use crate::docker::{parse_api, DockerError, Op, MIN_API};
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

    fn listed(state: ContainerSummaryStateEnum, status: &str) -> ContainerSummary {
        let labels = HashMap::from([
            (LABEL_WORKSPACE.to_string(), "/ws".to_string()),
            (
                crate::container::LABEL_SERVICE.to_string(),
                "db".to_string(),
            ),
            (
                crate::container::COMPOSE_NUMBER.to_string(),
                "2".to_string(),
            ),
        ]);
        ContainerSummary {
            id: Some("abc".into()),
            names: Some(vec!["/ws-db-2".into()]),
            state: Some(state),
            status: Some(status.into()),
            labels: Some(labels),
            ports: Some(vec![
                bollard::models::PortSummary {
                    public_port: Some(15432),
                    ..Default::default()
                },
                bollard::models::PortSummary {
                    public_port: Some(15432),
                    ..Default::default()
                },
                bollard::models::PortSummary::default(),
            ]),
            ..Default::default()
        }
    }

    fn kept(has_healthcheck: bool) -> Kept {
        Kept {
            pid: 42,
            pid_start: 7,
            started_at: "2026-12-03T01:00:00Z".parse().unwrap(),
            has_healthcheck,
        }
    }

    #[test]
    fn a_list_entry_states_its_health_in_its_status_words() {
        use ContainerSummaryStateEnum::*;
        let h = |s| listed_health(&listed(RUNNING, s));
        assert_eq!(h("Up 5 minutes (healthy)").as_deref(), Some("healthy"));
        assert_eq!(
            h("Up 1 second (health: starting)").as_deref(),
            Some("starting")
        );
        assert_eq!(h("Up 2 hours (unhealthy)").as_deref(), Some("unhealthy"));
        assert_eq!(h("Up 2 hours (Paused)").as_deref(), Some("Paused"));
        assert_eq!(h("Up About a minute"), None);
        assert_eq!(h(""), None);
        // A newer engine's own field wins over the words.
        let mut c = listed(RUNNING, "Up 5 minutes");
        c.health = Some(bollard::models::ContainerSummaryHealth {
            status: Some(bollard::models::ContainerSummaryHealthStatusEnum::UNHEALTHY),
            ..Default::default()
        });
        assert_eq!(listed_health(&c).as_deref(), Some("unhealthy"));
    }

    #[test]
    fn a_settled_container_is_told_by_its_list_entry_and_what_was_kept() {
        use ContainerSummaryStateEnum::*;
        let o = from_list(
            &listed(RUNNING, "Up 5 minutes (healthy)"),
            Some(&kept(true)),
            true,
        )
        .expect("no inspection needed");
        assert_eq!(o.id, "abc");
        assert!(o.running);
        assert_eq!(o.status, "running");
        assert_eq!(o.health.as_deref(), Some("healthy"));
        assert_eq!(o.pid, Some(42));
        assert_eq!(o.started_at, Some(kept(true).started_at));
        assert_eq!(o.service.as_deref(), Some("db"));
        assert_eq!(o.workspace.as_deref(), Some("/ws"));
        assert_eq!(o.number, Some(2));
        assert_eq!(o.name, "ws-db-2");
        assert_eq!(o.host_ports, vec![15432]);
        // No healthcheck, as when it was inspected.
        let plain = from_list(&listed(RUNNING, "Up 5 minutes"), Some(&kept(false)), true).unwrap();
        assert_eq!(plain.health, None);
    }

    #[test]
    fn anything_a_list_entry_cannot_tell_is_inspected() {
        use ContainerSummaryStateEnum::*;
        let healthy = listed(RUNNING, "Up 5 minutes (healthy)");
        // Never inspected, or its first process is not the one kept (restarted, or another host).
        assert_eq!(from_list(&healthy, None, true), None);
        assert_eq!(from_list(&healthy, Some(&kept(true)), false), None);
        // Its health check's output, its exit code: only an inspection has them.
        for status in [
            "Up 5 minutes (unhealthy)",
            "Up 1 second (health: starting)",
            "Up 5 minutes (Paused)",
        ] {
            assert_eq!(
                from_list(&listed(RUNNING, status), Some(&kept(true)), true),
                None,
                "{status}"
            );
        }
        assert_eq!(
            from_list(
                &listed(EXITED, "Exited (1) 2 seconds ago"),
                Some(&kept(true)),
                true
            ),
            None
        );
        assert_eq!(
            from_list(
                &listed(PAUSED, "Up 5 minutes (healthy)"),
                Some(&kept(true)),
                true
            ),
            None
        );
        // A healthcheck that appeared or vanished since: the configuration changed.
        assert_eq!(
            from_list(&listed(RUNNING, "Up 5 minutes"), Some(&kept(true)), true),
            None
        );
        assert_eq!(from_list(&healthy, Some(&kept(false)), true), None);
    }
}
