'use strict';
// The binding itself: exported functions, error shape, and the workspace lock across processes.

const test = require('node:test');
const assert = require('node:assert');
const fs = require('fs');
const os = require('os');
const path = require('path');
const { spawn } = require('child_process');
const native = require('../lib/native');
const { normalize, OrchestratorError } = require('../lib/errors');

test('exit-code table is the contract', () => {
  const table = Object.fromEntries(native.exitCodes().map((c) => [c.name, c.code]));
  assert.deepStrictEqual(table, {
    OK: 0,
    EXIT_FAILURE: 1,
    EXIT_USAGE: 2,
    EXIT_PROFILE_UNDEFINED: 10,
    EXIT_SERVICE_UNKNOWN: 11,
    EXIT_ENV_MISSING: 12,
    EXIT_PREREQUISITE: 13,
    EXIT_PORT_IN_USE: 14,
    EXIT_CONFLICTING_PROCESS: 15,
    EXIT_IMAGE_UNAVAILABLE: 16,
    EXIT_DEPENDENCY_DEGRADED: 17,
    EXIT_CONTAINER_FAILED: 18,
    EXIT_RESTART_THRESHOLD_EXCEEDED: 19,
    EXIT_UNHEALTHY: 20,
  });
});

test('addon errors become OrchestratorErrors with code, number and remediation', () => {
  let thrown;
  try {
    native.validateName('../etc', 'service', 'orchestrator start ../etc');
  } catch (e) {
    thrown = e;
  }
  assert.ok(thrown, 'invalid names throw');
  assert.ok(thrown instanceof OrchestratorError, 'structured at the boundary (lib/native.js)');
  const err = normalize(thrown);
  assert.strictEqual(err, thrown);
  assert.strictEqual(err.code, 'EXIT_USAGE');
  assert.strictEqual(err.exitCode, 2);
  assert.strictEqual(err.command, 'orchestrator start ../etc');
  assert.ok(err.remediation.length > 0);
  assert.deepStrictEqual(Object.keys(err.toJSON().error), ['code', 'exitCode', 'service', 'command', 'message', 'remediation']);
});

test('selectServices: default set, all, explicit, unknown', () => {
  const root = path.resolve(__dirname, '..', 'examples', 'workspace');
  const ecosystemFile = path.join(root, 'ecosystem.config.js');
  const ecosystem = JSON.parse(JSON.stringify(require(ecosystemFile)));
  const sel = (services, all) => native.selectServices({ workspaceRoot: root, services, all, ecosystem, ecosystemFile, command: 't' }).map((s) => `${s.name}:${s.kind}`);
  // Order of nx.json defaultServices; docker-compose.yml services are dependencies.
  assert.deepStrictEqual(sel([], false), ['postgres:dependency', 'admin:app', 'server:app']);
  assert.deepStrictEqual(sel([], true), ['admin:app', 'server:app', 'postgres:dependency', 'zitadel:dependency']);
  assert.deepStrictEqual(sel(['server'], false), ['server:app']);
  assert.throws(() => sel(['ghost'], false), (e) => normalize(e).code === 'EXIT_SERVICE_UNKNOWN');
});

test("the addon's errors are JS errors with the contract as properties, thrown and rejected alike", async () => {
  const raw = require('../index.js');
  const props = (e) => ({ code: e.code, exitCode: e.exitCode, service: e.service, command: e.command, remediation: Array.isArray(e.remediation) && e.remediation.length > 0, isError: e instanceof Error });
  let thrown;
  try {
    raw.validateName('../etc', 'service', 'orchestrator start ../etc');
  } catch (e) {
    thrown = e;
  }
  assert.deepStrictEqual(props(thrown), { code: 'EXIT_USAGE', exitCode: 2, service: null, command: 'orchestrator start ../etc', remediation: true, isError: true });
  assert.match(thrown.message, /\.\.\/etc/);
  // An async export (the addon calls back into JS for PM2's table) that rejects.
  const root = path.resolve(__dirname, '..', 'examples', 'workspace');
  const ecosystemFile = path.join(root, 'ecosystem.config.js');
  const req = { workspaceRoot: root, ecosystem: {}, ecosystemFile, pm2: [], nodeVersion: process.versions.node, command: 'orchestrator start db', supervisor: 'orchestrator-supervisor' };
  const rejected = await raw.launch('bogus', req, { supervisor: 'orchestrator-supervisor', pm2Home: os.tmpdir() }, async () => [], async () => null).then(
    () => null,
    (e) => e,
  );
  assert.ok(rejected, 'a verb that launches nothing rejects');
  assert.strictEqual(rejected.code, 'EXIT_USAGE');
  assert.strictEqual(rejected.exitCode, require('../lib/errors').EXIT[rejected.code], 'the number is the table\'s');
  assert.strictEqual(rejected.command, 'orchestrator start db');
  assert.ok(Array.isArray(rejected.remediation) && rejected.remediation.length > 0);
  // The wrapper makes it an OrchestratorError without reading the message.
  assert.strictEqual(normalize(rejected).code, rejected.code);
});

test('the workspace lock excludes another process until released', async () => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'orch-lock-'));
  const lock = await native.acquireLock(root, 1000, 't');
  const script = `require(${JSON.stringify(path.resolve(__dirname, '..', 'index.js'))}).acquireLock(${JSON.stringify(root)}, 300, 'second')
    .then(() => { console.log('acquired'); }, (e) => { console.log(e.code, e.exitCode, e.command, e.message); })`;
  const run = () =>
    new Promise((resolve) => {
      const c = spawn(process.execPath, ['-e', script]);
      let out = '';
      c.stdout.on('data', (d) => (out += d));
      c.on('close', () => resolve(out.trim()));
    });
  const blocked = await run();
  // The raw addon's rejection (no JS wrapper in that process) carries the contract as properties.
  assert.match(blocked, new RegExp(`^EXIT_FAILURE 1 second .*another orchestrator command \\(pid ${process.pid}\\) holds`));
  lock.release();
  assert.strictEqual(await run(), 'acquired');
  fs.rmSync(root, { recursive: true, force: true });
});
