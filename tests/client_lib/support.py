"""What the client library's tests share: clients that close after the test, and
waiting for the first push of a kind."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from classroom.client import ClassroomClient, Frame
from tests.multinode.conftest import NodeProcess, token


@pytest.fixture
async def clients() -> AsyncIterator[list[ClassroomClient]]:
    made: list[ClassroomClient] = []
    yield made
    for client in made:
        await client.close()


def open_client(made: list[ClassroomClient], node: NodeProcess, sub: str, role: str,
                **options: Any) -> ClassroomClient:
    """A client of ``node`` for ``sub`` (``token=`` to give its token), closed after the
    test; it comes back quickly unless the test says otherwise."""
    options.setdefault("backoff_initial", 0.1)
    options.setdefault("backoff_max", 0.5)
    client = ClassroomClient(node.url, options.pop("token", None) or token(sub, role), **options)
    made.append(client)
    return client


async def first(client: ClassroomClient, kind: str, match: Callable[[Frame], bool] | None = None,
                timeout: float = 10) -> Frame:
    """The first push of ``kind`` (a frame type) that ``match`` accepts, from now on."""
    found: asyncio.Future[Frame] = asyncio.get_running_loop().create_future()

    def listener(frame: Frame) -> None:
        if not found.done() and (match is None or match(frame)):
            found.set_result(frame)

    off = client.on(kind, listener)
    try:
        return await asyncio.wait_for(found, timeout)
    finally:
        off()


