"""The attendance log's keys on the embedded store and on real Redis, behind one contract."""

from __future__ import annotations

import pytest

from classroom.backends.data.attendance import LIVE_TTL, MAX_LOG, AttendanceLog
from classroom.backends.data.records import Records


async def test_arrivals_departures_and_heartbeats_are_kept_per_user(records: Records) -> None:
    log = records.attendance
    await log.arrived("acme", "s1", "u1", "student", 100.0)
    await log.departed("acme", "s1", "u1", 160.0)
    await log.arrived("acme", "s1", "u2", "trainer", 110.0)
    await log.seen("acme", "s1", ["u2", "u3"], 150.0)
    assert [e["k"] for e in await log.log("acme", "s1", "u1")] == ["in", "out"]
    assert await log.last_and_seen("acme", "s1", "u1") == ({"k": "out", "t": 160.0}, 100.0)
    assert await log.last_and_seen("acme", "s1", "u2") == ({"k": "in", "t": 110.0,
                                                            "role": "trainer"}, 150.0)
    assert await log.users("acme", "s1") == {"u1", "u2"}
    assert await log.seen_of("acme", "s1", "u2") == 150.0
    assert await log.seen_of("acme", "s1", "nobody") is None
    assert await log.last_seen("acme", "s1") == {"u1": 100.0, "u2": 150.0, "u3": 150.0}
    assert await log.last_and_seen("acme", "s2", "u1") == (None, None)


async def test_an_arrival_closes_a_span_left_open_first(records: Records) -> None:
    log = records.attendance
    await log.arrived("acme", "s1", "u1", "student", 100.0)  # its node died, unswept
    await log.arrived("acme", "s1", "u1", "student", 300.0, left_at=130.0)
    assert await log.log("acme", "s1", "u1") == [
        {"k": "in", "t": 100.0, "role": "student"}, {"k": "out", "t": 130.0},
        {"k": "in", "t": 300.0, "role": "student"}]
    assert await log.seen_of("acme", "s1", "u1") == 300.0


async def test_a_log_is_capped(records: Records) -> None:
    assert MAX_LOG == records.attendance.max_log == 2000
    log = AttendanceLog(records.store, max_log=20)
    for n in range(23):
        await log.departed("acme", "s1", "u1", float(n))
    entries = await log.log("acme", "s1", "u1")
    assert len(entries) == 20 and entries[0]["t"] == 3.0


async def test_ending_sets_the_retention_which_a_late_departure_keeps(records: Records) -> None:
    log, store = records.attendance, records.store
    await log.arrived("acme", "s1", "u1", "student", 100.0)
    # The first arrival already bounds all three keys (the last-seen hash included).
    for key in ("attendance:acme:s1:u1", "attendance-users:acme:s1", "attendance-seen:acme:s1"):
        assert (await store.ttl(key) or 0) > LIVE_TTL - 60, key
    await records.joined("acme", "u1", "s1")
    assert (await store.ttl("user-sessions:acme:u1") or 0) > 60
    assert await records.mark_ended("acme", "s1", 3600.0)
    await log.departed("acme", "s1", "u1", 200.0)  # the end closed their connection
    for key in ("attendance:acme:s1:u1", "attendance-users:acme:s1", "attendance-seen:acme:s1"):
        ttl = await store.ttl(key)
        assert ttl is not None and 3500 < ttl <= 3600, key


async def test_erasure_forgets_the_log_and_keeps_only_what_it_is_told(records: Records) -> None:
    log = records.attendance
    await records.joined("acme", "u1", "s1")
    await log.arrived("acme", "s1", "u1", "student", 100.0)
    await log.arrived("acme", "s1", "u2", "student", 100.0)
    await log.keep_pseudonymous("acme", "s1", "u-hash", {"minutes": 3.0}, 60.0)
    await records.forget_user("acme", "u1")
    assert await log.log("acme", "s1", "u1") == []
    assert await log.users("acme", "s1") == {"u2"}
    assert "u1" not in await log.last_seen("acme", "s1")
    assert await log.kept("acme", "s1") == {"u-hash": {"minutes": 3.0}}


async def test_appending_to_a_log_starts_no_thread(
    records: Records, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """On a cluster, redis-py's asyncio MULTI pipeline queued each command by running an
    event loop in a thread that it joined, blocking the node's loop on every join; the
    capped append is a script now, on every backend."""
    import threading

    started: list[threading.Thread] = []
    real_start = threading.Thread.start

    def counting_start(thread: threading.Thread) -> None:
        started.append(thread)
        real_start(thread)

    monkeypatch.setattr(threading.Thread, "start", counting_start)
    log = AttendanceLog(records.store, max_log=3)
    for n in range(5):
        await log.arrived("acme", "s1", "u1", "student", float(n))
    assert started == []
    assert [e["t"] for e in await log.log("acme", "s1", "u1")] == [2.0, 3.0, 4.0]
