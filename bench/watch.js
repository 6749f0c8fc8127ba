'use strict';
// Benchmark group `watch` (issue 20): the development loop, edit → new code serving.
//   - A 2-service chain (web depends on api, both 2-worker cluster apps, both using a shared
//     library). Each round writes a new version into the library. The clock runs from the save
//     to web's first response from the new code. Three ways, each in its own copy of the tree:
//       - `orchestrator watch`: the build through Nx, then api and web reloaded in dependency
//         order, each ready before the next;
//       - PM2's own `watch` on the sources (no build step: the floor of restart-on-change);
//       - by hand: `nx run-many -t build` and then `pm2 reload` of both.
//   - The requests that failed during those reloads, under a steady 200 requests a second
//     (100 to each service, fresh connections, client timeout 3 s): ours against PM2's watch.
//   - The watcher's idle cost on the example workspace: CPU over 30 s, and its resident memory.
// Run through `npm run bench` (bench/run.js), or alone: node bench/watch.js [--runs N]

const fs = require('fs');
const path = require('path');
const { spawn } = require('child_process');
const c = require('./common');
const { load } = require('./load');

// An app answers with the shared library's version; SIGINT closes its server and exits.
const MAIN = `const http = require('http');
const version = require(process.env.LIB);
const server = http.createServer((req, res) => res.end(version)).listen(Number(process.env.PORT), '127.0.0.1');
process.on('SIGINT', () => server.close(() => process.exit(0)));
`;
// The build: the app's sources and the library into its dist/.
const BUILD = `const fs = require('fs');
const path = require('path');
const project = process.argv[2];
const dist = path.join('apps', project, 'dist');
fs.mkdirSync(dist, { recursive: true });
fs.copyFileSync(path.join('apps', project, 'src', 'main.js'), path.join(dist, 'main.js'));
fs.copyFileSync(path.join('libs', 'shared', 'src', 'version.js'), path.join(dist, 'version.js'));
`;

const LAYOUTS = {
  // name → ports and how the apps run
  ours: { api: 18601, web: 18602 },
  pm2watch: { api: 18611, web: 18612 },
  manual: { api: 18621, web: 18622 },
};

function write(dir, files) {
  for (const [name, text] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(dir, name)), { recursive: true });
    fs.writeFileSync(path.join(dir, name), text);
  }
}

/** One copy of the tree: the library, the two apps, their Nx projects, the build. */
function tree(dir, kind) {
  const ports = LAYOUTS[kind];
  const project = (name) =>
    JSON.stringify({
      name,
      projectType: 'application',
      implicitDependencies: ['shared'],
      targets: { build: { executor: 'nx:run-commands', options: { command: `node tools/build.js ${name}` }, outputs: ['{projectRoot}/dist'] } },
    });
  write(dir, {
    'package.json': JSON.stringify({ name: `orch-bench-watch-${kind}-${process.pid}`, private: true }),
    'nx.json': JSON.stringify({ useDaemonProcess: false, pluginsConfig: { '@workspace/orchestrator': { defaultServices: [], services: { web: { dependsOn: ['api'] } } } } }),
    '.gitignore': 'dist/\nnode_modules\n',
    'config/env/development.env': '',
    'tools/build.js': BUILD,
    'libs/shared/project.json': JSON.stringify({ name: 'shared', projectType: 'library' }),
    'libs/shared/src/version.js': "module.exports = 'v0';\n",
    'apps/api/project.json': project('api'),
    'apps/web/project.json': project('web'),
    'apps/api/src/main.js': MAIN,
    'apps/web/src/main.js': MAIN,
  });
  fs.symlinkSync(path.join(c.ROOT, 'examples', 'workspace', 'node_modules'), path.join(dir, 'node_modules'));
  const fromSource = kind === 'pm2watch';
  const app = (name) => ({
    name: kind === 'ours' ? name : `${kind}-${name}`,
    cwd: path.join(dir, 'apps', name),
    script: fromSource ? 'src/main.js' : 'dist/main.js',
    exec_mode: 'cluster',
    instances: 2,
    kill_timeout: 5000,
    env: { PORT: String(ports[name]), LIB: fromSource ? path.join(dir, 'libs/shared/src/version.js') : './version.js' },
    // PM2's watch: the app's sources and the library, restarted on change.
    ...(fromSource ? { watch: [path.join(dir, 'apps', name, 'src'), path.join(dir, 'libs/shared/src')] } : {}),
  });
  write(dir, { 'ecosystem.config.js': `module.exports = { apps: ${JSON.stringify([app('api'), app('web')])} };\n` });
  return ports;
}

/** Polls web (and nothing else) until it answers `version`; resolves the time it did. */
async function until(port, version, timeoutMs = 120000) {
  const http = require('http');
  const end = Date.now() + timeoutMs;
  for (;;) {
    const body = await new Promise((resolve) => {
      const req = http.get({ host: '127.0.0.1', port, path: '/', agent: false, timeout: 1000 }, (res) => {
        let b = '';
        res.on('data', (d) => (b += d));
        res.on('end', () => resolve(b));
        res.on('error', () => resolve(''));
      });
      req.on('timeout', () => req.destroy());
      req.on('error', () => resolve(''));
    });
    if (body === version) return process.hrtime.bigint();
    if (Date.now() > end) throw new Error(`port ${port} never served ${version} (last: ${JSON.stringify(body)})`);
    await c.sleep(10);
  }
}

async function bench({ runs }) {
  const box = c.sandbox('watch');
  const dirs = Object.fromEntries(Object.keys(LAYOUTS).map((k) => [k, path.join(box.dir, k)]));
  const ports = Object.fromEntries(Object.keys(LAYOUTS).map((k) => [k, tree(dirs[k], k)]));
  const sub = (kind) => ({ dir: dirs[kind], env: box.env });
  let watcher;
  const lines = [];
  const failures = { ours: { sent: 0, failed: 0, hung: 0 }, pm2watch: { sent: 0, failed: 0, hung: 0 } };
  let version = 0;
  try {
    process.stderr.write(`bench watch: a 2-service chain, ${runs} rounds\n`);
    for (const kind of ['ours', 'manual']) {
      c.run(sub(kind), c.NX, ['run-many', '-t', 'build', '--projects=api,web']);
    }
    c.run(sub('ours'), process.execPath, [c.BIN, 'start', '--all']);
    c.run(sub('pm2watch'), process.execPath, [c.PM2, 'start', 'ecosystem.config.js']);
    c.run(sub('manual'), process.execPath, [c.PM2, 'start', 'ecosystem.config.js']);
    watcher = spawn(process.execPath, [c.BIN, 'watch'], { cwd: dirs.ours, env: box.env });
    watcher.stdout.on('data', (d) => lines.push(...String(d).split('\n').filter(Boolean)));
    watcher.stderr.on('data', (d) => lines.push(...String(d).split('\n').filter(Boolean)));
    for (let i = 0; i < 600 && !lines.some((l) => l.startsWith('watch: watching')); i++) await c.sleep(100);
    if (!lines.some((l) => l.startsWith('watch: watching'))) throw new Error(`the watcher did not begin:\n${lines.join('\n')}`);
    for (const kind of Object.keys(LAYOUTS)) await until(ports[kind].web, 'v0');

    // One round of a case: a new version saved into the library; the time until web serves it.
    const edit = (kind) => {
      const v = `v${++version}`;
      fs.writeFileSync(path.join(dirs[kind], 'libs/shared/src/version.js'), `module.exports = '${v}';\n`);
      return { v, t0: process.hrtime.bigint() };
    };
    const underLoad = async (kind, fn) => {
      if (!failures[kind]) return fn();
      const loads = ['api', 'web'].map((s) => load({ port: ports[kind][s], perSecond: 100 }));
      try {
        return await fn();
      } finally {
        // The reload's tail (the last old worker's drain) is inside the window too.
        await c.sleep(1500);
        for (const l of loads) {
          const r = await l.stop();
          failures[kind].sent += r.sent;
          failures[kind].failed += r.failed;
          failures[kind].hung += r.hung;
        }
      }
    };
    const cases = {
      'orchestrator watch (build through Nx, reload in order, gated on readiness)': () =>
        underLoad('ours', async () => {
          const { v, t0 } = edit('ours');
          const t1 = await until(ports.ours.web, v);
          return Number(t1 - t0) / 1e6;
        }),
      "PM2's watch (restart on change, no build)": () =>
        underLoad('pm2watch', async () => {
          const { v, t0 } = edit('pm2watch');
          const t1 = await until(ports.pm2watch.web, v);
          return Number(t1 - t0) / 1e6;
        }),
      'by hand: nx run-many -t build, then pm2 reload': async () => {
        const { v, t0 } = edit('manual');
        c.run(sub('manual'), c.NX, ['run-many', '-t', 'build', '--projects=api,web']);
        // In dependency order, as a careful user would (PM2 reloads one name a call).
        c.run(sub('manual'), process.execPath, [c.PM2, 'reload', 'manual-api']);
        c.run(sub('manual'), process.execPath, [c.PM2, 'reload', 'manual-web']);
        const t1 = await until(ports.manual.web, v);
        return Number(t1 - t0) / 1e6;
      },
    };
    const xs = await c.measure(cases, runs);
    // Let the last cycle finish before the idle reading.
    await c.sleep(3000);
    const cycles = lines.filter((l) => / · \d+\.\d s$/.test(l));
    if (!cycles.length || cycles.some((l) => /FAILED/.test(l))) throw new Error(`the watch cycles:\n${lines.join('\n')}`);
    process.stderr.write(`bench watch: the watcher's last cycles:\n${lines.slice(-12).join('\n')}\n`);

    // Idle: the watcher on the example workspace (nothing needs to run for it to watch).
    const example = spawn(process.execPath, [c.BIN, 'watch'], { cwd: path.join(c.ROOT, 'examples', 'workspace'), env: box.env });
    let said = '';
    example.stdout.on('data', (d) => (said += d));
    for (let i = 0; i < 600 && !/watch: watching/.test(said); i++) await c.sleep(100);
    await c.sleep(2000);
    const before = c.procUsage(example.pid).cpuMs;
    await c.sleep(30000);
    const after = c.procUsage(example.pid);
    example.kill('SIGINT');
    const dirsWatched = (/\((\d+) directories\)/.exec(said) || [])[1];

    const g = 'watch: a shared library edit until web (api → web, 2 workers each) serves it';
    const fg = 'watch: requests during those reloads, 200/s';
    const ig = `watch: idle on the example workspace (${dirsWatched || '?'} directories)`;
    return [
      { group: g, case: 'by hand: nx run-many -t build, then pm2 reload', unit: 'ms', samples: xs['by hand: nx run-many -t build, then pm2 reload'], baseline: true },
      { group: g, case: "PM2's watch (restart on change, no build)", unit: 'ms', samples: xs["PM2's watch (restart on change, no build)"] },
      { group: g, case: 'orchestrator watch (build through Nx, reload in order, gated on readiness)', unit: 'ms', samples: xs['orchestrator watch (build through Nx, reload in order, gated on readiness)'] },
      { group: fg, case: `PM2's watch: failed + hung of ${failures.pm2watch.sent}`, unit: 'requests', samples: [failures.pm2watch.failed + failures.pm2watch.hung], baseline: true },
      { group: fg, case: `orchestrator watch: failed + hung of ${failures.ours.sent}`, unit: 'requests', samples: [failures.ours.failed + failures.ours.hung], goal: '0' },
      { group: ig, case: 'CPU over 30 s', unit: '%', samples: [((after.cpuMs - before) / 30000) * 100], goal: '~0' },
      { group: ig, case: 'resident memory (Node and the addon)', unit: 'MiB', samples: [after.rssMiB] },
    ];
  } finally {
    if (watcher && watcher.exitCode === null) watcher.kill('SIGINT');
    for (const kind of ['pm2watch', 'manual']) c.run(sub(kind), process.execPath, [c.PM2, 'delete', `${kind}-api`, `${kind}-web`], { allowFail: true });
    c.run(sub('ours'), process.execPath, [c.BIN, 'stop', '--all'], { allowFail: true });
    c.teardown(box);
  }
}

module.exports = { bench };
if (require.main === module) require('./run').main(['watch', ...process.argv.slice(2)]);
