"""A TCP proxy in front of the real Redis, so a test can cut one node off it at a chosen moment.

``cut()`` closes every connection through it and refuses new ones until
``restore()``: to that node, Redis is gone; to the others, nothing happened.
``requests`` counts the node's writes to Redis: a command, or a pipeline of them, is
one write that waits for its reply, so the count is the node's round trips.
"""

from __future__ import annotations

import asyncio
import contextlib
from urllib.parse import urlsplit, urlunsplit


class RedisProxy:
    """Forwards bytes both ways to the Redis of ``url``; ``url_through`` is its own URL."""

    def __init__(self, url: str) -> None:
        self._target = urlsplit(url)
        self._server: asyncio.Server | None = None
        self._open = True
        self._writers: set[asyncio.StreamWriter] = set()
        self.port = 0
        self.accepted = 0
        self.requests = 0

    @property
    def url(self) -> str:
        """The Redis URL a node uses to reach Redis through this proxy."""
        return urlunsplit(self._target._replace(netloc=f"127.0.0.1:{self.port}"))

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        self.cut()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    def cut(self) -> None:
        """Drop every connection through the proxy and refuse new ones."""
        self._open = False
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()

    def restore(self) -> None:
        """Accept connections again."""
        self._open = True

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if not self._open:
            writer.transport.abort()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(
                self._target.hostname, self._target.port or 6379
            )
        except OSError:
            writer.transport.abort()
            return
        if not self._open:  # cut while connecting
            writer.transport.abort()
            up_writer.transport.abort()
            return
        self.accepted += 1
        self._writers.update((writer, up_writer))
        await asyncio.gather(self._pipe(reader, up_writer, upstream=True),
                             self._pipe(up_reader, writer))

    async def _pipe(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *,
        upstream: bool = False,
    ) -> None:
        try:
            while data := await reader.read(65536):
                self.requests += upstream
                writer.write(data)
                await writer.drain()
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            self._writers.discard(writer)
            writer.transport.abort()
            with contextlib.suppress(Exception):
                await writer.wait_closed()
