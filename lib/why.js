'use strict';
// `why <service>`: why a service is not up, in one addon call — read-only, so no workspace lock
// and no PM2 client (PM2's table is read over its socket by the addon).

const native = require('./native');
const { normalize, make } = require('./errors');
const { locate, home } = require('./pm2');
const { context, request } = require('./operations');

/**
 * @param {{ service?: string, cwd?: string, profile?: string, command?: string }} opts
 * @returns {Promise<{ why: any, text: string }>}
 */
async function why(opts = {}) {
  const command = opts.command || `orchestrator why ${opts.service || ''}`.trim();
  try {
    if (!opts.service) {
      throw make('EXIT_USAGE', {
        command,
        message: 'why needs the service to explain: `orchestrator why <service>`',
        remediation: ['Name a service: `orchestrator why postgres`, or `nx run <service>:why`'],
      });
    }
    const ctx = context({ ...opts, command }, 'why');
    const req = request(ctx, { profile: opts.profile, service: opts.service }, locate(ctx.root));
    return await native.why(req, opts.service, home());
  } catch (e) {
    throw normalize(e, { command });
  }
}

/** Prints the answer: its text, or its JSON object. */
function print(answer, json) {
  process.stdout.write(json ? `${JSON.stringify(answer.why)}\n` : answer.text);
}

module.exports = { why, print };
