#!/usr/bin/env bash
# The README's test command: Rust checks and unit tests, then the JS binding and integration
# tests (real PM2 with a private PM2_HOME, real Nx against examples/workspace).
set -euo pipefail
cd "$(dirname "$0")/.."
export NX_DAEMON=false

echo "== cargo fmt --check"; cargo fmt --check
echo "== cargo clippy -D warnings"; cargo clippy --all-targets -- -D warnings
echo "== cargo test"; cargo test
echo "== napi build (release; a no-op when nothing changed)"; npx napi build --platform --release
[ -d examples/workspace/node_modules/nx ] || (cd examples/workspace && npm ci --no-audit --no-fund)
# --test-force-exit: a test file that used PM2's client in-process keeps an idle handle after
# killing its daemon (only under the test runner); every test checks its daemon is gone itself.
# --test-timeout: a test that hangs (a PM2 daemon that died under a client waiting on it) fails
# after 5 minutes instead of holding CI until its limit.
echo "== node --test __test__/*.spec.js"; node --test --test-concurrency=1 --test-force-exit --test-timeout=300000 __test__/*.spec.js
