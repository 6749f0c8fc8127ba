//! `status`'s edges: look at PM2 (its RPC socket, no client), the Docker engine (one list, one
//! inspect per container), the agent's records and the app health probes — all at once — and
//! hand the observations to the pure `status::compute_status`. Nothing is cached: every call
//! sees the system as it is.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::catalog::{self, Catalog, Kind, ServiceSpec};
use crate::compose::ComposeFile;
use crate::config;
use crate::envfile;
use crate::error::{Error, Result};
use crate::pm2::Pm2Process;
use crate::pm2rpc;
use crate::state;
use crate::status::{self, ContainerObs, EngineObs, Probe, ServiceObs, Snapshot};
use crate::step::{self, Verb};

#[derive(Debug, Clone)]
pub struct StatusRequest {
    pub workspace_root: PathBuf,
    pub profile: Option<String>,
    /// Narrow to one service (unknown → `EXIT_SERVICE_UNKNOWN`).
    pub service: Option<String>,
    pub ecosystem: Value,
    pub ecosystem_file: PathBuf,
    pub pm2_home: PathBuf,
}

/// The profile's env file and compose file, read once per profile.
struct Profiles<'a> {
    cat: &'a Catalog,
    vars: BTreeMap<String, Vec<(String, String)>>,
    composes: BTreeMap<String, Option<ComposeFile>>,
}

impl<'a> Profiles<'a> {
    fn load(&mut self, profile: &str) -> Result<()> {
        if !self.vars.contains_key(profile) {
            let vars = envfile::read_env_file(&self.cat.env_file(profile))?;
            // A compose file the profile cannot interpolate still lets status show the rest.
            let compose = self.cat.compose_for(profile, &vars);
            self.composes.insert(profile.to_string(), compose);
            self.vars.insert(profile.to_string(), vars);
        }
        Ok(())
    }

    /// How many replicas a dependency runs under a profile (1 for everything else).
    fn replicas(&mut self, spec: &ServiceSpec, profile: &str) -> u32 {
        if spec.kind != Kind::Dependency || self.load(profile).is_err() {
            return 1;
        }
        match &self.composes[profile] {
            Some(c) => c
                .service(&spec.name)
                .map(|s| s.replicas.max(1))
                .unwrap_or(1),
            None => 1,
        }
    }

    /// The host ports a service declares under a profile (names only ever; no values shown).
    fn ports(&mut self, spec: &ServiceSpec, profile: &str) -> Vec<u16> {
        if self.load(profile).is_err() {
            return Vec::new();
        }
        match spec.kind {
            Kind::App => {
                let env = catalog::resolve_env(
                    spec,
                    profile,
                    self.vars[profile].clone(),
                    &self.cat.env_file(profile),
                );
                catalog::declared_ports(spec, &env)
            }
            Kind::Dependency => match &self.composes[profile] {
                Some(c) => step::container_spec(self.cat, spec, profile, c)
                    .map(|c| c.host_ports())
                    .unwrap_or_default(),
                None => Vec::new(),
            },
        }
    }
}

fn container_obs(o: &crate::docker::Observed) -> ContainerObs {
    ContainerObs {
        id: o.id.clone(),
        running: o.running,
        status: o.status.clone(),
        health: o.health.clone().filter(|h| h != "none" && !h.is_empty()),
        health_output: o.last_health_output.clone(),
        exit_code: o.exit_code,
        oom_killed: o.oom_killed,
        started_at: o.started_at,
        finished_at: o.finished_at,
    }
}

/// The workspace's containers, by our label: one list, and an inspection of each container
/// whose list entry and kept first process (`.orchestrator/containers.json`) do not tell
/// everything a status shows (`docker::from_list`), concurrently.
#[tracing::instrument(level = "debug", skip_all)]
async fn observe_docker(
    wanted: bool,
    ws: &str,
    kept: BTreeMap<String, crate::docker::Kept>,
) -> (
    EngineObs,
    Vec<crate::docker::Observed>,
    BTreeMap<String, crate::docker::Kept>,
) {
    if !wanted {
        return (EngineObs::NotNeeded, Vec::new(), kept);
    }
    // Polled often: no version negotiation on a local socket (a remote one negotiates).
    let engine = match crate::docker::Engine::connect_pinned() {
        Ok(e) => Ok(e),
        Err(_) => crate::deps::connect().await,
    };
    match engine {
        Ok(engine) => {
            let labels = [format!("{}={ws}", crate::container::LABEL_WORKSPACE)];
            match engine.observe_labelled_kept(&labels, &kept).await {
                Ok((seen, keep)) => (EngineObs::Reachable, seen, keep),
                Err(e) => (EngineObs::Unreachable(e.to_string()), Vec::new(), kept),
            }
        }
        Err(e) => (EngineObs::Unreachable(e.message()), Vec::new(), kept),
    }
}

/// What one status look keeps for the next: the CPU readings (the next look measures the CPU
/// between the two) and what inspections told of the running containers (`docker::Kept`). The
/// CLI keeps them in `.orchestrator/` between its runs; the dashboard holds them in memory.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Memory {
    pub readings: orchestrator_core::resources::Readings,
    pub containers: BTreeMap<String, crate::docker::Kept>,
}

impl Memory {
    /// The files of the previous look (absent or unreadable: nothing kept).
    pub fn load(root: &Path) -> Memory {
        let read = |f: PathBuf| std::fs::read(f).ok();
        Memory {
            readings: read(orchestrator_core::layout::usage_file(root))
                .and_then(|b| serde_json::from_slice(&b).ok())
                .unwrap_or_default(),
            containers: read(orchestrator_core::layout::containers_file(root))
                .and_then(|b| serde_json::from_slice(&b).ok())
                .unwrap_or_default(),
        }
    }

    /// Writes what changed since `before`.
    pub fn save(&self, root: &Path, before: &Memory) {
        if self.readings != before.readings {
            state::write_whole(&orchestrator_core::layout::usage_file(root), &self.readings);
        }
        if self.containers != before.containers {
            state::write_whole(
                &orchestrator_core::layout::containers_file(root),
                &self.containers,
            );
        }
    }
}

/// One status look, keeping what it learnt in `.orchestrator/` for the next run's look.
pub async fn status(req: StatusRequest) -> Result<Snapshot> {
    let root = req.workspace_root.clone();
    let mut memory = Memory::load(&root);
    let before = memory.clone();
    let snapshot = status_with(req, &mut memory).await;
    memory.save(&root, &before);
    snapshot
}

/// One status look against what the previous look kept in `memory`, which then holds this one's.
#[tracing::instrument(level = "debug", skip_all)]
pub async fn status_with(req: StatusRequest, memory: &mut Memory) -> Result<Snapshot> {
    let root = req.workspace_root.clone();
    let ws = root.display().to_string();
    // Ask PM2 and the engine first: they answer while the catalog is read.
    let pm2_task = tokio::spawn({
        let home = req.pm2_home.clone();
        async move { pm2rpc::list(&home).await }
    });
    let wants_docker = catalog::COMPOSE_FILES
        .iter()
        .any(|f| root.join(f).is_file());
    let docker_task = tokio::spawn({
        let ws = ws.clone();
        let kept = std::mem::take(&mut memory.containers);
        async move { observe_docker(wants_docker, &ws, kept).await }
    });

    let cat = crate::catalog::load(&root, &req.ecosystem, &req.ecosystem_file)?;
    // A compose file that cannot be read at all would silently drop every dependency's row:
    // that is the error to show (a problem of one service only marks that service).
    if let Some(c) = cat.compose.as_ref().filter(|c| c.names.is_empty()) {
        let problems: Vec<crate::compose::Diag> = c.errors().cloned().collect();
        if !problems.is_empty() {
            return Err(crate::error::Error::Compose {
                service: None,
                problems,
            });
        }
    }
    let nx_json = config::nx_json_path(&root);
    let profile = config::resolve_profile(req.profile.as_deref(), &cat.config, &nx_json)?;
    if let Some(s) = &req.service {
        crate::names::validate_name(s, "service")?;
        cat.get(s)?;
    }
    let mut profiles = Profiles {
        cat: &cat,
        vars: BTreeMap::new(),
        composes: BTreeMap::new(),
    };
    profiles.load(&profile)?;
    let all: Vec<&ServiceSpec> = cat.services.iter().collect();
    let order = step::ordered(&cat, all, profiles.composes[&profile].as_ref(), Verb::Start)
        .unwrap_or_else(|_| cat.services.iter().collect());
    let specs: Vec<&ServiceSpec> = order
        .into_iter()
        .filter(|s| req.service.as_deref().is_none_or(|n| n == s.name))
        .collect();

    let joined = |e: tokio::task::JoinError| Error::Usage {
        message: format!("status task failed: {e}"),
        remediation: "Report this as a bug".into(),
    };
    let pm2 = pm2_task.await.map_err(joined)?;
    let (engine, containers, kept) = docker_task.await.map_err(joined)?;
    memory.containers = kept;
    let pm2_daemon = matches!(pm2, Ok(Some(_)));
    let (pm2_word, procs) = match pm2 {
        Ok(Some(p)) => ("online".to_string(), p),
        Ok(None) => ("not running".to_string(), Vec::new()),
        Err(m) => (format!("unreachable: {m}"), Vec::new()),
    };
    let records: BTreeMap<String, crate::supervise::Record> = state::all(&root)
        .into_iter()
        .map(|r| (r.service.clone(), r))
        .collect();

    let mut obs = Vec::new();
    let mut probes = Vec::new();
    for spec in &specs {
        let mine: Vec<&Pm2Process> = procs
            .iter()
            .filter(|p| p.name == spec.name && p.workspace.as_deref() == Some(ws.as_str()))
            .collect();
        let record = records.get(&spec.name).cloned();
        let row_profile = mine
            .iter()
            .find_map(|p| p.profile.clone())
            .or_else(|| record.as_ref().map(|r| r.profile.clone()))
            .filter(|p| cat.config.profiles.contains(p))
            .unwrap_or_else(|| profile.clone());
        let declared = profiles.ports(spec, &row_profile);
        let replicas = profiles.replicas(spec, &row_profile);
        // A replicated dependency: a row per replica, each with its runner (PM2 instance n - 1)
        // and its container (compose's number n).
        let rows: Vec<Option<u32>> = if spec.kind == Kind::Dependency && replicas > 1 {
            (1..=replicas).map(Some).collect()
        } else {
            vec![None]
        };
        for replica in rows {
            let mut ports = declared.clone();
            let procs_of: Vec<&Pm2Process> = match replica {
                Some(n) => mine
                    .iter()
                    .copied()
                    .filter(|p| p.instance.unwrap_or(0) + 1 == n)
                    .collect(),
                None => mine.clone(),
            };
            let container = (spec.kind == Kind::Dependency)
                .then(|| {
                    let mut theirs: Vec<&crate::docker::Observed> = containers
                        .iter()
                        .filter(|c| c.service.as_deref() == Some(spec.name.as_str()))
                        .filter(|c| {
                            replica.is_none() || c.number.unwrap_or(1) == replica.unwrap_or(1)
                        })
                        .collect();
                    theirs.sort_by_key(|c| (c.running, c.started_at));
                    theirs.last().map(|c| {
                        // The ports the engine actually bound (an ephemeral one included).
                        if c.running && !c.host_ports.is_empty() {
                            ports = c.host_ports.clone();
                        }
                        container_obs(c)
                    })
                })
                .flatten();
            let live = procs_of.iter().any(|p| p.status == "online");
            let health = spec.config.health.clone().unwrap_or_default();
            let probe_wanted = spec.kind == Kind::App && live;
            probes.push(async move {
                if !probe_wanted {
                    return Probe::Skipped;
                }
                crate::ready::probe(health.http.as_deref(), health.tcp.as_deref()).await
            });
            obs.push(ServiceObs {
                name: spec.name.clone(),
                replica,
                kind: spec.kind.as_str().into(),
                ports,
                pm2: procs_of.iter().map(|p| (*p).clone()).collect(),
                pm2_daemon,
                container,
                engine: if spec.kind == Kind::Dependency {
                    engine.clone()
                } else {
                    EngineObs::NotNeeded
                },
                record: record.clone(),
                probe: Probe::Skipped,
                usage: BTreeMap::new(),
                container_usage: None,
            });
        }
    }
    // CPU and memory, read while the probes run: every online process of ours from /proc, every
    // running container of ours from the engine's stats.
    let pids: Vec<u32> = obs
        .iter()
        .flat_map(|o| o.pm2.iter().filter(|p| p.status == "online"))
        .filter_map(|p| p.pid)
        .collect();
    let running: Vec<crate::usage::RunningContainer> = containers
        .iter()
        .filter(|c| {
            c.running
                && obs
                    .iter()
                    .any(|o| o.container.as_ref().is_some_and(|x| x.id == c.id))
        })
        .map(|c| crate::usage::RunningContainer {
            id: c.id.clone(),
            pid: c.pid,
            started_at: c.started_at,
        })
        .collect();
    let processes = tokio::task::spawn_blocking(move || {
        crate::usage::read_processes(&pids, chrono::Utc::now())
    });
    let (results, processes, container_readings) = tokio::join!(
        futures_util::future::join_all(probes),
        processes,
        crate::usage::read_containers(&running)
    );
    let mut readings = processes.unwrap_or_default();
    readings.extend(container_readings);
    let usage = crate::usage::measure(&mut memory.readings, &readings);
    for (o, p) in obs.iter_mut().zip(results) {
        o.probe = match p {
            Probe::Skipped if o.kind == "app" => Probe::Skipped,
            other => other,
        };
        for p in &o.pm2 {
            if let Some(u) = p.pid.and_then(|pid| usage.get(&crate::usage::pid_key(pid))) {
                o.usage.insert(p.pid.unwrap_or_default(), *u);
            }
        }
        o.container_usage = o
            .container
            .as_ref()
            .and_then(|c| usage.get(&crate::usage::container_key(&c.id)))
            .copied();
    }
    let now = chrono::Utc::now();
    Ok(Snapshot {
        workspace: ws,
        profile,
        generated_at: now.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        pm2: pm2_word,
        docker: match &engine {
            EngineObs::NotNeeded => "not used".into(),
            EngineObs::Reachable => "reachable".into(),
            EngineObs::Unreachable(m) => format!("unreachable: {m}"),
        },
        services: status::compute_status(&obs, now),
    })
}

/// `--strict`: the failed and degraded services as an error (`EXIT_UNHEALTHY`).
pub fn strict(s: &Snapshot) -> Result<()> {
    let bad = status::unhealthy(s);
    if bad.is_empty() {
        return Ok(());
    }
    Err(Error::Unhealthy {
        services: bad
            .iter()
            .map(|r| {
                let why = r
                    .last_failure
                    .as_ref()
                    .filter(|_| r.state == "failed")
                    .map(|f| f.reason.lines().next().unwrap_or_default().to_string())
                    .or_else(|| r.detail.clone())
                    .unwrap_or_default();
                (r.name.clone(), r.state.clone(), why)
            })
            .collect(),
        profile: s.profile.clone(),
    })
}
