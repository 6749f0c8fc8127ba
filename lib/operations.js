'use strict';
// The operations the executors, the `orchestrator` bin and Node scripts share. Each one: read the
// workspace, ask the addon for a checked plan, let PM2 carry it out, wait for readiness.

const path = require('path');
const native = require('./native');
const { normalize, make, OrchestratorError } = require('./errors');
const { findRoot, loadEcosystem } = require('./workspace');
const { Pm2, locate, daemonRunning } = require('./pm2');
const { withPreload } = require('./preload');

const LOCK_TIMEOUT_MS = 120000;

function context(opts, verb) {
  const root = findRoot(opts.cwd || process.cwd());
  const command = opts.command || `orchestrator ${verb}`;
  const { file, ecosystem } = loadEcosystem(root, command);
  return { root, command, ecosystemFile: file, ecosystem };
}

function servicesOf(opts) {
  if (opts.services) return [].concat(opts.services);
  if (opts.service) return [opts.service];
  return [];
}

/** Runs `fn` under the workspace lock with a PM2 connection. With `onlyIfRunning`, no daemon is
 * launched just to find nothing: `fn` gets `null` when none runs. With `precheck`, when no daemon
 * runs, the input is checked first (`precheck(located)`, an empty PM2 table): bad input is refused
 * before PM2's daemon is launched for it. */
/**
 * @param {any} ctx
 * @param {(pm2: any, located: any) => Promise<any>} fn
 * @param {{ onlyIfRunning?: boolean, precheck?: (located: any) => Promise<any> }} [options]
 */
async function withPm2(ctx, fn, { onlyIfRunning = false, precheck = undefined } = {}) {
  const located = locate(ctx.root);
  native.checkPrerequisites(ctx.root, process.versions.node, located ? located.version : undefined, ctx.command);
  const lock = await native.acquireLock(ctx.root, LOCK_TIMEOUT_MS, ctx.command);
  let pm2 = null;
  try {
    const running = daemonRunning();
    if (precheck && !running) await precheck(located);
    if (!onlyIfRunning || running) pm2 = await Pm2.connect(located);
    return await fn(pm2, located);
  } finally {
    if (pm2) await pm2.disconnect();
    lock.release();
  }
}

async function prepare(kind, ctx, opts, pm2, located) {
  return native[kind]({
    workspaceRoot: ctx.root,
    profile: opts.profile || undefined,
    services: servicesOf(opts),
    all: Boolean(opts.all),
    ecosystem: ctx.ecosystem,
    ecosystemFile: ctx.ecosystemFile,
    pm2: pm2 ? await pm2.list() : [],
    nodeVersion: process.versions.node,
    pm2Version: located.version,
    command: ctx.command,
    dependencies: Boolean(opts.dependencies),
    runnerScript: path.join(__dirname, 'runner.js'),
  });
}

/**
 * Make-before-break, before anything that runs is touched: every dependency's image is obtained
 * (pulled or built), and for a step that replaces a running container its replacement is
 * created (not started), so the engine's verdict on the new configuration comes first. A refusal
 * removes what was staged and leaves every service as it was. Resolves with the images by service
 * and `unstage()`, which removes a staged container the command did not use (a later step
 * failed before its turn); one swapped in no longer goes by the staged name.
 */
async function makeBeforeBreak(plan, command) {
  const images = {};
  const staged = [];
  const unstage = async () => {
    for (const spec of staged.splice(0)) await native.unstageContainer(spec, command).catch(() => {});
  };
  try {
    for (const step of plan.steps) {
      if (!step.container || step.job) continue;
      const spec = JSON.stringify(step.container);
      images[step.service] = await native.ensureImage(spec, step.replacing, command);
      if (step.replacing && (await native.stageContainer(spec, command))) staged.push(spec);
    }
  } catch (e) {
    await unstage();
    throw e;
  }
  return { images, unstage };
}

/** The workspace's agent (lib/agent.js) under PM2: started when it is not online. It owns the
 * restart policy of every service we launch (their PM2 autorestart is off). */
async function ensureAgent(pm2, plan) {
  const list = await pm2.list();
  const entry = list.find((p) => p.name === plan.agentName);
  if (entry && entry.status === 'online') return;
  if (entry) await pm2.deleteName(plan.agentName);
  await pm2.startApp(native.agentApp(plan.workspaceRoot, plan.workspaceName, path.join(__dirname, 'agent.js'), require('./pm2').home()));
}

async function stopAgent(pm2, plan) {
  if (!pm2) return;
  const list = await pm2.list();
  if (list.some((p) => p.name === plan.agentName)) await pm2.deleteName(plan.agentName);
}

const isActionable = (e) => e instanceof OrchestratorError;

function summarize(plan, list, ready, containers = {}) {
  const readyBy = Object.fromEntries(ready.map((r) => [r.service, r]));
  return {
    workspace: plan.workspaceRoot,
    profile: plan.profile,
    services: plan.steps.map((s) => {
      const entries = list.filter((p) => p.name === s.service);
      return {
        service: s.service,
        kind: s.kind,
        action: s.action,
        profile: s.profile,
        ...(s.switchedFrom ? { switchedFrom: s.switchedFrom } : {}),
        status: entries.length ? entries[0].status : containers[s.service]?.completed ? 'completed' : 'stopped',
        pids: entries.map((p) => p.pid).filter(Boolean),
        ports: s.ports,
        install: s.install ?? null,
        readyMs: readyBy[s.service]?.readyMs ?? null,
        ...(s.kind === 'dependency'
          ? {
              containerId: containers[s.service]?.id ?? readyBy[s.service]?.containerId ?? null,
              image: containers[s.service]?.image ?? s.container?.image ?? null,
              health: readyBy[s.service]?.health ?? null,
              exitCode: containers[s.service]?.exitCode ?? null,
              adopted: containers[s.service]?.adopted ?? null,
              pulled: containers[s.service]?.pulled ?? null,
            }
          : {}),
      };
    }),
  };
}

async function launch(kind, opts) {
  const ctx = context(opts, { prepareStart: 'start', prepareRestart: 'restart', prepareDeploy: 'deploy' }[kind]);
  try {
    return await withPm2(ctx, async (pm2, located) => {
      const plan = await prepare(kind, ctx, opts, pm2, located);
      // Node apps get the preload (lib/preload.js): they write their own log lines (PM2's writer
      // loses lines under a burst) and shut down without losing a request.
      for (const step of plan.steps) if (step.app && step.kind === 'app') step.app = withPreload(step.app);
      const { images, unstage } = await makeBeforeBreak(plan, ctx.command);
      try {
        return await carryOut(plan, pm2, ctx, images);
      } finally {
        await unstage();
      }
    }, { precheck: (located) => prepare(kind, ctx, opts, null, located) });
  } catch (e) {
    throw normalize(e, { command: ctx.command });
  }
}

/** Carries out a checked plan: the agent, the launch records, then each step with PM2, the
 * dependencies' health gating what follows, then the wait until every service is ready. */
async function carryOut(plan, pm2, ctx, images) {
  const containers = {};
  const ready = [];
  const pending = [];
  await ensureAgent(pm2, plan);
  // Explicit start/restart: the failed mark and the history cleared, a profile switch
  // recorded, before PM2 acts.
  native.markLaunched(
    plan.workspaceRoot,
    plan.steps.filter((s) => s.supervision).map((s) => s.supervision),
    ctx.command,
  );
  const readyTarget = (step, list) => ({
    ...step.ready,
    pids: list.filter((p) => p.name === step.service && p.pid).map((p) => p.pid),
    pidFiles: list.filter((p) => p.name === step.service && p.pidFile).map((p) => p.pidFile),
    ...(containers[step.service] ? { containerId: containers[step.service].id, hasHealthcheck: containers[step.service].hasHealthcheck } : {}),
  });
  for (const step of plan.steps) {
    // What cannot be honoured is said, as compose says it (and verify lists it).
    for (const w of step.warnings || []) process.stderr.write(`${step.service}: warning: ${w}\n`);
    // A one-shot job runs to completion here (not under PM2); a failure stops the command
    // before what waits for it starts, with the job's last lines.
    if (step.job) {
      if (step.action !== 'already-stopped' && step.action !== 'stop') {
        const job = await native.runJob(JSON.stringify(step.container), step.blocked, ctx.command);
        containers[step.service] = { id: job.id, image: step.container.image, completed: true, exitCode: job.exitCode };
      }
      continue;
    }
    // A dependency's container is made to run here, in the command (progress and engine
    // refusals reach the user): the staged replacement swapped in, or created; the runner
    // PM2 starts next adopts it.
    const ensure = step.container
      ? async () => {
          const c = await native.ensureContainer(JSON.stringify(step.container), ctx.command);
          containers[step.service] = { ...c, pulled: c.pulled || images[step.service]?.pulled };
        }
      : undefined;
    try {
      await pm2.apply(step, ensure);
    } catch (e) {
      if (isActionable(e)) throw e;
      throw make('EXIT_FAILURE', {
        service: step.service,
        command: ctx.command,
        message: `PM2 could not ${step.action} ${step.service}: ${e.message}`,
        remediation: [`Check the "${step.service}" entry of ${step.kind === 'dependency' ? 'docker-compose.yml' : 'ecosystem.config.js'}`, `Run \`pm2 logs ${step.service}\``],
      });
    }
    if (!step.ready) continue;
    // Dependencies gate what follows (compose `depends_on`, then the apps).
    if (step.gate) ready.push(...(await native.waitReady([readyTarget(step, await pm2.list())], ctx.command)));
    else pending.push(step);
  }
  if (pending.length) {
    const list = await pm2.list();
    ready.push(...(await native.waitReady(pending.map((s) => readyTarget(s, list)), ctx.command)));
  }
  return summarize(plan, await pm2.list(), ready, containers);
}

/** Starts services (idempotent): the default set, `services`, or every service with `all`. */
function start(opts = {}) {
  return launch('prepareStart', opts);
}

/**
 * Deploys: `verify` for the profile first (a problem stops it before anything changes), then
 * dependencies are started if needed and apps restarted under the profile (cluster apps reload
 * one worker at a time, zero downtime), each waited for until ready. Through Nx the app's build
 * runs first (the deploy target depends on `build`).
 */
async function deploy(opts = {}) {
  const command = opts.command || 'orchestrator deploy';
  const { verify, failure } = require('./verify');
  const v = verify({ cwd: opts.cwd, profile: opts.profile, command });
  if (!v.ok) {
    const err = failure(v, command);
    const shown = v.report.problems.slice(0, 5).map((p) => `${p.rule}: ${p.file}${p.line ? `:${p.line}` : ''}${p.at ? ` ${p.at}` : ''}: ${p.message}`);
    err.message = `deploy stopped before changing anything: ${err.message}\n${shown.join('\n')}${v.problems > 5 ? `\n… and ${v.problems - 5} more` : ''}`;
    err.remediation = ['Fix the problems verify lists (`nx run workspace:verify` shows all of them), then deploy again'];
    throw err;
  }
  return launch('prepareDeploy', { ...opts, profile: v.report.profiles[0]?.profile || opts.profile });
}

/** Restarts services: cluster-mode apps reload one worker at a time (zero downtime). */
function restart(opts = {}) {
  return launch('prepareRestart', opts);
}

/** Stops this workspace's services; entries of other workspaces are never touched. */
async function stop(opts = {}) {
  const ctx = context(opts, 'stop');
  try {
    return await withPm2(
      ctx,
      async (pm2, located) => {
        const plan = await prepare('prepareStop', ctx, opts, pm2, located);
        // An explicit stop is never a crash: the agent is told before PM2 acts, and a pending
        // restart is cancelled.
        native.markStopped(plan.workspaceRoot, plan.steps.map((s) => s.service));
        for (const step of plan.steps) {
          if (pm2) await pm2.apply(step);
          // The runner stops its container on SIGINT; this also stops one a killed runner left.
          if (step.kind === 'dependency') {
            try {
              await native.stopDependency(ctx.root, step.service, ctx.command);
            } catch (e) {
              // No engine, nothing of ours can run there; report it only if we expected a runner.
              if (step.action !== 'already-stopped') throw e;
            }
          }
        }
        if (opts.all) await stopAgent(pm2, plan);
        return summarize(plan, pm2 ? await pm2.list() : [], []);
      },
      { onlyIfRunning: true },
    );
  } catch (e) {
    throw normalize(e, { command: ctx.command });
  }
}

function serviceRequest(ctx, opts, service) {
  return {
    workspaceRoot: ctx.root,
    profile: opts.profile || undefined,
    service,
    ecosystem: ctx.ecosystem,
    ecosystemFile: ctx.ecosystemFile,
    command: ctx.command,
  };
}

/** The apps a per-service command acts on: the named ones, else the default set. */
function appsOf(ctx, opts) {
  return native
    .selectServices({
      workspaceRoot: ctx.root,
      services: servicesOf(opts),
      all: Boolean(opts.all),
      ecosystem: ctx.ecosystem,
      ecosystemFile: ctx.ecosystemFile,
      command: ctx.command,
    })
    .filter((s) => s.kind === 'app')
    .map((s) => s.name);
}

/** Installs dependencies and prepares the env of apps, idempotently. */
async function setup(opts = {}) {
  const ctx = context(opts, 'setup');
  try {
    const out = [];
    for (const service of appsOf(ctx, opts)) out.push(await native.setupService(serviceRequest(ctx, opts, service)));
    return { workspace: ctx.root, services: out };
  } catch (e) {
    throw normalize(e, { command: ctx.command });
  }
}

/** Runs apps' tests with the profile's env loaded. */
async function test(opts = {}) {
  const ctx = context(opts, 'test');
  try {
    const out = [];
    for (const service of appsOf(ctx, opts)) {
      const profile = await native.testService(serviceRequest(ctx, opts, service));
      out.push({ service, profile, passed: true });
    }
    return { workspace: ctx.root, services: out };
  } catch (e) {
    throw normalize(e, { command: ctx.command });
  }
}

module.exports = { start, stop, restart, deploy, setup, test };
