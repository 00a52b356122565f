"""One WebSocket connection: handshake, reading commands, writing frames, closing.

The reader decodes, rate-limits and dispatches commands. Frames go into the
:class:`~classroom.edge.send_queue.Outbox`, and the node's
:class:`~classroom.edge.write_batching.WriteBatcher` writes them to the socket at the end of
the loop iteration, without a task; only when the socket pushes back (or the
server offers no direct write) does a writer task take over until the outbox
is empty. Nothing that fans out ever waits on this client's socket.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import Callable
from typing import Any

from starlette.types import Receive, Scope, Send

from auth.identity import Identity
from auth.tokens import TokenRejected, verify_token
from classroom.backends.broker import BrokerUnavailable, StreamPosition
from classroom.backends.data.store import DataUnavailable
from classroom.config import Settings
from classroom.domain.participants import display_name_for
from classroom.domain.views import render_participant, view_for_role
from classroom.edge.ratelimit import StrikeCounter, TokenBucket
from classroom.edge.send_queue import Outbox
from classroom.integrations.video import VideoBroker, VideoUnavailable
from classroom.metrics import Metrics
from classroom.protocol.codec import Encoding, FrameError, Payload, decode, encode, negotiate
from classroom.protocol.commands import (
    CohortQuery,
    Command,
    Connect,
    History,
    Join,
    Leave,
    Ping,
    PresenceQuery,
    Publish,
    Video,
    command_id_of,
    parse_command,
)
from classroom.protocol.errors import CommandError, error_frame
from classroom.sessions.hub import Membership
from classroom.sessions.node import Node
from classroom.tenant_api.backoffice import Backoffice
from presence.store import PresenceUnavailable

log = logging.getLogger("classroom.edge.connection")

FRAMES_EXTENSION = "classroom.frames"
"""The server's ASGI extension for sending several frames at once (classroom.edge.server).

Its scope entry may also carry ``write`` (write frames now, synchronously) and
``writable`` (False while the socket pushes back), for the batcher's direct writes."""

CLOSE_UNAUTHORIZED = 4401
CLOSE_BAD_CLIENT = 4400
CLOSE_FORBIDDEN = 4403
CLOSE_SLOW = 4008
CLOSE_RESTART = 1012


class Connection:
    """Serves one client from handshake to close."""

    def __init__(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        *,
        node: Node,
        settings: Settings,
        metrics: Metrics,
        registry: ConnectionRegistry,
        video: VideoBroker,
        backoffice: Backoffice,
    ) -> None:
        self.client_id = secrets.token_urlsafe(12)
        self.encoding: Encoding = "json"
        self.identity: Identity | None = None
        self.memberships: dict[str, Membership] = {}
        self._scope, self._receive, self._send = scope, receive, send
        self._node = node
        self._settings = settings
        self._metrics = metrics
        self._registry = registry
        self._video_broker = video
        self._backoffice = backoffice
        self._outbox = Outbox(settings.send_queue_max_bytes, self._too_slow)
        self._bucket = TokenBucket(settings.rate_limit_per_second, settings.rate_limit_burst)
        self._strikes: StrikeCounter | None = None  # made at the first bad frame
        self._close_request: tuple[int, str] | None = None
        self._reader: asyncio.Task[None] | None = None
        self._writer: asyncio.Task[None] | None = None  # only while the socket pushes back
        self._writes = node.writes
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

    async def _finish_writer(self) -> None:
        if self._close_request is None:
            self._outbox.closed = True
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
                await self._node.leave(membership)
            except Exception:
                log.exception("leave failed", extra={"pid": membership.pid})

    def request_close(self, code: int, reason: str, *, urgent: bool = False) -> None:
        """Close after what is queued (or at once when ``urgent``); stop reading."""
        if self._close_request is not None:
            return
        self._close_request = (code, reason)
        if urgent:
            self._outbox.clear()
            self._outbox.closed = True
            if self._writer is not None:
                self._writer.cancel()
            self._writer = asyncio.create_task(self._send_close())
        else:
            self._outbox.finish()
            if self._writer is None:
                self._writer = asyncio.create_task(self._write_pending())
        if self._receiving and self._reader is not None:
            self._reader.cancel()

    def disconnect(self, code: int, reason: str, *, reconnect: bool) -> None:
        """Tell the client why it goes (a ``disconnect`` frame), then close."""
        self.enqueue_frame(
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
            await self._node.leave(membership)
        finally:
            if not self.memberships:
                if self._dispatching:  # let the command in flight (session.end) reply first
                    self._close_after_command = (1000, "session ended")
                else:
                    self.request_close(1000, "session ended")

    def _too_slow(self) -> None:
        self._metrics.slow_disconnects.inc()
        log.info("slow client closed", extra={"client": self.client_id})
        self.request_close(CLOSE_SLOW, "client too slow", urgent=True)

    # -- writing ----------------------------------------------------------------------

    def enqueue(self, payload: Payload) -> None:
        """Queue an encoded frame (the hub calls this); never blocks."""
        self._queue(payload)

    def enqueue_frame(self, frame: dict[str, Any]) -> None:
        """Encode and queue one frame for this client alone."""
        self._metrics.frames_out.labels(str(frame.get("type", ""))).inc()
        self._queue(encode(frame, self.encoding))

    def _queue(self, payload: Payload, *, bounded: bool = True) -> None:
        if self._outbox.put(payload, bounded=bounded) and not self._flush_marked:
            self._flush_marked = True
            self._writes.mark(self)

    def flush(self) -> int:
        """Write what is queued now, in one write per batch (the batcher calls this).

        Hands over to a writer task when one is already busy, when the socket
        pushes back, or when the server offers no direct write; returns the
        frames written here.
        """
        self._flush_marked = False
        outbox = self._outbox
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
        send, outbox, batched = self._send, self._outbox, self._batched
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
        code, reason = self._close_request or (1000, "")
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
                self.enqueue_frame(error_frame("unauthorized", "no connect in time", None))
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
        if not self._bucket.allow():
            self._metrics.rate_limited.inc()
            self.enqueue_frame(error_frame("rate_limited", "too many commands", command_id))
            return
        try:
            command = parse_command(frame)
        except CommandError as exc:
            if self.identity is None and frame.get("type") == "connect":
                self.enqueue_frame(error_frame("unauthorized", "token refused", command_id))
                self.request_close(CLOSE_UNAUTHORIZED, "token refused")
                return
            self._reject_frame(exc.message, command_id)
            return
        self._metrics.frames_in.labels(command.type).inc()
        self._dispatching = True
        try:
            await self._run_command(command, command_id)
        finally:
            self._dispatching = False
            if self._close_after_command is not None:
                self.request_close(*self._close_after_command)

    async def _run_command(self, command: Command, command_id: int | None) -> None:
        try:
            reply = await self._dispatch(command)
        except CommandError as exc:
            self.enqueue_frame(error_frame(exc.code, exc.message, command_id))
            if exc.code == "unauthorized":
                self.request_close(CLOSE_UNAUTHORIZED, exc.message)
            return
        except Exception:
            log.exception("command failed", extra={"command": command.type})
            self.enqueue_frame(error_frame("internal", "internal error", command_id))
            return
        if reply is not None:
            reply["id"] = command.id
            self.enqueue_frame(reply)

    def _reject_frame(self, message: str, command_id: int | None) -> None:
        self._metrics.bad_frames.inc()
        self.enqueue_frame(error_frame("bad_request", message, command_id))
        if self._strikes is None:
            settings = self._settings
            self._strikes = StrikeCounter(settings.bad_frames_limit, settings.bad_frames_window)
        if self._strikes.strike():
            self.request_close(CLOSE_BAD_CLIENT, "too many bad frames")

    # -- commands ---------------------------------------------------------------------

    async def _dispatch(self, command: Command) -> dict[str, Any] | None:
        if isinstance(command, Connect):
            return await self._connect(command)
        identity = self.identity
        if identity is None:
            raise CommandError("unauthorized", "send connect first")
        if isinstance(command, Ping):
            return {"type": "pong"}
        if isinstance(command, Join):
            return await self._join(identity, command)
        if isinstance(command, Leave):
            return await self._leave(command)
        if isinstance(command, Publish):
            return await self._publish(command)
        if isinstance(command, PresenceQuery):
            participants = await self._node.presence_of(identity, command.session)
            return {"type": "presence", "session": command.session, "participants": participants}
        if isinstance(command, History):
            since = _position(command.since)
            body = await self._node.history_of(identity, command.session, since, command.limit)
            return {"type": "history", **body}
        if isinstance(command, Video):
            return await self._video(identity, command.session)
        if isinstance(command, CohortQuery):
            return await self._cohort(identity, command.session)
        raise CommandError("bad_request", "unknown command type")

    async def _connect(self, command: Connect) -> dict[str, Any]:
        if self.identity is not None:
            raise CommandError("bad_request", "already connected")
        try:
            identity = verify_token(
                command.token, self._node.tenants, leeway=self._settings.token_leeway
            )
        except TokenRejected as exc:
            log.info("connect refused", extra={"reason": exc.reason})
            raise CommandError("unauthorized", "token refused") from None
        with contextlib.suppress(DataUnavailable):
            await self._node.records.remember(identity)
        self.identity = identity
        self._registry.index(self)
        delay = identity.expires_at + self._settings.token_leeway - time.time()
        self._expiry = asyncio.get_running_loop().call_later(max(0.0, delay), self._expired)
        return {
            "type": "connected",
            "client": self.client_id,
            "me": self._profile(identity),
            "ping_interval": self._settings.ping_interval,
        }

    def _profile(self, identity: Identity) -> dict[str, Any]:
        tenant = self._node.tenants.get(identity.tenant)
        policy = tenant.display_name if tenant is not None else "first"
        profile: dict[str, Any] = {
            "tenant": identity.tenant,
            "sub": identity.sub,
            "role": identity.role,
            "sessions": sorted(identity.sessions),
        }
        for key in ("name", "email", "phone", "username"):
            value = getattr(identity, key)
            if value is not None:
                profile[key] = value
        display_name = display_name_for(identity.name, policy)
        if display_name is not None:
            profile["display_name"] = display_name
        return profile

    async def _cohort(self, identity: Identity, session: str) -> dict[str, Any]:
        """The cohort table: trainers see their students, observers pids only."""
        self._node.authorise(identity, session)
        if identity.role == "student":
            raise CommandError("forbidden", "students see only their own progress")
        tenant = self._node.tenants.get(identity.tenant)
        if tenant is None:
            raise CommandError("forbidden", "unknown tenant")
        try:
            table = await self._backoffice.cohort(tenant, session, must_exist=False)
        except (DataUnavailable, BrokerUnavailable, PresenceUnavailable):
            raise CommandError("unavailable", "storage is unreachable") from None
        view = view_for_role(identity.role)
        me = self._node.participant(identity, session).pid
        for row in table["students"]:
            row["participant"] = render_participant(row["participant"], view, me)
        return {"type": "cohort", **table}

    async def _video(self, identity: Identity, session: str) -> dict[str, Any]:
        channel = self._node.authorise(identity, session)
        status = await self._node.records.status(identity.tenant, session)
        if status is not None and status.get("status") == "ended":
            raise CommandError("forbidden", "this session has ended")
        participant = self._node.participant(identity, session)
        try:
            credentials = await self._video_broker.credentials(
                channel, pid=participant.pid,
                role=identity.role, display_name=participant.display_name,
            )
        except VideoUnavailable as exc:
            raise CommandError("unavailable", str(exc)) from None
        return {"type": "video", "session": session, **credentials}

    def _expired(self) -> None:
        self.disconnect(CLOSE_UNAUTHORIZED, "token expired", reconnect=True)

    async def _join(self, identity: Identity, command: Join) -> dict[str, Any] | None:
        if command.session in self.memberships:
            raise CommandError("bad_request", "already joined")
        outcome = await self._node.join(self, identity, command.session, _position(command.since))
        if self._close_request is not None or self._outbox.closed:
            await self._node.leave(outcome.membership)
            return None
        self.memberships[command.session] = outcome.membership
        for payload in outcome.replay:
            # Replay is bounded by the history size; it must not count as a slow reader.
            self._queue(payload, bounded=False)
        reply = outcome.reply
        reply["id"] = command.id
        self.enqueue_frame(reply)
        outcome.membership.go_live(outcome.live_after)
        return None

    async def _leave(self, command: Leave) -> dict[str, Any]:
        membership = self.memberships.pop(command.session, None)
        if membership is None:
            raise CommandError("bad_request", "not joined to that session")
        await self._node.leave(membership)
        return {"type": "left", "session": command.session}

    async def _publish(self, command: Publish) -> dict[str, Any]:
        membership = self.memberships.get(command.session)
        if membership is None:
            if self.identity is not None:
                self._node.authorise(self.identity, command.session)
            raise CommandError("bad_request", "join the session before publishing")
        position = await self._node.publish(membership, command.event, command.client_msg_id)
        reply: dict[str, Any] = {"type": "published", "session": command.session}
        if position is not None and position.offset > 0:
            reply["epoch"] = position.epoch
            reply["offset"] = position.offset
        return reply


def _position(since: Any) -> StreamPosition | None:
    return None if since is None else StreamPosition(offset=since.offset, epoch=since.epoch)


class ConnectionRegistry:
    """Every live connection of this node, by user, for shutdown and the server API."""

    def __init__(self) -> None:
        self._all: set[Connection] = set()
        self._by_user: dict[tuple[str, str], set[Connection]] = {}
        self.draining = False

    def add(self, connection: Connection) -> None:
        """Track a newly accepted connection."""
        self._all.add(connection)

    def index(self, connection: Connection) -> None:
        """File a connection under its user once it has authenticated."""
        identity = connection.identity
        if identity is not None:
            self._by_user.setdefault((identity.tenant, identity.sub), set()).add(connection)

    def discard(self, connection: Connection) -> None:
        """Forget a closed connection."""
        self._all.discard(connection)
        identity = connection.identity
        if identity is not None:
            key = (identity.tenant, identity.sub)
            users = self._by_user.get(key)
            if users is not None:
                users.discard(connection)
                if not users:
                    del self._by_user[key]

    def of_user(self, tenant: str, sub: str) -> list[Connection]:
        """A user's connections on this node."""
        return list(self._by_user.get((tenant, sub), ()))

    def __len__(self) -> int:
        return len(self._all)

    def drain(self, reason: str) -> None:
        """Tell every client to reconnect elsewhere (1012) and close them."""
        self.draining = True
        for connection in list(self._all):
            connection.disconnect(CLOSE_RESTART, reason, reconnect=True)
