"""Frames as a client puts them on the wire and reads them back: the subprotocol of
each encoding, and one encoder and decoder for JSON and MessagePack.

Shared by :mod:`classroom.client`, the tests' client and the load generator, so
that all three speak the protocol the same way (section 3 of docs/protocol.md).
"""

from __future__ import annotations

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
