'use strict';
// `watch` over compose's `develop.watch` (issue 20), on a real dockerd with a local image: a
// dependency built from a local context is rebuilt and recreated when its `rebuild` path
// changes (and what declares `depends_on: {restart: true}` on it restarts after it); a `sync`
// path is copied into the running container without recreating it. A compose-only workspace,
// real PM2 (private PM2_HOME); every container and image removed at the end.

const test = require('node:test');
const assert = require('node:assert');
const fs = require('fs');
const path = require('path');
const h = require('./helpers');

const ws = path.join(h.RUN_DIR, 'watch-compose');
const project = `orch-test-${path.basename(h.RUN_DIR)}-wc`.toLowerCase();
const PORT = 18421;
const w = (f, text) => {
  fs.mkdirSync(path.dirname(path.join(ws, f)), { recursive: true });
  fs.writeFileSync(path.join(ws, f), text);
};
w('package.json', JSON.stringify({ name: project, private: true }));
w('box/Dockerfile', 'FROM orchestrator-local/busybox:1\nCOPY www /www\nCMD ["httpd", "-f", "-p", "80", "-h", "/www"]\n');
w('box/www/index.html', 'version 1\n');
w('box/www/static/note.txt', 'note 1\n');
w('box/.dockerignore', 'scratch\nseed\n');
w('box/seed/hello.txt', 'seeded\n');
w('box/conf/box.conf', 'level=1\n');
w(
  'compose.yaml',
  `services:
  box:
    build: ./box
    ports: ["${PORT}:80"]
    stop_grace_period: 1s
    healthcheck:
      test: ["CMD", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1/"]
      interval: 1s
      retries: 30
    develop:
      watch:
        - path: ./box/www/static
          action: sync
          target: /www/static
        - path: ./box/www
          action: rebuild
          ignore:
            - static/
        - path: ./box/conf
          action: sync+restart
          target: /etc/box
        - path: ./box/seed
          action: sync
          target: /www/seed
          initial_sync: true
  consumer:
    image: orchestrator-local/busybox:1
    command: ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1; done"]
    stop_grace_period: 1s
    depends_on:
      box:
        condition: service_healthy
        restart: true
`,
);

const id = (service) => h.docker(['ps', '-q', '--filter', `label=dev.orchestrator.workspace=${ws}`, '--filter', `label=dev.orchestrator.service=${service}`]).stdout.trim();
const body = async (p) => (await h.get(`http://127.0.0.1:${PORT}${p}`)).body;

let watcher;
const lines = () => watcher.lines;
const cycles = () => watcher.cycles();
const nextCycle = (after, what) => watcher.nextCycle(after, what);

test.before(async () => {
  const r = h.cli(['start', '--all'], ws);
  assert.strictEqual(r.code, 0, r.out);
  watcher = await h.watchProcess(ws);
});

test.after(async () => {
  if (watcher) await watcher.stop();
  h.cli(['stop', '--all'], ws);
  await h.assertNothingLeft(ws);
  h.docker(['image', 'rm', '-f', `${project}-box`]);
});

test('the watcher names the dependencies it watches through develop.watch', () => {
  assert.match(lines().find((l) => l.startsWith('watch: watching')), /box/);
  assert.doesNotMatch(lines().find((l) => l.startsWith('watch: watching')), /consumer/, 'consumer has no develop.watch');
});

test('initial_sync: the path is copied in when the watch begins', async () => {
  assert.ok(lines().some((l) => /box: box\/seed copied to \/www\/seed \(initial_sync\)/.test(l)), lines().join('\n'));
  assert.strictEqual(await body('/seed/hello.txt'), 'seeded\n');
});

test('sync: the file is copied into the running container; nothing is recreated', async () => {
  const before = { box: id('box'), consumer: id('consumer') };
  const n = cycles().length;
  w('box/www/static/note.txt', 'note 2\n');
  const line = await nextCycle(n, 'a sync cycle');
  assert.match(line, /synced box \(1 file\)/);
  assert.doesNotMatch(line, /reloaded/, 'static/ is ignored by the rebuild rule');
  assert.strictEqual(await body('/static/note.txt'), 'note 2\n');
  assert.deepStrictEqual({ box: id('box'), consumer: id('consumer') }, before);
});

test('rebuild: a change in the build context rebuilds the image and replaces the container; restart: true restarts its dependent after it', async () => {
  const before = { box: id('box'), consumer: id('consumer') };
  const n = cycles().length;
  w('box/www/index.html', 'version 2\n');
  const line = await nextCycle(n, 'a rebuild cycle');
  assert.match(line, /reloaded box/);
  assert.strictEqual(await body('/'), 'version 2\n');
  assert.notStrictEqual(id('box'), before.box, 'a new container from the new image');
  assert.notStrictEqual(id('consumer'), before.consumer, 'consumer restarted after box');
  const events = fs.readFileSync(path.join(ws, 'apps', 'logs', 'box', 'events.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  assert.ok(events.some((e) => e.event === 'watch_reloaded' && e.changed.includes('box/www/index.html')));
  assert.ok(events.some((e) => e.event === 'watch_synced'));
});

test('sync+restart: the file is copied, then the service restarts (and its restart: true dependent after it)', async () => {
  const before = { box: id('box'), consumer: id('consumer') };
  const n = cycles().length;
  w('box/conf/box.conf', 'level=2\n');
  const line = await nextCycle(n, 'a sync+restart cycle');
  assert.match(line, /synced box \(1 file\) · reloaded box, consumer/);
  assert.ok(lines().some((l) => /develop\.watch\[2\]: `sync\+restart` restarts by replacing the container/.test(l)), 'the difference from compose is said');
  assert.notStrictEqual(id('box'), before.box);
  assert.notStrictEqual(id('consumer'), before.consumer);
  assert.strictEqual(h.docker(['exec', id('box'), 'cat', '/etc/box/box.conf']).stdout, 'level=2\n');
});

test('a file the build context ignores (.dockerignore) starts nothing', async () => {
  const n = cycles().length;
  w('box/www/scratch', 'x');
  w('box/scratch', 'x');
  await new Promise((r) => setTimeout(r, 2500));
  assert.strictEqual(cycles().length, n, cycles().slice(n).join('\n'));
});
