"""Optional parts of the protocol a client announces on ``connect`` (``features``).

A client that announces nothing gets exactly the frames it got before features
existed, so old clients keep working; a name this server does not know is
ignored, so a new client can talk to an old server (section 3 of protocol.md).
"""

from __future__ import annotations

from collections.abc import Iterable

PRESENCE_DIFF = "presence.diff"
"""Presence changes coalesced per window (``presence.diff`` / ``presence.count``)
instead of one ``presence.join`` / ``presence.leave`` per person per member."""

POLL_TALLY_COALESCED = "poll.tally.coalesced"
"""At most one ``poll.tally`` per session per window, standing for every answer since the
last one (``coalesced_from``), instead of one per answer per member."""

KNOWN_FEATURES: frozenset[str] = frozenset({PRESENCE_DIFF, POLL_TALLY_COALESCED})
MAX_FEATURES = 16
"""Names a ``connect`` may announce: enough for years of additions, bounded all the same."""
MAX_FEATURE_CHARS = 64


def accepted_features(announced: Iterable[str] | None) -> list[str]:
    """The announced features this server turns on, in the client's order, once each."""
    return list(dict.fromkeys(name for name in announced or () if name in KNOWN_FEATURES))
