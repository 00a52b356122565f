"""The bounded send queue: where a client that does not read is detected."""

from __future__ import annotations

from classroom.outbox import Outbox


def make(limit: int) -> tuple[Outbox, list[str]]:
    overflows: list[str] = []
    return Outbox(limit, lambda: overflows.append("slow")), overflows


async def test_frames_come_out_in_order() -> None:
    outbox, _ = make(100)
    for text in ("a", "b", "c"):
        outbox.put(text)
    assert [await outbox.next() for _ in range(3)] == ["a", "b", "c"]
    assert outbox.queued_bytes == 0


async def test_overflow_drops_everything_and_reports_once() -> None:
    outbox, overflows = make(10)
    outbox.put("12345")
    outbox.put("67890")
    outbox.put("x")
    outbox.put("y")
    assert overflows == ["slow"]
    assert outbox.closed and outbox.queued_bytes == 0


async def test_a_single_large_frame_fits_an_empty_queue() -> None:
    outbox, overflows = make(4)
    outbox.put("a long frame")
    assert overflows == [] and await outbox.next() == "a long frame"


async def test_a_replay_burst_does_not_count_against_the_bound() -> None:
    outbox, overflows = make(10)
    for _ in range(5):
        outbox.put("0123456789", bounded=False)
    outbox.put("live-1")
    assert overflows == []
    outbox.put("live-2 is too much")
    assert overflows == ["slow"]


async def test_the_burst_allowance_shrinks_as_frames_are_written() -> None:
    outbox, overflows = make(10)
    outbox.put("0123456789", bounded=False)
    outbox.put("abc")
    assert await outbox.next() == "0123456789"
    outbox.put("defgh")
    assert overflows == []
    outbox.put("ijk")
    assert overflows == ["slow"]


async def test_finish_drains_then_says_none() -> None:
    outbox, _ = make(100)
    outbox.put("last")
    outbox.finish()
    outbox.put("ignored after finish")
    assert await outbox.next() == "last"
    assert await outbox.next() is None
