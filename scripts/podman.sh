#!/bin/sh
# podman as it can run on these machines: with runc and cgroupfs (crun and the systemd
# cgroup manager are refused), and for `run`/`build`/`create` with limits no higher than
# this shell's own, since raising a limit is refused: nofile as the soft limit here,
# nproc as `ulimit -u` but at most kernel.pid_max (more processes cannot exist, and
# runc was refused anything above it although ulimit -u said 96369).
#
#   scripts/podman.sh run --rm localhost/classroom:latest ...
#   scripts/podman.sh build -f deploy/Containerfile ...
set -eu
limit() {  # the soft limit named $1 in /proc/self/limits ("unlimited" as -1)
  sed -n "s/^$1  *\([^ ]*\) .*/\1/p" /proc/self/limits | sed 's/unlimited/-1/'
}
NOFILE=$(limit "Max open files")
NPROC=$(limit "Max processes")
PID_MAX=$(cat /proc/sys/kernel/pid_max 2>/dev/null || echo 32768)
if [ "$NPROC" -lt 0 ] || [ "$NPROC" -gt "$PID_MAX" ]; then NPROC=$PID_MAX; fi
command=$1
shift
case "$command" in
  run|build|create)
    exec podman --runtime runc --cgroup-manager=cgroupfs "$command" \
      --ulimit "nofile=$NOFILE:$NOFILE" --ulimit "nproc=$NPROC:$NPROC" "$@" ;;
  *)
    exec podman --runtime runc --cgroup-manager=cgroupfs "$command" "$@" ;;
esac
