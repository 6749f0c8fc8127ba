'use strict';
// Issue 3 with the real local PostgreSQL image (scripts/build-images.sh): postgres:start via Nx,
// server:setup migrations (once), server:start starting postgres first through the Nx graph,
// deps:start / deps:restart in depends_on order over the project network, reverse-order stop.

const test = require('node:test');
const assert = require('node:assert');
const fs = require('fs');
const path = require('path');
const h = require('./helpers');

const ws = h.tempWorkspace('pg', { adminPort: 15174, serverPort: 13001, pgPort: 15433 });
// Zitadel's image cannot be obtained here: in its place a service that depends on postgres
// (service_healthy) and reaches it by service name (pg_isready from the same image).
h.withoutZitadel(
  ws,
  `
  probe:
    image: \${POSTGRES_IMAGE:-postgres:16}
    command: ["sh", "-c", "until pg_isready -q -h postgres -p 5432; do sleep 0.2; done; echo reached-postgres-by-name; trap 'exit 0' TERM; while true; do sleep 1; done"]
    depends_on:
      postgres:
        condition: service_healthy
    stop_grace_period: 2s

volumes:`,
);

const containerOf = (service) =>
  h.docker(['ps', '-q', '--no-trunc', '--filter', `label=dev.orchestrator.workspace=${ws}`, '--filter', `label=dev.orchestrator.service=${service}`]).stdout.trim();

test.after(async () => {
  await h.killPm2();
  h.removeContainers(ws);
});

test('postgres:start → healthy via pg_isready, PM2 runs the runner, summary names image, container, ports, time', async () => {
  const r = await h.nx(['postgres:start', '--profile', 'development'], ws);
  assert.strictEqual(r.code, 0, r.out);
  assert.match(r.out, /✔ postgres\s+started — profile development, image orchestrator-local\/postgres:15, container [0-9a-f]{12}, pid \d+, ports 15433, healthy in \d+\.\d s/);
  const id = containerOf('postgres');
  const c = JSON.parse(h.docker(['inspect', id]).stdout)[0];
  assert.strictEqual(c.State.Health.Status, 'healthy');
  assert.deepStrictEqual(c.Config.Healthcheck.Test, ['CMD-SHELL', 'pg_isready -h 127.0.0.1 -U ${POSTGRES_USER} -d ${POSTGRES_DB}']);
  assert.ok(c.Config.Env.includes('POSTGRES_DB=app_development'));
  assert.strictEqual(c.HostConfig.PortBindings['5432/tcp'][0].HostPort, '15433');
  const pg = (await h.list()).find((p) => p.name === 'postgres');
  assert.strictEqual(pg.status, 'online');
});

test('the Nx project graph carries the server → postgres edge (nx.json services.server.dependsOn, inferred)', () => {
  const file = path.join(h.RUN_DIR, 'graph.json');
  const r = require('child_process').spawnSync(path.join(h.EXAMPLE, 'node_modules', '.bin', 'nx'), ['graph', `--file=${file}`], { cwd: ws, env: h.childEnv(), encoding: 'utf8' });
  assert.strictEqual(r.status, 0, r.stderr);
  const deps = JSON.parse(fs.readFileSync(file, 'utf8')).graph.dependencies;
  assert.ok(deps.server.some((d) => d.target === 'postgres'), JSON.stringify(deps.server));
  assert.ok(!deps.admin.some((d) => d.target === 'postgres'));
});

test('server:setup applies the migrations once; the second run changes nothing', async () => {
  const first = await h.nx(['server:setup', '--profile', 'development'], ws);
  assert.strictEqual(first.code, 0, first.out);
  assert.match(first.out, /postgres\s+already online/, 'setup goes through the dependency graph');
  assert.match(first.out, /migrate: applied 001_create_items\.sql/);
  assert.match(first.out, /migrate: 2 applied, 0 already up to date/);
  const second = await h.nx(['server:setup', '--profile', 'development'], ws);
  assert.strictEqual(second.code, 0, second.out);
  assert.match(second.out, /migrate: 0 applied, 2 already up to date/);
  const rows = h.docker(['exec', containerOf('postgres'), 'psql', '-U', 'app', '-d', 'app_development', '-Atc', 'SELECT count(*) FROM items; SELECT count(*) FROM schema_migrations']);
  assert.deepStrictEqual(rows.stdout.trim().split('\n'), ['2', '2']);
});

test('server:start from stopped starts postgres first, waits for healthy, and the server reaches its database', async () => {
  let r = await h.nx(['workspace:stop-all'], ws);
  assert.strictEqual(r.code, 0, r.out);
  assert.strictEqual(containerOf('postgres'), '', 'postgres container stopped');
  r = await h.nx(['server:start'], ws);
  assert.strictEqual(r.code, 0, r.out);
  const pgLine = r.out.indexOf('✔ postgres');
  const serverLine = r.out.indexOf('✔ server');
  assert.ok(pgLine >= 0 && serverLine > pgLine, `postgres first:\n${r.out}`);
  assert.match(r.out, /✔ postgres\s+started .*healthy in/);
  const health = JSON.parse((await h.get('http://127.0.0.1:13001/health')).body);
  assert.strictEqual(health.database, 'reachable');
  assert.strictEqual(health.migrated, true);
});

test('workspace:deps:start boots dependencies in depends_on order over the project network; deps:restart verifies health', async () => {
  let r = await h.nx(['workspace:deps:start'], ws);
  assert.strictEqual(r.code, 0, r.out);
  assert.match(r.out, /✔ postgres\s+already online/);
  assert.match(r.out, /✔ probe\s+started/);
  assert.ok(r.out.indexOf('✔ postgres') < r.out.indexOf('✔ probe'));
  const out = path.join(ws, 'apps', 'logs', 'probe', 'out.log');
  for (let i = 0; i < 50 && !(fs.existsSync(out) && fs.readFileSync(out, 'utf8').includes('reached-postgres-by-name')); i++) await new Promise((res) => setTimeout(res, 200));
  assert.match(fs.readFileSync(out, 'utf8'), /reached-postgres-by-name/);

  const before = { postgres: containerOf('postgres'), probe: containerOf('probe') };
  r = await h.nx(['workspace:deps:restart'], ws);
  assert.strictEqual(r.code, 0, r.out);
  assert.match(r.out, /✔ postgres\s+restarted .*healthy in/);
  assert.ok(r.out.indexOf('✔ postgres') < r.out.indexOf('✔ probe'));
  assert.notStrictEqual(containerOf('postgres'), before.postgres);
  assert.notStrictEqual(containerOf('probe'), before.probe);
  // The server's pool reconnects to the new container.
  let health;
  for (let i = 0; i < 30; i++) {
    health = JSON.parse((await h.get('http://127.0.0.1:13001/health')).body);
    if (health.database === 'reachable') break;
    await new Promise((res) => setTimeout(res, 200));
  }
  assert.strictEqual(health.database, 'reachable');
});

test('workspace:stop-all stops apps first, then dependencies in reverse depends_on order', async () => {
  const r = await h.nx(['workspace:stop-all'], ws);
  assert.strictEqual(r.code, 0, r.out);
  const order = ['server', 'admin', 'probe', 'postgres'].map((s) => r.out.indexOf(`✔ ${s}`));
  assert.deepStrictEqual([...order].sort((a, b) => a - b), order, r.out);
  assert.strictEqual(containerOf('postgres'), '');
  assert.strictEqual(containerOf('probe'), '');
});

test('tests leave no container of ours and no daemon behind', () => h.assertNothingLeft(ws));
