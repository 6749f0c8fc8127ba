'use strict';
// Issue 15, the runtime features on a real dockerd with local images: networks and aliases
// resolve between containers, a secret is readable at its path, an external volume keeps its
// data across a recreate (and a missing one is refused, never created), a one-shot job gates its
// dependent and a failing one blocks it with its lines, an image is built from a context and
// rebuilt only when it changed, and `restart: true` cascades. A compose-only workspace (no
// ecosystem file), real PM2 (private PM2_HOME), every container/network/volume/image removed.

const test = require('node:test');
const assert = require('node:assert');
const fs = require('fs');
const path = require('path');
const h = require('./helpers');

const ws = path.join(h.RUN_DIR, 'compose-runtime');
const project = `orch-test-${path.basename(h.RUN_DIR)}-rt`.toLowerCase();
const EXTERNAL = `orch-test-external-${process.pid}`;
const MISSING = `orch-test-missing-${process.pid}`;
const w = (f, text) => {
  fs.mkdirSync(path.dirname(path.join(ws, f)), { recursive: true });
  fs.writeFileSync(path.join(ws, f), text);
};
w('package.json', JSON.stringify({ name: project, private: true }));
w('secrets/token.txt', 's3cr3t-token-value\n');
// An `environment:` secret: its value comes from the project's .env and reaches the container as
// a file, never through the spec (PM2's env) or the container's env.
w('.env', 'API_KEY=k3y-from-dotenv-value\n');
w('web/Dockerfile', 'FROM orchestrator-local/busybox:1\nCOPY message /message\nCMD ["sh", "-c", "cat /message; exec sleep 600"]\n');
w('web/message', 'first build\n');
w('web/.dockerignore', 'scratch\n');
w('web/scratch', 'ignored\n');
const SLEEP = '["sh", "-c", "trap \'exit 0\' TERM; while true; do sleep 1; done"]';
w(
  'compose.yaml',
  `x-base: &base
  image: orchestrator-local/busybox:1
  stop_grace_period: 1s
  command: ${SLEEP}
services:
  db:
    <<: *base
    ports: ["127.0.0.1::80"]
    networks:
      back:
        aliases: [db.internal]
  client:
    <<: *base
    networks: [back]
    depends_on: [db]
    secrets: [token, api_key]
  keeper:
    <<: *base
    attach: false
    command: ["sh", "-c", "date +%s%N >> /data/runs; trap 'exit 0' TERM; while true; do sleep 1; done"]
    volumes: [kept:/data]
  lost:
    <<: *base
    volumes: [gone:/data]
  migrate:
    image: orchestrator-local/busybox:1
    command: ["sh", "-c", "echo migrating; echo 42 > /shared/done"]
    volumes: [shared:/shared]
  app:
    <<: *base
    command: ["sh", "-c", "cat /shared/done; trap 'exit 0' TERM; while true; do sleep 1; done"]
    volumes: [shared:/shared]
    depends_on:
      migrate:
        condition: service_completed_successfully
  badjob:
    image: orchestrator-local/busybox:1
    command: ["sh", "-c", "echo step one; echo 'migration failed: relation users exists' >&2; exit 3"]
  blocked:
    <<: *base
    depends_on:
      badjob:
        condition: service_completed_successfully
  web:
    build: ./web
    stop_grace_period: 1s
  replicated:
    <<: *base
    deploy:
      replicas: 3
  parent:
    <<: *base
  child:
    <<: *base
    depends_on:
      parent:
        condition: service_started
        restart: true
networks:
  back: {}
volumes:
  kept:
    external: true
    name: ${EXTERNAL}
  gone:
    external: true
    name: ${MISSING}
  shared: {}
secrets:
  token:
    file: ./secrets/token.txt
  api_key:
    environment: API_KEY
`,
);

const id = (service) => h.docker(['ps', '-q', '--filter', `label=dev.orchestrator.workspace=${ws}`, '--filter', `label=dev.orchestrator.service=${service}`]).stdout.trim();
const exec = (service, ...cmd) => h.docker(['exec', id(service), ...cmd]);

test.before(() => {
  assert.strictEqual(h.docker(['volume', 'create', EXTERNAL]).code, 0);
});

test.after(async () => {
  await h.assertNothingLeft(ws);
  h.docker(['volume', 'rm', '-f', EXTERNAL, MISSING]);
  h.docker(['rmi', '-f', `${project}-web`]);
});

test('networks: a service reaches another by its alias on their network; a secret is read-only at /run/secrets', () => {
  const r = h.cli(['start', 'client'], ws);
  assert.strictEqual(r.code, 0, r.out);
  assert.match(r.stdout, /✔ db\s+started/, 'depends_on brings db first');
  const ping = exec('client', 'ping', '-c', '1', '-W', '2', 'db.internal');
  assert.strictEqual(ping.code, 0, ping.out);
  assert.strictEqual(exec('client', 'ping', '-c', '1', '-W', '2', 'db').code, 0, 'the service name resolves too');
  assert.strictEqual(exec('client', 'cat', '/run/secrets/token').stdout, 's3cr3t-token-value\n');
  assert.notStrictEqual(exec('client', 'sh', '-c', 'echo x > /run/secrets/token').code, 0, 'read-only');
  assert.strictEqual(exec('client', 'cat', '/run/secrets/api_key').stdout, 'k3y-from-dotenv-value');
  const jlist = require('child_process').spawnSync(process.execPath, [path.join(h.ROOT, 'node_modules', 'pm2', 'bin', 'pm2'), 'jlist'], { env: h.childEnv(), encoding: 'utf8' }).stdout;
  assert.ok(jlist.includes('"client"') && !jlist.includes('k3y-from-dotenv-value'), 'the secret is not in PM2');
  assert.ok(!h.docker(['inspect', id('client')]).stdout.includes('k3y-from-dotenv-value'), 'nor in the container config');
  const nets = JSON.parse(h.docker(['inspect', id('client')]).stdout)[0].NetworkSettings.Networks;
  assert.deepStrictEqual(Object.keys(nets), [`${project}_back`]);
  // A container-only port gets an ephemeral host port; status shows the one the engine bound.
  const bound = Number(h.docker(['port', id('db'), '80/tcp']).stdout.trim().split(':').pop());
  assert.ok(bound > 0, 'an ephemeral port');
  const row = JSON.parse(h.cli(['status', '--json', '--service', 'db'], ws).stdout).services[0];
  assert.deepStrictEqual(row.ports, [bound]);
});

test('an external volume keeps its data across a recreate; a missing one is refused and never created', () => {
  let r = h.cli(['start', 'keeper'], ws);
  assert.strictEqual(r.code, 0, r.out);
  assert.match(r.stderr, /keeper: warning: .*compose\.yaml:\d+: services\.keeper\.attach: `attach` is not applied/, 'what cannot be honoured is said at start');
  const first = id('keeper');
  r = h.cli(['restart', 'keeper'], ws);
  assert.strictEqual(r.code, 0, r.out);
  assert.notStrictEqual(id('keeper'), first, 'a new container');
  const runs = h.docker(['run', '--rm', '-v', `${EXTERNAL}:/data`, 'orchestrator-local/busybox:1', 'cat', '/data/runs']).stdout.trim().split('\n');
  assert.strictEqual(runs.length, 2, `both runs wrote to the same volume: ${runs}`);
  const lost = h.cli(['start', 'lost', '--json'], ws);
  assert.strictEqual(lost.code, 18, lost.out);
  assert.match(lost.stdout + lost.stderr, new RegExp(`external volume \\\\"${MISSING}\\\\", which does not exist`));
  assert.match(lost.stdout + lost.stderr, new RegExp(`docker volume create ${MISSING}`));
  assert.notStrictEqual(h.docker(['volume', 'inspect', MISSING]).code, 0, 'not created');
});

test('a one-shot job runs to completion before its dependent; a failing one blocks it with its last lines', () => {
  let r = h.cli(['start', 'app'], ws);
  assert.strictEqual(r.code, 0, r.out);
  assert.match(r.stdout, /✔ migrate\s+completed/);
  assert.match(r.stdout, /✔ app\s+started/);
  assert.strictEqual(exec('app', 'cat', '/shared/done').stdout.trim(), '42');
  assert.ok(!id('migrate'), 'the job is not running (not supervised)');
  const logs = h.cli(['logs', 'migrate'], ws);
  assert.match(logs.stdout, /migrating/, 'its output is in its log files');
  r = h.cli(['start', 'blocked'], ws);
  assert.strictEqual(r.code, 18, r.out);
  assert.match(r.stderr, /one-shot job badjob exited with code 3; not started because they wait for it to complete successfully: blocked/);
  assert.match(r.stderr, /migration failed: relation users exists/);
  assert.ok(!id('blocked'), 'its dependent did not start');
});

test('build: from the context, with progress; not rebuilt when nothing changed; rebuilt when the context did', () => {
  let r = h.cli(['start', 'web'], ws);
  assert.strictEqual(r.code, 0, r.out);
  assert.match(r.stderr, new RegExp(`web: building ${project}-web from `));
  const image = () => JSON.parse(h.docker(['image', 'inspect', `${project}-web`]).stdout)[0];
  const firstId = image().Id;
  assert.ok(image().Config.Labels['dev.orchestrator.context-hash']);
  assert.strictEqual(exec('web', 'cat', '/message').stdout, 'first build\n');
  assert.notStrictEqual(exec('web', 'ls', '/scratch').code, 0, '.dockerignore kept scratch out');
  // Ignored files do not count: no rebuild.
  fs.writeFileSync(path.join(ws, 'web', 'scratch'), 'changed but ignored\n');
  r = h.cli(['restart', 'web'], ws);
  assert.strictEqual(r.code, 0, r.out);
  assert.doesNotMatch(r.stderr, /building/);
  assert.strictEqual(image().Id, firstId);
  fs.writeFileSync(path.join(ws, 'web', 'message'), 'second build\n');
  r = h.cli(['restart', 'web'], ws);
  assert.strictEqual(r.code, 0, r.out);
  assert.match(r.stderr, /building/, `${r.out}\n${fs.readFileSync(path.join(ws, 'apps/logs/web/error.log'), 'utf8')}`);
  assert.notStrictEqual(image().Id, firstId);
  assert.strictEqual(exec('web', 'cat', '/message').stdout, 'second build\n');
  // A build that fails leaves the running container as it was (make-before-break).
  const running = id('web');
  fs.writeFileSync(path.join(ws, 'web', 'Dockerfile'), 'FROM orchestrator-local/busybox:1\nRUN exit 7\n');
  r = h.cli(['restart', 'web'], ws);
  assert.strictEqual(r.code, 16, r.out);
  assert.match(r.stderr, /EXIT_IMAGE_UNAVAILABLE[\s\S]*the build failed/);
  assert.strictEqual(id('web'), running, 'the running container is untouched');
  assert.strictEqual(exec('web', 'cat', '/message').stdout, 'second build\n');
});

test('depends_on restart: true — restarting a service restarts what declares it, after it', () => {
  let r = h.cli(['start', 'child'], ws);
  assert.strictEqual(r.code, 0, r.out);
  const before = { parent: id('parent'), child: id('child') };
  r = h.cli(['restart', 'parent'], ws);
  assert.strictEqual(r.code, 0, r.out);
  assert.match(r.stdout, /parent[\s\S]*child/, 'parent first, then child');
  assert.notStrictEqual(id('parent'), before.parent);
  assert.notStrictEqual(id('child'), before.child, 'the child was restarted too');
});

test('replicas: three containers numbered as compose numbers them, one runner each; stop stops all', async () => {
  const r = h.cli(['start', 'replicated'], ws);
  assert.strictEqual(r.code, 0, r.out);
  const names = () => h.docker(['ps', '--format', '{{.Names}}', '--filter', `label=dev.orchestrator.service=replicated`, '--filter', `label=dev.orchestrator.workspace=${ws}`]).stdout.trim().split('\n').filter(Boolean).sort();
  assert.deepStrictEqual(names(), [1, 2, 3].map((n) => `${project}-replicated-${n}`));
  await h.until('three runners online', async () => (await h.list()).filter((p) => p.name === 'replicated' && p.status === 'online').length === 3);
  // status: a row per replica, each with its runner and its container.
  const rows = JSON.parse(h.cli(['status', '--json', '--service', 'replicated'], ws).stdout).services;
  assert.deepStrictEqual(rows.map((x) => [x.name, x.replica, x.state]), [1, 2, 3].map((n) => ['replicated', n, 'online']));
  assert.strictEqual(new Set(rows.map((x) => x.containerId)).size, 3, JSON.stringify(rows));
  assert.ok(rows.every((x) => x.pids.length === 1), 'one runner each');
  assert.match(h.cli(['status', '--service', 'replicated'], ws).stdout, /replicated\[2\]/);
  // Each runner owns its container: killing one container restarts that one only.
  const second = h.docker(['ps', '-q', '--filter', `name=${project}-replicated-2`]).stdout.trim();
  h.docker(['kill', second]);
  await h.until('replica 2 replaced', () => {
    const now = h.docker(['ps', '-q', '--filter', `name=${project}-replicated-2`]).stdout.trim();
    return now && now !== second;
  }, 30000);
  assert.deepStrictEqual(names(), [1, 2, 3].map((n) => `${project}-replicated-${n}`));
  const stop = h.cli(['stop', 'replicated'], ws);
  assert.strictEqual(stop.code, 0, stop.out);
  assert.deepStrictEqual(names(), []);
});

test('stop --all stops every service of the compose-only workspace', () => {
  const r = h.cli(['stop', '--all'], ws);
  assert.strictEqual(r.code, 0, r.out);
  assert.strictEqual(h.docker(['ps', '-q', '--filter', `label=dev.orchestrator.workspace=${ws}`]).stdout.trim(), '');
});
