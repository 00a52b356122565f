"""When the client comes back after a dropped connection, and when it must not.

Kept out of the client's event loop so the policy reads in one place: exponential
back-off with jitter (so thirty clients do not hammer a restarted server in the same
millisecond), a little extra patience for a restarting server, and which closes end
the client for good because coming back cannot help.
"""

from __future__ import annotations

import random

from classroom.client.wire import Frame

FINAL_CLOSE_CODES = frozenset({1000, 4401, 4403})
"""Closes after which coming back cannot help (ended, refused, erased or disconnected)."""
SERVICE_RESTART = 1012
"""The close a server sends when it restarts: it needs a moment to listen again."""
TOKEN_EXPIRED = 4401
MAX_DOUBLINGS = 60
"""Past this many doublings any ceiling is reached (2**60 times the first delay)."""
RESTART_GRACE = 1.0
"""Seconds added to the back-off after a :data:`SERVICE_RESTART`."""


class Backoff:
    """The delay before each reconnect attempt: it doubles per failed attempt up to a
    ceiling, jittered, and starts again from the bottom after a success."""

    def __init__(self, initial: float, most: float) -> None:
        self.initial = initial
        self.most = most
        self._attempt = 0

    def next_delay(self, close_code: int) -> float:
        """The wait before the next attempt after a connection closed with ``close_code``."""
        self._attempt += 1
        # The exponent stops growing where the ceiling is long reached: 2.0 ** 1024 is no
        # float, and a day-long outage is thousands of attempts.
        doublings = min(self._attempt - 1, MAX_DOUBLINGS)
        ceiling: float = min(self.most, self.initial * 2.0 ** doublings)
        delay = random.uniform(0.5, 1.0) * ceiling  # noqa: S311 - jitter, not a secret
        if close_code == SERVICE_RESTART:
            delay += RESTART_GRACE
        return delay

    def reset(self) -> None:
        """A connection succeeded: the next drop starts from the shortest delay."""
        self._attempt = 0


def ends_the_client(close_code: int, disconnect_notice: Frame | None, *,
                    token_renewable: bool) -> bool:
    """Whether a close ends the client: the server said not to come back (its last
    ``disconnect`` push), or the code says so. A 4401 for an expired token is not, when
    the server said to come back and a fresh token can be had (``token_renewable``)."""
    if disconnect_notice is not None and disconnect_notice.get("reconnect") is False:
        return True
    if close_code == TOKEN_EXPIRED:
        return (not token_renewable or disconnect_notice is None
                or not disconnect_notice.get("reconnect"))
    return close_code in FINAL_CLOSE_CODES
