"""A fake OpenTok REST API on loopback: just what ``opentok.Client.create_session`` calls.

It runs ``http.server`` in a thread, so the SDK's blocking ``requests`` calls (made
from a worker thread) never depend on the test's event loop. It checks the SDK's
``X-OPENTOK-AUTH`` JWT as OpenTok does (403 otherwise), answers
``[{"session_id": ...}]`` with Content-Type exactly ``application/json`` (anything
else sends the SDK down its legacy XML path), counts the creates, and can be told
to fail with HTTP 500, to answer late (``delay``) or to hang until stopped.
"""

from __future__ import annotations

import base64
import json
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Literal
from urllib.parse import parse_qs

import jwt

Mode = Literal["ok", "fail", "hang"]


def fake_session_id(api_key: str) -> str:
    """An id shaped like OpenTok's: ``1_`` + unpadded url-safe base64 of ``~``-separated
    fields, one of them the api key (``generate_token`` decodes it and checks that)."""
    raw = f"1~{api_key}~~{int(time.time() * 1000)}~{uuid.uuid4().hex}~~".encode()
    return "1_" + base64.urlsafe_b64encode(raw).decode().rstrip("=")


class FakeOpenTok:
    """State shared with the handler threads; tests read and set it directly."""

    def __init__(self, api_key: str, api_secret: str) -> None:
        self.api_key = api_key
        self.api_secret = api_secret
        self.mode: Mode = "ok"
        self.delay = 0.0  # seconds to wait before answering, in "ok" and "fail" modes
        self.creates: list[dict[str, str]] = []  # form fields of every authorised create
        self.session_ids: list[str] = []
        self._lock = threading.Lock()
        self._released = threading.Event()  # set on stop: hanging handlers return
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """The ``api_url`` to give the SDK."""
        assert self._server is not None, "not started"
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def create_calls(self) -> int:
        with self._lock:
            return len(self.creates)

    def start(self) -> None:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if self.path != "/session/create":
                    self._send(404, "text/plain", b"not found")
                    return
                try:
                    claims = jwt.decode(self.headers.get("X-OPENTOK-AUTH", ""), fake.api_secret,
                                        algorithms=["HS256"])
                except jwt.PyJWTError:
                    self._send(403, "application/json", b'{"message": "invalid token"}')
                    return
                if claims.get("iss") != fake.api_key or claims.get("ist") != "project":
                    self._send(403, "application/json", b'{"message": "wrong project"}')
                    return
                form = {k: v[0] for k, v in parse_qs(body.decode()).items()}
                with fake._lock:
                    fake.creates.append(form)
                if fake.mode == "hang":
                    fake._released.wait(30)
                    self.close_connection = True
                    return
                if fake.delay:
                    time.sleep(fake.delay)
                if fake.mode == "fail":
                    self._send(500, "application/json", b'{"message": "internal error"}')
                    return
                session_id = fake_session_id(fake.api_key)
                with fake._lock:
                    fake.session_ids.append(session_id)
                self._send(200, "application/json",
                           json.dumps([{"session_id": session_id,
                                        "project_id": fake.api_key}]).encode())

            def _send(self, status: int, content_type: str, payload: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Release hanging requests, stop serving and close the listening socket."""
        self._released.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(5)


@contextmanager
def fake_opentok(api_key: str = "4711", api_secret: str = "0123456789abcdef" * 2
                 ) -> Iterator[FakeOpenTok]:
    """A started fake OpenTok, stopped on exit."""
    fake = FakeOpenTok(api_key, api_secret)
    fake.start()
    try:
        yield fake
    finally:
        fake.stop()
