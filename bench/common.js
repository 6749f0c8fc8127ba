'use strict';
// What every benchmark group shares: timing a command, interleaved rounds with a warm-up, and the
// clean-up of what a group started (its private PM2 daemon, its labelled containers).

const fs = require('fs');
const os = require('os');
const path = require('path');
const { spawnSync } = require('child_process');

const ROOT = path.resolve(__dirname, '..');
const BIN = path.join(ROOT, 'bin', 'orchestrator.js');
const PM2 = path.join(ROOT, 'node_modules', 'pm2', 'bin', 'pm2');
const NX = path.join(ROOT, 'examples', 'workspace', 'node_modules', '.bin', 'nx');

/** A fresh directory with its own PM2_HOME; `env` for every command run in it. */
function sandbox(name) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `orch-bench-${name}-`));
  const env = { ...process.env, PM2_HOME: path.join(dir, '.pm2'), NO_COLOR: '1', PM2_SILENT: 'true', NX_DAEMON: 'false' };
  delete env.NODE_TEST_CONTEXT;
  return { dir, env };
}

function run(box, cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { cwd: box.dir, env: box.env, encoding: 'utf8', maxBuffer: 1 << 30, ...opts });
  if (r.status !== 0 && !opts.allowFail) throw new Error(`${cmd} ${args.join(' ')} exited ${r.status}: ${(r.stderr || r.stdout || '').slice(-2000)}`);
  return r;
}

/** Wall time of one command in ms (it must succeed). */
function time(box, cmd, args, opts = {}) {
  const t = process.hrtime.bigint();
  const r = spawnSync(cmd, args, { cwd: box.dir, env: box.env, encoding: 'utf8', maxBuffer: 1 << 30, stdio: ['ignore', 'pipe', 'pipe'], ...opts });
  const ms = Number(process.hrtime.bigint() - t) / 1e6;
  if (r.status !== 0 && !opts.allowFail) throw new Error(`${cmd} ${args.join(' ')} exited ${r.status}: ${(r.stderr || '').slice(-2000)}`);
  return ms;
}

const shell = (box, script) => time(box, 'sh', ['-c', script]);

/** Rounds interleave the cases (each round runs every case once) after one warm-up round, so a
 * busy moment of the machine is spread over all of them. `cases`: name → () => ms (sync or async). */
async function measure(cases, runs) {
  const xs = Object.fromEntries(Object.keys(cases).map((k) => [k, []]));
  for (const fn of Object.values(cases)) await fn();
  for (let i = 0; i < runs; i++) for (const [name, fn] of Object.entries(cases)) xs[name].push(await fn());
  return xs;
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Stops what a sandbox started: its PM2 daemon and the containers labelled with its path. */
function teardown(box) {
  if (process.env.BENCH_KEEP) return process.stderr.write(`bench: kept ${box.dir} (PM2_HOME=${box.env.PM2_HOME})\n`);
  run(box, process.execPath, [BIN, 'stop', '--all'], { allowFail: true });
  run(box, process.execPath, [PM2, 'kill'], { allowFail: true });
  const ids = run(box, 'docker', ['ps', '-aq', '--filter', `label=dev.orchestrator.workspace=${box.dir}`], { allowFail: true }).stdout.split(/\s+/).filter(Boolean);
  if (ids.length) run(box, 'docker', ['rm', '-f', '-v', ...ids], { allowFail: true });
  const nets = run(box, 'docker', ['network', 'ls', '-q', '--filter', `label=dev.orchestrator.workspace=${box.dir}`], { allowFail: true }).stdout.split(/\s+/).filter(Boolean);
  if (nets.length) run(box, 'docker', ['network', 'rm', ...nets], { allowFail: true });
  fs.rmSync(box.dir, { recursive: true, force: true });
}

/** A minimal workspace: package.json (its own compose project), nx.json, a development env. */
function workspace(box, { nx = {}, apps = [], compose = null, files = {} } = {}) {
  fs.writeFileSync(path.join(box.dir, 'package.json'), JSON.stringify({ name: path.basename(box.dir).toLowerCase(), private: true }));
  fs.writeFileSync(path.join(box.dir, 'nx.json'), JSON.stringify({ pluginsConfig: { '@workspace/orchestrator': nx } }));
  fs.mkdirSync(path.join(box.dir, 'config', 'env'), { recursive: true });
  fs.writeFileSync(path.join(box.dir, 'config', 'env', 'development.env'), 'BENCH=1\n');
  fs.writeFileSync(path.join(box.dir, 'ecosystem.config.js'), `module.exports = { apps: ${JSON.stringify(apps)} };\n`);
  if (compose) fs.writeFileSync(path.join(box.dir, 'docker-compose.yml'), compose);
  for (const [name, text] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(box.dir, name)), { recursive: true });
    fs.writeFileSync(path.join(box.dir, name), text);
  }
}

/** The Nx floors, as workspace files: a project.json `workspace` with an `nx:run-commands` echo
 * (which Nx runs inside its own process) and a local custom executor that returns at once (Nx
 * forks a process for every other executor), plus `targets` of the caller's. */
function nxFloors(targets = {}) {
  return {
    'project.json': JSON.stringify({
      name: 'workspace',
      targets: {
        ...targets,
        echo: { executor: 'nx:run-commands', options: { command: 'echo ok' } },
        noop: { executor: './tools/noop:noop' },
      },
    }),
    'tools/noop/package.json': '{"name":"noop-executor","version":"0.0.0","executors":"./executors.json"}',
    'tools/noop/executors.json': '{"executors":{"noop":{"implementation":"./impl.js","schema":"./schema.json","description":"returns at once"}}}',
    'tools/noop/impl.js': 'module.exports = async () => ({ success: true });\n',
    'tools/noop/schema.json': '{"type":"object","properties":{}}',
  };
}

/** Resident memory (MiB) and CPU time (ms) of a process, from /proc. */
function procUsage(pid) {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const rssKiB = Number(/VmRSS:\s+(\d+)/.exec(status)[1]);
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ticks = Number(fields[11]) + Number(fields[12]); // utime + stime
  return { rssMiB: rssKiB / 1024, cpuMs: (ticks * 1000) / 100 };
}

module.exports = { ROOT, BIN, PM2, NX, sandbox, run, time, shell, measure, sleep, teardown, workspace, nxFloors, procUsage };
