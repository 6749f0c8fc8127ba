'use strict';
// Issue 5: the consolidated status of a copy of the example workspace with apps and
// dependencies in every state — healthy postgres and admin, a crashing worker in backoff, a
// dependency whose image cannot be obtained, a server never started — as JSON validated
// against contracts/status-snapshot.schema.json, and as a table showing the same values.

const test = require('node:test');
const assert = require('node:assert');
const fs = require('fs');
const path = require('path');
const Ajv = require('ajv/dist/2020');
const h = require('./helpers');

const ws = h.tempWorkspace('status', { adminPort: 15176, serverPort: 13003, pgPort: 15435 });
h.withoutZitadel(
  ws,
  `
  ghost:
    image: orchestrator-local/busybox:tag-that-exists-nowhere
    command: ["sleep", "600"]

volumes:`,
);
fs.mkdirSync(path.join(ws, 'apps', 'worker'), { recursive: true });
fs.writeFileSync(path.join(ws, 'apps', 'worker', 'package.json'), JSON.stringify({ name: 'worker', version: '1.0.0', private: true }));
fs.writeFileSync(path.join(ws, 'apps', 'worker', 'main.js'), "console.log('worker up'); setTimeout(() => { console.error('worker: fatal'); process.exit(3); }, 1500);\n");
h.edit(path.join(ws, 'ecosystem.config.js'), (t) => t.replace("  apps: [\n", "  apps: [\n    { name: 'worker', cwd: 'apps/worker', script: 'main.js', exec_mode: 'fork' },\n"));
h.edit(path.join(ws, 'nx.json'), (t) => {
  const nx = JSON.parse(t);
  nx.pluginsConfig['@workspace/orchestrator'].services.worker = { restartPolicy: { backoffInitialMs: 60000, backoffMaxMs: 60000 } };
  return JSON.stringify(nx, null, 2);
});
// A value that can only come from the env file: status must never print it.
const SECRET = `pg-secret-${process.pid}-x7`;
h.edit(path.join(ws, 'config', 'env', 'development.env'), (t) => t.replace(/^POSTGRES_PASSWORD=.*$/m, `POSTGRES_PASSWORD=${SECRET}`));

const ajv = new Ajv({ allErrors: true, strict: true });
ajv.addFormat('date-time', (s) => !Number.isNaN(Date.parse(s)) && /^\d{4}-\d\d-\d\dT/.test(s));
const validate = ajv.compile(JSON.parse(fs.readFileSync(path.join(h.ROOT, 'contracts', 'status-snapshot.schema.json'), 'utf8')));

function snapshot(args = []) {
  const r = h.cli(['status', '--json', ...args], ws);
  const snap = JSON.parse(r.stdout);
  assert.ok(validate(snap), JSON.stringify(validate.errors, null, 2));
  return { r, snap, row: (name) => snap.services.find((s) => s.name === name) };
}

/** The table's rows as cells, sliced at the header's column starts. */
function tableRows(text) {
  const lines = text.split('\n');
  const head = lines.findIndex((l) => l.startsWith('SERVICE'));
  const starts = [...lines[head].matchAll(/\S+(?: \S+)*/g)].map((m) => m.index);
  const rows = [];
  for (const line of lines.slice(head + 1)) {
    if (!line.trim() || line.startsWith('  ')) continue;
    rows.push(starts.map((s, i) => line.slice(s, starts[i + 1]).trim()));
  }
  return rows;
}

test.after(async () => {
  await h.killPm2();
  h.removeContainers(ws);
});

test('before anything runs: every service stopped, PM2 not running, valid snapshot', () => {
  const { r, snap } = snapshot();
  assert.strictEqual(r.code, 0, r.out);
  assert.strictEqual(snap.pm2, 'not running');
  assert.deepStrictEqual(snap.services.map((s) => s.name), ['postgres', 'ghost', 'worker', 'admin', 'server'], 'dependency order: dependencies first');
  for (const s of snap.services) assert.deepStrictEqual([s.state, s.health, s.pid, s.lastFailure], ['stopped', 'none', null, null], s.name);
  assert.deepStrictEqual(snap.services.find((s) => s.name === 'postgres').ports, [15435]);
});

test('every state at once: healthy, backoff, failed on a missing image, never started', async () => {
  assert.strictEqual(h.cli(['start', 'postgres', 'admin'], ws).code, 0);
  assert.strictEqual(h.cli(['start', 'worker'], ws).code, 0);
  const ghost = h.cli(['start', 'ghost'], ws);
  assert.strictEqual(ghost.code, 16, ghost.out);
  // The worker exits 1.5 s after its start; the agent schedules its restart 60 s later.
  await h.until('worker backoff', () => snapshot().row('worker').state === 'backoff');

  const { snap, row } = snapshot();
  assert.strictEqual(snap.pm2, 'online');
  assert.strictEqual(snap.docker, 'reachable');
  const pg = row('postgres');
  assert.deepStrictEqual([pg.kind, pg.state, pg.health], ['dependency', 'online', 'healthy']);
  assert.match(pg.containerId, /^[0-9a-f]{12}$/);
  assert.ok(pg.uptimeSeconds >= 0 && pg.pid > 0);
  const admin = row('admin');
  assert.deepStrictEqual([admin.kind, admin.state, admin.health, admin.ports], ['app', 'online', 'healthy', [15176]]);
  assert.ok(admin.pid > 0 && admin.pids.includes(admin.pid));
  const worker = row('worker');
  assert.strictEqual(worker.state, 'backoff');
  assert.match(worker.detail, /^restart 1 at \d{4}-/);
  assert.deepStrictEqual([worker.lastFailure.code, worker.lastFailure.exitCode], ['exited', 3]);
  const g = row('ghost');
  assert.deepStrictEqual([g.state, g.lastFailure.code], ['failed', 'EXIT_IMAGE_UNAVAILABLE']);
  assert.match(g.lastFailure.reason, /tag-that-exists-nowhere.*could not be pulled: \S+/, 'the engine message');
  assert.deepStrictEqual([row('server').state, row('server').lastFailure], ['stopped', null], 'never started: stopped, not an error');

  // The table: the same rows, every cell a value of the JSON.
  const t = h.cli(['status'], ws);
  assert.strictEqual(t.code, 0, t.out);
  // eslint-disable-next-line no-control-regex -- the escape that starts an ANSI colour
  assert.ok(!/\x1b\[/.test(t.stdout), 'no colour when piped');
  const rows = tableRows(t.stdout);
  assert.deepStrictEqual(rows.map((c) => c[0]), snap.services.map((s) => s.name));
  const now = snapshot().snap;
  for (const cells of rows) {
    const s = now.services.find((x) => x.name === cells[0]);
    const json = JSON.stringify(s);
    const [, kind, state, health, pidOrContainer, , cpu, mem, restarts, ports, profile, failure] = cells;
    assert.deepStrictEqual([kind, state, health], [s.kind, s.state, s.health], s.name);
    assert.strictEqual(pidOrContainer, s.containerId ?? (s.pids.length ? s.pids.join(',') : '-'));
    assert.strictEqual(restarts, `${s.restarts} (${s.recentRestarts} in ${s.windowSeconds}s)`);
    // CPU and memory move between the two calls: each is shown exactly when the JSON has it.
    assert.strictEqual(cpu === '-', s.cpu === null, `${s.name} cpu ${cpu} / ${s.cpu}`);
    assert.strictEqual(mem === '-', s.memory === null, `${s.name} memory ${mem} / ${s.memory}`);
    if (cpu !== '-') assert.match(cpu, /^\d+\.\d%$/);
    if (mem !== '-') assert.match(mem, /^\d+(\.\d)?[KMG]$/);
    assert.strictEqual(ports, s.ports.length ? s.ports.join(',') : '-');
    assert.strictEqual(profile, s.profile ?? '-');
    if (s.lastFailure) {
      assert.ok(failure.includes(s.lastFailure.at), `${failure} has ${s.lastFailure.at}`);
      assert.ok(json.includes(failure.replace(/^EXIT_[A-Z_]+: /, '').split(' (')[0].replace(/…$/, '')), `${failure} in ${json}`);
    } else assert.strictEqual(failure, '-');
  }
  for (const out of [t.stdout, JSON.stringify(snap)]) assert.ok(!out.includes(SECRET), 'no environment value is printed');
});

test('--strict exits EXIT_UNHEALTHY listing what is failed; healthy services pass', () => {
  const r = h.cli(['status', '--strict'], ws);
  assert.strictEqual(r.code, 20, r.out);
  assert.match(r.stderr, /EXIT_UNHEALTHY \(20\)/);
  assert.match(r.stderr, /ghost failed \(image orchestrator-local\/busybox:tag-that-exists-nowhere/);
  assert.ok(!/worker|admin/.test(r.stderr.split('\n')[0]), 'only failed/degraded services are listed');
  assert.strictEqual(h.cli(['status', '--strict', '--service=admin'], ws).code, 0);
  const one = snapshot(['--service', 'postgres']).snap;
  assert.deepStrictEqual(one.services.map((s) => s.name), ['postgres']);
});

test('bad input: an unknown service, a path-like name, a wrong format', () => {
  const r = h.cli(['status', '--service=nope'], ws);
  assert.strictEqual(r.code, 11, r.out);
  assert.match(r.stderr, /no service named "nope" \(known services: .*postgres/);
  assert.strictEqual(h.cli(['status', '--service=../etc'], ws).code, 2);
  assert.strictEqual(h.cli(['status', '--format=yaml'], ws).code, 2);
});

test('a change shows on the very next call: a crash is backoff at once', async () => {
  const before = snapshot().row('admin');
  process.kill(before.pid, 'SIGKILL');
  await new Promise((r) => setTimeout(r, 300));
  const after = snapshot().row('admin');
  assert.strictEqual(after.state, 'backoff', JSON.stringify(after));
  assert.strictEqual(after.lastFailure.signal, 'SIGKILL');
});

test('through Nx: workspace:status -- --json and -- --format=json print the same snapshot', async () => {
  for (const args of [['workspace:status', '--', '--json'], ['workspace:status', '--', '--format=json']]) {
    const r = await h.nx(args, ws);
    assert.strictEqual(r.code, 0, r.out);
    const line = r.stdout.split('\n').find((l) => l.startsWith('{"workspace"'));
    assert.ok(line, r.out);
    const snap = JSON.parse(line);
    assert.ok(validate(snap), JSON.stringify(validate.errors));
    assert.strictEqual(snap.services.length, 5);
  }
  const strict = await h.nx(['workspace:status', '--', '--strict'], ws);
  assert.notStrictEqual(strict.code, 0);
  assert.match(strict.out, /EXIT_UNHEALTHY \(20\)/);
  const table = await h.nx(['workspace:status'], ws);
  assert.match(table.stdout, /SERVICE\s+KIND\s+STATE/);
});

test('the programmatic API returns the same object', async () => {
  const { status } = require('..');
  const snap = await status({ cwd: ws });
  assert.ok(validate(snap), JSON.stringify(validate.errors));
  assert.deepStrictEqual(snap.services.map((s) => s.name), ['postgres', 'ghost', 'worker', 'admin', 'server']);
  await assert.rejects(status({ cwd: ws, strict: true }), (e) => e.code === 'EXIT_UNHEALTHY' && e.exitCode === 20);
});

test('PM2 daemon killed: status says so plainly, and start brings everything back', async () => {
  await h.killPm2();
  const { snap, row } = snapshot();
  assert.strictEqual(snap.pm2, 'not running');
  for (const name of ['postgres', 'admin']) {
    assert.strictEqual(row(name).state, 'stopped', name);
    assert.match(row(name).detail, /PM2's daemon is not running/);
  }
  assert.strictEqual(row('server').detail, null, 'a service nobody started raises no alarm');
  const r = h.cli(['start', 'postgres', 'admin'], ws);
  assert.strictEqual(r.code, 0, r.out);
  assert.deepStrictEqual(['postgres', 'admin'].map((n) => snapshot().row(n).state), ['online', 'online']);
});

test('stop-all; nothing left behind', async () => {
  assert.strictEqual(h.cli(['stop', '--all'], ws).code, 0);
  const { snap } = snapshot();
  for (const s of snap.services.filter((x) => x.name !== 'ghost')) assert.strictEqual(s.state, 'stopped', s.name);
  await h.assertNothingLeft(ws);
});
