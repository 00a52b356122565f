#!/bin/sh
# The container image test end to end, on a machine where no image registry is reachable:
#   1. podman, runc, debootstrap and podman-compose from Debian's packages, when missing;
#   2. a base image made from Debian's packages (debootstrap bookworm with python3 and
#      venv, `podman import`ed), since python:3.11-slim cannot be pulled here, and on it
#      stand-ins for the official redis and haproxy images (for deploy/compose.yaml);
#   3. tests/deploy: deploy/Containerfile built on that base and run alone, then
#      deploy/compose.yaml run with it (scripts/podman.sh: the only way podman runs here).
#
#   scripts/image-test.sh [pytest options]  # all three (make image-test)
#   scripts/image-test.sh base              # 1 and 2 only (what the tests call)
#
# debootstrap takes a minute or two, so its tree is kept as a tarball under build/
# (gitignored): a second run imports that, or finds the image already in podman's store.
# Delete build/image/base-*.tar and `podman rmi` the base to make it afresh.
set -eu
cd "$(dirname "$0")/.."
BASE=${CLASSROOM_IMAGE_BASE:-localhost/classroom-base:bookworm}
SUITE=bookworm
CACHE=build/image/base-$SUITE.tar

ensure_tools() {
  missing=""
  for tool in podman runc debootstrap podman-compose; do
    command -v "$tool" >/dev/null 2>&1 || [ -x "/usr/sbin/$tool" ] || missing="$missing $tool"
  done
  [ -z "$missing" ] && return 0
  echo "installing from Debian's packages:$missing" >&2
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO=sudo
  $SUDO apt-get update -q >/dev/null
  # shellcheck disable=SC2086  # one word per package
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q $missing >/dev/null
}

# The first Debian mirror apt uses here (deb822 or one-line sources), else Debian's CDN.
mirror() {
  found=$(sed -n 's/^URIs: *\([^ ]*\).*/\1/p' /etc/apt/sources.list.d/*.sources 2>/dev/null \
    | grep -v security | head -n 1)
  [ -n "$found" ] || found=$(sed -n 's/^deb  *\(\[[^]]*\]  *\)\{0,1\}\(http[^ ]*\).*/\2/p' \
    /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null | grep -v security | head -n 1)
  echo "${found:-http://deb.debian.org/debian}"
}

ensure_base() {
  podman image exists "$BASE" && return 0
  if [ ! -s "$CACHE" ]; then
    root=$(mktemp -d /var/tmp/classroom-base.XXXXXX)
    trap 'rm -rf "$root"' EXIT
    from=$(mirror)
    echo "making $BASE with debootstrap $SUITE from $from (a minute or two, once)" >&2
    debootstrap --variant=minbase --include=python3,python3-venv "$SUITE" "$root" "$from" \
      >/dev/null
    mkdir -p "$(dirname "$CACHE")"
    tar -C "$root" -cf "$CACHE.part" . && mv "$CACHE.part" "$CACHE"
    rm -rf "$root"
    trap - EXIT
  fi
  podman import --quiet --change 'CMD ["/bin/bash"]' "$CACHE" "$BASE" >/dev/null
}

# Debian's redis-server and haproxy set up as the official images are; podman's layer
# cache makes this instant after the first time (which runs apt-get on the mirror).
ensure_standins() {
  for service in redis haproxy; do
    sh scripts/podman.sh build --quiet --network host --build-arg "BASE=$BASE" \
      --target "$service" --tag "localhost/classroom-standin-$service:test" \
      -f tests/deploy/standins.Containerfile tests/deploy >/dev/null
  done
}

ensure_tools
ensure_base
ensure_standins
[ "${1:-}" = "base" ] && exit 0
CLASSROOM_IMAGE_TEST=1 CLASSROOM_IMAGE_BASE="$BASE" exec .venv/bin/pytest -p no:randomly tests/deploy "$@"
