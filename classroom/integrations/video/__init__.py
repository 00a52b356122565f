"""Video through TokBox/OpenTok: one OpenTok session per live session, tokens by role.

The gateway (``gateway.py``) hands out role-mapped tokens; the session store
(``session_store.py``) makes sure each live session gets one OpenTok session
across every node.
"""

from __future__ import annotations

from classroom.integrations.video.gateway import (
    DEFAULT_TOKEN_TTL,
    OPENTOK_ROLES,
    VideoGateway,
    video_from_settings,
)
from classroom.integrations.video.session_store import (
    NOT_CONFIGURED,
    UNAVAILABLE,
    MemoryVideoSessionStore,
    RedisVideoSessionStore,
    VideoSessionStore,
    VideoUnavailable,
    video_store_from_url,
)

__all__ = [
    "DEFAULT_TOKEN_TTL", "NOT_CONFIGURED", "OPENTOK_ROLES", "UNAVAILABLE",
    "MemoryVideoSessionStore", "RedisVideoSessionStore", "VideoGateway", "VideoSessionStore",
    "VideoUnavailable", "video_from_settings", "video_store_from_url",
]
