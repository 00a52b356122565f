"""Named load shapes: each preset only fills defaults, and command-line flags win.

Keeping every knob in one frozen dataclass means a run is fully described by
its JSON report (the ``config`` section), and a worker process receives the
whole plan as one picklable value.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

ENCODINGS = ("json", "msgpack")
PRESENCE_MODES = ("diff", "each")
"""``diff``: clients announce ``presence.diff`` on connect (one frame per window);
``each``: they do not, as clients before it did (one frame per person per member)."""
TALLY_MODES = ("coalesced", "each")
"""``coalesced``: clients announce ``poll.tally.coalesced`` (students get one ``poll.tally``
per window); ``each``: they do not, as clients before it did (one per answer per member)."""
# The fan-out ladder starts once the join storm (presence.join to everyone already in the
# room: n^2/2 frames) has drained: FANOUT_SETTLE to FANOUT_SETTLE + fanout_wait_max seconds
# after the ramp. The run must be long enough for the latest start.
FANOUT_SETTLE = 1


@dataclass(frozen=True)
class Scenario:
    """Every parameter of a run. Rates are per room unless the name says otherwise."""

    name: str = "classroom"
    rooms: int = 10
    students: int = 30  # per room; each room also has one trainer
    duration: float = 20.0  # seconds from the first connect to the stop, ramp-up included
    connect_rate: float = 200.0  # new connections per second, all processes together
    join: bool = True  # False: connect and authenticate only (idle connections)
    encoding: str = "json"
    presence: str = "diff"
    tallies: str = "coalesced"
    # Trainer activity.
    navigate_every: float = 5.0  # seconds between screen.navigate (0: never)
    trainer_pointer_hz: float = 10.0  # pointer events per second while presenting
    poll_every: float = 10.0  # seconds between poll.open (0: no polls)
    poll_open: float = 5.0  # seconds a poll stays open
    poll_answer_fraction: float = 0.8  # share of students answering each poll
    # Student activity (room totals, spread over the room's students).
    chat_per_second: float = 1.0  # chat messages per second in the room (trainer included)
    chat_bytes: int = 0  # pad chat text to this many characters (0: short messages)
    student_pointer_per_second: float = 2.0  # student pointer events per second in the room
    progress_every: float = 15.0  # seconds between one student's progress reports (0: never)
    annotation_per_second: float = 0.0  # annotation.add per second in the room (trainer)
    annotation_bytes: int = 1000  # size of each annotation's shape as JSON
    # Connection churn.
    reconnect_every: float = 0.0  # mean seconds between one client's reconnects (0: never)
    storms: int = 0  # times every client disconnects and rejoins with ``since`` at once
    storm_spread: float = 0.0  # each client comes back within this many seconds of a storm
    slow_fraction: float = 0.0  # share of students that stop reading
    slow_after: float = 2.0  # seconds after joining before a slow client stops reading
    # Fan-out ladder: once the ramp's traffic has drained, each room's trainer publishes
    # chat at fanout_rates[0] per second for fanout_step seconds, then at the next rate,
    # and so on; empty: no ladder. See loadtests/ladder.py.
    fanout_rates: tuple[float, ...] = ()
    fanout_step: float = 3.0
    fanout_wait_max: int = 8  # whole seconds the ladder may wait for the ramp to drain
    # A steady publisher: each room's trainer sends chat at steady_rate per second on a
    # fixed schedule from steady_from seconds into the run (while the room is still
    # joining), so the join storm's cost shows in those events' latency. 0: none.
    steady_rate: float = 0.0
    steady_from: float = 1.0
    seed: int = 1

    @property
    def clients(self) -> int:
        """Connections the run holds once ramped up."""
        return self.rooms * (self.students + 1)

    @property
    def ramp_seconds(self) -> float:
        """How long connecting everyone takes at ``connect_rate``."""
        return self.clients / self.connect_rate

    @property
    def fanout_start(self) -> float:
        """Whole seconds into the run at which the ladder's first step may begin."""
        return float(math.ceil(self.ramp_seconds) + FANOUT_SETTLE)

    @property
    def fanout_end(self) -> float:
        """Seconds into the run by which the ladder's last step has ended, at the latest."""
        return (self.fanout_start + self.fanout_wait_max
                + len(self.fanout_rates) * self.fanout_step)

    def is_slow(self, seat: int) -> bool:
        """Whether the student in ``seat`` of each room stops reading (every n-th student)."""
        if self.slow_fraction <= 0 or seat == 0:
            return False
        return seat % max(1, round(1 / self.slow_fraction)) == 0

    @property
    def slow_clients(self) -> int:
        """How many clients of the run stop reading."""
        return self.rooms * sum(1 for seat in range(1, self.students + 1) if self.is_slow(seat))

    def storm_times(self) -> list[float]:
        """Seconds after the start at which storms happen: evenly spread after the ramp."""
        if self.storms <= 0:
            return []
        first = min(self.ramp_seconds + 1.0, self.duration / 2)
        span = self.duration - first
        return [round(first + span * k / (self.storms + 1), 3) for k in range(1, self.storms + 1)]

    def validate(self) -> None:
        """Refuse values the generator cannot honour, before any process starts."""
        problems: list[str] = []
        if self.rooms < 1 or self.students < 0:
            problems.append("--rooms must be >= 1 and --students >= 0")
        if self.duration <= 0 or self.duration > 3600:
            problems.append("--duration must be in (0, 3600] seconds")
        if self.connect_rate <= 0:
            problems.append("--connect-rate must be > 0")
        if self.encoding not in ENCODINGS:
            problems.append(f"--encoding must be one of {', '.join(ENCODINGS)}")
        if self.presence not in PRESENCE_MODES:
            problems.append(f"--presence must be one of {', '.join(PRESENCE_MODES)}")
        if self.tallies not in TALLY_MODES:
            problems.append(f"--tallies must be one of {', '.join(TALLY_MODES)}")
        if self.steady_rate < 0 or not 0 <= self.steady_from < self.duration:
            problems.append("--steady-rate must be >= 0 and --steady-from within the run")
        if not 0 <= self.slow_fraction <= 1 or not 0 <= self.poll_answer_fraction <= 1:
            problems.append("fractions must be within 0..1")
        if self.poll_every and self.poll_open >= self.poll_every:
            problems.append("--poll-open must be shorter than --poll-every")
        if not 0 <= self.chat_bytes <= 1900:
            problems.append("--chat-bytes must be within 0..1900 (chat text holds 2000)")
        if not 0 <= self.annotation_bytes <= 16000:
            problems.append("--annotation-bytes must be within 0..16000 (shape limit 16 KiB)")
        if any(rate <= 0 for rate in self.fanout_rates) or self.fanout_step < 1:
            problems.append("--fanout-rates must be > 0 and --fanout-step >= 1 second")
        if not 0 <= self.fanout_wait_max <= 60:
            problems.append("--fanout-wait-max must be within 0..60 seconds")
        if self.fanout_rates and self.fanout_end > self.duration:
            problems.append(f"the fan-out ladder needs --duration >= {self.fanout_end:g}")
        if self.clients > 60000:
            problems.append("more than 60000 clients would exhaust loopback ports")
        if problems:
            raise ValueError("; ".join(problems))

    def to_dict(self) -> dict[str, Any]:
        """The scenario as plain data, for the report."""
        data = dataclasses.asdict(self)
        data["clients"] = self.clients
        data["storm_times"] = self.storm_times()
        data["fanout_rates"] = list(self.fanout_rates)
        if self.fanout_rates:
            data["fanout_start"] = self.fanout_start
        return data


# A preset lists only what differs from the field defaults above.
PRESETS: dict[str, dict[str, Any]] = {
    # Many ordinary lessons: 10 rooms of one trainer and 30 students, everything going on.
    "classroom": {"rooms": 10, "students": 30, "reconnect_every": 60.0},
    # One big room: fan-out to 2,000 members; students mostly watch. Every join costs a
    # presence.join to each member already there (quadratic), hence the gentle ramp.
    "lecture": {
        "rooms": 1, "students": 2000, "duration": 60.0, "connect_rate": 100.0,
        "trainer_pointer_hz": 5.0,
        "chat_per_second": 1.0, "student_pointer_per_second": 0.0, "progress_every": 30.0,
        "poll_every": 12.0, "poll_open": 6.0, "poll_answer_fraction": 0.05,
    },
    # As many idle connections as possible: connect and authenticate, then hold.
    "idle": {
        "rooms": 100, "students": 99, "duration": 60.0, "connect_rate": 500.0, "join": False,
        "navigate_every": 0.0, "trainer_pointer_hz": 0.0, "poll_every": 0.0,
        "chat_per_second": 0.0, "student_pointer_per_second": 0.0, "progress_every": 0.0,
    },
    # Everyone drops and rejoins with ``since`` at once; offsets must have no gap or repeat.
    # Progress is off because students do not see progress offsets (they would look like gaps).
    "storm": {
        "rooms": 10, "students": 29, "storms": 2, "storm_spread": 1.5, "progress_every": 0.0,
        "trainer_pointer_hz": 5.0, "chat_per_second": 3.0,
    },
    # A lecture of 500 joining within 5 s while the trainer publishes 40 events/s from the
    # first second on: what the join storm costs the events (issue 15, point 6). Nothing
    # else is published, so every latency sample is one of those events.
    "joinstorm": {
        "rooms": 1, "students": 500, "duration": 12.0, "connect_rate": 100.0,
        "navigate_every": 0.0, "trainer_pointer_hz": 0.0, "poll_every": 0.0,
        "chat_per_second": 0.0, "student_pointer_per_second": 0.0, "progress_every": 0.0,
        "steady_rate": 40.0, "steady_from": 1.0,
    },
    # One room and one steady publisher, nothing else: the trainer chats steady_rate times
    # a second from steady_from on, once everyone has joined and the join storm has drained,
    # so every latency sample and every delivery is one of those events. The shape that
    # ``python -m loadtests scaleout`` spreads over several nodes (issue 15, point 7).
    "steady": {
        "rooms": 1, "students": 499, "duration": 30.0, "connect_rate": 250.0,
        "navigate_every": 0.0, "trainer_pointer_hz": 0.0, "poll_every": 0.0,
        "chat_per_second": 0.0, "student_pointer_per_second": 0.0, "progress_every": 0.0,
        "steady_rate": 20.0, "steady_from": 8.0,
    },
    # Fan-out capacity of one big room: 1 + 500 members, nothing but the trainer's chat,
    # at a rate that steps up every few seconds (see loadtests/compare.py for the analysis).
    "fanout": {
        "rooms": 1, "students": 500, "duration": 31.0, "connect_rate": 200.0,
        "navigate_every": 0.0, "trainer_pointer_hz": 0.0, "poll_every": 0.0,
        "chat_per_second": 0.0, "student_pointer_per_second": 0.0, "progress_every": 0.0,
        "fanout_rates": (10.0, 20.0, 40.0, 80.0, 160.0, 320.0), "fanout_step": 3.0,
    },
    # 5% of students stop reading; the server must close them (4008), not slow the others.
    # Heavy annotations, because the server's kernel send buffer (up to tcp_wmem's 4 MB)
    # fills before its own 1 MiB queue bound starts counting: about 5 MB per stalled client.
    "slow": {
        "rooms": 10, "students": 30, "duration": 60.0, "slow_fraction": 0.05,
        "trainer_pointer_hz": 20.0, "chat_per_second": 4.0, "chat_bytes": 1500,
        "annotation_per_second": 8.0, "annotation_bytes": 15000,
    },
}


def build_scenario(name: str, overrides: dict[str, Any]) -> Scenario:
    """The preset ``name`` with ``overrides`` (flags the user gave) applied on top."""
    if name not in PRESETS:
        raise ValueError(f"unknown scenario {name!r}; choose from {', '.join(PRESETS)}")
    fields = {f.name for f in dataclasses.fields(Scenario)}
    unknown = sorted(set(overrides) - fields)
    if unknown:
        raise ValueError(f"unknown scenario fields: {', '.join(unknown)}")
    values: dict[str, Any] = {**PRESETS[name], **overrides, "name": name}
    values["fanout_rates"] = tuple(values.get("fanout_rates", ()))
    scenario = Scenario(**values)
    scenario.validate()
    return scenario
