"""The scale-out measurement's knobs, and the timeline every run follows."""

from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass
from typing import Any

SHAPES = ("cluster3", "cluster1", "memory1", "haproxy3")


@dataclass(frozen=True)
class ScaleoutConfig:
    """Every parameter of one ``scaleout`` invocation; the report records it whole."""

    nodes: int = 3  # server processes in the ``cluster3`` shape
    members: int = 1500  # members of each session (one trainer, the rest students)
    # Sessions side by side, each with its own trainer publishing at ``rate``. With one
    # session the single-node shapes get members / nodes of it; with several, each node's
    # share of the sessions (rooms / nodes), whole.
    rooms: int = 1
    rate: float = 10.0  # the trainer's chat messages per second
    connect_rate: float = 150.0  # new connections per second while the room fills
    settle: float = 12.0  # seconds after the planned ramp before the idle window (slack for
    # a ramp slowed by a busy machine; the run checks that everyone was in by then)
    # Seconds everyone is connected and nothing is published: a multiple of the presence
    # heart-beat (10 s), so the window holds as many beats as it lasts tens of seconds.
    idle: float = 10.0
    measure: float = 30.0  # seconds of publishing that are measured
    repeats: int = 2  # every shape is measured this many times, interleaved
    # Before each run, this many clients per node join another session on the fresh nodes
    # for a few seconds (0: none), so the run starts on warm Redis connection pools. On a
    # cluster, a cold node's first burst of joins fails in part (see docs/scaling.md); the
    # warm-up's errors are reported, not hidden.
    warmup: int = 60
    processes: int = os.cpu_count() or 1  # client processes
    shapes: tuple[str, ...] = SHAPES
    # After each round of shapes, the publish script alone: this many publications into a
    # session that 0, 1 and 3 brokers subscribe to (loadtests/scaleout/broker.py); 0: skip.
    broker_publications: int = 3000
    # Before each run, wait up to this long for the shared machine to be nearly idle
    # (other people's tests run here too); 0: do not wait. The wait is recorded.
    wait_quiet: float = 0.0

    def validate(self) -> None:
        """Refuse values the measurement cannot honour, before anything starts."""
        problems: list[str] = []
        if self.nodes < 2:
            problems.append("--nodes must be >= 2 (the single-node shapes are measured anyway)")
        if "haproxy3" in self.shapes and self.nodes != 3:
            problems.append("the haproxy3 shape needs --nodes 3 (deploy/haproxy.cfg names three)")
        if self.rooms < 1 or self.members < 2 or self.rooms * self.members > 20000:
            problems.append("--rooms >= 1, --members >= 2, rooms x members <= 20000")
        if self.rooms == 1 and self.members < self.nodes * 2:
            problems.append("one session needs --members >= nodes * 2")
        if self.rooms > 1 and self.rooms < self.nodes:
            problems.append("several sessions need --rooms >= --nodes")
        if not 0 < self.rate <= 500 or self.connect_rate <= 0:
            problems.append("--rate must be within (0, 500] and --connect-rate > 0")
        if self.settle < 1 or self.idle < 2 or self.measure < 5:
            problems.append("--settle >= 1, --idle >= 2 and --measure >= 5 seconds")
        if self.broker_publications < 0:
            problems.append("--broker-publications must be >= 0")
        if self.warmup < 0:
            problems.append("--warmup must be >= 0")
        if self.wait_quiet < 0:
            problems.append("--wait-quiet must be >= 0 seconds")
        if self.repeats < 1 or self.processes < 1:
            problems.append("--repeats and --processes must be >= 1")
        unknown = [s for s in self.shapes if s not in SHAPES]
        if unknown or not self.shapes:
            problems.append(f"--shapes takes a comma-separated subset of {','.join(SHAPES)}")
        if problems:
            raise ValueError("; ".join(problems))

    def to_dict(self) -> dict[str, Any]:
        """The configuration as plain data, for the report."""
        data = dataclasses.asdict(self)
        data["shapes"] = list(self.shapes)
        return data


@dataclass(frozen=True)
class Shape:
    """One topology: how many nodes, on which broker, how many sessions of how many."""

    name: str
    nodes: int
    members: int
    broker: str  # "cluster" or "memory"
    balancer: bool = False  # clients connect through HAProxy (leastconn), not round-robin
    rooms: int = 1

    @property
    def clients(self) -> int:
        """Connections of the run."""
        return self.rooms * self.members

    @property
    def per_node(self) -> list[int]:
        """Connections on each node when users are dealt round-robin (a session's trainer
        first); behind the balancer, what leastconn should come to (the run measures it)."""
        return [len(range(n, self.clients, self.nodes)) for n in range(self.nodes)]


def shape(name: str, config: ScaleoutConfig) -> Shape:
    """The topology called ``name``: each node carries its share of the connections."""
    if name == "cluster3":
        return Shape(name, config.nodes, config.members, "cluster", rooms=config.rooms)
    if name == "haproxy3":
        return Shape(name, config.nodes, config.members, "cluster", balancer=True,
                     rooms=config.rooms)
    broker = "cluster" if name == "cluster1" else "memory"
    if config.rooms == 1:
        return Shape(name, 1, config.members // config.nodes, broker)
    return Shape(name, 1, config.members, broker, rooms=config.rooms // config.nodes)


@dataclass(frozen=True)
class Timeline:
    """Whole seconds of one run (second k covers (k - 1, k], as the report's rows do).

    Everyone connects during the ramp; ``settle`` seconds later the idle window
    begins (connected, joined, nothing published: heart-beats and pings only); at
    ``publish_from`` the trainer starts; the first second of publishing is left out
    and the next ``measure`` seconds are the measured window; one more second
    before the stop keeps the closing out of it.
    """

    ramp: int
    idle_from: int
    publish_from: int
    measure_from: int
    measure_to: int
    duration: int

    @classmethod
    def of(cls, clients: int, config: ScaleoutConfig) -> Timeline:
        """The timeline of a run with ``clients`` connections."""
        ramp = math.ceil(clients / config.connect_rate)
        idle_from = ramp + math.ceil(config.settle)
        publish_from = idle_from + math.ceil(config.idle)
        measure_from = publish_from + 1
        measure_to = measure_from + math.ceil(config.measure)
        return cls(ramp, idle_from, publish_from, measure_from, measure_to, measure_to + 1)

    def to_dict(self) -> dict[str, int]:
        """The timeline as plain data, for the report."""
        return dataclasses.asdict(self)
