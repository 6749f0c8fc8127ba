#!/usr/bin/env bash
# Stops every service of the example workspace.
set -euo pipefail
cd "$(dirname "$0")/../examples/workspace"
NX_DAEMON=false npx nx run workspace:stop-all
