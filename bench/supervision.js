'use strict';
// Benchmark group `supervision`: what the orchestrator adds on top of the engine and PM2 —
//   - start-to-healthy: `orchestrator start pg` (a fresh PostgreSQL container, initdb included)
//     against the engine alone: `docker run` with the same healthcheck, polled until healthy;
//   - crash-to-restart: from a process's exit (its own clock) to the agent's `restarted` event and
//     to the next run's first line, with a zero-backoff policy, against PM2's own autorestart;
//   - reload under load: `nx run workspace:restart --service=web` (a 2-worker cluster app) at a
//     steady 200 requests a second, against `pm2 reload`; failed requests must be 0.
// Run through `npm run bench` (bench/run.js), or alone: node bench/supervision.js [--runs N]

const fs = require('fs');
const http = require('http');
const path = require('path');
const c = require('./common');

const IMAGE = process.env.POSTGRES_IMAGE || 'orchestrator-local/postgres:15';
const PORT = 18095;
const HEALTH = 'pg_isready -h 127.0.0.1 -U bench -d bench';

const CRASHY = `const fs = require('fs');
fs.appendFileSync(process.env.TIMES, 'start ' + Date.now() + '\\n');
setTimeout(() => { fs.appendFileSync(process.env.TIMES, 'exit ' + Date.now() + '\\n'); process.exit(1); }, 1200);
`;
const WEB = `const http = require('http');
const server = http.createServer((req, res) => res.end('ok ' + process.pid)).listen(process.env.PORT);
process.on('SIGINT', () => server.close(() => process.exit(0)));
`;

async function bench({ runs }) {
  const box = c.sandbox('supervision');
  c.workspace(box, {
    nx: {
      defaultServices: [],
      services: {
        crashy: { restartPolicy: { maxRestarts: 1000, windowSeconds: 60, backoffInitialMs: 0, backoffMaxMs: 0, stableSeconds: 3600 } },
        web: { ports: [PORT], health: { http: `http://127.0.0.1:${PORT}/` } },
      },
    },
    apps: [
      { name: 'crashy', cwd: 'apps/crashy', script: 'main.js', env: { TIMES: path.join(box.dir, 'ours.times') } },
      { name: 'web', cwd: 'apps/web', script: 'main.js', exec_mode: 'cluster', instances: 2, kill_timeout: 5000, env: { PORT: String(PORT) } },
    ],
    compose: `services:
  pg:
    image: ${IMAGE}
    environment:
      POSTGRES_USER: bench
      POSTGRES_PASSWORD: bench
      POSTGRES_DB: bench
    healthcheck:
      test: ["CMD-SHELL", "${HEALTH}"]
      interval: 250ms
      timeout: 3s
      retries: 240
`,
    files: {
      'apps/crashy/main.js': CRASHY,
      'apps/crashy/package.json': '{"name":"crashy","version":"1.0.0","private":true}',
      'apps/web/main.js': WEB,
      'apps/web/package.json': '{"name":"web","version":"1.0.0","private":true}',
      'project.json': JSON.stringify({ name: 'workspace', targets: { restart: { executor: '@workspace/orchestrator:restart' } } }),
    },
  });
  fs.symlinkSync(path.join(c.ROOT, 'examples', 'workspace', 'node_modules'), path.join(box.dir, 'node_modules'));
  try {
    return [...(await startToHealthy(box, runs)), ...(await crashToRestart(box, runs)), ...(await reloadUnderLoad(box, runs))];
  } finally {
    c.teardown(box);
  }
}

const containersOf = (box, service) =>
  c.run(box, 'docker', ['ps', '-aq', '--filter', `label=dev.orchestrator.workspace=${box.dir}`, '--filter', `label=dev.orchestrator.service=${service}`]).stdout.split(/\s+/).filter(Boolean);

async function startToHealthy(box, runs) {
  process.stderr.write('bench supervision: start-to-healthy (fresh PostgreSQL container each run)\n');
  let n = 0;
  const ours = () => {
    const ms = c.time(box, process.execPath, [c.BIN, 'start', 'pg']);
    c.run(box, process.execPath, [c.BIN, 'stop', 'pg']);
    const ids = containersOf(box, 'pg');
    if (ids.length) c.run(box, 'docker', ['rm', '-f', '-v', ...ids]);
    return ms;
  };
  const engine = async () => {
    const name = `orch-bench-pg-${process.pid}-${n++}`;
    const t = process.hrtime.bigint();
    c.run(box, 'docker', [
      'run', '-d', '--name', name, '--label', `dev.orchestrator.workspace=${box.dir}`,
      '-e', 'POSTGRES_USER=bench', '-e', 'POSTGRES_PASSWORD=bench', '-e', 'POSTGRES_DB=bench',
      '--health-cmd', HEALTH, '--health-interval', '250ms', '--health-timeout', '3s', '--health-retries', '240',
      IMAGE,
    ]);
    for (;;) {
      const s = c.run(box, 'docker', ['inspect', '-f', '{{.State.Health.Status}}', name]).stdout.trim();
      if (s === 'healthy') break;
      if (s === 'unhealthy') throw new Error(`${name} became unhealthy`);
      await c.sleep(20);
    }
    const ms = Number(process.hrtime.bigint() - t) / 1e6;
    c.run(box, 'docker', ['rm', '-f', '-v', name]);
    return ms;
  };
  const xs = await c.measure({ ours, engine }, Math.max(3, runs));
  return [
    { group: 'start-to-healthy, PostgreSQL', case: 'orchestrator start pg (runner, PM2, healthcheck)', unit: 'ms', samples: xs.ours, baseline: false },
    { group: 'start-to-healthy, PostgreSQL', case: 'docker run + poll the same healthcheck', unit: 'ms', samples: xs.engine, baseline: true },
  ];
}

/** Pairs each `exit <ms>` line with what follows it: the next `start <ms>`. */
function exitToStart(file) {
  const lines = fs.existsSync(file) ? fs.readFileSync(file, 'utf8').trim().split('\n') : [];
  const out = [];
  for (let i = 0; i + 1 < lines.length; i++) {
    const [kind, at] = lines[i].split(' ');
    const [next, then] = lines[i + 1].split(' ');
    if (kind === 'exit' && next === 'start') out.push({ exitAt: Number(at), startAt: Number(then) });
  }
  return out;
}

async function crashToRestart(box, runs) {
  const want = Math.max(5, runs * 2);
  process.stderr.write(`bench supervision: crash-to-restart (${want} crashes under the agent, ${want} under PM2's autorestart)\n`);
  const oursFile = path.join(box.dir, 'ours.times');
  c.run(box, process.execPath, [c.BIN, 'start', 'crashy']);
  while (exitToStart(oursFile).length < want + 1) await c.sleep(200);
  c.run(box, process.execPath, [c.BIN, 'stop', 'crashy']);
  const events = fs
    .readFileSync(path.join(box.dir, 'apps', 'logs', 'crashy', 'events.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l))
    .filter((e) => e.event === 'restarted')
    .map((e) => Date.parse(e.time));
  // The first exit happened under `start` (the agent answered it like any other); skip it.
  const pairs = exitToStart(oursFile).slice(1, want + 1);
  const toEvent = pairs.map((p) => events.find((t) => t >= p.exitAt) - p.exitAt);
  const toStart = pairs.map((p) => p.startAt - p.exitAt);
  // PM2's own autorestart on the same script, in the same daemon.
  const pm2File = path.join(box.dir, 'pm2.times');
  c.run(box, process.execPath, [c.PM2, 'start', path.join(box.dir, 'apps', 'crashy', 'main.js'), '--name', 'pm2-crashy', '--restart-delay', '0'], { env: { ...box.env, TIMES: pm2File } });
  while (exitToStart(pm2File).length < want + 1) await c.sleep(200);
  c.run(box, process.execPath, [c.PM2, 'delete', 'pm2-crashy']);
  const pm2 = exitToStart(pm2File).slice(1, want + 1).map((p) => p.startAt - p.exitAt);
  return [
    { group: 'crash-to-restart, zero backoff', case: 'exit → agent `restarted` event', unit: 'ms', samples: toEvent, baseline: false },
    { group: 'crash-to-restart, zero backoff', case: "exit → next run's first line (agent)", unit: 'ms', samples: toStart, baseline: false },
    { group: 'crash-to-restart, zero backoff', case: "exit → next run's first line (PM2 autorestart)", unit: 'ms', samples: pm2, baseline: true },
  ];
}

/** Sends GET requests at `perSecond` until `stop()`; resolves { sent, failed, errors }. */
function load(perSecond) {
  let sent = 0;
  let failed = 0;
  const errors = new Set();
  const pending = new Set();
  const timer = setInterval(() => {
    sent++;
    const p = new Promise((resolve) => {
      const req = http.get({ host: '127.0.0.1', port: PORT, path: '/', agent: false, timeout: 5000 }, (res) => {
        res.resume();
        res.on('end', () => {
          if (res.statusCode !== 200) {
            failed++;
            errors.add(`HTTP ${res.statusCode}`);
          }
          resolve();
        });
      });
      req.on('timeout', () => req.destroy(new Error('timeout')));
      req.on('error', (e) => {
        failed++;
        errors.add(e.code || e.message);
        resolve();
      });
    });
    pending.add(p);
    p.then(() => pending.delete(p));
  }, 1000 / perSecond);
  return {
    async stop() {
      clearInterval(timer);
      await Promise.all([...pending]);
      return { sent, failed, errors: [...errors] };
    },
  };
}

async function reloadUnderLoad(box, runs) {
  process.stderr.write('bench supervision: reload under load (200 requests/s)\n');
  c.run(box, process.execPath, [c.BIN, 'start', 'web']);
  const failed = { ours: [], pm2: [] };
  const sent = { ours: 0, pm2: 0 };
  const errors = { ours: new Set(), pm2: new Set() };
  const under = async (key, fn) => {
    const l = load(200);
    await c.sleep(500);
    const ms = await fn();
    await c.sleep(500);
    const r = await l.stop();
    failed[key].push(r.failed);
    sent[key] += r.sent;
    r.errors.forEach((e) => errors[key].add(e));
    return ms;
  };
  const xs = await c.measure(
    {
      ours: () => under('ours', () => c.time(box, c.NX, ['run', 'workspace:restart', '--service=web'])),
      pm2: () => under('pm2', () => c.time(box, process.execPath, [c.PM2, 'reload', 'web'])),
    },
    Math.max(3, runs),
  );
  c.run(box, process.execPath, [c.BIN, 'stop', 'web']);
  const group = 'reload under load, 2-worker cluster app';
  const failures = (key, name) => ({
    group,
    case: name,
    unit: 'count',
    samples: failed[key],
    baseline: false,
    note: `${sent[key]} requests sent in all${errors[key].size ? `; errors: ${[...errors[key]].join(', ')}` : ''}`,
    ...(key === 'ours' ? { goal: failed[key].every((f) => f === 0) ? 'met' : 'NOT met' } : {}),
  });
  return [
    { group, case: 'nx run workspace:restart --service=web', unit: 'ms', samples: xs.ours, baseline: false },
    { group, case: 'pm2 reload web', unit: 'ms', samples: xs.pm2, baseline: true },
    failures('ours', 'failed requests per restart (must be 0)'),
    failures('pm2', 'failed requests per pm2 reload'),
  ];
}

module.exports = { bench };
if (require.main === module) require('./run').main(['supervision', ...process.argv.slice(2)]);
