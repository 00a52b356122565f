"""Error reports (section 6 and 9, ARCHITECTURE pitfall 5): no e-mail, phone, name or token leaves.

The unit tests pin down ``scrub``. The others run the real ``sentry-sdk`` with
its real HTTP transport against a fake ingest server on loopback and search the
decoded envelopes it received: that is exactly what would reach Sentry.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator, Sequence
from typing import Any

import jwt
import orjson
import pytest
import sentry_sdk

from classroom.integrations import error_reports as errorreports
from classroom.integrations.error_reports import (
    FILTERED,
    REDACTED,
    init_error_reports,
    scrub,
    scrub_event,
    shutdown_error_reports,
)
from tests.client import Client
from tests.conftest import RunningServer
from tests.fakes.sentry_server import FakeSentry, parse_envelope

# Personal data lives up here, far from the code that raises, so that the
# source lines the SDK attaches to a stack frame cannot contain it verbatim:
# whatever reaches the fake server got there through the data path under test.
EMAIL = "marieke.verhoeven@mail.example"
PHONE = "+31 6 4711 0815"
NAME = "Marieke Verhoeven"
API_KEY = "acme-live-key-7f3a9c21d4"
JWT = jwt.encode(
    {"sub": "student-ref-4711", "email": EMAIL, "name": NAME},
    "a-signing-secret-long-enough-for-hs256",
    algorithm="HS256",
)

STUDENT: dict[str, Any] = {"name": "Xanthe Quistorp", "email": "xanthe.q@mail.example",
           "phone": "06-48151623", "username": "xquist"}
TRAINER: dict[str, Any] = {"name": "Wendelien Brouwersgracht", "email": "wendelien@acme.example",
           "phone": "+31600000071", "username": "wbrouwer"}
STUDENT_SUB = "student-ref-8191"
TRAINER_SUB = "trainer-ref-7107"


def personal_strings() -> list[str]:
    """Every string that must not appear in any envelope."""
    values = [EMAIL, PHONE, NAME, API_KEY, JWT, STUDENT_SUB, TRAINER_SUB]
    for person in (STUDENT, TRAINER):
        values.extend(person.values())
        values.extend(person["name"].split())
    values.extend(value.replace(" ", "").replace("-", "") for value in (PHONE, STUDENT["phone"]))
    return values


def leaks(bodies: list[bytes], extra: Sequence[str] = ()) -> list[str]:
    """The personal strings found in ``bodies`` (decoded envelopes)."""
    text = b"\n".join(bodies).decode("utf-8", "replace")
    return [value for value in [*personal_strings(), *extra] if value in text]


@pytest.fixture
def fake_sentry(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeSentry]:
    """A loopback ingest server; proxies from the environment must not get in the way."""
    for name in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY"):
        monkeypatch.delenv(name, raising=False)
    with FakeSentry() as fake:
        yield fake


@pytest.fixture
def error_reports(fake_sentry: FakeSentry) -> Iterator[FakeSentry]:
    """Error reports started against the fake, and always shut down again.

    The SDK keeps its client in global state: without the teardown, later
    tests would report to a dead port.
    """
    assert init_error_reports(fake_sentry.dsn(), environment="test", release="classroom@test")
    try:
        yield fake_sentry
    finally:
        shutdown_error_reports()
        assert not sentry_sdk.is_initialized()


# -- scrub(): unit tests ----------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        f"could not mail {EMAIL}",
        "first.last+tag@sub.example.co.uk bounced",
        "cut short: marieke.verhoeven@mail.exa",
        f"call {PHONE}",
        "call +31612345678",
        "call +31 (0)20 123 4567 now",
        "call 06-12345678",
        "call 0612345678",
        "call 020 123 4567",
        "call 030/2345678",
        "generic 555 123 4567",
        f"token {JWT} refused",
        f"truncated {JWT[:30]}",
        f"Authorization: Bearer {API_KEY}",
        f"api_key={API_KEY}&x=1",
        f'{{"password": "{API_KEY}"}}',
        f"redis://:{API_KEY}@redis.internal:6379/0",
    ],
)
def test_personal_data_inside_strings_is_redacted(text: str) -> None:
    cleaned = scrub(text)
    assert REDACTED in cleaned
    for value in (EMAIL, PHONE, JWT, API_KEY, "12345678", "1234567", "2345678", "4567",
                  "first.last", "marieke.verhoeven", JWT[:30]):
        assert value not in cleaned, (text, cleaned)


@pytest.mark.parametrize(
    "text",
    [
        "2026-11-25T20:40:55.165411Z",
        "2026-11-25T20:40:55.165411+00:00",
        "certifi 2026.10.19.post1",
        "listening on 127.0.0.1:8000",
        "offset 42 of 1000",
        "e7a1c5320e634fe5afaa2c3ee094e2a0",
        "TokenError: connect refused",
        "    @pytest.fixture",
        "Participant(pid='p0c5e1f9a7b3d2c4e6f8a0', role='student')",
    ],
)
def test_ordinary_diagnostics_stay_readable(text: str) -> None:
    assert scrub(text) == text


def test_nested_containers_keep_their_shape_and_types() -> None:
    value: dict[str, Any] = {
        "outer": [
            {"note": f"mail {EMAIL}", "count": 3},
            (f"tel {PHONE}", 4.5, None, True),
            [[{"deeper": (JWT,)}]],
        ],
        "set": frozenset({f"x {EMAIL}"}),
    }
    cleaned = scrub(value)
    assert cleaned == {
        "outer": [
            {"note": f"mail {REDACTED}", "count": 3},
            (f"tel {REDACTED}", 4.5, None, True),
            [[{"deeper": (REDACTED,)}]],
        ],
        "set": frozenset({f"x {REDACTED}"}),
    }
    assert isinstance(cleaned["outer"][1], tuple)
    assert value["outer"][0]["note"] == f"mail {EMAIL}", "scrub must not mutate its input"


@pytest.mark.parametrize(
    "key",
    ["email", "Email", "phone", "name", "display_name", "username", "sub", "token",
     "jwt", "authorization", "Authorization", "api_key", "X-Api-Key", "secret",
     "password", "user_email", "HTTP_AUTHORIZATION", "refresh_token", "phone_number",
     "cookie", "session_token"],
)
def test_denied_keys_are_dropped_at_any_depth(key: str) -> None:
    value = {key: "anything", "a": {"b": [{"c": ({key: {"nested": 1}},)}]}}
    assert scrub(value) == {key: FILTERED, "a": {"b": [{"c": ({key: FILTERED},)}]}}


@pytest.mark.parametrize("key", ["filename", "server_name", "pid", "role", "kind", "module",
                                 "function", "command", "count", "type"])
def test_diagnostic_keys_are_kept(key: str) -> None:
    assert scrub({key: "value"}) == {key: "value"}


def test_non_string_values_are_untouched() -> None:
    marker = object()
    values: list[Any] = [12345678901, 3.14, None, True, b"raw@bytes.example", marker]
    cleaned = scrub(values)
    assert cleaned == values
    assert all(a is b for a, b in zip(cleaned, values, strict=True))


def test_dict_keys_that_carry_personal_data_are_redacted() -> None:
    assert scrub({EMAIL: 1, 2: f"{PHONE}"}) == {REDACTED: 1, 2: REDACTED}


def test_scrub_event_keeps_sdk_fields_and_drops_the_user() -> None:
    event: Any = {
        "event_id": "0123456789abcdef0123456789abcdef",
        "timestamp": "2026-11-25T20:40:55.165411Z",
        "release": "2026.11.25", "environment": "test", "server_name": "node-1",
        "sdk": {"name": "sentry.python", "packages": [{"name": "pypi:sentry-sdk"}]},
        "contexts": {"trace": {"trace_id": "12345678901234567890123456789012",
                               "span_id": "1234567890123456"},
                     "lesson": {"email": EMAIL, "title": f"by {EMAIL}"}},
        "user": {"id": STUDENT_SUB, "email": EMAIL},
        "extra": {"profile": {"name": NAME}},
        "_meta": {"extra": {"email": {"": {"rem": [["!config", "s"]]}}}},
    }
    cleaned: Any = scrub_event(event, {})
    assert "user" not in cleaned
    for key in ("event_id", "timestamp", "release", "environment", "server_name", "sdk"):
        assert cleaned[key] == event[key]
    assert cleaned["contexts"]["trace"] == event["contexts"]["trace"]
    assert cleaned["contexts"]["lesson"] == {"email": FILTERED, "title": f"by {REDACTED}"}
    assert cleaned["extra"] == {"profile": {"name": FILTERED}}
    assert cleaned["_meta"] == event["_meta"], "the SDK's own notes keep their structure"


# -- the real SDK against the fake server ------------------------------------------------


def test_without_a_dsn_nothing_is_initialised(
    fake_sentry: FakeSentry, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The SDK would fall back to SENTRY_DSN by itself; init_error_reports must not.
    monkeypatch.setenv("SENTRY_DSN", fake_sentry.dsn())
    for dsn in (None, "", "   "):
        assert init_error_reports(dsn) is False
        assert not sentry_sdk.is_initialized()
    sentry_sdk.capture_message(f"nobody hears this {EMAIL}")
    sentry_sdk.flush(timeout=0.5)
    shutdown_error_reports()  # harmless when never started
    assert fake_sentry.requests == []


def test_collection_switches_are_off(error_reports: FakeSentry) -> None:
    client = sentry_sdk.get_client()
    options = client.options
    assert client.should_send_default_pii() is False
    assert options["include_local_variables"] is False
    assert options["max_request_body_size"] == "never"
    assert options["auto_session_tracking"] is False
    assert options["data_collection"]["user_info"] is False
    assert options["data_collection"]["stack_frame_variables"] is False
    scrubber = options["event_scrubber"]
    assert scrubber.recursive is True
    assert {"email", "phone", "name", "display_name", "username", "sub", "token", "jwt",
            "authorization", "api_key", "secret", "password"} <= set(scrubber.denylist)
    assert options["before_send"] is scrub_event
    assert set(client.integrations) == {
        "logging", "excepthook", "threading", "dedupe", "atexit", "modules",
    }, "framework integrations (starlette, httpx, redis...) would attach request data"


def test_an_sdk_that_would_send_personal_data_is_refused(
    fake_sentry: FakeSentry, monkeypatch: pytest.MonkeyPatch
) -> None:
    """If a future SDK turned personal data on by default, start nothing rather than leak."""
    monkeypatch.setattr(sentry_sdk.client._Client, "should_send_default_pii", lambda self: True)
    with pytest.raises(RuntimeError, match="personal data"):
        init_error_reports(fake_sentry.dsn())
    assert not sentry_sdk.is_initialized()


def _notify(address: str, phone: str, token: str, api_key: str) -> None:
    """Fails the way careless code does: personal data in locals and in the message."""
    recipient = {"email": address, "phone": phone, "name": address.split("@")[0]}
    headers = {"Authorization": f"Bearer {api_key}"}
    raise RuntimeError(f"could not notify {recipient['email']} with {token} ({len(headers)})")


def test_forced_error_reaches_the_server_without_personal_data(
    error_reports: FakeSentry,
) -> None:
    log = logging.getLogger("classroom")
    log.warning("about to mail %s at %s", EMAIL, PHONE)  # becomes a breadcrumb
    try:
        _notify(EMAIL, PHONE, JWT, API_KEY)
    except RuntimeError as exc:
        sentry_sdk.capture_exception(exc)
    log.error("mail to %s bounced (token %s)", EMAIL, JWT, extra={"email": EMAIL, "pid": "p1"})
    log.error(f"phone {PHONE} unreachable", extra={"display_name": NAME, "username": "mv"})
    sentry_sdk.flush(timeout=5)

    events = error_reports.events()
    assert len(events) == 3, [e.get("logentry") or e.get("exception") for e in events]
    crashed = next(e for e in events if "exception" in e)
    (exception,) = crashed["exception"]["values"]
    assert exception["type"] == "RuntimeError"
    assert exception["value"].startswith(f"could not notify {REDACTED} with {REDACTED}")
    frames = exception["stacktrace"]["frames"]
    assert any(frame["function"] == "_notify" for frame in frames)
    assert all("vars" not in frame for frame in frames), "local variables must not be sent"
    crumbs = crashed["breadcrumbs"]["values"]
    assert any(c.get("message") == f"about to mail {REDACTED} at {REDACTED}" for c in crumbs)

    logged = [e for e in events if e.get("logger") == "classroom"]
    assert {e["logentry"]["formatted"] for e in logged} >= {
        f"mail to {REDACTED} bounced (token {REDACTED})",
    }
    assert any(e.get("extra", {}).get("pid") == "p1" for e in logged)

    assert any(e.get("extra", {}).get("display_name") == FILTERED for e in logged)

    requests = error_reports.requests
    assert {r.headers.get("content-encoding") for r in requests} == {"gzip"}, "the SDK's default"
    bodies = error_reports.bodies
    assert b"RuntimeError" in b"".join(bodies)
    assert leaks(bodies) == []


def error_events(fake: FakeSentry) -> list[dict[str, Any]]:
    return [event for event in fake.events() if event.get("level") == "error"]


def test_the_leak_search_catches_an_unscrubbed_sdk(fake_sentry: FakeSentry) -> None:
    """Negative control: the same failure through a plain SDK set-up is caught leaking."""
    sentry_sdk.init(dsn=fake_sentry.dsn(), default_integrations=False)
    try:
        try:
            _notify(EMAIL, PHONE, JWT, API_KEY)
        except RuntimeError as exc:
            sentry_sdk.capture_exception(exc)
        sentry_sdk.flush(timeout=5)
    finally:
        shutdown_error_reports()
    assert {EMAIL, PHONE, JWT, API_KEY} <= set(leaks(fake_sentry.bodies))


def test_shutdown_makes_the_sdk_inert(fake_sentry: FakeSentry) -> None:
    assert init_error_reports(fake_sentry.dsn()) is True
    assert errorreports.error_reports_active()
    shutdown_error_reports()
    assert not sentry_sdk.is_initialized()
    assert not errorreports.error_reports_active()
    logging.getLogger("classroom").error("after shutdown %s", EMAIL)
    sentry_sdk.capture_message("after shutdown")
    sentry_sdk.flush(timeout=0.5)
    assert error_events(fake_sentry) == []


def test_fake_server_parses_both_item_framings() -> None:
    # Items carry a length, or run to the end of the line: the fake reads both.
    item = orjson.dumps({"message": "hi"})
    body = (b'{"event_id":"e"}\n' + orjson.dumps({"type": "event", "length": len(item)})
            + b"\n" + item + b"\n" + b'{"type":"client_report"}\n{"a":1}\n')
    envelope = parse_envelope(body)
    assert envelope.headers == {"event_id": "e"}
    assert [i.type for i in envelope.items] == ["event", "client_report"]
    assert envelope.items[0].json() == {"message": "hi"}
    assert envelope.items[1].json() == {"a": 1}


# -- end to end: a forced error inside a live session ------------------------------------


async def test_error_inside_a_session_is_reported_without_the_lessons_personal_data(
    server: RunningServer, error_reports: FakeSentry, monkeypatch: pytest.MonkeyPatch
) -> None:
    trainer = await server.member(TRAINER_SUB, "trainer", **TRAINER)
    student_token = server.token(STUDENT_SUB, "student", ["s1"], **STUDENT)
    student = await Client.open(server.ws_url)
    assert (await student.connect(student_token))["type"] == "connected"
    assert (await student.request("join", session="s1"))["type"] == "joined"

    def failing_prepare_event(raw: Any, actor: Any, state: Any, *, now: float,
                              **options: Any) -> Any:
        """A bug that puts the actor's profile and credentials into the exception."""
        raise RuntimeError(
            f"boom for {actor.email} / {actor.phone} / token {student_token} / {raw['text']}"
        )

    monkeypatch.setattr("classroom.sessions.publishing.complete_event", failing_prepare_event)
    reply = await student.request(
        "publish", session="s1", event={"kind": "chat", "text": f"mail me: {EMAIL}"}
    )
    assert reply["type"] == "error" and reply["code"] == "internal", reply
    assert NAME not in orjson.dumps(reply).decode() and EMAIL not in orjson.dumps(reply).decode()
    assert (await student.request("ping"))["type"] == "pong", "the connection stays up"

    def is_the_crash(event: dict[str, Any]) -> bool:
        values = event.get("exception", {}).get("values", [])
        return any(value.get("type") == "RuntimeError" for value in values)

    event = await asyncio.to_thread(error_reports.wait_for_event, is_the_crash, 10.0)
    assert event["logger"] == "classroom.handlers"
    (exception,) = event["exception"]["values"]
    assert exception["value"] == (
        f"boom for {REDACTED} / {REDACTED} / token {REDACTED} / mail me: {REDACTED}"
    )
    frames = exception["stacktrace"]["frames"]
    assert any(frame.get("module") == "classroom.sessions.publishing" for frame in frames)
    assert all("vars" not in frame for frame in frames)

    await student.close()
    await trainer.close()
    await asyncio.to_thread(sentry_sdk.flush, 5)
    bodies = error_reports.bodies
    assert b"RuntimeError" in b"".join(bodies)
    assert leaks(bodies, [student_token]) == []
