"""A simulated user's periodic activity keeps its own phase through a generator stall.

The storm benchmarks drop and reopen thousands of connections at once, which holds
the generator's loop up for 50-200 ms. Every trainer whose pointer turn fell in that
stall then moved at its end; when each turn was timed as "a period after the last
one", they stayed in step for the rest of the run, and the node's calm seconds after
a storm met bursts that the seconds before it did not (p95 7-16 ms against 4 ms).
"""

from __future__ import annotations

import asyncio
import random
import statistics
import time

from loadtests.behaviour import Action, _every

PERIOD = 0.2
PHASES = {"early": 0.02, "late": 0.12}  # out of step by half a period
STALL = 0.45  # longer than two periods: both users miss turns


class FixedPhase(random.Random):
    """The random start phase, chosen by the test."""

    def __init__(self, phase: float) -> None:
        super().__init__(0)
        self.phase = phase

    def uniform(self, a: float, b: float) -> float:
        return self.phase


async def test_a_stall_does_not_bring_two_users_into_step_or_burst_their_missed_turns() -> None:
    loop = asyncio.get_running_loop()
    turns: dict[str, list[float]] = {name: [] for name in PHASES}

    def recorder(name: str) -> Action:
        async def act() -> None:
            turns[name].append(loop.time())
        return act

    tasks = [asyncio.ensure_future(_every(PERIOD, FixedPhase(phase), recorder(name)))
             for name, phase in PHASES.items()]
    try:
        await asyncio.sleep(0.3)
        time.sleep(STALL)  # the generator's loop held up: both users' turns fall in it
        stall_end = loop.time()
        await asyncio.sleep(1.0)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    after = {name: [t for t in times if t >= stall_end] for name, times in turns.items()}
    # Each user goes once at the stall's end, not once per turn it missed.
    for times in after.values():
        assert len([t for t in times if t < stall_end + PERIOD / 4]) == 1
    # Then each is back on its own grid: still half a period apart, not together.
    early, late = after["early"][1:], after["late"][1:]
    gaps = [(b - a) % PERIOD for a, b in zip(early, late, strict=False)]
    assert len(gaps) >= 3
    assert abs(statistics.median(gaps) - PERIOD / 2) < PERIOD / 4, gaps
