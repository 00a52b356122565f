"""Reading the server's publish-to-write histogram the way the load generator does."""

from __future__ import annotations

from classroom.metrics import Metrics
from loadtests.serverside import parse_buckets, summary_ms


def scrape(metrics: Metrics) -> dict[float, float] | None:
    return parse_buckets(metrics.render().decode())


def test_quantiles_come_from_the_difference_between_two_scrapes() -> None:
    metrics = Metrics()
    for _ in range(50):
        metrics.publish_to_write.observe(0.3)  # before the window: must not count
    before = scrape(metrics)
    for _ in range(97):
        metrics.publish_to_write.observe(0.004)
    for _ in range(3):
        metrics.publish_to_write.observe(0.060)
    summary = summary_ms(before, scrape(metrics))
    assert summary == {"count": 100.0, "p50": 5.0, "p95": 5.0, "p99": 75.0,
                       "within_25ms_pct": 97.0}


def test_a_server_without_the_histogram_gives_no_figure() -> None:
    assert parse_buckets("# nothing here\nclassroom_connections 3.0\n") is None
    assert summary_ms(None, None) is None


def test_an_empty_window_has_a_count_and_no_quantiles() -> None:
    metrics = Metrics()
    snapshot = scrape(metrics)
    assert summary_ms(snapshot, snapshot) == {"count": 0.0, "p50": None, "p95": None,
                                              "p99": None, "within_25ms_pct": None}
