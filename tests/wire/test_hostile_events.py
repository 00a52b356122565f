"""Hostile events over the wire: bounded live state, and retries that cannot skip validation."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from classroom.domain import limits
from tests.client import Client
from tests.conftest import RunningServer, ServerFactory
from tests.multinode.conftest import REDIS_URL, drop_prefix

ACME = {"Authorization": "Bearer acme-key"}
USED = "client_msg_id was already used for another event"


@pytest.fixture(params=["memory", "redis"])
async def lesson(
    request: pytest.FixtureRequest, start_server: ServerFactory
) -> AsyncIterator[tuple[RunningServer, httpx.AsyncClient]]:
    """A rostered session (trainer t1, students u1 and u2), embedded and on real Redis."""
    options: dict[str, object] = {}
    prefix = f"test-{uuid.uuid4().hex[:12]}"
    if request.param == "redis":
        options = {"redis_url": REDIS_URL, "redis_prefix": prefix}
    server = await start_server(rate_limit_per_second=1000, rate_limit_burst=1000, **options)
    roster = {"title": "Heftruck", "trainers": ["t1"], "screens": ["intro", "part-1"],
              "students": [{"sub": f"u{n}", "name": f"Student{n}"} for n in (1, 2)]}
    async with httpx.AsyncClient(base_url=server.http_url) as http:
        answer = await http.put("/api/v1/sessions/s1", json=roster, headers=ACME)
        assert answer.status_code == 200
        yield server, http
    if request.param == "redis":
        await drop_prefix(REDIS_URL, prefix)


async def publish(client: Client, event: dict[str, Any], msg_id: str | None = None) -> Any:
    fields: dict[str, Any] = {"session": "s1", "event": event}
    if msg_id is not None:
        fields["client_msg_id"] = msg_id
    return await client.request("publish", **fields)


async def offset(client: Client) -> int:
    reply = await client.request("history", session="s1")
    assert reply["type"] == "history", reply
    return int(reply["offset"])


async def progress_row(http: httpx.AsyncClient, sub: str) -> dict[str, Any]:
    answer = await http.get("/api/v1/sessions/s1/progress", headers=ACME)
    assert answer.status_code == 200, answer.text
    rows = {row["participant"]["sub"]: row for row in answer.json()["students"]}
    return dict(rows[sub])


# -- point 1: bounded live state ----------------------------------------------------------


async def test_marks_per_person_per_screen_are_refused_and_nothing_is_stored(
    start_server: ServerFactory,
) -> None:
    server = await start_server(rate_limit_per_second=1000, rate_limit_burst=1000)
    trainer = await server.member("t1", "trainer", name="Tessa Trainer")
    student = await server.member("u1", "student", name="Sam Student")
    for n in range(limits.ANNOTATIONS_PER_PERSON_PER_SCREEN):
        reply = await publish(student, {"kind": "annotation.add", "annotation_id": f"a{n}",
                                        "screen": "intro", "shape": {"type": "dot", "n": n}})
        assert reply["type"] == "published", reply
    before = await offset(trainer)
    assert before == limits.ANNOTATIONS_PER_PERSON_PER_SCREEN
    refused = await publish(student, {"kind": "annotation.add", "annotation_id": "one-more",
                                      "screen": "intro", "shape": {"type": "dot"}})
    assert refused["type"] == "error" and refused["code"] == "bad_request"
    assert refused["message"] == (
        "you already have 50 annotations on this screen; remove one first")
    assert await offset(trainer) == before
    await trainer.quiet(0.3)
    await trainer.request("publish", session="s1",
                          event={"kind": "screen.navigate", "screen": "intro"})
    late = await server.member("u2", "student", name="Late Comer")
    marks = late.received[-1]["state"]["annotations"]
    assert len(marks) == limits.ANNOTATIONS_PER_PERSON_PER_SCREEN
    assert "one-more" not in {mark["annotation_id"] for mark in marks}
    elsewhere = await publish(student, {"kind": "annotation.add", "annotation_id": "one-more",
                                        "screen": "part-1", "shape": {"type": "dot"}})
    assert elsewhere["type"] == "published"
    for client in (trainer, student, late):
        await client.close()


async def test_a_stroke_with_too_many_points_is_refused(server: RunningServer) -> None:
    student = await server.member("u1", "student", name="Sam Student")
    points = [[0, 0]] * (limits.SHAPE_MAX_POINTS + 1)
    refused = await publish(student, {"kind": "annotation.add", "annotation_id": "a1",
                                      "screen": "intro", "shape": {"points": points}})
    assert refused["code"] == "bad_request"
    assert refused["message"] == "shape has more than 1000 points"
    assert await offset(student) == 0
    ok = await publish(student, {"kind": "annotation.add", "annotation_id": "a1",
                                 "screen": "intro", "shape": {"points": points[1:]}})
    assert ok["type"] == "published" and ok["offset"] == 1
    await student.close()


# -- point 2: a reused client_msg_id does not skip validation -------------------------------


@pytest.mark.parametrize("hostile", [
    {"kind": "progress", "screen": "intro", "completed": "x" * 5000},
    {"kind": "progress", "screen": "intro", "completed": True, "score": 50, "extra": 1},
    {"kind": "progress", "screen": ["x"] * 100, "score": "high"},
    {"kind": "progress", "screen": "intro", "score": 1e300},
])
async def test_a_progress_retry_with_a_hostile_payload_is_refused(
    lesson: tuple[RunningServer, httpx.AsyncClient], hostile: dict[str, Any],
) -> None:
    server, http = lesson
    student = await server.member("u1", "student", name="Student1")
    first = await publish(student, {"kind": "progress", "screen": "intro", "completed": True,
                                    "score": 50}, "m-1")
    assert first["type"] == "published" and "offset" not in first
    replay = await publish(student, hostile, "m-1")
    assert replay["type"] == "error" and replay["code"] == "bad_request", replay
    row = await progress_row(http, "u1")
    assert row["screen"] == "intro" and row["completed"] == ["intro"] and row["score"] == 50
    await student.close()


async def test_a_progress_retry_of_another_report_is_refused_an_identical_one_recorded(
    lesson: tuple[RunningServer, httpx.AsyncClient],
) -> None:
    server, http = lesson
    student = await server.member("u1", "student", name="Student1")
    report = {"kind": "progress", "screen": "intro", "completed": True}
    assert (await publish(student, report, "m-1"))["type"] == "published"
    other = await publish(student, {"kind": "progress", "screen": "part-1", "completed": True},
                          "m-1")
    assert other["code"] == "bad_request" and other["message"] == USED
    same = await publish(student, {"completed": True, "screen": "intro", "kind": "progress"},
                         "m-1")
    assert same["type"] == "published" and "offset" not in same
    row = await progress_row(http, "u1")
    assert row["screen"] == "intro" and row["completed"] == ["intro"]
    # The id of a stored event cannot carry a progress report either.
    raised = await publish(student, {"kind": "hand.raise"}, "m-2")
    assert raised["type"] == "published"
    hidden = await publish(student, {"kind": "progress", "screen": "part-1", "score": 99}, "m-2")
    assert hidden["code"] == "bad_request" and hidden["message"] == USED
    hostile = await publish(student, {"kind": "progress", "screen": "part-1",
                                      "completed": "x" * 5000}, "m-2")
    assert hostile["code"] == "bad_request"
    row = await progress_row(http, "u1")
    assert row["screen"] == "intro" and row["completed"] == ["intro"] and row["score"] is None
    await student.close()


async def test_a_chat_retry_with_another_text_is_refused_an_identical_one_stored_once(
    lesson: tuple[RunningServer, httpx.AsyncClient],
) -> None:
    server, _ = lesson
    student = await server.member("u1", "student", name="Student1")
    first = await publish(student, {"kind": "chat", "text": "hello"}, "m-1")
    assert first["type"] == "published" and first["offset"] == 1
    other = await publish(student, {"kind": "chat", "text": "something else"}, "m-1")
    assert other["type"] == "error" and other["code"] == "bad_request"
    assert other["message"] == USED
    again = await publish(student, {"kind": "chat", "text": "hello"}, "m-1")
    assert again["type"] == "published"
    assert (again["offset"], again["epoch"]) == (first["offset"], first["epoch"])
    invalid = await publish(student, {"kind": "chat", "text": "hello", "by": {"pid": "x"}}, "m-1")
    assert invalid["code"] == "bad_request"
    assert invalid["message"] == "event has a field this kind does not take"
    history = await student.request("history", session="s1")
    assert [e["event"].get("text") for e in history["events"]] == ["hello"]
    assert history["offset"] == 1
    # Ephemeral kinds are never deduplicated, whatever id they carry.
    reaction = await publish(student, {"kind": "reaction", "emoji": "👍"}, "m-1")
    assert reaction["type"] == "published" and "offset" not in reaction
    await student.close()


async def test_a_planner_replaying_a_used_id_cannot_publish(
    lesson: tuple[RunningServer, httpx.AsyncClient],
) -> None:
    server, http = lesson
    student = await server.member("u1", "student", name="Student1")
    report = {"kind": "progress", "screen": "intro", "completed": True}
    assert (await publish(student, report, "m-1"))["type"] == "published"
    chat = await publish(student, {"kind": "chat", "text": "hello"}, "m-2")
    assert chat["offset"] == 1
    # The same user with a planner's token has the same pid, so the same keys.
    same_user = await server.member("u1", "planner", name="Student1")
    other = await server.member("p1", "planner", name="Pim Planner")
    for planner in (same_user, other):
        for event, msg_id in ((report, "m-1"), ({"kind": "chat", "text": "hello"}, "m-2")):
            reply = await publish(planner, event, msg_id)
            assert reply["type"] == "error" and reply["code"] == "forbidden", reply
    row = await progress_row(http, "u1")
    assert row["participant"]["role"] == "student"
    assert await offset(student) == 1
    for client in (student, same_user, other):
        await client.close()
