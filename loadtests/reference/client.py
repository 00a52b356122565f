"""The load generator's driver for the reference server, on python-socketio's AsyncClient.

It is the counterpart of :class:`loadtests.client.SimUser` for
``loadtests/reference/server.py``: the same tokens (sent as Socket.IO ``auth``), the
same behaviour and timing (``behaviour.py``), the same stamps and latency legs and
the same tally, so the two servers are measured alike. The websocket transport
only (no long-polling, no upgrade), no reconnection by the library (the lifecycle
reconnects, as with our server).

Counted as deliveries, as for our protocol: every frame the server sends that the
application sees, namely ``event`` and ``presence.*`` pushes, acks (replies to
``join`` and ``publish``) and the namespace ``CONNECT`` that answers the token.
Engine.IO pings are transport, as WebSocket pings are for our server.

python-socketio's client hands each incoming message to a task of its own before
the handler runs; that cost is part of the receiving side, like the decoding in
our driver (``generator.loop_lag_ms`` in the report tells when it grows).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import aiohttp
import socketio

from loadtests.client import REPLY_TIMEOUT, STAMPED_FIELDS, Recorder, read_stamp
from loadtests.plan import User, WorkerPlan

Frame = dict[str, Any]


def split_url(url: str) -> tuple[str, str]:
    """``ws://host:port/socket.io`` -> (``ws://host:port``, ``socket.io``)."""
    parts = urlsplit(url)
    path = parts.path.strip("/") or "socket.io"
    return urlunsplit((parts.scheme, parts.netloc, "", "", "")), path


class SocketIOUser:
    """A user of the reference server; the same interface as ``SimUser``."""

    def __init__(self, user: User, plan: WorkerPlan, recorder: Recorder) -> None:
        self.user = user
        self.plan = plan
        self.rec = recorder
        self.token = plan.token(user)
        self.online = False
        self.lost = asyncio.Event()
        self.poll: str | None = None
        self.pointers_on = True  # the reference server has no session options: students point
        self.on_poll_open: Callable[[str], None] | None = None
        self._client: Any = None
        self._http: aiohttp.ClientSession | None = None  # ours, so it is always closed
        self._closing = False
        self._ever_online = False
        self._down_since: float | None = None
        self._top_seq = 0  # highest sequence number seen in this user's session

    # -- connecting -------------------------------------------------------------------

    def _new_client(self, http: aiohttp.ClientSession) -> Any:
        client = socketio.AsyncClient(reconnection=False, handle_sigint=False,
                                      request_timeout=REPLY_TIMEOUT, http_session=http)
        client.on("connect", self._on_connect)
        client.on("disconnect", self._on_disconnect)
        client.on("event", self._on_event)
        client.on("presence.join", self._on_push)
        client.on("presence.leave", self._on_push)
        return client

    async def open(self) -> bool:
        """Connect with the token (Socket.IO ``auth``) and join the user's session."""
        began = time.time()
        base, path = split_url(self.plan.url_for(self.user))
        await self._discard()
        self._http = aiohttp.ClientSession()
        client = self._new_client(self._http)
        self._client, self._closing = client, False
        self.lost = asyncio.Event()
        try:
            await client.connect(base, auth={"token": self.token}, transports=["websocket"],
                                 socketio_path=path, wait_timeout=REPLY_TIMEOUT)
        except (socketio.exceptions.ConnectionError, OSError, TimeoutError) as exc:
            self.rec.error("connect_failed", str(exc)[:80] or type(exc).__name__, "open")
            await self._discard()
            return False
        except asyncio.CancelledError:  # the run ended while connecting
            await asyncio.shield(self._discard())
            raise
        if self.plan.scenario.join:
            reply = await self.request("join", session=self.user.session)
            if reply is None or "error" in reply:
                await self.close()
                return False
            self._top_seq = int(reply.get("seq") or 0)
        self.online = True
        self.rec.came_online(not self._ever_online, began, self._down_since)
        self._ever_online, self._down_since = True, None
        return True

    async def _discard(self) -> None:
        """Disconnect the client and close its HTTP session, whatever state they are in."""
        client, http = self._client, self._http
        self._http = None
        if client is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(client.disconnect(), 3.0)
        if http is not None and not http.closed:
            await http.close()

    async def close(self) -> None:
        """Close on purpose (a reconnect, a storm or the end of the run)."""
        self._closing = True
        if self.online:
            self._down_since = time.time()
        self.online = False
        await self._discard()
        self.lost.set()

    # -- sending ----------------------------------------------------------------------

    async def send(self, kind: str, **fields: Any) -> int | None:
        """Emit a command with an ack callback, without waiting for the ack."""
        client = self._client
        if client is None or not client.connected or not self.online:
            self.rec.tally.counts["skipped_offline"] += 1
            return None
        try:
            await client.emit(kind, fields,
                              callback=lambda reply=None: self._on_reply(kind, reply))
        except socketio.exceptions.SocketIOError:
            self.rec.tally.counts["skipped_offline"] += 1
            return None
        self.rec.tally.counts["commands"] += 1
        return 0

    async def request(self, kind: str, **fields: Any) -> Frame | None:
        """Emit a command and wait for its ack (``call``); None when it never came."""
        client = self._client
        if client is None or not client.connected:
            self.rec.tally.counts["skipped_offline"] += 1
            return None
        self.rec.tally.counts["commands"] += 1
        try:
            reply = await client.call(kind, fields, timeout=REPLY_TIMEOUT)
        except socketio.exceptions.TimeoutError:
            self.rec.error("reply_timeout", None, kind)
            return None
        except socketio.exceptions.SocketIOError:
            self.rec.tally.counts["unanswered"] += 1
            return None
        self._on_reply(kind, reply)
        return reply if isinstance(reply, dict) else None

    # -- slow readers: not part of the comparison ---------------------------------------

    def pause(self) -> None:
        """Not supported by this driver: python-socketio reads in its own tasks."""
        self.rec.error("client_bug", "slow readers are not supported by the socketio driver")

    async def drain(self, timeout: float) -> None:
        """Nothing to drain (see :meth:`pause`)."""

    # -- receiving ----------------------------------------------------------------------

    def _on_connect(self) -> None:
        counts = self.rec.tally.counts
        counts["deliveries"] += 1
        counts["replies"] += 1

    def _on_disconnect(self, reason: object = None) -> None:
        if not self._closing:
            self.rec.error(f"close_{reason or 'unknown'}".replace(" ", "_"), None, "connection")
        if self.online:
            self._down_since = time.time()
        self.online = False
        self.lost.set()

    def _on_reply(self, kind: str, reply: object) -> None:
        counts = self.rec.tally.counts
        counts["deliveries"] += 1
        counts["replies"] += 1
        if isinstance(reply, dict) and "error" in reply:
            self.rec.error(str(reply["error"]), reply.get("message"), kind)

    def _on_push(self, data: object = None) -> None:
        counts = self.rec.tally.counts
        counts["deliveries"] += 1
        counts["pushes"] += 1

    def _on_event(self, frame: object) -> None:
        now = time.time()
        counts = self.rec.tally.counts
        counts["deliveries"] += 1
        counts["pushes"] += 1
        if not isinstance(frame, dict):
            self.rec.error("client_bug", "event is not an object", "push")
            return
        seq = frame.get("seq")
        if isinstance(seq, int):
            # INCR, then emit, in concurrent handlers: numbers can arrive out of order.
            if seq <= self._top_seq:
                counts["out_of_order"] += 1
            else:
                self._top_seq = seq
        event = frame.get("event") or {}
        kind = str(event.get("kind"))
        sent = read_stamp(event.get(STAMPED_FIELDS.get(kind, "")))
        if sent is not None and self.online:
            self.rec.latency(kind, sent, event.get("at"), now)
