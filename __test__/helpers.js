'use strict';
// Shared test plumbing: a private PM2_HOME per run, real `nx` and `orchestrator` processes,
// temporary copies of the example workspace, and PM2's table read through PM2's own API.

const fs = require('fs');
const os = require('os');
const path = require('path');
const { spawn, spawnSync } = require('child_process');

const ROOT = path.resolve(__dirname, '..');
const EXAMPLE = path.join(ROOT, 'examples', 'workspace');
const RUN_DIR = fs.mkdtempSync(path.join(os.tmpdir(), 'orch-test-'));
const PM2_HOME = path.join(RUN_DIR, 'pm2');

// Before anything loads pm2: this process and every child use the private daemon.
process.env.PM2_HOME = PM2_HOME;
process.env.NX_DAEMON = 'false';
process.env.NO_COLOR = '1';
process.env.PM2_SILENT = 'true';
// No registry here: the example's postgres comes from scripts/build-images.sh.
process.env.POSTGRES_IMAGE ??= 'orchestrator-local/postgres:15';

// Children must not inherit the test runner's IPC marker, or an app's own `node --test` would
// report to us instead of printing.
function childEnv() {
  const env = { ...process.env };
  delete env.NODE_TEST_CONTEXT;
  return env;
}

const NX = path.join(EXAMPLE, 'node_modules', '.bin', 'nx');
const BIN = path.join(ROOT, 'bin', 'orchestrator.js');
// PM2's own CLI (the package's dependency), for what a user types beside us.
const PM2_CLI = path.join(ROOT, 'node_modules', 'pm2', 'bin', 'pm2');

function result(r) {
  return { code: r.status, stdout: r.stdout || '', stderr: r.stderr || '', out: `${r.stdout || ''}${r.stderr || ''}` };
}

/** `nx run <args>` in a workspace; resolves with code and output. */
function nx(args, cwd = EXAMPLE) {
  return new Promise((resolve) => {
    const child = spawn(NX, ['run', ...args], { cwd, env: childEnv() });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('close', (status) => resolve(result({ status, stdout, stderr })));
  });
}

/** The `orchestrator` bin. */
function cli(args, cwd = EXAMPLE) {
  return result(spawnSync(process.execPath, [BIN, ...args], { cwd, env: childEnv(), encoding: 'utf8', maxBuffer: 256 << 20 }));
}

let api;
async function pm2() {
  if (!api) {
    api = require(path.join(ROOT, 'node_modules', 'pm2'));
    await new Promise((res, rej) => api.connect(false, (e) => (e ? rej(e) : res())));
  }
  return api;
}

function call(method, ...args) {
  return pm2().then((p) => new Promise((res, rej) => p[method](...args, (e, v) => (e ? rej(e) : res(v)))));
}

/** PM2's table: name, id, pid, status, restarts and our metadata. */
async function list() {
  const procs = await call('list');
  return procs.map((p) => ({
    name: p.name,
    pmId: p.pm_id,
    pid: p.pid,
    status: p.pm2_env.status,
    restarts: p.pm2_env.restart_time,
    execMode: p.pm2_env.exec_mode,
    namespace: p.pm2_env.namespace,
    env: p.pm2_env.env || {},
  }));
}

const isAgent = (p) => p.name.startsWith('orchestrator-agent-');
/** PM2 entries of services (the workspace agents left out). */
const services = (procs) => procs.filter((p) => !isAgent(p));
/** The workspace agents' PM2 entries. */
const agents = (procs) => procs.filter(isAgent);

/** A comparable picture of PM2's table, to prove a guard changed nothing. */
async function snapshot() {
  return (await list()).map((p) => `${p.name}#${p.pmId}:${p.pid}:${p.status}:${p.restarts}`).sort();
}

/** Kills this run's PM2 daemon if one runs (never starts one just to kill it). */
async function killPm2() {
  if (!api) {
    if (!fs.existsSync(path.join(PM2_HOME, 'pm2.pid'))) return;
    await pm2();
  }
  await new Promise((res) => api.killDaemon(() => res()));
  try {
    api.disconnect();
  } catch (_) {
    /* closed */
  }
  api = undefined;
}

function copyTree(from, to, skip) {
  fs.mkdirSync(to, { recursive: true });
  for (const entry of fs.readdirSync(from, { withFileTypes: true })) {
    if (skip.includes(entry.name)) continue;
    const src = path.join(from, entry.name);
    const dst = path.join(to, entry.name);
    if (entry.isDirectory()) copyTree(src, dst, skip);
    else fs.copyFileSync(src, dst);
  }
}

/**
 * A copy of the example workspace in RUN_DIR with its node_modules linked (not copied) and the
 * app ports moved (5173 → admin, 3000 → server) so it can run beside the example.
 */
function tempWorkspace(name, { adminPort = 15173, serverPort = 13000, pgPort = 15432, linkModules = true } = {}) {
  const dir = path.join(RUN_DIR, name);
  copyTree(EXAMPLE, dir, ['node_modules', '.nx', 'logs', '.orchestrator']);
  // Its own package name: its own compose project, container names and volumes.
  edit(path.join(dir, 'package.json'), (t) => t.replace(/"name": "[^"]*"/, `"name": "orch-test-${path.basename(RUN_DIR)}-${name}"`));
  if (linkModules) fs.symlinkSync(path.join(EXAMPLE, 'node_modules'), path.join(dir, 'node_modules'));
  for (const app of ['admin', 'server']) {
    const modules = path.join(EXAMPLE, 'apps', app, 'node_modules');
    if (fs.existsSync(modules)) fs.symlinkSync(modules, path.join(dir, 'apps', app, 'node_modules'));
  }
  const files = ['ecosystem.config.js', 'nx.json', ...['development', 'staging', 'production'].map((p) => `config/env/${p}.env`)];
  for (const f of files) {
    const p = path.join(dir, f);
    fs.writeFileSync(
      p,
      fs.readFileSync(p, 'utf8').replaceAll('5173', String(adminPort)).replaceAll('3000', String(serverPort)).replaceAll('5432', String(pgPort)),
    );
  }
  return dir;
}

/** Zitadel's image cannot be obtained on machines without a registry: drop it from a temporary
 * workspace (compose service, its nx.json settings and its project). */
function withoutZitadel(ws, replacement = '\nvolumes:') {
  edit(path.join(ws, 'docker-compose.yml'), (t) => t.replace(/\n {2}zitadel:[\s\S]*?\nvolumes:/, replacement));
  edit(path.join(ws, 'nx.json'), (t) => {
    const nx = JSON.parse(t);
    delete nx.pluginsConfig['@workspace/orchestrator'].services.zitadel;
    return JSON.stringify(nx, null, 2);
  });
  fs.rmSync(path.join(ws, 'deps', 'zitadel'), { recursive: true, force: true });
  return ws;
}

/** `docker …`; resolves { code, stdout, stderr, out }. */
function docker(args) {
  return result(spawnSync('docker', args, { encoding: 'utf8' }));
}

/** Removes exactly what a workspace left in the engine: its containers (by our workspace
 * label), then its compose project's volumes and network. */
function removeContainers(root) {
  const ids = docker(['ps', '-aq', '--filter', `label=dev.orchestrator.workspace=${root}`]).stdout.split(/\s+/).filter(Boolean);
  if (ids.length) docker(['rm', '-f', '-v', ...ids]);
  const nets = docker(['network', 'ls', '-q', '--filter', `label=dev.orchestrator.workspace=${root}`]).stdout.split(/\s+/).filter(Boolean);
  if (nets.length) docker(['network', 'rm', ...nets]);
  let project;
  try {
    project = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')).name.replace(/[/@]/g, '-').replace(/^-+|-+$/g, '').toLowerCase();
  } catch (_) {
    return;
  }
  const vols = docker(['volume', 'ls', '-q', '--filter', `name=^${project}_`]).stdout.split(/\s+/).filter(Boolean);
  if (vols.length) docker(['volume', 'rm', ...vols]);
}

/** Kills this run's daemon and removes a workspace's containers, proving both are gone. */
async function assertNothingLeft(ws) {
  const assert = require('node:assert');
  await list();
  const pid = Number(fs.readFileSync(path.join(PM2_HOME, 'pm2.pid'), 'utf8'));
  await killPm2();
  for (let i = 0; i < 50 && alive(pid); i++) await new Promise((r) => setTimeout(r, 100));
  assert.ok(!alive(pid), `PM2 daemon ${pid} is gone`);
  removeContainers(ws);
  assert.strictEqual(docker(['ps', '-aq', '--filter', `label=dev.orchestrator.workspace=${ws}`]).stdout.trim(), '');
}

/** Every workspace of this run (the example and the temporary copies). */
function removeAllContainers() {
  removeContainers(EXAMPLE);
  for (const e of fs.existsSync(RUN_DIR) ? fs.readdirSync(RUN_DIR) : []) removeContainers(path.join(RUN_DIR, e));
}

function ourContainers() {
  const roots = [EXAMPLE, ...(fs.existsSync(RUN_DIR) ? fs.readdirSync(RUN_DIR).map((e) => path.join(RUN_DIR, e)) : [])];
  return roots.flatMap((r) => docker(['ps', '-aq', '--filter', `label=dev.orchestrator.workspace=${r}`]).stdout.split(/\s+/).filter(Boolean));
}

/** Polls `fn` every 100 ms until it returns something truthy; fails after `ms` saying what it
 * waited for (and `detail()`, when given). */
async function until(what, fn, ms = 20000, detail = () => '') {
  const assert = require('node:assert');
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) assert.fail(`timed out waiting for ${what} ${detail()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

function edit(file, fn) {
  fs.writeFileSync(file, fn(fs.readFileSync(file, 'utf8')));
}

/** GET a URL with a fresh connection; resolves { status, body } or rejects. */
function get(url, timeoutMs = 3000) {
  const http = require('http');
  return new Promise((resolve, reject) => {
    const req = http.get(url, { agent: false, timeout: timeoutMs }, (res) => {
      let body = '';
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode, body }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
  });
}

function alive(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch (_) {
    return false;
  }
}

/**
 * `orchestrator watch` (or `args`) running in `cwd`, its output kept as lines. Resolves once it
 * watches, with `child`, `lines`, `cycles()` (one summary line a cycle), `nextCycle(after, what)`
 * (the summary line of cycle `after`, waited for) and `stop()` (SIGINT, then its exit).
 */
async function watchProcess(cwd, args = ['watch']) {
  const child = spawn(process.execPath, [BIN, ...args], { cwd, env: childEnv() });
  const lines = [];
  let buf = '';
  const take = (d) => {
    buf += d;
    const parts = buf.split('\n');
    buf = parts.pop();
    lines.push(...parts);
  };
  child.stdout.on('data', take);
  child.stderr.on('data', take);
  const cycles = () => lines.filter((l) => l.startsWith('watch: ') && / · \d+\.\d s$/.test(l));
  const w = {
    child,
    lines,
    cycles,
    async nextCycle(after, what) {
      await until(what, () => cycles().length > after, 120000, () => lines.slice(-10).join('\n'));
      return cycles()[after];
    },
    async stop() {
      if (child.exitCode !== null) return;
      child.kill('SIGINT');
      await until('the watcher ends on SIGINT', () => child.exitCode !== null, 20000, () => lines.slice(-5).join('\n'));
    },
  };
  await until('the watcher watches', () => lines.some((l) => l.startsWith('watch: watching')), 60000, () => lines.join('\n'));
  return w;
}

module.exports = { watchProcess, BIN, PM2_CLI, copyTree, until, services, agents, assertNothingLeft, withoutZitadel, docker, removeContainers, removeAllContainers, ourContainers, childEnv, ROOT, EXAMPLE, RUN_DIR, PM2_HOME, nx, cli, list, snapshot, call, killPm2, tempWorkspace, edit, get, alive };
