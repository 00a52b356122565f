"""WebSocket frames as a load-generator client sees them: server frames in, client frames out.

:class:`FrameParser` turns the bytes a server sends (unmasked frames, RFC 6455
section 5) into whole messages, handed to a callback one by one, synchronously,
as they are parsed: no queue and no task per frame, because at 50,000 frames a
second that machinery cost the generator most of a core. Many frames are parsed
per read; only an incomplete frame at the end of a read is kept, and it is not
parsed again until enough bytes have arrived to complete it, so a large message
arriving in many reads is copied a bounded number of times, not once per read.

:func:`client_frame` builds one masked frame (clients must mask, section 5.3).
No extension is negotiated, so the reserved bits must be clear.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Callable

from websockets.exceptions import ProtocolError

try:  # the C version, when websockets was built with its speedups
    from websockets.speedups import apply_mask
except ImportError:  # pragma: no cover - pure-Python fallback
    from websockets.utils import apply_mask

OP_CONTINUATION, OP_TEXT, OP_BINARY = 0x0, 0x1, 0x2
OP_CLOSE, OP_PING, OP_PONG = 0x8, 0x9, 0xA
_FIN = 0x80
_FIN_TEXT, _FIN_BINARY = _FIN | OP_TEXT, _FIN | OP_BINARY  # first byte of a whole message
_U16 = struct.Struct("!H")
_U64 = struct.Struct("!Q")

MessageHandler = Callable[[bytes, bool], None]  # (payload, is_text)
ControlHandler = Callable[[int, bytes], None]  # (opcode, payload)


class FrameParser:
    """Server frames to messages; fragments are reassembled, control frames passed on.

    ``paused`` holds back frames still in the buffer (the connection stopped reading
    in the middle of a read); ``stopped`` ends parsing for good (a close frame came).
    Protocol violations raise :class:`websockets.exceptions.ProtocolError`.
    """

    __slots__ = ("_fragment_text", "_fragments", "_need", "_on_control", "_on_message",
                 "_tail", "paused", "stopped")

    def __init__(self, on_message: MessageHandler, on_control: ControlHandler) -> None:
        self._on_message = on_message
        self._on_control = on_control
        self._tail = bytearray()  # the start of a frame not complete yet
        self._need = 0  # bytes the tail must reach before parsing it can make progress
        self._fragments: list[bytes] | None = None  # a fragmented message being assembled
        self._fragment_text = False
        self.paused = False
        self.stopped = False

    @property
    def buffered(self) -> int:
        """Bytes received but not delivered yet (an incomplete or held-back frame)."""
        return len(self._tail)

    def feed(self, data: bytes) -> None:
        """Parse ``data`` after whatever was left over; b"" parses what was held back."""
        if self.stopped:
            return  # nothing after a close frame counts
        tail = self._tail
        if tail:
            tail += data
            if len(tail) < self._need:
                return  # still incomplete: nothing to parse again yet
            data = bytes(tail)
            tail.clear()
        end = len(data)
        pos = self._parse(data, end)
        if pos < end:
            tail += memoryview(data)[pos:]

    def _parse(self, data: bytes, end: int) -> int:
        """Deliver every complete frame in ``data``; where the first incomplete one starts."""
        on_message = self._on_message
        pos = 0
        self._need = 0
        while not self.paused:
            left = end - pos
            if left < 2:
                self._need = 2
                break
            first, length = data[pos], data[pos + 1]
            if length & 0x80:
                raise ProtocolError("the server masked a frame")
            start = pos + 2
            if length == 126:
                if left < 4:
                    self._need = 4
                    break
                length = _U16.unpack_from(data, start)[0]
                start += 2
            elif length == 127:
                if left < 10:
                    self._need = 10
                    break
                length = _U64.unpack_from(data, start)[0]
                start += 8
            stop = start + length
            if stop > end:
                self._need = stop - pos
                break
            payload = data[start:stop]
            pos = stop
            if self._fragments is None:  # the common case: one frame, one message
                if first == _FIN_TEXT:
                    on_message(payload, True)
                    continue
                if first == _FIN_BINARY:
                    on_message(payload, False)
                    continue
            self._other(first, payload)
            if self.stopped:
                break
        return pos

    def _other(self, first: int, payload: bytes) -> None:
        """Fragments, control frames and violations: everything but a whole message."""
        if first & 0x70:
            raise ProtocolError("reserved bits set without an extension")
        fin, opcode = first & _FIN, first & 0x0F
        if opcode >= OP_CLOSE:
            if not fin or len(payload) > 125:
                raise ProtocolError("fragmented or oversized control frame")
            if opcode not in (OP_CLOSE, OP_PING, OP_PONG):
                raise ProtocolError(f"unknown control opcode {opcode:#x}")
            self._on_control(opcode, payload)
            return
        if opcode == OP_CONTINUATION:
            if self._fragments is None:
                raise ProtocolError("continuation frame without a message to continue")
            self._fragments.append(payload)
        elif opcode in (OP_TEXT, OP_BINARY):
            if self._fragments is not None:
                raise ProtocolError("new message before the fragmented one ended")
            self._fragments, self._fragment_text = [payload], opcode == OP_TEXT
        else:
            raise ProtocolError(f"unknown data opcode {opcode:#x}")
        if fin:
            message, self._fragments = b"".join(self._fragments), None
            self._on_message(message, self._fragment_text)


def client_frame(opcode: int, payload: bytes) -> bytes:
    """One final, masked frame with a fresh random mask."""
    length = len(payload)
    if length < 126:
        head = bytes((_FIN | opcode, 0x80 | length))
    elif length < 65536:
        head = bytes((_FIN | opcode, 0x80 | 126)) + _U16.pack(length)
    else:
        head = bytes((_FIN | opcode, 0x80 | 127)) + _U64.pack(length)
    mask = os.urandom(4)
    return head + mask + apply_mask(payload, mask)


def close_payload(code: int, reason: str = "") -> bytes:
    """A close frame's body: the code, then the reason in UTF-8."""
    return _U16.pack(code) + reason.encode()


def parse_close(payload: bytes) -> tuple[int, str]:
    """A received close frame's code and reason; 1005 when it carries no code."""
    if not payload:
        return 1005, ""
    if len(payload) < 2:
        raise ProtocolError("close frame with a one-byte body")
    return _U16.unpack_from(payload)[0], payload[2:].decode("utf-8", "replace")
