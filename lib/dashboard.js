'use strict';
// `dashboard`: the live terminal view, in one addon call that returns when the user quits. Its
// actions run this package's CLI (the same operations, their own lock and output), so this
// shim passes where the CLI is. Not a terminal: the addon prints one status table.

const path = require('path');
const native = require('./native');
const { normalize } = require('./errors');
const { locate, home } = require('./pm2');
const { context, request } = require('./operations');

const BIN = path.join(__dirname, '..', 'bin', 'orchestrator.js');

/**
 * @param {{ cwd?: string, profile?: string, command?: string }} opts
 * @returns {Promise<void>}
 */
async function dashboard(opts = {}) {
  const command = opts.command || 'orchestrator dashboard';
  try {
    const ctx = context({ ...opts, command }, 'dashboard');
    const req = request(ctx, { profile: opts.profile, all: true }, locate(ctx.root));
    const cli = [process.execPath, BIN, ...(opts.profile ? ['--profile', opts.profile] : [])];
    // A signal ends it as `q` does: the terminal is restored before the process exits.
    const signals = ['SIGTERM', 'SIGINT', 'SIGHUP'];
    const quit = () => native.dashboardQuit();
    for (const s of signals) process.on(s, quit);
    try {
      await native.dashboard(req, home(), cli, !('NO_COLOR' in process.env));
    } finally {
      for (const s of signals) process.off(s, quit);
    }
  } catch (e) {
    throw normalize(e, { command });
  }
}

module.exports = { dashboard };
