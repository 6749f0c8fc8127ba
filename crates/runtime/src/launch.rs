//! A command's plan carried out: make-before-break (every image obtained, replacements staged),
//! the agent, the supervision records, then every step concurrently as soon as what it waits on
//! is there (`schedule`), bounded by `Options::concurrency`, and the summary. A stop runs the
//! edges backwards. PM2 is driven through [`Pm2`], which the binding implements with PM2's own
//! programmatic API on the JS side; everything else (the engine, readiness, records) is here.
//!
//! A failure stops only what waits on the failed service: the rest is carried out, and the
//! error says what failed and what was not started because of it (`Error::Incomplete`).

use std::collections::BTreeMap;
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt;
use serde::Serialize;
use serde_json::Value;
use tokio::sync::{watch, Semaphore};

use crate::catalog::Kind;
use crate::container::ContainerSpec;
use crate::decide::Action;
use crate::error::{Error, Result};
use crate::pm2::{self, Pm2Process};
use crate::schedule::{self, Phase, Verdict};
use crate::step::{Plan, Step};

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// One call of PM2's programmatic API.
#[derive(Debug, Clone, PartialEq)]
pub enum Pm2Call {
    /// `pm2.start(app)`
    Start(Value),
    /// `pm2.delete`
    Delete(Target),
    /// `pm2.stop`
    Stop(Target),
    /// `pm2.restart(app)`: the app's new definition.
    Restart(Value),
    /// `pm2.restart` as it was defined.
    RestartName(Target),
    /// The object form of `pm2 startOrReload`: a graceful reload with the new definition.
    Reload(Value),
}

/// The entries a call acts on: by their PM2 ids when the table has them (PM2's client looks a
/// name up by reading its whole process table, once per call: with 100 services, 100 such reads
/// at once), else by name.
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    pub name: String,
    pub ids: Vec<u32>,
}

impl Target {
    pub fn of(name: &str, table: &[Pm2Process]) -> Target {
        Target {
            name: name.to_string(),
            ids: table
                .iter()
                .filter(|p| p.name == name)
                .map(|p| p.pm_id)
                .collect(),
        }
    }
}

impl Pm2Call {
    /// The verb, as the JS side dispatches it.
    pub fn op(&self) -> &'static str {
        match self {
            Pm2Call::Start(_) => "start",
            Pm2Call::Delete(_) => "delete",
            Pm2Call::Stop(_) => "stop",
            Pm2Call::Restart(_) | Pm2Call::RestartName(_) => "restart",
            Pm2Call::Reload(_) => "reload",
        }
    }
}

/// PM2, as the plan uses it. A failure is PM2's own message.
pub trait Pm2: Send + Sync {
    fn call(&self, call: Pm2Call) -> BoxFuture<'_, std::result::Result<(), String>>;
    fn list(&self) -> BoxFuture<'_, std::result::Result<Vec<Pm2Process>, String>>;
}

/// A line for the user (stderr): pull and build progress, compose warnings.
pub type Progress = Arc<dyn Fn(&str) + Send + Sync>;

pub struct Options {
    /// At most this many PM2 calls and at most this many engine operations (a container's
    /// creation and start, or its stop) at once, one bound per resource; `None`: cores × 4 for
    /// a launch, every service for a stop (a stop waits out grace periods, it does not compute).
    pub concurrency: Option<usize>,
    /// The native supervisor PM2 runs as the agent, and the PM2_HOME it serves (its PM2
    /// definition).
    pub supervisor: PathBuf,
    pub pm2_home: String,
    /// Node apps are launched with this preload (`lib/preload.js`).
    pub preload: Option<PathBuf>,
    pub progress: Progress,
    /// `--fail-fast`: an app whose new process exits before it is ready fails at once, without
    /// waiting for the restart policy's restarts (`ready::ReadyTarget::fail_fast`).
    pub fail_fast: bool,
}

/// The default bound: the number of cores × 4.
pub fn default_concurrency() -> usize {
    std::thread::available_parallelism().map_or(4, |n| n.get()) * 4
}

/// What a command did, per service (the executors' and the bin's result).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    pub workspace: String,
    pub profile: String,
    pub services: Vec<ServiceSummary>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceSummary {
    pub service: String,
    pub kind: &'static str,
    pub action: &'static str,
    pub profile: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub switched_from: Option<String>,
    pub status: String,
    pub pids: Vec<u32>,
    pub ports: Vec<u16>,
    pub install: Option<&'static str>,
    pub ready_ms: Option<u64>,
    #[serde(flatten)]
    pub dependency: Option<DependencySummary>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DependencySummary {
    pub container_id: Option<String>,
    pub image: Option<String>,
    pub health: Option<String>,
    pub exit_code: Option<i64>,
    pub adopted: Option<bool>,
    pub pulled: Option<bool>,
}

/// What the command learnt about one service while carrying out its step.
#[derive(Debug, Default, Clone)]
struct Seen {
    container_id: Option<String>,
    image: Option<String>,
    has_healthcheck: bool,
    adopted: Option<bool>,
    pulled: Option<bool>,
    /// A one-shot job ran to completion.
    completed: bool,
    exit_code: Option<i64>,
    ready_ms: Option<u64>,
    health: Option<String>,
}

struct Run<'a> {
    plan: &'a Plan,
    pm2: Option<&'a dyn Pm2>,
    opts: &'a Options,
    slots: usize,
    /// The bound, one pool per resource: at most `slots` engine operations (a container's
    /// creation and start, a job, a container's stop) and at most `slots` PM2 calls at once.
    /// A step holds a permit only while it uses that resource, never while it waits to be ready.
    engine_permits: Semaphore,
    pm2_permits: Semaphore,
    /// PM2's table as last read, with the number of PM2 calls completed before that read
    /// began: many services waiting at once share one read (PM2's list of 100 processes costs
    /// tens of ms on the JS thread) as long as it began after their own call.
    table: tokio::sync::Mutex<Option<(u64, Arc<Vec<Pm2Process>>)>>,
    calls_done: std::sync::atomic::AtomicU64,
    seen: Mutex<BTreeMap<String, Seen>>,
    /// Pulled or built by make-before-break.
    pulled: BTreeMap<String, bool>,
}

impl Run<'_> {
    fn say(&self, service: &str, line: &str) {
        (self.opts.progress)(&format!("{service}: {line}"));
    }

    fn note(&self, service: &str, f: impl FnOnce(&mut Seen)) {
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        f(seen.entry(service.to_string()).or_default());
    }

    fn seen(&self, service: &str) -> Seen {
        let seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        seen.get(service).cloned().unwrap_or_default()
    }

    async fn call(&self, step: &Step, call: Pm2Call) -> Result<()> {
        let Some(pm2) = self.pm2 else {
            return Ok(());
        };
        let verb = call.op();
        let _permit = self.pm2_permits.acquire().await;
        let began = std::time::Instant::now();
        let done = pm2.call(call).await;
        tracing::debug!(service = %step.service, call = verb, ms = began.elapsed().as_millis() as u64, "pm2");
        self.calls_done
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        done.map_err(|cause| Error::Pm2 {
            service: Some(step.service.clone()),
            call: verb.into(),
            cause,
            definition: Some(definition_file(step.kind).into()),
        })
    }

    /// PM2's table as it is after every PM2 call this command completed so far: a read that
    /// began after them is shared, else one is made (one at a time; those waiting meanwhile
    /// take it).
    async fn table(&self) -> Result<Arc<Vec<Pm2Process>>> {
        let needed = self.calls_done.load(std::sync::atomic::Ordering::SeqCst);
        let mut cached = self.table.lock().await;
        if let Some((at, list)) = cached.as_ref() {
            if *at >= needed {
                return Ok(list.clone());
            }
        }
        let at = self.calls_done.load(std::sync::atomic::Ordering::SeqCst);
        let list = Arc::new(self.list().await?);
        *cached = Some((at, list.clone()));
        Ok(list)
    }

    async fn list(&self) -> Result<Vec<Pm2Process>> {
        match self.pm2 {
            None => Ok(Vec::new()),
            Some(pm2) => pm2.list().await.map_err(|cause| Error::Pm2 {
                service: None,
                call: "list its processes".into(),
                cause,
                definition: None,
            }),
        }
    }

    /// The step's service's PM2 entries, from the shared read of the table.
    async fn target(&self, step: &Step) -> Result<Target> {
        if self.pm2.is_none() {
            return Ok(Target::of(&step.service, &[]));
        }
        Ok(Target::of(&step.service, &self.table().await?))
    }

    /// The app PM2 is given: a Node app with the preload.
    fn app(&self, step: &Step) -> Value {
        let app = step.app.clone().unwrap_or(Value::Null);
        match (&self.opts.preload, step.kind) {
            (Some(preload), Kind::App) => pm2::with_preload(&app, preload),
            _ => app,
        }
    }

    /// A dependency's container made to run (the staged replacement swapped in, or adopted, or
    /// created), every replica; the runner PM2 starts next adopts it.
    async fn ensure_container(&self, step: &Step) -> Result<()> {
        let Some(spec) = &step.container else {
            return Ok(());
        };
        let mut progress = |line: &str| self.say(&step.service, line);
        let mut first = None;
        let _permit = self.engine_permits.acquire().await;
        for replica in spec.replicas() {
            let r = crate::deps::ensure_container(&replica, false, &mut progress).await?;
            first.get_or_insert(r);
        }
        if let Some(r) = first {
            let pulled = r.pulled || self.pulled.get(&step.service).copied().unwrap_or(false);
            self.note(&step.service, |s| {
                s.container_id = Some(r.id);
                s.image = Some(r.image);
                s.has_healthcheck = r.has_healthcheck;
                s.adopted = Some(r.adopted);
                s.pulled = Some(pulled);
            });
        }
        Ok(())
    }

    /// The PM2 calls of one step, with the container made to run between the old process out
    /// of the way and the new one launched.
    async fn apply(&self, step: &Step) -> Result<()> {
        match step.action {
            Action::Start => {
                self.ensure_container(step).await?;
                self.call(step, Pm2Call::Start(self.app(step))).await
            }
            Action::Replace => {
                self.call(step, Pm2Call::Delete(self.target(step).await?))
                    .await?;
                self.ensure_container(step).await?;
                self.call(step, Pm2Call::Start(self.app(step))).await
            }
            // A dependency: the runner stops its container gracefully, the staged replacement
            // is swapped in (or one created), and the restarted runner adopts it. When the
            // engine refuses to start the replacement, the old container runs again (restored
            // by `deps`), and so does its runner, with the definition it had.
            Action::Restart if step.kind == Kind::Dependency => {
                let runner = self.target(step).await?;
                self.call(step, Pm2Call::Stop(runner.clone())).await?;
                if let Err(e) = self.ensure_container(step).await {
                    if let Err(again) = self.call(step, Pm2Call::RestartName(runner)).await {
                        tracing::warn!(service = %step.service, error = %again, "runner not restarted after a refused replacement");
                    }
                    return Err(e);
                }
                self.call(step, Pm2Call::Restart(self.app(step))).await
            }
            Action::Restart => self.call(step, Pm2Call::Restart(self.app(step))).await,
            Action::Reload => self.call(step, Pm2Call::Reload(self.app(step))).await,
            Action::Stop => {
                let target = self.target(step).await?;
                self.call(step, Pm2Call::Stop(target)).await
            }
            Action::Keep | Action::AlreadyStopped => Ok(()),
        }
    }

    /// Until the service is ready: an app's ports and probes while its pids live, a
    /// dependency's container healthy (engine events).
    async fn wait_ready(&self, step: &Step) -> Result<()> {
        let timeout = Duration::from_millis(step.ready_timeout_ms);
        if step.kind == Kind::Dependency {
            let seen = self.seen(&step.service);
            let Some(id) = seen.container_id else {
                return Ok(());
            };
            let h = crate::deps::wait_healthy(
                &self.plan.workspace_root.display().to_string(),
                &step.service,
                &id,
                seen.has_healthcheck,
                timeout,
            )
            .await?;
            self.note(&step.service, |s| {
                s.ready_ms = Some(h.ready_ms);
                s.health = Some(h.health);
                s.container_id = Some(h.container_id);
            });
            return Ok(());
        }
        let list = self.table().await?;
        let mine: Vec<&Pm2Process> = list.iter().filter(|p| p.name == step.service).collect();
        let target = crate::ready::ReadyTarget {
            service: step.service.clone(),
            ports: step.ports.clone(),
            health_http: step.health_http.clone(),
            health_tcp: step.health_tcp.clone(),
            pids: mine.iter().filter_map(|p| p.pid).collect(),
            pid_files: mine
                .iter()
                .filter_map(|p| p.pid_file.as_ref().map(PathBuf::from))
                .collect(),
            workspace: Some(self.plan.workspace_root.clone()),
            timeout,
            error_log: step.error_log.clone(),
            fail_fast: self.opts.fail_fast,
        };
        let r = crate::ready::wait_ready(vec![target]).await?;
        let ready_ms = r.first().map(|r| r.ready_ms);
        self.note(&step.service, |s| s.ready_ms = ready_ms);
        Ok(())
    }

    /// One step of a start, restart or deploy. `started` is told once PM2 launched it.
    async fn start_step(&self, step: &Step, started: &watch::Sender<Phase>) -> Result<Phase> {
        // What cannot be honoured is said, as compose says it (and verify lists it).
        for w in &step.warnings {
            self.say(&step.service, &format!("warning: {w}"));
        }
        // A one-shot job runs to completion here (not under PM2): what waits for it starts
        // when it exits 0, and is not started when it fails.
        if step.job {
            let Some(spec) = step.container.as_ref().filter(|_| step.action.launches()) else {
                return Ok(Phase::Ready);
            };
            let _permit = self.engine_permits.acquire().await;
            let mut progress = |line: &str| self.say(&step.service, line);
            let r = crate::deps::run_job(spec, &step.blocked, &mut progress).await?;
            self.note(&step.service, |s| {
                s.container_id = Some(r.id);
                s.image = Some(spec.image.clone());
                s.completed = true;
                s.exit_code = Some(r.exit_code);
            });
            return Ok(Phase::Completed);
        }
        self.apply(step).await?;
        // An app kept as it runs is ready for what waits on it only once it answers (it may be
        // online in PM2 and still not listening, or crash-looping under the agent).
        let kept_app_awaited = step.action == Action::Keep
            && step.kind == Kind::App
            && self.plan.steps.iter().any(|s| {
                s.waits
                    .iter()
                    .any(|w| w.on == step.service && w.gate >= schedule::Gate::Ready)
            });
        if !step.action.launches() && !kept_app_awaited {
            return Ok(Phase::Ready);
        }
        started.send_replace(Phase::Started);
        self.wait_ready(step).await?;
        Ok(Phase::Ready)
    }

    /// One step of a stop: PM2 stops the runner (which stops its container gracefully), then
    /// every container of ours for the service is stopped, also one a killed runner left.
    async fn stop_step(&self, step: &Step) -> Result<Phase> {
        self.apply(step).await?;
        if step.kind == Kind::Dependency {
            let ws = self.plan.workspace_root.display().to_string();
            let stopped = {
                let _permit = self.engine_permits.acquire().await;
                crate::deps::stop_labelled(&ws, &step.service).await
            };
            if let Err(e) = stopped {
                // No engine: nothing of ours can run there; an error only when a runner ran.
                if step.action != Action::AlreadyStopped {
                    return Err(e);
                }
                tracing::debug!(service = %step.service, error = %e, "no container to stop");
            }
        }
        Ok(Phase::Ready)
    }

    /// Every step, each as soon as what it waits on allows; the outcome of each, in plan order.
    async fn run_steps(&self, stopping: bool) -> Vec<StepOutcome> {
        let steps = &self.plan.steps;
        let channels: Vec<(watch::Sender<Phase>, watch::Receiver<Phase>)> = steps
            .iter()
            .map(|_| watch::channel(Phase::Pending))
            .collect();
        let index: BTreeMap<&str, usize> = steps
            .iter()
            .enumerate()
            .map(|(i, s)| (s.service.as_str(), i))
            .collect();
        // With more than one service acting, a line as each one is done (stderr), so a long
        // start shows its progress; the summary after it keeps the plan's order.
        let acting = steps
            .iter()
            .filter(|s| s.action.launches() || s.action == Action::Stop)
            .count();
        let tell = |step: &Step, line: &str| {
            if acting > 1 {
                self.say(&step.service, line);
            }
        };
        let runs = steps.iter().enumerate().map(|(i, step)| {
            let channels = &channels;
            let index = &index;
            let tell = &tell;
            async move {
                let tx = &channels[i].0;
                for w in &step.waits {
                    let Some(&j) = index.get(w.on.as_str()) else {
                        continue;
                    };
                    let mut rx = channels[j].1.clone();
                    let verdict = loop {
                        let phase = *rx.borrow_and_update();
                        let v = if stopping {
                            schedule::stop_verdict(phase)
                        } else {
                            w.verdict(phase)
                        };
                        if v != Verdict::NotYet {
                            break v;
                        }
                        if rx.changed().await.is_err() {
                            break Verdict::Blocked;
                        }
                    };
                    if verdict == Verdict::Blocked {
                        tracing::debug!(service = %step.service, on = %w.on, "skipped");
                        tell(
                            step,
                            &format!("not started: it waits on {}, which did not come up", w.on),
                        );
                        tx.send_replace(Phase::Skipped);
                        return StepOutcome::Skipped(w.on.clone());
                    }
                }
                let result = if stopping {
                    self.stop_step(step).await
                } else {
                    self.start_step(step, tx).await
                };
                match result {
                    Ok(phase) => {
                        if let Some(line) = self.done_line(step, stopping) {
                            tell(step, &line);
                        }
                        tx.send_replace(phase);
                        StepOutcome::Done
                    }
                    Err(e) => {
                        tx.send_replace(Phase::Failed);
                        StepOutcome::Failed(e)
                    }
                }
            }
        });
        futures_util::future::join_all(runs).await
    }

    /// What a finished step says in the progress lines (nothing for a step that did nothing).
    fn done_line(&self, step: &Step, stopping: bool) -> Option<String> {
        let seen = self.seen(&step.service);
        match step.action {
            Action::Stop if stopping => Some("stopped".into()),
            _ if seen.completed => Some(format!(
                "completed (exit code {})",
                seen.exit_code.unwrap_or_default()
            )),
            a if a.launches() => Some(match (seen.health.as_deref(), seen.ready_ms) {
                (Some("healthy"), Some(ms)) => format!("healthy in {:.1} s", ms as f64 / 1000.0),
                (_, Some(ms)) => format!("ready in {ms} ms"),
                _ => "ready".into(),
            }),
            _ => None,
        }
    }

    fn summary(&self, list: &[Pm2Process]) -> Summary {
        Summary {
            workspace: self.plan.workspace_root.display().to_string(),
            profile: self.plan.profile.clone(),
            services: self
                .plan
                .steps
                .iter()
                .map(|s| {
                    let seen = self.seen(&s.service);
                    let entries: Vec<&Pm2Process> =
                        list.iter().filter(|p| p.name == s.service).collect();
                    let status = match entries.first() {
                        Some(e) => e.status.clone(),
                        None if seen.completed => "completed".into(),
                        None => "stopped".into(),
                    };
                    ServiceSummary {
                        service: s.service.clone(),
                        kind: s.kind.as_str(),
                        action: s.action.as_str(),
                        profile: s.profile.clone(),
                        switched_from: s.switched_from.clone(),
                        status,
                        pids: entries.iter().filter_map(|p| p.pid).collect(),
                        ports: s.ports.clone(),
                        install: s.install.map(|i| i.as_str()),
                        ready_ms: seen.ready_ms,
                        dependency: (s.kind == Kind::Dependency).then(|| DependencySummary {
                            container_id: seen.container_id.clone(),
                            image: seen
                                .image
                                .clone()
                                .or_else(|| s.container.as_ref().map(|c| c.image.clone())),
                            health: seen.health.clone(),
                            exit_code: seen.exit_code,
                            adopted: seen.adopted,
                            pulled: seen.pulled,
                        }),
                    }
                })
                .collect(),
        }
    }

    /// Make-before-break, before anything that runs is touched: every dependency's image is
    /// obtained (pulled or built), and for a step that replaces a running container its
    /// replacement is created (not started), so the engine's verdict on the new configuration
    /// comes first. A refusal removes what was staged and leaves every service as it was.
    /// Returns what was staged (to remove what the command did not use) and what was pulled.
    async fn make_before_break(&self) -> Result<(Vec<ContainerSpec>, BTreeMap<String, bool>)> {
        let wanted: Vec<&Step> = self
            .plan
            .steps
            .iter()
            .filter(|s| s.container.is_some() && !s.job)
            .collect();
        if wanted.is_empty() {
            return Ok((Vec::new(), BTreeMap::new()));
        }
        type Obtained = Result<(String, bool, Option<ContainerSpec>)>;
        let obtain: Vec<BoxFuture<'_, Obtained>> = wanted
            .into_iter()
            .map(|step| Box::pin(self.obtain(step)) as BoxFuture<'_, Obtained>)
            .collect();
        let results: Vec<Obtained> = futures_util::stream::iter(obtain)
            .buffered(self.slots)
            .collect()
            .await;
        let mut staged = Vec::new();
        let mut pulled = BTreeMap::new();
        let mut first_err = None;
        for r in results {
            match r {
                Ok((service, p, s)) => {
                    pulled.insert(service, p);
                    staged.extend(s);
                }
                Err(e) => {
                    first_err.get_or_insert(e);
                }
            }
        }
        match first_err {
            None => Ok((staged, pulled)),
            Some(e) => {
                unstage(&staged).await;
                Err(e)
            }
        }
    }

    async fn obtain(&self, step: &Step) -> Result<(String, bool, Option<ContainerSpec>)> {
        let spec = step.container.as_ref().expect("filtered on container");
        let mut progress = |line: &str| self.say(&step.service, line);
        let engine = crate::deps::connect().await?;
        let (_, pulled) = crate::deps::ensure_image(&engine, spec, true, &mut progress)
            .await
            .map_err(|e| {
                if step.replacing {
                    crate::deps::record_refusal(spec, &e);
                    e.kept()
                } else {
                    crate::deps::record_failure(spec, &e);
                    e
                }
            })?;
        let mut staged = false;
        if step.replacing {
            for replica in spec.replicas() {
                staged |= crate::deps::stage(&replica).await.map_err(|e| {
                    crate::deps::record_refusal(&replica, &e);
                    e.kept()
                })?;
            }
        }
        Ok((step.service.clone(), pulled, staged.then(|| spec.clone())))
    }

    /// The workspace's agent under PM2, started when it is not online. It owns the restart
    /// policy of every service we launch (their PM2 autorestart is off).
    async fn ensure_agent(&self) -> Result<()> {
        let Some(pm2) = self.pm2 else {
            return Ok(());
        };
        let root = &self.plan.workspace_root;
        let name = crate::agent::agent_name(root, &self.plan.workspace_name);
        let list = self.list().await?;
        let entry = list.iter().find(|p| p.name == name);
        if entry.is_some_and(|e| e.status == "online") {
            return Ok(());
        }
        let failed = |call: &str, cause: String| Error::Pm2 {
            service: Some(name.clone()),
            call: call.into(),
            cause,
            definition: Some("the orchestrator's agent (orchestrator-supervisor agent)".into()),
        };
        if entry.is_some() {
            pm2.call(Pm2Call::Delete(Target::of(&name, &list)))
                .await
                .map_err(|c| failed("delete", c))?;
        }
        let app = crate::agent::pm2_app(
            root,
            &self.plan.workspace_name,
            &self.opts.supervisor,
            &self.opts.pm2_home,
        );
        pm2.call(Pm2Call::Start(app))
            .await
            .map_err(|c| failed("start", c))
    }
}

enum StepOutcome {
    Done,
    Failed(Error),
    /// Not carried out: what it waits on (named) failed or was skipped.
    Skipped(String),
}

fn definition_file(kind: Kind) -> &'static str {
    match kind {
        Kind::App => "ecosystem.config.js",
        Kind::Dependency => "docker-compose.yml",
    }
}

/// Removes staged replacements the command did not use (a later step failed before its turn);
/// one swapped in no longer goes by the staged name.
async fn unstage(staged: &[ContainerSpec]) {
    for spec in staged {
        for replica in spec.replicas() {
            if let Err(e) = crate::deps::unstage(&replica).await {
                tracing::warn!(service = %replica.service, error = %e, "staged container not removed");
            }
        }
    }
}

/// The outcomes as the command's result: Ok when every step was carried out, else the first
/// failure (in plan order), with the others and what was skipped because of them.
fn verdict_of(plan: &Plan, outcomes: Vec<StepOutcome>) -> Result<()> {
    let mut first = None;
    let mut failed = Vec::new();
    let mut skipped = Vec::new();
    for (step, o) in plan.steps.iter().zip(outcomes) {
        match o {
            StepOutcome::Done => {}
            StepOutcome::Failed(e) if first.is_none() => first = Some(e),
            StepOutcome::Failed(_) => failed.push(step.service.clone()),
            StepOutcome::Skipped(on) => skipped.push((step.service.clone(), on)),
        }
    }
    match first {
        None => Ok(()),
        Some(e) if failed.is_empty() && skipped.is_empty() => Err(e),
        Some(e) => Err(Error::Incomplete {
            first: Box::new(e),
            failed,
            skipped,
        }),
    }
}

fn run<'a>(plan: &'a Plan, pm2: Option<&'a dyn Pm2>, opts: &'a Options, stopping: bool) -> Run<'a> {
    let slots = match opts.concurrency {
        Some(n) => n.max(1),
        None if stopping => plan.steps.len().max(1),
        None => default_concurrency(),
    };
    Run {
        plan,
        pm2,
        opts,
        slots,
        engine_permits: Semaphore::new(slots),
        pm2_permits: Semaphore::new(slots),
        table: tokio::sync::Mutex::new(None),
        calls_done: std::sync::atomic::AtomicU64::new(0),
        seen: Mutex::new(BTreeMap::new()),
        pulled: BTreeMap::new(),
    }
}

/// Carries out a start, restart or deploy plan. (Boxed: the future is `Send` where it is built,
/// which the compiler cannot always prove through the progress closures at the caller.)
pub fn carry_out<'a>(
    plan: &'a Plan,
    pm2: &'a dyn Pm2,
    opts: &'a Options,
) -> BoxFuture<'a, Result<Summary>> {
    Box::pin(carry_out_inner(plan, pm2, opts))
}

#[tracing::instrument(level = "debug", name = "carry_out", skip_all, fields(steps = plan.steps.len()))]
async fn carry_out_inner(plan: &Plan, pm2: &dyn Pm2, opts: &Options) -> Result<Summary> {
    let mut r = run(plan, Some(pm2), opts, false);
    let (staged, pulled) = r.make_before_break().await?;
    r.pulled = pulled;
    let result = async {
        r.ensure_agent().await?;
        // Explicit start/restart: the failed mark and the history cleared, a profile switch
        // recorded, before PM2 acts.
        let launches: Vec<_> = plan.steps.iter().filter_map(|s| s.launch.clone()).collect();
        crate::agent::launched(&plan.workspace_root, &launches, chrono::Utc::now())?;
        verdict_of(plan, r.run_steps(false).await)?;
        Ok(r.summary(&r.list().await?))
    }
    .await;
    unstage(&staged).await;
    result
}

/// Carries out a stop plan (PM2 absent: no daemon runs, only containers are stopped); with
/// `agent_too` (`stop --all`) the workspace's agent goes as well.
pub fn stop<'a>(
    plan: &'a Plan,
    pm2: Option<&'a dyn Pm2>,
    opts: &'a Options,
    agent_too: bool,
) -> BoxFuture<'a, Result<Summary>> {
    Box::pin(stop_inner(plan, pm2, opts, agent_too))
}

#[tracing::instrument(level = "debug", name = "stop", skip_all, fields(steps = plan.steps.len()))]
async fn stop_inner(
    plan: &Plan,
    pm2: Option<&dyn Pm2>,
    opts: &Options,
    agent_too: bool,
) -> Result<Summary> {
    let r = run(plan, pm2, opts, true);
    // An explicit stop is never a crash: the agent is told before PM2 acts, and a pending
    // restart is cancelled.
    let services: Vec<String> = plan.steps.iter().map(|s| s.service.clone()).collect();
    crate::agent::stopped(&plan.workspace_root, &services, chrono::Utc::now())?;
    verdict_of(plan, r.run_steps(true).await)?;
    if let (true, Some(pm2)) = (agent_too, pm2) {
        let name = crate::agent::agent_name(&plan.workspace_root, &plan.workspace_name);
        let list = r.list().await?;
        if list.iter().any(|p| p.name == name) {
            pm2.call(Pm2Call::Delete(Target::of(&name, &list)))
                .await
                .map_err(|cause| Error::Pm2 {
                    service: Some(name),
                    call: "delete".into(),
                    cause,
                    definition: Some(
                        "the orchestrator's agent (orchestrator-supervisor agent)".into(),
                    ),
                })?;
        }
    }
    Ok(r.summary(&r.list().await?))
}
