'use strict';
// Issue 16, item 5: the plugin supports PM2 6 and 7, Nx 22 and 24. The example and the rest of
// the suite run the current ones (Nx 24, PM2 7); this file runs the paths that touch them —
// inferred targets and the graph, start, a reload under load and a profile switch, status, logs,
// stop — against the older ones (Nx 22, PM2 6), installed from __test__/fixtures/versions's
// lockfile into a workspace of their own.

const test = require('node:test');
const assert = require('node:assert');
const fs = require('fs');
const path = require('path');
const { spawn, spawnSync } = require('child_process');
const h = require('./helpers');
const { load } = require('../bench/load');

const tools = path.join(h.RUN_DIR, 'old-tools');
const ws = h.withoutZitadel(h.tempWorkspace('versions', { adminPort: 15183, serverPort: 13013, pgPort: 15443, linkModules: false }));
const NX = path.join(tools, 'node_modules', '.bin', 'nx');
let pm2;

/** `nx run …` with the workspace's own (old) Nx; resolves { code, out, stdout }. */
function nx(args) {
  return new Promise((resolve) => {
    const child = spawn(NX, args, { cwd: ws, env: h.childEnv() });
    let stdout = '';
    let out = '';
    child.stdout.on('data', (d) => ((stdout += d), (out += d)));
    child.stderr.on('data', (d) => (out += d));
    child.on('close', (code) => resolve({ code, out, stdout }));
  });
}

/** PM2's table through the workspace's own (old) PM2 client. */
function list() {
  return new Promise((resolve, reject) => pm2.list((e, l) => (e ? reject(e) : resolve(l.map((p) => ({ name: p.name, pid: p.pid, status: p.pm2_env.status, env: p.pm2_env.env || {} }))))));
}

test.before(() => {
  fs.mkdirSync(tools, { recursive: true });
  for (const f of ['package.json', 'package-lock.json']) fs.copyFileSync(path.join(__dirname, 'fixtures', 'versions', f), path.join(tools, f));
  const r = spawnSync('npm', ['ci', '--no-audit', '--no-fund', '--loglevel=error'], { cwd: tools, encoding: 'utf8', env: h.childEnv() });
  assert.strictEqual(r.status, 0, r.stdout + r.stderr);
  // The plugin itself, as the example has it (file:../..).
  fs.mkdirSync(path.join(tools, 'node_modules', '@workspace'), { recursive: true });
  fs.symlinkSync(h.ROOT, path.join(tools, 'node_modules', '@workspace', 'orchestrator'));
  fs.symlinkSync(path.join(tools, 'node_modules'), path.join(ws, 'node_modules'));
  pm2 = new (require(path.join(tools, 'node_modules', 'pm2')).custom)();
});

test.after(async () => {
  if (pm2) await new Promise((r) => pm2.killDaemon(() => r()));
  try {
    pm2.disconnect();
  } catch (_) {
    /* closed */
  }
  h.removeContainers(ws);
});

test('the workspace resolves Nx 22 and PM2 6', () => {
  const v = (pkg) => JSON.parse(fs.readFileSync(path.join(ws, 'node_modules', pkg, 'package.json'), 'utf8')).version;
  assert.deepStrictEqual([v('nx'), v('pm2')], ['22.7.12', '6.0.14']);
});

test('Nx 22: inferred targets and the graph', () => {
  const r = spawnSync(NX, ['show', 'project', 'server', '--json'], { cwd: ws, env: h.childEnv(), encoding: 'utf8' });
  assert.strictEqual(r.status, 0, r.stderr);
  const server = JSON.parse(r.stdout);
  for (const t of ['start', 'stop', 'restart', 'logs', 'deploy']) assert.strictEqual(server.targets[t].executor, `@workspace/orchestrator:${t}`);
  const file = path.join(h.RUN_DIR, 'versions-graph.json');
  assert.strictEqual(spawnSync(NX, ['graph', `--file=${file}`], { cwd: ws, env: h.childEnv() }).status, 0);
  const deps = JSON.parse(fs.readFileSync(file, 'utf8')).graph.dependencies;
  assert.ok(deps.server.some((d) => d.target === 'postgres'), JSON.stringify(deps.server));
});

test('PM2 6: start through Nx, everything under the workspace’s own PM2', async () => {
  const r = await nx(['run', 'workspace:start']);
  assert.strictEqual(r.code, 0, r.out);
  for (const s of ['postgres', 'admin', 'server']) assert.match(r.out, new RegExp(`✔ ${s}\\s+started`));
  await new Promise((res, rej) => pm2.connect(false, (e) => (e ? rej(e) : res())));
  const daemon = await new Promise((res, rej) => pm2.getVersion((e, v) => (e ? rej(e) : res(v))));
  assert.strictEqual(daemon, '6.0.14', 'the daemon is PM2 6');
  const procs = h.services(await list());
  assert.ok(procs.filter((p) => p.name === 'server').every((p) => p.status === 'online'));
});

test('PM2 6 + Nx 22: a profile switch reloads with zero downtime, 0 failed and 0 hung under load', async () => {
  const fresh = load({ port: 13013, path: '/api/info', style: 'fresh', perSecond: 200 });
  const kept = load({ port: 13013, path: '/api/info', style: 'keepalive', perSecond: 200 });
  await new Promise((res) => setTimeout(res, 300));
  let r = await nx(['run', 'workspace:restart', '--profile', 'staging', '--', '--service=server']);
  assert.strictEqual(r.code, 0, r.out);
  assert.match(r.out, /✔ server\s+reloaded \(zero downtime\) — profile development → staging/);
  for (let i = 0; i < 4; i++) {
    r = await nx(['run', 'server:restart']);
    assert.strictEqual(r.code, 0, r.out);
  }
  const [f, k] = [await fresh.stop(), await kept.stop()];
  assert.deepStrictEqual([f.failed, f.hung, k.failed, k.hung], [0, 0, 0, 0], JSON.stringify({ f, k }));
  const procs = (await list()).filter((p) => p.name === 'server');
  assert.ok(procs.every((p) => p.env.ORCHESTRATOR_PROFILE === 'staging'));
});

test('status and logs through Nx 22, the same as the bin', async () => {
  const r = await nx(['run', 'workspace:status', '--', '--json']);
  assert.strictEqual(r.code, 0, r.out);
  const viaNx = JSON.parse(r.stdout.slice(r.stdout.indexOf('{'), r.stdout.lastIndexOf('}') + 1)).services.map((s) => [s.name, s.state, s.profile]);
  const viaBin = JSON.parse(h.cli(['status', '--json'], ws).stdout).services.map((s) => [s.name, s.state, s.profile]);
  assert.deepStrictEqual(viaNx, viaBin);
  assert.deepStrictEqual(viaBin.find((x) => x[0] === 'server'), ['server', 'online', 'staging']);
  const logs = await nx(['run', 'workspace:logs', '--', '--service=server', '--tail=50']);
  assert.strictEqual(logs.code, 0, logs.out);
  assert.match(logs.out, /server listening on/);
});

test('stop-all through Nx 22; nothing of ours left in PM2 6', async () => {
  const r = await nx(['run', 'workspace:stop-all']);
  assert.strictEqual(r.code, 0, r.out);
  assert.deepStrictEqual((await list()).filter((p) => p.status === 'online'), []);
});
