#!/bin/sh
# Start the local Redis that the tests use (127.0.0.1:6379) when it is not answering.
# Tests use their own database numbers and key prefixes, never the default data.
if redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
    exit 0
fi
if ! command -v redis-server >/dev/null 2>&1; then
    echo "redis-server is not installed; installing it from Debian's packages" >&2
    (apt-get update -qq && apt-get install -y -qq redis-server) >/dev/null || {
        echo "could not install redis-server: the Redis tests will fail" >&2
        exit 0
    }
fi
mkdir -p /tmp/classroom-redis
redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no \
    --dir /tmp/classroom-redis --logfile /tmp/classroom-redis/redis.log
for _ in 1 2 3 4 5 6 7 8 9 10; do
    redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1 && exit 0
    sleep 0.3
done
echo "redis-server did not answer on 127.0.0.1:6379" >&2
