"""The load generator's lean WebSocket client (loadtests/wire.py, loadtests/framing.py).

Against real servers: a ``websockets`` server on a free loopback port for the
protocol, raw TCP servers for broken handshakes, and the classroom server for a
slow reader driven through ``SimUser``. The parser is also fed hand-made byte
streams split at every position, since TCP may cut a frame anywhere.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import socket
import struct
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from http import HTTPStatus
from typing import Any

import httpx
import pytest
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import InvalidHandshake, InvalidStatus, ProtocolError
from websockets.http11 import Request, Response
from websockets.utils import accept_key

from loadtests.client import Recorder, SimUser, stamp
from loadtests.framing import (
    OP_BINARY,
    OP_CLOSE,
    OP_CONTINUATION,
    OP_PING,
    OP_TEXT,
    FrameParser,
)
from loadtests.plan import Credentials, make_plans
from loadtests.scenarios import build_scenario
from loadtests.wire import WireClosedError, WireConnection, connect
from tests.client import Client
from tests.conftest import TENANTS, ServerFactory

Handler = Callable[[ServerConnection], Awaitable[None]]
SIZES = (0, 1, 125, 126, 1000, 65535, 65536, 300_000)  # every length form and its edges


class Inbox:
    """What a connection delivered, in order, and a way to wait for it."""

    def __init__(self) -> None:
        self.messages: list[tuple[bytes, bool]] = []
        self.closes: list[WireConnection] = []
        self._changed = asyncio.Event()

    def on_message(self, payload: bytes, text: bool) -> None:
        assert isinstance(payload, bytes)
        self.messages.append((payload, text))
        self._changed.set()

    def on_close(self, connection: WireConnection) -> None:
        self.closes.append(connection)
        self._changed.set()

    async def wait(self, count: int, timeout: float = 5.0) -> list[tuple[bytes, bool]]:
        async with asyncio.timeout(timeout):
            while len(self.messages) < count:
                self._changed.clear()
                await self._changed.wait()
        return self.messages


@asynccontextmanager
async def ws_server(handler: Handler, **kwargs: Any) -> AsyncIterator[str]:
    """A websockets server on a free loopback port; yields its ws:// URL."""
    kwargs.setdefault("compression", None)
    kwargs.setdefault("max_size", None)
    async with serve(handler, "127.0.0.1", 0, **kwargs) as server:
        port = server.sockets[0].getsockname()[1]
        yield f"ws://127.0.0.1:{port}/path?q=1"


@asynccontextmanager
async def tcp_server(answer: Callable[[bytes], bytes | None]) -> AsyncIterator[str]:
    """A raw TCP server: reads the request head, writes ``answer(head)`` (None: nothing)."""
    handlers: set[asyncio.Task[Any]] = set()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        handlers.add(task)
        try:
            with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
                reply = answer(await reader.readuntil(b"\r\n\r\n"))
                if reply is not None:
                    writer.write(reply)
                    await writer.drain()
                await reader.read()  # until the client goes
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    async with server:
        yield f"ws://127.0.0.1:{server.sockets[0].getsockname()[1]}/"
        if handlers:  # each ends when its client has gone
            _, pending = await asyncio.wait(handlers, timeout=5)
            assert not pending, "a client did not close its connection"


def request_key(head: bytes) -> str:
    for line in head.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"sec-websocket-key":
            return value.strip().decode()
    raise AssertionError("no Sec-WebSocket-Key")


def server_frame(opcode: int, payload: bytes, fin: bool = True) -> bytes:
    """An unmasked frame, as a server writes it."""
    first = (0x80 if fin else 0) | opcode
    length = len(payload)
    if length < 126:
        return bytes((first, length)) + payload
    if length < 65536:
        return bytes((first, 126)) + struct.pack("!H", length) + payload
    return bytes((first, 127)) + struct.pack("!Q", length) + payload


# -- handshake --------------------------------------------------------------------------


async def test_handshake_agrees_on_a_subprotocol() -> None:
    seen: list[str | None] = []
    requests: list[Request] = []

    async def handler(ws: ServerConnection) -> None:
        seen.append(ws.subprotocol)
        assert ws.request is not None
        requests.append(ws.request)
        await ws.wait_closed()

    async with ws_server(handler, subprotocols=["classroom.v1.json"]) as url:
        inbox = Inbox()
        conn = await connect(url, inbox.on_message, subprotocols=["x.v9", "classroom.v1.json"])
        assert conn.subprotocol == "classroom.v1.json"
        await conn.close()
    assert seen == ["classroom.v1.json"]
    assert requests[0].path == "/path?q=1"
    assert inbox.closes == [], "on_close is for the owner's callback only when given"


async def test_a_refused_handshake_raises_invalid_status() -> None:
    def refuse(connection: ServerConnection, request: Request) -> Response:
        return connection.respond(HTTPStatus.FORBIDDEN, "go away\n")

    async with ws_server(lambda ws: ws.wait_closed(), process_request=refuse) as url:
        with pytest.raises(InvalidStatus) as caught:
            await connect(url, Inbox().on_message)
    assert caught.value.response.status_code == 403


@pytest.mark.parametrize("reply", [
    b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
    b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Accept: bm90IHRoZSByaWdodCBrZXk=\r\n\r\n",
    b"SSH-2.0-OpenSSH_9.2\r\n\r\n",
], ids=["not-101", "wrong-accept", "not-http"])
async def test_a_broken_handshake_raises_invalid_handshake(reply: bytes) -> None:
    async with tcp_server(lambda head: reply) as url:
        with pytest.raises(InvalidHandshake):
            await connect(url, Inbox().on_message, open_timeout=5)


async def test_a_silent_server_times_out_and_a_closed_port_refuses() -> None:
    async with tcp_server(lambda head: None) as url:
        with pytest.raises(TimeoutError):
            await connect(url, Inbox().on_message, open_timeout=0.3)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(OSError):  # nothing listens there now
        await connect(f"ws://127.0.0.1:{port}/", Inbox().on_message)


async def test_frames_in_the_same_read_as_the_101_are_delivered() -> None:
    def accept_and_talk(head: bytes) -> bytes:
        return (b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                b"Connection: Upgrade\r\nSec-WebSocket-Accept: "
                + accept_key(request_key(head)).encode() + b"\r\n\r\n"
                + server_frame(OP_TEXT, b"first") + server_frame(OP_BINARY, b"\x00second"))

    async with tcp_server(accept_and_talk) as url:
        inbox = Inbox()
        conn = await connect(url, inbox.on_message)
        assert await inbox.wait(2) == [(b"first", True), (b"\x00second", False)]
        conn.abort()


async def test_over_a_given_socket() -> None:
    async def handler(ws: ServerConnection) -> None:
        await ws.send("over your socket")
        await ws.wait_closed()

    async with ws_server(handler) as url:
        port = int(url.split(":")[2].split("/")[0])
        sock = socket.socket()
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
        inbox = Inbox()
        conn = await connect(url, inbox.on_message, sock=sock)
        assert await inbox.wait(1) == [(b"over your socket", True)]
        await conn.close()


# -- receiving --------------------------------------------------------------------------


async def test_text_and_binary_frames_of_every_length_form() -> None:
    payloads = [bytes((n * 7 + i) % 256 for i in range(n)) for n in SIZES]
    texts = ["é" * (n // 2) + "x" * (n % 2) for n in SIZES]  # n bytes of UTF-8

    async def handler(ws: ServerConnection) -> None:
        for text, payload in zip(texts, payloads, strict=True):
            await ws.send(text)
            await ws.send(payload)
        await ws.wait_closed()

    async with ws_server(handler) as url:
        inbox = Inbox()
        conn = await connect(url, inbox.on_message)
        received = await inbox.wait(2 * len(SIZES))
        await conn.close()
    expected = [item for text, payload in zip(texts, payloads, strict=True)
                for item in ((text.encode(), True), (payload, False))]
    assert [len(p) for p, _ in received] == [len(p) for p, _ in expected]
    assert received == expected


async def test_fragmented_messages_are_assembled() -> None:
    async def handler(ws: ServerConnection) -> None:
        await ws.send(["frag", "mented ", "", "téxt"])
        await ws.send([b"\x01\x02", b"\x03" * 70_000])
        await ws.send("whole")
        await ws.wait_closed()

    async with ws_server(handler) as url:
        inbox = Inbox()
        conn = await connect(url, inbox.on_message)
        received = await inbox.wait(3)
        await conn.close()
    assert received == [("fragmented téxt".encode(), True),
                        (b"\x01\x02" + b"\x03" * 70_000, False), (b"whole", True)]


async def test_a_ping_is_answered_with_its_pong() -> None:
    latencies: list[float] = []

    async def handler(ws: ServerConnection) -> None:
        waiter = await ws.ping(b"are you there")
        latencies.append(await asyncio.wait_for(waiter, 2))
        await ws.send("after the pong")
        await ws.wait_closed()

    async with ws_server(handler) as url:
        inbox = Inbox()
        conn = await connect(url, inbox.on_message)
        assert await inbox.wait(1) == [(b"after the pong", True)]
        await conn.close()
    assert len(latencies) == 1


async def test_the_servers_close_code_and_reason() -> None:
    server_saw: list[int | None] = []

    async def handler(ws: ServerConnection) -> None:
        await ws.send("last words")
        await ws.close(4008, "too slow")
        server_saw.append(ws.close_code)  # what the client answered

    async with ws_server(handler) as url:
        inbox = Inbox()
        conn = await connect(url, inbox.on_message, on_close=inbox.on_close)
        await asyncio.wait_for(conn.closed, 5)
    assert inbox.messages == [(b"last words", True)]
    assert inbox.closes == [conn]  # once, after the last message
    assert (conn.close_code, conn.close_reason) == (4008, "too slow")
    assert server_saw == [4008]
    with pytest.raises(WireClosedError):
        conn.send_text("too late")


async def test_a_dropped_socket_is_1006() -> None:
    async def handler(ws: ServerConnection) -> None:
        ws.transport.abort()

    async with ws_server(handler) as url:
        inbox = Inbox()
        conn = await connect(url, inbox.on_message, on_close=inbox.on_close)
        await asyncio.wait_for(conn.closed, 5)
    assert (conn.close_code, conn.close_reason) == (1006, "")
    assert inbox.closes == [conn]


# -- sending and closing ------------------------------------------------------------------


async def test_sent_frames_arrive_exactly() -> None:
    received: list[str | bytes] = []
    closing: list[tuple[int | None, str | None]] = []
    small, medium, large = b"", b"\x00\xff" * 70, bytes(range(256)) * 300  # 0, 140, 76800

    async def handler(ws: ServerConnection) -> None:
        async for message in ws:  # websockets rejects an unmasked client frame
            received.append(message)
        closing.append((ws.close_code, ws.close_reason))

    async with ws_server(handler) as url:
        conn = await connect(url, Inbox().on_message)
        conn.send_text("héllo")
        conn.send_binary(small)
        conn.send_binary(medium)
        conn.send_text("ütf-8 bytes".encode())
        conn.send_binary(large)
        await conn.close(1000, "bye")
        assert conn.close_code == 1000  # the server's answer
        with pytest.raises(WireClosedError):
            conn.send_binary(b"after close")
        await asyncio.sleep(0.05)
    assert received == ["héllo", small, medium, "ütf-8 bytes", large]
    assert closing == [(1000, "bye")]


async def test_pause_stops_delivery_until_resume() -> None:
    count, size = 200, 100_000  # 20 MB: more than any socket buffers hold
    progress: list[int] = []

    async def handler(ws: ServerConnection) -> None:
        await ws.recv()
        for n in range(count):
            await ws.send(n.to_bytes(4, "big") + bytes(size))
            progress.append(n)
        await ws.wait_closed()

    async with ws_server(handler) as url:
        inbox = Inbox()
        conn = await connect(url, inbox.on_message)
        conn.send_text("go")
        await inbox.wait(1)
        conn.pause_reading()
        held = len(inbox.messages)
        await asyncio.sleep(0.5)
        assert len(inbox.messages) == held, "nothing is delivered while paused"
        assert len(progress) < count, "TCP pushed back on the server"
        conn.resume_reading()
        received = await inbox.wait(count, timeout=20)
        await conn.close()
    assert [int.from_bytes(p[:4], "big") for p, _ in received] == list(range(count))


# -- the parser on its own ----------------------------------------------------------------


def _stream() -> tuple[bytes, list[tuple[bytes, bool]], list[tuple[int, bytes]]]:
    """A server's byte stream, the messages in it, and its control frames."""
    messages = [(bytes(range(n % 256)) * (n // 256 + 1), n % 2 == 0) for n in SIZES[:6]]
    stream = b"".join(server_frame(OP_TEXT if text else OP_BINARY, payload)
                      for payload, text in messages)
    stream += server_frame(OP_TEXT, b"frag", fin=False) + server_frame(OP_PING, b"mid")
    stream += server_frame(OP_CONTINUATION, b"ment", fin=False)
    stream += server_frame(OP_CONTINUATION, b"ed")
    stream += server_frame(OP_CLOSE, struct.pack("!H", 1001) + b"bye")
    stream += server_frame(OP_TEXT, b"after close: ignored")
    return stream, [*messages, (b"fragmented", True)], [(OP_PING, b"mid"),
                                                         (OP_CLOSE, b"\x03\xe9bye")]


def _parse_in(chunks: list[bytes]) -> tuple[list[tuple[bytes, bool]], list[tuple[int, bytes]]]:
    messages: list[tuple[bytes, bool]] = []
    controls: list[tuple[int, bytes]] = []
    parser: FrameParser

    def on_control(opcode: int, payload: bytes) -> None:
        controls.append((opcode, payload))
        if opcode == OP_CLOSE:
            parser.stopped = True

    parser = FrameParser(lambda p, t: messages.append((p, t)), on_control)
    for chunk in chunks:
        parser.feed(chunk)
    return messages, controls


def test_any_split_of_the_stream_parses_the_same() -> None:
    stream, messages, controls = _stream()
    assert _parse_in([stream]) == (messages, controls)
    for cut in range(0, 400):
        assert _parse_in([stream[:cut], stream[cut:]]) == (messages, controls), cut
    assert _parse_in([bytes((b,)) for b in stream]) == (messages, controls)


def test_a_pause_mid_read_holds_the_rest_back() -> None:
    delivered: list[bytes] = []

    def on_message(payload: bytes, text: bool) -> None:
        delivered.append(payload)
        if payload == b"2":
            parser.paused = True

    parser = FrameParser(on_message, lambda opcode, payload: None)
    parser.feed(b"".join(server_frame(OP_TEXT, str(n).encode()) for n in range(1, 6)))
    assert delivered == [b"1", b"2"]
    assert parser.buffered == 9
    parser.feed(server_frame(OP_TEXT, b"6"))
    assert delivered == [b"1", b"2"]
    parser.paused = False
    parser.feed(b"")
    assert delivered == [b"1", b"2", b"3", b"4", b"5", b"6"]
    assert parser.buffered == 0


@pytest.mark.parametrize("stream", [
    bytes((0x81, 0x80 | 2)) + b"mask" + b"hi",  # a masked server frame
    server_frame(OP_CONTINUATION, b"nothing to continue"),
    server_frame(OP_TEXT, b"a", fin=False) + server_frame(OP_BINARY, b"b"),
    bytes((0xC1, 1)) + b"x",  # RSV1 without an extension
    server_frame(OP_PING, b"x" * 126),
    server_frame(0x3, b"reserved opcode"),
])
def test_protocol_violations_raise(stream: bytes) -> None:
    parser = FrameParser(lambda p, t: None, lambda opcode, payload: None)
    with pytest.raises(ProtocolError):
        parser.feed(stream)


async def test_a_protocol_violation_closes_with_1002() -> None:
    def accept_and_break(head: bytes) -> bytes:
        return (b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                b"Connection: Upgrade\r\nSec-WebSocket-Accept: "
                + accept_key(request_key(head)).encode() + b"\r\n\r\n"
                + server_frame(OP_CONTINUATION, b"orphan"))

    async with tcp_server(accept_and_break) as url:
        inbox = Inbox()
        conn = await connect(url, inbox.on_message, on_close=inbox.on_close)
        await asyncio.wait_for(conn.closed, 5)
    assert conn.close_code == 1002
    assert "continuation" in conn.close_reason
    assert inbox.closes == [conn]


# -- a slow reader through SimUser, against the classroom server --------------------------


async def test_a_paused_simuser_is_cut_off_and_drains(start_server: ServerFactory) -> None:
    server = await start_server(send_queue_max_bytes=256 * 1024, rate_limit_per_second=10_000,
                                rate_limit_burst=10_000)
    scenario = build_scenario("slow", {"rooms": 1, "students": 1, "slow_fraction": 1.0})
    plan = make_plans(scenario, server.ws_url, Credentials("acme", TENANTS["acme"]["secrets"][0]),
                      1)[0]
    student = plan.users[1]
    assert student.slow
    slow = SimUser(student, plan, Recorder())
    assert await slow.open()
    assert slow.live
    trainer: Client = await server.member("t1", "trainer", session=student.session)
    slow.pause()
    counts = slow.rec.tally.counts
    before = counts["deliveries"]
    shape = {"path": "x" * 15_000}
    async with httpx.AsyncClient(base_url=server.http_url) as http:
        for n in range(400):
            reply = await trainer.request(
                "publish", session=student.session,
                event={"kind": "annotation.add", "screen": "p", "annotation_id": f"a{n}",
                       "shape": shape})
            assert reply["type"] == "published"
            trainer.inbox.clear()
            if n % 50 == 49 and "classroom_slow_disconnects_total 1.0" in (
                    await http.get("/metrics", headers=server.metrics_auth)).text:
                break
        assert "classroom_slow_disconnects_total 1.0" in (
            await http.get("/metrics", headers=server.metrics_auth)).text
    assert counts["deliveries"] == before, "a paused reader reads nothing"
    await slow.drain(10)
    assert slow.lost.is_set()
    assert not slow.online
    assert counts["slow_closed"] == 1
    assert counts["slow_closed_4008"] + counts["slow_closed_1006"] == 1
    assert counts["slow_drained"] > 0
    assert dict(slow.rec.tally.errors) == {}
    await slow.close()
    await trainer.close()


async def test_simusers_speak_msgpack_and_json_through_it(start_server: ServerFactory) -> None:
    server = await start_server()
    scenario = build_scenario("lecture", {"students": 1, "encoding": "msgpack"})
    plan = make_plans(scenario, server.ws_url, Credentials("acme", TENANTS["acme"]["secrets"][0]),
                      1)[0]
    json_plan = dataclasses.replace(plan, scenario=dataclasses.replace(scenario, encoding="json"))
    trainer = SimUser(plan.users[0], plan, Recorder())
    student = SimUser(plan.users[1], json_plan, Recorder())
    session = plan.users[0].session
    assert await trainer.open()
    assert await student.open()
    assert trainer._ws is not None and trainer._ws.subprotocol == "classroom.v1.msgpack"
    assert student._ws is not None and student._ws.subprotocol == "classroom.v1.json"
    reply = await trainer.request("publish", session=session,
                                  event={"kind": "chat", "text": stamp("hello")})
    assert reply is not None and reply["type"] == "published", reply
    async with asyncio.timeout(5):
        while not student.rec.tally.latency.count:
            await asyncio.sleep(0.01)
    assert student.rec.tally.by_kind["chat"].count == 1
    assert student.rec.tally.delivery_leg.count == 1  # the server's ``at`` was read
    for sim in (trainer, student):
        assert dict(sim.rec.tally.errors) == {}
        await sim.close()
        assert sim.lost.is_set()
