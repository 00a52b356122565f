"""A lesson over the wire (issue 13): marks by kind, clearing, options, hidden polls, the timer.

Every role's frames are checked as it receives them, in JSON and MessagePack; the
contract check of ``tests/client.py`` holds each frame to ``/asyncapi.json``.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import pytest

from tests.client import Client
from tests.conftest import TENANTS, RunningServer, ServerFactory

ENCODINGS = ["json", "msgpack"]
CIRCLE = {"type": "circle", "x": 0.25, "y": 0.5, "r": 0.05, "color": "blue"}


async def publish(client: Client, **event: Any) -> dict[str, Any]:
    return await client.request("publish", session="s1", event=event)


def events(frames: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [f["event"] for f in frames if f.get("type") == "event"
            and f["event"].get("kind") == kind]


async def room(server: RunningServer, encoding: str) -> dict[str, Client]:
    """A trainer, two students and a planner, the trainer in ``encoding``, the rest mixed."""
    other = "msgpack" if encoding == "json" else "json"
    return {
        "trainer": await server.member("t1", "trainer", encoding=encoding, name="Tessa T"),
        "sam": await server.member("u1", "student", encoding=other, name="Sam S"),
        "sue": await server.member("u2", "student", encoding=encoding, name="Sue S"),
        "planner": await server.member("p1", "planner", encoding=other, name="Pim P"),
    }


async def close_all(clients: dict[str, Client]) -> None:
    for client in clients.values():
        await client.close()


@pytest.mark.parametrize("encoding", ENCODINGS)
async def test_marks_are_checked_by_kind_and_cleared_for_everyone(
    server: RunningServer, encoding: str,
) -> None:
    people = await room(server, encoding)
    sam, sue, trainer = people["sam"], people["sue"], people["trainer"]
    refused = await publish(sam, kind="annotation.add", annotation_id="bad", screen="s",
                            shape={**CIRCLE, "r": 0.9})
    assert refused["code"] == "bad_request" and "(field 'r')" in refused["message"]
    for client, mark, screen in ((sam, "sam-1", "s"), (sam, "sam-2", "t"), (sue, "sue-1", "s")):
        assert (await publish(client, kind="annotation.add", annotation_id=mark, screen=screen,
                              shape=CIRCLE))["type"] == "published"
    other = await publish(sam, kind="annotation.clear", participant="p-not-sam")
    assert other["code"] == "forbidden"
    own = await publish(sam, kind="annotation.clear", screen="s")
    assert own["type"] == "published"
    for client in people.values():
        cleared = await client.expect(lambda f: f.get("event", {}).get("kind")
                                      == "annotation.clear")
        assert cleared["offset"] == own["offset"] and cleared["event"]["removed"] == ["sam-1"]
        assert cleared["event"]["screen"] == "s"
    everyone = await publish(trainer, kind="annotation.clear")
    assert everyone["type"] == "published"
    nothing = await publish(trainer, kind="annotation.clear")
    assert (nothing["code"], nothing["message"]) == ("bad_request", "no annotations to clear")
    late = await server.member("u3", "student", encoding=encoding)
    history = await late.request("history", session="s1")
    assert [e["event"]["removed"] for e in history["events"]
            if e["event"]["kind"] == "annotation.clear"] == [["sam-1"], ["sam-2", "sue-1"]]
    await late.close()
    await close_all(people)


@pytest.mark.parametrize("encoding", ENCODINGS)
async def test_the_trainer_switches_student_pointers_on_and_marks_off(
    server: RunningServer, encoding: str,
) -> None:
    people = await room(server, encoding)
    sam, trainer = people["sam"], people["trainer"]
    joined = next(f for f in sam.received if f.get("type") == "joined")
    assert joined["state"]["options"] == {"student_marks": True, "student_pointers": False}
    refused = await publish(sam, kind="pointer", x=0.5, y=0.5)
    assert (refused["code"], refused["message"]) == ("forbidden",
                                                     "student pointers are off in this session")
    assert (await publish(trainer, kind="session.options", student_pointers=True,
                          student_marks=False))["type"] == "published"
    for client in people.values():
        options = await client.expect(lambda f: f.get("event", {}).get("kind")
                                      == "session.options")
        assert options["event"]["student_pointers"] is True
        assert options["event"]["student_marks"] is False
    assert (await publish(sam, kind="pointer", x=0.5, y=0.5))["type"] == "published"
    pointer = await people["sue"].expect(lambda f: f.get("event", {}).get("kind") == "pointer")
    assert pointer["event"]["by"]["pid"] == joined["me"]["pid"]
    mark = await publish(sam, kind="annotation.add", annotation_id="a", screen="s", shape=CIRCLE)
    assert (mark["code"], mark["message"]) == ("forbidden",
                                               "the trainer has switched student marks off")
    again = await server.member("u1", "student", encoding=encoding)
    state = next(f for f in again.received if f.get("type") == "joined")["state"]
    assert state["options"] == {"student_marks": False, "student_pointers": True}
    await again.close()
    await close_all(people)


async def test_a_tenants_defaults_are_the_options_until_the_trainer_sets_them(
    start_server: ServerFactory,
) -> None:
    tenants = {**TENANTS, "acme": {**TENANTS["acme"], "student_marks": False,
                                   "student_pointers": True}}
    server = await start_server(tenants_raw=json.dumps(tenants))
    student = await server.member("u1", "student")
    joined = next(f for f in student.received if f.get("type") == "joined")
    assert joined["state"]["options"] == {"student_marks": False, "student_pointers": True}
    assert (await publish(student, kind="pointer", x=0, y=1))["type"] == "published"
    assert (await publish(student, kind="annotation.add", annotation_id="a", screen="s",
                          shape=CIRCLE))["code"] == "forbidden"
    await student.close()


@pytest.mark.parametrize("encoding", ENCODINGS)
async def test_hidden_results_reach_trainers_only_until_revealed(
    server: RunningServer, encoding: str,
) -> None:
    people = await room(server, encoding)
    sam, sue, trainer, planner = (people[k] for k in ("sam", "sue", "trainer", "planner"))
    await publish(trainer, kind="poll.open", poll="q1", question="Safe?", options=["yes", "no"],
                  hide_results=True)
    await publish(sam, kind="poll.answer", poll="q1", option=0)
    for client in (sam, sue, planner):
        tally = await client.expect(lambda f: f.get("event", {}).get("kind") == "poll.tally")
        assert tally["event"] == {"kind": "poll.tally", "poll": "q1", "hidden": True,
                                  "at": tally["event"]["at"]}
    answer = await trainer.expect(lambda f: f.get("event", {}).get("kind") == "poll.answer")
    assert answer["event"]["counts"] == [1, 0] and answer["event"]["hidden"] is True
    reloaded = await server.member("u2", "student", encoding=encoding)
    poll = next(f for f in reloaded.received if f.get("type") == "joined")["state"]["poll"]
    assert poll == {"poll": "q1", "question": "Safe?", "options": ["yes", "no"], "hidden": True}
    await publish(trainer, kind="poll.close", poll="q1")
    for client in (sam, planner):
        closed = await client.expect(lambda f: f.get("event", {}).get("kind") == "poll.close")
        assert "counts" not in closed["event"] and closed["event"]["hidden"] is True
    closed = await trainer.expect(lambda f: f.get("event", {}).get("kind") == "poll.close")
    assert closed["event"]["counts"] == [1, 0]
    refused = await publish(trainer, kind="poll.reveal", poll="q0")
    assert refused["code"] == "bad_request"
    revealed = await publish(trainer, kind="poll.reveal", poll="q1")
    assert revealed["type"] == "published"
    for client in (*people.values(), reloaded):
        reveal = await client.expect(lambda f: f.get("event", {}).get("kind") == "poll.reveal")
        assert reveal["event"]["counts"] == [1, 0] and reveal["offset"] == revealed["offset"]
    assert (await publish(trainer, kind="poll.reveal", poll="q1"))["message"] == (
        "the results of that poll are already shown")
    late = await server.member("u3", "student", encoding=encoding)
    state = next(f for f in late.received if f.get("type") == "joined")["state"]
    assert state["poll"] is None
    assert state["last_poll"] == {"poll": "q1", "question": "Safe?", "options": ["yes", "no"],
                                  "counts": [1, 0]}
    for client in (reloaded, late):
        await client.close()
    await close_all(people)


async def test_a_poll_that_shows_its_results_is_as_before(server: RunningServer) -> None:
    people = await room(server, "json")
    await publish(people["trainer"], kind="poll.open", poll="q1", question="?",
                  options=["a", "b"])
    await publish(people["sam"], kind="poll.answer", poll="q1", option=1)
    tally = await people["sue"].expect(lambda f: f.get("event", {}).get("kind") == "poll.tally")
    assert tally["event"]["counts"] == [0, 1] and "hidden" not in tally["event"]
    await publish(people["trainer"], kind="poll.close", poll="q1")
    late = await server.member("u3", "student")
    state = next(f for f in late.received if f.get("type") == "joined")["state"]
    assert state["last_poll"] == {"poll": "q1", "question": "?", "options": ["a", "b"],
                                  "counts": [0, 1]}
    await late.close()
    await close_all(people)


@pytest.mark.parametrize("encoding", ENCODINGS)
async def test_the_lesson_timer_in_events_and_state(server: RunningServer, encoding: str) -> None:
    trainer = await server.member("t1", "trainer", encoding=encoding)
    student = await server.member("u1", "student", encoding=encoding)
    assert (await publish(trainer, kind="timer.stop"))["message"] == "no timer is running"
    before = time.time()
    started = await publish(trainer, kind="timer.start", seconds=1)
    assert started["type"] == "published"
    event = (await student.expect("event"))["event"]
    assert event["kind"] == "timer.start" and event["ends_at"] == event["at"] + 1
    assert before <= event["at"] <= time.time()
    joined = await server.member("u2", "student", encoding=encoding)
    timer = next(f for f in joined.received if f.get("type") == "joined")["state"]["timer"]
    assert timer == {"seconds": 1, "ends_at": event["ends_at"]}
    await asyncio.sleep(max(0.0, event["ends_at"] - time.time()) + 0.05)
    late = await server.member("u3", "student", encoding=encoding)
    assert next(f for f in late.received if f.get("type") == "joined")["state"]["timer"] is None
    assert (await publish(trainer, kind="timer.stop"))["code"] == "bad_request"  # it ran out
    await publish(trainer, kind="timer.start", seconds=14400)
    assert (await publish(trainer, kind="timer.stop"))["type"] == "published"
    over = await publish(trainer, kind="timer.start", seconds=14401)
    assert over["code"] == "bad_request" and "seconds" in over["message"]
    for client in (trainer, student, joined, late):
        await client.close()
