"""Records on the embedded store or on real Redis, for tests that run on both."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator

from classroom.backends.data.records import Records
from classroom.backends.data.redis import data_store_from_url
from tests.backends.conftest import drop_prefix
from tests.multinode.conftest import REDIS_URL


@contextlib.asynccontextmanager
async def records_on(backend: str, url: str | None = None) -> AsyncIterator[Records]:
    """``Records`` on ``memory`` or Redis (a key prefix of its own, dropped after).

    ``url`` names another Redis (a Sentinel set, a cluster) than the test Redis.
    """
    prefix = f"test-{uuid.uuid4().hex[:12]}"
    if backend == "memory":
        url = None
    elif url is None:
        url = REDIS_URL
    store = data_store_from_url(url, prefix=prefix)
    try:
        yield Records(store, b"secret")
    finally:
        await store.close()
        if url is not None:
            await drop_prefix(url, prefix)
