'use strict';
// The Nx plugin side (nx.json `plugins: ["@workspace/orchestrator"]`): createNodesV2 infers, from
// each ecosystem.config.* (one addon call each), the projects and targets a workspace would
// otherwise write by hand; createDependencies adds the edges of compose `depends_on` and
// nx.json `services.<name>.dependsOn`. Explicit project.json targets win (Nx merges them last).

const fs = require('fs');
const path = require('path');

const ECOSYSTEM = '**/ecosystem.config.{js,cjs,json}';

// createNodesV2 and createDependencies run in the same plugin worker and need the same answer:
// it is computed once per state of the files it reads (their modification times).
const cache = new Map();
const INPUTS = ['nx.json', 'docker-compose.yml', 'docker-compose.yaml', 'compose.yml', 'compose.yaml', 'config/env/development.env'];

function infer(nxRoot, file) {
  const rel = path.dirname(file);
  const root = path.join(nxRoot, rel);
  const stamp = [file, ...INPUTS.map((f) => path.join(rel, f))]
    .map((f) => {
      try {
        return fs.statSync(path.join(nxRoot, f)).mtimeMs;
      } catch (_) {
        return 0;
      }
    })
    .join(',');
  const hit = cache.get(file);
  if (hit && hit.stamp === stamp) return hit.value;
  const { loadEcosystem } = require('./workspace');
  const native = require('./native');
  const { ecosystem } = loadEcosystem(root, 'nx graph');
  const value = native.inferProjects({ workspaceRoot: root, ecosystem, ecosystemFile: path.join(nxRoot, file), rel: rel === '' ? '.' : rel });
  cache.set(file, { stamp, value });
  return value;
}

const createNodesV2 = [
  ECOSYSTEM,
  async (files, _options, context) => {
    const out = [];
    for (const file of files) {
      if (file.split('/').includes('node_modules')) continue;
      try {
        out.push([file, { projects: infer(context.workspaceRoot, file).projects }]);
      } catch (e) {
        // A broken ecosystem file must not take the whole graph down; verify names the problem.
        process.stderr.write(`@workspace/orchestrator: no targets inferred from ${file}: ${e.message}\n`);
      }
    }
    return out;
  },
];

/** Edges between the projects of services: a service is the project of its name, or the one
 * whose orchestrator targets carry `options.service`. */
async function createDependencies(_options, context) {
  const roots = new Set(['.', ...Object.values(context.projects).map((p) => p.root || '.')]);
  const byService = {};
  for (const [name, p] of Object.entries(context.projects)) {
    for (const t of Object.values(p.targets || {})) {
      if (typeof t.executor === 'string' && t.executor.startsWith('@workspace/orchestrator:')) {
        byService[t.options?.service || name] ??= name;
      }
    }
  }
  const edges = [];
  for (const root of roots) {
    const file = ['ecosystem.config.js', 'ecosystem.config.cjs', 'ecosystem.config.json'].map((f) => path.join(root, f)).find((f) => fs.existsSync(path.join(context.workspaceRoot, f)));
    if (!file) continue;
    let inferred;
    try {
      inferred = infer(context.workspaceRoot, file);
    } catch (_) {
      continue;
    }
    for (const [from, to] of inferred.edges) {
      const source = byService[from];
      const target = byService[to];
      if (source && target && source !== target) edges.push({ source, target, type: 'implicit' });
    }
  }
  return edges;
}

module.exports = { createNodesV2, createDependencies };
