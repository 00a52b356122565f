"""The mail outbox: messages wait here until an SMTP server takes them.

The queue itself is the shared durable outbox (:mod:`classroom.integrations.outbox`:
leases, back-off, dead letters, erasure); this module says what a mail item holds
and keeps the Redis keys mail always had (``<prefix>:mail:``), so nodes of either
version share one queue during a rolling upgrade.

Records of sent mail and dead letters are personal data: they are kept for
``keep_sent`` seconds (seven days by default) after sending or dying, for the export
and for the tenant to see, and dropped on erasure with the queue.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from classroom.integrations.outbox import (
    DAY,
    MAX_ATTEMPTS,
    Backoff,
    Item,
    MemoryOutbox,
    Outbox,
    RedisOutbox,
    is_item_id,
)

__all__ = [
    "DAY",
    "MAX_ATTEMPTS",
    "Backoff",
    "MailKind",
    "MailOutbox",
    "MemoryMailOutbox",
    "Message",
    "RedisMailOutbox",
    "is_message_id",
]

MailKind = Literal["invitation", "summary"]
is_message_id = is_item_id


@dataclass(frozen=True, slots=True, kw_only=True)
class Message(Item):
    """One e-mail to one person; the address and the bodies stay out of ``repr`` (and logs)."""

    kind: MailKind
    to: str = field(repr=False)
    recipient: str = field(repr=False)  # the recipient's sub: only they see the body in an export
    subject: str = field(repr=False)
    text: str = field(repr=False)
    html: str | None = field(default=None, repr=False)

    def describe(self, sub: str) -> dict[str, Any]:
        """What an export shows ``sub``: the address and body only if the mail went to them.

        A summary is about many students; its body and the trainer's address are not
        a student's data, so a student's export names the mail but not its contents.
        """
        view = {**Item.describe(self, sub), "kind": self.kind, "subject": self.subject}
        if sub == self.recipient:
            view.update(to=self.to, text=self.text)
        return view


MailOutbox = Outbox[Message]
"""The mail queue's interface."""


class MemoryMailOutbox(MemoryOutbox[Message]):
    """The embedded default (one process): lost on restart, like the memory broker."""


class RedisMailOutbox(RedisOutbox[Message]):
    """Shared by every node, under ``<prefix>:mail:`` (the keys are unchanged)."""

    def __init__(self, url: str, *, prefix: str = "classroom", **options: Any) -> None:
        super().__init__(url, item_type=Message, namespace="mail", prefix=prefix, **options)
