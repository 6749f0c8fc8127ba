'use strict';
// lib/capture.js, the preload that makes Node apps write their own log lines: run exactly as PM2
// runs it (`node --require lib/capture.js <script>` with PM2's env), without PM2, so each of its
// rules is seen on its own. The end-to-end proof under PM2 is the fault suite's 1 GiB burst and
// the log tests.

const test = require('node:test');
const assert = require('node:assert');
const fs = require('fs');
const os = require('os');
const path = require('path');
const { spawnSync } = require('child_process');

const CAPTURE = path.join(__dirname, '..', 'lib', 'preload.js');
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'orch-capture-'));
test.after(() => fs.rmSync(dir, { recursive: true, force: true }));

/** Runs `code` as an app under the preload; returns its files and its real stdout/stderr. */
function runApp(name, code, env = {}) {
  const script = path.join(dir, `${name}.js`);
  fs.writeFileSync(script, code);
  const out = path.join(dir, name, 'out.log');
  const err = path.join(dir, name, 'error.log');
  const r = spawnSync(process.execPath, ['--require', CAPTURE, script], {
    cwd: dir,
    encoding: 'utf8',
    env: { PATH: process.env.PATH, ORCHESTRATOR_CAPTURE: '1', pm_out_log_path: out, pm_err_log_path: err, ...env },
  });
  const read = (f) => (fs.existsSync(f) ? fs.readFileSync(f, 'utf8') : '');
  return { code: r.status, stdout: r.stdout, stderr: r.stderr, out: read(out), err: read(err), dir: path.join(dir, name) };
}

const STAMP = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}[+-]\d\d:\d\d: /;
/** A file's lines without their stamps (each line must end with a newline). */
const bare = (text) => text.split('\n').slice(0, -1).map((l) => l.replace(STAMP, ''));

test('every line stamped as PM2 stamps them, to the right file, nothing on the real streams', () => {
  const r = runApp('basic', "console.log('one\\ntwo'); console.error('bad'); process.stdout.write('three\\n');");
  assert.strictEqual(r.code, 0, r.stderr);
  const lines = r.out.trimEnd().split('\n');
  assert.deepStrictEqual(lines.map((l) => l.replace(STAMP, '')), ['one', 'two', 'three']);
  assert.ok(lines.every((l) => STAMP.test(l)), r.out);
  assert.deepStrictEqual(bare(r.err), ['bad']);
  assert.strictEqual(r.stdout, '', 'nothing goes through PM2 as well (it would be written twice)');
  assert.strictEqual(r.stderr, '');
});

test('a line written in pieces is one line; a line without its end is kept, and written at exit', () => {
  const r = runApp('pieces', "process.stdout.write('he'); process.stdout.write('llo\\nwor'); setTimeout(() => process.stdout.write('ld\\nprompt> '), 50);");
  assert.deepStrictEqual(bare(r.out), ['hello', 'world', 'prompt> ']);
});

test('a rotation (the file renamed away) is noticed: later lines go to a new file, none lost', () => {
  const r = runApp(
    'rotated',
    `const fs = require('fs');
console.log('before');
fs.renameSync(process.env.pm_out_log_path, process.env.pm_out_log_path + '.1');
setTimeout(() => console.log('after'), 300);`,
  );
  assert.deepStrictEqual(bare(fs.readFileSync(path.join(r.dir, 'out.log.1'), 'utf8')), ['before']);
  assert.deepStrictEqual(bare(r.out), ['after']);
});

test("PM2's cluster hook is kept out; an app's own wrapper is honoured", () => {
  // PM2's ProcessContainer.js assigns its own write (which writes the files again); a file of
  // that name does the same here.
  fs.writeFileSync(path.join(dir, 'ProcessContainer.js'), "module.exports = () => { process.stdout.write = () => { throw new Error('PM2 hook called'); }; };");
  const r = runApp(
    'hooks',
    `require('./ProcessContainer.js')();
console.log('after the PM2 hook');
const inner = process.stdout.write;
process.stdout.write = (s, ...rest) => inner.call(process.stdout, '[app] ' + s, ...rest);
console.log('wrapped');`,
  );
  assert.strictEqual(r.code, 0, r.stderr);
  assert.deepStrictEqual(bare(r.out), ['after the PM2 hook', '[app] wrapped']);
});

test('cluster workers: the settings come from the pm2_env JSON; without ORCHESTRATOR_CAPTURE nothing is captured', () => {
  const out = path.join(dir, 'worker', 'out-3.log');
  runApp('worker', "console.log('from a worker');", {
    ORCHESTRATOR_CAPTURE: '',
    pm_out_log_path: '',
    pm2_env: JSON.stringify({ pm_out_log_path: out, pm_err_log_path: path.join(dir, 'worker', 'error-3.log'), env: { ORCHESTRATOR_CAPTURE: '1' } }),
  });
  assert.match(fs.readFileSync(out, 'utf8'), /: from a worker\n$/);
  const plain = runApp('plain', "console.log('to the pipe');", { ORCHESTRATOR_CAPTURE: '' });
  assert.strictEqual(plain.stdout, 'to the pipe\n');
  assert.strictEqual(plain.out, '');
});
