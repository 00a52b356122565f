"""What a Redis broker last saw of each channel it listens to: the proof a failover may break.

Replication is asynchronous, so a promoted replica can lack the newest entries
of a stream while its counter says nothing is wrong. Each node remembers the
newest stored publication it saw per subscribed channel and hands it to the
scripts, which start a new epoch when the stream cannot prove it still holds
it (``redis_scripts.PRELUDE``, ``proven``).
"""

from __future__ import annotations

import hashlib


class _Seen:
    """One channel's newest stored publication; its digest is made the first time it is asked.

    Every node sees every publication of its channels but calls a script far
    less often, so hashing on delivery would be work on the hot path for nothing.
    """

    __slots__ = ("_data", "_digest", "epoch", "offset")

    def __init__(self, offset: int, epoch: str, data: bytes) -> None:
        self.offset = offset
        self.epoch = epoch
        self._data: bytes | None = data
        self._digest = ""

    def digest(self) -> str:
        """The SHA-1 of the data, as Lua's ``redis.sha1hex`` gives it."""
        if self._data is not None:
            self._digest = hashlib.sha1(self._data).hexdigest()  # noqa: S324
            self._data = None
        return self._digest


class SeenPositions:
    """Per channel in ``listening``, the newest stored publication seen; bounded by them."""

    __slots__ = ("_listening", "_newest")

    def __init__(self, listening: set[str]) -> None:
        self._listening = listening  # the broker's own set of subscribed channels
        self._newest: dict[str, _Seen] = {}

    def saw(self, channel: str, offset: int, epoch: str, data: bytes) -> None:
        """Remember a stored publication of a subscribed channel as its newest, if it is."""
        if channel not in self._listening:
            return
        known = self._newest.get(channel)
        if known is None or known.epoch != epoch or known.offset < offset:
            self._newest[channel] = _Seen(offset, epoch, data)

    def script_args(self, channel: str) -> list[str | int]:
        """The newest position seen of ``channel`` as script arguments (0, "", "": none)."""
        seen = self._newest.get(channel)
        if seen is None:
            return [0, "", ""]
        return [seen.offset, seen.epoch, seen.digest()]

    def forget(self, channel: str) -> None:
        """Drop a channel no longer listened to."""
        self._newest.pop(channel, None)
