"""E-mail: invitations when a roster is set, summaries to trainers when a session ends.

Mail goes through an outbox (memory, or Redis when ``REDIS_URL`` is set) and a
background sender, so an unreachable SMTP server delays mail and never loses it or
holds up a request.
"""

from __future__ import annotations

from collections.abc import Callable

from classroom.backends.sharding.rendezvous import first_url
from classroom.config import Settings
from classroom.integrations.mail.outbox import (
    Backoff,
    MailOutbox,
    MemoryMailOutbox,
    Message,
    RedisMailOutbox,
)
from classroom.integrations.mail.sender import MailSender, SmtpTarget, parse_smtp_url
from classroom.integrations.mail.templates import invitations, summaries

__all__ = [
    "Backoff",
    "MailOutbox",
    "MailSender",
    "MemoryMailOutbox",
    "Message",
    "RedisMailOutbox",
    "SmtpTarget",
    "invitations",
    "mail_from_settings",
    "parse_smtp_url",
    "summaries",
]


def mail_from_settings(
    settings: Settings, *, on_depth: Callable[[int], None] | None = None
) -> tuple[MailOutbox, MailSender]:
    """The outbox for the deployment (Redis when configured) and its sender, not yet started.

    ``on_depth`` gets the queue depth after every pass of the sender (a metrics gauge).
    """
    redis_url = settings.redis_url
    outbox: MailOutbox
    if redis_url and not redis_url.startswith("memory://"):
        outbox = RedisMailOutbox(first_url(redis_url), prefix=settings.redis_prefix)
    else:
        outbox = MemoryMailOutbox()
    sender = MailSender(outbox, smtp_url=settings.smtp_url, mail_from=settings.mail_from,
                        on_depth=on_depth)
    return outbox, sender
