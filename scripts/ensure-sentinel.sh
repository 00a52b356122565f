#!/bin/sh
# Make Debian's redis-sentinel available for the tests that run on a Sentinel set.
# It is only installed, never started here: the tests start their own primary, replica
# and three sentinels on loopback ports (tests/redis_topologies.py) and stop them.
if command -v redis-sentinel >/dev/null 2>&1 || [ -x /usr/bin/redis-sentinel ]; then
    exit 0
fi
echo "redis-sentinel is not installed; installing it from Debian's packages" >&2
(apt-get install -y -qq redis-sentinel || (apt-get update -qq && apt-get install -y -qq redis-sentinel)) \
    >/dev/null 2>&1 || echo "could not install redis-sentinel: the Sentinel tests will be skipped" >&2
exit 0
