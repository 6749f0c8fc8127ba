'use strict';
// The Nx plugin side (nx.json `plugins: ["@workspace/orchestrator"]`): createNodesV2 infers, from
// each ecosystem.config.* (one addon call each), the projects and targets a workspace would
// otherwise write by hand; createDependencies adds the edges of compose `depends_on` and
// nx.json `services.<name>.dependsOn`. Explicit project.json targets win (Nx merges them last).

const fs = require('fs');
const path = require('path');

// Ecosystem files anywhere; a compose file alone (a compose-only workspace) at the Nx root or
// beside an nx.json: compose files deeper down (examples, fixtures) are not workspaces. The
// project.json files tell where the projects a workspace already defines live: inferred targets
// join a project of the same name wherever it is (Nx refuses a name defined twice).
const ECOSYSTEM_NAMES = ['ecosystem.config.js', 'ecosystem.config.cjs', 'ecosystem.config.json'];
const COMPOSE_NAMES = ['compose.yaml', 'compose.yml', 'docker-compose.yml', 'docker-compose.yaml'];
const PATTERN = '**/{ecosystem.config.{js,cjs,json},compose.{yaml,yml},docker-compose.{yml,yaml},project.json}';

// createNodesV2 and createDependencies run in the same plugin worker and need the same answer:
// it is computed once per state of the files it reads (their modification times).
const cache = new Map();
const INPUTS = ['nx.json', ...COMPOSE_NAMES, 'compose.override.yaml', 'compose.override.yml', 'docker-compose.override.yml', 'docker-compose.override.yaml', '.env', 'config/env/development.env'];

/** The file a workspace directory is inferred from: its ecosystem file, else its compose file
 * when the directory is a workspace root. */
function workspaceFile(nxRoot, file) {
  const rel = path.dirname(file);
  const base = path.basename(file);
  const has = (n) => fs.existsSync(path.join(nxRoot, rel, n));
  if (ECOSYSTEM_NAMES.includes(base)) return file;
  if (ECOSYSTEM_NAMES.some(has)) return null; // inferred from the ecosystem file
  if (rel !== '.' && !has('nx.json')) return null;
  return COMPOSE_NAMES.map((n) => path.join(rel, n)).find((f) => fs.existsSync(path.join(nxRoot, f))) === file ? file : null;
}

/** The projects the workspace's project.json files define: [{ name, root }] (roots relative to
 * the Nx root), each file read once per modification. A project.json without a `name` is named
 * as Nx names it: after its directory. */
const named = new Map();
function existingProjects(nxRoot, files) {
  const out = [];
  for (const f of files) {
    if (path.basename(f) !== 'project.json' || f.split('/').includes('node_modules')) continue;
    let mtime;
    try {
      mtime = fs.statSync(path.join(nxRoot, f)).mtimeMs;
    } catch (_) {
      continue;
    }
    let hit = named.get(f);
    if (!hit || hit.mtime !== mtime) {
      let name;
      try {
        name = JSON.parse(fs.readFileSync(path.join(nxRoot, f), 'utf8')).name;
      } catch (_) {
        /* Nx reports a broken project.json itself */
      }
      const dir = path.dirname(f);
      hit = { mtime, name: typeof name === 'string' ? name : dir !== '.' ? path.basename(dir).toLowerCase() : undefined };
      named.set(f, hit);
    }
    if (hit.name) out.push({ name: hit.name, root: path.dirname(f) === '' ? '.' : path.dirname(f) });
  }
  return out;
}

function infer(nxRoot, file, projects = lastProjects) {
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
    .join(',') + JSON.stringify(projects);
  const hit = cache.get(file);
  if (hit && hit.stamp === stamp) return hit.value;
  const { loadEcosystem } = require('./workspace');
  const native = require('./native');
  const { ecosystem, file: ecosystemFile } = loadEcosystem(root, 'nx graph');
  const value = native.inferProjects({ workspaceRoot: root, ecosystem, ecosystemFile, rel: rel === '' ? '.' : rel, projects });
  cache.set(file, { stamp, value });
  return value;
}

// The projects of the last graph computation, for createDependencies (same worker, same files).
let lastProjects = [];

const createNodesV2 = [
  PATTERN,
  async (files, _options, context) => {
    const out = [];
    lastProjects = existingProjects(context.workspaceRoot, files);
    for (const candidate of files) {
      if (candidate.split('/').includes('node_modules') || path.basename(candidate) === 'project.json') continue;
      const file = workspaceFile(context.workspaceRoot, candidate);
      if (!file) continue;
      try {
        out.push([file, { projects: infer(context.workspaceRoot, file, lastProjects).projects }]);
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
    const file = [...ECOSYSTEM_NAMES, ...COMPOSE_NAMES]
      .map((f) => path.join(root, f))
      .map((f) => fs.existsSync(path.join(context.workspaceRoot, f)) && workspaceFile(context.workspaceRoot, f))
      .find(Boolean);
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

// Nx 22 reads `createNodesV2`, Nx 23+ `createNodes` (the same shape since Nx 21).
module.exports = { createNodes: createNodesV2, createNodesV2, createDependencies };
