//! `why <service>`'s edges: the status snapshot of every service, the edges a start follows,
//! a dry run of starting the service (the plan and its guards: nothing is started, installed or
//! recorded), the holders of its ports, the last lines of its logs — handed to the pure
//! `why::explain`.

use std::collections::BTreeSet;
use std::path::Path;

use orchestrator_core::logs::{read_service, Query, Stream};
use orchestrator_core::why::{self, PortView, Refusal, Why};

use crate::error::Result;
use crate::observe::{self, StatusRequest};
use crate::ports::{self, PortState};
use crate::step::{self, Request, Verb};

/// How many of its last log lines the answer shows.
const TAIL: usize = 15;

/// Why `service` is not up. `req` is the request a start of it would make (its `services` are
/// replaced by the one asked about); `pm2_home` is where PM2's table is read.
pub async fn why(service: &str, mut req: Request, pm2_home: &Path) -> Result<Why> {
    crate::names::validate_name(service, "service")?;
    let root = req.workspace_root.clone();
    // An unknown service is the catalog's error, before anything is read.
    let cat = crate::catalog::load(&root, &req.ecosystem, &req.ecosystem_file)?;
    cat.get(service)?;
    // One look at every row: the service's own and its blockers'.
    let all = observe::status(StatusRequest {
        workspace_root: root.clone(),
        profile: req.profile.clone(),
        service: None,
        ecosystem: req.ecosystem.clone(),
        ecosystem_file: req.ecosystem_file.clone(),
        pm2_home: pm2_home.to_path_buf(),
    })
    .await?;
    let mine: Vec<_> = all
        .services
        .iter()
        .filter(|r| r.name == service)
        .cloned()
        .collect();
    let up = mine
        .iter()
        .all(|r| r.state == "online" && r.health != "unhealthy");
    if up && !mine.is_empty() {
        let waits = Default::default();
        return Ok(why::explain(why::Observed {
            service,
            rows: &mine,
            waits: &waits,
            refusal: None,
            ports: Vec::new(),
            log_tail: Vec::new(),
        }));
    }

    // The edges, under the profile the service runs with (else the one asked for).
    let profile = mine
        .iter()
        .find_map(|r| r.profile.clone())
        .filter(|p| cat.config.profiles.contains(p))
        .unwrap_or_else(|| all.profile.clone());
    let vars = crate::envfile::read_env_file(&cat.env_file(&profile)).unwrap_or_default();
    let compose = cat.compose_for(&profile, &vars);
    let waits = step::start_edges(&cat, compose.as_ref());

    // A start of it now, planned with its guards (env, ports, the engine, the definition),
    // carried out no further.
    req.pm2 = crate::pm2rpc::list(pm2_home)
        .await
        .ok()
        .flatten()
        .unwrap_or_default();
    req.services = vec![service.to_string()];
    req.all = false;
    req.dependencies = false;
    let refusal = crate::ops::dry_run(Verb::Start, &req).await.err().map(|e| {
        let a = e.actionable(&format!("orchestrator start {service}"));
        Refusal {
            code: a.code,
            exit_code: a.exit_code,
            message: a.message,
            remediation: a.remediation,
        }
    });

    let row = mine.first();
    let ports = row.map(|r| held_ports(r, pm2_home)).unwrap_or_default();
    let log_tail = read_service(
        &orchestrator_core::layout::log_dir(&root, service),
        service,
        &Query {
            streams: vec![Stream::Out, Stream::Err],
            tail: Some(TAIL),
            ..Default::default()
        },
    )
    .map(|es| {
        es.iter()
            .map(orchestrator_core::logs::request::format_line)
            .collect()
    })
    .unwrap_or_default();
    Ok(why::explain(why::Observed {
        service,
        rows: &all.services,
        waits: &waits,
        refusal,
        ports,
        log_tail,
    }))
}

/// The service's declared ports that something else holds. A running dependency's published
/// ports are held by the engine's proxy for it, and a running app's by its processes (and PM2's
/// daemon for a cluster): those are its own.
fn held_ports(row: &orchestrator_core::status::ServiceStatus, pm2_home: &Path) -> Vec<PortView> {
    if row.ports.is_empty() || (row.kind == "dependency" && row.container_id.is_some()) {
        return Vec::new();
    }
    let listeners = ports::read_listeners();
    if !row
        .ports
        .iter()
        .any(|p| listeners.iter().any(|l| l.port == *p))
    {
        return row
            .ports
            .iter()
            .map(|p| PortView {
                port: *p,
                held_by: None,
            })
            .collect();
    }
    let processes = ports::read_process_sockets();
    let mut ours: BTreeSet<u32> = ports::with_descendants(&row.pids, &ports::read_parents());
    if !row.pids.is_empty() {
        if let Some(daemon) = std::fs::read_to_string(pm2_home.join("pm2.pid"))
            .ok()
            .and_then(|t| t.trim().parse().ok())
        {
            ours.insert(daemon);
        }
    }
    row.ports
        .iter()
        .map(|p| PortView {
            port: *p,
            held_by: match ports::port_state_except(*p, &listeners, &processes, &ours) {
                PortState::Free => None,
                PortState::Held(Some(h)) => Some(format!("pid {} ({})", h.pid, h.command)),
                PortState::Held(None) => {
                    Some("a process this user cannot see (another user's, or a container's)".into())
                }
            },
        })
        .collect()
}
