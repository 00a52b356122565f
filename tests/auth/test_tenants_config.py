"""Tenant configuration (CLASSROOM_TENANTS) and Settings from the environment."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from auth.tenants import (
    Tenant,
    TenantConfigError,
    TenantRegistry,
    demo_registry,
    load_tenants,
)
from auth.tokens import issue_token, verify_token
from classroom.config import Settings

SECRET = "tenant-secret-" + "q" * 40
ROTATED = "rotated-secret-" + "r" * 40
API_KEY = "api-key-" + "k" * 40

ENV_NAMES = (
    "REDIS_URL",
    "CLASSROOM_TENANTS",
    "CLASSROOM_SECRET",
    "OPENTOK_API_KEY",
    "OPENTOK_API_SECRET",
    "OPENTOK_API_URL",
    "SMTP_URL",
    "MAIL_FROM",
    "SENTRY_DSN",
    "CLASSROOM_LOG_LEVEL",
    "CLASSROOM_CONNECT_TIMEOUT",
    "CLASSROOM_PING_INTERVAL",
    "CLASSROOM_MAX_FRAME_BYTES",
    "CLASSROOM_RATE_LIMIT_PER_SECOND",
    "CLASSROOM_RATE_LIMIT_BURST",
    "CLASSROOM_BAD_FRAMES_LIMIT",
    "CLASSROOM_BAD_FRAMES_WINDOW",
    "CLASSROOM_SEND_QUEUE_MAX_BYTES",
    "CLASSROOM_CLOSE_TIMEOUT",
    "CLASSROOM_HISTORY_SIZE",
    "CLASSROOM_HISTORY_TTL",
    "CLASSROOM_IDEMPOTENCY_TTL",
    "CLASSROOM_TOKEN_LEEWAY",
    "CLASSROOM_DRAIN_TIMEOUT",
    "CLASSROOM_HISTORY_LIMIT_MAX",
)


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ENV_NAMES:
        monkeypatch.delenv(name, raising=False)


def config(**tenants: Any) -> dict[str, Any]:
    return tenants or {
        "acme": {"secrets": [SECRET, ROTATED], "api_key": API_KEY, "display_name": "full"},
        "globex": {"secrets": [ROTATED + "-g"], "api_key": API_KEY + "-g"},
    }


def assert_acme_globex(registry: TenantRegistry) -> None:
    assert registry.ids() == ["acme", "globex"]
    assert len(registry) == 2
    acme = registry.get("acme")
    assert acme == Tenant("acme", (SECRET, ROTATED), API_KEY, "full")
    globex = registry.get("globex")
    assert globex is not None
    assert globex.display_name == "first"
    assert [t.id for t in registry] == ["acme", "globex"]


def message_of(raw: str) -> str:
    with pytest.raises(TenantConfigError) as info:
        load_tenants(raw)
    message = str(info.value)
    assert SECRET not in message
    assert ROTATED not in message
    assert API_KEY not in message
    assert info.value.__cause__ is None
    assert info.value.__context__ is None or info.value.__suppress_context__
    return message


# --- Tenant and TenantRegistry ---------------------------------------------------


def test_tenant_repr_hides_secrets() -> None:
    tenant = Tenant("acme", (SECRET, ROTATED), API_KEY)
    for text in (repr(tenant), str(tenant), repr([tenant]), repr(TenantRegistry([tenant]))):
        assert SECRET not in text
        assert ROTATED not in text
        assert API_KEY not in text
    assert "acme" in repr(tenant)
    assert tenant.display_name == "first"


@pytest.mark.parametrize(
    ("secrets", "api_key"), [((), "k"), (("",), "k"), (("s", ""), "k"), (("s",), "")]
)
def test_tenant_refuses_empty_secret_or_key(secrets: tuple[str, ...], api_key: str) -> None:
    with pytest.raises(TenantConfigError):
        Tenant("acme", secrets, api_key)


def test_registry_lookup_by_api_key() -> None:
    registry = load_tenants(json.dumps(config()))
    acme = registry.by_api_key(API_KEY)
    assert acme is not None
    assert acme.id == "acme"
    globex = registry.by_api_key(API_KEY + "-g")
    assert globex is not None
    assert globex.id == "globex"
    assert registry.by_api_key("wrong") is None
    assert registry.by_api_key(API_KEY[:-1]) is None
    assert registry.by_api_key("") is None
    assert registry.by_api_key("ünïcode") is None
    assert registry.get("initech") is None
    assert "acme" in registry


def test_registry_refuses_duplicate_ids() -> None:
    tenant = Tenant("acme", ("s",), "k")
    with pytest.raises(TenantConfigError, match="defined twice"):
        TenantRegistry([tenant, tenant])


def test_demo_registry_generates_secrets() -> None:
    first, second = demo_registry(), demo_registry()
    assert first.ids() == ["demo"]
    a, b = first.get("demo"), second.get("demo")
    assert a is not None
    assert b is not None
    assert len(a.secrets) == 1
    assert len(a.secrets[0]) >= 32
    assert len(a.api_key) >= 32
    assert a.secrets != b.secrets
    assert a.api_key != b.api_key
    assert a.secrets[0] != a.api_key


def test_demo_registry_with_given_values() -> None:
    tenant = demo_registry(secret=SECRET, api_key=API_KEY).get("demo")
    assert tenant == Tenant("demo", (SECRET,), API_KEY, "first")


# --- load_tenants: sources ----------------------------------------------------------


def test_json_string() -> None:
    assert_acme_globex(load_tenants(json.dumps(config())))


def test_json_string_with_surrounding_whitespace() -> None:
    assert_acme_globex(load_tenants("  \n" + json.dumps(config()) + "\n"))


def test_json_file(tmp_path: Path) -> None:
    path = tmp_path / "tenants.json"
    path.write_text(json.dumps(config()))
    assert_acme_globex(load_tenants(str(path)))


def test_toml_file(tmp_path: Path) -> None:
    path = tmp_path / "tenants.toml"
    path.write_text(
        f'[acme]\nsecrets = ["{SECRET}", "{ROTATED}"]\napi_key = "{API_KEY}"\n'
        'display_name = "full"\n\n'
        f'[globex]\nsecrets = ["{ROTATED}-g"]\napi_key = "{API_KEY}-g"\n'
    )
    assert_acme_globex(load_tenants(str(path)))


def test_loaded_tenant_verifies_its_tokens() -> None:
    registry = load_tenants(json.dumps(config()))
    acme = registry.get("acme")
    assert acme is not None
    token = issue_token(acme, sub="u1", role="student", sessions=["s"], key_index=1)
    assert verify_token(token, registry).tenant == "acme"


@pytest.mark.parametrize("name", ["display_name", "full", "first", "none"])
def test_display_name_values(name: str) -> None:
    entry: dict[str, Any] = {"secrets": [SECRET], "api_key": API_KEY}
    if name != "display_name":
        entry["display_name"] = name
    tenant = load_tenants(json.dumps({"acme": entry})).get("acme")
    assert tenant is not None
    assert tenant.display_name == ("first" if name == "display_name" else name)


def test_short_secret_is_accepted_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="classroom.tenants"):
        registry = load_tenants(json.dumps({"acme": {"secrets": ["short"], "api_key": "k"}}))
    assert registry.ids() == ["acme"]
    assert "shorter than 32 bytes" in caplog.text
    assert 'short"' not in caplog.text


# --- load_tenants: errors -----------------------------------------------------------


def test_malformed_json_string() -> None:
    raw = '{"acme": {"secrets": ["' + SECRET + '"], "api_key": "' + API_KEY + '",}}'
    message = message_of(raw)
    assert "CLASSROOM_TENANTS" in message
    assert "invalid JSON at line 1" in message


def test_malformed_json_file_names_file_not_secret(tmp_path: Path) -> None:
    path = tmp_path / "tenants.json"
    path.write_text('{"acme": {"secrets": ["' + SECRET + '"] "api_key": "' + API_KEY + '"}}')
    message = message_of(str(path))
    assert str(path) in message
    assert "invalid JSON" in message


def test_malformed_toml_file_names_file_not_secret(tmp_path: Path) -> None:
    path = tmp_path / "tenants.toml"
    path.write_text(f'[acme]\nsecrets = ["{SECRET}"\napi_key = {API_KEY}\n')
    message = message_of(str(path))
    assert str(path) in message
    assert "invalid TOML" in message


def test_invalid_value_in_file_names_file_tenant_and_field(tmp_path: Path) -> None:
    path = tmp_path / "tenants.toml"
    path.write_text(f'[acme]\nsecrets = ["{SECRET}"]\napi_key = ["{API_KEY}"]\n')
    message = message_of(str(path))
    assert str(path) in message
    assert "'acme'" in message
    assert "api_key" in message


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.toml"
    message = message_of(str(path))
    assert str(path) in message
    assert "does not exist" in message


def test_directory_instead_of_file(tmp_path: Path) -> None:
    path = tmp_path / "dir.json"
    path.mkdir()
    assert "is a directory" in message_of(str(path))


def test_unknown_file_extension(tmp_path: Path) -> None:
    path = tmp_path / "tenants.yaml"
    path.write_text("acme: {}")
    message = message_of(str(path))
    assert ".toml or .json" in message


def test_file_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "tenants.json"
    path.write_bytes(b'{"acme": "\xff\xfe"}')
    assert "UTF-8" in message_of(str(path))


def test_empty_raw_value() -> None:
    assert "empty" in message_of("   ")


def test_bad_display_name() -> None:
    raw = json.dumps({"acme": {"secrets": [SECRET], "api_key": API_KEY, "display_name": "all"}})
    message = message_of(raw)
    assert "'acme'" in message
    assert "display_name" in message
    assert "'full', 'first' or 'none'" in message


def test_empty_secrets_list() -> None:
    message = message_of(json.dumps({"acme": {"secrets": [], "api_key": API_KEY}}))
    assert "'acme'" in message
    assert "secrets" in message


def test_empty_secret_string() -> None:
    message = message_of(json.dumps({"acme": {"secrets": [SECRET, ""], "api_key": API_KEY}}))
    assert "secrets.1" in message
    assert "must not be empty" in message


@pytest.mark.parametrize(
    ("entry", "field"),
    [
        ({"secrets": SECRET, "api_key": API_KEY}, "secrets"),
        ({"secrets": [SECRET, 42], "api_key": API_KEY}, "secrets.1"),
        ({"secrets": [SECRET], "api_key": ""}, "api_key"),
        ({"secrets": [SECRET], "api_key": 12345}, "api_key"),
        ({"secrets": [SECRET]}, "api_key"),
        ({"api_key": API_KEY}, "secrets"),
        ({"secrets": [SECRET], "api_key": API_KEY, "secret": SECRET}, "secret"),
    ],
)
def test_invalid_tenant_fields(entry: dict[str, Any], field: str) -> None:
    message = message_of(json.dumps({"acme": entry}))
    assert "'acme'" in message
    assert f"field '{field}'" in message
    assert "42" not in message
    assert "12345" not in message


@pytest.mark.parametrize("tenant_id", ["Acme", "-acme", "ac me", "acme_1", "", "a" * 64, "é"])
def test_invalid_tenant_id(tenant_id: str) -> None:
    message = message_of(json.dumps({tenant_id: {"secrets": [SECRET], "api_key": API_KEY}}))
    assert "tenant id" in message


@pytest.mark.parametrize("tenant_id", ["a", "acme-2", "0", "a" * 63])
def test_valid_tenant_ids(tenant_id: str) -> None:
    registry = load_tenants(json.dumps({tenant_id: {"secrets": [SECRET], "api_key": API_KEY}}))
    assert registry.ids() == [tenant_id]


@pytest.mark.parametrize("raw", ["[]", '["acme"]', "{}"])
def test_document_must_be_a_non_empty_object(raw: str) -> None:
    message_of(raw)


def test_tenant_entry_must_be_object() -> None:
    assert "must be an object" in message_of(json.dumps({"acme": [SECRET]}))


def test_duplicate_tenant_in_json() -> None:
    entry = json.dumps({"secrets": [SECRET], "api_key": API_KEY})
    message = message_of('{"acme": ' + entry + ', "acme": ' + entry + "}")
    assert "'acme' appears twice" in message


def test_tenant_config_error_is_value_error() -> None:
    assert issubclass(TenantConfigError, ValueError)


# --- Settings ---------------------------------------------------------------------


def test_settings_defaults() -> None:
    settings = Settings()
    assert settings.redis_url is None
    assert settings.tenants_raw is None
    assert settings.opentok_api_key is None
    assert settings.smtp_url is None
    assert settings.sentry_dsn is None
    assert settings.log_level == "info"
    assert settings.connect_timeout == 10.0
    assert settings.ping_interval == 25
    assert settings.max_frame_bytes == 65536
    assert settings.rate_limit_per_second == 50.0
    assert settings.rate_limit_burst == 100
    assert settings.bad_frames_limit == 20
    assert settings.bad_frames_window == 60.0
    assert settings.send_queue_max_bytes == 1048576
    assert settings.close_timeout == 5.0
    assert settings.history_size == 10000
    assert settings.history_ttl == 86400.0
    assert settings.idempotency_ttl == 300.0
    assert settings.token_leeway == 0.0
    assert settings.drain_timeout == 10.0
    assert settings.history_limit_max == 1000


def test_demo_registry_when_tenants_unset() -> None:
    settings = Settings()
    assert settings.is_demo
    registry = settings.load_tenants()
    assert registry.ids() == ["demo"]
    assert settings.load_tenants() is registry
    assert Settings().load_tenants().get("demo") != registry.get("demo")


def test_blank_tenants_env_means_demo(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLASSROOM_TENANTS", "")
    assert Settings().is_demo
    assert Settings(tenants_raw="  ").is_demo


def test_tenants_from_env_json(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLASSROOM_TENANTS", json.dumps(config()))
    settings = Settings()
    assert not settings.is_demo
    assert_acme_globex(settings.load_tenants())
    assert settings.load_tenants() is settings.load_tenants()


def test_tenants_from_env_path(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    path = tmp_path / "tenants.json"
    path.write_text(json.dumps(config()))
    monkeypatch.setenv("CLASSROOM_TENANTS", str(path))
    assert_acme_globex(Settings().load_tenants())


def test_bad_tenants_raise_on_load() -> None:
    settings = Settings(tenants_raw='{"acme": {}}')
    with pytest.raises(TenantConfigError):
        settings.load_tenants()


def test_env_var_reading(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REDIS_URL", "redis://:pw@localhost:6379/0")
    monkeypatch.setenv("CLASSROOM_SECRET", "pid-secret")
    monkeypatch.setenv("OPENTOK_API_KEY", "ot-key")
    monkeypatch.setenv("OPENTOK_API_SECRET", "ot-secret")
    monkeypatch.setenv("OPENTOK_API_URL", "https://api.opentok.example")
    monkeypatch.setenv("SMTP_URL", "smtps://user:pw@mail.example:465")
    monkeypatch.setenv("MAIL_FROM", "noreply@example.nl")
    monkeypatch.setenv("SENTRY_DSN", "https://key@sentry.example/1")
    monkeypatch.setenv("CLASSROOM_LOG_LEVEL", "DEBUG")
    monkeypatch.setenv("CLASSROOM_CONNECT_TIMEOUT", "2.5")
    monkeypatch.setenv("CLASSROOM_PING_INTERVAL", "7")
    monkeypatch.setenv("CLASSROOM_MAX_FRAME_BYTES", "1024")
    monkeypatch.setenv("CLASSROOM_RATE_LIMIT_PER_SECOND", "5")
    monkeypatch.setenv("CLASSROOM_RATE_LIMIT_BURST", "9")
    monkeypatch.setenv("CLASSROOM_BAD_FRAMES_LIMIT", "3")
    monkeypatch.setenv("CLASSROOM_BAD_FRAMES_WINDOW", "30")
    monkeypatch.setenv("CLASSROOM_SEND_QUEUE_MAX_BYTES", "4096")
    monkeypatch.setenv("CLASSROOM_CLOSE_TIMEOUT", "1")
    monkeypatch.setenv("CLASSROOM_HISTORY_SIZE", "50")
    monkeypatch.setenv("CLASSROOM_HISTORY_TTL", "60")
    monkeypatch.setenv("CLASSROOM_IDEMPOTENCY_TTL", "10")
    monkeypatch.setenv("CLASSROOM_TOKEN_LEEWAY", "2")
    monkeypatch.setenv("CLASSROOM_DRAIN_TIMEOUT", "0.5")
    monkeypatch.setenv("CLASSROOM_HISTORY_LIMIT_MAX", "20")
    settings = Settings()
    assert settings.redis_url == "redis://:pw@localhost:6379/0"
    assert settings.secret_bytes() == b"pid-secret"
    assert settings.opentok_api_key == "ot-key"
    assert settings.opentok_api_secret == "ot-secret"
    assert settings.opentok_api_url == "https://api.opentok.example"
    assert settings.smtp_url == "smtps://user:pw@mail.example:465"
    assert settings.mail_from == "noreply@example.nl"
    assert settings.sentry_dsn == "https://key@sentry.example/1"
    assert settings.log_level == "debug"
    assert settings.connect_timeout == 2.5
    assert settings.ping_interval == 7
    assert settings.max_frame_bytes == 1024
    assert settings.rate_limit_per_second == 5.0
    assert settings.rate_limit_burst == 9
    assert settings.bad_frames_limit == 3
    assert settings.bad_frames_window == 30.0
    assert settings.send_queue_max_bytes == 4096
    assert settings.close_timeout == 1.0
    assert settings.history_size == 50
    assert settings.history_ttl == 60.0
    assert settings.idempotency_ttl == 10.0
    assert settings.token_leeway == 2.0
    assert settings.drain_timeout == 0.5
    assert settings.history_limit_max == 20
    text = repr(settings)
    for secret in ("pw", "pid-secret", "ot-secret", "key@sentry"):
        assert secret not in text


def test_keyword_arguments_use_field_names() -> None:
    settings = Settings(connect_timeout=0.2, redis_url="redis://localhost", secret="k")
    assert settings.connect_timeout == 0.2
    assert settings.redis_url == "redis://localhost"
    assert settings.secret_bytes() == b"k"


def test_keyword_arguments_beat_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLASSROOM_HISTORY_SIZE", "50")
    assert Settings(history_size=7).history_size == 7


def test_generated_secret_is_stable_per_instance() -> None:
    settings = Settings()
    assert settings.secret is None
    key = settings.secret_bytes()
    assert len(key) >= 32
    assert settings.secret_bytes() == key
    assert Settings().secret_bytes() != key


def test_invalid_knob_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLASSROOM_CONNECT_TIMEOUT", "soon")
    with pytest.raises(ValidationError):
        Settings()


@pytest.mark.parametrize(
    "kwargs",
    [{"connect_timeout": 0}, {"rate_limit_burst": 0}, {"log_level": "loud"}, {"no_such": 1}],
)
def test_invalid_settings(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        Settings(**kwargs)


def test_settings_errors_hide_secret_values(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLASSROOM_SECRET", "top-secret-value")
    with pytest.raises(ValidationError) as info:
        Settings(ping_interval="top-secret-value")  # type: ignore[arg-type]
    assert "top-secret-value" not in str(info.value)
