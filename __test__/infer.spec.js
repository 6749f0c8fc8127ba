'use strict';
// Issue 7 (inferred targets): with the plugin in nx.json `plugins`, a workspace writes no target
// by hand. createNodesV2 gives every app whose cwd is an Nx project, every compose dependency and
// the root project their targets; explicit project.json targets win; edges follow compose
// depends_on and nx.json services.<name>.dependsOn.

const test = require('node:test');
const assert = require('node:assert');
const fs = require('fs');
const path = require('path');
const { spawnSync } = require('child_process');
const h = require('./helpers');

const ws = path.join(h.RUN_DIR, 'infer');
const w = (f, text) => {
  fs.mkdirSync(path.dirname(path.join(ws, f)), { recursive: true });
  fs.writeFileSync(path.join(ws, f), typeof text === 'string' ? text : JSON.stringify(text, null, 2));
};
w('package.json', { name: 'orch-infer', private: true });
w('nx.json', {
  plugins: ['@workspace/orchestrator'],
  pluginsConfig: { '@workspace/orchestrator': { services: { api: { dependsOn: ['cache'] } } } },
});
w('ecosystem.config.js', "module.exports = { apps: [{ name: 'api', cwd: 'apps/api', script: 'main.js' }, { name: 'web', cwd: 'apps/frontend', script: 'main.js' }, { name: 'tool', cwd: 'scripts/tool', script: 'main.js' }, { name: 'explicit', cwd: 'apps/explicit', script: 'main.js' }] };\n");
w('apps/api/package.json', { name: 'api', version: '1.0.0', private: true });
w('apps/api/main.js', '');
// A project whose name differs from its service: the inferred targets name the service.
w('apps/frontend/project.json', { name: 'frontend' });
w('apps/frontend/main.js', '');
// Not an Nx project (no project.json, no package.json): nothing inferred for it.
w('scripts/tool/main.js', '');
// Explicit targets win over inferred ones.
w('apps/explicit/project.json', { name: 'explicit', targets: { start: { executor: '@workspace/orchestrator:start', options: { profile: 'staging' } } } });
w('apps/explicit/main.js', '');
w('docker-compose.yml', 'services:\n  db:\n    image: orchestrator-local/busybox:1\n  cache:\n    image: orchestrator-local/busybox:1\n    depends_on: [db]\n');
fs.symlinkSync(path.join(h.EXAMPLE, 'node_modules'), path.join(ws, 'node_modules'));

const nx = (...args) => {
  const r = spawnSync(path.join(h.EXAMPLE, 'node_modules', '.bin', 'nx'), args, { cwd: ws, env: h.childEnv(), encoding: 'utf8' });
  assert.strictEqual(r.status, 0, r.stdout + r.stderr);
  return r.stdout;
};
const project = (name) => JSON.parse(nx('show', 'project', name, '--json'));

test('nx show projects: apps that are Nx projects, every dependency, the workspace; no hand-written target', () => {
  const names = nx('show', 'projects').trim().split('\n').sort();
  assert.deepStrictEqual(names, ['api', 'cache', 'db', 'explicit', 'frontend', 'workspace']);
  const api = project('api');
  assert.deepStrictEqual(Object.keys(api.targets).sort(), ['deploy', 'logs', 'restart', 'setup', 'start', 'stop', 'test', 'why']);
  assert.deepStrictEqual(api.targets.deploy.dependsOn, ['build']);
  assert.deepStrictEqual(api.targets.start.configurations, { development: { profile: 'development' }, staging: { profile: 'staging' }, production: { profile: 'production' } });
  assert.strictEqual(api.targets.start.executor, '@workspace/orchestrator:start');
  assert.strictEqual(api.targets.start.cache, false);
  assert.deepStrictEqual(project('frontend').targets.start.options, { service: 'web' }, 'the service of the cwd');
  const db = project('db');
  assert.deepStrictEqual(Object.keys(db.targets).sort(), ['logs', 'restart', 'start', 'stop', 'why']);
  assert.ok(db.tags.includes('type:dependency'));
  const root = project('workspace');
  for (const t of ['start', 'stop', 'start-all', 'stop-all', 'restart', 'deps:start', 'deps:stop', 'status', 'why', 'dashboard', 'watch', 'logs', 'verify', 'deploy']) assert.ok(root.targets[t], `workspace:${t}`);
  assert.deepStrictEqual(root.targets['start-all'].options, { all: true });
  assert.strictEqual(root.root, '.');
});

test("a dependency's project runs its targets without a directory of its own", () => {
  assert.ok(!fs.existsSync(path.join(ws, 'deps')));
  const out = nx('run', 'db:logs');
  assert.match(out, /Successfully ran target logs for project db/);
});

test('explicit project.json targets win; the rest is still inferred', () => {
  const p = project('explicit');
  assert.deepStrictEqual(p.targets.start.options, { profile: 'staging' });
  assert.ok(p.targets.stop && p.targets.logs, 'inferred beside the explicit one');
});

test('nx graph: edges from compose depends_on and nx.json dependsOn', () => {
  const file = path.join(h.RUN_DIR, 'infer-graph.json');
  nx('graph', `--file=${file}`);
  const deps = JSON.parse(fs.readFileSync(file, 'utf8')).graph.dependencies;
  assert.deepStrictEqual(deps.cache.map((d) => d.target), ['db']);
  assert.deepStrictEqual(deps.api.map((d) => d.target), ['cache']);
  assert.deepStrictEqual(deps.db, []);
  assert.deepStrictEqual(deps.frontend, []);
});

test('the example infers its apps and dependencies and keeps one explicit project (workspace)', () => {
  const file = path.join(h.RUN_DIR, 'example-graph.json');
  const r = spawnSync(path.join(h.EXAMPLE, 'node_modules', '.bin', 'nx'), ['graph', `--file=${file}`], { cwd: h.EXAMPLE, env: h.childEnv(), encoding: 'utf8' });
  assert.strictEqual(r.status, 0, r.stderr);
  const g = JSON.parse(fs.readFileSync(file, 'utf8')).graph;
  assert.deepStrictEqual(Object.keys(g.nodes).sort(), ['admin', 'postgres', 'server', 'workspace', 'zitadel']);
  for (const p of ['admin', 'server']) assert.ok(!JSON.parse(fs.readFileSync(path.join(h.EXAMPLE, 'apps', p, 'project.json'), 'utf8')).targets, `${p} writes no target`);
  assert.ok(JSON.parse(fs.readFileSync(path.join(h.EXAMPLE, 'project.json'), 'utf8')).targets.status, 'workspace keeps explicit targets');
  assert.ok(g.nodes.server.data.targets.start && g.nodes.postgres.data.targets.start);
  assert.deepStrictEqual(g.dependencies.zitadel.map((d) => d.target), ['postgres']);
});
