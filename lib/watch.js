'use strict';
// `watch`: the development loop, in one addon call that returns when a signal ends it. A
// cycle's reload runs this package's CLI (`restart`: its lock, PM2, readiness), so this shim
// passes where the CLI is.

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
async function watch(opts = {}) {
  const command = opts.command || 'orchestrator watch';
  try {
    const ctx = context({ ...opts, command }, 'watch');
    const req = request(ctx, { profile: opts.profile, all: true }, locate(ctx.root));
    const signals = ['SIGTERM', 'SIGINT', 'SIGHUP'];
    const quit = () => native.watchQuit();
    for (const s of signals) process.on(s, quit);
    try {
      await native.watch(req, home(), [process.execPath, BIN]);
    } finally {
      for (const s of signals) process.off(s, quit);
    }
  } catch (e) {
    throw normalize(e, { command });
  }
}

module.exports = { watch };
