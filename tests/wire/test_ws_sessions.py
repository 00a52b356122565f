"""Sessions over the wire (sections 3 to 5): join, publish, pushes, recovery, history."""

from __future__ import annotations

import asyncio

import pytest

from tests.conftest import RunningServer

TRAINER = {"name": "Tessa Trainer", "email": "tessa@example.nl"}
STUDENT_A = {"name": "Sam Student", "email": "sam@example.nl", "phone": "+31611111111"}
STUDENT_B = {"name": "Noor de Vries", "email": "noor@example.nl", "phone": "+31622222222"}


async def test_join_reports_position_state_and_presence(server: RunningServer) -> None:
    trainer = await server.client("t1", "trainer", **TRAINER)
    joined = await trainer.request("join", session="s1")
    assert joined["type"] == "joined" and joined["session"] == "s1"
    assert joined["offset"] == 0 and isinstance(joined["epoch"], str) and joined["epoch"]
    assert joined["recovered"] is False
    assert joined["state"] == {"screen": None, "locked": False, "poll": None, "hands": [],
                               "annotations": [], "timer": None, "last_poll": None,
                               "options": {"student_marks": True, "student_pointers": False}}
    assert [p["role"] for p in joined["participants"]] == ["trainer"]
    await trainer.close()


async def test_join_of_a_session_the_token_does_not_grant_is_forbidden(
    server: RunningServer,
) -> None:
    client = await server.client("u1", "student", ["s1"])
    reply = await client.request("join", session="s2")
    assert reply["code"] == "forbidden"
    assert (await client.request("join", session="s1"))["type"] == "joined"
    again = await client.request("join", session="s1")
    assert again["code"] == "bad_request"
    await client.close()


@pytest.mark.parametrize("encoding", ["json", "msgpack"])
async def test_navigation_reaches_every_member_with_offsets(
    server: RunningServer, encoding: str
) -> None:
    trainer = await server.member("t1", "trainer", encoding=encoding, **TRAINER)
    student = await server.member("u1", "student", encoding="json", **STUDENT_A)
    other = await server.member("u2", "student", encoding="msgpack", **STUDENT_B)
    published = await trainer.request(
        "publish", session="s1", event={"kind": "screen.navigate", "screen": "intro-2"}
    )
    assert published["type"] == "published" and published["offset"] == 1
    for client in (trainer, student, other):
        frame = await client.expect("event")
        assert frame["offset"] == 1 and frame["epoch"] == published["epoch"]
        assert frame["event"]["kind"] == "screen.navigate"
        assert frame["event"]["screen"] == "intro-2"
        assert frame["event"]["by"]["role"] == "trainer"
        assert isinstance(frame["event"]["at"], float)
    late = await server.member("u3", "student", name="Late Comer")
    joined = late.received[-1]
    assert joined["state"]["screen"] == "intro-2" and joined["offset"] == 1
    for client in (trainer, student, other, late):
        await client.close()


async def test_concurrent_publishers_every_member_sees_all_in_order(
    server: RunningServer,
) -> None:
    trainer = await server.member("t1", "trainer", **TRAINER)
    students = [await server.member(f"u{i}", "student", name=f"S {i}") for i in range(3)]
    members = [trainer, *students]
    per_member = 20

    async def chat(client: object, who: int) -> None:
        for n in range(per_member):
            reply = await client.request(  # type: ignore[attr-defined]
                "publish", session="s1", event={"kind": "chat", "text": f"{who}-{n}"}
            )
            assert reply["type"] == "published", reply

    await asyncio.gather(*(chat(c, i) for i, c in enumerate(members)))
    total = per_member * len(members)
    for client in members:
        offsets = []
        while len(offsets) < total:
            frame = await client.expect(lambda f: f.get("type") == "event")
            offsets.append(frame["offset"])
        assert offsets == list(range(1, total + 1))
    for client in members:
        await client.close()


async def test_pointer_and_reactions_are_ephemeral(server: RunningServer) -> None:
    trainer = await server.member("t1", "trainer", **TRAINER)
    student = await server.member("u1", "student", **STUDENT_A)
    reply = await trainer.request(
        "publish", session="s1", event={"kind": "pointer", "x": 0.25, "y": 1}
    )
    assert reply["type"] == "published" and "offset" not in reply
    frame = await student.expect("event")
    assert "offset" not in frame and "epoch" not in frame
    assert frame["event"]["kind"] == "pointer" and frame["event"]["x"] == 0.25
    await student.request("publish", session="s1", event={"kind": "reaction", "emoji": "👍"})
    reaction = await trainer.expect(lambda f: f.get("event", {}).get("kind") == "reaction")
    assert reaction["event"]["emoji"] == "👍" and "offset" not in reaction
    history = await student.request("history", session="s1")
    assert history["events"] == [] and history["offset"] == 0
    await trainer.close()
    await student.close()


async def test_presence_counts_a_user_once_across_connections(server: RunningServer) -> None:
    trainer = await server.member("t1", "trainer", **TRAINER)
    phone = await server.member("u1", "student", **STUDENT_A)
    joined = await trainer.expect("presence.join")
    assert joined["participant"]["role"] == "student"
    assert joined["participant"]["email"] == STUDENT_A["email"]
    laptop = await server.member("u1", "student", **STUDENT_A)
    presence = await trainer.request("presence", session="s1")
    assert sorted(p["role"] for p in presence["participants"]) == ["student", "trainer"]
    await phone.close()
    assert await trainer.quiet(0.3) == []
    await laptop.request("leave", session="s1")
    left = await trainer.expect("presence.leave")
    assert left["participant"]["pid"] == joined["participant"]["pid"]
    presence = await trainer.request("presence", session="s1")
    assert [p["role"] for p in presence["participants"]] == ["trainer"]
    await laptop.close()
    await trainer.close()


async def test_leave_then_publish_is_refused(server: RunningServer) -> None:
    student = await server.member("u1", "student", **STUDENT_A)
    left = await student.request("leave", session="s1")
    assert left["type"] == "left" and left["session"] == "s1"
    reply = await student.request("publish", session="s1", event={"kind": "chat", "text": "x"})
    assert reply["code"] == "bad_request"
    assert (await student.request("leave", session="s1"))["code"] == "bad_request"
    await student.close()


async def test_rejoin_with_since_replays_exactly_what_was_missed(server: RunningServer) -> None:
    trainer = await server.member("t1", "trainer", **TRAINER)
    student = await server.member("u1", "student", **STUDENT_A)
    await trainer.request("publish", session="s1", event={"kind": "chat", "text": "one"})
    first = await student.expect("event")
    await student.close()
    for text in ("two", "three", "four"):
        await trainer.request("publish", session="s1", event={"kind": "chat", "text": text})
    back = await server.client("u1", "student", **STUDENT_A)
    since = {"epoch": first["epoch"], "offset": first["offset"]}
    joined = await back.request("join", session="s1", since=since)
    assert joined["recovered"] is True and joined["offset"] == 4
    replayed = [f for f in back.inbox if f["type"] == "event"]
    back.inbox.clear()
    assert [f["event"]["text"] for f in replayed] == ["two", "three", "four"]
    assert [f["offset"] for f in replayed] == [2, 3, 4]
    await trainer.request("publish", session="s1", event={"kind": "chat", "text": "five"})
    live = await back.expect(lambda f: f.get("type") == "event" and f["offset"] == 5)
    assert live["event"]["text"] == "five"
    assert [f for f in await back.quiet(0.2) if f.get("type") == "event"] == []
    await trainer.close()
    await back.close()


async def test_since_with_another_epoch_is_not_recovered(server: RunningServer) -> None:
    trainer = await server.member("t1", "trainer", **TRAINER)
    await trainer.request("publish", session="s1", event={"kind": "screen.navigate",
                                                          "screen": "p2"})
    student = await server.client("u1", "student", **STUDENT_A)
    joined = await student.request("join", session="s1",
                                   since={"epoch": "some-old-epoch", "offset": 0})
    assert joined["recovered"] is False
    assert joined["state"]["screen"] == "p2"
    assert [f for f in student.inbox if f["type"] == "event"] == []
    await trainer.close()
    await student.close()


async def test_since_beyond_history_is_not_recovered(start_server: object) -> None:
    server = await start_server(history_size=3)  # type: ignore[operator]
    trainer = await server.member("t1", "trainer", **TRAINER)
    first = await trainer.request("publish", session="s1", event={"kind": "chat", "text": "0"})
    for n in range(5):
        await trainer.request("publish", session="s1", event={"kind": "chat", "text": str(n)})
    student = await server.client("u1", "student", **STUDENT_A)
    joined = await student.request(
        "join", session="s1", since={"epoch": first["epoch"], "offset": 1})
    assert joined["recovered"] is False and joined["offset"] == 6
    history = await student.request("history", session="s1")
    assert [e["offset"] for e in history["events"]] == [4, 5, 6]
    await trainer.close()
    await student.close()


async def test_client_msg_id_makes_publish_idempotent(server: RunningServer) -> None:
    student = await server.member("u1", "student", **STUDENT_A)
    trainer = await server.member("t1", "trainer", **TRAINER)
    event = {"kind": "hand.raise"}
    first = await student.request("publish", session="s1", event=event, client_msg_id="m-1")
    again = await student.request("publish", session="s1", event=event, client_msg_id="m-1")
    assert first["type"] == again["type"] == "published"
    assert first["offset"] == again["offset"] == 1
    other = await trainer.request("publish", session="s1",
                                  event={"kind": "chat", "text": "hi"}, client_msg_id="m-1")
    assert other["offset"] == 2
    history = await student.request("history", session="s1")
    assert [e["event"]["kind"] for e in history["events"]] == ["hand.raise", "chat"]
    events = [f for f in await trainer.quiet(0.3) if f.get("type") == "event"]
    assert [f["offset"] for f in events] == [1, 2]
    await student.close()
    await trainer.close()


async def test_history_since_and_limit(server: RunningServer) -> None:
    trainer = await server.member("t1", "trainer", **TRAINER)
    for n in range(10):
        await trainer.request("publish", session="s1", event={"kind": "chat", "text": str(n)})
    everything = await trainer.request("history", session="s1")
    assert [e["offset"] for e in everything["events"]] == list(range(1, 11))
    newest = await trainer.request("history", session="s1", limit=3)
    assert [e["offset"] for e in newest["events"]] == [8, 9, 10]
    after = await trainer.request(
        "history", session="s1", since={"epoch": everything["epoch"], "offset": 6}, limit=2)
    assert [e["event"]["text"] for e in after["events"]] == ["6", "7"]
    assert after["recovered"] is True
    too_many = await trainer.request("history", session="s1", limit=1001)
    assert too_many["code"] == "bad_request"
    forbidden = await trainer.request("history", session="other")
    assert forbidden["code"] == "forbidden"
    await trainer.close()


async def test_state_snapshot_on_join(server: RunningServer) -> None:
    trainer = await server.member("t1", "trainer", **TRAINER)
    student = await server.member("u1", "student", **STUDENT_A)
    steps = [
        (trainer, {"kind": "screen.navigate", "screen": "s-1"}),
        (trainer, {"kind": "screen.lock", "locked": True}),
        (student, {"kind": "annotation.add", "annotation_id": "a1", "screen": "s-1",
                   "shape": {"type": "circle", "x": 0.3, "y": 0.6, "r": 0.05}}),
        (trainer, {"kind": "annotation.add", "annotation_id": "a2", "screen": "other",
                   "shape": {"type": "line"}}),
        (student, {"kind": "hand.raise"}),
        (trainer, {"kind": "poll.open", "poll": "q1", "question": "2+2?",
                   "options": ["3", "4"]}),
        (student, {"kind": "poll.answer", "poll": "q1", "option": 1}),
    ]
    for client, event in steps:
        reply = await client.request("publish", session="s1", event=event)
        assert reply["type"] == "published", reply
    observer = await server.member("u2", "student", **STUDENT_B)
    state = observer.received[-1]["state"]
    assert state["screen"] == "s-1" and state["locked"] is True
    assert [a["annotation_id"] for a in state["annotations"]] == ["a1"]
    assert [h["display_name"] for h in state["hands"]] == ["Sam"]
    assert "email" not in state["hands"][0]
    assert state["poll"]["poll"] == "q1" and state["poll"]["counts"] == [0, 1]
    assert "answers" not in state["poll"]
    late_trainer = await server.member("t2", "trainer", name="Tom Tutor")
    tstate = late_trainer.received[-1]["state"]
    assert tstate["hands"][0]["email"] == STUDENT_A["email"]
    assert tstate["poll"]["answers"][0]["option"] == 1
    for client in (trainer, student, observer, late_trainer):
        await client.close()


async def test_poll_answers_reach_trainers_others_get_tallies(server: RunningServer) -> None:
    trainer = await server.member("t1", "trainer", **TRAINER)
    a = await server.member("u1", "student", **STUDENT_A)
    b = await server.member("u2", "student", **STUDENT_B)
    planner = await server.member("p1", "planner", name="Pim Planner")
    await trainer.request("publish", session="s1", event={
        "kind": "poll.open", "poll": "q1", "question": "Ready?", "options": ["yes", "no"]})
    await a.request("publish", session="s1", event={"kind": "poll.answer", "poll": "q1",
                                                    "option": 0})
    answer = await trainer.expect(lambda f: f.get("event", {}).get("kind") == "poll.answer")
    assert answer["event"]["by"]["email"] == STUDENT_A["email"]
    assert answer["event"]["option"] == 0
    for client in (a, b, planner):
        tally = await client.expect(lambda f: f.get("event", {}).get("kind") == "poll.tally")
        assert tally["event"]["counts"] == [1, 0] and "by" not in tally["event"]
        assert tally["offset"] == answer["offset"]
    await trainer.request("publish", session="s1", event={"kind": "poll.close", "poll": "q1"})
    for client in (trainer, a, b, planner):
        closed = await client.expect(lambda f: f.get("event", {}).get("kind") == "poll.close")
        assert closed["event"]["counts"] == [1, 0]
    for client in (trainer, a, b, planner):
        await client.close()


async def test_progress_reaches_trainers_only(server: RunningServer) -> None:
    trainer = await server.member("t1", "trainer", **TRAINER)
    a = await server.member("u1", "student", **STUDENT_A)
    b = await server.member("u2", "student", **STUDENT_B)
    reply = await a.request("publish", session="s1", event={
        "kind": "progress", "screen": "intro-3", "completed": True, "score": 80})
    assert reply["type"] == "published" and "offset" not in reply  # kept in the cohort table
    push = await trainer.expect("progress")
    assert push["session"] == "s1"
    assert push["participant"]["email"] == STUDENT_A["email"]
    assert [row["participant"]["email"] for row in push["rows"]] == [STUDENT_A["email"]]
    assert push["progress"]["screen"] == "intro-3" and push["progress"]["score"] == 80
    assert [f for f in await b.quiet(0.3) if f.get("type") in ("progress", "event")] == []
    forged = await b.request("publish", session="s1", event={
        "kind": "progress", "screen": "x", "participant": "someone-else"})
    assert forged["code"] == "bad_request"
    for client in (trainer, a, b):
        await client.close()


@pytest.mark.parametrize(("role", "event"), [
    ("planner", {"kind": "chat", "text": "hello"}),
    ("content_manager", {"kind": "pointer", "x": 0.1, "y": 0.1}),
    ("student", {"kind": "screen.navigate", "screen": "p9"}),
    ("student", {"kind": "poll.open", "poll": "q", "question": "?", "options": ["a", "b"]}),
    ("trainer", {"kind": "poll.answer", "poll": "q", "option": 0}),
])
async def test_publishing_outside_ones_role_is_forbidden(
    server: RunningServer, role: str, event: dict[str, object]
) -> None:
    client = await server.member("x1", role, name="Some One")
    watcher = await server.member("t9", "trainer", name="Watch Er")
    reply = await client.request("publish", session="s1", event=event)
    assert reply["type"] == "error" and reply["code"] == "forbidden"
    assert [f for f in await watcher.quiet(0.3) if f.get("type") == "event"] == []
    history = await watcher.request("history", session="s1")
    assert history["events"] == []
    await client.close()
    await watcher.close()


@pytest.mark.parametrize("event", [
    {"kind": "chat", "text": ""},
    {"kind": "chat", "text": "x" * 2001},
    {"kind": "chat"},
    {"kind": "nonsense"},
    {"kind": "pointer", "x": 1.5, "y": 0},
    {"text": "no kind"},
])
async def test_bad_events_are_refused_and_nothing_is_stored(
    server: RunningServer, event: dict[str, object]
) -> None:
    trainer = await server.member("t1", "trainer", **TRAINER)
    reply = await trainer.request("publish", session="s1", event=event)
    assert reply["code"] == "bad_request"
    ok = await trainer.request("publish", session="s1", event={"kind": "chat",
                                                              "text": "x" * 2000})
    assert ok["offset"] == 1
    await trainer.close()


async def test_video_without_opentok_is_unavailable(server: RunningServer) -> None:
    trainer = await server.member("t1", "trainer", **TRAINER)
    reply = await trainer.request("video", session="s1")
    assert reply["code"] == "unavailable"
    assert (await trainer.request("ping"))["type"] == "pong"
    await trainer.close()


async def test_a_long_replay_is_not_mistaken_for_a_slow_client(start_server: object) -> None:
    server = await start_server(send_queue_max_bytes=32 * 1024,  # type: ignore[operator]
                                rate_limit_per_second=100_000, rate_limit_burst=100_000)
    trainer = await server.member("t1", "trainer", **TRAINER)
    await trainer.request("publish", session="s1", event={"kind": "chat", "text": "start"})
    for n in range(400):
        reply = await trainer.request("publish", session="s1",
                                      event={"kind": "chat", "text": f"{n:04d}" + "x" * 300})
        assert reply["type"] == "published"
        trainer.inbox.clear()
    student = await server.client("u1", "student", **STUDENT_A)
    history = await student.request("history", session="s1", limit=1)
    epoch = history["epoch"]
    joined = await student.request("join", session="s1", since={"epoch": epoch, "offset": 1})
    assert joined["recovered"] is True
    replayed = [f for f in student.inbox if f.get("type") == "event"]
    assert [f["offset"] for f in replayed] == list(range(2, 402))
    await trainer.close()
    await student.close()


async def test_every_member_sees_a_gapless_stream_whatever_its_role(server: RunningServer) -> None:
    trainer = await server.member("t1", "trainer", **TRAINER)
    student = await server.member("u1", "student", **STUDENT_A)
    planner = await server.member("p1", "planner", name="Pim Planner")
    steps = [
        (trainer, {"kind": "poll.open", "poll": "q", "question": "?", "options": ["a", "b"]}),
        (student, {"kind": "progress", "screen": "intro"}),
        (student, {"kind": "poll.answer", "poll": "q", "option": 0}),
        (student, {"kind": "progress", "screen": "next", "completed": True}),
        (trainer, {"kind": "poll.close", "poll": "q"}),
        (student, {"kind": "chat", "text": "done"}),
    ]
    for client, event in steps:
        assert (await client.request("publish", session="s1", event=event))["type"] == "published"
    for client in (trainer, student, planner):
        offsets = [f["offset"] for f in await client.quiet(0.4)
                   if f.get("type") == "event" and "offset" in f]
        assert offsets == [1, 2, 3, 4]
    for client in (trainer, student, planner):
        await client.close()
