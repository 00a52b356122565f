"""The one way any layer refuses a request: a code the client can act on, and a safe message.

A WebSocket command answers it as an ``error`` frame (``classroom.protocol.frames``),
the server API as an HTTP status (``classroom.tenant_api.routes``); an event the
domain refuses and a session the lifecycle has closed are refused the same way.
"""

from __future__ import annotations

from typing import Literal

ErrorCode = Literal[
    "bad_request",
    "unauthorized",
    "forbidden",
    "not_found",
    "rate_limited",
    "unavailable",
    "internal",
]


class RequestRefused(Exception):  # noqa: N818 - reads as what happened to the request
    """A request failed in a way the requester should hear about; the connection stays.

    ``message`` is shown to the requester and may be logged, so it never holds
    personal data or tokens.
    """

    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.code: ErrorCode = code
        self.message = message
