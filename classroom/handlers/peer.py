"""The narrow view of a client connection that command handlers see."""

from __future__ import annotations

from typing import Any, Protocol

from auth.identity import Identity
from classroom.protocol.codec import Payload
from classroom.sessions.hub import Membership, Recipient


class Peer(Recipient, Protocol):
    """A client as the handlers see it: who it is, what it joined, how to answer it."""

    identity: Identity | None
    """Set once ``connect`` succeeded (:meth:`authenticated`)."""

    memberships: dict[str, Membership]
    """The sessions it joined, by session id."""

    @property
    def closing(self) -> bool:
        """Whether the connection is closing: nothing more will be written to it."""

    def send(self, frame: dict[str, Any]) -> None:
        """Encode and queue one frame for this client; never blocks."""

    def send_replay(self, payloads: list[Payload]) -> None:
        """Queue a join's replay of history, which the history size bounds, not the send bound."""

    def authenticated(self, identity: Identity) -> None:
        """``connect`` succeeded: remember the identity, and close when its token expires."""

    def request_close(self, code: int, reason: str) -> None:
        """Close after what is queued, with ``code``; stop reading."""
