"""E-mail: invitations when a roster is set, summaries to trainers when a session ends.

Mail goes through an outbox (memory, or Redis when ``REDIS_URL`` is set) and a
background sender, so an unreachable SMTP server delays mail and never holds up a
request. Mail that fails ``CLASSROOM_MAIL_MAX_ATTEMPTS`` times is kept as a dead
letter, which the tenant can see and put back through the server API.
"""

from __future__ import annotations

from collections.abc import Callable

from classroom.config import Settings
from classroom.integrations.mail.outbox import (
    Backoff,
    MailOutbox,
    MemoryMailOutbox,
    Message,
    RedisMailOutbox,
    is_message_id,
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
    "is_message_id",
    "mail_from_settings",
    "parse_smtp_url",
    "summaries",
]


def mail_from_settings(
    settings: Settings, *, on_depth: Callable[[int], None] | None = None,
    on_dead: Callable[[int], None] | None = None,
) -> tuple[MailOutbox, MailSender]:
    """The outbox for the deployment (Redis when configured) and its sender, not yet started.

    ``on_depth`` gets the queue depth and ``on_dead`` the number of dead letters after
    every pass of the sender (metrics gauges).
    """
    redis_url = settings.redis_url
    max_attempts = settings.mail_max_attempts
    outbox: MailOutbox
    if redis_url and not redis_url.startswith("memory://"):
        outbox = RedisMailOutbox(redis_url, prefix=settings.redis_prefix,
                                 max_attempts=max_attempts)
    else:
        outbox = MemoryMailOutbox(max_attempts=max_attempts)
    sender = MailSender(outbox, smtp_url=settings.smtp_url, mail_from=settings.mail_from,
                        on_depth=on_depth, on_dead=on_dead)
    return outbox, sender
