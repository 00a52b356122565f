"""The cache of verified tokens: a reconnect skips the signature, never a check that can change.

Every test verifies a token once (filling the cache), changes what the token is
judged against (the clock, the tenant's secrets or policy, the user), and checks
that the second verification through the cache answers as a fresh one would.
"""

from __future__ import annotations

import pytest

from auth.tenants import Tenant, TenantRegistry
from auth.tokens import TokenRejected, verify_token
from auth.verified_tokens import LONGEST_CACHED, VerifiedTokens
from tests.auth.test_tokens import NOW, SECRET_0, SECRET_1, claims, craft


@pytest.fixture
def tenant() -> Tenant:
    return Tenant(id="acme", secrets=(SECRET_0, SECRET_1), api_key="acme-api-key")


@pytest.fixture
def registry(tenant: Tenant) -> TenantRegistry:
    return TenantRegistry([tenant])


def reason(token: str, registry: TenantRegistry, cache: VerifiedTokens, now: float) -> str:
    with pytest.raises(TokenRejected) as info:
        verify_token(token, registry, now=now, cache=cache)
    return info.value.reason


def test_a_token_seen_before_is_answered_from_the_cache(registry: TenantRegistry) -> None:
    cache = VerifiedTokens()
    token = craft(claims(name="Anna"))
    first = verify_token(token, registry, now=NOW, cache=cache)
    again = verify_token(token, registry, now=NOW + 1, cache=cache)
    assert again is first  # the same identity object: nothing was parsed again
    assert len(cache) == 1
    assert first.name == "Anna"


def test_a_refused_token_is_not_kept(registry: TenantRegistry) -> None:
    cache = VerifiedTokens()
    assert reason(craft(claims(), secret="x" * 64), registry, cache, NOW) == "bad_signature"
    assert reason(craft(claims(exp=NOW - 1)), registry, cache, NOW) == "expired"
    assert len(cache) == 0


def test_a_cached_token_still_expires(registry: TenantRegistry) -> None:
    cache = VerifiedTokens()
    token = craft(claims(exp=NOW + 60))
    verify_token(token, registry, now=NOW, cache=cache)
    assert reason(token, registry, cache, NOW + 61) == "expired"
    assert len(cache) == 0  # dropped, not kept to be refused again
    # The leeway applies as it does without the cache.
    verify_token(token, registry, now=NOW, cache=cache)
    assert verify_token(token, registry, now=NOW + 61, leeway=5, cache=cache).sub == "user-1"


def test_a_retired_secret_retires_its_cached_tokens(tenant: Tenant) -> None:
    cache = VerifiedTokens()
    signed_by_0 = craft(claims())
    signed_by_1 = craft(claims(sub="user-2"), secret=SECRET_1)
    verify_token(signed_by_0, TenantRegistry([tenant]), now=NOW, cache=cache)
    verify_token(signed_by_1, TenantRegistry([tenant]), now=NOW, cache=cache)
    rotated = TenantRegistry([Tenant(id="acme", secrets=(SECRET_1,), api_key="acme-api-key")])
    assert reason(signed_by_0, rotated, cache, NOW) == "bad_signature"
    assert verify_token(signed_by_1, rotated, now=NOW, cache=cache).sub == "user-2"


def test_a_kid_that_now_names_another_secret_is_checked_again(tenant: Tenant) -> None:
    cache = VerifiedTokens()
    token = craft(claims(), secret=SECRET_1, header={"alg": "HS256", "kid": "1"})
    verify_token(token, TenantRegistry([tenant]), now=NOW, cache=cache)
    reordered = TenantRegistry([Tenant(id="acme", secrets=(SECRET_1, SECRET_0),
                                       api_key="acme-api-key")])
    assert reason(token, reordered, cache, NOW) == "bad_signature"
    shrunk = TenantRegistry([Tenant(id="acme", secrets=(SECRET_1,), api_key="acme-api-key")])
    verify_token(token, TenantRegistry([tenant]), now=NOW, cache=cache)
    assert reason(token, shrunk, cache, NOW) == "unknown_key"


def test_a_removed_tenant_refuses_its_cached_tokens(registry: TenantRegistry) -> None:
    cache = VerifiedTokens()
    token = craft(claims())
    verify_token(token, registry, now=NOW, cache=cache)
    other = TenantRegistry([Tenant(id="globex", secrets=(SECRET_0,), api_key="globex-key")])
    assert reason(token, other, cache, NOW) == "unknown_tenant"


def test_the_tenant_policy_applies_at_every_use(registry: TenantRegistry) -> None:
    cache = VerifiedTokens()
    token = craft(claims(exp=NOW + 7200))
    verify_token(token, registry, now=NOW, cache=cache)
    strict = TenantRegistry([Tenant(id="acme", secrets=(SECRET_0, SECRET_1),
                                    api_key="acme-api-key", audience="classroom",
                                    max_token_lifetime=3600)])
    assert reason(token, strict, cache, NOW) == "audience"
    shorter = TenantRegistry([Tenant(id="acme", secrets=(SECRET_0, SECRET_1),
                                     api_key="acme-api-key", max_token_lifetime=3600)])
    assert reason(token, shorter, cache, NOW) == "lifetime"
    assert verify_token(token, registry, now=NOW, cache=cache).sub == "user-1"


def test_not_before_is_checked_at_every_use(registry: TenantRegistry) -> None:
    cache = VerifiedTokens()
    token = craft(claims(nbf=NOW))
    verify_token(token, registry, now=NOW, cache=cache)
    # A clock that went back (a node whose time was corrected) sees it as not yet valid.
    assert reason(token, registry, cache, NOW - 60) == "not_yet_valid"


def test_forget_drops_every_token_of_one_user_only(registry: TenantRegistry) -> None:
    cache = VerifiedTokens()
    mine = [craft(claims(exp=NOW + 600 + n)) for n in range(3)]
    theirs = craft(claims(sub="user-2"))
    for token in [*mine, theirs]:
        verify_token(token, registry, now=NOW, cache=cache)
    assert cache.forget("acme", "user-1") == 3
    assert cache.forget("globex", "user-2") == 0
    assert len(cache) == 1
    assert verify_token(theirs, registry, now=NOW, cache=cache).sub == "user-2"


def test_the_cache_keeps_the_most_recently_used(registry: TenantRegistry) -> None:
    cache = VerifiedTokens(capacity=2)
    first, second, third = (craft(claims(sub=f"user-{n}")) for n in range(3))
    kept = verify_token(first, registry, now=NOW, cache=cache)
    verify_token(second, registry, now=NOW, cache=cache)
    assert verify_token(first, registry, now=NOW, cache=cache) is kept  # now the newest
    verify_token(third, registry, now=NOW, cache=cache)  # pushes out ``second``
    assert len(cache) == 2
    assert verify_token(first, registry, now=NOW, cache=cache) is kept
    assert cache.forget("acme", "user-1") == 0  # ``second`` (user-1) was the one dropped


def test_long_tokens_and_a_zero_capacity_keep_nothing(registry: TenantRegistry) -> None:
    long_token = craft(claims(name="x" * LONGEST_CACHED))
    cache = VerifiedTokens()
    assert verify_token(long_token, registry, now=NOW, cache=cache).sub == "user-1"
    assert len(cache) == 0
    off = VerifiedTokens(capacity=0)
    verify_token(craft(claims()), registry, now=NOW, cache=off)
    assert len(off) == 0
