"""uvicorn's httptools HTTP protocol with the connection guard's deadlines and cap applied.

uvicorn (0.54) has no deadline for a request head: it arms its keep-alive timer
only after a response, and any byte cancels it. So a client trickling a partial
head, or sending nothing at all, holds its connection forever. This protocol adds:

- the **cap**: a connection from an address already at
  ``HttpLimits.max_per_address`` is closed at once, before anything is read;
- the **header deadline**: a request head must be complete ``header_timeout``
  seconds after the connection was made (the first request) or after its first
  byte (a later request on a kept-alive connection);
- the **idle deadline**: a connection that sends nothing for ``idle_timeout``
  seconds while the node waits for it (before its first request, or for the
  rest of a request body) is closed. Between requests uvicorn's keep-alive timer,
  set to the same value, does the same;
- the **body deadline**: when the answer went out before the client finished
  sending its body (a refusal), the rest must arrive within ``header_timeout``
  seconds (uvicorn reads and discards it meanwhile).

A connection upgraded to a WebSocket leaves this protocol with its deadlines
cancelled; the WebSocket protocol gives its place under the cap back when it
closes (``server.py``), and the application's own connect deadline takes over.
"""

from __future__ import annotations

import asyncio
import math
from typing import Any

import uvicorn
from prometheus_client import Counter
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

from classroom.edge.connection_guard import ConnectionGuard, HttpLimits


class GuardedConfig(uvicorn.Config):
    """uvicorn's config, serving HTTP with :class:`GuardedHttpProtocol` under ``guard``."""

    def __init__(self, app: Any, *, limits: HttpLimits, dropped: Counter | None = None,
                 **kwargs: Any) -> None:
        super().__init__(
            app, http=GuardedHttpProtocol,
            # uvicorn takes whole seconds here; its timer closes idle kept-alive connections.
            timeout_keep_alive=max(1, math.ceil(limits.idle_timeout)),
            **kwargs,
        )
        self.guard = ConnectionGuard(limits, trusted=self.forwarded_allow_ips, dropped=dropped)


class GuardedHttpProtocol(HttpToolsProtocol):
    """HTTP/1.1 on httptools, closing connections that overstay the guard's limits."""

    def __init__(self, config: uvicorn.Config, server_state: ServerState,
                 app_state: dict[str, Any], _loop: asyncio.AbstractEventLoop | None = None,
                 ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self._guard = config.guard if isinstance(config, GuardedConfig) else None
        self._deadline: asyncio.TimerHandle | None = None
        self._deadline_reason = ""
        self._idle: asyncio.TimerHandle | None = None
        self._last_data = 0.0
        self._in_request = False  # from a request's first byte to the end of its body

    # -- asyncio.Protocol ---------------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        """Count the connection under its address's cap, or close it; start the deadlines."""
        super().connection_made(transport)
        guard = self._guard
        if guard is None:
            return
        if not guard.admit(transport, self.client[0] if self.client else None):
            transport.close()
            return
        self._last_data = self.loop.time()
        self._set_deadline("header_timeout", guard.limits.header_timeout)
        self._idle = self.loop.call_later(guard.limits.idle_timeout, self._idle_check)

    def data_received(self, data: bytes) -> None:
        """Note that the client is sending, then parse as uvicorn does."""
        self._last_data = self.loop.time()
        super().data_received(data)

    def connection_lost(self, exc: Exception | None) -> None:
        """Stop the timers and give the connection's place back."""
        self._stop_timers()
        if self._guard is not None and self.transport is not None:
            self._guard.release(self.transport)
        super().connection_lost(exc)

    # -- httptools parser callbacks and uvicorn hooks -----------------------------------

    def on_message_begin(self) -> None:
        """A request starts: its head has ``header_timeout`` (the first one since accept)."""
        super().on_message_begin()
        self._in_request = True
        if self._guard is not None and self._deadline_reason != "header_timeout":
            self._set_deadline("header_timeout", self._guard.limits.header_timeout)

    def on_headers_complete(self) -> None:
        """The head is in: no header deadline any more."""
        if self._deadline_reason == "header_timeout":
            self._clear_deadline()
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        """The whole request is in, body too: no body deadline any more."""
        self._in_request = False
        if self._deadline_reason == "body_timeout":
            self._clear_deadline()
        super().on_message_complete()

    def on_response_complete(self) -> None:
        """Answered before the body was all in: the rest gets ``header_timeout`` to arrive."""
        super().on_response_complete()
        if (self._guard is not None and self._in_request and self._deadline is None
                and not self.transport.is_closing()):
            self._set_deadline("body_timeout", self._guard.limits.header_timeout)

    def handle_websocket_upgrade(self) -> None:
        """The connection becomes a WebSocket: this protocol's deadlines end here, and so
        does its parser.

        The parser holds this protocol's callbacks (bound methods), so the two make a
        reference cycle; uvicorn breaks it in ``connection_lost``, which an upgraded
        connection sends to its WebSocket protocol instead. Left alone, every WebSocket's
        HTTP protocol, parser and request head (about 24 objects) waited for the cycle
        collector: in a storm of reconnects, more than half of what the young collections
        freed, and in the middle generation whatever survived one.
        """
        self._stop_timers()
        super().handle_websocket_upgrade()
        self.parser = None  # type: ignore[assignment]

    # -- timers --------------------------------------------------------------------------

    def _set_deadline(self, reason: str, seconds: float) -> None:
        self._clear_deadline()
        self._deadline_reason = reason
        self._deadline = self.loop.call_later(seconds, self._deadline_passed)

    def _clear_deadline(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
        self._deadline = None
        self._deadline_reason = ""

    def _stop_timers(self) -> None:
        self._clear_deadline()
        if self._idle is not None:
            self._idle.cancel()
            self._idle = None

    def _deadline_passed(self) -> None:
        reason = self._deadline_reason
        self._deadline = None
        self._deadline_reason = ""
        self._drop(reason)

    def _idle_check(self) -> None:
        """Close a connection the node waits on that has been silent for ``idle_timeout``.

        Re-armed lazily (a byte only notes the time), so a busy connection costs one
        timer per ``idle_timeout``, not one per read.
        """
        self._idle = None
        guard = self._guard
        if guard is None or self.transport is None or self.transport.is_closing():
            return
        idle = guard.limits.idle_timeout
        left = self._last_data + idle - self.loop.time()
        if left <= 0:
            if self._waiting_on_client():
                self._drop("idle_timeout")
                return
            left = idle  # the application is working on a request: look again later
        self._idle = self.loop.call_later(left, self._idle_check)

    def _waiting_on_client(self) -> bool:
        """Whether the node waits for the client: for a first request, the rest of one
        (head or body), or a next one that uvicorn's keep-alive timer does not watch
        (it is not re-armed when a body goes on arriving after its answer)."""
        if self.flow is not None and self.flow.read_paused:
            return False  # uvicorn stopped reading (the application has not taken the body)
        cycle = self.cycle
        if cycle is None or self._in_request:
            return True
        return cycle.response_complete and self.timeout_keep_alive_task is None

    def _drop(self, reason: str) -> None:
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        self._stop_timers()
        if self._guard is not None:
            self._guard.dropped(reason)
        transport.close()
