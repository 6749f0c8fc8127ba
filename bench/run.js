#!/usr/bin/env node
'use strict';
// `npm run bench`: every benchmark group, each with a warm-up round and several interleaved
// rounds, in one table — median, min, max, and the ratio against the baseline measured in the
// same run (the row marked `base` of its group). Also written to bench/results/latest.json.
// Benchmarks assert nothing about time; a group fails only when what it measures is wrong (a
// window that differs from awk's, a service that does not come up).
//
//   npm run bench                               # every group (about 15 minutes)
//   npm run bench -- scale --sizes 10,30         # start/stop/status at 10 and 30 services
//   npm run bench -- logs --size-mib 256        # one group, a smaller log set
//   npm run bench -- status supervision --runs 3
//   npm run bench -- dashboard --minutes 10     # the live view's own CPU and memory (on request)
//
// It sets up what it needs: the Docker engine and the local images (scripts/docker-engine.sh,
// scripts/build-images.sh), the release addon and supervisor (npm run build) and the example's Nx; every
// group works in its own temporary directory with its own PM2 daemon, removed at the end.

const fs = require('fs');
const path = require('path');
const { spawnSync } = require('child_process');

const GROUPS = ['status', 'nx', 'logs', 'supervision', 'compose', 'scale', 'watch'];
// Named only: `dashboard` takes the minutes it is given (default 10).
const ON_REQUEST = ['dashboard'];

function option(argv, name, dflt) {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? Number(argv[i + 1]) : dflt;
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

function prepare() {
  const root = path.resolve(__dirname, '..');
  const step = (what, cmd, args) => {
    process.stderr.write(`bench: ${what}\n`);
    const r = spawnSync(cmd, args, { cwd: root, stdio: ['ignore', 'ignore', 'inherit'] });
    if (r.status !== 0) throw new Error(`bench: ${what} failed (exit ${r.status})`);
  };
  step('Docker engine', 'bash', ['scripts/docker-engine.sh']);
  step('local images', 'bash', ['scripts/build-images.sh']);
  step('release addon', 'npx', ['napi', 'build', '--platform', '--release']);
  step('release supervisor', 'bash', ['scripts/build-supervisor.sh']);
  if (!fs.existsSync(path.join(root, 'examples', 'workspace', 'node_modules', 'nx'))) step("the example's Nx", 'npm', ['ci', '--no-audit', '--no-fund', '--prefix', 'examples/workspace']);
}

function summarise(rows) {
  const out = [];
  for (const r of rows) {
    const base = rows.find((b) => b.group === r.group && b.baseline);
    const m = median(r.samples);
    out.push({
      group: r.group,
      case: r.case,
      unit: r.unit,
      runs: r.samples.length,
      median: +m.toFixed(2),
      min: +Math.min(...r.samples).toFixed(2),
      max: +Math.max(...r.samples).toFixed(2),
      baseline: Boolean(r.baseline),
      ratio: base && !r.baseline && base.unit === r.unit && median(base.samples) > 0 ? +(m / median(base.samples)).toFixed(3) : null,
      ...(r.note ? { note: r.note } : {}),
      ...(r.goal ? { goal: r.goal } : {}),
    });
  }
  return out;
}

function print(rows) {
  const fmt = (v, unit) => (unit === 'ms' ? `${v.toFixed(1)} ms` : unit === '%' ? `${v.toFixed(2)} %` : unit === 'MiB' ? `${v.toFixed(1)} MiB` : String(v));
  const w = Math.max(...rows.map((r) => r.case.length)) + 2;
  let group = null;
  const lines = [];
  for (const r of rows) {
    if (r.group !== group) {
      group = r.group;
      lines.push('', `${group}`, `  ${'case'.padEnd(w)}${'median'.padStart(12)}${'min'.padStart(12)}${'max'.padStart(12)}   vs baseline`);
    }
    const ratio = r.baseline ? 'base' : r.ratio === null ? '' : `${r.ratio.toFixed(r.ratio < 0.1 ? 3 : 2)}x`;
    const extra = [r.goal, r.note].filter(Boolean).join(' — ');
    lines.push(`  ${r.case.padEnd(w)}${fmt(r.median, r.unit).padStart(12)}${fmt(r.min, r.unit).padStart(12)}${fmt(r.max, r.unit).padStart(12)}   ${ratio}${extra ? `  (${extra})` : ''}`);
  }
  process.stdout.write(`${lines.join('\n')}\n`);
}

async function main(argv = process.argv.slice(2)) {
  const chosen = argv.filter((a) => GROUPS.includes(a) || ON_REQUEST.includes(a));
  const groups = chosen.length ? chosen : GROUPS;
  const runs = option(argv, 'runs', 5);
  const sizeMiB = option(argv, 'size-mib', 1024);
  const minutes = option(argv, 'minutes', 10);
  const sizesAt = argv.indexOf('--sizes');
  const sizes = sizesAt >= 0 ? argv[sizesAt + 1].split(',').map(Number) : undefined;
  prepare();
  const started = Date.now();
  const rows = [];
  for (const g of groups) rows.push(...(await require(`./${g}`).bench({ runs, sizeMiB, minutes, ...(sizes ? { sizes } : {}) })));
  const table = summarise(rows);
  print(table);
  const result = {
    at: new Date().toISOString(),
    machine: { cpus: require('os').cpus().length, node: process.version, platform: `${process.platform}-${process.arch}` },
    groups,
    runs,
    sizeMiB,
    seconds: Math.round((Date.now() - started) / 1000),
    rows: table.map((r, i) => ({ ...r, samples: rows[i].samples.map((x) => +x.toFixed(2)) })),
  };
  fs.mkdirSync(path.join(__dirname, 'results'), { recursive: true });
  fs.writeFileSync(path.join(__dirname, 'results', 'latest.json'), JSON.stringify(result, null, 2) + '\n');
  process.stdout.write(`\n${groups.join(', ')}: ${result.seconds} s; written to bench/results/latest.json\n`);
}

module.exports = { main };
if (require.main === module) {
  main().catch((e) => {
    process.stderr.write(`${e.stack || e}\n`);
    process.exit(1);
  });
}
