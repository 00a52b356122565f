"""Wire encodings: one JSON object per text frame, or one MessagePack map per binary frame.

The encoding is chosen once per connection by WebSocket subprotocol, so the hot
path never guesses. Outgoing frames are encoded once per recipient view and the
same ``str``/``bytes`` object is handed to every connection of that view.
"""

from __future__ import annotations

from typing import Any, Literal

import msgpack
import orjson

Encoding = Literal["json", "msgpack"]
Payload = str | bytes

SUBPROTOCOLS: dict[str, Encoding] = {
    "classroom.v1.json": "json",
    "classroom.v1.msgpack": "msgpack",
}
SUBPROTOCOL_OF: dict[Encoding, str] = {enc: name for name, enc in SUBPROTOCOLS.items()}


class FrameError(ValueError):
    """A frame that cannot be decoded into an object; answered with ``bad_request``."""


def negotiate(offered: list[str]) -> tuple[Encoding, str | None]:
    """Pick the first subprotocol we speak; none offered (or none known) means JSON."""
    for name in offered:
        encoding = SUBPROTOCOLS.get(name)
        if encoding is not None:
            return encoding, name
    return "json", None


def encode(frame: dict[str, Any], encoding: Encoding) -> Payload:
    """Encode one outgoing frame: ``str`` for a text frame, ``bytes`` for a binary one."""
    if encoding == "json":
        return orjson.dumps(frame).decode()
    packed: bytes = msgpack.packb(frame, use_bin_type=True)
    return packed


def decode(data: Payload, encoding: Encoding) -> dict[str, Any]:
    """Decode one incoming frame into a dict, or raise :class:`FrameError`."""
    try:
        if encoding == "json":
            value = orjson.loads(data)
        else:
            if isinstance(data, str):
                raise FrameError("this connection speaks MessagePack: send binary frames")
            value = msgpack.unpackb(data, raw=False, strict_map_key=True)
    except FrameError:
        raise
    except (orjson.JSONDecodeError, ValueError, msgpack.ExtraData, msgpack.FormatError,
            msgpack.StackError, TypeError) as exc:
        raise FrameError(f"frame is not valid {_NAMES[encoding]}") from exc
    if not isinstance(value, dict):
        raise FrameError("frame must be an object")
    return value


_NAMES: dict[Encoding, str] = {"json": "JSON", "msgpack": "MessagePack"}


def pack_internal(value: dict[str, Any]) -> bytes:
    """Serialise an internal message (broker payload, presence info)."""
    packed: bytes = msgpack.packb(value, use_bin_type=True)
    return packed


def unpack_internal(data: bytes) -> dict[str, Any]:
    """Inverse of :func:`pack_internal`."""
    value: dict[str, Any] = msgpack.unpackb(data, raw=False)
    return value


# -- wire frames ----------------------------------------------------------------------

_WIRE_CACHE: dict[Payload, bytes] = {}
_WIRE_CACHE_MAX = 1024  # entries; with the size cap below, at most ~32 MiB
_WIRE_CACHE_PAYLOAD_MAX = 16 * 1024  # bigger payloads (history replies) are framed uncached


def wire_frame(payload: Payload) -> bytes:
    """The bytes of one unmasked, uncompressed, final WebSocket frame carrying ``payload``.

    A server's frames are never masked, so the bytes depend on the payload alone:
    a payload fanned out to many connections is framed (and UTF-8 encoded) once,
    not once per connection. Text for ``str``, binary for ``bytes``.
    """
    frame = _WIRE_CACHE.get(payload)
    if frame is None:
        if isinstance(payload, str):
            data, head = payload.encode(), 0x81
        else:
            data, head = payload, 0x82
        length = len(data)
        if length < 126:
            header = bytes((head, length))
        elif length < 65536:
            header = bytes((head, 126)) + length.to_bytes(2, "big")
        else:
            header = bytes((head, 127)) + length.to_bytes(8, "big")
        frame = header + data
        if length <= _WIRE_CACHE_PAYLOAD_MAX:
            if len(_WIRE_CACHE) >= _WIRE_CACHE_MAX:
                _WIRE_CACHE.clear()
            _WIRE_CACHE[payload] = frame
    return frame
