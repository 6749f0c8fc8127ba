'use strict';
// `watch`, end to end (issue 20): a temporary Nx workspace (real `nx`, its project graph and its
// `build` targets), real PM2 (private PM2_HOME) and real file edits. Each test edits files and
// reads what the watcher printed (one line per cycle), what the apps serve and their PIDs.

const test = require('node:test');
const assert = require('node:assert');
const fs = require('fs');
const path = require('path');
const { spawn } = require('child_process');
const h = require('./helpers');
const contract = require('./contract');

const ws = path.join(h.RUN_DIR, 'watch');
const PORTS = { api: 18411, web: 18412, solo: 18413 };

function write(rel, text) {
  fs.mkdirSync(path.dirname(path.join(ws, rel)), { recursive: true });
  fs.writeFileSync(path.join(ws, rel), text);
}

// The build of an app: its src/*.js and the shared library's files checked (`node --check`:
// a syntax error fails the build) and copied into its dist/, which PM2 runs. A file named SLOW
// in its src/ makes the build take 4 s (for an edit in the middle of a cycle); one named
// SCRIBBLE makes it write into src/ itself.
const BUILD = `const fs = require('fs');
const path = require('path');
const { execFileSync } = require('child_process');
const project = process.argv[2];
const dist = path.join('apps', project, 'dist');
fs.mkdirSync(dist, { recursive: true });
const sources = [path.join('apps', project, 'src'), ...process.argv.slice(3)];
for (const dir of sources) {
  for (const f of fs.readdirSync(dir).filter((f) => f.endsWith('.js'))) {
    try {
      execFileSync(process.execPath, ['--check', path.join(dir, f)], { stdio: 'inherit' });
    } catch (_) {
      process.exit(1); // node --check printed the error
    }
    fs.copyFileSync(path.join(dir, f), path.join(dist, f));
  }
}
if (fs.existsSync(path.join('apps', project, 'src', 'SLOW'))) execFileSync('sleep', ['4']);
// A build that writes into its own sources (an output nobody declared).
if (fs.existsSync(path.join('apps', project, 'src', 'SCRIBBLE'))) fs.writeFileSync(path.join('apps', project, 'src', 'scribble.txt'), String(Date.now()));
`;
// An app: answers its own value and the shared library's, as of when it started. It writes
// when it starts and when it listens (after DELAY ms) to one file, for the order of a reload.
const MAIN = `const http = require('http');
const fs = require('fs');
const own = require('./own.js');
let shared = 'none';
try { shared = require('./version.js'); } catch (_) {}
const say = (ev) => fs.appendFileSync(process.env.EVENTS, JSON.stringify({ app: process.env.APP, ev, t: Date.now() }) + '\\n');
say('start');
setTimeout(() => {
  http.createServer((req, res) => res.end(JSON.stringify({ own, shared, pid: process.pid })))
    .listen(Number(process.env.PORT), '127.0.0.1', () => say('listen'));
}, Number(process.env.DELAY || 0));
`;
const EVENTS = path.join(ws, 'events.jsonl');
const happened = () => fs.readFileSync(EVENTS, 'utf8').trim().split('\n').map((l) => JSON.parse(l));

function project(name, deps) {
  return JSON.stringify({
    name,
    projectType: 'application',
    implicitDependencies: deps,
    targets: {
      build: {
        executor: 'nx:run-commands',
        options: { command: `node tools/build.js ${name} ${deps.map((d) => `libs/${d}/src`).join(' ')}`},
        outputs: ['{projectRoot}/dist'],
        cache: false,
      },
    },
  });
}

write('package.json', JSON.stringify({ name: `orch-test-watch-${process.pid}`, private: true }));
// web uses api (it waits on it): a reload of both goes api first, web once api is ready.
write('nx.json', JSON.stringify({ useDaemonProcess: false, pluginsConfig: { '@workspace/orchestrator': { services: { web: { dependsOn: ['api'] } } } } }));
write('.gitignore', 'dist/\n*.tmp\nnode_modules\n');
write('.nxignore', 'apps/api/generated/\n');
write('config/env/development.env', '');
write('tools/build.js', BUILD);
write('libs/shared/project.json', JSON.stringify({ name: 'shared', projectType: 'library' }));
write('libs/shared/src/version.js', "module.exports = 'shared-1';\n");
for (const [name, deps] of [['api', ['shared']], ['web', ['shared']], ['solo', []]]) {
  write(`apps/${name}/project.json`, project(name, deps));
  write(`apps/${name}/src/main.js`, MAIN);
  write(`apps/${name}/src/own.js`, `module.exports = '${name}-1';\n`);
}
write(
  'ecosystem.config.js',
  `module.exports = { apps: [
  { name: 'api', cwd: 'apps/api', script: 'dist/main.js', exec_mode: 'cluster', instances: 2, env: { PORT: '${PORTS.api}', APP: 'api', DELAY: '800', EVENTS: '${EVENTS}' } },
  { name: 'web', cwd: 'apps/web', script: 'dist/main.js', env: { PORT: '${PORTS.web}', APP: 'web', EVENTS: '${EVENTS}' } },
  // PM2's watch keys: our watcher honours them (with a build and readiness); PM2 never watches.
  { name: 'solo', cwd: 'apps/solo', script: 'dist/main.js', env: { PORT: '${PORTS.solo}', APP: 'solo', EVENTS: '${EVENTS}' }, watch: true, ignore_watch: ['*.md', 'notes'], watch_delay: 600 },
] };\n`,
);
fs.symlinkSync(path.join(h.EXAMPLE, 'node_modules'), path.join(ws, 'node_modules'));

async function serving(name) {
  const r = await h.get(`http://127.0.0.1:${PORTS[name]}/`);
  return JSON.parse(r.body);
}

let w;
const lines = () => w.lines;
const cycles = () => w.cycles();
const nextCycle = (after, what) => w.nextCycle(after, what);
async function pids() {
  const out = {};
  for (const p of await h.list()) (out[p.name] ||= []).push(p.pid);
  return out;
}

test.before(async () => {
  // The first build, as a user's start would need it.
  for (const app of ['api', 'web', 'solo']) {
    const r = await h.nx([`${app}:build`], ws);
    assert.strictEqual(r.code, 0, r.out);
  }
  const s = h.cli(['start', '--all'], ws);
  assert.strictEqual(s.code, 0, s.out);
  w = await h.watchProcess(ws);
});

test.after(async () => {
  if (w) await w.stop();
  h.cli(['stop', '--all'], ws);
  await h.killPm2();
});

test('the watcher says what it watches; PM2 never watches, even for an entry with watch: true', async () => {
  const first = lines().find((l) => l.startsWith('watch: watching'));
  assert.match(first, /api, web, solo/);
  const procs = await h.call('list');
  const solo = procs.find((p) => p.name === 'solo');
  assert.strictEqual(solo.pm2_env.watch, false, 'PM2 would restart it on change itself, without a build or readiness');
  assert.strictEqual(solo.pm2_env.ignore_watch, undefined);
});

test('one app: its file changes, its build runs through Nx, it alone reloads and serves the new code', async () => {
  const before = await pids();
  const n = cycles().length;
  write('apps/web/src/own.js', "module.exports = 'web-2';\n");
  const line = await nextCycle(n, 'a cycle after the edit');
  assert.match(line, /^watch: 1 file changed \(apps\/web\/src\/own\.js\) · built web \(\d+\.\d s\) · reloaded web · \d+\.\d s$/);
  assert.strictEqual((await serving('web')).own, 'web-2');
  const after = await pids();
  assert.deepStrictEqual(after.api, before.api, 'api was not touched');
  assert.deepStrictEqual(after.solo, before.solo, 'solo was not touched');
  const events = fs.readFileSync(path.join(ws, 'apps', 'logs', 'web', 'events.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  for (const e of events) contract.check('event', e, 'an event of web');
  const last = events.filter((e) => e.event === 'watch_reloaded').pop();
  assert.ok(last, 'a watch_reloaded event in web/events.jsonl');
  assert.deepStrictEqual(last.changed, ['apps/web/src/own.js']);
});

test('a shared library: exactly the two apps that use it rebuild and reload, api ready before web goes', async () => {
  const before = await pids();
  const n = cycles().length;
  const since = Date.now();
  write('libs/shared/src/version.js', "module.exports = 'shared-2';\n");
  const line = await nextCycle(n, 'a cycle after the library edit');
  assert.match(line, /built api, web .* reloaded api, web/);
  assert.strictEqual((await serving('api')).shared, 'shared-2');
  assert.strictEqual((await serving('web')).shared, 'shared-2');
  const after = await pids();
  assert.deepStrictEqual(after.solo, before.solo, 'solo does not use the library');
  assert.notDeepStrictEqual(after.api, before.api, 'api reloaded its workers');
  const seen = happened().filter((e) => e.t >= since);
  const apiListens = seen.filter((e) => e.app === 'api' && e.ev === 'listen').map((e) => e.t);
  const webStart = seen.find((e) => e.app === 'web' && e.ev === 'start');
  assert.strictEqual(apiListens.length, 2, `both api workers were replaced: ${JSON.stringify(seen)}`);
  assert.ok(webStart && webStart.t >= Math.max(...apiListens), `web started after api was ready: ${JSON.stringify(seen)}`);
});

test('a file .gitignore or .nxignore names causes no cycle, nor does a file ignore_watch names', async () => {
  const before = await pids();
  const n = cycles().length;
  write('apps/api/src/scratch.tmp', 'x');
  write('apps/api/generated/types.js', 'module.exports = {};\n');
  write('apps/solo/README.md', '# notes\n');
  write('apps/solo/notes/today.txt', 'x');
  await new Promise((r) => setTimeout(r, 2500));
  assert.strictEqual(cycles().length, n, cycles().slice(n).join('\n'));
  assert.deepStrictEqual(await pids(), before);
});

test('watch: true with watch_delay: the entry is watched by ours, with its own debounce', async () => {
  const n = cycles().length;
  const t = Date.now();
  write('apps/solo/src/own.js', "module.exports = 'solo-2';\n");
  const line = await nextCycle(n, 'a cycle for solo');
  assert.match(line, /built solo .* reloaded solo/);
  assert.ok(Date.now() - t >= 600, 'not before its watch_delay of quiet');
  assert.strictEqual((await serving('solo')).own, 'solo-2');
});

test('a file written into a new directory at once (before its watch is in place) is seen', async () => {
  const n = cycles().length;
  write('apps/solo/src/deep/er/mod.js', "module.exports = 'new';\n");
  const line = await nextCycle(n, 'a cycle for the new directory');
  assert.match(line, /apps\/solo\/src\/deep\/er\/mod\.js/);
  assert.match(line, /reloaded solo/);
});

test('a build that fails keeps the running version serving; the fix reloads', async () => {
  const before = await pids();
  const n = cycles().length;
  write('apps/api/src/own.js', "module.exports = 'api-broken' +;\n");
  const line = await nextCycle(n, 'a cycle with a failed build');
  assert.match(line, /build of api FAILED/);
  assert.match(line, /the running version keeps serving/);
  assert.ok(lines().some((l) => /SyntaxError/.test(l)), `the build error is shown:\n${lines().slice(-30).join('\n')}`);
  assert.strictEqual((await serving('api')).own, 'api-1');
  assert.deepStrictEqual((await pids()).api, before.api);
  const failed = fs.readFileSync(path.join(ws, 'apps', 'logs', 'api', 'events.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l)).pop();
  contract.check('event', failed, 'the build failure event');
  assert.strictEqual(failed.event, 'watch_build_failed');
  assert.match(failed.error, /SyntaxError/);
  write('apps/api/src/own.js', "module.exports = 'api-3';\n");
  const fixed = await nextCycle(n + 1, 'a cycle after the fix');
  assert.match(fixed, /built api .* reloaded api/);
  assert.strictEqual((await serving('api')).own, 'api-3');
});

test('new code that crashes at start: the reload fails and says why; its next source change reloads it', async () => {
  const n = cycles().length;
  write('apps/solo/src/own.js', "throw new Error('boom at start');\n");
  const line = await nextCycle(n, 'a cycle whose reload fails');
  assert.match(line, /built solo .* solo FAILED: .*exited during start/, line);
  const events = fs.readFileSync(path.join(ws, 'apps', 'logs', 'solo', 'events.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  const failed = events.filter((e) => e.event === 'watch_reload_failed').pop();
  assert.ok(failed, 'a watch_reload_failed event');
  contract.check('event', failed, 'the reload failure event');
  write('apps/solo/src/own.js', "module.exports = 'solo-3';\n");
  const fixed = await nextCycle(n + 1, 'a cycle after the fix');
  assert.match(fixed, /reloaded solo/, fixed);
  await h.until('solo serves the fix', async () => (await serving('solo').catch(() => ({}))).own === 'solo-3', 30000);
});

test('an edit in the middle of a cycle starts the cycle again with both edits', async () => {
  write('apps/web/src/SLOW', '');
  const n = cycles().length;
  write('apps/web/src/own.js', "module.exports = 'web-3';\n");
  // The build runs (4 s) when the second edit lands.
  await new Promise((r) => setTimeout(r, 1800));
  write('apps/web/src/own.js', "module.exports = 'web-4';\n");
  const line = await nextCycle(n, 'the restarted cycle');
  assert.match(line, /restarted 1 time by newer changes/);
  assert.match(line, /reloaded web/);
  assert.strictEqual(cycles().length, n + 1, 'one cycle, not two');
  assert.strictEqual((await serving('web')).own, 'web-4');
  fs.rmSync(path.join(ws, 'apps/web/src/SLOW'));
});

test('a build that writes into its own sources is stopped a few times at most, then finishes', async () => {
  const n = cycles().length;
  write('apps/web/src/SCRIBBLE', '');
  write('apps/web/src/own.js', "module.exports = 'web-5';\n");
  const line = await nextCycle(n, 'a cycle that ends in spite of the build writing into its sources');
  assert.match(line, /restarted 3 times by newer changes · built web .* reloaded web/, line);
  assert.ok(lines().some((l) => /files kept changing while the build ran \(3 restarts\): letting this build finish/.test(l)));
  assert.strictEqual((await serving('web')).own, 'web-5');
  fs.rmSync(path.join(ws, 'apps/web/src/SCRIBBLE'));
});

test('SIGINT ends the watch; the services keep running', async () => {
  w.child.kill('SIGINT');
  await h.until('the watcher ends', () => w.child.exitCode !== null, 20000, () => lines().slice(-5).join('\n'));
  assert.strictEqual(w.child.exitCode, 0);
  assert.ok(lines().some((l) => /stopped watching; the services keep running/.test(l)));
  assert.strictEqual((await serving('api')).own, 'api-3');
});

test('start --watch starts, then watches, until SIGINT', async () => {
  const child = spawn(process.execPath, [h.BIN, 'start', 'solo', '--watch'], { cwd: ws, env: h.childEnv() });
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (out += d));
  await h.until('the start, then the watch', () => /solo .*already online[\s\S]*watch: watching/.test(out), 60000, () => out);
  child.kill('SIGINT');
  await h.until('it ends', () => child.exitCode !== null, 20000, () => out);
  assert.strictEqual(child.exitCode, 0, out);
});
