'use strict';
// Issue 6 (retrieval and capture): every line in apps/logs/<service>/{out,error}.log starts
// with a timestamp (PM2's for apps, the container's for dependencies); `logs` reads live,
// rotated (.gz) and archived files in time order with windows, tail, stream, grep and level.

const test = require('node:test');
const assert = require('node:assert');
const fs = require('fs');
const path = require('path');
const zlib = require('zlib');
const h = require('./helpers');

const ws = path.join(h.RUN_DIR, 'logs');
fs.mkdirSync(path.join(ws, 'config', 'env'), { recursive: true });
fs.mkdirSync(path.join(ws, 'apps', 'chatter'), { recursive: true });
fs.writeFileSync(path.join(ws, 'package.json'), JSON.stringify({ name: `orch-test-logs-${process.pid}`, private: true }));
fs.writeFileSync(path.join(ws, 'config', 'env', 'development.env'), 'X=1\n');
// Rotation by size at 20 KB, so a burst of a few seconds rotates several times.
fs.writeFileSync(path.join(ws, 'nx.json'), JSON.stringify({ pluginsConfig: { '@workspace/orchestrator': { defaultServices: ['chatter'], logs: { maxFileMiB: 0.02 } } } }));
fs.writeFileSync(path.join(ws, 'apps', 'chatter', 'package.json'), '{"name":"chatter","version":"1.0.0","private":true}');
fs.writeFileSync(
  path.join(ws, 'apps', 'chatter', 'main.js'),
  `console.log('hello from chatter');
console.log(JSON.stringify({ level: 40, msg: 'pino says careful' }));
console.error('ERROR something broke');
console.error(new Error('kaboom').stack);
console.log('WARN disk at 91%');
setInterval(() => {}, 1000);
`,
);
fs.mkdirSync(path.join(ws, 'apps', 'ticker'), { recursive: true });
fs.writeFileSync(path.join(ws, 'apps', 'ticker', 'package.json'), '{"name":"ticker","version":"1.0.0","private":true}');
fs.writeFileSync(path.join(ws, 'apps', 'ticker', 'main.js'), "let n = 0; setInterval(() => console.log('tick ' + n++), 20);\n");
fs.mkdirSync(path.join(ws, 'apps', 'burst'), { recursive: true });
fs.writeFileSync(path.join(ws, 'apps', 'burst', 'package.json'), '{"name":"burst","version":"1.0.0","private":true}');
// 20 lines every 10 ms (about 2000 lines a second) until 8000, then quiet.
fs.writeFileSync(
  path.join(ws, 'apps', 'burst', 'main.js'),
  "let n = 0; const t = setInterval(() => { for (let i = 0; i < 20 && n < 8000; i++) console.log('burst ' + n++ + ' ' + 'x'.repeat(40)); if (n >= 8000) clearInterval(t); }, 10); setInterval(() => {}, 1000);\n",
);
// Two cluster instances that keep their own files (merge_logs: false), 400 lines each (~30 KB
// with PM2's timestamps: past the 20 KB cap, so each instance's file rotates on its own).
fs.mkdirSync(path.join(ws, 'apps', 'pair'), { recursive: true });
fs.writeFileSync(path.join(ws, 'apps', 'pair', 'package.json'), '{"name":"pair","version":"1.0.0","private":true}');
fs.writeFileSync(
  path.join(ws, 'apps', 'pair', 'main.js'),
  "let n = 0; const id = process.env.NODE_APP_INSTANCE; const t = setInterval(() => { for (let i = 0; i < 4 && n < 400; i++) console.log('pair ' + id + ' ' + n++ + ' ' + 'y'.repeat(30)); if (n >= 400) clearInterval(t); }, 20); setInterval(() => {}, 1000);\n",
);
fs.writeFileSync(
  path.join(ws, 'ecosystem.config.js'),
  "module.exports = { apps: [{ name: 'chatter', cwd: 'apps/chatter', script: 'main.js' }, { name: 'ticker', cwd: 'apps/ticker', script: 'main.js' }, { name: 'burst', cwd: 'apps/burst', script: 'main.js' }, { name: 'pair', cwd: 'apps/pair', script: 'main.js', exec_mode: 'cluster', instances: 2, merge_logs: false }] };\n",
);
fs.writeFileSync(
  path.join(ws, 'docker-compose.yml'),
  `services:
  talker:
    image: orchestrator-local/busybox:1
    command: ["sh", "-c", "echo talker-out-1; echo talker-err-1 >&2; trap 'exit 0' TERM; while true; do sleep 1; done"]
    stop_grace_period: 1s
`,
);

const logs = (args) => h.cli(['logs', ...args], ws);
const json = (args) => {
  const r = logs(['--json', ...args]);
  assert.strictEqual(r.code, 0, r.out);
  return r.stdout.trim() ? r.stdout.trim().split('\n').map((l) => JSON.parse(l)) : [];
};
const TS = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}(Z|[+-]\d\d:\d\d)[: ]/;

test.after(async () => {
  await h.killPm2();
  h.removeContainers(ws);
});

test('capture: every line of an app and of a container starts with a timestamp', async () => {
  assert.strictEqual(h.cli(['start', 'chatter', 'talker'], ws).code, 0);
  const dir = (s) => path.join(ws, 'apps', 'logs', s);
  await h.until('chatter output', () => fs.existsSync(path.join(dir('chatter'), 'out.log')) && fs.readFileSync(path.join(dir('chatter'), 'out.log'), 'utf8').includes('WARN disk'));
  await h.until('talker output', () => fs.existsSync(path.join(dir('talker'), 'out.log')) && fs.readFileSync(path.join(dir('talker'), 'out.log'), 'utf8').includes('talker-out-1'));
  await h.until('talker stderr', () => fs.readFileSync(path.join(dir('talker'), 'error.log'), 'utf8').includes('talker-err-1'));
  for (const s of ['chatter', 'talker']) {
    for (const f of ['out.log', 'error.log']) {
      const lines = fs.readFileSync(path.join(dir(s), f), 'utf8').split('\n').filter(Boolean);
      assert.ok(lines.length > 0, `${s}/${f}`);
      for (const l of lines) assert.match(l, TS, `${s}/${f}: ${l}`);
    }
  }
  // Multi-line output: each line of the stack trace keeps a timestamp.
  const err = fs.readFileSync(path.join(dir('chatter'), 'error.log'), 'utf8');
  assert.match(err, /\d{3}(Z|[+-]\d\d:\d\d): +at /, 'a stack frame line with its own timestamp');
});

test('logs --json: time order, streams tagged, severities from the line or the stream', () => {
  const got = json(['chatter']);
  assert.ok(got.length >= 6, JSON.stringify(got));
  for (const e of got) {
    assert.deepStrictEqual(Object.keys(e), ['time', 'service', 'stream', 'severity', 'line']);
    assert.match(e.time, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
  }
  for (let i = 1; i < got.length; i++) assert.ok(got[i - 1].time <= got[i].time, 'in time order');
  const by = (line) => got.find((e) => e.line.includes(line));
  assert.deepStrictEqual([by('hello from chatter').stream, by('hello from chatter').severity], ['out', 'info']);
  assert.strictEqual(by('pino says careful').severity, 'warn');
  assert.deepStrictEqual([by('something broke').stream, by('something broke').severity], ['err', 'error']);
  assert.strictEqual(by('WARN disk').severity, 'warn');
  assert.strictEqual(by('Error: kaboom').severity, 'error', 'stderr without a token is error');
});

test('filters: --stream, --grep, --level, --tail, --since/--until; a dependency by name', () => {
  assert.ok(json(['chatter', '--stream=err']).every((e) => e.stream === 'err'));
  assert.deepStrictEqual(json(['chatter', '--grep=kaboom|broke']).map((e) => e.line), ['ERROR something broke', 'Error: kaboom']);
  assert.ok(json(['chatter', '--level=warn']).every((e) => ['warn', 'error', 'fatal'].includes(e.severity)));
  assert.strictEqual(json(['chatter', '--tail=2']).length, 2);
  assert.ok(json(['chatter', '--since=10m']).length >= 6);
  assert.deepStrictEqual(json(['chatter', '--until=2000-01-01T00:00:00Z']), []);
  const talker = json(['--service=talker']);
  assert.ok(talker.some((e) => e.line === 'talker-out-1' && e.stream === 'out'));
  assert.ok(talker.some((e) => e.line === 'talker-err-1' && e.stream === 'err'));
  const text = logs(['chatter', '--tail=1']);
  assert.match(text.stdout, /^\d{4}-\d\d-\d\dT[\d:.]+Z chatter (out|err) /);
});

test('live, rotated and archived files in one window, exactly the lines inside it', () => {
  const dir = path.join(ws, 'apps', 'logs', 'chatter');
  fs.mkdirSync(path.join(dir, 'archive'), { recursive: true });
  const day = (d, n) => Array.from({ length: n }, (_, i) => `${d}T${String(Math.floor(i / 60)).padStart(2, '0')}:${String(i % 60).padStart(2, '0')}:00.000Z old line ${d} ${i}\n`).join('');
  fs.writeFileSync(path.join(dir, 'archive', 'out-2026-10-01.log.gz'), zlib.gzipSync(day('2026-10-01', 1440)));
  fs.writeFileSync(path.join(dir, 'out-2026-11-20.log.gz'), zlib.gzipSync(day('2026-11-20', 1440)));
  const window = json(['chatter', '--since=2026-11-20T23:50:00Z', '--until=2026-11-20T23:59:00Z']);
  assert.strictEqual(window.length, 10);
  assert.strictEqual(window[0].line, 'old line 2026-11-20 1430');
  assert.strictEqual(json(['chatter', '--since=2026-10-01T10:00:00Z', '--until=2026-10-01T10:04:30Z']).length, 5, 'from the archive');
  // A window spanning the rotated day and today reads both, in order.
  const span = json(['chatter', '--since=2026-11-20T23:58:00Z']);
  assert.strictEqual(span[0].line, 'old line 2026-11-20 1438');
  assert.ok(span.some((e) => e.line === 'hello from chatter'));
});

test('bad input: unknown service, a path, an unreadable window, a wrong stream or tail', () => {
  const cases = [
    [['nope'], 11, /no service named "nope"/],
    [['--service=../etc'], 2, /not a valid service name|invalid/i],
    [['chatter', '--since=yesterday'], 2, /--since: "yesterday" is neither a duration/],
    [['chatter', '--stream=both'], 2, /--stream must be out, err or all/],
    [['chatter', '--tail=-5'], 2, /--tail must be a whole number/],
    [['chatter', '--level=loud'], 2, /not a severity/],
    [['chatter', '--grep=('], 2, /not a valid regular expression/],
    [['chatter', '--since=1h', '--until=2h'], 2, /is before --since/],
  ];
  for (const [args, code, msg] of cases) {
    const r = logs(args);
    assert.strictEqual(r.code, code, `${args.join(' ')}: ${r.out}`);
    assert.match(r.stderr, msg, args.join(' '));
    assert.strictEqual(r.stdout, '', 'nothing printed');
  }
});

test('--follow keeps printing new lines across a rotation: every tick once, in order', async () => {
  assert.strictEqual(h.cli(['start', 'ticker'], ws).code, 0);
  const { spawn } = require('child_process');
  const child = spawn(process.execPath, [path.join(h.ROOT, 'bin', 'orchestrator.js'), 'logs', 'ticker', '--follow', '--json', '--tail=5'], { cwd: ws, env: h.childEnv() });
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  const ticks = () => out.split('\n').filter(Boolean).map((l) => JSON.parse(l)).filter((e) => /^tick \d+$/.test(e.line)).map((e) => Number(e.line.slice(5)));
  await h.until('follower output', () => ticks().length >= 20);
  // Rotate as the logs issue will: rename the live file, then PM2 reopens its logs.
  const dir = path.join(ws, 'apps', 'logs', 'ticker');
  fs.renameSync(path.join(dir, 'out.log'), path.join(dir, 'out-rotating.log'));
  await h.call('reloadLogs');
  const before = ticks().length;
  await h.until('ticks after the rotation', () => ticks().length >= before + 40);
  child.kill('SIGTERM');
  const got = ticks();
  for (let i = 1; i < got.length; i++) assert.strictEqual(got[i], got[i - 1] + 1, `tick ${got[i - 1]} then ${got[i]}: nothing lost, nothing twice`);
  assert.ok(fs.readFileSync(path.join(dir, 'out.log'), 'utf8').includes('tick'), 'PM2 writes the new file');
  const r = logs(['ticker', '--follow', '--until=1m']);
  assert.strictEqual(r.code, 2);
  assert.match(r.stderr, /--until and --follow exclude each other/);
  assert.strictEqual(h.cli(['stop', 'ticker'], ws).code, 0);
});

test('the API: an async iterator over the window and one that follows; the raw slice', async () => {
  const { logs: api, logStream, logSlice } = require('..');
  const all = await api({ cwd: ws, service: 'chatter' });
  assert.ok(all.length >= 5, JSON.stringify(all));
  const streamed = [];
  for await (const e of logStream({ cwd: ws, service: 'chatter', batch: 2 })) streamed.push(e);
  assert.deepStrictEqual(streamed, all, 'pulled two at a time, the same entries as logs()');
  // Following a live service: the ticks arrive as they are written, in order; break ends it.
  assert.strictEqual(h.cli(['start', 'ticker'], ws).code, 0);
  const ticks = [];
  for await (const e of logStream({ cwd: ws, service: 'ticker', follow: true, pollMs: 50 })) {
    if (/^tick \d+$/.test(e.line)) ticks.push(Number(e.line.slice(5)));
    if (ticks.length >= 30) break;
  }
  for (let i = 1; i < ticks.length; i++) assert.strictEqual(ticks[i], ticks[i - 1] + 1, `tick ${ticks[i - 1]} then ${ticks[i]}`);
  // An AbortSignal ends a follow too.
  const ac = new AbortController();
  setTimeout(() => ac.abort(), 500);
  let n = 0;
  for await (const e of logStream({ cwd: ws, service: 'ticker', follow: true, signal: ac.signal, pollMs: 50 })) if (e.line.startsWith('tick ')) n++;
  assert.ok(n > 0, 'ticks while following until aborted');
  assert.strictEqual(h.cli(['stop', 'ticker'], ws).code, 0);
  // Bad input is the same actionable error, before anything is read.
  await assert.rejects(
    async () => {
      for await (const e of logStream({ cwd: ws, service: 'nope' })) assert.fail(`read ${e.line}`);
    },
    (e) => e.code === 'EXIT_SERVICE_UNKNOWN' && e.exitCode === 11,
  );
  // The slice: the window's bytes as written, for each file.
  const slices = logSlice({ cwd: ws, service: 'chatter', since: '1d' });
  const out = slices.find((s) => s.stream === 'out');
  assert.ok(Buffer.isBuffer(out.data) && out.file.endsWith(path.join('chatter', 'out.log')), JSON.stringify(out));
  assert.ok(out.data.equals(fs.readFileSync(out.file).subarray(out.start, out.end)), 'the bytes of the file between start and end');
  assert.match(out.data.toString(), /: hello from chatter\n/);
  assert.throws(() => logSlice({ cwd: ws, service: 'chatter', grep: 'x' }), (e) => e.code === 'EXIT_USAGE');
});

test('rotation under a burst: renamed, reopened, gzip-compressed; every line readable exactly once', async () => {
  assert.strictEqual(h.cli(['start', 'burst'], ws).code, 0);
  const dir = path.join(ws, 'apps', 'logs', 'burst');
  const count = () => json(['burst', '--stream=out']).filter((e) => e.line.startsWith('burst ')).length;
  await h.until('all 8000 lines written', () => count() === 8000, 40000);
  // The agent rotates by size (20 KB) every 2 s while the lines come (and once more for what is
  // left after the burst); the rotated files end up as .gz.
  const plainRotated = (f) => /^out-\d{4}-\d\d-\d\d(\.\d+)?\.log$/.test(f);
  await h.until(
    'several rotations, all compressed',
    () => {
      const files = fs.readdirSync(dir);
      return files.filter((f) => f.endsWith('.log.gz')).length >= 2 && !files.some(plainRotated) && (fs.existsSync(path.join(dir, 'out.log')) ? fs.statSync(path.join(dir, 'out.log')).size : Infinity) < 20480;
    },
    20000,
    () => fs.readdirSync(dir).join(' '),
  );
  const gz = fs.readdirSync(dir).filter((f) => f.endsWith('.log.gz'));
  assert.ok(!fs.readdirSync(dir).some((f) => f.endsWith('.tmp')), 'no temporary file left');
  // Every rotated file decompresses; with the live file they hold each line exactly once.
  const seen = new Map();
  const texts = [...gz.map((f) => zlib.gunzipSync(fs.readFileSync(path.join(dir, f))).toString()), fs.readFileSync(path.join(dir, 'out.log'), 'utf8')];
  for (const text of texts) {
    for (const m of text.matchAll(/: burst (\d+) x+$/gm)) seen.set(m[1], (seen.get(m[1]) || 0) + 1);
  }
  assert.strictEqual(seen.size, 8000, 'no line lost');
  assert.ok([...seen.values()].every((c) => c === 1), 'no line twice');
  // And `logs` reads them in order across the rotated files and the live one.
  const nums = json(['burst', '--stream=out']).filter((e) => e.line.startsWith('burst ')).map((e) => Number(e.line.split(' ')[1]));
  assert.deepStrictEqual(nums, Array.from({ length: 8000 }, (_, i) => i));
  assert.strictEqual(h.cli(['stop', 'burst'], ws).code, 0);
});

test('cluster instances with their own files (merge_logs: false): each rotated, all merged', async () => {
  const started = h.cli(['start', 'pair'], ws);
  assert.strictEqual(started.code, 0, started.out);
  const dir = path.join(ws, 'apps', 'logs', 'pair');
  const lines = () => json(['pair', '--stream=out']).filter((e) => e.line.startsWith('pair '));
  await h.until('400 lines from each instance', () => lines().length === 800, 30000);
  await h.until('per-instance rotations, compressed', () => fs.readdirSync(dir).filter((f) => /^out-\d+-\d{4}-\d\d-\d\d(\.\d+)?\.log\.gz$/.test(f)).length >= 2, 20000);
  assert.ok(fs.readdirSync(dir).filter((f) => /^out-\d+\.log$/.test(f)).length === 2, `live files: ${fs.readdirSync(dir).join(' ')}`);
  assert.ok(!fs.existsSync(path.join(dir, 'out.log')), 'no merged file');
  // Every line once, tagged with the PM2 id whose file it is in, each instance in its own order.
  const got = lines();
  const per = {};
  for (const e of got) (per[e.instance] ||= []).push(e.line.split(' ').slice(1, 3).map(Number));
  const ids = Object.keys(per);
  assert.strictEqual(ids.length, 2, `instances: ${ids}`);
  for (const id of ids) {
    assert.strictEqual(new Set(per[id].map(([inst]) => inst)).size, 1, `instance ${id} has one NODE_APP_INSTANCE`);
    assert.deepStrictEqual(per[id].map(([, n]) => n), Array.from({ length: 400 }, (_, i) => i), `instance ${id}: every line once, in order`);
  }
  for (let i = 1; i < got.length; i++) assert.ok(got[i - 1].time <= got[i].time, 'merged in time order');
  const r = logs(['pair', '--tail=1']);
  assert.match(r.stdout, /^\S+ pair\[\d+\] (out|err) /, r.out);
  assert.strictEqual(h.cli(['stop', 'pair'], ws).code, 0);
});

test('through Nx and the API', async () => {
  fs.writeFileSync(path.join(ws, 'project.json'), JSON.stringify({ name: 'workspace', targets: { logs: { executor: '@workspace/orchestrator:logs' } } }));
  fs.symlinkSync(path.join(h.EXAMPLE, 'node_modules'), path.join(ws, 'node_modules'));
  const r = await h.nx(['workspace:logs', '--', '--service=chatter', '--tail=2', '--json'], ws);
  assert.strictEqual(r.code, 0, r.out);
  assert.strictEqual(r.stdout.split('\n').filter((l) => l.startsWith('{"time"')).length, 2);
  const { logs: api } = require('..');
  const got = await api({ cwd: ws, service: 'chatter', grep: 'kaboom' });
  assert.deepStrictEqual(got.map((e) => [e.stream, e.severity, e.line]), [['err', 'error', 'Error: kaboom']]);
});

test('nothing left behind', async () => {
  assert.strictEqual(h.cli(['stop', '--all'], ws).code, 0);
  await h.assertNothingLeft(ws);
});
