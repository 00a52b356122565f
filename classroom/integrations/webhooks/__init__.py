"""Signed webhooks to the tenant's back end (Standard Webhooks).

A tenant with ``webhook_url`` and ``webhook_secret`` is posted ``session.started``,
``session.ended``, ``user.erased`` and ``attendance.updated``, from the shared durable
outbox (memory, or Redis when ``REDIS_URL`` is set): at least once, with back-off,
one node at a time, each event enqueued once; deliveries that fail
``CLASSROOM_WEBHOOK_MAX_ATTEMPTS`` times are dead letters the tenant can see and
put back through the server API.
"""

from __future__ import annotations

from collections.abc import Callable

from classroom.config import Settings
from classroom.integrations.webhooks.delivery import (
    Delivery,
    MemoryWebhookOutbox,
    RedisWebhookOutbox,
    WebhookOutbox,
)
from classroom.integrations.webhooks.emitter import Webhooks
from classroom.integrations.webhooks.events import EVENT_TYPES
from classroom.integrations.webhooks.sender import WebhookSender

__all__ = [
    "EVENT_TYPES",
    "Delivery",
    "MemoryWebhookOutbox",
    "RedisWebhookOutbox",
    "WebhookOutbox",
    "WebhookSender",
    "Webhooks",
    "webhooks_from_settings",
]


def webhooks_from_settings(
    settings: Settings, *, on_depth: Callable[[int], None] | None = None,
    on_dead: Callable[[int], None] | None = None,
) -> WebhookSender:
    """The deployment's webhook outbox (Redis when configured) and its sender, not started."""
    redis_url = settings.redis_url
    options = {"max_attempts": settings.webhook_max_attempts}
    outbox: WebhookOutbox
    if redis_url and not redis_url.startswith("memory://"):
        outbox = RedisWebhookOutbox(redis_url, prefix=settings.redis_prefix,
                                    **options)
    else:
        outbox = MemoryWebhookOutbox(**options)
    return WebhookSender(outbox, settings.load_tenants(), timeout=settings.webhook_timeout,
                         on_depth=on_depth, on_dead=on_dead)
