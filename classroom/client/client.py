"""An asyncio client of the classroom protocol, for back ends, scripts and tests.

It does what ``static/classroom.js`` does for the pages, and for the same reasons:
commands are awaited by ``id``; when the link drops it reconnects with exponential
back-off and jitter (so thirty clients do not hammer a restarted server in the same
millisecond) and joins every session again with ``since``, so the server replays
exactly what was missed; stored events carry a ``client_msg_id`` so a publish sent
again after a drop is stored once; with ``get_token`` it refreshes its token in
place before it expires. It stops for good on ``disconnect`` with
``reconnect: false``, a refused token and ``close()``.
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

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake

from classroom.client.wire import Encoding, Frame, decode, encode, subprotocol

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
    """A joined session and the newest stored position seen in it."""

    epoch: str | None = None
    offset: int | None = None
    live: bool = False


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
    ) -> None:
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
        self._listeners: dict[str, list[Listener]] = {}
        self._pushes: asyncio.Queue[Frame] = asyncio.Queue()
        self._ws: ClientConnection | None = None
        self._ready = asyncio.Event()
        self._runner: asyncio.Task[None] | None = None
        self._reader: asyncio.Task[None] | None = None
        self._refresher: asyncio.Task[None] | None = None
        self._stopped = False

    # -- listening --------------------------------------------------------------------

    def on(self, kind: str, listener: Listener) -> Callable[[], None]:
        """Call ``listener`` with every push of ``kind`` (a frame ``type``, or
        ``client.status`` / ``client.rejoined`` from the client itself); returns "off"."""
        self._listeners.setdefault(kind, []).append(listener)
        return lambda: self._listeners.get(kind, []).remove(listener)

    async def pushes(self) -> AsyncIterator[Frame]:
        """Every push in arrival order (events, presence, progress, the client's own)."""
        while not (self._stopped and self._pushes.empty()):
            yield await self._pushes.get()

    def _emit(self, frame: Frame) -> None:
        self._pushes.put_nowait(frame)
        for listener in list(self._listeners.get(str(frame.get("type")), ())):
            listener(frame)

    # -- connecting -------------------------------------------------------------------

    async def connect(self) -> dict[str, Any]:
        """Connect and authenticate; then the client keeps itself connected until closed."""
        if self._runner is not None:
            raise ClientError("bad_request", "already connected")
        await self._open()
        self._runner = asyncio.create_task(self._run())
        assert self.me is not None
        return self.me

    async def _open(self) -> None:
        self._set_state("connecting")
        ws = await connect(self.url, subprotocols=[subprotocol(self.encoding)],  # type: ignore[list-item]
                           max_size=None, open_timeout=self._timeout)
        self._ws = ws
        reader = asyncio.create_task(self._read(ws))
        try:
            fields: dict[str, Any] = {"token": self._token}
            if self._features:
                fields["features"] = self._features
            reply = await self._request_on(ws, "connect", fields)
        except BaseException:
            reader.cancel()
            await ws.close()
            raise
        self._reader = reader
        self.me = reply["me"]
        self._set_state("open")
        self._schedule_refresh(reply)
        for name, entry in self._sessions.items():
            if entry.live:
                await self._join_on(ws, name, rejoin=True)
        self._ready.set()

    async def _run(self) -> None:
        """Wait for each connection to end; come back unless the end is final."""
        attempt = 0
        while not self._stopped:
            ws = self._ws
            assert ws is not None
            await ws.wait_closed()
            self._ready.clear()
            self._fail_pending(ClientError("connection_lost", "the connection dropped"))
            code = ws.close_code or 1006
            if self._stopped or (code in FINAL_CLOSE_CODES and not self._expired(ws)):
                self._stop(code, ws.close_reason or "")
                return
            while not self._stopped:
                attempt += 1
                base, most = self._backoff
                delay = random.uniform(0.5, 1.0) * min(most, base * 2 ** (attempt - 1))  # noqa: S311 - jitter, not a secret
                if code == 1012:
                    delay += 1.0  # a restart: give the server a moment to listen again
                self._set_state("reconnecting", delay=delay)
                await asyncio.sleep(delay)
                try:
                    if code == 4401 and self._get_token is not None:
                        self._token = await self._get_token()
                    await self._open()
                    attempt = 0
                    break
                except ClientError as exc:
                    if exc.code == "unauthorized":
                        self._stop(4401, exc.message)
                        return
                except (OSError, InvalidHandshake, ConnectionClosed, TimeoutError):
                    continue

    def _expired(self, ws: ClientConnection) -> bool:
        """A 4401 for an expired token is final only when no new token can be had."""
        return ws.close_code == 4401 and self._get_token is not None and self.me is not None

    async def _read(self, ws: ClientConnection) -> None:
        with contextlib.suppress(ConnectionClosed):
            async for message in ws:
                try:
                    frame = decode(message, self.encoding)
                except ValueError:
                    log.warning("a frame that does not decode was ignored")
                    continue
                command_id = frame.get("id")
                if isinstance(command_id, int) and command_id in self._pending:
                    self._pending.pop(command_id).set_result(frame)
                    continue
                self._push(frame)

    def _push(self, frame: Frame) -> None:
        if frame.get("type") == "event" and isinstance(frame.get("offset"), int):
            entry = self._sessions.get(str(frame.get("session")))
            if entry is not None:
                if entry.epoch == frame.get("epoch") and (entry.offset or 0) >= frame["offset"]:
                    return  # seen already: belt and braces, the server sends each once
                entry.epoch, entry.offset = frame.get("epoch"), frame["offset"]
        self._emit(frame)

    # -- commands ---------------------------------------------------------------------

    async def request(self, kind: str, **fields: Any) -> Frame:
        """Send a command once connected (waiting through a reconnect); its reply frame.

        An ``error`` reply raises :class:`ClientError` with the server's code.
        """
        try:
            await asyncio.wait_for(self._ready.wait(), self._timeout)
        except TimeoutError:
            raise ClientError("timeout", "not connected") from None
        if self._stopped or self._ws is None:
            raise ClientError("closed", "the client is closed")
        return await self._request_on(self._ws, kind, fields)

    async def _request_on(self, ws: ClientConnection, kind: str, fields: dict[str, Any]) -> Frame:
        command_id = next(self._ids)
        waiter: asyncio.Future[Frame] = asyncio.get_running_loop().create_future()
        self._pending[command_id] = waiter
        try:
            await ws.send(encode({"type": kind, "id": command_id, **fields}, self.encoding))
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
        """Join; the session is rejoined with ``since`` after every reconnect."""
        self._sessions.setdefault(session, _Session())
        await asyncio.wait_for(self._ready.wait(), self._timeout)
        assert self._ws is not None
        try:
            return await self._join_on(self._ws, session, rejoin=False)
        except ClientError:
            if not self._sessions[session].live:
                del self._sessions[session]
            raise

    async def _join_on(self, ws: ClientConnection, session: str, *, rejoin: bool) -> Frame:
        entry = self._sessions[session]
        fields: dict[str, Any] = {"session": session}
        if entry.epoch is not None and entry.offset is not None:
            fields["since"] = {"epoch": entry.epoch, "offset": entry.offset}
        before = entry.offset
        reply = await self._request_on(ws, "join", fields)
        if reply.get("epoch") != entry.epoch:
            entry.epoch, entry.offset = reply.get("epoch"), reply.get("offset")
        elif (entry.offset or 0) < reply.get("offset", 0):
            entry.offset = reply["offset"]
        entry.live = True
        if rejoin:
            replayed = (entry.offset or 0) - (before or 0) if reply.get("recovered") else 0
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
        if entry is None or entry.epoch is None or entry.offset is None:
            return None
        return entry.epoch, entry.offset

    # -- refresh and the end ----------------------------------------------------------

    def _schedule_refresh(self, reply: Frame) -> None:
        if self._get_token is None or not isinstance(reply.get("expires_at"), int | float):
            return
        if self._refresher is not None:
            self._refresher.cancel()
        lead = float(reply.get("refresh_before") or 60)
        delay = max(0.0, float(reply["expires_at"]) - lead - time.time())
        self._refresher = asyncio.create_task(self._refresh_after(delay))

    async def _refresh_after(self, delay: float) -> None:
        await asyncio.sleep(delay)
        assert self._get_token is not None
        try:
            self._token = await self._get_token()
            reply = await self.request("refresh", token=self._token)
        except ClientError as exc:
            log.warning("token refresh failed: %s", exc.code)
            return
        self.me = reply.get("me", self.me)
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
        self._set_state("closed", code=code, reason=reason)

    async def close(self) -> None:
        """Stop for good."""
        self._stopped = True
        if self._ws is not None:
            await self._ws.close()
        if self._runner is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._runner
        if self._refresher is not None:
            self._refresher.cancel()
        self._fail_pending(ClientError("closed", "the client is closed"))
        if self.state != "closed":
            self._set_state("closed", code=1000, reason="closed by the client")
