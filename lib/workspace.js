'use strict';
// Locating the workspace and its standard files; evaluating ecosystem.config.js (it is code).

const fs = require('fs');
const path = require('path');
const { make } = require('./errors');

const ECOSYSTEM_FILES = ['ecosystem.config.js', 'ecosystem.config.cjs', 'ecosystem.config.json'];
// The names compose looks for (a compose-only workspace has no ecosystem file).
const COMPOSE_FILES = ['compose.yaml', 'compose.yml', 'docker-compose.yml', 'docker-compose.yaml'];

/** The workspace root: the nearest directory up from `start` with nx.json or an ecosystem file;
 * else (a compose-only workspace outside Nx) the nearest one with a compose file. */
function findRoot(start = process.cwd()) {
  let dir = path.resolve(start);
  let composeDir = null;
  for (;;) {
    if (fs.existsSync(path.join(dir, 'nx.json')) || ECOSYSTEM_FILES.some((f) => fs.existsSync(path.join(dir, f)))) {
      return dir;
    }
    if (!composeDir && COMPOSE_FILES.some((f) => fs.existsSync(path.join(dir, f)))) composeDir = dir;
    const up = path.dirname(dir);
    if (up === dir) return composeDir || path.resolve(start);
    dir = up;
  }
}

/** Evaluates the ecosystem file afresh and returns { file, ecosystem } as plain data. A
 * compose-only workspace (a compose file, no ecosystem file) has no apps. */
function loadEcosystem(root, command) {
  const file = ECOSYSTEM_FILES.map((f) => path.join(root, f)).find((f) => fs.existsSync(f));
  if (!file) {
    if (COMPOSE_FILES.some((f) => fs.existsSync(path.join(root, f)))) {
      return { file: path.join(root, ECOSYSTEM_FILES[0]), ecosystem: { apps: [] }, composeOnly: true };
    }
    throw make('EXIT_USAGE', {
      command,
      message: `no ecosystem.config.js and no docker-compose.yml in ${root}`,
      remediation: ['Declare the app services in ecosystem.config.js (PM2 format), or the docker dependencies in docker-compose.yml', 'Run the command inside the workspace'],
    });
  }
  let mod;
  try {
    delete require.cache[require.resolve(file)];
    mod = require(file);
  } catch (e) {
    const where = (e.stack || '').split('\n').find((l) => l.includes(file)) || '';
    throw make('EXIT_USAGE', {
      command,
      message: `${file} could not be loaded: ${e.message}${where ? ` (${where.trim()})` : ''}`,
      remediation: [`Fix ${path.basename(file)}; \`node -e "require('./${path.basename(file)}')"\` shows the error`],
    });
  }
  // Functions and other non-data values cannot cross into the addon; PM2 ignores them too.
  return { file, ecosystem: JSON.parse(JSON.stringify(mod && mod.__esModule ? mod.default : mod)) };
}

module.exports = { findRoot, loadEcosystem, ECOSYSTEM_FILES, COMPOSE_FILES };
