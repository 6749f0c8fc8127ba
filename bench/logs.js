'use strict';
// Benchmark group `logs` (issue 6): log retrieval against grep/awk, tail, zcat|awk and `pm2 logs`,
// all measured in the same run on a generated log set: a live file of --size-mib (default 1024)
// spread evenly over the last 24 hours, plus 14 daily gzip files (each a tenth of that size).
// It asserts nothing about time; it checks once that every way of reading the 1-hour window
// returns the same line count. `pm2 logs` runs against a private PM2 daemon (killed at the end)
// whose process writes to the generated files.
// Run through `npm run bench` (bench/run.js), or alone: node bench/logs.js [--size-mib N] [--runs N]

const fs = require('fs');
const path = require('path');
const zlib = require('zlib');
const { spawnSync } = require('child_process');

const c = require('./common');

const { ROOT, BIN, PM2 } = c;
const now = Date.now();

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

/** The log set: a live file of `size` bytes over the last 24 h and 14 gzip days before it. */
function generate({ dir, logs, size: SIZE }) {
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

async function bench({ runs, sizeMiB = 1024 }) {
  const box = c.sandbox('logs');
  const { dir, env } = box;
  try {
    return await measureAll({ box, dir, env, logs: path.join(dir, 'apps', 'logs', 'svc'), size: sizeMiB * 1048576 }, runs);
  } finally {
    spawnSync(process.execPath, [PM2, 'kill'], { cwd: dir, env, stdio: 'ignore' });
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

async function measureAll(ctx, RUNS) {
  const { box, dir, env, logs, size: SIZE } = ctx;
  const time = (cmd, args) => c.time(box, cmd, args);
  process.stderr.write(`bench logs: generating ${Math.round(SIZE / 1048576)} MiB live + 14 gzip days in ${dir}\n`);
  const lines = generate(ctx);
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
  const dayAgo = new Date(now - 86400000).toISOString();
  const xs = await c.measure(
    {
      'slice 1h in process (addon)': inProcess,
      'grep/awk 1h over the live file': () => time('sh', ['-c', `${awkWindow} > /dev/null`]),
      'orchestrator logs --since 1h': () => time('sh', ['-c', `node ${BIN} logs svc --since 1h > /dev/null`]),
      'node -e 0': () => time(process.execPath, ['-e', '0']),
      'orchestrator logs --tail 100': () => time(process.execPath, [BIN, 'logs', 'svc', '--tail', '100']),
      'pm2 logs svc --lines 100 --nostream': () => time(process.execPath, [PM2, 'logs', 'svc', '--lines', '100', '--nostream']),
      'tail -n 100': () => time('tail', ['-n', '100', 'apps/logs/svc/out.log']),
      [`orchestrator logs 1h window in ${gzDay}`]: () => time('sh', ['-c', `node ${BIN} logs svc --since ${gzDate}T10:00:00Z --until ${gzDate}T11:00:00Z > /dev/null`]),
      [`zcat ${gzDay} | awk 1h`]: () => time('sh', ['-c', `zcat apps/logs/svc/${gzDay} | awk '$1 >= "${gzDate}T10:00" && $1 < "${gzDate}T11:00"' > /dev/null`]),
      'orchestrator logs --since 24h': () => time('sh', ['-c', `node ${BIN} logs svc --since 24h > /dev/null`]),
      'grep/awk 24h over the live file': () => time('sh', ['-c', `awk '$1 >= "${dayAgo}"' apps/logs/svc/out.log > /dev/null`]),
    },
    RUNS,
  );
  process.stderr.write(`bench logs: window check: ${counts.awk} lines in the last hour from the slice, logs and awk alike; live ${Math.round(SIZE / 1048576)} MiB (${lines} lines over 24 h) + 14 gzip days\n`);
  const live = `${Math.round(SIZE / 1048576)} MiB live file`;
  const row = (group, name, key, baseline = false) => ({ group, case: name, unit: 'ms', samples: xs[key], baseline });
  return [
    row(`logs 1h window, ${live}`, 'logSlice in process (addon)', 'slice 1h in process (addon)'),
    row(`logs 1h window, ${live}`, 'orchestrator logs --since 1h', 'orchestrator logs --since 1h'),
    row(`logs 1h window, ${live}`, 'awk over the live file', 'grep/awk 1h over the live file', true),
    row(`logs 1h window, ${live}`, 'node -e 0 (floor)', 'node -e 0'),
    row(`logs 24h window, ${live}`, 'orchestrator logs --since 24h', 'orchestrator logs --since 24h'),
    row(`logs 24h window, ${live}`, 'awk over the live file', 'grep/awk 24h over the live file', true),
    row(`logs --tail 100, ${live}`, 'orchestrator logs --tail 100', 'orchestrator logs --tail 100'),
    row(`logs --tail 100, ${live}`, 'pm2 logs --lines 100 --nostream', 'pm2 logs svc --lines 100 --nostream', true),
    row(`logs --tail 100, ${live}`, 'tail -n 100', 'tail -n 100'),
    row(`logs 1h window inside a .gz day`, 'orchestrator logs --since/--until', `orchestrator logs 1h window in ${gzDay}`),
    row(`logs 1h window inside a .gz day`, 'zcat | awk', `zcat ${gzDay} | awk 1h`, true),
  ];
}

module.exports = { bench };
if (require.main === module) require('./run').main(['logs', ...process.argv.slice(2)]);
