'use strict';
// Benchmark group `scale` (issue 18): how the cost grows with the number of services. For each
// size (10, 30 and 100 services by default: 70 % Node apps that listen 300 ms after they start,
// 30 % busybox containers healthy after their first 1 s healthcheck, whose PID 1 ignores
// SIGTERM and so waits out its 2 s grace period) —
//   - `orchestrator start --all` until every service is ready, against the baseline of the same
//     run: `pm2 start` of the same apps plus one `docker run` per container, all at once, polled
//     until every port answers and every container is healthy;
//   - `orchestrator stop --all`, against `pm2 delete all` plus `docker rm -f` of every container
//     at once (no grace period: the floor), and against `pm2 stop all` plus `docker stop -t 2`
//     of every container at once (the same grace period as ours);
//   - `orchestrator status --json`, against `pm2 jlist` (five interleaved pairs a round);
//   - footprint, idle with every service up: the agent's and the container runners' resident
//     memory and CPU, against PM2's daemon;
//   - `orchestrator logs --since 1h` across every service (each with 2 h of lines, one a
//     second), merged in time order, against awk over the same files, against one of the
//     services, and against one service alone in a workspace whose one log holds as many lines
//     (the cost of the merge itself);
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

/** Two hours of lines, one a second, in every service's out.log (the format the apps' own
 * writer uses: an ISO timestamp, then the line). Returns the cut-off of the last hour. */
function writeLogs(box, names) {
  const now = Date.now();
  for (const name of names) {
    const dir = path.join(box.dir, 'apps', 'logs', name);
    fs.mkdirSync(dir, { recursive: true });
    let text = '';
    for (let t = now - 7200000; t < now; t += 1000) text += `${new Date(t).toISOString()} ${name} GET /api/items/42 200 3ms request handled\n`;
    fs.writeFileSync(path.join(dir, 'out.log'), text);
  }
  return new Date(now - 3600000).toISOString();
}

/** Resident memory and CPU of the agent, the container runners and PM2's daemon, idle for 5 s. */
async function footprint(box) {
  const procs = JSON.parse(c.run(box, process.execPath, [c.PM2, 'jlist']).stdout);
  const agent = procs.find((p) => p.name.startsWith('orchestrator-agent-'));
  const runners = procs.filter((p) => p.pm2_env.ORCHESTRATOR_KIND === 'dependency' && p.pid > 0).map((p) => p.pid);
  const daemon = Number(fs.readFileSync(path.join(box.env.PM2_HOME, 'pm2.pid'), 'utf8'));
  const all = [agent.pid, daemon, ...runners];
  const before = all.map((pid) => c.procUsage(pid));
  await c.sleep(5000);
  const after = all.map((pid) => c.procUsage(pid));
  const cpu = (i) => ((after[i].cpuMs - before[i].cpuMs) / 5000) * 100;
  const runnerRss = after.slice(2).map((u) => u.rssMiB).sort((a, b) => a - b);
  return {
    agentRss: after[0].rssMiB,
    daemonRss: after[1].rssMiB,
    agentCpu: cpu(0),
    daemonCpu: cpu(1),
    runnerRss: runnerRss.length ? runnerRss[runnerRss.length >> 1] : 0,
  };
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

/** The baseline stop with the same grace period as ours: `pm2 stop all` and one `docker stop`
 * per container, all at once (then removed, untimed). */
async function baselineGracefulStop(box, names) {
  const t = process.hrtime.bigint();
  const grace = String(parseInt(CONTAINER.grace, 10));
  await Promise.all([spawnAsync(box, process.execPath, [c.PM2, 'stop', 'all']), ...names.map((n) => spawnAsync(box, 'docker', ['stop', '-t', grace, n]))]);
  const ms = Number(process.hrtime.bigint() - t) / 1e6;
  await baselineStop(box, names);
  return ms;
}

/** One service whose one out.log holds as many lines as `services` services' logs: 2 h, each
 * second `services` lines. Returns the box (torn down by the caller) and its 1 h cut-off. */
function oneBigLog(size) {
  const box = c.sandbox(`scale${size}-one`);
  c.workspace(box, { nx: { defaultServices: [] }, apps: [{ name: 'bulk', cwd: 'apps/app', script: 'main.js' }], files: { 'apps/app/main.js': '' } });
  const dir = path.join(box.dir, 'apps', 'logs', 'bulk');
  fs.mkdirSync(dir, { recursive: true });
  const out = fs.openSync(path.join(dir, 'out.log'), 'w');
  const now = Date.now();
  for (let t = now - 7200000; t < now; t += 1000) {
    const at = new Date(t).toISOString();
    let text = '';
    for (let i = 0; i < size; i++) text += `${at} bulk GET /api/items/42 200 3ms request handled\n`;
    fs.writeSync(out, text);
  }
  fs.closeSync(out);
  return { box, cutoff: new Date(now - 3600000).toISOString() };
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
    const xs = { start: [], baseStart: [], stop: [], baseStop: [], baseGraceful: [], status: [], jlist: [], logsAll: [], logsOne: [], logsBulk: [], awk: [] };
    let fp = null;
    const cutoff = writeLogs(box, [...l.apps.map((a) => a.name), ...Array.from({ length: l.containers }, (_, i) => `dep${i}`)]);
    try {
      process.stderr.write(`bench scale: ${size} services, ${rounds} rounds\n`);
      for (let i = 0; i <= rounds; i++) {
        const warm = i === 0;
        const start = c.time(box, process.execPath, [c.BIN, 'start', '--all']);
        const snap = JSON.parse(c.run(box, process.execPath, [c.BIN, 'status', '--json']).stdout);
        const online = snap.services.filter((s) => s.state === 'online').length;
        if (online !== size) throw new Error(`expected ${size} online services, status says ${online}`);
        // Five interleaved pairs: on a host this busy one look of either varies by 3x.
        const status = [];
        const jlist = [];
        for (let k = 0; k < 5; k++) {
          status.push(c.time(box, process.execPath, [c.BIN, 'status', '--json']));
          jlist.push(c.time(box, process.execPath, [c.PM2, 'jlist']));
        }
        if (i === rounds) fp = await footprint(box);
        const stop = c.time(box, process.execPath, [c.BIN, 'stop', '--all']);
        const base = await baselineStart(box, l);
        const baseStop = await baselineStop(box, base.names);
        const again = await baselineStart(box, l);
        const baseGraceful = await baselineGracefulStop(box, again.names);
        if (warm) continue;
        xs.baseGraceful.push(baseGraceful);
        xs.start.push(start);
        xs.status.push(...status);
        xs.jlist.push(...jlist);
        xs.stop.push(stop);
        xs.baseStart.push(base.ms);
        xs.baseStop.push(baseStop);
      }
      // The 1 h window: the same lines from ours and from awk (plus the apps' own few lines).
      // The live files and, after a UTC midnight, the day's rotated ones (the agent renames and
      // then compresses them): awk reads what `logs` reads.
      const awk = `zcat -f apps/logs/*/out*.log* | awk '$1 >= "${cutoff}"'`;
      const count = (cmd) => Number(c.run(box, 'sh', ['-c', `${cmd} | wc -l`]).stdout.trim());
      const ours = count(`${process.execPath} ${c.BIN} logs --all --stream out --since ${cutoff}`);
      const theirs = count(awk);
      if (ours !== theirs) throw new Error(`logs --since 1h printed ${ours} lines, awk ${theirs}`);
      const bulk = oneBigLog(size);
      try {
        const bulkCmd = `${process.execPath} ${c.BIN} logs bulk --stream out --since ${bulk.cutoff}`;
        const printed = Number(c.run(bulk.box, 'sh', ['-c', `${bulkCmd} | wc -l`]).stdout.trim());
        if (Math.abs(printed - theirs) > size * 2) throw new Error(`the one big log printed ${printed} lines, the ${size} services ${theirs}`);
        for (let i = 0; i <= rounds; i++) {
          const all = c.shell(box, `${process.execPath} ${c.BIN} logs --all --stream out --since ${cutoff} > /dev/null`);
          const one = c.shell(box, `${process.execPath} ${c.BIN} logs app0 --stream out --since ${cutoff} > /dev/null`);
          const same = c.shell(bulk.box, `${bulkCmd} > /dev/null`);
          const base = c.shell(box, `${awk} > /dev/null`);
          if (i === 0) continue;
          xs.logsAll.push(all);
          xs.logsOne.push(one);
          xs.logsBulk.push(same);
          xs.awk.push(base);
        }
      } finally {
        c.teardown(bulk.box);
      }
    } finally {
      c.teardown(box);
    }
    const row = (name, samples, baseline = false, extra = {}) => ({ group, case: name, unit: 'ms', samples, baseline, ...extra });
    rows.push(
      row('pm2 start + docker run, all at once, until ready', xs.baseStart, true),
      row('orchestrator start --all, until ready', xs.start),
    );
    rows.push(
      { ...row('pm2 delete all + docker rm -f (no grace)', xs.baseStop, true), group: `${group}, stop` },
      { ...row(`pm2 stop all + docker stop -t ${parseInt(CONTAINER.grace, 10)}, all at once (${CONTAINER.grace} grace each)`, xs.baseGraceful), group: `${group}, stop` },
      { ...row(`orchestrator stop --all (${CONTAINER.grace} grace each)`, xs.stop), group: `${group}, stop` },
    );
    rows.push({ ...row('pm2 jlist', xs.jlist, true), group: `${group}, status` }, { ...row('orchestrator status --json', xs.status, false, { goal: '≤ 0.5x' }), group: `${group}, status` });
    const lg = `${group}, logs 1 h`;
    rows.push(
      { ...row(`zcat -f | awk over the ${size} services' out files`, xs.awk, true), group: lg },
      { ...row('orchestrator logs --since 1h, every service, merged', xs.logsAll), group: lg },
      { ...row('orchestrator logs --since 1h, one service', xs.logsOne), group: lg },
      { ...row(`orchestrator logs --since 1h, one service with as many lines as the ${size}`, xs.logsBulk), group: lg },
    );
    if (fp) {
      const fg = `${group}, footprint idle`;
      rows.push(
        { group: fg, case: "PM2's daemon resident memory", unit: 'MiB', samples: [fp.daemonRss], baseline: true },
        { group: fg, case: 'agent resident memory', unit: 'MiB', samples: [fp.agentRss], goal: '≤ 40 MiB' },
        { group: fg, case: 'a container runner, resident memory (median)', unit: 'MiB', samples: [fp.runnerRss] },
        { group: `${fg} CPU`, case: "PM2's daemon CPU", unit: '%', samples: [fp.daemonCpu], baseline: true },
        { group: `${fg} CPU`, case: 'agent CPU', unit: '%', samples: [fp.agentCpu] },
      );
    }
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
