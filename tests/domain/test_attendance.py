"""The attendance arithmetic: spans from arrivals and departures, minutes, the threshold."""

from __future__ import annotations

from typing import Any

from classroom.domain.attendance import (
    ARRIVED,
    DEPARTED,
    Lesson,
    intervals,
    minutes_within,
    summary,
)


def arrive(at: float) -> dict[str, Any]:
    return {"k": ARRIVED, "t": at, "role": "student"}


def depart(at: float) -> dict[str, Any]:
    return {"k": DEPARTED, "t": at}


def test_spans_pair_arrivals_with_departures_whatever_order_they_were_written_in() -> None:
    log = [depart(160), arrive(100), arrive(300), depart(420)]
    assert intervals(log, open_until=1000) == [(100, 160), (300, 420)]


def test_a_second_arrival_or_a_stray_departure_changes_nothing() -> None:
    log = [depart(50), arrive(100), arrive(130), depart(200), depart(210)]
    assert intervals(log, open_until=1000) == [(100, 200)]


def test_an_open_span_ends_where_it_is_told() -> None:
    assert intervals([arrive(100)], open_until=250) == [(100, 250)]
    assert intervals([arrive(100)], open_until=50) == [(100, 100)]


def test_a_departure_and_arrival_at_the_same_moment_split_nothing_away() -> None:
    assert intervals([arrive(100), depart(200), arrive(200), depart(260)],
                     open_until=999) == [(100, 200), (200, 260)]


def test_minutes_count_only_inside_the_lesson_and_overlaps_once() -> None:
    spans = [(0.0, 120.0), (60.0, 180.0), (600.0, 900.0)]
    assert minutes_within(spans, (60.0, 660.0)) == 3.0  # 60..180 and 600..660
    assert minutes_within(spans, None) == 0.0


def test_summary_meets_the_threshold_or_not() -> None:
    lesson = Lesson(started_at=0.0, ended_at=3600.0, min_percent=75.0)
    enough = summary([(0.0, 2700.0)], lesson, now=5000.0)
    assert enough["minutes"] == 45.0 and enough["percent"] == 75.0 and enough["met"] is True
    short = summary([(0.0, 2640.0)], lesson, now=5000.0)
    assert short["percent"] == 73.3 and short["met"] is False
    assert summary([], lesson, now=5000.0)["met"] is False


def test_a_lesson_that_never_started_has_no_percent_and_runs_until_now_when_live() -> None:
    never = summary([(0.0, 60.0)], Lesson(None, None, 50.0), now=100.0)
    assert never["minutes"] == 0.0 and never["percent"] is None and never["met"] is False
    live = summary([(0.0, 60.0)], Lesson(0.0, None), now=120.0)
    assert live["percent"] == 50.0 and live["met"] is None
    assert live["intervals"] == [{"from": 0.0, "to": 60.0}]
