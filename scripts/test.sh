#!/usr/bin/env bash
# The README's test command. On a fresh clone it first prepares what the tests need — the set-up
# (scripts/setup.sh: npm ci, the native addon, the example's dependencies, a Docker engine, the
# example's Postgres image), the local test images (scripts/build-images.sh) and the local image
# registry (scripts/registry.sh) — each quick when already done. Then: Rust checks and unit tests,
# the CI gate on the example (verify, every profile), and the JS binding and integration tests
# (real PM2 with a private PM2_HOME, real Nx, a real dockerd).
set -euo pipefail
cd "$(dirname "$0")/.."
export NX_DAEMON=false

echo "== set-up"; bash scripts/setup.sh
echo "== local test images"; bash scripts/build-images.sh
echo "== local image registry"; bash scripts/registry.sh
# The dashboard's tests drive it in a real terminal: tmux (send-keys, capture-pane).
if ! command -v tmux >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "== tmux (the dashboard's tests run it in a terminal)"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq tmux >/dev/null
  else
    echo "test: tmux is required by __test__/dashboard.spec.js: install it (Debian/Ubuntu: sudo apt-get install tmux)" >&2
    exit 13
  fi
fi
# The tests run the example workspace on its own ports (3000, 5173, 5432): an example brought up
# by `npm run example:up` (under this user's PM2) is stopped first, and that is said.
running="$(cd examples/workspace && node ../../bin/orchestrator.js status --json 2>/dev/null || true)"
if grep -q '"state":"online"' <<<"$running"; then
  echo "== the example workspace is running: stopping it (npm run example:down), the tests use its ports"
  bash scripts/example-down.sh
fi

echo "== cargo fmt --all --check"; cargo fmt --all --check
echo "== cargo clippy -D warnings (every crate)"; cargo clippy --workspace --all-targets -- -D warnings
echo "== no module cycles"; node scripts/check-cycles.js
echo "== eslint"; npx eslint .
echo "== tsc (the JS type-checked from its JSDoc)"; npx tsc -p tsconfig.json
echo "== cargo test (every crate)"; cargo test --workspace
# The CI gate the docs recommend: lint and dry-run every profile of the example (starts nothing).
echo "== verify the example, every profile"; (cd examples/workspace && npx nx run workspace:verify -- --all-profiles)
# --test-force-exit: a test file that used PM2's client in-process keeps an idle handle after
# killing its daemon (only under the test runner); every test checks its daemon is gone itself.
# --test-timeout: a test that hangs (a PM2 daemon that died under a client waiting on it) fails
# after 5 minutes instead of holding CI until its limit.
echo "== node --test __test__/*.spec.js"; node --test --test-concurrency=1 --test-force-exit --test-timeout=300000 __test__/*.spec.js
