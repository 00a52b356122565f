"""Every live connection of this node, by user: for the drain on shutdown and the server API."""

from __future__ import annotations

from typing import Protocol

from auth.identity import Identity
from classroom.protocol.close_codes import CLOSE_RESTART


class Registered(Protocol):
    """A connection as the registry sees it."""

    identity: Identity | None

    def disconnect(self, code: int, reason: str, *, reconnect: bool) -> None:
        """Tell the client why it goes, then close."""


class ConnectionRegistry:
    """Tracks accepted connections, and files authenticated ones under their user."""

    def __init__(self) -> None:
        self._all: set[Registered] = set()
        self._by_user: dict[tuple[str, str], set[Registered]] = {}
        self.draining = False

    def add(self, connection: Registered) -> None:
        """Track a newly accepted connection."""
        self._all.add(connection)

    def index(self, connection: Registered) -> None:
        """File a connection under its user once it has authenticated."""
        identity = connection.identity
        if identity is not None:
            self._by_user.setdefault((identity.tenant, identity.sub), set()).add(connection)

    def discard(self, connection: Registered) -> None:
        """Forget a closed connection."""
        self._all.discard(connection)
        identity = connection.identity
        if identity is not None:
            key = (identity.tenant, identity.sub)
            users = self._by_user.get(key)
            if users is not None:
                users.discard(connection)
                if not users:
                    del self._by_user[key]

    def of_user(self, tenant: str, sub: str) -> list[Registered]:
        """A user's connections on this node."""
        return list(self._by_user.get((tenant, sub), ()))

    def __len__(self) -> int:
        return len(self._all)

    def drain(self, reason: str) -> None:
        """Tell every client to reconnect elsewhere (1012) and close them."""
        self.draining = True
        for connection in list(self._all):
            connection.disconnect(CLOSE_RESTART, reason, reconnect=True)
