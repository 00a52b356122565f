"""``loadtests joincost`` on a real node, small: every phase is measured and reported."""

from __future__ import annotations

from pathlib import Path

import pytest

from loadtests.cli import main
from loadtests.joincost import PHASES, Shape, render, run_joincost
from loadtests.servers import ROOT


def test_every_phase_of_a_small_run_gets_a_cost_per_client() -> None:
    shape = Shape(rooms=4, members=10, redis_url=None, settle=0.2, idle_window=0.2)
    report = run_joincost(shape, {"this": ROOT}, repeats=1)
    [run] = report["runs"]
    assert (report["rooms"], report["members"], report["broker"]) == (4, 10, "memory")
    for phase in PHASES:
        assert isinstance(run[f"{phase}_cpu_ms"], float)
    # A join costs the node something; tiny runs are coarse (clock ticks), so only > 0.
    assert run["join_cpu_ms"] + run["rejoin_cpu_ms"] > 0
    table = render(report)
    assert "| this | 1 |" in table and "connect | join | leave | reconnect | rejoin" in table


def test_a_tree_that_is_not_a_checkout_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["joincost", "--redis-url", "", "--tree", f"old={tmp_path}"]) == 2
    assert "is not NAME=PATH of a checkout" in capsys.readouterr().err
