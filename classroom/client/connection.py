"""One WebSocket to a classroom server, read step by step.

A script or a test often wants to do one thing and see exactly what comes back: a
back-end job that publishes an announcement and leaves, a check that a refusal
arrives with the right code. :class:`Connection` does that: it reads only when
asked, matches a reply to its command by ``id`` and keeps the pushes that came
first in :attr:`Connection.inbox`. :class:`classroom.client.ClassroomClient`
opens each of its connections and says ``connect`` through it before it starts
reading in the background, and the tests' client is a subclass, so all of them
frame the wire and shake hands the same way.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any, Self

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed
from websockets.typing import Subprotocol

from classroom.client.wire import Encoding, Frame, connect_fields, decode, encode, subprotocol

log = logging.getLogger("classroom.client")


class Connection:
    """Sends commands with ids, reads frames on demand, keeps unasked-for pushes."""

    def __init__(self, ws: ClientConnection, encoding: Encoding) -> None:
        self.ws = ws
        self.encoding: Encoding = encoding
        self.inbox: list[Frame] = []
        """Pushes read while waiting for something else, oldest first."""
        self._ids = itertools.count(1)

    @classmethod
    async def open(cls, url: str, encoding: Encoding | None = "json", **kwargs: Any) -> Self:
        """Open a WebSocket asking for ``encoding``'s subprotocol; ``None`` asks for none
        (the server then speaks JSON). ``kwargs`` go to :func:`websockets.connect`."""
        protocols = [Subprotocol(subprotocol(encoding))] if encoding else None
        kwargs.setdefault("max_size", None)  # the server bounds its frames, not us
        ws = await connect(url, subprotocols=protocols, **kwargs)
        return cls(ws, encoding or "json")

    def next_id(self) -> int:
        """A command id not used before on this connection."""
        return next(self._ids)

    # -- sending ----------------------------------------------------------------------

    async def send_frame(self, frame: Frame) -> None:
        """Encode ``frame`` and send it."""
        await self.send_raw(encode(frame, self.encoding))

    async def send_raw(self, data: str | bytes) -> None:
        """Send a message as it is (a subclass may look at it first)."""
        await self.ws.send(data)

    # -- reading ----------------------------------------------------------------------

    def decode(self, message: str | bytes) -> Frame:
        """A received message as a frame; ``ValueError`` when it is not one of this
        connection's encoding (binary on JSON, text on MessagePack, or garbage)."""
        if isinstance(message, bytes) != (self.encoding == "msgpack"):
            kind = "binary" if isinstance(message, bytes) else "text"
            raise ValueError(f"a {kind} frame on a {self.encoding} connection")
        return decode(message, self.encoding)

    def check(self, frame: Frame) -> None:
        """Called with every frame read, before anyone sees it: a subclass may look at
        it or raise (the tests check each against the AsyncAPI document)."""

    async def read(self, timeout: float = 5.0) -> Frame:
        """The next frame; ``TimeoutError`` after ``timeout`` seconds,
        :class:`websockets.exceptions.ConnectionClosed` once the connection is closed."""
        frame = self.decode(await asyncio.wait_for(self.ws.recv(), timeout))
        self.check(frame)
        return frame

    async def frames(self) -> AsyncIterator[Frame]:
        """Every frame until the connection closes (what a background reader iterates).
        A message that does not decode is logged and skipped: a frame this client cannot
        read must not stop it reading the ones it can."""
        with contextlib.suppress(ConnectionClosed):
            async for message in self.ws:
                try:
                    frame = self.decode(message)
                except ValueError as exc:
                    log.warning("a frame was skipped: %s", exc)
                    continue
                self.check(frame)
                yield frame

    async def request(self, kind: str, timeout: float = 5.0, **fields: Any) -> Frame:
        """Send a command and return its reply, an ``error`` reply included (this level
        does not raise on refusals: a test or script asserts on them); pushes that
        arrive first go to the inbox."""
        command_id = self.next_id()
        await self.send_frame({"type": kind, "id": command_id, **fields})
        return await self.reply_to(command_id, timeout)

    async def reply_to(self, command_id: int, timeout: float = 5.0) -> Frame:
        """The reply with ``command_id``, reading (and keeping pushes) until it comes."""
        return await self._read_until(lambda frame: frame.get("id") == command_id, timeout)

    async def expect(self, match: Callable[[Frame], bool] | str, timeout: float = 5.0) -> Frame:
        """The first push that matches (a frame type or a predicate), inbox first."""
        test = (lambda f: f.get("type") == match) if isinstance(match, str) else match
        for index, frame in enumerate(self.inbox):
            if test(frame):
                return self.inbox.pop(index)
        return await self._read_until(test, timeout)

    async def _read_until(self, test: Callable[[Frame], bool], timeout: float) -> Frame:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            frame = await self.read(max(0.01, deadline - loop.time()))
            if test(frame):
                return frame
            self.inbox.append(frame)

    async def quiet(self, seconds: float = 0.3) -> list[Frame]:
        """The inbox and whatever arrives within ``seconds`` (to assert that nothing does)."""
        frames = list(self.inbox)
        self.inbox.clear()
        try:
            while True:
                frames.append(await self.read(seconds))
        except TimeoutError:
            return frames

    # -- the handshake and the end ----------------------------------------------------

    async def connect(self, token: str, features: Sequence[str] = (),
                      timeout: float = 5.0) -> Frame:
        """Say ``connect``: the ``connected`` reply, or the ``error`` that refused it."""
        return await self.request("connect", timeout, **connect_fields(token, features))

    async def close(self, code: int = 1000, reason: str = "") -> None:
        await self.ws.close(code, reason)

    async def closed_code(self, timeout: float = 5.0) -> int | None:
        """Read until the server closes; the close code it sent (None if it sent none)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        with contextlib.suppress(ConnectionClosed):
            while True:
                await self.read(max(0.01, deadline - loop.time()))
        await self.ws.wait_closed()
        rcvd = self.ws.protocol.close_rcvd
        return rcvd.code if rcvd is not None else None
