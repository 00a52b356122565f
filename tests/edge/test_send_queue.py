"""The bounded send queue: where a client that does not read is detected."""

from __future__ import annotations

from classroom.edge.send_queue import SendQueue


def make(limit: int) -> tuple[SendQueue, list[str]]:
    overflows: list[str] = []
    return SendQueue(limit, lambda: overflows.append("slow")), overflows


def test_frames_come_out_in_order() -> None:
    outbox, _ = make(100)
    for text in ("a", "b", "c"):
        assert outbox.put(text)
    assert outbox.take() == ["a", "b", "c"]
    assert outbox.queued_bytes == 0 and not outbox and outbox.take() == []


def test_a_take_stops_at_the_byte_budget_but_always_gives_one_frame() -> None:
    outbox, _ = make(100)
    for text in ("aaaa", "bbbb", "cccc"):
        outbox.put(text)
    assert outbox.take(9) == ["aaaa", "bbbb"]
    assert outbox.take(2) == ["cccc"]


def test_overflow_drops_everything_and_reports_once() -> None:
    outbox, overflows = make(10)
    outbox.put("12345")
    outbox.put("67890")
    assert not outbox.put("x")
    assert not outbox.put("y")
    assert overflows == ["slow"]
    assert outbox.closed and outbox.queued_bytes == 0


def test_a_single_large_frame_fits_an_empty_queue() -> None:
    outbox, overflows = make(4)
    outbox.put("a long frame")
    assert overflows == [] and outbox.take(0) == ["a long frame"]


def test_finish_keeps_what_is_queued_and_refuses_the_rest() -> None:
    outbox, _ = make(100)
    outbox.put("last")
    outbox.finish()
    assert not outbox.put("ignored after finish")
    assert outbox.finishing and outbox.take() == ["last"]


def test_the_bound_counts_bytes_on_the_wire_not_characters() -> None:
    """'é' is one character and two bytes of UTF-8: five of them fill a 10-byte queue."""
    outbox, overflows = make(10)
    assert outbox.put("ééééé")
    assert outbox.queued_bytes == 10
    assert not outbox.put("x")
    assert overflows == ["slow"]


def test_a_take_measures_text_in_bytes_too() -> None:
    outbox, _ = make(100)
    for text in ("éé", "éé", "éé"):
        outbox.put(text)
    assert outbox.take(8) == ["éé", "éé"]
    assert outbox.queued_bytes == 4
