"""The verified identity a connection token carries."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Role = Literal["trainer", "student", "planner", "content_manager"]
ROLES: tuple[Role, ...] = ("trainer", "student", "planner", "content_manager")
PROFILE_FIELDS: tuple[str, ...] = ("name", "email", "phone", "username")
"""The personal data a back end may vouch for (token claims, roster entries, profiles)."""


@dataclass(frozen=True, slots=True)
class Identity:
    """A user as vouched for by the tenant's back end, after the token checked out.

    Personal fields are optional: the back end decides what it shares, and the
    server only shows them as the privacy rules allow.
    """

    tenant: str
    sub: str
    role: Role
    sessions: frozenset[str]
    expires_at: float
    name: str | None = None
    email: str | None = None
    phone: str | None = None
    username: str | None = None
    issued_at: float | None = None
    """The token's ``iat``, when it carried one: what an erasure's not-before is held to."""

    def __repr__(self) -> str:
        """Keep personal data out of tracebacks and logs that print this object."""
        return f"Identity(tenant={self.tenant!r}, role={self.role!r})"
