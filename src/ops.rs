//! The operations, composed from the pure parts with I/O at the edges. PM2 itself is driven by
//! the JS side through PM2's API: these functions take PM2's table as data and return the steps.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use serde_json::Value;

use crate::catalog::{self, Catalog, Kind, ServiceSpec};
use crate::config::{self, DEFAULT_READY_TIMEOUT_SECONDS};
use crate::envfile::{self, ResolvedEnv};
use crate::error::{Error, Result};
use crate::install::{self, InstallOutcome};
use crate::plan::{self, Action};
use crate::pm2::{self, Pm2Process};
use crate::ports::{self, PortState};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    Start,
    Restart,
    Stop,
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
}

#[derive(Debug, Clone)]
pub struct Step {
    pub service: String,
    pub kind: Kind,
    pub action: Action,
    pub profile: String,
    /// The PM2 app definition for launching actions.
    pub app: Option<Value>,
    pub ports: Vec<u16>,
    pub health_http: Option<String>,
    pub health_tcp: Option<String>,
    pub ready_timeout_ms: u64,
    pub error_log: PathBuf,
    pub install: Option<InstallOutcome>,
}

#[derive(Debug, Clone)]
pub struct Plan {
    pub workspace_root: PathBuf,
    pub workspace_name: String,
    pub profile: String,
    pub steps: Vec<Step>,
}

pub fn workspace_name(root: &Path) -> String {
    std::fs::read_to_string(root.join("package.json"))
        .ok()
        .and_then(|t| serde_json::from_str::<Value>(&t).ok())
        .and_then(|v| v.get("name").and_then(Value::as_str).map(str::to_string))
        .unwrap_or_else(|| {
            root.file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| "workspace".into())
        })
        .replace(['/', '@'], "-")
        .trim_matches('-')
        .to_string()
}

pub fn load_catalog(root: &Path, ecosystem: &Value, ecosystem_file: &Path) -> Result<Catalog> {
    let cfg = config::load_plugin_config(root)?;
    catalog::build(root, &workspace_name(root), ecosystem_file, ecosystem, cfg)
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

/// Runs every guard for every selected service before anything changes, then installs what the
/// launching services need. Guards: prerequisites, profile, service names, required env,
/// PM2 ownership, ports.
pub async fn prepare(verb: Verb, req: Request) -> Result<Plan> {
    let root = req.workspace_root.clone();
    crate::prereq::check_node_and_pm2(&req.node_version, req.pm2_version.as_deref(), &root)?;
    let cat = load_catalog(&root, &req.ecosystem, &req.ecosystem_file)?;
    let nx_json = config::nx_json_path(&root);
    let requested_profile = req.profile.as_deref().filter(|p| !p.trim().is_empty());
    let default_profile = config::resolve_profile(requested_profile, &cat.config, &nx_json)?;
    let selected = cat.select(&req.services, req.all)?;
    let ws = root.display().to_string();

    // Each profile's env file is read once, however many services share it.
    let mut env_files: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
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
        let action = match verb {
            Verb::Start => plan::decide_start(&presence, &spec.name, &profile)?,
            Verb::Restart => plan::decide_restart(&presence, &spec.name, &profile, spec.cluster)?,
            Verb::Stop => plan::decide_stop(&presence, &spec.name, &profile)?,
        };
        if !env_files.contains_key(&profile) {
            env_files.insert(
                profile.clone(),
                envfile::read_env_file(&cat.env_file(&profile))?,
            );
        }
        let env = catalog::resolve_env(
            spec,
            &profile,
            env_files[&profile].clone(),
            &cat.env_file(&profile),
        );
        if action.launches() {
            check_required(&cat, spec, &profile, &env)?;
        }
        let health = spec.config.health.clone().unwrap_or_default();
        steps.push(Step {
            service: spec.name.clone(),
            kind: spec.kind,
            action,
            app: action
                .launches()
                .then(|| catalog::pm2_app(&cat, spec, &profile, &env)),
            ports: catalog::declared_ports(spec, &env),
            health_http: health.http,
            health_tcp: health.tcp,
            ready_timeout_ms: spec
                .config
                .ready_timeout_seconds
                .unwrap_or(DEFAULT_READY_TIMEOUT_SECONDS)
                * 1000,
            error_log: cat.log_dir(&spec.name).join("error.log"),
            profile,
            install: None,
        });
    }

    check_ports(&steps, &cat)?;

    for step in steps.iter_mut().filter(|s| s.action.launches()) {
        let spec = cat.get(&step.service)?;
        std::fs::create_dir_all(cat.log_dir(&spec.name)).map_err(|source| Error::ReadFile {
            path: cat.log_dir(&spec.name),
            source,
        })?;
        step.install = Some(install::ensure_installed(&spec.name, &spec.cwd).await?);
    }
    Ok(Plan {
        workspace_root: root,
        workspace_name: cat.workspace_name.clone(),
        profile: default_profile,
        steps,
    })
}

fn check_ports(steps: &[Step], cat: &Catalog) -> Result<()> {
    let wanted: Vec<u16> = steps
        .iter()
        .filter(|s| s.action.needs_free_ports())
        .flat_map(|s| s.ports.clone())
        .collect();
    if wanted.is_empty() {
        return Ok(());
    }
    let states: BTreeMap<u16, PortState> = ports::probe_ports(&wanted).into_iter().collect();
    for step in steps.iter().filter(|s| s.action.needs_free_ports()) {
        for port in &step.ports {
            if let Some(PortState::Held(holder)) = states.get(port) {
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
    let cat = load_catalog(&req.workspace_root, &req.ecosystem, &req.ecosystem_file)?;
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
    std::fs::create_dir_all(&logs).map_err(|source| Error::ReadFile { path: logs, source })?;
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
