"""What ``python -m loadtests compare`` runs: the servers, the scenarios and how long.

Kept apart from the measuring (``compare_bench.py``) and the verdict
(``compare_report.py``) so that the command line, the tests and the report can name
the targets and shapes without starting anything.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from loadtests.scenarios import Scenario, build_scenario

TARGETS = ("ours", "reference", "ceiling")
SCENARIOS = ("classroom", "lecture500", "fanout")


@dataclass(frozen=True)
class Profile:
    """How long each measurement runs."""

    name: str
    classroom_seconds: float
    lecture_seconds: float
    ladder_rates: tuple[float, ...]
    ladder_step: float
    ladder_wait_max: int  # seconds the ladder may wait for the join storm to drain


QUICK = Profile("quick", 8.0, 14.0, (10.0, 20.0, 40.0, 80.0, 160.0), 3.0, 6)
FULL = Profile("full", 20.0, 20.0,
               (5.0, 10.0, 20.0, 30.0, 40.0, 60.0, 80.0, 120.0, 160.0, 240.0, 320.0), 4.0, 10)


def compare_scenarios(profile: Profile) -> dict[str, Scenario]:
    """The three shapes, with everything the reference does not implement switched off."""
    common = {"progress_every": 0.0, "poll_every": 0.0, "reconnect_every": 0.0}
    fanout = build_scenario("fanout", {"fanout_rates": profile.ladder_rates,
                                       "fanout_step": profile.ladder_step,
                                       "fanout_wait_max": profile.ladder_wait_max,
                                       "duration": 3600})
    return {
        "classroom": build_scenario("classroom", {
            **common, "rooms": 10, "students": 30, "duration": profile.classroom_seconds}),
        "lecture500": build_scenario("lecture", {
            **common, "students": 500, "duration": profile.lecture_seconds}),
        "fanout": dataclasses.replace(fanout, duration=fanout.fanout_end + 1.0),
    }
