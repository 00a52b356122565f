"""Protocol error codes, and the one exception that carries them to the client."""

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


class CommandError(Exception):
    """A command failed in a way the client should hear about; the connection stays.

    ``message`` is shown to the client and may be logged, so it never holds
    personal data or tokens.
    """

    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.code: ErrorCode = code
        self.message = message


def error_frame(code: str, message: str, command_id: int | None) -> dict[str, object]:
    """Build an ``error`` frame, with the command's ``id`` when it had one."""
    frame: dict[str, object] = {"type": "error", "code": code, "message": message}
    if command_id is not None:
        frame["id"] = command_id
    return frame
