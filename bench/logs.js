#!/usr/bin/env node
'use strict';
// Benchmark (issue 6): log retrieval against grep/awk, tail, zcat|awk and `pm2 logs`, all
// measured in the same run on a generated log set: a live file of --size-mib (default 1024)
// spread evenly over the last 24 hours, plus 14 daily gzip files (each a tenth of that size).
// Prints median/min/max and the ratios the issue asks for. Not a test: it asserts nothing about
// time; it does check once that every way of reading the window returns the same line count.
// `pm2 logs` runs against a private PM2 daemon (PM2_HOME in the bench directory, killed at
// the end) whose process writes to the generated files.
//
//   node bench/logs.js [--size-mib 1024] [--runs 5]

const fs = require('fs');
const os = require('os');
const path = require('path');
const zlib = require('zlib');
const { spawnSync } = require('child_process');

const arg = (name, dflt) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : dflt;
};
const SIZE = arg('size-mib', 1024) * 1048576;
const RUNS = arg('runs', 5);
const ROOT = path.resolve(__dirname, '..');
const BIN = path.join(ROOT, 'bin', 'orchestrator.js');
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'orch-bench-logs-'));
const logs = path.join(dir, 'apps', 'logs', 'svc');
const now = Date.now();
const PM2 = path.join(ROOT, 'node_modules', 'pm2', 'bin', 'pm2');
const env = { ...process.env, PM2_HOME: path.join(dir, '.pm2'), PM2_SILENT: 'true', NO_COLOR: '1' };

function line(t, i) {
  // About 80 bytes a line.
  return `${new Date(t).toISOString()}: GET /api/items/${i % 100000} 200 ${(i * 7) % 997}ms req=${(i * 2654435761) % 4294967296}\n`;
}

function writeSpan(file, from, to, bytes) {
  const lines = Math.max(1, Math.floor(bytes / 80));
  const step = (to - from) / lines;
  const fd = fs.openSync(file, 'w');
  let buf = '';
  for (let i = 0; i < lines; i++) {
    buf += line(from + i * step, i);
    if (buf.length > 1 << 20) {
      fs.writeSync(fd, buf);
      buf = '';
    }
  }
  fs.writeSync(fd, buf);
  fs.closeSync(fd);
  return lines;
}

function generate() {
  fs.mkdirSync(logs, { recursive: true });
  fs.writeFileSync(path.join(dir, 'package.json'), '{"name":"orch-bench-logs","private":true}');
  fs.writeFileSync(path.join(dir, 'nx.json'), '{}');
  fs.writeFileSync(path.join(dir, 'ecosystem.config.js'), "module.exports = { apps: [{ name: 'svc', script: 'x.js' }] };\n");
  const day = 86400000;
  const live = writeSpan(path.join(logs, 'out.log'), now - day, now, SIZE);
  fs.writeFileSync(path.join(logs, 'error.log'), '');
  for (let d = 1; d <= 14; d++) {
    const start = new Date(now - (d + 1) * day);
    start.setUTCHours(0, 0, 0, 0);
    const name = `out-${start.toISOString().slice(0, 10)}.log`;
    const plain = path.join(logs, name);
    writeSpan(plain, start.getTime(), start.getTime() + day - 1, SIZE / 10);
    fs.writeFileSync(`${plain}.gz`, zlib.gzipSync(fs.readFileSync(plain), { level: 1 }));
    fs.rmSync(plain);
  }
  return live;
}

function time(cmd, args, opts = {}) {
  const t = process.hrtime.bigint();
  const r = spawnSync(cmd, args, { cwd: dir, env, encoding: 'utf8', maxBuffer: 1 << 30, shell: opts.shell, stdio: ['ignore', 'pipe', 'pipe'] });
  const ms = Number(process.hrtime.bigint() - t) / 1e6;
  if (r.status !== 0 && !opts.allowFail) throw new Error(`${cmd} ${args.join(' ')}: ${r.stderr}`);
  return ms;
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
};

// Rounds interleave the cases (each round runs every case once), so a busy moment of the
// machine is spread over all of them instead of landing on one.
function measure(cases) {
  const xs = Object.fromEntries(Object.keys(cases).map((k) => [k, []]));
  for (const fn of Object.values(cases)) fn(); // warm-up
  for (let i = 0; i < RUNS; i++) for (const [name, fn] of Object.entries(cases)) xs[name].push(fn());
  return Object.fromEntries(Object.entries(xs).map(([k, v]) => [k, { median: median(v), min: Math.min(...v), max: Math.max(...v) }]));
}

function main() {
  process.stderr.write(`bench: generating ${Math.round(SIZE / 1048576)} MiB live + 14 gzip days in ${dir}\n`);
  const lines = generate();
  const hourAgo = new Date(now - 3600000).toISOString();
  const gzDay = fs.readdirSync(logs).filter((f) => f.endsWith('.gz')).sort()[7];
  const gzDate = gzDay.slice(4, 14);
  const native = require(path.join(ROOT, 'lib', 'native'));
  const request = (extra) => ({
    workspaceRoot: dir,
    services: ['svc'],
    ecosystem: { apps: [{ name: 'svc', script: 'x.js' }] },
    ecosystemFile: path.join(dir, 'ecosystem.config.js'),
    command: 'bench',
    ...extra,
  });
  const inProcess = () => {
    const t = process.hrtime.bigint();
    native.logSlice(request({ since: '1h' }));
    return Number(process.hrtime.bigint() - t) / 1e6;
  };
  const awkWindow = `awk '$1 >= "${hourAgo}"' apps/logs/svc/out.log`;
  // Same answer first: the slice, `logs --since 1h` and awk count the same lines.
  const count = (cmd) => Number(spawnSync('sh', ['-c', `${cmd} | wc -l`], { cwd: dir, env, encoding: 'utf8' }).stdout.trim());
  const sliced = native.logSlice(request({ since: hourAgo })).reduce((n, s) => n + s.data.toString('latin1').split('\n').length - 1, 0);
  const counts = { slice: sliced, logs: count(`node ${BIN} logs svc --since ${hourAgo}`), awk: count(awkWindow) };
  if (new Set(Object.values(counts)).size !== 1) throw new Error(`the window differs: ${JSON.stringify(counts)}`);
  // A PM2 process whose logs are the generated files, for `pm2 logs --nostream`.
  fs.writeFileSync(path.join(dir, 'idle.js'), 'setInterval(() => {}, 60000);\n');
  spawnSync(process.execPath, [PM2, 'start', 'idle.js', '--name', 'svc', '-o', path.join(logs, 'out.log'), '-e', path.join(logs, 'error.log')], { cwd: dir, env, stdio: 'ignore' });
  spawnSync('sleep', ['2']); // let the new daemon settle before timing anything
  let r;
  try {
    r = measure({
      'slice 1h in process (addon)': inProcess,
      'grep/awk 1h over the live file': () => time('sh', ['-c', `${awkWindow} > /dev/null`]),
      'orchestrator logs --since 1h': () => time('sh', ['-c', `node ${BIN} logs svc --since 1h > /dev/null`]),
      'node -e 0': () => time(process.execPath, ['-e', '0']),
      'orchestrator logs --tail 100': () => time(process.execPath, [BIN, 'logs', 'svc', '--tail', '100']),
      'pm2 logs svc --lines 100 --nostream': () => time(process.execPath, [PM2, 'logs', 'svc', '--lines', '100', '--nostream']),
      'tail -n 100': () => time('tail', ['-n', '100', 'apps/logs/svc/out.log']),
      [`orchestrator logs 1h window in ${gzDay}`]: () => time('sh', ['-c', `node ${BIN} logs svc --since ${gzDate}T10:00:00Z --until ${gzDate}T11:00:00Z > /dev/null`]),
      [`zcat ${gzDay} | awk 1h`]: () => time('sh', ['-c', `zcat apps/logs/svc/${gzDay} | awk '$1 >= "${gzDate}T10:00" && $1 < "${gzDate}T11:00"' > /dev/null`]),
    });
  } finally {
    spawnSync(process.execPath, [PM2, 'kill'], { cwd: dir, env, stdio: 'ignore' });
  }
  process.stdout.write(`window check: ${counts.awk} lines in the last hour from the slice, logs and awk alike\n`);
  process.stdout.write(`logs: live ${Math.round(SIZE / 1048576)} MiB (${lines} lines over 24 h) + 14 gzip days, ${RUNS} runs each\n`);
  for (const [k, v] of Object.entries(r)) process.stdout.write(`${k.padEnd(48)} ${v.median.toFixed(1).padStart(9)}ms  (min ${v.min.toFixed(1)}, max ${v.max.toFixed(1)})\n`);
  const m = (k) => r[k].median;
  const gzKeys = Object.keys(r).filter((k) => k.includes(gzDay));
  const goals = [
    ['in-process slice at least 50x faster than grep/awk', m('grep/awk 1h over the live file') / m('slice 1h in process (addon)'), (x) => x >= 50, 'x'],
    ['logs --since 1h minus node -e 0 (goal <= 60 ms)', m('orchestrator logs --since 1h') - m('node -e 0'), (x) => x <= 60, ' ms'],
    ['gz window: ours / zcat|awk (goal <= 1)', m(gzKeys[0]) / m(gzKeys[1]), (x) => x <= 1, ''],
    ['--tail 100: ours / pm2 logs --nostream (goal <= 0.5)', m('orchestrator logs --tail 100') / m('pm2 logs svc --lines 100 --nostream'), (x) => x <= 0.5, ''],
  ];
  for (const [name, v, ok, unit] of goals) process.stdout.write(`${name}: ${v.toFixed(2)}${unit} — ${ok(v) ? 'met' : 'NOT met'}\n`);
  fs.mkdirSync(path.join(__dirname, 'results'), { recursive: true });
  fs.writeFileSync(path.join(__dirname, 'results', 'logs.json'), JSON.stringify({ at: new Date().toISOString(), sizeMiB: SIZE / 1048576, runs: RUNS, results: r }, null, 2) + '\n');
  fs.rmSync(dir, { recursive: true, force: true });
}

main();
