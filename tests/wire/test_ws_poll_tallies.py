"""Coalesced poll tallies on the wire: one ``poll.tally`` per window for clients that announce
``poll.tally.coalesced``, offsets in order, and every other client as before
(docs/protocol.md, section 7, "Coalesced tallies")."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.client import Client, Frame
from tests.conftest import RunningServer, ServerFactory

FEATURE = "poll.tally.coalesced"


async def member(server: RunningServer, sub: str, role: str, *, coalesced: bool) -> Client:
    """A client that joined s1, announcing coalesced tallies or not."""
    client = await Client.open(server.ws_url)
    features = [FEATURE] if coalesced else []
    reply = await client.request("connect", token=server.token(sub, role, ["s1"]),
                                 features=features)
    assert reply["type"] == "connected" and reply["features"] == features, reply
    joined = await client.request("join", session="s1")
    assert joined["type"] == "joined", joined
    return client


async def poll_room(server: RunningServer, other: tuple[str, str],
                    ) -> tuple[Client, Client, Client, dict[str, Any]]:
    """A trainer and ``other`` (sub, role) taking coalesced tallies, and Sam, who does not
    and answers the poll the trainer opened: the three clients and Sam's answer."""
    trainer = await member(server, "t1", "trainer", coalesced=True)
    second = await member(server, *other, coalesced=True)
    sam = await member(server, "s1", "student", coalesced=False)
    await publish(trainer, kind="poll.open", poll="q1", question="?", options=["a", "b"])
    answer = await publish(sam, kind="poll.answer", poll="q1", option=0)
    return trainer, second, sam, answer


async def publish(client: Client, **event: Any) -> dict[str, Any]:
    reply = await client.request("publish", session="s1", event=event)
    assert reply["type"] == "published", reply
    return reply


def events(client: Client, kind: str) -> list[Frame]:
    return [f for f in client.received
            if f.get("type") == "event" and f["event"].get("kind") == kind]


def offsets_told(tallies: list[Frame]) -> list[int]:
    """The answers' offsets the tallies stand for, each tally from its coalesced_from."""
    told: list[int] = []
    for tally in tallies:
        told.extend(range(tally.get("coalesced_from", tally["offset"]), tally["offset"] + 1))
    return told


async def settle(client: Client, kind: str, count: int, timeout: float = 5.0) -> None:
    """Read until ``client`` has received ``count`` events of ``kind``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while len(events(client, kind)) < count:
        await client.read(max(0.01, deadline - loop.time()))  # TimeoutError at the deadline


async def test_a_burst_of_answers_is_one_tally_for_coalescing_clients_and_one_each_for_others(
    start_server: ServerFactory,
) -> None:
    server = await start_server(tally_window=0.5)
    trainer = await member(server, "t1", "trainer", coalesced=True)
    watcher = await member(server, "w1", "student", coalesced=True)
    old = await member(server, "o1", "student", coalesced=False)
    answerers = [await member(server, f"s{i}", "student", coalesced=False) for i in range(6)]
    await publish(trainer, kind="poll.open", poll="q1", question="?", options=["a", "b"])
    replies = await asyncio.gather(*(publish(s, kind="poll.answer", poll="q1", option=i % 2)
                                     for i, s in enumerate(answerers)))
    answer_offsets = sorted(r["offset"] for r in replies)
    await settle(old, "poll.tally", 6)
    await settle(trainer, "poll.answer", 6)  # trainers still see who answered, each answer
    await settle(watcher, "poll.tally", 1)
    await watcher.quiet(0.6)  # a window more: nothing else may come
    tallies = events(watcher, "poll.tally")
    assert len(tallies) < 6
    assert offsets_told(tallies) == answer_offsets  # every answer told once, in order
    assert tallies[-1]["event"]["counts"] == [3, 3]
    assert all("coalesced_from" not in t for t in events(old, "poll.tally"))
    assert [t["offset"] for t in events(old, "poll.tally")] == answer_offsets
    for client in (trainer, watcher, old, *answerers):
        await client.close()


async def test_a_held_tally_goes_out_before_the_next_stored_event(
    start_server: ServerFactory,
) -> None:
    server = await start_server(tally_window=5.0)  # only the chat can let the tally out
    trainer = await member(server, "t1", "trainer", coalesced=True)
    watcher = await member(server, "w1", "student", coalesced=True)
    sam = await member(server, "s1", "student", coalesced=False)
    await publish(trainer, kind="poll.open", poll="q1", question="?", options=["a", "b"])
    first = await publish(sam, kind="poll.answer", poll="q1", option=0)
    second = await publish(sam, kind="poll.answer", poll="q1", option=1)  # a changed mind
    chat = await publish(trainer, kind="chat", text="Time is up")
    await settle(watcher, "chat", 1)
    stored = [f for f in watcher.received if f.get("type") == "event" and "offset" in f]
    kinds = [(f["event"]["kind"], f["offset"]) for f in stored]
    assert kinds[-2:] == [("poll.tally", second["offset"]), ("chat", chat["offset"])]
    assert stored[-2]["coalesced_from"] == first["offset"]
    assert stored[-2]["event"]["counts"] == [0, 1]
    assert [f["offset"] for f in stored] == sorted({f["offset"] for f in stored})
    for client in (trainer, watcher, sam):
        await client.close()


@pytest.mark.parametrize("window", [0.6])
async def test_a_member_joining_while_a_tally_is_held_gets_no_offset_it_already_has(
    start_server: ServerFactory, window: float,
) -> None:
    server = await start_server(tally_window=window)
    trainer, watcher, sam, answer = await poll_room(server, ("w1", "student"))
    late = await member(server, "l1", "student", coalesced=True)  # joins inside the window
    joined = next(f for f in late.received if f.get("type") == "joined")
    assert joined["offset"] == answer["offset"]
    assert joined["state"]["poll"]["counts"] == [1, 0]
    await settle(watcher, "poll.tally", 1)
    await late.quiet(0.3)
    assert [t["offset"] for t in events(watcher, "poll.tally")] == [answer["offset"]]
    assert events(late, "poll.tally") == []  # its joined state has that answer already
    for client in (trainer, watcher, sam, late):
        await client.close()


async def test_an_ended_session_sends_no_held_tally_after_its_end(
    start_server: ServerFactory,
) -> None:
    server = await start_server(tally_window=5.0)
    trainer, watcher, sam, answer = await poll_room(server, ("w1", "student"))
    await publish(trainer, kind="session.end")
    await settle(watcher, "session.ended", 1)
    stored = [(f["event"]["kind"], f["offset"]) for f in watcher.received
              if f.get("type") == "event" and "offset" in f]
    assert stored[-2] == ("poll.tally", answer["offset"])  # out before the end, not lost
    assert stored[-1][0] == "session.ended"
    for client in (trainer, watcher, sam):
        await client.close()


async def test_a_trainer_made_student_while_a_tally_is_held_gets_no_offset_it_already_has(
    start_server: ServerFactory,
) -> None:
    server = await start_server(tally_window=5.0)
    trainer, demoted, sam, answer = await poll_room(server, ("t2", "trainer"))
    await settle(demoted, "poll.answer", 1)  # as a trainer it had the answer itself
    reply = await demoted.request("refresh", token=server.token("t2", "student", ["s1"]))
    assert reply["rejoined"] == ["s1"], reply
    rejoined = next(f for f in demoted.received if f.get("type") == "joined" and "id" not in f)
    assert rejoined["offset"] == answer["offset"]
    chat = await publish(trainer, kind="chat", text="Next")  # lets the held tally out
    await settle(demoted, "chat", 1)
    assert events(demoted, "poll.tally") == []
    assert events(demoted, "chat")[0]["offset"] == chat["offset"]
    for client in (trainer, demoted, sam):
        await client.close()
