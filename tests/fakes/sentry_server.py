"""A fake Sentry ingest endpoint on loopback, for tests that run the real ``sentry-sdk``.

Why a server and not a fake transport: the privacy promise is about the bytes
that leave the process. Only the SDK's own HTTP transport shows what survives
its whole pipeline (integrations, scrubber, ``before_send``, serialisation,
envelope framing and compression), so tests point a DSN at this server and
search what it received.

The SDK posts envelopes to ``/api/<project>/envelope/``, gzip-compressed by
default (``Content-Encoding: gzip``; ``br`` only when the ``brotli`` module is
installed and asked for). Bodies are decoded here and kept verbatim.
"""

from __future__ import annotations

import gzip
import re
import threading
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

import orjson

ENVELOPE_PATH = re.compile(r"^/api/(?P<project>[^/]+)/envelope/?$")


@dataclass(frozen=True)
class EnvelopeItem:
    """One item of an envelope: its header line and its raw payload."""

    headers: dict[str, Any]
    payload: bytes

    @property
    def type(self) -> str:
        return str(self.headers.get("type", ""))

    def json(self) -> Any:
        return orjson.loads(self.payload)


@dataclass(frozen=True)
class Envelope:
    """A parsed envelope (https://develop.sentry.dev/sdk/data-model/envelopes/)."""

    headers: dict[str, Any]
    items: list[EnvelopeItem]


@dataclass(frozen=True)
class ReceivedRequest:
    """One POST as it arrived: ``raw`` as sent, ``body`` after undoing Content-Encoding."""

    path: str
    project: str
    headers: dict[str, str]
    raw: bytes
    body: bytes


def decode_body(raw: bytes, encoding: str | None) -> bytes:
    """Undo the transport's Content-Encoding, so tests can search the plain envelope."""
    name = (encoding or "identity").strip().lower()
    if name in ("", "identity"):
        return raw
    if name == "gzip":
        return gzip.decompress(raw)
    if name == "deflate":
        return zlib.decompress(raw)
    if name == "br":
        import brotli  # type: ignore[import-not-found]

        return bytes(brotli.decompress(raw))
    raise ValueError(f"unsupported Content-Encoding {encoding!r}")


def parse_envelope(body: bytes) -> Envelope:
    """Split an envelope into its header and items.

    An item's payload is ``length`` bytes when its header says so, otherwise it
    runs to the next newline (both forms are allowed by the format).
    """
    first, _, rest = body.partition(b"\n")
    headers = orjson.loads(first) if first.strip() else {}
    items: list[EnvelopeItem] = []
    while rest.strip():
        line, _, rest = rest.partition(b"\n")
        if not line.strip():
            continue
        item_headers = orjson.loads(line)
        length = item_headers.get("length")
        if length is None:
            payload, _, rest = rest.partition(b"\n")
        else:
            payload, rest = rest[:length], rest[length:]
            rest = rest.removeprefix(b"\n")
        items.append(EnvelopeItem(item_headers, payload))
    return Envelope(headers, items)


class _Handler(BaseHTTPRequestHandler):
    """Accepts envelope POSTs and hands them to the owning ``FakeSentry``."""

    server: _Server

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length)
        match = ENVELOPE_PATH.match(self.path.split("?", 1)[0])
        if match is None:
            self._answer(404, b'{"detail":"not found"}')
            return
        try:
            body = decode_body(raw, self.headers.get("Content-Encoding"))
        except (ValueError, OSError, ImportError, zlib.error):
            self._answer(415, b'{"detail":"bad content encoding"}')
            return
        self.server.owner.record(
            ReceivedRequest(
                path=self.path,
                project=match["project"],
                headers={k.lower(): v for k, v in self.headers.items()},
                raw=raw,
                body=body,
            )
        )
        self._answer(200, b'{"id":null}')

    def _answer(self, status: int, payload: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:
        """Silence the per-request stderr line; tests assert on ``requests``."""


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    owner: FakeSentry


class FakeSentry:
    """A loopback Sentry ingest endpoint that keeps every envelope it receives.

    Use as a context manager (or ``start``/``stop``); ``dsn`` is what to pass to
    ``sentry_sdk.init``. Reads are thread-safe: the SDK posts from its own
    worker thread while the test reads.
    """

    def __init__(self, host: str = "127.0.0.1") -> None:
        self._host = host
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._requests: list[ReceivedRequest] = []
        self._changed = threading.Condition()

    # -- lifecycle -------------------------------------------------------------

    def start(self) -> FakeSentry:
        server = _Server((self._host, 0), _Handler)
        server.owner = self
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05},
            name="fake-sentry", daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(5)
        self._server = None
        self._thread = None

    def __enter__(self) -> FakeSentry:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- addresses -------------------------------------------------------------

    @property
    def port(self) -> int:
        assert self._server is not None, "FakeSentry is not running"
        return int(self._server.server_address[1])

    def dsn(self, project: str = "1", public_key: str = "public") -> str:
        return f"http://{public_key}@{self._host}:{self.port}/{project}"

    # -- what arrived ----------------------------------------------------------

    def record(self, request: ReceivedRequest) -> None:
        with self._changed:
            self._requests.append(request)
            self._changed.notify_all()

    @property
    def requests(self) -> list[ReceivedRequest]:
        with self._changed:
            return list(self._requests)

    @property
    def bodies(self) -> list[bytes]:
        """Every decoded request body, in arrival order."""
        return [request.body for request in self.requests]

    def envelopes(self) -> list[Envelope]:
        return [parse_envelope(body) for body in self.bodies]

    def events(self) -> list[dict[str, Any]]:
        """The payloads of every ``event`` item received so far."""
        return [
            item.json()
            for envelope in self.envelopes()
            for item in envelope.items
            if item.type == "event"
        ]

    def wait_for_event(
        self,
        match: Callable[[dict[str, Any]], bool] | None = None,
        timeout: float = 5.0,
    ) -> dict[str, Any]:
        """The first received event that ``match`` accepts, waiting up to ``timeout``."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                for event in self.events():
                    if match is None or match(event):
                        return event
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(
                        f"no matching event within {timeout}s; "
                        f"got {len(self._requests)} request(s)"
                    )
                self._changed.wait(remaining)


__all__ = [
    "Envelope",
    "EnvelopeItem",
    "FakeSentry",
    "ReceivedRequest",
    "decode_body",
    "parse_envelope",
]
