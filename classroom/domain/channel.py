"""Sessions as the broker, the hub and presence know them: a tenant's session id, one channel.

The session-id rule lives here once, for the WebSocket commands and the server
API alike; a ``Channel`` carries the tenant and the session together, so no
layer splits a ``"tenant:session"`` string back by hand.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

SESSION_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"
"""A session id: 1 to 128 letters, digits, ``.``, ``_`` or ``-``; a letter or digit first."""

_SESSION_ID = re.compile(SESSION_ID_PATTERN)


def is_session_id(value: str) -> bool:
    """Whether ``value`` is a valid session id, whole (a trailing newline is not)."""
    return _SESSION_ID.fullmatch(value) is not None


@dataclass(frozen=True, slots=True)
class Channel:
    """One tenant's session, and its name on the broker and in presence (``tenant:session``).

    Tenant ids never hold a colon (``auth.tenants.TENANT_ID_PATTERN``), so the name
    splits back unambiguously.
    """

    tenant: str
    session: str
    name: str = field(init=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "name", f"{self.tenant}:{self.session}")

    @classmethod
    def parse(cls, name: str) -> Channel:
        """The channel named ``name``; ``ValueError`` for a name that is not a session's."""
        tenant, colon, session = name.partition(":")
        if not colon or not tenant or not session:
            raise ValueError("not a session channel name")
        return cls(tenant, session)
