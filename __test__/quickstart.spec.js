'use strict';
// Issue 7 (documented workflow): the quickstart's commands, run as written on a copy of the
// example workspace, print what docs/quickstart.md says they print; the legacy script delegates.
// The docs cannot drift from the code.

const test = require('node:test');
const assert = require('node:assert');
const fs = require('fs');
const path = require('path');
const { spawnSync } = require('child_process');
const h = require('./helpers');

const md = fs.readFileSync(path.join(h.ROOT, 'docs', 'quickstart.md'), 'utf8');
const steps = [...md.matchAll(/```sh quickstart\n([\s\S]*?)```\s*```text\n([\s\S]*?)```/g)].map((m) => ({
  commands: m[1].split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#')),
  expected: m[2].split('\n').filter((l) => l.trim()),
}));
const esc = (s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
/** An expected line: its text with `…` standing for anything on that line. */
const pattern = (line) => new RegExp(line.split('…').map(esc).join('.*?'));

const ws = h.withoutZitadel(h.tempWorkspace('quickstart', { adminPort: 15177, serverPort: 13004, pgPort: 15436 }));
const sh = (cmd) => spawnSync('sh', ['-c', cmd], { cwd: ws, env: h.childEnv(), encoding: 'utf8' });

test.after(async () => {
  await h.killPm2();
  h.removeContainers(ws);
});

test('the quickstart has its steps', () => {
  assert.ok(steps.length >= 5, `${steps.length} steps`);
  assert.deepStrictEqual(steps[0].commands, ['npx nx run workspace:verify -- --all-profiles']);
});

for (const [i, step] of steps.entries()) {
  test(`quickstart step ${i + 1}: ${step.commands.join('; ')}`, () => {
    let out = '';
    for (const cmd of step.commands) {
      const r = sh(cmd);
      out += r.stdout + r.stderr;
      assert.strictEqual(r.status, 0, `${cmd}\n${r.stdout}${r.stderr}`);
    }
    for (const line of step.expected) assert.match(out, pattern(line), `docs/quickstart.md says: ${line}`);
  });
}

test('the legacy scripts/dev.sh only delegates to the Nx target, and says so', () => {
  const up = sh('npx nx run workspace:start');
  assert.strictEqual(up.status, 0, up.stdout + up.stderr);
  const r = sh('bash scripts/dev.sh');
  assert.strictEqual(r.status, 0, r.stdout + r.stderr);
  assert.match(r.stderr, /scripts\/dev\.sh: delegating to 'nx run workspace:start/);
  assert.match(r.stdout, /> nx run workspace:start/);
  assert.match(r.stdout, /✔ server +already online/);
  assert.strictEqual(sh('npx nx run workspace:stop-all').status, 0);
});
