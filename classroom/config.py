"""Settings from the environment (PROTOCOL.md section 9), read once at start and passed down.

Nothing here reads the environment at import time: ``Settings()`` does, so tests
can build as many independent configurations as they like, with keyword
arguments or with ``monkeypatch.setenv``.
"""

from __future__ import annotations

import secrets
from typing import Literal

from pydantic import Field, PrivateAttr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from auth.tenants import TenantRegistry, demo_registry, load_tenants

LogLevel = Literal["critical", "error", "warning", "info", "debug"]


class UnsafeDeploymentError(ValueError):
    """The settings are valid one by one but unsafe together; the message is safe to print."""


class Settings(BaseSettings):
    """Everything a node needs to know about its deployment."""

    model_config = SettingsConfigDict(
        env_prefix="",
        case_sensitive=False,
        populate_by_name=True,
        env_ignore_empty=True,
        extra="forbid",
        hide_input_in_errors=True,
    )

    # Deployment: where things are and how to reach them. Secret-bearing values stay out of repr.
    redis_url: str | None = Field(default=None, validation_alias="REDIS_URL", repr=False)
    tenants_raw: str | None = Field(default=None, validation_alias="CLASSROOM_TENANTS", repr=False)
    secret: str | None = Field(default=None, validation_alias="CLASSROOM_SECRET", repr=False)
    opentok_api_key: str | None = Field(default=None, validation_alias="OPENTOK_API_KEY")
    opentok_api_secret: str | None = Field(
        default=None, validation_alias="OPENTOK_API_SECRET", repr=False
    )
    opentok_api_url: str | None = Field(default=None, validation_alias="OPENTOK_API_URL")
    smtp_url: str | None = Field(default=None, validation_alias="SMTP_URL", repr=False)
    mail_from: str | None = Field(default=None, validation_alias="MAIL_FROM")
    sentry_dsn: str | None = Field(default=None, validation_alias="SENTRY_DSN", repr=False)
    log_level: LogLevel = Field(default="info", validation_alias="CLASSROOM_LOG_LEVEL")
    # Safe by default (docs/configuration.md, "Exposure"): /metrics, HTTP headers, API keys.
    metrics_token: str | None = Field(
        default=None, validation_alias="CLASSROOM_METRICS_TOKEN", repr=False
    )
    hsts_seconds: int = Field(default=0, ge=0, validation_alias="CLASSROOM_HSTS_SECONDS")
    # Off in production: /debug/census counts live objects for the soak test (classroom/census.py).
    debug_census: bool = Field(default=False, validation_alias="CLASSROOM_DEBUG_CENSUS")
    api_key_failure_limit: int = Field(
        default=10, ge=1, validation_alias="CLASSROOM_API_KEY_FAILURE_LIMIT"
    )
    api_key_failure_window: float = Field(
        default=60.0, gt=0, validation_alias="CLASSROOM_API_KEY_FAILURE_WINDOW"
    )

    # Operational knobs (PROTOCOL.md section 7 gives the defaults clients rely on).
    connect_timeout: float = Field(default=10.0, gt=0, validation_alias="CLASSROOM_CONNECT_TIMEOUT")
    ping_interval: int = Field(default=25, ge=0, validation_alias="CLASSROOM_PING_INTERVAL")
    max_frame_bytes: int = Field(default=65536, ge=1, validation_alias="CLASSROOM_MAX_FRAME_BYTES")
    rate_limit_per_second: float = Field(
        default=50.0, gt=0, validation_alias="CLASSROOM_RATE_LIMIT_PER_SECOND"
    )
    rate_limit_burst: int = Field(default=100, ge=1, validation_alias="CLASSROOM_RATE_LIMIT_BURST")
    bad_frames_limit: int = Field(default=20, ge=1, validation_alias="CLASSROOM_BAD_FRAMES_LIMIT")
    bad_frames_window: float = Field(
        default=60.0, gt=0, validation_alias="CLASSROOM_BAD_FRAMES_WINDOW"
    )
    max_connections_per_user: int = Field(
        default=10, ge=1, validation_alias="CLASSROOM_MAX_CONNECTIONS_PER_USER"
    )
    fanout_budget_scale: float = Field(
        default=1.0, gt=0, validation_alias="CLASSROOM_FANOUT_BUDGET_SCALE"
    )
    replay_stall_timeout: float = Field(
        default=10.0, gt=0, validation_alias="CLASSROOM_REPLAY_STALL_TIMEOUT"
    )
    send_queue_max_bytes: int = Field(
        default=1048576, ge=1, validation_alias="CLASSROOM_SEND_QUEUE_MAX_BYTES"
    )
    close_timeout: float = Field(default=5.0, ge=0, validation_alias="CLASSROOM_CLOSE_TIMEOUT")
    history_size: int = Field(default=10000, ge=0, validation_alias="CLASSROOM_HISTORY_SIZE")
    history_ttl: float = Field(default=86400.0, gt=0, validation_alias="CLASSROOM_HISTORY_TTL")
    erase_chunk: int = Field(default=500, ge=1, validation_alias="CLASSROOM_ERASE_CHUNK")
    # Replicas a publish waits for (Redis WAIT); docs/scaling.md, "What a failover can lose".
    redis_wait_replicas: int = Field(
        default=0, ge=0, le=16, validation_alias="CLASSROOM_REDIS_WAIT_REPLICAS"
    )
    redis_wait_timeout: float = Field(
        default=0.1, gt=0, le=2, validation_alias="CLASSROOM_REDIS_WAIT_TIMEOUT"
    )
    """Stored events an erasure reads or rewrites per Redis call: bounds how long one call
    holds up the other sessions on that Redis."""
    idempotency_ttl: float = Field(
        default=300.0, gt=0, validation_alias="CLASSROOM_IDEMPOTENCY_TTL"
    )
    token_leeway: float = Field(default=0.0, ge=0, validation_alias="CLASSROOM_TOKEN_LEEWAY")
    refresh_before: float = Field(
        default=60.0, ge=0, validation_alias="CLASSROOM_REFRESH_BEFORE"
    )
    drain_timeout: float = Field(default=10.0, ge=0, validation_alias="CLASSROOM_DRAIN_TIMEOUT")
    # Joins and leaves in progress at once, and how long a join waits for its turn
    # (classroom/sessions/admission.py; docs/configuration.md, "Server operation").
    admission_limit: int = Field(default=16, ge=1, validation_alias="CLASSROOM_ADMISSION_LIMIT")
    admission_max_wait: float = Field(
        default=10.0, gt=0, validation_alias="CLASSROOM_ADMISSION_MAX_WAIT"
    )
    # While connections pour in, young collections' survivors are frozen; thawed when calm
    # (classroom/edge/ramp_freeze.py; docs/configuration.md, "Server operation").
    gc_freeze_connects: int = Field(
        default=10, ge=0, validation_alias="CLASSROOM_GC_FREEZE_CONNECTS"
    )
    gc_thaw_after: float = Field(default=30.0, gt=0, validation_alias="CLASSROOM_GC_THAW_AFTER")
    static_dir: str | None = Field(default=None, validation_alias="CLASSROOM_STATIC_DIR")
    """Where the web client's files are when the package is installed without the
    repository around it (the container image); the repository's ``static/`` otherwise."""
    history_limit_max: int = Field(
        default=1000, ge=1, validation_alias="CLASSROOM_HISTORY_LIMIT_MAX"
    )
    redis_prefix: str = Field(
        default="classroom", pattern=r"^[A-Za-z0-9_.:-]{1,64}$",
        validation_alias="CLASSROOM_REDIS_PREFIX",
    )
    presence_ttl: float = Field(default=30.0, gt=0, validation_alias="CLASSROOM_PRESENCE_TTL")
    publish_timeout: float = Field(
        default=5.0, gt=0, validation_alias="CLASSROOM_PUBLISH_TIMEOUT"
    )
    progress_push_interval: float = Field(
        default=0.5, gt=0, validation_alias="CLASSROOM_PROGRESS_PUSH_INTERVAL"
    )
    presence_window: float = Field(
        default=0.1, gt=0, le=5.0, validation_alias="CLASSROOM_PRESENCE_WINDOW"
    )
    """Seconds of joins and leaves gathered into one ``presence.diff`` per member."""
    tally_window: float = Field(
        default=0.2, gt=0, le=5.0, validation_alias="CLASSROOM_TALLY_WINDOW"
    )
    """Seconds of poll answers told in one ``poll.tally`` to members that take coalesced
    tallies (``poll.tally.coalesced``)."""
    idle_after: float = Field(default=120.0, gt=0, validation_alias="CLASSROOM_IDLE_AFTER")
    # Durable session state (docs/configuration.md, "Session state").
    snapshot_every: int = Field(default=1000, ge=1, validation_alias="CLASSROOM_SNAPSHOT_EVERY")
    snapshot_max_age: float = Field(
        default=60.0, gt=0, validation_alias="CLASSROOM_SNAPSHOT_MAX_AGE"
    )
    session_idle: float = Field(default=300.0, gt=0, validation_alias="CLASSROOM_SESSION_IDLE")
    # Before a request or WebSocket upgrade (docs/configuration.md, "Connections").
    http_header_timeout: float = Field(
        default=10.0, gt=0, validation_alias="CLASSROOM_HTTP_HEADER_TIMEOUT"
    )
    http_idle_timeout: float = Field(
        default=5.0, gt=0, validation_alias="CLASSROOM_HTTP_IDLE_TIMEOUT"
    )
    max_connections_per_address: int = Field(
        default=1000, ge=0, validation_alias="CLASSROOM_MAX_CONNECTIONS_PER_ADDRESS"
    )
    video_token_ttl: float = Field(
        default=4 * 3600.0, gt=0, le=30 * 86400, validation_alias="CLASSROOM_VIDEO_TOKEN_TTL"
    )
    # Failed attempts before a mail is a dead letter; 36 with the back-off is about a day.
    mail_max_attempts: int = Field(
        default=36, ge=1, validation_alias="CLASSROOM_MAIL_MAX_ATTEMPTS"
    )
    # Webhooks to tenants' back ends (docs/configuration.md, "Webhooks").
    webhook_timeout: float = Field(
        default=5.0, gt=0, le=60, validation_alias="CLASSROOM_WEBHOOK_TIMEOUT"
    )
    webhook_max_attempts: int = Field(
        default=36, ge=1, validation_alias="CLASSROOM_WEBHOOK_MAX_ATTEMPTS"
    )

    _generated_secret: bytes = PrivateAttr(default_factory=lambda: secrets.token_bytes(32))
    _tenants: TenantRegistry | None = PrivateAttr(default=None)

    @field_validator(
        "redis_url",
        "tenants_raw",
        "secret",
        "opentok_api_key",
        "opentok_api_secret",
        "opentok_api_url",
        "smtp_url",
        "mail_from",
        "sentry_dsn",
        "metrics_token",
        mode="before",
    )
    @classmethod
    def _blank_is_unset(cls, value: object) -> object:
        """Treat a blank value like an unset one, as shells and .env files often produce."""
        if isinstance(value, str) and not value.strip():
            return None
        return value

    @field_validator("log_level", mode="before")
    @classmethod
    def _lower_log_level(cls, value: object) -> object:
        """Accept INFO as well as info."""
        return value.strip().lower() if isinstance(value, str) else value

    def secret_bytes(self) -> bytes:
        """Key for pseudonymous ids: ``CLASSROOM_SECRET``, or one generated for this process."""
        if self.secret is not None:
            return self.secret.encode("utf-8")
        return self._generated_secret

    @property
    def is_demo(self) -> bool:
        """Whether no tenants are configured, so the generated ``demo`` tenant is used."""
        return self.tenants_raw is None

    def check_deployment(self) -> None:
        """Refuse a deployment that is unsafe to run: raise :class:`UnsafeDeploymentError`.

        With ``REDIS_URL`` several nodes share the sessions, so each needs the same
        ``CLASSROOM_SECRET`` (or one student gets a different pid on each node) and real
        tenants (or every node runs its own demo tenant and prints its keys). The app calls
        this when it is built, so ``classroom serve`` and in-process apps meet it alike.
        """
        if self.redis_url is None:
            return
        missing = [name for name, value in (("CLASSROOM_SECRET", self.secret),
                                            ("CLASSROOM_TENANTS", self.tenants_raw))
                   if value is None]
        if missing:
            verb = "is" if len(missing) == 1 else "are"
            raise UnsafeDeploymentError(
                f"REDIS_URL is set but {' and '.join(missing)} {verb} not: nodes sharing Redis"
                " need the same CLASSROOM_SECRET (else one student gets a different pid on each"
                " node) and configured CLASSROOM_TENANTS (else each node runs a demo tenant and"
                " prints its keys)"
            )

    def load_tenants(self) -> TenantRegistry:
        """The configured tenants (or the demo tenant), loaded once and then reused."""
        if self._tenants is None:
            if self.tenants_raw is None:
                self._tenants = demo_registry()
            else:
                self._tenants = load_tenants(self.tenants_raw)
        return self._tenants
