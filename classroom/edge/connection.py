"""One WebSocket connection: handshake, reading frames, writing frames, closing.

The reader decodes a frame, applies the connection's limits (rate, bad-frame
strikes), validates the command and hands it to :mod:`classroom.handlers`, for
which this connection is the ``Peer``. Frames go into the
:class:`~classroom.edge.send_queue.SendQueue`, and the
:class:`~classroom.edge.write_batching.WriteBatcher` writes them to the socket at
the end of the loop iteration, without a task; only when the socket pushes back
(or the server offers no direct write) does a writer task take over until the
queue is empty. Nothing that fans out ever waits on this client's socket.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import secrets
import time
from collections.abc import Callable, Iterable
from typing import Any

from starlette.types import Receive, Scope, Send

from auth.identity import Identity
from classroom.config import Settings
from classroom.domain.refusals import RequestRefused
from classroom.edge.client_limits import ClientLimits
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
    CLOSE_NORMAL,
    CLOSE_RESTART,
    CLOSE_SLOW,
    CLOSE_TOO_MANY_CONNECTIONS,
    CLOSE_UNAUTHORIZED,
)
from classroom.protocol.codec import Encoding, FrameError, Payload, decode, encode, negotiate
from classroom.protocol.commands import command_id_of, parse_command
from classroom.protocol.frames import error_frame
from classroom.sessions.hub import Membership

log = logging.getLogger("classroom.edge.connection")

class Connection:
    """Serves one client from handshake to close."""

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
        self.memberships: dict[str, Membership] = {}
        self._scope, self._receive, self._send = scope, receive, send
        self._services = services
        self._settings = settings
        self._metrics = metrics
        self._registry = registry
        self._send_queue = SendQueue(settings.send_queue_max_bytes, self._too_slow)
        self._limits = ClientLimits(settings)
        self._close_request: tuple[int, str] | None = None
        self._reader: asyncio.Task[None] | None = None
        self._writer: asyncio.Task[None] | None = None  # only while the socket pushes back
        self._writes = writes
        self._flush_marked = False  # the batcher will flush this connection this iteration
        frames_extension = (scope.get("extensions") or {}).get(FRAMES_EXTENSION)
        self._batched = frames_extension is not None
        self._write_now: Callable[[list[Payload]], None] | None = None
        self._writable: Callable[[], bool] | None = None
        if frames_extension:
            self._write_now = frames_extension.get("write")
            self._writable = frames_extension.get("writable")
        self._receiving = False
        self._expiry: asyncio.TimerHandle | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._dispatching = False
        self._close_after_command: tuple[int, str] | None = None

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

    def _release(self) -> None:
        """Drop what refers back to this connection, so it is freed when its task ends.

        Left in place, these cycles (the queue's overflow callback, the protocol's write
        methods) keep every closed connection alive until a full garbage collection:
        after a reconnect storm, thousands of them, freed in one pause of most of a
        second while every other member waits for its events.
        """
        self._send_queue.release()
        self._write_now = self._writable = None

    async def _finish_writer(self) -> None:
        if self._close_request is None:
            self._send_queue.closed = True
            if self._writer is not None:
                self._writer.cancel()
        while self._writer is not None:
            writer = self._writer
            try:
                await asyncio.wait_for(asyncio.shield(writer), self._settings.close_timeout * 2)
            except (TimeoutError, asyncio.CancelledError):
                writer.cancel()
            except Exception:
                log.exception("writer failed", extra={"client": self.client_id})
            if writer is self._writer:
                break

    async def _leave_all(self) -> None:
        memberships, self.memberships = list(self.memberships.values()), {}
        for membership in memberships:
            try:
                await self._services.node.joins.leave(membership)
            except Exception:
                log.exception("leave failed", extra={"pid": membership.pid})

    def request_close(self, code: int, reason: str, *, urgent: bool = False) -> None:
        """Close after what is queued (or at once when ``urgent``); stop reading."""
        if self._close_request is not None:
            return
        self._close_request = (code, reason)
        if urgent:
            self._send_queue.clear()
            self._send_queue.closed = True
            if self._writer is not None:
                self._writer.cancel()
            self._writer = asyncio.create_task(self._send_close())
        else:
            self._send_queue.finish()
            if self._writer is None:
                self._writer = asyncio.create_task(self._write_pending())
        if self._receiving and self._reader is not None:
            self._reader.cancel()

    def disconnect(self, code: int, reason: str, *, reconnect: bool) -> None:
        """Tell the client why it goes (a ``disconnect`` frame), then close."""
        self.send(
            {"type": "disconnect", "code": code, "reason": reason, "reconnect": reconnect}
        )
        self.request_close(code, reason)

    def session_ended(self, session: str) -> None:
        """The session ended: leave it, and close normally when nothing else is joined."""
        membership = self.memberships.pop(session, None)
        if membership is None:
            return
        task = asyncio.create_task(self._end(membership))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _end(self, membership: Membership) -> None:
        try:
            await self._services.node.joins.leave(membership)
        finally:
            if not self.memberships:
                if self._dispatching:  # let the command in flight (session.end) reply first
                    self._close_after_command = (CLOSE_NORMAL, "session ended")
                else:
                    self.request_close(CLOSE_NORMAL, "session ended")

    def _too_slow(self) -> None:
        self._metrics.slow_disconnects.inc()
        log.info("slow client closed", extra={"client": self.client_id})
        self.request_close(CLOSE_SLOW, "client too slow", urgent=True)

    # -- what the handlers see (classroom.handlers.peer.Peer) --------------------------

    @property
    def closing(self) -> bool:
        """Whether the connection is closing: nothing more will be written to it."""
        return self._close_request is not None or self._send_queue.closed

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

    def flush(self) -> int:
        """Write what is queued now, in one write per batch (the batcher calls this).

        Hands over to a writer task when one is already busy, when the socket
        pushes back, or when the server offers no direct write; returns the
        frames written here.
        """
        self._flush_marked = False
        outbox = self._send_queue
        if self._writer is not None or not outbox:
            return 0  # a writer task is draining (or closing): it takes these too
        write_now, writable = self._write_now, self._writable
        if outbox.closed:
            outbox.clear()
            return 0
        if write_now is None or writable is None:
            self._writer = asyncio.create_task(self._write_pending())
            return 0
        written = 0
        while outbox:
            if not writable():
                self._writer = asyncio.create_task(self._write_pending())
                break
            frames = outbox.take()
            try:
                write_now(frames)
            except (OSError, RuntimeError):  # the client is gone; the reader will notice
                outbox.clear()
                outbox.closed = True
                break
            written += len(frames)
        return written

    async def _write_pending(self) -> None:
        """Write until the outbox is empty, waiting on the socket; then close if asked.

        Runs only while needed: the connection is back on direct writes once it
        has caught up.
        """
        send, outbox, batched = self._send, self._send_queue, self._batched
        try:
            while frames := outbox.take():
                if batched:
                    await send({"type": FRAMES_EXTENSION, "frames": frames})
                else:
                    for payload in frames:
                        if isinstance(payload, str):
                            await send({"type": "websocket.send", "text": payload})
                        else:
                            await send({"type": "websocket.send", "bytes": payload})
                self._metrics.frames_written.inc(len(frames))
        except (OSError, RuntimeError):
            outbox.clear()
            outbox.closed = True
            return
        if not outbox.finishing:
            if self._writer is asyncio.current_task():
                self._writer = None  # caught up: the batcher writes directly again
            return
        await self._send_close()

    async def _send_close(self) -> None:
        code, reason = self._close_request or (CLOSE_NORMAL, "")
        with contextlib.suppress(OSError, RuntimeError, TimeoutError):
            await asyncio.wait_for(
                self._send({"type": "websocket.close", "code": code, "reason": reason}),
                self._settings.close_timeout,
            )

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
