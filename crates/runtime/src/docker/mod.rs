//! Docker control through the Engine API (bollard), behind a small typed client: one error
//! variant per operation, each knowing whether it is worth retrying. Decisions (adopt or recreate,
//! what an event means for a wait) are pure functions below the client, unit-tested.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use bollard::errors::Error as BollardError;
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, CreateImageOptionsBuilder, EventsOptionsBuilder,
    InspectContainerOptions, LogsOptionsBuilder, RemoveContainerOptionsBuilder,
    StopContainerOptionsBuilder, WaitContainerOptions,
};
use bollard::Docker;
use futures_util::StreamExt;

use crate::container::{ContainerSpec, LABEL_WORKSPACE};

/// The oldest Engine API we support (Docker Engine 20.10).
pub const MIN_API: (u64, u64) = (1, 41);

pub mod decide;

pub use crate::engine::{DResult, DockerError, Op};
pub use decide::*;

/// What bollard's error says, as the core's engine failure: the status code and the message.
fn failed(op: Op, target: &str, e: BollardError) -> DockerError {
    {
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

impl Engine {
    /// Connects and checks the API version against [`MIN_API`].
    pub async fn connect() -> DResult<Engine> {
        let target = host();
        let docker =
            Docker::connect_with_defaults().map_err(|e| failed(Op::Connect, &target, e))?;
        let version = docker
            .version()
            .await
            .map_err(|e| failed(Op::Connect, &target, e))?;
        let api = version.api_version.clone().unwrap_or_default();
        let docker = docker
            .negotiate_version()
            .await
            .map_err(|e| failed(Op::Version, &target, e))?;
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
            .map_err(|e| failed(Op::Connect, &target, e))?;
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
                let e = failed(Op::Inspect, name, e);
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
                let e = failed(Op::InspectImage, image, e);
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
            let info = item.map_err(|e| failed(Op::Build, image, e))?;
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

    /// Copies host files into a container (`develop.watch` sync): `(host file, path in the
    /// container)`, one tar stream through the archive API; a host file that is gone is removed
    /// in the container instead (`rm -rf`, as compose's sync does).
    #[tracing::instrument(level = "debug", skip_all, fields(container = %id, files = files.len()))]
    pub async fn copy_in(&self, id: &str, files: &[(std::path::PathBuf, String)]) -> DResult<()> {
        let fail = |op: Op, m: String| DockerError {
            op,
            target: id.into(),
            status: None,
            message: m,
        };
        let mut tar = tar::Builder::new(Vec::new());
        let mut gone = Vec::new();
        let mut any = false;
        for (host, dest) in files {
            let name = dest.trim_start_matches('/');
            if host.is_file() {
                tar.append_path_with_name(host, name)
                    .map_err(|e| fail(Op::Copy, format!("{}: {e}", host.display())))?;
                any = true;
            } else if host.is_dir() {
                tar.append_dir_all(name, host)
                    .map_err(|e| fail(Op::Copy, format!("{}: {e}", host.display())))?;
                any = true;
            } else {
                gone.push(dest.clone());
            }
        }
        if any {
            let body = tar
                .into_inner()
                .map_err(|e| fail(Op::Copy, e.to_string()))?;
            let opts = bollard::query_parameters::UploadToContainerOptionsBuilder::new()
                .path("/")
                .build();
            self.docker
                .upload_to_container(id, Some(opts), bollard::body_full(bytes::Bytes::from(body)))
                .await
                .map_err(|e| failed(Op::Copy, id, e))?;
        }
        if !gone.is_empty() {
            let mut cmd = vec!["rm".to_string(), "-rf".into(), "--".into()];
            cmd.extend(gone);
            let (code, out) = self.exec(id, &cmd).await?;
            if code != 0 {
                return Err(fail(Op::Exec, format!("`rm -rf` exited {code}: {out}")));
            }
        }
        Ok(())
    }

    /// Runs a command in a running container to its end: its exit code and output.
    #[tracing::instrument(level = "debug", skip_all, fields(container = %id))]
    pub async fn exec(&self, id: &str, cmd: &[String]) -> DResult<(i64, String)> {
        use bollard::exec::{CreateExecOptions, StartExecResults};
        let created = self
            .docker
            .create_exec(
                id,
                CreateExecOptions {
                    cmd: Some(cmd.to_vec()),
                    attach_stdout: Some(true),
                    attach_stderr: Some(true),
                    ..Default::default()
                },
            )
            .await
            .map_err(|e| failed(Op::Exec, id, e))?;
        let mut out = String::new();
        if let StartExecResults::Attached { mut output, .. } = self
            .docker
            .start_exec(&created.id, None)
            .await
            .map_err(|e| failed(Op::Exec, id, e))?
        {
            while let Some(Ok(chunk)) = output.next().await {
                out.push_str(&chunk.to_string());
            }
        }
        let code = self
            .docker
            .inspect_exec(&created.id)
            .await
            .map_err(|e| failed(Op::Exec, id, e))?
            .exit_code
            .unwrap_or(-1);
        Ok((code, out))
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
            let info = item.map_err(|e| failed(Op::Pull, image, e))?;
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
        // One at a time in this process: services started concurrently share the project's
        // networks, and the engine creates two networks of one name when asked at once (a
        // later create then fails with "network … is ambiguous"). Commands of one workspace
        // are one at a time already (the workspace lock).
        static RESOURCES: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
        let _one = RESOURCES.lock().await;
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
                let e = failed(Op::Network, &n.name, e);
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
                    let e = failed(Op::Volume, &v.name, e);
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
                let e = failed(Op::Volume, &v.name, e);
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
                let e = failed(Op::Remove, name, e);
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
            .map_err(|e| failed(Op::Create, name, e))?;
        for n in spec.networks.iter().skip(1) {
            let req = bollard::models::NetworkConnectRequest {
                container: created.id.clone(),
                endpoint_config: Some(endpoint(n)),
            };
            if let Err(e) = self.docker.connect_network(&n.name, req).await {
                if let Err(r) = self.remove(&created.id).await {
                    tracing::warn!(container = %name, error = %r.message, "could not remove a container its network refused");
                }
                return Err(failed(Op::Network, &n.name, e));
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
            .map_err(|e| failed(Op::Start, name, e))
    }

    #[tracing::instrument(level = "debug", skip_all, fields(container = %name))]
    pub async fn rename(&self, id: &str, name: &str) -> DResult<()> {
        let opts = bollard::query_parameters::RenameContainerOptionsBuilder::new()
            .name(name)
            .build();
        self.docker
            .rename_container(id, opts)
            .await
            .map_err(|e| failed(Op::Rename, name, e))
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
                let e = failed(Op::Stop, name, e);
                if e.not_found() || e.status == Some(304) {
                    Ok(())
                } else {
                    Err(e)
                }
            }
        }
    }

    /// One reading of a running container's CPU time and memory, from the engine's stats API
    /// (one-shot: the engine answers at once instead of waiting for a second sample).
    pub async fn usage(&self, id: &str) -> DResult<(f64, u64)> {
        let opts = bollard::query_parameters::StatsOptionsBuilder::new()
            .stream(false)
            .one_shot(true)
            .build();
        let mut stream = self.docker.stats(id, Some(opts));
        let stats = match stream.next().await {
            Some(s) => s.map_err(|e| failed(Op::Inspect, id, e))?,
            None => return Ok((0.0, 0)),
        };
        let cpu_ns = stats
            .cpu_stats
            .and_then(|c| c.cpu_usage)
            .and_then(|u| u.total_usage)
            .unwrap_or(0);
        let memory = stats
            .memory_stats
            .map(|m| {
                let detail: std::collections::BTreeMap<String, u64> =
                    m.stats.unwrap_or_default().into_iter().collect();
                orchestrator_core::resources::container_memory(m.usage.unwrap_or(0), &detail)
            })
            .unwrap_or(0);
        Ok((cpu_ns as f64 / 1e6, memory))
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

    /// Every container (running or not) carrying every `key=value` label, for a status: a
    /// running one whose list entry and the `kept` inspection (`Kept`, still its first process)
    /// tell all a status shows is not inspected again (`from_list`); every other one is. With
    /// what to keep for the next look: each running container's first process.
    pub async fn observe_labelled_kept(
        &self,
        labels: &[String],
        kept: &BTreeMap<String, Kept>,
    ) -> DResult<(Vec<Observed>, BTreeMap<String, Kept>)> {
        let listed = self.list_labelled(labels, true).await?;
        let looks = listed.into_iter().map(|c| async move {
            let id = c.id.clone().unwrap_or_default();
            let known = kept.get(&id);
            let same = known.is_some_and(|k| crate::proc::same_process(k.pid, k.pid_start, &id));
            let seen = match from_list(&c, known, same) {
                Some(o) => Some(o),
                None => self.inspect(&id).await?,
            };
            let keep = seen.as_ref().and_then(|o| {
                let pid = o.pid.filter(|_| o.running)?;
                if same && known.is_some_and(|k| k.pid == pid) {
                    return known.cloned();
                }
                Some(Kept {
                    pid,
                    pid_start: crate::proc::process_start(pid)?,
                    started_at: o.started_at?,
                    has_healthcheck: o
                        .health
                        .as_deref()
                        .is_some_and(|h| h != "none" && !h.is_empty()),
                })
            });
            DResult::Ok((seen, keep.map(|k| (id, k))))
        });
        let mut seen = Vec::new();
        let mut keep = BTreeMap::new();
        for (o, k) in futures_util::future::try_join_all(looks).await? {
            seen.extend(o);
            keep.extend(k);
        }
        Ok((seen, keep))
    }

    /// Ids of the containers carrying every `key=value` label (`all`: stopped ones too).
    async fn labelled(&self, labels: &[String], all: bool) -> DResult<Vec<String>> {
        Ok(self
            .list_labelled(labels, all)
            .await?
            .into_iter()
            .filter_map(|c| c.id)
            .collect())
    }

    /// The list entries of the containers carrying every `key=value` label.
    async fn list_labelled(
        &self,
        labels: &[String],
        all: bool,
    ) -> DResult<Vec<bollard::models::ContainerSummary>> {
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
            .map_err(|e| failed(Op::Inspect, &labels.join(","), e))?;
        Ok(list)
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
            match item.map_err(|e| failed(Op::Logs, id, e))? {
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
            Some(Err(e)) => Err(failed(Op::Wait, id, e)),
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
            Some(_) if !has_healthcheck => {
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
                    let e = failed(Op::Events, id, e);
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
