"""``classroom.client.Connection``: one WebSocket read step by step, as a script uses it
(publish one thing, see exactly what comes back), against a real server process."""

from __future__ import annotations

import pytest

from classroom.client import Connection
from tests.multinode.conftest import Cluster, token


@pytest.mark.parametrize("encoding", ["json", "msgpack"])
async def test_a_script_publishes_and_sees_each_reply_and_push_in_turn(
    cluster: Cluster, encoding: str,
) -> None:
    [node] = await cluster.start()
    tessa = await Connection.open(node.url, encoding)  # type: ignore[arg-type]
    sam = await Connection.open(node.url, encoding)  # type: ignore[arg-type]
    assert tessa.ws.subprotocol == f"classroom.v1.{encoding}"
    connected = await tessa.connect(token("t1", "trainer"), features=["presence.diff"])
    assert connected["type"] == "connected" and connected["me"]["role"] == "trainer"
    assert (await sam.connect(token("u1", "student")))["type"] == "connected"
    assert (await tessa.request("join", session="s1"))["type"] == "joined"
    assert (await sam.request("join", session="s1"))["type"] == "joined"

    refused = await sam.request("publish", session="s1",
                                event={"kind": "screen.navigate", "screen": "intro"})
    assert refused["type"] == "error" and refused["code"] == "forbidden"  # a frame, not a raise
    published = await tessa.request("publish", session="s1",
                                    event={"kind": "chat", "text": "Welkom"})
    pushed = await sam.expect(lambda f: f.get("type") == "event")
    assert pushed["event"]["text"] == "Welkom" and pushed["offset"] == published["offset"]
    assert await sam.quiet(0.3) == []
    await sam.close()
    await tessa.close()


async def test_a_refused_token_is_an_error_reply_then_4401(cluster: Cluster) -> None:
    [node] = await cluster.start()
    conn = await Connection.open(node.url, None)  # no subprotocol: the server speaks JSON
    assert conn.ws.subprotocol is None
    reply = await conn.connect("not-a-jwt")
    assert reply["type"] == "error" and reply["code"] == "unauthorized"
    assert await conn.closed_code() == 4401
