"""One run of one shape: start its nodes (and the balancer), warm them up, run the room
against them, stop them, and analyse what was read meanwhile.

The processes of a topology exist only inside ``measure``: every run gets fresh
nodes, started and stopped by their pids (``loadtests/servers.py``), and its keys
are gone from the cluster before the next run starts.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import time
from pathlib import Path
from typing import Any, TextIO

from loadtests.host import background_load
from loadtests.runner import Coordinator, Options
from loadtests.scaleout.analysis import QUIET_PCT, analyse
from loadtests.scaleout.balancer import balancer
from loadtests.scaleout.config import ScaleoutConfig, Shape, Timeline
from loadtests.scaleout.isolation import Identity, delete_cluster_prefix, last_event
from loadtests.scaleout.probe import Probe
from loadtests.scenarios import build_scenario
from loadtests.servers import started_nodes
from tests.redis_topologies import ClusterSet

SAMPLE_EVENTS: list[bytes] = []  # events the cluster runs stored, for the broker measurement


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
