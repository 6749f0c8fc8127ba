'use strict';
// Issue 4: the restart policy carried out by the workspace agent, with real PM2 (private
// PM2_HOME), real processes and a real busybox container. Policies are shortened in the test
// workspace's nx.json; spacing is read from the agent's own event timestamps.

const test = require('node:test');
const assert = require('node:assert');
const fs = require('fs');
const path = require('path');
const h = require('./helpers');

const ws = path.join(h.RUN_DIR, 'restarts');
fs.mkdirSync(path.join(ws, 'config', 'env'), { recursive: true });
fs.writeFileSync(path.join(ws, 'package.json'), JSON.stringify({ name: `orch-test-restarts-${process.pid}`, private: true }));
fs.writeFileSync(path.join(ws, 'config', 'env', 'development.env'), 'GREETING=hello\n');

// An app whose run lengths come from a script: `RUNS=1200,300,3000` runs 1.2 s, then 0.3 s,
// then 3 s, then stays up; each run exits with code 3 after printing to stderr.
const APP = `const fs = require('fs');
const runs = (process.env.RUNS || '100').split(',').map(Number);
const counter = __dirname + '/count';
const n = fs.existsSync(counter) ? Number(fs.readFileSync(counter, 'utf8')) : 0;
fs.writeFileSync(counter, String(n + 1));
console.log('run', n, 'pid', process.pid);
if (n < runs.length || runs.length === 1) {
  const ms = runs[Math.min(n, runs.length - 1)];
  setTimeout(() => { console.error('fatal: giving up after', ms, 'ms (run ' + n + ')'); process.exit(3); }, ms);
} else setInterval(() => {}, 1000);
`;
const APPS = {
  crasher: { RUNS: '100' },
  sleeper: { RUNS: '2000' },
  stopper: { RUNS: '2000' },
  steady: { RUNS: '1600,300,3000' },
  squatter: { PORT: '18093' },
  workers: { RUNS: '600000' },
};
for (const name of Object.keys(APPS)) {
  fs.mkdirSync(path.join(ws, 'apps', name), { recursive: true });
  fs.writeFileSync(path.join(ws, 'apps', name, 'main.js'), APP);
  fs.writeFileSync(path.join(ws, 'apps', name, 'package.json'), JSON.stringify({ name, version: '1.0.0', private: true }));
}
// squatter listens on its port, then leaves an orphan holding it and exits: the classic
// EADDRINUSE loop no restart can fix.
fs.writeFileSync(
  path.join(ws, 'apps', 'squatter', 'main.js'),
  `const net = require('net');
const { spawn } = require('child_process');
const port = Number(process.env.PORT);
const server = net.createServer().listen(port, '127.0.0.1', () => console.log('listening', port));
setTimeout(() => server.close(() => {
  const orphan = spawn(process.execPath, ['-e', \`require('net').createServer().listen(\${port}, '127.0.0.1'); setTimeout(() => {}, 600000)\`], { detached: true, stdio: 'ignore' });
  orphan.unref();
  setTimeout(() => { console.error('fatal: exiting, orphan', orphan.pid, 'keeps the port'); process.exit(3); }, 500);
}), 1500);
`,
);
fs.writeFileSync(
  path.join(ws, 'ecosystem.config.js'),
  `module.exports = { apps: ${JSON.stringify(
    Object.entries(APPS).map(([name, env]) => ({
      name,
      cwd: `apps/${name}`,
      script: 'main.js',
      autorestart: true,
      env,
      ...(name === 'workers' ? { exec_mode: 'cluster', instances: 2 } : { exec_mode: 'fork' }),
    })),
  )} };\n`,
);
fs.writeFileSync(
  path.join(ws, 'docker-compose.yml'),
  `services:
  flaky:
    image: orchestrator-local/busybox:1
    command: ["sh", "-c", "echo flaky-up; sleep 1.5; echo flaky-dying >&2; exit 4"]
    stop_grace_period: 1s
  sickly:
    image: orchestrator-local/busybox:1
    command: ["sh", "-c", "echo sickly-up; sleep 1; echo sickly-dying >&2; exit 5"]
    healthcheck:
      test: ["CMD-SHELL", "test -f /never"]
      interval: 1s
      retries: 30
    stop_grace_period: 1s
`,
);
const short = { maxRestarts: 3, windowSeconds: 60, backoffInitialMs: 200, backoffMaxMs: 5000, stableSeconds: 30 };
const slow = { maxRestarts: 5, windowSeconds: 60, backoffInitialMs: 3000, backoffMaxMs: 3000, stableSeconds: 30 };
fs.writeFileSync(
  path.join(ws, 'nx.json'),
  JSON.stringify(
    {
      pluginsConfig: {
        '@workspace/orchestrator': {
          defaultServices: ['crasher'],
          services: {
            crasher: { readyTimeoutSeconds: 30, restartPolicy: { ...short, alertCommand: 'cat > alert.json && echo alert-ran' } },
            sleeper: { restartPolicy: slow },
            stopper: { restartPolicy: slow },
            steady: { restartPolicy: { ...short, maxRestarts: 10, stableSeconds: 2 } },
            squatter: { ports: [18093], restartPolicy: short },
            workers: { restartPolicy: short },
            flaky: { restartPolicy: short },
            sickly: { healthTimeoutSeconds: 60, restartPolicy: short },
          },
        },
      },
    },
    null,
    2,
  ),
);

// Every event read is checked against contracts/event.schema.json.
const events = (service) => {
  const f = path.join(ws, 'apps', 'logs', service, 'events.jsonl');
  const all = fs.existsSync(f) ? fs.readFileSync(f, 'utf8').trim().split('\n').filter(Boolean).map((l) => JSON.parse(l)) : [];
  for (const e of all) require('./contract').check('event', e, `an event of ${service}`);
  return all;
};
const named = (service, event) => events(service).filter((e) => e.event === event);
const record = (service) => JSON.parse(fs.readFileSync(path.join(ws, '.orchestrator', 'state', `${service}.json`), 'utf8'));
const entry = async (name) => (await h.list()).find((p) => p.name === name);
/** How many times the app's process ran (each run bumps its counter file). */
const runs = (service) => Number(fs.readFileSync(path.join(ws, 'apps', service, 'count'), 'utf8'));
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Waits for `fn`; on timeout the failure shows the service's last events. */
const until = (what, fn, ms = 30000) => h.until(what, fn, ms, () => JSON.stringify(events(what.split(' ')[0]).slice(-4)));

/** Each `restarted` paired with the `restart_scheduled` before it: [delayMs, ms it really took]. */
function spacing(service) {
  const out = [];
  let scheduled = null;
  for (const e of events(service)) {
    if (e.event === 'restart_scheduled') scheduled = e;
    if (e.event === 'restarted' && scheduled) {
      out.push([scheduled.delayMs, Date.parse(e.time) - Date.parse(scheduled.time)]);
      scheduled = null;
    }
  }
  return out;
}

test.after(async () => {
  await h.killPm2();
  h.removeContainers(ws);
});

test('a crash loop: exactly 3 restarts at 200/400/800 ms, then failed, the threshold event, the alert; start exits 19', async () => {
  const r = h.cli(['start', 'crasher'], ws);
  assert.strictEqual(r.code, 19, r.out);
  assert.match(r.stderr, /EXIT_RESTART_THRESHOLD_EXCEEDED \(19\)/);
  assert.match(r.stderr, /3 restarts within 60 s \(maxRestarts 3\); last exit with code 3/);
  assert.match(r.stderr, /fatal: giving up after 100 ms/, 'the last lines of its stderr');
  assert.match(r.stderr, /events\.jsonl/);

  const got = spacing('crasher');
  assert.deepStrictEqual(got.map(([d]) => d), [200, 400, 800], JSON.stringify(got));
  for (const [delay, took] of got) assert.ok(took >= delay - 5 && took < delay + 1500, `restart after ${took} ms, policy ${delay} ms`);
  assert.strictEqual(named('crasher', 'restarted').length, 3);

  const [threshold] = named('crasher', 'RESTART_THRESHOLD_EXCEEDED');
  assert.ok(threshold, 'RESTART_THRESHOLD_EXCEEDED written');
  assert.strictEqual(threshold.service, 'crasher');
  assert.strictEqual(threshold.profile, 'development');
  assert.strictEqual(threshold.restarts.length, 3);
  assert.strictEqual(threshold.exitCode, 3);
  assert.strictEqual(threshold.signal, null);
  assert.ok(threshold.stderr.some((l) => /fatal: giving up/.test(l)), JSON.stringify(threshold.stderr));
  assert.match(threshold.time, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
  // Every event is answered within a second of the exit it answers.
  const all = events('crasher');
  for (let i = 1; i < all.length; i++) {
    if (all[i - 1].event === 'exited' && all[i].event !== 'exited') assert.ok(Date.parse(all[i].time) - Date.parse(all[i - 1].time) < 1000);
  }

  const alert = await until('crasher alert', () => named('crasher', 'alert')[0]);
  assert.strictEqual(alert.exitCode, 0);
  assert.match(alert.output, /alert-ran/);
  assert.deepStrictEqual(JSON.parse(fs.readFileSync(path.join(ws, 'alert.json'), 'utf8')), threshold, 'the alert got the event as JSON on stdin');

  const rec = record('crasher');
  assert.strictEqual(rec.phase.state, 'failed');
  assert.strictEqual(rec.lastFailure.code, 'EXIT_RESTART_THRESHOLD_EXCEEDED');
  assert.strictEqual((await entry('crasher')).status, 'stopped');
  assert.strictEqual(runs('crasher'), 4, 'the first run and 3 restarts');
  // Several backoff periods later: nothing restarted it (not PM2, not the agent).
  await sleep(3000);
  assert.strictEqual(runs('crasher'), 4);
  assert.strictEqual((await entry('crasher')).status, 'stopped');
  assert.strictEqual(named('crasher', 'restarted').length, 3);
});

test('an explicit start clears the failed mark and the history', async () => {
  const r = h.cli(['start', 'crasher', '--json'], ws);
  assert.strictEqual(r.code, 19, r.out);
  // A fresh series: three more restarts from 200 ms, not an immediate give-up.
  assert.deepStrictEqual(spacing('crasher').map(([d]) => d), [200, 400, 800, 200, 400, 800]);
  assert.strictEqual(runs('crasher'), 8);
  assert.strictEqual(JSON.parse(r.stdout || r.stderr).error.exitCode, 19);
});

test('PM2 autorestart is off for our services, whatever the ecosystem says', async () => {
  const procs = await h.call('list');
  const crasher = procs.find((p) => p.name === 'crasher');
  assert.strictEqual(crasher.pm2_env.autorestart, false);
  const agent = procs.find((p) => p.name.startsWith('orchestrator-agent-'));
  assert.ok(agent, 'the agent runs under PM2');
  assert.strictEqual(agent.pm2_env.status, 'online');
  assert.strictEqual(agent.pm2_env.autorestart, true, 'PM2 supervises the agent itself');
  // The agent listens on no network port.
  const inodes = fs
    .readdirSync(`/proc/${agent.pid}/fd`)
    .map((fd) => {
      try {
        return fs.readlinkSync(`/proc/${agent.pid}/fd/${fd}`);
      } catch (_) {
        return '';
      }
    })
    .filter((l) => l.startsWith('socket:['))
    .map((l) => l.slice(8, -1));
  const listening = ['tcp', 'tcp6', 'udp', 'udp6']
    .flatMap((f) => fs.readFileSync(`/proc/net/${f}`, 'utf8').trim().split('\n').slice(1))
    .map((l) => l.trim().split(/\s+/))
    .filter((c) => c[3] === '0A' || c[3] === '07')
    .map((c) => c[9]);
  assert.deepStrictEqual(inodes.filter((i) => listening.includes(i)), [], 'no TCP/UDP socket of the agent');
});

test('kill -9 of the agent during a backoff: the pending restart happens once, the history survives', async () => {
  const r = h.cli(['start', 'sleeper'], ws);
  assert.strictEqual(r.code, 0, r.out);
  const scheduled = await until('sleeper restart_scheduled', () => named('sleeper', 'restart_scheduled')[0]);
  assert.strictEqual(scheduled.delayMs, 3000);
  const agentBefore = (await h.list()).find((p) => p.name.startsWith('orchestrator-agent-'));
  process.kill(agentBefore.pid, 'SIGKILL');
  const agentAfter = await until('sleeper agent back', async () => {
    const a = (await h.list()).find((p) => p.name.startsWith('orchestrator-agent-'));
    return a && a.status === 'online' && a.pid !== agentBefore.pid ? a : null;
  });
  assert.ok(agentAfter.restarts > agentBefore.restarts, 'PM2 brought the agent back');
  const restarted = await until('sleeper restarted', () => named('sleeper', 'restarted')[0], 15000);
  assert.ok(Date.parse(restarted.time) >= Date.parse(scheduled.dueAt) - 5, `restarted at ${restarted.time}, due ${scheduled.dueAt}`);
  // Exactly once: one `restarted`, one PM2 restart, and the record's history holds it.
  await sleep(800);
  assert.strictEqual(named('sleeper', 'restarted').length, 1);
  assert.strictEqual(runs('sleeper'), 2, 'the first run and exactly one restart');
  const rec = record('sleeper');
  assert.strictEqual(rec.history.restarts.length, 1);
  assert.strictEqual(rec.totalRestarts, 1);
  assert.strictEqual(h.cli(['stop', 'sleeper'], ws).code, 0);
});

test('stop during a backoff: the pending restart is cancelled, no restart follows', async () => {
  const r = h.cli(['start', 'stopper'], ws);
  assert.strictEqual(r.code, 0, r.out);
  const scheduled = await until('stopper restart_scheduled', () => named('stopper', 'restart_scheduled')[0]);
  const stop = h.cli(['stop', 'stopper'], ws);
  assert.strictEqual(stop.code, 0, stop.out);
  assert.ok(Date.now() < Date.parse(scheduled.dueAt), 'stopped inside the backoff');
  await sleep(Date.parse(scheduled.dueAt) - Date.now() + 2500);
  assert.deepStrictEqual(named('stopper', 'restarted'), []);
  assert.strictEqual(named('stopper', 'restart_cancelled').length, 1);
  assert.strictEqual((await entry('stopper')).status, 'stopped');
  assert.strictEqual(record('stopper').desired, 'stopped');
});

test('a stable run resets the backoff: 200, 400, recovered, then 200 again', async () => {
  const r = h.cli(['start', 'steady'], ws);
  assert.strictEqual(r.code, 0, r.out);
  await until('steady third restart', () => named('steady', 'restarted').length >= 3);
  const delays = named('steady', 'restart_scheduled').map((e) => e.delayMs);
  assert.deepStrictEqual(delays, [200, 400, 200]);
  const names = events('steady').map((e) => e.event);
  const recovered = names.indexOf('recovered');
  assert.ok(recovered > 0 && recovered < names.lastIndexOf('restart_scheduled'), names.join(' '));
  const exits = named('steady', 'exited');
  assert.ok(exits[2].uptimeSeconds >= 2, `the stable run lasted ${exits[2].uptimeSeconds} s`);
  assert.strictEqual(h.cli(['stop', 'steady'], ws).code, 0);
});

test('a cluster worker killed with SIGKILL: that instance alone is restarted, the signal recorded', async () => {
  const r = h.cli(['start', 'workers'], ws);
  assert.strictEqual(r.code, 0, r.out);
  const before = (await h.list()).filter((p) => p.name === 'workers');
  assert.strictEqual(before.length, 2);
  process.kill(before[0].pid, 'SIGKILL');
  const restarted = await until('workers restarted', () => named('workers', 'restarted')[0]);
  const [exited] = named('workers', 'exited');
  assert.strictEqual(exited.signal, 'SIGKILL');
  assert.strictEqual(exited.pmId, String(before[0].pmId));
  assert.ok(restarted);
  const after = await until('workers both online', async () => {
    const l = (await h.list()).filter((p) => p.name === 'workers');
    return l.every((p) => p.status === 'online') && l.length === 2 ? l : null;
  });
  assert.notStrictEqual(after.find((p) => p.pmId === before[0].pmId).pid, before[0].pid);
  assert.strictEqual(after.find((p) => p.pmId === before[1].pmId).pid, before[1].pid, 'the other worker was left alone');
  assert.strictEqual(h.cli(['stop', 'workers'], ws).code, 0);
});

test('a port held by another process after an exit: failed at once naming the holder, no restart', async () => {
  const r = h.cli(['start', 'squatter'], ws);
  assert.strictEqual(r.code, 0, r.out);
  const failed = await until('squatter failed', () => named('squatter', 'failed')[0]);
  assert.strictEqual(failed.code, 'EXIT_PORT_IN_USE');
  const m = failed.reason.match(/port 18093 is held by pid (\d+) \(.*node/);
  assert.ok(m, failed.reason);
  try {
    assert.deepStrictEqual(named('squatter', 'restart_scheduled'), [], 'no restart was even scheduled');
    const rec = record('squatter');
    assert.deepStrictEqual([rec.phase.state, rec.lastFailure.code, rec.lastFailure.retryable], ['failed', 'EXIT_PORT_IN_USE', false]);
    await sleep(1000);
    assert.strictEqual((await entry('squatter')).status, 'stopped');
  } finally {
    process.kill(Number(m[1]), 'SIGKILL');
  }
});

test('a docker dependency whose container keeps exiting: 3 restarts, then failed with its exit code', async () => {
  const r = h.cli(['start', 'flaky'], ws);
  assert.strictEqual(r.code, 0, r.out);
  const [threshold] = await until('flaky threshold', () => named('flaky', 'RESTART_THRESHOLD_EXCEEDED')[0] && named('flaky', 'RESTART_THRESHOLD_EXCEEDED'), 40000);
  assert.strictEqual(threshold.exitCode, 4);
  assert.strictEqual(threshold.restarts.length, 3);
  assert.ok(threshold.stderr.some((l) => /flaky-dying|exited with code 4/.test(l)), JSON.stringify(threshold.stderr));
  assert.deepStrictEqual(spacing('flaky').map(([d]) => d), [200, 400, 800]);
  const id = h.docker(['ps', '-aq', '--no-trunc', '--filter', `label=dev.orchestrator.workspace=${ws}`, '--filter', 'label=dev.orchestrator.service=flaky']).stdout.trim();
  assert.ok(id, 'the container is kept for inspection');
  assert.strictEqual(JSON.parse(h.docker(['inspect', id]).stdout)[0].State.Running, false);
  const startedAt = JSON.parse(h.docker(['inspect', id]).stdout)[0].State.StartedAt;
  await sleep(3000);
  assert.strictEqual((await entry('flaky')).status, 'stopped');
  assert.strictEqual(JSON.parse(h.docker(['inspect', id]).stdout)[0].State.StartedAt, startedAt, 'no restart after failed');
  assert.strictEqual(record('flaky').phase.state, 'failed');
});

test('start waiting on a dependency that dies before healthy follows the restarts, then exits 19', async () => {
  const r = h.cli(['start', 'sickly'], ws);
  assert.strictEqual(r.code, 19, r.out);
  assert.match(r.stderr, /EXIT_RESTART_THRESHOLD_EXCEEDED \(19\) — sickly: sickly failed and will not be restarted: 3 restarts within 60 s/);
  assert.match(r.stderr, /last exit with code 5/);
  assert.strictEqual(named('sickly', 'restarted').length, 3);
});

test('an invalid policy is refused with the file and the field, nothing changed', async () => {
  const file = path.join(ws, 'nx.json');
  const good = fs.readFileSync(file, 'utf8');
  const before = await h.snapshot();
  try {
    for (const [bad, field, says] of [
      [{ windowSeconds: 0 }, 'services.crasher.restartPolicy.windowSeconds', 'must be greater than 0'],
      [{ maxRestarts: -1 }, 'services.crasher.restartPolicy.maxRestarts', 'non-negative whole number'],
      [{ backoffInitialMs: 5000, backoffMaxMs: 1000 }, 'services.crasher.restartPolicy.backoffMaxMs', 'less than backoffInitialMs'],
      [{ profiles: { staging: { backoffMultiplier: 0 } } }, 'services.crasher.restartPolicy.profiles.staging.backoffMultiplier', 'from 1 to 100'],
    ]) {
      const nx = JSON.parse(good);
      nx.pluginsConfig['@workspace/orchestrator'].services.crasher.restartPolicy = bad;
      fs.writeFileSync(file, JSON.stringify(nx));
      const r = h.cli(['start', 'steady'], ws);
      assert.strictEqual(r.code, 2, r.out);
      assert.match(r.stderr, /EXIT_USAGE \(2\)/);
      assert.ok(r.stderr.includes(`${file}: pluginsConfig["@workspace/orchestrator"].${field}: `) && r.stderr.includes(says), r.stderr);
    }
  } finally {
    fs.writeFileSync(file, good);
  }
  assert.deepStrictEqual(await h.snapshot(), before);
});

test('stop-all stops the agent; tests leave no daemon or container behind', async () => {
  const r = h.cli(['stop', '--all'], ws);
  assert.strictEqual(r.code, 0, r.out);
  assert.strictEqual((await h.list()).find((p) => p.name.startsWith('orchestrator-agent-')), undefined);
  await h.assertNothingLeft(ws);
});
