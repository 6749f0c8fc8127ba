//! One error enum, a variant per failed operation, mapped once to the exit-code table and to the
//! actionable-error contract (DESIGN §3): code, number, service, command, message, remediation.

use std::path::PathBuf;

use serde::Serialize;

use crate::engine::DockerError;
use crate::exit::ExitCode;

/// The process that holds a port: what a port conflict names (found by the runtime's `ports`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PortHolder {
    pub pid: u32,
    pub command: String,
}

/// What an I/O failure was doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IoOp {
    Read,
    Write,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Owner {
    /// An orchestrator entry of another workspace.
    Workspace { root: String, profile: String },
    /// A PM2 entry that was not started by the orchestrator.
    Foreign,
}

#[derive(Debug)]
pub enum Error {
    Usage {
        message: String,
        remediation: String,
    },
    InvalidConfig {
        file: PathBuf,
        key: String,
        message: String,
    },
    /// A file or directory of ours or the workspace's could not be read or written.
    Io {
        op: IoOp,
        path: PathBuf,
        source: std::io::Error,
    },
    ProfileUndefined {
        profile: String,
        registered: Vec<String>,
        nx_json: PathBuf,
    },
    ServiceUnknown {
        service: String,
        known: Vec<String>,
    },
    EnvMissing {
        service: String,
        profile: String,
        missing: Vec<String>,
        env_file: PathBuf,
    },
    Prerequisite {
        tool: String,
        found: Option<String>,
        minimum: String,
        remediation: String,
    },
    PortInUse {
        service: String,
        port: u16,
        holder: Option<PortHolder>,
        env_file: PathBuf,
    },
    ConflictingProcess {
        service: String,
        owner: Owner,
        profile: String,
    },
    WorkspaceBusy {
        lock_file: PathBuf,
        holder_pid: Option<u32>,
        waited_ms: u64,
    },
    CommandFailed {
        service: String,
        command: String,
        cwd: PathBuf,
        exit: String,
    },
    StartFailed {
        service: String,
        reason: String,
        last_stderr: Vec<String>,
        log_file: PathBuf,
    },
    ComposeVarMissing {
        file: PathBuf,
        key: String,
        var: String,
        message: String,
    },
    EngineUnreachable {
        host: String,
        cause: String,
    },
    ImageUnavailable {
        service: String,
        image: String,
        cause: String,
    },
    ContainerFailed {
        service: String,
        failure: DockerError,
        holders: Vec<(u16, Option<PortHolder>)>,
    },
    ContainerExited {
        service: String,
        container: String,
        exit_code: Option<i64>,
        last_lines: Vec<String>,
    },
    DependencyDegraded {
        service: String,
        container: String,
        waited_s: u64,
        health: Option<String>,
        last_output: Option<String>,
    },
    Docker {
        service: Option<String>,
        failure: DockerError,
    },
    /// A one-shot job (a service others wait on with `service_completed_successfully`) exited
    /// with a non-zero code: the services waiting for it were not started.
    JobFailed {
        service: String,
        exit_code: i64,
        last_lines: Vec<String>,
        blocked: Vec<String>,
    },
    /// An `external: true` volume or network that does not exist: never created by us.
    ExternalMissing {
        service: String,
        kind: &'static str,
        name: String,
    },
    /// A compose service (or the file) has problems: every one, with file, key and line.
    Compose {
        service: Option<String>,
        problems: Vec<crate::compose::model::Diag>,
    },
    /// `status --strict` found services failed or degraded: (name, state, why).
    Unhealthy {
        services: Vec<(String, String, String)>,
        profile: String,
    },
    /// The agent gave up on a service a command was waiting for: the restart threshold, or a
    /// cause restarting cannot fix (`code` names which).
    ServiceFailed {
        service: String,
        code: ExitCode,
        reason: String,
        last_stderr: Vec<String>,
        events_file: PathBuf,
    },
    /// A restart, profile switch or deploy of a running service was refused before the running
    /// service was touched (or rolled back to it): it runs on as it was.
    Kept {
        service: String,
        source: Box<Error>,
    },
    /// PM2 failed a call the plan made (`start`, `restart`, `reload`, …) or could not list its
    /// processes (`service` is then absent).
    Pm2 {
        service: Option<String>,
        call: String,
        cause: String,
        /// The file that defines the service (`ecosystem.config.js`, `docker-compose.yml`).
        definition: Option<String>,
    },
    /// Services of one command failed while others came up: the first failure (in plan order),
    /// the other services that failed, and those not started because what they wait on failed
    /// (service, what it waited on).
    Incomplete {
        first: Box<Error>,
        failed: Vec<String>,
        skipped: Vec<(String, String)>,
    },
}

/// The actionable-error object of DESIGN §3. `command` is filled in by the caller, which knows
/// whether the user typed `nx run …` or `orchestrator …`.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Actionable {
    pub code: String,
    pub exit_code: i32,
    pub service: Option<String>,
    pub command: String,
    pub message: String,
    pub remediation: Vec<String>,
}

impl Error {
    /// This refusal, said of a running service that was left as it was.
    pub fn kept(self) -> Error {
        match (self.service().map(str::to_string), self) {
            (_, e @ Error::Kept { .. }) => e,
            (Some(service), e) => Error::Kept {
                service,
                source: Box::new(e),
            },
            (None, e) => e,
        }
    }

    pub fn exit_code(&self) -> ExitCode {
        match self {
            Error::Usage { .. } | Error::InvalidConfig { .. } => ExitCode::Usage,
            Error::Io { .. } => ExitCode::Failure,
            Error::ProfileUndefined { .. } => ExitCode::ProfileUndefined,
            Error::ServiceUnknown { .. } => ExitCode::ServiceUnknown,
            Error::EnvMissing { .. } => ExitCode::EnvMissing,
            Error::Prerequisite { .. } => ExitCode::Prerequisite,
            Error::PortInUse { .. } => ExitCode::PortInUse,
            Error::ConflictingProcess { .. } => ExitCode::ConflictingProcess,
            Error::WorkspaceBusy { .. } => ExitCode::Failure,
            Error::CommandFailed { .. } => ExitCode::Failure,
            Error::StartFailed { .. } => ExitCode::Failure,
            Error::EngineUnreachable { .. } => ExitCode::Prerequisite,
            Error::ComposeVarMissing { .. } => ExitCode::EnvMissing,
            Error::ExternalMissing { .. } | Error::JobFailed { .. } => ExitCode::ContainerFailed,
            Error::Compose { problems, .. } => {
                if !problems.is_empty() && problems.iter().all(|p| p.var.is_some()) {
                    ExitCode::EnvMissing
                } else {
                    ExitCode::Usage
                }
            }
            Error::ImageUnavailable { .. } => ExitCode::ImageUnavailable,
            Error::ContainerFailed { .. } | Error::ContainerExited { .. } => {
                ExitCode::ContainerFailed
            }
            Error::DependencyDegraded { .. } => ExitCode::DependencyDegraded,
            Error::Docker { .. } => ExitCode::Failure,
            Error::ServiceFailed { code, .. } => *code,
            Error::Kept { source, .. } => source.exit_code(),
            Error::Incomplete { first, .. } => first.exit_code(),
            Error::Pm2 { .. } => ExitCode::Failure,
            Error::Unhealthy { .. } => ExitCode::Unhealthy,
        }
    }

    pub fn service(&self) -> Option<&str> {
        match self {
            Error::ServiceUnknown { service, .. }
            | Error::EnvMissing { service, .. }
            | Error::PortInUse { service, .. }
            | Error::ConflictingProcess { service, .. }
            | Error::CommandFailed { service, .. }
            | Error::StartFailed { service, .. }
            | Error::ImageUnavailable { service, .. }
            | Error::ContainerFailed { service, .. }
            | Error::ContainerExited { service, .. }
            | Error::DependencyDegraded { service, .. }
            | Error::ServiceFailed { service, .. }
            | Error::ExternalMissing { service, .. }
            | Error::JobFailed { service, .. }
            | Error::Kept { service, .. } => Some(service),
            Error::Docker { service, .. }
            | Error::Compose { service, .. }
            | Error::Pm2 { service, .. } => service.as_deref(),
            Error::Incomplete { first, .. } => first.service(),
            _ => None,
        }
    }

    pub fn message(&self) -> String {
        match self {
            Error::Usage { message, .. } => message.clone(),
            Error::InvalidConfig { file, key, message } => {
                format!("{}: {key}: {message}", file.display())
            }
            Error::Io {
                op: IoOp::Read,
                path,
                source,
            } => format!("cannot read {}: {source}", path.display()),
            Error::Io {
                op: IoOp::Write,
                path,
                source,
            } => format!("cannot write {}: {source}", path.display()),
            Error::ProfileUndefined { profile, registered, .. } => format!(
                "profile \"{profile}\" is not registered (registered: {})",
                registered.join(", ")
            ),
            Error::ServiceUnknown { service, known } => format!(
                "no service named \"{service}\" (known services: {})",
                known.join(", ")
            ),
            Error::EnvMissing { service, profile, missing, env_file } => format!(
                "service {service} needs {} for profile {profile}: not set in {} nor in the ecosystem env blocks",
                missing.join(", "),
                env_file.display()
            ),
            Error::Prerequisite { tool, found, minimum, .. } => match found {
                Some(v) => format!("{tool} {v} is older than the supported minimum {minimum}"),
                None => format!("{tool} was not found (minimum supported version {minimum})"),
            },
            Error::PortInUse { port, holder, .. } => match holder {
                Some(h) => format!("port {port} is held by pid {} ({})", h.pid, h.command),
                None => format!(
                    "port {port} is already bound by a process this user cannot inspect"
                ),
            },
            Error::ConflictingProcess { service, owner, .. } => match owner {
                Owner::Workspace { root, profile } => format!(
                    "a PM2 process named \"{service}\" belongs to another workspace ({root}, profile {profile})"
                ),
                Owner::Foreign => format!(
                    "a PM2 process named \"{service}\" exists that the orchestrator did not start"
                ),
            },
            Error::WorkspaceBusy { lock_file, holder_pid, waited_ms } => format!(
                "another orchestrator command{} holds {} (waited {} s)",
                holder_pid.map(|p| format!(" (pid {p})")).unwrap_or_default(),
                lock_file.display(),
                waited_ms / 1000
            ),
            Error::CommandFailed { command, cwd, exit, .. } => {
                format!("`{command}` in {} failed: {exit}", cwd.display())
            }
            Error::StartFailed { service, reason, last_stderr, .. } => {
                let mut m = format!("{service} did not become ready: {reason}");
                if !last_stderr.is_empty() {
                    m.push_str("\nlast lines of its stderr:\n");
                    m.push_str(&last_stderr.join("\n"));
                }
                m
            }
            Error::EngineUnreachable { host, cause } => {
                format!("no Docker engine answers at {host}: {cause}")
            }
            Error::Unhealthy { services, .. } => {
                let list: Vec<String> = services
                    .iter()
                    .map(|(n, st, why)| {
                        if why.is_empty() {
                            format!("{n} {st}")
                        } else {
                            format!("{n} {st} ({why})")
                        }
                    })
                    .collect();
                format!("not healthy: {}", list.join("; "))
            }
            Error::ServiceFailed { service, reason, last_stderr, .. } => {
                let mut m = format!("{service} failed and will not be restarted: {reason}");
                if !last_stderr.is_empty() {
                    m.push_str("\nlast lines of its stderr:\n");
                    m.push_str(&last_stderr.join("\n"));
                }
                m
            }
            Error::JobFailed { service, exit_code, last_lines, blocked } => {
                let mut m = format!("one-shot job {service} exited with code {exit_code}");
                if !blocked.is_empty() {
                    m.push_str(&format!(
                        "; not started because they wait for it to complete successfully: {}",
                        blocked.join(", ")
                    ));
                }
                if !last_lines.is_empty() {
                    m.push_str(&format!("\nits last lines:\n  {}", last_lines.join("\n  ")));
                }
                m
            }
            Error::ExternalMissing { service, kind, name } => format!(
                "{service} uses the external {kind} \"{name}\", which does not exist; an external {kind} is used exactly as named and never created (so no empty one replaces your data)"
            ),
            Error::Compose { service, problems } => {
                let mut m = match (service, problems.len()) {
                    (Some(s), 1) => format!("compose service \"{s}\" cannot start: "),
                    (Some(s), n) => format!("compose service \"{s}\" cannot start ({n} problems):"),
                    (None, 1) => String::new(),
                    (None, n) => format!("{n} compose problems:"),
                };
                for (i, p) in problems.iter().enumerate() {
                    if problems.len() > 1 || i > 0 {
                        m.push_str("\n  ");
                    }
                    m.push_str(&p.located());
                }
                m
            }
            Error::ComposeVarMissing { file, key, var, message } => format!(
                "{}: {key} needs {var}, which is not set: {message}",
                file.display()
            ),
            Error::ImageUnavailable { service, image, cause } => format!(
                "image {image} for {service} is not present locally and could not be pulled: {cause}"
            ),
            Error::ContainerFailed { failure, holders, .. } => {
                let mut m = format!("the Docker engine refused to {failure}");
                for (port, h) in holders {
                    match h {
                        Some(h) => m.push_str(&format!(
                            "\nport {port} is held by pid {} ({})",
                            h.pid, h.command
                        )),
                        None => m.push_str(&format!(
                            "\nport {port} is bound by a process this user cannot inspect"
                        )),
                    }
                }
                m
            }
            Error::ContainerExited { service, container, exit_code, last_lines } => {
                let mut m = format!(
                    "container {} of {service} exited{} before it was ready",
                    short(container),
                    exit_code.map(|c| format!(" with code {c}")).unwrap_or_default()
                );
                if !last_lines.is_empty() {
                    m.push_str("\nlast lines of its output:\n");
                    m.push_str(&last_lines.join("\n"));
                }
                m
            }
            Error::DependencyDegraded { service, container, waited_s, health, last_output } => {
                let mut m = format!(
                    "{service} (container {}) did not become healthy within {waited_s} s (health: {}); marked degraded",
                    short(container),
                    health.as_deref().unwrap_or("unknown")
                );
                if let Some(o) = last_output.as_deref().filter(|o| !o.is_empty()) {
                    m.push_str(&format!("\nlast health-check output: {o}"));
                }
                m
            }
            Error::Docker { failure, .. } => format!("Docker engine: {failure}"),
            Error::Kept { service, source } => format!(
                "{}\n{service} was not replaced: it runs on as before (nothing was changed)",
                source.message()
            ),
            Error::Pm2 {
                service: Some(service),
                call,
                cause,
                ..
            } => format!("PM2 could not {call} {service}: {cause}"),
            Error::Pm2 {
                service: None,
                call,
                cause,
                ..
            } => format!("PM2 could not {call}: {cause}"),
            Error::Incomplete {
                first,
                failed,
                skipped,
            } => {
                let mut m = first.message();
                if !failed.is_empty() {
                    m.push_str(&format!("\nAlso failed: {}", failed.join(", ")));
                }
                if !skipped.is_empty() {
                    let s: Vec<String> = skipped
                        .iter()
                        .map(|(s, on)| format!("{s} (waits on {on})"))
                        .collect();
                    m.push_str(&format!(
                        "\nNot started, because what they wait on did not come up: {}",
                        s.join(", ")
                    ));
                }
                m.push_str("\nEvery other service of the command was carried out");
                m
            }
        }
    }

    pub fn remediation(&self) -> Vec<String> {
        match self {
            Error::Usage { remediation, .. } => vec![remediation.clone()],
            Error::InvalidConfig { file, key, .. } => {
                vec![format!("Fix `{key}` in {}", file.display())]
            }
            Error::Io {
                op: IoOp::Read,
                path,
                ..
            } => vec![format!(
                "Check that {} exists and is readable by this user",
                path.display()
            )],
            Error::Io {
                op: IoOp::Write,
                path,
                source,
            } => vec![
                format!(
                    "Check that {} can be written by this user ({})",
                    path.display(),
                    source.kind()
                ),
                "Check the disk has room: `df -h .`".into(),
            ],
            Error::ProfileUndefined { profile, nx_json, .. } => vec![
                format!(
                    "Register it: add \"{profile}\" to pluginsConfig[\"@workspace/orchestrator\"].profiles in {}",
                    nx_json.display()
                ),
                "Or pass one of the registered profiles with --profile".into(),
            ],
            Error::ServiceUnknown { known, .. } => vec![
                format!("Use one of: {}", known.join(", ")),
                "Declare app services in ecosystem.config.js and dependencies in docker-compose.yml".into(),
            ],
            Error::EnvMissing { missing, env_file, profile, .. } => vec![
                format!("Set {} in {}", missing.join(", "), env_file.display()),
                format!("Or add them to the app's env_{profile} block in ecosystem.config.js"),
            ],
            Error::Prerequisite { remediation, .. } => vec![remediation.clone()],
            Error::PortInUse { port, holder, env_file, .. } => {
                let mut r = Vec::new();
                match holder {
                    Some(h) => r.push(format!(
                        "Stop pid {} ({}), or change PORT in {}",
                        h.pid,
                        h.command,
                        env_file.display()
                    )),
                    None => r.push(format!(
                        "Find the holder with `ss -ltnp 'sport = :{port}'`, or change PORT in {}",
                        env_file.display()
                    )),
                }
                r.push("Run `npx pm2 ls` to see what PM2 runs".into());
                r
            }
            Error::ConflictingProcess { service, owner, .. } => match owner {
                Owner::Workspace { root, profile: theirs } => vec![
                    format!("Run nx run workspace:status (or workspace:stop --profile {theirs}) in {root} first"),
                    format!("Or rename the app in one workspace's ecosystem.config.js"),
                ],
                Owner::Foreign => vec![
                    format!("Inspect it with `pm2 describe {service}` and remove it with `pm2 delete {service}` if it is stale"),
                    "Then run the command again".into(),
                ],
            },
            Error::WorkspaceBusy { holder_pid, .. } => vec![
                format!(
                    "Wait for the other command to finish{}",
                    holder_pid.map(|p| format!(" (pid {p})")).unwrap_or_default()
                ),
                "Then run the command again".into(),
            ],
            Error::CommandFailed { command, cwd, .. } => vec![
                format!("Run `{command}` in {} to see the full output", cwd.display()),
            ],
            Error::StartFailed { service, log_file, .. } => vec![
                format!("Read {}", log_file.display()),
                format!("Run `npx pm2 logs {service}` to follow its output"),
            ],
            Error::Unhealthy { services, profile } => {
                let mut r: Vec<String> = services
                    .iter()
                    .map(|(n, _, _)| format!("Read why {n} is unwell: apps/logs/{n}/events.jsonl and apps/logs/{n}/error.log"))
                    .collect();
                r.push(format!(
                    "Start what failed again once fixed: `nx run workspace:start --profile {profile}` (an explicit start clears a failed mark)"
                ));
                r
            }
            Error::ServiceFailed { service, events_file, .. } => vec![
                format!("Read why in {} (and its stderr in apps/logs/{service}/error.log)", events_file.display()),
                format!("Fix the cause, then start it again: `nx run {service}:start` (an explicit start clears the failed mark)"),
                "Or loosen its restartPolicy in nx.json (pluginsConfig[\"@workspace/orchestrator\"].services)".into(),
            ],
            Error::JobFailed { service, .. } => vec![
                format!("Read its whole output: orchestrator logs {service}"),
                format!("Fix the job, then start again: it runs to completion before {service}'s dependents start"),
            ],
            Error::ExternalMissing { kind, name, .. } => vec![
                format!("Create it, or restore it: `docker {kind} create {name}`"),
                format!("Or check its name: `docker {kind} ls`"),
            ],
            Error::Compose { problems, .. } => {
                let mut r: Vec<String> = Vec::new();
                for p in problems {
                    if !r.contains(&p.remediation) {
                        r.push(p.remediation.clone());
                    }
                }
                r.push("Run `orchestrator verify` (or nx run workspace:verify) to list every problem of every file".into());
                r
            }
            Error::ComposeVarMissing { var, .. } => vec![
                format!("Set {var} in config/env/<profile>.env (or export it in the shell)"),
            ],
            Error::EngineUnreachable { host, .. } => vec![
                "Start the Docker engine: `sudo systemctl start docker` (or run `dockerd` as root)".into(),
                "Debian/Ubuntu without Docker: `sudo apt-get install docker.io`".into(),
                format!("Check DOCKER_HOST (now {host}) and that this user may use the socket (`docker version`)"),
            ],
            Error::ImageUnavailable { service, image, .. } => vec![
                format!("Check the image name and tag of {service} in docker-compose.yml ({image})"),
                format!("Log in or reach the registry, then pull it once: `docker pull {image}`"),
                "Or point the compose variable at a local image (this repo: `bash scripts/build-images.sh`, POSTGRES_IMAGE=orchestrator-local/postgres:15)".into(),
            ],
            Error::ContainerFailed { service, failure, holders } => {
                let mut r = Vec::new();
                for (port, h) in holders {
                    match h {
                        Some(h) => r.push(format!(
                            "Stop pid {} ({}) or change the published port {port} of {service} in docker-compose.yml",
                            h.pid, h.command
                        )),
                        None => r.push(format!(
                            "Find the holder with `ss -ltnp 'sport = :{port}'` or change the published port of {service}"
                        )),
                    }
                }
                if failure.status == Some(409) {
                    r.push(format!(
                        "Remove or rename the other container: `docker rm -f {}`, or set container_name for {service}",
                        failure.target
                    ));
                }
                r.push(format!("Fix the {service} service in docker-compose.yml, then run the command again"));
                r
            }
            Error::ContainerExited { service, container, .. } => vec![
                format!("Read its output: `docker logs {}` or `npx pm2 logs {service}`", short(container)),
                format!("Fix the {service} service (command, environment, volumes) in docker-compose.yml"),
            ],
            Error::DependencyDegraded { service, container, .. } => vec![
                format!("Inspect the health log: `docker inspect --format '{{{{json .State.Health}}}}' {}`", short(container)),
                format!("Raise pluginsConfig[\"@workspace/orchestrator\"].services.{service}.healthTimeoutSeconds in nx.json if it needs longer, then rerun the command"),
                format!("Run `npx pm2 logs {service}` to see its output"),
            ],
            Error::Docker { .. } => vec![
                "Check the engine with `docker version` and `docker info`, then run the command again".into(),
            ],
            Error::Pm2 {
                service: Some(service),
                definition,
                ..
            } => vec![
                format!(
                    "Check the \"{service}\" entry of {}",
                    definition.as_deref().unwrap_or("ecosystem.config.js")
                ),
                format!("Run `pm2 logs {service}`"),
            ],
            Error::Pm2 { service: None, .. } => vec![
                "Run `pm2 ls`: if PM2's daemon does not answer, `pm2 kill` and run the command again".into(),
                "PM2's own log is pm2.log in PM2_HOME".into(),
            ],
            Error::Incomplete { first, .. } => {
                let mut r = first.remediation();
                r.push("Run the same command again once it is fixed: what runs is kept".into());
                r
            }
            Error::Kept { source, .. } => {
                let mut r = source.remediation();
                r.push("Run nx run workspace:status: it shows the service online, with this refusal as its last failure".into());
                r
            }
        }
    }

    pub fn actionable(&self, command: &str) -> Actionable {
        let code = self.exit_code();
        Actionable {
            code: code.name().to_string(),
            exit_code: code.number(),
            service: self.service().map(str::to_string),
            command: command.to_string(),
            message: self.message(),
            remediation: self.remediation(),
        }
    }
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.exit_code().name(), self.message())
    }
}

impl std::error::Error for Error {}

fn short(id: &str) -> &str {
    if id.len() == 64 && id.chars().all(|c| c.is_ascii_hexdigit()) {
        &id[..12]
    } else {
        id
    }
}

pub type Result<T> = std::result::Result<T, Error>;
