"""Tokens whose signature this node has already checked, so that a reconnect skips it.

When a node restarts or the network blips, thousands of clients reconnect within
seconds with the very token they connected with before. Parsing a JWT twice (once
to choose the key, once to check it) and computing its HMAC is about a tenth of
what a connect and a join cost the node's one core; during such a storm that core
is full, and every member's events wait behind it. A token seen before is
recognised by its exact text, so nobody can make an entry match without having
the token that was verified.

What an entry saves is only the parsing and the signature. The clock (``exp``,
``nbf``, ``iat``) and the tenant's policy (audience, longest life) are checked
again at every use, and an entry counts only while the secret that verified it
is still one its tenant may sign with: a secret retired from the tenant
configuration retires its tokens here too. Whether the user was erased since is
checked in Redis after verification, as before (``not-before``).

The cache is bounded (:data:`CAPACITY` entries, least recently used go first;
tokens longer than :data:`LONGEST_CACHED` characters are not kept), an expired
entry is dropped when next looked at, and :meth:`VerifiedTokens.forget` drops a
user's entries when an erasure or a disconnect command for them reaches the
node: the personal claims a token carries stay no longer than the connections
that presented it need them.
"""

from __future__ import annotations

import collections
from dataclasses import dataclass
from typing import Any

from auth.identity import Identity

CAPACITY = 10_000
"""Entries kept at most: one per live connection of a busy node, with room to spare."""
LONGEST_CACHED = 2048
"""Longer tokens (legal up to 8,192 characters) are verified every time: with them the
cache could hold 80 MB, and a real back end's tokens are a few hundred characters."""


@dataclass(frozen=True, slots=True)
class VerifiedToken:
    """What verification learnt from one token, and what must be checked again at each use."""

    issuer: str
    """The ``iss`` claim: the tenant to look up again."""
    secret: str
    """The secret the signature verified with."""
    kid: str | None
    """The header's ``kid`` (``None`` when absent): the secret must still be the one it names."""
    identity: Identity
    timing: dict[str, Any]
    """The claims checked against the clock and the tenant's policy: ``nbf``, ``iat``, ``aud``."""


class VerifiedTokens:
    """A bounded map from a token's exact text to what verifying it established."""

    def __init__(self, capacity: int = CAPACITY) -> None:
        self._capacity = capacity
        self._entries: collections.OrderedDict[str, VerifiedToken] = collections.OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, token: str) -> VerifiedToken | None:
        """The entry for ``token``, now the most recently used, if it is kept."""
        entry = self._entries.get(token)
        if entry is not None:
            self._entries.move_to_end(token)
        return entry

    def put(self, token: str, entry: VerifiedToken) -> None:
        """Keep ``entry`` for ``token`` (unless it is too long), dropping the oldest if full."""
        if self._capacity <= 0 or len(token) > LONGEST_CACHED:
            return
        self._entries[token] = entry
        self._entries.move_to_end(token)
        while len(self._entries) > self._capacity:
            self._entries.popitem(last=False)

    def discard(self, token: str) -> None:
        """Drop ``token``'s entry (it expired, or its secret was retired)."""
        self._entries.pop(token, None)

    def forget(self, tenant: str, sub: str) -> int:
        """Drop every entry of one user (an erasure or a disconnect); returns how many.

        A walk over the whole cache: such commands are rare, and a per-user index
        would cost every connect more than the walk costs each of them.
        """
        doomed = [token for token, entry in self._entries.items()
                  if entry.identity.tenant == tenant and entry.identity.sub == sub]
        for token in doomed:
            del self._entries[token]
        return len(doomed)

    def clear(self) -> None:
        """Drop every entry."""
        self._entries.clear()
