'use strict';
// Issue 2, end to end: app services under a real PM2 daemon (private PM2_HOME), driven through
// real `nx run` in examples/workspace, the `orchestrator` bin and the programmatic API.

const test = require('node:test');
const assert = require('node:assert');
const path = require('path');
const h = require('./helpers');

const byName = (procs, name) => procs.filter((p) => p.name === name);

test.after(async () => {
  await h.killPm2();
  h.removeAllContainers();
});

test('1. admin:start --profile development installs, starts under PM2 with our metadata', async () => {
  const r = await h.nx(['admin:start', '--profile', 'development']);
  assert.strictEqual(r.code, 0, r.out);
  assert.match(r.out, /✔ admin\s+started/);
  const [admin] = byName(await h.list(), 'admin');
  assert.strictEqual(admin.status, 'online');
  assert.strictEqual(admin.execMode, 'fork_mode');
  assert.strictEqual(admin.env.ORCHESTRATOR_WORKSPACE, h.EXAMPLE);
  assert.strictEqual(admin.env.ORCHESTRATOR_PROFILE, 'development');
  assert.strictEqual(admin.env.ORCHESTRATOR_KIND, 'app');
  assert.strictEqual(admin.namespace, 'example-workspace');
  // env_development + config/env/development.env reached the process.
  assert.strictEqual(admin.env.APP_ENV, 'development');
  assert.strictEqual(admin.env.NODE_ENV, 'development');
  const page = await h.get('http://127.0.0.1:5173/');
  assert.strictEqual(page.status, 200);
  assert.match(page.body, /Admin/);
});

test('1b. starting the same service again is an idempotent success', async () => {
  const before = await h.snapshot();
  const r = await h.nx(['admin:start']);
  assert.strictEqual(r.code, 0, r.out);
  assert.match(r.out, /already online/);
  assert.deepStrictEqual(await h.snapshot(), before);
});

test('2. server:start --profile staging runs cluster mode with env_staging + staging.env', async () => {
  const r = await h.nx(['server:start', '--profile', 'staging']);
  assert.strictEqual(r.code, 0, r.out);
  const server = byName(await h.list(), 'server');
  assert.strictEqual(server.length, 2, 'two cluster instances');
  for (const p of server) {
    assert.strictEqual(p.execMode, 'cluster_mode');
    assert.strictEqual(p.status, 'online');
    assert.strictEqual(p.env.ORCHESTRATOR_PROFILE, 'staging');
  }
  const info = JSON.parse((await h.get('http://127.0.0.1:3000/api/info')).body);
  assert.strictEqual(info.appEnv, 'staging'); // config/env/staging.env
  assert.strictEqual(info.nodeEnv, 'staging'); // env_staging
  assert.strictEqual(info.logLevel, 'info'); // env_staging
  assert.strictEqual(info.database.name, 'app_staging');
});

test('2b. workspace:restart --profile staging -- --service=server reloads with zero downtime', async () => {
  // Two reloads under continuous load; every request must succeed.
  for (let round = 1; round <= 2; round++) {
    const before = byName(await h.list(), 'server').map((p) => p.pid);
    let ok = 0;
    let failed = 0;
    const errors = [];
    let done = false;
    const restart = h.nx(['workspace:restart', '--profile', 'staging', '--', '--service=server']).then((r) => {
      done = true;
      return r;
    });
    const started = Date.now();
    while (!done && Date.now() - started < 60000) {
      try {
        const res = await h.get('http://127.0.0.1:3000/health');
        if (res.status === 200) ok += 1;
        else {
          failed += 1;
          errors.push(`status ${res.status}`);
        }
      } catch (e) {
        failed += 1;
        errors.push(e.message);
      }
    }
    const r = await restart;
    console.log(`# zero-downtime reload ${round}: ${ok} requests ok, ${failed} failed`);
    assert.strictEqual(r.code, 0, r.out);
    assert.match(r.out, /reloaded \(zero downtime\)/);
    assert.ok(ok > 20, `enough requests during the reload (${ok})`);
    assert.strictEqual(failed, 0, errors.slice(0, 5).join('; '));
    const after = byName(await h.list(), 'server');
    assert.strictEqual(after.length, 2);
    for (const p of after) assert.ok(!before.includes(p.pid), 'every worker was replaced');
  }
  const info = JSON.parse((await h.get('http://127.0.0.1:3000/api/info')).body);
  assert.strictEqual(info.appEnv, 'staging');
  assert.strictEqual(info.nodeEnv, 'staging');
});

test('2c. restart without --profile reuses the running profile', async () => {
  const r = await h.nx(['server:restart']);
  assert.strictEqual(r.code, 0, r.out);
  assert.match(r.out, /profile staging/);
  for (const p of byName(await h.list(), 'server')) assert.strictEqual(p.env.ORCHESTRATOR_PROFILE, 'staging');
});

test('3. admin:test / server:test run with the profile env; setup is idempotent', async () => {
  const at = await h.nx(['admin:test', '--profile', 'development']);
  assert.strictEqual(at.code, 0, at.out);
  assert.match(at.out, /3 passed/);
  const st = await h.nx(['server:test', '--profile', 'staging']);
  assert.strictEqual(st.code, 0, st.out);
  assert.match(st.out, /# pass 3/);
  for (const app of ['admin', 'server']) {
    // server:setup starts postgres first (Nx graph); it runs under staging since test 2.
    const first = await h.nx([`${app}:setup`, '--profile', 'staging']);
    assert.strictEqual(first.code, 0, first.out);
    const second = await h.nx([`${app}:setup`, '--profile', 'staging']);
    assert.strictEqual(second.code, 0, second.out);
    assert.match(second.out, /set up \(up-to-date\)/, `${app}: second setup installs nothing`);
  }
});

test('4. admin:stop, workspace:stop, workspace:start, start-all, stop-all', async () => {
  let r = await h.nx(['admin:stop']);
  assert.strictEqual(r.code, 0, r.out);
  assert.strictEqual(byName(await h.list(), 'admin')[0].status, 'stopped');
  assert.strictEqual(byName(await h.list(), 'server')[0].status, 'online', 'admin:stop leaves server alone');

  r = await h.nx(['workspace:stop']);
  assert.strictEqual(r.code, 0, r.out);
  for (const p of h.services(await h.list())) assert.strictEqual(p.status, 'stopped', p.name);
  assert.strictEqual(h.agents(await h.list())[0].status, 'online', 'stop leaves the agent; stop-all stops it');

  r = await h.nx(['workspace:start']);
  assert.strictEqual(r.code, 0, r.out);
  let procs = await h.list();
  for (const name of ['postgres', 'admin', 'server']) {
    assert.ok(byName(procs, name).every((p) => p.status === 'online' && p.env.ORCHESTRATOR_PROFILE === 'development'), name);
  }
  assert.ok(r.out.indexOf('✔ postgres') < r.out.indexOf('✔ server'), 'dependencies start first');

  r = await h.nx(['workspace:stop-all']);
  assert.strictEqual(r.code, 0, r.out);
  for (const p of await h.list()) assert.strictEqual(p.status, 'stopped', p.name);
  assert.deepStrictEqual(h.agents(await h.list()), [], 'stop-all stops the agent');
  assert.ok(r.out.indexOf('✔ server') < r.out.indexOf('✔ postgres'), 'dependencies stop last');

  // start-all includes every dependency; Zitadel's image cannot be obtained here, so this part
  // runs in a copy of the example without it. PM2 names are global: clear the table first.
  await h.call('delete', 'all');
  const ws = h.withoutZitadel(h.tempWorkspace('start-all', { adminPort: 15175, serverPort: 13002, pgPort: 15434 }));
  r = await h.nx(['workspace:start-all', '--configuration=staging'], ws);
  assert.strictEqual(r.code, 0, r.out);
  procs = h.services(await h.list());
  assert.strictEqual(procs.filter((p) => p.status === 'online').length, 4, 'postgres + admin + 2 server workers');
  for (const p of procs) assert.strictEqual(p.env.ORCHESTRATOR_PROFILE, 'staging', `--configuration=staging reached ${p.name}`);

  r = await h.nx(['workspace:stop-all'], ws);
  assert.strictEqual(r.code, 0, r.out);
  assert.match(r.out, /admin\s+stopped — profile staging/);
  assert.match(r.out, /postgres\s+stopped — profile staging/);
  await h.call('delete', 'all');
  h.removeContainers(ws);
});

test('5. no --profile means development', async () => {
  const r = await h.nx(['server:start']);
  assert.strictEqual(r.code, 0, r.out);
  for (const p of byName(await h.list(), 'server')) assert.strictEqual(p.env.ORCHESTRATOR_PROFILE, 'development');
  const info = JSON.parse((await h.get('http://127.0.0.1:3000/api/info')).body);
  assert.strictEqual(info.appEnv, 'development');
  assert.strictEqual((await h.nx(['server:stop'])).code, 0);
});

test('6. the orchestrator bin exits with the table numbers; the programmatic API works', async () => {
  let r = h.cli(['start', 'server', '--profile', 'staging']);
  assert.strictEqual(r.code, 0, r.out);
  assert.match(r.out, /✔ server\s+started/);
  r = h.cli(['start', 'nope']);
  assert.strictEqual(r.code, 11, r.out);
  r = h.cli(['start', 'server', '--profile', 'qa']);
  assert.strictEqual(r.code, 10, r.out);
  r = h.cli(['start', '--bogus']);
  assert.strictEqual(r.code, 2, r.out);
  r = h.cli(['stop', 'server', '--json']);
  assert.strictEqual(r.code, 0, r.out);
  assert.strictEqual(JSON.parse(r.stdout).services[0].action, 'stop');

  const orchestrator = require(h.ROOT);
  assert.strictEqual(orchestrator.exitCodes.EXIT_PORT_IN_USE, 14);
  const res = await orchestrator.start({ cwd: h.EXAMPLE, services: ['server'], profile: 'production' });
  assert.strictEqual(res.profile, 'production');
  assert.strictEqual(res.services[0].status, 'online');
  assert.strictEqual(res.services[0].pids.length, 2);
  // Another profile of this workspace switches the running service (a cluster app reloads).
  const switched = await orchestrator.start({ cwd: h.EXAMPLE, services: ['server'], profile: 'staging' });
  assert.deepStrictEqual([switched.services[0].action, switched.services[0].switchedFrom, switched.services[0].profile], ['reload', 'production', 'staging']);
  await assert.rejects(orchestrator.start({ cwd: h.EXAMPLE, services: ['nope'] }), (e) => {
    assert.ok(e instanceof orchestrator.OrchestratorError);
    assert.strictEqual(e.code, 'EXIT_SERVICE_UNKNOWN');
    assert.strictEqual(e.exitCode, 11);
    return true;
  });
  const stopped = await orchestrator.stop({ cwd: h.EXAMPLE, services: ['server'] });
  assert.strictEqual(stopped.services[0].action, 'stop');
});

test('racing double start: one entry per instance, both commands succeed', async () => {
  await h.call('delete', 'server').catch(() => {});
  const [a, b] = await Promise.all([h.nx(['server:start']), h.nx(['server:start'])]);
  assert.strictEqual(a.code, 0, a.out);
  assert.strictEqual(b.code, 0, b.out);
  const outs = [a.out, b.out].join('\n');
  assert.match(outs, /server\s+started/);
  assert.match(outs, /server\s+already online/);
  const server = byName(await h.list(), 'server');
  assert.strictEqual(server.length, 2, `cluster of 2, not ${server.length}`);
  assert.ok(server.every((p) => p.status === 'online'));
  assert.strictEqual((await h.nx(['server:stop'])).code, 0);
});

test('tests leave no daemon behind', async () => {
  const fs = require('fs');
  await h.list();
  const pid = Number(fs.readFileSync(path.join(h.PM2_HOME, 'pm2.pid'), 'utf8'));
  assert.ok(h.alive(pid));
  await h.killPm2();
  for (let i = 0; i < 50 && h.alive(pid); i++) await new Promise((r) => setTimeout(r, 100));
  assert.ok(!h.alive(pid), `PM2 daemon ${pid} is gone`);
});
