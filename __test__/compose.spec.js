'use strict';
// Issue 15: real compose files work as they are. The fixtures in __test__/fixtures/compose are
// ours, shaped like public projects' files (see its README); each is laid out as a repository
// has it (.env, build contexts, secret files) and must verify with no error, every service
// inferred as an Nx project, while one broken service never takes the others down.

const test = require('node:test');
const assert = require('node:assert');
const fs = require('fs');
const path = require('path');
const { spawnSync } = require('child_process');
const h = require('./helpers');

const FIXTURES = path.join(__dirname, 'fixtures', 'compose');
const SERVICES = {
  'scheduler-stack': ['db', 'queue', 'api', 'worker', 'init', 'cli'],
  'media-stack': ['gallery-server', 'gallery-ml', 'cache', 'database'],
  'backend-platform': ['studio', 'gateway', 'auth', 'meta', 'analytics', 'db', 'vector', 'pooler'],
  identity: ['idp', 'init', 'db'],
  polyglot: ['api', 'worker', 'cache'],
};

/** A compose-only Nx workspace made of a fixture: the plugin in nx.json, nothing else of ours. */
function workspace(name) {
  const ws = path.join(h.RUN_DIR, `compose-${name}`);
  fs.rmSync(ws, { recursive: true, force: true });
  fs.cpSync(path.join(FIXTURES, name), ws, { recursive: true });
  fs.writeFileSync(path.join(ws, 'package.json'), JSON.stringify({ name: `orch-compose-${name}`, private: true }));
  fs.writeFileSync(path.join(ws, 'nx.json'), JSON.stringify({ plugins: ['@workspace/orchestrator'] }));
  fs.symlinkSync(path.join(h.EXAMPLE, 'node_modules'), path.join(ws, 'node_modules'));
  return ws;
}

const nx = (ws, ...args) => spawnSync(path.join(h.EXAMPLE, 'node_modules', '.bin', 'nx'), args, { cwd: ws, env: h.childEnv(), encoding: 'utf8' });

for (const [name, services] of Object.entries(SERVICES)) {
  test(`${name}: verifies with no error, warnings apart, every service an Nx project`, (t) => {
    const ws = workspace(name);
    const r = h.cli(['verify', '--json'], ws);
    const report = JSON.parse(r.stdout);
    assert.deepStrictEqual(report.problems, [], JSON.stringify(report.problems, null, 1));
    assert.strictEqual(r.code, 0, r.out);
    assert.deepStrictEqual([...report.profiles[0].order].sort(), [...services].sort(), 'every service in the start order');
    for (const w of report.warnings) assert.ok(w.message && w.remediation && w.at, JSON.stringify(w));
    const shown = nx(ws, 'show', 'projects');
    assert.strictEqual(shown.status, 0, shown.stdout + shown.stderr);
    const projects = shown.stdout.trim().split('\n');
    for (const s of services) assert.ok(projects.includes(s), `${s} among ${projects.join(', ')}`);
    const rules = {};
    for (const w of report.warnings) rules[w.rule] = (rules[w.rule] || 0) + 1;
    t.diagnostic(`${name}: ${report.profiles[0].order.length} services, warnings ${JSON.stringify(rules)}`);
  });
}

test('one broken service: the others keep their projects and start; the broken one says every problem', () => {
  const ws = workspace('identity');
  h.edit(path.join(ws, 'docker-compose.yaml'), (t) => t.replace("      - '18085:8080'", "      - '99999:1'\n    stop_grace_period: soon"));
  const shown = nx(ws, 'show', 'projects');
  assert.strictEqual(shown.status, 0, shown.stderr);
  for (const s of ['idp', 'init', 'db', 'workspace']) assert.ok(shown.stdout.split('\n').includes(s), `${s}: ${shown.stdout}`);
  const r = h.cli(['verify', '--json'], ws);
  const report = JSON.parse(r.stdout);
  assert.strictEqual(r.code, 2);
  assert.deepStrictEqual(report.problems.map((p) => p.at), ['services.idp.ports[0]', 'services.idp.stop_grace_period']);
  const files = () => spawnSync('find', [ws, '-path', `${ws}/node_modules`, '-prune', '-o', '-print'], { encoding: 'utf8' }).stdout.split('\n').sort().join('\n');
  const before = files();
  const start = h.cli(['start', 'idp'], ws);
  assert.strictEqual(start.code, 2, start.out);
  // Bad input changes nothing: no PM2 daemon, no container, no file written.
  assert.ok(!fs.existsSync(path.join(h.PM2_HOME, 'pm2.pid')), 'no PM2 daemon started');
  assert.strictEqual(h.docker(['ps', '-aq', '--filter', `label=dev.orchestrator.workspace=${ws}`]).stdout.trim(), '');
  assert.strictEqual(files().replace(/\n[^\n]*\.orchestrator[^\n]*/g, ''), before.replace(/\n[^\n]*\.orchestrator[^\n]*/g, ''), 'no file written (but the command lock)');
  assert.match(start.stderr, /compose service "idp" cannot start \(2 problems\)/);
  assert.match(start.stderr, /docker-compose\.yaml:\d+: services\.idp\.ports\[0\]/);
  assert.match(start.stderr, /docker-compose\.yaml:\d+: services\.idp\.stop_grace_period/);
});

test('a compose-only workspace without nx.json: the bin finds it and verifies it', () => {
  const ws = workspace('media-stack');
  fs.rmSync(path.join(ws, 'nx.json'));
  const r = h.cli(['verify'], ws);
  assert.strictEqual(r.code, 0, r.out);
  assert.match(r.stdout, /profile development: start order /);
  assert.match(r.stdout, /container gallery_server image orchestrator-local\/busybox:1 ports \[18283:2283\]/);
});
