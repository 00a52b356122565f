"""The embedded presence store: one process, nothing kept for empty channels."""

from __future__ import annotations

from dataclasses import dataclass, field

from presence.store import PresenceEntry


@dataclass
class _Channel:
    """Connections of one channel: users in first-join order, each user's clients newest last."""

    users: dict[str, dict[str, bytes]] = field(default_factory=dict)
    owners: dict[str, str] = field(default_factory=dict)

    def newest(self, user: str) -> PresenceEntry:
        """The user's most recently added connection."""
        client, info = next(reversed(self.users[user].items()))
        return PresenceEntry(client, user, info)


class MemoryPresenceStore:
    """The ``PresenceStore`` of a single process."""

    def __init__(self) -> None:
        self._channels: dict[str, _Channel] = {}

    async def add(self, channel: str, client: str, user: str, info: bytes) -> bool:
        """Record a connection; True iff it is the user's first in ``channel``."""
        room = self._channels.setdefault(channel, _Channel())
        owner = room.owners.get(client)
        if owner is not None and owner != user:
            raise ValueError("this client id is already present as another user")
        connections = room.users.get(user)
        first = connections is None
        if connections is None:
            connections = room.users[user] = {}
        connections.pop(client, None)
        connections[client] = info
        room.owners[client] = user
        return first

    async def remove(self, channel: str, client: str) -> PresenceEntry | None:
        """Drop a connection; its entry iff it was the user's last in ``channel``."""
        room = self._channels.get(channel)
        user = room.owners.pop(client, None) if room is not None else None
        if room is None or user is None:
            return None
        connections = room.users[user]
        info = connections.pop(client)
        if connections:
            return None
        del room.users[user]
        self._forget_if_empty(channel, room)
        return PresenceEntry(client, user, info)

    async def remove_many(self, channel: str, clients: list[str]) -> list[PresenceEntry | None]:
        """``remove`` for each client in turn."""
        return [await self.remove(channel, client) for client in clients]

    async def participants(self, channel: str) -> list[PresenceEntry]:
        """One entry per user, the newest connection's, in first-join order."""
        room = self._channels.get(channel)
        return [room.newest(user) for user in room.users] if room is not None else []

    async def clients(self, channel: str, user: str) -> list[str]:
        """The user's connection ids in ``channel``, oldest first."""
        room = self._channels.get(channel)
        return list(room.users.get(user, ())) if room is not None else []

    async def remove_user(self, channel: str, user: str) -> PresenceEntry | None:
        """Drop all of a user's connections; their newest entry if there were any."""
        room = self._channels.get(channel)
        if room is None or user not in room.users:
            return None
        entry = room.newest(user)
        for client in room.users.pop(user):
            del room.owners[client]
        self._forget_if_empty(channel, room)
        return entry

    async def touch(self, channel: str, clients: list[str]) -> None:
        """Nothing to do: entries of one process never expire."""

    async def sweep(self, channel: str) -> list[PresenceEntry]:
        """Nothing expires in one process, so nobody is swept."""
        return []

    def forget_cached(self) -> None:
        """Nothing is kept beside the entries themselves."""

    def forget_channel(self, channel: str) -> None:
        """Nothing is kept beside the entries themselves."""

    async def close(self) -> None:
        """Forget every connection."""
        self._channels.clear()

    def _forget_if_empty(self, channel: str, room: _Channel) -> None:
        if not room.users:
            del self._channels[channel]
