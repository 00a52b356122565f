"""Run every shape ``repeats`` times on fresh nodes, and measure the broker after each round.

One Redis Cluster (3 primaries, 3 replicas, loopback, a temporary directory)
serves every cluster run of an invocation, each run under a key prefix of its
own that is deleted after it (``isolation.py``); the cluster is stopped at the
end. Each run starts and stops its own nodes (``measure.py``) and is turned into
figures by ``analysis.py``. Shapes are interleaved (cluster3, cluster1, memory1,
cluster3, ...) so that drift in what else the shared machine does hits all of
them alike.
"""

from __future__ import annotations

import contextlib
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TextIO

from loadtests.host import raise_file_limit
from loadtests.report import machine
from loadtests.scaleout.analysis import analyse
from loadtests.scaleout.broker import publish_cost
from loadtests.scaleout.config import ScaleoutConfig, shape
from loadtests.scaleout.isolation import Identity, delete_cluster_prefix
from loadtests.scaleout.measure import SAMPLE_EVENTS, await_quiet, measure
from tests.redis_topologies import ClusterSet

# ``analyse`` is imported from here by the tests; ``run_scaleout`` by the command line.
__all__ = ["analyse", "one_line", "run_scaleout"]


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
