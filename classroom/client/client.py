"""An asyncio client of the classroom protocol, for back ends, scripts and tests.

It does what ``clients/js`` does for the pages and apps, and for the same reasons:
commands are awaited by ``id``; when the link drops it reconnects with exponential
back-off and jitter (so thirty clients do not hammer a restarted server in the same
millisecond) and joins every session again with ``since``, so the server replays
exactly what was missed; stored events carry a ``client_msg_id`` so a publish sent
again after a drop is stored once; with ``get_token`` it refreshes its token in
place before it expires. It stops for good on ``disconnect`` with
``reconnect: false``, a refused token, the end of its session and ``close()``.
Dead links are found by the ``websockets`` library's own pings.

Each connection is a :class:`~classroom.client.connection.Connection`: the
handshake is said through it step by step, then a task reads it in the background.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import random
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from websockets.exceptions import ConnectionClosed, InvalidHandshake

from classroom.client.connection import Connection
from classroom.client.wire import Encoding, Frame, join_fields

log = logging.getLogger("classroom.client")

EPHEMERAL_KINDS = frozenset({"pointer", "reaction"})
"""Kinds the server does not store: sent once, without a ``client_msg_id``."""
FINAL_CLOSE_CODES = frozenset({1000, 4401, 4403})
"""Closes after which coming back cannot help (ended, refused, erased or disconnected)."""
RETRYABLE = frozenset({"rate_limited", "unavailable", "timeout", "connection_lost"})


class ClientError(Exception):
    """A command failed: ``code`` is the server's error code or one of the client's own
    (``timeout``, ``connection_lost``, ``closed``). Branch on ``code``, not the message."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message

    @property
    def retryable(self) -> bool:
        return self.code in RETRYABLE


@dataclass
class _Session:
    """A session to (re)join, the newest stored position seen in it, its last reply."""

    epoch: str | None = None
    offset: int | None = None
    live: bool = False
    reply: Frame | None = None

    def since(self) -> tuple[str, int] | None:
        return None if self.epoch is None or self.offset is None else (self.epoch, self.offset)


Listener = Callable[[Frame], None]


class ClassroomClient:
    """One user (one token) on one server, in any number of sessions."""

    def __init__(
        self,
        url: str,
        token: str,
        *,
        encoding: Encoding = "json",
        get_token: Callable[[], Awaitable[str]] | None = None,
        features: tuple[str, ...] = (),
        request_timeout: float = 10.0,
        backoff_initial: float = 0.5,
        backoff_max: float = 10.0,
        push_buffer: int = 10_000,
    ) -> None:
        """``push_buffer`` bounds what :meth:`pushes` keeps for a reader that has not
        come yet (or is slow): the oldest go first, so a client used only through
        :meth:`on` does not grow without end."""
        self.url = url
        self.encoding = encoding
        self.me: dict[str, Any] | None = None
        self.state = "idle"
        self._token = token
        self._get_token = get_token
        self._features = list(features)
        self._timeout = request_timeout
        self._backoff = (backoff_initial, backoff_max)
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[Frame]] = {}
        self._sessions: dict[str, _Session] = {}
        self._replaying: dict[str, int] = {}  # session -> events replayed so far
        self._listeners: dict[str, list[Listener]] = {}
        self._pushes: asyncio.Queue[Frame] = asyncio.Queue(maxsize=max(1, push_buffer))
        self._conn: Connection | None = None
        self._last_disconnect: Frame | None = None
        self._ready = asyncio.Event()
        self._runner: asyncio.Task[None] | None = None
        self._reader: asyncio.Task[None] | None = None
        self._refresher: asyncio.Task[None] | None = None
        self._stopped = False

    # -- listening --------------------------------------------------------------------

    def on(self, kind: str, listener: Listener) -> Callable[[], None]:
        """Call ``listener`` with every push of ``kind`` (a frame ``type``, or the
        client's own ``client.status``, ``client.rejoined`` and ``client.error``);
        returns "off". A listener that raises is logged; the client carries on."""
        self._listeners.setdefault(kind, []).append(listener)

        def off() -> None:
            with contextlib.suppress(ValueError):
                self._listeners.get(kind, []).remove(listener)

        return off

    async def pushes(self) -> AsyncIterator[Frame]:
        """Every push in arrival order (events, presence, progress, the client's own);
        ends after the client has stopped and the last one was taken."""
        while not (self._stopped and self._pushes.empty()):
            yield await self._pushes.get()

    def _emit(self, frame: Frame) -> None:
        if self._pushes.full():
            self._pushes.get_nowait()  # the oldest goes: see push_buffer
        self._pushes.put_nowait(frame)
        for listener in list(self._listeners.get(str(frame.get("type")), ())):
            try:
                listener(frame)
            except Exception:
                # An application's bug must not stop the reading (and the protocol).
                log.exception("a %s listener failed", frame.get("type"))

    # -- connecting -------------------------------------------------------------------

    async def connect(self) -> dict[str, Any]:
        """Connect and authenticate; then the client keeps itself connected until closed.

        A refused token raises :class:`ClientError` ``unauthorized``."""
        if self._runner is not None or self._stopped:
            raise ClientError("bad_request", "connect() once per client")
        try:
            await self._open()
        except (OSError, InvalidHandshake, ConnectionClosed, TimeoutError) as exc:
            raise ClientError("connection_lost", f"could not connect: {exc!r}") from exc
        self._runner = asyncio.create_task(self._run())
        assert self.me is not None
        return self.me

    async def _open(self) -> None:
        """One connection: handshake step by step, then rejoin with a background reader."""
        self._set_state("connecting")
        conn = await Connection.open(self.url, self.encoding, open_timeout=self._timeout)
        try:
            try:
                reply = await conn.connect(self._token, self._features, self._timeout)
            except TimeoutError:
                raise ClientError("timeout", "no reply to connect") from None
            if reply.get("type") == "error":
                raise ClientError(str(reply.get("code")), str(reply.get("message")))
            self._conn, self._last_disconnect = conn, None
            for frame in conn.inbox:
                self._push(frame)
            conn.inbox.clear()
            self._reader = asyncio.create_task(self._read(conn))
            self.me = reply["me"]
            self._set_state("open")
            self._schedule_refresh(reply)
            await self._rejoin(conn)
        except BaseException:
            await conn.close()
            raise
        self._ready.set()

    async def _rejoin(self, conn: Connection) -> None:
        """Join every live session again with ``since``. One that is gone (ended, no
        longer granted) is dropped and told as ``client.error``; a refusal that may pass
        (``unavailable``) raises, so the whole connection is tried again later."""
        for name, entry in list(self._sessions.items()):
            if not entry.live:
                continue
            try:
                await self._join_on(conn, name, rejoin=True)
            except ClientError as exc:
                if exc.retryable:
                    raise
                self._sessions.pop(name, None)
                self._emit({"type": "client.error", "session": name, "code": exc.code,
                            "message": exc.message})

    async def _run(self) -> None:
        """Wait for each connection to end; come back unless the end is final."""
        attempt = 0
        while not self._stopped:
            conn = self._conn
            assert conn is not None
            await conn.ws.wait_closed()
            self._ready.clear()
            self._fail_pending(ClientError("connection_lost", "the connection dropped"))
            if self._stopped:
                return
            code = conn.ws.close_code or 1006
            if self._final(code):
                self._stop(code, conn.ws.close_reason or "")
                return
            while not self._stopped:
                attempt += 1
                base, most = self._backoff
                delay = random.uniform(0.5, 1.0) * min(most, base * 2 ** (attempt - 1))  # noqa: S311 - jitter, not a secret
                if code == 1012:
                    delay += 1.0  # a restart: give the server a moment to listen again
                self._set_state("reconnecting", delay=delay, code=code)
                await asyncio.sleep(delay)
                try:
                    if code == 4401:
                        self._token = await self._fresh_token()
                    await self._open()
                    attempt = 0
                    break
                except ClientError as exc:
                    if exc.code == "unauthorized":
                        self._stop(4401, exc.message)
                        return
                except (OSError, InvalidHandshake, ConnectionClosed, TimeoutError):
                    continue

    def _final(self, code: int) -> bool:
        """Whether a close ends the client: the server said not to come back, or the code
        says so. A 4401 for an expired token is not, when ``get_token`` can get a new one."""
        notice = self._last_disconnect
        if notice is not None and notice.get("reconnect") is False:
            return True
        if code == 4401:
            return self._get_token is None or notice is None or not notice.get("reconnect")
        return code in FINAL_CLOSE_CODES

    async def _fresh_token(self) -> str:
        assert self._get_token is not None
        try:
            return await self._get_token()
        except Exception as exc:
            # The type only: the app's exception may quote a token or a user.
            log.warning("get_token failed: %s", type(exc).__name__)
            raise ClientError("unauthorized", "could not get a fresh token") from exc

    async def _read(self, conn: Connection) -> None:
        try:
            async for frame in conn.frames():
                command_id = frame.get("id")
                waiter = self._pending.get(command_id) if isinstance(command_id, int) else None
                if waiter is not None:
                    if not waiter.done():
                        waiter.set_result(frame)
                    continue
                self._push(frame)
        finally:
            if conn is self._conn:  # what waits for a reply on it will get none
                self._fail_pending(ClientError("connection_lost", "the connection dropped"))

    def _push(self, frame: Frame) -> None:
        kind = frame.get("type")
        session = str(frame.get("session"))
        entry = self._sessions.get(session)
        if kind == "event" and isinstance(frame.get("offset"), int) and entry is not None:
            if entry.epoch == frame.get("epoch") and (entry.offset or 0) >= frame["offset"]:
                return  # seen already: belt and braces, the server sends each once
            entry.epoch, entry.offset = frame.get("epoch"), frame["offset"]
        if kind == "event" and session in self._replaying:
            self._replaying[session] += 1
        if kind == "event" and (frame.get("event") or {}).get("kind") == "session.ended":
            self._sessions.pop(session, None)  # never rejoin an ended session
        elif kind == "joined" and entry is not None:
            # A refreshed token changed how this user sees the session: a new snapshot.
            entry.epoch, entry.offset, entry.reply = (frame.get("epoch"), frame.get("offset"),
                                                      frame)
        elif kind == "disconnect":
            self._last_disconnect = frame
        self._emit(frame)

    # -- commands ---------------------------------------------------------------------

    async def _connected(self) -> Connection:
        """The live connection, waiting through a reconnect for at most the timeout."""
        if self._conn is None and not self._stopped:
            raise ClientError("closed", "call connect() first")
        try:
            await asyncio.wait_for(self._ready.wait(), self._timeout)
        except TimeoutError:
            raise ClientError("timeout", "not connected") from None
        if self._stopped or self._conn is None:
            raise ClientError("closed", "the client is closed")
        return self._conn

    async def request(self, kind: str, **fields: Any) -> Frame:
        """Send a command once connected (waiting through a reconnect); its reply frame.

        An ``error`` reply raises :class:`ClientError` with the server's code.
        """
        return await self._request_on(await self._connected(), kind, fields)

    async def _request_on(self, conn: Connection, kind: str, fields: dict[str, Any]) -> Frame:
        command_id = next(self._ids)
        waiter: asyncio.Future[Frame] = asyncio.get_running_loop().create_future()
        self._pending[command_id] = waiter
        try:
            await conn.send_frame({"type": kind, "id": command_id, **fields})
            reply = await asyncio.wait_for(waiter, self._timeout)
        except TimeoutError:
            raise ClientError("timeout", f"no reply to {kind}") from None
        except ConnectionClosed:
            raise ClientError("connection_lost", "the connection dropped") from None
        finally:
            self._pending.pop(command_id, None)
        if reply.get("type") == "error":
            raise ClientError(str(reply.get("code")), str(reply.get("message")))
        return reply

    async def join(self, session: str) -> Frame:
        """Join; the session is rejoined with ``since`` after every reconnect. A join cut
        off by a dropped link is tried again on the next connection."""
        entry = self._sessions.setdefault(session, _Session())
        while True:
            conn = await self._connected()
            if entry.live and entry.reply is not None and self._sessions.get(session) is entry:
                return entry.reply  # joined already (or rejoined by the reconnect)
            try:
                return await self._join_on(conn, session, rejoin=False)
            except ClientError as exc:
                if exc.code == "connection_lost":
                    continue
                if not entry.live:
                    self._sessions.pop(session, None)
                raise

    async def _join_on(self, conn: Connection, session: str, *, rejoin: bool) -> Frame:
        entry = self._sessions[session]
        self._replaying[session] = 0
        try:
            reply = await self._request_on(conn, "join", join_fields(session, entry.since()))
        finally:
            replayed = self._replaying.pop(session, 0)
        if reply.get("epoch") != entry.epoch:
            entry.epoch, entry.offset = reply.get("epoch"), reply.get("offset")
        elif (entry.offset or 0) < reply.get("offset", 0):
            entry.offset = reply["offset"]
        entry.live, entry.reply = True, reply
        if rejoin:
            self._emit({"type": "client.rejoined", "session": session,
                        "recovered": bool(reply.get("recovered")), "replayed": replayed,
                        "reply": reply})
        return reply

    async def leave(self, session: str) -> Frame:
        """Leave, and stop rejoining."""
        self._sessions.pop(session, None)
        return await self.request("leave", session=session)

    async def publish(self, session: str, event: dict[str, Any], *,
                      client_msg_id: str | None = None, attempts: int = 4) -> Frame:
        """Publish; stored kinds are retried (same ``client_msg_id``) when retrying is safe."""
        fields: dict[str, Any] = {"session": session, "event": event}
        if event.get("kind") in EPHEMERAL_KINDS:
            return await self.request("publish", **fields)
        fields["client_msg_id"] = client_msg_id or secrets.token_hex(12)
        for attempt in itertools.count(1):
            try:
                return await self.request("publish", **fields)
            except ClientError as exc:
                if attempt >= attempts or not exc.retryable:
                    raise
                await asyncio.sleep(1.0 if exc.code == "rate_limited" else 0.25 * attempt)
        raise AssertionError("unreachable")

    def position(self, session: str) -> tuple[str, int] | None:
        """The newest stored ``(epoch, offset)`` seen in ``session``."""
        entry = self._sessions.get(session)
        return None if entry is None else entry.since()

    # -- refresh and the end ----------------------------------------------------------

    def _schedule_refresh(self, reply: Frame) -> None:
        if self._get_token is None or not isinstance(reply.get("expires_at"), int | float):
            return
        if self._refresher is not None and self._refresher is not asyncio.current_task():
            self._refresher.cancel()
        lead = float(reply.get("refresh_before") or 60)
        delay = max(0.0, float(reply["expires_at"]) - lead - time.time())
        self._refresher = asyncio.create_task(self._refresh_after(delay))

    async def _refresh_after(self, delay: float) -> None:
        """Refresh in place; on failure the old token holds until it expires, and the
        expiry's 4401 then reconnects with a new one."""
        await asyncio.sleep(delay)
        try:
            token = await self._fresh_token()
            reply = await self.request("refresh", token=token)
        except ClientError as exc:
            log.warning("token refresh failed: %s", exc.code)
            self._emit({"type": "client.error", "code": exc.code, "message": exc.message})
            return
        self._token = token
        self.me = reply.get("me", self.me)
        for session in reply.get("left") or ():
            self._sessions.pop(session, None)  # the new token no longer grants it
        self._emit(reply)
        self._schedule_refresh(reply)

    def _fail_pending(self, error: ClientError) -> None:
        for waiter in self._pending.values():
            if not waiter.done():
                waiter.set_exception(error)
        self._pending.clear()

    def _set_state(self, state: str, **extra: Any) -> None:
        self.state = state
        self._emit({"type": "client.status", "state": state, **extra})

    def _stop(self, code: int, reason: str) -> None:
        self._stopped = True
        self._ready.set()  # waiting commands wake up and see the client is closed
        if self._refresher is not None:
            self._refresher.cancel()
        self._fail_pending(ClientError("closed", "the client is closed"))
        if self.state != "closed":
            self._set_state("closed", code=code, reason=reason)

    async def close(self) -> None:
        """Stop for good, at once (also in the middle of a back-off)."""
        self._stopped = True
        runner, self._runner = self._runner, None
        if runner is not None and runner is not asyncio.current_task():
            runner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await runner
        if self._conn is not None:
            await self._conn.close()
        if self._reader is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
        self._stop(1000, "closed by the client")
