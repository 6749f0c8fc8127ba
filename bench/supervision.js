'use strict';
// Benchmark group `supervision`: what the orchestrator adds on top of the engine and PM2 —
//   - start-to-healthy: `orchestrator start pg` (a fresh PostgreSQL container, initdb included)
//     against the engine alone: `docker run` with the same healthcheck, polled until healthy;
//   - crash-to-restart: from a process's exit (its own clock) to the agent's `restarted` event and
//     to the next run's first line, with a zero-backoff policy, against PM2's own autorestart;
//   - reload under load: `nx run workspace:restart --service=web` (a 2-worker cluster app) under a
//     steady 200 requests a second on fresh connections and 200 on 10 keep-alive ones, against
//     `pm2 reload` of the same app started by PM2 alone; failed and hung requests (client timeout
//     3 s) are counted apart, and ours must be 0 (docs/reload.md).
// Run through `npm run bench` (bench/run.js), or alone: node bench/supervision.js [--runs N]

const fs = require('fs');
const path = require('path');
const c = require('./common');
const { load } = require('./load');

const IMAGE = process.env.POSTGRES_IMAGE || 'orchestrator-local/postgres:15';
const PORT = 18095;
const PM2_PORT = 18096;
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

/** A command, asynchronously: the load runs in this process and must not be blocked. */
function timeAsync(box, cmd, args) {
  const { spawn } = require('child_process');
  return new Promise((resolve, reject) => {
    const t = process.hrtime.bigint();
    const child = spawn(cmd, args, { cwd: box.dir, env: box.env, stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr.on('data', (d) => (err += d));
    child.on('close', (code) => (code === 0 ? resolve(Number(process.hrtime.bigint() - t) / 1e6) : reject(new Error(`${cmd} ${args.join(' ')} exited ${code}: ${err.slice(-2000)}`))));
  });
}

async function reloadUnderLoad(box, runs) {
  process.stderr.write('bench supervision: reload under load (200 requests/s fresh + 200/s on 10 keep-alive connections)\n');
  c.run(box, process.execPath, [c.BIN, 'start', 'web']);
  // The same app, started by PM2 alone (no preload), on its own port.
  c.run(box, process.execPath, [c.PM2, 'start', path.join(box.dir, 'apps', 'web', 'main.js'), '--name', 'pm2-web', '-i', '2', '--kill-timeout', '5000'], { env: { ...box.env, PORT: String(PM2_PORT) } });
  const counts = { ours: [], pm2: [] };
  const under = async (key, port, fn) => {
    const fresh = load({ port, style: 'fresh', perSecond: 200 });
    const kept = load({ port, style: 'keepalive', perSecond: 200 });
    await c.sleep(500);
    const ms = await fn();
    await c.sleep(500);
    counts[key].push({ fresh: await fresh.stop(), kept: await kept.stop() });
    return ms;
  };
  const xs = await c.measure(
    {
      ours: () => under('ours', PORT, () => timeAsync(box, c.NX, ['run', 'workspace:restart', '--service=web'])),
      pm2: () => under('pm2', PM2_PORT, () => timeAsync(box, process.execPath, [c.PM2, 'reload', 'pm2-web'])),
    },
    Math.max(3, runs),
  );
  c.run(box, process.execPath, [c.BIN, 'stop', 'web']);
  c.run(box, process.execPath, [c.PM2, 'delete', 'pm2-web']);
  const group = 'reload under load, 2-worker cluster app';
  const row = (key, name, style, what) => {
    const samples = counts[key].map((r) => r[style][what]);
    const errors = new Set(counts[key].flatMap((r) => Object.keys(r[style].errors)));
    const sent = counts[key].reduce((n, r) => n + r[style].sent, 0);
    return {
      group,
      case: name,
      unit: 'count',
      samples,
      baseline: false,
      note: `${sent} requests sent in all${errors.size ? `; errors: ${[...errors].join(', ')}` : ''}`,
      ...(key === 'ours' ? { goal: samples.every((f) => f === 0) ? 'met' : 'NOT met' } : {}),
    };
  };
  return [
    { group, case: 'nx run workspace:restart --service=web', unit: 'ms', samples: xs.ours, baseline: false },
    { group, case: 'pm2 reload (the app under PM2 alone)', unit: 'ms', samples: xs.pm2, baseline: true },
    row('ours', 'failed per restart, fresh connections (must be 0)', 'fresh', 'failed'),
    row('ours', 'hung per restart, fresh connections (must be 0)', 'fresh', 'hung'),
    row('ours', 'failed per restart, keep-alive (must be 0)', 'kept', 'failed'),
    row('ours', 'hung per restart, keep-alive (must be 0)', 'kept', 'hung'),
    row('pm2', 'failed per pm2 reload, fresh connections', 'fresh', 'failed'),
    row('pm2', 'hung per pm2 reload, fresh connections', 'fresh', 'hung'),
    row('pm2', 'failed per pm2 reload, keep-alive', 'kept', 'failed'),
    row('pm2', 'hung per pm2 reload, keep-alive', 'kept', 'hung'),
  ];
}

module.exports = { bench };
if (require.main === module) require('./run').main(['supervision', ...process.argv.slice(2)]);
