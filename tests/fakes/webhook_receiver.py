"""A tenant's back end on loopback: a small HTTP/1.1 server that checks webhook signatures.

The check follows the Standard Webhooks specification and is written here on its own
(not with the server's signing code), so a signing mistake in the server fails the
tests: the key is the base64 after ``whsec_``, the signed content is
``{webhook-id}.{webhook-timestamp}.{body}``, and ``webhook-signature`` holds one or more
space-separated ``v1,<base64 HMAC-SHA256>``. A bad signature or a timestamp more than
five minutes off is answered 401, as a real receiver would.

Behaviours: answer 500 to the first ``fail_first`` requests, or never answer the first
``hang_first`` (the sender must time out), then 204.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import json
import time
from dataclasses import dataclass, field
from typing import Any

TOLERANCE = 300


@dataclass
class Received:
    """One request as it arrived."""

    headers: dict[str, str]
    body: bytes
    verified: bool
    answered: int | None  # None: left hanging

    @property
    def webhook_id(self) -> str:
        return self.headers.get("webhook-id", "")

    @property
    def event(self) -> dict[str, Any]:
        return dict(json.loads(self.body))


def verify(secret: str, headers: dict[str, str], body: bytes, now: float | None = None) -> bool:
    """Standard Webhooks verification, independent of the server's code."""
    msg_id = headers.get("webhook-id")
    stamp = headers.get("webhook-timestamp")
    signatures = headers.get("webhook-signature")
    if not (msg_id and stamp and signatures and secret.startswith("whsec_")):
        return False
    try:
        sent_at = int(stamp)
    except ValueError:
        return False
    if abs((time.time() if now is None else now) - sent_at) > TOLERANCE:
        return False
    key = base64.b64decode(secret[len("whsec_"):])
    content = msg_id.encode() + b"." + stamp.encode() + b"." + body
    expected = base64.b64encode(hmac.new(key, content, hashlib.sha256).digest()).decode()
    for signature in signatures.split(" "):
        version, _, value = signature.partition(",")
        if version == "v1" and hmac.compare_digest(value, expected):
            return True
    return False


@dataclass
class WebhookReceiver:
    """``async with WebhookReceiver(secret) as receiver:`` then post to ``receiver.url``."""

    secret: str
    fail_first: int = 0
    hang_first: int = 0
    received: list[Received] = field(default_factory=list)
    _server: asyncio.Server | None = None
    _arrived: asyncio.Condition = field(default_factory=asyncio.Condition)
    _handlers: set[asyncio.Task[None]] = field(default_factory=set)

    @property
    def url(self) -> str:
        assert self._server is not None
        port = self._server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}/hooks/classroom"

    @property
    def accepted(self) -> list[Received]:
        """Requests answered 2xx: what the back end actually took."""
        return [r for r in self.received if r.answered is not None and r.answered < 300]

    async def __aenter__(self) -> WebhookReceiver:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        for task in list(self._handlers):
            task.cancel()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._server.wait_closed(), 2)

    async def wait_accepted(self, count: int, timeout: float = 10.0) -> list[Received]:
        """Until ``count`` requests were accepted (AssertionError after ``timeout``)."""
        async def enough() -> None:
            async with self._arrived:
                await self._arrived.wait_for(lambda: len(self.accepted) >= count)

        try:
            await asyncio.wait_for(enough(), timeout)
        except TimeoutError:
            raise AssertionError(f"{len(self.accepted)} of {count} webhooks accepted") from None
        return self.accepted

    async def wait_received(self, count: int, timeout: float = 10.0) -> list[Received]:
        """Until ``count`` requests arrived, whatever they were answered."""
        async def enough() -> None:
            async with self._arrived:
                await self._arrived.wait_for(lambda: len(self.received) >= count)

        try:
            await asyncio.wait_for(enough(), timeout)
        except TimeoutError:
            raise AssertionError(f"{len(self.received)} of {count} webhooks arrived") from None
        return self.received

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        try:
            while True:
                request = await _read_request(reader)
                if request is None:
                    break
                headers, body = request
                status = await self._answer(headers, body)
                if status is None:
                    await asyncio.Event().wait()  # hang until the sender gives up
                writer.write(f"HTTP/1.1 {status} X\r\ncontent-length: 0\r\n\r\n".encode())
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
            pass
        finally:
            self._handlers.discard(task)
            writer.close()

    async def _answer(self, headers: dict[str, str], body: bytes) -> int | None:
        verified = verify(self.secret, headers, body)
        index = len(self.received)
        status: int | None
        if not verified:
            status = 401
        elif index < self.hang_first:
            status = None
        elif index < self.hang_first + self.fail_first:
            status = 500
        else:
            status = 204
        async with self._arrived:
            self.received.append(Received(headers, body, verified, status))
            self._arrived.notify_all()
        return status


async def _read_request(reader: asyncio.StreamReader) -> tuple[dict[str, str], bytes] | None:
    line = await reader.readline()
    if not line:
        return None
    headers: dict[str, str] = {}
    while (header := await reader.readline()) not in (b"\r\n", b"\n", b""):
        name, _, value = header.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    body = await reader.readexactly(int(headers.get("content-length", "0")))
    return headers, body
