"""The client's token, and refreshing it in place before it expires.

A long-lived client outlives its token. With ``get_token`` it asks the application
for a new one ahead of the expiry the server announced (``expires_at`` less
``refresh_before``), or when a 4401 says the old one has expired. A failure of the
application's ``get_token`` is logged by its exception type only: the exception may
quote a token or a user.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from classroom.client.errors import ClientError
from classroom.client.wire import Frame

log = logging.getLogger("classroom.client")

TokenSource = Callable[[], Awaitable[str]]
DEFAULT_REFRESH_LEAD = 60
"""Seconds before the expiry to refresh, when the server does not say (``refresh_before``)."""


class TokenKeeper:
    """The token to connect with, where a fresh one comes from, and the refresh timer."""

    def __init__(self, token: str, get_token: TokenSource | None) -> None:
        self.current = token
        self._get_token = get_token
        self._timer: asyncio.Task[None] | None = None

    @property
    def renewable(self) -> bool:
        """Whether a fresh token can be had (the application gave ``get_token``)."""
        return self._get_token is not None

    async def fresh(self) -> str:
        """A new token from the application; :class:`ClientError` ``unauthorized`` when
        it cannot give one."""
        assert self._get_token is not None
        try:
            return await self._get_token()
        except Exception as exc:
            # The type only: the app's exception may quote a token or a user.
            log.warning("get_token failed: %s", type(exc).__name__)
            raise ClientError("unauthorized", "could not get a fresh token") from exc

    def schedule(self, reply: Frame, refresh: Callable[[], Awaitable[None]]) -> None:
        """Run ``refresh`` ahead of the expiry a ``connected`` or ``refreshed`` reply
        announces, replacing the timer set before (unless that is the one running)."""
        if self._get_token is None or not isinstance(reply.get("expires_at"), int | float):
            return
        if self._timer is not None and self._timer is not asyncio.current_task():
            self._timer.cancel()
        lead = float(reply.get("refresh_before") or DEFAULT_REFRESH_LEAD)
        delay = max(0.0, float(reply["expires_at"]) - lead - time.time())
        self._timer = asyncio.create_task(self._after(delay, refresh))

    @staticmethod
    async def _after(delay: float, refresh: Callable[[], Awaitable[None]]) -> None:
        await asyncio.sleep(delay)
        await refresh()

    def cancel(self) -> None:
        """No more refreshes: the client has stopped."""
        if self._timer is not None:
            self._timer.cancel()
