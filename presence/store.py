"""The presence contract: who is connected to which channel, counted once per user."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class PresenceEntry:
    """One connection of a user in a channel, with the opaque info shown to others."""

    client: str
    user: str
    info: bytes


class PresenceUnavailable(Exception):  # noqa: N818 - mirrors the broker's BrokerUnavailable
    """The backend cannot be reached, so callers can answer ``unavailable`` and carry on."""


class PresenceStore(Protocol):
    """Connections per channel, so joins and leaves are announced once per user.

    A user with several connections (tabs, devices) is one participant: joined at
    their first connection, left at their last. Memory or Redis behind one contract.
    """

    async def add(self, channel: str, client: str, user: str, info: bytes) -> bool:
        """Record a connection; True iff it is the user's first live one in ``channel``.

        Re-adding a present client replaces its info, makes it the user's newest
        connection and returns False. A client id belongs to one user: re-adding it
        under another user raises ``ValueError``.
        """
        ...

    async def remove(self, channel: str, client: str) -> PresenceEntry | None:
        """Drop a connection; its entry iff it was the user's last, so a leave is announced.

        None when the user still has other connections, or the client is unknown.
        """
        ...

    async def remove_many(self, channel: str, clients: list[str]) -> list[PresenceEntry | None]:
        """``remove`` for each of ``clients`` in turn, in one step; an answer per client.

        A user with several of these connections is left (their entry returned) at
        the last of them. On Redis it is one round trip, for a storm's leaves.
        """
        ...

    async def participants(self, channel: str) -> list[PresenceEntry]:
        """One entry per user, the newest connection's, in order of the users' first join."""
        ...

    async def clients(self, channel: str, user: str) -> list[str]:
        """The user's live connection ids in ``channel``, oldest first."""
        ...

    async def remove_user(self, channel: str, user: str) -> PresenceEntry | None:
        """Drop all of a user's connections (erasure); their newest entry if there were any."""
        ...

    async def touch(self, channel: str, clients: list[str]) -> None:
        """Heartbeat: keep these live connections from expiring; unknown ones are ignored."""
        ...

    async def sweep(self, channel: str) -> list[PresenceEntry]:
        """Drop expired connections; one entry per user left with none, for their leave.

        Across every store sharing the backend, each such user is returned exactly once.
        """
        ...

    def forget_cached(self) -> None:
        """Drop whatever the store keeps parsed in memory (an erasure leaves nothing behind)."""
        ...

    def forget_channel(self, channel: str) -> None:
        """Drop what the store keeps parsed of ``channel``: this node no longer serves it."""
        ...

    async def close(self) -> None:
        """Release the backend."""
        ...
