"""``classroom.client`` against real server processes on Redis: what a back end sees."""

from __future__ import annotations

import asyncio
import time

import pytest

from auth.tokens import issue_token
from classroom.client import ClassroomClient, ClientError
from tests.client_lib.support import first, open_client
from tests.multinode.conftest import ACME, Cluster, token


@pytest.mark.parametrize("encoding", ["json", "msgpack"])
async def test_connect_join_and_hear_another_users_chat(
    cluster: Cluster, clients: list[ClassroomClient], encoding: str,
) -> None:
    node_a, node_b = await cluster.start(2)
    tessa = open_client(clients, node_a, "t1", "trainer", encoding=encoding)
    sam = open_client(clients, node_b, "u1", "student", encoding=encoding)
    assert (await tessa.connect())["role"] == "trainer"
    await sam.connect()
    await tessa.join("s1")
    await sam.join("s1")
    heard = asyncio.ensure_future(first(sam, "event", lambda f: f["event"]["kind"] == "chat"))
    published = await tessa.publish("s1", {"kind": "chat", "text": "Welkom"})
    frame = await heard
    assert frame["event"]["text"] == "Welkom" and frame["offset"] == published["offset"]
    assert sam.position("s1") == (frame["epoch"], frame["offset"])


async def test_refusals_raise_the_servers_code_and_the_client_carries_on(
    cluster: Cluster, clients: list[ClassroomClient],
) -> None:
    [node] = await cluster.start()
    sam = open_client(clients, node, "u1", "student")
    await sam.connect()
    await sam.join("s1")
    with pytest.raises(ClientError) as refused:
        await sam.publish("s1", {"kind": "screen.navigate", "screen": "intro"})
    assert refused.value.code == "forbidden" and not refused.value.retryable
    with pytest.raises(ClientError) as bad:
        await sam.publish("s1", {"kind": "chat", "text": "   "})
    assert bad.value.code == "bad_request"
    assert (await sam.request("ping"))["type"] == "pong"

    forged = open_client(clients, node, "u2", "student", token=token("u2", "student") + "x")
    with pytest.raises(ClientError) as unauthorized:
        await forged.connect()
    assert unauthorized.value.code == "unauthorized"


async def test_a_restarted_node_its_client_comes_back_and_gets_exactly_what_it_missed(
    cluster: Cluster, clients: list[ClassroomClient],
) -> None:
    node_a, node_b = await cluster.start(2)
    tessa = open_client(clients, node_b, "t1", "trainer")
    # Noor waits longer before coming back than the trainer needs to publish.
    noor = ClassroomClient(node_a.url, token("u1", "student"), backoff_initial=2.0,
                           backoff_max=2.0)
    clients.append(noor)
    await tessa.connect()
    await noor.connect()
    await tessa.join("s1")
    await noor.join("s1")
    offsets: list[int] = []
    noor.on("event", lambda f: offsets.append(f["offset"]) if "offset" in f else None)
    said = asyncio.ensure_future(first(noor, "event", lambda f: f["event"].get("text") == "a"))
    await tessa.publish("s1", {"kind": "chat", "text": "a"})
    await said
    before = noor.position("s1")
    assert before is not None

    rejoined = asyncio.ensure_future(first(noor, "client.rejoined", timeout=20))
    await cluster.terminate(node_a)
    await tessa.publish("s1", {"kind": "chat", "text": "b"})
    await tessa.publish("s1", {"kind": "chat", "text": "c"})
    await cluster.start(port=node_a.port)
    done = await rejoined
    assert done["recovered"] is True and done["replayed"] == 2
    assert offsets == [before[1], before[1] + 1, before[1] + 2]  # each once, in order
    assert noor.position("s1") == (before[0], before[1] + 2)


async def test_get_token_refreshes_in_place_before_expiry(
    cluster: Cluster, clients: list[ClassroomClient],
) -> None:
    [node] = await cluster.start(env={"CLASSROOM_REFRESH_BEFORE": "2"})
    fetched: list[str] = []

    async def fresh() -> str:
        fetched.append("token")
        return token("u1", "student")

    short = issue_token(ACME, sub="u1", role="student", sessions=["s1"], ttl=4)
    sam = open_client(clients, node, "u1", "student", token=short, get_token=fresh)
    refreshed = asyncio.ensure_future(first(sam, "refreshed", timeout=8))
    await sam.connect()
    await sam.join("s1")
    reply = await refreshed
    assert fetched and reply["expires_at"] > time.time() + 60
    await asyncio.sleep(3)  # past the first token's expiry
    assert sam.state == "open"
    assert (await sam.publish("s1", {"kind": "chat", "text": "nog hier"}))["type"] == "published"
