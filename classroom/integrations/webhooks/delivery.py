"""One webhook event for one tenant, as the outbox holds it until the back end takes it."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Self

from classroom.integrations.outbox import Item, MemoryOutbox, Outbox, RedisOutbox


@dataclass(frozen=True, slots=True, kw_only=True)
class Delivery(Item):
    """An event (``type``) and the exact JSON body every attempt signs and posts.

    The body is built once, at the event, so every retry carries the same bytes under
    the same ``webhook-id`` (the item id). It may hold personal data for the back end
    (the controller), so it stays out of ``repr`` and is not kept once delivered.
    """

    type: str
    body: str = field(repr=False)

    @property
    def webhook_id(self) -> str:
        """The ``webhook-id`` header: ``msg_`` and the item id, the same on every attempt."""
        return "msg_" + self.id

    def as_sent(self, at: float) -> Self:
        """Delivered: the back end holds the data now; keep only that it went."""
        return replace(self, sent_at=at, body="")

    def describe(self, sub: str) -> dict[str, Any]:
        """What an export shows: the event's type and fate, not the body (others' data)."""
        return {**Item.describe(self, sub), "type": self.type}


WebhookOutbox = Outbox[Delivery]
"""The webhook queue's interface."""


class MemoryWebhookOutbox(MemoryOutbox[Delivery]):
    """The embedded default (one process): lost on restart, like the memory broker."""


class RedisWebhookOutbox(RedisOutbox[Delivery]):
    """Shared by every node, under ``<prefix>:webhooks:``."""

    def __init__(self, url: str, *, prefix: str = "classroom", **options: Any) -> None:
        super().__init__(url, item_type=Delivery, namespace="webhooks", prefix=prefix,
                         **options)
