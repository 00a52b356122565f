"""``python -m loadtests soak`` in miniature: a few seconds on the memory broker.

Not a leak check (that takes minutes: ``loadtests/bench.sh soak``); it proves the
machinery works: a node starts with the census on, sessions start, run and end,
every node is sampled in every phase, and the report has a verdict with figures.
"""

from __future__ import annotations

import json
from pathlib import Path

from loadtests.cli import main
from loadtests.soak.verdict import LIVE_STRUCTURES


def test_a_short_soak_samples_every_phase_and_judges(tmp_path: Path) -> None:
    report_path, markdown = tmp_path / "soak.json", tmp_path / "soak.md"
    status = main(["soak", "--broker", "memory", "--nodes", "1", "--duration", "3",
                   "--rooms", "2", "--students", "3", "--session-seconds", "2",
                   "--abandon-every", "2", "--settle", "0.5", "--sample-every", "1",
                   "--quiet", "--json", str(report_path), "--markdown", str(markdown)])
    report = json.loads(report_path.read_text())
    verdict = report["verdict"]
    assert status == (0 if verdict["result"] == "PASS" else 1)
    assert verdict["result"] in ("PASS", "FAIL")
    phases = [sample["phase"] for sample in report["samples"]]
    assert phases[:2] == ["start", "baseline"] and phases[-2:] == ["ended", "final"]
    assert "run" in phases
    during = [s for s in report["samples"] if s["phase"] == "run"]
    assert any(s["nodes"][0]["structures"]["connections"] > 0 for s in during)
    for sample in report["samples"]:
        node = sample["nodes"][0]
        assert node is not None and node["rss_bytes"] > 0 and node["gc_objects"] > 0
    checks = {check["name"] for check in verdict["nodes"][0]["checks"]}
    assert set(LIVE_STRUCTURES) <= checks and {"rss_bytes", "gc_objects"} <= checks
    counts = report["generator"]["counts"]
    assert report["sessions"]["ended"] >= 1 and report["sessions"]["abandoned"] >= 1
    assert counts.get("kind_chat", 0) > 0 and counts.get("kind_session.end", 0) >= 1
    assert "## Soak: " in markdown.read_text()
