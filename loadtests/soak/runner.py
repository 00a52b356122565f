"""The soak from start to report: nodes, warm-up, baseline, the loop, the end, the verdict.

Phases, each sampled (every node's ``/debug/census`` after a full collection):

1. ``start``: fresh nodes;
2. warm-up: every room plays ``warmup_cycles`` sessions, then ``settle`` seconds
   idle, then the ``baseline``;
3. ``run``: for ``duration`` seconds every room plays sessions back to back
   (rooms staggered, so sessions start and end all the time), sampled every
   ``sample_every`` seconds;
4. ``ended`` when the last session has ended, ``final`` after ``settle`` more
   seconds; the verdict compares ``final`` with ``baseline``.

The generator runs on this process's own event loop: a soak's load is modest,
and what it measures is the server's memory, not its throughput.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import time
from dataclasses import dataclass, field
from typing import Any, TextIO

import uvloop

from loadtests.client import Recorder
from loadtests.plan import WorkerPlan
from loadtests.scenarios import Scenario
from loadtests.servers import ManagedServer, delete_prefixes
from loadtests.soak.config import SoakConfig
from loadtests.soak.nodes import Cluster, fetch_census, ws_url
from loadtests.soak.room import Live, Room
from loadtests.soak.verdict import verdict
from loadtests.stats import Tally

HEADLINE = ("rss_bytes", "gc_objects", "allocated_blocks", "asyncio_tasks")


@dataclass
class Soak:
    """One soak run and what it has sampled so far."""

    config: SoakConfig
    command: str = "python -m loadtests soak"
    progress: TextIO | None = None
    cluster: Cluster = field(init=False)
    recorder: Recorder = field(default_factory=Recorder)
    total: Tally = field(default_factory=Tally)
    live: Live = field(default_factory=Live)
    samples: list[dict[str, Any]] = field(default_factory=list)
    began: float = field(default_factory=time.time)

    def __post_init__(self) -> None:
        self.cluster = Cluster(self.config)

    def _plans(self, nodes: list[ManagedServer]) -> list[list[WorkerPlan]]:
        """Per node, one plan per encoding: people speak JSON or MessagePack by seat."""
        config = self.config
        plans = []
        for index, node in enumerate(nodes):
            plans.append([
                WorkerPlan(worker=index, url=ws_url(node), run_id=self.cluster.run_id,
                           scenario=Scenario(name="soak", rooms=config.rooms,
                                             students=config.students,
                                             duration=config.session_seconds,
                                             encoding=encoding, progress_every=1.0),
                           credentials=self.cluster.credentials)
                for encoding in ("json", "msgpack")])
        return plans

    async def _sample(self, nodes: list[ManagedServer], phase: str,
                      keep: bool = False) -> list[dict[str, Any] | None]:
        """Every node's census now; the full class counts are kept only when ``keep``."""
        token = self.cluster.metrics_token
        found = await asyncio.gather(*(asyncio.to_thread(fetch_census, node, token, True)
                                       for node in nodes))
        self.total.merge(self.recorder.swap())
        row: dict[str, Any] = {"t": round(time.time() - self.began, 1), "phase": phase,
                               "live_sessions": self.live.sessions,
                               "live_people": self.live.people, "nodes": []}
        for census in found:
            if census is None:
                row["nodes"].append(None)
                continue
            entry = {name: census.get(name) for name in HEADLINE}
            entry["structures"] = census.get("structures", {})
            if keep:
                entry["types"] = census.get("types", {})
            row["nodes"].append(entry)
        self.samples.append(row)
        self._say(row)
        return list(found)

    def _say(self, row: dict[str, Any]) -> None:
        if self.progress is None:
            return
        parts = []
        for index, node in enumerate(row["nodes"]):
            if node is None:
                parts.append(f"n{index} -")
                continue
            s = node["structures"]
            parts.append(f"n{index} {(node['rss_bytes'] or 0) / 2**20:.1f} MB "
                         f"{node['gc_objects']} objs conn {s.get('connections')} "
                         f"runtimes {s.get('stream_runtimes')}")
        self.progress.write(f"[soak {row['t']:>7.1f}s {row['phase']:<8}] sessions "
                            f"{row['live_sessions']} people {row['live_people']} | "
                            + " | ".join(parts) + "\n")
        self.progress.flush()

    async def _sampler(self, nodes: list[ManagedServer]) -> None:
        while True:
            await asyncio.sleep(self.config.sample_every)
            await self._sample(nodes, "run")

    async def play(self, nodes: list[ManagedServer]) -> dict[str, Any]:
        """Every phase against running nodes; the report."""
        config = self.config
        plans = self._plans(nodes)
        rooms = [Room(index, config, plans, self.cluster.run_id, self.recorder, self.live)
                 for index in range(config.rooms)]
        await self._sample(nodes, "start", keep=True)
        for _ in range(config.warmup_cycles):
            await asyncio.gather(*(room.session() for room in rooms))
        await asyncio.sleep(config.settle)
        baseline = await self._sample(nodes, "baseline", keep=True)
        until = time.time() + config.duration
        sampler = asyncio.create_task(self._sampler(nodes))
        try:
            stagger = config.session_seconds / config.rooms
            await asyncio.gather(*(room.loop(until, index * stagger)
                                   for index, room in enumerate(rooms)))
        finally:
            sampler.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sampler
        await self._sample(nodes, "ended")
        await asyncio.sleep(config.settle)
        final = await self._sample(nodes, "final", keep=True)
        return {
            "command": self.command,
            "config": config.to_dict(),
            "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.began)),
            "wall_seconds": round(time.time() - self.began, 1),
            "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0]},
            "nodes": [{"name": node.name, "pid": node.pid, "port": node.port}
                      for node in nodes],
            "sessions": {"played": sum(room.cycle for room in rooms),
                         "ended": self.total.counts["sessions_ended"],
                         "abandoned": self.total.counts["sessions_abandoned"]},
            "generator": {"counts": dict(sorted(self.total.counts.items())),
                          "errors": dict(sorted(self.total.errors.items())),
                          "error_samples": self.recorder.samples},
            "samples": self.samples,
            "verdict": verdict(config, baseline, final),
        }


def run_soak(config: SoakConfig, command: str = "python -m loadtests soak",
             progress: TextIO | None = None) -> dict[str, Any]:
    """Start the nodes, play the soak, stop the nodes, clean Redis; the report."""
    config.validate()
    soak = Soak(config, command=command, progress=progress)
    cluster = soak.cluster
    removed = 0
    try:
        with cluster.nodes() as nodes:
            report = uvloop.run(soak.play(nodes))
    finally:
        if config.broker == "redis":
            with contextlib.suppress(Exception):
                removed = delete_prefixes(config.redis_url, [cluster.prefix])
    report["redis_keys_removed"] = removed
    return report
