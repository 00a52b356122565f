"""WebSocket frames built once per payload, so a frame fanned out to many sockets is framed once.

A server's frames are never masked, so the bytes of a frame depend on its payload
alone: the direct-write path (``classroom.edge.server.FramesProtocol``) caches
them by payload.
"""

from __future__ import annotations

from classroom.protocol.codec import Payload

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
