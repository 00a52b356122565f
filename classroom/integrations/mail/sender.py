"""The mail worker: takes due messages from the outbox and hands them to SMTP.

It runs as one background task per node (the shared loop of
:class:`~classroom.integrations.outbox.OutboxWorker`). Every SMTP step has a timeout and the
client is asyncio-native (aiosmtplib), so a server that is down, refusing or hanging
costs this task time, never the event loop. A failed message goes back to the outbox
with back-off, or becomes a dead letter after the outbox's ``max_attempts``; nothing
here raises out of the loop. Logs name message ids and
exception classes only: exception texts can quote addresses.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import formatdate, parseaddr
from urllib.parse import parse_qs, unquote, urlsplit

import aiosmtplib

from classroom.integrations.mail.outbox import MailOutbox, Message
from classroom.integrations.outbox import OutboxWorker

log = logging.getLogger("classroom.integrations.mail")
_TRUE = {"1", "true", "yes", "on"}


@dataclass(frozen=True, slots=True)
class SmtpTarget:
    """Where and how to deliver, parsed from ``SMTP_URL``; credentials stay out of repr."""

    hostname: str
    port: int
    username: str | None = field(default=None, repr=False)
    password: str | None = field(default=None, repr=False)
    use_tls: bool = False
    start_tls: bool = False


def parse_smtp_url(url: str) -> SmtpTarget:
    """``smtp://[user:pass@]host[:port][?starttls=1]`` or ``smtps://`` (TLS from the start).

    Plain ``smtp://`` never upgrades on its own (``start_tls=False``): silently switching
    to TLS when offered fails against servers with self-signed certificates, and an
    explicit ``?starttls=1`` says what the operator wants.
    """
    parts = urlsplit(url)
    if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
        raise ValueError("SMTP_URL must look like smtp://user:pass@host:port or smtps://...")
    tls = parts.scheme == "smtps"
    starttls = not tls and parse_qs(parts.query).get("starttls", ["0"])[-1].lower() in _TRUE
    return SmtpTarget(
        hostname=parts.hostname, port=parts.port or (465 if tls else 587 if starttls else 25),
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password is not None else None,
        use_tls=tls, start_tls=starttls,
    )


class MailSender(OutboxWorker[Message]):
    """Background delivery: ``start()``, ``wake()`` after enqueueing, ``stop()`` at shutdown."""

    name = "mail"
    log = log

    def __init__(
        self, outbox: MailOutbox, *, smtp_url: str | None, mail_from: str | None,
        timeout: float = 15.0, poll_interval: float = 5.0, batch: int = 20,
        on_depth: Callable[[int], None] | None = None, local_hostname: str | None = None,
        on_dead: Callable[[int], None] | None = None,
    ) -> None:
        step = timeout * 3  # deadline for one SMTP step (connect, or one message)
        super().__init__(outbox, poll_interval=poll_interval, batch=batch, stop_timeout=step,
                         on_depth=on_depth, on_dead=on_dead)
        self._target = parse_smtp_url(smtp_url) if smtp_url else None
        self._from = mail_from
        self._timeout = timeout
        self._step = step
        self._lease = self._step * (batch + 2) + 30.0  # longer than a whole batch can take
        self._local_hostname = local_hostname
        self._warned = False

    @property
    def configured(self) -> bool:
        """Whether mail can leave: both ``SMTP_URL`` and ``MAIL_FROM`` are set."""
        return self._target is not None and bool(self._from)

    async def submit(self, messages: Iterable[Message]) -> int:
        """Enqueue messages and wake the worker; how many were new (not deduplicated)."""
        queued = 0
        for message in messages:
            queued += await self.outbox.enqueue(message)
        if queued:
            self.wake()
        return queued

    async def run_once(self) -> int:
        """Claim due messages and try to deliver them; how many the server accepted."""
        if not self.configured:
            if not self._warned:
                self._warned = True
                log.warning("mail stays queued: SMTP_URL or MAIL_FROM is not set")
            return 0
        assert self._target is not None  # configured
        claimed = await self.outbox.claim(self._batch, self._lease)
        return await self._deliver(self._target, claimed) if claimed else 0

    async def _deliver(self, target: SmtpTarget, claimed: list[Message]) -> int:
        """Send a batch over one connection; whatever fails goes back with back-off."""
        client = aiosmtplib.SMTP(
            hostname=target.hostname, port=target.port, username=target.username,
            password=target.password, use_tls=target.use_tls, start_tls=target.start_tls,
            timeout=self._timeout, local_hostname=self._local_hostname,
        )
        try:
            async with asyncio.timeout(self._step):
                await client.connect()
        except Exception as exc:  # noqa: BLE001 - any failure only delays the batch
            client.close()
            for message in claimed:
                await self._failed(message, exc)
            return 0
        sent = 0
        try:
            for index, message in enumerate(claimed):
                try:
                    async with asyncio.timeout(self._step):
                        await client.send_message(self._email(message))
                except Exception as exc:  # noqa: BLE001 - refused, timed out, disconnected
                    await self._failed(message, exc)
                    if not client.is_connected:
                        for rest in claimed[index + 1:]:
                            await self._failed(rest, exc)
                        break
                    continue
                await self.outbox.mark_sent(message)
                sent += 1
                log.info("mail %s sent (%s)", message.id, message.kind)
        finally:
            await self._close(client)
        return sent

    async def _failed(self, message: Message, exc: BaseException) -> None:
        await self.failed(message, exc)

    async def _close(self, client: aiosmtplib.SMTP) -> None:
        """QUIT politely if the server still answers; never wait long for it.

        The connection is closed whatever happens, a cancellation too (a node stopping
        while the server dawdles over QUIT): aiosmtplib closes it only when QUIT is
        answered or fails, and an open one would stay open until the process exits.
        """
        try:
            if client.is_connected:
                async with asyncio.timeout(self._timeout):
                    await client.quit()
        except Exception:  # noqa: BLE001, S110 - the mail is out; a rude server changes nothing
            pass
        finally:
            client.close()

    def _email(self, message: Message) -> EmailMessage:
        mail = EmailMessage()
        sender = self._from or ""
        domain = parseaddr(sender)[1].rpartition("@")[2] or "localhost"
        mail["From"] = sender
        mail["To"] = message.to
        mail["Subject"] = message.subject
        mail["Date"] = formatdate(usegmt=True)
        # Stable across retries, so a mail delivered twice (a lost acknowledgement) is one.
        mail["Message-ID"] = f"<{message.id}@{domain}>"
        mail["Content-Language"] = "nl, en"
        mail["Auto-Submitted"] = "auto-generated"
        mail.set_content(message.text)
        if message.html:
            mail.add_alternative(message.html, subtype="html")
        return mail
