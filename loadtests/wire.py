"""A lean WebSocket client connection for the load generator, on a plain asyncio.Protocol.

The generator shares a 2-core machine with the server it measures, so what it
spends per received frame is taken from the server. websockets' asyncio client
wakes a task, runs its frame parser, assembler and queue for every frame; here
the frames of each read are parsed in ``data_received`` and handed to the
caller's callback right there (see ``framing.py``), which cuts that cost several
times. Only what the generator uses is supported: ``ws://`` URLs, subprotocols,
no extensions (no compression), no keepalive pings of our own.

The opening handshake is websockets' sans-I/O :class:`~websockets.client.ClientProtocol`,
fed exactly the response head, so the frame bytes that follow the 101 in the same
read stay with our parser. A refused handshake raises what ``ClientProtocol``
reports (an :class:`~websockets.exceptions.InvalidHandshake`); a socket error an
``OSError``; no answer within ``open_timeout`` a ``TimeoutError``.

Writes are not flow-controlled: the generator sends a few small commands, to a
server on loopback that always reads.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable, Sequence
from typing import cast

from websockets.client import ClientProtocol
from websockets.exceptions import InvalidMessage, InvalidURI, ProtocolError
from websockets.protocol import State
from websockets.typing import Subprotocol
from websockets.uri import parse_uri

from loadtests.framing import (
    OP_BINARY,
    OP_CLOSE,
    OP_PING,
    OP_PONG,
    OP_TEXT,
    FrameParser,
    MessageHandler,
    client_frame,
    close_payload,
    parse_close,
)

MAX_HEAD = 65536  # a handshake response head longer than this is not a WebSocket server's
CLOSE_TIMEOUT = 2.0  # how long to wait for the server's side of the closing handshake
USER_AGENT = "classroom-loadtests"


class WireClosedError(ConnectionError):
    """Sending on a connection that is closed or closing."""


class WireConnection(asyncio.Protocol):
    """One client connection: handshake, then frames straight to ``on_message``.

    ``on_message(payload, is_text)`` is called synchronously from ``data_received``
    for each message, in order; ``on_close(connection)`` once when an open connection
    ends, after its last message. Neither may raise (an exception escapes into the
    transport, which then aborts the connection). ``close_code`` is the code the
    server's close frame carried (1005 if none), 1006 when the socket ended without
    one, 1002 when the server broke the protocol (``close_reason`` says how).
    """

    def __init__(self, url: str, on_message: MessageHandler,
                 on_close: Callable[[WireConnection], None] | None = None,
                 subprotocols: Sequence[str] = ()) -> None:
        uri = parse_uri(url)
        if uri.secure:
            raise InvalidURI(url, "wss:// is not supported by the load generator's client")
        self.uri = uri
        loop = asyncio.get_running_loop()
        self.opened: asyncio.Future[None] = loop.create_future()
        self.closed: asyncio.Future[None] = loop.create_future()
        self.subprotocol: str | None = None
        self.close_code: int | None = None
        self.close_reason = ""
        self._loop = loop
        self._on_close = on_close
        self._parser = FrameParser(on_message, self._on_control)
        # Dropped once open: idle runs hold 10,000 connections.
        self._handshake: ClientProtocol | None = ClientProtocol(
            uri, subprotocols=[Subprotocol(p) for p in subprotocols] or None, max_size=None)
        self._head = bytearray()
        self._head_fed = False  # the response head went to ClientProtocol: a body follows
        self._transport: asyncio.Transport | None = None
        self._open = False
        self._close_sent = False
        self._linger: asyncio.TimerHandle | None = None

    # -- asyncio.Protocol ----------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Send the upgrade request."""
        self._transport = cast(asyncio.Transport, transport)
        handshake = self._handshake
        assert handshake is not None  # a new connection
        request = handshake.connect()
        request.headers["User-Agent"] = USER_AGENT
        handshake.send_request(request)
        self._transport.write(b"".join(handshake.data_to_send()))

    def data_received(self, data: bytes) -> None:
        """Frames once open (the hot path); the handshake response before."""
        if self._open:
            try:  # _feed, inlined: this runs once per read, tens of thousands of times a second
                self._parser.feed(data)
            except ProtocolError as exc:
                self._fail(1002, str(exc))
        else:
            self._handshake_data(data)

    def eof_received(self) -> bool | None:
        """The server half-closed: let the transport close (a refusal's body may end here)."""
        handshake = self._handshake
        if handshake is not None and self._head_fed:
            handshake.receive_eof()
            self._check_refusal()
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        """Settle ``opened`` and ``closed``; tell the owner of an open connection."""
        if self._linger is not None:
            self._linger.cancel()
        if not self.opened.done():
            self.opened.set_exception(
                exc or ConnectionResetError("connection closed during the opening handshake"))
        was_open, self._open = self._open, False
        if self.close_code is None:
            self.close_code = 1006
        self._parser.stopped = True
        if not self.closed.done():
            self.closed.set_result(None)
        if was_open and self._on_close is not None:
            self._on_close(self)

    # -- the caller's side -------------------------------------------------------------

    def send_text(self, payload: bytes | str) -> None:
        """Send one text frame (``payload`` is UTF-8 already if bytes)."""
        self._send(OP_TEXT, payload.encode() if isinstance(payload, str) else payload)

    def send_binary(self, payload: bytes) -> None:
        """Send one binary frame."""
        self._send(OP_BINARY, payload)

    def pause_reading(self) -> None:
        """Stop reading the socket, so the server's writes back up into TCP."""
        self._parser.paused = True
        transport = self._transport
        if transport is not None and not transport.is_closing():
            transport.pause_reading()

    def resume_reading(self) -> None:
        """Read again, first delivering whatever a pause held back."""
        if not self._parser.paused:
            return
        self._parser.paused = False
        transport = self._transport
        if transport is not None and not transport.is_closing():
            transport.resume_reading()
        if self._open:
            self._feed(b"")

    async def close(self, code: int = 1000, reason: str = "",
                    timeout: float = CLOSE_TIMEOUT) -> None:
        """Start the closing handshake and wait (up to ``timeout``) for the end."""
        transport = self._transport
        if transport is None or self.closed.done():
            return
        if not self._open:
            transport.abort()
        elif not self._close_sent:
            self._close_sent = True
            transport.write(client_frame(OP_CLOSE, close_payload(code, reason)))
        self.resume_reading()  # the server's answer is behind the frames not read yet
        try:
            await asyncio.wait_for(asyncio.shield(self.closed), timeout)
        except TimeoutError:
            transport.abort()
            await self.closed

    @property
    def began(self) -> bool:
        """Whether a transport was ever attached (the TCP connection was made)."""
        return self._transport is not None

    def abort(self) -> None:
        """Drop the TCP connection at once (no closing handshake, no further message)."""
        self._parser.stopped = True
        if self._transport is not None:
            self._transport.abort()

    # -- internals -----------------------------------------------------------------------

    def _feed(self, data: bytes) -> None:
        try:
            self._parser.feed(data)
        except ProtocolError as exc:
            self._fail(1002, str(exc))

    def _send(self, opcode: int, payload: bytes) -> None:
        transport = self._transport
        if not self._open or self._close_sent or transport is None or transport.is_closing():
            raise WireClosedError(f"connection closed ({self.close_code or 'closing'})")
        transport.write(client_frame(opcode, payload))

    def _on_control(self, opcode: int, payload: bytes) -> None:
        transport = self._transport
        if transport is None:
            return
        if opcode == OP_PING:
            if not self._close_sent:
                transport.write(client_frame(OP_PONG, payload))
        elif opcode == OP_CLOSE:
            self.close_code, self.close_reason = parse_close(payload)
            self._parser.stopped = True
            if not self._close_sent:  # echo the code (RFC 6455 5.5.1)
                self._close_sent = True
                transport.write(client_frame(OP_CLOSE, payload[:2]))
            # The server closes TCP first (RFC 6455 7.1.1); close it ourselves if it lingers.
            self._linger = self._loop.call_later(CLOSE_TIMEOUT, transport.close)

    def _fail(self, code: int, reason: str) -> None:
        """The server broke the protocol: say so in a close frame and drop the socket."""
        self.close_code, self.close_reason = code, reason
        self._parser.stopped = True
        transport = self._transport
        if transport is not None and not transport.is_closing():
            if not self._close_sent:
                self._close_sent = True
                transport.write(client_frame(OP_CLOSE, close_payload(code)))
            transport.close()

    def _handshake_data(self, data: bytes) -> None:
        handshake = self._handshake
        if handshake is None:
            return  # never: it is dropped only once open, and then frames come here no more
        if self._head_fed:  # the body of a refusal: ClientProtocol reads it, then reports
            handshake.receive_data(data)
            self._check_refusal()
            return
        head = self._head
        head += data
        end = head.find(b"\r\n\r\n")
        if end < 0:
            if len(head) > MAX_HEAD:
                self._refuse(InvalidMessage("handshake response head too long"))
            return
        end += 4
        rest = bytes(head[end:])
        handshake.receive_data(head[:end])
        self._head_fed, self._head = True, bytearray()
        if handshake.state is State.OPEN:
            self._opened(rest)
            return
        if rest and handshake.handshake_exc is None:  # not a 101: a body may follow the head
            handshake.receive_data(rest)
        self._check_refusal()

    def _check_refusal(self) -> None:
        exc = self._handshake.handshake_exc if self._handshake is not None else None
        if exc is not None:
            self._refuse(exc)

    def _refuse(self, exc: Exception) -> None:
        if not self.opened.done():
            self.opened.set_exception(exc)
        if self._transport is not None:
            self._transport.abort()

    def _opened(self, rest: bytes) -> None:
        assert self._handshake is not None
        self.subprotocol = self._handshake.subprotocol
        self._handshake, self._open = None, True
        if not self.opened.done():
            self.opened.set_result(None)
        if rest:
            self._feed(rest)


async def connect(url: str, on_message: MessageHandler, *,
                  on_close: Callable[[WireConnection], None] | None = None,
                  subprotocols: Sequence[str] = (), sock: socket.socket | None = None,
                  open_timeout: float = 10.0) -> WireConnection:
    """Open a connection to ``url`` (over ``sock`` if given, already connected)."""
    try:
        connection = WireConnection(url, on_message, on_close, subprotocols)
    except BaseException:
        if sock is not None:
            sock.close()
        raise
    loop = asyncio.get_running_loop()
    try:
        async with asyncio.timeout(open_timeout):
            if sock is None:
                await loop.create_connection(lambda: connection, connection.uri.host,
                                             connection.uri.port)
            else:
                await loop.create_connection(lambda: connection, sock=sock)
            await connection.opened
    except BaseException:
        if connection.began:
            connection.abort()
        elif sock is not None:
            sock.close()  # no transport took the socket over
        raise
    return connection
