#!/usr/bin/env bash
# Reproduce the results table in loadtests/README.md: each run gets a fresh server on
# loopback (so RSS starts clean), the load generator, then the server is stopped.
#   loadtests/bench.sh                 # every run below (about 10 minutes)
#   loadtests/bench.sh classroom storm # only these
#   loadtests/bench.sh soak            # the soak (about 13 minutes), only when named
#   loadtests/bench.sh scaleout        # 3 nodes on a Redis Cluster (about 9 minutes), named
# Reports land in $OUT (default loadtests/results): <run>.json, <run>.png, <run>.server.log.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
PORT=${PORT:-18000}
OUT=${OUT:-loadtests/results}
mkdir -p "$OUT"

# A tenant with a known secret: the generator mints its tokens with it (it reads
# CLASSROOM_TENANTS too), and rate limits high enough for a trainer's pointer stream.
export CLASSROOM_TENANTS='{"acme":{"secrets":["loadtest-secret-0123456789abcdef0123456789"],"api_key":"loadtest-api-key"}}'
export CLASSROOM_SECRET=loadtest-pid-secret
# /metrics needs a bearer token when tenants are configured; the generator reads it too.
export CLASSROOM_METRICS_TOKEN=loadtest-metrics-token
export CLASSROOM_RATE_LIMIT_PER_SECOND=1000 CLASSROOM_RATE_LIMIT_BURST=2000
export CLASSROOM_LOG_LEVEL=warning
ulimit -n "$(ulimit -Hn)"  # every connection is a file descriptor, on both sides

run() {  # run NAME [extra server env as VAR=value ...] -- loadtests flags ...
  local name=$1; shift
  local env=()
  while [[ $1 != "--" ]]; do env+=("$1"); shift; done; shift
  # SERVE overrides the server command (to measure another tree, say the code before a change).
  env "${env[@]}" ${SERVE:-.venv/bin/classroom serve} --port "$PORT" >"$OUT/$name.server.log" 2>&1 &
  local pid=$!
  for _ in $(seq 100); do
    "$PY" -c "import socket; socket.create_connection(('127.0.0.1', $PORT), 0.2).close()" \
      2>/dev/null && break
    sleep 0.1
  done
  echo "== $name (server pid $pid)"
  "$PY" -m loadtests run --url "ws://127.0.0.1:$PORT/ws" --server-pid "$pid" \
    --json "$OUT/$name.json" --plot "$OUT/$name.png" "$@" || echo "run $name failed"
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  [[ -s "$OUT/$name.server.log" ]] || rm -f "$OUT/$name.server.log"
}

selected=("$@")
pick() { [[ ${#selected[@]} -eq 0 ]] || [[ " ${selected[*]} " == *" $1 "* ]]; }
named() { [[ " ${selected[*]} " == *" $1 "* ]]; }  # long runs: only when asked for by name

pick classroom && run classroom -- --scenario classroom --rooms 10 --students 30 --duration 20
pick lecture500 && run lecture500 -- --scenario lecture --students 500 --duration 20
pick storm && run storm -- --scenario storm --duration 20
pick lecture && run lecture -- --scenario lecture
pick idle && run idle -- --scenario idle --duration 40
# 19,980 connections: the fd hard limit here is 20,000 per process, less the server's own.
pick idle-max && run idle-max -- --scenario idle --rooms 180 --students 110 --duration 45
pick slow && run slow -- --scenario slow
pick slow-control && run slow-control -- --scenario slow --slow-fraction 0
# The targets of docs/performance.md.
pick l500-max && run l500-max -- --scenario lecture --students 500 --duration 22 \
  --connect-rate 250 --pointer-hz 300
pick l500-half && run l500-half -- --scenario lecture --students 500 --duration 22 \
  --connect-rate 250 --pointer-hz 108
pick c50 && run c50 -- --scenario classroom --rooms 50 --students 29 --duration 25 \
  --connect-rate 300
pick storm5k && run storm5k -- --scenario storm --rooms 100 --students 49 --duration 60 \
  --storms 1 --storm-spread 3 --pointer-hz 1 --chat-rate 1 --student-pointers 0 --connect-rate 300
redis_run() {  # as run, with the server on the local Redis under a key prefix of its own
  local name=$1; shift
  local prefix="loadtest-$$-$name"
  run "$name" REDIS_URL=redis://127.0.0.1:6379/0 "CLASSROOM_REDIS_PREFIX=$prefix" "$@"
  # Remove this run's keys (and only them) from the shared Redis.
  "$PY" -c "import redis, sys; r = redis.Redis.from_url('redis://127.0.0.1:6379/0')
keys = list(r.scan_iter(match=sys.argv[1] + ':*', count=1000))
print('removed', r.delete(*keys) if keys else 0, 'redis keys')" "$prefix"
}
pick classroom-redis && redis_run classroom-redis \
  -- --scenario classroom --rooms 10 --students 30 --duration 20
# Issue 15, point 6: 500 members join within 5 s while the trainer publishes 40 events/s
# from the first second, on Redis; clients that announce presence.diff (joinstorm) and
# clients that do not, as before it (joinstorm-each). Then 5,000 reconnects on Redis.
pick joinstorm && redis_run joinstorm -- --scenario joinstorm
pick joinstorm-each && redis_run joinstorm-each -- --scenario joinstorm --presence each
# The same against the server before presence.diff (joinstorm-before, storm5k-redis-before),
# only when named and given its tree:
#   git archive 9f86a0b | (mkdir -p /tmp/base && tar -x -C /tmp/base)
#   BEFORE_TREE=/tmp/base loadtests/bench.sh joinstorm-before storm5k-redis-before
before_run() {  # redis_run against the tree in BEFORE_TREE (only when named and given)
  local name=$1; shift
  named "$name" && [[ -n ${BEFORE_TREE:-} ]] || return 0
  SERVE="env -C $BEFORE_TREE $PWD/.venv/bin/python -m classroom.cli serve" redis_run "$name" "$@"
}
before_run joinstorm-before -- --scenario joinstorm --presence each
# The python-socketio reference (loadtests/reference, on the same Redis) in the same storm:
# its clients get a presence.join per person per member, as ours did before.
if pick joinstorm-reference; then
  SERVE="$PY -m loadtests serve-reference --prefix loadtest-$$-ref" run joinstorm-reference \
    -- --scenario joinstorm --driver socketio --url "ws://127.0.0.1:$PORT/socket.io"
  "$PY" -c "import redis, sys; r = redis.Redis.from_url('redis://127.0.0.1:6379/0')
keys = list(r.scan_iter(match=sys.argv[1] + ':*', count=1000))
print('removed', r.delete(*keys) if keys else 0, 'redis keys')" "loadtest-$$-ref"
fi
storm5k=(--scenario storm --rooms 100 --students 49 --duration 60 --storms 1 --storm-spread 3
  --pointer-hz 1 --chat-rate 1 --student-pointers 0 --connect-rate 300)
pick storm5k-redis && redis_run storm5k-redis -- "${storm5k[@]}"
pick storm5k-redis-each && redis_run storm5k-redis-each -- "${storm5k[@]}" --presence each
# The same storm beside a busy loop, only when named: the loop takes a core's share from the
# node, the generator and Redis alike, as a slower day's machine does (docs/performance.md,
# "Connections kept out of the middle collections").
if named storm5k-redis-burner; then
  "$PY" -c "while True: pass" &
  burner=$!
  redis_run storm5k-redis-burner -- "${storm5k[@]}"
  kill "$burner"
fi
# The same with clients that take a poll.tally per answer, as before poll.tally.coalesced.
pick storm5k-redis-tallies-each && redis_run storm5k-redis-tallies-each -- "${storm5k[@]}" \
  --tallies each
# Half that storm (2,500): what fits a machine whose node is already full during storm5k's ramp.
pick storm2500-redis && redis_run storm2500-redis -- --scenario storm --rooms 50 --students 49 \
  --duration 50 --storms 1 --storm-spread 3 --pointer-hz 1 --chat-rate 1 --student-pointers 0 \
  --connect-rate 300
before_run storm5k-redis-before -- "${storm5k[@]}" --presence each
# The soak (docs/performance.md, "Soak"): sessions start, run and end in a loop for
# SOAK_SECONDS (default 600) on two nodes sharing Redis; RSS and live objects must come back
# to the baseline. It starts and stops its own nodes and cleans its Redis keys. About 13
# minutes, so it runs only when named: `loadtests/bench.sh soak` (soak-memory: the embedded
# broker, one node, SOAK_MEMORY_SECONDS default 300).
if named soak; then
  echo "== soak (2 nodes, Redis, ${SOAK_SECONDS:-600} s)"
  "$PY" -m loadtests soak --broker redis --nodes 2 --duration "${SOAK_SECONDS:-600}" \
    --json "$OUT/soak.json" --markdown "$OUT/soak.md" || echo "soak: FAIL, see $OUT/soak.md"
fi
# Issue 15, point 7: one 1,500-member room over 3 nodes on a Redis Cluster (started here:
# 3 primaries + 3 replicas on loopback, tests/redis_topologies.py) against one node with
# 500 on the same cluster and on the embedded broker, and the 3 nodes behind HAProxy;
# each shape twice, interleaved; then the publish script alone. About 10 minutes (more
# when it waits for a quiet machine, SCALEOUT_WAIT_QUIET seconds at most per run, default
# 30), so only when named: `loadtests/bench.sh scaleout` (SCALEOUT_RATE events/s, default
# 10). Writes $OUT/scaleout.json and $OUT/scaleout.md.
if named scaleout; then
  echo "== scaleout (3 nodes x 500 on a Redis Cluster vs 1 node x 500, ${SCALEOUT_RATE:-10} events/s)"
  "$PY" -m loadtests scaleout --rate "${SCALEOUT_RATE:-10}" --wait-quiet "${SCALEOUT_WAIT_QUIET:-30}" \
    --json "$OUT/scaleout.json" --markdown "$OUT/scaleout.md" || echo "scaleout: see $OUT/scaleout.md"
fi
# What each connection's way back costs one node on Redis (issue 15's reconnect storm):
# server CPU per connect, join, leave and rejoin with since, 40 rooms of 50, twice. About
# 3 minutes, only when named: `loadtests/bench.sh joincost`; JOINCOST_BEFORE=/path/to/tree
# measures that checkout too, interleaved (git archive <commit> | tar -x -C /path/to/tree).
if named joincost; then
  echo "== joincost (40 rooms of 50 on Redis)"
  before=()
  [[ -n ${JOINCOST_BEFORE:-} ]] && before=(--tree "before=$JOINCOST_BEFORE")
  "$PY" -m loadtests joincost "${before[@]}" --json "$OUT/joincost.json" \
    | tee "$OUT/joincost.md" || echo "joincost failed"
fi
if named soak-memory; then
  echo "== soak-memory (1 node, embedded broker, ${SOAK_MEMORY_SECONDS:-300} s)"
  "$PY" -m loadtests soak --broker memory --nodes 1 --duration "${SOAK_MEMORY_SECONDS:-300}" \
    --json "$OUT/soak-memory.json" --markdown "$OUT/soak-memory.md" \
    || echo "soak-memory: FAIL, see $OUT/soak-memory.md"
fi
exit 0
