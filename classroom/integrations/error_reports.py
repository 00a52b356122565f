"""Error reports to Sentry, with personal data scrubbed before anything leaves the process.

Contract (PROTOCOL.md section 6): error reports hold no e-mail address, phone
number or token. The server already keeps personal data out of its logs
(``classroom.logs``), but an error report carries more than a log line: the
exception's message, the stack, breadcrumbs of earlier log records and their
extras. This module assumes any of those *could* contain personal data (an
exception message built from a participant's record, say) and scrubs in depth:

1. Collection is off where the SDK offers a switch: no local variables (the SDK
   sends them by default and they hold participants' records), no request
   bodies, no auto-enabled framework integrations (Starlette's would attach the
   server API's headers and query strings), no release-health sessions, and
   ``send_default_pii`` left at its off value (see ``init_error_reports``).
2. ``EventScrubber(recursive=True)`` with a denylist extended by the protocol's
   personal claims: the SDK's default scrubber matches top-level key names only
   (ARCHITECTURE.md, pitfall 5).
3. ``before_send`` and ``before_breadcrumb`` walk the *whole* event (``scrub``):
   values under denied keys are dropped at any depth, and e-mail addresses,
   phone numbers, JWTs, bearer tokens, ``key=secret`` pairs and URL credentials
   are redacted inside every string. ``before_send`` runs after the SDK has
   serialised the event, so objects have become the strings that would be sent
   and are scrubbed too. If it fails, the SDK drops the event: it fails closed.

Names in free text cannot be recognised by a pattern; they are kept out by the
key denylist and by not sending local variables.
"""

from __future__ import annotations

import logging
import re
from typing import Any, Final, cast

import sentry_sdk
from sentry_sdk.integrations import Integration
from sentry_sdk.integrations.atexit import AtexitIntegration
from sentry_sdk.integrations.dedupe import DedupeIntegration
from sentry_sdk.integrations.excepthook import ExcepthookIntegration
from sentry_sdk.integrations.logging import LoggingIntegration, ignore_logger
from sentry_sdk.integrations.modules import ModulesIntegration
from sentry_sdk.integrations.threading import ThreadingIntegration
from sentry_sdk.scrubber import DEFAULT_DENYLIST, EventScrubber
from sentry_sdk.types import Breadcrumb, BreadcrumbHint, Event, Hint

REDACTED: Final = "[redacted]"
"""What a personal datum found inside a string is replaced with."""

FILTERED: Final = "[Filtered]"
"""What the value of a denied key is replaced with (the SDK's own marker)."""

PERSONAL_KEYS: Final = (
    # the protocol's personal claims and their usual spellings
    "email", "e_mail", "email_address", "mail",
    "phone", "phone_number", "mobile", "telephone", "tel",
    "name", "first_name", "last_name", "full_name", "display_name",
    "username", "user_name", "sub",
    # credentials
    "token", "access_token", "refresh_token", "id_token", "connection_token", "jwt",
    "authorization", "bearer", "api_key", "apikey", "x_api_key",
    "secret", "secrets", "client_secret", "password", "passwd",
    "ip_address", "remote_addr", "x_forwarded_for", "x_real_ip",
)
"""Keys whose values never go into a report, matched exactly (case-insensitive)."""

DENYLIST: Final[list[str]] = [*DEFAULT_DENYLIST, *PERSONAL_KEYS]
"""The ``EventScrubber`` denylist: the SDK's defaults plus the personal keys."""

_DENIED_KEY_PARTS: Final = (
    "email", "e_mail", "phone", "password", "passwd", "secret", "token", "jwt",
    "authorization", "cookie", "api_key", "apikey", "credential",
)
"""Fragments that deny a key wherever they occur in it (``user_email``, ``HTTP_AUTHORIZATION``).

``name`` is matched exactly only: as a fragment it would hit ``filename`` and
``server_name``, which the SDK needs.
"""

_DENIED_KEYS: Final = frozenset(key.lower().replace("-", "_") for key in DENYLIST)

# Order matters: each pattern's replacement contains nothing a later one matches.
_PATTERNS: Final[tuple[tuple[re.Pattern[str], str], ...]] = (
    # user:password@ in URLs (smtp://user:pass@host, redis://:pass@host)
    (re.compile(r"(?i)\b([a-z][a-z0-9+.\-]*://)[^/\s:@]*(?::[^/\s@]*)?@"), rf"\1{REDACTED}@"),
    # JWTs: base64url of '{"' is 'eyJ'; also a fragment cut short by truncation
    (re.compile(r"eyJ[A-Za-z0-9_\-]{8,}(?:\.[A-Za-z0-9_\-]*){0,2}"), REDACTED),
    # Authorization header values
    (re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9\-._~+/]+=*"), rf"\1 {REDACTED}"),
    # token=..., "api_key": "...", password: ...
    (
        re.compile(
            r"(?i)\b((?:access_|refresh_|id_)?token|api[_\-]?key|secret|password|passwd|pwd"
            r"|authorization|jwt)([\"']?\s*[=:]\s*)([\"']?)[^\s\"'&,;]+"
        ),
        rf"\1\2\3{REDACTED}",
    ),
    # e-mail addresses, including ones whose domain was cut off by truncation
    (re.compile(r"[\w.%+'\-]+@[\w\-]+(?:\.[\w\-]+)*"), REDACTED),
    # phone numbers: +31 6 1234 5678, +31 (0)20 123 4567, 06-12345678, and any
    # other run of 8 or more digits with spaces, dashes, slashes or parentheses
    # between them. Dots are not separators, so versions, IP addresses and
    # ISO timestamps stay readable.
    (re.compile(r"(?<![\w+])\+?\(?\d(?:[ \u00a0\-/()]{0,3}\d){7,}(?!\w)"), REDACTED),
)

_SDK_OWNED_FIELDS: Final = frozenset({
    "event_id", "timestamp", "start_timestamp", "received", "level", "platform", "type",
    "sdk", "modules", "release", "dist", "environment", "server_name", "transaction_info",
})
"""Top-level event fields the SDK fills from its own configuration and runtime, never
from application data; passed through untouched so ids, timestamps and the SDK's
identity (``sdk.name``) stay valid for Sentry."""

_SDK_OWNED_CONTEXTS: Final = frozenset({"trace"})
"""Contexts made of SDK-generated ids (trace and span ids)."""

_DROPPED_FIELDS: Final = frozenset({"user"})
"""Top-level fields never sent: nothing here sets a user, and one set by a library
would identify a person."""


def redact_text(text: str) -> str:
    """``text`` with e-mail addresses, phone numbers, JWTs and other tokens replaced."""
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def is_denied_key(key: str) -> bool:
    """Whether values under ``key`` are personal data or credentials, at any depth."""
    normal = key.strip().lower().replace("-", "_")
    return normal in _DENIED_KEYS or any(part in normal for part in _DENIED_KEY_PARTS)


def scrub(value: Any) -> Any:
    """A copy of ``value`` with personal data removed, recursively.

    Dicts, lists, tuples, sets and frozensets are walked to any depth: values of
    denied keys become ``FILTERED``; every string (dict keys included) has
    e-mail addresses, phone numbers and tokens replaced by ``REDACTED``. Other
    values (numbers, booleans, None, bytes, objects) are returned unchanged.
    """
    return _scrub(value, deny_keys=True)


def _scrub(value: Any, *, deny_keys: bool) -> Any:
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, dict):
        cleaned: dict[Any, Any] = {}
        for key, item in value.items():
            if not isinstance(key, str):
                cleaned[key] = _scrub(item, deny_keys=deny_keys)
            elif deny_keys and is_denied_key(key):
                cleaned[redact_text(key)] = FILTERED
            else:  # keys may carry data too ({"jan@example.nl": ...})
                cleaned[redact_text(key)] = _scrub(item, deny_keys=deny_keys)
        return cleaned
    if isinstance(value, list):
        return [_scrub(item, deny_keys=deny_keys) for item in value]
    if isinstance(value, tuple | set | frozenset):
        return type(value)(_scrub(item, deny_keys=deny_keys) for item in value)
    return value


def scrub_event(event: Event, hint: Hint | None = None) -> Event:
    """The ``before_send`` hook: the whole event scrubbed, SDK-owned fields kept.

    ``_meta`` (the SDK's notes on what it trimmed, keyed by event paths) keeps
    its structure: only its strings are redacted, so Sentry can still read it.
    """
    cleaned: dict[str, Any] = {}
    for key, value in event.items():
        if key in _DROPPED_FIELDS:
            continue
        if key in _SDK_OWNED_FIELDS:
            cleaned[key] = value
        elif key == "_meta":
            cleaned[key] = _scrub(value, deny_keys=False)
        elif key == "contexts" and isinstance(value, dict):
            cleaned[key] = {
                name: context if name in _SDK_OWNED_CONTEXTS else scrub(context)
                for name, context in value.items()
            }
        else:
            cleaned[key] = scrub(value)
    return cast("Event", cleaned)


def scrub_breadcrumb(crumb: Breadcrumb, hint: BreadcrumbHint | None = None) -> Breadcrumb:
    """The ``before_breadcrumb`` hook: log records' messages and extras scrubbed on arrival.

    ``scrub_event`` scrubs breadcrumbs again when an event is sent (after
    serialisation turned objects into strings); this pass keeps personal data
    from sitting in the scope's memory in the meantime.
    """
    return cast("Breadcrumb", scrub(crumb))


def _integrations() -> list[Integration]:
    """The SDK integrations in use, chosen rather than defaulted.

    Kept: logging (error records become events, lower ones breadcrumbs),
    excepthook and threading (uncaught errors), dedupe, atexit (flush on exit),
    modules (package versions). Left out: stdlib (breadcrumbs of outgoing URLs
    and subprocess arguments), argv, and every auto-enabled framework
    integration, which attach request headers, cookies and query strings.
    """
    return [
        LoggingIntegration(level=logging.INFO, event_level=logging.ERROR),
        ExcepthookIntegration(),
        ThreadingIntegration(),
        DedupeIntegration(),
        AtexitIntegration(),
        ModulesIntegration(),
    ]


def init_error_reports(
    dsn: str | None,
    *,
    environment: str = "production",
    release: str | None = None,
    shutdown_timeout: float = 2.0,
) -> bool:
    """Start sending error reports to ``dsn``; False, and nothing started, without one.

    ``dsn`` None (or blank) means reports are off. The SDK is not even asked,
    because ``sentry_sdk.init`` with no DSN would read ``SENTRY_DSN`` itself.

    ``send_default_pii`` is deliberately not passed: in sentry-sdk 2.75 passing
    it at all (even ``False``) emits a ``DeprecationWarning`` in favour of
    ``data_collection``, and passing ``data_collection`` instead disables the
    ``event_scrubber``. Left unset, the SDK resolves it to its off value; this
    function checks that after ``init`` and refuses to run otherwise, so an SDK
    whose default changes cannot start sending personal data silently.

    ``shutdown_timeout`` bounds how long ``shutdown_error_reports`` (and the
    SDK's exit hook) wait for queued reports to be sent.
    """
    if dsn is None or not dsn.strip():
        return False
    shutdown_error_reports()  # a second init must not leak the first client's worker
    # A logger that records client addresses, should uvicorn's access log be turned on.
    ignore_logger("uvicorn.access")

    sentry_sdk.init(
        dsn=dsn.strip(),
        environment=environment,
        release=release,
        include_local_variables=False,
        max_request_body_size="never",
        event_scrubber=EventScrubber(recursive=True, denylist=list(DENYLIST)),
        before_send=scrub_event,
        before_breadcrumb=scrub_breadcrumb,
        default_integrations=False,
        auto_enabling_integrations=False,
        integrations=_integrations(),
        auto_session_tracking=False,
        in_app_include=["classroom", "auth", "presence"],
        shutdown_timeout=shutdown_timeout,
    )
    client = sentry_sdk.get_client()
    if client.should_send_default_pii() or client.options.get("include_local_variables"):
        shutdown_error_reports(timeout=0)
        raise RuntimeError("sentry-sdk would send personal data; error reports not started")
    return True


def error_reports_active() -> bool:
    """Whether a client is set up and able to send."""
    client = sentry_sdk.get_client()
    return client.is_active() and client.transport is not None


def shutdown_error_reports(timeout: float | None = None) -> None:
    """Send what is queued (waiting up to ``timeout``, default the client's
    ``shutdown_timeout``), then stop the client and drop it from the SDK's global scope.

    Safe to call when reports were never started. Afterwards the SDK behaves as
    if never initialised (its integrations' hooks stay installed but are inert),
    so tests can init and shut down repeatedly in one process.
    """
    client = sentry_sdk.get_client()
    if not client.is_active():
        return
    if timeout is None or timeout > 0:
        sentry_sdk.flush(timeout=timeout)
    client.close(timeout=0)
    sentry_sdk.get_global_scope().set_client(None)
    for scope in (sentry_sdk.get_isolation_scope(), sentry_sdk.get_current_scope()):
        scope.clear_breadcrumbs()
