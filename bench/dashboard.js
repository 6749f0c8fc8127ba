'use strict';
// Benchmark group `dashboard` (issue 19): the live view's own cost, against PM2's own live view
// (`pm2 monit`) of the same processes in the same run. A workspace of 20 services (14 Node apps,
// 6 busybox containers) runs; each view is open in its own terminal (tmux, 120×40) —
//   - idle: the CPU of each view's process over 30 s;
//   - chatty: one more app writes 200 lines a second for `--minutes` (default 10): each view's
//     CPU over that time, and its resident memory after the first minute and at the end
//     (flat: the log pane is bounded).
// Run through `npm run bench -- dashboard [--minutes N]` (not in the default set: it takes the
// minutes it is given).

const fs = require('fs');
const path = require('path');
const { spawnSync } = require('child_process');
const c = require('./common');

const IMAGE = 'orchestrator-local/busybox:1';
const APP = `const net = require('net');
net.createServer((s) => s.end()).listen(Number(process.env.PORT), '127.0.0.1');
if (process.env.CHATTY) {
  let n = 0;
  setInterval(() => { for (let i = 0; i < 20; i++) console.log('GET /api/items/' + (n++) + ' 200 3ms request handled for a user in the bench'); }, 100);
}
`;

function layout(box) {
  const apps = Array.from({ length: 14 }, (_, i) => ({ name: `app${i}`, cwd: 'apps/app', script: 'main.js', exec_mode: 'fork', env: { PORT: String(21500 + i) } }));
  apps.push({ name: 'chatty', cwd: 'apps/app', script: 'main.js', exec_mode: 'fork', env: { PORT: '21599', CHATTY: '1' } });
  let compose = 'services:\n';
  for (let i = 0; i < 6; i++) compose += `  dep${i}:\n    image: ${IMAGE}\n    command: ["sleep", "3600"]\n    stop_grace_period: 1s\n`;
  const quiet = apps.filter((a) => a.name !== 'chatty').map((a) => a.name);
  c.workspace(box, {
    nx: {
      defaultServices: [...quiet, ...Array.from({ length: 6 }, (_, i) => `dep${i}`)],
      services: Object.fromEntries(apps.map((a) => [a.name, { ports: [Number(a.env.PORT)], dependsOn: [] }])),
    },
    apps,
    compose,
    files: { 'apps/app/main.js': APP, 'apps/app/package.json': '{"name":"app","version":"1.0.0","private":true}' },
  });
}

async function bench({ minutes = 10 }) {
  const box = c.sandbox('dashboard');
  layout(box);
  fs.symlinkSync(path.join(c.ROOT, 'examples', 'workspace', 'node_modules'), path.join(box.dir, 'node_modules'));
  const socket = `orch-bench-${process.pid}`;
  const env = { ...box.env };
  delete env.NO_COLOR; // the view as a user sees it, in colour
  const tmux = (...args) => spawnSync('tmux', ['-L', socket, ...args], { encoding: 'utf8', env });
  // Each view is exec'd by the pane's shell: the pane's pid is the view's.
  const pidIn = (session) => Number(tmux('display-message', '-p', '-t', session, '#{pane_pid}').stdout.trim());
  const cpuOver = async (pids, ms) => {
    const before = pids.map((p) => c.procUsage(p).cpuMs);
    await c.sleep(ms);
    return pids.map((p, i) => ((c.procUsage(p).cpuMs - before[i]) / ms) * 100);
  };
  try {
    process.stderr.write(`bench dashboard: 20 services, ${minutes} min of a chatty log\n`);
    c.run(box, process.execPath, [c.BIN, 'start']);
    tmux('new-session', '-d', '-s', 'ours', '-x', '120', '-y', '40', `cd ${box.dir} && exec ${process.execPath} ${c.BIN} dashboard`);
    tmux('new-session', '-d', '-s', 'pm2', '-x', '120', '-y', '40', `cd ${box.dir} && exec ${process.execPath} ${c.PM2} monit`);
    await c.sleep(10000);
    const ours = pidIn('ours');
    const theirs = pidIn('pm2');
    if (!(ours > 0 && theirs > 0)) throw new Error(`the views did not open: ours ${ours}, pm2 monit ${theirs}`);
    const screen = tmux('capture-pane', '-p', '-t', 'ours').stdout;
    if (!/app0\s+online/.test(screen)) throw new Error(`the dashboard shows no rows:\n${screen}`);
    const [idleOurs, idleTheirs] = await cpuOver([ours, theirs], 30000);

    c.run(box, process.execPath, [c.BIN, 'start', 'chatty']);
    await c.sleep(60000);
    const first = [c.procUsage(ours).rssMiB, c.procUsage(theirs).rssMiB];
    const [busyOurs, busyTheirs] = await cpuOver([ours, theirs], Math.max(1, minutes - 1) * 60000);
    const last = [c.procUsage(ours).rssMiB, c.procUsage(theirs).rssMiB];
    const shown = tmux('capture-pane', '-p', '-t', 'ours').stdout;
    if (!/chatty\s+GET \/api\/items\//.test(shown)) throw new Error(`the log pane does not follow chatty:\n${shown}`);

    const g = 'dashboard: 20 services';
    return [
      { group: `${g}, idle CPU (30 s)`, case: 'pm2 monit', unit: '%', samples: [idleTheirs], baseline: true },
      { group: `${g}, idle CPU (30 s)`, case: 'orchestrator dashboard', unit: '%', samples: [idleOurs], goal: '≤ 2 % of a core' },
      { group: `${g}, CPU with 200 lines/s (${minutes - 1} min)`, case: 'pm2 monit', unit: '%', samples: [busyTheirs], baseline: true },
      { group: `${g}, CPU with 200 lines/s (${minutes - 1} min)`, case: 'orchestrator dashboard', unit: '%', samples: [busyOurs] },
      { group: `${g}, resident memory, 200 lines/s`, case: 'pm2 monit, after 1 min', unit: 'MiB', samples: [first[1]], baseline: true },
      { group: `${g}, resident memory, 200 lines/s`, case: `pm2 monit, after ${minutes} min`, unit: 'MiB', samples: [last[1]] },
      { group: `${g}, resident memory, 200 lines/s`, case: 'orchestrator dashboard, after 1 min', unit: 'MiB', samples: [first[0]] },
      { group: `${g}, resident memory, 200 lines/s`, case: `orchestrator dashboard, after ${minutes} min`, unit: 'MiB', samples: [last[0]], goal: 'flat' },
    ];
  } finally {
    tmux('kill-server');
    c.teardown(box);
  }
}

module.exports = { bench };
if (require.main === module) require('./run').main(['dashboard', ...process.argv.slice(2)]);
