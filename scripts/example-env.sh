#!/usr/bin/env bash
# Records the example's Postgres image in examples/workspace/.env, the project .env beside its
# docker-compose.yml: compose (and the orchestrator) read it for ${POSTGRES_IMAGE}, so every
# later command (`nx run postgres:restart`, …) resolves the image `npm run example:up` used,
# whatever the shell exports. Other lines of the file are kept. Prints the image.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
image="$(bash "$here/postgres-image.sh")"
env_file="$here/../examples/workspace/.env"
touch "$env_file"
tmp="$(mktemp "$env_file.XXXXXX")"
grep -v '^POSTGRES_IMAGE=' "$env_file" > "$tmp" || true
if ! grep -q '^# Written by scripts/example-env.sh' "$tmp"; then
  { echo "# Written by scripts/example-env.sh: the image this machine can run (see scripts/postgres-image.sh)."; cat "$tmp"; } > "$tmp.2" && mv "$tmp.2" "$tmp"
fi
echo "POSTGRES_IMAGE=$image" >> "$tmp"
mv "$tmp" "$env_file"
echo "$image"
