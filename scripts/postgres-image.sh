#!/usr/bin/env bash
# Prints the Postgres image the example should use: $POSTGRES_IMAGE if set; the official
# postgres:16 when it is present or a registry hands it out; otherwise the local build
# (orchestrator-local/postgres:15, built here by scripts/build-images.sh when missing).
set -euo pipefail
cd "$(dirname "$0")"
if [ -n "${POSTGRES_IMAGE:-}" ]; then echo "$POSTGRES_IMAGE"; exit 0; fi
if docker image inspect postgres:16 >/dev/null 2>&1 || timeout 60 docker pull -q postgres:16 >/dev/null 2>&1; then
  echo postgres:16
  exit 0
fi
echo "postgres-image: no registry answers for postgres:16; using the local build" >&2
bash build-images.sh >&2
echo orchestrator-local/postgres:15
