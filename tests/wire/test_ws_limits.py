"""Limits and bad input (section 7): every row, against a real server."""

from __future__ import annotations

import asyncio

import pytest

from tests.client import Client, small_receive_socket
from tests.conftest import RunningServer, ServerFactory


@pytest.mark.parametrize(("data", "message"), [
    ("{not json", "frame is not valid JSON"),
    ("[1, 2, 3]", "frame must be an object"),
    ('"text"', "frame must be an object"),
    ('{"type": "dance", "id": 4}', "unknown command type"),
    ('{"type": "join", "id": 5, "session": 42}', "session: Input should be a valid string"),
    ('{"type": "ping", "id": "seven"}', "id: Input should be a valid integer"),
])
async def test_bad_frames_get_bad_request_and_the_connection_stays(
    server: RunningServer, data: str, message: str
) -> None:
    client = await server.client("u1", "student")
    await client.send_raw(data)
    reply = await client.read()
    assert reply["type"] == "error" and reply["code"] == "bad_request"
    assert reply["message"] == message
    if '"id": 4' in data or '"id": 5' in data:
        assert reply["id"] in (4, 5)
    assert (await client.request("ping"))["type"] == "pong"
    await client.close()


async def test_bad_msgpack_and_wrong_frame_kind(server: RunningServer) -> None:
    client = await server.client("u1", "student", encoding="msgpack")
    await client.send_raw(b"\xc1\xc1")
    assert (await client.read())["message"] == "frame is not valid MessagePack"
    await client.send_raw("a text frame")
    assert (await client.read())["code"] == "bad_request"
    assert (await client.request("ping"))["type"] == "pong"
    await client.close()


async def test_twenty_bad_frames_in_a_minute_close_4400(server: RunningServer) -> None:
    client = await server.client("u1", "student")
    for _ in range(19):
        await client.send_raw("garbage")
        assert (await client.read())["code"] == "bad_request"
    assert (await client.request("ping"))["type"] == "pong"
    await client.send_raw("garbage")
    assert await client.closed_code() == 4400


async def test_oversized_frame_closes_1009(start_server: ServerFactory) -> None:
    server = await start_server(max_frame_bytes=4096)
    client = await server.client("u1", "trainer")
    await client.request("join", session="s1")
    await client.send_frame({"type": "publish", "id": 9, "session": "s1",
                             "event": {"kind": "chat", "text": "x" * 5000}})
    assert await client.closed_code() == 1009
    watcher = await server.member("u2", "trainer")
    history = await watcher.request("history", session="s1")
    assert history["events"] == []
    await watcher.close()


async def test_rate_limit_answers_rate_limited(start_server: ServerFactory) -> None:
    server = await start_server(rate_limit_per_second=5, rate_limit_burst=10)
    client = await Client.open(server.ws_url)
    await client.connect(server.token("u1", "student"))
    for n in range(25):
        await client.send_frame({"type": "ping", "id": 100 + n})
    replies = [await client.read() for _ in range(25)]
    pongs = [r for r in replies if r["type"] == "pong"]
    limited = [r for r in replies if r.get("code") == "rate_limited"]
    assert len(pongs) + len(limited) == 25
    assert 9 <= len(pongs) <= 12 and len(limited) >= 13
    assert all(r["id"] >= 100 for r in limited)
    await asyncio.sleep(0.5)
    assert (await client.request("ping"))["type"] == "pong"
    await client.close()



async def test_a_client_that_does_not_read_is_closed_4008_alone(
    start_server: ServerFactory,
) -> None:
    server = await start_server(send_queue_max_bytes=256 * 1024, rate_limit_per_second=10_000,
                                rate_limit_burst=10_000, close_timeout=10.0)
    trainer = await server.member("t1", "trainer")
    fast = await server.member("u1", "student", name="Fast Reader")
    slow = await Client.open(server.ws_url, sock=small_receive_socket(server.port), max_queue=1)
    await slow.connect(server.token("u2", "student"))
    assert (await slow.request("join", session="s1"))["type"] == "joined"
    count = 600
    shape = {"path": "x" * 12_000}  # 7.2 MB in all: within the session's annotation bounds

    async def publish_all() -> None:
        for n in range(count):
            reply = await trainer.request(
                "publish", session="s1",
                event={"kind": "annotation.add", "screen": f"p{n}", "annotation_id": f"a{n}",
                       "shape": shape})
            assert reply["type"] == "published"
            trainer.inbox.clear()

    async def fast_reads() -> list[int]:
        offsets: list[int] = []
        while len(offsets) < count:
            frame = await fast.read(10)
            if frame.get("type") == "event":
                offsets.append(frame["offset"])
        return offsets

    _, offsets = await asyncio.gather(publish_all(), fast_reads())
    assert offsets == list(range(1, count + 1))
    assert await slow.closed_code(timeout=20) == 4008
    import httpx

    async with httpx.AsyncClient(base_url=server.http_url) as http:
        metrics = (await http.get("/metrics", headers=server.metrics_auth)).text
    assert "classroom_slow_disconnects_total 1.0" in metrics
    await trainer.close()
    await fast.close()


async def test_shutdown_sends_disconnect_1012_with_reconnect(
    start_server: ServerFactory,
) -> None:
    server = await start_server()
    client = await server.member("u1", "student")
    server.server.should_exit = True
    frame = await client.expect("disconnect", timeout=5)
    assert frame == {"type": "disconnect", "code": 1012, "reason": "server is restarting",
                     "reconnect": True}
    assert await client.closed_code() == 1012
