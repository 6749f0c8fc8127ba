'use strict';
// Issue 16, item 1: a restart (and a deploy) is make-before-break. Everything that can be
// checked is checked before the running service is touched — the image present, pullable or
// buildable; the entry valid; the env resolved; the ports free or already the service's own; the
// engine's verdict on the new container (created, not started, beside the running one) — and
// on any failure the running container or app keeps serving, untouched, while the error and
// `status` say what failed. If the engine still refuses to start the new container once the old
// one stopped, the old one runs again.

const test = require('node:test');
const assert = require('node:assert');
const fs = require('fs');
const net = require('net');
const path = require('path');
const { spawn } = require('child_process');
const h = require('./helpers');

const SERVER_PORT = 13011;
const ws = h.withoutZitadel(h.tempWorkspace('replace', { adminPort: 15181, serverPort: SERVER_PORT, pgPort: 15441 }));
const compose = path.join(ws, 'docker-compose.yml');
const original = fs.readFileSync(compose, 'utf8');

const containerOf = (service) =>
  h.docker(['ps', '-q', '--no-trunc', '--filter', `label=dev.orchestrator.workspace=${ws}`, '--filter', `label=dev.orchestrator.service=${service}`]).stdout.trim();
const allContainers = () => h.docker(['ps', '-a', '--format', '{{.Names}}', '--filter', `label=dev.orchestrator.workspace=${ws}`]).stdout.trim().split('\n').filter(Boolean).sort();
const psql = (sql) => h.docker(['exec', containerOf('postgres'), 'psql', '-U', 'app', '-d', 'app_development', '-Atc', sql]);
const status = (service) => JSON.parse(h.cli(['status', '--json', '--service', service], ws).stdout).services[0];

/** `nx run …` in the workspace with extra environment variables. */
function nxWith(env, args) {
  return new Promise((resolve) => {
    const child = spawn(h.EXAMPLE + '/node_modules/.bin/nx', ['run', ...args], { cwd: ws, env: { ...h.childEnv(), ...env } });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    child.on('close', (code) => resolve({ code, out }));
  });
}

/** Edits the postgres service of the compose file: `extra` after its `image:` line, `mount`
 * among its volumes. */
function withPostgres(extra, mount = '') {
  const edited = original
    .replace(/(\n {4}image: \$\{POSTGRES_IMAGE[^\n]*\n)/, `$1${extra}`)
    .replace('      - pgdata:/var/lib/postgresql/data\n', `      - pgdata:/var/lib/postgresql/data\n${mount}`);
  assert.notStrictEqual(edited, original, 'the postgres service was edited');
  fs.writeFileSync(compose, edited);
}

/** Everything that shows the running services were not touched. */
async function picture() {
  return { pm2: await h.snapshot(), postgres: containerOf('postgres'), containers: allContainers(), rows: psql('SELECT x FROM kept ORDER BY x').stdout.trim() };
}

/** A listener of this test's own on `port`, held until `close()`. */
function hold(port) {
  return new Promise((resolve, reject) => {
    const s = net.createServer().listen(port, '127.0.0.1', () => resolve(s));
    s.on('error', reject);
  });
}

test.after(async () => {
  fs.writeFileSync(compose, original);
  await h.killPm2();
  h.removeContainers(ws);
});

test('setup: postgres (with a row) and the server running', async () => {
  const r = await h.nx(['server:start'], ws);
  assert.strictEqual(r.code, 0, r.out);
  assert.strictEqual(psql('CREATE TABLE kept (x int); INSERT INTO kept VALUES (1)').code, 0);
  assert.strictEqual(psql('SELECT x FROM kept').stdout.trim(), '1');
});

test('an image that cannot be obtained: the running database serves on, status says what failed', async () => {
  const before = await picture();
  const r = await nxWith({ POSTGRES_IMAGE: '127.0.0.1:5000/orchestrator-test/absent:1' }, ['postgres:restart', '--profile', 'development']);
  assert.strictEqual(r.code, 1, r.out);
  assert.match(r.out, /✖ EXIT_IMAGE_UNAVAILABLE \(16\)/);
  assert.match(r.out, /postgres was not replaced: it runs on as before/);
  assert.deepStrictEqual(await picture(), before, 'PM2, the container and its data as they were');
  const s = status('postgres');
  assert.deepStrictEqual([s.state, s.health, s.lastFailure.code], ['online', 'healthy', 'EXIT_IMAGE_UNAVAILABLE']);
  assert.match(s.lastFailure.reason, /not replaced, still running as before/);
  const events = fs.readFileSync(path.join(ws, 'apps', 'logs', 'postgres', 'events.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  const refused = events.filter((e) => e.event === 'refused');
  assert.strictEqual(refused.length, 1, JSON.stringify(events));
  require('./contract').check('event', refused[0], 'the refused event');
  assert.strictEqual(refused[0].code, 'EXIT_IMAGE_UNAVAILABLE');
});

test('a configuration the engine refuses (a bind mount of a missing path): refused before the stop', async () => {
  withPostgres('', '      - type: bind\n        source: ./no-such-directory\n        target: /mnt/x\n        bind: {create_host_path: false}\n');
  const before = await picture();
  const r = h.cli(['restart', 'postgres'], ws);
  assert.strictEqual(r.code, 18, r.out);
  assert.match(r.out, /bind source path does not exist/);
  assert.match(r.out, /postgres was not replaced/);
  assert.deepStrictEqual(await picture(), before, 'nothing staged is left behind');
  fs.writeFileSync(compose, original);
});

test('a container the engine creates but will not start (a missing device): the old one runs again', async () => {
  withPostgres('    devices:\n      - /dev/orchestrator-test-absent:/dev/x\n');
  const before = await picture();
  const r = h.cli(['restart', 'postgres'], ws);
  assert.strictEqual(r.code, 18, r.out);
  assert.match(r.out, /postgres was not replaced/);
  await h.until('the runner online again', async () => (await h.list()).some((p) => p.name === 'postgres' && p.status === 'online'));
  await h.until('postgres healthy again', () => status('postgres').health === 'healthy', 60000);
  const after = await picture();
  assert.strictEqual(after.postgres, before.postgres, 'the same container, started again');
  assert.deepStrictEqual(after.containers, before.containers, 'no replacement left behind');
  assert.strictEqual(after.rows, '1');
  fs.writeFileSync(compose, original);
});

test('a port another process holds: a dependency and an app are refused before they are touched', async () => {
  const holder = await hold(15449);
  try {
    const envFile = path.join(ws, 'config', 'env', 'development.env');
    const env = fs.readFileSync(envFile, 'utf8');
    fs.writeFileSync(envFile, env.replace('POSTGRES_PORT=15441', 'POSTGRES_PORT=15449'));
    let before = await picture();
    let r = h.cli(['restart', 'postgres'], ws);
    assert.strictEqual(r.code, 14, r.out);
    assert.match(r.out, new RegExp(`port 15449 is held by pid ${process.pid}`));
    assert.deepStrictEqual(await picture(), before);
    fs.writeFileSync(envFile, env);
    // The app: its new PORT is taken.
    h.edit(path.join(ws, 'ecosystem.config.js'), (t) => t.replace(`PORT: '${SERVER_PORT}'`, "PORT: '15449'"));
    before = await picture();
    r = h.cli(['restart', 'server'], ws);
    assert.strictEqual(r.code, 14, r.out);
    assert.match(r.out, /server was not replaced: it runs on as before/);
    assert.deepStrictEqual(await picture(), before);
    assert.strictEqual((await h.get(`http://127.0.0.1:${SERVER_PORT}/health`)).status, 200);
    // Deploy is make-before-break as well.
    r = h.cli(['deploy', 'server'], ws);
    assert.notStrictEqual(r.code, 0, r.out);
    assert.deepStrictEqual(await picture(), before);
    h.edit(path.join(ws, 'ecosystem.config.js'), (t) => t.replace("PORT: '15449'", `PORT: '${SERVER_PORT}'`));
  } finally {
    holder.close();
  }
  // Its own ports are no conflict: a plain restart of each goes through.
  const r = h.cli(['restart', 'server', 'postgres'], ws);
  assert.strictEqual(r.code, 0, r.out);
});

test('a restart that can go through replaces the container and keeps the data; the refusal is cleared', async () => {
  const first = containerOf('postgres');
  const r = h.cli(['restart', 'postgres'], ws);
  assert.strictEqual(r.code, 0, r.out);
  assert.notStrictEqual(containerOf('postgres'), first, 'a new container');
  assert.strictEqual(psql('SELECT x FROM kept').stdout.trim(), '1');
  const s = status('postgres');
  assert.deepStrictEqual([s.state, s.lastFailure], ['online', null]);
  assert.ok(!allContainers().some((n) => /-(next|prev)$/.test(n)), allContainers().join(' '));
});

test('stop, and nothing is left behind', async () => {
  assert.strictEqual(h.cli(['stop', '--all'], ws).code, 0);
  await h.assertNothingLeft(ws);
});
