"""The one exception a :class:`~classroom.client.ClassroomClient` command raises.

It lives apart from the client because every part of it raises or inspects it (the
reply correlation, the reconnect loop, the token refresh, the publish retries), and
an application catches it without caring which part failed: it branches on ``code``.
"""

from __future__ import annotations

RETRYABLE = frozenset({"rate_limited", "unavailable", "timeout", "connection_lost"})
"""Codes after which the same command may succeed when tried again."""


class ClientError(Exception):
    """A command failed: ``code`` is the server's error code or one of the client's own
    (``timeout``, ``connection_lost``, ``closed``). Branch on ``code``, not the message."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message

    @property
    def retryable(self) -> bool:
        return self.code in RETRYABLE
