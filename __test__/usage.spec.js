'use strict';
// Issue 19: CPU and memory per service in `status`, checked against what the system itself
// says — /proc/<pid>/status for an app's process, `docker stats --no-stream` for a container —
// with real PM2, real processes (one busy, one idle, a two-worker cluster) and real busybox
// containers (one spinning, one asleep).

const test = require('node:test');
const assert = require('node:assert');
const fs = require('fs');
const path = require('path');
const h = require('./helpers');

const ws = path.join(h.RUN_DIR, 'usage');
fs.mkdirSync(path.join(ws, 'config', 'env'), { recursive: true });
fs.mkdirSync(path.join(ws, 'apps', 'app'), { recursive: true });
fs.writeFileSync(path.join(ws, 'package.json'), JSON.stringify({ name: `orch-test-usage-${process.pid}`, private: true }));
fs.writeFileSync(path.join(ws, 'config', 'env', 'development.env'), 'USAGE=1\n');
fs.writeFileSync(path.join(ws, 'apps', 'app', 'package.json'), JSON.stringify({ name: 'app', version: '1.0.0', private: true }));
fs.writeFileSync(
  path.join(ws, 'apps', 'app', 'main.js'),
  `if (process.env.MODE === 'busy') { for (;;) {} }
// Idle, holding 48 MiB it has written to (resident).
const hold = Buffer.alloc(48 * 1024 * 1024, 1);
setInterval(() => hold[0]++, 1000);
`,
);
fs.writeFileSync(
  path.join(ws, 'ecosystem.config.js'),
  `module.exports = { apps: ${JSON.stringify([
    { name: 'busy', cwd: 'apps/app', script: 'main.js', exec_mode: 'fork', env: { MODE: 'busy' } },
    { name: 'idle', cwd: 'apps/app', script: 'main.js', exec_mode: 'fork', env: { MODE: 'idle' } },
    { name: 'pool', cwd: 'apps/app', script: 'main.js', exec_mode: 'cluster', instances: 2, env: { MODE: 'idle' } },
  ])} };\n`,
);
fs.writeFileSync(
  path.join(ws, 'docker-compose.yml'),
  `services:
  spin:
    image: orchestrator-local/busybox:1
    command: ["sh", "-c", "while :; do :; done"]
    stop_grace_period: 1s
  quiet:
    image: orchestrator-local/busybox:1
    command: ["sleep", "3600"]
    stop_grace_period: 1s
`,
);
fs.writeFileSync(path.join(ws, 'nx.json'), JSON.stringify({ pluginsConfig: { '@workspace/orchestrator': { services: { busy: { dependsOn: [] }, idle: { dependsOn: [] }, pool: { dependsOn: [] } } } } }));

test.after(async () => {
  h.cli(['stop', '--all'], ws);
  await h.killPm2();
  h.removeContainers(ws);
});

const snapshot = () => {
  const r = h.cli(['status', '--json'], ws);
  assert.strictEqual(r.code, 0, r.out);
  const snap = JSON.parse(r.stdout);
  return (name) => snap.services.find((s) => s.name === name);
};

const rssOf = (pid) => Number(/VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))[1]) * 1024;

/** `docker stats --no-stream` of one container: CPU % and memory in bytes, as docker shows them. */
function dockerStats(id) {
  const r = h.docker(['stats', '--no-stream', '--format', '{{.CPUPerc}} {{.MemUsage}}', id]);
  assert.strictEqual(r.code, 0, r.out);
  const m = /^([\d.]+)% ([\d.]+)([KMG]i)?B \//.exec(r.stdout.trim());
  assert.ok(m, r.stdout);
  const unit = { Ki: 1024, Mi: 1024 ** 2, Gi: 1024 ** 3 }[m[3]] || 1;
  return { cpu: Number(m[1]), memory: Number(m[2]) * unit };
}

const near = (ours, theirs, share, floor, what) => assert.ok(Math.abs(ours - theirs) <= Math.max(theirs * share, floor), `${what}: ours ${ours}, the system's ${theirs}`);

test('status shows CPU and memory per service, as /proc and docker stats show them', async () => {
  const up = h.cli(['start', '--all'], ws);
  assert.strictEqual(up.code, 0, up.out);
  snapshot(); // the first look: the next one measures the CPU since this one
  await new Promise((r) => setTimeout(r, 1500));
  const row = snapshot();

  // An app's process: memory as /proc says it, the busy one near a core, the idle one near 0.
  const idle = row('idle');
  near(idle.memoryBytes, rssOf(idle.pid), 0.1, 2 << 20, 'idle app memory');
  assert.ok(idle.memoryBytes > 48 << 20, `it holds 48 MiB: ${idle.memory}`);
  assert.ok(idle.cpuPercent < 10, `idle: ${idle.cpu}`);
  const busy = row('busy');
  assert.ok(busy.cpuPercent >= 30 && busy.cpuPercent <= 110, `busy: ${busy.cpu}`);
  assert.match(busy.cpu, /^\d+\.\d%$/);
  assert.match(idle.memory, /^\d+(\.\d)?M$/);

  // A cluster: per worker, and the row is their sum.
  const pool = row('pool');
  assert.strictEqual(pool.instances.length, 2, JSON.stringify(pool));
  assert.deepStrictEqual(pool.instances.map((i) => i.pid).sort(), [...pool.pids].sort());
  assert.strictEqual(pool.memoryBytes, pool.instances[0].memoryBytes + pool.instances[1].memoryBytes);
  assert.ok(Math.abs(pool.cpuPercent - (pool.instances[0].cpuPercent + pool.instances[1].cpuPercent)) <= 0.11);
  for (const i of pool.instances) near(i.memoryBytes, rssOf(i.pid), 0.1, 2 << 20, `pool worker ${i.pid}`);
  assert.deepStrictEqual(row('idle').instances, [], 'one process: no per-instance list');

  // A container: the engine's figures.
  const spin = row('spin');
  const quiet = row('quiet');
  const theirs = { spin: dockerStats(spin.containerId), quiet: dockerStats(quiet.containerId) };
  assert.ok(spin.cpuPercent >= 30, `spinning container: ${spin.cpu}`);
  assert.ok(theirs.spin.cpu >= 30, `docker stats agrees it spins: ${theirs.spin.cpu}`);
  assert.ok(quiet.cpuPercent < 5 && theirs.quiet.cpu < 5, `asleep: ours ${quiet.cpu}, docker's ${theirs.quiet.cpu}`);
  near(quiet.memoryBytes, theirs.quiet.memory, 0.25, 1 << 20, 'quiet container memory');
  near(spin.memoryBytes, theirs.spin.memory, 0.25, 1 << 20, 'spinning container memory');

  // The table shows the same figures in its CPU and MEM columns.
  const t = h.cli(['status'], ws);
  const head = t.stdout.split('\n').find((l) => l.startsWith('SERVICE'));
  assert.match(head, /UPTIME\s+CPU\s+MEM\s+RESTARTS/);
  const line = t.stdout.split('\n').find((l) => l.startsWith('idle '));
  assert.match(line, /\d+\.\d% +\d+(\.\d)?M /, line);

  // Stopped: no figures.
  assert.strictEqual(h.cli(['stop', 'busy', 'spin'], ws).code, 0);
  const after = snapshot();
  for (const name of ['busy', 'spin']) assert.deepStrictEqual([after(name).cpuPercent, after(name).memoryBytes, after(name).cpu], [null, null, null], name);
});

test('a container restarted behind our back: the very next status reads its new first process, not the kept one', async () => {
  assert.strictEqual(h.cli(['start', 'quiet'], ws).code, 0);
  const before = snapshot()('quiet');
  const id = h.docker(['inspect', '--format', '{{.Id}}', before.containerId]).stdout.trim();
  // status kept what the inspection told: its first process and when it started.
  const kept = JSON.parse(fs.readFileSync(path.join(ws, '.orchestrator', 'containers.json'), 'utf8'));
  const pidThen = Number(h.docker(['inspect', '--format', '{{.State.Pid}}', id]).stdout.trim());
  assert.strictEqual(kept[id].pid, pidThen, JSON.stringify(kept));

  assert.strictEqual(h.docker(['restart', '-t', '0', id]).code, 0);
  const inspected = () => {
    const [running, pid, startedAt] = h.docker(['inspect', '--format', '{{.State.Running}} {{.State.Pid}} {{.State.StartedAt}}', id]).stdout.trim().split(' ');
    return { running: running === 'true', pid: Number(pid), startedAt: Date.parse(startedAt) };
  };
  // Whatever PM2 and the runner do meanwhile, once the container runs again status tells its
  // new process: the uptime counts from the new start, and the memory is read from it.
  const row = await h.until('quiet online again after docker restart', () => {
    const now = inspected();
    if (!now.running || now.pid === pidThen) return null;
    const r = snapshot()('quiet');
    return r.containerId === before.containerId && r.state === 'online' ? { r, now } : null;
  }, 30000);
  const sinceStart = (Date.now() - row.now.startedAt) / 1000;
  assert.ok(row.r.uptimeSeconds <= sinceStart + 1, `uptime ${row.r.uptimeSeconds} s, restarted ${sinceStart} s ago`);
  assert.ok(row.r.memoryBytes > 0, JSON.stringify(row.r));
  const keptNow = JSON.parse(fs.readFileSync(path.join(ws, '.orchestrator', 'containers.json'), 'utf8'));
  assert.strictEqual(keptNow[id].pid, inspected().pid);
});
