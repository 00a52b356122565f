#!/bin/sh
# Make Debian's redis-server and redis-cli available for the tests that run on a Redis
# Cluster. Nothing is started here: the tests create their own cluster (three primaries,
# three replicas, loopback ports, `redis-cli --cluster create`) and stop it at the end
# (tests/redis_topologies.py).
if command -v redis-server >/dev/null 2>&1 && command -v redis-cli >/dev/null 2>&1; then
    exit 0
fi
echo "redis-server or redis-cli is not installed; installing them from Debian's packages" >&2
(apt-get install -y -qq redis-server redis-tools \
    || (apt-get update -qq && apt-get install -y -qq redis-server redis-tools)) \
    >/dev/null 2>&1 || echo "could not install redis-server: the cluster tests will be skipped" >&2
exit 0
