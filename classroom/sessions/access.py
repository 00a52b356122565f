"""Who a token lets into which session, and as which participant.

The one place a session is granted (the token's ``sessions`` claim) and a
user's pseudonymous participant is made, with the tenant's display-name policy.
"""

from __future__ import annotations

from auth.identity import Identity
from auth.tenants import TenantRegistry
from classroom.domain.channel import Channel
from classroom.domain.participants import Participant, display_name_policy, participant_for
from classroom.domain.refusals import RequestRefused


class SessionAccess:
    """Grants sessions and makes participants for one deployment's tenants and secret."""

    def __init__(self, tenants: TenantRegistry, secret: bytes) -> None:
        self.tenants = tenants
        self._secret = secret

    def authorise(self, identity: Identity, session: str) -> Channel:
        """The session's channel, if the token grants the session; else ``forbidden``."""
        if session not in identity.sessions:
            raise RequestRefused("forbidden", "this token does not grant that session")
        return Channel(identity.tenant, session)

    def participant(self, identity: Identity, session: str) -> Participant:
        """The identity's participant in ``session``, with the tenant's name policy."""
        policy = display_name_policy(self.tenants.get(identity.tenant))
        return participant_for(identity, session, self._secret, policy)
