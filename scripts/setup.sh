#!/usr/bin/env bash
# Set-up, idempotent and quick when nothing changed (`npm run example:up` and `npm test` run it
# themselves): the package's npm dependencies (npm ci, when its lockfile changed since the last
# install), the native addon (release; cargo rebuilds only what changed), the example
# workspace's dependencies (likewise), a Docker engine that answers and a Postgres image for the
# example (the official one, or a local build when no registry answers).
set -euo pipefail
cd "$(dirname "$0")/.."

need() { command -v "$1" >/dev/null 2>&1 || { echo "setup: $1 is required: $2" >&2; exit 13; }; }
need node "install Node.js 18 or newer"
need npm "install npm (comes with Node.js)"
need cargo "install Rust stable (https://rustup.rs)"

# npm ci when node_modules is missing or older than the lockfile (npm writes
# node_modules/.package-lock.json at every install).
installed() { [ -f "$1/node_modules/.package-lock.json" ] && [ ! "$1/package-lock.json" -nt "$1/node_modules/.package-lock.json" ]; }

if ! installed .; then
  echo "setup: installing the package's npm dependencies (npm ci)"
  npm ci --no-audit --no-fund
fi

# The addon is rebuilt when a Rust source (the binding in src/, the core, the runtime and the
# supervisor in crates/) is newer than it (cargo would find nothing to do, but napi's type-definition pass can
# still make it compile the crate again).
addon="$(ls orchestrator.*.node 2>/dev/null | head -1 || true)"
if [ -z "$addon" ] || [ -n "$(find src crates Cargo.toml Cargo.lock build.rs -newer "$addon" -print -quit)" ]; then
  echo "setup: building the native addon (release)"
  npx napi build --platform --release
else
  echo "setup: the native addon is up to date ($addon)"
fi
# The supervisor (the agent and the container runners PM2 runs), likewise.
if [ ! -x orchestrator-supervisor ] || [ -n "$(find src crates Cargo.toml Cargo.lock -newer orchestrator-supervisor -print -quit)" ]; then
  echo "setup: building the native supervisor (release)"
  bash scripts/build-supervisor.sh
else
  echo "setup: the native supervisor is up to date"
fi

if ! installed examples/workspace; then
  echo "setup: installing the example workspace (examples/workspace, npm ci)"
  (cd examples/workspace && npm ci --no-audit --no-fund)
fi

echo "setup: Docker engine and the example's Postgres image"
bash scripts/docker-engine.sh
echo "setup: Postgres image for the example (in examples/workspace/.env): $(bash scripts/example-env.sh)"

echo "setup: done. Main job: npm run example:up   Tests: npm test"
