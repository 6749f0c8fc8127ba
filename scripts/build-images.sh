#!/usr/bin/env bash
# Local images for machines with no image registry (nothing is pulled):
#   orchestrator-local/busybox:1      busybox-static in an empty rootfs (test services)
#   orchestrator-local/postgres:15    Debian's PostgreSQL 15 via mmdebstrap, an entrypoint that
#                                     initialises the cluster like the official image, pg_isready
# The Debian mirror is read from this machine's apt sources. Skips images that already exist
# (FORCE=1 rebuilds). Needs a running engine (scripts/docker-engine.sh) and root.
set -euo pipefail
cd "$(dirname "$0")"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

have() { docker image inspect "$1" >/dev/null 2>&1 && [ -z "${FORCE:-}" ]; }

mirror() {
  local m
  m=$( (grep -hsE '^URIs:' /etc/apt/sources.list.d/*.sources 2>/dev/null; grep -hsE '^deb ' /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null) \
    | grep -v security | head -1 | sed -E 's/^URIs:[[:space:]]*//; s/^deb[[:space:]]+(\[[^]]*\][[:space:]]+)?//; s/[[:space:]].*$//')
  [ -n "$m" ] || { echo "build-images: no Debian mirror in the apt sources" >&2; exit 13; }
  echo "$m"
}

if ! have orchestrator-local/busybox:1; then
  echo "build-images: orchestrator-local/busybox:1"
  command -v busybox >/dev/null 2>&1 && busybox --help 2>&1 | head -1 | grep -q static || \
    { apt-get update -qq; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq busybox-static >/dev/null; }
  mkdir -p "$work/bb/bin" "$work/bb/tmp" "$work/bb/etc"
  cp "$(command -v busybox)" "$work/bb/bin/busybox"
  for app in $("$work/bb/bin/busybox" --list); do [ "$app" = busybox ] || ln -sf busybox "$work/bb/bin/$app"; done
  echo 'root:x:0:0:root:/:/bin/sh' > "$work/bb/etc/passwd"
  tar -C "$work/bb" -c . | docker import --change 'CMD ["/bin/sh"]' --change 'ENV PATH=/bin' - orchestrator-local/busybox:1 >/dev/null
fi

if ! have orchestrator-local/postgres:15; then
  echo "build-images: orchestrator-local/postgres:15 (mmdebstrap, about a minute)"
  command -v mmdebstrap >/dev/null 2>&1 || { apt-get update -qq; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mmdebstrap >/dev/null; }
  mmdebstrap --quiet --variant=apt --include=postgresql-15,util-linux \
    --customize-hook='copy-in images/postgres/docker-entrypoint.sh /usr/local/bin' \
    --customize-hook='chroot "$1" sh -c "rm -rf /var/lib/postgresql/15/main /etc/postgresql/15/main /var/cache/apt/archives/*.deb /var/lib/apt/lists/*"' \
    bookworm "$work/postgres.tar" "$(mirror)"
  docker import \
    --change 'ENV PATH=/usr/lib/postgresql/15/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV PGDATA=/var/lib/postgresql/data' \
    --change 'ENTRYPOINT ["/usr/local/bin/docker-entrypoint.sh"]' \
    --change 'CMD ["postgres"]' \
    --change 'EXPOSE 5432' \
    "$work/postgres.tar" orchestrator-local/postgres:15 >/dev/null
fi
docker image ls --format '{{.Repository}}:{{.Tag}} {{.Size}}' | grep '^orchestrator-local/'
