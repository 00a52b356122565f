"""The presence window on a real event loop, and the limits of its settings."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from pydantic import ValidationError

from auth.tenants import TenantConfigError, load_tenants
from classroom.config import Settings
from classroom.sessions.presence_window import Change, PresenceWindow


def person(pid: str) -> dict[str, Any]:
    return {"pid": pid, "role": "student", "sub": pid}


async def test_changes_of_one_window_are_flushed_once_with_each_pid_last() -> None:
    flushed: list[tuple[str, list[Change]]] = []

    async def flush(channel: str, changes: list[Change]) -> None:
        flushed.append((channel, changes))

    window = PresenceWindow(0.05, flush)
    window.note("t:s", "presence.join", person("a"))
    window.note("t:s", "presence.join", person("b"))
    window.note("t:s", "presence.leave", person("a"))  # a's last change, moved to the end
    window.note("t:other", "presence.join", person("c"))
    await asyncio.sleep(0.15)
    assert sorted(flushed, key=lambda f: f[0]) == [
        ("t:other", [("presence.join", person("c"))]),
        ("t:s", [("presence.join", person("b")), ("presence.leave", person("a"))]),
    ]
    assert window.waiting() == 0  # nothing kept once a window closed with nothing new


async def test_changes_during_a_slow_flush_open_the_next_window_after_it() -> None:
    flushed: list[list[str]] = []
    release = asyncio.Event()

    async def flush(channel: str, changes: list[Change]) -> None:
        flushed.append([p["pid"] for _, p in changes])
        if len(flushed) == 1:
            await release.wait()

    window = PresenceWindow(0.02, flush)
    window.note("t:s", "presence.join", person("a"))
    await asyncio.sleep(0.06)
    window.note("t:s", "presence.join", person("b"))
    await asyncio.sleep(0.06)
    assert flushed == [["a"]]  # the flush of a's window is still running: no overlap
    release.set()
    await asyncio.sleep(0.06)
    assert flushed == [["a"], ["b"]]


async def test_forget_drops_a_sessions_pending_changes() -> None:
    flushed: list[list[Change]] = []

    async def flush(channel: str, changes: list[Change]) -> None:
        flushed.append(changes)

    window = PresenceWindow(0.02, flush)
    window.note("t:s", "presence.join", person("a"))
    window.forget("t:s")
    await asyncio.sleep(0.06)
    assert flushed == [] and window.waiting() == 0
    window.note("t:s", "presence.join", person("b"))
    window.close()
    await asyncio.sleep(0.04)
    assert flushed == []


@pytest.mark.parametrize("seconds", [0.001, 0.1, 5.0])
def test_presence_window_setting_within_limits(seconds: float) -> None:
    assert Settings(presence_window=seconds).presence_window == seconds


@pytest.mark.parametrize("seconds", [0, -0.1, 5.01])
def test_presence_window_setting_refused_outside_limits(seconds: float) -> None:
    with pytest.raises(ValidationError):
        Settings(presence_window=seconds)


def _tenants(**extra: Any) -> str:
    return json.dumps({"acme": {"secrets": ["s" * 40], "api_key": "k" * 40, **extra}})


@pytest.mark.parametrize("above", [0, 500, 1_000_000])
def test_counts_only_threshold_within_limits(above: int) -> None:
    tenant = load_tenants(_tenants(presence_counts_only_above=above)).get("acme")
    assert tenant is not None and tenant.presence_counts_only_above == above


@pytest.mark.parametrize("above", [-1, 1_000_001, True, 2.5, "10"])
def test_counts_only_threshold_refused_outside_limits(above: object) -> None:
    with pytest.raises(TenantConfigError, match="presence_counts_only_above"):
        load_tenants(_tenants(presence_counts_only_above=above))


def test_counts_only_threshold_unset_by_default() -> None:
    tenant = load_tenants(_tenants()).get("acme")
    assert tenant is not None and tenant.presence_counts_only_above is None
