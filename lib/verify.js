'use strict';
// `verify`: lints and dry-runs the workspace without starting anything (one addon call). The
// ecosystem file is code: if it throws while loading, that is one of the problems reported.

const fs = require('fs');
const path = require('path');
const native = require('./native');
const { findRoot, loadEcosystem, ECOSYSTEM_FILES } = require('./workspace');
const { make, normalize } = require('./errors');

/** The report: `{ report, ok, problems, text }`; problems do not throw (bad options do). */
function verify(opts = {}) {
  const command = opts.command || 'orchestrator verify';
  try {
    const root = findRoot(opts.cwd || process.cwd());
    const file = ECOSYSTEM_FILES.map((f) => path.join(root, f)).find((f) => fs.existsSync(f)) || path.join(root, ECOSYSTEM_FILES[0]);
    let ecosystem;
    let ecosystemError;
    try {
      ({ ecosystem } = loadEcosystem(root, command));
    } catch (e) {
      ecosystemError = e.message;
    }
    return native.verify({
      workspaceRoot: root,
      ecosystem,
      ecosystemError,
      ecosystemFile: file,
      profile: opts.profile || undefined,
      allProfiles: Boolean(opts.allProfiles),
      pluginRoot: path.resolve(__dirname, '..'),
      command,
    });
  } catch (e) {
    throw normalize(e, { command });
  }
}

/** The error a failed verify ends with (after the report is printed). */
function failure(r, command) {
  return make('EXIT_USAGE', {
    command,
    message: `verify found ${r.problems} problem${r.problems === 1 ? '' : 's'} in ${r.report.workspace}`,
    remediation: ['Fix each problem listed above (file, key, remediation), then run verify again'],
  });
}

/** Installs or removes the pre-commit hook that runs verify when the workflow's files change. */
function hook(opts = {}) {
  const command = opts.command || `orchestrator verify --${opts.install ? 'install' : 'remove'}-hook`;
  try {
    return native.verifyHook(findRoot(opts.cwd || process.cwd()), Boolean(opts.install), command);
  } catch (e) {
    throw normalize(e, { command });
  }
}

module.exports = { verify, failure, hook };
