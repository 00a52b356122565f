"""Which wire protocol the simulated users speak, behind one small interface.

The behaviour (``behaviour.py``), the lifecycle and the worker only ever use a
:class:`UserConnection`; three drivers implement it:

- ``classroom``: our protocol (``docs/protocol.md``), :class:`loadtests.client.SimUser`;
- ``socketio``: the python-socketio reference server (``loadtests/reference/``),
  through python-socketio's own ``AsyncClient``;
- ``raw``: the bare ``websockets`` broadcast server of ``loadtests/ceiling.py``.

Drivers are imported when first used, so ``python -m loadtests run`` against our
server needs neither python-socketio nor aiohttp.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, Protocol

from loadtests.client import Recorder
from loadtests.plan import User, WorkerPlan

DRIVERS = ("classroom", "socketio", "raw")
Frame = dict[str, Any]


class UserConnection(Protocol):
    """One simulated user's (re)connecting link to the server, whatever it speaks."""

    user: User
    plan: WorkerPlan
    rec: Recorder
    online: bool  # connected (and joined, when the run joins)
    lost: asyncio.Event  # set when the current connection ended, for whatever reason
    poll: str | None  # the open poll, as far as this user has seen
    pointers_on: bool  # whether students may point in the session now (a session option)
    on_poll_open: Callable[[str], None] | None

    async def open(self) -> bool:
        """Connect (and join); False when that failed."""

    async def close(self) -> None:
        """Close on purpose (a reconnect, a storm or the end of the run)."""

    async def send(self, kind: str, **fields: Any) -> int | None:
        """Send a command without waiting for its reply; None when not connected."""

    async def request(self, kind: str, **fields: Any) -> Frame | None:
        """Send a command and wait for its reply; None when there was none."""

    def pause(self) -> None:
        """Stop reading (slow-reader scenarios)."""

    async def drain(self, timeout: float) -> None:
        """Read again until the connection ends (or ``timeout``)."""


def make_user(user: User, plan: WorkerPlan, recorder: Recorder) -> UserConnection:
    """The driver the plan names, for ``user``."""
    if plan.driver == "classroom":
        from loadtests.client import SimUser

        return SimUser(user, plan, recorder)
    if plan.driver == "socketio":
        from loadtests.reference.client import SocketIOUser

        return SocketIOUser(user, plan, recorder)
    if plan.driver == "raw":
        from loadtests.ceiling import RawUser

        return RawUser(user, plan, recorder)
    raise ValueError(f"unknown driver {plan.driver!r}; choose from {', '.join(DRIVERS)}")
