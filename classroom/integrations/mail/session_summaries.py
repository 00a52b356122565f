"""The trainers' summary of an ended session: attendance and progress, by e-mail.

Runs once per ended session (the session layer's ``on_session_ended`` hook); a
trainer without a known e-mail address gets nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

from auth.tenants import TenantRegistry
from classroom.backends.data.records import Records
from classroom.integrations.mail.sender import MailSender
from classroom.integrations.mail.templates import summaries
from classroom.sessions.cohort import CohortTables


@dataclass(kw_only=True, eq=False)
class SummaryMailer:
    """Mails each trainer of an ended session the cohort table."""

    tenants: TenantRegistry
    records: Records
    cohorts: CohortTables
    mail: MailSender

    async def session_ended(self, tenant_id: str, session: str) -> None:
        """Mail each trainer of the ended session the attendance and progress of the cohort."""
        tenant = self.tenants.get(tenant_id)
        if tenant is None:
            return
        roster = await self.records.roster(tenant_id, session) or {}
        addresses = {}
        for sub in roster.get("trainers", []):
            profile = await self.records.profile(tenant_id, sub)
            if profile is not None and profile.get("email"):
                addresses[sub] = profile["email"]
        if not addresses:
            return
        table = await self.cohorts.table(tenant, session)
        await self.mail.submit(summaries(tenant_id, session, roster, addresses,
                                          table["students"]))
