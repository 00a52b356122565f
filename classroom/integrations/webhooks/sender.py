"""The webhook worker: posts due deliveries to each tenant's back end, signed.

One background task per node (the shared loop of
:class:`~classroom.integrations.outbox.OutboxWorker`). A batch is posted concurrently,
each post bounded by a short timeout, so one slow back end delays its own deliveries
and not the others'. Only a 2xx answer counts as delivered; anything else (an error
status, a redirect, a timeout, a refused connection, a tenant without a webhook URL
any more) goes back to the outbox with back-off and becomes a dead letter after the
outbox's ``max_attempts``. The URL and secret are read from the tenant at each attempt,
so a rotated secret applies to retries. Logs name delivery ids and error labels only.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable

import httpx

from auth.tenants import TenantRegistry
from classroom.integrations.outbox import OutboxWorker
from classroom.integrations.webhooks.delivery import Delivery, WebhookOutbox
from classroom.integrations.webhooks.signing import secret_key, signed_headers

log = logging.getLogger("classroom.integrations.webhooks")


class WebhookRejected(Exception):  # noqa: N818 - reads as what happened
    """The back end answered, but not with 2xx; kept as ``HTTP <status>``."""

    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.outbox_label = f"HTTP {status}"


class WebhookNotConfigured(Exception):  # noqa: N818 - reads as what happened
    """The tenant has no webhook URL and secret (any more): the delivery waits."""


class WebhookSender(OutboxWorker[Delivery]):
    """Background delivery: ``start()``, ``submit()`` or ``wake()``, ``stop()`` at shutdown."""

    name = "webhook"
    log = log

    def __init__(
        self, outbox: WebhookOutbox, tenants: TenantRegistry, *, timeout: float = 5.0,
        poll_interval: float = 5.0, batch: int = 20,
        on_depth: Callable[[int], None] | None = None,
        on_dead: Callable[[int], None] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(outbox, poll_interval=poll_interval, batch=batch,
                         stop_timeout=timeout * 2, on_depth=on_depth, on_dead=on_dead)
        self._tenants = tenants
        self._timeout = timeout
        self._lease = timeout * 2 + 30.0  # longer than one attempt can take: one node at a time
        self._clock = clock

    @property
    def configured(self) -> bool:
        """Always: whether a delivery can leave depends on its tenant's settings."""
        return True

    async def submit(self, deliveries: Iterable[Delivery]) -> int:
        """Enqueue deliveries and wake the worker; how many were new (not deduplicated)."""
        queued = 0
        for item in deliveries:
            queued += await self.outbox.enqueue(item)
        if queued:
            self.wake()
        return queued

    async def run_once(self) -> int:
        """Claim due deliveries and post them, concurrently; how many were accepted."""
        claimed = await self.outbox.claim(self._batch, self._lease)
        if not claimed:
            return 0
        async with httpx.AsyncClient(timeout=self._timeout, follow_redirects=False,
                                     trust_env=False) as client:
            done = await asyncio.gather(*(self._post(client, item) for item in claimed),
                                        return_exceptions=True)  # e.g. Redis down at mark_sent
        return sum(1 for ok in done if ok is True)

    async def _post(self, client: httpx.AsyncClient, item: Delivery) -> bool:
        try:
            async with asyncio.timeout(self._timeout * 2):  # httpx's is per phase
                await self._attempt(client, item)
        except Exception as exc:  # noqa: BLE001 - any failure only delays the delivery
            await self.failed(item, exc)
            return False
        await self.outbox.mark_sent(item)
        log.info("webhook %s delivered (%s)", item.id, item.type)
        return True

    async def _attempt(self, client: httpx.AsyncClient, item: Delivery) -> None:
        tenant = self._tenants.get(item.tenant)
        if tenant is None or not tenant.webhook_url or not tenant.webhook_secret:
            raise WebhookNotConfigured
        body = item.body.encode()
        headers = signed_headers(secret_key(tenant.webhook_secret), item.webhook_id,
                                 int(self._clock()), body)
        answer = await client.post(tenant.webhook_url, content=body, headers=headers)
        if not 200 <= answer.status_code < 300:
            raise WebhookRejected(answer.status_code)
