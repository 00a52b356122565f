"""The tests' client: :class:`classroom.client.Connection` that checks every frame.

It reads frames on demand (a test asks for the next reply or push) and keeps all it
read in :attr:`Client.received`; what it adds to the library's connection is the
contract: every frame sent and received is checked against ``/asyncapi.json``
(``tests/wire_contract.py``).
"""

from __future__ import annotations

import contextlib
import socket
from typing import Any, Self, cast

from websockets.asyncio.client import ClientConnection

from classroom.client.connection import Connection
from classroom.client.wire import Encoding, Frame
from classroom.protocol.codec import FrameError, decode
from tests.wire_contract import LEDGER

__all__ = ["Client", "Frame", "small_receive_socket"]


class Client(Connection):
    """Sends commands, matches replies by id, and keeps pushes in an inbox.

    A frame that breaks the contract raises where it arrives, and fails the running
    test even if that error is caught.
    """

    def __init__(self, ws: ClientConnection, encoding: Encoding) -> None:
        super().__init__(ws, encoding)
        self.received: list[Frame] = []
        self._verdicts: dict[int, tuple[str, str | None]] = {}

    @classmethod
    async def open(cls, url: str, encoding: str | None = "json", **kwargs: Any) -> Self:
        """``encoding`` "" (or None) asks for no subprotocol (the server then speaks JSON)."""
        # Unbounded by default: a test client that leaves pushes unread must still be
        # able to complete the closing handshake (the slow-client test sets its own).
        kwargs.setdefault("max_queue", None)
        return await super().open(url, cast(Encoding, encoding) or None, **kwargs)

    async def send_raw(self, data: str | bytes) -> None:
        """Send ``data``; if the server can decode it, the contract checks it as a command."""
        with contextlib.suppress(FrameError):
            LEDGER.sent(decode(data, self.encoding), self._verdicts)
        await super().send_raw(data)

    def check(self, frame: Frame) -> None:
        known = len(LEDGER.problems)
        LEDGER.received(frame, self.encoding, self._verdicts)
        if len(LEDGER.problems) > known:  # fail here, where the frame arrived (and shrink)
            raise AssertionError(LEDGER.problems[-1])
        self.received.append(frame)


def small_receive_socket(port: int) -> socket.socket:
    """A socket connected to the local server with a 4 KiB receive buffer, so that a client
    that stops reading makes the server's socket push back within a few frames."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", port))
    sock.setblocking(False)
    return sock
