"""One client process: runs its share of users on its own event loop and reports each second.

Several of these run side by side (multiprocessing, spawn) so that decoding
frames and running thousands of connections never makes the generator the
bottleneck of a 2-core machine. Each reports a :class:`~loadtests.stats.Tick`
per whole second of the shared timeline, then a final one, over a queue.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import random
import resource
import signal
import time
from typing import Any, Protocol

import uvloop

from loadtests.behaviour import Actor, Clock, lifecycle
from loadtests.client import Recorder
from loadtests.drivers import UserConnection, make_user
from loadtests.plan import WorkerPlan
from loadtests.stats import Tick

LAG_PROBE_SECONDS = 0.05
NO_FULL_COLLECTIONS = 1_000_000
"""The oldest generation's threshold while a worker measures: in effect never."""
CLOSE_ALL_SECONDS = 8.0
SLOW_DRAIN_SECONDS = 3.0


class Outbound(Protocol):
    """The part of a multiprocessing queue a worker uses."""

    def put(self, obj: Any) -> None:
        """Send one message to the coordinator."""


class Signal(Protocol):
    """The part of a multiprocessing event a worker uses."""

    def wait(self, timeout: float | None = None) -> bool:
        """Block until set (or the timeout)."""


class SharedFloat(Protocol):
    """A multiprocessing.Value('d') as the worker reads it."""

    value: float


def _raise_file_limit() -> None:
    """Each connection is a file descriptor: lift the soft limit to the hard one."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def worker_main(plan: WorkerPlan, outbound: Outbound, go: Signal, start: SharedFloat) -> None:
    """Process entry point: wait for the shared start, run, report, exit."""
    # Ctrl-C goes to the whole process group; the coordinator decides, and terminates us.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _raise_file_limit()
    outbound.put(("ready", plan.worker, None))
    if not go.wait(timeout=120):
        return
    _hold_full_collections()
    try:
        uvloop.run(_run(plan, start.value, outbound))
    except Exception as exc:  # noqa: BLE001 - report instead of dying silently
        outbound.put(("failed", plan.worker, repr(exc)))
        return
    outbound.put(("done", plan.worker, None))


def _hold_full_collections() -> None:
    """Keep this process's full garbage collections out of the latencies it measures.

    With 2,500 clients per process, each full collection walked every client's objects
    for 130-265 ms on a 2-core machine and found nothing to free; in a reconnect storm
    they came one after another, and every frame arriving meanwhile was stamped that
    much late, so the report showed the generator's pauses as the server's latency.
    Young collections still run; the process ends with the run, so what full ones
    would have freed is bounded by one run.
    """
    gc.collect()
    gc.freeze()
    young, middle, _ = gc.get_threshold()
    gc.set_threshold(young, middle, NO_FULL_COLLECTIONS)


async def _ticker(plan: WorkerPlan, clock: Clock, rec: Recorder, sims: list[UserConnection],
                  outbound: Outbound) -> None:
    """Send this second's tally at each whole second of the shared timeline."""
    second = 1
    while True:
        await asyncio.sleep(max(0.0, clock.at(second) - time.time()))
        online = sum(1 for sim in sims if sim.online)
        outbound.put(("tick", plan.worker, Tick(plan.worker, second, rec.swap(), online,
                                                _cpu_seconds(), rec.samples)))
        second += 1


async def _lag_probe(rec: Recorder) -> None:
    """How late this loop wakes up: when it is busy, measured latency is inflated."""
    loop = asyncio.get_running_loop()
    while True:
        planned = loop.time() + LAG_PROBE_SECONDS
        await asyncio.sleep(LAG_PROBE_SECONDS)
        rec.tally.loop_lag.add(loop.time() - planned)


async def _run(plan: WorkerPlan, start_at: float, outbound: Outbound) -> None:
    scenario = plan.scenario
    clock = Clock(start_at, scenario.duration)
    rec = Recorder()
    sims = [make_user(user, plan, rec) for user in plan.users]
    rate = scenario.connect_rate * plan.share
    # Seeded pseudo-randomness shapes the load (timing, choices); nothing here is secret.
    rng = random.Random(f"{scenario.seed}-{plan.worker}")  # noqa: S311
    actors = [Actor(sim, random.Random(f"{scenario.seed}-{sim.user.sub}"), clock)  # noqa: S311
              for sim in sims]
    await asyncio.sleep(max(0.0, start_at - time.time()))
    background = [asyncio.create_task(_ticker(plan, clock, rec, sims, outbound)),
                  asyncio.create_task(_lag_probe(rec))]
    users = [
        asyncio.create_task(lifecycle(sim, clock, rng, index / rate, actor))
        for index, (sim, actor) in enumerate(zip(sims, actors, strict=True))
    ]
    await asyncio.sleep(max(0.0, clock.left()))
    for actor in actors:
        actor.stop()
    for task in users:
        task.cancel()
    for outcome in await asyncio.gather(*users, return_exceptions=True):
        if isinstance(outcome, Exception):
            rec.error("client_bug", repr(outcome)[:160], "lifecycle")
    slow = [sim for sim in sims if sim.user.slow and sim.online]
    if slow:
        await asyncio.gather(*(sim.drain(SLOW_DRAIN_SECONDS) for sim in slow))
        rec.tally.counts["slow_still_open"] += sum(1 for sim in slow if sim.online)
    await asyncio.wait_for(asyncio.gather(*(sim.close() for sim in sims),
                                          return_exceptions=True), CLOSE_ALL_SECONDS)
    for task in background:
        task.cancel()
    await asyncio.gather(*background, return_exceptions=True)
    outbound.put(("tick", plan.worker, Tick(plan.worker, -1, rec.swap(), 0, _cpu_seconds(),
                                            rec.samples)))
