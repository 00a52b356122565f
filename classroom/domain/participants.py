"""Participants: a user as seen inside one session, with a pseudonymous id.

The ``pid`` is a keyed hash of (tenant, session, sub): stable within one session,
different across sessions, and not derivable from ``sub`` without the server's
secret. It is the only identifier that appears in logs.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from typing import Any

from auth.identity import PROFILE_FIELDS, Identity, Role
from auth.tenants import DisplayName, Tenant

DisplayNamePolicy = DisplayName
"""How much of a name others see: ``full``, ``first`` or ``none`` (a tenant setting)."""

DEFAULT_DISPLAY_NAME_POLICY: DisplayNamePolicy = "first"


def make_pid(secret: bytes, tenant: str, session: str, sub: str) -> str:
    """Derive the pseudonymous id of ``sub`` in ``session`` (22 url-safe characters)."""
    message = "\x1f".join((tenant, session, sub)).encode()
    digest = hmac.new(secret, message, hashlib.sha256).hexdigest()
    return "p" + digest[:21]


def display_name_policy(tenant: Tenant | None) -> DisplayNamePolicy:
    """The tenant's display-name policy; the default for a tenant no longer configured."""
    return tenant.display_name if tenant is not None else DEFAULT_DISPLAY_NAME_POLICY


def display_name_for(name: str | None, policy: DisplayNamePolicy) -> str | None:
    """Apply the tenant's display-name policy to a full name."""
    if not name or policy == "none":
        return None
    if policy == "full":
        return name.strip() or None
    words = name.split()
    return words[0] if words else None


@dataclass(frozen=True, slots=True)
class Participant:
    """Everything the server knows of one user in one session.

    Never sent as is: ``classroom.domain.views`` decides what each recipient sees.
    """

    pid: str
    role: Role
    sub: str
    name: str | None = None
    email: str | None = None
    phone: str | None = None
    username: str | None = None
    display_name: str | None = None

    def __repr__(self) -> str:
        """Keep personal data out of tracebacks and logs that print this object."""
        return f"Participant(pid={self.pid!r}, role={self.role!r})"

    def to_record(self) -> dict[str, Any]:
        """Serialise for storage (history, presence); ``None`` fields are left out."""
        record: dict[str, Any] = {"pid": self.pid, "role": self.role, "sub": self.sub}
        for key in (*PROFILE_FIELDS, "display_name"):
            value = getattr(self, key)
            if value is not None:
                record[key] = value
        return record

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> Participant:
        """Inverse of :meth:`to_record`."""
        optional = {key: record.get(key) for key in (*PROFILE_FIELDS, "display_name")}
        return cls(pid=record["pid"], role=record["role"], sub=record.get("sub", ""), **optional)


def participant_for(
    identity: Identity, session: str, secret: bytes, policy: DisplayNamePolicy
) -> Participant:
    """Build the participant of ``identity`` in ``session``."""
    return Participant(
        pid=make_pid(secret, identity.tenant, session, identity.sub),
        role=identity.role,
        sub=identity.sub,
        **{key: getattr(identity, key) for key in PROFILE_FIELDS},
        display_name=display_name_for(identity.name, policy),
    )


def profile_of(identity: Identity, policy: DisplayNamePolicy) -> dict[str, Any]:
    """What a user is told about themselves (``connected.me``): all the token vouched for."""
    profile: dict[str, Any] = {
        "tenant": identity.tenant,
        "sub": identity.sub,
        "role": identity.role,
        "sessions": sorted(identity.sessions),
    }
    for key in PROFILE_FIELDS:
        value = getattr(identity, key)
        if value is not None:
            profile[key] = value
    display_name = display_name_for(identity.name, policy)
    if display_name is not None:
        profile["display_name"] = display_name
    return profile
