"""The ceiling: how fast pure Python fans one WebSocket message out, on this machine.

``python -m loadtests serve-ceiling --port P`` is the smallest possible fan-out
server: a bare ``websockets`` (asyncio, on uvloop, no compression) server that on
every incoming message calls ``websockets.broadcast()`` with that message to every
connected client, the sender included. No authentication, no rooms, no JSON on
the server, no sequence numbers, no Redis: whatever a real server does on top
of this costs on top of it.

:class:`RawUser` is the load generator's driver for it: it connects (nothing to
join), publishes its event as one JSON text frame and reads every frame (straight
from the connection's read, ``loadtests/wire.py``), with the same stamps and
latency accounting as the other drivers (no ``at`` leg: the server adds
nothing). ``python -m loadtests ceiling`` drives it with the fan-out ladder
(``loadtests/ladder.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from collections.abc import Callable
from typing import Any

import orjson
import uvloop
from websockets.asyncio.server import ServerConnection, broadcast, serve
from websockets.exceptions import InvalidHandshake

from loadtests.client import REPLY_TIMEOUT, STAMPED_FIELDS, Recorder, read_stamp
from loadtests.plan import User, WorkerPlan
from loadtests.wire import WireClosedError, WireConnection, connect

Frame = dict[str, Any]


async def _serve(host: str, port: int) -> None:
    clients: set[ServerConnection] = set()

    async def handler(ws: ServerConnection) -> None:
        clients.add(ws)
        try:
            async for message in ws:
                broadcast(clients, message)
        finally:
            clients.discard(ws)

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    async with serve(handler, host, port, compression=None, max_size=None):
        await stop.wait()


def serve_ceiling(host: str, port: int) -> int:
    """Run the broadcast server until SIGTERM or SIGINT."""
    uvloop.run(_serve(host, port))
    return 0


class RawUser:
    """A client of the ceiling server; the same interface as ``SimUser``."""

    def __init__(self, user: User, plan: WorkerPlan, recorder: Recorder) -> None:
        self.user = user
        self.plan = plan
        self.rec = recorder
        self.online = False
        self.lost = asyncio.Event()
        self.poll: str | None = None
        self.pointers_on = True  # a bare broadcast has no session options: students point
        self.on_poll_open: Callable[[str], None] | None = None
        self._ws: WireConnection | None = None
        self._closing = False
        self._ever_online = False

    async def open(self) -> bool:
        """Open the WebSocket; there is no handshake beyond it."""
        began = time.time()
        try:
            ws = await connect(self.plan.url_for(self.user), self._on_message,
                               on_close=self._ended, open_timeout=REPLY_TIMEOUT)
        except (OSError, InvalidHandshake, TimeoutError) as exc:
            self.rec.error("connect_failed", type(exc).__name__, "open")
            return False
        self._ws, self._closing = ws, False
        self.lost = asyncio.Event()
        if ws.closed.done():  # it ended within its opening read (and _ended counted that)
            return False
        self.online = True
        self.rec.came_online(not self._ever_online, began)
        self._ever_online = True
        return True

    async def close(self) -> None:
        """Close on purpose."""
        ws = self._ws
        self._closing = True
        self.online = False
        if ws is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(ws.close(), 3.0)

    async def send(self, kind: str, **fields: Any) -> int | None:
        """Send a ``publish``'s event as it is; other commands mean nothing here."""
        ws = self._ws
        if ws is None or not self.online:
            self.rec.tally.counts["skipped_offline"] += 1
            return None
        if kind != "publish":
            return None
        try:
            ws.send_text(orjson.dumps(fields.get("event")))
        except WireClosedError:
            self.rec.tally.counts["skipped_offline"] += 1
            return None
        self.rec.tally.counts["commands"] += 1
        return 0

    async def request(self, kind: str, **fields: Any) -> Frame | None:
        """There are no replies: send, and answer None."""
        await self.send(kind, **fields)
        return None

    def pause(self) -> None:
        """Not supported: the ceiling has no slow-reader policy to test."""
        self.rec.error("client_bug", "slow readers are not supported by the raw driver")

    async def drain(self, timeout: float) -> None:
        """Nothing to drain."""

    def _on_message(self, data: bytes, text: bool) -> None:
        """Count and time one frame, called from the connection's read itself."""
        now = time.time()
        rec = self.rec
        try:
            event = orjson.loads(data)
            counts = rec.tally.counts
            counts["deliveries"] += 1
            counts["pushes"] += 1
            kind = str(event.get("kind")) if isinstance(event, dict) else ""
            if kind:
                sent = read_stamp(event.get(STAMPED_FIELDS.get(kind, "")))
                if sent is not None:
                    rec.latency(kind, sent, None, now)
        except Exception as exc:  # noqa: BLE001 - one bad frame must not stop the reading
            rec.error("client_bug", repr(exc)[:120], "read")

    def _ended(self, ws: WireConnection) -> None:
        """The connection ended (after its last frame): an error unless we closed it."""
        if not self._closing:
            code = ws.close_code if ws.close_code is not None else 1006
            self.rec.error(f"close_{code}", ws.close_reason or None, "connection")
        if self._ws is ws:
            self.online = False
            self.lost.set()
