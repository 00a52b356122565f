"""Who the simulated users are, which process runs each, and how they get tokens.

Tokens are minted here with the tenant's own secret (as a tenant's back end
would), so the server checks real signatures; the server must be started with
the same tenant in ``CLASSROOM_TENANTS``.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from auth.tenants import Tenant, load_tenants
from auth.tokens import issue_token
from loadtests.scenarios import Scenario

LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1", "[::1]")
TOKEN_SLACK_SECONDS = 900.0  # tokens outlive the run, so no expiry disconnect interferes


@dataclass(frozen=True)
class Credentials:
    """The tenant whose back end the generator impersonates."""

    tenant: str
    secret: str
    key_index: int | None = None

    def __repr__(self) -> str:
        """Keep the secret out of tracebacks and logs."""
        return f"Credentials(tenant={self.tenant!r}, secret=<hidden>)"


@dataclass(frozen=True)
class User:
    """One simulated person: a trainer (``seat`` 0) or a student in one room."""

    room: int
    seat: int
    session: str
    sub: str
    slow: bool = False
    url: str = ""  # the node this user connects to; empty: the plan's url

    @property
    def role(self) -> str:
        """Seat 0 of each room is its trainer."""
        return "trainer" if self.seat == 0 else "student"


@dataclass(frozen=True)
class WorkerPlan:
    """Everything one client process needs: the scenario, the target and its users."""

    worker: int
    url: str
    run_id: str
    scenario: Scenario
    credentials: Credentials
    users: tuple[User, ...] = field(default_factory=tuple)
    share: float = 1.0  # this worker's fraction of the global connect rate
    driver: str = "classroom"  # the protocol spoken: see loadtests/drivers.py

    def url_for(self, user: User) -> str:
        """The endpoint ``user`` connects to: its own node when the run has several."""
        return user.url or self.url

    def token(self, user: User) -> str:
        """A fresh connection token for ``user``, valid for the whole run.

        With a key index, the secret is placed at that index so the token carries
        the ``kid`` header the server expects; the padding secrets sign nothing.
        """
        index = self.credentials.key_index
        padding = ("unused",) * (index or 0)
        tenant = Tenant(id=self.credentials.tenant, secrets=(*padding, self.credentials.secret),
                        api_key="unused-by-the-generator")
        return issue_token(
            tenant, sub=user.sub, role=user.role, sessions=[user.session],
            ttl=self.scenario.duration + TOKEN_SLACK_SECONDS, key_index=index,
            name=f"{user.role.title()} {user.room}-{user.seat}",
            email=f"{user.sub}@loadtest.invalid",
        )


def resolve_credentials(tenant: str | None, secret: str | None,
                        key_index: int | None) -> Credentials:
    """Tenant and secret from flags, else LOADTEST_TENANT / LOADTEST_SECRET, else the
    server's own ``CLASSROOM_TENANTS`` (its first secret), so one shell can run both."""
    tenant_id = tenant or os.environ.get("LOADTEST_TENANT") or "acme"
    found = secret or os.environ.get("LOADTEST_SECRET")
    if found is None and os.environ.get("CLASSROOM_TENANTS"):
        registry = load_tenants(os.environ["CLASSROOM_TENANTS"])
        configured = registry.get(tenant_id)
        if configured is not None:
            index = key_index or 0
            if index >= len(configured.secrets):
                raise ValueError(f"tenant {tenant_id!r} has no secret at index {index}")
            found = configured.secrets[index]
    if not found:
        raise ValueError(
            "no signing secret: pass --secret, set LOADTEST_SECRET, or set CLASSROOM_TENANTS "
            f"with tenant {tenant_id!r} as the server has it"
        )
    return Credentials(tenant=tenant_id, secret=found, key_index=key_index)


def check_url(url: str, allow_remote: bool) -> None:
    """Accept only ws:// URLs; refuse non-loopback hosts unless explicitly allowed."""
    parts = urlsplit(url)
    if parts.scheme not in ("ws", "wss") or not parts.hostname:
        raise ValueError(f"--url must look like ws://127.0.0.1:8000/ws, not {url!r}")
    host = parts.hostname
    if not allow_remote and host not in LOOPBACK_HOSTS and not host.startswith("127."):
        raise ValueError(
            f"refusing to load-test {host!r}: only loopback targets unless "
            "--allow-non-loopback is given (and only for a server you own)"
        )


def make_plans(scenario: Scenario, url: str, credentials: Credentials,
               processes: int, driver: str = "classroom",
               urls: tuple[str, ...] = ()) -> list[WorkerPlan]:
    """Deal users round-robin over ``processes`` workers, so even one big room spreads.

    With ``urls`` (several nodes of one deployment), users are also dealt round-robin
    over those endpoints in connect order, as a balancer would spread them: a room's
    trainer on the first, its students evenly over all of them.
    """
    run_id = secrets.token_hex(3)
    dealt: list[list[User]] = [[] for _ in range(processes)]
    index = 0
    for room in range(scenario.rooms):
        session = f"lt-{run_id}-r{room}"
        for seat in range(scenario.students + 1):
            user = User(room=room, seat=seat, session=session,
                        sub=f"lt-{run_id}-r{room}-u{seat}", slow=scenario.is_slow(seat),
                        url=urls[index % len(urls)] if urls else "")
            dealt[index % processes].append(user)
            index += 1
    total = max(1, index)
    return [
        WorkerPlan(worker=n, url=url, run_id=run_id, scenario=scenario,
                   credentials=credentials, users=tuple(users), share=len(users) / total,
                   driver=driver)
        for n, users in enumerate(dealt)
    ]
