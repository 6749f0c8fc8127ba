'use strict';
// Benchmark group `nx` (issue 18): every target our plugin infers, run through `nx run`, against
// the Nx floor measured in the same run — `nx run workspace:echo` (an `nx:run-commands` echo,
// which Nx runs inside its own process: the baseline) and `nx run workspace:noop` (a local custom
// executor that returns at once: Nx forks a process for every executor that is not
// `nx:run-commands`, so this is the floor of any plugin's executor).
//
// The workspace infers its projects from its own files (nx.json `plugins`), as a user's does:
// three Node apps (one project each) and one container (busybox, healthy at its first 1 s check),
// all started before the rounds. Per round, in this order (each leaves the state the next needs):
// workspace:status, workspace:logs (--tail), workspace:verify, <app>:logs, <app>:why, <app>:restart,
// <app>:stop, <app>:start, <dependency>:restart. `setup`, `test` and `deploy` run the user's own
// npm scripts and Nx build targets, whose cost is theirs, and are not measured here.
// Run through `npm run bench` (bench/run.js), or alone: node bench/nx.js [--runs N]

const fs = require('fs');
const path = require('path');
const c = require('./common');

const APPS = 3;
const APP = `require('http').createServer((q, s) => s.end('ok')).listen(Number(process.env.PORT), '127.0.0.1');
console.log('listening on ' + process.env.PORT);
`;

async function bench({ runs }) {
  const box = c.sandbox('nx');
  const apps = Array.from({ length: APPS }, (_, i) => ({ name: `app${i}`, cwd: `apps/app${i}`, script: 'main.js', exec_mode: 'fork', env: { PORT: String(19700 + i) } }));
  const files = {
    // The plugin infers every project and target; the workspace project.json adds the floors.
    'nx.json': JSON.stringify({ plugins: ['@workspace/orchestrator'], pluginsConfig: { '@workspace/orchestrator': { defaultServices: [], services: Object.fromEntries(apps.map((a) => [a.name, { ports: [Number(a.env.PORT)], dependsOn: [] }])) } } }),
    ...c.nxFloors(),
  };
  for (const a of apps) {
    files[`${a.cwd}/main.js`] = APP;
    files[`${a.cwd}/package.json`] = JSON.stringify({ name: a.name, version: '1.0.0', private: true });
  }
  c.workspace(box, {
    apps,
    compose: 'services:\n  cache:\n    image: orchestrator-local/busybox:1\n    command: ["sleep", "3600"]\n    healthcheck:\n      test: ["CMD", "true"]\n      interval: 1s\n    stop_grace_period: 1s\n',
    files,
  });
  fs.symlinkSync(path.join(c.ROOT, 'examples', 'workspace', 'node_modules'), path.join(box.dir, 'node_modules'));
  const nx = (target, ...args) => () => c.time(box, c.NX, ['run', target, ...args]);
  try {
    process.stderr.write(`bench nx: starting ${APPS} apps and 1 container\n`);
    c.run(box, c.NX, ['run', 'workspace:start-all']);
    const snap = JSON.parse(c.run(box, process.execPath, [c.BIN, 'status', '--json']).stdout);
    const online = snap.services.filter((s) => s.state === 'online').length;
    if (online !== APPS + 1) throw new Error(`expected ${APPS + 1} online services, status says ${online}`);
    const cases = {
      'nx run workspace:echo (nx:run-commands)': nx('workspace:echo'),
      'nx run workspace:noop (a custom executor that returns at once)': nx('workspace:noop'),
      'nx run workspace:status': nx('workspace:status'),
      'nx run workspace:logs --tail=100': nx('workspace:logs', '--tail=100'),
      'nx run workspace:verify': nx('workspace:verify'),
      'nx run app0:logs': nx('app0:logs'),
      'nx run app0:why (healthy: one line)': nx('app0:why'),
      'nx run app0:restart (until it answers)': nx('app0:restart'),
      'nx run app0:stop': nx('app0:stop'),
      'nx run app0:start (until it answers)': nx('app0:start'),
      'nx run cache:restart (a container, until healthy)': nx('cache:restart'),
    };
    const xs = await c.measure(cases, runs);
    const group = 'nx: every inferred target (3 apps + 1 container)';
    return Object.entries(xs).map(([name, samples], i) => ({ group, case: name, unit: 'ms', samples, baseline: i === 0 }));
  } finally {
    c.teardown(box);
  }
}

module.exports = { bench };
if (require.main === module) require('./run').main(['nx', ...process.argv.slice(2)]);
