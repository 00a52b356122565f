"""A real SMTP server (aiosmtpd) on a free loopback port, for tests of the mail sender.

Why a real server: what matters is what crosses the wire (the client's SMTP dialogue,
AUTH, headers, MIME bodies) and how the sender copes with a server that is down,
refuses or hangs. aiosmtpd's ``Controller`` runs the server in its own thread and
event loop, so a server that hangs cannot hang the test's loop.

The port is chosen once, so ``stop()`` then ``start()`` brings "the same" server
down and up again. ``refuse`` answers 451 (try again later) to RCPT; ``hang`` makes
the server sit on RCPT for ``hang`` seconds, ``hang_quit`` on QUIT. ``open_connections``
counts the clients connected right now, so a test can see a sender leave none behind.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from dataclasses import dataclass
from email import message_from_bytes, policy
from email.message import EmailMessage
from types import TracebackType
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword


@dataclass(frozen=True)
class Received:
    """One accepted mail as it arrived."""

    mail_from: str
    rcpt_tos: list[str]
    data: bytes
    login: str | None

    @property
    def message(self) -> EmailMessage:
        parsed = message_from_bytes(self.data, policy=policy.default)
        assert isinstance(parsed, EmailMessage)
        return parsed

    def text(self) -> str:
        part = self.message.get_body(preferencelist=("plain",))
        assert part is not None
        return str(part.get_content())

    def html(self) -> str | None:
        part = self.message.get_body(preferencelist=("html",))
        return None if part is None else str(part.get_content())


class _Handler:
    def __init__(self, server: SmtpServer) -> None:
        self._server = server

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str,  # noqa: N802
                          rcpt_options: list[str]) -> str:
        owner = self._server
        owner.rcpt_attempts += 1
        if owner.hang:
            await asyncio.sleep(owner.hang)
        if owner.refuse:
            return "451 4.3.0 try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_QUIT(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        if self._server.hang_quit:
            await asyncio.sleep(self._server.hang_quit)
        return "221 Bye"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        auth = session.auth_data
        login = auth.login.decode() if session.authenticated and auth is not None else None
        with self._server.lock:
            self._server.received.append(Received(
                mail_from=envelope.mail_from, rcpt_tos=list(envelope.rcpt_tos),
                data=bytes(envelope.original_content or envelope.content), login=login,
            ))
        return "250 Message accepted"


class _CountingSmtp(SMTP):
    """aiosmtpd's server session, counting the connections open on the owner."""

    def __init__(self, owner: SmtpServer, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._owner = owner

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        with self._owner.lock:
            self._owner.open_connections += 1
        super().connection_made(transport)

    def connection_lost(self, error: Exception | None) -> None:
        with self._owner.lock:
            self._owner.open_connections -= 1
        super().connection_lost(error)


class _CountingController(Controller):
    def __init__(self, owner: SmtpServer, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._owner = owner

    def factory(self) -> SMTP:
        return _CountingSmtp(self._owner, self.handler, **self.SMTP_kwargs)


class SmtpServer:
    """Start/stop an aiosmtpd server on a fixed free port; collect what it accepted."""

    def __init__(self, *, user: str | None = None, password: str | None = None) -> None:
        self.host = "127.0.0.1"
        self.port = _free_port()
        self.user = user
        self.password = password
        self.refuse = False
        self.hang = 0.0
        self.hang_quit = 0.0
        self.open_connections = 0
        self.rcpt_attempts = 0
        self.received: list[Received] = []
        self.lock = threading.Lock()
        self._controller: Controller | None = None

    @property
    def url(self) -> str:
        auth = f"{self.user}:{self.password}@" if self.user else ""
        return f"smtp://{auth}{self.host}:{self.port}"

    @property
    def running(self) -> bool:
        return self._controller is not None

    def start(self) -> SmtpServer:
        if self._controller is None:
            options: dict[str, Any] = {}
            if self.user is not None:
                # Plain loopback, no TLS: aiosmtpd refuses AUTH over it unless told. Not
                # ``auth_required``: with it aiosmtpd warns (UserWarning) in its own thread.
                options.update(auth_require_tls=False, authenticator=self._authenticate)
            controller = _CountingController(self, _Handler(self), hostname=self.host,
                                             port=self.port, ready_timeout=5.0, **options)
            controller.start()
            self._controller = controller
        return self

    def stop(self) -> None:
        controller, self._controller = self._controller, None
        if controller is not None:
            controller.stop()

    def _authenticate(self, server: Any, session: Any, envelope: Any, mechanism: str,
                      auth_data: Any) -> AuthResult:
        ok = (isinstance(auth_data, LoginPassword)
              and auth_data.login.decode() == self.user
              and auth_data.password.decode() == self.password)
        return AuthResult(success=ok, handled=False, auth_data=auth_data)

    async def wait_for(self, count: int, timeout: float = 5.0) -> list[Received]:
        """Wait (without blocking the loop) until ``count`` mails arrived."""
        deadline = time.monotonic() + timeout
        while len(self.received) < count and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        with self.lock:
            return list(self.received)

    def __enter__(self) -> SmtpServer:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
