'use strict';
const test = require('node:test');
const assert = require('node:assert');
const { settings } = require('../src/settings');
const { createServer } = require('../src/app');

test('settings come from the profile environment', () => {
  assert.ok(process.env.DATABASE_URL, 'DATABASE_URL is loaded from config/env/<profile>.env');
  const cfg = settings();
  assert.ok(['development', 'staging', 'production'].includes(cfg.appEnv), `APP_ENV=${cfg.appEnv}`);
  assert.strictEqual(cfg.database.name, `app_${cfg.appEnv}`);
});

test('settings refuse to start without DATABASE_URL', () => {
  assert.throws(() => settings({}), /DATABASE_URL/);
});

test('/health answers 200', async () => {
  const server = createServer(settings({ DATABASE_URL: 'postgres://u:p@db:5432/x', APP_ENV: 'test' }));
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address();
  const res = await fetch(`http://127.0.0.1:${port}/health`);
  assert.strictEqual(res.status, 200);
  assert.strictEqual((await res.json()).appEnv, 'test');
  server.close();
});
