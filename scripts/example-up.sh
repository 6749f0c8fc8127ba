#!/usr/bin/env bash
# The main job: bring the example workspace up (its default services, postgres first, under the
# development profile unless PROFILE is set) and show what runs. On a fresh clone it first does
# the set-up (scripts/setup.sh: npm ci, the native addon, the example's dependencies, a Docker
# engine, a Postgres image), which is quick when nothing changed. Without a registry the
# example's postgres comes from the local build (scripts/postgres-image.sh decides,
# scripts/example-env.sh records it in examples/workspace/.env).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
bash "$here/setup.sh"
export NX_DAEMON=false
cd "$here/../examples/workspace"
# server:setup starts postgres first (Nx graph) and applies the server's migrations (once).
npx nx run server:setup --profile "${PROFILE:-development}"
npx nx run workspace:start --profile "${PROFILE:-development}"
# One health snapshot of every app and dependency (a table; `-- --json` for scripts).
npx nx run workspace:status --profile "${PROFILE:-development}"
