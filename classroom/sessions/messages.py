"""Messages between nodes: what travels through the broker and sits in presence entries.

Every node packs and unpacks them the same way (MessagePack, personal data whole:
these never leave the server; ``classroom.domain.views`` decides what does). A
broker publication carries ``{"t": "event", "record": ...}`` (a stored or ephemeral
event), ``{"t": "presence.join" | "presence.leave", "participant": ...}``, or, on the
control feed, ``{"t": "disconnect" | "erase", "tenant": ..., "sub": ..., "reason": ...}``.
"""

from __future__ import annotations

from typing import Any

import msgpack


def pack_internal(value: dict[str, Any]) -> bytes:
    """Serialise an internal message (broker payload, presence info)."""
    packed: bytes = msgpack.packb(value, use_bin_type=True)
    return packed


def unpack_internal(data: bytes) -> dict[str, Any]:
    """Inverse of :func:`pack_internal`."""
    value: dict[str, Any] = msgpack.unpackb(data, raw=False)
    return value


def event_message(record: dict[str, Any]) -> bytes:
    """A broker publication carrying an event record."""
    return pack_internal({"t": "event", "record": record})


def presence_message(kind: str, participant: dict[str, Any]) -> bytes:
    """A broker publication announcing a join or a leave (``presence.join``, ``presence.leave``)."""
    return pack_internal({"t": kind, "participant": participant})
