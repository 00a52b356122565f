"""Backend calls made on a client's behalf: an unreachable backend is an ``unavailable`` answer.

Whatever the backend (broker, presence, data store), the client hears the same
refusal and the node counts it, so ``/metrics`` shows a Redis outage as it happens.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import TypeVar

from prometheus_client import Counter

from classroom.backends.broker import BrokerUnavailable
from classroom.backends.data.store import DataUnavailable
from classroom.domain.refusals import RequestRefused
from presence.store import PresenceUnavailable

T = TypeVar("T")

UNREACHABLE = (BrokerUnavailable, PresenceUnavailable, DataUnavailable)
"""What every backend raises when it cannot be reached."""


class BackendCalls:
    """Awaits a backend call; turns unreachability into ``RequestRefused('unavailable')``."""

    __slots__ = ("_errors",)

    def __init__(self, errors: Counter) -> None:
        self._errors = errors

    async def __call__(self, call: Awaitable[T]) -> T:
        """The call's result, or ``unavailable`` (counted) when its backend is unreachable."""
        try:
            return await call
        except UNREACHABLE:
            self._errors.inc()
            raise RequestRefused("unavailable", "the message broker is unreachable") from None
