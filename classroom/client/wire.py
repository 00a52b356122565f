"""Frames as a client puts them on the wire and reads them back: the subprotocol of
each encoding, one encoder and decoder for JSON and MessagePack, and the fields of
the two commands every session starts with (``connect`` and ``join``).

Shared by :mod:`classroom.client`, the tests' client and the load generator, so
that all three speak the protocol the same way (section 3 of docs/protocol.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import msgpack
import orjson

Encoding = Literal["json", "msgpack"]
Frame = dict[str, Any]


def subprotocol(encoding: Encoding) -> str:
    """The WebSocket subprotocol that selects ``encoding``."""
    return f"classroom.v1.{encoding}"


def encode(frame: Frame, encoding: Encoding) -> str | bytes:
    """A frame as a text (JSON) or binary (MessagePack) message."""
    if encoding == "msgpack":
        return bytes(msgpack.packb(frame, use_bin_type=True))
    return orjson.dumps(frame).decode()


def encode_bytes(frame: Frame, encoding: Encoding) -> bytes:
    """The same, as bytes, for writers that send raw frames (the load generator)."""
    if encoding == "msgpack":
        return bytes(msgpack.packb(frame, use_bin_type=True))
    return orjson.dumps(frame)


def decode(message: str | bytes, encoding: Encoding) -> Frame:
    """A received message as a frame; ``ValueError`` when it is not one."""
    try:
        if encoding == "msgpack" and isinstance(message, bytes):
            frame = msgpack.unpackb(message, raw=False)
        else:
            frame = orjson.loads(message)
    except (orjson.JSONDecodeError, msgpack.UnpackException, ValueError) as exc:
        raise ValueError(f"not a {encoding} frame") from exc
    if not isinstance(frame, dict):
        raise ValueError("a frame must be an object")
    return frame


def connect_fields(token: str, features: Sequence[str] = ()) -> Frame:
    """The fields of ``connect``. ``features`` only when there are some: a client that
    announces none gets exactly the frames older clients get (protocol section 3)."""
    fields: Frame = {"token": token}
    if features:
        fields["features"] = list(features)
    return fields


def join_fields(session: str, since: tuple[str, int] | None = None) -> Frame:
    """The fields of ``join``; ``since`` is the newest stored ``(epoch, offset)`` seen, so
    the server replays exactly what came after it (protocol section 10)."""
    fields: Frame = {"session": session}
    if since is not None:
        fields["since"] = {"epoch": since[0], "offset": since[1]}
    return fields
