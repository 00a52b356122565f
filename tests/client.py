"""A small test client of the wire protocol, on the real ``websockets`` library.

It reads frames on demand (a test asks for the next reply or push), unlike
:class:`classroom.client.ClassroomClient`, which reads in the background and
reconnects; both encode and decode through :mod:`classroom.client.wire`.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import socket
from collections.abc import Callable
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from classroom.client.wire import Encoding, encode, subprotocol
from classroom.client.wire import decode as decode_frame
from classroom.protocol.codec import FrameError, decode
from tests.wire_contract import LEDGER

Frame = dict[str, Any]


class Client:
    """Sends commands, matches replies by id, and keeps pushes in an inbox.

    Every frame it sends and receives is checked against ``/asyncapi.json``
    (``tests/wire_contract.py``); a mismatch raises where the frame arrives, and
    fails the running test even if that error is caught.
    """

    def __init__(self, ws: ClientConnection, encoding: str) -> None:
        self.ws = ws
        self.encoding = encoding
        self._wire: Encoding = "msgpack" if encoding == "msgpack" else "json"
        self.inbox: list[Frame] = []
        self.received: list[Frame] = []
        self._ids = itertools.count(1)
        self._verdicts: dict[int, tuple[str, str | None]] = {}

    @classmethod
    async def open(cls, url: str, encoding: str = "json", **kwargs: Any) -> Client:
        subprotocols = [subprotocol(encoding)] if encoding else None  # type: ignore[arg-type]
        # Unbounded by default: a test client that leaves pushes unread must still be
        # able to complete the closing handshake (the slow-client test sets its own).
        kwargs.setdefault("max_queue", None)
        ws = await connect(url, subprotocols=subprotocols, max_size=None, **kwargs)
        return cls(ws, encoding or "json")

    async def send_frame(self, frame: Frame) -> None:
        await self.send_raw(encode(frame, self._wire))

    async def send_raw(self, data: str | bytes) -> None:
        """Send ``data``; if the server can decode it, the contract checks it as a command."""
        with contextlib.suppress(FrameError):
            LEDGER.sent(decode(data, "msgpack" if self.encoding == "msgpack" else "json"),
                        self._verdicts)
        await self.ws.send(data)

    async def read(self, timeout: float = 5.0) -> Frame:
        data = await asyncio.wait_for(self.ws.recv(), timeout)
        if isinstance(data, bytes):
            assert self.encoding == "msgpack", "binary frame on a JSON connection"
        else:
            assert self.encoding == "json", "text frame on a MessagePack connection"
        frame = decode_frame(data, self._wire)
        known = len(LEDGER.problems)
        LEDGER.received(frame, self.encoding, self._verdicts)
        if len(LEDGER.problems) > known:  # fail here, where the frame arrived (and shrink)
            raise AssertionError(LEDGER.problems[-1])
        self.received.append(frame)
        return frame

    async def request(self, kind: str, timeout: float = 5.0, **fields: Any) -> Frame:
        """Send a command and return its reply (or error); pushes go to the inbox."""
        command_id = next(self._ids)
        await self.send_frame({"type": kind, "id": command_id, **fields})
        return await self.reply_to(command_id, timeout)

    async def reply_to(self, command_id: int, timeout: float = 5.0) -> Frame:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            frame = await self.read(max(0.01, deadline - loop.time()))
            if frame.get("id") == command_id:
                return frame
            self.inbox.append(frame)

    async def expect(
        self, match: Callable[[Frame], bool] | str, timeout: float = 5.0
    ) -> Frame:
        """The first push that matches (a frame type or a predicate), inbox first."""
        test = (lambda f: f.get("type") == match) if isinstance(match, str) else match
        for index, frame in enumerate(self.inbox):
            if test(frame):
                return self.inbox.pop(index)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            frame = await self.read(max(0.01, deadline - loop.time()))
            if test(frame):
                return frame
            self.inbox.append(frame)

    async def quiet(self, seconds: float = 0.3) -> list[Frame]:
        """Collect whatever arrives within ``seconds`` (to assert that nothing does)."""
        frames = list(self.inbox)
        self.inbox.clear()
        try:
            while True:
                frames.append(await self.read(seconds))
        except TimeoutError:
            return frames

    async def connect(self, token: str) -> Frame:
        return await self.request("connect", token=token)

    async def close(self) -> None:
        await self.ws.close()

    async def closed_code(self, timeout: float = 5.0) -> int | None:
        """Read until the server closes; the close code it sent."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        with contextlib.suppress(ConnectionClosed):
            while True:
                await self.read(max(0.01, deadline - loop.time()))
        await self.ws.wait_closed()
        rcvd = self.ws.protocol.close_rcvd
        return rcvd.code if rcvd is not None else None


def small_receive_socket(port: int) -> socket.socket:
    """A socket connected to the local server with a 4 KiB receive buffer, so that a client
    that stops reading makes the server's socket push back within a few frames."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", port))
    sock.setblocking(False)
    return sock
