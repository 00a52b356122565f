"""The session-id rule and the Channel value type (classroom.domain.channel)."""

from __future__ import annotations

import pytest

from classroom.domain.channel import Channel, is_session_id
from classroom.domain.refusals import RequestRefused
from classroom.protocol.commands import parse_command


@pytest.mark.parametrize("sid", ["s1", "a", "A.b_c-9", "9" * 128])
def test_valid_session_ids_pass_both_the_api_rule_and_the_commands(sid: str) -> None:
    assert is_session_id(sid)
    assert parse_command({"type": "join", "id": 1, "session": sid}).session == sid  # type: ignore[union-attr]


@pytest.mark.parametrize("sid", ["", "s1\n", "\ns1", "-s1", "a b", "a/b", "a:b", "x" * 129, "é"])
def test_invalid_session_ids_fail_both_the_api_rule_and_the_commands(sid: str) -> None:
    assert not is_session_id(sid)
    with pytest.raises(RequestRefused) as info:
        parse_command({"type": "join", "id": 1, "session": sid})
    assert info.value.code == "bad_request"


def test_a_channel_names_its_tenant_and_session_and_parses_back() -> None:
    channel = Channel("acme", "s1.a")
    assert channel.name == "acme:s1.a"
    assert Channel.parse(channel.name) == channel
    assert {channel: 1}[Channel("acme", "s1.a")] == 1


@pytest.mark.parametrize("name", ["__control__", ":s1", "acme:", ""])
def test_a_name_that_is_no_session_channel_is_refused(name: str) -> None:
    with pytest.raises(ValueError, match="not a session channel"):
        Channel.parse(name)
