"""A session's lifecycle: scheduled (a roster was set), live (a trainer joined), ended.

An ended session takes no joins, events, rosters or video any more; every place
that refuses one asks here, so they refuse alike.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from classroom.domain.refusals import RequestRefused

Status = Literal["scheduled", "live", "ended"]
ENDED: Status = "ended"


def is_ended(status: Mapping[str, Any] | None) -> bool:
    """Whether a stored session status (None: never seen) says the session has ended."""
    return status is not None and status.get("status") == ENDED


def refuse_if_ended(status: Mapping[str, Any] | None) -> None:
    """Refuse (``forbidden``) anything asked of a session that has ended."""
    if is_ended(status):
        raise RequestRefused("forbidden", "this session has ended")
