'use strict';
// Starts and stops by dependency edges (crates/core/src/schedule.rs), with real PM2 (private
// PM2_HOME), real processes and real busybox containers. Nothing here measures speed: each
// test reads the order of what happened — the apps' own timestamps of start, listen and
// signal, and the engine's events — and asserts which things overlapped and which waited.

const test = require('node:test');
const assert = require('node:assert');
const fs = require('fs');
const path = require('path');
const h = require('./helpers');

const ws = path.join(h.RUN_DIR, 'levels');
const EVENTS = path.join(ws, 'events.jsonl');
fs.mkdirSync(path.join(ws, 'config', 'env'), { recursive: true });
fs.writeFileSync(path.join(ws, 'package.json'), JSON.stringify({ name: `orch-test-levels-${process.pid}`, private: true }));
fs.writeFileSync(path.join(ws, 'config', 'env', 'development.env'), `EVENTS=${EVENTS}\n`);

// Every app writes what happens to it (start, listen, signal) with Date.now() to one file; it
// listens on PORT after DELAY ms, and on SIGINT it closes and exits after 300 ms.
const APP = `const fs = require('fs');
const net = require('net');
const say = (ev) => fs.appendFileSync(process.env.EVENTS, JSON.stringify({ app: process.env.APP, ev, t: Date.now() }) + '\\n');
say('start');
setTimeout(() => {
  if (process.env.PORT === 'none') return setInterval(() => {}, 1000);
  net.createServer().listen(Number(process.env.PORT), '127.0.0.1', () => say('listen'));
}, Number(process.env.DELAY || 0));
process.on('SIGINT', () => { say('signal'); setTimeout(() => process.exit(0), 300); });
setInterval(() => {}, 1000);
`;
const APPS = {
  api: { PORT: '18301', DELAY: '1500' },
  web: { PORT: '18302', DELAY: '0' },
  solo: { PORT: '18303', DELAY: '1500' },
  // Waits on every dependency: it declares no dependsOn.
  dbuser: { PORT: '18304', DELAY: '0' },
  // Never listens: not ready within its timeout.
  broken: { PORT: 'none', DELAY: '0' },
  'after-broken': { PORT: '18306', DELAY: '0' },
};
fs.mkdirSync(path.join(ws, 'apps', 'app'), { recursive: true });
fs.writeFileSync(path.join(ws, 'apps', 'app', 'main.js'), APP);
fs.writeFileSync(path.join(ws, 'apps', 'app', 'package.json'), JSON.stringify({ name: 'app', version: '1.0.0', private: true }));
fs.writeFileSync(
  path.join(ws, 'ecosystem.config.js'),
  `module.exports = { apps: ${JSON.stringify(
    Object.entries(APPS).map(([name, env]) => ({ name, cwd: 'apps/app', script: 'main.js', exec_mode: 'fork', env: { ...env, APP: name } })),
  )} };\n`,
);
// Two containers that take 2 s to become healthy and whose PID 1 ignores SIGTERM (each stop
// waits its full grace period).
const slowBox = (name) => `  ${name}:
    image: orchestrator-local/busybox:1
    command: ["sh", "-c", "trap '' TERM; sleep 2; touch /tmp/ready; while true; do sleep 1; done"]
    healthcheck:
      test: ["CMD", "test", "-f", "/tmp/ready"]
      interval: 1s
      retries: 30
    stop_grace_period: 3s
`;
fs.writeFileSync(path.join(ws, 'docker-compose.yml'), `services:\n${slowBox('box-a')}${slowBox('box-b')}`);
fs.writeFileSync(
  path.join(ws, 'nx.json'),
  JSON.stringify(
    {
      pluginsConfig: {
        '@workspace/orchestrator': {
          services: {
            api: { ports: [18301], dependsOn: ['web'] },
            // Needs nothing: it does not wait for the containers.
            web: { ports: [18302], dependsOn: [] },
            solo: { ports: [18303], dependsOn: ['web'] },
            dbuser: { ports: [18304] },
            broken: { ports: [18305], readyTimeoutSeconds: 3, dependsOn: ['web'] },
            'after-broken': { ports: [18306], dependsOn: ['broken'] },
          },
        },
      },
    },
    null,
    2,
  ),
);

test.after(async () => {
  h.cli(['stop', '--all'], ws);
  await h.killPm2();
  h.removeContainers(ws);
});

const events = () =>
  fs.existsSync(EVENTS)
    ? fs
        .readFileSync(EVENTS, 'utf8')
        .trim()
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l))
    : [];
const at = (app, ev) => {
  const e = events().find((x) => x.app === app && x.ev === ev);
  assert.ok(e, `${app} ${ev}: ${JSON.stringify(events())}`);
  return e.t;
};

/** The engine's events for this workspace's containers since `since` (ms): [{ action, name, t }]. */
function engineEvents(since) {
  const r = h.docker([
    'events',
    '--since',
    String(Math.floor(since / 1000) - 1),
    '--until',
    String(Math.ceil(Date.now() / 1000) + 1),
    '--filter',
    'type=container',
    '--format',
    '{{.Action}}|{{.Actor.Attributes.name}}|{{.TimeNano}}',
  ]);
  return r.stdout
    .trim()
    .split('\n')
    .filter(Boolean)
    .map((l) => {
      const [action, name, nano] = l.split('|');
      return { action, name, t: Number(BigInt(nano) / 1000000n) };
    })
    .filter((e) => e.name.includes('levels'));
}
const first = (evs, action, box) => {
  const e = evs.find((x) => x.action.startsWith(action) && x.name.includes(box));
  assert.ok(e, `${action} of ${box}: ${JSON.stringify(evs)}`);
  return e.t;
};

test('start --all: each service waits on its own edges only; a failure stops only what waits on it', async () => {
  const since = Date.now();
  const r = h.cli(['start', '--all', '--json'], ws);
  assert.notStrictEqual(r.code, 0, r.out);
  const err = JSON.parse(r.stdout).error;
  // The first failure's own error, with what was not started because of it.
  assert.strictEqual(err.service, 'broken', r.out);
  assert.strictEqual(err.code, 'EXIT_FAILURE');
  assert.match(err.message, /not ready within 3 s/);
  assert.match(err.message, /after-broken \(waits on broken\)/);
  assert.ok(err.remediation.length > 0);
  // A line as each service is done (stderr), what was not started among them.
  assert.match(r.stderr, /^web: ready in \d+ ms$/m);
  assert.match(r.stderr, /^box-a: healthy in \d+\.\d s$/m);
  assert.match(r.stderr, /^after-broken: not started: it waits on broken, which did not come up$/m);

  const procs = h.services(await h.list());
  const status = Object.fromEntries(procs.map((p) => [p.name, p.status]));
  for (const s of ['api', 'web', 'solo', 'dbuser', 'box-a', 'box-b']) assert.strictEqual(status[s], 'online', `${s}: ${JSON.stringify(status)}`);
  assert.strictEqual(status['after-broken'], undefined, 'what waits on the failed service is not started');

  // Edges hold: api and solo start once web listens; dbuser (no dependsOn) once both boxes are
  // healthy.
  assert.ok(at('api', 'start') >= at('web', 'listen'));
  assert.ok(at('solo', 'start') >= at('web', 'listen'));
  const evs = engineEvents(since);
  assert.ok(at('dbuser', 'start') >= first(evs, 'health_status: healthy', 'box-a'));
  assert.ok(at('dbuser', 'start') >= first(evs, 'health_status: healthy', 'box-b'));
  // No false edges: api and solo, siblings, overlapped (each listens 1.5 s after it started);
  // web did not wait for the boxes; the boxes started together, not one after the other's
  // health.
  assert.ok(at('solo', 'start') < at('api', 'listen'), 'siblings start together');
  assert.ok(at('api', 'start') < at('solo', 'listen'), 'siblings start together');
  assert.ok(at('web', 'start') < first(evs, 'health_status: healthy', 'box-a'), 'web declares what it needs');
  assert.ok(first(evs, 'start', 'box-b') < first(evs, 'health_status: healthy', 'box-a'));
  assert.ok(first(evs, 'start', 'box-a') < first(evs, 'health_status: healthy', 'box-b'));
});

test('start --all again: what runs is kept; a kept service that is not ready still holds what waits on it', async () => {
  const before = h.services(await h.list()).filter((p) => p.name !== 'broken').map((p) => `${p.name}:${p.pid}`).sort();
  const r = h.cli(['start', '--all', '--json'], ws);
  assert.notStrictEqual(r.code, 0, r.out);
  const err = JSON.parse(r.stdout).error;
  assert.strictEqual(err.service, 'broken', r.out);
  assert.match(err.message, /after-broken \(waits on broken\)/);
  assert.strictEqual((await h.list()).find((p) => p.name === 'after-broken'), undefined);
  const after = h.services(await h.list()).filter((p) => p.name !== 'broken').map((p) => `${p.name}:${p.pid}`).sort();
  assert.deepStrictEqual(after, before, 'nothing that runs was touched');
});

test('stop --all: what uses a service stops first; containers stop concurrently, each with its grace period', async () => {
  const since = Date.now();
  const r = h.cli(['stop', '--all', '--json'], ws);
  assert.strictEqual(r.code, 0, r.out);
  assert.match(r.stderr, /^api: stopped$/m);
  assert.deepStrictEqual(h.services(await h.list()).filter((p) => p.status === 'online'), []);
  // web is used by api and solo: it gets its signal after they exited (300 ms after theirs).
  assert.ok(at('web', 'signal') >= at('api', 'signal') + 300);
  assert.ok(at('web', 'signal') >= at('solo', 'signal') + 300);
  const evs = engineEvents(since);
  // dbuser uses the boxes: the engine is told to stop them after it stopped.
  assert.ok(first(evs, 'kill', 'box-a') >= at('dbuser', 'signal'));
  // Both ignore SIGTERM: each was being stopped while the other waited out its grace period.
  assert.ok(first(evs, 'kill', 'box-b') < first(evs, 'die', 'box-a'));
  assert.ok(first(evs, 'kill', 'box-a') < first(evs, 'die', 'box-b'));
  assert.deepStrictEqual(
    h.ourContainers().filter((c) => c.includes('levels') && c.includes('Up')),
    [],
  );
});

test('--concurrency 1: one service launched at a time (each container created after the other started); a bad bound is refused', async () => {
  const bad = h.cli(['start', '--all', '--concurrency', '0'], ws);
  assert.strictEqual(bad.code, 2, bad.out);
  assert.match(bad.stderr, /--concurrency must be a whole number of at least 1/);
  assert.deepStrictEqual(h.services(await h.list()).filter((p) => p.status === 'online'), [], 'nothing started');
  const since = Date.now();
  const r = h.cli(['start', 'box-a', 'box-b', '--concurrency', '1', '--json'], ws);
  assert.strictEqual(r.code, 0, r.out);
  const evs = engineEvents(since);
  const [firstBox, secondBox] = first(evs, 'create', 'box-a') < first(evs, 'create', 'box-b') ? ['box-a', 'box-b'] : ['box-b', 'box-a'];
  assert.ok(first(evs, 'create', secondBox) >= first(evs, 'start', firstBox), JSON.stringify(evs));
  assert.strictEqual(h.cli(['stop', '--all', '--concurrency', '2'], ws).code, 0);
});
