#!/usr/bin/env bash
# Makes sure a Docker engine answers. As root on Debian with none running: installs Debian's
# docker.io and starts dockerd in the background (log: /var/log/orchestrator-dockerd.log).
# Otherwise says exactly what to do. Exit 13 (EXIT_PREREQUISITE) when no engine can be had.
set -euo pipefail

engine_up() { docker version --format '{{.Server.APIVersion}}' >/dev/null 2>&1; }

if command -v docker >/dev/null 2>&1 && engine_up; then
  echo "docker-engine: engine answers (API $(docker version --format '{{.Server.APIVersion}}'))"
  exit 0
fi

if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  cat >&2 <<'MSG'
docker-engine: no Docker engine answers (EXIT_PREREQUISITE, 13).
  - Debian/Ubuntu: sudo apt-get install docker.io && sudo systemctl start docker
  - elsewhere: install Docker Engine (https://docs.docker.com/engine/install/) and start it
  - then check: docker version
MSG
  exit 13
fi

if ! command -v dockerd >/dev/null 2>&1; then
  echo "docker-engine: installing Debian's docker.io"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io >/dev/null
fi

if ! engine_up; then
  echo "docker-engine: starting dockerd"
  nohup dockerd >/var/log/orchestrator-dockerd.log 2>&1 &
  for _ in $(seq 1 120); do
    engine_up && break
    sleep 0.5
  done
fi

if ! engine_up; then
  echo "docker-engine: dockerd did not answer within 60 s; see /var/log/orchestrator-dockerd.log" >&2
  tail -20 /var/log/orchestrator-dockerd.log >&2 || true
  exit 13
fi
echo "docker-engine: engine answers (API $(docker version --format '{{.Server.APIVersion}}'))"
