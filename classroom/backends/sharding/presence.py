"""A presence store over several stores (one per Redis), each channel living on exactly one.

Channels are placed by the same rendezvous hashing as the broker's, so a session's
presence sits on the Redis that holds its stream. Every operation names one
channel, so each goes to one shard and keeps that store's guarantees.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from classroom.backends.sharding.rendezvous import checked_shards, choose
from presence.store import PresenceEntry, PresenceStore


class ShardedPresenceStore:
    """The ``PresenceStore`` that routes each channel to one of ``shards`` by rendezvous hashing."""

    def __init__(self, shards: Sequence[PresenceStore], identities: Sequence[str]) -> None:
        self.shards: tuple[PresenceStore, ...] = checked_shards(
            "presence store", shards, identities
        )
        self.identities: tuple[str, ...] = tuple(identities)

    def shard_for(self, channel: str) -> int:
        """Index in ``shards`` of the store that owns ``channel``; the same on every node."""
        return choose(self.identities, channel)

    def _shard(self, channel: str) -> PresenceStore:
        return self.shards[self.shard_for(channel)]

    async def add(self, channel: str, client: str, user: str, info: bytes) -> bool:
        """Record the connection on the channel's shard, which counts the user's connections."""
        return await self._shard(channel).add(channel, client, user, info)

    async def remove(self, channel: str, client: str) -> PresenceEntry | None:
        """Drop the connection on the channel's shard."""
        return await self._shard(channel).remove(channel, client)

    async def participants(self, channel: str) -> list[PresenceEntry]:
        """The channel's participants, all on its shard."""
        return await self._shard(channel).participants(channel)

    async def clients(self, channel: str, user: str) -> list[str]:
        """The user's connections in ``channel``, from its shard."""
        return await self._shard(channel).clients(channel, user)

    async def remove_user(self, channel: str, user: str) -> PresenceEntry | None:
        """Erase the user from the channel's shard."""
        return await self._shard(channel).remove_user(channel, user)

    async def touch(self, channel: str, clients: list[str]) -> None:
        """Heartbeat on the channel's shard."""
        await self._shard(channel).touch(channel, clients)

    async def sweep(self, channel: str) -> list[PresenceEntry]:
        """Sweep the channel's shard, where its expired connections are."""
        return await self._shard(channel).sweep(channel)

    def forget_cached(self) -> None:
        """Drop what every shard keeps parsed in memory."""
        for shard in self.shards:
            shard.forget_cached()

    async def close(self) -> None:
        """Close every shard, even if one fails; the first failure is raised afterwards."""
        results = await asyncio.gather(
            *(shard.close() for shard in self.shards), return_exceptions=True
        )
        for result in results:
            if isinstance(result, BaseException):
                raise result
