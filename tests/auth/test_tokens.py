"""Connection tokens: every refusal of PROTOCOL.md section 1 has a test here."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any

import jwt
import pytest

from auth.identity import Identity
from auth.tenants import Tenant, TenantRegistry
from auth.tokens import TokenRejected, issue_token, verify_token

NOW = 1_700_000_000.0
SECRET_0 = "s0-" + "a" * 61  # 64 bytes: long enough for HS512 too, so PyJWT does not warn
SECRET_1 = "s1-" + "b" * 61
OTHER_SECRET = "zz-" + "c" * 61
_DROP = object()  # marks a claim to leave out


@pytest.fixture
def tenant() -> Tenant:
    return Tenant(id="acme", secrets=(SECRET_0, SECRET_1), api_key="acme-api-key")


@pytest.fixture
def registry(tenant: Tenant) -> TenantRegistry:
    other = Tenant(id="globex", secrets=(OTHER_SECRET,), api_key="globex-api-key")
    return TenantRegistry([tenant, other])


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64json(value: Any) -> str:
    return b64(json.dumps(value).encode())


def claims(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "iss": "acme",
        "sub": "user-1",
        "role": "student",
        "sessions": ["s1", "s2"],
        "iat": NOW,
        "exp": NOW + 600,
    }
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not _DROP}


def craft(
    payload: dict[str, Any] | str,
    secret: str | None = SECRET_0,
    header: dict[str, Any] | None = None,
) -> str:
    """An HS256 token built by hand, so tests control every byte."""
    head = b64json(header if header is not None else {"alg": "HS256", "typ": "JWT"})
    body = b64(payload.encode()) if isinstance(payload, str) else b64json(payload)
    signing_input = f"{head}.{body}".encode()
    signature = (
        b"" if secret is None else hmac.new(secret.encode(), signing_input, hashlib.sha256).digest()
    )
    return f"{head}.{body}.{b64(signature)}"


def refused(token: Any, registry: TenantRegistry, **kwargs: Any) -> str:
    kwargs.setdefault("now", NOW)
    with pytest.raises(TokenRejected) as info:
        verify_token(token, registry, **kwargs)
    message = str(info.value)
    if isinstance(token, str) and token:
        assert token not in message
    assert "user-1" not in message
    return info.value.reason


# --- happy paths ------------------------------------------------------------


def test_valid_token_gives_identity(registry: TenantRegistry) -> None:
    identity = verify_token(craft(claims()), registry, now=NOW)
    assert identity == Identity(
        tenant="acme",
        sub="user-1",
        role="student",
        sessions=frozenset({"s1", "s2"}),
        expires_at=NOW + 600,
        issued_at=NOW,
    )
    assert isinstance(identity.expires_at, float)


def test_empty_sessions_allowed(registry: TenantRegistry) -> None:
    identity = verify_token(craft(claims(sessions=[])), registry, now=NOW)
    assert identity.sessions == frozenset()


def test_without_iat_or_nbf(registry: TenantRegistry) -> None:
    identity = verify_token(craft(claims(iat=_DROP)), registry, now=NOW)
    assert identity.sub == "user-1"


def test_nbf_in_past_accepted(registry: TenantRegistry) -> None:
    assert verify_token(craft(claims(nbf=NOW - 5)), registry, now=NOW).role == "student"


def test_issue_verify_round_trip_with_profile(tenant: Tenant, registry: TenantRegistry) -> None:
    token = issue_token(
        tenant,
        sub="u-42",
        role="trainer",
        sessions=["lesson-1"],
        ttl=120,
        now=NOW,
        name="Tessa Trainer",
        email="tessa@example.nl",
        phone="+31 6 0000 0000",
        username="tessa",
    )
    identity = verify_token(token, registry, now=NOW + 1)
    assert identity.tenant == "acme"
    assert identity.sub == "u-42"
    assert identity.role == "trainer"
    assert identity.sessions == frozenset({"lesson-1"})
    assert identity.expires_at == NOW + 120
    assert (identity.name, identity.email, identity.phone, identity.username) == (
        "Tessa Trainer",
        "tessa@example.nl",
        "+31 6 0000 0000",
        "tessa",
    )
    assert "tessa" not in repr(identity)
    assert "kid" not in jwt.get_unverified_header(token)


def test_issue_token_real_clock(tenant: Tenant, registry: TenantRegistry) -> None:
    token = issue_token(tenant, sub="u", role="planner", sessions=[])
    assert verify_token(token, registry).role == "planner"


def test_issue_token_rejects_unknown_profile_field(tenant: Tenant) -> None:
    with pytest.raises(TypeError):
        issue_token(tenant, sub="u", role="student", sessions=[], address="x")


def test_issue_token_rejects_missing_key_index(tenant: Tenant) -> None:
    with pytest.raises(ValueError, match="no secret at index 5"):
        issue_token(tenant, sub="u", role="student", sessions=[], key_index=5)


def test_issue_token_with_short_secret_does_not_warn() -> None:
    short = Tenant(id="tiny", secrets=("short",), api_key="k")
    token = issue_token(short, sub="u", role="student", sessions=[], now=NOW)
    assert verify_token(token, TenantRegistry([short]), now=NOW).sub == "u"


# --- algorithms ---------------------------------------------------------------


def test_alg_none_refused(registry: TenantRegistry) -> None:
    token = craft(claims(), secret=None, header={"alg": "none", "typ": "JWT"})
    assert token.endswith(".")
    assert refused(token, registry) == "algorithm"


@pytest.mark.parametrize("alg", ["None", "NONE", "", "hs256"])
def test_alg_variants_refused(registry: TenantRegistry, alg: str) -> None:
    assert refused(craft(claims(), header={"alg": alg}), registry) == "algorithm"


def test_missing_alg_refused(registry: TenantRegistry) -> None:
    assert refused(craft(claims(), header={"typ": "JWT"}), registry) == "algorithm"


def test_rs256_refused(registry: TenantRegistry) -> None:
    # RS256 header with an arbitrary signature (cryptography is not in the venv) ...
    token = craft(claims(), secret=None, header={"alg": "RS256", "typ": "JWT"})
    token += b64(b"\x01" * 256)
    assert refused(token, registry) == "algorithm"


def test_rs256_with_hmac_signature_refused(registry: TenantRegistry) -> None:
    # ... and the key-confusion variant: RS256 header but HMAC-signed with the secret.
    token = craft(claims(), secret=SECRET_0, header={"alg": "RS256", "typ": "JWT"})
    assert refused(token, registry) == "algorithm"


def test_hs512_refused(registry: TenantRegistry) -> None:
    token = jwt.encode(claims(), SECRET_0, algorithm="HS512")
    assert refused(token, registry) == "algorithm"


def test_hs384_refused(registry: TenantRegistry) -> None:
    token = jwt.encode(claims(), SECRET_0, algorithm="HS384")
    assert refused(token, registry) == "algorithm"


# --- tenant and signature -----------------------------------------------------


def test_unknown_tenant_refused(registry: TenantRegistry) -> None:
    assert refused(craft(claims(iss="initech")), registry) == "unknown_tenant"


def test_wrong_secret_refused(registry: TenantRegistry) -> None:
    assert refused(craft(claims(), secret="not-the-secret-" * 4), registry) == "bad_signature"


def test_other_tenants_secret_refused(registry: TenantRegistry) -> None:
    assert refused(craft(claims(), secret=OTHER_SECRET), registry) == "bad_signature"


def test_tampered_payload_refused(registry: TenantRegistry) -> None:
    head, _, signature = craft(claims()).split(".")
    forged = b64json(claims(role="trainer"))
    assert refused(f"{head}.{forged}.{signature}", registry) == "bad_signature"


def test_empty_signature_refused(registry: TenantRegistry) -> None:
    assert refused(craft(claims(), secret=None), registry) == "bad_signature"


# --- key rotation with kid ------------------------------------------------------


def test_kid_1_verifies_with_secret_1(registry: TenantRegistry) -> None:
    token = craft(claims(), secret=SECRET_1, header={"alg": "HS256", "kid": "1"})
    assert verify_token(token, registry, now=NOW).sub == "user-1"


def test_kid_0_with_token_signed_by_secret_1_refused(registry: TenantRegistry) -> None:
    token = craft(claims(), secret=SECRET_1, header={"alg": "HS256", "kid": "0"})
    assert refused(token, registry) == "bad_signature"


@pytest.mark.parametrize("secret", [SECRET_0, SECRET_1])
def test_no_kid_tries_every_secret(registry: TenantRegistry, secret: str) -> None:
    assert verify_token(craft(claims(), secret=secret), registry, now=NOW).sub == "user-1"


@pytest.mark.parametrize("kid", ["2", "99", "-1", "01", "x", "1.0", " 1", ""])
def test_bad_kid_refused(registry: TenantRegistry, kid: str) -> None:
    token = craft(claims(), secret=SECRET_1, header={"alg": "HS256", "kid": kid})
    assert refused(token, registry) == "unknown_key"


def test_non_string_kid_refused(registry: TenantRegistry) -> None:
    token = craft(claims(), secret=SECRET_1, header={"alg": "HS256", "kid": 1})
    assert refused(token, registry) in {"unknown_key", "malformed"}


def test_issue_token_with_key_index(tenant: Tenant, registry: TenantRegistry) -> None:
    token = issue_token(tenant, sub="u", role="student", sessions=[], key_index=1, now=NOW)
    assert jwt.get_unverified_header(token)["kid"] == "1"
    assert verify_token(token, registry, now=NOW).sub == "u"
    body = token.split(".")[1]
    relabelled = craft(
        json.loads(base64.urlsafe_b64decode(body + "==")),
        secret=SECRET_1,
        header={"alg": "HS256", "kid": "0"},
    )
    assert refused(relabelled, registry) == "bad_signature"


# --- time -----------------------------------------------------------------------


def test_expired_refused(registry: TenantRegistry) -> None:
    assert refused(craft(claims(exp=NOW - 1)), registry) == "expired"


def test_expiring_exactly_now_refused(registry: TenantRegistry) -> None:
    assert refused(craft(claims(exp=NOW)), registry) == "expired"


def test_nbf_in_future_refused(registry: TenantRegistry) -> None:
    assert refused(craft(claims(nbf=NOW + 30)), registry) == "not_yet_valid"


def test_iat_in_future_refused(registry: TenantRegistry) -> None:
    assert refused(craft(claims(iat=NOW + 30)), registry) == "not_yet_valid"


def test_leeway_accepts_recently_expired(registry: TenantRegistry) -> None:
    token = craft(claims(exp=NOW - 5))
    assert refused(token, registry) == "expired"
    assert verify_token(token, registry, leeway=10, now=NOW).sub == "user-1"
    assert refused(token, registry, leeway=4) == "expired"


def test_leeway_accepts_slightly_early_nbf_and_iat(registry: TenantRegistry) -> None:
    # iat/nbf always get at least NOT_BEFORE_LEEWAY (5 s); a larger leeway widens it.
    token = craft(claims(nbf=NOW + 8, iat=NOW + 8))
    assert refused(token, registry) == "not_yet_valid"
    assert verify_token(token, registry, leeway=10, now=NOW).sub == "user-1"
    assert refused(token, registry, leeway=4) == "not_yet_valid"


def test_default_clock_is_used(registry: TenantRegistry) -> None:
    # A token that expired long ago by the real clock is refused without ``now``.
    with pytest.raises(TokenRejected) as info:
        verify_token(craft(claims(iat=1000, exp=2000)), registry)
    assert info.value.reason == "expired"


# --- claims -----------------------------------------------------------------------


@pytest.mark.parametrize("name", ["sub", "role", "sessions", "exp"])
def test_missing_required_claim_refused(registry: TenantRegistry, name: str) -> None:
    assert refused(craft(claims(**{name: _DROP})), registry) == "claims"


def test_missing_iss_refused(registry: TenantRegistry) -> None:
    assert refused(craft(claims(iss=_DROP)), registry) == "claims"


@pytest.mark.parametrize(
    "overrides",
    [
        {"iss": 7},
        {"iss": ""},
        {"iss": ["acme"]},
        {"sub": 12345},
        {"sub": ""},
        {"sub": None},
        {"role": "admin"},
        {"role": "Trainer"},
        {"role": ["student"]},
        {"sessions": "s1"},
        {"sessions": ["s1", 2]},
        {"sessions": {"s1": True}},
        {"sessions": None},
        {"exp": "2030-01-01"},
        {"exp": True},
        {"exp": None},
        {"exp": 10**30},
        {"iat": "now"},
        {"iat": None},
        {"nbf": False},
        {"nbf": [1]},
        {"name": 5},
        {"name": None},
        {"email": ["a@example.nl"]},
        {"phone": 31600000000},
        {"username": {"x": 1}},
    ],
)
def test_ill_typed_claims_refused(registry: TenantRegistry, overrides: dict[str, Any]) -> None:
    assert refused(craft(claims(**overrides)), registry) == "claims"


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_non_finite_exp_refused(registry: TenantRegistry, constant: str) -> None:
    body = json.dumps(claims(exp=0)).replace('"exp": 0', f'"exp": {constant}')
    assert constant in body
    assert refused(craft(body), registry) == "malformed"


def test_float_exp_accepted(registry: TenantRegistry) -> None:
    identity = verify_token(craft(claims(exp=NOW + 0.5)), registry, now=NOW)
    assert identity.expires_at == NOW + 0.5


def test_extra_claims_ignored(registry: TenantRegistry) -> None:
    # ``aud`` is not ignored: tests/auth/test_token_policy.py.
    identity = verify_token(craft(claims(jti="y", foo=[1])), registry, now=NOW)
    assert identity.sub == "user-1"


# --- malformed strings --------------------------------------------------------------


@pytest.mark.parametrize(
    "token",
    [
        "",
        "abc",
        "a.b",
        "a.b.c",
        "...",
        "a.b.c.d",
        "not a token at all",
        "eyJhbGciOiJIUzI1NiJ9.!!!!.abc",
        b64(b"not json") + "." + b64json(claims()) + ".",
        b64json(["alg", "HS256"]) + "." + b64json(claims()) + ".",
        "x" * 20000,
    ],
)
def test_malformed_token_refused(registry: TenantRegistry, token: str) -> None:
    assert refused(token, registry) == "malformed"


def test_payload_not_json_refused(registry: TenantRegistry) -> None:
    assert refused(craft("not json"), registry) == "malformed"


def test_payload_not_object_refused(registry: TenantRegistry) -> None:
    assert refused(craft(json.dumps(["iss", "acme"])), registry) == "malformed"


@pytest.mark.parametrize("token", [None, 123, b"a.b.c"])
def test_non_string_token_refused(registry: TenantRegistry, token: Any) -> None:
    assert refused(token, registry) == "malformed"


def test_rejection_message_holds_no_claim_values(registry: TenantRegistry) -> None:
    token = craft(claims(sub="secret-sub", email=123), secret=SECRET_0)
    with pytest.raises(TokenRejected) as info:
        verify_token(token, registry, now=NOW)
    assert "secret-sub" not in str(info.value)
    assert "secret-sub" not in repr(info.value)
    assert info.value.__cause__ is None
