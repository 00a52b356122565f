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
