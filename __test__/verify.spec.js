'use strict';
// Issue 7 (verify): lints and dry-runs the workflow without starting anything. One broken
// workspace per rule fails with that rule's file, key and remediation; the example workspace
// passes for every profile; no environment value is ever printed; nothing is written.

const test = require('node:test');
const assert = require('node:assert');
const fs = require('fs');
const path = require('path');
const h = require('./helpers');

const SECRETS = ['dev-secret-value-123', 'staging-secret-456'];

/** A small valid workspace (one app, one dependency, two profiles), then `mutate` breaks it. */
function workspace(name, mutate = () => {}) {
  const ws = path.join(h.RUN_DIR, 'verify', name);
  const w = (f, text) => {
    fs.mkdirSync(path.dirname(path.join(ws, f)), { recursive: true });
    fs.writeFileSync(path.join(ws, f), text);
  };
  w('package.json', JSON.stringify({ name: `orch-verify-${name}`, private: true }));
  w('nx.json', JSON.stringify({ pluginsConfig: { '@workspace/orchestrator': { profiles: ['development', 'staging'], services: { api: { requiredEnv: ['API_KEY'] } } } } }, null, 2));
  w('ecosystem.config.js', "module.exports = { apps: [{ name: 'api', cwd: 'apps/api', script: 'main.js' }] };\n");
  w('apps/api/main.js', 'setInterval(() => {}, 1000);\n');
  w('apps/api/project.json', JSON.stringify({ name: 'api', targets: { start: { executor: '@workspace/orchestrator:start' } } }));
  w('config/env/development.env', `API_KEY=${SECRETS[0]}\nPORT=4100\n`);
  w('config/env/staging.env', `API_KEY=${SECRETS[1]}\nPORT=4101\n`);
  w('docker-compose.yml', 'services:\n  db:\n    image: orchestrator-local/busybox:1\n    ports: ["127.0.0.1:4200:5432"]\n    healthcheck:\n      test: ["CMD", "true"]\n      interval: 5s\n');
  w('project.json', JSON.stringify({ name: 'workspace', targets: { verify: { executor: '@workspace/orchestrator:verify' }, status: { executor: '@workspace/orchestrator:status', options: { json: true } } } }));
  mutate({ ws, w, edit: (f, fn) => h.edit(path.join(ws, f), fn) });
  return ws;
}

function tree(dir) {
  const out = [];
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    out.push(p);
    if (e.isDirectory()) out.push(...tree(p));
  }
  return out.sort();
}

function verify(ws, args = []) {
  const before = tree(ws);
  const text = h.cli(['verify', ...args], ws);
  const json = h.cli(['verify', '--json', ...args], ws);
  assert.deepStrictEqual(tree(ws), before, 'verify writes nothing');
  for (const s of SECRETS) assert.ok(!text.out.includes(s) && !json.out.includes(s), `the value ${s} is never printed`);
  const report = json.stdout.trim() ? JSON.parse(json.stdout) : null;
  if (report && !report.error) require('./contract').check('verify-report', report);
  if (report && report.error) require('./contract').check('actionable-error', report);
  return { text, json, report };
}

test('a clean workspace: the start order and what would run per profile, values masked, exit 0', () => {
  const ws = workspace('clean');
  const { text, report } = verify(ws, ['--all-profiles']);
  assert.strictEqual(text.code, 0, text.out);
  assert.match(text.stdout, /profile development: start order db → api/);
  assert.match(text.stdout, /profile staging: start order db → api/);
  assert.match(text.stdout, /api +app +pm2 main\.js fork env API_KEY=\*\*\* PORT=\*\*\*/);
  assert.match(text.stdout, /db +dependency container orch-verify-clean-db-1 image orchestrator-local\/busybox:1 ports \[4200:5432\]/);
  assert.match(text.stdout, /verify: no problems/);
  assert.strictEqual(report.ok, true);
  assert.deepStrictEqual(report.profiles.map((p) => p.profile), ['development', 'staging']);
  const api = report.profiles[1].services.find((s) => s.name === 'api');
  assert.strictEqual(api.definition.env.API_KEY, '***');
  assert.strictEqual(api.definition.autorestart, false, 'the PM2 definition as start would hand it over');
  assert.match(api.definition.out_file, /apps\/logs\/api\/out\.log$/);
  // The schedule start would follow: api declares no dependsOn, so it waits for db's health.
  assert.deepStrictEqual(api.waitsOn, ['db:ready']);
  assert.deepStrictEqual(report.profiles[1].services.find((s) => s.name === 'db').waitsOn, []);
  assert.match(text.stdout, /api +app +pm2 main\.js .*\(waits on db:ready\)/);
  // One profile by default (development); an unregistered one is bad input.
  assert.deepStrictEqual(verify(ws).report.profiles.map((p) => p.profile), ['development']);
  const r = h.cli(['verify', '--profile', 'prodution'], ws);
  assert.strictEqual(r.code, 10, r.out);
  assert.match(r.stderr, /EXIT_PROFILE_UNDEFINED/);
});

const BROKEN = [
  ['ecosystem-syntax', ({ w }) => w('ecosystem.config.js', 'module.exports = { apps: [ {\n'), [], 'ecosystem', 'ecosystem.config.js', /\(module\)/, /could not be loaded/],
  ['ecosystem-throws', ({ w }) => w('ecosystem.config.js', "throw new Error('no config for you');\n"), [], 'ecosystem', 'ecosystem.config.js', /\(module\)/, /no config for you/],
  ['duplicate-app', ({ w }) => w('ecosystem.config.js', "module.exports = { apps: [{ name: 'api', script: 'a.js' }, { name: 'api', script: 'b.js' }] };\n"), [], 'ecosystem', 'ecosystem.config.js', /apps\[1\]\.name/, /duplicate app name "api"/],
  ['profile-env', ({ ws }) => fs.rmSync(path.join(ws, 'config/env/staging.env')), ['--all-profiles'], 'profile-env', 'ecosystem.config.js', /apps\[0\]\.env_staging/, /config\/env\/staging\.env does not exist/],
  ['env-file-line', ({ w }) => w('config/env/development.env', `API_KEY=${SECRETS[0]}\nPORT=4100\nNOT A VALID LINE\n`), [], 'env-file', 'config/env/development.env', /line 3/, /column 1: variable name "NOT A VALID LINE" contains a space/],
  ['required-env', ({ w }) => w('config/env/development.env', 'PORT=4100\n'), [], 'required-env', 'config/env/development.env', /services\.api\.requiredEnv/, /"api" needs API_KEY/],
  ['compose-key', ({ edit }) => edit('docker-compose.yml', (t) => t.replace('    image:', '    imagee: x\n    image:')), [], 'compose', 'docker-compose.yml', /services\.db\.imagee/, /not a service key of the compose specification \(did you mean `image`\?\)/],
  ['compose-value', ({ edit }) => edit('docker-compose.yml', (t) => t.replace('interval: 5s', 'interval: soon')), [], 'compose', 'docker-compose.yml', /services\.db\.healthcheck\.interval/, /"soon" is not a duration/],
  [
    'depends-on-cycle',
    ({ edit }) => edit('docker-compose.yml', (t) => t.replace('    image:', '    depends_on: [cache]\n    image:') + '  cache:\n    image: orchestrator-local/busybox:1\n    depends_on: [db]\n    healthcheck:\n      test: ["CMD", "true"]\n      interval: 5s\n'),
    [],
    'depends-on',
    'docker-compose.yml',
    /depends_on/,
    /cycle/,
  ],
  [
    'depends-on-plugin-cycle',
    ({ edit }) => edit('nx.json', (t) => t.replace('"requiredEnv"', '"dependsOn": ["db"], "requiredEnv"').replace('"services": {', '"services": { "db": { "dependsOn": ["api"] },')),
    [],
    'nx-json',
    'nx.json',
    /services\.(api|db)\.dependsOn/,
    /wait on each other in a cycle \((api → db → api|db → api → db)\)/,
  ],
  ['port-conflict', ({ edit }) => edit('docker-compose.yml', (t) => t.replace('4200:5432', '4100:5432')), [], 'port-conflict', 'ecosystem.config.js', /api: PORT 4100/, /host port 4100 is published by both "db" and "api"/],
  ['restart-policy', ({ edit }) => edit('nx.json', (t) => t.replace('"requiredEnv"', '"restartPolicy": { "maxRestarts": -1 }, "requiredEnv"')), [], 'nx-json', 'nx.json', /restartPolicy\.maxRestarts/, /./],
  ['log-dir', ({ w }) => w('apps/logs', 'a file where the log directories should be\n'), [], 'log-dir', 'apps/logs/api', /^$/, /cannot be written/],
  ['target-option', ({ edit }) => edit('project.json', (t) => t.replace('"json":true', '"json":"yes"')), [], 'nx-target', 'project.json', /targets\.status\.options\.json/, /must be boolean/],
  [
    'script-shadows-target',
    ({ w, edit }) => {
      edit('nx.json', (t) => JSON.stringify({ plugins: ['@workspace/orchestrator'], ...JSON.parse(t) }));
      w('apps/api/package.json', JSON.stringify({ name: 'api', private: true, scripts: { test: 'node --test', build: 'tsc' } }));
    },
    [],
    'nx-target',
    'apps/api/package.json',
    /scripts\.test/,
    /would run without the profile's env/,
  ],
  ['target-executor', ({ edit }) => edit('apps/api/project.json', (t) => t.replace(':start', ':launch')), [], 'nx-target', 'apps/api/project.json', /targets\.start\.executor/, /is not an executor of this plugin/],
];

for (const [name, mutate, args, rule, file, at, message] of BROKEN) {
  test(`broken: ${name} → ${rule}`, () => {
    const ws = workspace(name, mutate);
    const { text, json, report } = verify(ws, args);
    assert.strictEqual(text.code, 2, text.out);
    assert.strictEqual(json.code, 2, json.out);
    assert.match(text.stderr, /EXIT_USAGE \(2\)/);
    assert.match(text.stderr, /verify found \d+ problems?/);
    assert.strictEqual(report.ok, false);
    const p = report.problems.find((x) => x.rule === rule);
    assert.ok(p, `a ${rule} problem among ${JSON.stringify(report.problems, null, 1)}`);
    assert.strictEqual(path.relative(ws, p.file), file);
    assert.match(p.at, at);
    assert.match(p.message, message);
    assert.ok(p.remediation.length > 10, `a remediation: ${p.remediation}`);
    assert.ok(text.stdout.includes(`✗ ${rule}`) && text.stdout.includes(p.remediation), text.stdout);
  });
}

// Valid input that cannot be honoured as written: a warning, kept apart, never a failure.
const WARNED = [
  ['autorestart', ({ edit }) => edit('ecosystem.config.js', (t) => t.replace("script: 'main.js'", "script: 'main.js', autorestart: true, max_restarts: 3")), 'autorestart', 'ecosystem.config.js', /apps\[0\]\.autorestart/, /PM2's own; the orchestrator supersedes it/],
  ['no-healthcheck', ({ edit }) => edit('docker-compose.yml', (t) => t.replace(/ {4}healthcheck:[\s\S]*$/, '')), 'healthcheck', 'docker-compose.yml', /services\.db\.healthcheck$/, /counts as ready once running/],
  ['slow-healthcheck', ({ edit }) => edit('docker-compose.yml', (t) => t.replace('interval: 5s', 'interval: 60s')), 'healthcheck', 'docker-compose.yml', /services\.db\.healthcheck\.interval/, /interval 60s is longer than 30s/],
  ['swarm-key', ({ edit }) => edit('docker-compose.yml', (t) => t.replace('    image:', '    deploy:\n      placement:\n        constraints: [node.role==manager]\n    image:')), 'compose', 'docker-compose.yml', /services\.db\.deploy\.placement/, /needs swarm/],
  ['unset-variable', ({ edit }) => edit('docker-compose.yml', (t) => t.replace('    image:', '    environment:\n      TOKEN: ${NOT_SET_ANYWHERE}\n    image:')), 'compose', 'docker-compose.yml', /services\.db\.environment\.TOKEN/, /NOT_SET_ANYWHERE variable is not set/],
];

for (const [name, mutate, rule, file, at, message] of WARNED) {
  test(`warned: ${name} → ${rule}`, () => {
    const ws = workspace(name, mutate);
    const { text, report } = verify(ws);
    assert.strictEqual(text.code, 0, text.out);
    assert.strictEqual(report.ok, true);
    assert.deepStrictEqual(report.problems, []);
    const w = report.warnings.find((x) => x.rule === rule && at.test(x.at));
    assert.ok(w, `a ${rule} warning among ${JSON.stringify(report.warnings, null, 1)}`);
    assert.strictEqual(path.relative(ws, w.file), file);
    assert.match(w.message, message);
    if (file.endsWith('.yml')) assert.ok(Number.isInteger(w.line) && w.line > 0, `a line: ${JSON.stringify(w)}`);
    assert.ok(text.stdout.includes(`⚠ ${rule}`), text.stdout);
    assert.match(text.stdout, /verify: no problems \(\d+ warnings?\)/);
  });
}

test('every problem of a file at once, each with its line; one broken service leaves the others', () => {
  const ws = workspace('many', ({ edit }) =>
    edit('docker-compose.yml', (t) => t.replace('ports: ["127.0.0.1:4200:5432"]', 'ports: ["99999:1"]\n    mem_limit: lots') + '  cache:\n    image: orchestrator-local/busybox:1\n    stop_grace_period: soon\n  fine:\n    image: orchestrator-local/busybox:1\n'),
  );
  const { text, report } = verify(ws);
  assert.strictEqual(text.code, 2, text.out);
  const compose = report.problems.filter((p) => p.rule === 'compose').map((p) => [p.at, p.line]);
  assert.deepStrictEqual(compose.map((c) => c[0]), ['services.db.ports[0]', 'services.db.mem_limit', 'services.cache.stop_grace_period']);
  assert.ok(compose.every((c) => Number.isInteger(c[1])), JSON.stringify(compose));
  assert.match(text.stdout, /docker-compose\.yml:\d+ services\.db\.mem_limit/);
  // The service that loaded is still in the dry run.
  assert.ok(report.profiles[0].services.some((s) => s.name === 'fine'), JSON.stringify(report.profiles[0].order));
});

test('the example workspace passes for every profile, through Nx too', async () => {
  const r = h.cli(['verify', '--all-profiles'], h.EXAMPLE);
  assert.strictEqual(r.code, 0, r.out);
  assert.match(r.stdout, /profile production: start order postgres → zitadel → admin → server/);
  assert.ok(!r.out.includes('ExampleMasterkeyOf32CharactersDE'), 'no env value');
  const n = await h.nx(['workspace:verify', '--', '--all-profiles']);
  assert.strictEqual(n.code, 0, n.out);
  assert.match(n.stdout, /profile staging: start order/);
  assert.match(n.stdout, /verify: no problems/);
  const broken = workspace('nx-broken', ({ edit }) => edit('docker-compose.yml', (t) => t.replace('interval: 5s', 'interval: soon')));
  fs.symlinkSync(path.join(h.EXAMPLE, 'node_modules'), path.join(broken, 'node_modules'));
  const bad = await h.nx(['workspace:verify'], broken);
  assert.notStrictEqual(bad.code, 0);
  assert.match(bad.out, /✗ compose/);
});

test('the pre-commit hook: installed, refuses a commit that breaks the workflow, removable', () => {
  const { spawnSync } = require('child_process');
  const ws = workspace('hooked');
  fs.symlinkSync(path.join(h.EXAMPLE, 'node_modules'), path.join(ws, 'node_modules'));
  fs.writeFileSync(path.join(ws, '.gitignore'), 'node_modules\n');
  const git = (...args) => spawnSync('git', ['-c', 'user.name=t', '-c', 'user.email=t@t', ...args], { cwd: ws, encoding: 'utf8', env: h.childEnv() });
  assert.strictEqual(git('init', '-q').status, 0);
  assert.strictEqual(git('add', '-A').status, 0);
  assert.strictEqual(git('commit', '-qm', 'init').status, 0);
  const hook = path.join(ws, '.git', 'hooks', 'pre-commit');
  const r = h.cli(['verify', '--install-hook'], ws);
  assert.strictEqual(r.code, 0, r.out);
  assert.ok(fs.statSync(hook).mode & 0o100, 'executable');
  // A commit that does not touch the workflow's files does not run verify.
  fs.writeFileSync(path.join(ws, 'README.md'), 'notes\n');
  git('add', 'README.md');
  let c = git('commit', '-m', 'docs');
  assert.strictEqual(c.status, 0, c.stdout + c.stderr);
  assert.ok(!/running orchestrator verify/.test(c.stdout + c.stderr));
  // One that breaks the compose file is refused, with verify's report.
  h.edit(path.join(ws, 'docker-compose.yml'), (t) => t.replace('interval: 5s', 'interval: soon'));
  git('add', 'docker-compose.yml');
  c = git('commit', '-m', 'broken healthcheck');
  assert.notStrictEqual(c.status, 0, 'the commit is refused');
  assert.match(c.stdout + c.stderr, /✗ compose/);
  h.edit(path.join(ws, 'docker-compose.yml'), (t) => t.replace('interval: soon', 'interval: 10s'));
  git('add', 'docker-compose.yml');
  c = git('commit', '-m', 'healthcheck every 10s');
  assert.strictEqual(c.status, 0, c.stdout + c.stderr);
  assert.match(c.stdout + c.stderr, /running orchestrator verify/);
  // Removable; a hook that is not ours is never replaced or removed.
  assert.match(h.cli(['verify', '--remove-hook'], ws).stdout, /pre-commit hook removed/);
  assert.ok(!fs.existsSync(hook));
  assert.match(h.cli(['verify', '--remove-hook'], ws).stdout, /no pre-commit hook of ours/);
  fs.writeFileSync(hook, '#!/bin/sh\necho mine\n');
  const refused = h.cli(['verify', '--install-hook'], ws);
  assert.strictEqual(refused.code, 2, refused.out);
  assert.match(refused.stderr, /exists and is not ours/);
  assert.strictEqual(fs.readFileSync(hook, 'utf8'), '#!/bin/sh\necho mine\n');
});
