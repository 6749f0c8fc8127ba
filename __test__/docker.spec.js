'use strict';
// Issue 3 with busybox services: real dockerd, real PM2 (private PM2_HOME), the real runner.
// Every container, network and volume these tests create carries the temporary workspace's
// label or project name and is removed at the end.

const test = require('node:test');
const assert = require('node:assert');
const fs = require('fs');
const net = require('net');
const path = require('path');
const h = require('./helpers');

const WEB_PORT = 18080;
const HELD_PORT = 18081;
const REGISTRY = '127.0.0.1:5000';
const PULL_TAG = `run-${process.pid}`;

const ws = h.tempWorkspace('docker');
fs.writeFileSync(
  path.join(ws, 'docker-compose.yml'),
  `services:
  web:
    image: orchestrator-local/busybox:1
    command: ["sh", "-c", "echo web-stdout-line; echo web-stderr-line >&2; mkdir -p /www && echo ok > /www/index.html && exec httpd -f -p 8080 -h /www"]
    ports: ["127.0.0.1:\${WEB_PORT:-${WEB_PORT}}:8080"]
    healthcheck:
      test: ["CMD", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1:8080/"]
      interval: 1s
      timeout: 2s
      retries: 30
    stop_grace_period: 3s
    labels:
      team: tests
  never:
    image: orchestrator-local/busybox:1
    command: ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1; done"]
    healthcheck:
      test: ["CMD-SHELL", "echo still-not-ready && false"]
      interval: 1s
      retries: 100
    stop_grace_period: 2s
  ghost:
    image: orchestrator-local/busybox:tag-that-exists-nowhere
  held:
    image: orchestrator-local/busybox:1
    command: ["sleep", "600"]
    ports: ["127.0.0.1:${HELD_PORT}:8080"]
    stop_grace_period: 1s
  clash:
    image: orchestrator-local/busybox:1
    command: ["sleep", "600"]
    ports: ["127.0.0.1:18082:8080"]
    stop_grace_period: 1s
  named:
    image: orchestrator-local/busybox:1
    container_name: orch-test-named-${process.pid}
    command: ["sleep", "600"]
    stop_grace_period: 1s
  pulled:
    image: ${REGISTRY}/orch-test/busybox:\${PULL_TAG:-none}
    command: ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1; done"]
    stop_grace_period: 2s
`,
);
// A project for the dependency, as a user adds one per compose service.
fs.mkdirSync(path.join(ws, 'deps', 'web'), { recursive: true });
fs.writeFileSync(
  path.join(ws, 'deps', 'web', 'project.json'),
  JSON.stringify({ name: 'web', targets: { start: { executor: '@workspace/orchestrator:start' }, restart: { executor: '@workspace/orchestrator:restart' }, stop: { executor: '@workspace/orchestrator:stop' } } }),
);
h.edit(path.join(ws, 'nx.json'), (t) => {
  const nx = JSON.parse(t);
  const cfg = nx.pluginsConfig['@workspace/orchestrator'];
  cfg.defaultServices = ['web'];
  cfg.services = { never: { healthTimeoutSeconds: 4 }, web: { restartPolicy: { backoffInitialMs: 300 } } };
  return JSON.stringify(nx, null, 2);
});

const containerOf = (service) =>
  h.docker(['ps', '-aq', '--no-trunc', '--filter', `label=dev.orchestrator.workspace=${ws}`, '--filter', `label=dev.orchestrator.service=${service}`]).stdout.trim();
const inspect = (id) => JSON.parse(h.docker(['inspect', id]).stdout)[0];
const entry = async (name) => (await h.list()).find((p) => p.name === name);

const until = h.until;

test.after(async () => {
  await h.killPm2();
  h.removeContainers(ws);
  h.docker(['rmi', `${REGISTRY}/orch-test/busybox:${PULL_TAG}`]);
});

test('start: container created with compose + our labels, healthy, runner online under PM2, output forwarded', async () => {
  const r = await h.nx(['web:start'], ws);
  assert.strictEqual(r.code, 0, r.out);
  assert.match(r.out, /✔ web\s+started — profile development, image orchestrator-local\/busybox:1, container [0-9a-f]{12}, pid \d+, ports 18080, healthy in \d+\.\d s/);
  const id = containerOf('web');
  const c = inspect(id);
  assert.strictEqual(c.State.Health.Status, 'healthy');
  const labels = c.Config.Labels;
  assert.strictEqual(labels['com.docker.compose.service'], 'web');
  assert.match(labels['com.docker.compose.project'], /^orch-test-/);
  assert.strictEqual(labels['dev.orchestrator.profile'], 'development');
  assert.strictEqual(labels.team, 'tests');
  const web = await entry('web');
  assert.strictEqual(web.status, 'online');
  assert.strictEqual(web.env.ORCHESTRATOR_KIND, 'dependency');
  assert.strictEqual((await h.get(`http://127.0.0.1:${WEB_PORT}/`)).body.trim(), 'ok');
  // pm2 logs web: the container's stdout and stderr, each in its own file.
  const logs = path.join(ws, 'apps', 'logs', 'web');
  await until('forwarded output', () => fs.existsSync(path.join(logs, 'out.log')) && fs.readFileSync(path.join(logs, 'out.log'), 'utf8').includes('web-stdout-line'));
  await until('forwarded stderr', () => fs.readFileSync(path.join(logs, 'error.log'), 'utf8').includes('web-stderr-line'));
  assert.ok(!fs.readFileSync(path.join(logs, 'out.log'), 'utf8').includes('web-stderr-line'), 'stderr stays out of out.log');

  // Idempotent: a second start keeps the same container.
  const again = await h.nx(['web:start'], ws);
  assert.strictEqual(again.code, 0, again.out);
  assert.match(again.out, /already online/);
  assert.strictEqual(containerOf('web'), id);
});

test('restart: graceful stop, a new container, new runner pid, healthy again', async () => {
  const before = containerOf('web');
  const pidBefore = (await entry('web')).pid;
  const r = await h.nx(['web:restart'], ws);
  assert.strictEqual(r.code, 0, r.out);
  const after = containerOf('web');
  assert.notStrictEqual(after, before);
  assert.match(r.out, new RegExp(`restarted — .*container ${after.slice(0, 12)}.*healthy in`));
  const web = await entry('web');
  assert.notStrictEqual(web.pid, pidBefore);
  assert.match(r.out, new RegExp(`pid ${web.pid}`));
  assert.strictEqual(inspect(after).State.Health.Status, 'healthy');
});

test('pm2 stop stops the container; docker kill makes the runner exit non-zero and the agent restart it', async () => {
  await h.call('stop', 'web');
  const id = containerOf('web');
  const state = inspect(id).State;
  assert.strictEqual(state.Running, false, 'pm2 stop stopped the container');

  const r = h.cli(['start', 'web'], ws);
  assert.strictEqual(r.code, 0, r.out);
  const running = containerOf('web');
  const before = await entry('web');
  h.docker(['kill', running]);
  const after = await until('the agent to restart the runner', async () => {
    const e = await entry('web');
    return e && e.pid && e.pid !== before.pid && e.status === 'online' ? e : null;
  });
  assert.ok(after);
  const events = fs.readFileSync(path.join(ws, 'apps', 'logs', 'web', 'events.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  const exited = events.filter((e) => e.event === 'exited' && !e.requested).pop();
  assert.deepStrictEqual([exited.exitCode, exited.signal], [137, 'SIGKILL'], 'the container code, read as a signal');
  assert.strictEqual(events.filter((e) => e.event === 'restart_scheduled').pop().delayMs, 300);
  const pm2log = fs.readFileSync(path.join(h.PM2_HOME, 'pm2.log'), 'utf8');
  assert.match(pm2log, /App \[web:\d+\] exited with code \[137\]/, 'PM2 saw the runner exit with the container code');
  assert.match(fs.readFileSync(path.join(ws, 'apps', 'logs', 'web', 'error.log'), 'utf8'), /container exited with code 137/);
});

test('stop: the workspace stop stops dependencies and the runner', async () => {
  const r = h.cli(['stop', 'web'], ws);
  assert.strictEqual(r.code, 0, r.out);
  assert.strictEqual((await entry('web')).status, 'stopped');
  assert.strictEqual(inspect(containerOf('web')).State.Running, false);
});

test('missing image → EXIT_IMAGE_UNAVAILABLE with the engine cause, recorded failed, no retry loop', async () => {
  const r = h.cli(['start', 'ghost'], ws);
  assert.strictEqual(r.code, 16, r.out);
  assert.match(r.stderr, /EXIT_IMAGE_UNAVAILABLE \(16\)/);
  assert.match(r.stderr, /tag-that-exists-nowhere.*could not be pulled: \S+/);
  assert.strictEqual((r.stderr.match(/pulling /g) || []).length, 1, 'pulled once, not in a loop');
  assert.strictEqual(await entry('ghost'), undefined, 'no PM2 process to crash-loop');
  assert.strictEqual(containerOf('ghost'), '');
  const st = JSON.parse(fs.readFileSync(path.join(ws, '.orchestrator', 'state', 'ghost.json'), 'utf8'));
  assert.deepStrictEqual([st.phase.state, st.lastFailure.code, st.lastFailure.retryable], ['failed', 'EXIT_IMAGE_UNAVAILABLE', false]);
});

test('health not reached in time → degraded, EXIT_DEPENDENCY_DEGRADED with the last health output', async () => {
  const r = await h.nx(['workspace:start', '--', '--service=never'], ws);
  assert.notStrictEqual(r.code, 0);
  assert.match(r.out, /EXIT_DEPENDENCY_DEGRADED \(17\)/);
  assert.match(r.out, /did not become healthy within 4 s/);
  assert.match(r.out, /last health-check output: still-not-ready/);
  assert.match(r.out, /healthTimeoutSeconds/);
  const st = JSON.parse(fs.readFileSync(path.join(ws, '.orchestrator', 'state', 'never.json'), 'utf8'));
  assert.deepStrictEqual([st.lastFailure.state, st.lastFailure.code], ['degraded', 'EXIT_DEPENDENCY_DEGRADED']);
  assert.strictEqual(h.cli(['stop', 'never'], ws).code, 0);
});

test('a published port held by a host process → the holder is named, nothing starts', async () => {
  const server = net.createServer().listen(HELD_PORT, '127.0.0.1');
  await new Promise((r) => server.once('listening', r));
  try {
    const before = await h.snapshot();
    const r = h.cli(['start', 'held', '--json'], ws);
    assert.strictEqual(r.code, 14, r.out);
    const err = JSON.parse(r.stdout).error;
    assert.strictEqual(err.code, 'EXIT_PORT_IN_USE');
    assert.strictEqual(err.service, 'held');
    assert.match(err.message, new RegExp(`port ${HELD_PORT} is held by pid ${process.pid} \\(`));
    assert.deepStrictEqual(await h.snapshot(), before);
    assert.strictEqual(containerOf('held'), '');
  } finally {
    server.close();
  }
});

test('engine refusals → EXIT_CONTAINER_FAILED with the engine status and message', async () => {
  // A port published by a container that is not ours (the engine's proxy holds it).
  const other = h.docker(['run', '-d', '--label', `dev.orchestrator.test-owner=${ws}`, '-p', '127.0.0.1:18082:80', 'orchestrator-local/busybox:1', 'sleep', '600']).stdout.trim();
  // A container name taken by a container the orchestrator did not create.
  const squatter = h.docker(['create', '--name', `orch-test-named-${process.pid}`, 'orchestrator-local/busybox:1', 'true']).stdout.trim();
  try {
    let r = h.cli(['start', 'clash', '--json'], ws);
    assert.strictEqual(r.code, 18, r.out);
    let err = JSON.parse(r.stdout).error;
    assert.strictEqual(err.code, 'EXIT_CONTAINER_FAILED');
    assert.match(err.message, /the Docker engine refused to start .*: engine status 500: .*port is already allocated/);
    assert.strictEqual(await entry('clash'), undefined);
    r = h.cli(['start', 'named', '--json'], ws);
    assert.strictEqual(r.code, 18, r.out);
    err = JSON.parse(r.stdout).error;
    assert.match(err.message, /engine status 409: the container name "orch-test-named-\d+" is already in use by a container the orchestrator did not create/);
    assert.ok(err.remediation.some((x) => x.includes(`docker rm -f orch-test-named-${process.pid}`)));
  } finally {
    h.docker(['rm', '-f', other, squatter]);
  }
});

test('engine unreachable → EXIT_PREREQUISITE saying how to start it; a key compose does not have → file, line + key', async () => {
  const env = { ...h.childEnv(), DOCKER_HOST: `unix://${path.join(h.RUN_DIR, 'no-engine.sock')}` };
  const r = require('child_process').spawnSync(process.execPath, [path.join(h.ROOT, 'bin', 'orchestrator.js'), 'start', 'web'], { cwd: ws, env, encoding: 'utf8' });
  assert.strictEqual(r.status, 13, r.stderr);
  assert.match(r.stderr, /no Docker engine answers at unix:\/\/.*no-engine\.sock/);
  assert.match(r.stderr, /systemctl start docker/);

  const other = h.tempWorkspace('docker-badkey');
  h.edit(path.join(other, 'docker-compose.yml'), (t) => t.replace('  postgres:\n', '  postgres:\n    imagee: typo\n'));
  const bad = h.cli(['start', 'postgres'], other);
  assert.strictEqual(bad.code, 2, bad.out);
  assert.match(bad.stderr, /docker-compose\.yml:\d+: services\.postgres\.imagee: is not a service key of the compose specification \(did you mean `image`\?\)/);
});

test('pull path: an image only in a local registry is pulled with progress', async (t) => {
  const ping = h.docker(['version']);
  assert.strictEqual(ping.code, 0, ping.out);
  const reachable = await new Promise((res) => {
    const s = net.connect(5000, '127.0.0.1', () => (s.destroy(), res(true)));
    s.on('error', () => res(false));
  });
  assert.ok(reachable, 'a registry answers on 127.0.0.1:5000 (scripts/registry.sh; .ci/run starts it)');
  const ref = `${REGISTRY}/orch-test/busybox:${PULL_TAG}`;
  // A layer of its own (committed on top of busybox), so the pull has something to download.
  const tmp = `orch-test-commit-${process.pid}`;
  assert.strictEqual(h.docker(['run', '--name', tmp, 'orchestrator-local/busybox:1', 'sh', '-c', `echo ${PULL_TAG} > /unique`]).code, 0);
  assert.strictEqual(h.docker(['commit', tmp, ref]).code, 0);
  h.docker(['rm', '-f', tmp]);
  const push = h.docker(['push', ref]);
  assert.strictEqual(push.code, 0, push.out);
  assert.strictEqual(h.docker(['rmi', ref]).code, 0);
  assert.notStrictEqual(h.docker(['image', 'inspect', ref]).code, 0, 'removed locally');

  const env = { ...h.childEnv(), PULL_TAG };
  const r = require('child_process').spawnSync(process.execPath, [path.join(h.ROOT, 'bin', 'orchestrator.js'), 'start', 'pulled'], { cwd: ws, env, encoding: 'utf8' });
  assert.strictEqual(r.status, 0, r.stderr);
  assert.match(r.stderr, new RegExp(`pulled: pulling ${ref.replace(/[.]/g, '\\.')}`));
  assert.match(r.stderr, /pulled: [0-9a-f]{12}: (Pulling fs layer|Downloading|Download complete|Pull complete)/);
  assert.match(r.stderr, /Pull complete/);
  assert.match(r.stdout, /✔ pulled\s+started — .*\(pulled\)/);
  assert.strictEqual(h.docker(['image', 'inspect', ref]).code, 0);
  assert.strictEqual(h.cli(['stop', 'pulled'], ws).code, 0);
  t.diagnostic(r.stderr.split('\n').slice(0, 6).join(' | '));
});

test('tests leave no container of ours and no daemon behind', () => h.assertNothingLeft(ws));
