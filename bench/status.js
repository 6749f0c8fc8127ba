#!/usr/bin/env node
'use strict';
// Benchmark (issue 5): `orchestrator status --json` against `pm2 jlist`, measured in the same
// run, with 10 app processes and 10 containers running. Prints median/min/max and the ratio.
// Needs the Docker engine and the local busybox image (bash scripts/docker-engine.sh &&
// bash scripts/build-images.sh); everything it starts is stopped and removed at the end.
//
//   node bench/status.js [--runs 15]

const fs = require('fs');
const os = require('os');
const path = require('path');
const { spawnSync } = require('child_process');

const ROOT = path.resolve(__dirname, '..');
const RUNS = Number(process.argv[process.argv.indexOf('--runs') + 1]) || 15;
const N = 10;
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'orch-bench-status-'));
const env = { ...process.env, PM2_HOME: path.join(dir, '.pm2'), NO_COLOR: '1', PM2_SILENT: 'true' };
const BIN = path.join(ROOT, 'bin', 'orchestrator.js');
const PM2 = path.join(ROOT, 'node_modules', 'pm2', 'bin', 'pm2');

function run(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { cwd: dir, env, encoding: 'utf8', ...opts });
  if (r.status !== 0 && !opts.allowFail) throw new Error(`${cmd} ${args.join(' ')} exited ${r.status}: ${r.stderr || r.stdout}`);
  return r;
}

function workspace() {
  fs.writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ name: `orch-bench-${process.pid}`, private: true }));
  fs.writeFileSync(path.join(dir, 'nx.json'), JSON.stringify({ pluginsConfig: { '@workspace/orchestrator': { defaultServices: [] } } }));
  fs.mkdirSync(path.join(dir, 'config', 'env'), { recursive: true });
  fs.writeFileSync(path.join(dir, 'config', 'env', 'development.env'), 'BENCH=1\n');
  fs.mkdirSync(path.join(dir, 'apps', 'idle'), { recursive: true });
  fs.writeFileSync(path.join(dir, 'apps', 'idle', 'main.js'), 'setInterval(() => {}, 60000);\n');
  fs.writeFileSync(path.join(dir, 'apps', 'idle', 'package.json'), '{"name":"idle","version":"1.0.0","private":true}');
  const apps = Array.from({ length: N }, (_, i) => ({ name: `app${i}`, cwd: 'apps/idle', script: 'main.js', exec_mode: 'fork' }));
  fs.writeFileSync(path.join(dir, 'ecosystem.config.js'), `module.exports = { apps: ${JSON.stringify(apps)} };\n`);
  let compose = 'services:\n';
  for (let i = 0; i < N; i++) compose += `  dep${i}:\n    image: orchestrator-local/busybox:1\n    command: ["sleep", "3600"]\n    stop_grace_period: 1s\n`;
  fs.writeFileSync(path.join(dir, 'docker-compose.yml'), compose);
}

function time(cmd, args) {
  const t = process.hrtime.bigint();
  const r = spawnSync(cmd, args, { cwd: dir, env, encoding: 'utf8', maxBuffer: 64 << 20 });
  const ms = Number(process.hrtime.bigint() - t) / 1e6;
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${r.status}: ${r.stderr}`);
  return { ms, out: r.stdout };
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

function main() {
  workspace();
  process.stderr.write(`bench: starting ${N} apps and ${N} containers in ${dir}\n`);
  run(process.execPath, [BIN, 'start', '--all']);
  try {
    const snap = JSON.parse(time(process.execPath, [BIN, 'status', '--json']).out);
    const online = snap.services.filter((s) => s.state === 'online').length;
    if (online !== 2 * N) throw new Error(`expected ${2 * N} online services, status says ${online}`);
    const jlist = JSON.parse(time(process.execPath, [PM2, 'jlist']).out);
    const cases = {
      'orchestrator status --json': [process.execPath, [BIN, 'status', '--json']],
      'pm2 jlist (baseline)': [process.execPath, [PM2, 'jlist']],
      'node -e 0 (floor)': [process.execPath, ['-e', '0']],
    };
    const samples = Object.fromEntries(Object.keys(cases).map((k) => [k, []]));
    for (let i = 0; i < 2; i++) for (const [c, a] of Object.values(cases)) time(c, a); // warm-up
    for (let i = 0; i < RUNS; i++) for (const [k, [c, a]] of Object.entries(cases)) samples[k].push(time(c, a).ms);
    const base = median(samples['pm2 jlist (baseline)']);
    const rows = Object.entries(samples).map(([k, xs]) => ({
      case: k,
      medianMs: +median(xs).toFixed(1),
      minMs: +Math.min(...xs).toFixed(1),
      maxMs: +Math.max(...xs).toFixed(1),
      ratio: +(median(xs) / base).toFixed(2),
    }));
    process.stdout.write(`status with ${N} apps + ${N} containers (PM2 lists ${jlist.length} processes), ${RUNS} runs each\n`);
    process.stdout.write(`${'case'.padEnd(30)} ${'median'.padStart(8)} ${'min'.padStart(8)} ${'max'.padStart(8)}  ratio vs pm2 jlist\n`);
    for (const r of rows) process.stdout.write(`${r.case.padEnd(30)} ${r.medianMs.toFixed(1).padStart(6)}ms ${r.minMs.toFixed(1).padStart(6)}ms ${r.maxMs.toFixed(1).padStart(6)}ms  ${r.ratio.toFixed(2)}\n`);
    const ours = rows[0].ratio;
    process.stdout.write(`goal: at most 0.50 of pm2 jlist — ${ours <= 0.5 ? 'met' : 'NOT met'} (${ours.toFixed(2)})\n`);
    fs.mkdirSync(path.join(__dirname, 'results'), { recursive: true });
    fs.writeFileSync(path.join(__dirname, 'results', 'status.json'), JSON.stringify({ at: new Date().toISOString(), apps: N, containers: N, runs: RUNS, rows }, null, 2) + '\n');
  } finally {
    if (process.env.BENCH_KEEP) return process.stderr.write(`bench: kept ${dir} (PM2_HOME=${env.PM2_HOME})\n`);
    run(process.execPath, [BIN, 'stop', '--all'], { allowFail: true });
    run(process.execPath, [PM2, 'kill'], { allowFail: true });
    const ids = run('docker', ['ps', '-aq', '--filter', `label=dev.orchestrator.workspace=${dir}`], { allowFail: true }).stdout.split(/\s+/).filter(Boolean);
    if (ids.length) run('docker', ['rm', '-f', ...ids], { allowFail: true });
    run('docker', ['network', 'rm', `orch-bench-${process.pid}_default`], { allowFail: true });
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

main();
