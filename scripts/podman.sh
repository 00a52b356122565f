#!/bin/sh
# podman as it can run on these machines: with runc and cgroupfs (crun and the systemd
# cgroup manager are refused), and for `run`/`build` with limits no higher than this
# shell's own (raising a limit is refused): nofile as the soft limit here, nproc 4096.
#
#   scripts/podman.sh run --rm localhost/classroom:latest ...
#   scripts/podman.sh build -f deploy/Containerfile ...
set -eu
NOFILE=$(ulimit -Sn)
NPROC=4096
command=$1
shift
case "$command" in
  run|build|create)
    exec podman --runtime runc --cgroup-manager=cgroupfs "$command" \
      --ulimit "nofile=$NOFILE:$NOFILE" --ulimit "nproc=$NPROC:$NPROC" "$@" ;;
  *)
    exec podman --runtime runc --cgroup-manager=cgroupfs "$command" "$@" ;;
esac
