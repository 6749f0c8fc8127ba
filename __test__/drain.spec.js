'use strict';
// lib/drain.js, the graceful shutdown the preload gives every Node app, run as PM2 runs it
// (`node --require lib/preload.js <script>`, PM2's env) but without PM2, so each rule is seen on
// its own. The end-to-end proof under PM2's cluster reloads is __test__/reload.spec.js.

const test = require('node:test');
const assert = require('node:assert');
const fs = require('fs');
const os = require('os');
const path = require('path');
const http = require('http');
const { spawn } = require('child_process');

const PRELOAD = path.join(__dirname, '..', 'lib', 'preload.js');
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'orch-drain-'));
test.after(() => fs.rmSync(dir, { recursive: true, force: true }));

/** Starts `code` under the preload; resolves once it printed `listening <port>`. */
function start(name, code, { port, before } = {}) {
  const script = path.join(dir, `${name}.js`);
  fs.writeFileSync(script, code);
  const args = ['--require', PRELOAD];
  if (before) {
    // A module loaded before the app's code (as PM2 injects @pm2/io) that listens to SIGINT.
    fs.writeFileSync(path.join(dir, `${name}-before.js`), before);
    args.push('--require', path.join(dir, `${name}-before.js`));
  }
  const child = spawn(process.execPath, [...args, script], {
    cwd: dir,
    env: { PATH: process.env.PATH, ORCHESTRATOR_CAPTURE: '1', PORT: String(port), kill_timeout: '4000' },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  return new Promise((resolve) => {
    child.stdout.on('data', (d) => {
      if (String(d).includes('listening')) resolve({ child, exited });
    });
  });
}

function get(port, agent, path_ = '/') {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path: path_, agent }, (res) => {
      let body = '';
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode, body, connection: res.headers.connection }));
    });
    req.on('error', reject);
  });
}

const SLOW = `const http = require('http');
http.createServer((req, res) => setTimeout(() => res.end('done'), req.url === '/slow' ? 600 : 1)).listen(process.env.PORT, '127.0.0.1', () => console.log('listening'));
`;

test('no handler of its own: the in-flight request is answered, then it dies of the signal', async () => {
  const { child, exited } = await start('plain', SLOW, { port: 18130 });
  const slow = get(18130, false, '/slow');
  await new Promise((r) => setTimeout(r, 100));
  child.kill('SIGINT');
  const res = await slow;
  assert.deepStrictEqual([res.status, res.body], [200, 'done']);
  assert.deepStrictEqual(await exited, { code: null, signal: 'SIGINT' });
});

test('a listener from before the app (signal-exit style) is not the app’s: it still dies of the signal', async () => {
  const before = `const listener = () => { if (process.listeners('SIGINT').length === 1) { process.removeListener('SIGINT', listener); process.kill(process.pid, 'SIGINT'); } };
process.on('SIGINT', listener);
`;
  const { child, exited } = await start('injected', SLOW, { port: 18131, before });
  child.kill('SIGINT');
  assert.deepStrictEqual(await exited, { code: null, signal: 'SIGINT' });
});

test("the app's own handler: its server.close() leaves a keep-alive connection for its next request, answered `Connection: close`; its exit waits for the drain", async () => {
  const code = `const http = require('http');
const server = http.createServer((req, res) => res.end('ok')).listen(process.env.PORT, '127.0.0.1', () => console.log('listening'));
process.on('SIGINT', () => server.close(() => process.exit(3)));
`;
  const { child, exited } = await start('own', code, { port: 18132 });
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  assert.strictEqual((await get(18132, agent)).connection, 'keep-alive');
  child.kill('SIGINT');
  await new Promise((r) => setTimeout(r, 150));
  // Node's own server.close() would have destroyed this idle connection: a reset here.
  const last = await get(18132, agent);
  assert.deepStrictEqual([last.status, last.connection], [200, 'close']);
  agent.destroy();
  assert.deepStrictEqual(await exited, { code: 3, signal: null });
});

test('a process with nothing to drain (no server, a timer) dies of the signal, as without the preload', async () => {
  const { child, exited } = await start('idle', "setInterval(() => {}, 1000); console.log('listening');", { port: 0 });
  child.kill('SIGINT');
  assert.deepStrictEqual(await exited, { code: null, signal: 'SIGINT' });
});
