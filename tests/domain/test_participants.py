"""Pseudonymous ids and display names (section 6), unit and over the wire."""

from __future__ import annotations

import pytest

from classroom.domain.participants import display_name_for, make_pid
from tests.conftest import RunningServer


def test_pid_is_stable_within_a_session_and_differs_across_sessions() -> None:
    secret = b"k" * 32
    assert make_pid(secret, "acme", "s1", "u1") == make_pid(secret, "acme", "s1", "u1")
    assert make_pid(secret, "acme", "s1", "u1") != make_pid(secret, "acme", "s2", "u1")
    assert make_pid(secret, "acme", "s1", "u1") != make_pid(secret, "globex", "s1", "u1")
    assert make_pid(secret, "acme", "s1", "u1") != make_pid(b"x" * 32, "acme", "s1", "u1")
    assert "u1" not in make_pid(secret, "acme", "s1", "u1")


@pytest.mark.parametrize(("name", "policy", "shown"), [
    ("Anna de Boer", "full", "Anna de Boer"),
    ("Anna de Boer", "first", "Anna"),
    ("Anna de Boer", "none", None),
    ("  ", "first", None),
    (None, "full", None),
])
def test_display_name_policy(name: str | None, policy: str, shown: str | None) -> None:
    assert display_name_for(name, policy) == shown  # type: ignore[arg-type]


async def test_full_name_policy_reaches_students(server: RunningServer) -> None:
    first = await server.member("u1", "student", tenant="globex", name="Anna de Boer",
                                email="anna@example.nl")
    second = await server.member("u2", "student", tenant="globex", name="Bram Jansen")
    seen = await first.expect("presence.join")
    assert seen["participant"]["display_name"] == "Bram Jansen"
    assert set(seen["participant"]) == {"pid", "role", "display_name"}
    roster = await second.request("presence", session="s1")
    other = next(p for p in roster["participants"] if p["display_name"] == "Anna de Boer")
    assert "email" not in other
    await first.close()
    await second.close()


async def test_same_user_has_different_pids_in_different_sessions(
    server: RunningServer,
) -> None:
    client = await server.client("u1", "student", ["s1", "s2"], name="Anna")
    one = await client.request("join", session="s1")
    two = await client.request("join", session="s2")
    assert one["me"]["pid"] != two["me"]["pid"]
    assert one["me"]["sub"] == "u1"
    await client.close()
