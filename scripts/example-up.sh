#!/usr/bin/env bash
# The main job: bring the example workspace up (every service, development profile unless
# PROFILE is set) and show what runs.
set -euo pipefail
cd "$(dirname "$0")/../examples/workspace"
export NX_DAEMON=false
npx nx run workspace:start-all --profile "${PROFILE:-development}"
# The consolidated `workspace:status` arrives with its own issue; until then, PM2's view.
npx pm2 ls
