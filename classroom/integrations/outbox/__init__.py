"""A durable outbox: items wait here until their receiver takes them (mail, webhooks).

At-least-once delivery from memory (one process) or Redis (every node), with leases so
one node holds an item at a time, dedupe keys so an event is enqueued once however
many nodes see it, exponential back-off, dead letters the tenant can revive, and
erasure of everything about a user.
"""

from __future__ import annotations

from classroom.integrations.outbox.backoff import MAX_ATTEMPTS, Backoff
from classroom.integrations.outbox.item import DAY, Item, error_label, is_item_id
from classroom.integrations.outbox.memory import MemoryOutbox
from classroom.integrations.outbox.redis import RedisOutbox
from classroom.integrations.outbox.store import Outbox
from classroom.integrations.outbox.worker import OutboxWorker

__all__ = [
    "DAY",
    "MAX_ATTEMPTS",
    "Backoff",
    "Item",
    "MemoryOutbox",
    "Outbox",
    "OutboxWorker",
    "RedisOutbox",
    "error_label",
    "is_item_id",
]
