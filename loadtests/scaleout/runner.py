"""Run every shape ``repeats`` times on fresh nodes, and turn the readings into figures.

One Redis Cluster (3 primaries, 3 replicas, loopback, a temporary directory)
serves every cluster run of an invocation, each run under a key prefix of its
own that is deleted after it; the cluster is stopped at the end. Nodes are
``classroom serve`` processes on free loopback ports, started fresh for each
run and stopped by their pids (``loadtests/servers.py``). Shapes are
interleaved (cluster3, cluster1, memory1, cluster3, ...) so that drift in
what else the shared machine does hits all of them alike.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import secrets
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import redis

from loadtests.compare import background_load, raise_file_limit
from loadtests.plan import Credentials
from loadtests.report import machine
from loadtests.runner import Coordinator, Options, Second
from loadtests.scaleout.balancer import balancer
from loadtests.scaleout.broker import publish_cost
from loadtests.scaleout.config import ScaleoutConfig, Shape, Timeline, shape
from loadtests.scaleout.probe import Probe, Reading
from loadtests.scenarios import build_scenario
from loadtests.servers import clean_environment, started_nodes
from loadtests.serverside import summary_ms
from loadtests.stats import Histogram
from tests.redis_topologies import ClusterSet

TENANT = "scaleout"
MIN_IDLE = 3  # seconds: the shortest idle window the analysis accepts
QUIET_PCT = 25.0  # % of one core other processes may use for the machine to count as quiet
RATE_LIMIT = "1000"  # the trainer's 20 events/s are far below; no refusal from the generator
# Commands of the Redis primaries reported per publication (the publish script's own calls
# and whatever else a node sends while the room is live).
SAMPLE_EVENTS: list[bytes] = []  # events the cluster runs stored, for the broker measurement
REPORTED_CALLS = ("evalsha", "eval", "hincrby", "xadd", "pexpire", "set", "spublish",
                  "publish", "zadd", "hset", "get", "exists", "xrange", "ssubscribe")


@dataclass
class Identity:
    """The tenant, secrets and key prefixes the nodes and clients of one invocation share."""

    run_id: str = field(default_factory=lambda: secrets.token_hex(4))
    secret: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    metrics_token: str = field(default_factory=lambda: secrets.token_urlsafe(32))

    @property
    def credentials(self) -> Credentials:
        """What the clients sign their tokens with."""
        return Credentials(TENANT, self.secret)

    def prefix(self, name: str, repeat: int) -> str:
        """The Redis key prefix of one run (and nothing else)."""
        return f"lt-scale-{self.run_id}-{name}-{repeat}"

    def environment(self) -> dict[str, str]:
        """A node's environment without the broker; every node of a run gets the same."""
        tenants = {TENANT: {"secrets": [self.secret], "api_key": secrets.token_urlsafe(24)}}
        return {**clean_environment(), "CLASSROOM_TENANTS": json.dumps(tenants),
                "CLASSROOM_SECRET": self.run_id + secrets.token_urlsafe(24),
                "CLASSROOM_METRICS_TOKEN": self.metrics_token,
                "CLASSROOM_RATE_LIMIT_PER_SECOND": RATE_LIMIT,
                "CLASSROOM_RATE_LIMIT_BURST": RATE_LIMIT,
                "CLASSROOM_LOG_LEVEL": "warning"}


def delete_cluster_prefix(cluster: ClusterSet, prefix: str) -> int:
    """Delete the keys under ``<prefix>:`` on every primary (one DEL per key: keys of
    different slots cannot share a command)."""
    removed = 0
    for primary in cluster.primaries():
        client = primary.client()
        try:
            for key in client.scan_iter(match=f"{prefix}:*", count=1000):
                with contextlib.suppress(redis.ResponseError):  # moved meanwhile: not ours
                    removed += int(client.delete(key))
        finally:
            client.close()
    return removed


def last_event(cluster: ClusterSet, prefix: str) -> bytes | None:
    """The data of the newest stored event under ``prefix`` (the room's stream): what the
    publish script stored and sent, to size the broker measurement after it."""
    for primary in cluster.primaries():
        client = primary.client()
        try:
            for key in client.scan_iter(match=f"{prefix}:*:stream", count=1000):
                entries = client.xrevrange(key, count=1) or []
                if entries and entries[0][1]:
                    data = dict(entries[0][1]).get(b"d")
                    if isinstance(data, bytes):
                        return data
        except redis.RedisError:
            continue
        finally:
            client.close()
    return None


def _delta(after: float | None, before: float | None) -> float | None:
    return None if after is None or before is None else after - before


def _round(value: float | None, digits: int = 1) -> float | None:
    return None if value is None else round(value, digits)


def _per(value: float | None, count: float) -> float | None:
    return None if value is None or count <= 0 else value / count


def _node_figures(index: int, dealt: int, readings: Mapping[int, Reading],
                  timeline: Timeline) -> dict[str, Any]:
    """One node over the idle and the measured window. Its connections are its own gauge
    at the end of the idle window (``dealt``, what round-robin gave it, if unread)."""
    first, last = readings[timeline.measure_from], readings[timeline.measure_to]
    idle_a, idle_b = readings[timeline.idle_from], readings[timeline.publish_from]
    base = readings.get(0)
    a, b, ia, ib = (r.nodes[index] for r in (first, last, idle_a, idle_b))
    gauge = ib.connections if ib is not None else None
    connections = round(gauge) if gauge is not None else dealt
    result: dict[str, Any] = {"connections": connections}
    if a is None or b is None:
        return result
    seconds = last.at - first.at
    cpu = b.cpu_seconds - a.cpu_seconds
    frames = _delta(b.frames_written, a.frames_written)
    result.update({
        "deliveries_per_s": _round(_per(frames, seconds)),
        "cpu_pct": round(100 * cpu / seconds, 1),
        "us_per_delivery": _round(_per(cpu * 1e6, frames or 0.0), 2),
        "publish_to_write_ms": summary_ms(a.buckets, b.buckets),
        "rss_mb_end": round(b.rss_bytes / 2**20, 1),
    })
    if ia is not None and ib is not None:
        result["idle_cpu_pct"] = round(100 * (ib.cpu_seconds - ia.cpu_seconds)
                                       / (idle_b.at - idle_a.at), 2)
        start = base.nodes[index] if base is not None else None
        if start is not None and connections:
            # Joining: from before the first connect to the start of the idle window.
            result["join_cpu_ms_per_connection"] = round(
                (ia.cpu_seconds - start.cpu_seconds) * 1000 / connections, 3)
            result["rss_mb_before_clients"] = round(start.rss_bytes / 2**20, 1)
            result["rss_mb_idle"] = round(ib.rss_bytes / 2**20, 1)
            result["rss_kib_per_connection"] = round(
                (ib.rss_bytes - start.rss_bytes) / connections / 1024, 1)
    return result


def _redis_figures(readings: Mapping[int, Reading], timeline: Timeline,
                   primaries: set[int], publications: int, joins: int) -> dict[str, Any]:
    """Each Redis process over the measured window (per publication), the idle one, and
    the joining before it (per connection that joined)."""
    first, last = readings[timeline.measure_from], readings[timeline.measure_to]
    idle_a, idle_b = readings[timeline.idle_from], readings[timeline.publish_from]
    seconds, idle_seconds = last.at - first.at, idle_b.at - idle_a.at
    processes: dict[str, Any] = {}
    for port in sorted(first.redis):
        a, b = first.redis[port], last.redis[port]
        ia, ib = idle_a.redis.get(port), idle_b.redis.get(port)
        if a is None or b is None:
            processes[str(port)] = {"role": "primary" if port in primaries else "replica",
                                    "error": "no INFO"}
            continue
        cpu = b.cpu_seconds - a.cpu_seconds
        idle_pct = (None if ia is None or ib is None
                    else 100 * (ib.cpu_seconds - ia.cpu_seconds) / idle_seconds)
        calls = {name: b.calls.get(name, 0) - a.calls.get(name, 0) for name in b.calls}
        start = readings[0].redis.get(port) if 0 in readings else None
        joining = (None if start is None or ia is None
                   else _per((ia.cpu_seconds - start.cpu_seconds) * 1e6, joins))

        def net(after: int, before: int, idle_after: int | None, idle_before: int | None,
                ) -> float | None:
            """A counter's growth per publication, less its idle-window rate."""
            if idle_after is None or idle_before is None:
                return None
            idle_rate = (idle_after - idle_before) / idle_seconds
            return _per(after - before - idle_rate * seconds, publications)

        scripts = net(b.usec.get("evalsha", 0), a.usec.get("evalsha", 0),
                      ib.usec.get("evalsha", 0) if ib else None,
                      ia.usec.get("evalsha", 0) if ia else None)
        processes[str(port)] = {
            "role": "primary" if port in primaries else "replica",
            "cpu_pct": round(100 * cpu / seconds, 2),
            "idle_cpu_pct": _round(idle_pct, 2),
            "join_cpu_us_per_connection": _round(joining),
            "cpu_us_per_publication": _round(_per(cpu * 1e6, publications)),
            "cpu_us_per_publication_net_of_idle": _round(_per(
                (cpu - (idle_pct or 0.0) / 100 * seconds) * 1e6, publications)),
            "net_output_bytes_per_publication": _round(_per(
                b.net_output_bytes - a.net_output_bytes, publications)),
            "repl_output_bytes_per_publication": _round(_per(
                b.repl_output_bytes - a.repl_output_bytes, publications)),
            "net_output_bytes_per_publication_net_of_idle": _round(net(
                b.net_output_bytes, a.net_output_bytes,
                ib.net_output_bytes if ib else None, ia.net_output_bytes if ia else None)),
            "repl_output_bytes_per_publication_net_of_idle": _round(net(
                b.repl_output_bytes, a.repl_output_bytes,
                ib.repl_output_bytes if ib else None, ia.repl_output_bytes if ia else None)),
            "script_us_per_publication": _round(_per(
                b.usec.get("evalsha", 0) - a.usec.get("evalsha", 0), publications), 2),
            "script_us_per_publication_net_of_idle": _round(scripts, 2),
            "us_per_call": {name: round((b.usec.get(name, 0) - a.usec.get(name, 0)) / n, 2)
                            for name, n in sorted(calls.items())
                            if n and name in REPORTED_CALLS},
            "commands_per_publication": _round(_per(b.commands - a.commands, publications), 2),
            "calls_per_publication": {name: round(n / publications, 2)
                                      for name, n in sorted(calls.items())
                                      if n and publications and name in REPORTED_CALLS},
        }
    measured = [p for p in processes.values() if "cpu_pct" in p]
    owner = max((p for p in measured if p["role"] == "primary"),
                key=lambda p: p["calls_per_publication"].get("evalsha", 0), default=None)

    def total(role: str, key: str) -> float | None:
        values = [p[key] for p in measured if p["role"] == role and p[key] is not None]
        return round(sum(values), 2) if values else None

    def of_owner(key: str) -> Any:
        return owner[key] if owner else None

    return {
        "publications": publications,
        "processes": processes,
        "owner_shard": next((port for port, p in processes.items() if p is owner), None),
        "owner_shard_cpu_us_per_publication": of_owner("cpu_us_per_publication"),
        "owner_shard_cpu_us_per_publication_net_of_idle":
            of_owner("cpu_us_per_publication_net_of_idle"),
        "owner_shard_script_us_per_publication_net_of_idle":
            of_owner("script_us_per_publication_net_of_idle"),
        "owner_shard_net_output_bytes_per_publication":
            of_owner("net_output_bytes_per_publication"),
        "owner_shard_net_output_bytes_per_publication_net_of_idle":
            of_owner("net_output_bytes_per_publication_net_of_idle"),
        "owner_shard_repl_output_bytes_per_publication_net_of_idle":
            of_owner("repl_output_bytes_per_publication_net_of_idle"),
        "primaries_cpu_us_per_publication": total("primary", "cpu_us_per_publication"),
        "primaries_cpu_us_per_publication_net_of_idle":
            total("primary", "cpu_us_per_publication_net_of_idle"),
        "primaries_cpu_pct": total("primary", "cpu_pct"),
        "primaries_join_cpu_us_per_connection": total("primary", "join_cpu_us_per_connection"),
        "primaries_idle_cpu_pct": total("primary", "idle_cpu_pct"),
        "replicas_cpu_pct": total("replica", "cpu_pct"),
    }


def _process_figures(name: str, readings: Mapping[int, Reading], timeline: Timeline,
                     deliveries_per_s: float, connections: int) -> dict[str, Any]:
    """Another process (the balancer) over the same windows: CPU per delivery it carried,
    RSS per client connection (each is two sockets for it: client and node side)."""
    first, last = readings[timeline.measure_from], readings[timeline.measure_to]
    idle_a, idle_b = readings[timeline.idle_from], readings[timeline.publish_from]
    base = readings.get(0)
    a, b = first.others.get(name), last.others.get(name)
    ia, ib = idle_a.others.get(name), idle_b.others.get(name)
    start = base.others.get(name) if base is not None else None
    if a is None or b is None:
        return {"error": "gone"}
    seconds = last.at - first.at
    cpu = b.cpu_seconds - a.cpu_seconds
    result: dict[str, Any] = {
        "cpu_pct": round(100 * cpu / seconds, 1),
        "us_per_delivery": _round(_per(cpu * 1e6, deliveries_per_s * seconds), 2),
        "rss_mb_end": round(b.rss_bytes / 2**20, 1),
    }
    if ia is not None and ib is not None:
        result["idle_cpu_pct"] = round(100 * (ib.cpu_seconds - ia.cpu_seconds)
                                       / (idle_b.at - idle_a.at), 2)
        if start is not None and connections:
            result["rss_mb_before_clients"] = round(start.rss_bytes / 2**20, 1)
            result["rss_mb_idle"] = round(ib.rss_bytes / 2**20, 1)
            result["rss_kib_per_connection"] = round(
                (ib.rss_bytes - start.rss_bytes) / connections / 1024, 1)
    return result


def _other_cpu(k: int, readings: Mapping[int, Reading], second: Second) -> float | None:
    """CPU (% of one core) that processes outside the run took in second ``k``: the
    machine's busy time less interrupts, the nodes, Redis, the balancer and the clients."""
    a, b = readings.get(k - 1), readings.get(k)
    if a is None or b is None or b.at <= a.at:
        return None
    busy, irq = _delta(b.machine_busy, a.machine_busy), _delta(b.machine_irq, a.machine_irq)
    if busy is None:
        return None
    ours = second.generator_cpu + (irq or 0.0)
    for before, after in zip(a.nodes, b.nodes, strict=True):
        if before is not None and after is not None:
            ours += after.cpu_seconds - before.cpu_seconds
    for port, after_redis in b.redis.items():
        before_redis = a.redis.get(port)
        if before_redis is not None and after_redis is not None:
            ours += after_redis.cpu_seconds - before_redis.cpu_seconds
    for name, after_other in b.others.items():
        before_other = a.others.get(name)
        if before_other is not None and after_other is not None:
            ours += after_other.cpu_seconds - before_other.cpu_seconds
    return max(0.0, 100 * (busy - ours) / (b.at - a.at))


def analyse(shape_: Shape, timeline: Timeline, report: Mapping[str, Any],
            seconds: Mapping[int, Second], readings: Mapping[int, Reading],
            primaries: set[int]) -> dict[str, Any]:
    """The run's figures: clients, each node, each Redis process, and the machine.

    The idle window starts after the last second in which anyone was still joining (a
    ramp slowed by a busy machine runs late), keeping at least MIN_IDLE seconds; joins
    left in either window are reported (``windows_clean``)."""
    target = report["connections"]["target"]

    def joining(k: int) -> bool:
        counts = seconds[k].tally.counts if k in seconds else None
        return counts is not None and (seconds[k].online < target
                                       or bool(counts["connects"] + counts["reconnects"]))

    last_join = max((k for k in range(timeline.idle_from + 1, timeline.publish_from + 1)
                     if joining(k)), default=None)
    if last_join is not None:
        timeline = dataclasses.replace(
            timeline, idle_from=min(last_join, timeline.publish_from - MIN_IDLE))
    rows = range(timeline.measure_from + 1, timeline.measure_to + 1)
    present = [seconds[k] for k in rows if k in seconds]
    window_errors = sum(sum(seconds[k].tally.errors.values()) for k in rows if k in seconds)
    latency, quiet = Histogram(), Histogram()
    quiet_seconds = 0
    deliveries = publications = 0
    generator = 0.0
    for k in rows:
        if k not in seconds:
            continue
        other = _other_cpu(k, readings, seconds[k])
        if other is not None and other < QUIET_PCT:
            quiet.merge(seconds[k].tally.latency)
            quiet_seconds += 1
    for second in present:
        latency.merge(second.tally.latency)
        deliveries += second.tally.counts["deliveries"]
        publications += second.tally.counts["commands"]
        generator += second.generator_cpu
    wall = len(present) or 1
    late = [k for k in range(timeline.idle_from + 1, timeline.measure_to + 1) if joining(k)]
    nodes = [_node_figures(n, connections, readings, timeline)
             for n, connections in enumerate(shape_.per_node)]
    first, last = readings[timeline.measure_from], readings[timeline.measure_to]
    span = last.at - first.at
    result: dict[str, Any] = {
        "shape": shape_.name, "nodes": shape_.nodes, "members": shape_.members,
        "rooms": shape_.rooms,
        "broker": shape_.broker, "timeline": timeline.to_dict(),
        "online": report["connections"]["peak_online"], "target": report["connections"]["target"],
        "errors": report["errors"]["total"], "error_codes": report["errors"]["by_code"],
        "error_samples": report["errors"]["samples"], "errors_in_window": window_errors,
        "gaps": report["recovery"]["gaps"], "duplicates": report["recovery"]["duplicates"],
        "gap_check": report["recovery"]["gap_check"],
        "windows_clean": not late, "seconds_with_joins_in_windows": late,
        "publications": publications,
        "publications_per_s": round(publications / wall, 2),
        "deliveries_per_s": round(deliveries / wall, 1),
        "deliveries_per_publication": round(deliveries / publications, 1) if publications else None,
        "latency_ms": latency.summary_ms(),
        "latency_ms_all_events": report["latency_ms"],
        # Only the seconds of the window in which other processes took < QUIET_PCT of a core.
        "latency_ms_quiet_seconds": {**quiet.summary_ms(), "seconds": quiet_seconds},
        "node": nodes,
        "generator_cpu_pct": round(100 * generator / wall, 1),
    }
    cpu_nodes = sum(n.get("cpu_pct", 0.0) for n in nodes)
    frames = [n.get("deliveries_per_s") or 0.0 for n in nodes]
    result["server_cpu_pct_total"] = round(cpu_nodes, 1)
    result["server_us_per_delivery_all_nodes"] = (
        round(cpu_nodes * 1e4 / sum(frames), 2) if sum(frames) else None)
    others_cpu = 0.0
    if shape_.balancer:
        result["balancer"] = _process_figures(
            "haproxy", readings, timeline, sum(frames),
            sum(n["connections"] for n in nodes))
        others_cpu = result["balancer"].get("cpu_pct", 0.0)
    redis_cpu = 0.0
    if shape_.broker == "cluster":
        result["redis"] = _redis_figures(readings, timeline, primaries, publications,
                                         shape_.clients)
        redis_cpu = sum(p.get("cpu_pct", 0.0) for p in result["redis"]["processes"].values())
    busy = _delta(last.machine_busy, first.machine_busy)
    irq = _delta(last.machine_irq, first.machine_irq)
    if busy is not None and span > 0:
        busy_pct = 100 * busy / span
        result["machine"] = {
            "busy_pct_of_one_core": round(busy_pct, 1),
            "irq_pct_of_one_core": _round(100 * irq / span if irq is not None else None),
            "redis_pct_of_one_core": round(redis_cpu, 1),
            "other_pct_of_one_core": round(max(0.0, busy_pct - 100 * (irq or 0.0) / span
                                                - cpu_nodes - redis_cpu - others_cpu
                                                - result["generator_cpu_pct"]), 1),
        }
    return result


def await_quiet(seconds: float) -> float | None:
    """Wait up to ``seconds`` for other processes to use less than QUIET_PCT of a core;
    the load last seen (% of one core), measured over one second even when not waiting."""
    deadline = time.monotonic() + seconds
    busy = background_load(1.0)
    while busy is not None and busy > QUIET_PCT and time.monotonic() < deadline:
        busy = background_load(1.0)
    return busy


WARMUP_SECONDS = 5.0


def _warm_up(shape_: Shape, config: ScaleoutConfig, options: Options) -> dict[str, Any] | None:
    """Join ``config.warmup`` clients per node to a session of their own for a few seconds
    (publishing at the run's rate), then leave; what they saw. Nothing is sampled."""
    if config.warmup <= 0:
        return None
    scenario = build_scenario("steady", {
        "students": config.warmup * shape_.nodes - 1, "duration": WARMUP_SECONDS,
        "connect_rate": 1000.0, "steady_rate": config.rate, "steady_from": 2.0})
    quiet = dataclasses.replace(options, on_second=None, progress=None,
                                processes=min(options.processes, scenario.clients))
    report = Coordinator(scenario, quiet).run()
    return {"clients": scenario.clients, "online": report["connections"]["peak_online"],
            "errors": report["errors"]["total"], "error_codes": report["errors"]["by_code"]}


def measure(shape_: Shape, repeat: int, config: ScaleoutConfig, identity: Identity,
            cluster: ClusterSet | None, progress: TextIO | None,
            reports: Path | None) -> dict[str, Any]:
    """Start the shape's nodes, run the room against them, stop them; the run's figures."""
    timeline = Timeline.of(shape_.clients, config)
    scenario = build_scenario("steady", {
        "rooms": shape_.rooms, "students": shape_.members - 1,
        "duration": float(timeline.duration),
        "connect_rate": config.connect_rate, "steady_rate": config.rate,
        "steady_from": float(timeline.publish_from)})
    env = identity.environment()
    prefix = identity.prefix(shape_.name, repeat)
    if shape_.broker == "cluster":
        if cluster is None:
            raise RuntimeError("a cluster shape needs the cluster")
        env.update({"REDIS_URL": cluster.url, "CLASSROOM_REDIS_PREFIX": prefix})
    busy = await_quiet(config.wait_quiet)
    began = time.time()
    primaries = {n.port for n in cluster.primaries()} if cluster else set()
    ports = [n.port for n in cluster.nodes] if cluster and shape_.broker == "cluster" else []
    with contextlib.ExitStack() as stack:
        nodes = stack.enter_context(
            started_nodes(shape_.nodes, env, f"{shape_.name}-{repeat}-node"))
        urls = [f"ws://127.0.0.1:{node.port}/ws" for node in nodes]
        targets = tuple(urls) if len(urls) > 1 else ()
        others: dict[str, int] = {}
        if shape_.balancer:
            pid, port = stack.enter_context(
                balancer([node.port for node in nodes], maxconn=4 * shape_.clients + 100))
            others["haproxy"] = pid
            targets = (f"ws://127.0.0.1:{port}/ws",)
        probe = Probe([(node.pid, url) for node, url in zip(nodes, urls, strict=True)],
                      ports, identity.metrics_token, others)
        stack.callback(probe.close)
        # Node 0 is the one the coordinator samples and scrapes; clients go to ``targets``.
        options = Options(url=urls[0], credentials=identity.credentials,
                          processes=min(config.processes, scenario.clients),
                          server_pid=nodes[0].pid, metrics_token=identity.metrics_token,
                          urls=targets, on_second=probe, progress=progress)
        warmup = _warm_up(shape_, config, options)
        coordinator = Coordinator(scenario, options)
        report = coordinator.run()
    event: bytes | None = None
    if cluster is not None and shape_.broker == "cluster":
        event = last_event(cluster, prefix)
        delete_cluster_prefix(cluster, prefix)
    if reports is not None:
        reports.mkdir(parents=True, exist_ok=True)
        (reports / f"scaleout-{shape_.name}-{repeat}.json").write_text(
            json.dumps(report, indent=2) + "\n")
    missing = [k for k in (0, timeline.idle_from, timeline.publish_from, timeline.measure_from,
                           timeline.measure_to) if k not in probe.readings]
    if missing:
        raise RuntimeError(f"{shape_.name} run {repeat}: no reading at seconds {missing}")
    result = analyse(shape_, timeline, report, coordinator.seconds, probe.readings, primaries)
    result["event_bytes"] = len(event) if event is not None else None
    if event is not None:
        SAMPLE_EVENTS.append(event)
    result.update({"repeat": repeat, "warmup": warmup, "busy_before_pct_of_one_core": busy,
                   "seconds": round(time.time() - began, 1)})
    return result


def one_line(result: Mapping[str, Any]) -> str:
    """A progress line for stderr."""
    lat = result["latency_ms"]
    nodes = ", ".join(f"{n.get('deliveries_per_s')}/s {n.get('cpu_pct')}% "
                      f"{n.get('us_per_delivery')} us" for n in result["node"])
    redis_part = ""
    if "redis" in result:
        redis_part = (f"; redis primaries {result['redis']['primaries_cpu_us_per_publication']}"
                      " us/publication")
    return (f"{result['online']}/{result['target']} online, {result['deliveries_per_s']} "
            f"deliveries/s, p50 {lat['p50']} p99 {lat['p99']} max {lat['max']} ms, "
            f"errors {result['errors']}; nodes: {nodes}{redis_part}; other CPU "
            f"{result.get('machine', {}).get('other_pct_of_one_core')}%")


def run_scaleout(config: ScaleoutConfig, command: str, progress: TextIO | None = None,
                 verbose: bool = False, reports: Path | None = None) -> dict[str, Any]:
    """Measure every shape ``config.repeats`` times; the JSON document."""
    raise_file_limit()
    identity = Identity()
    shapes = [shape(name, config) for name in config.shapes]
    runs: list[dict[str, Any]] = []
    began = time.time()
    with contextlib.ExitStack() as stack:
        cluster: ClusterSet | None = None
        if any(s.broker == "cluster" for s in shapes):
            root = stack.enter_context(tempfile.TemporaryDirectory(prefix="loadtests-scaleout-"))
            cluster = ClusterSet.start(Path(root))
            stack.callback(cluster.stop)
        broker_runs: list[dict[str, Any]] = []
        for repeat in range(1, config.repeats + 1):
            for shape_ in shapes:
                if progress is not None:
                    print(f"[scaleout] {shape_.name} run {repeat}: {shape_.nodes} node(s), "
                          f"{shape_.rooms} x {shape_.members} members, {config.rate:g} "
                          "events/s per session",
                          file=progress, flush=True)
                result = measure(shape_, repeat, config, identity, cluster,
                                 progress if verbose else None, reports)
                runs.append(result)
                if progress is not None:
                    print(f"[scaleout] {shape_.name} run {repeat}: {one_line(result)}",
                          file=progress, flush=True)
            if cluster is not None and config.broker_publications > 0:
                await_quiet(config.wait_quiet)
                payload = SAMPLE_EVENTS[-1] if SAMPLE_EVENTS else b"x" * 400
                for found in publish_cost(cluster.url, [n.port for n in cluster.primaries()],
                                          identity.prefix("broker", repeat), payload,
                                          config.broker_publications):
                    found["repeat"] = repeat
                    broker_runs.append(found)
                    if progress is not None:
                        print(f"[scaleout] broker run {repeat}: {found}", file=progress,
                              flush=True)
                delete_cluster_prefix(cluster, identity.prefix("broker", repeat))
    return {"command": command, "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "seconds": round(time.time() - began, 1), "machine": machine(),
            "redis_version": _redis_version(), "config": config.to_dict(), "runs": runs,
            "broker": broker_runs}


def _redis_version() -> str | None:
    import subprocess

    from tests.redis_topologies import binary

    with contextlib.suppress(OSError, RuntimeError, subprocess.SubprocessError):
        out = subprocess.run([binary("redis-server"), "--version"], capture_output=True,  # noqa: S603
                             text=True, timeout=10, check=False).stdout
        return out.split("v=", 1)[1].split()[0] if "v=" in out else out.strip() or None
    return None
