"""One WebSocket connection: handshake, reading commands, answering them, queueing frames.

The reader decodes a frame, applies the connection's limits (rate, bad-frame
strikes), validates the command and hands it to :mod:`classroom.handlers`, for
which this connection is the ``Peer``. Frames go into the
:class:`~classroom.edge.send_queue.SendQueue`, and the
:class:`~classroom.edge.write_batching.WriteBatcher` writes them to the socket at
the end of the loop iteration, without a task; only when the socket pushes back
(or the server offers no direct write) does a writer task take over until the
queue is empty (:mod:`classroom.edge.socket_writer`). Nothing that fans out ever
waits on this client's socket. How the connection closes and tears down is
:mod:`classroom.edge.closing`.
"""

from __future__ import annotations

import asyncio
import itertools
import secrets
import time
from collections.abc import Iterable
from typing import Any

from starlette.types import Receive, Scope, Send

from auth.identity import Identity
from classroom.config import Settings
from classroom.domain.refusals import RequestRefused
from classroom.edge.client_limits import ClientLimits
from classroom.edge.closing import Closing
from classroom.edge.paced_replay import send_paced
from classroom.edge.registry import ConnectionRegistry
from classroom.edge.send_queue import SendQueue
from classroom.edge.server import FRAMES_EXTENSION
from classroom.edge.write_batching import WriteBatcher
from classroom.handlers.services import Services
from classroom.handlers.table import run_command
from classroom.metrics import Metrics
from classroom.protocol.close_codes import (
    CLOSE_BAD_CLIENT,
    CLOSE_RESTART,
    CLOSE_TOO_MANY_CONNECTIONS,
    CLOSE_UNAUTHORIZED,
)
from classroom.protocol.codec import Encoding, FrameError, Payload, decode, encode, negotiate
from classroom.protocol.commands import command_id_of, parse_command
from classroom.protocol.frames import error_frame


class Connection(Closing):
    """Serves one client from handshake to close.

    Its writing to the socket (:class:`~classroom.edge.socket_writer.SocketWriter`) and
    its closing (:class:`~classroom.edge.closing.Closing`) are base classes, not objects
    of their own: this ``__init__`` sets the state of all three.
    """

    def __init__(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        *,
        services: Services,
        settings: Settings,
        metrics: Metrics,
        registry: ConnectionRegistry,
        writes: WriteBatcher,
    ) -> None:
        self.client_id = secrets.token_urlsafe(12)
        self.encoding: Encoding = "json"
        self.identity: Identity | None = None
        self.features: frozenset[str] = frozenset()
        self.memberships = {}
        self._scope, self._receive, self._send = scope, receive, send
        self._services = services
        self._settings = settings
        self._metrics = metrics
        self._registry = registry
        self._send_queue = SendQueue(settings.send_queue_max_bytes, self._too_slow)
        self._limits = ClientLimits(settings)
        self._close_request = None
        self._reader = None
        self._writer = None  # only while the socket pushes back
        self._writes = writes
        self._flush_marked = False  # the batcher will flush this connection this iteration
        frames_extension = (scope.get("extensions") or {}).get(FRAMES_EXTENSION)
        self._batched = frames_extension is not None
        self._write_now = None
        self._writable = None
        if frames_extension:
            self._write_now = frames_extension.get("write")
            self._writable = frames_extension.get("writable")
        self._receiving = False
        self._expiry: asyncio.TimerHandle | None = None
        self._tasks = set()
        self._dispatching = False
        self._close_after_command = None

    # -- lifecycle ------------------------------------------------------------------

    async def run(self) -> None:
        """Accept, serve until either side closes, then leave every session."""
        message = await self._receive()
        if message["type"] != "websocket.connect":
            return
        offered = list(self._scope.get("subprotocols") or [])
        self.encoding, subprotocol = negotiate(offered)
        await self._send({"type": "websocket.accept", "subprotocol": subprotocol})
        self._registry.add(self)
        self._metrics.connections.inc()
        self._reader = asyncio.current_task()
        try:
            if self._registry.draining:
                self.disconnect(CLOSE_RESTART, "server is restarting", reconnect=True)
            else:
                await self._read_loop()
        except asyncio.CancelledError:
            if self._close_request is None:
                raise
            task = asyncio.current_task()
            if task is not None:
                task.uncancel()
        finally:
            self._registry.discard(self)
            self._metrics.connections.dec()
            if self._expiry is not None:
                self._expiry.cancel()
            await self._leave_all()
            await self._finish_writer()
            self._release()

    def disconnect(self, code: int, reason: str, *, reconnect: bool) -> None:
        """Tell the client why it goes (a ``disconnect`` frame), then close."""
        self.send(
            {"type": "disconnect", "code": code, "reason": reason, "reconnect": reconnect}
        )
        self.request_close(code, reason)

    # -- what the handlers see (classroom.handlers.peer.Peer) --------------------------

    async def send_replay(
        self, payloads: Iterable[Payload], then: dict[str, Any] | None = None
    ) -> bool:
        """Queue a join's replay, then ``then``, within the send bound, at the client's pace."""
        if then is not None:
            payloads = itertools.chain(payloads, (encode(then, self.encoding),))
        sent = await send_paced(
            payloads, self._send_queue, self._queue,
            closing=lambda: self.closing, too_slow=self._too_slow,
            stall_timeout=self._settings.replay_stall_timeout,
        )
        if sent and then is not None:
            self._metrics.frames_out.labels(str(then.get("type", ""))).inc()
        return sent

    def replay_allowance(self) -> int:
        """Stored events this connection may be sent from history now."""
        return self._limits.replay_allowance()

    def spend_replay(self, count: int) -> None:
        """Count events sent from history against the connection's allowance."""
        self._limits.spend_replay(count)

    def authenticated(self, identity: Identity) -> None:
        """``connect`` succeeded: file under the user, and close when the token expires.

        A user already at the node's connection cap is refused (``rate_limited``) and
        this connection is closed with 4429.
        """
        budgets = self._registry.index(self, identity)
        if budgets is None:  # refused: the error frame goes out first, then the close
            self._close_after_command = (CLOSE_TOO_MANY_CONNECTIONS, "too many connections")
            raise RequestRefused("rate_limited", "too many connections for this user")
        self.identity = identity
        self._limits.budgets = budgets
        self._expire_at(identity.expires_at)

    def reauthenticated(self, identity: Identity) -> None:
        """``refresh`` succeeded: the same user under a new token, which sets the expiry."""
        self.identity = identity
        self._expire_at(identity.expires_at)

    def _expire_at(self, expires_at: float) -> None:
        if self._expiry is not None:
            self._expiry.cancel()
        delay = expires_at + self._settings.token_leeway - time.time()
        self._expiry = asyncio.get_running_loop().call_later(max(0.0, delay), self._expired)

    def _expired(self) -> None:
        self.disconnect(CLOSE_UNAUTHORIZED, "token expired", reconnect=True)

    # -- writing ----------------------------------------------------------------------

    def enqueue(self, payload: Payload) -> None:
        """Queue an encoded frame (the hub calls this); never blocks."""
        self._queue(payload)

    def send(self, frame: dict[str, Any]) -> None:
        """Encode and queue one frame for this client alone."""
        self._metrics.frames_out.labels(str(frame.get("type", ""))).inc()
        self._queue(encode(frame, self.encoding))

    def _queue(self, payload: Payload) -> None:
        if self._send_queue.put(payload) and not self._flush_marked:
            self._flush_marked = True
            self._writes.mark(self)

    # -- reading ----------------------------------------------------------------------

    async def _read_loop(self) -> None:
        deadline = time.monotonic() + self._settings.connect_timeout
        while self._close_request is None:
            timeout = None if self.identity else max(0.0, deadline - time.monotonic())
            self._receiving = True
            try:
                if timeout is None:  # no wait_for wrapper: an idle connection waits here
                    message = await self._receive()
                else:
                    message = await asyncio.wait_for(self._receive(), timeout)
            except TimeoutError:
                self.send(error_frame("unauthorized", "no connect in time", None))
                self.request_close(CLOSE_UNAUTHORIZED, "no connect in time")
                return
            finally:
                self._receiving = False
            if message["type"] == "websocket.disconnect":
                return
            data = message.get("text")
            if data is None:
                data = message.get("bytes")
            if data is None:
                continue
            await self._handle(data)

    async def _handle(self, data: Payload) -> None:
        try:
            frame = decode(data, self.encoding)
        except FrameError as exc:
            self._reject_frame(str(exc), None)
            return
        command_id = command_id_of(frame)
        if not self._limits.allow():
            self._rate_limited("too many commands", command_id)
            return
        try:
            command = parse_command(frame)
        except RequestRefused as exc:
            if self.identity is None and frame.get("type") == "connect":
                self.send(error_frame("unauthorized", "token refused", command_id))
                self.request_close(CLOSE_UNAUTHORIZED, "token refused")
                return
            self._reject_frame(exc.message, command_id)
            return
        budget = self._limits.over_budget(command)
        if budget is not None:
            self._rate_limited(f"too many {budget} commands; slow down", command_id)
            return
        self._metrics.frames_in.labels(command.type).inc()
        self._dispatching = True
        try:
            await run_command(self._services, self, command, command_id)
        finally:
            self._dispatching = False
            if self._close_after_command is not None:
                self.request_close(*self._close_after_command)

    def _reject_frame(self, message: str, command_id: int | None) -> None:
        self._metrics.bad_frames.inc()
        self.send(error_frame("bad_request", message, command_id))
        self._strike("too many bad frames")

    def _rate_limited(self, message: str, command_id: int | None) -> None:
        """Refuse a command over a limit; a flood of them counts as strikes, like bad frames."""
        self._metrics.rate_limited.inc()
        self.send(error_frame("rate_limited", message, command_id))
        self._strike("too many refused commands")

    def _strike(self, reason: str) -> None:
        if self._limits.strike():
            self.request_close(CLOSE_BAD_CLIENT, reason)
