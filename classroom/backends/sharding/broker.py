"""A broker over several brokers (one per Redis), each channel living on exactly one.

The shard of a channel is chosen by rendezvous hashing of the shards' identities,
so every node agrees without coordination and adding a shard moves only ~1/N of
the channels. A channel's offsets, history and pub/sub stay on one Redis, so the
ordering and recovery guarantees of the ``Broker`` contract hold per channel; an
unreachable shard makes only its own channels ``BrokerUnavailable``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence

from classroom.backends.broker.base import (
    Broker,
    HistoryResult,
    Publication,
    PublicationHandler,
    PublishResult,
    RememberedPublish,
    StreamPosition,
)
from classroom.backends.sharding.rendezvous import checked_shards, choose


class ShardedBroker:
    """The ``Broker`` that routes each channel to one of ``shards`` by rendezvous hashing."""

    def __init__(self, shards: Sequence[Broker], identities: Sequence[str]) -> None:
        self.shards: tuple[Broker, ...] = checked_shards("broker", shards, identities)
        self.identities: tuple[str, ...] = tuple(identities)
        self.on_reconnect: Callable[[], None] | None = None
        for shard in self.shards:
            shard.on_reconnect = self._shard_reconnected

    def shard_for(self, channel: str) -> int:
        """Index in ``shards`` of the broker that owns ``channel``; the same on every node."""
        return choose(self.identities, channel)

    def _shard(self, channel: str) -> Broker:
        return self.shards[self.shard_for(channel)]

    def _shard_reconnected(self) -> None:
        """A shard came back: forward, so the node catches up (on every channel, harmlessly)."""
        if self.on_reconnect is not None:
            self.on_reconnect()

    async def start(self, handler: PublicationHandler) -> None:
        """Start every shard with the one handler; each channel reaches it from its shard only."""
        await asyncio.gather(*(shard.start(handler) for shard in self.shards))

    async def close(self) -> None:
        """Close every shard, even if one fails; the first failure is raised afterwards."""
        results = await asyncio.gather(
            *(shard.close() for shard in self.shards), return_exceptions=True
        )
        for result in results:
            if isinstance(result, BaseException):
                raise result

    async def subscribe(self, channel: str) -> None:
        """Subscribe on the channel's shard, the only one that publishes it."""
        await self._shard(channel).subscribe(channel)

    async def unsubscribe(self, channel: str) -> None:
        """Unsubscribe on the channel's shard."""
        await self._shard(channel).unsubscribe(channel)

    async def publish(
        self,
        channel: str,
        data: bytes,
        *,
        stored: bool = True,
        idempotency_key: str | None = None,
        fingerprint: str | None = None,
    ) -> PublishResult:
        """Publish on the channel's shard, which keeps its offsets and idempotency keys."""
        return await self._shard(channel).publish(
            channel, data, stored=stored, idempotency_key=idempotency_key,
            fingerprint=fingerprint,
        )

    async def recall(self, channel: str, idempotency_key: str) -> RememberedPublish | None:
        """Look the key up on the channel's shard, where the publish stored it."""
        return await self._shard(channel).recall(channel, idempotency_key)

    async def history(
        self,
        channel: str,
        *,
        since: StreamPosition | None = None,
        limit: int | None = None,
    ) -> HistoryResult:
        """Read history from the channel's shard."""
        return await self._shard(channel).history(channel, since=since, limit=limit)

    async def retain(self, channel: str, ttl: float) -> None:
        """Retain the stream on the channel's shard."""
        await self._shard(channel).retain(channel, ttl)

    async def retention(self, channel: str) -> float | None:
        """Seconds left of the retained stream on the channel's shard."""
        return await self._shard(channel).retention(channel)

    async def rewrite(
        self, channel: str, replacements: dict[int, bytes], *, epoch: str | None = None
    ) -> int:
        """Rewrite retained publications on the channel's shard, the only one holding them."""
        return await self._shard(channel).rewrite(channel, replacements, epoch=epoch)

    async def position(self, channel: str) -> StreamPosition:
        """The channel's position on its shard."""
        return await self._shard(channel).position(channel)

    async def ready(self) -> bool:
        """Whether every shard is reachable: a node missing one cannot serve all sessions."""
        answers = await asyncio.gather(*(shard.ready() for shard in self.shards))
        return all(answers)

    async def read_page(self, channel: str, *, after: int, limit: int) -> list[Publication]:
        """Read a page of the channel's stream from its shard."""
        return await self._shard(channel).read_page(channel, after=after, limit=limit)
