"""Fuzzed WebSocket frames against a real server: every command and event kind, both encodings.

Each property runs all its examples against one server (the ``lesson`` fixture),
and after every example checks that the node is unharmed
(:meth:`~tests.fuzz.harness.Lesson.check_unharmed`): another client still gets
``pong`` and the next normal event, and a refused command stored nothing and sent
nothing. Each property exists once per encoding (``..._json``, ``..._msgpack``).
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from hypothesis import assume, given, note
from hypothesis import strategies as st

from tests.client import Client
from tests.conftest import ServerFactory
from tests.fuzz import strategies as s
from tests.fuzz.harness import FUZZ_SERVER, Lesson, open_lesson, send_and_check, still_works
from tests.fuzz.profiles import TIMEOUT, fuzz_settings

pytestmark = TIMEOUT

Property = Callable[..., Any]
"""A property made for one encoding (Hypothesis runs it; pytest-asyncio gives it a loop)."""


@pytest.fixture
async def lesson(start_server: ServerFactory) -> AsyncIterator[Lesson]:
    """One server for all the examples of a test, with session ``s1`` under way."""
    server = await start_server(**FUZZ_SERVER)
    lesson = await open_lesson(server)
    yield lesson
    await lesson.observer.close()
    await lesson.witness.close()


def commands_fuzzed(encoding: s.Encoding) -> Property:
    """Commands of every type with fields missing, wrong, at and past their bounds, unknown."""

    @fuzz_settings(100)
    @given(role=st.sampled_from(s.ROLES), command=s.commands(encoding))
    async def test(lesson: Lesson, role: str, command: tuple[str, dict[str, Any]]) -> None:
        assume(not (role == "trainer" and s.ends_session(command[1].get("event"))))
        client, token = await lesson.member(role, encoding)
        frame = s.resolve(command[1], lesson.known(token))
        note(f"frame: {frame!r:.3000}")
        before = await lesson.offset()
        answer = await send_and_check(client, s.encode(frame, encoding), encoding,
                                      connected=True)
        note(f"answer: {answer.reply!r:.1000}")
        if answer.closed is None:
            await still_works(client, token, connected=True)
            await client.close()
        await lesson.check_unharmed(before, answer)

    return test


def events_fuzzed(encoding: s.Encoding) -> Property:
    """``publish`` of every event kind, by every role, with a payload wrong in every way.

    A trainer's ``session.end`` is left to :func:`session_end_fuzzed` (it would end ``s1``).
    """
    by_trainer = tuple(kind for kind in s.EVENT_KINDS if kind != "session.end")

    @fuzz_settings(100)
    @given(role_and_publish=st.one_of(
        st.tuples(st.just("trainer"), s.publishes(encoding, by_trainer)),
        st.tuples(st.sampled_from(s.ROLES[1:]), s.publishes(encoding))))
    async def test(lesson: Lesson, role_and_publish: tuple[str, tuple[str, Any]]) -> None:
        role, (kind, command) = role_and_publish
        assume(not (role == "trainer" and s.ends_session(command.get("event"))))
        client, token = await lesson.member(role, encoding)
        frame = s.resolve(command, lesson.known(token))
        note(f"frame: {frame!r:.3000}")
        before = await lesson.offset()
        cohort = await lesson.cohort() if kind == "progress" else None
        answer = await send_and_check(client, s.encode(frame, encoding), encoding,
                                      connected=True)
        note(f"answer: {answer.reply!r:.1000}")
        if answer.refused:
            if answer.reply is not None and answer.frame is not None:
                assert answer.reply["code"] in ("bad_request", "forbidden"), answer
            if cohort is not None:  # a refused progress report is not in the cohort records
                assert await lesson.cohort() == cohort
        if answer.closed is None:
            await still_works(client, token, connected=True)
            await client.close()
        await lesson.check_unharmed(before, answer)

    return test


SHAPE_REFUSALS = {
    "event field 'shape' has the wrong type or is out of bounds", "shape must be a JSON object",
    "shape is nested more than 32 levels deep", "shape is larger than 16384 bytes of JSON",
    "shape has more than 1000 points",
}
KIND_REFUSAL = re.compile(r"^(a (circle|stroke|text) shape (needs .* \(field '\w+'\)|takes only "
                          r"type, [a-z, ]+)|shape color must be one of [a-z, ]+)$")
"""How a shape of a known kind that breaks that kind's rules is refused (section 7, shapes)."""


def shapes_fuzzed(encoding: s.Encoding) -> Property:
    """``annotation.add`` with any ``shape``, the one free-form value of the protocol.

    A refused shape gets one of the documented messages (section 7, event limits); an
    accepted one reaches every member, and a member joining afterwards, in either
    encoding, finds it unchanged in ``joined.state``. Then it is removed again.
    """

    @fuzz_settings(60)
    @given(role=st.sampled_from(["trainer", "student"]), shape=s.shapes(encoding))
    async def test(lesson: Lesson, role: str, shape: Any) -> None:
        client, _ = await lesson.member(role, encoding)
        annotation_id = f"a-{lesson.sub()}"
        frame = {"type": "publish", "id": 9, "session": "s1",
                 "event": {"kind": "annotation.add", "annotation_id": annotation_id,
                           "screen": "intro", "shape": shape}}
        note(f"frame: {frame!r:.3000}")
        before = await lesson.offset()
        answer = await send_and_check(client, s.encode(frame, encoding), encoding,
                                      connected=True)
        note(f"answer: {answer.reply!r:.1000}")
        if answer.reply is not None and answer.refused and answer.frame is not None:
            # (a shape with NaN is no JSON: not even a frame; a large one may be too big)
            assert answer.reply["code"] == "bad_request", answer
            message = answer.reply["message"]
            assert message in SHAPE_REFUSALS or KIND_REFUSAL.match(message), answer
        await lesson.check_unharmed(before, answer)
        if not answer.refused:
            sent = s.server_view(s.encode(frame, encoding), encoding)
            assert sent is not None
            for other in s.ENCODINGS:
                late = await lesson.server.client(lesson.sub(), "student", encoding=other)
                joined = await late.request("join", session="s1")
                assert joined["type"] == "joined", joined
                kept = {a["annotation_id"]: a for a in joined["state"]["annotations"]}
                assert kept[annotation_id]["shape"] == sent["event"]["shape"], kept
                await late.close()
            removed = await client.request("publish", session="s1", event={
                "kind": "annotation.remove", "annotation_id": annotation_id})
            assert removed["type"] == "published", removed
            await lesson.absorb(removed["offset"])
        if answer.closed is None:
            await client.close()

    return test


def first_frames_fuzzed(encoding: s.Encoding) -> Property:
    """Before ``connect``: garbage stays a bad request; any command is 4401 (section 3)."""

    @fuzz_settings(60)
    @given(role=st.sampled_from(s.ROLES), payload=st.one_of(
        s.commands(encoding, min_ops=0).map(lambda command: command[1]),
        s.raw_garbage(encoding)))
    async def test(lesson: Lesson, role: str, payload: Any) -> None:
        token = lesson.server.token(lesson.sub(), role)
        if not isinstance(payload, str | bytes):
            payload = s.encode(s.resolve(payload, lesson.known(token)), encoding)
        note(f"payload: {payload!r:.3000}")
        client = await Client.open(lesson.server.ws_url, encoding)
        before = await lesson.offset()
        answer = await send_and_check(client, payload, encoding, connected=False)
        note(f"answer: {answer.reply!r:.1000}")
        if answer.closed is None:
            assert answer.reply is not None
            await still_works(client, token, connected=answer.reply["type"] == "connected")
            await client.close()
        await lesson.check_unharmed(before, answer)

    return test


def garbage_fuzzed(encoding: s.Encoding) -> Property:
    """Raw bytes and text that are no frame of the encoding, or barely one; any value."""

    @fuzz_settings(60)
    @given(role=st.sampled_from(s.ROLES), payload=st.one_of(
        s.raw_garbage(encoding), s.values(encoding).map(lambda v: s.encode(v, encoding))))
    async def test(lesson: Lesson, role: str, payload: str | bytes) -> None:
        client, token = await lesson.member(role, encoding)
        note(f"payload: {payload!r:.3000}")
        before = await lesson.offset()
        answer = await send_and_check(client, payload, encoding, connected=True)
        note(f"answer: {answer.reply!r:.1000}")
        if answer.closed is None:
            await still_works(client, token, connected=True)
            await client.close()
        await lesson.check_unharmed(before, answer)

    return test


def session_end_fuzzed(encoding: s.Encoding) -> Property:
    """A trainer's ``session.end`` in a session of its own: it ends it, or changes nothing.

    ``session.end`` ignores other fields (section 7); anything else wrong is refused and
    the session goes on. An ended session refuses a later ``join`` (``forbidden``).
    """
    edges = s.command_edges(encoding)
    event = st.one_of(
        s.events(encoding, ("session.end",)).map(lambda pair: pair[1]),
        st.builds(lambda extra: {"kind": "session.end", **extra},
                  st.dictionaries(s.UNKNOWN_FIELDS, s.values(encoding), max_size=3)))
    command = event.flatmap(lambda e: s.mutated(
        {"type": "publish", "id": 5, "session": s.UNIQUE, "event": e}, edges, encoding,
        own=frozenset({"id", "client_msg_id", "type"}), min_ops=0))

    @fuzz_settings(30)
    @given(command=command)
    async def test(lesson: Lesson, command: dict[str, Any]) -> None:
        server, session = lesson.server, f"end-{lesson.sub()}"
        token = server.token(lesson.sub(), "trainer", [session])
        client = await Client.open(server.ws_url, encoding)
        assert (await client.connect(token))["type"] == "connected"
        assert (await client.request("join", session=session))["type"] == "joined"
        frame = s.resolve(command, {**lesson.known(token), s.UNIQUE: session})
        note(f"frame: {frame!r:.3000}")
        before = await lesson.offset()
        answer = await send_and_check(client, s.encode(frame, encoding), encoding,
                                      connected=True)
        note(f"answer: {answer.reply!r:.1000}")
        published = answer.reply is not None and answer.reply["type"] == "published"
        ended = published and s.ends_session(frame.get("event"))
        if ended:
            assert answer.reply is not None and isinstance(answer.reply["offset"], int), answer
            assert await client.closed_code() == 1000  # it had joined no other session
        elif answer.closed is None:
            await still_works(client, token, connected=True)
            await client.close()
        check = await server.client(lesson.sub(), "trainer", [session])
        rejoin = await check.request("join", session=session)
        if ended:
            assert rejoin["type"] == "error" and rejoin["code"] == "forbidden", rejoin
            assert rejoin["message"] == "this session has ended", rejoin
        else:  # a mutation may have made it another event the trainer may publish
            stored = answer.reply.get("offset", 0) if answer.reply and published else 0
            assert rejoin["type"] == "joined" and rejoin["offset"] == stored, rejoin
        await check.close()
        await lesson.check_unharmed(before, None)

    return test


test_every_command_kind_fuzzed_json = commands_fuzzed("json")
test_every_command_kind_fuzzed_msgpack = commands_fuzzed("msgpack")
test_every_event_kind_fuzzed_json = events_fuzzed("json")
test_every_event_kind_fuzzed_msgpack = events_fuzzed("msgpack")
test_annotation_shapes_fuzzed_json = shapes_fuzzed("json")
test_annotation_shapes_fuzzed_msgpack = shapes_fuzzed("msgpack")
test_first_frame_fuzzed_json = first_frames_fuzzed("json")
test_first_frame_fuzzed_msgpack = first_frames_fuzzed("msgpack")
test_garbage_frames_json = garbage_fuzzed("json")
test_garbage_frames_msgpack = garbage_fuzzed("msgpack")
test_session_end_by_a_trainer_fuzzed_json = session_end_fuzzed("json")
test_session_end_by_a_trainer_fuzzed_msgpack = session_end_fuzzed("msgpack")
