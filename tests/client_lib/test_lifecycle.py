"""``classroom.client`` when things go wrong: what a back end sees when a session ends
while it is away, when the tenant's back end disconnects it, when it is closed in the
middle of a back-off, and when one of its own listeners fails."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import httpx
import pytest

from auth.tokens import issue_token
from classroom.client import ClassroomClient, ClientError, Frame
from classroom.client.reconnect import Backoff
from tests.client_lib.support import first, open_client
from tests.multinode.conftest import ACME, TENANTS, Cluster

API = {"Authorization": f"Bearer {TENANTS['acme']['api_key']}"}


async def test_a_session_that_ended_while_away_is_dropped_and_the_others_carry_on(
    cluster: Cluster, clients: list[ClassroomClient],
) -> None:
    node_a, node_b = await cluster.start(2)
    tessa = open_client(clients, node_b, "t1", "trainer")
    both = issue_token(ACME, sub="u1", role="student", sessions=["s1", "s2"], ttl=600)
    noor = open_client(clients, node_a, "u1", "student", token=both,
                       backoff_initial=2.0, backoff_max=2.0)
    await tessa.connect()
    await noor.connect()
    await tessa.join("s1")
    await noor.join("s1")
    await noor.join("s2")
    gone = asyncio.ensure_future(first(noor, "client.error", timeout=20))
    back = asyncio.ensure_future(first(noor, "client.rejoined", timeout=20))

    await cluster.terminate(node_a)
    await tessa.publish("s1", {"kind": "session.end"})  # while Noor is away
    await cluster.start(port=node_a.port)

    refused = await gone
    assert refused["session"] == "s1" and refused["code"] == "forbidden"
    assert (await back)["session"] == "s2"
    assert noor.state == "open" and noor.position("s1") is None
    published = await noor.publish("s2", {"kind": "chat", "text": "nog hier"})
    assert published["type"] == "published"


async def test_disconnected_by_the_back_end_it_stops_for_good_and_its_pushes_end(
    cluster: Cluster, clients: list[ClassroomClient],
) -> None:
    [node] = await cluster.start()
    sam = open_client(clients, node, "u1", "student")
    await sam.connect()
    await sam.join("s1")
    seen: list[Frame] = []

    async def read_all() -> None:
        async for frame in sam.pushes():
            seen.append(frame)

    reader = asyncio.ensure_future(read_all())
    await sam.publish("s1", {"kind": "hand.raise"})
    async with httpx.AsyncClient(base_url=node.http, timeout=10) as http:
        answer = await http.post("/api/v1/users/u1/disconnect", headers=API)
    assert answer.status_code == 200, answer.text
    await asyncio.wait_for(reader, 10)  # the iterator ends once the client has stopped

    kinds = [f.get("event", {}).get("kind") or f["type"] for f in seen]
    assert kinds.index("hand.raise") < kinds.index("disconnect") < len(kinds) - 1
    assert seen[-1] == {"type": "client.status", "state": "closed", "code": 4403,
                        "reason": "disconnected by the server"}
    assert sam.state == "closed"
    with pytest.raises(ClientError) as closed:
        await sam.request("ping")
    assert closed.value.code == "closed"


async def test_close_in_the_middle_of_a_back_off_returns_at_once(
    cluster: Cluster, clients: list[ClassroomClient],
) -> None:
    [node] = await cluster.start()
    sam = open_client(clients, node, "u1", "student", backoff_initial=30, backoff_max=30)
    await sam.connect()
    await sam.join("s1")
    waiting = asyncio.ensure_future(first(sam, "client.status",
                                          lambda f: f["state"] == "reconnecting"))
    await cluster.terminate(node)
    assert (await waiting)["delay"] >= 15  # half to all of the back-off: jitter
    began = time.monotonic()
    await sam.close()
    assert time.monotonic() - began < 1
    assert sam.state == "closed"


def saying(text: str) -> Callable[[Frame], bool]:
    return lambda frame: frame["event"].get("text") == text


async def test_a_listener_that_fails_does_not_stop_the_client(
    cluster: Cluster, clients: list[ClassroomClient],
) -> None:
    [node] = await cluster.start()
    tessa = open_client(clients, node, "t1", "trainer")
    sam = open_client(clients, node, "u1", "student")
    for client in (tessa, sam):
        await client.connect()
        await client.join("s1")

    def broken(frame: Frame) -> None:
        raise RuntimeError("an application's bug")

    sam.on("event", broken)
    for text in ("een", "twee"):
        heard = asyncio.ensure_future(first(sam, "event", saying(text)))
        await tessa.publish("s1", {"kind": "chat", "text": text})
        assert (await heard)["event"]["text"] == text
    assert sam.state == "open"


async def test_leaving_a_session_while_the_others_are_rejoined_does_not_stop_the_client(
    cluster: Cluster, clients: list[ClassroomClient],
) -> None:
    """The application leaves s2 while the client, back after a restart, still rejoins s1:
    s2 is not rejoined, s1 is, and the client carries on (the rejoin pass used to look
    s2 up after it was forgotten, and the client stayed down for good)."""
    [node] = await cluster.start(1)
    both = issue_token(ACME, sub="u1", role="student", sessions=["s1", "s2"], ttl=600)
    noor = open_client(clients, node, "u1", "student", token=both,
                       backoff_initial=0.5, backoff_max=0.5)
    await noor.connect()
    await noor.join("s1")
    await noor.join("s2")
    leaving: list[asyncio.Future[Frame]] = []

    def on_status(frame: Frame) -> None:
        if frame.get("state") == "open" and not leaving:
            # Back: s1's rejoin is on its way, s2's comes after it.
            leaving.append(asyncio.ensure_future(noor.leave("s2")))

    noor.on("client.status", on_status)
    rejoined: list[str] = []
    noor.on("client.rejoined", lambda frame: rejoined.append(frame["session"]))

    await cluster.terminate(node)
    await cluster.start(port=node.port)
    for _ in range(200):
        if noor.state == "open" and rejoined:
            break
        await asyncio.sleep(0.05)
    assert rejoined == ["s1"]
    assert noor.position("s2") is None
    await asyncio.gather(*leaving, return_exceptions=True)  # s2 was not joined again
    published = await asyncio.wait_for(
        noor.publish("s1", {"kind": "chat", "text": "nog hier"}), 5)
    assert published["type"] == "published"


def test_the_back_off_stays_at_its_ceiling_however_long_the_outage() -> None:
    """A server away for a day: thousands of failed attempts, each waiting at most the
    ceiling (the doubling used to overflow a float after 1,024 attempts and stop the
    client from ever coming back)."""
    backoff = Backoff(initial=0.5, most=30.0)
    delays = [backoff.next_delay(1006) for _ in range(3000)]
    assert all(0 < delay <= 30.0 for delay in delays)
    assert min(delays[10:]) >= 15.0  # jittered between half the ceiling and the ceiling
    backoff.reset()
    assert backoff.next_delay(1006) <= 0.5
