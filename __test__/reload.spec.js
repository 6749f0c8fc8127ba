'use strict';
// Issue 16, item 4: a zero-downtime reload drops nothing. Under a steady 200 requests a second on
// fresh connections and 200 a second on 10 keep-alive connections (client timeout 3 s), 20
// consecutive reloads of each of two cluster apps — one that closes its server on SIGINT and
// exits, one with no signal handling at all and a single worker — end with 0 failed and 0 hung
// requests. The reloads alternate between `orchestrator restart` and PM2's own `pm2 reload`:
// the drain lives in the app (lib/drain.js, through the preload), so both are covered.

const test = require('node:test');
const assert = require('node:assert');
const fs = require('fs');
const path = require('path');
const { spawn } = require('child_process');
const h = require('./helpers');
const { load } = require('../bench/load');

const PORTS = { graceful: 18120, plain: 18121 };
const RELOADS = 20;
const ws = path.join(h.RUN_DIR, 'reload');

const APPS = {
  // Closes its server on SIGINT, exits once it closed: the usual graceful app.
  graceful: `const http = require('http');
const server = http.createServer((req, res) => setTimeout(() => res.end('ok ' + process.pid), 2)).listen(process.env.PORT, '127.0.0.1');
process.on('SIGINT', () => server.close(() => process.exit(0)));
`,
  // No signal handling at all.
  plain: `require('http').createServer((req, res) => setTimeout(() => res.end('ok ' + process.pid), 2)).listen(process.env.PORT, '127.0.0.1');
`,
};

function write(f, text) {
  fs.mkdirSync(path.dirname(path.join(ws, f)), { recursive: true });
  fs.writeFileSync(path.join(ws, f), text);
}
write('package.json', JSON.stringify({ name: 'orch-reload', private: true }));
write('nx.json', JSON.stringify({ pluginsConfig: { '@workspace/orchestrator': { defaultServices: [], services: { graceful: { ports: [PORTS.graceful] }, plain: { ports: [PORTS.plain] } } } } }));
write('config/env/development.env', 'APP_ENV=development\n');
write(
  'ecosystem.config.js',
  `module.exports = { apps: [
  { name: 'graceful', cwd: 'apps/graceful', script: 'main.js', exec_mode: 'cluster', instances: 2, kill_timeout: 5000, env: { PORT: '${PORTS.graceful}' } },
  { name: 'plain', cwd: 'apps/plain', script: 'main.js', exec_mode: 'cluster', instances: 1, env: { PORT: '${PORTS.plain}' } },
] };
`,
);
for (const [name, code] of Object.entries(APPS)) {
  write(`apps/${name}/main.js`, code);
  write(`apps/${name}/package.json`, JSON.stringify({ name, version: '1.0.0', private: true }));
}

/** A command, asynchronously (the load runs in this process and must not be blocked). */
function run(cmd, args) {
  return new Promise((resolve) => {
    const c = spawn(cmd, args, { cwd: ws, env: h.childEnv() });
    let out = '';
    c.stdout.on('data', (d) => (out += d));
    c.stderr.on('data', (d) => (out += d));
    c.on('close', (code) => resolve({ code, out }));
  });
}

test.after(async () => {
  await h.killPm2();
});

test('setup: both apps online', () => {
  const r = h.cli(['start', 'graceful', 'plain'], ws);
  assert.strictEqual(r.code, 0, r.out);
});

for (const app of ['graceful', 'plain']) {
  test(`${app}: ${RELOADS} reloads under fresh and keep-alive load, 0 failed, 0 hung`, async () => {
    const port = PORTS[app];
    const fresh = load({ port, style: 'fresh', perSecond: 200, timeoutMs: 3000 });
    const kept = load({ port, style: 'keepalive', perSecond: 200, timeoutMs: 3000, connections: 10 });
    await new Promise((r) => setTimeout(r, 300));
    const pids = new Set();
    for (let i = 0; i < RELOADS; i++) {
      const r = i % 2 === 0 ? await run(process.execPath, [h.BIN, 'restart', app]) : await run(process.execPath, [h.PM2_CLI, 'reload', app]);
      assert.strictEqual(r.code, 0, r.out);
      for (const p of (await h.list()).filter((x) => x.name === app)) pids.add(p.pid);
    }
    await new Promise((r) => setTimeout(r, 300));
    const [f, k] = [await fresh.stop(), await kept.stop()];
    process.stdout.write(`# ${app}: fresh ${JSON.stringify(f)}; keep-alive ${JSON.stringify(k)}; ${pids.size} worker pids\n`);
    assert.ok(pids.size >= RELOADS, 'every reload replaced the workers');
    assert.ok(f.sent > RELOADS * 100 && k.sent > RELOADS * 100, 'the load ran throughout');
    assert.deepStrictEqual([f.failed, f.hung], [0, 0], `fresh connections: ${JSON.stringify(f.errors)}`);
    assert.deepStrictEqual([k.failed, k.hung], [0, 0], `keep-alive connections: ${JSON.stringify(k.errors)}`);
  });
}

test('a stop ends both, as requested stops (never crashes)', async () => {
  const r = h.cli(['stop', 'graceful', 'plain'], ws);
  assert.strictEqual(r.code, 0, r.out);
  assert.deepStrictEqual(h.services(await h.list()).filter((p) => p.status === 'online'), []);
  for (const app of ['graceful', 'plain']) {
    const events = fs.readFileSync(path.join(ws, 'apps', 'logs', app, 'events.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    assert.ok(!events.some((e) => e.event === 'restart_scheduled'), `${app}: no exit was taken for a crash`);
    assert.strictEqual(events.filter((e) => e.event === 'exited').pop().requested, true);
  }
});
