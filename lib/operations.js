'use strict';
// The operations the executors, the `orchestrator` bin and Node scripts share. Each one: read the
// workspace, take the lock, and hand the addon the request and PM2 (its table and its calls):
// the addon plans, carries the plan out and waits for readiness.

const path = require('path');
const native = require('./native');
const { normalize } = require('./errors');
const { findRoot, loadEcosystem } = require('./workspace');
const { Pm2, locate, daemonRunning, home } = require('./pm2');

const LOCK_TIMEOUT_MS = 120000;
// The native executable PM2 runs as the workspace's agent and as each dependency's container
// runner (crates/supervisor), built beside the addon by `npm run build`.
const SUPERVISOR = path.join(__dirname, '..', 'orchestrator-supervisor');

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

/** The request every plan is made from (and what `why` and `dashboard` read the workspace
 * with). PM2's table is left empty: the addon reads it over PM2's socket (and without a daemon,
 * the precheck plans against an empty table). */
function request(ctx, opts, located) {
  return {
    workspaceRoot: ctx.root,
    profile: opts.profile || undefined,
    services: servicesOf(opts),
    all: Boolean(opts.all),
    ecosystem: ctx.ecosystem,
    ecosystemFile: ctx.ecosystemFile,
    pm2: [],
    nodeVersion: process.versions.node,
    pm2Version: located ? located.version : undefined,
    command: ctx.command,
    dependencies: Boolean(opts.dependencies),
    supervisor: SUPERVISOR,
  };
}

/** What the addon needs to carry a plan out: the supervisor (the agent) and PM2_HOME, the preload of
 * Node apps, the bound on concurrent starts and stops, and whether an app's process that exits
 * before it is ready fails the command at once (`failFast`). */
function launchOptions(opts) {
  return {
    supervisor: SUPERVISOR,
    pm2Home: home(),
    preload: path.join(__dirname, 'preload.js'),
    concurrency: opts.concurrency ? Number(opts.concurrency) : undefined,
    failFast: Boolean(opts.failFast),
  };
}

/** start, restart or deploy: the addon plans and carries the plan out (the runtime's launch.rs),
 * calling back here for PM2's table and each PM2 call. With no daemon running, the input is
 * checked first, so bad input is refused before PM2's daemon is launched for it. */
async function launch(verb, opts) {
  const ctx = context(opts, verb);
  const prepareOnly = { start: 'prepareStart', restart: 'prepareRestart', deploy: 'prepareDeploy' }[verb];
  try {
    return await withPm2(ctx, (pm2, located) => native.launch(verb, request(ctx, opts, located), launchOptions(opts), pm2.actor()), {
      precheck: (located) => native[prepareOnly](request(ctx, opts, located)),
    });
  } catch (e) {
    throw normalize(e, { command: ctx.command });
  }
}

/** Starts services (idempotent): the default set, `services`, or every service with `all`. */
function start(opts = {}) {
  return launch('start', opts);
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
  return launch('deploy', { ...opts, profile: v.report.profiles[0]?.profile || opts.profile });
}

/** Restarts services: cluster-mode apps reload one worker at a time (zero downtime). */
function restart(opts = {}) {
  return launch('restart', opts);
}

/** Stops this workspace's services (what uses a service first, each container with its own
 * grace period); entries of other workspaces are never touched. */
async function stop(opts = {}) {
  const ctx = context(opts, 'stop');
  try {
    return await withPm2(
      ctx,
      (pm2, located) => native.stopServices(request(ctx, opts, located), launchOptions(opts), Boolean(opts.all), pm2 ? pm2.actor() : null),
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

module.exports = { start, stop, restart, deploy, setup, test, context, request, SUPERVISOR };
