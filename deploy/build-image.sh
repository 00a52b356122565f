#!/bin/sh
# Build the container image (deploy/Containerfile) with podman, or docker when podman is
# missing. Every wheel is built here on the host first, at the versions constraints.txt
# pins, so the build itself downloads nothing. Extra arguments go to `build`
# (e.g. --build-arg BASE=localhost/classroom-base:bookworm).
#
#   deploy/build-image.sh [--tag localhost/classroom:latest] [build options...]
set -eu
cd "$(dirname "$0")/.."
TAG=localhost/classroom:latest
if [ "${1:-}" = "--tag" ]; then TAG=$2; shift 2; fi
PYTHON=${PYTHON:-.venv/bin/python}
CONTEXT=build/image/context
WHEELS=build/image/wheels

mkdir -p "$WHEELS"
# The project's own wheel is rebuilt each time; its dependencies' wheels are reused.
rm -f "$WHEELS"/classroom-*.whl
# Its files dated by the last commit (SOURCE_DATE_EPOCH), so the same code gives the
# same wheel: the build then reuses its cached layers instead of installing again.
SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || echo 315532800)}
export SOURCE_DATE_EPOCH
# async-timeout too: redis-py needs it on a Python older than 3.11.3 (Debian bookworm's
# 3.11.2), which the host's newer Python does not ask for.
"$PYTHON" -m pip wheel --quiet -c constraints.txt --find-links "$WHEELS" --wheel-dir "$WHEELS" \
  . "async-timeout>=4.0.3"

rm -rf "$CONTEXT"
mkdir -p "$CONTEXT/clients/js"
cp -r "$WHEELS" "$CONTEXT/wheels"
cp constraints.txt "$CONTEXT/constraints.txt"
cp -r static "$CONTEXT/static"
cp -r clients/js/src "$CONTEXT/clients/js/src"

if command -v podman >/dev/null 2>&1; then
  # Here podman runs only with runc and cgroupfs (crun is refused): see scripts/podman.sh.
  # --format docker: the OCI format has no HEALTHCHECK.
  exec sh scripts/podman.sh build --format docker --network host --tag "$TAG" \
    -f deploy/Containerfile "$@" "$CONTEXT"
fi
exec docker build --tag "$TAG" -f deploy/Containerfile "$@" "$CONTEXT"
