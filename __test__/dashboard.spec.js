'use strict';
// Issue 19: `orchestrator dashboard`, driven as a user drives it — in a real terminal (tmux,
// on a private server socket), with keys sent by `send-keys` and the screen read by
// `capture-pane` — over real PM2, real apps and a real busybox container.

const test = require('node:test');
const assert = require('node:assert');
const fs = require('fs');
const path = require('path');
const { spawnSync } = require('child_process');
const h = require('./helpers');

const ws = path.join(h.RUN_DIR, 'dashboard');
fs.mkdirSync(path.join(ws, 'config', 'env'), { recursive: true });
fs.mkdirSync(path.join(ws, 'apps', 'web'), { recursive: true });
fs.writeFileSync(path.join(ws, 'package.json'), JSON.stringify({ name: `orch-test-dashboard-${process.pid}`, private: true }));
fs.writeFileSync(path.join(ws, 'config', 'env', 'development.env'), 'DASH=1\n');
fs.writeFileSync(path.join(ws, 'apps', 'web', 'package.json'), JSON.stringify({ name: 'web', version: '1.0.0', private: true }));
// `GET /say?word=w` writes `said w` to its log; it holds 32 MiB so its memory is plain to see.
fs.writeFileSync(
  path.join(ws, 'apps', 'web', 'main.js'),
  `const http = require('http');
const hold = Buffer.alloc(32 * 1024 * 1024, 1);
setInterval(() => hold[0]++, 1000);
http.createServer((req, res) => {
  const word = new URL(req.url, 'http://x').searchParams.get('word');
  if (word) console.log('said ' + word);
  res.end('ok');
}).listen(Number(process.env.PORT), '127.0.0.1');
`,
);
const PORT = 18000 + (process.pid % 1000);
fs.writeFileSync(
  path.join(ws, 'ecosystem.config.js'),
  `module.exports = { apps: ${JSON.stringify([
    { name: 'web', cwd: 'apps/web', script: 'main.js', exec_mode: 'fork', env: { PORT: String(PORT) } },
    { name: 'worker', cwd: 'apps/web', script: 'main.js', exec_mode: 'fork', env: { PORT: String(PORT + 1) } },
  ])} };\n`,
);
fs.writeFileSync(
  path.join(ws, 'docker-compose.yml'),
  `services:
  cache:
    image: orchestrator-local/busybox:1
    command: ["sleep", "3600"]
    healthcheck:
      test: ["CMD", "true"]
      interval: 1s
    stop_grace_period: 1s
`,
);
fs.writeFileSync(path.join(ws, 'nx.json'), JSON.stringify({ pluginsConfig: { '@workspace/orchestrator': { services: { web: { ports: [PORT], dependsOn: [] }, worker: { ports: [PORT + 1], dependsOn: [] } } } } }));

const SOCKET = `orch-test-${process.pid}`;
const tmux = (...args) => spawnSync('tmux', ['-L', SOCKET, ...args], { encoding: 'utf8', env: h.childEnv() });
const screen = (name) => tmux('capture-pane', '-p', '-t', name).stdout;
const keys = (name, ...k) => assert.strictEqual(tmux('send-keys', '-t', name, ...k).status, 0);

/** Opens the dashboard in a new tmux session `name` (width × height); when it ends, the shell
 * writes its exit code and the terminal's modes (`stty -a`) to `<name>.end`. */
function open(name, width = 120, height = 40) {
  const end = path.join(ws, `${name}.end`);
  fs.rmSync(end, { force: true });
  const cmd = `cd ${ws} && ${process.execPath} ${h.BIN} dashboard; echo "exit=$?" > ${end}; stty -a >> ${end}; sleep 30`;
  const r = tmux('new-session', '-d', '-s', name, '-x', String(width), '-y', String(height), cmd);
  assert.strictEqual(r.status, 0, r.stderr);
  return end;
}

const ended = (end) => h.until('the dashboard to end', () => fs.existsSync(end) && /exit=\d+[\s\S]*speed/.test(fs.readFileSync(end, 'utf8')) && fs.readFileSync(end, 'utf8'), 10000);

/** The dashboard's pid (the node process under the session's shell). */
function dashboardPid(name) {
  const shell = tmux('display-message', '-p', '-t', name, '#{pane_pid}').stdout.trim();
  const r = spawnSync('pgrep', ['-P', shell, '-f', 'dashboard'], { encoding: 'utf8' });
  return Number(r.stdout.trim().split('\n')[0]);
}

/** A terminal left as it was: canonical mode and echo on (raw mode turns both off). */
function restored(endText) {
  assert.match(endText, /exit=0/);
  assert.match(endText, /(^|\s)icanon(\s|$)/, endText);
  assert.match(endText, /(^|\s)echo(\s|$)/, endText);
}

test.after(async () => {
  tmux('kill-server');
  h.cli(['stop', '--all'], ws);
  await h.killPm2();
  h.removeContainers(ws);
});

const rssOf = (pid) => Number(/VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))[1]) * 1024;
const bytes = (s) => {
  const m = /^([\d.]+)([KMG])?$/.exec(s);
  return Number(m[1]) * ({ K: 1024, M: 1024 ** 2, G: 1024 ** 3 }[m[2]] || 1);
};
/** The row of `service` on the screen, split into its columns. */
const rowOf = (text, service) => {
  const line = text.split('\n').find((l) => new RegExp(`^\\s*${service}\\s`).test(l));
  return line ? line.trim().split(/\s+/) : null;
};

test('the dashboard shows every service with CPU and memory, follows logs, searches, restarts, and q restores the terminal', async () => {
  const up = h.cli(['start', '--all'], ws);
  assert.strictEqual(up.code, 0, up.out);
  const end = open('main');

  // Rows for every service: SERVICE STATE HEALTH CPU MEM RESTARTS UPTIME PORTS PROFILE PID.
  const text = await h.until('rows with CPU and memory', () => {
    const t = screen('main');
    const rows = ['web', 'worker', 'cache'].map((s) => rowOf(t, s));
    return rows.every((r) => r && r[1] === 'online' && /^\d+\.\d%$/.test(r[3]) && /^[\d.]+[KMG]?$/.test(r[4])) && t;
  }, 20000, () => screen('main'));
  assert.match(text, /SERVICE\s+STATE\s+HEALTH\s+CPU\s+MEM\s+RESTARTS\s+UPTIME\s+PORTS\s+PROFILE\s+PID/);
  // The memory is the process's own, as /proc says it.
  const web = rowOf(text, 'web');
  const pidBefore = Number(web[9]);
  const rss = rssOf(pidBefore);
  assert.ok(Math.abs(bytes(web[4]) - rss) <= Math.max(rss * 0.15, 4 << 20), `web: ${web[4]} on screen, /proc ${rss}`);
  assert.ok(bytes(web[4]) > 32 << 20, `it holds 32 MiB: ${web[4]}`);
  assert.match(text, /r restart/, 'the key bar');

  // A line the app writes after the dashboard opened shows in the log pane.
  const word = `zebra${process.pid}`;
  await h.get(`http://127.0.0.1:${PORT}/say?word=${word}`);
  await h.until('the new line in the log pane', () => screen('main').includes(`said ${word}`), 10000, () => screen('main'));

  // Search finds it (and counts it) as it is typed.
  keys('main', '/');
  keys('main', '-l', word);
  await h.until('the search to find the line', () => /\(1 found\)/.test(screen('main')) && screen('main').includes(`search: ${word}`), 5000, () => screen('main'));
  keys('main', 'Escape');

  // Select web (the log pane's title names the selected service in one-service mode).
  keys('main', 'a');
  for (let i = 0; i < 5 && !/logs: web /.test(screen('main')); i++) {
    keys('main', 'Down');
    await new Promise((r) => setTimeout(r, 200));
  }
  await h.until('web selected', () => /logs: web /.test(screen('main')), 3000, () => screen('main'));

  // Restart asks first, then runs the CLI's restart; the new pid shows.
  keys('main', 'r');
  await h.until('the confirmation', () => /restart web\? y yes/.test(screen('main')), 3000, () => screen('main'));
  keys('main', 'y');
  await h.until('the restart to finish', () => /✔ restart web: done/.test(screen('main')), 60000, () => screen('main'));
  const after = await h.until('a new pid on the row', () => {
    const r = rowOf(screen('main'), 'web');
    return r && r[1] === 'online' && Number(r[9]) !== pidBefore && r;
  }, 10000, () => screen('main'));
  const snap = JSON.parse(h.cli(['status', '--json'], ws).stdout);
  assert.strictEqual(Number(after[9]), snap.services.find((s) => s.name === 'web').pid, 'the pid status reports');

  // why: the popup, then Esc.
  keys('main', 'w');
  await h.until('why web', () => /why web/.test(screen('main')) && /online/.test(screen('main')), 10000, () => screen('main'));
  keys('main', 'Escape');

  // q: the dashboard ends, exit 0, the terminal back in canonical mode with echo.
  keys('main', 'q');
  restored(await ended(end));
  assert.strictEqual(tmux('display-message', '-p', '-t', 'main', '#{alternate_on}').stdout.trim(), '0', 'off the alternate screen');
});

test('a stop asks first and shows in the row; SIGTERM and Ctrl-C also restore the terminal', async () => {
  const end = open('second', 80, 24);
  await h.until('the rows at 80x24', () => rowOf(screen('second'), 'worker')?.[1] === 'online', 20000, () => screen('second'));
  // worker: select it, stop it, decline first, then accept.
  keys('second', 'a');
  for (let i = 0; i < 5 && !/logs: worker /.test(screen('second')); i++) {
    keys('second', 'Down');
    await new Promise((r) => setTimeout(r, 200));
  }
  keys('second', 'x');
  await h.until('the confirmation', () => /stop worker\? y yes/.test(screen('second')), 3000, () => screen('second'));
  keys('second', 'n');
  await new Promise((r) => setTimeout(r, 1500));
  assert.strictEqual(rowOf(screen('second'), 'worker')[1], 'online', 'declined: still online');
  keys('second', 'x');
  keys('second', 'y');
  await h.until('worker stopped on screen', () => rowOf(screen('second'), 'worker')?.[1] === 'stopped', 30000, () => screen('second'));

  // SIGTERM to the dashboard's process.
  const pid = dashboardPid('second');
  assert.ok(pid > 0);
  process.kill(pid, 'SIGTERM');
  restored(await ended(end));

  // Ctrl-C (a key in raw mode).
  const third = open('third', 80, 24);
  await h.until('the rows', () => rowOf(screen('third'), 'web'), 20000, () => screen('third'));
  keys('third', 'C-c');
  restored(await ended(third));

  // Its terminal closed under it (a killed tmux session, a dropped ssh): it ends, it does not
  // spin on a terminal that is gone.
  open('fourth', 80, 24);
  await h.until('the rows', () => rowOf(screen('fourth'), 'web'), 20000, () => screen('fourth'));
  const orphan = dashboardPid('fourth');
  assert.ok(orphan > 0);
  tmux('kill-session', '-t', 'fourth');
  // Gone or a zombie (this machine's init may be slow to reap an orphan).
  const running = (pid) => {
    try {
      return !/^\d+ \(.*\) Z/.test(fs.readFileSync(`/proc/${pid}/stat`, 'utf8'));
    } catch (_) {
      return false;
    }
  };
  await h.until('the dashboard to end with its terminal', () => !running(orphan), 10000);
});

test('not a terminal: one status table, exit 0; a service name is refused', () => {
  const r = spawnSync(process.execPath, [h.BIN, 'dashboard'], { cwd: ws, encoding: 'utf8', env: h.childEnv() });
  assert.strictEqual(r.status, 0, r.stderr);
  assert.match(r.stdout, /^SERVICE\s+KIND\s+STATE/m);
  assert.match(r.stdout, /^web\s+app\s+online/m);
  const bad = h.cli(['dashboard', 'web'], ws);
  assert.strictEqual(bad.code, 2);
  assert.match(bad.stderr, /EXIT_USAGE \(2\).*takes no service names/);
});
