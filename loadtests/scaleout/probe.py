"""Once a second, what the coordinator does not read itself: every node and every Redis.

The coordinator samples one server pid; a scale-out run has several nodes and
a Redis Cluster. The probe is called on the same timeline (second k, as the
report's rows) and keeps cumulative readings only: each process's own CPU
seconds from ``/proc`` (the figure least distorted by other processes on a
shared machine: waiting for a core costs latency, not CPU time), RSS, the
node's ``classroom_frames_written_total`` (deliveries it wrote), open
connections and publish-to-write histogram, each Redis process's ``INFO`` (CPU, network bytes,
per-command calls) and the machine's busy and interrupt time. Figures over a
window are then differences of two readings, exact to the sampling jitter.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field
from typing import Any

import redis

from loadtests.monitor import (
    ProcessSample,
    fetch_metrics,
    machine_cpu,
    machine_irq,
    sample_process,
)
from loadtests.serverside import Buckets, parse_buckets

FRAMES_WRITTEN = "classroom_frames_written_total"
CONNECTIONS = "classroom_connections"


@dataclass(frozen=True)
class NodeReading:
    """One node at one instant (cumulative since it started)."""

    cpu_seconds: float
    rss_bytes: int
    frames_written: float | None  # None when /metrics did not answer
    connections: float | None  # open WebSockets (the node's gauge)
    buckets: Buckets | None


@dataclass(frozen=True)
class RedisReading:
    """One Redis process at one instant, from ``INFO cpu stats commandstats``."""

    cpu_seconds: float  # used_cpu_sys + used_cpu_user: the whole process
    net_output_bytes: int  # everything written to clients (replies, pub/sub messages)
    repl_output_bytes: int  # written to its replicas
    commands: int  # total_commands_processed
    calls: dict[str, int] = field(default_factory=dict)  # per command, scripts' calls included
    usec: dict[str, int] = field(default_factory=dict)  # Redis' own time in each command


@dataclass(frozen=True)
class Reading:
    """Everything read at one second of the timeline."""

    at: float
    nodes: list[NodeReading | None]
    redis: dict[int, RedisReading | None]
    others: dict[str, ProcessSample | None]  # other processes by name (the balancer)
    machine_busy: float | None  # CPU seconds, all cores
    machine_total: float | None
    machine_irq: float | None


def metric(text: str, name: str) -> float | None:
    """An unlabelled sample (``name value``) in Prometheus text format."""
    for line in text.splitlines():
        if line.startswith(name + " "):
            with contextlib.suppress(ValueError):
                return float(line.split()[1])
    return None


def read_redis(client: redis.Redis) -> RedisReading | None:
    """``INFO`` of one Redis process; None when it does not answer."""
    try:
        info: dict[str, Any] = client.info("cpu")
        stats: dict[str, Any] = client.info("stats")
        commands: dict[str, Any] = client.info("commandstats")
    except (redis.RedisError, OSError):
        return None
    stats_of = {name.removeprefix("cmdstat_"): value for name, value in commands.items()
                if isinstance(value, dict)}
    calls = {name: int(value.get("calls", 0)) for name, value in stats_of.items()}
    usec = {name: int(value.get("usec", 0)) for name, value in stats_of.items()}
    return RedisReading(
        cpu_seconds=float(info["used_cpu_sys"]) + float(info["used_cpu_user"]),
        net_output_bytes=int(stats.get("total_net_output_bytes", 0)),
        repl_output_bytes=int(stats.get("total_net_repl_output_bytes", 0)),
        commands=int(stats.get("total_commands_processed", 0)), calls=calls, usec=usec)


class Probe:
    """Reads the nodes (pid, WebSocket URL), Redis processes (port) and other processes
    (name: pid) at every second."""

    def __init__(self, nodes: list[tuple[int, str]], redis_ports: list[int],
                 metrics_token: str, others: dict[str, int] | None = None) -> None:
        self.nodes = nodes
        self.others = others or {}
        self.token = metrics_token
        self.clients = {port: redis.Redis(host="127.0.0.1", port=port, socket_timeout=2,
                                          socket_connect_timeout=2) for port in redis_ports}
        self.readings: dict[int, Reading] = {}

    def __call__(self, second: int) -> None:
        """Take the reading of ``second`` (0: just before the clients start)."""
        at = time.time()
        nodes: list[NodeReading | None] = []
        for pid, url in self.nodes:
            process = sample_process(pid)
            text = fetch_metrics(url, token=self.token)
            nodes.append(None if process is None else NodeReading(
                process.cpu_seconds, process.rss_bytes,
                None if text is None else metric(text, FRAMES_WRITTEN),
                None if text is None else metric(text, CONNECTIONS),
                None if text is None else parse_buckets(text)))
        found = {port: read_redis(client) for port, client in self.clients.items()}
        others = {name: sample_process(pid) for name, pid in self.others.items()}
        machine, irq = machine_cpu(), machine_irq()
        self.readings[second] = Reading(at, nodes, found, others,
                                        machine[0] if machine else None,
                                        machine[1] if machine else None, irq)

    def close(self) -> None:
        """Close the Redis connections."""
        for client in self.clients.values():
            client.close()
