'use strict';
// Benchmark group `status` (issue 5) and `footprint`: with 10 apps and 10 containers running
// under a private PM2 daemon —
//   - `orchestrator status --json` against `pm2 jlist` (baseline), and `node -e 0` (the floor);
//   - `nx run workspace:status` against `nx run` of a trivial `nx:run-commands` echo target (the
//     Nx floor, baseline) in the same workspace, and against a custom executor that does nothing
//     (Nx runs `nx:run-commands` inside its own process and forks one for every other executor:
//     the floor of any plugin's executor);
//   - the agent's resident memory and CPU while idle with the 20 services, against PM2's daemon.
// Run through `npm run bench` (bench/run.js), or alone: node bench/status.js [--runs N]

const fs = require('fs');
const path = require('path');
const c = require('./common');

const N = 10;

async function bench({ runs }) {
  const box = c.sandbox('status');
  const apps = Array.from({ length: N }, (_, i) => ({ name: `app${i}`, cwd: 'apps/idle', script: 'main.js', exec_mode: 'fork' }));
  let compose = 'services:\n';
  for (let i = 0; i < N; i++) compose += `  dep${i}:\n    image: orchestrator-local/busybox:1\n    command: ["sleep", "3600"]\n    stop_grace_period: 1s\n`;
  c.workspace(box, {
    nx: { defaultServices: [] },
    apps,
    compose,
    files: {
      'apps/idle/main.js': 'setInterval(() => {}, 60000);\n',
      'apps/idle/package.json': '{"name":"idle","version":"1.0.0","private":true}',
      // The Nx side: our status executor beside the Nx floors (c.nxFloors).
      ...c.nxFloors({ status: { executor: '@workspace/orchestrator:status' } }),
    },
  });
  fs.symlinkSync(path.join(c.ROOT, 'examples', 'workspace', 'node_modules'), path.join(box.dir, 'node_modules'));
  try {
    process.stderr.write(`bench status: starting ${N} apps and ${N} containers\n`);
    c.run(box, process.execPath, [c.BIN, 'start', '--all']);
    const snap = JSON.parse(c.run(box, process.execPath, [c.BIN, 'status', '--json']).stdout);
    const online = snap.services.filter((s) => s.state === 'online').length;
    if (online !== 2 * N) throw new Error(`expected ${2 * N} online services, status says ${online}`);
    const cli = await c.measure(
      {
        'orchestrator status --json': () => c.time(box, process.execPath, [c.BIN, 'status', '--json']),
        'pm2 jlist': () => c.time(box, process.execPath, [c.PM2, 'jlist']),
        'node -e 0 (floor)': () => c.time(box, process.execPath, ['-e', '0']),
      },
      runs * 3,
    );
    const nx = await c.measure(
      {
        'nx run workspace:status': () => c.time(box, c.NX, ['run', 'workspace:status']),
        'nx run workspace:echo (nx:run-commands)': () => c.time(box, c.NX, ['run', 'workspace:echo']),
        'nx run workspace:noop (a custom executor that returns at once)': () => c.time(box, c.NX, ['run', 'workspace:noop']),
      },
      runs,
    );
    // Footprint: the agent and PM2's daemon, idle (nothing crashes, no command runs) for 10 s.
    const procs = JSON.parse(c.run(box, process.execPath, [c.PM2, 'jlist']).stdout);
    const agent = procs.find((p) => p.name.startsWith('orchestrator-agent-'));
    const daemon = Number(fs.readFileSync(path.join(box.env.PM2_HOME, 'pm2.pid'), 'utf8'));
    const rss = { agent: [], daemon: [] };
    const cpu = { agent: [], daemon: [] };
    for (let i = 0; i < Math.max(3, runs); i++) {
      const a0 = c.procUsage(agent.pid);
      const d0 = c.procUsage(daemon);
      await c.sleep(10000 / Math.max(3, runs));
      const a1 = c.procUsage(agent.pid);
      const d1 = c.procUsage(daemon);
      const span = 10000 / Math.max(3, runs);
      rss.agent.push(a1.rssMiB);
      rss.daemon.push(d1.rssMiB);
      cpu.agent.push(((a1.cpuMs - a0.cpuMs) / span) * 100);
      cpu.daemon.push(((d1.cpuMs - d0.cpuMs) / span) * 100);
    }
    const row = (group, name, unit, samples, baseline = false) => ({ group, case: name, unit, samples, baseline });
    return [
      row('status (10 apps + 10 containers)', 'orchestrator status --json', 'ms', cli['orchestrator status --json']),
      row('status (10 apps + 10 containers)', 'pm2 jlist', 'ms', cli['pm2 jlist'], true),
      row('status (10 apps + 10 containers)', 'node -e 0 (floor)', 'ms', cli['node -e 0 (floor)']),
      row('status through Nx', 'nx run workspace:status', 'ms', nx['nx run workspace:status']),
      row('status through Nx', 'nx run workspace:echo (nx:run-commands)', 'ms', nx['nx run workspace:echo (nx:run-commands)'], true),
      row('status through Nx', 'nx run workspace:noop (a custom executor that returns at once)', 'ms', nx['nx run workspace:noop (a custom executor that returns at once)']),
      row('footprint, idle, 20 services', 'agent resident memory', 'MiB', rss.agent),
      row('footprint, idle, 20 services', "PM2's daemon resident memory", 'MiB', rss.daemon, true),
      row('footprint CPU, idle, 20 services', 'agent CPU', '%', cpu.agent),
      row('footprint CPU, idle, 20 services', "PM2's daemon CPU", '%', cpu.daemon, true),
    ];
  } finally {
    c.teardown(box);
  }
}

module.exports = { bench };
if (require.main === module) require('./run').main(['status', ...process.argv.slice(2)]);
