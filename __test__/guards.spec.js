'use strict';
// Issue 2's guards: each fails with actionable messaging and its exit code, and leaves PM2
// exactly as it was (compared entry by entry: name, id, pid, status, restarts).

const test = require('node:test');
const assert = require('node:assert');
const fs = require('fs');
const path = require('path');
const { spawn, execFileSync } = require('child_process');
const h = require('./helpers');

const started = [];

test.after(async () => {
  for (const child of started) if (h.alive(child.pid)) child.kill('SIGKILL');
  await h.killPm2();
  h.removeAllContainers();
});

/** Nx prints our message; the failing command's code name and number are in it. */
function assertFails(r, code, number) {
  assert.notStrictEqual(r.code, 0, r.out);
  assert.match(r.out, new RegExp(`✖ ${code} \\(${number}\\)`), r.out);
  assert.match(r.out, /what to do:\n\s+- \S/, 'at least one remediation step');
}

test('setup: admin online in the example workspace (development)', async () => {
  const r = await h.nx(['admin:start']);
  assert.strictEqual(r.code, 0, r.out);
});

test('unknown profile → EXIT_PROFILE_UNDEFINED, names it and where to register it', async () => {
  const before = await h.snapshot();
  for (const args of [['server:start', '--profile', 'qa'], ['server:start', '--configuration=qa'], ['workspace:stop', '--profile', 'qa']]) {
    const r = await h.nx(args);
    assertFails(r, 'EXIT_PROFILE_UNDEFINED', 10);
    assert.match(r.out, /profile "qa" is not registered/);
    assert.match(r.out, new RegExp(`add "qa" to pluginsConfig\\["@workspace/orchestrator"\\]\\.profiles in ${h.EXAMPLE}/nx.json`));
  }
  assert.strictEqual(h.cli(['start', '--profile', 'qa']).code, 10);
  assert.deepStrictEqual(await h.snapshot(), before);
});

test('unknown service → EXIT_SERVICE_UNKNOWN, lists the known services', async () => {
  const before = await h.snapshot();
  const r = await h.nx(['workspace:start', '--', '--service=nope']);
  assertFails(r, 'EXIT_SERVICE_UNKNOWN', 11);
  assert.match(r.out, /known services: admin, server/);
  const c = h.cli(['start', 'nope', '--json']);
  assert.strictEqual(c.code, 11);
  assert.strictEqual(JSON.parse(c.stdout).error.code, 'EXIT_SERVICE_UNKNOWN');
  const bad = h.cli(['start', '../../etc']);
  assert.strictEqual(bad.code, 2, bad.out);
  assert.deepStrictEqual(await h.snapshot(), before);
});

test('a project with the target that is not a service → EXIT_SERVICE_UNKNOWN', async () => {
  const ws = h.tempWorkspace('not-a-service');
  fs.mkdirSync(path.join(ws, 'libs', 'shared'), { recursive: true });
  fs.writeFileSync(
    path.join(ws, 'libs', 'shared', 'project.json'),
    JSON.stringify({ name: 'shared', targets: { start: { executor: '@workspace/orchestrator:start' } } }),
  );
  const before = await h.snapshot();
  const r = await h.nx(['shared:start'], ws);
  assertFails(r, 'EXIT_SERVICE_UNKNOWN', 11);
  assert.match(r.out, /no service named "shared"/);
  assert.deepStrictEqual(await h.snapshot(), before);
});

test('required variables missing → EXIT_ENV_MISSING, names and file, never values', async () => {
  const ws = h.tempWorkspace('env-missing');
  const envFile = path.join(ws, 'config', 'env', 'staging.env');
  fs.writeFileSync(envFile, 'APP_ENV=staging\nSECRET_TOKEN=do-not-print-me-7f3a\nPOSTGRES_USER=app\nPOSTGRES_PASSWORD=app\nPOSTGRES_DB=app_staging\nPOSTGRES_PORT=15432\nZITADEL_MASTERKEY=x\nZITADEL_DB_PASSWORD=x\n');
  // Nx runs server's declared dependency (postgres:start) before server's own guards: start it
  // first, so the snapshot shows what the guard itself changed.
  assert.strictEqual((await h.nx(['postgres:start', '--profile', 'staging'], ws)).code, 0);
  h.edit(path.join(ws, 'nx.json'), (t) => {
    const nxJson = JSON.parse(t);
    nxJson.pluginsConfig['@workspace/orchestrator'].services.server.requiredEnv = ['DATABASE_URL', 'SECRET_TOKEN', 'SESSION_KEY'];
    return JSON.stringify(nxJson, null, 2);
  });
  const before = await h.snapshot();
  const r = await h.nx(['server:start', '--profile', 'staging'], ws);
  assertFails(r, 'EXIT_ENV_MISSING', 12);
  assert.match(r.out, /needs DATABASE_URL, SESSION_KEY for profile staging/);
  assert.ok(r.out.includes(`Set DATABASE_URL, SESSION_KEY in ${envFile}`), r.out);
  assert.ok(!r.out.includes('do-not-print-me'), 'values of present variables are never printed');
  assert.deepStrictEqual(await h.snapshot(), before);
  // A cause no restart can fix: the service is marked failed with it (for status), at once.
  const rec = JSON.parse(fs.readFileSync(path.join(ws, '.orchestrator', 'state', 'server.json'), 'utf8'));
  assert.deepStrictEqual([rec.phase.state, rec.lastFailure.code, rec.lastFailure.retryable], ['failed', 'EXIT_ENV_MISSING', false]);
  assert.ok(!JSON.stringify(rec).includes('do-not-print-me'), 'the record holds names, never values');
  // setup checks the same, with the same code.
  const s = await h.nx(['server:setup', '--profile', 'staging'], ws);
  assertFails(s, 'EXIT_ENV_MISSING', 12);
  // PM2 names are global: leave no postgres of this workspace for the next tests.
  assert.strictEqual(h.cli(['stop', 'postgres'], ws).code, 0);
  await h.call('delete', 'postgres');
  h.removeContainers(ws);
});

test('a compose variable required with ${VAR:?msg} and missing → EXIT_ENV_MISSING naming it', async () => {
  const ws = h.tempWorkspace('compose-var-missing');
  h.edit(path.join(ws, 'config', 'env', 'development.env'), (t) => t.replace(/^POSTGRES_PASSWORD=.*\n/m, ''));
  const before = await h.snapshot();
  const r = h.cli(['start', 'postgres'], ws);
  assert.strictEqual(r.code, 12, r.out);
  assert.match(r.stderr, /docker-compose\.yml:\d+: services\.postgres\.environment\.POSTGRES_PASSWORD: needs POSTGRES_PASSWORD, which is not set: set POSTGRES_PASSWORD in config\/env\/<profile>\.env/);
  assert.deepStrictEqual(await h.snapshot(), before);
});

test('a declared port already bound → EXIT_PORT_IN_USE naming pid and command line', async () => {
  const holder = spawn(process.execPath, ['-e', "require('net').createServer().listen(3000, '127.0.0.1'); setInterval(() => {}, 1000)"], { stdio: 'ignore' });
  started.push(holder);
  for (let i = 0; i < 50; i++) {
    try {
      await h.get('http://127.0.0.1:3000/');
    } catch (e) {
      if (!/ECONNREFUSED/.test(e.message)) break;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  // server's declared dependency runs first under Nx; start it before taking the snapshot.
  assert.strictEqual((await h.nx(['postgres:start'])).code, 0);
  const before = await h.snapshot();
  const r = await h.nx(['server:start']);
  assertFails(r, 'EXIT_PORT_IN_USE', 14);
  assert.match(r.out, new RegExp(`port 3000 is held by pid ${holder.pid} \\(${process.execPath.replace(/[/.]/g, '\\$&')} -e`));
  assert.match(r.out, new RegExp(`Stop pid ${holder.pid}`));
  assert.deepStrictEqual(await h.snapshot(), before);
  const rec = JSON.parse(fs.readFileSync(path.join(h.EXAMPLE, '.orchestrator', 'state', 'server.json'), 'utf8'));
  assert.deepStrictEqual([rec.phase.state, rec.lastFailure.code], ['failed', 'EXIT_PORT_IN_USE']);
  holder.kill('SIGKILL');
});

test('same name from another workspace → EXIT_CONFLICTING_PROCESS', async () => {
  const ws = h.tempWorkspace('other-workspace');
  const before = await h.snapshot();
  const r = await h.nx(['admin:start'], ws);
  assertFails(r, 'EXIT_CONFLICTING_PROCESS', 15);
  assert.match(r.out, new RegExp(`belongs to another workspace \\(${h.EXAMPLE}, profile development\\)`));
  assert.match(r.out, /workspace:status/);
  assert.deepStrictEqual(await h.snapshot(), before);
  // Its stop never touches our entry either.
  const s = await h.nx(['admin:stop'], ws);
  assertFails(s, 'EXIT_CONFLICTING_PROCESS', 15);
  assert.deepStrictEqual(await h.snapshot(), before);
});

test('a PM2 entry the orchestrator did not start → EXIT_CONFLICTING_PROCESS', async () => {
  const script = path.join(h.RUN_DIR, 'foreign.js');
  fs.writeFileSync(script, 'setInterval(() => {}, 1000);\n');
  await h.call('start', { name: 'server', script });
  const before = await h.snapshot();
  const r = await h.nx(['server:start']);
  assertFails(r, 'EXIT_CONFLICTING_PROCESS', 15);
  assert.match(r.out, /exists that the orchestrator did not start/);
  assert.match(r.out, /pm2 describe server/);
  assert.deepStrictEqual(await h.snapshot(), before);
  await h.call('delete', 'server');
});

test('PM2 older than the minimum → EXIT_PREREQUISITE with the upgrade step', async () => {
  // A workspace whose own node_modules holds a real, old PM2 (4.5.6 from the npm registry).
  const ws = h.tempWorkspace('old-pm2', { linkModules: false });
  const modules = path.join(ws, 'node_modules');
  fs.mkdirSync(path.join(modules, '@workspace'), { recursive: true });
  fs.symlinkSync(h.ROOT, path.join(modules, '@workspace', 'orchestrator'));
  const tgz = execFileSync('npm', ['pack', 'pm2@4.5.6', '--silent'], { cwd: h.RUN_DIR, encoding: 'utf8' }).trim().split('\n').pop();
  fs.mkdirSync(path.join(modules, 'pm2'));
  execFileSync('tar', ['-xzf', path.join(h.RUN_DIR, tgz), '-C', path.join(modules, 'pm2'), '--strip-components=1']);
  const before = await h.snapshot();
  const r = h.cli(['start', 'server', '--cwd', ws]);
  assert.strictEqual(r.code, 13, r.out);
  assert.match(r.out, /EXIT_PREREQUISITE \(13\).*pm2 4\.5\.6 is older than the supported minimum 6\.0\.0/);
  assert.match(r.out, /npm install --save-dev pm2@latest/);
  assert.deepStrictEqual(await h.snapshot(), before);
});

test('malformed ecosystem.config.js → EXIT_USAGE naming the file, PM2 untouched', async () => {
  const ws = h.tempWorkspace('bad-ecosystem');
  fs.appendFileSync(path.join(ws, 'ecosystem.config.js'), '\nthis is not javascript(\n');
  const before = await h.snapshot();
  const r = h.cli(['start', '--cwd', ws]);
  assert.strictEqual(r.code, 2, r.out);
  assert.match(r.out, /ecosystem\.config\.js could not be loaded/);
  assert.deepStrictEqual(await h.snapshot(), before);
});

test('stop with no PM2 daemon running reports already stopped and launches none', async () => {
  await h.killPm2();
  const fs = require('fs');
  const r = h.cli(['stop', '--all']);
  assert.strictEqual(r.code, 0, r.out);
  assert.match(r.out, /admin\s+already stopped/);
  assert.match(r.out, /server\s+already stopped/);
  assert.ok(!fs.existsSync(path.join(h.PM2_HOME, 'pm2.pid')) || !h.alive(Number(fs.readFileSync(path.join(h.PM2_HOME, 'pm2.pid'), 'utf8'))), 'no daemon was launched');
});
