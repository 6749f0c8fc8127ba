#!/usr/bin/env bash
# Builds the native supervisor (crates/supervisor: the workspace agent and the container runners
# PM2 runs) and puts it at the package root beside the addon, where the commands look for it.
# `npm run build` runs it after the addon; `--debug` for a debug build (`npm run build:debug`).
set -euo pipefail
cd "$(dirname "$0")/.."
profile=release
flags=(--release)
if [ "${1:-}" = "--debug" ]; then profile=debug; flags=(); fi
cargo build "${flags[@]}" -p orchestrator-supervisor
# Copied to a temporary name and renamed: a supervisor PM2 is running is never overwritten in place.
cp "target/$profile/orchestrator-supervisor" orchestrator-supervisor.tmp
mv -f orchestrator-supervisor.tmp orchestrator-supervisor
