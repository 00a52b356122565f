"""Connection tokens: HS256 JWTs signed by a tenant's back end (PROTOCOL.md section 1).

PyJWT parses the compact form and checks the signature; the claims and the clock
are checked here, so that ``now`` can be fixed in tests and every refusal gets a
short, value-free reason for logs and metrics.
"""

from __future__ import annotations

import json
import math
import re
import time
import warnings
from collections.abc import Sequence
from typing import Any, TypeGuard

import jwt
from jwt.warnings import InsecureKeyLengthWarning

from auth.identity import PROFILE_FIELDS, ROLES, Identity, Role
from auth.tenants import Tenant, TenantRegistry
from auth.verified_tokens import VerifiedToken, VerifiedTokens

ALGORITHM = "HS256"
MAX_TOKEN_CHARS = 8192
"""The longest token accepted anywhere (the ``connect`` command refuses longer ones)."""
_KID_PATTERN = re.compile(r"^(0|[1-9][0-9]{0,5})$")
_MAX_TIMESTAMP = 1e13  # far beyond any real date; keeps float conversion exact and finite
NOT_BEFORE_LEEWAY = 5.0
"""Seconds of clock slack for ``iat`` and ``nbf`` at least, whatever ``leeway`` says: a back
end whose clock runs a little fast must not see its fresh tokens refused (``exp`` gets only
``leeway``, so a token never lives longer than its issuer said unless the operator allows it)."""

REASON_MESSAGES = {
    "malformed": "token is not a well-formed JWT",
    "algorithm": "token algorithm is not HS256",
    "unknown_tenant": "token issuer is not a known tenant",
    "unknown_key": "token key id does not name a configured secret",
    "bad_signature": "token signature does not verify",
    "claims": "token claims are missing or ill-typed",
    "expired": "token has expired",
    "not_yet_valid": "token is not valid yet",
    "audience": "token audience does not match the tenant's",
    "lifetime": "token lifetime exceeds the tenant's maximum",
}

_jws = jwt.PyJWS(algorithms=[ALGORITHM])


class TokenRejected(Exception):  # noqa: N818 - name fixed by the callers
    """A connection token was refused; ``reason`` is a short code safe to log."""

    def __init__(self, reason: str, message: str | None = None) -> None:
        """Keep the token and its claims out of the message: only the reason is told."""
        self.reason = reason
        super().__init__(message or REASON_MESSAGES.get(reason, "token refused"))


def _is_role(value: object) -> TypeGuard[Role]:
    """Whether a claim is one of the protocol's roles."""
    return isinstance(value, str) and value in ROLES


def _timestamp(value: object) -> float | None:
    """A NumericDate claim as a float, or None when it is not a finite, plausible number."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if isinstance(value, int) and abs(value) > _MAX_TIMESTAMP:
        return None
    number = float(value)
    if not math.isfinite(number) or abs(number) > _MAX_TIMESTAMP:
        return None
    return number


def _refuse_constant(_name: str) -> Any:
    """json.loads hook: NaN and Infinity are not JSON and would defeat the expiry check."""
    raise ValueError("non-standard JSON constant")


def _unverified(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Header and payload before the signature is checked: only to choose the key."""
    if not isinstance(token, str) or not token or len(token) > MAX_TOKEN_CHARS:
        raise TokenRejected("malformed")
    try:
        parts = _jws.decode_complete(token, options={"verify_signature": False})
        payload = json.loads(parts["payload"], parse_constant=_refuse_constant)
    except (jwt.InvalidTokenError, ValueError, RecursionError, UnicodeError):
        raise TokenRejected("malformed") from None
    header = parts["header"]
    if not isinstance(payload, dict):
        raise TokenRejected("malformed")
    return header, payload


def _candidate_secrets(header: dict[str, Any], tenant: Tenant) -> Sequence[str]:
    """The secrets to try: the one named by ``kid``, or all of them in order."""
    if "kid" not in header:
        return tenant.secrets
    kid = header["kid"]
    if not isinstance(kid, str) or not _KID_PATTERN.match(kid):
        raise TokenRejected("unknown_key")
    index = int(kid)
    if index >= len(tenant.secrets):
        raise TokenRejected("unknown_key")
    return (tenant.secrets[index],)


def _check_signature(token: str, secrets: Sequence[str]) -> str:
    """The one of ``secrets`` that signed the token with HS256; refused if none did."""
    for secret in secrets:
        try:
            with warnings.catch_warnings():
                # Short secrets are reported once when tenants are loaded, not per token.
                warnings.simplefilter("ignore", InsecureKeyLengthWarning)
                _jws.decode_complete(token, key=secret, algorithms=[ALGORITHM])
        except jwt.InvalidSignatureError:
            continue
        except jwt.InvalidAlgorithmError:
            raise TokenRejected("algorithm") from None
        except (jwt.InvalidTokenError, jwt.InvalidKeyError):
            raise TokenRejected("malformed") from None
        return secret
    raise TokenRejected("bad_signature")


def _utf8_clean(value: object) -> bool:
    """Whether every string in a decoded JSON value (keys too) can be encoded as UTF-8.

    JSON may escape a lone surrogate (``"\\ud800"``), which decodes to a Python string
    that no UTF-8 encoder takes: such a claim would fail later, far from here, when
    the profile is stored, hashed or sent. The walk is iterative; json.loads already
    refused values nested too deep to decode.
    """
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                return False
        elif isinstance(item, dict):
            pending.extend(item.keys())
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
    return True


def _identity(tenant_id: str, claims: dict[str, Any]) -> Identity:
    """Build the identity from signed claims, refusing anything missing or ill-typed."""
    if not _utf8_clean(claims):
        raise TokenRejected("claims")
    sub = claims.get("sub")
    role = claims.get("role")
    sessions = claims.get("sessions")
    exp = _timestamp(claims.get("exp"))
    if not isinstance(sub, str) or not sub:
        raise TokenRejected("claims")
    if not _is_role(role):
        raise TokenRejected("claims")
    if not isinstance(sessions, list) or not all(isinstance(s, str) for s in sessions):
        raise TokenRejected("claims")
    if exp is None:
        raise TokenRejected("claims")
    profile: dict[str, str] = {}
    for name in PROFILE_FIELDS:
        if name in claims:
            value = claims[name]
            if not isinstance(value, str):
                raise TokenRejected("claims")
            profile[name] = value
    return Identity(
        tenant=tenant_id,
        sub=sub,
        role=role,
        sessions=frozenset(sessions),
        expires_at=exp,
        issued_at=_timestamp(claims.get("iat")) if "iat" in claims else None,
        **profile,
    )


def _check_times(
    claims: dict[str, Any], expires_at: float, leeway: float, now: float,
    not_before_leeway: float = NOT_BEFORE_LEEWAY,
) -> None:
    """Apply ``exp`` (``leeway`` seconds of slack), ``nbf`` and ``iat`` (the larger of
    ``leeway`` and ``not_before_leeway``) against the clock."""
    early = max(leeway, not_before_leeway)
    for name in ("nbf", "iat"):
        if name in claims:
            moment = _timestamp(claims[name])
            if moment is None:
                raise TokenRejected("claims")
            if moment > now + early:
                raise TokenRejected("not_yet_valid")
    if expires_at <= now - leeway:
        raise TokenRejected("expired")


def _check_policy(tenant: Tenant, claims: dict[str, Any], expires_at: float, now: float) -> None:
    """The tenant's own rules: the audience its tokens must name, and their longest life.

    A tenant that sets no ``audience`` accepts tokens with or without ``aud``, as
    before the setting existed: back ends already sending one keep working.
    """
    if tenant.audience is not None:
        if "aud" not in claims:
            raise TokenRejected("audience")
        audience = claims["aud"]
        names = audience if isinstance(audience, list) else [audience]
        if not names or not all(isinstance(n, str) for n in names):
            raise TokenRejected("claims")
        if tenant.audience not in names:
            raise TokenRejected("audience")
    if tenant.max_token_lifetime is not None:
        issued = _timestamp(claims["iat"]) if "iat" in claims else None
        start = now if issued is None else issued
        if expires_at - start > tenant.max_token_lifetime:
            raise TokenRejected("lifetime")


def verify_token(
    token: str,
    tenants: TenantRegistry,
    *,
    leeway: float = 0.0,
    now: float | None = None,
    not_before_leeway: float = NOT_BEFORE_LEEWAY,
    cache: VerifiedTokens | None = None,
) -> Identity:
    """Check a connection token and return who it vouches for, or raise TokenRejected.

    ``leeway`` is the clock slack for ``exp``; ``iat`` and ``nbf`` get the larger of it and
    ``not_before_leeway``. The tenant's ``audience`` and ``max_token_lifetime`` apply too.
    With a ``cache``, a token whose signature was verified before (by its exact text,
    with a secret its tenant still has) skips the parsing and the signature; the
    clock and the policy are checked every time.
    """
    moment = time.time() if now is None else now
    if cache is not None and (known := cache.get(token)) is not None:
        tenant = tenants.get(known.issuer)
        if (tenant is None or tenant.id != known.identity.tenant
                or known.secret not in _still_signing(known.kid, tenant)):
            cache.discard(token)  # its tenant or its secret is gone: verify it afresh
        else:
            try:
                _check_times(known.timing, known.identity.expires_at, leeway, moment,
                             not_before_leeway)
            except TokenRejected:
                cache.discard(token)
                raise
            _check_policy(tenant, known.timing, known.identity.expires_at, moment)
            return known.identity
    header, unverified = _unverified(token)
    if header.get("alg") != ALGORITHM:
        raise TokenRejected("algorithm")
    issuer = unverified.get("iss")
    if not isinstance(issuer, str) or not issuer:
        raise TokenRejected("claims")
    tenant = tenants.get(issuer)
    if tenant is None:
        raise TokenRejected("unknown_tenant")
    secret = _check_signature(token, _candidate_secrets(header, tenant))
    # The payload bytes were covered by the signature just checked, so these claims are signed.
    identity = _identity(tenant.id, unverified)
    _check_times(unverified, identity.expires_at, leeway, moment, not_before_leeway)
    _check_policy(tenant, unverified, identity.expires_at, moment)
    if cache is not None:
        timing = {name: unverified[name] for name in _TIMING_CLAIMS if name in unverified}
        cache.put(token, VerifiedToken(issuer, secret, header.get("kid"), identity, timing))
    return identity


_TIMING_CLAIMS = ("nbf", "iat", "aud")
"""The claims :func:`_check_times` and :func:`_check_policy` read besides ``exp``."""


def _still_signing(kid: str | None, tenant: Tenant) -> Sequence[str]:
    """The secrets a cached token's ``kid`` lets it be signed with under ``tenant`` now."""
    try:
        return _candidate_secrets({} if kid is None else {"kid": kid}, tenant)
    except TokenRejected:
        return ()  # the secret it named was removed


def issue_token(
    tenant: Tenant,
    *,
    sub: str,
    role: str,
    sessions: list[str],
    ttl: float = 3600,
    key_index: int | None = None,
    now: float | None = None,
    **profile: str,
) -> str:
    """Sign a connection token as the tenant's back end would (demo links and tests).

    ``role`` is not checked, so tests can mint tokens that the server must refuse.
    """
    unknown = sorted(set(profile) - set(PROFILE_FIELDS))
    if unknown:
        raise TypeError(f"unknown profile claims: {', '.join(unknown)}")
    index = 0 if key_index is None else key_index
    if not 0 <= index < len(tenant.secrets):
        raise ValueError(f"tenant {tenant.id!r} has no secret at index {index}")
    issued_at = time.time() if now is None else now
    claims: dict[str, Any] = {
        "iss": tenant.id,
        "sub": sub,
        "role": role,
        "sessions": list(sessions),
        "iat": math.floor(issued_at),
        "exp": math.floor(issued_at + ttl),
        **profile,
    }
    if tenant.audience is not None:
        claims["aud"] = tenant.audience
    headers = None if key_index is None else {"kid": str(key_index)}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", InsecureKeyLengthWarning)
        return jwt.encode(claims, tenant.secrets[index], algorithm=ALGORITHM, headers=headers)
