"""Slowloris and friends: deadlines before a request or upgrade, and a per-address cap.

Real sockets against a real server. Every test client comes from 127.0.0.1, which
uvicorn trusts as a proxy by default (``FORWARDED_ALLOW_IPS``) and the cap therefore
exempts: the cap tests trust another address instead.
"""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest
from websockets.exceptions import InvalidMessage

from tests.client import Client
from tests.conftest import RunningServer, ServerFactory

QUICK = {"http_header_timeout": 1.0, "http_idle_timeout": 0.8}


async def open_raw(server: RunningServer) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection("127.0.0.1", server.port)


async def closed_within(reader: asyncio.StreamReader, seconds: float) -> float:
    """Seconds until the server closed the connection (EOF or reset); fails after ``seconds``."""
    started = time.monotonic()
    try:
        while await asyncio.wait_for(reader.read(65536), seconds):
            pass  # an answer before the close is fine; wait for the close itself
    except (ConnectionResetError, BrokenPipeError):
        pass
    return time.monotonic() - started


async def still_open(reader: asyncio.StreamReader, seconds: float) -> bool:
    try:
        data = await asyncio.wait_for(reader.read(1), seconds)
    except TimeoutError:
        return True
    except ConnectionResetError:
        return False
    return data != b""


def dropped(server: RunningServer, reason: str) -> float:
    value = server.app.state.classroom.metrics.registry.get_sample_value(
        "classroom_http_dropped_total", {"reason": reason})
    return 0.0 if value is None else float(value)


# -- deadlines -------------------------------------------------------------------------


async def test_half_a_request_line_is_closed_at_the_header_deadline(
    start_server: ServerFactory,
) -> None:
    server = await start_server(http_header_timeout=0.5, http_idle_timeout=30)
    reader, writer = await open_raw(server)
    writer.write(b"GET /heal")
    await writer.drain()
    assert await closed_within(reader, 3.0) < 2.0
    assert dropped(server, "header_timeout") == 1
    writer.close()


async def test_many_trickling_connections_are_all_closed_in_time(
    start_server: ServerFactory,
) -> None:
    """The probe's slowloris in small: every connection goes at the header deadline."""
    server = await start_server(http_header_timeout=0.8, http_idle_timeout=30)
    clients = [await open_raw(server) for _ in range(200)]
    for _, writer in clients:
        writer.write(b"GET / HTTP/1.1\r\nHost: x\r\nX-")
    started = time.monotonic()
    await asyncio.gather(*(closed_within(reader, 5.0) for reader, _ in clients))
    assert time.monotonic() - started < 3.0
    assert dropped(server, "header_timeout") == 200
    for _, writer in clients:
        writer.close()


async def test_a_head_trickled_byte_by_byte_still_meets_the_header_deadline(
    start_server: ServerFactory,
) -> None:
    server = await start_server(http_header_timeout=0.6, http_idle_timeout=0.3)
    reader, writer = await open_raw(server)
    started = time.monotonic()
    head = b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + b"X-Slow: " + b"a" * 200
    for byte in head:  # one byte every 50 ms: never idle, never done
        if reader.at_eof() or time.monotonic() - started > 3:
            break
        try:
            writer.write(bytes([byte]))
            await writer.drain()
        except (ConnectionResetError, BrokenPipeError):
            break
        await asyncio.sleep(0.05)
    await closed_within(reader, 3.0)
    assert time.monotonic() - started < 2.0
    assert dropped(server, "header_timeout") == 1
    writer.close()


async def test_a_silent_connection_is_closed_at_the_idle_deadline(
    start_server: ServerFactory,
) -> None:
    server = await start_server(http_header_timeout=30, http_idle_timeout=0.4)
    reader, writer = await open_raw(server)
    assert await closed_within(reader, 3.0) < 2.0
    assert dropped(server, "idle_timeout") == 1
    writer.close()


async def test_a_trickled_second_request_on_a_kept_alive_connection_is_closed(
    start_server: ServerFactory,
) -> None:
    server = await start_server(http_header_timeout=0.5, http_idle_timeout=3)
    reader, writer = await open_raw(server)
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    await writer.drain()
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 3)
    assert head.startswith(b"HTTP/1.1 200")
    await asyncio.wait_for(reader.readexactly(len(b'{"status":"ok"}')), 3)
    writer.write(b"GET /hea")  # the next request, never finished
    await writer.drain()
    assert await closed_within(reader, 3.0) < 2.0
    assert dropped(server, "header_timeout") == 1
    writer.close()


async def test_a_stalled_request_body_is_closed_at_the_idle_deadline(
    start_server: ServerFactory,
) -> None:
    server = await start_server(http_header_timeout=30, http_idle_timeout=0.4)
    reader, writer = await open_raw(server)
    writer.write(b"PUT /api/v1/sessions/s1 HTTP/1.1\r\nHost: x\r\n"
                 b"Authorization: Bearer acme-key\r\nContent-Type: application/json\r\n"
                 b"Content-Length: 1000\r\n\r\n{\"title\":")
    await writer.drain()
    assert await closed_within(reader, 3.0) < 2.0
    assert dropped(server, "idle_timeout") == 1
    writer.close()


async def test_a_body_trickled_after_the_answer_gets_the_body_deadline(
    start_server: ServerFactory,
) -> None:
    """Refused at once (no API key), yet the client goes on sending its body slowly."""
    server = await start_server(http_header_timeout=0.6, http_idle_timeout=0.3)
    reader, writer = await open_raw(server)
    writer.write(b"PUT /api/v1/sessions/s1 HTTP/1.1\r\nHost: x\r\n"
                 b"Content-Length: 100000\r\n\r\n")
    await writer.drain()
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 3)
    assert head.startswith(b"HTTP/1.1 401")
    started = time.monotonic()
    try:
        for _ in range(60):  # 3 s of a byte every 50 ms, if nobody stops it
            writer.write(b" ")
            await writer.drain()
            await asyncio.sleep(0.05)
            if reader.at_eof():
                break
    except (ConnectionResetError, BrokenPipeError):
        pass
    await closed_within(reader, 3.0)
    assert time.monotonic() - started < 2.0
    assert dropped(server, "body_timeout") == 1
    writer.close()


async def test_websockets_and_http_keep_working_past_the_deadlines(
    start_server: ServerFactory,
) -> None:
    server = await start_server(**QUICK)
    client = await server.client("u1", "student")
    await asyncio.sleep(2.0)  # past both deadlines: an upgraded connection is not theirs
    assert (await client.request("ping"))["type"] == "pong"
    async with httpx.AsyncClient(base_url=server.http_url) as http:
        for _ in range(3):  # one kept-alive connection, requests spaced under the idle time
            assert (await http.get("/healthz")).status_code == 200
            await asyncio.sleep(0.2)
        roster = await http.put("/api/v1/sessions/s1", json={"title": "Heftruck"},
                                headers={"Authorization": "Bearer acme-key"})
        assert roster.status_code == 200
    await client.close()
    assert dropped(server, "header_timeout") == 0
    assert dropped(server, "body_timeout") == 0


async def test_a_slow_application_is_not_an_idle_client(start_server: ServerFactory) -> None:
    """The idle deadline watches the client, never a request the node is still answering."""
    server = await start_server(**QUICK)
    gate = asyncio.Event()
    api = server.app.state.classroom.api
    original = api.backoffice.session

    async def slow_session(*args: object, **kwargs: object) -> object:
        await asyncio.wait_for(gate.wait(), 5)
        return await original(*args, **kwargs)

    api.backoffice.session = slow_session
    asyncio.get_running_loop().call_later(2.0, gate.set)
    async with httpx.AsyncClient(base_url=server.http_url) as http:
        await http.put("/api/v1/sessions/s1", json={}, headers={"Authorization": "Bearer acme-key"})
        answer = await http.get("/api/v1/sessions/s1",
                                headers={"Authorization": "Bearer acme-key"})
    assert answer.status_code == 200


async def test_a_body_the_application_has_not_read_yet_is_not_idle(
    start_server: ServerFactory,
) -> None:
    """uvicorn stops reading past 64 KiB until the application asks for the body: the
    client's silence meanwhile is the node's doing, not an idle client."""
    server = await start_server(**QUICK)
    api = server.app.state.classroom.api
    original = api._body

    async def late_body(request: object, model: object) -> object:
        await asyncio.sleep(2.0)
        return await original(request, model)

    api._body = late_body
    body = b'{"title": "Heftruck"}' + b" " * (1024 * 1024)
    async with httpx.AsyncClient(base_url=server.http_url) as http:
        answer = await http.put("/api/v1/sessions/s1", content=body, headers={
            "Authorization": "Bearer acme-key", "Content-Type": "application/json"})
    assert answer.status_code == 200, answer.text
    assert dropped(server, "idle_timeout") == 0


# -- the per-address cap ----------------------------------------------------------------


@pytest.fixture
def loopback_untrusted(monkeypatch: pytest.MonkeyPatch) -> None:
    """Trust another address as the proxy, so 127.0.0.1 is an ordinary client."""
    monkeypatch.setenv("FORWARDED_ALLOW_IPS", "192.0.2.1")


async def test_connections_past_the_cap_are_refused_at_accept(
    start_server: ServerFactory, loopback_untrusted: None,
) -> None:
    server = await start_server(max_connections_per_address=3, http_idle_timeout=30)
    held = [await open_raw(server) for _ in range(3)]
    reader, writer = await open_raw(server)
    assert await closed_within(reader, 2.0) < 1.0  # closed before anything was read
    writer.close()
    assert dropped(server, "address_cap") == 1
    for other_reader, _ in held:
        assert await still_open(other_reader, 0.1)
    held[0][1].close()  # one goes: its place is free again
    await asyncio.sleep(0.1)
    reader, writer = await open_raw(server)
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    await writer.drain()
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 3)
    assert head.startswith(b"HTTP/1.1 200")
    writer.close()
    for _, other in held[1:]:
        other.close()


async def test_websockets_count_under_the_cap_and_give_their_place_back(
    start_server: ServerFactory, loopback_untrusted: None,
) -> None:
    server = await start_server(max_connections_per_address=2, http_idle_timeout=30)
    first = await server.client("u1", "student")
    second = await server.client("u2", "student")
    with pytest.raises(InvalidMessage):  # closed before the handshake got an answer
        await Client.open(server.ws_url, open_timeout=2)
    assert dropped(server, "address_cap") == 1
    assert (await first.request("ping"))["type"] == "pong"
    await second.close()
    await asyncio.sleep(0.1)
    third = await server.client("u3", "student")
    assert (await third.request("ping"))["type"] == "pong"
    await first.close()
    await third.close()


async def test_addresses_trusted_as_proxies_are_not_capped(
    start_server: ServerFactory, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("FORWARDED_ALLOW_IPS", raising=False)  # 127.0.0.1 trusted by default
    server = await start_server(max_connections_per_address=2, http_idle_timeout=30)
    held = [await open_raw(server) for _ in range(5)]
    for reader, _ in held:
        assert await still_open(reader, 0.05)
    assert dropped(server, "address_cap") == 0
    for _, writer in held:
        writer.close()


async def test_a_cap_of_zero_means_no_cap(
    start_server: ServerFactory, loopback_untrusted: None,
) -> None:
    server = await start_server(max_connections_per_address=0, http_idle_timeout=30)
    held = [await open_raw(server) for _ in range(5)]
    for reader, _ in held:
        assert await still_open(reader, 0.05)
    for _, writer in held:
        writer.close()
