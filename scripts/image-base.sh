#!/bin/sh
# A base image made here from Debian's packages, for when no image registry is reachable
# (the image test): debootstrap bookworm with python3 and venv, imported into podman as
# localhost/classroom-base:bookworm. Made once; kept until `podman rmi` removes it.
set -eu
IMAGE=localhost/classroom-base:bookworm
if podman image exists "$IMAGE"; then exit 0; fi
MIRROR=$(sed -n 's/^URIs: *//p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -n 1)
MIRROR=${MIRROR:-http://deb.debian.org/debian}
ROOT=$(mktemp -d /var/tmp/classroom-base.XXXXXX)
trap 'rm -rf "$ROOT"' EXIT
echo "making $IMAGE with debootstrap from $MIRROR (about a minute)"
debootstrap --variant=minbase --include=python3,python3-venv bookworm "$ROOT" "$MIRROR" >/dev/null
tar -C "$ROOT" -c . | podman import --change 'CMD ["/bin/bash"]' - "$IMAGE" >/dev/null
