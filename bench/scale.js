'use strict';
// Benchmark group `scale` (issue 18): how the cost grows with the number of services. For each
// size (10, 30 and 100 services by default: 70 % Node apps that listen 300 ms after they start,
// 30 % busybox containers healthy after their first 1 s healthcheck, whose PID 1 ignores
// SIGTERM and so waits out its 2 s grace period) —
//   - `orchestrator start --all` until every service is ready, against the baseline of the same
//     run: `pm2 start` of the same apps plus one `docker run` per container, all at once, polled
//     until every port answers and every container is healthy;
//   - `orchestrator stop --all`, against `pm2 delete all` plus `docker rm -f` of every container
//     at once (no grace period: the floor);
//   - `orchestrator status --json`, against `pm2 jlist`;
// then the cost per added service (the slope between the smallest and the largest size).
// Run through `npm run bench` (bench/run.js), or alone: node bench/scale.js [--runs N]
// [--sizes 10,30,100].

const fs = require('fs');
const net = require('net');
const path = require('path');
const { spawn } = require('child_process');
const c = require('./common');

const IMAGE = 'orchestrator-local/busybox:1';
const APP = `const net = require('net');
setTimeout(() => net.createServer((s) => s.end()).listen(Number(process.env.PORT), '127.0.0.1'), 300);
`;
// Healthy after the first check (1 s); `sleep` as PID 1 ignores SIGTERM (the grace period runs out).
const CONTAINER = { command: ['sleep', '3600'], health: ['CMD', 'true'], interval: '1s', grace: '2s' };

function layout(box, size) {
  const containers = Math.round(size * 0.3);
  const apps = size - containers;
  const base = 19000 + size * 10;
  const appDefs = Array.from({ length: apps }, (_, i) => ({ name: `app${i}`, cwd: 'apps/app', script: 'main.js', exec_mode: 'fork', env: { PORT: String(base + i) } }));
  let compose = 'services:\n';
  for (let i = 0; i < containers; i++) {
    compose += `  dep${i}:\n    image: ${IMAGE}\n    command: ${JSON.stringify(CONTAINER.command)}\n    healthcheck:\n      test: ${JSON.stringify(CONTAINER.health)}\n      interval: ${CONTAINER.interval}\n      retries: 30\n    stop_grace_period: ${CONTAINER.grace}\n`;
  }
  c.workspace(box, {
    // Apps need none of the containers: each starts at once (`dependsOn: []`).
    nx: { defaultServices: [], services: Object.fromEntries(appDefs.map((a) => [a.name, { ports: [Number(a.env.PORT)], dependsOn: [] }])) },
    apps: appDefs,
    compose,
    files: {
      'apps/app/main.js': APP,
      'apps/app/package.json': '{"name":"app","version":"1.0.0","private":true}',
      // The baseline: the same apps for PM2 alone (its own names, same ports).
      'baseline.config.js': `module.exports = { apps: ${JSON.stringify(appDefs.map((a) => ({ ...a, name: `base-${a.name}`, cwd: path.join(box.dir, 'apps/app') })))} };\n`,
    },
  });
  return { apps: appDefs, containers };
}

const answers = (port) =>
  new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });

/** Resolves when every port answers and every named container is healthy. */
async function allReady(box, ports, names) {
  for (;;) {
    const up = await Promise.all(ports.map(answers));
    let healthy = names.length === 0;
    if (names.length) {
      const r = c.run(box, 'docker', ['inspect', '--format', '{{.State.Health.Status}}', ...names], { allowFail: true });
      healthy = r.status === 0 && r.stdout.trim().split('\n').every((s) => s === 'healthy');
    }
    if (up.every(Boolean) && healthy) return;
    await c.sleep(50);
  }
}

const spawnAsync = (box, cmd, args) =>
  new Promise((resolve, reject) => {
    const p = spawn(cmd, args, { cwd: box.dir, env: box.env, stdio: 'ignore' });
    p.on('error', reject);
    p.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`${cmd} ${args.join(' ')} exited ${code}`))));
  });

/** The baseline start: PM2 alone and the engine alone, everything at once, polled until ready. */
async function baselineStart(box, l) {
  const t = process.hrtime.bigint();
  const names = Array.from({ length: l.containers }, (_, i) => `scale-base-${path.basename(box.dir)}-${i}`.toLowerCase());
  await Promise.all([
    spawnAsync(box, process.execPath, [c.PM2, 'start', 'baseline.config.js']),
    ...names.map((n) =>
      spawnAsync(box, 'docker', [
        'run', '-d', '--name', n, '--label', `dev.orchestrator.workspace=${box.dir}`,
        '--health-cmd', 'true', '--health-interval', CONTAINER.interval, '--stop-timeout', '2', IMAGE, ...CONTAINER.command,
      ]),
    ),
  ]);
  await allReady(box, l.apps.map((a) => Number(a.env.PORT)), names);
  return { ms: Number(process.hrtime.bigint() - t) / 1e6, names };
}

async function baselineStop(box, names) {
  const t = process.hrtime.bigint();
  await Promise.all([spawnAsync(box, process.execPath, [c.PM2, 'delete', 'all']), ...(names.length ? [spawnAsync(box, 'docker', ['rm', '-f', ...names])] : [])]);
  return Number(process.hrtime.bigint() - t) / 1e6;
}

async function bench({ runs, sizes = [10, 30, 100] }) {
  const rows = [];
  const starts = {};
  const rounds = Math.max(1, Math.min(runs, 3));
  for (const size of sizes) {
    const box = c.sandbox(`scale${size}`);
    const l = layout(box, size);
    fs.symlinkSync(path.join(c.ROOT, 'examples', 'workspace', 'node_modules'), path.join(box.dir, 'node_modules'));
    const group = `scale: ${size} services (${l.apps.length} apps, ${l.containers} containers)`;
    const xs = { start: [], baseStart: [], stop: [], baseStop: [], status: [], jlist: [] };
    try {
      process.stderr.write(`bench scale: ${size} services, ${rounds} rounds\n`);
      for (let i = 0; i <= rounds; i++) {
        const warm = i === 0;
        const start = c.time(box, process.execPath, [c.BIN, 'start', '--all']);
        const snap = JSON.parse(c.run(box, process.execPath, [c.BIN, 'status', '--json']).stdout);
        const online = snap.services.filter((s) => s.state === 'online').length;
        if (online !== size) throw new Error(`expected ${size} online services, status says ${online}`);
        const status = c.time(box, process.execPath, [c.BIN, 'status', '--json']);
        const jlist = c.time(box, process.execPath, [c.PM2, 'jlist']);
        const stop = c.time(box, process.execPath, [c.BIN, 'stop', '--all']);
        const base = await baselineStart(box, l);
        const baseStop = await baselineStop(box, base.names);
        if (warm) continue;
        xs.start.push(start);
        xs.status.push(status);
        xs.jlist.push(jlist);
        xs.stop.push(stop);
        xs.baseStart.push(base.ms);
        xs.baseStop.push(baseStop);
      }
    } finally {
      c.teardown(box);
    }
    const row = (name, samples, baseline = false, extra = {}) => ({ group, case: name, unit: 'ms', samples, baseline, ...extra });
    rows.push(
      row('pm2 start + docker run, all at once, until ready', xs.baseStart, true),
      row('orchestrator start --all, until ready', xs.start),
    );
    rows.push({ ...row('pm2 delete all + docker rm -f (no grace)', xs.baseStop, true), group: `${group}, stop` }, { ...row(`orchestrator stop --all (${CONTAINER.grace} grace each)`, xs.stop), group: `${group}, stop` });
    rows.push({ ...row('pm2 jlist', xs.jlist, true), group: `${group}, status` }, { ...row('orchestrator status --json', xs.status, false, { goal: '≤ 0.5x' }), group: `${group}, status` });
    starts[size] = { start: xs.start, stop: xs.stop, status: xs.status, baseStart: xs.baseStart };
  }
  // The slope: what each added service costs, from the smallest to the largest size.
  const lo = Math.min(...sizes);
  const hi = Math.max(...sizes);
  if (hi > lo) {
    const med = (a) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];
    const per = (k) => [(med(starts[hi][k]) - med(starts[lo][k])) / (hi - lo)];
    const group = `scale: cost per added service (${lo} → ${hi})`;
    rows.push(
      { group, case: 'baseline start', unit: 'ms', samples: per('baseStart'), baseline: true },
      { group, case: 'orchestrator start --all', unit: 'ms', samples: per('start') },
      { group, case: 'orchestrator stop --all', unit: 'ms', samples: per('stop') },
      { group, case: 'orchestrator status --json', unit: 'ms', samples: per('status') },
    );
  }
  return rows;
}

module.exports = { bench };
if (require.main === module) require('./run').main(['scale', ...process.argv.slice(2)]);
