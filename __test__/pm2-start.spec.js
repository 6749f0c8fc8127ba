'use strict';
// lib/pm2.js starts a new app without PM2's `start(app)` (whose `_startJson` first reads the
// daemon's whole table to look the name up), through the same PM2 functions and `prepare`.
// This holds the two to the same result: the same app definition started both ways (under two
// names) gives the same PM2 entry, apart from what differs per process. A PM2 upgrade that
// changes `_startJson` fails here.

const test = require('node:test');
const assert = require('node:assert');
const fs = require('fs');
const path = require('path');
const h = require('./helpers');
const { Pm2, locate } = require('../lib/pm2');

const dir = path.join(h.RUN_DIR, 'pm2-start');
fs.mkdirSync(dir, { recursive: true });
fs.writeFileSync(path.join(dir, 'main.js'), 'setInterval(() => {}, 1000);\n');

// Per process or per name: ids, times, pids, the name and what PM2 derives from it.
const VOLATILE = new Set(['pm_id', 'name', 'pm_uptime', 'created_at', 'unique_id', 'pm_out_log_path', 'pm_err_log_path', 'pm_log_path', 'pm_pid_path', 'restart_time', 'unstable_restarts', 'prev_restart_delay', 'axm_monitor', 'axm_actions', 'axm_options', 'axm_dynamic', 'versioning', 'vizion_running', 'km_link', 'status', 'exit_code', '_pm2_version', 'pmx_module', 'instance_var']);

function comparable(proc) {
  const e = proc.pm2_env;
  const out = {};
  for (const [k, v] of Object.entries(e)) {
    if (VOLATILE.has(k) || k === proc.name) continue; // PM2 keeps a module conf under the app's name
    if (k === 'env') {
      const env = { ...v };
      for (const n of ['pm_id', 'name', 'unique_id', 'pm_out_log_path', 'pm_err_log_path', 'pm_pid_path', 'pm_uptime', 'created_at', 'restart_time', 'unstable_restarts', 'status', 'km_link', 'pm_log_path', 'prev_restart_delay', 'axm_monitor', 'axm_actions', 'axm_options', 'axm_dynamic', 'versioning', 'vizion_running', 'exit_code', '_pm2_version', 'instance_var']) delete env[n];
      delete env[proc.name];
      out.env = env;
      continue;
    }
    out[k] = v;
  }
  return out;
}

test('an app started without the table read is the app PM2 itself starts', async () => {
  const ours = await Pm2.connect(locate(h.ROOT));
  try {
    const def = (name) => ({
      name,
      script: path.join(dir, 'main.js'),
      cwd: dir,
      exec_mode: 'fork',
      node_args: ['--max-old-space-size=64'],
      args: ['--flag', 'x'],
      autorestart: false,
      kill_timeout: 3000,
      env: { FOO: 'bar', NESTED: { a: 1 }, ORCHESTRATOR_WORKSPACE: dir },
    });
    await h.call('start', def('pm2own-a'));
    await ours.startFresh(def('fresh-a'));
    const procs = await h.call('list');
    const own = procs.find((p) => p.name === 'pm2own-a');
    const fresh = procs.find((p) => p.name === 'fresh-a');
    assert.ok(own && fresh, 'both started');
    assert.strictEqual(fresh.pm2_env.status, 'online');
    assert.deepStrictEqual(comparable(fresh), comparable(own));
    // The name-derived fields are PM2's own for the new name.
    assert.match(fresh.pm2_env.pm_out_log_path, /fresh-a-out\.log$/);
    // A definition PM2 refuses is refused the same way.
    await assert.rejects(() => ours.startFresh({ name: 'fresh-bad', script: path.join(dir, 'missing.js'), cwd: dir }), /missing\.js|not found|ENOENT/i);
    assert.ok(!(await h.call('list')).some((p) => p.name === 'fresh-bad'));
  } finally {
    await ours.disconnect();
    await h.call('delete', 'all').catch(() => {});
    await h.killPm2();
  }
});
