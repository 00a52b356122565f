"""The narrow view of a client connection that command handlers see."""

from __future__ import annotations

from collections.abc import Iterable
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

    async def send_replay(
        self, payloads: Iterable[Payload], then: dict[str, Any] | None = None
    ) -> bool:
        """Queue a join's replay, waiting for room in the send bound before each frame.

        ``then`` (the join's reply) follows the replay the same way, so a replay that
        filled the bound does not make its reply overflow it. Yields to the event loop
        as it goes; a client that makes no room in time is closed as too slow (4008).
        False when the connection is closing.
        """

    def replay_allowance(self) -> int:
        """How many stored events this connection may be sent from history now."""

    def spend_replay(self, count: int) -> None:
        """Count ``count`` events sent from history against the allowance."""

    def authenticated(self, identity: Identity) -> None:
        """``connect`` succeeded: remember the identity, and close when its token expires."""

    def reauthenticated(self, identity: Identity) -> None:
        """``refresh`` succeeded: the same user, a new token; its expiry is the new one's."""

    def request_close(self, code: int, reason: str) -> None:
        """Close after what is queued, with ``code``; stop reading."""
