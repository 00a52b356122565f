"""The server's Redis pool (``classroom/backends/redis_client.py``) on a real Redis: bounded,
waiting commands served in line, a connection Redis dropped replaced, with its quick checkout."""

from __future__ import annotations

import asyncio
import time
import uuid

import redis.asyncio as aioredis

from classroom.backends.redis_client import MAX_CONNECTIONS, redis_client
from tests.backends.conftest import REDIS_URL

HOLD = 0.4  # seconds a blocking pop keeps its connection


async def test_commands_past_the_bound_wait_for_a_connection_and_none_fails() -> None:
    client = redis_client(REDIS_URL)
    try:
        key = f"pool-test:{uuid.uuid4().hex}"
        began = time.monotonic()
        answers = await asyncio.gather(
            *(client.blpop([key], timeout=HOLD) for _ in range(MAX_CONNECTIONS + 8)))
        took = time.monotonic() - began
        assert answers == [None] * (MAX_CONNECTIONS + 8)
        # 32 at a time: the last 8 waited for the first wave to give connections back.
        assert took >= 2 * HOLD - 0.05, took
        assert await client.ping()
    finally:
        await client.aclose()


async def test_a_command_waiting_is_served_before_newcomers_take_the_connections() -> None:
    client = redis_client(REDIS_URL)
    try:
        key = f"pool-test:{uuid.uuid4().hex}"
        holders = [asyncio.create_task(client.blpop([key], timeout=HOLD))
                   for _ in range(MAX_CONNECTIONS)]
        await asyncio.sleep(0.1)  # every connection is taken
        waiting = asyncio.create_task(client.blpop([key], timeout=HOLD))
        await asyncio.sleep(0.05)

        async def newcomer() -> None:
            while not waiting.done():
                await client.get(key)

        newcomers = [asyncio.create_task(newcomer()) for _ in range(MAX_CONNECTIONS)]
        # Served once the holders are done, not starved by the busy newcomers until the
        # pool's own 3 s timeout refuses it.
        assert await asyncio.wait_for(waiting, 2.5) is None
        await asyncio.gather(*holders, *newcomers)
    finally:
        await client.aclose()


async def test_a_connection_redis_closed_is_replaced_on_checkout() -> None:
    client = redis_client(REDIS_URL)
    admin = aioredis.Redis.from_url(REDIS_URL)
    try:
        own_id = await client.client_id()
        assert await admin.client_kill_filter(_id=own_id) == 1
        await asyncio.sleep(0.05)  # the close reaches the idle connection in the pool
        assert await client.ping()
        assert await client.client_id() != own_id
    finally:
        await client.aclose()
        await admin.aclose()
