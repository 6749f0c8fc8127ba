#!/usr/bin/env bash
# Stops every service of the example workspace (apps first, then its docker dependencies).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
export NX_DAEMON=false
cd "$here/../examples/workspace"
npx nx run workspace:stop-all
