//! A command's plan: the selection in launch order, and for each service the step — its
//! decision against PM2's table, its definition under the profile (env, PM2 app or container,
//! ports), its supervision, what it waits on. A service's step is built once, by
//! `plan_service`, for `prepare` (start, restart, deploy, stop) and for `verify`'s dry run
//! alike. Reads the workspace's files and PM2's table as given; writes nothing (provisioning is
//! `ops::provision`'s).

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde_json::Value;

use crate::catalog::{self, Catalog, Kind, ServiceSpec};
use crate::compose::{self, ComposeFile};
use crate::config::{self, DEFAULT_READY_TIMEOUT_SECONDS};
use crate::container::{self, ContainerSpec};
use crate::decide::{self, Action};
use crate::envfile::{self, ResolvedEnv};
use crate::error::{Error, Result};
use crate::npm::InstallOutcome;
use crate::pm2::{self, Pm2Process};
use crate::schedule::{self, Wait};
use crate::supervise::Launch;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    Start,
    Restart,
    Stop,
    /// `deploy`: dependencies as `start` (kept when running: a database is not restarted to ship
    /// an app), apps as `restart` under the given profile (cluster apps reload, zero downtime).
    Deploy,
}

#[derive(Debug, Clone)]
pub struct Request {
    pub workspace_root: PathBuf,
    pub profile: Option<String>,
    pub services: Vec<String>,
    pub all: bool,
    pub ecosystem: Value,
    pub ecosystem_file: PathBuf,
    pub pm2: Vec<Pm2Process>,
    pub node_version: String,
    pub pm2_version: Option<String>,
    /// Select every docker dependency (`deps:start`, `deps:restart`).
    pub dependencies: bool,
    /// The native supervisor PM2 runs as each dependency's container runner.
    pub supervisor: PathBuf,
}

#[derive(Debug, Clone)]
pub struct Step {
    pub service: String,
    pub kind: Kind,
    pub action: Action,
    pub profile: String,
    /// A profile switch: the profile the service ran under until this step.
    pub switched_from: Option<String>,
    /// The step replaces something of ours that runs (a restart, reload or switch): whatever can
    /// be checked is checked before it is touched, and a refusal leaves it running.
    pub replacing: bool,
    /// What runs for the service now (PM2's pids, and PM2's daemon for a cluster app, which
    /// holds the listening socket): a port they hold is the service's own, not a conflict.
    pub own_pids: Vec<u32>,
    /// The PM2 app definition for launching actions.
    pub app: Option<Value>,
    pub ports: Vec<u16>,
    pub health_http: Option<String>,
    pub health_tcp: Option<String>,
    pub ready_timeout_ms: u64,
    pub error_log: PathBuf,
    pub install: Option<InstallOutcome>,
    /// The container of a launching dependency step.
    pub container: Option<ContainerSpec>,
    /// What the agent supervises for a launching step (its restart policy under the profile).
    pub launch: Option<Launch>,
    /// A one-shot job (others wait on it with `service_completed_successfully`): run to
    /// completion by the command, not supervised, not under PM2.
    pub job: bool,
    /// For a job: the services that wait for it (not started when it fails).
    pub blocked: Vec<String>,
    /// What its compose definition asks that cannot be honoured here (`file:line: key: …`),
    /// said at start as compose says it.
    pub warnings: Vec<String>,
    /// Required variables (the plugin's `requiredEnv`) the profile does not set: a launching
    /// step is refused with `EXIT_ENV_MISSING`, `verify` lists them.
    pub missing_env: Vec<String>,
    /// What this step waits on while the command runs (`schedule`): a start's compose
    /// `depends_on` and `dependsOn` edges, a stop's turned round.
    pub waits: Vec<Wait>,
}

#[derive(Debug, Clone)]
pub struct Plan {
    pub workspace_root: PathBuf,
    pub workspace_name: String,
    pub profile: String,
    pub steps: Vec<Step>,
}

/// An app under a profile, as start launches it: its env resolved, the required variables it
/// lacks, its PM2 app and its declared ports. A plan's step and `verify`'s dry run both take an
/// app from here (a dependency from `container_spec`).
pub struct AppDefinition {
    pub env: ResolvedEnv,
    pub missing_env: Vec<String>,
    pub app: Value,
    pub ports: Vec<u16>,
}

/// A service's env under a profile (its layers over the profile's file variables) and the
/// required variables (the plugin's `requiredEnv`) it lacks.
pub fn resolved_env(
    cat: &Catalog,
    spec: &ServiceSpec,
    profile: &str,
    file_vars: Vec<(String, String)>,
) -> (ResolvedEnv, Vec<String>) {
    let env = catalog::resolve_env(spec, profile, file_vars, &cat.env_file(profile));
    let missing = envfile::missing_required(&spec.config.required_env, &env);
    (env, missing)
}

pub fn app_definition(
    cat: &Catalog,
    spec: &ServiceSpec,
    profile: &str,
    file_vars: Vec<(String, String)>,
) -> AppDefinition {
    let (env, missing_env) = resolved_env(cat, spec, profile, file_vars);
    AppDefinition {
        missing_env,
        app: catalog::pm2_app(cat, spec, profile, &env),
        ports: catalog::declared_ports(spec, &env),
        env,
    }
}

/// `app_definition` with the profile's env file read (values stay in memory).
pub fn read_app_definition(
    cat: &Catalog,
    spec: &ServiceSpec,
    profile: &str,
) -> Result<AppDefinition> {
    let vars = envfile::read_env_file(&cat.env_file(profile))?;
    Ok(app_definition(cat, spec, profile, vars))
}

impl AppDefinition {
    /// `EXIT_ENV_MISSING` when a required variable is not set for the profile.
    pub fn require_env(&self, cat: &Catalog, spec: &ServiceSpec, profile: &str) -> Result<()> {
        require_env(cat, spec, profile, &self.missing_env)
    }
}

/// `EXIT_ENV_MISSING` naming `missing` (the required variables the profile does not set), with
/// the env file to add them to; nothing when none is missing.
pub fn require_env(
    cat: &Catalog,
    spec: &ServiceSpec,
    profile: &str,
    missing: &[String],
) -> Result<()> {
    if missing.is_empty() {
        return Ok(());
    }
    Err(Error::EnvMissing {
        service: spec.name.clone(),
        profile: profile.into(),
        missing: missing.to_vec(),
        env_file: cat.env_file(profile),
    })
}

/// The selection in launch order: dependencies first (compose `depends_on` order, with what
/// they depend on when starting), then apps; `stop` runs it backwards.
pub fn ordered<'a>(
    cat: &'a Catalog,
    selected: Vec<&'a ServiceSpec>,
    compose: Option<&ComposeFile>,
    verb: Verb,
) -> Result<Vec<&'a ServiceSpec>> {
    let mut deps: Vec<String> = selected
        .iter()
        .filter(|s| s.kind == Kind::Dependency)
        .map(|s| s.name.clone())
        .collect();
    if let Some(c) = compose {
        // Services that failed to load keep their place after the ones that loaded: acting on
        // them reports their problems.
        let mut order = compose::start_order(&c.services);
        let rest: Vec<String> = c
            .names
            .iter()
            .filter(|n| !order.contains(n))
            .cloned()
            .collect();
        order.extend(rest);
        if matches!(verb, Verb::Start | Verb::Deploy) {
            deps = container::with_dependencies(c, &deps, &order);
        } else {
            deps = order.into_iter().filter(|o| deps.contains(o)).collect();
        }
    }
    let mut out: Vec<&ServiceSpec> = Vec::new();
    for d in &deps {
        out.push(cat.get(d)?);
    }
    out.extend(selected.into_iter().filter(|s| s.kind == Kind::App));
    if verb == Verb::Stop {
        out.reverse();
    }
    Ok(out)
}

/// A dependency's container for a profile: the compose service interpolated with the profile's
/// env, its `env_file`s read, our labels attached.
pub fn container_spec(
    cat: &Catalog,
    spec: &ServiceSpec,
    profile: &str,
    compose: &ComposeFile,
) -> Result<ContainerSpec> {
    if let Some(e) = compose::service_error(compose, &spec.name) {
        return Err(e);
    }
    let svc = compose
        .service(&spec.name)
        .ok_or_else(|| Error::ServiceUnknown {
            service: spec.name.clone(),
            known: cat.names(),
        })?;
    let mut vars = Vec::new();
    for (i, f) in svc.env_files.iter().enumerate() {
        if !f.path.is_file() {
            if !f.required {
                continue;
            }
            return Err(Error::InvalidConfig {
                file: compose.file.clone(),
                key: format!("services.{}.env_file[{i}]", spec.name),
                message: format!(
                    "{} does not exist (give it `required: false` if it is optional)",
                    f.path.display()
                ),
            });
        }
        let text = std::fs::read_to_string(&f.path).map_err(|source| Error::Io {
            op: crate::error::IoOp::Read,
            path: f.path.clone(),
            source,
        })?;
        let lookup = |k: &str| std::env::var(k).ok();
        vars.extend(envfile::parse_dotenv(&text, &f.path, &lookup)?);
    }
    for lf in &svc.label_files {
        if !lf.is_file() {
            return Err(Error::InvalidConfig {
                file: compose.file.clone(),
                key: format!("services.{}.label_file", spec.name),
                message: format!("{} does not exist", lf.display()),
            });
        }
    }
    let mut label_vars = Vec::new();
    for lf in &svc.label_files {
        let text = std::fs::read_to_string(lf).map_err(|source| Error::Io {
            op: crate::error::IoOp::Read,
            path: lf.clone(),
            source,
        })?;
        label_vars.extend(envfile::parse_dotenv(&text, lf, &|_| None)?);
    }
    let mut c = container::spec(container::SpecInput {
        workspace_root: &cat.root,
        workspace_name: &cat.workspace_name,
        profile,
        compose,
        service: svc,
        env_file_vars: vars,
        health_timeout_seconds: spec.config.health_timeout_seconds,
        replica: 1,
    });
    // `labels` win over `label_file`.
    for (k, v) in label_vars {
        c.labels.entry(k).or_insert(v);
    }
    // A built image's context is part of the container's identity: a changed context rebuilds
    // the image and recreates the container.
    if let Some(b) = &c.build {
        if let Ok(h) = crate::build::context_hash(b, &c.image) {
            c.labels.insert(container::LABEL_CONTEXT_HASH.into(), h);
        }
    }
    Ok(c)
}

/// A plan with what provisioning needs: the catalog and each profile's compose model.
pub struct Planned {
    pub plan: Plan,
    pub cat: Catalog,
    pub composes: BTreeMap<String, ComposeFile>,
}

/// The plan: every guard that reads (prerequisites, profile, service names, compose entries,
/// required env, PM2 ownership) and every step's decision, PM2 app and container spec. It reads
/// the workspace's files and PM2's table as given, and changes nothing.
#[tracing::instrument(level = "debug", skip_all)]
pub fn plan_steps(verb: Verb, req: &Request) -> Result<Planned> {
    let root = req.workspace_root.clone();
    crate::prereq::check_node_and_pm2(&req.node_version, req.pm2_version.as_deref(), &root)?;
    if verb != Verb::Stop && !req.supervisor.is_file() {
        // The agent and every container runner are this executable: without it nothing starts.
        return Err(Error::Prerequisite {
            tool: format!("orchestrator-supervisor ({})", req.supervisor.display()),
            found: None,
            minimum: env!("CARGO_PKG_VERSION").into(),
            remediation: "Build it with the addon: `npm run build` in the orchestrator package (or `npm run setup`)".into(),
        });
    }
    let cat = catalog::load(&root, &req.ecosystem, &req.ecosystem_file)?;
    let nx_json = config::nx_json_path(&root);
    let requested_profile = req.profile.as_deref().filter(|p| !p.trim().is_empty());
    let default_profile = config::resolve_profile(requested_profile, &cat.config, &nx_json)?;
    let mut selected = cat.select(&req.services, req.all)?;
    if req.dependencies {
        selected = cat
            .services
            .iter()
            .filter(|s| s.kind == Kind::Dependency)
            .collect();
        if selected.is_empty() {
            return Err(Error::Usage {
                message: "this workspace declares no docker dependencies (no docker-compose.yml services)".into(),
                remediation: "Add services to docker-compose.yml, or drop the dependencies option".into(),
            });
        }
    }
    let ws = root.display().to_string();

    // Each profile's env file is read, and the compose file interpolated, once per profile.
    let mut env_files: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
    let mut composes: BTreeMap<String, ComposeFile> = BTreeMap::new();
    let read_profile = |p: &str,
                        env_files: &mut BTreeMap<String, Vec<(String, String)>>,
                        composes: &mut BTreeMap<String, ComposeFile>|
     -> Result<()> {
        if !env_files.contains_key(p) {
            let vars = envfile::read_env_file(&cat.env_file(p))?;
            if let Some(c) = cat.compose_for(p, &vars) {
                composes.insert(p.to_string(), c);
            }
            env_files.insert(p.to_string(), vars);
        }
        Ok(())
    };
    read_profile(&default_profile, &mut env_files, &mut composes)?;
    // `depends_on: {x: {restart: true}}`: restarting x restarts what declares it, after x.
    if verb == Verb::Restart {
        if let Some(c) = composes.get(&default_profile) {
            let names: Vec<String> = selected.iter().map(|s| s.name.clone()).collect();
            for extra in container::restart_cascade(c, &names) {
                if let Ok(s) = cat.get(&extra) {
                    selected.push(s);
                }
            }
        }
    }
    // Compose profiles: a service whose profiles are not enabled is left out of every selection
    // that does not name it (as `docker compose up` leaves it out).
    if req.services.is_empty() {
        if let Some(c) = composes.get(&default_profile) {
            selected.retain(|s| s.kind == Kind::App || c.is_active(&s.name));
        }
    }
    let selected = ordered(&cat, selected, composes.get(&default_profile), verb)?;

    let mut steps = Vec::new();
    for spec in selected {
        // restart and stop without --profile act on the profile the service runs under.
        let profile = match (verb, requested_profile) {
            (Verb::Restart | Verb::Stop, None) => {
                match pm2::running_profile(&req.pm2, &spec.name, &ws) {
                    Some(p) => config::resolve_profile(Some(&p), &cat.config, &nx_json)?,
                    None => default_profile.clone(),
                }
            }
            _ => default_profile.clone(),
        };
        read_profile(&profile, &mut env_files, &mut composes)?;
        let step = plan_service(&ServiceInput {
            cat: &cat,
            spec,
            verb,
            profile: &profile,
            pm2: &req.pm2,
            file_vars: &env_files[&profile],
            compose: composes.get(&profile),
            supervisor: &req.supervisor,
        })?;
        if step.action.launches() {
            require_env(&cat, spec, &profile, &step.missing_env)?;
        }
        steps.push(step);
    }
    let nodes = schedule_nodes(&cat, &steps, &|p| composes.get(p));
    let start = schedule::start_waits(&nodes);
    let cycle = schedule::cycle(&nodes, &start);
    if let (Some(c), false) = (&cycle, verb == Verb::Stop) {
        return Err(cycle_error(&cat, c));
    }
    let waits = if verb == Verb::Stop && cycle.is_some() {
        // A stop is never refused: with no order to follow, everything stops at once.
        vec![Vec::new(); nodes.len()]
    } else if verb == Verb::Stop {
        schedule::stop_waits(&nodes, &start)
    } else {
        start
    };
    for (step, w) in steps.iter_mut().zip(waits) {
        step.waits = w;
    }

    Ok(Planned {
        plan: Plan {
            workspace_root: root,
            workspace_name: cat.workspace_name.clone(),
            profile: default_profile,
            steps,
        },
        cat,
        composes,
    })
}

/// The steps as the schedule sees them: each one's compose `depends_on` (under its profile)
/// and its nx.json `dependsOn`.
pub fn schedule_nodes<'c>(
    cat: &Catalog,
    steps: &[Step],
    compose_of: &dyn Fn(&str) -> Option<&'c ComposeFile>,
) -> Vec<schedule::Node> {
    steps
        .iter()
        .map(|s| node(cat, &s.service, s.kind, compose_of(&s.profile)))
        .collect()
}

/// What every service of the catalog waits on before it starts, under one profile's compose
/// file: the edges a `start --all` would follow (`why` walks them).
pub fn start_edges(
    cat: &Catalog,
    compose: Option<&ComposeFile>,
) -> BTreeMap<String, Vec<schedule::Wait>> {
    let nodes: Vec<schedule::Node> = cat
        .services
        .iter()
        .map(|s| node(cat, &s.name, s.kind, compose))
        .collect();
    let waits = schedule::start_waits(&nodes);
    nodes.into_iter().map(|n| n.service).zip(waits).collect()
}

fn node(cat: &Catalog, service: &str, kind: Kind, compose: Option<&ComposeFile>) -> schedule::Node {
    schedule::Node {
        service: service.to_string(),
        kind,
        compose: compose
            .and_then(|c| c.service(service))
            .map(|c| {
                c.depends_on
                    .iter()
                    .map(|d| (d.name.clone(), d.condition, d.required))
                    .collect()
            })
            .unwrap_or_default(),
        // nx.json's `dependsOn`, else the Nx graph's `implicitDependencies` that are services
        // (project.json), else none declared (an app then waits on every dependency).
        declared: cat
            .config
            .services
            .get(service)
            .and_then(|c| c.depends_on.clone())
            .or_else(|| {
                cat.services
                    .iter()
                    .find(|x| x.name == service)
                    .and_then(|spec| cat.implicit_waits(spec))
            }),
    }
}

/// Services that wait on each other in a cycle (`schedule::cycle`): none of them could start.
pub fn cycle_error(cat: &Catalog, cycle: &[String]) -> Error {
    Error::InvalidConfig {
        file: config::nx_json_path(&cat.root),
        key: format!(
            "pluginsConfig[\"{}\"].services.{}.dependsOn",
            crate::names::PLUGIN_KEY,
            cycle[0]
        ),
        message: format!(
            "the services wait on each other in a cycle ({}), so none of them could start; an app that declares no dependsOn waits on the services its project.json names in implicitDependencies, else on every docker dependency, and \"dependsOn\": [] says it needs none",
            cycle.join(" → ")
        ),
    }
}

/// A wait as the dry run and the binding show it: `name`, `name:ready`, `name:completed`.
pub fn wait_label(w: &Wait) -> String {
    match w.gate {
        schedule::Gate::Started => w.on.clone(),
        schedule::Gate::Ready => format!("{}:ready", w.on),
        schedule::Gate::Completed => format!("{}:completed", w.on),
    }
}

/// What one service's step is planned from: the catalog, the service, the command, the profile
/// it acts under, PM2's table, the profile's env file variables and compose model.
pub struct ServiceInput<'a> {
    pub cat: &'a Catalog,
    pub spec: &'a ServiceSpec,
    pub verb: Verb,
    pub profile: &'a str,
    pub pm2: &'a [Pm2Process],
    pub file_vars: &'a [(String, String)],
    pub compose: Option<&'a ComposeFile>,
    pub supervisor: &'a std::path::Path,
}

/// One service's step: the decision against PM2's table and the definition under the profile
/// (PM2 app or container, ports, supervision), the required variables it lacks recorded, not
/// refused (`plan_steps` refuses them; `verify` lists them). An error is what keeps the service
/// from being defined at all (its compose entry, its ecosystem entry, its restart policy).
pub fn plan_service(inp: &ServiceInput<'_>) -> Result<Step> {
    let (cat, spec, verb) = (inp.cat, inp.spec, inp.verb);
    let profile = inp.profile.to_string();
    let ws = cat.root.display().to_string();
    let nx_json = config::nx_json_path(&cat.root);
    let presence = pm2::presence(inp.pm2, &spec.name, &ws, &profile);
    let shape = match (spec.kind, spec.cluster) {
        (Kind::Dependency, _) => decide::Shape::Dependency,
        (Kind::App, true) => decide::Shape::Cluster,
        (Kind::App, false) => decide::Shape::Fork,
    };
    let decision = match verb {
        Verb::Start => decide::start(&presence, &spec.name, &profile, shape)?,
        Verb::Restart => decide::restart(&presence, &spec.name, &profile, shape)?,
        Verb::Stop => decide::Decision {
            action: decide::stop(&presence, &spec.name, &profile)?,
            switched_from: None,
        },
        Verb::Deploy if spec.kind == Kind::Dependency => {
            decide::start(&presence, &spec.name, &profile, shape)?
        }
        Verb::Deploy => decide::restart(&presence, &spec.name, &profile, shape)?,
    };
    let action = decision.action;
    let live = matches!(
        presence,
        pm2::Presence::Ours { live: true } | pm2::Presence::OtherProfile { live: true, .. }
    );
    let replacing = live && action.launches();
    let mut own_pids = if live {
        pm2::pids(inp.pm2, &spec.name)
    } else {
        Vec::new()
    };
    if live && spec.cluster {
        own_pids.extend(crate::pm2rpc::daemon_pid());
    }
    let mut step = Step {
        service: spec.name.clone(),
        kind: spec.kind,
        action,
        switched_from: decision.switched_from,
        replacing,
        own_pids,
        app: None,
        ports: Vec::new(),
        health_http: None,
        health_tcp: None,
        ready_timeout_ms: spec
            .config
            .ready_timeout_seconds
            .unwrap_or(DEFAULT_READY_TIMEOUT_SECONDS)
            * 1000,
        error_log: cat.log_dir(&spec.name).join("error.log"),
        profile: profile.clone(),
        install: None,
        container: None,
        launch: None,
        job: false,
        blocked: Vec::new(),
        warnings: Vec::new(),
        missing_env: Vec::new(),
        waits: Vec::new(),
    };
    match spec.kind {
        Kind::App => {
            if action.launches() {
                if let Some(e) = cat.app_error(spec) {
                    return Err(e);
                }
            }
            let d = app_definition(cat, spec, &profile, inp.file_vars.to_vec());
            step.missing_env = d.missing_env;
            if action.launches() {
                let mut app = d.app;
                catalog::unset_stale(&mut app, pm2::entry_env(inp.pm2, &spec.name, &ws));
                step.app = Some(app);
            }
            let health = spec.config.health.clone().unwrap_or_default();
            step.ports = d.ports;
            step.health_http = health.http;
            step.health_tcp = health.tcp;
        }
        Kind::Dependency => {
            step.missing_env = resolved_env(cat, spec, &profile, inp.file_vars.to_vec()).1;
            if action.launches() {
                let compose = inp.compose.ok_or_else(|| Error::ServiceUnknown {
                    service: spec.name.clone(),
                    known: cat.names(),
                })?;
                let c = container_spec(cat, spec, &profile, compose)?;
                step.warnings = compose
                    .warnings()
                    .filter(|d| d.service.as_deref() == Some(spec.name.as_str()))
                    .map(|d| d.located())
                    .collect();
                if container::is_one_shot(compose, &spec.name) {
                    step.job = true;
                    step.blocked = compose
                        .services
                        .iter()
                        .filter(|s| {
                            s.depends_on.iter().any(|d| {
                                d.name == spec.name
                                    && d.condition == compose::Condition::CompletedSuccessfully
                            })
                        })
                        .map(|s| s.name.clone())
                        .collect();
                    step.ports = c.host_ports();
                    step.container = Some(c);
                    return Ok(step);
                }
                step.app = Some(catalog::runner_app(cat, spec, &profile, &c, inp.supervisor));
                step.ports = c.host_ports();
                step.ready_timeout_ms = c.health_timeout_seconds * 1000;
                step.container = Some(c);
            }
        }
    }
    // What the service's own file says about restarts (compose `restart:`, PM2 options).
    let file_layer = match spec.kind {
        Kind::App => crate::policy::ecosystem_layer(&spec.app),
        Kind::Dependency => inp
            .compose
            .and_then(|c| c.service(&spec.name))
            .and_then(|s| s.restart.as_deref())
            .map(crate::policy::compose_layer),
    };
    if action.launches() {
        step.launch = Some(Launch {
            switched_from: step.switched_from.clone(),
            service: spec.name.clone(),
            kind: spec.kind.as_str().into(),
            profile: profile.clone(),
            policy: cat.config.restart_policy_with(
                &spec.name,
                &profile,
                &nx_json,
                file_layer.as_ref(),
            )?,
            // A fork-mode app's own port held by another process after it exits is a cause
            // restarting cannot fix (a cluster's listening socket is held by PM2 itself).
            check_ports: if spec.kind == Kind::App && !spec.cluster {
                step.ports.clone()
            } else {
                Vec::new()
            },
        });
    }
    Ok(step)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn request(root: &std::path::Path) -> Request {
        Request {
            workspace_root: root.to_path_buf(),
            profile: None,
            services: vec!["api".into()],
            all: false,
            ecosystem: json!({"apps": [{"name": "api", "script": "main.js", "cwd": "apps/api",
                              "env": {"PORT": "3100", "NODE_ENV": "development"}}]}),
            ecosystem_file: root.join("ecosystem.config.js"),
            pm2: Vec::new(),
            node_version: "20.11.0".into(),
            pm2_version: Some("7.0.4".into()),
            dependencies: false,
            // Any file: a start needs the supervisor executable to exist.
            supervisor: std::env::current_exe().expect("the test binary"),
        }
    }

    /// An app's waits: nx.json `dependsOn` first, else the services its project.json names in
    /// `implicitDependencies` (the Nx graph), else every dependency of the command.
    #[test]
    fn an_app_waits_on_what_the_nx_graph_says_it_needs() {
        let root = std::env::temp_dir().join(format!("orch-step-graph-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(root.join("apps/api")).unwrap();
        std::fs::write(root.join("nx.json"), "{}").unwrap();
        std::fs::write(
            root.join("docker-compose.yml"),
            "services:\n  db:\n    image: postgres\n  cache:\n    image: redis\n",
        )
        .unwrap();
        let env_file = envfile::env_file_path(&root, "development");
        std::fs::create_dir_all(env_file.parent().unwrap()).unwrap();
        std::fs::write(&env_file, "").unwrap();
        let mut req = request(&root);
        req.all = true;
        req.services = Vec::new();
        let waits_of_api = |req: &Request| -> Vec<String> {
            let planned = plan_steps(Verb::Start, req).unwrap();
            let api = planned
                .plan
                .steps
                .iter()
                .find(|s| s.service == "api")
                .unwrap();
            let mut on: Vec<String> = api.waits.iter().map(|w| w.on.clone()).collect();
            on.sort();
            on
        };
        assert_eq!(
            waits_of_api(&req),
            vec!["cache", "db"],
            "nothing declared: every dependency"
        );
        std::fs::write(
            root.join("apps/api/project.json"),
            r#"{"name": "api", "implicitDependencies": ["db", "shared-lib"]}"#,
        )
        .unwrap();
        assert_eq!(waits_of_api(&req), vec!["db"], "the Nx graph: db only");
        std::fs::write(
            root.join("nx.json"),
            r#"{"pluginsConfig":{"@workspace/orchestrator":{"services":{"api":{"dependsOn":["cache"]}}}}}"#,
        )
        .unwrap();
        assert_eq!(
            waits_of_api(&req),
            vec!["cache"],
            "nx.json's dependsOn wins"
        );
        let _ = std::fs::remove_dir_all(&root);
    }

    /// The step a start plans and the definition `verify` shows are one: the same PM2 app (the
    /// plan adds only the names of the variables it set), the same ports; a required variable
    /// the profile lacks is the plan's refusal and the definition's `missing_env`.
    #[test]
    fn the_plan_and_verify_take_an_app_from_one_definition() {
        let root = std::env::temp_dir().join(format!("orch-step-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(root.join("apps/api")).unwrap();
        std::fs::write(
            root.join("nx.json"),
            r#"{"pluginsConfig":{"@workspace/orchestrator":{"services":{"api":{"requiredEnv":["API_KEY"]}}}}}"#,
        )
        .unwrap();
        let env_file = envfile::env_file_path(&root, "development");
        std::fs::create_dir_all(env_file.parent().unwrap()).unwrap();
        std::fs::write(&env_file, "LOG_LEVEL=debug\n").unwrap();

        let refused = plan_steps(Verb::Start, &request(&root)).err().unwrap();
        assert!(
            matches!(&refused, Error::EnvMissing { missing, .. } if missing == &["API_KEY"]),
            "{refused:?}"
        );

        std::fs::write(&env_file, "LOG_LEVEL=debug\nAPI_KEY=k\n").unwrap();
        let planned = plan_steps(Verb::Start, &request(&root)).unwrap();
        let step = &planned.plan.steps[0];
        let spec = planned.cat.get("api").unwrap();
        let d = read_app_definition(&planned.cat, spec, &planned.plan.profile).unwrap();
        assert!(d.missing_env.is_empty());
        let mut shown = d.app.clone();
        catalog::unset_stale(&mut shown, Default::default());
        assert_eq!(step.app.as_ref(), Some(&shown));
        assert_eq!(step.ports, d.ports);
        assert_eq!(step.ports, vec![3100]);
        assert_eq!(d.app["env"]["API_KEY"], "k");

        // Without the supervisor (the agent and the container runners) a start is refused
        // before anything is planned; a stop needs none.
        let mut no_supervisor = request(&root);
        no_supervisor.supervisor = root.join("missing/orchestrator-supervisor");
        let refused = plan_steps(Verb::Start, &no_supervisor).err().unwrap();
        assert!(
            matches!(&refused, Error::Prerequisite { tool, .. } if tool.contains("missing/orchestrator-supervisor")),
            "{refused:?}"
        );
        assert!(refused.remediation()[0].contains("npm run build"));
        assert!(plan_steps(Verb::Stop, &no_supervisor).is_ok());
        let _ = std::fs::remove_dir_all(&root);
    }
}
