"""The right to erasure, as data: what is left of a user's events and marks once they are erased.

A stored event the user authored, or that is about them, becomes a tombstone
(its kind and time, nobody's data); a mark they drew stays, by an anonymous
author, so the lesson's screen does not change under everyone else.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

ANONYMOUS_PID = "anonymous"
"""The ``pid`` an erased user's authored objects (annotations) are left with."""

ERASED_BY: Mapping[str, str] = {"pid": "erased", "role": "erased"}
"""The author of a tombstone, as stored and as every recipient sees it."""


def anonymous_participant(record: Mapping[str, Any]) -> dict[str, Any]:
    """Stand-in for an erased user's participant record: role kept, identity gone."""
    return {"pid": ANONYMOUS_PID, "role": record.get("role", "student")}


def mentions(record: Mapping[str, Any], sub: str) -> bool:
    """Whether a stored record was authored by, or is about, the user ``sub``."""
    for key in ("by", "participant"):
        person = record.get(key)
        if isinstance(person, Mapping) and person.get("sub") == sub:
            return True
    return False


def tombstone_record(record: Mapping[str, Any], now: float) -> dict[str, Any]:
    """The stored record that replaces an erased user's event: its kind and time only."""
    return {"kind": record.get("kind", "unknown"), "erased": True, "by": dict(ERASED_BY),
            "at": record.get("at", now)}
