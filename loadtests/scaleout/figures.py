"""Each process of a scaleout run over its windows: a node, a Redis process, the balancer.

The probe (``probe.py``) reads every process once a second; the readings at the ends
of the idle and the measured window become CPU, memory and bytes per delivery, per
publication and per connection here, one function per kind of process, so that each
cost is defined once and ``analysis.py`` only adds them up.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from loadtests.scaleout.config import Timeline
from loadtests.scaleout.probe import Reading
from loadtests.serverside import summary_ms

# Commands of the Redis primaries reported per publication (the publish script's own calls
# and whatever else a node sends while the room is live).
REPORTED_CALLS = ("evalsha", "eval", "hincrby", "xadd", "pexpire", "set", "spublish",
                  "publish", "zadd", "hset", "get", "exists", "xrange", "ssubscribe")


def growth(after: float | None, before: float | None) -> float | None:
    """How much a counter grew between two readings; unknown if either is."""
    return None if after is None or before is None else after - before


def rounded(value: float | None, digits: int = 1) -> float | None:
    """``round`` that passes an unknown figure through as unknown."""
    return None if value is None else round(value, digits)


def _per(value: float | None, count: float) -> float | None:
    return None if value is None or count <= 0 else value / count


def node_figures(index: int, dealt: int, readings: Mapping[int, Reading],
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
    frames = growth(b.frames_written, a.frames_written)
    result.update({
        "deliveries_per_s": rounded(_per(frames, seconds)),
        "cpu_pct": round(100 * cpu / seconds, 1),
        "us_per_delivery": rounded(_per(cpu * 1e6, frames or 0.0), 2),
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


def redis_figures(readings: Mapping[int, Reading], timeline: Timeline,
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
            "idle_cpu_pct": rounded(idle_pct, 2),
            "join_cpu_us_per_connection": rounded(joining),
            "cpu_us_per_publication": rounded(_per(cpu * 1e6, publications)),
            "cpu_us_per_publication_net_of_idle": rounded(_per(
                (cpu - (idle_pct or 0.0) / 100 * seconds) * 1e6, publications)),
            "net_output_bytes_per_publication": rounded(_per(
                b.net_output_bytes - a.net_output_bytes, publications)),
            "repl_output_bytes_per_publication": rounded(_per(
                b.repl_output_bytes - a.repl_output_bytes, publications)),
            "net_output_bytes_per_publication_net_of_idle": rounded(net(
                b.net_output_bytes, a.net_output_bytes,
                ib.net_output_bytes if ib else None, ia.net_output_bytes if ia else None)),
            "repl_output_bytes_per_publication_net_of_idle": rounded(net(
                b.repl_output_bytes, a.repl_output_bytes,
                ib.repl_output_bytes if ib else None, ia.repl_output_bytes if ia else None)),
            "script_us_per_publication": rounded(_per(
                b.usec.get("evalsha", 0) - a.usec.get("evalsha", 0), publications), 2),
            "script_us_per_publication_net_of_idle": rounded(scripts, 2),
            "us_per_call": {name: round((b.usec.get(name, 0) - a.usec.get(name, 0)) / n, 2)
                            for name, n in sorted(calls.items())
                            if n and name in REPORTED_CALLS},
            "commands_per_publication": rounded(_per(b.commands - a.commands, publications), 2),
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


def process_figures(name: str, readings: Mapping[int, Reading], timeline: Timeline,
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
        "us_per_delivery": rounded(_per(cpu * 1e6, deliveries_per_s * seconds), 2),
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
