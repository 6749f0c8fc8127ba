#!/usr/bin/env bash
# Set-up after `npm ci`: build the native addon (release), install the example workspace, and
# make sure a Docker engine answers and a Postgres image is at hand for the example's
# dependencies (the official one, or a local build when no registry answers).
# Idempotent: rerun it after pulling.
set -euo pipefail
cd "$(dirname "$0")/.."

need() { command -v "$1" >/dev/null 2>&1 || { echo "setup: $1 is required: $2" >&2; exit 13; }; }
need node "install Node.js 18 or newer"
need npm "install npm (comes with Node.js)"
need cargo "install Rust stable (https://rustup.rs)"

if [ ! -d node_modules/@napi-rs/cli ]; then
  echo "setup: installing the package's npm dependencies (npm ci)"
  npm ci --no-audit --no-fund
fi

echo "setup: building the native addon (release)"
npx napi build --platform --release

echo "setup: installing the example workspace (examples/workspace)"
(cd examples/workspace && npm ci --no-audit --no-fund)

echo "setup: Docker engine and the example's Postgres image"
bash scripts/docker-engine.sh
echo "setup: Postgres image for the example (in examples/workspace/.env): $(bash scripts/example-env.sh)"

echo "setup: done. Main job: npm run example:up   Tests: npm test"
