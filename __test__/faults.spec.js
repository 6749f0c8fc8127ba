'use strict';
// Issue 8's fault suite: what real hosts do to a workflow — the Docker engine going away, the
// agent killed again and again, PM2's daemon killed, commands racing each other, bad input —
// with real PM2 (private PM2_HOME), real dockerd and real Nx. Each test prints what it counted
// (`# …` lines in the test output). The last one greps everything we printed or wrote for the
// values of the env files' variables.

const test = require('node:test');
const assert = require('node:assert');
const crypto = require('crypto');
const fs = require('fs');
const path = require('path');
const { spawn, spawnSync } = require('child_process');
const h = require('./helpers');

// --- the workspace: web (steady), loop (crash loop), box (a busybox dependency) -------------
const ws = path.join(h.RUN_DIR, 'faults');
const secret = (tag) => `${tag}-${crypto.randomBytes(6).toString('hex')}`;
const SECRETS = { API_TOKEN: secret('tok'), DB_PASSWORD: `pw ${secret('with-spaces')}`, SINGLE: secret('sq') };
fs.mkdirSync(path.join(ws, 'config', 'env'), { recursive: true });
fs.writeFileSync(path.join(ws, 'package.json'), JSON.stringify({ name: `orch-test-faults-${process.pid}`, private: true }));
// Odd but valid dotenv: a BOM, CRLF line ends, `export`, double and single quotes, an empty value.
fs.writeFileSync(
  path.join(ws, 'config', 'env', 'development.env'),
  `\ufeff# faults suite\r\nexport API_TOKEN=${SECRETS.API_TOKEN}\r\nDB_PASSWORD="${SECRETS.DB_PASSWORD}"\r\nSINGLE='${SECRETS.SINGLE}'\r\nEMPTY=\r\n`,
);
// A line that is not NAME=value.
fs.writeFileSync(path.join(ws, 'config', 'env', 'staging.env'), `API_TOKEN=${SECRETS.API_TOKEN}\nNOT A NAME\n`);

// The burst: 1 GiB at 24 MiB/s (about 43 s), with the live file rotated at 32 MiB and a 256 MiB
// cap per service.
const BURST = { bytes: 1 << 30, rate: 24 << 20, maxFileMiB: 32, maxServiceMiB: 256 };
const APPS = {
  web: 'console.log("web up", process.pid); setInterval(() => {}, 1000);',
  // Writes TOTAL bytes of numbered lines at RATE bytes a second, then
  // records what it wrote and idles.
  flood: `const fs = require('fs');
const total = Number(process.env.TOTAL), rate = Number(process.env.RATE), pad = 'x'.repeat(100);
let n = 0, written = 0;
const t0 = Date.now();
function more() {
  while (written < total && written < (rate * (Date.now() - t0)) / 1000 + (1 << 20)) {
    let chunk = '';
    for (let i = 0; i < 1000; i++) chunk += 'flood ' + n++ + ' ' + pad + '\\n';
    written += chunk.length;
    process.stdout.write(chunk);
  }
  if (written < total) return setTimeout(more, 5);
  fs.writeFileSync('done.json', JSON.stringify({ lines: n, bytes: written, ms: Date.now() - t0 }));
  setInterval(() => {}, 60000);
}
more();`,
  // Each run bumps a counter, lives 200 ms and exits 3: a crash loop.
  loop: `const fs = require('fs');
const n = fs.existsSync('count') ? Number(fs.readFileSync('count', 'utf8')) : 0;
fs.writeFileSync('count', String(n + 1));
setTimeout(() => { console.error('loop: crashing, run', n); process.exit(3); }, 200);`,
};
for (const [name, code] of Object.entries(APPS)) {
  fs.mkdirSync(path.join(ws, 'apps', name), { recursive: true });
  fs.writeFileSync(path.join(ws, 'apps', name, 'main.js'), code);
  fs.writeFileSync(path.join(ws, 'apps', name, 'package.json'), JSON.stringify({ name, version: '1.0.0', private: true }));
}
fs.writeFileSync(
  path.join(ws, 'ecosystem.config.js'),
  `module.exports = { apps: ${JSON.stringify(
    Object.keys(APPS).map((name) => ({ name, cwd: `apps/${name}`, script: 'main.js', ...(name === 'flood' ? { env: { TOTAL: String(BURST.bytes), RATE: String(BURST.rate) } } : {}) })),
  )} };\n`,
);
fs.writeFileSync(
  path.join(ws, 'docker-compose.yml'),
  `services:
  box:
    image: orchestrator-local/busybox:1
    command: ["sh", "-c", "trap 'exit 0' TERM; echo box-up; while true; do sleep 1; done"]
    environment:
      BOX_PASSWORD: \${DB_PASSWORD}
    healthcheck:
      test: ["CMD-SHELL", "true"]
      interval: 1s
      retries: 3
    stop_grace_period: 2s
  noisy:
    image: orchestrator-local/busybox:1
    command: ["sh", "-c", "seq 0 1999999 | sed 's/$$/ ${'x'.repeat(90)}/'; echo noisy-done; sleep 3600"]
    stop_grace_period: 1s
`,
);
// An Nx workspace too: the example's Nx (linked), a root project with our executors.
fs.symlinkSync(path.join(h.EXAMPLE, 'node_modules'), path.join(ws, 'node_modules'));
fs.writeFileSync(
  path.join(ws, 'project.json'),
  JSON.stringify({ name: 'workspace', targets: Object.fromEntries(['start', 'stop', 'status', 'logs'].map((v) => [v, { executor: `@workspace/orchestrator:${v}` }])) }),
);
const loopPolicy = { maxRestarts: 6, windowSeconds: 120, backoffInitialMs: 700, backoffMaxMs: 700, stableSeconds: 60 };
fs.writeFileSync(
  path.join(ws, 'nx.json'),
  JSON.stringify({
    pluginsConfig: {
      '@workspace/orchestrator': {
        defaultServices: ['web', 'box'],
        logs: { maxFileMiB: BURST.maxFileMiB, maxServiceMiB: BURST.maxServiceMiB },
        services: {
          web: { requiredEnv: ['API_TOKEN', 'DB_PASSWORD'] },
          loop: { readyTimeoutSeconds: 60, restartPolicy: loopPolicy },
          // Generous enough to outlast an engine restart: 1 s, 2 s, then every 3 s, 20 times.
          box: { restartPolicy: { maxRestarts: 20, windowSeconds: 300, backoffInitialMs: 1000, backoffMaxMs: 3000, stableSeconds: 20 } },
        },
      },
    },
  }),
);

// Everything any command of this suite printed, for the secrets test.
const printed = [];
const cli = (args, cwd = ws) => {
  const r = h.cli(args, cwd);
  printed.push(r.out);
  return r;
};
const nx = async (args, cwd) => {
  const r = await h.nx(args, cwd);
  printed.push(r.out);
  return r;
};
const snap = () => {
  const r = cli(['status', '--json']);
  return JSON.parse(r.stdout);
};
const row = (name, s = snap()) => s.services.find((x) => x.name === name);
const events = (service) => {
  const f = path.join(ws, 'apps', 'logs', service, 'events.jsonl');
  return fs.existsSync(f) ? fs.readFileSync(f, 'utf8').trim().split('\n').filter(Boolean).map((l) => JSON.parse(l)) : [];
};
const named = (service, event) => events(service).filter((e) => e.event === event);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const labelled = (root, service) =>
  h
    .docker(['ps', '-a', '--filter', `label=dev.orchestrator.workspace=${root}`, '--filter', `label=dev.orchestrator.service=${service}`, '--format', '{{.ID}} {{.State}}'])
    .stdout.trim()
    .split('\n')
    .filter(Boolean)
    .map((l) => ({ id: l.split(' ')[0], state: l.split(' ')[1] }));

/** The actionable error a `--json` command printed (one JSON line). */
const lastError = (r) => JSON.parse(r.out.split('\n').filter((l) => l.startsWith('{"error"')).pop()).error;

/** A listing of a directory tree (path and content hash), to prove a refused command wrote
 * nothing. Nx's `.nx/` is left out (Nx writes its cache and graph there on every run), and so is
 * the workspace lock's file: a command takes the lock (an OS file lock on
 * `.orchestrator/lock`, holding the pid) before it reads the files it then refuses; the file is
 * the lock's, not state. */
function tree(dir) {
  const out = [];
  const walk = (d) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      // node_modules (the example's, linked) and Nx's own cache and workspace data are not ours.
      if (e.isSymbolicLink() || (d === dir && e.name === '.nx')) continue;
      if (e.isDirectory()) walk(p);
      else if (path.relative(dir, p) !== path.join('.orchestrator', 'lock')) {
        out.push(`${path.relative(dir, p)} ${crypto.createHash('sha1').update(fs.readFileSync(p)).digest('hex')}`);
      }
    }
  };
  walk(dir);
  return out.sort();
}

test.after(async () => {
  await h.killPm2();
  h.removeAllContainers();
});

// --- bad input: each refused with a clear error, nothing changed ------------------------------
test('bad input: every flag wrong, odd service names, broken files — a clear error each, nothing changed', async (t) => {
  const before = tree(ws);
  const long = 'a'.repeat(10 * 1024);
  const cases = [
    // [args, exit code name, what the message must say]
    [['start', '..'], 'EXIT_USAGE', /invalid service name "\.\."/],
    [['start', 'apps/web'], 'EXIT_USAGE', /apps\/web/],
    [['start', 'we b'], 'EXIT_USAGE', /we b/],
    [['start', long], 'EXIT_USAGE', /invalid service name/],
    [['stop', '../etc'], 'EXIT_USAGE', /\.\.\/etc/],
    [['restart', 'nope'], 'EXIT_SERVICE_UNKNOWN', /nope/],
    [['logs', '../web'], null, /\.\.\/web/],
    [['status', '--service', 'a/b'], 'EXIT_USAGE', /a\/b/],
    [['status', '--service', long], 'EXIT_USAGE', /invalid service name/],
    [['start', '--profile', 'nope'], 'EXIT_PROFILE_UNDEFINED', /nope/],
    [['start', '--profile', '../x'], null, /profile/],
    [['start', '--profile', 'a b'], null, /profile/],
    [['start', '--profile', long], null, /profile/],
    [['start', '--profile'], 'EXIT_USAGE', /profile/],
    [['start', '--all=yes'], 'EXIT_USAGE', /all/],
    [['start', '--json=1'], 'EXIT_USAGE', /json/],
    [['start', '--bogus'], 'EXIT_USAGE', /bogus/],
    [['frobnicate'], 'EXIT_USAGE', /frobnicate/],
    [['status', '--format', 'xml'], 'EXIT_USAGE', /xml/],
    [['status', '--strict=1'], 'EXIT_USAGE', /strict/],
    [['logs', 'web', '--tail=-1'], 'EXIT_USAGE', /tail/],
    [['logs', 'web', '--tail', 'abc'], 'EXIT_USAGE', /tail/],
    [['logs', 'web', '--tail', '1.5'], 'EXIT_USAGE', /tail/],
    [['logs', 'web', '--tail', '99999999999999999999'], 'EXIT_USAGE', /tail/],
    [['logs', 'web', '--since', 'yesterday'], 'EXIT_USAGE', /yesterday/],
    [['logs', 'web', '--until', '48x'], 'EXIT_USAGE', /48x/],
    [['logs', 'web', '--since=-5m'], 'EXIT_USAGE', /-5m/],
    [['logs', 'web', '--stream', 'both'], 'EXIT_USAGE', /both/],
    [['logs', 'web', '--level', 'loud'], 'EXIT_USAGE', /loud/],
    [['logs', 'web', '--grep', '('], 'EXIT_USAGE', /grep/],
    [['verify', '--profile', 'nope'], 'EXIT_PROFILE_UNDEFINED', /nope/],
    [['verify', '--all-profiles=1'], 'EXIT_USAGE', /all-profiles/],
    [['start', '--cwd', path.join(h.RUN_DIR, 'no-such-dir')], null, /no-such-dir/],
    // A line that is not NAME=value: the file and the line, never its text.
    [['start', 'web', '--profile', 'staging'], null, /staging\.env.*line 2|line 2.*staging\.env/s],
  ];
  const table = Object.fromEntries([...h.cli(['exit-codes']).stdout.matchAll(/^\s*(\d+)\s+(\S+)/gm)].map((m) => [m[2], Number(m[1])]));
  const numberOf = (name) => table[name];
  let refused = 0;
  for (const [args, code, says] of cases) {
    const r = cli([...args, '--json']);
    const label = args.map((a) => (a.length > 40 ? `<${a.length} chars>` : a)).join(' ');
    assert.notStrictEqual(r.code, 0, `${label} is refused`);
    let err;
    try {
      err = lastError(r);
    } catch (_) {
      assert.fail(`${label}: the error is one JSON object on stderr: ${r.out.slice(0, 500)}`);
    }
    if (code) assert.strictEqual(err.code, code, `${label}: ${err.code}`);
    assert.strictEqual(err.exitCode, r.code, `${label}: exits with the code's number`);
    if (code && numberOf(code) !== undefined) assert.strictEqual(r.code, numberOf(code), label);
    assert.ok(err.remediation.length >= 1, `${label}: at least one remediation`);
    assert.match(`${err.message} ${err.remediation.join(' ')}`, says, `${label}: ${err.message}`);
    assert.ok(!fs.existsSync(path.join(h.PM2_HOME, 'pm2.pid')), `${label}: no PM2 daemon started`);
    assert.ok(r.out.length < 8 * 1024, `${label}: the error stays short (${r.out.length} bytes): a 10 KB name is not echoed whole`);
    refused++;
  }
  // Broken files: a syntax error, an ecosystem that throws, compose YAML that does not parse.
  const eco = path.join(ws, 'ecosystem.config.js');
  const compose = path.join(ws, 'docker-compose.yml');
  const good = { eco: fs.readFileSync(eco, 'utf8'), compose: fs.readFileSync(compose, 'utf8') };
  const broken = [
    [eco, 'module.exports = { apps: [ { name: "web", ', /ecosystem\.config\.js/],
    [eco, 'throw new Error("no config for you");', /ecosystem\.config\.js[\s\S]*no config for you|no config for you[\s\S]*ecosystem\.config\.js/],
    [compose, 'services:\n  box:\n    image: [unclosed\n', /docker-compose\.yml/],
    [compose, 'services:\n  box:\n\timage: tabs\n', /docker-compose\.yml/],
  ];
  for (const [file, text, says] of broken) {
    fs.writeFileSync(file, text);
    try {
      for (const args of [['start'], ['status'], ['verify']]) {
        const r = cli([...args, '--json']);
        assert.notStrictEqual(r.code, 0, `${args[0]} with a broken ${path.basename(file)}`);
        // verify reports it as a problem of its report (with file and remediation); the others
        // fail with the actionable error.
        const said = args[0] === 'verify' ? JSON.parse(r.stdout).problems.map((p) => `${p.file}: ${p.message} ${p.remediation}`).join('\n') : (({ message, remediation }) => `${message} ${remediation.join(' ')}`)(lastError(r));
        assert.match(said, says, `${args[0]}: ${said}`);
        assert.ok(!fs.existsSync(path.join(h.PM2_HOME, 'pm2.pid')), `${args[0]} with a broken ${path.basename(file)}: no PM2 daemon started`);
        refused++;
      }
    } finally {
      fs.writeFileSync(file, file === eco ? good.eco : good.compose);
    }
  }
  // Through Nx, its schema refuses wrong types before our code runs; ours refuses the rest.
  for (const [args, says] of [
    [['workspace:logs', '--tail=abc'], /tail/],
    [['workspace:logs', '--stream=both'], /stream|both/],
    [['workspace:start', '--profile=../x'], /profile/],
    [['workspace:status', '--format=xml'], /format|xml/],
  ]) {
    const r = await nx(args, ws);
    assert.notStrictEqual(r.code, 0, `nx run ${args.join(' ')} is refused`);
    assert.match(r.out, says, r.out);
    refused++;
  }
  assert.deepStrictEqual(tree(ws), before, 'no file written or changed');
  assert.ok(!fs.existsSync(path.join(h.PM2_HOME, 'pm2.pid')), 'no PM2 daemon started');
  assert.deepStrictEqual(labelled(ws, 'box'), [], 'no container created');
  t.diagnostic(`bad input: ${refused} refusals, each with its code, number and a remediation; 0 files changed, 0 daemons, 0 containers`);
});

test('odd but valid env-file lines (BOM, CRLF, export, quotes, empty) reach the app exactly', async (t) => {
  const r = cli(['start']);
  assert.strictEqual(r.code, 0, r.out);
  const web = (await h.list()).find((p) => p.name === 'web');
  assert.strictEqual(web.env.API_TOKEN, SECRETS.API_TOKEN);
  assert.strictEqual(web.env.DB_PASSWORD, SECRETS.DB_PASSWORD);
  assert.strictEqual(web.env.SINGLE, SECRETS.SINGLE);
  assert.strictEqual(web.env.EMPTY, '');
  assert.ok(!Object.keys(web.env).some((k) => k.startsWith('\ufeff') || k.startsWith('export')), 'no BOM or `export` in a name');
  assert.deepStrictEqual(['web', 'box'].map((n) => row(n).state), ['online', 'online']);
  t.diagnostic('env file: 4 variables from BOM/CRLF/export/quoted/empty lines, all exact');
});

// --- the Docker engine goes away and comes back -------------------------------------------------
function dockerdPid() {
  const r = spawnSync('pidof', ['dockerd'], { encoding: 'utf8' });
  return Number(r.stdout.trim().split(/\s+/)[0]) || null;
}
const systemdDocker = () => fs.existsSync('/run/systemd/system') && spawnSync('systemctl', ['is-active', '--quiet', 'docker']).status === 0;

async function stopEngine() {
  if (systemdDocker()) {
    spawnSync('systemctl', ['stop', 'docker.socket', 'docker']);
    return 'systemd';
  }
  const pid = dockerdPid();
  assert.ok(pid, 'a dockerd runs');
  process.kill(pid, 'SIGTERM');
  await h.until('dockerd to exit', () => !h.alive(pid), 60000);
  return 'script';
}
function startEngine(how) {
  const r = how === 'systemd' ? spawnSync('systemctl', ['start', 'docker'], { encoding: 'utf8' }) : spawnSync('bash', [path.join(h.ROOT, 'scripts', 'docker-engine.sh')], { encoding: 'utf8' });
  assert.strictEqual(r.status, 0, `${r.stdout}${r.stderr}`);
}

test('dockerd stopped and started: degraded with the reason while away, healthy again under the policy', async (t) => {
  const webPid = row('web').pid;
  const restartsBefore = row('box').restarts;
  const how = await stopEngine();
  const awayAt = Date.now();
  let seen;
  try {
    // While the engine is away: the snapshot still answers, and says what is wrong.
    seen = await h.until(
      'box degraded with the engine named',
      () => {
        const s = snap();
        const b = row('box', s);
        return s.docker.startsWith('unreachable') && b.state === 'degraded' && /Docker engine unreachable/.test(b.detail || '') ? b : null;
      },
      30000,
    );
    // At least one restart is tried (and refused by the absent engine) before it comes back.
    await h.until('a restart refused while the engine is away', () => /EXIT_PREREQUISITE \(13\)/.test(row('box').lastFailure?.reason || ''), 30000);
    const table = cli(['status']);
    assert.match(table.stdout, /box\s+dependency\s+degraded/);
    assert.match(table.stdout, /Docker unreachable/);
    assert.strictEqual(row('web').state, 'online', 'apps are not touched');
  } finally {
    startEngine(how);
  }
  const backAt = Date.now();
  const healthy = await h.until(
    'box healthy again',
    () => {
      const b = row('box');
      return b.state === 'online' && b.health === 'healthy' ? b : null;
    },
    60000,
  );
  const tries = row('box').restarts - restartsBefore;
  assert.ok(tries >= 2, `restarted under the policy (${tries} restarts)`);
  assert.strictEqual(row('web').pid, webPid, 'web kept running');
  const containers = labelled(ws, 'box');
  assert.deepStrictEqual(containers.map((c) => c.state), ['running'], 'exactly one container, running');
  assert.strictEqual(healthy.containerId, containers[0].id.slice(0, 12));
  t.diagnostic(
    `dockerd (${how}) away ${((backAt - awayAt) / 1000).toFixed(1)} s: box seen ${seen.state} ("${seen.detail.slice(0, 60)}…"), ` +
      `${tries} restarts by the policy, healthy ${((Date.now() - backAt) / 1000).toFixed(1)} s after the engine returned, 1 container`,
  );
});

// --- the agent killed with SIGKILL again and again under a crash loop ------------------------
test('the agent SIGKILLed repeatedly during a crash loop: no restart lost or doubled, the threshold once', async (t) => {
  const agentOf = async () => (await h.list()).find((p) => p.name.startsWith('orchestrator-agent-') && p.env.ORCHESTRATOR_WORKSPACE === ws);
  const start = spawn(process.execPath, [path.join(h.ROOT, 'bin', 'orchestrator.js'), 'start', 'loop'], { cwd: ws, env: h.childEnv() });
  let startOut = '';
  start.stdout.on('data', (d) => (startOut += d));
  start.stderr.on('data', (d) => (startOut += d));
  const exited = new Promise((res) => start.on('close', res));
  let done = false;
  exited.then(() => (done = true));
  let kills = 0;
  let lastPid = null;
  while (!done && named('loop', 'RESTART_THRESHOLD_EXCEEDED').length === 0) {
    const a = await agentOf();
    if (a && a.status === 'online' && a.pid && a.pid !== lastPid) {
      await sleep(150 + Math.floor(Math.random() * 300));
      try {
        process.kill(a.pid, 'SIGKILL');
        kills++;
        lastPid = a.pid;
      } catch (_) {
        /* already gone */
      }
    }
    await sleep(50);
  }
  const code = await exited;
  printed.push(startOut);
  assert.strictEqual(code, 19, `start ends with EXIT_RESTART_THRESHOLD_EXCEEDED: ${startOut}`);
  // Let a late (doubled) restart show itself, with the agent up again.
  await h.until('the agent back online', async () => (await agentOf())?.status === 'online', 30000);
  await sleep(2500);
  const restarted = named('loop', 'restarted').length;
  const thresholds = named('loop', 'RESTART_THRESHOLD_EXCEEDED').length;
  const runs = Number(fs.readFileSync(path.join(ws, 'apps', 'loop', 'count'), 'utf8'));
  assert.ok(kills >= 5, `the agent was killed ${kills} times`);
  assert.strictEqual(restarted, loopPolicy.maxRestarts, 'every restart the policy allows, once');
  assert.strictEqual(runs, loopPolicy.maxRestarts + 1, 'the first run and exactly maxRestarts restarts');
  assert.strictEqual(thresholds, 1, 'the threshold fires once');
  const r = row('loop');
  assert.strictEqual(r.state, 'failed');
  assert.strictEqual(r.restarts, loopPolicy.maxRestarts);
  const agent = await agentOf();
  assert.strictEqual(agent.status, 'online', 'PM2 keeps bringing the agent back');
  t.diagnostic(`agent SIGKILLed ${kills} times; loop ran ${runs} times, ${restarted} restarted events, ${thresholds} threshold event, state ${r.state}`);
  assert.strictEqual(cli(['stop', 'loop']).code, 0);
});

// --- PM2's daemon killed while services run -------------------------------------------------
test('pm2 kill while services run: workspace:status says so plainly, workspace:start brings everything back', async (t) => {
  await h.killPm2();
  const viaNx = await nx(['workspace:status', '--json'], ws);
  assert.strictEqual(viaNx.code, 0, viaNx.out);
  assert.match(viaNx.out, /"pm2":"not running"/);
  assert.match(viaNx.out, /PM2's daemon is not running \(killed\?\)/);
  const s = snap();
  assert.strictEqual(s.pm2, 'not running');
  for (const name of ['web', 'box']) {
    assert.strictEqual(row(name, s).state, 'stopped', name);
    assert.match(row(name, s).detail, /PM2's daemon is not running/);
  }
  const table = cli(['status']);
  assert.match(table.stdout, /PM2 not running/);
  // The runner stopped its container when PM2 stopped it; no container runs unsupervised.
  assert.deepStrictEqual(labelled(ws, 'box').filter((c) => c.state === 'running'), []);
  const r = await nx(['workspace:start'], ws);
  assert.strictEqual(r.code, 0, r.out);
  const after = snap();
  assert.deepStrictEqual(['web', 'box'].map((n) => row(n, after).state), ['online', 'online']);
  assert.deepStrictEqual(labelled(ws, 'box').map((c) => c.state), ['running']);
  const online = h.services(await h.list()).filter((p) => p.env.ORCHESTRATOR_WORKSPACE === ws && p.status === 'online');
  assert.deepStrictEqual(online.map((p) => p.name).sort(), ['box', 'web'], 'one process each, back online');
  t.diagnostic(`pm2 kill: ${s.services.filter((x) => /PM2's daemon/.test(x.detail || '')).length} services reported "PM2's daemon is not running"; start brought back ${['web', 'box'].length}, 1 container running`);
});

// --- racing commands ----------------------------------------------------------------------------
test('two workspace:start-all at once, and start racing stop: no duplicate, no orphan, a clear result each', async (t) => {
  const race = h.withoutZitadel(h.tempWorkspace('faults-race', { adminPort: 15178, serverPort: 13005, pgPort: 15437 }));
  const [a, b] = await Promise.all([nx(['workspace:start-all'], race), nx(['workspace:start-all'], race)]);
  assert.strictEqual(a.code, 0, a.out);
  assert.strictEqual(b.code, 0, b.out);
  for (const r of [a, b]) for (const name of ['postgres', 'admin', 'server']) assert.match(r.out, new RegExp(`${name}\\s+(started|already online)`), r.out);
  const ours = async () => h.services(await h.list()).filter((p) => p.env.ORCHESTRATOR_WORKSPACE === race);
  const count = (procs) => Object.fromEntries(['postgres', 'admin', 'server'].map((n) => [n, procs.filter((p) => p.name === n).length]));
  assert.deepStrictEqual(count(await ours()), { postgres: 1, admin: 1, server: 2 }, 'one entry per instance');
  assert.deepStrictEqual(labelled(race, 'postgres').map((c) => c.state), ['running'], 'one postgres container');

  // start racing stop, five rounds on an app and on the dependency.
  const outcomes = { app: [], dependency: [] };
  for (let i = 0; i < 5; i++) {
    for (const [kind, service] of [
      ['app', 'admin'],
      ['dependency', 'postgres'],
    ]) {
      const run = (verb) =>
        new Promise((res) => {
          const c = spawn(process.execPath, [path.join(h.ROOT, 'bin', 'orchestrator.js'), verb, service], { cwd: race, env: h.childEnv() });
          let out = '';
          c.stdout.on('data', (d) => (out += d));
          c.stderr.on('data', (d) => (out += d));
          c.on('close', (code) => res({ code, out }));
        });
      const order = i % 2 ? ['stop', 'start'] : ['start', 'stop'];
      const [first, second] = await Promise.all([run(order[0]), run(order[1])]);
      for (const [verb, r] of [
        [order[0], first],
        [order[1], second],
      ]) {
        printed.push(r.out);
        assert.strictEqual(r.code, 0, `${verb} ${service}: ${r.out}`);
        assert.match(r.out, new RegExp(`${service}\\s+(started|stopped|already online|already stopped|not running)`), `${verb} ${service} says what it did: ${r.out}`);
      }
      const procs = (await ours()).filter((p) => p.name === service);
      const online = procs.filter((p) => p.status === 'online').length;
      assert.strictEqual(procs.length, 1, `${service}: one PM2 entry`);
      if (kind === 'dependency') {
        const running = labelled(race, service).filter((c) => c.state === 'running').length;
        assert.strictEqual(running, online, `postgres: a running container exactly when its runner is online (${running} vs ${online})`);
        assert.ok(labelled(race, service).length <= 1, 'never two containers');
      }
      outcomes[kind].push(online ? 'running' : 'stopped');
      // Back to running for the next round.
      assert.strictEqual(cli(['start', service], race).code, 0);
    }
  }
  const r = await nx(['workspace:stop-all'], race);
  assert.strictEqual(r.code, 0, r.out);
  assert.deepStrictEqual(labelled(race, 'postgres').filter((c) => c.state === 'running'), []);
  t.diagnostic(`start-all ×2 at once: 4 processes, 1 container; start vs stop ×5: admin ended ${outcomes.app.join('/')}, postgres ${outcomes.dependency.join('/')}, 0 duplicates, 0 orphans`);
  // PM2 names are global in a daemon: remove the race workspace's entries (its agent too), and
  // only those: the suite's own services run on.
  for (const p of await h.list()) if (p.env.ORCHESTRATOR_WORKSPACE === race) await h.call('delete', p.pmId);
  h.removeContainers(race);
});

// --- a log burst of 1 GiB with rotation forced -------------------------------------------------
test('a 1 GiB log burst under forced rotation: every line written is readable, once, in order; disk under the cap', async (t) => {
  const dir = path.join(ws, 'apps', 'logs', 'flood');
  const done = path.join(ws, 'apps', 'flood', 'done.json');
  const r = cli(['start', 'flood']);
  assert.strictEqual(r.code, 0, r.out);
  const du = () => (fs.existsSync(dir) ? fs.readdirSync(dir).reduce((n, f) => n + (fs.statSync(path.join(dir, f), { throwIfNoEntry: false })?.size || 0), 0) : 0);
  let maxDisk = 0;
  const started = Date.now();
  while (!fs.existsSync(done)) {
    maxDisk = Math.max(maxDisk, du());
    assert.ok(Date.now() - started < 180000, 'the burst ends within 3 minutes');
    await sleep(250);
  }
  const wrote = JSON.parse(fs.readFileSync(done, 'utf8'));
  // Rotation catches up: no plain rotated file left (all compressed), the live file under the cap.
  const plainRotated = (f) => /^out-\d{4}-\d\d-\d\d(\.\d+)?\.log$/.test(f);
  await h.until(
    'every rotated part compressed',
    () => {
      maxDisk = Math.max(maxDisk, du());
      const files = fs.readdirSync(dir);
      return !files.some(plainRotated) && !files.some((f) => f.endsWith('.tmp'));
    },
    60000,
    () => fs.readdirSync(dir).join(' '),
  );
  // Read back through `logs` (live, rotated and compressed files merged), checked line by line:
  // the numbers must run 0, 1, 2, … with no gap and no repeat.
  const check = spawnSync(
    'sh',
    ['-c', `node ${JSON.stringify(path.join(h.ROOT, 'bin', 'orchestrator.js'))} logs flood --stream=out | awk '$4 == "flood" { if ($5 != n) bad++; n = $5 + 1; c++; next } { other++ } END { print c + 0, bad + 0, other + 0, n + 0 }'`],
    { cwd: ws, env: h.childEnv(), encoding: 'utf8' },
  );
  const [read, bad, other, next] = check.stdout.trim().split(' ').map(Number);
  const gz = fs.readdirSync(dir).filter((f) => f.endsWith('.log.gz')).length;
  t.diagnostic(
    `burst: wrote ${wrote.lines} lines (${(wrote.bytes / 1048576).toFixed(0)} MiB) in ${(wrote.ms / 1000).toFixed(1)} s; ${gz} rotated parts compressed; ` +
      `read back ${read} lines, ${bad} out of sequence, ${other} foreign; disk at most ${(maxDisk / 1048576).toFixed(0)} MiB (cap ${BURST.maxServiceMiB}), ${(du() / 1048576).toFixed(0)} MiB after compression`,
  );
  assert.ok(wrote.bytes >= 1 << 30, 'at least 1 GiB written');
  assert.ok(wrote.ms < 60000, `within a minute (${wrote.ms} ms)`);
  assert.ok(gz >= 10, `rotated many times (${gz})`);
  assert.strictEqual(read, wrote.lines, 'lines written == lines readable');
  assert.strictEqual(bad, 0, 'no line lost, repeated or out of order');
  assert.strictEqual(other, 0, 'no torn line');
  assert.strictEqual(next, wrote.lines);
  assert.ok(maxDisk < BURST.maxServiceMiB * 1048576, `disk use stayed under the cap (${(maxDisk / 1048576).toFixed(0)} MiB)`);
  assert.strictEqual(cli(['stop', 'flood']).code, 0);
});

test("a container's log burst under forced rotation: every line readable, once, in order", async (t) => {
  const dir = path.join(ws, 'apps', 'logs', 'noisy');
  const r = cli(['start', 'noisy']);
  assert.strictEqual(r.code, 0, r.out);
  await h.until('the container wrote its last line', () => /noisy-done/.test(h.cli(['logs', 'noisy', '--stream=out', '--grep', '^noisy-done$'], ws).stdout), 120000);
  const plainRotated = (f) => /^out-\d{4}-\d\d-\d\d(\.\d+)?\.log$/.test(f);
  await h.until('every rotated part compressed', () => !fs.readdirSync(dir).some((f) => plainRotated(f) || f.endsWith('.tmp')), 60000, () => fs.readdirSync(dir).join(' '));
  const check = spawnSync(
    'sh',
    ['-c', `node ${JSON.stringify(path.join(h.ROOT, 'bin', 'orchestrator.js'))} logs noisy --stream=out | awk '$4 ~ /^[0-9]+$/ { if ($4 != n) bad++; n = $4 + 1; c++ } END { print c + 0, bad + 0, n + 0 }'`],
    { cwd: ws, env: h.childEnv(), encoding: 'utf8' },
  );
  const [read, bad, next] = check.stdout.trim().split(' ').map(Number);
  const gz = fs.readdirSync(dir).filter((f) => f.endsWith('.log.gz')).length;
  t.diagnostic(`container burst: 2000000 lines (~200 MiB) through the engine's log stream; ${gz} rotated parts; read back ${read}, ${bad} out of sequence`);
  assert.ok(gz >= 3, `rotated several times (${gz})`);
  assert.strictEqual(read, 2000000, 'lines written == lines readable');
  assert.strictEqual(bad, 0, 'none lost, repeated or out of order');
  assert.strictEqual(next, 2000000);
  // The runner's own lines are in the file too (PM2's files for it are /dev/null).
  assert.match(fs.readFileSync(path.join(dir, 'error.log'), 'utf8'), /\[orchestrator\] noisy container [0-9a-f]{12} \(orchestrator-local\/busybox:1\) (started|adopted)/);
  assert.strictEqual(cli(['stop', 'noisy']).code, 0);
});

// --- secrets ------------------------------------------------------------------------------------
test('no value of an env-file variable in anything we print or write', async (t) => {
  // A few more outputs that show configuration: verify's dry run, JSON and text, every profile.
  cli(['verify']);
  cli(['verify', '--json']);
  cli(['verify', '--all-profiles']);
  cli(['status']);
  cli(['status', '--json']);
  cli(['start', 'web', '--profile', 'staging']);
  cli(['logs', 'box', 'web', 'loop', '--json']);
  // Our own diagnostics at their most verbose (ORCHESTRATOR_LOG) name services, never values.
  process.env.ORCHESTRATOR_LOG = 'trace';
  try {
    const traced = cli(['restart', 'web', 'box']);
    assert.strictEqual(traced.code, 0, traced.out);
    assert.match(traced.stderr, /prepare\{verb=Restart/, 'the diagnostics were on');
    assert.match(traced.stderr, /ensure_container\{service=box/);
    cli(['status', '--json']);
  } finally {
    delete process.env.ORCHESTRATOR_LOG;
  }
  const files = [];
  const walk = (d) => {
    if (!fs.existsSync(d)) return;
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else files.push(p);
    }
  };
  walk(path.join(ws, '.orchestrator')); // records, the agent's logs, locks
  for (const svc of fs.readdirSync(path.join(ws, 'apps', 'logs'))) {
    const f = path.join(ws, 'apps', 'logs', svc, 'events.jsonl');
    if (fs.existsSync(f)) files.push(f);
  }
  // The runner's own lines in a dependency's log (the container's output is the container's).
  const ownLines = fs
    .readdirSync(path.join(ws, 'apps', 'logs', 'box'))
    .filter((f) => f.endsWith('.log'))
    .flatMap((f) => fs.readFileSync(path.join(ws, 'apps', 'logs', 'box', f), 'utf8').split('\n'))
    .filter((l) => l.includes('[orchestrator]'));
  const haystacks = [...printed.map((p, i) => [`output ${i}`, p]), ...files.map((f) => [f, fs.readFileSync(f, 'latin1')]), ['runner lines', ownLines.join('\n')]];
  const values = Object.values(SECRETS).flatMap((v) => [v, ...v.split(' ').filter((x) => x.length >= 8)]);
  const found = haystacks.flatMap(([where, text]) => values.filter((v) => text.includes(v)).map((v) => `${where}: ${v}`));
  assert.deepStrictEqual(found, []);
  // The masking is real: the secrets did reach the processes.
  assert.strictEqual((await h.list()).find((p) => p.name === 'web').env.API_TOKEN, SECRETS.API_TOKEN);
  t.diagnostic(`secrets: ${values.length} values searched in ${printed.length} outputs, ${files.length} files and ${ownLines.length} runner lines; found 0`);
});

test('nothing left behind', async () => {
  assert.strictEqual(cli(['stop', '--all']).code, 0);
  await h.assertNothingLeft(ws);
  h.removeAllContainers();
  assert.deepStrictEqual(h.ourContainers(), []);
});
