"""The ASGI application: WebSocket endpoint, health, readiness and metrics."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.types import Receive, Scope, Send

from classroom.broker.factory import broker_from_url
from classroom.config import Settings
from classroom.connection import Connection, ConnectionRegistry
from classroom.metrics import Metrics
from classroom.node import Node
from presence.factory import presence_from_url


class Classroom:
    """Everything one server process runs, built from one :class:`Settings`."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.tenants = settings.load_tenants()
        self.metrics = Metrics()
        self.connections = ConnectionRegistry()
        self.node = Node(
            tenants=self.tenants,
            broker=broker_from_url(
                settings.redis_url,
                prefix=settings.redis_prefix,
                history_size=settings.history_size,
                history_ttl=settings.history_ttl,
                idempotency_ttl=settings.idempotency_ttl,
            ),
            presence=presence_from_url(
                settings.redis_url, prefix=settings.redis_prefix, ttl=settings.presence_ttl
            ),
            secret=settings.secret_bytes(),
            history_limit_max=settings.history_limit_max,
            publish_timeout=settings.publish_timeout,
            heartbeat_interval=settings.presence_ttl / 3,
        )
        self.node.observe_fan_out = self.metrics.fanout_seconds.observe

    async def websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one WebSocket connection at ``/ws``."""
        connection = Connection(
            scope, receive, send,
            node=self.node, settings=self.settings,
            metrics=self.metrics, registry=self.connections,
        )
        await connection.run()

    async def drain(self) -> None:
        """Send every client ``disconnect`` 1012 and wait (bounded) until they are gone."""
        self.connections.drain("server is restarting")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.settings.drain_timeout
        while len(self.connections) and loop.time() < deadline:
            await asyncio.sleep(0.02)


class _WebSocketApp:
    """Raw ASGI endpoint: the connection speaks ASGI messages directly, no wrapper."""

    def __init__(self, classroom: Classroom) -> None:
        self._classroom = classroom

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self._classroom.websocket(scope, receive, send)


def create_app(settings: Settings | None = None) -> Starlette:
    """Build the app; ``app.state.classroom`` holds the running parts."""
    classroom = Classroom(settings or Settings())

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(request: Request) -> Response:
        ready = await classroom.node.broker.ready()
        return JSONResponse({"ready": ready}, status_code=200 if ready else 503)

    async def metrics(request: Request) -> Response:
        return PlainTextResponse(classroom.metrics.render(), media_type=Metrics.content_type)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await classroom.node.start()
        try:
            yield
        finally:
            await classroom.node.close()

    app = Starlette(
        routes=[
            WebSocketRoute("/ws", _WebSocketApp(classroom)),
            Route("/healthz", healthz),
            Route("/readyz", readyz),
            Route("/metrics", metrics),
        ],
        lifespan=lifespan,
    )
    app.state.classroom = classroom
    return app
