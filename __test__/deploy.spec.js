'use strict';
// Issue 7 (deploy): `nx run api:deploy --profile staging` runs the app's build through the Nx
// graph, verify for the profile, then a zero-downtime reload under the profile and a wait until
// healthy. Under a steady request rate no request fails; a failing health check is named and
// exits non-zero; a verify problem stops the deploy before anything changes.

const test = require('node:test');
const assert = require('node:assert');
const fs = require('fs');
const path = require('path');
const h = require('./helpers');

const PORT = 18094;
const ws = path.join(h.RUN_DIR, 'deploy');
const w = (f, text) => {
  fs.mkdirSync(path.dirname(path.join(ws, f)), { recursive: true });
  fs.writeFileSync(path.join(ws, f), typeof text === 'string' ? text : JSON.stringify(text, null, 2));
};
w('package.json', { name: `orch-test-deploy-${process.pid}`, private: true });
w('nx.json', {
  plugins: ['@workspace/orchestrator'],
  pluginsConfig: {
    '@workspace/orchestrator': {
      profiles: ['development', 'staging'],
      defaultServices: ['api'],
      services: { api: { ports: [PORT], health: { http: `http://127.0.0.1:${PORT}/health` }, readyTimeoutSeconds: 6 } },
    },
  },
});
w('ecosystem.config.js', "module.exports = { apps: [{ name: 'api', cwd: 'apps/api', script: 'main.js', exec_mode: 'cluster', instances: 2, env_staging: { GREETING: 'staging' } }] };\n");
w('config/env/development.env', `PORT=${PORT}\nHEALTH=ok\n`);
w('config/env/staging.env', `PORT=${PORT}\nHEALTH=ok\n`);
// A project.json makes it an Nx project; Nx still exposes the package.json scripts listed below.
w('apps/api/project.json', { name: 'api' });
w('apps/api/package.json', { name: 'api', version: '1.0.0', private: true, scripts: { build: 'node build.js' }, nx: { includedScripts: ['build'] } });
// The build writes the version the server reports.
w('apps/api/build.js', "require('fs').mkdirSync(__dirname + '/dist', { recursive: true }); require('fs').writeFileSync(__dirname + '/dist/version.txt', String(Number(process.env.BUILD_VERSION || 1)));\n");
w(
  'apps/api/main.js',
  `const http = require('http');
const version = require('fs').readFileSync(__dirname + '/dist/version.txt', 'utf8');
const server = http.createServer((req, res) => {
  if (req.url === '/health') { res.statusCode = process.env.HEALTH === 'bad' ? 500 : 200; return res.end(process.env.HEALTH); }
  res.end(JSON.stringify({ version, pid: process.pid, greeting: process.env.GREETING || '' }));
}).listen(Number(process.env.PORT), '127.0.0.1');
// A zero-downtime app finishes what it serves when PM2 retires it, and stays a moment longer so a
// connection the cluster master handed over just before it saw the close is not lost (as the
// example's server does).
process.on('SIGINT', () => server.close(() => setTimeout(() => process.exit(0), 1000)));
`,
);
fs.symlinkSync(path.join(h.EXAMPLE, 'node_modules'), path.join(ws, 'node_modules'));

const nx = (args, env = {}) => {
  const { spawn } = require('child_process');
  return new Promise((resolve) => {
    const child = spawn(path.join(h.EXAMPLE, 'node_modules', '.bin', 'nx'), ['run', ...args], { cwd: ws, env: { ...h.childEnv(), ...env } });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    child.on('close', (code) => resolve({ code, out }));
  });
};
const pids = async () => (await h.services(await h.list())).filter((p) => p.name === 'api').map((p) => p.pid).sort();
const version = async () => JSON.parse((await h.get(`http://127.0.0.1:${PORT}/`)).body);

test.after(async () => {
  await h.killPm2();
});

test('deploy from stopped: the build runs first (Nx graph), verify passes, the app starts under the profile and is healthy', async () => {
  const r = await nx(['api:deploy', '--profile', 'staging'], { BUILD_VERSION: '1' });
  assert.strictEqual(r.code, 0, r.out);
  assert.match(r.out, /nx run api:build/, 'the build ran through the graph');
  assert.ok(r.out.indexOf('api:build') < r.out.indexOf('api:deploy', r.out.indexOf('api:build')), 'build before deploy');
  assert.match(r.out, /✔ api +started/);
  const v = await version();
  assert.deepStrictEqual([v.version, v.greeting], ['1', 'staging']);
  assert.strictEqual((await pids()).length, 2);
});

test('deploy under load: a new build goes live with zero failed requests (cluster reload)', async () => {
  const before = await pids();
  let sent = 0;
  let failed = 0;
  const errors = [];
  const seen = new Set();
  let running = true;
  const load = (async () => {
    while (running) {
      sent++;
      try {
        const r = await h.get(`http://127.0.0.1:${PORT}/`, 2000);
        if (r.status !== 200) {
          failed++;
          errors.push(`status ${r.status}`);
        } else seen.add(JSON.parse(r.body).version);
      } catch (e) {
        failed++;
        errors.push(e.message);
      }
      await new Promise((res) => setTimeout(res, 10));
    }
  })();
  const r = await nx(['api:deploy', '--configuration=staging'], { BUILD_VERSION: '2' });
  running = false;
  await load;
  assert.strictEqual(r.code, 0, r.out);
  assert.match(r.out, /✔ api +reloaded \(zero downtime\)/);
  assert.ok(sent > 50, `requests sent during the deploy: ${sent}`);
  assert.strictEqual(failed, 0, `${failed} of ${sent} requests failed: ${errors.slice(0, 5).join('; ')}`);
  assert.deepStrictEqual([...seen].sort(), ['1', '2'], 'served the old build, then the new one');
  assert.strictEqual((await version()).version, '2');
  const after = await pids();
  assert.strictEqual(after.length, 2);
  assert.ok(after.every((p) => !before.includes(p)), 'every worker replaced');
  process.stdout.write(`# deploy under load: ${sent} requests, ${failed} failed\n`);
});

test('a failing health check is named and the deploy exits non-zero', async () => {
  h.edit(path.join(ws, 'config/env/staging.env'), (t) => t.replace('HEALTH=ok', 'HEALTH=bad'));
  try {
    const r = await nx(['api:deploy', '--profile', 'staging'], { BUILD_VERSION: '3' });
    assert.notStrictEqual(r.code, 0, r.out);
    assert.match(r.out, /not ready within 6 s: GET http:\/\/127\.0\.0\.1:18094\/health answered 500/);
  } finally {
    h.edit(path.join(ws, 'config/env/staging.env'), (t) => t.replace('HEALTH=bad', 'HEALTH=ok'));
  }
});

test('a verify problem stops the deploy before anything changes', async () => {
  assert.strictEqual((await nx(['api:deploy', '--profile', 'staging'])).code, 0);
  const before = await pids();
  const eco = path.join(ws, 'ecosystem.config.js');
  const text = fs.readFileSync(eco, 'utf8');
  // An ecosystem problem (PM2's own options such as autorestart are accepted, with a warning).
  fs.writeFileSync(eco, text.replace("instances: 2,", "instances: 2, env_production: 'not an object',"));
  try {
    const r = await nx(['api:deploy', '--profile', 'staging']);
    assert.strictEqual(r.code, 1, r.out);
    assert.match(r.out, /EXIT_USAGE \(2\): deploy stopped before changing anything: verify found 1 problem/);
    assert.match(r.out, /ecosystem: .*apps\[0\]\.env_production/);
    assert.deepStrictEqual(await pids(), before, 'the running workers are untouched');
  } finally {
    fs.writeFileSync(eco, text);
  }
  // workspace:deploy: the default set, the same way; the orchestrator bin too.
  const all = await nx(['workspace:deploy', '--profile', 'staging']);
  assert.strictEqual(all.code, 0, all.out);
  assert.match(all.out, /nx run api:build/);
  const bin = h.cli(['deploy', 'api', '--profile', 'staging', '--json'], ws);
  assert.strictEqual(bin.code, 0, bin.out);
  assert.strictEqual(JSON.parse(bin.stdout).services[0].action, 'reload');
});

test('nothing left behind', async () => {
  assert.strictEqual(h.cli(['stop', '--all'], ws).code, 0);
  await h.assertNothingLeft(ws);
});
