"""Running the app on uvicorn, with a drain before uvicorn's own shutdown.

uvicorn closes WebSockets with a bare 1012 as soon as it shuts down; we first
send each client a ``disconnect`` frame (``reconnect: true``) and give the
writers a moment to flush, so clients know to come back.
"""

from __future__ import annotations

import logging
import socket
from typing import Any, Protocol

import uvicorn
from starlette.applications import Starlette
from starlette.types import Receive, Scope, Send
from uvicorn.config import STARTUP_FAILURE
from uvicorn.protocols.utils import ClientDisconnected
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.protocol import State

from classroom.config import Settings
from classroom.edge.connection_guard import HttpLimits
from classroom.edge.guarded_http import GuardedConfig
from classroom.edge.uvicorn_standins import FlowGate, MessageQueue
from classroom.edge.wire_frames import wire_frame
from classroom.metrics import Metrics
from classroom.protocol.codec import Payload

log = logging.getLogger("classroom.edge.server")


FRAMES_EXTENSION = "classroom.frames"
"""This server's ASGI extension: ``{"type": FRAMES_EXTENSION, "frames": [str | bytes, ...]}``
sends several WebSocket messages in one transport write (:class:`FramesProtocol`).

Its scope entry also carries ``write`` (write frames now, synchronously) and
``writable`` (False while the socket pushes back), for the batcher's direct writes."""

SEND_BUFFER_BYTES = 64 * 1024
"""SO_SNDBUF asked for on the listening socket, inherited by every accepted one (Linux
doubles it). Without it the kernel grows a stalled reader's buffer to tcp_wmem's
maximum (~4 MB) before the transport pauses and the outbox bound starts counting."""


LISTEN_BACKLOG = 4096
"""Connections the kernel may hold for accept (it caps this at net.core.somaxconn). When
5,000 clients reconnect at once, uvicorn's default of 2,048 overflows while the loop is
busy, and every dropped handshake waits for the client's TCP retry (1 s, then 3 s, 7 s)."""


class ServedApp(Protocol):
    """What the server needs of the application it runs (``classroom.app.Classroom``)."""

    metrics: Metrics

    async def websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one WebSocket connection at ``/ws``."""

    async def drain(self) -> None:
        """Tell every client to reconnect elsewhere, and wait (bounded) until they are gone."""


class FramesProtocol(WebSocketsSansIOProtocol):
    """uvicorn's sans-I/O WebSocket protocol, plus writes of pre-encoded frames.

    A frame fanned out to many connections is framed once (:func:`wire_frame`), and
    the frames a connection has queued go to its socket in one write, not one each:
    synchronously from the write batcher (``write``/``writable`` in the scope's
    ``classroom.frames`` extension), or through ASGI ``send`` when a writer task
    has to wait for the socket.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # uvicorn's per-connection asyncio.Queue and Event cost ~3 KB of deques for one
        # reader and one writer: the lean stand-ins do the same in a few hundred bytes.
        self.queue = MessageQueue()  # type: ignore[assignment]
        self.writable = FlowGate()  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        """Also give the connection's place under the per-address cap back, and drop the
        scope's write methods: bound to this protocol, they made a cycle (protocol, scope,
        method) that kept every closed connection's objects until a full collection."""
        super().connection_lost(exc)
        if isinstance(self.config, GuardedConfig):
            self.config.guard.release(self.transport)
        scope = getattr(self, "scope", None)
        if scope is not None:
            (scope.get("extensions") or {}).pop(FRAMES_EXTENSION, None)

    def handle_connect(self, event: Any) -> None:
        """Advertise the batch extension in the scope (unless compression is on)."""
        super().handle_connect(event)
        scope = getattr(self, "scope", None)
        if scope is not None and not self.conn.extensions:
            scope["extensions"][FRAMES_EXTENSION] = {
                "write": self.write_frames_now, "writable": self.writable.is_set,
            }

    def write_frames_now(self, frames: list[Payload]) -> None:
        """Write pre-encoded frames at once, without a task or an ASGI round trip.

        For the write batcher, which calls it only while ``writable`` (uvicorn's
        flow control) is set; raises like ``send`` once the WebSocket is no
        longer open. This runs once per connection per busy loop iteration, so
        it does the least it can: one frame and nothing else queued is one
        ``transport.write`` of that frame.
        """
        conn = self.conn
        if self.disconnected or conn.state is not State.OPEN:
            raise ClientDisconnected()
        if self.close_sent or not self.handshake_complete or self.initial_response is not None:
            raise RuntimeError("the WebSocket is not open for frames")
        if len(frames) == 1 and not conn.writes:
            self.transport.write(wire_frame(frames[0]))
            return
        output = conn.data_to_send()  # anything the protocol queued (a pong) goes first
        output.extend(wire_frame(payload) for payload in frames)
        self.transport.write(b"".join(output))

    async def send(self, message: Any) -> None:
        """ASGI send; ``classroom.frames`` writes several text/binary frames at once."""
        if message["type"] != FRAMES_EXTENSION:
            await super().send(message)
            if message["type"] == "websocket.accept" and self.handshake_complete:
                # The handshake's request and response, and the scope's copy of the
                # request headers (~4 KB together), are never read again: an idle
                # connection need not keep them.
                request = vars(self).pop("request", None)
                if request is not None:
                    # websockets' parser generator keeps its own reference to the
                    # request for the connection's life: empty its headers, at least.
                    request.headers.clear()
                vars(self).pop("response", None)
                scope = getattr(self, "scope", None)
                if scope is not None:
                    scope["headers"] = []
            return
        await self.writable.wait()
        self.write_frames_now(message["frames"])


class WebSocketFirst:
    """ASGI entry point: ``/ws`` goes straight to the classroom connection, the rest to Starlette.

    Starlette's error and exception middleware, router and route add eight
    coroutine frames (~3 KB) that a WebSocket connection would keep for its whole
    life; a classroom connection answers its own errors and needs none of them.
    The Starlette app still routes ``/ws`` too, for other ASGI servers.
    """

    def __init__(self, app: Starlette) -> None:
        self.app = app
        self._classroom: ServedApp = app.state.classroom

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket" and scope["path"] == "/ws":
            await self._classroom.websocket(scope, receive, send)
        else:
            await self.app(scope, receive, send)


class ClassroomServer(uvicorn.Server):
    """uvicorn's server, draining classroom connections before shutting down."""

    def __init__(self, config: uvicorn.Config, classroom: ServedApp) -> None:
        super().__init__(config)
        self.classroom = classroom

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        """Start listening and say where (without uvicorn's client-address noise)."""
        if sockets is None and self.config.uds is None and self.config.fd is None:
            # Our own listening socket, so that accepted sockets inherit a small SO_SNDBUF.
            try:
                sock = self.config.bind_socket()  # logs the error and exits when it cannot bind
            except SystemExit:
                await self.lifespan.shutdown()
                raise SystemExit(STARTUP_FAILURE) from None
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_BUFFER_BYTES)
            # And TCP_NODELAY: asyncio's own loop sets it only on sockets made with
            # IPPROTO_TCP, not on those accepted from this one (uvloop sets it on
            # all), and without it a small frame written while the client still
            # delays its ACK of the previous one waits about 40 ms (Nagle).
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sockets = [sock]
        await super().startup(sockets)
        for server in self.servers:
            for sock in server.sockets:
                host, port = sock.getsockname()[:2]
                log.info("listening", extra={"address": f"{host}:{port}"})

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        """Stop accepting, drain our clients, then let uvicorn finish."""
        for server in self.servers:
            server.close()
        await self.classroom.drain()
        await super().shutdown(sockets)


def server_config(app: Starlette, settings: Settings, host: str, port: int) -> uvicorn.Config:
    """uvicorn settings for a classroom node (frame limit, no compression, guarded HTTP).

    HTTP is uvicorn's httptools protocol with the connection guard's deadlines and
    per-address cap (``guarded_http.py``), counted in ``classroom_http_dropped_total``.
    """
    classroom: ServedApp = app.state.classroom
    return GuardedConfig(
        WebSocketFirst(app),
        limits=HttpLimits(
            header_timeout=settings.http_header_timeout,
            idle_timeout=settings.http_idle_timeout,
            max_per_address=settings.max_connections_per_address,
        ),
        dropped=classroom.metrics.http_dropped,
        host=host,
        port=port,
        loop="uvloop",
        ws=FramesProtocol,
        ws_max_size=settings.max_frame_bytes,
        ws_per_message_deflate=False,
        backlog=LISTEN_BACKLOG,
        lifespan="on",
        # uvicorn's own info lines carry client addresses: keep them out of the logs.
        log_level="warning",
        access_log=False,
        server_header=False,
    )


def build_server(app: Starlette, settings: Settings, host: str, port: int) -> ClassroomServer:
    """A ready-to-serve server for ``app``."""
    return ClassroomServer(server_config(app, settings, host, port), app.state.classroom)
