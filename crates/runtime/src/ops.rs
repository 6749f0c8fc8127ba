//! The operations, composed from the pure parts with I/O at the edges. PM2 itself is driven by
//! the JS side through PM2's API: these functions take PM2's table as data and return the steps.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use serde_json::Value;

use crate::catalog::{self, Catalog, Kind, ServiceSpec};
use crate::config;
use crate::container;
use crate::envfile::ResolvedEnv;
use crate::error::{Error, Result};
use crate::npm::{self, InstallOutcome};
use crate::ports::{self, PortState};
use crate::step::{plan_steps, read_app_definition, Plan, Planned, Request, Step, Verb};

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

/// Provisioning, once the plan passed: the ports are free (or the services' own), the engine
/// answers when a dependency launches, then the log directories, the npm installs of launching
/// apps and the files written for containers. The first failure stops it; what it wrote for a
/// service that then fails is what that service's next start writes again.
#[tracing::instrument(level = "debug", skip_all)]
/// What `prepare` would refuse, found without changing anything: the plan and its guards, the
/// ports and the engine's presence — no install, no directory, no record (`why` asks it).
pub async fn dry_run(verb: Verb, req: &Request) -> Result<()> {
    let planned = plan_steps(verb, req)?;
    guards(&planned.plan.steps, &planned.cat).await
}

/// The checks a plan passes before anything is provisioned or touched (a dry run stops here):
/// its ports are free (or held by what it replaces), and the engine answers when a container
/// is to be launched.
async fn guards(steps: &[crate::step::Step], cat: &Catalog) -> Result<()> {
    check_ports(steps, cat)?;
    if steps
        .iter()
        .any(|s| s.kind == Kind::Dependency && s.action.launches())
    {
        crate::deps::connect().await?;
    }
    Ok(())
}

async fn provision(planned: Planned) -> Result<Plan> {
    let Planned {
        mut plan,
        cat,
        composes,
    } = planned;
    let steps = &mut plan.steps;
    guards(steps, &cat).await?;

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
        step.install = Some(npm::ensure_installed(&spec.name, &spec.cwd).await?);
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
        .stdout(npm::stdout_to_stderr())
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
            exit: npm::describe_status(status),
        })
    }
}

pub async fn setup(req: ServiceRequest) -> Result<SetupReport> {
    let (cat, profile) = resolve_one(&req)?;
    let spec = cat.get(&req.service)?;
    let d = read_app_definition(&cat, spec, &profile)?;
    d.require_env(&cat, spec, &profile)?;
    let env = d.env;
    let logs = cat.log_dir(&spec.name);
    std::fs::create_dir_all(&logs).map_err(|source| Error::Io {
        op: crate::error::IoOp::Write,
        path: logs,
        source,
    })?;
    let install = npm::ensure_installed(&spec.name, &spec.cwd).await?;
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
    let env = read_app_definition(&cat, spec, &profile)?.env;
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
    npm::ensure_installed(&spec.name, &spec.cwd).await?;
    run_npm_script(spec, "test", &env).await?;
    Ok(profile)
}
