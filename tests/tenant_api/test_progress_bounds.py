"""A cohort row stays bounded whatever screens a student reports, and its key expires.

On the embedded store and on real Redis: ``completed`` lists only the roster's screens
(or at most ``MAX_COMPLETED`` when the roster names none), the progress key expires
after the last report while the session is open, and ending the session still gives
it the tenant's retention, which a late report does not undo.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import httpx
import pytest

from classroom.backends.data.records import LIVE_PROGRESS_TTL, MAX_COMPLETED, Records
from tests.conftest import RunningServer, ServerFactory
from tests.multinode.conftest import REDIS_URL, drop_prefix
from tests.records_backends import records_on

ACME = {"Authorization": "Bearer acme-key"}
SCREENS = ["intro", "part-1", "part-2"]
DAY = 86400.0


@pytest.fixture(params=["memory", "redis"])
async def records(request: pytest.FixtureRequest) -> AsyncIterator[Records]:
    async with records_on(request.param) as made:
        yield made


def report(sub: str, screen: str, at: float = 1.0) -> dict[str, object]:
    return {"kind": "progress", "by": {"sub": sub, "pid": f"p-{sub}", "role": "student"},
            "screen": screen, "completed": True, "at": at}


async def test_without_roster_screens_completed_keeps_the_newest_bounded(
    records: Records,
) -> None:
    for n in range(MAX_COMPLETED + 25):
        row = await records.record_progress("acme", "s1", report("u1", f"screen-{n}"))
    assert len(row["completed"]) == MAX_COMPLETED
    assert row["completed"][0] == "screen-25"
    assert row["completed"][-1] == f"screen-{MAX_COMPLETED + 24}"
    stored = (await records.progress("acme", "s1"))["u1"]
    assert stored["completed"] == row["completed"]


async def test_with_roster_screens_only_those_count(records: Records) -> None:
    await records.set_roster("acme", "s1", {"trainers": ["t1"], "students": [{"sub": "u1"}],
                                            "screens": SCREENS})
    for n in range(300):
        await records.record_progress("acme", "s1", report("u1", f"made-up-{n}"))
    await records.record_progress("acme", "s1", report("u1", "part-1"))
    await records.record_progress("acme", "s1", report("u1", "part-1"))
    row = (await records.progress("acme", "s1"))["u1"]
    assert row["completed"] == ["part-1"]
    assert row["screen"] == "part-1"  # where the student is is still told as reported


async def test_a_roster_set_again_counts_its_new_screens_at_once(records: Records) -> None:
    """The roster's screens are cached for progress reports, and a new roster replaces them."""
    roster = {"trainers": ["t1"], "students": [{"sub": "u1"}], "screens": ["intro"]}
    await records.set_roster("acme", "s1", roster)
    await records.record_progress("acme", "s1", report("u1", "extra"))
    await records.set_roster("acme", "s1", {**roster, "screens": ["intro", "extra"]})
    row = await records.record_progress("acme", "s1", report("u1", "extra"))
    assert row["completed"] == ["extra"]


async def test_the_progress_key_expires_after_the_last_report(records: Records) -> None:
    await records.record_progress("acme", "s1", report("u1", "intro"))
    ttl = await records.store.ttl("progress:acme:s1")
    assert ttl is not None and LIVE_PROGRESS_TTL - 60 < ttl <= LIVE_PROGRESS_TTL


async def test_ending_keeps_the_tenant_retention_even_after_a_late_report(
    records: Records,
) -> None:
    await records.record_progress("acme", "s1", report("u1", "intro"))
    assert await records.mark_ended("acme", "s1", 7 * DAY)
    await records.record_progress("acme", "s1", report("u1", "part-1"))  # raced the end
    ttl = await records.store.ttl("progress:acme:s1")
    assert ttl is not None and 7 * DAY - 60 < ttl <= 7 * DAY


async def test_a_short_progress_ttl_lets_rows_go(records: Records) -> None:
    short = Records(records.store, b"secret", progress_ttl=0.3)
    await short.record_progress("acme", "s1", report("u1", "intro"))
    ttl = await short.store.ttl("progress:acme:s1")
    assert ttl is not None and ttl <= 0.3


@pytest.fixture(params=["memory", "redis"])
async def lesson(
    request: pytest.FixtureRequest, start_server: ServerFactory,
) -> AsyncIterator[tuple[RunningServer, httpx.AsyncClient]]:
    options: dict[str, object] = {}
    prefix = f"test-{uuid.uuid4().hex[:12]}"
    if request.param == "redis":
        options = {"redis_url": REDIS_URL, "redis_prefix": prefix}
    server = await start_server(rate_limit_per_second=1000, rate_limit_burst=1000,
                                fanout_budget_scale=100.0, **options)
    async with httpx.AsyncClient(base_url=server.http_url) as http:
        answer = await http.put("/api/v1/sessions/s1", headers=ACME, json={
            "trainers": ["t1"], "students": [{"sub": "u1"}], "screens": SCREENS})
        assert answer.status_code == 200
        yield server, http
    if request.param == "redis":
        await drop_prefix(REDIS_URL, prefix)


async def test_a_student_inventing_screens_does_not_grow_the_cohort_row(
    lesson: tuple[RunningServer, httpx.AsyncClient],
) -> None:
    server, http = lesson
    student = await server.member("u1", "student")
    for n in range(60):
        reply = await student.request("publish", session="s1", event={
            "kind": "progress", "screen": f"invented-{n}", "completed": True})
        assert reply["type"] == "published", reply
    reply = await student.request("publish", session="s1", event={
        "kind": "progress", "screen": "part-2", "completed": True})
    assert reply["type"] == "published", reply
    table = (await http.get("/api/v1/sessions/s1/progress", headers=ACME)).json()
    row = next(r for r in table["students"] if r["participant"]["sub"] == "u1")
    assert row["completed"] == ["part-2"] and row["completed_count"] == 1
    records: Records = server.app.state.classroom.records
    ttl = await records.store.ttl("progress:acme:s1")
    assert ttl is not None and 0 < ttl <= LIVE_PROGRESS_TTL
    await student.close()
