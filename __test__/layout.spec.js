'use strict';
// Issue 16, item 3: the seed's layout. The `workspace` project lives in
// tools/workspace-cli/project.json (writing some targets itself), a service project defines some
// targets of its own, a dependency has a project.json elsewhere — and the plugin is in nx.json
// `plugins`. Inference merges with each existing project wherever it is defined: it adds the
// targets that are missing, never a second project (Nx refuses the whole graph on a name defined
// twice), and the targets act as they do on a root project, through Nx and the bin alike.

const test = require('node:test');
const assert = require('node:assert');
const fs = require('fs');
const path = require('path');
const { spawnSync } = require('child_process');
const h = require('./helpers');

const ws = h.withoutZitadel(h.tempWorkspace('seed-layout', { adminPort: 15182, serverPort: 13012, pgPort: 15442 }));
// The root project.json moves to tools/workspace-cli, with only a few targets of its own.
const rootProject = JSON.parse(fs.readFileSync(path.join(ws, 'project.json'), 'utf8'));
fs.rmSync(path.join(ws, 'project.json'));
fs.mkdirSync(path.join(ws, 'tools', 'workspace-cli'), { recursive: true });
fs.writeFileSync(
  path.join(ws, 'tools', 'workspace-cli', 'project.json'),
  JSON.stringify({ name: 'workspace', $schema: '../../node_modules/nx/schemas/project-schema.json', targets: { status: rootProject.targets.status, 'start-all': rootProject.targets['start-all'] } }, null, 2),
);
// A service project that writes one target itself (a build), and a dependency defined by hand in
// a project.json without a name (Nx names it after its directory: postgres).
h.edit(path.join(ws, 'apps', 'server', 'project.json'), (t) => {
  const p = JSON.parse(t);
  p.targets = { build: { executor: 'nx:run-commands', options: { command: 'node -e "console.log(\'built\')"' } } };
  return JSON.stringify(p, null, 2);
});
fs.mkdirSync(path.join(ws, 'infra', 'postgres'), { recursive: true });
fs.writeFileSync(path.join(ws, 'infra', 'postgres', 'project.json'), JSON.stringify({ tags: ['infra'], targets: {} }, null, 2));

const nxSync = (...args) => spawnSync(path.join(h.EXAMPLE, 'node_modules', '.bin', 'nx'), args, { cwd: ws, env: h.childEnv(), encoding: 'utf8' });
const project = (name) => {
  const r = nxSync('show', 'project', name, '--json');
  assert.strictEqual(r.status, 0, r.stdout + r.stderr);
  return JSON.parse(r.stdout);
};

test.after(async () => {
  await h.killPm2();
  h.removeContainers(ws);
});

test('the graph loads: one project per name, each where the workspace defines it', () => {
  const r = nxSync('show', 'projects');
  assert.strictEqual(r.status, 0, r.stdout + r.stderr);
  assert.doesNotMatch(r.stderr, /defined in multiple locations/);
  assert.deepStrictEqual(r.stdout.trim().split('\n').sort(), ['admin', 'postgres', 'server', 'workspace']);
  const w = project('workspace');
  assert.strictEqual(w.root, 'tools/workspace-cli');
  for (const t of ['start', 'stop', 'start-all', 'stop-all', 'restart', 'deps:start', 'status', 'logs', 'verify', 'deploy']) assert.ok(w.targets[t], `workspace:${t} inferred or kept`);
  assert.ok(w.tags.includes('orchestrator:workspace'));
  const server = project('server');
  assert.strictEqual(server.root, 'apps/server');
  assert.strictEqual(server.targets.build.executor, 'nx:run-commands', 'its own target kept');
  assert.strictEqual(server.targets.start.executor, '@workspace/orchestrator:start', 'the missing ones added');
  const pg = project('postgres');
  assert.strictEqual(pg.root, 'infra/postgres');
  assert.ok(pg.tags.includes('infra') && pg.tags.includes('orchestrator:dependency'));
  assert.deepStrictEqual(Object.keys(pg.targets).sort(), ['logs', 'restart', 'start', 'stop', 'why']);
  const file = path.join(h.RUN_DIR, 'seed-graph.json');
  assert.strictEqual(nxSync('graph', `--file=${file}`).status, 0);
  const deps = JSON.parse(fs.readFileSync(file, 'utf8')).graph.dependencies;
  assert.ok(deps.server.some((d) => d.target === 'postgres'), JSON.stringify(deps.server));
});

test('the workspace project acts on the workspace from tools/workspace-cli, as the bin does', async () => {
  let r = await h.nx(['workspace:start', '--profile', 'development'], ws);
  assert.strictEqual(r.code, 0, r.out);
  for (const s of ['postgres', 'admin', 'server']) assert.match(r.out, new RegExp(`✔ ${s}\\s+started`));
  r = await h.nx(['workspace:restart', '--profile', 'staging', '--', '--service=server'], ws);
  assert.strictEqual(r.code, 0, r.out);
  assert.match(r.out, /✔ server\s+reloaded \(zero downtime\) — profile development → staging/);
  r = await h.nx(['workspace:status', '--', '--json'], ws);
  assert.strictEqual(r.code, 0, r.out);
  const nxRows = JSON.parse(r.stdout.slice(r.stdout.indexOf('{'), r.stdout.lastIndexOf('}') + 1)).services.map((s) => [s.name, s.state, s.profile]);
  const binRows = JSON.parse(h.cli(['status', '--json'], ws).stdout).services.map((s) => [s.name, s.state, s.profile]);
  assert.deepStrictEqual(nxRows, binRows);
  assert.deepStrictEqual(binRows.find((x) => x[0] === 'server'), ['server', 'online', 'staging']);
  r = await h.nx(['postgres:restart'], ws);
  assert.strictEqual(r.code, 0, r.out);
  assert.match(r.out, /✔ postgres\s+restarted/);
  r = await h.nx(['workspace:stop-all'], ws);
  assert.strictEqual(r.code, 0, r.out);
  await h.assertNothingLeft(ws);
});

test('the bin says its version (--version, -V) as the package has it', () => {
  const pkg = require('../package.json');
  for (const flag of ['--version', '-V']) {
    const r = h.cli([flag]);
    assert.strictEqual(r.code, 0, r.out);
    assert.strictEqual(r.stdout, `${pkg.version}\n`);
  }
});
