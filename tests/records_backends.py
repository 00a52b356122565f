"""Records on the embedded store or on real Redis, for tests that run on both."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator

from classroom.backends.data.records import Records
from classroom.backends.data.redis import data_store_from_url
from tests.multinode.conftest import REDIS_URL, drop_prefix


@contextlib.asynccontextmanager
async def records_on(backend: str) -> AsyncIterator[Records]:
    """``Records`` on ``memory`` or ``redis`` (a key prefix of its own, dropped after)."""
    prefix = f"test-{uuid.uuid4().hex[:12]}"
    url = REDIS_URL if backend == "redis" else None
    store = data_store_from_url(url, prefix=prefix)
    try:
        yield Records(store, b"secret")
    finally:
        await store.close()
        if url is not None:
            await drop_prefix(url, prefix)
