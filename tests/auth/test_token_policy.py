"""Token policy (issue 12, point 13): clock slack for iat/nbf, the tenant's audience, and
the tenant's longest token lifetime; checked in ``verify_token`` and over a real socket."""

from __future__ import annotations

import json
import logging
import time
from typing import Any

import pytest

from auth.tenants import Tenant, TenantConfigError, TenantRegistry, load_tenants
from auth.tokens import NOT_BEFORE_LEEWAY, TokenRejected, issue_token, verify_token
from tests.auth.test_tokens import NOW, SECRET_0, claims, craft
from tests.client import Client
from tests.conftest import TENANTS, ServerFactory

AUDIENCE = "classroom.acme.example"


def registry_of(**policy: Any) -> TenantRegistry:
    return TenantRegistry([Tenant(id="acme", secrets=(SECRET_0,), api_key="k" * 40, **policy)])


def reason(token: str, registry: TenantRegistry, **kwargs: Any) -> str:
    kwargs.setdefault("now", NOW)
    with pytest.raises(TokenRejected) as info:
        verify_token(token, registry, **kwargs)
    assert token not in str(info.value)
    return info.value.reason


def accepted(token: str, registry: TenantRegistry, **kwargs: Any) -> bool:
    kwargs.setdefault("now", NOW)
    return verify_token(token, registry, **kwargs).sub == "user-1"


# --- clock slack --------------------------------------------------------------------


def test_a_back_end_clock_a_little_fast_is_accepted() -> None:
    registry = registry_of()
    # The back end's clock runs 300 ms (and up to 5 s) ahead: its fresh tokens still work.
    for ahead in (0.3, 1, NOT_BEFORE_LEEWAY):
        assert accepted(craft(claims(iat=NOW + ahead)), registry)
        assert accepted(craft(claims(nbf=NOW + ahead, iat=NOW + ahead)), registry)
    assert reason(craft(claims(iat=NOW + NOT_BEFORE_LEEWAY + 0.5)), registry) == "not_yet_valid"
    assert reason(craft(claims(nbf=NOW + 30)), registry) == "not_yet_valid"


def test_expiry_gets_no_default_slack() -> None:
    registry = registry_of()
    assert reason(craft(claims(exp=NOW)), registry) == "expired"
    assert reason(craft(claims(exp=NOW - 0.1)), registry) == "expired"
    assert accepted(craft(claims(exp=NOW - 2)), registry, leeway=3)


def test_a_larger_leeway_widens_iat_and_nbf_too() -> None:
    registry = registry_of()
    token = craft(claims(iat=NOW + 8, nbf=NOW + 8))
    assert reason(token, registry) == "not_yet_valid"
    assert accepted(token, registry, leeway=10)
    assert reason(token, registry, leeway=1, not_before_leeway=0) == "not_yet_valid"


# --- audience -----------------------------------------------------------------------


def test_a_tenant_with_an_audience_needs_it_in_every_token() -> None:
    registry = registry_of(audience=AUDIENCE)
    assert reason(craft(claims()), registry) == "audience"
    assert reason(craft(claims(aud="another-service")), registry) == "audience"
    assert reason(craft(claims(aud=["another-service"])), registry) == "audience"
    assert accepted(craft(claims(aud=AUDIENCE)), registry)
    assert accepted(craft(claims(aud=["another-service", AUDIENCE])), registry)


def test_an_ill_typed_audience_is_a_claims_error() -> None:
    registry = registry_of(audience=AUDIENCE)
    for bad in (42, None, [], [AUDIENCE, 1], {"aud": AUDIENCE}):
        assert reason(craft(claims(aud=bad)), registry) == "claims"


def test_without_an_audience_tokens_are_taken_with_or_without_aud_as_before() -> None:
    """A back end that already sends ``aud`` keeps working until its tenant sets one."""
    registry = registry_of()
    assert accepted(craft(claims()), registry)
    assert accepted(craft(claims(aud="x")), registry)
    assert accepted(craft(claims(aud=[AUDIENCE])), registry)


def test_issue_token_names_the_tenants_audience() -> None:
    tenant = Tenant(id="acme", secrets=(SECRET_0,), api_key="k" * 40, audience=AUDIENCE)
    registry = TenantRegistry([tenant])
    token = issue_token(tenant, sub="user-1", role="student", sessions=[], now=NOW)
    assert accepted(token, registry)


# --- lifetime -----------------------------------------------------------------------


def test_a_token_living_longer_than_the_tenants_maximum_is_refused() -> None:
    registry = registry_of(max_token_lifetime=3600)
    assert accepted(craft(claims(iat=NOW, exp=NOW + 3600)), registry)
    assert reason(craft(claims(iat=NOW, exp=NOW + 3601)), registry) == "lifetime"
    # Issued a while ago: exp - iat counts, not what is left.
    assert reason(craft(claims(iat=NOW - 3000, exp=NOW + 1000)), registry) == "lifetime"
    # Without iat, what is left from now counts.
    no_iat = {k: v for k, v in claims(exp=NOW + 3000).items() if k != "iat"}
    assert accepted(craft(no_iat), registry)
    no_iat["exp"] = NOW + 4000
    assert reason(craft(no_iat), registry) == "lifetime"


def test_no_maximum_by_default() -> None:
    assert accepted(craft(claims(iat=NOW, exp=NOW + 365 * 86400)), registry_of())


# --- configuration ------------------------------------------------------------------


def test_tenants_configure_audience_and_lifetime_and_old_configs_stay_valid() -> None:
    registry = load_tenants(json.dumps({
        "acme": {"secrets": [SECRET_0], "api_key": "a" * 40, "audience": AUDIENCE,
                 "max_token_lifetime": 7200},
        "globex": {"secrets": [SECRET_0], "api_key": "b" * 40},
    }))
    acme, globex = registry.get("acme"), registry.get("globex")
    assert acme is not None and globex is not None
    assert (acme.audience, acme.max_token_lifetime) == (AUDIENCE, 7200)
    assert (globex.audience, globex.max_token_lifetime) == (None, None)


@pytest.mark.parametrize(("field", "value"), [
    ("audience", ""), ("audience", 7), ("max_token_lifetime", 0),
    ("max_token_lifetime", -5), ("max_token_lifetime", "3600"), ("max_token_lifetime", True),
])
def test_bad_policy_values_are_configuration_errors(field: str, value: Any) -> None:
    entry = {"secrets": [SECRET_0], "api_key": "a" * 40, field: value}
    with pytest.raises(TenantConfigError) as info:
        load_tenants(json.dumps({"acme": entry}))
    assert field in str(info.value) and "tenant 'acme'" in str(info.value)


def test_a_short_api_key_is_accepted_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="classroom.tenants"):
        load_tenants(json.dumps({"acme": {"secrets": [SECRET_0], "api_key": "short-key-1"}}))
    warnings = [r for r in caplog.records if "API key" in r.getMessage()]
    assert len(warnings) == 1
    assert "shorter than 32 characters" in warnings[0].getMessage()
    assert getattr(warnings[0], "tenant", None) == "acme"
    assert all("short-key-1" not in r.getMessage() for r in caplog.records)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="classroom.tenants"):
        load_tenants(json.dumps({"acme": {"secrets": [SECRET_0], "api_key": "k" * 32}}))
    assert not [r for r in caplog.records if "API key" in r.getMessage()]


# --- over a real socket ---------------------------------------------------------------


async def test_server_accepts_a_token_from_a_clock_two_seconds_fast(
    start_server: ServerFactory,
) -> None:
    server = await start_server()
    token = issue_token(server.tenant(), sub="u1", role="student", sessions=["s1"],
                        now=time.time() + 2)
    client = await Client.open(server.ws_url)
    reply = await client.connect(token)
    assert reply["type"] == "connected", reply
    await client.close()


async def test_server_applies_the_tenants_audience_and_lifetime(
    start_server: ServerFactory,
) -> None:
    tenants = {**TENANTS, "acme": {**TENANTS["acme"], "audience": AUDIENCE,
                                    "max_token_lifetime": 600}}
    server = await start_server(tenants_raw=json.dumps(tenants))
    tenant = server.tenant()
    good = issue_token(tenant, sub="u1", role="student", sessions=["s1"], ttl=600)
    client = await Client.open(server.ws_url)
    assert (await client.connect(good))["type"] == "connected"
    await client.close()
    bare = Tenant(id="acme", secrets=tenant.secrets, api_key=tenant.api_key)  # no aud claim
    too_long = issue_token(tenant, sub="u1", role="student", sessions=["s1"], ttl=601)
    for token in (issue_token(bare, sub="u1", role="student", sessions=["s1"]), too_long):
        client = await Client.open(server.ws_url)
        reply = await client.connect(token)
        assert reply["code"] == "unauthorized"
        assert await client.closed_code() == 4401
