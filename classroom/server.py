"""Running the app on uvicorn, with a drain before uvicorn's own shutdown.

uvicorn closes WebSockets with a bare 1012 as soon as it shuts down; we first
send each client a ``disconnect`` frame (``reconnect: true``) and give the
writers a moment to flush, so clients know to come back.
"""

from __future__ import annotations

import logging
import socket

import uvicorn
from starlette.applications import Starlette

from classroom.app import Classroom
from classroom.config import Settings

log = logging.getLogger("classroom.server")


class ClassroomServer(uvicorn.Server):
    """uvicorn's server, draining classroom connections before shutting down."""

    def __init__(self, config: uvicorn.Config, classroom: Classroom) -> None:
        super().__init__(config)
        self.classroom = classroom

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        """Start listening and say where (without uvicorn's client-address noise)."""
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
    """uvicorn settings for a classroom node (frame limit, no compression)."""
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        ws="websockets-sansio",
        ws_max_size=settings.max_frame_bytes,
        ws_per_message_deflate=False,
        lifespan="on",
        # uvicorn's own info lines carry client addresses: keep them out of the logs.
        log_level="warning",
        access_log=False,
        server_header=False,
    )


def build_server(app: Starlette, settings: Settings, host: str, port: int) -> ClassroomServer:
    """A ready-to-serve server for ``app``."""
    return ClassroomServer(server_config(app, settings, host, port), app.state.classroom)
