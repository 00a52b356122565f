#!/bin/sh
# Make Debian's haproxy available for the tests that run nodes behind a balancer.
# It is only installed, never started here: each test starts its own, on loopback ports.
if command -v haproxy >/dev/null 2>&1 || [ -x /usr/sbin/haproxy ]; then
    exit 0
fi
echo "haproxy is not installed; installing it from Debian's packages" >&2
(apt-get install -y -qq haproxy || (apt-get update -qq && apt-get install -y -qq haproxy)) \
    >/dev/null 2>&1 || echo "could not install haproxy: the balancer tests will be skipped" >&2
exit 0
