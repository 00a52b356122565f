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
This module is the facade and each connection's life; the rest has a module of
its own: ``reconnect`` (when to come back), ``recovery`` (``since`` and rejoins),
``replies`` (replies by ``id``), ``pushes`` (listeners and the queue), ``publishing``
(stored once) and ``tokens`` (the refresh in place).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

from websockets.exceptions import ConnectionClosed, InvalidHandshake

from classroom.client.connection import Connection
from classroom.client.errors import RETRYABLE, ClientError
from classroom.client.publishing import EPHEMERAL_KINDS, publish_with_retries
from classroom.client.pushes import Listener, PushDelivery
from classroom.client.reconnect import FINAL_CLOSE_CODES, TOKEN_EXPIRED, Backoff, ends_the_client
from classroom.client.recovery import SessionBook, SessionRecovery
from classroom.client.replies import PendingReplies
from classroom.client.tokens import TokenKeeper, TokenSource
from classroom.client.wire import Encoding, Frame

# The names this module had before its parts moved out stay importable from here.
__all__ = ["EPHEMERAL_KINDS", "FINAL_CLOSE_CODES", "RETRYABLE", "ClassroomClient", "ClientError",
           "Listener"]

log = logging.getLogger("classroom.client")


class ClassroomClient:
    """One user (one token) on one server, in any number of sessions."""

    def __init__(
        self,
        url: str,
        token: str,
        *,
        encoding: Encoding = "json",
        get_token: TokenSource | None = None,
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
        self._tokens = TokenKeeper(token, get_token)
        self._features = list(features)
        self._timeout = request_timeout
        self._backoff = Backoff(backoff_initial, backoff_max)
        self._replies = PendingReplies(request_timeout)
        self._sessions = SessionBook()
        self._delivery = PushDelivery(push_buffer)
        self._recovery = SessionRecovery(self._sessions, self._replies, self._emit)
        self._conn: Connection | None = None
        self._last_disconnect: Frame | None = None
        self._ready = asyncio.Event()
        self._runner: asyncio.Task[None] | None = None
        self._reader: asyncio.Task[None] | None = None
        self._stopped = False

    # -- listening --------------------------------------------------------------------

    def on(self, kind: str, listener: Listener) -> Callable[[], None]:
        """Call ``listener`` with every push of ``kind`` (a frame ``type``, or the
        client's own ``client.status``, ``client.rejoined`` and ``client.error``);
        returns "off". A listener that raises is logged; the client carries on."""
        return self._delivery.on(kind, listener)

    async def pushes(self) -> AsyncIterator[Frame]:
        """Every push in arrival order (events, presence, progress, the client's own);
        ends after the client has stopped and the last one was taken."""
        while not (self._stopped and self._delivery.is_empty()):
            yield await self._delivery.take()

    def _emit(self, frame: Frame) -> None:
        self._delivery.deliver(frame)

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
                reply = await conn.connect(self._tokens.current, self._features, self._timeout)
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
            self._tokens.schedule(reply, self._refresh)
            await self._recovery.rejoin_all(conn)
        except BaseException:
            await conn.close()
            raise
        self._ready.set()

    async def _run(self) -> None:
        """Wait for each connection to end; come back unless the end is final."""
        while not self._stopped:
            conn = self._conn
            assert conn is not None
            await conn.ws.wait_closed()
            self._ready.clear()
            self._replies.fail_all(ClientError("connection_lost", "the connection dropped"))
            if self._stopped:
                return
            code = conn.ws.close_code or 1006
            if ends_the_client(code, self._last_disconnect,
                               token_renewable=self._tokens.renewable):
                self._stop(code, conn.ws.close_reason or "")
                return
            while not self._stopped:
                delay = self._backoff.next_delay(code)
                self._set_state("reconnecting", delay=delay, code=code)
                await asyncio.sleep(delay)
                try:
                    if code == TOKEN_EXPIRED:
                        self._tokens.current = await self._tokens.fresh()
                    await self._open()
                    self._backoff.reset()
                    break
                except ClientError as exc:
                    if exc.code == "unauthorized":
                        self._stop(4401, exc.message)
                        return
                except (OSError, InvalidHandshake, ConnectionClosed, TimeoutError):
                    continue

    async def _read(self, conn: Connection) -> None:
        try:
            async for frame in conn.frames():
                if not self._replies.resolve(frame):
                    self._push(frame)
        finally:
            if conn is self._conn:  # what waits for a reply on it will get none
                self._replies.fail_all(ClientError("connection_lost", "the connection dropped"))

    def _push(self, frame: Frame) -> None:
        if not self._sessions.track(frame):
            return  # an event seen already
        if frame.get("type") == "disconnect":
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
        return await self._replies.request(await self._connected(), kind, fields)

    async def join(self, session: str) -> Frame:
        """Join; the session is rejoined with ``since`` after every reconnect. A join cut
        off by a dropped link is tried again on the next connection."""
        entry = self._sessions.enter(session)
        while True:
            conn = await self._connected()
            if entry.live and entry.reply is not None and self._sessions.get(session) is entry:
                return entry.reply  # joined already (or rejoined by the reconnect)
            try:
                return await self._recovery.join_on(conn, session, rejoin=False)
            except ClientError as exc:
                if exc.code == "connection_lost":
                    continue
                if not entry.live:
                    self._sessions.forget(session)
                raise

    async def leave(self, session: str) -> Frame:
        """Leave, and stop rejoining."""
        self._sessions.forget(session)
        return await self.request("leave", session=session)

    async def publish(self, session: str, event: dict[str, Any], *,
                      client_msg_id: str | None = None, attempts: int = 4) -> Frame:
        """Publish; stored kinds are retried (same ``client_msg_id``) when retrying is safe."""
        return await publish_with_retries(self.request, session, event,
                                          client_msg_id=client_msg_id, attempts=attempts)

    def position(self, session: str) -> tuple[str, int] | None:
        """The newest stored ``(epoch, offset)`` seen in ``session``."""
        return self._sessions.position(session)

    # -- refresh and the end ----------------------------------------------------------

    async def _refresh(self) -> None:
        """Refresh in place; on failure the old token holds until it expires, and the
        expiry's 4401 then reconnects with a new one."""
        try:
            token = await self._tokens.fresh()
            reply = await self.request("refresh", token=token)
        except ClientError as exc:
            log.warning("token refresh failed: %s", exc.code)
            self._emit({"type": "client.error", "code": exc.code, "message": exc.message})
            return
        self._tokens.current = token
        self.me = reply.get("me", self.me)
        for session in reply.get("left") or ():
            self._sessions.forget(session)  # the new token no longer grants it
        self._emit(reply)
        self._tokens.schedule(reply, self._refresh)

    def _set_state(self, state: str, **extra: Any) -> None:
        self.state = state
        self._emit({"type": "client.status", "state": state, **extra})

    def _stop(self, code: int, reason: str) -> None:
        self._stopped = True
        self._ready.set()  # waiting commands wake up and see the client is closed
        self._tokens.cancel()
        self._replies.fail_all(ClientError("closed", "the client is closed"))
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
