"""The ``video`` command over the wire, with the real SDK against a fake OpenTok."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from tests.conftest import ServerFactory
from tests.fakes.opentok_server import FakeOpenTok, fake_opentok
from tests.integrations.test_video import decode_token


@pytest.fixture
def opentok() -> Iterator[FakeOpenTok]:
    with fake_opentok() as fake:
        yield fake


async def test_video_tokens_by_role_hold_only_pid_role_and_display_name(
    start_server: ServerFactory, opentok: FakeOpenTok
) -> None:
    server = await start_server(opentok_api_key=opentok.api_key,
                                opentok_api_secret=opentok.api_secret,
                                opentok_api_url=opentok.url, video_token_ttl=600)
    expected = {"trainer": "moderator", "student": "publisher", "planner": "subscriber"}
    replies = {}
    for role in expected:
        client = await server.member(f"{role}-1", role, name="Anna de Boer",
                                     email="anna@example.nl", phone="+31600000001")
        reply = await client.request("video", session="s1")
        assert reply["type"] == "video", reply
        replies[role] = (reply, client.received[-2]["me"]["pid"])
        await client.close()
    assert opentok.create_calls == 1
    session_ids = {reply["session_id"] for reply, _ in replies.values()}
    assert len(session_ids) == 1
    for role, (reply, pid) in replies.items():
        assert reply["role"] == expected[role] and reply["api_key"] == opentok.api_key
        claims = decode_token(reply["token"], opentok.api_key, opentok.api_secret)
        assert claims["role"] == expected[role]
        assert claims["exp"] == reply["expires_at"]
        data = json.loads(claims["connection_data"])
        assert data == {"pid": pid, "role": role, "display_name": "Anna"}
        assert "anna@example.nl" not in reply["token"] and "Boer" not in json.dumps(claims)


async def test_video_when_opentok_fails_is_unavailable_and_nothing_else_breaks(
    start_server: ServerFactory, opentok: FakeOpenTok
) -> None:
    server = await start_server(opentok_api_key=opentok.api_key,
                                opentok_api_secret=opentok.api_secret,
                                opentok_api_url=opentok.url)
    opentok.mode = "fail"
    trainer = await server.member("t1", "trainer", name="Tessa")
    reply = await trainer.request("video", session="s1")
    assert reply["type"] == "error" and reply["code"] == "unavailable"
    published = await trainer.request("publish", session="s1",
                                      event={"kind": "chat", "text": "still here"})
    assert published["type"] == "published"
    forbidden = await trainer.request("video", session="elsewhere")
    assert forbidden["code"] == "forbidden"
    await trainer.close()
