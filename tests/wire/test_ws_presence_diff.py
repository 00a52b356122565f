"""presence.diff on the wire: one frame per member per window, per view, and old clients as
before (docs/protocol.md, section 6, "presence.diff and presence.count")."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from tests.client import Client, Frame
from tests.conftest import TENANTS, RunningServer, ServerFactory

WINDOW = 0.4
"""Long enough that joins sent together land in one window on a busy test machine."""
FULL = {"email": "ada@example.nl", "phone": "+31611111111"}


async def diff_client(server: RunningServer, sub: str, role: str, session: str = "s1",
                      encoding: str = "json", **profile: Any) -> Client:
    """A connected client that announced ``presence.diff``."""
    client = await Client.open(server.ws_url, encoding)
    reply = await client.request("connect", token=server.token(sub, role, [session], **profile),
                                 features=["presence.diff"])
    assert reply["type"] == "connected" and reply["features"] == ["presence.diff"], reply
    return client


async def diff_member(server: RunningServer, sub: str, role: str, session: str = "s1",
                      **profile: Any) -> Client:
    """A ``presence.diff`` client that has joined ``session``."""
    client = await diff_client(server, sub, role, session, **profile)
    joined = await client.request("join", session=session)
    assert joined["type"] == "joined", joined
    return client


def of_type(frames: list[Frame], kind: str) -> list[Frame]:
    return [f for f in frames if f.get("type") == kind]


async def join_together(clients: list[Client], session: str = "s1") -> None:
    """Send every client's join at once and wait for all the replies."""
    replies = await asyncio.gather(*(c.request("join", session=session) for c in clients))
    assert all(r["type"] == "joined" for r in replies), replies


async def test_connect_turns_on_known_features_only(server: RunningServer) -> None:
    client = await Client.open(server.ws_url)
    reply = await client.request("connect", token=server.token("u1", "student"),
                                 features=["presence.diff", "video.v9", "presence.diff"])
    assert reply["features"] == ["presence.diff"]
    old = await Client.open(server.ws_url)
    reply = await old.connect(server.token("u2", "student"))
    assert "features" not in reply  # an old client sees the reply it always saw
    none_known = await Client.open(server.ws_url)
    reply = await none_known.request("connect", token=server.token("u3", "student"),
                                     features=[])
    assert reply["features"] == []
    for c in (client, old, none_known):
        await c.close()


async def test_features_limit_16_names_of_64_characters(server: RunningServer) -> None:
    at_limit = await Client.open(server.ws_url)
    reply = await at_limit.request("connect", token=server.token("u1", "student"),
                                   features=["presence.diff"] + ["x" * 64] * 15)
    assert reply["type"] == "connected" and reply["features"] == ["presence.diff"]
    await at_limit.close()
    for features in (["presence.diff"] * 17, ["x" * 65], [""], "presence.diff", [1]):
        client = await Client.open(server.ws_url)
        reply = await client.request("connect", token=server.token("u2", "student"),
                                     features=features)
        assert (reply["type"], reply["code"]) == ("error", "unauthorized"), features
        assert await client.closed_code() == 4401


async def test_joins_of_one_window_make_one_frame_per_member(
    start_server: ServerFactory,
) -> None:
    server = await start_server(presence_window=WINDOW)
    trainer = await diff_member(server, "t1", "trainer", name="Tessa Trainer")
    observer = await diff_member(server, "pl1", "planner", name="Piet Planner")
    await asyncio.gather(trainer.quiet(WINDOW * 2), observer.quiet(WINDOW * 2))
    students = [await diff_client(server, f"u{n}", "student", name=f"Stu{n} Dent",
                                  email=f"u{n}@example.nl") for n in range(4)]
    await join_together(students)
    frames = await trainer.quiet(WINDOW * 3)
    assert of_type(frames, "presence.join") == []
    diffs = of_type(frames, "presence.diff")
    assert len(diffs) == 1, diffs
    assert diffs[0]["left"] == []
    assert sorted(p["email"] for p in diffs[0]["joined"]) == [f"u{n}@example.nl"
                                                               for n in range(4)]
    # The observer's diff lists the same people, with pid and role only; a joiner's own
    # diff lists the others, never itself.
    seen = of_type(await observer.quiet(0.1), "presence.diff")
    assert len(seen) == 1 and all(set(p) == {"pid", "role"} for p in seen[0]["joined"])
    for student in students:
        mine = of_type(await student.quiet(0.1), "presence.diff")
        assert len(mine) <= 1  # a joiner's own join may be all its window held of the others
        for diff in mine:
            assert all(set(p) == {"pid", "role", "display_name"} for p in diff["joined"])
            assert len(diff["joined"]) <= 3
    for c in (trainer, observer, *students):
        await c.close()


async def test_leaves_and_a_join_left_again_in_one_window(start_server: ServerFactory) -> None:
    server = await start_server(presence_window=WINDOW)
    trainer = await diff_member(server, "t1", "trainer")
    first = await diff_member(server, "u1", "student", name="Ann One")
    second = await diff_member(server, "u2", "student", name="Bob Two")
    await trainer.quiet(WINDOW * 2)
    brief = await diff_member(server, "u3", "student", name="Cas Three")
    await brief.close()
    await first.close()
    await second.request("leave", session="s1")
    diffs = of_type(await trainer.quiet(WINDOW * 3), "presence.diff")
    assert len(diffs) == 1, diffs
    assert diffs[0]["joined"] == []  # joined and left within the window: only its leave
    assert [p["name"] for p in diffs[0]["left"]] == ["Cas Three", "Ann One", "Bob Two"]
    for c in (trainer, second):
        await c.close()


async def test_old_clients_keep_per_person_frames_beside_diff_clients(
    start_server: ServerFactory,
) -> None:
    server = await start_server(presence_window=WINDOW)
    old = await server.member("u0", "student", name="Old Client")
    new = await diff_member(server, "u1", "student", name="New Client")
    assert (await old.expect("presence.join"))["participant"]["display_name"] == "New"
    joiners = [await Client.open(server.ws_url) for _ in range(2)]
    for n, client in enumerate(joiners, start=2):
        await client.connect(server.token(f"u{n}", "student", name=f"Joiner{n} X"))
    await join_together(joiners)
    old_frames = await old.quiet(WINDOW * 3)
    assert of_type(old_frames, "presence.diff") == []
    assert sorted(f["participant"]["display_name"]
                  for f in of_type(old_frames, "presence.join")) == ["Joiner2", "Joiner3"]
    new_frames = await new.quiet(0.1)
    assert of_type(new_frames, "presence.join") == []
    assert [sorted(p["display_name"] for p in d["joined"])
            for d in of_type(new_frames, "presence.diff")] == [["Joiner2", "Joiner3"]]
    await joiners[0].close()
    assert (await old.expect("presence.leave"))["participant"]["display_name"] == "Joiner2"
    diff = await new.expect("presence.diff", timeout=WINDOW * 4)
    assert [p["display_name"] for p in diff["left"]] == ["Joiner2"]
    for c in (old, new, joiners[1]):
        await c.close()


async def test_joined_and_presence_count_only_for_diff_clients(server: RunningServer) -> None:
    old = await server.member("u0", "student")
    new = await diff_client(server, "u1", "student")
    joined = await new.request("join", session="s1")
    assert joined["count"] == 2 and len(joined["participants"]) == 2
    assert (await new.request("presence", session="s1"))["count"] == 2
    reply = await old.request("presence", session="s1")
    assert "count" not in reply and len(reply["participants"]) == 2
    for c in (old, new):
        await c.close()


async def counts_server(start_server: ServerFactory, above: int) -> RunningServer:
    tenants = json.loads(json.dumps(TENANTS))
    tenants["acme"]["presence_counts_only_above"] = above
    return await start_server(presence_window=WINDOW, tenants_raw=json.dumps(tenants))


async def test_students_see_counts_above_the_threshold_trainers_keep_names(
    start_server: ServerFactory,
) -> None:
    server = await counts_server(start_server, above=3)
    trainer = await diff_member(server, "t1", "trainer", name="Tessa Trainer")
    student = await diff_member(server, "u1", "student", name="Ann One")
    old_student = await server.member("u2", "student", name="Bob Two")
    await asyncio.gather(trainer.quiet(WINDOW * 2), student.quiet(WINDOW * 2),
                         old_student.quiet(WINDOW * 2))
    crowd = [await diff_client(server, f"u{n}", "student", name=f"Crowd{n} X", **FULL)
             for n in range(3, 5)]
    await join_together(crowd)  # 5 present: above 3
    trainer_diffs = of_type(await trainer.quiet(WINDOW * 3), "presence.diff")
    assert [sorted(p["name"] for p in d["joined"]) for d in trainer_diffs] == [
        ["Crowd3 X", "Crowd4 X"]]
    assert trainer_diffs[0]["joined"][0]["email"] == FULL["email"]
    frames = await student.quiet(0.1)
    assert of_type(frames, "presence.diff") == []
    assert [f["count"] for f in of_type(frames, "presence.count")] == [5]
    assert [f for f in await old_student.quiet(0.1) if f["type"].startswith("presence")] == []
    # A student joining now is shown only itself and the count; the trainer the room.
    late = await diff_client(server, "u9", "student", name="Late Comer")
    joined = await late.request("join", session="s1")
    assert [p["pid"] for p in joined["participants"]] == [joined["me"]["pid"]]
    assert joined["participants"][0]["name"] == "Late Comer" and joined["count"] == 6
    presence = await late.request("presence", session="s1")
    assert len(presence["participants"]) == 1 and presence["count"] == 6
    old_late = await server.member("u8", "student")
    reply = await old_late.request("presence", session="s1")
    assert len(reply["participants"]) == 1 and "count" not in reply
    assert len((await trainer.request("presence", session="s1"))["participants"]) == 7
    for c in (trainer, student, old_student, late, old_late, *crowd):
        await c.close()


async def test_at_the_threshold_students_still_see_names(start_server: ServerFactory) -> None:
    server = await counts_server(start_server, above=3)
    trainer = await diff_member(server, "t1", "trainer")
    student = await diff_member(server, "u1", "student", name="Ann One")
    await student.quiet(WINDOW * 2)
    third = await diff_member(server, "u2", "student", name="Bob Two")
    assert (await third.request("presence", session="s1"))["count"] == 3
    diff = await student.expect("presence.diff", timeout=WINDOW * 4)  # 3 is not above 3
    assert [p["display_name"] for p in diff["joined"]] == ["Bob"]
    joined_fourth = await diff_client(server, "u3", "student", name="Cas Three")
    reply = await joined_fourth.request("join", session="s1")
    assert reply["count"] == 4 and len(reply["participants"]) == 1  # 4 is above 3
    for c in (trainer, student, third, joined_fourth):
        await c.close()


async def test_diff_reaches_json_and_msgpack_members_alike(start_server: ServerFactory) -> None:
    server = await start_server(presence_window=WINDOW)
    packed = await diff_client(server, "t1", "trainer", encoding="msgpack")
    assert (await packed.request("join", session="s1"))["count"] == 1
    text = await diff_member(server, "t2", "trainer")
    await asyncio.gather(packed.quiet(WINDOW * 2), text.quiet(WINDOW * 2))
    joiners = [await diff_client(server, f"u{n}", "student", **FULL) for n in range(2)]
    await join_together(joiners)
    for member in (packed, text):
        diffs = of_type(await member.quiet(WINDOW * 3), "presence.diff")
        assert len(diffs) == 1 and [p["email"] for p in diffs[0]["joined"]] == [FULL["email"]] * 2
    for c in (packed, text, *joiners):
        await c.close()


async def test_a_refreshed_role_is_told_in_a_diff_and_rejoined_with_a_count(
    start_server: ServerFactory,
) -> None:
    server = await start_server(presence_window=WINDOW)
    watcher = await diff_member(server, "t1", "trainer")
    assistant = await diff_member(server, "a1", "student", name="Alex Assistant", **FULL)
    await asyncio.gather(watcher.quiet(WINDOW * 2), assistant.quiet(WINDOW * 2))
    reply = await assistant.request("refresh", token=server.token("a1", "trainer",
                                                                  name="Alex Assistant"))
    assert reply["rejoined"] == ["s1"]
    rejoined = next(f for f in assistant.inbox if f.get("type") == "joined")
    assert rejoined["count"] == 2 and len(rejoined["participants"]) == 2
    diffs = of_type(await watcher.quiet(WINDOW * 3), "presence.diff")
    assert [[p["role"] for p in d["joined"]] for d in diffs] == [["trainer"]]
    for c in (watcher, assistant):
        await c.close()
