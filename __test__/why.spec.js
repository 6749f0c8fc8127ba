'use strict';
// Issue 19: `why <service>` in a real workspace (real PM2 with a private PM2_HOME, real
// containers, real Nx), one blocker each: a dependency that is not healthy (with its health
// output), a held port (naming the holder), a crash loop (its last lines), a missing env var, a
// one-shot job that failed; and a healthy service in one line.

const test = require('node:test');
const assert = require('node:assert');
const fs = require('fs');
const net = require('net');
const path = require('path');
const { spawn } = require('child_process');
const Ajv = require('ajv/dist/2020');
const h = require('./helpers');

const validate = new Ajv({ allErrors: true, strict: true }).compile(JSON.parse(fs.readFileSync(path.join(h.ROOT, 'contracts', 'why.schema.json'), 'utf8')));

const ws = path.join(h.RUN_DIR, 'why');
const PORTS = { fine: 18421, blocked: 18422, 'needs-sick': 18423 };
fs.mkdirSync(path.join(ws, 'config', 'env'), { recursive: true });
fs.writeFileSync(path.join(ws, 'package.json'), JSON.stringify({ name: `orch-test-why-${process.pid}`, private: true }));
fs.writeFileSync(path.join(ws, 'config', 'env', 'development.env'), 'WHY=1\n');
const MAIN = `if (process.env.MODE === 'crash') {
  console.log('crasher: connecting to the queue');
  setTimeout(() => { console.error('boom: cannot connect to amqp://127.0.0.1:1'); process.exit(1); }, 200);
} else {
  require('net').createServer((s) => s.end()).listen(Number(process.env.PORT), '127.0.0.1');
}
`;
// One directory (one Nx project) per app, each with the same script.
const app = (name, env) => {
  fs.mkdirSync(path.join(ws, 'apps', name), { recursive: true });
  fs.writeFileSync(path.join(ws, 'apps', name, 'package.json'), JSON.stringify({ name, version: '1.0.0', private: true }));
  fs.writeFileSync(path.join(ws, 'apps', name, 'main.js'), MAIN);
  return { name, cwd: `apps/${name}`, script: 'main.js', exec_mode: 'fork', env };
};
fs.writeFileSync(
  path.join(ws, 'ecosystem.config.js'),
  `module.exports = { apps: ${JSON.stringify([
    app('fine', { PORT: String(PORTS.fine) }),
    app('blocked', { PORT: String(PORTS.blocked) }),
    app('needs-sick', { PORT: String(PORTS['needs-sick']) }),
    app('crasher', { MODE: 'crash' }),
    app('envless', { PORT: '18424' }),
  ])} };\n`,
);
fs.writeFileSync(
  path.join(ws, 'docker-compose.yml'),
  `services:
  sick:
    image: orchestrator-local/busybox:1
    command: ["sleep", "3600"]
    healthcheck:
      test: ["CMD-SHELL", "echo 'db not ready: no response on 5432'; exit 1"]
      interval: 1s
      retries: 1
    stop_grace_period: 1s
  migrate:
    image: orchestrator-local/busybox:1
    command: ["sh", "-c", "echo migrating; echo 'migration 7 failed: relation users is missing' >&2; exit 3"]
  store:
    image: orchestrator-local/busybox:1
    command: ["sleep", "3600"]
    stop_grace_period: 1s
    depends_on:
      migrate:
        condition: service_completed_successfully
`,
);
fs.writeFileSync(
  path.join(ws, 'nx.json'),
  JSON.stringify({
    plugins: ['@workspace/orchestrator'],
    pluginsConfig: {
      '@workspace/orchestrator': {
        defaultServices: [],
        services: {
          fine: { ports: [PORTS.fine], dependsOn: [], health: { tcp: `127.0.0.1:${PORTS.fine}` } },
          blocked: { ports: [PORTS.blocked], dependsOn: [] },
          'needs-sick': { ports: [PORTS['needs-sick']], dependsOn: ['sick'] },
          // Not ready within 3 s (it exits), then in backoff for a minute: longer than the test.
          crasher: { dependsOn: [], readyTimeoutSeconds: 3, restartPolicy: { backoffInitialMs: 60000, backoffMaxMs: 60000 } },
          envless: { dependsOn: [], requiredEnv: ['PAYMENTS_API_KEY'] },
        },
      },
    },
  }),
);
fs.symlinkSync(path.join(h.EXAMPLE, 'node_modules'), path.join(ws, 'node_modules'));

let holder = null;
test.after(async () => {
  if (holder) holder.kill();
  h.cli(['stop', '--all'], ws);
  await h.killPm2();
  h.removeContainers(ws);
});

const why = (service, ...args) => h.cli(['why', service, ...args], ws);
const whyJson = (service) => {
  const r = why(service, '--json');
  assert.strictEqual(r.code, 0, r.out);
  const j = JSON.parse(r.stdout);
  assert.ok(validate(j), `contracts/why.schema.json: ${JSON.stringify(validate.errors, null, 2)}\n${r.stdout}`);
  return j;
};

test('a healthy service says so in one line', async () => {
  const r0 = h.cli(['start', 'fine'], ws);
  assert.strictEqual(r0.code, 0, r0.out);
  const r = why('fine');
  assert.strictEqual(r.code, 0, r.out);
  assert.match(r.stdout, /^fine is online and healthy \(pid \d+, up \d+s, 0 restarts\)\n$/);
  assert.strictEqual(whyJson('fine').up, true);
});

test('a dependency that is not healthy: the chain names it, with its health output', async () => {
  const started = h.cli(['start', 'sick'], ws);
  assert.notStrictEqual(started.code, 0, 'its health check fails');
  const r = why('needs-sick');
  assert.strictEqual(r.code, 0, r.out);
  assert.match(r.stdout, /^needs-sick is stopped: it needs sick ready, and sick is \w+/);
  assert.match(r.stdout, /\[NOT\] needs-sick needs sick ready/);
  assert.match(r.stdout, /db not ready: no response on 5432/, 'the health check output');
  assert.match(r.stdout, /orchestrator why sick/, 'what to do next');
  const j = whyJson('needs-sick');
  assert.deepStrictEqual([j.blockers[0].service, j.blockers[0].met, j.blockers[0].needs], ['sick', false, 'ready']);
  const own = why('sick');
  assert.match(own.stdout, /db not ready: no response on 5432/, own.stdout);
});

test('a held port: the holder is named', async () => {
  holder = spawn(process.execPath, ['-e', `require('net').createServer().listen(${PORTS.blocked}, '127.0.0.1'); setInterval(() => {}, 1000)`], { stdio: 'ignore' });
  await h.until('the port is held', () => new Promise((resolve) => net.connect(PORTS.blocked, '127.0.0.1').on('connect', function () { this.destroy(); resolve(true); }).on('error', () => resolve(false))));
  const j = whyJson('blocked');
  assert.strictEqual(j.refusal.code, 'EXIT_PORT_IN_USE', JSON.stringify(j));
  const held = j.ports.find((p) => p.port === PORTS.blocked);
  assert.ok(held && held.heldBy && held.heldBy.startsWith(`pid ${holder.pid} `), JSON.stringify(j.ports));
  const r = why('blocked');
  assert.match(r.stdout, new RegExp(`${PORTS.blocked} held by pid ${holder.pid} \\(`));
  assert.ok(j.remediation.length > 0);
  holder.kill();
  holder = null;
});

test('a crash loop: its last lines say why', async () => {
  h.cli(['start', 'crasher'], ws); // not ready: it exits after 200 ms
  // One answer, read whole: the state and the lines it explains it with come from the same look.
  let answer = null;
  await h.until('crasher in backoff or failed', () => {
    const r = why('crasher');
    answer = /^crasher is (backoff|failed)/.test(r.stdout) ? r.stdout : null;
    return answer !== null;
  });
  assert.match(answer, /boom: cannot connect to amqp:\/\/127\.0\.0\.1:1/, answer);
  assert.match(answer, /exited with code 1/);
  assert.match(answer, /nx run crasher:restart/, 'what to do');
});

test('a missing env var: the refusal a start would give, naming it', () => {
  const j = whyJson('envless');
  assert.strictEqual(j.refusal.code, 'EXIT_ENV_MISSING', JSON.stringify(j));
  assert.match(j.refusal.message, /PAYMENTS_API_KEY/);
  assert.match(j.summary, /^envless cannot start now: EXIT_ENV_MISSING \(12\)/);
  assert.ok(j.remediation.some((x) => /PAYMENTS_API_KEY|development\.env/.test(x)), JSON.stringify(j.remediation));
  assert.strictEqual(h.cli(['status', '--json'], ws).code, 0, 'why changed nothing: no record was written');
});

test('a one-shot job that failed: what waits on it names it, and its own lines show', () => {
  const started = h.cli(['start', 'store'], ws);
  assert.strictEqual(started.code, 18, started.out);
  const r = why('store');
  assert.match(r.stdout, /^store is \w+: it needs migrate completed, and migrate is failed/, r.stdout);
  assert.match(r.stdout, /EXIT_CONTAINER_FAILED/);
  const job = why('migrate');
  assert.match(job.stdout, /migration 7 failed: relation users is missing/, job.stdout);
});

test('through Nx: the inferred <service>:why target; bad input is refused', async () => {
  const r = await h.nx(['envless:why'], ws);
  assert.strictEqual(r.code, 0, r.out);
  assert.match(r.stdout, /envless cannot start now: EXIT_ENV_MISSING/);
  const unknown = why('nope');
  assert.strictEqual(unknown.code, 11, unknown.out);
  assert.match(unknown.stderr, /no service named "nope"/);
  assert.strictEqual(h.cli(['why'], ws).code, 2);
  assert.strictEqual(h.cli(['why', 'fine', 'blocked'], ws).code, 2);
});
