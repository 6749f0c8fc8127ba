'use strict';
// Issue 16, item 2: a start or restart under another registered profile of the same workspace
// switches the running service to it (`pm2 startOrReload --env <profile>`), through Nx and
// through the bin alike: a cluster app reloads into the new env, a fork app is started afresh,
// a dependency's container is recreated with its new env. The output says
// `profile a → b`, the switch is an event, the env is checked inside the running app (no
// variable of the old profile stays), and a switch refused by a check changes nothing.

const test = require('node:test');
const assert = require('node:assert');
const fs = require('fs');
const path = require('path');
const h = require('./helpers');

const ECHO_PORT = 18110;
const FORK_PORT = 18111;
const ws = h.withoutZitadel(h.tempWorkspace('switch', { adminPort: 15180, serverPort: 13010, pgPort: 15440 }));

// Two small apps that answer with the env they run with: a 1-worker cluster app and a fork app.
const ECHO = `const http = require('http');
const keys = ['APP_ENV', 'ONLY_DEV', 'ONLY_STAGING', 'NODE_ENV', 'ORCHESTRATOR_PROFILE', 'ORCHESTRATOR_UNSET'];
http.createServer((req, res) => res.end(JSON.stringify({ pid: process.pid, env: Object.fromEntries(keys.map((k) => [k, process.env[k] ?? null])) }))).listen(process.env.PORT, '127.0.0.1');
`;
for (const app of ['echo', 'forkecho']) {
  fs.mkdirSync(path.join(ws, 'apps', app), { recursive: true });
  fs.writeFileSync(path.join(ws, 'apps', app, 'main.js'), ECHO);
  fs.writeFileSync(path.join(ws, 'apps', app, 'package.json'), JSON.stringify({ name: app, version: '1.0.0', private: true }));
}
h.edit(path.join(ws, 'ecosystem.config.js'), (t) =>
  t.replace(
    /\n {2}\],\n};\s*$/,
    `
    { name: 'echo', cwd: 'apps/echo', script: 'main.js', exec_mode: 'cluster', instances: 1, kill_timeout: 3000, env: { PORT: '${ECHO_PORT}' }, env_development: { NODE_ENV: 'development' }, env_staging: { NODE_ENV: 'staging' } },
    { name: 'forkecho', cwd: 'apps/forkecho', script: 'main.js', env: { PORT: '${FORK_PORT}' } },
  ],
};
`,
  ),
);
fs.appendFileSync(path.join(ws, 'config', 'env', 'development.env'), 'ONLY_DEV=dev-value\n');
fs.appendFileSync(path.join(ws, 'config', 'env', 'staging.env'), 'ONLY_STAGING=staging-value\n');

const envOf = async (port) => JSON.parse((await h.get(`http://127.0.0.1:${port}/`)).body);
// Every event read is checked against contracts/event.schema.json.
const events = (service) =>
  fs
    .readFileSync(path.join(ws, 'apps', 'logs', service, 'events.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l))
    .map((e) => (require('./contract').check('event', e, `an event of ${service}`), e));
const containerEnv = (service) => {
  const id = h.docker(['ps', '-q', '--filter', `label=dev.orchestrator.workspace=${ws}`, '--filter', `label=dev.orchestrator.service=${service}`]).stdout.trim();
  return { id, env: JSON.parse(h.docker(['inspect', '-f', '{{json .Config.Env}}', id]).stdout) };
};

test.after(async () => {
  await h.killPm2();
  h.removeContainers(ws);
});

test('setup: everything under development', async () => {
  const r = h.cli(['start', 'postgres', 'echo', 'forkecho'], ws);
  assert.strictEqual(r.code, 0, r.out);
  const e = await envOf(ECHO_PORT);
  assert.deepStrictEqual([e.env.APP_ENV, e.env.ONLY_DEV, e.env.NODE_ENV], ['development', 'dev-value', 'development']);
});

test('Nx: `--profile staging -- --service=echo` switches the cluster app, zero downtime, into the new env', async () => {
  const before = await envOf(ECHO_PORT);
  const r = await h.nx(['workspace:restart', '--profile', 'staging', '--', `--service=echo`], ws);
  assert.strictEqual(r.code, 0, r.out);
  assert.match(r.out, /✔ echo\s+reloaded \(zero downtime\) — profile development → staging/);
  const after = await envOf(ECHO_PORT);
  assert.notStrictEqual(after.pid, before.pid, 'a new worker');
  assert.deepStrictEqual(after.env, {
    APP_ENV: 'staging',
    ONLY_DEV: null, // only development had it: PM2 would keep it; the preload removes it
    ONLY_STAGING: 'staging-value',
    NODE_ENV: 'staging',
    ORCHESTRATOR_PROFILE: 'staging',
    ORCHESTRATOR_UNSET: 'ONLY_DEV', // what the app must not see, for the next reload too
  });
  const sw = events('echo').filter((e) => e.event === 'profile_switched');
  assert.deepStrictEqual(sw.map((e) => [e.from, e.to, e.profile]), [['development', 'staging', 'staging']]);
  const [entry] = (await h.list()).filter((p) => p.name === 'echo');
  assert.strictEqual(entry.env.ORCHESTRATOR_PROFILE, 'staging');
});

test('the bin: the same switch back, and a fork app started afresh under the new profile', async () => {
  let r = h.cli(['restart', 'echo', '--profile', 'development'], ws);
  assert.strictEqual(r.code, 0, r.out);
  assert.match(r.out, /✔ echo\s+reloaded \(zero downtime\) — profile staging → development/);
  assert.deepStrictEqual([(await envOf(ECHO_PORT)).env.APP_ENV, (await envOf(ECHO_PORT)).env.ONLY_STAGING], ['development', null]);
  const fork = await envOf(FORK_PORT);
  r = h.cli(['start', 'forkecho', '--profile', 'staging'], ws);
  assert.strictEqual(r.code, 0, r.out);
  assert.match(r.out, /✔ forkecho\s+restarted — profile development → staging/);
  const after = await envOf(FORK_PORT);
  assert.notStrictEqual(after.pid, fork.pid);
  assert.deepStrictEqual([after.env.APP_ENV, after.env.ONLY_DEV, after.env.ONLY_STAGING], ['staging', null, 'staging-value']);
  assert.ok(events('forkecho').some((e) => e.event === 'profile_switched' && e.from === 'development' && e.to === 'staging'));
});

test('a dependency switches through Nx: its container recreated with the new env', async () => {
  const before = containerEnv('postgres');
  assert.ok(before.env.includes('POSTGRES_DB=app_development'), before.env.join(' '));
  const r = await h.nx(['postgres:restart', '--profile', 'staging'], ws);
  assert.strictEqual(r.code, 0, r.out);
  assert.match(r.out, /✔ postgres\s+restarted — profile development → staging/);
  const after = containerEnv('postgres');
  assert.notStrictEqual(after.id, before.id);
  assert.ok(after.env.includes('POSTGRES_DB=app_staging'), after.env.join(' '));
  const [pg] = (await h.list()).filter((p) => p.name === 'postgres');
  assert.deepStrictEqual([pg.status, pg.env.ORCHESTRATOR_PROFILE], ['online', 'staging']);
  const s = JSON.parse(h.cli(['status', '--json', '--service', 'postgres'], ws).stdout).services[0];
  assert.deepStrictEqual([s.state, s.health, s.profile], ['online', 'healthy', 'staging']);
});

test('a switch a check refuses changes nothing: the service runs on under its profile', async () => {
  // production.env lacks a variable echo requires: refused before anything is touched.
  h.edit(path.join(ws, 'nx.json'), (t) => {
    const nx = JSON.parse(t);
    nx.pluginsConfig['@workspace/orchestrator'].services.echo = { requiredEnv: ['ONLY_STAGING'] };
    return JSON.stringify(nx, null, 2);
  });
  const before = await h.snapshot();
  const served = await envOf(ECHO_PORT);
  const r = await h.nx(['echo:restart', '--profile', 'production'], ws);
  assert.notStrictEqual(r.code, 0, r.out);
  assert.match(r.out, /✖ EXIT_ENV_MISSING \(12\)/);
  assert.match(r.out, /echo was not replaced: it runs on as before/);
  assert.deepStrictEqual(await h.snapshot(), before);
  assert.strictEqual((await envOf(ECHO_PORT)).pid, served.pid);
  const s = JSON.parse(h.cli(['status', '--json', '--service', 'echo'], ws).stdout).services[0];
  assert.deepStrictEqual([s.state, s.profile, s.lastFailure.code], ['online', 'development', 'EXIT_ENV_MISSING']);
});

test('another workspace owning the name is still EXIT_CONFLICTING_PROCESS', async () => {
  const other = h.tempWorkspace('switch-other', { adminPort: 15180, serverPort: 13010, pgPort: 15440 });
  fs.mkdirSync(path.join(other, 'apps', 'echo'), { recursive: true });
  fs.copyFileSync(path.join(ws, 'ecosystem.config.js'), path.join(other, 'ecosystem.config.js'));
  fs.cpSync(path.join(ws, 'apps', 'echo'), path.join(other, 'apps', 'echo'), { recursive: true });
  const before = await h.snapshot();
  const r = h.cli(['restart', 'echo', '--profile', 'staging'], other);
  assert.strictEqual(r.code, 15, r.out);
  assert.match(r.out, /belongs to another workspace/);
  assert.deepStrictEqual(await h.snapshot(), before);
});

test('stop, and nothing is left behind', async () => {
  const r = h.cli(['stop', '--all'], ws);
  assert.strictEqual(r.code, 0, r.out);
  await h.assertNothingLeft(ws);
});
