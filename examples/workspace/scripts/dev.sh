#!/usr/bin/env bash
# Legacy entry point, kept so old habits and CI jobs keep working. It no longer starts anything
# itself: it delegates to the Nx targets (docs/orchestration/02-daily-development.md shows how to
# wrap or retire such scripts). Arguments go to the target: scripts/dev.sh --profile staging
set -euo pipefail
echo "scripts/dev.sh: delegating to 'nx run workspace:start $*' (use that directly; this script will go)" >&2
cd "$(dirname "$0")/.."
exec npx nx run workspace:start "$@"
