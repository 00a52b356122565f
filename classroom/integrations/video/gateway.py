"""Video through TokBox/OpenTok: one OpenTok session per live session, tokens by role.

Why it looks like this (ARCHITECTURE.md pitfall 4, PROTOCOL.md sections 3, 6, 9):

* The ``opentok`` SDK is synchronous (``requests``, no timeout by default), so
  ``create_session`` runs in a worker thread under ``asyncio.wait_for`` *and* with the
  SDK's own request timeout, so neither the event loop nor a worker thread waits forever.
* Every node and user asking at the same moment must end up in the same OpenTok
  session, so the session id is created at most once per channel through a
  ``VideoSessionStore``: in memory on the embedded default, or a Redis ``SET NX PX``
  lock that one node wins while the others poll for the id it stores. Concurrent
  callers within one process share one attempt (and its failure), so an OpenTok
  outage is hit once per node, not once per user.
* ``generate_token`` is local (an HS256 JWT signed with the API secret). Its connection
  data is visible to every other participant's client, so it holds only ``pid``,
  ``role`` and ``display_name``: never ``sub``, a name, an e-mail address or a phone.
* Without credentials, or when OpenTok fails or is slow, ``video`` answers
  ``unavailable`` and nothing else is disturbed: every failure ends as ``VideoUnavailable``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import TYPE_CHECKING, Any

import opentok

from classroom.integrations.video.session_store import (
    NOT_CONFIGURED,
    UNAVAILABLE,
    MemoryVideoSessionStore,
    VideoSessionStore,
    VideoUnavailable,
    video_store_from_url,
)

if TYPE_CHECKING:
    from classroom.config import Settings

logger = logging.getLogger("classroom.integrations.video")

DEFAULT_API_URL = "https://api.opentok.com"
DEFAULT_TIMEOUT = 5.0  # seconds one create_session may take, thread and HTTP request alike
DEFAULT_TOKEN_TTL = 4 * 3600  # seconds a token stays valid: one long class
MAX_TOKEN_TTL = 30 * 86400  # OpenTok refuses tokens that expire later than this
MAX_DISPLAY_NAME = 200  # characters; OpenTok caps connection data at 1000

# Trainers may force others to unpublish; students publish; the rest only watch.
OPENTOK_ROLES: dict[str, str] = {
    "trainer": "moderator",
    "student": "publisher",
    "planner": "subscriber",
    "content_manager": "subscriber",
}


class VideoGateway:
    """Hands out OpenTok credentials for a channel; owns (and closes) its session store."""

    def __init__(
        self,
        api_key: str | None,
        api_secret: str | None,
        api_url: str | None,
        *,
        store: VideoSessionStore,
        timeout: float = DEFAULT_TIMEOUT,
        token_ttl: float = DEFAULT_TOKEN_TTL,
    ) -> None:
        if timeout <= 0:
            raise ValueError("timeout must be > 0")
        if not 0 < token_ttl <= MAX_TOKEN_TTL:
            raise ValueError(f"token_ttl must be > 0 and at most {MAX_TOKEN_TTL} seconds")
        self._store = store
        self._timeout = timeout
        self._token_ttl = token_ttl
        self._client: Any = None
        if api_key and api_secret:
            # ``Client``, not the deprecated ``OpenTok``; ``timeout`` bounds each HTTP request.
            self._client = opentok.Client(
                api_key, api_secret, api_url=(api_url or DEFAULT_API_URL).rstrip("/"),
                timeout=timeout,
            )

    @property
    def enabled(self) -> bool:
        """Whether OpenTok credentials are configured (OpenTok itself may still be down)."""
        return self._client is not None

    async def credentials(
        self, channel: str, *, pid: str, role: str, display_name: str | None
    ) -> dict[str, Any]:
        """What a client needs to join the channel's video: the ``video`` reply's fields.

        ``role`` is the classroom role; it picks the OpenTok role (``OPENTOK_ROLES``) and
        an unknown one is a ``ValueError``. Raises ``VideoUnavailable`` otherwise.
        """
        opentok_role = OPENTOK_ROLES.get(role)
        if opentok_role is None:
            raise ValueError(f"unknown role {role!r}")
        if self._client is None:
            raise VideoUnavailable(NOT_CONFIGURED)
        try:
            session_id = await self._store.get_or_create(
                channel, self._create_session, timeout=self._timeout
            )
        except TimeoutError:
            raise VideoUnavailable(UNAVAILABLE) from None
        data: dict[str, str] = {"pid": pid, "role": role}
        if display_name is not None:
            data["display_name"] = display_name[:MAX_DISPLAY_NAME]
        expires_at = int(time.time() + self._token_ttl)
        try:
            token = self._client.generate_token(
                session_id,
                role=opentok.Roles(opentok_role),
                expire_time=expires_at,
                data=json.dumps(data, ensure_ascii=False, separators=(",", ":")),
            )
        except opentok.OpenTokException as exc:
            logger.warning("OpenTok token not generated: %s", type(exc).__name__)
            raise VideoUnavailable(UNAVAILABLE) from None
        return {
            "api_key": self._client.api_key,
            "session_id": session_id,
            "token": token,
            "role": opentok_role,
            "expires_at": expires_at,
        }

    async def _create_session(self) -> str:
        """Ask OpenTok for a routed session (multiparty), off the loop and within the timeout."""
        client = self._client
        try:
            session = await asyncio.wait_for(
                asyncio.to_thread(client.create_session, media_mode=opentok.MediaModes.routed),
                self._timeout,
            )
            session_id = session.session_id
            if not isinstance(session_id, str) or not session_id:
                raise opentok.OpenTokException("empty session id")
            # Local check that the id embeds our api key, before anyone stores it for a day.
            client.generate_token(session_id, role=opentok.Roles.subscriber)
        except TimeoutError:
            logger.warning("OpenTok session not created within %.1f s", self._timeout)
            raise VideoUnavailable(UNAVAILABLE) from None
        except Exception as exc:  # noqa: BLE001 - the SDK raises whatever requests raised
            logger.warning("OpenTok session not created: %s", type(exc).__name__)
            raise VideoUnavailable(UNAVAILABLE) from None
        return session_id

    async def close(self) -> None:
        """Close the session store; a ``create_session`` thread still running ends on its own."""
        await self._store.close()


def video_from_settings(
    settings: Settings, *, token_ttl: float | None = None, timeout: float = DEFAULT_TIMEOUT
) -> VideoGateway:
    """The node's video broker; its store is shared through Redis when the node uses Redis."""
    configured = bool(settings.opentok_api_key and settings.opentok_api_secret)
    # Without credentials nothing is ever stored, so don't open a Redis pool for it.
    store = (
        video_store_from_url(settings.redis_url, settings.redis_prefix)
        if configured
        else MemoryVideoSessionStore()
    )
    return VideoGateway(
        settings.opentok_api_key,
        settings.opentok_api_secret,
        settings.opentok_api_url,
        store=store,
        timeout=timeout,
        token_ttl=DEFAULT_TOKEN_TTL if token_ttl is None else token_ttl,
    )
