#!/usr/bin/env bash
# A real local image registry on 127.0.0.1:5000 (Debian's docker-registry), for the pull-path
# tests. The engine trusts 127.0.0.0/8 registries over plain HTTP by default. As root on Debian it
# installs and starts one when none answers; otherwise it says what to do.
set -euo pipefail

answers() { (exec 3<>/dev/tcp/127.0.0.1/5000) 2>/dev/null; }

if answers; then
  echo "registry: 127.0.0.1:5000 answers"
  exit 0
fi
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "registry: nothing answers on 127.0.0.1:5000; run a registry there (Debian: apt-get install docker-registry)" >&2
  exit 13
fi
if ! command -v docker-registry >/dev/null 2>&1; then
  echo "registry: installing Debian's docker-registry"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker-registry >/dev/null
fi
# Our own config: Debian's default turns on htpasswd auth, which a test registry does not need.
config=/var/lib/orchestrator-registry/config.yml
mkdir -p /var/lib/orchestrator-registry/data
cat > "$config" <<'YAML'
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: /var/lib/orchestrator-registry/data
  delete:
    enabled: true
http:
  addr: 127.0.0.1:5000
YAML
echo "registry: starting docker-registry on 127.0.0.1:5000"
nohup docker-registry serve "$config" >/var/log/orchestrator-registry.log 2>&1 &
for _ in $(seq 1 50); do
  answers && { echo "registry: 127.0.0.1:5000 answers"; exit 0; }
  sleep 0.2
done
echo "registry: did not answer within 10 s; see /var/log/orchestrator-registry.log" >&2
tail -20 /var/log/orchestrator-registry.log >&2 || true
exit 13
