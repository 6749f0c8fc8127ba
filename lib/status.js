'use strict';
// `status`: one addon call (PM2's table is read over PM2's own socket by the addon, so this path
// never loads PM2's client), then the table or the JSON of the same snapshot.

const native = require('./native');
const { findRoot, loadEcosystem } = require('./workspace');
const { normalize, OrchestratorError } = require('./errors');

/** Colours only on a terminal, and never with NO_COLOR (fd 1 asked directly: see print). */
function useColor() {
  return require('tty').isatty(1) && !('NO_COLOR' in process.env);
}

/** The snapshot, its table and `--strict`'s verdict, as the addon returns them. */
async function report(opts = {}) {
  const command = opts.command || 'orchestrator status';
  try {
    const root = findRoot(opts.cwd || process.cwd());
    const { file, ecosystem } = loadEcosystem(root, command);
    return await native.status({
      workspaceRoot: root,
      profile: opts.profile || undefined,
      service: opts.service || undefined,
      ecosystem,
      ecosystemFile: file,
      pm2Home: process.env.PM2_HOME || undefined,
      strict: Boolean(opts.strict),
      // Only the table has colours; asking whether fd 1 is a terminal loads `tty` (~2 ms).
      color: opts.json ? false : (opts.color ?? useColor()),
      command,
    });
  } catch (e) {
    throw normalize(e, { command });
  }
}

/** One health snapshot of every app and dependency (`strict`: throws EXIT_UNHEALTHY). */
async function status(opts = {}) {
  const r = await report(opts);
  if (r.unhealthy) throw new OrchestratorError(r.unhealthy);
  return r.snapshot;
}

/** Prints the snapshot (table or JSON) and returns the error `--strict` found, if any. A
 * synchronous write on fd 1: creating `process.stdout` costs ~3 ms, and status is polled. */
function print(r, json) {
  const text = Buffer.from(json ? JSON.stringify(r.snapshot) + '\n' : r.table);
  for (let off = 0; off < text.length; ) {
    try {
      off += require('fs').writeSync(1, text, off);
    } catch (e) {
      if (e.code !== 'EAGAIN') throw e;
    }
  }
  return r.unhealthy ? new OrchestratorError(r.unhealthy) : null;
}

module.exports = { status, report, print };
