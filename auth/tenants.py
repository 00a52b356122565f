"""Tenants: who may sign connection tokens, and with which secrets and policy.

Configuration comes from ``CLASSROOM_TENANTS`` (inline JSON or a path to a TOML
or JSON file). Error messages name the tenant, the field and the file, but never
repeat a secret or an API key: they end up in terminals and log collectors.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
import secrets
import tomllib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from auth.urls import WEBHOOK_SECRET_PREFIX as WEBHOOK_SECRET_PREFIX  # re-exported
from auth.urls import check_frame_origin, check_webhook_secret, check_webhook_url

log = logging.getLogger("classroom.tenants")

DisplayName = Literal["full", "first", "none"]
TENANT_ID_PATTERN = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
# RFC 7518 section 3.2: an HS256 key should be at least as long as the hash output.
MIN_SECRET_BYTES = 32
# A server API key shorter than this is accepted with a warning: use a long random key.
MIN_API_KEY_CHARS = 32
_SHOWN_ID_CHARS = 40
MAX_FRAME_ORIGINS = 50
"""Origins a tenant may list in ``frame_origins``: every page's CSP header carries them."""


class TenantConfigError(ValueError):
    """Tenant configuration is unusable; the message is safe to print."""


@dataclass(frozen=True, slots=True)
class Tenant:
    """One customer organisation: signing secrets, server API key, privacy policy."""

    id: str
    secrets: tuple[str, ...]
    api_key: str
    display_name: DisplayName = "first"
    history_retention_days: float = 30.0
    progress_retention_days: float = 365.0
    invitations: bool = False
    audience: str | None = None
    """When set, connection tokens must carry this ``aud``; when unset, tokens with an ``aud``
    are refused (RFC 7519 section 4.1.3: the server is no audience they name)."""
    max_token_lifetime: float | None = None
    """When set, a token living longer than this many seconds (``exp`` - ``iat``, or
    ``exp`` - now without ``iat``) is refused."""
    attendance_retention_days: float | None = None
    """When set, erasing a user keeps a pseudonymous attendance line (keyed hash, minutes,
    threshold met) of each session this many days, for the accreditation's legal basis."""
    webhook_url: str | None = None
    """Where signed webhooks go: https, or http to a loopback address only."""
    webhook_secret: str | None = None
    """``whsec_`` and base64: the Standard Webhooks signing secret (both or neither)."""
    presence_counts_only_above: int | None = None
    """When set, students in a session with more users present than this see only themselves
    and the count: names of a crowd are noise to them and quadratic to send."""
    frame_origins: tuple[str, ...] = ()
    """Origins (normalised) whose pages the web client may show in a frame: a roster's
    screen ``url`` must be on one, and the pages' ``frame-src`` lists exactly these."""
    student_marks: bool = True
    """Whether students may mark screens in a session the trainer has not set it for."""
    student_pointers: bool = False
    """Whether students' pointers reach the room in a session the trainer has not set it
    for: off by default, since thirty moving dots distract more than they help."""

    def __post_init__(self) -> None:
        """Refuse a tenant that could never verify a token or would accept any API key."""
        if not self.secrets or not all(isinstance(s, str) and s for s in self.secrets):
            raise TenantConfigError(f"tenant {self.id!r}: secrets must be non-empty strings")
        if not isinstance(self.api_key, str) or not self.api_key:
            raise TenantConfigError(f"tenant {self.id!r}: api_key must be a non-empty string")
        if self.audience is not None and (not isinstance(self.audience, str) or not self.audience):
            raise TenantConfigError(f"tenant {self.id!r}: audience must be a non-empty string")
        if self.max_token_lifetime is not None and not (
            isinstance(self.max_token_lifetime, int | float)
            and not isinstance(self.max_token_lifetime, bool)
            and 0 < self.max_token_lifetime < float("inf")
        ):
            raise TenantConfigError(f"tenant {self.id!r}: max_token_lifetime must be a number > 0")
        if (self.webhook_url is None) != (self.webhook_secret is None):
            raise TenantConfigError(
                f"tenant {self.id!r}: webhook_url and webhook_secret go together")
        try:
            if self.webhook_url is not None:
                check_webhook_url(self.webhook_url)
            if self.webhook_secret is not None:
                check_webhook_secret(self.webhook_secret)
            if any(check_frame_origin(o) != o for o in self.frame_origins):
                raise ValueError("frame_origins must be normalised origins")
        except ValueError as exc:
            raise TenantConfigError(f"tenant {self.id!r}: {exc}") from None

    def __repr__(self) -> str:
        """Keep secrets and the API key out of tracebacks and logs."""
        return (
            f"Tenant(id={self.id!r}, secrets=<{len(self.secrets)} hidden>, "
            f"api_key=<hidden>, display_name={self.display_name!r})"
        )


def _key_digest(key: str) -> bytes:
    """Fixed-length digest, so comparisons take the same time whatever the key length."""
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).digest()


class TenantRegistry:
    """All configured tenants, looked up by id or by server API key."""

    __slots__ = ("_by_id", "_key_digests")

    def __init__(self, tenants: Iterable[Tenant]) -> None:
        """Index the tenants; a duplicate id is a configuration mistake."""
        self._by_id: dict[str, Tenant] = {}
        for tenant in tenants:
            if tenant.id in self._by_id:
                raise TenantConfigError(f"tenant {tenant.id!r} is defined twice")
            self._by_id[tenant.id] = tenant
        self._key_digests: tuple[tuple[bytes, Tenant], ...] = tuple(
            (_key_digest(t.api_key), t) for t in self._by_id.values()
        )

    def get(self, tenant_id: str) -> Tenant | None:
        """The tenant with this id, if any."""
        return self._by_id.get(tenant_id)

    def by_api_key(self, key: str) -> Tenant | None:
        """The tenant owning this API key, compared in constant time against every tenant."""
        if not isinstance(key, str) or not key:
            return None
        digest = _key_digest(key)
        found: Tenant | None = None
        for candidate, tenant in self._key_digests:
            if hmac.compare_digest(digest, candidate) and found is None:
                found = tenant
        return found

    def ids(self) -> list[str]:
        """Tenant ids, in configuration order."""
        return list(self._by_id)

    def __iter__(self) -> Iterator[Tenant]:
        """Iterate over the tenants in configuration order."""
        return iter(self._by_id.values())

    def __len__(self) -> int:
        """Number of tenants."""
        return len(self._by_id)

    def __contains__(self, tenant_id: object) -> bool:
        """Whether a tenant with this id exists."""
        return tenant_id in self._by_id

    def __repr__(self) -> str:
        """Show ids only; the tenants' own reprs hide their secrets anyway."""
        return f"TenantRegistry(ids={self.ids()!r})"


class _TenantModel(BaseModel):
    """The shape of one tenant entry in the configuration."""

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True, hide_input_in_errors=True)

    secrets: list[Annotated[str, Field(min_length=1)]] = Field(min_length=1)
    api_key: str = Field(min_length=1)
    display_name: DisplayName = "first"
    history_retention_days: float = Field(default=30.0, gt=0, le=3650)
    progress_retention_days: float = Field(default=365.0, gt=0, le=3650)
    invitations: bool = False
    audience: str | None = Field(default=None, min_length=1, max_length=256)
    max_token_lifetime: float | None = Field(default=None, gt=0, le=366 * 86400)
    attendance_retention_days: float | None = Field(default=None, gt=0, le=3650)
    webhook_url: str | None = Field(default=None, min_length=1, max_length=2048)
    webhook_secret: str | None = Field(default=None, min_length=1, max_length=200)
    presence_counts_only_above: int | None = Field(default=None, ge=0, le=1_000_000)
    frame_origins: list[Annotated[str, Field(min_length=1, max_length=300)]] = Field(
        default_factory=list, max_length=MAX_FRAME_ORIGINS)
    student_marks: bool = True
    student_pointers: bool = False

    @field_validator("frame_origins")
    @classmethod
    def _frame_origins(cls, value: list[str]) -> list[str]:
        origins = [check_frame_origin(origin) for origin in value]
        return list(dict.fromkeys(origins))  # once each, in the order given

    @field_validator("webhook_url")
    @classmethod
    def _webhook_url(cls, value: str | None) -> str | None:
        return None if value is None else check_webhook_url(value)

    @field_validator("webhook_secret")
    @classmethod
    def _webhook_secret(cls, value: str | None) -> str | None:
        return None if value is None else check_webhook_secret(value)

    @model_validator(mode="after")
    def _webhook_pair(self) -> _TenantModel:
        if (self.webhook_url is None) != (self.webhook_secret is None):
            raise ValueError("webhook_url and webhook_secret go together")
        return self


def _shown_id(tenant_id: str) -> str:
    """A tenant id fit for an error message, cut short in case it is something else."""
    if len(tenant_id) > _SHOWN_ID_CHARS:
        return repr(tenant_id[:_SHOWN_ID_CHARS] + "...")
    return repr(tenant_id)


def _field_problem(error: Any) -> str:
    """One pydantic error as 'field X: message', without the offending value."""
    loc = ".".join(str(part) for part in error["loc"])
    if error["type"] == "string_too_short":
        return f"field {loc!r}: must not be empty"
    if error["type"] == "string_type" and len(error["loc"]) == 2:
        return f"field {loc!r}: each secret must be a string"
    return f"field {loc!r}: {error['msg']}" if loc else str(error["msg"])


def _reject_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """json.loads hook: a repeated key would silently drop a tenant or a field."""
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise TenantConfigError(f"key {_shown_id(key)} appears twice")
        result[key] = value
    return result


def _parse_json(text: str, where: str) -> Any:
    """Parse JSON, reporting the position of a mistake but never the text around it."""
    try:
        return json.loads(text, object_pairs_hook=_reject_duplicate_keys)
    except TenantConfigError as exc:
        raise TenantConfigError(f"{where}: {exc}") from None
    except json.JSONDecodeError as exc:
        raise TenantConfigError(
            f"{where}: invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}"
        ) from None
    except (ValueError, RecursionError):
        raise TenantConfigError(f"{where}: invalid JSON") from None


def _read_file(raw: str) -> tuple[Any, str]:
    """Read and parse a tenants file chosen by its extension."""
    path = Path(raw).expanduser()
    where = f"tenants file {str(path)!r}"
    suffix = path.suffix.lower()
    if suffix not in (".toml", ".json"):
        raise TenantConfigError(
            f"{where}: CLASSROOM_TENANTS must be a JSON object or a path ending in .toml or .json"
        )
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise TenantConfigError(f"{where} does not exist") from None
    except IsADirectoryError:
        raise TenantConfigError(f"{where} is a directory, not a file") from None
    except OSError as exc:
        raise TenantConfigError(f"{where} cannot be read: {exc.strerror}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise TenantConfigError(f"{where} is not UTF-8 text") from None
    if suffix == ".json":
        return _parse_json(text, where), where
    try:
        return tomllib.loads(text), where
    except tomllib.TOMLDecodeError as exc:
        # tomllib's messages hold a reason, a position and keys, at most one character of a value.
        raise TenantConfigError(f"{where}: invalid TOML: {exc}") from None


def _build(document: Any, where: str) -> TenantRegistry:
    """Validate the parsed document and turn it into a registry."""
    if not isinstance(document, dict):
        raise TenantConfigError(f"{where}: must be an object mapping tenant ids to settings")
    if not document:
        raise TenantConfigError(f"{where}: defines no tenants")
    tenants: list[Tenant] = []
    for tenant_id, entry in document.items():
        if not isinstance(tenant_id, str) or not TENANT_ID_PATTERN.match(tenant_id):
            raise TenantConfigError(
                f"{where}: tenant id {_shown_id(str(tenant_id))} is invalid: use 1 to 63 "
                "lowercase letters, digits or '-', starting with a letter or digit"
            )
        if not isinstance(entry, dict):
            raise TenantConfigError(f"{where}: tenant {tenant_id!r} must be an object")
        try:
            model = _TenantModel.model_validate(entry)
        except ValidationError as exc:
            problems = "; ".join(
                _field_problem(e) for e in exc.errors(include_url=False, include_input=False)
            )
            raise TenantConfigError(f"{where}: tenant {tenant_id!r}: {problems}") from None
        for index, secret in enumerate(model.secrets):
            if len(secret.encode("utf-8", "surrogatepass")) < MIN_SECRET_BYTES:
                log.warning(
                    "tenant secret %d is shorter than %d bytes; use a longer random secret",
                    index,
                    MIN_SECRET_BYTES,
                    extra={"tenant": tenant_id},
                )
        if len(model.api_key) < MIN_API_KEY_CHARS:
            log.warning(
                "tenant API key is shorter than %d characters; use a longer random key",
                MIN_API_KEY_CHARS,
                extra={"tenant": tenant_id},
            )
        tenants.append(
            Tenant(
                id=tenant_id,
                secrets=tuple(model.secrets),
                api_key=model.api_key,
                display_name=model.display_name,
                history_retention_days=model.history_retention_days,
                progress_retention_days=model.progress_retention_days,
                invitations=model.invitations,
                audience=model.audience,
                max_token_lifetime=model.max_token_lifetime,
                attendance_retention_days=model.attendance_retention_days,
                webhook_url=model.webhook_url,
                webhook_secret=model.webhook_secret,
                presence_counts_only_above=model.presence_counts_only_above,
                frame_origins=tuple(model.frame_origins),
                student_marks=model.student_marks,
                student_pointers=model.student_pointers,
            )
        )
    return TenantRegistry(tenants)


def load_tenants(raw: str) -> TenantRegistry:
    """Load tenants from inline JSON or from a .toml/.json file (``CLASSROOM_TENANTS``)."""
    text = raw.strip()
    if not text:
        raise TenantConfigError("CLASSROOM_TENANTS is empty")
    if text.startswith(("{", "[")):
        where = "CLASSROOM_TENANTS"
        document = _parse_json(text, where)
    else:
        document, where = _read_file(text)
    return _build(document, where)


def demo_registry(secret: str | None = None, api_key: str | None = None) -> TenantRegistry:
    """A single ``demo`` tenant, so the server runs out of the box with no configuration."""
    tenant = Tenant(
        id="demo",
        secrets=(secret if secret is not None else secrets.token_urlsafe(32),),
        api_key=api_key if api_key is not None else secrets.token_urlsafe(32),
    )
    return TenantRegistry([tenant])
