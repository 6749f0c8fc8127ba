'use strict';
// Issue 7 (contract): contracts/openapi.json describes the command surface (operations, options,
// exit codes) and the payloads as JSON Schemas; real outputs are checked against them here and
// in the specs that produce them (status, logs, restarts → events, verify).

const test = require('node:test');
const assert = require('node:assert');
const fs = require('fs');
const path = require('path');
const h = require('./helpers');
const { check, DIR } = require('./contract');

const openapi = JSON.parse(fs.readFileSync(path.join(DIR, 'openapi.json'), 'utf8'));
const executors = JSON.parse(fs.readFileSync(path.join(h.ROOT, 'executors.json'), 'utf8')).executors;
const exitNames = require('../lib/native').exitCodes().map((c) => c.name);

test('openapi.json: 3.1, one operation per executor, its options the executor schema, known exit codes', () => {
  assert.strictEqual(openapi.openapi, '3.1.0');
  const ops = Object.entries(openapi.paths).map(([p, item]) => [p, item.post]);
  assert.deepStrictEqual(ops.map(([, o]) => o.operationId).sort(), Object.keys(executors).sort());
  for (const [p, o] of ops) {
    const ref = o.requestBody.content['application/json'].schema.$ref;
    assert.strictEqual(path.resolve(DIR, ref), path.resolve(h.ROOT, executors[o.operationId].schema), `${p} options`);
    assert.ok(fs.existsSync(path.resolve(DIR, ref)));
    assert.ok(o['x-exit-codes'].includes('OK'));
    for (const c of o['x-exit-codes']) assert.ok(exitNames.includes(c), `${p}: ${c} is in the exit-code table`);
    for (const r of Object.values(o.responses)) {
      // An interactive operation's success prints nothing a program reads (dashboard): no content.
      for (const media of Object.values(r.content || {})) {
        if (!media.schema.$ref) continue; // text (the dashboard's table when not a terminal)
        const name = media.schema.$ref.replace('#/components/schemas/', '');
        assert.ok(openapi.components.schemas[name], `${p}: ${name} is a component`);
      }
    }
  }
  for (const [name, s] of Object.entries(openapi.components.schemas)) {
    if (s.$ref) assert.ok(fs.existsSync(path.join(DIR, s.$ref)), `${name} → ${s.$ref}`);
  }
});

test('actionable errors as printed with --json fit the contract', () => {
  const ws = path.join(h.RUN_DIR, 'contracts');
  fs.mkdirSync(path.join(ws, 'apps', 'logs', 'api'), { recursive: true });
  fs.writeFileSync(path.join(ws, 'package.json'), '{"name":"orch-contracts","private":true}');
  fs.writeFileSync(path.join(ws, 'nx.json'), '{}');
  fs.writeFileSync(path.join(ws, 'ecosystem.config.js'), "module.exports = { apps: [{ name: 'api', script: 'main.js' }] };\n");
  const cases = [
    [['start', '--cwd', path.join(h.RUN_DIR, 'nowhere'), '--json'], 2],
    [['logs', 'nope', '--json'], 11],
    [['logs', 'api', '--since', 'yesterday', '--json'], 2],
    [['status', '--profile', 'prodution', '--json'], 10],
    [['verify', '--profile', 'prodution', '--json'], 10],
    [['frobnicate', '--json'], 2],
  ];
  for (const [args, code] of cases) {
    const r = h.cli(args, ws);
    assert.strictEqual(r.code, code, `${args.join(' ')}: ${r.out}`);
    const err = JSON.parse(r.stdout.trim().split('\n').pop());
    check('actionable-error', err, args.join(' '));
    assert.strictEqual(err.error.exitCode, code);
  }
});

test('log entries as logs --json prints them fit the contract, instances included', () => {
  const ws = path.join(h.RUN_DIR, 'contracts');
  const dir = path.join(ws, 'apps', 'logs', 'api');
  fs.writeFileSync(path.join(dir, 'out.log'), '2026-11-25T10:00:00.000+00:00: hello\n    a continuation\n2026-11-25T10:00:01.000Z: {"level":50,"msg":"x"}\n');
  fs.writeFileSync(path.join(dir, 'error.log'), '2026-11-25T10:00:00.500Z: WARN careful\n');
  fs.writeFileSync(path.join(dir, 'out-7.log'), '2026-11-25T10:00:02.000Z: from instance 7\n');
  const r = h.cli(['logs', 'api', '--json'], ws);
  assert.strictEqual(r.code, 0, r.out);
  const lines = r.stdout.trim().split('\n').map((l) => JSON.parse(l));
  assert.strictEqual(lines.length, 5);
  for (const e of lines) check('log-entry', e, JSON.stringify(e));
  assert.strictEqual(lines[4].instance, 7);
});
