//! The operations, composed from the pure parts with I/O at the edges. PM2 itself is driven by
//! the JS side through PM2's API: these functions take PM2's table as data and return the steps.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use serde_json::Value;

use crate::catalog::{self, Catalog, Kind, ServiceSpec};
use crate::compose::{self, ComposeFile};
use crate::config::{self, DEFAULT_READY_TIMEOUT_SECONDS};
use crate::container::{self, ContainerSpec};
use crate::envfile::{self, ResolvedEnv};
use crate::error::{Error, Result};
use crate::install::{self, InstallOutcome};
use crate::plan::{self, Action};
use crate::pm2::{self, Pm2Process};
use crate::ports::{self, PortState};
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
    /// The container runner script PM2 runs for each dependency.
    pub runner_script: PathBuf,
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
}

#[derive(Debug, Clone)]
pub struct Plan {
    pub workspace_root: PathBuf,
    pub workspace_name: String,
    pub profile: String,
    pub steps: Vec<Step>,
}

/// Reads the profile's env file and resolves a service's env (values stay in memory).
pub fn service_env(cat: &Catalog, spec: &ServiceSpec, profile: &str) -> Result<ResolvedEnv> {
    let file = cat.env_file(profile);
    let vars = envfile::read_env_file(&file)?;
    Ok(catalog::resolve_env(spec, profile, vars, &file))
}

fn check_required(
    cat: &Catalog,
    spec: &ServiceSpec,
    profile: &str,
    env: &ResolvedEnv,
) -> Result<()> {
    let missing = envfile::missing_required(&spec.config.required_env, env);
    if missing.is_empty() {
        Ok(())
    } else {
        Err(Error::EnvMissing {
            service: spec.name.clone(),
            profile: profile.into(),
            missing,
            env_file: cat.env_file(profile),
        })
    }
}

/// The selection in launch order: dependencies first (compose `depends_on` order, with what
/// they depend on when starting), then apps; `stop` runs it backwards.
pub(crate) fn ordered<'a>(
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
pub(crate) fn container_spec(
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

/// The plan (`plan_steps`: every guard that reads, every step decided), then provisioning
/// (`provision`: ports, the engine, log directories, installs, files for containers), before
/// anything that runs changes. A refusal that
/// restarting cannot fix (env missing, port held) marks the service `failed` with that reason.
#[tracing::instrument(level = "debug", skip_all, fields(verb = ?verb, services = ?req.services))]
pub async fn prepare(verb: Verb, req: Request) -> Result<Plan> {
    let root = req.workspace_root.clone();
    let ws = root.display().to_string();
    let running: Vec<String> = req
        .pm2
        .iter()
        .filter(|p| p.workspace.as_deref() == Some(ws.as_str()) && p.is_live())
        .map(|p| p.name.clone())
        .collect();
    let planned = match plan_steps(verb, &req) {
        Ok(p) => provision(p).await,
        Err(e) => Err(e),
    };
    match planned {
        Ok(plan) => Ok(plan),
        Err(e) => {
            record_refusal(&root, &e, &running);
            let kept = e.service().is_some_and(|s| running.iter().any(|r| r == s));
            Err(if kept && verb != Verb::Stop {
                e.kept()
            } else {
                e
            })
        }
    }
}

/// Records a non-retryable refusal of a service in its supervision record (for `status`): a
/// service that was not running is `failed` with that reason; one that runs (a restart or a
/// switch was refused) keeps running, and the refusal is its last failure.
pub fn record_refusal(root: &Path, e: &Error, running: &[String]) {
    let service = match e {
        Error::EnvMissing { service, .. } | Error::PortInUse { service, .. } => service,
        _ => return,
    };
    let f = if running.contains(service) {
        crate::state::refusal(
            service,
            e.exit_code().name(),
            &e.message(),
            chrono::Utc::now(),
        )
    } else {
        crate::state::failure(
            service,
            "failed",
            e.exit_code().name(),
            &e.message(),
            false,
            chrono::Utc::now(),
        )
    };
    crate::state::record(root, &f);
}

/// A plan with what provisioning needs: the catalog and each profile's compose model.
struct Planned {
    plan: Plan,
    cat: Catalog,
    composes: BTreeMap<String, ComposeFile>,
}

/// The plan: every guard that reads (prerequisites, profile, service names, compose entries,
/// required env, PM2 ownership) and every step's decision, PM2 app and container spec. It reads
/// the workspace's files and PM2's table as given, and changes nothing.
#[tracing::instrument(level = "debug", skip_all)]
fn plan_steps(verb: Verb, req: &Request) -> Result<Planned> {
    let root = req.workspace_root.clone();
    crate::prereq::check_node_and_pm2(&req.node_version, req.pm2_version.as_deref(), &root)?;
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
        let presence = pm2::presence(&req.pm2, &spec.name, &ws, &profile);
        let shape = match (spec.kind, spec.cluster) {
            (Kind::Dependency, _) => plan::Shape::Dependency,
            (Kind::App, true) => plan::Shape::Cluster,
            (Kind::App, false) => plan::Shape::Fork,
        };
        let decision = match verb {
            Verb::Start => plan::decide_start(&presence, &spec.name, &profile, shape)?,
            Verb::Restart => plan::decide_restart(&presence, &spec.name, &profile, shape)?,
            Verb::Stop => plan::Decision {
                action: plan::decide_stop(&presence, &spec.name, &profile)?,
                switched_from: None,
            },
            Verb::Deploy if spec.kind == Kind::Dependency => {
                plan::decide_start(&presence, &spec.name, &profile, shape)?
            }
            Verb::Deploy => plan::decide_restart(&presence, &spec.name, &profile, shape)?,
        };
        let action = decision.action;
        let live = matches!(
            presence,
            pm2::Presence::Ours { live: true } | pm2::Presence::OtherProfile { live: true, .. }
        );
        let replacing = live && action.launches();
        let mut own_pids = if live {
            pm2::pids(&req.pm2, &spec.name)
        } else {
            Vec::new()
        };
        if live && spec.cluster {
            own_pids.extend(crate::pm2rpc::daemon_pid());
        }
        read_profile(&profile, &mut env_files, &mut composes)?;
        let file = cat.env_file(&profile);
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
        };
        match spec.kind {
            Kind::App => {
                let env = catalog::resolve_env(spec, &profile, env_files[&profile].clone(), &file);
                if action.launches() {
                    if let Some(e) = cat.app_error(spec) {
                        return Err(e);
                    }
                    check_required(&cat, spec, &profile, &env)?;
                    let mut app = catalog::pm2_app(&cat, spec, &profile, &env);
                    catalog::unset_stale(&mut app, pm2::entry_env(&req.pm2, &spec.name, &ws));
                    step.app = Some(app);
                }
                let health = spec.config.health.clone().unwrap_or_default();
                step.ports = catalog::declared_ports(spec, &env);
                step.health_http = health.http;
                step.health_tcp = health.tcp;
            }
            Kind::Dependency => {
                if action.launches() {
                    let compose = composes
                        .get(&profile)
                        .ok_or_else(|| Error::ServiceUnknown {
                            service: spec.name.clone(),
                            known: cat.names(),
                        })?;
                    let c = container_spec(&cat, spec, &profile, compose)?;
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
                        steps.push(step);
                        continue;
                    }
                    step.app = Some(catalog::runner_app(
                        &cat,
                        spec,
                        &profile,
                        &c,
                        &req.runner_script,
                    ));
                    step.ports = c.host_ports();
                    step.ready_timeout_ms = c.health_timeout_seconds * 1000;
                    step.container = Some(c);
                }
            }
        }
        // What the service's own file says about restarts (compose `restart:`, PM2 options).
        let file_layer = match spec.kind {
            Kind::App => crate::policy::ecosystem_layer(&spec.app),
            Kind::Dependency => composes
                .get(&profile)
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
        steps.push(step);
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

/// Provisioning, once the plan passed: the ports are free (or the services' own), the engine
/// answers when a dependency launches, then the log directories, the npm installs of launching
/// apps and the files written for containers. The first failure stops it; what it wrote for a
/// service that then fails is what that service's next start writes again.
#[tracing::instrument(level = "debug", skip_all)]
async fn provision(planned: Planned) -> Result<Plan> {
    let Planned {
        mut plan,
        cat,
        composes,
    } = planned;
    let steps = &mut plan.steps;
    check_ports(steps, &cat)?;
    if steps
        .iter()
        .any(|s| s.kind == Kind::Dependency && s.action.launches())
    {
        crate::deps::connect().await?;
    }

    for step in steps
        .iter_mut()
        .filter(|s| s.action.launches() && s.kind == Kind::App)
    {
        let spec = cat.get(&step.service)?;
        std::fs::create_dir_all(cat.log_dir(&spec.name)).map_err(|source| Error::Io {
            op: crate::error::IoOp::Write,
            path: cat.log_dir(&spec.name),
            source,
        })?;
        step.install = Some(install::ensure_installed(&spec.name, &spec.cwd).await?);
    }
    for step in steps
        .iter()
        .filter(|s| s.action.launches() && s.kind == Kind::Dependency)
    {
        let dir = cat.log_dir(&step.service);
        std::fs::create_dir_all(&dir).map_err(|source| Error::Io {
            op: crate::error::IoOp::Write,
            path: dir,
            source,
        })?;
        // `environment:` secrets and `content:` configs become files the container mounts
        // read-only; their text never travels in the spec (PM2 would show it in the env).
        if let Some(c) = composes.get(&step.profile) {
            if let Some(svc) = c.service(&step.service) {
                for (path, text) in container::secret_contents(&cat.root, c, svc) {
                    write_private(&path, &text)?;
                }
            }
        }
    }
    Ok(plan)
}

/// A file only its directory's owner can reach on the host (the directory is 0700); readable
/// inside the container by whatever user it runs as (0444), as compose mounts secrets.
fn write_private(path: &Path, text: &str) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let err = |source| Error::Io {
        op: crate::error::IoOp::Write,
        path: path.to_path_buf(),
        source,
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(err)?;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(err)?;
    }
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).map_err(err)?;
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o444)).map_err(err)?;
    std::fs::rename(&tmp, path).map_err(err)
}

/// Every port a launching step binds is free, or held by what runs for that service now (the
/// step replaces it), or, for a dependency, by the engine's proxy (whose container the engine
/// itself answers for). Checked before anything changes: a restart never stops a service to find
/// its port taken.
fn check_ports(steps: &[Step], cat: &Catalog) -> Result<()> {
    let wanted: Vec<u16> = steps
        .iter()
        .filter(|s| s.action.launches())
        .flat_map(|s| s.ports.clone())
        .collect();
    if wanted.is_empty() {
        return Ok(());
    }
    let listeners = ports::read_listeners();
    if !wanted
        .iter()
        .any(|p| listeners.iter().any(|l| l.port == *p))
    {
        return Ok(());
    }
    let processes = ports::read_process_sockets();
    let family = ports::read_parents();
    for step in steps.iter().filter(|s| s.action.launches()) {
        let ours = ports::with_descendants(&step.own_pids, &family);
        for port in &step.ports {
            if let PortState::Held(holder) =
                ports::port_state_except(*port, &listeners, &processes, &ours)
            {
                // A published port of a container is held by the engine's proxy; whether that
                // container is ours (and replaced) or not, the engine itself will say.
                if step.kind == Kind::Dependency
                    && holder
                        .as_ref()
                        .is_some_and(|h| h.command.contains("docker-proxy"))
                {
                    continue;
                }
                return Err(Error::PortInUse {
                    service: step.service.clone(),
                    port: *port,
                    holder: holder.clone(),
                    env_file: cat.env_file(&step.profile),
                });
            }
        }
    }
    Ok(())
}

/// `setup`: installs the app's dependencies (idempotent), checks its env for the profile, creates
/// its log directory, then runs its package's `setup` script when it has one, with the env loaded.
pub struct SetupReport {
    pub service: String,
    pub profile: String,
    pub install: InstallOutcome,
    pub ran_setup_script: bool,
}

pub struct ServiceRequest {
    pub workspace_root: PathBuf,
    pub profile: Option<String>,
    pub service: String,
    pub ecosystem: Value,
    pub ecosystem_file: PathBuf,
}

fn resolve_one(req: &ServiceRequest) -> Result<(Catalog, String)> {
    let cat = catalog::load(&req.workspace_root, &req.ecosystem, &req.ecosystem_file)?;
    let profile = config::resolve_profile(
        req.profile.as_deref(),
        &cat.config,
        &config::nx_json_path(&req.workspace_root),
    )?;
    cat.get(&req.service)?;
    Ok((cat, profile))
}

fn has_script(cwd: &Path, script: &str) -> bool {
    std::fs::read_to_string(cwd.join("package.json"))
        .ok()
        .and_then(|t| serde_json::from_str::<Value>(&t).ok())
        .is_some_and(|v| v.get("scripts").and_then(|s| s.get(script)).is_some())
}

async fn run_npm_script(spec: &ServiceSpec, script: &str, env: &ResolvedEnv) -> Result<()> {
    let shown = format!("npm run {script}");
    let status = tokio::process::Command::new("npm")
        .args(["run", script])
        .current_dir(&spec.cwd)
        .envs(env.values())
        .stdin(Stdio::null())
        .stdout(install::stdout_to_stderr())
        .status()
        .await
        .map_err(|e| Error::CommandFailed {
            service: spec.name.clone(),
            command: shown.clone(),
            cwd: spec.cwd.clone(),
            exit: format!("could not run npm: {e}"),
        })?;
    if status.success() {
        Ok(())
    } else {
        Err(Error::CommandFailed {
            service: spec.name.clone(),
            command: shown,
            cwd: spec.cwd.clone(),
            exit: install::describe_status(status),
        })
    }
}

pub async fn setup(req: ServiceRequest) -> Result<SetupReport> {
    let (cat, profile) = resolve_one(&req)?;
    let spec = cat.get(&req.service)?;
    let env = service_env(&cat, spec, &profile)?;
    check_required(&cat, spec, &profile, &env)?;
    let logs = cat.log_dir(&spec.name);
    std::fs::create_dir_all(&logs).map_err(|source| Error::Io {
        op: crate::error::IoOp::Write,
        path: logs,
        source,
    })?;
    let install = install::ensure_installed(&spec.name, &spec.cwd).await?;
    let ran_setup_script = has_script(&spec.cwd, "setup");
    if ran_setup_script {
        run_npm_script(spec, "setup", &env).await?;
    }
    Ok(SetupReport {
        service: spec.name.clone(),
        profile,
        install,
        ran_setup_script,
    })
}

/// `test`: installs when needed, then runs the app's `test` script with the profile's env.
pub async fn test(req: ServiceRequest) -> Result<String> {
    let (cat, profile) = resolve_one(&req)?;
    let spec = cat.get(&req.service)?;
    let env = service_env(&cat, spec, &profile)?;
    if !has_script(&spec.cwd, "test") {
        return Err(Error::Usage {
            message: format!(
                "{} has no \"test\" script in {}",
                spec.name,
                spec.cwd.join("package.json").display()
            ),
            remediation: "Add a \"test\" script to the app's package.json".into(),
        });
    }
    install::ensure_installed(&spec.name, &spec.cwd).await?;
    run_npm_script(spec, "test", &env).await?;
    Ok(profile)
}
